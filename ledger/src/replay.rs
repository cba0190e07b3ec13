//! Expiry-based replay protection with bounded state.
//!
//! Every body names an expiry (a last height, a last block time, or both). A transaction is
//! refused when its expiry has passed at the executing block, when its expiry lies beyond the
//! horizon, or when its id is remembered. Ids are remembered in `Column::Meta` until their
//! earliest expiry passes and are then forgotten: once forgotten, the transaction is expired and
//! refused for that reason. So the remembered set holds at most the transactions of one horizon.
//! This relies on block heights increasing and block times never decreasing (checked by
//! [`crate::Ledger`]).

use varde_storage::{Column, Store};

use crate::domain::Expiry;
use crate::signing::TransactionId;
use crate::state::{StateError, StateView};

const ID_PREFIX: &[u8] = b"replay/id/";
const BY_HEIGHT_PREFIX: &[u8] = b"replay/height/";
const BY_TIME_PREFIX: &[u8] = b"replay/time/";

/// How far ahead an expiry may lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayLimits {
    pub height_horizon: u64,
    pub time_horizon_ms: i64,
}

impl Default for ReplayLimits {
    fn default() -> Self {
        Self {
            height_horizon: 100_000,
            time_horizon_ms: 24 * 60 * 60 * 1000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayRefusal {
    Expired,
    TooFar,
    Duplicate,
}

/// Whether a transaction with `id` and `expiry` may execute at `height` and `time_unix_ms`.
pub fn check<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    limits: ReplayLimits,
    id: &TransactionId,
    expiry: &Expiry,
    height: u64,
    time_unix_ms: i64,
) -> Result<Result<(), ReplayRefusal>, StateError> {
    if expiry.height.is_some_and(|last| height > last)
        || expiry.unix_ms.is_some_and(|last| time_unix_ms > last)
    {
        return Ok(Err(ReplayRefusal::Expired));
    }
    if beyond_horizon(limits, expiry, height, time_unix_ms) {
        return Ok(Err(ReplayRefusal::TooFar));
    }
    if view.get(Column::Meta, &id_key(id))?.is_some() {
        return Ok(Err(ReplayRefusal::Duplicate));
    }
    Ok(Ok(()))
}

/// Whether `expiry` lies further ahead of `height` or `time_unix_ms` than `limits` allow. The
/// mempool asks the same at admission, so that no honest proposer includes such a transaction.
pub fn beyond_horizon(
    limits: ReplayLimits,
    expiry: &Expiry,
    height: u64,
    time_unix_ms: i64,
) -> bool {
    expiry
        .height
        .is_some_and(|last| last.saturating_sub(height) > limits.height_horizon)
        || expiry
            .unix_ms
            .is_some_and(|last| last.saturating_sub(time_unix_ms) > limits.time_horizon_ms)
}

/// Remembers `id` until its expiry passes.
pub fn remember<S: Store + ?Sized>(
    view: &mut StateView<'_, S>,
    id: &TransactionId,
    expiry: &Expiry,
) {
    view.put_value(Column::Meta, id_key(id), expiry);
    if let Some(height) = expiry.height {
        view.put(Column::Meta, height_key(height, id), Vec::new());
    }
    if let Some(unix_ms) = expiry.unix_ms {
        view.put(Column::Meta, time_key(unix_ms, id), Vec::new());
    }
}

/// Forgets every id whose expiry has passed at `height` and `time_unix_ms`.
pub fn forget_expired<S: Store + ?Sized>(
    view: &mut StateView<'_, S>,
    height: u64,
    time_unix_ms: i64,
) -> Result<usize, StateError> {
    // The indexes are ordered by expiry: only the expired front is read, however many ids wait.
    let mut expired: Vec<TransactionId> = Vec::new();
    let height_bound = [BY_HEIGHT_PREFIX, &height.to_be_bytes()].concat();
    for (key, _) in view.scan_before(Column::Meta, BY_HEIGHT_PREFIX, &height_bound)? {
        expired.push(split_ordered_key(BY_HEIGHT_PREFIX, &key)?.1);
    }
    let time_bound = [BY_TIME_PREFIX, &ordered_time(time_unix_ms).to_be_bytes()].concat();
    for (key, _) in view.scan_before(Column::Meta, BY_TIME_PREFIX, &time_bound)? {
        expired.push(split_ordered_key(BY_TIME_PREFIX, &key)?.1);
    }
    expired.sort();
    expired.dedup();
    for id in &expired {
        if let Some(expiry) = view.get_value::<Expiry>(Column::Meta, &id_key(id))? {
            if let Some(height) = expiry.height {
                view.delete(Column::Meta, height_key(height, id));
            }
            if let Some(unix_ms) = expiry.unix_ms {
                view.delete(Column::Meta, time_key(unix_ms, id));
            }
        }
        view.delete(Column::Meta, id_key(id));
    }
    Ok(expired.len())
}

/// How many ids are remembered (for tests and metrics).
pub fn remembered_count<S: Store + ?Sized>(view: &StateView<'_, S>) -> Result<usize, StateError> {
    Ok(view.scan_all(Column::Meta, ID_PREFIX)?.len())
}

fn id_key(id: &TransactionId) -> Vec<u8> {
    [ID_PREFIX, &id.0].concat()
}

fn height_key(height: u64, id: &TransactionId) -> Vec<u8> {
    [BY_HEIGHT_PREFIX, &height.to_be_bytes(), &id.0].concat()
}

/// Maps i64 onto u64 preserving order, so big-endian bytes sort like the numbers.
fn ordered_time(unix_ms: i64) -> u64 {
    (unix_ms as u64) ^ (1 << 63)
}

fn time_key(unix_ms: i64, id: &TransactionId) -> Vec<u8> {
    [BY_TIME_PREFIX, &ordered_time(unix_ms).to_be_bytes(), &id.0].concat()
}

fn split_ordered_key(prefix: &[u8], key: &[u8]) -> Result<(u64, TransactionId), StateError> {
    let rest = &key[prefix.len()..];
    let corrupt = || StateError::Corrupt {
        column: Column::Meta,
        detail: "a replay index key has the wrong length".to_owned(),
    };
    if rest.len() != 40 {
        return Err(corrupt());
    }
    let value = u64::from_be_bytes(rest[..8].try_into().map_err(|_| corrupt())?);
    let id = TransactionId::from_slice(&rest[8..]).ok_or_else(corrupt)?;
    Ok((value, id))
}

#[cfg(test)]
mod tests {
    use varde_storage::MemoryStore;

    use super::*;

    fn id(byte: u8) -> TransactionId {
        TransactionId([byte; 32])
    }

    // Expired, too-far and remembered transactions are refused; a fresh one passes.
    #[test]
    fn refuses_expired_too_far_and_duplicates() {
        let store = MemoryStore::new();
        let mut view = StateView::new(&store);
        let limits = ReplayLimits {
            height_horizon: 10,
            time_horizon_ms: 1_000,
        };
        let by_height = Expiry {
            height: Some(5),
            unix_ms: None,
        };
        assert_eq!(
            check(&view, limits, &id(1), &by_height, 5, 0).unwrap(),
            Ok(())
        );
        assert_eq!(
            check(&view, limits, &id(1), &by_height, 6, 0).unwrap(),
            Err(ReplayRefusal::Expired)
        );
        let far = Expiry {
            height: Some(100),
            unix_ms: None,
        };
        assert_eq!(
            check(&view, limits, &id(1), &far, 5, 0).unwrap(),
            Err(ReplayRefusal::TooFar)
        );
        let by_time = Expiry {
            height: None,
            unix_ms: Some(1_500),
        };
        assert_eq!(
            check(&view, limits, &id(1), &by_time, 1, 1_501).unwrap(),
            Err(ReplayRefusal::Expired)
        );
        assert_eq!(
            check(&view, limits, &id(1), &by_time, 1, 100).unwrap(),
            Err(ReplayRefusal::TooFar)
        );
        remember(&mut view, &id(1), &by_height);
        assert_eq!(
            check(&view, limits, &id(1), &by_height, 4, 0).unwrap(),
            Err(ReplayRefusal::Duplicate)
        );
    }

    // Ids are forgotten once either expiry passes, so the remembered set stays bounded.
    #[test]
    fn forgets_ids_after_expiry() {
        let store = MemoryStore::new();
        let mut view = StateView::new(&store);
        remember(
            &mut view,
            &id(1),
            &Expiry {
                height: Some(5),
                unix_ms: None,
            },
        );
        remember(
            &mut view,
            &id(2),
            &Expiry {
                height: Some(9),
                unix_ms: Some(-50),
            },
        );
        remember(
            &mut view,
            &id(3),
            &Expiry {
                height: None,
                unix_ms: Some(2_000),
            },
        );
        assert_eq!(remembered_count(&view).unwrap(), 3);
        // Height 5: id 1 still includable at 5, nothing forgotten by height; time 0 passes id 2.
        assert_eq!(forget_expired(&mut view, 5, 0).unwrap(), 1);
        assert_eq!(remembered_count(&view).unwrap(), 2);
        assert_eq!(forget_expired(&mut view, 6, 0).unwrap(), 1);
        assert_eq!(forget_expired(&mut view, 7, 2_001).unwrap(), 1);
        assert_eq!(remembered_count(&view).unwrap(), 0);
        assert!(view.scan_all(Column::Meta, b"replay/").unwrap().is_empty());
    }

    /// Counts the entries the store hands out.
    struct CountingStore {
        inner: MemoryStore,
        read: std::sync::atomic::AtomicUsize,
    }

    impl Store for CountingStore {
        fn get(
            &self,
            column: Column,
            key: &[u8],
        ) -> Result<Option<Vec<u8>>, varde_storage::StorageError> {
            self.inner.get(column, key)
        }

        fn scan_prefix(
            &self,
            column: Column,
            prefix: &[u8],
            start_after: Option<&[u8]>,
            limit: usize,
        ) -> Result<Vec<varde_storage::Entry>, varde_storage::StorageError> {
            let page = self.inner.scan_prefix(column, prefix, start_after, limit)?;
            self.read
                .fetch_add(page.len(), std::sync::atomic::Ordering::Relaxed);
            Ok(page)
        }

        fn write(
            &self,
            batch: varde_storage::WriteBatch,
        ) -> Result<(), varde_storage::StorageError> {
            self.inner.write(batch)
        }
    }

    // Forgetting reads the expired front of the indexes only: with thousands of ids waiting, a
    // block that expires two reads a page at most, not the whole index.
    #[test]
    fn forgetting_reads_only_the_expired_front() {
        let store = CountingStore {
            inner: MemoryStore::new(),
            read: Default::default(),
        };
        let mut view = StateView::new(&store);
        for index in 0..3_000u32 {
            let mut bytes = [0u8; 32];
            bytes[..4].copy_from_slice(&index.to_be_bytes());
            let expiry = Expiry {
                height: Some(if index < 2 { 5 } else { 1_000 }),
                unix_ms: Some(10_000_000),
            };
            remember(&mut view, &TransactionId(bytes), &expiry);
        }
        store.inner.write(view.into_batch()).unwrap();
        let mut view = StateView::new(&store);
        assert_eq!(forget_expired(&mut view, 6, 0).unwrap(), 2);
        let read = store.read.load(std::sync::atomic::Ordering::Relaxed);
        assert!(read <= 2 * 256, "{read} index entries read");
        store.inner.write(view.into_batch()).unwrap();
        assert_eq!(remembered_count(&StateView::new(&store)).unwrap(), 2_998);
    }
}
