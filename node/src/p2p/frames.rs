//! What peers' frames mean: decoding them into consensus values (through
//! `varde_ledger::peer_frames`; a fault names what was wrong with a peer's frame) and reading
//! committed blocks for a sync request.

use varde_consensus::{Block, CommitCertificate, Height, Message};
use varde_ledger::peer_frames::{self, FrameError};
use varde_ledger::{Ledger, consensus_wire};
use varde_proto::v1;
use varde_storage::{Column, Store};

use super::codec::Frame;
use super::{SYNC_BLOCKS_MAX, SYNC_RESPONSE_BUDGET_BYTES};
use crate::mempool::AdmissionError;

/// Why a peer's frame was refused; the peer is cut.
#[derive(Debug, thiserror::Error)]
pub enum PeerFault {
    #[error("undecodable frame: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("malformed value: {0}")]
    Wire(#[from] consensus_wire::WireError),
    #[error("invalid transaction: {0}")]
    Transaction(AdmissionError),
    #[error("a consensus message whose signature does not verify")]
    BadSignature,
    #[error("a consensus message from a peer that is no validator")]
    NotAValidator,
    #[error("a response nobody asked for")]
    Unsolicited,
    #[error("a frame of {length} bytes exceeds the limit of {limit}")]
    Oversized { length: usize, limit: usize },
}

impl From<FrameError> for PeerFault {
    fn from(error: FrameError) -> Self {
        match error {
            FrameError::Decode(error) => Self::Decode(error),
            FrameError::Wire(error) => Self::Wire(error),
        }
    }
}

/// The bytes of a frame that respected its protocol's limit.
pub fn frame_bytes(frame: &Frame) -> Result<&[u8], PeerFault> {
    match frame {
        Frame::Bytes(bytes) => Ok(bytes),
        Frame::Oversized { length, limit } => Err(PeerFault::Oversized {
            length: *length,
            limit: *limit,
        }),
    }
}

/// Reads consecutive committed blocks with their certificates for a peer.
pub fn read_blocks<S: Store>(
    ledger: &Ledger<S>,
    request: &v1::SyncRequest,
) -> anyhow::Result<v1::SyncResponse> {
    let head_height = ledger.head()?.map_or(0, |head| head.height);
    let store = ledger.store();
    let mut blocks = Vec::new();
    let mut bytes = 0usize;
    let count = u64::from(request.max_blocks.clamp(1, SYNC_BLOCKS_MAX));
    let mut height = request.from_height.max(1);
    while height <= head_height
        && height < request.from_height.max(1).saturating_add(count)
        && bytes < SYNC_RESPONSE_BUDGET_BYTES
    {
        let key = height.to_be_bytes();
        let (Some(block), Some(certificate)) = (
            store.get(Column::Blocks, &key)?,
            ledger.certificate(height)?,
        ) else {
            break;
        };
        bytes += block.len();
        blocks.push(v1::SyncedBlock {
            block,
            certificate: Some(consensus_wire::certificate_to_wire(&certificate)),
        });
        height += 1;
    }
    Ok(v1::SyncResponse {
        blocks,
        head_height,
    })
}

pub fn decode_consensus(frame: &[u8]) -> Result<Vec<Message>, PeerFault> {
    Ok(peer_frames::decode_consensus(frame)?)
}

pub fn decode_synced(frame: &[u8]) -> Result<(Vec<(Block, CommitCertificate)>, Height), PeerFault> {
    Ok(peer_frames::decode_synced(frame)?)
}
