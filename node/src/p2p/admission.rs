//! Admission of gossiped transactions, off the swarm's task: verifying a frame's signatures
//! takes milliseconds, and consensus messages must not queue behind it. One worker thread takes
//! frames in arrival order; a peer whose frame holds an invalid transaction is reported back to
//! the swarm's task, which cuts it.

use std::sync::Arc;

use bytes::Bytes;
use libp2p::PeerId;
use prost::Message as _;
use tokio::sync::mpsc;
use varde_proto::v1;
use varde_storage::Store;

use super::frames::PeerFault;
use crate::context::{NodeContext, now_unix_ms};
use crate::mempool::{AdmissionError, Origin};

/// Gossip frames waiting for the worker; beyond it a frame is dropped (its transactions still
/// reach this node in the proposals that carry them).
pub const FRAMES_WAITING_MAX: usize = 64;

/// The swarm task's side: hands frames over, learns of faulty peers.
pub struct GossipAdmission {
    frames: mpsc::Sender<(PeerId, Bytes)>,
    pub faults: mpsc::UnboundedReceiver<(PeerId, PeerFault)>,
}

impl GossipAdmission {
    /// Starts the worker on its own thread; it stops when this side is dropped.
    pub fn start<S: Store + 'static>(context: Arc<NodeContext<S>>) -> std::io::Result<Self> {
        let (frames, mut waiting) = mpsc::channel::<(PeerId, Bytes)>(FRAMES_WAITING_MAX);
        let (report, faults) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("gossip-admission".to_owned())
            .spawn(move || {
                while let Some((peer, frame)) = waiting.blocking_recv() {
                    if let Err(fault) = admit(&context, &frame) {
                        if report.send((peer, fault)).is_err() {
                            return;
                        }
                    }
                }
            })?;
        Ok(Self { frames, faults })
    }

    /// Queues `peer`'s frame; false if the worker is behind and the frame was dropped.
    pub fn submit(&self, peer: PeerId, frame: Bytes) -> bool {
        self.frames.try_send((peer, frame)).is_ok()
    }
}

/// Admits a frame's transactions: cheap checks under the mempool's lock, signatures outside
/// it, then insertion under it again. Each signature is verified here, once.
fn admit<S: Store>(context: &NodeContext<S>, frame: &[u8]) -> Result<(), PeerFault> {
    let batch = v1::TransactionBatch::decode(frame)?;
    let ledger = &context.ledger;
    let mut checked = Vec::with_capacity(batch.transactions.len());
    {
        let mempool = context.mempool.lock().expect("mempool lock");
        for transaction in batch.transactions {
            // Already known or no room: skipped without verifying.
            if let Ok(size_bytes) = mempool.precheck(ledger, &transaction, Origin::Peer) {
                checked.push((transaction, size_bytes));
            }
        }
    }
    let mut fault = None;
    let mut verified = Vec::with_capacity(checked.len());
    for (transaction, size_bytes) in checked {
        match varde_ledger::wire::verify_envelope(ledger.chain_id(), transaction) {
            Ok(transaction) => verified.push((transaction, size_bytes)),
            Err(error) => {
                fault = Some(PeerFault::Transaction(AdmissionError::Invalid(error)));
                break;
            }
        }
    }
    let now = now_unix_ms();
    let mut admitted = 0usize;
    {
        let mut mempool = context.mempool.lock().expect("mempool lock");
        for (transaction, size_bytes) in verified {
            match mempool.admit_verified(ledger, transaction, size_bytes, now) {
                Ok(_) => admitted += 1,
                Err(error @ AdmissionError::UnknownSigner) => {
                    fault.get_or_insert(PeerFault::Transaction(error));
                    break;
                }
                // Already known, committed meanwhile, expired in flight, or no room.
                Err(_) => {}
            }
        }
        context
            .metrics
            .mempool_transactions
            .set(mempool.len() as i64);
    }
    if admitted > 0 {
        context.mempool_changed.notify_one();
    }
    fault.map_or(Ok(()), Err)
}
