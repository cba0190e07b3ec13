//! Prometheus metrics and a minimal HTTP endpoint that serves them at `GET /metrics`.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The node's metrics. Cheap to update from any task.
pub struct Metrics {
    registry: Registry,
    pub height: Gauge,
    pub round: Gauge,
    pub mempool_transactions: Gauge,
    pub blocks_committed: Counter,
    pub transactions_committed: Counter,
    /// Seconds from a block's proposal time to its commit on this node.
    pub commit_latency_seconds: Histogram,
    pub transactions_rejected: Family<Vec<(String, String)>, Counter>,
    /// Peers with an open connection.
    pub peers: Gauge,
    /// Connections refused at the handshake: the peer is not in the validator set or observers.
    pub connections_refused: Counter,
    /// Frames from peers that were invalid (the peer was disconnected), by protocol.
    pub invalid_peer_messages: Family<Vec<(String, String)>, Counter>,
    /// The highest committed height a peer reported while this node caught up.
    pub sync_target_height: Gauge,
    /// Committed blocks received from peers by block sync.
    pub blocks_synced: Counter,
    /// What `Node.Status` reports, kept beside the exposition (which cannot be read back).
    summary: Mutex<Summary>,
}

/// How many recent commits the status's latency percentiles cover.
const LATENCY_WINDOW: usize = 512;

#[derive(Default)]
struct Summary {
    rejected: BTreeMap<String, u64>,
    recent_latencies_ms: VecDeque<u64>,
    invalid_peer_messages: u64,
}

/// A snapshot for `Node.Status`.
#[derive(Debug, Clone, Default)]
pub struct StatusSummary {
    pub rejected: BTreeMap<String, u64>,
    pub commit_latency_p50_ms: u64,
    pub commit_latency_p99_ms: u64,
    pub invalid_peer_messages: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("varde");
        let height = Gauge::default();
        let round = Gauge::default();
        let mempool_transactions = Gauge::default();
        let blocks_committed = Counter::default();
        let transactions_committed = Counter::default();
        let commit_latency_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        let transactions_rejected = Family::<Vec<(String, String)>, Counter>::default();
        let peers = Gauge::default();
        let connections_refused = Counter::default();
        let invalid_peer_messages = Family::<Vec<(String, String)>, Counter>::default();
        let sync_target_height = Gauge::default();
        let blocks_synced = Counter::default();
        registry.register("peers", "Peers with an open connection", peers.clone());
        registry.register(
            "connections_refused",
            "Connections refused at the handshake (peer not in the validator set or observers)",
            connections_refused.clone(),
        );
        registry.register(
            "invalid_peer_messages",
            "Invalid frames from peers, by protocol; the peer was disconnected",
            invalid_peer_messages.clone(),
        );
        registry.register(
            "sync_target_height",
            "The highest committed height reported by a peer during block sync",
            sync_target_height.clone(),
        );
        registry.register(
            "blocks_synced",
            "Committed blocks received from peers by block sync",
            blocks_synced.clone(),
        );
        registry.register(
            "height",
            "Height of the latest committed block",
            height.clone(),
        );
        registry.register(
            "round",
            "Consensus round at the current height",
            round.clone(),
        );
        registry.register(
            "mempool_transactions",
            "Transactions waiting in the mempool",
            mempool_transactions.clone(),
        );
        registry.register(
            "blocks_committed",
            "Blocks committed by this node",
            blocks_committed.clone(),
        );
        registry.register(
            "transactions_committed",
            "Transactions committed by this node (applied or rejected with a receipt)",
            transactions_committed.clone(),
        );
        registry.register(
            "commit_latency_seconds",
            "Seconds from a block's timestamp to its commit on this node",
            commit_latency_seconds.clone(),
        );
        registry.register(
            "transactions_rejected",
            "Transactions refused at admission or rejected at execution, by reason",
            transactions_rejected.clone(),
        );
        Self {
            registry,
            height,
            round,
            mempool_transactions,
            blocks_committed,
            transactions_committed,
            commit_latency_seconds,
            transactions_rejected,
            peers,
            connections_refused,
            invalid_peer_messages,
            sync_target_height,
            blocks_synced,
            summary: Mutex::new(Summary::default()),
        }
    }

    /// Records one block's commit latency (block time to commit here).
    pub fn observe_commit_latency(&self, milliseconds: u64) {
        self.commit_latency_seconds
            .observe(milliseconds as f64 / 1_000.0);
        let mut summary = self.summary.lock().expect("metrics summary lock");
        if summary.recent_latencies_ms.len() == LATENCY_WINDOW {
            summary.recent_latencies_ms.pop_front();
        }
        summary.recent_latencies_ms.push_back(milliseconds);
    }

    pub fn summary(&self) -> StatusSummary {
        let summary = self.summary.lock().expect("metrics summary lock");
        let mut latencies: Vec<u64> = summary.recent_latencies_ms.iter().copied().collect();
        latencies.sort_unstable();
        let percentile = |fraction: f64| {
            latencies
                .get(((latencies.len() as f64 * fraction).ceil() as usize).saturating_sub(1))
                .copied()
                .unwrap_or(0)
        };
        StatusSummary {
            rejected: summary.rejected.clone(),
            commit_latency_p50_ms: percentile(0.50),
            commit_latency_p99_ms: percentile(0.99),
            invalid_peer_messages: summary.invalid_peer_messages,
        }
    }

    pub fn count_invalid_peer_message(&self, protocol: &str) {
        self.invalid_peer_messages
            .get_or_create(&vec![("protocol".to_owned(), protocol.to_owned())])
            .inc();
        self.summary
            .lock()
            .expect("metrics summary lock")
            .invalid_peer_messages += 1;
    }

    pub fn count_rejection(&self, reason: &str) {
        self.transactions_rejected
            .get_or_create(&vec![("reason".to_owned(), reason.to_owned())])
            .inc();
        *self
            .summary
            .lock()
            .expect("metrics summary lock")
            .rejected
            .entry(reason.to_owned())
            .or_default() += 1;
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

/// The most bytes of a request head the endpoint reads.
const REQUEST_BYTES_MAX: usize = 8 * 1024;

/// Serves `GET /metrics` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    // A slow or broken client only affects its own connection.
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_secs(5),
                        answer(stream, &metrics),
                    )
                    .await;
                });
            }
        }
    }
}

async fn answer(mut stream: tokio::net::TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).await?;
        if read == 0 || request.len() + read > REQUEST_BYTES_MAX {
            break;
        }
        request.extend_from_slice(&buffer[..read]);
    }
    let (status, content_type, body) = if request.starts_with(b"GET /metrics ") {
        (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        )
    } else {
        (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "only GET /metrics is served here\n".to_owned(),
        )
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    // The exposition names every metric the node promises, with the varde_ prefix.
    #[test]
    fn exposition_lists_the_metrics() {
        let metrics = Metrics::new();
        metrics.height.set(7);
        metrics.count_rejection("bad_signature");
        let text = metrics.encode();
        for name in [
            "varde_height 7",
            "varde_round",
            "varde_mempool_transactions",
            "varde_blocks_committed_total",
            "varde_commit_latency_seconds_bucket",
            "varde_transactions_rejected_total{reason=\"bad_signature\"} 1",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
    }
}
