//! What a simulated node keeps across crashes, and the effects through which the core reaches the
//! world: persisting the safety state, sending, committing. A [`Fuse`] armed by the scenario blows
//! at the k-th effect of a step, so a node can die between persist and send, between send and
//! apply, or on a failed storage write; the effect that blows and every later one is lost.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use varde_consensus::{
    Decision, Height, Message, SafetyState, SigningKey, ValidatorSet, VerifyingKey,
};
use varde_node_core::{Network, SafetyStore};
use varde_storage::{Column, Entry, MemoryStore, StorageError, Store, WriteBatch};

/// Counts down the effects a node may still carry out (below zero while disarmed). Atomic only
/// because the ledger's store must be `Sync`; a run is single-threaded.
#[derive(Clone)]
pub struct Fuse {
    remaining: Arc<AtomicI64>,
    blown: Arc<AtomicBool>,
}

impl Default for Fuse {
    fn default() -> Self {
        Self {
            remaining: Arc::new(AtomicI64::new(-1)),
            blown: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Fuse {
    /// The node dies at its `effects`-th effect from now (1 = the next one).
    pub fn arm(&self, effects: u32) {
        self.remaining
            .store(i64::from(effects.max(1)), Ordering::Relaxed);
    }

    /// Whether the next effect may happen; false once the fuse has blown.
    pub fn allows(&self) -> bool {
        if self.blown() {
            return false;
        }
        match self.remaining.load(Ordering::Relaxed) {
            left if left < 0 => true,
            1 => {
                self.blown.store(true, Ordering::Relaxed);
                false
            }
            left => {
                self.remaining.store(left - 1, Ordering::Relaxed);
                true
            }
        }
    }

    pub fn blown(&self) -> bool {
        self.blown.load(Ordering::Relaxed)
    }
}

/// The simulated node's disk: what survives a crash.
#[derive(Default)]
pub struct Disk {
    pub safety: Option<SafetyState>,
    /// The committed chain, as block sync serves it.
    pub chain: Vec<Decision>,
    /// The ledger's database, for runs of the real ledger.
    pub store: Arc<MemoryStore>,
}

pub type SharedDisk = Rc<RefCell<Disk>>;

#[derive(Debug, thiserror::Error)]
#[error("the simulated node crashed")]
pub struct Crashed;

/// The safety state on the simulated disk.
pub struct SimSafety {
    pub disk: SharedDisk,
    pub fuse: Fuse,
}

impl SafetyStore for SimSafety {
    type Error = Crashed;

    fn persist(&mut self, state: &SafetyState) -> Result<(), Crashed> {
        if !self.fuse.allows() {
            return Err(Crashed);
        }
        self.disk.borrow_mut().safety = Some(state.clone());
        Ok(())
    }
}

/// What a node's core handed its network during one step, for the world to deliver.
#[derive(Debug)]
pub enum Outgoing {
    Broadcast(Vec<Message>),
    SyncRequest(Height),
    /// The node moves to a new set at the coming height boundary: from here on its consensus
    /// messages go to that set's nodes, and it is reached under its key of that set.
    ValidatorsChanged(Box<SetChange>),
}

#[derive(Debug)]
pub struct SetChange {
    pub validators: ValidatorSet,
    pub own_key: VerifyingKey,
}

pub struct SimNetwork {
    pub outbox: Rc<RefCell<Vec<Outgoing>>>,
    pub fuse: Fuse,
}

impl Network for SimNetwork {
    fn broadcast(&mut self, messages: &[Message]) {
        if self.fuse.allows() {
            self.outbox
                .borrow_mut()
                .push(Outgoing::Broadcast(messages.to_vec()));
        }
    }

    fn request_sync(&mut self, from_height: Height) {
        if !self.fuse.blown() {
            self.outbox
                .borrow_mut()
                .push(Outgoing::SyncRequest(from_height));
        }
    }

    /// Kept in order with the messages around it: those sent before the boundary go to the old
    /// set, those after to the new one.
    fn validators_changed(&mut self, validators: &ValidatorSet, own_key: &SigningKey) {
        if !self.fuse.blown() {
            self.outbox
                .borrow_mut()
                .push(Outgoing::ValidatorsChanged(Box::new(SetChange {
                    validators: validators.clone(),
                    own_key: own_key.verifying_key(),
                })));
        }
    }
}

/// The ledger's store behind the fuse: a write at the blowing effect fails, as a full disk or a
/// dying machine would, and nothing of it is written.
pub struct FaultyStore {
    pub inner: Arc<MemoryStore>,
    pub fuse: Fuse,
}

impl Store for FaultyStore {
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(column, key)
    }

    fn scan_prefix(
        &self,
        column: Column,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        self.inner.scan_prefix(column, prefix, start_after, limit)
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        if !self.fuse.allows() {
            return Err(StorageError::Io {
                operation: "write",
                detail: "the simulated disk failed".to_owned(),
            });
        }
        self.inner.write(batch)
    }
}
