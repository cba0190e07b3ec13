//! Authentication of signed requests (`varde-query-v2`, `query_service.proto`): the signature,
//! its time, the caller's membership, and replay protection by nonce.
//!
//! A request is accepted only within [`QUERY_CLOCK_SKEW_MAX_MS`] of the node's clock, and a
//! (key, nonce) pair only once: the registry remembers each accepted pair until its signature
//! time has fallen out of that window, after which the time check refuses it anyway. The
//! registry is bounded in total and per key, so no caller can grow the node's memory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use tonic::Status;
use varde_ledger::Ledger;
use varde_ledger::membership::Institution;
use varde_proto::v1;
use varde_storage::Store;

use crate::context::now_unix_ms;

/// How far a signature's time may be from the node's clock, either way.
pub const QUERY_CLOCK_SKEW_MAX_MS: i64 = 5 * 60 * 1_000;
/// The most (key, nonce) pairs remembered at once (about 100 bytes each).
const REMEMBERED_NONCES_MAX: usize = 1 << 20;
/// The most pairs remembered for one key: one caller cannot crowd out the others.
const REMEMBERED_NONCES_PER_KEY_MAX: usize = 1 << 17;

type NonceEntry = ([u8; 32], Vec<u8>);

#[derive(Default)]
struct NonceRegistry {
    seen: HashSet<NonceEntry>,
    /// (forget after, sequence) → entry: the pairs in the order they may be forgotten.
    by_expiry: BTreeMap<(i64, u64), NonceEntry>,
    per_key: HashMap<[u8; 32], usize>,
    sequence: u64,
}

#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    Replayed,
    Full,
}

impl NonceRegistry {
    fn forget_expired(&mut self, now_unix_ms: i64) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if entry.key().0 >= now_unix_ms {
                break;
            }
            let (key, nonce) = entry.remove();
            if let Some(count) = self.per_key.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    self.per_key.remove(&key);
                }
            }
            self.seen.remove(&(key, nonce));
        }
    }

    fn admit(
        &mut self,
        key: [u8; 32],
        nonce: &[u8],
        signed_at_unix_ms: i64,
        now_unix_ms: i64,
    ) -> Result<(), Refusal> {
        self.forget_expired(now_unix_ms);
        let entry = (key, nonce.to_vec());
        if self.seen.contains(&entry) {
            return Err(Refusal::Replayed);
        }
        let per_key = self.per_key.get(&key).copied().unwrap_or(0);
        if self.seen.len() >= REMEMBERED_NONCES_MAX || per_key >= REMEMBERED_NONCES_PER_KEY_MAX {
            return Err(Refusal::Full);
        }
        let forget_after = signed_at_unix_ms.saturating_add(QUERY_CLOCK_SKEW_MAX_MS);
        self.sequence += 1;
        self.by_expiry
            .insert((forget_after, self.sequence), entry.clone());
        self.seen.insert(entry);
        *self.per_key.entry(key).or_insert(0) += 1;
        Ok(())
    }
}

/// Checks signed requests for every service.
#[derive(Default)]
pub struct Authenticator {
    nonces: Mutex<NonceRegistry>,
}

impl Authenticator {
    pub fn new() -> Self {
        Self::default()
    }

    /// The member institution that signed `request_bytes` (the request without its `auth`) for
    /// `method`, once its signature, time and nonce pass.
    pub fn authenticate<S: Store>(
        &self,
        ledger: &Ledger<S>,
        method: &str,
        auth: Option<&v1::RequestAuthentication>,
        request_bytes: &[u8],
    ) -> Result<Institution, Status> {
        let auth = auth.ok_or_else(|| {
            Status::unauthenticated(
                "field `auth` is required: sign the request with a member key (varde-query-v2)",
            )
        })?;
        let now = now_unix_ms();
        let skew = auth.signed_at_unix_ms.saturating_sub(now).saturating_abs();
        if skew > QUERY_CLOCK_SKEW_MAX_MS {
            return Err(Status::unauthenticated(format!(
                "auth.signed_at_unix_ms is {skew} ms away from the node's clock (at most {QUERY_CLOCK_SKEW_MAX_MS}); sign again with the current time"
            )));
        }
        let verifying_key =
            varde_ledger::signing::verify_query(ledger.chain_id(), method, auth, request_bytes)
                .map_err(|error| {
                    Status::unauthenticated(format!(
                        "the request signature does not verify: {error}"
                    ))
                })?;
        let key = verifying_key.to_bytes();
        let institution = ledger
            .membership()
            .reader_for(&key, method)
            .cloned()
            .ok_or_else(|| {
                Status::permission_denied(
                    "the signing key is not registered to any member institution",
                )
            })?;
        let admitted = self.nonces.lock().expect("nonce registry lock").admit(
            key,
            &auth.nonce,
            auth.signed_at_unix_ms,
            now,
        );
        match admitted {
            Ok(()) => Ok(institution),
            Err(Refusal::Replayed) => Err(Status::unauthenticated(
                "this signed request was already used (its nonce was seen); sign every request \
                 with a fresh nonce",
            )),
            Err(Refusal::Full) => Err(Status::resource_exhausted(
                "too many signed requests in the last minutes; retry shortly",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A pair is refused while remembered, and forgotten once its time has left the window.
    #[test]
    fn a_nonce_is_accepted_once_within_the_window() {
        let mut registry = NonceRegistry::default();
        let key = [1u8; 32];
        assert_eq!(
            registry.admit(key, b"nonce-0000000001", 1_000, 1_000),
            Ok(())
        );
        assert_eq!(
            registry.admit(key, b"nonce-0000000001", 1_000, 2_000),
            Err(Refusal::Replayed)
        );
        // Another key may use the same nonce; the same key another nonce.
        assert_eq!(
            registry.admit([2u8; 32], b"nonce-0000000001", 1_000, 2_000),
            Ok(())
        );
        assert_eq!(
            registry.admit(key, b"nonce-0000000002", 1_000, 2_000),
            Ok(())
        );
        let later = 1_000 + QUERY_CLOCK_SKEW_MAX_MS + 1;
        registry.forget_expired(later);
        assert!(registry.seen.is_empty());
        assert!(registry.per_key.is_empty());
        assert!(registry.by_expiry.is_empty());
    }

    // One key cannot hold more than its share of the registry.
    #[test]
    fn one_key_is_bounded() {
        let mut registry = NonceRegistry::default();
        let key = [3u8; 32];
        for count in 0..REMEMBERED_NONCES_PER_KEY_MAX as u64 {
            registry
                .admit(key, &count.to_be_bytes(), 1_000, 1_000)
                .unwrap();
        }
        assert_eq!(
            registry.admit(key, b"one more", 1_000, 1_000),
            Err(Refusal::Full)
        );
        assert_eq!(
            registry.admit([4u8; 32], b"other key", 1_000, 1_000),
            Ok(())
        );
    }
}
