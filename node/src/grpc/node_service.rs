//! `varde.v1.Node`: what a node is and how far it has got. Open to anyone (it is what a health
//! check or an operator's dashboard reads), so it carries no ledger content: heights, hashes,
//! counts and latencies only.

use tonic::{Request, Response, Status};
use varde_proto::v1;
use varde_storage::Store;

use super::{Api, internal};

#[tonic::async_trait]
impl<S: Store + 'static> v1::node_server::Node for Api<S> {
    async fn status(
        &self,
        _request: Request<v1::StatusRequest>,
    ) -> Result<Response<v1::StatusResponse>, Status> {
        let head = self.context.ledger.head().map_err(internal)?;
        let metrics = &self.context.metrics;
        let summary = metrics.summary();
        let height = head.as_ref().map_or(0, |head| head.height);
        let sync_target_height = metrics.sync_target_height.get().max(0) as u64;
        let mempool_transactions = self.context.mempool.lock().expect("mempool lock").len() as u64;
        Ok(Response::new(v1::StatusResponse {
            chain_id: self.context.ledger.chain_id().to_owned(),
            node_public_key: self.context.node_public_key().to_vec(),
            height: head.as_ref().map_or(0, |head| head.height),
            latest_block_hash: head
                .as_ref()
                .map(|head| head.block_hash.to_vec())
                .unwrap_or_default(),
            latest_block_time_unix_ms: head.as_ref().map_or(0, |head| head.time_unix_ms),
            validator_count: self.context.ledger.membership().validator_keys().len() as u32,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            catching_up: sync_target_height > height,
            round: metrics.round.get().max(0) as u32,
            peers: metrics.peers.get().max(0) as u32,
            mempool_transactions,
            sync_target_height,
            rejected_transactions: summary.rejected.into_iter().collect(),
            commit_latency_p50_ms: summary.commit_latency_p50_ms,
            commit_latency_p99_ms: summary.commit_latency_p99_ms,
            blocks_committed: metrics.blocks_committed.get(),
            transactions_committed: metrics.transactions_committed.get(),
            invalid_peer_messages: summary.invalid_peer_messages,
            connections_refused: metrics.connections_refused.get(),
        }))
    }
}
