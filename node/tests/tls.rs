//! gRPC over TLS: a node serving a certificate of a local CA answers clients that trust that CA,
//! and refuses plaintext clients and clients that trust another CA; bad certificate files and
//! plaintext on a public address stop the node at start with a clear error.

mod common;

use std::time::Duration;

use common::{anchor, commit, is_applied, start_tls_node};
use tokio::sync::oneshot;
use varde_node::config::{GrpcTlsConfig, NodeConfig};
use varde_node::demo::{self, DemoKeys};
use varde_proto::v1;

// A client that trusts the node's CA gets its status and commits a transaction over TLS.
#[tokio::test]
async fn a_client_that_trusts_the_ca_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let keys = DemoKeys::from_seed(3);
    let node = start_tls_node(dir.path(), &keys).await;
    assert!(node.endpoint().starts_with("https://"));
    let status = node
        .node_client()
        .await
        .status(v1::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.chain_id, common::CHAIN);
    let mut ledger = node.ledger().await;
    let response = commit(&mut ledger, anchor(&keys, "tls-1", 1)).await;
    assert!(is_applied(&response.receipt), "{response:?}");
    node.stop().await;
}

/// Node.Status over `endpoint` (already configured), within 10 s; the error text otherwise.
async fn status_over(endpoint: tonic::transport::Endpoint) -> Result<v1::StatusResponse, String> {
    let call = async {
        let channel = endpoint
            .connect()
            .await
            .map_err(|error| varde_client::connect::causes(&error))?;
        v1::node_client::NodeClient::new(channel)
            .status(v1::StatusRequest {})
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| format!("{status}"))
    };
    tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .unwrap_or_else(|_| Err("no answer within 10 s".to_owned()))
}

// A plaintext client, a client that trusts another CA, and a client that expects another
// host name get nothing from a TLS node; a client that trusts the right CA does, so the
// refusals are about TLS and not a node that is down.
#[tokio::test]
async fn plaintext_and_untrusting_clients_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let keys = DemoKeys::from_seed(4);
    let node = start_tls_node(dir.path(), &keys).await;
    let address = node.node.grpc_address;

    let plaintext = tonic::transport::Endpoint::from_shared(format!("http://{address}")).unwrap();
    let error = status_over(plaintext)
        .await
        .expect_err("a plaintext client is refused");
    assert!(!error.is_empty());

    let other_dir = tempfile::tempdir().unwrap();
    let other = varde_node::tls::ensure_single_node_pki(other_dir.path(), "other").unwrap();
    let other_ca = varde_client::connect::read_ca_certificate(&other.ca_certificate).unwrap();
    let error = status_over(varde_client::connect::tls_endpoint(address, &other_ca).unwrap())
        .await
        .expect_err("a client that trusts another CA is refused");
    assert!(error.contains("certificate"), "{error}");
    assert!(error.contains("UnknownIssuer"), "{error}");

    let right_ca = node.ca.clone().unwrap();
    let wrong_name = tonic::transport::Endpoint::from_shared(format!("https://{address}"))
        .unwrap()
        .tls_config(
            varde_client::connect::client_tls_config(&right_ca).domain_name("varde.example"),
        )
        .unwrap();
    let error = status_over(wrong_name)
        .await
        .expect_err("a certificate that does not name the host is refused");
    assert!(error.contains("certificate"), "{error}");

    let trusted = status_over(varde_client::connect::tls_endpoint(address, &right_ca).unwrap())
        .await
        .expect("the CA's client is served");
    assert_eq!(trusted.chain_id, common::CHAIN);
    // `localhost` is named by the certificate as well.
    let by_name =
        tonic::transport::Endpoint::from_shared(format!("https://localhost:{}", address.port()))
            .unwrap()
            .tls_config(varde_client::connect::client_tls_config(&right_ca))
            .unwrap();
    status_over(by_name)
        .await
        .expect("localhost is in the certificate");
    node.stop().await;
}

/// A config for a fresh node in `dir` with `tls`.
fn config_in(dir: &std::path::Path, tls: GrpcTlsConfig, address: &str) -> NodeConfig {
    let keys = DemoKeys::from_seed(5);
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    keys.write(&dir.join("keys")).unwrap();
    std::fs::write(
        dir.join("genesis.json"),
        serde_json::to_string(&keys.genesis(common::CHAIN, 0)).unwrap(),
    )
    .unwrap();
    let mut config = NodeConfig::new(
        dir.join("db"),
        dir.join("genesis.json"),
        dir.join("keys").join(demo::VALIDATOR.key_file),
        address.parse().unwrap(),
    );
    config.grpc_tls = Some(tls);
    config
}

async fn start_error(config: &NodeConfig) -> String {
    let genesis = varde_node::node::read_genesis(&config.genesis_path).unwrap();
    let store = varde_node::node::open_store(config, &genesis).unwrap();
    let (_stop, stopped) = oneshot::channel::<()>();
    match varde_node::start(config, genesis, store, async move {
        let _ = stopped.await;
    })
    .await
    {
        Ok(_) => panic!("the node started"),
        Err(error) => format!("{error:#}"),
    }
}

// Garbage in the certificate file, a missing key file, and plaintext on a public address each
// stop the node at start with an error that names the problem.
#[tokio::test]
async fn bad_tls_configs_fail_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "hello\n").unwrap();
    let config = config_in(
        dir.path(),
        GrpcTlsConfig::files(garbage.clone(), dir.path().join("absent-key.pem")),
        "127.0.0.1:0",
    );
    let error = start_error(&config).await;
    assert!(error.contains("garbage.pem"), "{error}");
    assert!(error.contains("holds no certificate"), "{error}");

    let files = varde_node::tls::ensure_single_node_pki(&dir.path().join("tls"), "t").unwrap();
    let mut config = config;
    config.grpc_tls = Some(GrpcTlsConfig::files(
        files.certificate_chain.clone(),
        dir.path().join("absent-key.pem"),
    ));
    let error = start_error(&config).await;
    assert!(error.contains("cannot read the private key"), "{error}");
    assert!(error.contains("absent-key.pem"), "{error}");

    config.grpc_listen_address = "0.0.0.0:0".parse().unwrap();
    config.grpc_tls = Some(GrpcTlsConfig::plaintext());
    let error = start_error(&config).await;
    assert!(error.contains("grpc_tls.plaintext"), "{error}");
    assert!(error.contains("loopback"), "{error}");
}
