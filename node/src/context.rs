//! What the node's tasks share: the ledger, the mempool, the committed-block broadcast and the
//! metrics. Each part documents who writes it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, OnceLock};

use tokio::sync::{Notify, broadcast, mpsc};
use varde_ledger::Ledger;
use varde_ledger::signing::TransactionId;
use varde_proto::v1;
use varde_storage::Store;

use crate::events::CommittedBlock;
use crate::mempool::{AdmissionError, Mempool, Origin};
use crate::metrics::Metrics;
use crate::waiters::CommitWaiters;

/// How many committed blocks a slow subscriber may lag before it must resume from storage.
pub const COMMITTED_CHANNEL_CAPACITY: usize = 256;

pub struct NodeContext<S: Store> {
    /// Read by every task; written only by the consensus driver (`execute_block` + `commit`).
    pub ledger: Ledger<S>,
    /// Admission from gRPC, selection and removal by the driver. Held only for short, non-async
    /// sections (never across an `.await`).
    pub mempool: Mutex<Mempool>,
    /// Signalled after each admission, so a waiting proposer can propose at once.
    pub mempool_changed: Notify,
    /// Each committed block, after it is durable. Sent only by the driver.
    pub committed: broadcast::Sender<std::sync::Arc<CommittedBlock>>,
    /// SubmitAndWait's callers by transaction id; woken by the driver after each commit.
    pub commit_waiters: CommitWaiters,
    pub metrics: std::sync::Arc<Metrics>,
    /// The consensus key this node signs with (a rotation by governance changes it).
    node_public_key: Mutex<[u8; 32]>,
    /// Admitted transactions to gossip to the other validators; set once by the network, absent
    /// for a single validator.
    pub transaction_gossip: OnceLock<mpsc::Sender<v1::SignedTransaction>>,
}

impl<S: Store> NodeContext<S> {
    /// Admits a transaction submitted to this node (by a client, or by this validator itself),
    /// wakes a waiting proposer and hands the transaction to the network for gossip.
    pub fn admit_and_gossip(
        &self,
        transaction: v1::SignedTransaction,
    ) -> Result<TransactionId, AdmissionError> {
        // The signature is verified outside the lock, after the checks that cost nothing
        // (room, duplicates), so that an overloaded node refuses early and cheaply and
        // admissions on other connections do not queue behind the curve arithmetic.
        let size_bytes = self.mempool.lock().expect("mempool lock").precheck(
            &self.ledger,
            &transaction,
            Origin::Client,
        )?;
        let verified =
            varde_ledger::wire::verify_envelope(self.ledger.chain_id(), transaction.clone())?;
        let id = {
            let mut mempool = self.mempool.lock().expect("mempool lock");
            let result = mempool.admit_verified(&self.ledger, verified, size_bytes, now_unix_ms());
            self.metrics.mempool_transactions.set(mempool.len() as i64);
            result?
        };
        self.mempool_changed.notify_one();
        if let Some(gossip) = self.transaction_gossip.get() {
            // A full queue only means the others learn of it from this node's block.
            let _ = gossip.try_send(transaction);
        }
        Ok(id)
    }

    pub fn new(ledger: Ledger<S>, mempool: Mempool, node_public_key: [u8; 32]) -> Self {
        let (committed, _) = broadcast::channel(COMMITTED_CHANNEL_CAPACITY);
        Self {
            ledger,
            mempool: Mutex::new(mempool),
            mempool_changed: Notify::new(),
            committed,
            commit_waiters: CommitWaiters::default(),
            metrics: std::sync::Arc::new(Metrics::new()),
            node_public_key: Mutex::new(node_public_key),
            transaction_gossip: OnceLock::new(),
        }
    }

    /// The consensus key this node signs with now.
    pub fn node_public_key(&self) -> [u8; 32] {
        *self
            .node_public_key
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn set_node_public_key(&self, key: [u8; 32]) {
        *self
            .node_public_key
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = key;
    }
}

/// A test-only skew of this process's clock (`[testing] clock_offset_ms`); stays 0 unless
/// varde-node is built with the feature `byzantine-test`.
static CLOCK_OFFSET_MS: AtomicI64 = AtomicI64::new(0);

/// Skews [`now_unix_ms`] by `offset_ms` (feature `byzantine-test` only; otherwise no effect).
pub fn set_clock_offset_ms(offset_ms: i64) {
    if cfg!(feature = "byzantine-test") {
        CLOCK_OFFSET_MS.store(offset_ms, Ordering::Relaxed);
    }
}

/// Wall-clock time in Unix milliseconds.
pub fn now_unix_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64);
    now.saturating_add(CLOCK_OFFSET_MS.load(Ordering::Relaxed))
}

/// The first 8 bytes of a hash in hex: enough to recognise it in a log, too short to be an index.
pub fn short_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
