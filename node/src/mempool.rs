//! Transactions admitted but not yet committed.
//!
//! Admission decodes and verifies each transaction (`Ledger::decode_transaction`: envelope size,
//! signature for this chain, body fields, national-id-shaped values), checks that the signer is a
//! member and that it has not expired or been committed already, and refuses duplicates. The pool
//! is bounded by count and by bytes. Blocks are filled round-robin across signer keys, so one busy
//! institution cannot starve the others. Committed and expired transactions are removed.

use std::collections::{BTreeMap, HashMap, VecDeque};

use prost::Message;
use varde_ledger::Ledger;
use varde_ledger::signing::TransactionId;
use varde_ledger::wire::{TransactionError, VerifiedTransaction};
use varde_proto::v1;
use varde_storage::Store;

use crate::config::MempoolConfig;

/// Why a transaction was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    #[error(transparent)]
    Invalid(#[from] TransactionError),
    #[error(
        "the signer's public key is not a submitting key of any member institution (a validator key signs only misbehaviour reports); sign with a key listed in the institution's public_keys in the genesis"
    )]
    UnknownSigner,
    #[error("the transaction expired ({detail}); sign a new one with a later expiry")]
    Expired { detail: String },
    #[error(
        "the transaction's expiry lies too far ahead ({detail}); sign a new one with an expiry within the horizon"
    )]
    ExpiryTooFar { detail: String },
    #[error("transaction {id} is already waiting in the mempool")]
    DuplicatePending { id: TransactionId },
    #[error("transaction {id} is already committed; query it with GetTransaction")]
    AlreadyCommitted { id: TransactionId },
    #[error(
        "the mempool is full ({transactions} transactions, {bytes} bytes waiting); retry after the next block"
    )]
    Full { transactions: usize, bytes: usize },
    #[error("the ledger could not be read: {0}")]
    Storage(String),
}

impl AdmissionError {
    /// A short stable reason, for the `rejected transactions` metric.
    pub fn reason(&self) -> &'static str {
        match self {
            AdmissionError::Invalid(TransactionError::TooLarge { .. }) => "too_large",
            AdmissionError::Invalid(TransactionError::MalformedEnvelope(_))
            | AdmissionError::Invalid(TransactionError::MalformedBody(_)) => "malformed",
            AdmissionError::Invalid(
                TransactionError::NonCanonicalEnvelope | TransactionError::NonCanonicalBody,
            ) => "non_canonical",
            AdmissionError::Invalid(TransactionError::WrongChain { .. }) => "wrong_chain",
            AdmissionError::Invalid(TransactionError::Signature(_)) => "bad_signature",
            AdmissionError::Invalid(TransactionError::Field(_)) => "invalid_field",
            AdmissionError::UnknownSigner => "unknown_signer",
            AdmissionError::Expired { .. } => "expired",
            AdmissionError::ExpiryTooFar { .. } => "expiry_too_far",
            AdmissionError::DuplicatePending { .. } | AdmissionError::AlreadyCommitted { .. } => {
                "duplicate"
            }
            AdmissionError::Full { .. } => "mempool_full",
            AdmissionError::Storage(_) => "storage",
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    envelope: v1::SignedTransaction,
    signer: [u8; 32],
    size_bytes: usize,
    expires_at_height: Option<u64>,
    expires_at_unix_ms: Option<i64>,
}

/// Where a transaction came from, for the room it may take ([`Mempool::precheck`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Submitted to this node (gRPC, or this validator's own report).
    Client,
    /// Gossiped by another validator.
    Peer,
}

/// One signer's transactions in arrival order. Removal is lazy: an id leaves `entries` at once
/// and its queue slot when it reaches the front (commits are mostly in arrival order) or when
/// stale slots outnumber live ones, so that removing a block's transactions costs no scan of
/// every queue.
#[derive(Debug, Default)]
struct SignerQueue {
    ids: VecDeque<TransactionId>,
    live: usize,
}

/// The pool. Not thread-safe by itself: the node keeps it behind a mutex, held only briefly.
#[derive(Debug)]
pub struct Mempool {
    limits: MempoolConfig,
    entries: HashMap<TransactionId, Entry>,
    /// Each signer's transactions in arrival order.
    by_signer: BTreeMap<[u8; 32], SignerQueue>,
    bytes: usize,
    /// Which signer goes first in the next block, so that the first place rotates too.
    rotation: usize,
}

