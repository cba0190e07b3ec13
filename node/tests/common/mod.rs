//! A real node on 127.0.0.1:0 over RocksDB in a temporary directory, and client helpers.
#![allow(dead_code)]

use std::path::Path;

use ed25519_dalek::SigningKey;
use prost::Message;
use tokio::sync::oneshot;
use tonic::transport::{Certificate, Channel};
use varde_node::config::NodeConfig;
use varde_node::demo::{self, DemoKeys};
use varde_node::node::{RunningNode, open_store};
use varde_proto::v1;

pub const CHAIN: &str = demo::CHAIN_ID;

pub struct TestNode {
    pub node: RunningNode,
    /// The CA of the node's gRPC certificate when it serves TLS (`start_tls_node`).
    pub ca: Option<Certificate>,
    stop: oneshot::Sender<()>,
}

impl TestNode {
    /// `http://` for a plaintext node, `https://` for a TLS one.
    pub fn endpoint(&self) -> String {
        match self.ca {
            None => format!("http://{}", self.node.grpc_address),
            Some(_) => varde_client::connect::https_url(self.node.grpc_address),
        }
    }

    /// A channel as a client that trusts the node's CA (if any) opens it.
    pub async fn channel(&self) -> Channel {
        match &self.ca {
            None => tonic::transport::Endpoint::from_shared(self.endpoint())
                .unwrap()
                .connect()
                .await
                .unwrap(),
            Some(ca) => varde_client::connect::connect_tls(self.node.grpc_address, ca)
                .await
                .unwrap(),
        }
    }

    pub async fn ledger(&self) -> v1::ledger_client::LedgerClient<Channel> {
        v1::ledger_client::LedgerClient::new(self.channel().await)
    }

    pub async fn query(&self) -> v1::query_client::QueryClient<Channel> {
        v1::query_client::QueryClient::new(self.channel().await)
    }

    pub async fn node_client(&self) -> v1::node_client::NodeClient<Channel> {
        v1::node_client::NodeClient::new(self.channel().await)
    }

    /// Stops the node and waits until it has released its database.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.node.wait().await.unwrap();
    }
}

/// Writes keys, genesis and config into `dir` on first use, then starts a node there that serves
/// gRPC in plaintext on loopback (said explicitly in its config).
pub async fn start_node(dir: &Path, keys: &DemoKeys) -> TestNode {
    start_node_with(dir, keys, false).await
}

/// As `start_node`, but the node serves gRPC over TLS with a certificate of a local CA made in
/// `dir/tls` on first use; the returned node's clients trust that CA.
pub async fn start_tls_node(dir: &Path, keys: &DemoKeys) -> TestNode {
    start_node_with(dir, keys, true).await
}

async fn start_node_with(dir: &Path, keys: &DemoKeys, tls: bool) -> TestNode {
    let keys_dir = dir.join("keys");
    if !keys_dir.exists() {
        std::fs::create_dir_all(&keys_dir).unwrap();
        keys.write(&keys_dir).unwrap();
        let genesis = keys.genesis(CHAIN, 0);
        std::fs::write(
            dir.join("genesis.json"),
            serde_json::to_string(&genesis).unwrap(),
        )
        .unwrap();
    }
    let mut config = NodeConfig::new(
        dir.join("db"),
        dir.join("genesis.json"),
        keys_dir.join(demo::VALIDATOR.key_file),
        "127.0.0.1:0".parse().unwrap(),
    );
    let ca = if tls {
        let files = varde_node::tls::ensure_single_node_pki(&dir.join("tls"), "node test").unwrap();
        config.grpc_tls = Some(files.config());
        Some(varde_client::connect::read_ca_certificate(&files.ca_certificate).unwrap())
    } else {
        config.grpc_tls = Some(varde_node::config::GrpcTlsConfig::plaintext());
        None
    };
    config.metrics_listen_address = Some("127.0.0.1:0".parse().unwrap());
    config.block.empty_block_wait_ms = 200;
    let genesis = varde_node::node::read_genesis(&config.genesis_path).unwrap();
    let store = open_store(&config, &genesis).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let node = varde_node::start(&config, genesis, store, async move {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    TestNode { node, ca, stop }
}

pub fn now_unix_ms() -> i64 {
    varde_node::context::now_unix_ms()
}

pub fn signed(key: &SigningKey, action: v1::transaction_body::Action) -> v1::SignedTransaction {
    demo::sign(CHAIN, key, &demo::body(CHAIN, now_unix_ms(), action))
}

pub fn anchor(keys: &DemoKeys, record_id: &str, subject: u8) -> v1::SignedTransaction {
    signed(
        keys.of(demo::HOSPITAL),
        demo::anchor_action(
            demo::HOSPITAL.org_number,
            record_id,
            demo::demo_subject(subject),
            "psychiatry",
            now_unix_ms(),
        ),
    )
}

pub fn record(custodian: &str, record_id: &str) -> v1::RecordReference {
    v1::RecordReference {
        custodian_org_number: custodian.to_owned(),
        record_id: record_id.to_owned(),
    }
}

/// Submits and waits; panics unless the node answers with a receipt.
pub async fn commit(
    client: &mut v1::ledger_client::LedgerClient<Channel>,
    transaction: v1::SignedTransaction,
) -> v1::SubmitAndWaitResponse {
    client
        .submit_and_wait(v1::SubmitAndWaitRequest {
            transaction: Some(transaction),
            timeout_ms: 20_000,
        })
        .await
        .unwrap()
        .into_inner()
}

pub fn is_applied(receipt: &Option<v1::Receipt>) -> bool {
    matches!(
        receipt
            .as_ref()
            .and_then(|receipt| receipt.outcome.as_ref()),
        Some(v1::receipt::Outcome::Applied(_))
    )
}

/// The `auth` of a signed request (varde-query-v2) with a fresh nonce, for `request` encoded
/// without it.
pub fn authenticate<T: Message>(
    key: &SigningKey,
    method: &str,
    request: &T,
) -> v1::RequestAuthentication {
    varde_client::Credentials::new(CHAIN, key.clone())
        .authentication(method, request)
        .unwrap()
}

/// Signs `$request` (a request message with an `auth` field) for `$method` with `$key`.
#[macro_export]
macro_rules! sign {
    ($key:expr, $method:expr, $request:expr) => {{
        let mut request = $request;
        request.auth = None;
        request.auth = Some($crate::common::authenticate($key, $method, &request));
        request
    }};
}
