//! What the load generator sends: a mix of record anchors, grants and access events, as the
//! institutions of a network's genesis whose keys it holds would send them, signed before the
//! measured window.
//!
//! The mix follows a national deployment's shape: most transactions log reads of records, fewer
//! anchor new records, fewer still grant access. Access events name records anchored during
//! [`Workload::setup`] and the grants issued for them, so they execute as reads authorised by a
//! grant, as they would in production.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use varde_client::tx::{Anchor, Expiry, Grant, LogAccess, Scope, Transaction};
use varde_ledger::membership::{Genesis, Membership, Role};
use varde_proto::v1;

/// Out of every [`MIX_PERIOD`] transactions: this many access events, then anchors; the rest
/// are grants (60 % / 25 % / 15 %).
pub const MIX_PERIOD: usize = 20;
const MIX_ACCESS_EVENTS: usize = 12;
const MIX_ANCHORS: usize = 5;

/// Records each submitting institution anchors (and grants its neighbour) before the run.
pub const SETUP_RECORDS_PER_SUBMITTER: usize = 64;

/// The patients the load's records belong to.
const SUBJECTS: usize = 997;

/// Health personnel numbers the access events are logged for.
const HPR_NUMBERS: [&str; 4] = ["9144900", "8812345", "7001234", "6123456"];

/// One kind of transaction in the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    AccessEvent,
    Anchor,
    Grant,
}

impl Kind {
    /// The kind of the `index`th transaction of a run.
    pub fn at(index: usize) -> Self {
        match index % MIX_PERIOD {
            slot if slot < MIX_ACCESS_EVENTS => Kind::AccessEvent,
            slot if slot < MIX_ACCESS_EVENTS + MIX_ANCHORS => Kind::Anchor,
            _ => Kind::Grant,
        }
    }
}

/// A signed transaction ready to send.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub envelope: v1::SignedTransaction,
    pub id: [u8; 32],
    pub kind: Kind,
}

/// An institution whose submitting key the generator holds.
#[derive(Clone)]
pub struct Submitter {
    pub org_number: String,
    pub key: SigningKey,
}

/// A record anchored in setup, with the grant its custodian issued to the next submitter.
#[derive(Debug, Clone)]
pub struct SetupRecord {
    pub custodian: usize,
    pub record_id: String,
    pub subject: [u8; 32],
    /// The grantee (an index into the submitters) and the grant's id, once committed.
    pub grantee: usize,
    pub grant_id: Option<[u8; 32]>,
}

/// Who sends what.
#[derive(Clone)]
pub struct Workload {
    pub chain_id: String,
    pub submitters: Vec<Submitter>,
    /// A key of any member, to sign the reads of the exactly-once check.
    pub reader: SigningKey,
    pub records: Vec<SetupRecord>,
    /// Distinguishes this run's record ids from any other run's on the same ledger.
    pub run_tag: String,
    pub expiry: Duration,
}

/// Why the keys given cannot drive a load.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("the genesis is not valid: {0}")]
    Genesis(String),
    #[error(
        "none of the {keys} keys given is a submitting key of an institution with the submitter \
         role in the genesis; give the keys of the network's institutions (a local network's are \
         in DIR/keys)"
    )]
    NoSubmitter { keys: usize },
}

impl Workload {
    /// The institutions of `genesis` among `keys`. Every submitter anchors records; each
    /// grants the next one access to its setup records, and that one logs reads of them.
    pub fn new(
        genesis: &Genesis,
        keys: &[SigningKey],
        expiry: Duration,
    ) -> Result<Self, WorkloadError> {
        let membership = Membership::from_genesis(genesis)
            .map_err(|error| WorkloadError::Genesis(error.to_string()))?;
        let mut submitters: Vec<Submitter> = Vec::new();
        let mut reader = None;
        for key in keys {
            let Some(owner) = membership.owner_of_key(&key.verifying_key().to_bytes()) else {
                continue;
            };
            reader.get_or_insert_with(|| key.clone());
            if owner.has_role(Role::Submitter)
                && !submitters
                    .iter()
                    .any(|known| known.org_number == owner.org_number.as_str())
            {
                submitters.push(Submitter {
                    org_number: owner.org_number.as_str().to_owned(),
                    key: key.clone(),
                });
            }
        }
        let reader = reader.ok_or(WorkloadError::NoSubmitter { keys: keys.len() })?;
        if submitters.is_empty() {
            return Err(WorkloadError::NoSubmitter { keys: keys.len() });
        }
        submitters.sort_by(|a, b| a.org_number.cmp(&b.org_number));
        let run_tag = format!("{:08x}", rand::random::<u32>());
        let records = (0..submitters.len() * SETUP_RECORDS_PER_SUBMITTER)
            .map(|index| {
                let custodian = index % submitters.len();
                SetupRecord {
                    custodian,
                    record_id: format!("bench-{run_tag}-setup-{index}"),
                    subject: subject(index),
                    grantee: (custodian + 1) % submitters.len(),
                    grant_id: None,
                }
            })
            .collect();
        Ok(Self {
            chain_id: genesis.chain_id.clone(),
            submitters,
            reader,
            records,
            run_tag,
            expiry,
        })
    }

    /// The setup anchors: one per setup record, by its custodian.
    pub fn setup_anchors(&self, now_unix_ms: i64) -> Vec<Prepared> {
        (0..self.records.len())
            .map(|index| {
                let record = &self.records[index];
                let custodian = &self.submitters[record.custodian];
                let anchor = anchor(
                    &custodian.org_number,
                    record.record_id.clone(),
                    record.subject,
                    now_unix_ms,
                );
                self.sign(anchor, &custodian.key, Kind::Anchor, now_unix_ms)
            })
            .collect()
    }