impl Mempool {
    pub fn new(limits: MempoolConfig) -> Self {
        Self {
            limits,
            entries: HashMap::new(),
            by_signer: BTreeMap::new(),
            bytes: 0,
            rotation: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn size_bytes(&self) -> usize {
        self.bytes
    }

    pub fn contains(&self, id: &TransactionId) -> bool {
        self.entries.contains_key(id)
    }

    pub fn get(&self, id: &TransactionId) -> Option<&v1::SignedTransaction> {
        self.entries.get(id).map(|entry| &entry.envelope)
    }

    /// Verifies `envelope` against the ledger and admits it. `now_unix_ms` is the wall clock.
    /// The node verifies outside its lock instead ([`Mempool::precheck`], then
    /// [`Mempool::admit_verified`]); this is both in one.
    pub fn admit<S: Store>(
        &mut self,
        ledger: &Ledger<S>,
        envelope: &v1::SignedTransaction,
        now_unix_ms: i64,
    ) -> Result<TransactionId, AdmissionError> {
        let size_bytes = self.precheck(ledger, envelope, Origin::Client)?;
        let verified = varde_ledger::wire::verify_envelope(ledger.chain_id(), envelope.clone())?;
        self.admit_verified(ledger, verified, size_bytes, now_unix_ms)
    }

    /// The checks that cost no signature verification, so that a full pool or a duplicate is
    /// refused cheaply before the curve arithmetic: room for the envelope, and (when the
    /// envelope names a 32-byte signer) no waiting transaction with its id. Returns its size.
    ///
    /// A client's transaction finds room only while the pool is under half its bounds; the
    /// other half is kept for transactions gossiped by the other validators. Under overload each
    /// validator then still admits (and verifies, off the consensus path) what its peers will
    /// propose, instead of verifying it inside block validation, and clients are refused early.
    pub fn precheck<S: Store>(
        &self,
        ledger: &Ledger<S>,
        envelope: &v1::SignedTransaction,
        origin: Origin,
    ) -> Result<usize, AdmissionError> {
        let size_bytes = envelope.encoded_len();
        match origin {
            Origin::Client => self.check_room_within(
                self.limits.max_transactions / 2,
                self.limits.max_bytes / 2,
                size_bytes,
            )?,
            Origin::Peer => self.check_room(size_bytes)?,
        }
        if let Ok(signer) = <[u8; 32]>::try_from(envelope.signer_public_key.as_slice()) {
            if let Ok(id) =
                varde_ledger::signing::signing_digest(ledger.chain_id(), &signer, &envelope.body)
            {
                if self.contains(&id) {
                    return Err(AdmissionError::DuplicatePending { id });
                }
            }
        }
        Ok(size_bytes)
    }

    fn check_room(&self, size_bytes: usize) -> Result<(), AdmissionError> {
        self.check_room_within(
            self.limits.max_transactions,
            self.limits.max_bytes,
            size_bytes,
        )
    }

    fn check_room_within(
        &self,
        max_transactions: usize,
        max_bytes: usize,
        size_bytes: usize,
    ) -> Result<(), AdmissionError> {
        if self.entries.len() >= max_transactions || self.bytes + size_bytes > max_bytes {
            return Err(AdmissionError::Full {
                transactions: self.entries.len(),
                bytes: self.bytes,
            });
        }
        Ok(())
    }

    /// Admits a transaction whose envelope verified: the signer is a member, it has not expired
    /// and is not too far ahead, and it is neither waiting nor committed.
    pub fn admit_verified<S: Store>(
        &mut self,
        ledger: &Ledger<S>,
        verified: VerifiedTransaction,
        size_bytes: usize,
        now_unix_ms: i64,
    ) -> Result<TransactionId, AdmissionError> {
        // A submitting key signs any action; a validator key only misbehaviour reports and
        // governance.
        if ledger
            .membership()
            .signer_for(&verified.signer, &verified.body.action)
            .is_none()
        {
            return Err(AdmissionError::UnknownSigner);
        }
        let head = ledger
            .head()
            .map_err(|error| AdmissionError::Storage(error.to_string()))?;
        let next_height = head.as_ref().map_or(1, |head| head.height + 1);
        check_expiry(&verified, next_height, now_unix_ms)?;
        check_horizon(ledger.replay_limits(), &verified, next_height, now_unix_ms)?;
        if self.contains(&verified.id) {
            return Err(AdmissionError::DuplicatePending { id: verified.id });
        }
        if ledger
            .receipt(&verified.id)
            .map_err(|error| AdmissionError::Storage(error.to_string()))?
            .is_some()
        {
            return Err(AdmissionError::AlreadyCommitted { id: verified.id });
        }
        self.insert(verified, size_bytes)
    }

    /// Adds an already verified transaction, enforcing the bounds and refusing duplicates.
    pub fn insert(
        &mut self,
        verified: VerifiedTransaction,
        size_bytes: usize,
    ) -> Result<TransactionId, AdmissionError> {
        let id = verified.id;
        if self.contains(&id) {
            return Err(AdmissionError::DuplicatePending { id });
        }
        self.check_room(size_bytes)?;
        self.bytes += size_bytes;
        let queue = self.by_signer.entry(verified.signer).or_default();
        queue.ids.push_back(id);
        queue.live += 1;
        self.entries.insert(
            id,
            Entry {
                envelope: verified.envelope,
                signer: verified.signer,
                size_bytes,
                expires_at_height: verified.body.expiry.height,
                expires_at_unix_ms: verified.body.expiry.unix_ms,
            },
        );
        Ok(id)
    }

    /// Up to `max_transactions` transactions of at most `max_bytes` together, taken round-robin
    /// across signers (each signer's own in arrival order). They stay in the pool until committed.
    pub fn select_for_block(
        &mut self,
        max_transactions: usize,
        max_bytes: usize,
    ) -> Vec<v1::SignedTransaction> {
        let mut selected = Vec::new();
        if self.by_signer.is_empty() {
            return selected;
        }
        let entries = &self.entries;
        // Each signer's waiting transactions in arrival order (stale slots skipped).
        let mut queues: Vec<_> = self
            .by_signer
            .values()
            .map(|queue| queue.ids.iter().filter_map(|id| entries.get(id)))
            .collect();
        let start = self.rotation % queues.len();
        self.rotation = self.rotation.wrapping_add(1);
        queues.rotate_left(start);
        let mut bytes = 0usize;
        let mut exhausted = vec![false; queues.len()];
        let mut remaining = queues.len();
        while remaining > 0 {
            for (index, queue) in queues.iter_mut().enumerate() {
                if exhausted[index] {
                    continue;
                }
                let Some(entry) = queue.next() else {
                    exhausted[index] = true;
                    remaining -= 1;
                    continue;
                };
                if bytes + entry.size_bytes > max_bytes {
                    continue;
                }
                bytes += entry.size_bytes;
                selected.push(entry.envelope.clone());
                if selected.len() >= max_transactions {
                    return selected;
                }
            }
        }
        selected
    }

    /// Removes transactions that are now in a block.
    pub fn remove_committed<'a>(&mut self, ids: impl IntoIterator<Item = &'a TransactionId>) {
        for id in ids {
            self.remove(id);
        }
    }

    /// Removes transactions that can no longer be included at `next_height` or after
    /// `now_unix_ms`. Returns how many were dropped.
    pub fn remove_expired(&mut self, next_height: u64, now_unix_ms: i64) -> usize {
        let expired: Vec<TransactionId> = self
            .entries
            .iter()
            .filter(|(_, entry)| {
                entry
                    .expires_at_height
                    .is_some_and(|last| last < next_height)
                    || entry
                        .expires_at_unix_ms
                        .is_some_and(|last| last < now_unix_ms)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &expired {
            self.remove(id);
        }
        expired.len()
    }

    /// Drops every waiting transaction.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.by_signer.clear();
        self.bytes = 0;
    }

    fn remove(&mut self, id: &TransactionId) {
        let Some(entry) = self.entries.remove(id) else {
            return;
        };
        self.bytes -= entry.size_bytes;
        let Some(queue) = self.by_signer.get_mut(&entry.signer) else {
            return;
        };
        queue.live -= 1;
        if queue.live == 0 {
            self.by_signer.remove(&entry.signer);
            return;
        }
        while queue
            .ids
            .front()
            .is_some_and(|front| !self.entries.contains_key(front))
        {
            queue.ids.pop_front();
        }
        // Out-of-order removals leave stale slots behind; compact once they dominate.
        if queue.ids.len() > 2 * queue.live + 64 {
            let entries = &self.entries;
            queue.ids.retain(|queued| entries.contains_key(queued));
        }
    }
}

fn check_expiry(
    transaction: &VerifiedTransaction,
    next_height: u64,
    now_unix_ms: i64,
) -> Result<(), AdmissionError> {
    let expiry = transaction.body.expiry;
    if let Some(last) = expiry.height {
        if last < next_height {
            return Err(AdmissionError::Expired {
                detail: format!(
                    "expires_at_height {last} is before the next block, height {next_height}"
                ),
            });
        }
    }
    if let Some(last) = expiry.unix_ms {
        if last < now_unix_ms {
            return Err(AdmissionError::Expired {
                detail: format!("expires_at_unix_ms {last} is before now ({now_unix_ms})"),
            });
        }
    }
    Ok(())
}

/// Refuses an expiry beyond the ledger's horizon: execution would refuse it too, and a
/// transaction refused that way is not remembered, so it must not reach a block at all.
fn check_horizon(
    limits: varde_ledger::replay::ReplayLimits,
    transaction: &VerifiedTransaction,
    next_height: u64,
    now_unix_ms: i64,
) -> Result<(), AdmissionError> {
    let expiry = transaction.body.expiry;
    if !varde_ledger::replay::beyond_horizon(limits, &expiry, next_height, now_unix_ms) {
        return Ok(());
    }
    Err(AdmissionError::ExpiryTooFar {
        detail: format!(
            "at most {} blocks after the next one or {} ms after now",
            limits.height_horizon, limits.time_horizon_ms
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::testing::{Fixture, anchor, anchor_for};

    fn limits(max_transactions: usize, max_bytes: usize) -> MempoolConfig {
        MempoolConfig {
            max_transactions,
            max_bytes,
        }
    }

    // A valid transaction is admitted once; the second submission is a duplicate.
    #[test]
    fn admits_once_and_refuses_duplicates() {
        let fixture = Fixture::new();
        let mut pool = Mempool::new(MempoolConfig::default());
        let transaction = fixture.sign(&fixture.hospital, anchor(&fixture, "r-1"));
        let id = pool.admit(&fixture.ledger, &transaction, 0).unwrap();
        assert!(pool.contains(&id));
        assert_eq!(
            pool.admit(&fixture.ledger, &transaction, 0),
            Err(AdmissionError::DuplicatePending { id })
        );
        assert_eq!(pool.len(), 1);
    }

    // Bad signatures, unknown signers and expired transactions never enter the pool.
    #[test]
    fn admission_runs_the_ledger_checks() {
        let fixture = Fixture::new();
        let mut pool = Mempool::new(MempoolConfig::default());
        let mut bad_signature = fixture.sign(&fixture.hospital, anchor(&fixture, "r-1"));
        bad_signature.signature[0] ^= 1;
        assert!(matches!(
            pool.admit(&fixture.ledger, &bad_signature, 0),
            Err(AdmissionError::Invalid(TransactionError::Signature(_)))
        ));
        let stranger = ed25519_dalek::SigningKey::from_bytes(&[99; 32]);
        let unknown = fixture.sign(&stranger, anchor(&fixture, "r-2"));
        assert_eq!(
            pool.admit(&fixture.ledger, &unknown, 0),
            Err(AdmissionError::UnknownSigner)
        );
        // The validator's consensus key is no submitting key: it may not anchor a record.
        let validator = crate::demo::DemoKeys::from_seed(1)
            .of(crate::demo::VALIDATOR)
            .clone();
        let by_validator_key = fixture.sign(&validator, anchor(&fixture, "r-4"));
        assert_eq!(
            pool.admit(&fixture.ledger, &by_validator_key, 0),
            Err(AdmissionError::UnknownSigner)
        );
        let mut body = anchor(&fixture, "r-3");
        body.expires_at_height = 0;
        body.expires_at_unix_ms = 1_000;
        let expired = fixture.sign(&fixture.hospital, body);
        assert!(matches!(
            pool.admit(&fixture.ledger, &expired, 2_000),
            Err(AdmissionError::Expired { .. })
        ));
        assert!(pool.is_empty());
    }

    // An expiry beyond the ledger's horizon (in height or in time) is refused at admission, as
    // execution would refuse it: such a transaction never reaches a block from this node.
    #[test]
    fn expiry_beyond_the_horizon_is_refused() {
        let fixture = Fixture::new();
        let horizon = fixture.ledger.replay_limits();
        let mut pool = Mempool::new(MempoolConfig::default());
        let mut by_height = anchor(&fixture, "r-1");
        by_height.expires_at_height = 1 + horizon.height_horizon + 1;
        let mut by_time = anchor(&fixture, "r-2");
        by_time.expires_at_height = 0;
        by_time.expires_at_unix_ms = 5_000 + horizon.time_horizon_ms + 1;
        for body in [by_height, by_time] {
            let far = fixture.sign(&fixture.hospital, body);
            let refused = pool.admit(&fixture.ledger, &far, 5_000);
            assert!(
                matches!(refused, Err(AdmissionError::ExpiryTooFar { .. })),
                "{refused:?}"
            );
        }
        let mut within = anchor(&fixture, "r-3");
        within.expires_at_height = 1 + horizon.height_horizon;
        let within = fixture.sign(&fixture.hospital, within);
        assert!(pool.admit(&fixture.ledger, &within, 5_000).is_ok());
    }

    // The count and byte bounds refuse further transactions with Full.
    #[test]
    fn bounds_by_count_and_bytes() {
        let fixture = Fixture::new();
        let mut pool = Mempool::new(limits(4, 1 << 20));
        for index in 0..2 {
            let transaction =
                fixture.sign(&fixture.hospital, anchor(&fixture, &format!("r-{index}")));
            pool.admit(&fixture.ledger, &transaction, 0).unwrap();
        }
        // Clients have half the pool; the rest is kept for the other validators' gossip.
        let third = fixture.sign(&fixture.hospital, anchor(&fixture, "r-3"));
        assert!(matches!(
            pool.admit(&fixture.ledger, &third, 0),
            Err(AdmissionError::Full {
                transactions: 2,
                ..
            })
        ));
        for index in 3..5 {
            let gossiped = fixture.sign(&fixture.hospital, anchor(&fixture, &format!("r-{index}")));
            let size = pool
                .precheck(&fixture.ledger, &gossiped, Origin::Peer)
                .unwrap();
            let verified =
                varde_ledger::wire::verify_envelope(fixture.ledger.chain_id(), gossiped).unwrap();
            pool.admit_verified(&fixture.ledger, verified, size, 0)
                .unwrap();
        }
        let fifth = fixture.sign(&fixture.hospital, anchor(&fixture, "r-5"));
        assert!(matches!(
            pool.precheck(&fixture.ledger, &fifth, Origin::Peer),
            Err(AdmissionError::Full {
                transactions: 4,
                ..
            })
        ));
        let first = fixture.sign(&fixture.hospital, anchor(&fixture, "b-0"));
        let size = first.encode_to_vec().len();
        let mut pool = Mempool::new(limits(100, 3 * size));
        pool.admit(&fixture.ledger, &first, 0).unwrap();
        let second = fixture.sign(&fixture.hospital, anchor(&fixture, "b-1"));
        assert!(matches!(
            pool.admit(&fixture.ledger, &second, 0),
            Err(AdmissionError::Full {
                transactions: 1,
                ..
            })
        ));
        assert_eq!(pool.size_bytes(), size);
    }

    // A signer with many transactions cannot crowd out another: blocks alternate between signers.
    #[test]
    fn blocks_are_filled_round_robin_across_signers() {
        let fixture = Fixture::new();
        let mut pool = Mempool::new(MempoolConfig::default());
        for index in 0..10 {
            let transaction =
                fixture.sign(&fixture.hospital, anchor(&fixture, &format!("h-{index}")));
            pool.admit(&fixture.ledger, &transaction, 0).unwrap();
        }
        let municipal = fixture.sign(
            &fixture.municipality,
            anchor_for(&fixture, crate::demo::MUNICIPALITY.org_number, "m-0"),
        );
        let municipal_id = pool.admit(&fixture.ledger, &municipal, 0).unwrap();
        let block = pool.select_for_block(2, usize::MAX);
        assert_eq!(block.len(), 2);
        assert!(block.contains(&municipal), "the quiet signer gets a place");
        // Signer order rotates: over two blocks of one transaction, both signers go first once.
        let first = pool.select_for_block(1, usize::MAX);
        let second = pool.select_for_block(1, usize::MAX);
        assert_ne!(first, second);
        pool.remove_committed([&municipal_id]);
        assert_eq!(pool.len(), 10);
        assert!(
            pool.select_for_block(100, usize::MAX).len() == 10,
            "everything left fits"
        );
    }

    // The block byte limit is respected; transactions that do not fit wait for a later block.
    #[test]
    fn block_byte_limit_is_respected() {
        let fixture = Fixture::new();
        let mut pool = Mempool::new(MempoolConfig::default());
        let mut size = 0;
        for index in 0..5 {
            let transaction =
                fixture.sign(&fixture.hospital, anchor(&fixture, &format!("r-{index}")));
            size = transaction.encode_to_vec().len();
            pool.admit(&fixture.ledger, &transaction, 0).unwrap();
        }
        assert_eq!(pool.select_for_block(100, size * 3).len(), 3);
    }

    // Removing transactions out of arrival order (as blocks from other proposers do) leaves the
    // rest selectable in arrival order, with the counts right.
    #[test]
    fn removal_out_of_arrival_order_keeps_the_queues_right() {
        let fixture = Fixture::new();
        let mut pool = Mempool::new(MempoolConfig::default());
        let mut waiting = Vec::new();
        for index in 0..200 {
            let transaction =
                fixture.sign(&fixture.hospital, anchor(&fixture, &format!("o-{index}")));
            let id = pool.admit(&fixture.ledger, &transaction, 0).unwrap();
            waiting.push((id, transaction));
        }
        let (odd, even): (Vec<_>, Vec<_>) = waiting
            .into_iter()
            .enumerate()
            .partition(|(index, _)| index % 2 == 1);
        pool.remove_committed(odd.iter().rev().map(|(_, (id, _))| id));
        let expected: Vec<_> = even
            .iter()
            .map(|(_, (_, transaction))| transaction.clone())
            .collect();
        assert_eq!(pool.select_for_block(1_000, usize::MAX), expected);
        assert_eq!(pool.len(), 100);
        pool.remove_committed(even.iter().map(|(_, (id, _))| id));
        assert!(pool.is_empty());
        assert_eq!(pool.size_bytes(), 0);
        assert!(pool.select_for_block(1_000, usize::MAX).is_empty());
        let again = fixture.sign(&fixture.hospital, anchor(&fixture, "o-again"));
        pool.admit(&fixture.ledger, &again, 0).unwrap();
        assert_eq!(pool.select_for_block(1_000, usize::MAX), vec![again]);
    }

    // A full pool refuses before any signature is verified: overload is refused cheaply.
    #[test]
    fn a_full_pool_refuses_before_verifying() {
        let fixture = Fixture::new();
        let mut pool = Mempool::new(limits(2, 1 << 20));
        let first = fixture.sign(&fixture.hospital, anchor(&fixture, "f-1"));
        pool.admit(&fixture.ledger, &first, 0).unwrap();
        let mut forged = fixture.sign(&fixture.hospital, anchor(&fixture, "f-2"));
        forged.signature[0] ^= 1;
        assert!(matches!(
            pool.admit(&fixture.ledger, &forged, 0),
            Err(AdmissionError::Full { .. })
        ));
    }

    // Expired transactions are dropped by height and by time; committed ones by id.
    #[test]
    fn expired_and_committed_are_removed() {
        let fixture = Fixture::new();
        let mut pool = Mempool::new(MempoolConfig::default());
        let mut body = anchor(&fixture, "r-1");
        body.expires_at_height = 5;
        let by_height = pool
            .admit(&fixture.ledger, &fixture.sign(&fixture.hospital, body), 0)
            .unwrap();
        let mut body = anchor(&fixture, "r-2");
        body.expires_at_height = 0;
        body.expires_at_unix_ms = 10_000;
        let by_time = pool
            .admit(&fixture.ledger, &fixture.sign(&fixture.hospital, body), 0)
            .unwrap();
        assert_eq!(pool.remove_expired(5, 10_000), 0);
        assert_eq!(pool.remove_expired(6, 10_000), 1);
        assert!(!pool.contains(&by_height));
        assert_eq!(pool.remove_expired(6, 10_001), 1);
        assert!(!pool.contains(&by_time));
        assert_eq!(pool.size_bytes(), 0);
    }
}
