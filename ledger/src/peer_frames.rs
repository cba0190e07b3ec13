//! What the bodies of peers' consensus and sync frames decode to. The node's network task calls
//! these on every inbound frame; they live here, free of the network stack, so that the fuzz
//! targets run the same code.

use std::sync::Arc;

use prost::Message as _;
use varde_consensus::{Block, CommitCertificate, Height, Message};
use varde_proto::v1;

use crate::consensus_wire::{self, WireError};

/// Why a frame's body is not what its protocol carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("undecodable frame: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("malformed value: {0}")]
    Wire(#[from] WireError),
}

/// A consensus frame: a `ConsensusBatch` of proposals and votes (signatures not yet checked).
pub fn decode_consensus(frame: &[u8]) -> Result<Vec<Message>, FrameError> {
    let batch = v1::ConsensusBatch::decode(frame)?;
    batch
        .messages
        .into_iter()
        .map(|message| consensus_wire::message_from_wire(message).map_err(FrameError::from))
        .collect()
}

/// A sync response: committed blocks, each under its certificate's block id, and the peer's head.
pub fn decode_synced(
    frame: &[u8],
) -> Result<(Vec<(Block, CommitCertificate)>, Height), FrameError> {
    let response = v1::SyncResponse::decode(frame)?;
    let mut blocks = Vec::with_capacity(response.blocks.len());
    for synced in response.blocks {
        let certificate = consensus_wire::certificate_from_wire(
            synced
                .certificate
                .as_ref()
                .ok_or(WireError::Missing("certificate"))?,
        )?;
        blocks.push((
            Block {
                id: certificate.block_id,
                payload: Arc::from(synced.block),
            },
            certificate,
        ));
    }
    Ok((blocks, response.head_height))
}