    /// The setup grants: each record's custodian grants the record to its grantee. Returns
    /// them in the order of `records`.
    pub fn setup_grants(&self, now_unix_ms: i64) -> Vec<Prepared> {
        (0..self.records.len())
            .map(|index| self.record_grant(index, now_unix_ms))
            .collect()
    }

    /// A grant of setup record `index` by its custodian to its grantee.
    fn record_grant(&self, index: usize, now_unix_ms: i64) -> Prepared {
        let record = &self.records[index];
        let custodian = &self.submitters[record.custodian];
        let grantee = &self.submitters[record.grantee];
        let grant = Grant::new(
            &custodian.org_number,
            record.subject,
            &grantee.org_number,
            Scope::Record {
                custodian_org_number: custodian.org_number.clone(),
                record_id: record.record_id.clone(),
            },
            now_unix_ms - 60_000,
            now_unix_ms + 30 * 24 * 3_600_000,
        )
        .purpose(v1::PurposeOfUse::Treat)
        .consent(format!("samtykke-{}-{index}", self.run_tag));
        self.sign(grant, &custodian.key, Kind::Grant, now_unix_ms)
    }

    /// The `index`th transaction of the run, of the kind [`Kind::at`] says. Needs the setup
    /// grants' ids (access events rely on them).
    pub fn transaction(&self, index: usize, now_unix_ms: i64) -> Prepared {
        let record_index = index % self.records.len();
        match Kind::at(index) {
            Kind::AccessEvent => {
                let record = &self.records[record_index];
                let custodian = &self.submitters[record.custodian];
                let reader = &self.submitters[record.grantee];
                let mut event = LogAccess::new(
                    &reader.org_number,
                    HPR_NUMBERS[index % HPR_NUMBERS.len()],
                    &custodian.org_number,
                    record.record_id.clone(),
                    v1::PurposeOfUse::Treat,
                    now_unix_ms,
                );
                if let Some(grant_id) = record
                    .grant_id
                    .filter(|_| record.grantee != record.custodian)
                {
                    event = event.grant(grant_id);
                }
                self.sign(event, &reader.key, Kind::AccessEvent, now_unix_ms)
            }
            Kind::Anchor => {
                let custodian = &self.submitters[index % self.submitters.len()];
                let anchor = anchor(
                    &custodian.org_number,
                    format!("bench-{}-{index}", self.run_tag),
                    subject(index),
                    now_unix_ms,
                );
                self.sign(anchor, &custodian.key, Kind::Anchor, now_unix_ms)
            }
            Kind::Grant => self.record_grant(record_index, now_unix_ms),
        }
    }

    /// Transactions `0..count`, signed on every core (signing is the generator's only heavy
    /// work, and it must be done before the measured window).
    pub fn prepare(&self, count: usize, now_unix_ms: i64) -> Vec<Prepared> {
        let threads = std::thread::available_parallelism().map_or(1, |cores| cores.get());
        let next = AtomicUsize::new(0);
        const CHUNK: usize = 4_096;
        let mut chunks: Vec<(usize, Vec<Prepared>)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                            if start >= count {
                                return done;
                            }
                            let end = (start + CHUNK).min(count);
                            let chunk: Vec<Prepared> = (start..end)
                                .map(|index| self.transaction(index, now_unix_ms))
                                .collect();
                            done.push((start, chunk));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|worker| worker.join().expect("a signing thread panicked"))
                .collect()
        });
        chunks.sort_by_key(|(start, _)| *start);
        chunks.into_iter().flat_map(|(_, chunk)| chunk).collect()
    }

    fn sign(
        &self,
        action: impl Into<v1::transaction_body::Action>,
        key: &SigningKey,
        kind: Kind,
        now_unix_ms: i64,
    ) -> Prepared {
        let signed = Transaction::new(action)
            .expiry(Expiry::After(self.expiry))
            .sign_at(&self.chain_id, key, now_unix_ms)
            .expect("the load's transactions satisfy the admission rules");
        Prepared {
            envelope: signed.transaction,
            id: signed.transaction_id.0,
            kind,
        }
    }
}

fn anchor(custodian: &str, record_id: String, subject: [u8; 32], now_unix_ms: i64) -> Anchor {
    let location = format!("https://ehr.example.invalid/{custodian}/{record_id}");
    let mut content = [0u8; 32];
    content[..8].copy_from_slice(&now_unix_ms.to_be_bytes());
    content[8..16].copy_from_slice(&(record_id.len() as u64).to_be_bytes());
    Anchor::new(
        custodian,
        record_id,
        subject,
        "laboratory",
        location,
        content,
        now_unix_ms,
    )
}

/// A pseudonym for patient `index mod SUBJECTS` (random-looking bytes, as HMAC output is).
fn subject(index: usize) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(format!("varde-bench-subject-{}", index % SUBJECTS)).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_is_sixty_twenty_five_fifteen() {
        let kinds: Vec<Kind> = (0..MIX_PERIOD * 10).map(Kind::at).collect();
        let count = |kind| kinds.iter().filter(|candidate| **candidate == kind).count();
        assert_eq!(count(Kind::AccessEvent), 120);
        assert_eq!(count(Kind::Anchor), 50);
        assert_eq!(count(Kind::Grant), 30);
    }
}
