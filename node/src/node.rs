//! The wiring of one node: open the ledger, start the consensus driver, the gRPC server and the
//! metrics endpoint, and stop them all together.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use varde_ledger::Ledger;
use varde_ledger::membership::Genesis;
use varde_proto::v1;
use varde_storage::Store;

use crate::config::NodeConfig;
use crate::context::NodeContext;
use crate::driver::{ConsensusDriver, DriverSettings};
use crate::grpc::{Api, REQUEST_BYTES_MAX};
use crate::mempool::Mempool;
use crate::network::{LocalNetwork, Network};
use crate::p2p::{self, NetworkSettings, PeerAddress};

/// A started node.
pub struct RunningNode {
    /// The address the gRPC server is bound to (the real port when the config asked for 0).
    pub grpc_address: SocketAddr,
    pub metrics_address: Option<SocketAddr>,
    /// Where the node listens for its peers, when it has a network.
    pub peer_address: Option<SocketAddr>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningNode {
    /// Waits until the node has stopped: after shutdown (Ok) or a failure (Err).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("the node task panicked")?
    }
}

/// Reads a genesis file.
pub fn read_genesis(path: &Path) -> anyhow::Result<Genesis> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the genesis file {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "the genesis file {} is not valid genesis JSON",
            path.display()
        )
    })
}

/// Starts a single-validator node over `store` and returns once it is serving. It runs until
/// `shutdown` completes or a part of it fails (a storage failure stops consensus and the node).
pub async fn start<S: Store + 'static>(
    config: &NodeConfig,
    genesis: Genesis,
    store: S,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<RunningNode> {
    config.validate().context("invalid node configuration")?;
    let grpc_tls = config
        .grpc_tls
        .as_ref()
        .context("invalid node configuration: grpc_tls is missing")?;
    crate::tls::install_crypto_provider();
    crate::context::set_clock_offset_ms(config.testing.clock_offset_ms);
    let server_tls = crate::tls::server_tls_config(grpc_tls)?;
    let tls_enabled = server_tls.is_some();
    let configured_key = varde_ledger::keyfile::read_signing_key(&config.validator_key_path)?;
    // Page tokens are sealed with a key derived from the node's own secret: they survive a
    // restart, and no other node can forge or read them.
    let page_tokens = varde_ledger::page_token::PageTokenKey::derive(&configured_key.to_bytes());
    let ledger = Ledger::open(store, genesis).context("cannot open the ledger")?;
    let mut signing_keys = vec![configured_key];
    if let Some(path) = &config.next_validator_key_path {
        signing_keys.push(varde_ledger::keyfile::read_signing_key(path)?);
    }
    // The key in the validator set now (a rotation may have taken effect while this node was
    // down) signs and is the network identity; the configured key otherwise.
    let validator_keys = ledger.membership().validator_keys();
    if let Some(in_set) = signing_keys
        .iter()
        .position(|key| validator_keys.contains(&key.verifying_key().to_bytes()))
    {
        signing_keys.swap(0, in_set);
    }
    let signing_key = signing_keys[0].clone();
    let context = Arc::new(NodeContext::new(
        ledger,
        Mempool::new(config.mempool),
        signing_key.verifying_key().to_bytes(),
    ));
    if let Some(head) = context.ledger.head()? {
        context.metrics.height.set(head.height as i64);
    }
    let (network, network_task): (Box<dyn Network + Send>, _) = match &config.network {
        None => (Box::new(LocalNetwork), None),
        Some(network) => {
            let peer_keys = network.peer_keys()?;
            let settings = NetworkSettings {
                listen_address: network.listen_address,
                peers: peer_keys
                    .into_iter()
                    .zip(&network.peers)
                    .map(|(public_key, peer)| PeerAddress {
                        public_key,
                        address: peer.address,
                    })
                    .collect(),
                validators: context.ledger.membership().validator_keys(),
                observers: network.observer_keys()?,
                consensus_frame_bytes_max: config.block.max_bytes + 1024 * 1024,
                attacks: config.testing.attacks.clone(),
            };
            let (handle, task) = p2p::build(&settings, &signing_key, context.clone())?;
            (Box::new(handle), Some(task))
        }
    };
    let peer_address = network_task.as_ref().map(|task| task.listen_address);
    let (driver, driver_handle) = ConsensusDriver::new(
        context.clone(),
        DriverSettings {
            signing_keys,
            timeouts: config.consensus.timeouts(),
            block: config.block,
        },
        network,
    )?;

    let grpc_listener = TcpListener::bind(config.grpc_listen_address)
        .await
        .with_context(|| format!("cannot listen for gRPC on {}", config.grpc_listen_address))?;
    let grpc_address = grpc_listener.local_addr()?;
    let metrics_listener = match config.metrics_listen_address {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen for metrics on {address}"))?,
        ),
        None => None,
    };
    let metrics_address = metrics_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;

    // One stop signal for every task: the caller's shutdown, or the first task to fail.
    let (stop, stopped) = watch::channel(false);
    let stopped_receiver = stopped.clone();
    let stop = Arc::new(stop);
    let wait_for_stop = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            stop.send_replace(true);
        });
    }

    let network_task =
        network_task.map(|task| tokio::spawn(task.run(driver_handle, wait_for_stop())));
    let mut driver_task = tokio::spawn(driver.run(wait_for_stop()));
    let api = Api::new(context.clone(), stopped_receiver, page_tokens);
    let mut grpc_task = tokio::spawn(serve_grpc(api, server_tls, grpc_listener, wait_for_stop()));
    let metrics_task = metrics_listener.map(|listener| {
        tokio::spawn(crate::metrics::serve(
            listener,
            context.metrics.clone(),
            wait_for_stop(),
        ))
    });
    let task = tokio::spawn(async move {
        let result: anyhow::Result<()> = tokio::select! {
            driver = &mut driver_task => {
                stop.send_replace(true);
                let _ = grpc_task.await;
                driver.context("the consensus driver panicked")?.map_err(Into::into)
            }
            grpc = &mut grpc_task => {
                stop.send_replace(true);
                let driver = driver_task.await;
                grpc.context("the gRPC server panicked")??;
                driver.context("the consensus driver panicked")?.map_err(Into::into)
            }
        };
        if let Some(metrics_task) = metrics_task {
            let _ = metrics_task.await;
        }
        if let Some(network_task) = network_task {
            let _ = network_task.await;
        }
        if let Err(error) = &result {
            tracing::error!(error = %format!("{error:#}"), "node stopped on an error");
        }
        result
    });
    tracing::info!(%grpc_address, tls = tls_enabled, ?metrics_address, "node serving");
    Ok(RunningNode {
        grpc_address,
        metrics_address,
        peer_address,
        task,
    })
}

async fn serve_grpc<S: Store + 'static>(
    api: Api<S>,
    tls: Option<tonic::transport::ServerTlsConfig>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    for service in ["varde.v1.Ledger", "varde.v1.Query", "varde.v1.Node"] {
        health_reporter
            .set_service_status(service, tonic_health::ServingStatus::Serving)
            .await;
    }
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(varde_proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(varde_proto::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        server = server
            .tls_config(tls)
            .context("cannot serve gRPC over TLS")?;
    }
    server
        .layer(tower::util::MapResponseLayer::new(
            crate::grpc::rewrite_decode_statuses::<tonic::body::Body>,
        ))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            v1::ledger_server::LedgerServer::new(api.clone())
                .max_decoding_message_size(REQUEST_BYTES_MAX),
        )
        .add_service(
            v1::query_server::QueryServer::new(api.clone())
                .max_decoding_message_size(REQUEST_BYTES_MAX),
        )
        .add_service(
            v1::node_server::NodeServer::new(api).max_decoding_message_size(REQUEST_BYTES_MAX),
        )
        // No Nagle: a small response held back for a delayed ACK costs a client 40 ms.
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
        .context("the gRPC server failed")
}

/// The store the node keeps its data in.
pub type NodeStore = varde_storage::RocksStore;

/// Opens (or creates) the node's RocksDB database in `config.data_dir` for `genesis`; a database
/// of another chain or a corrupt one is refused with the storage layer's message.
pub fn open_store(config: &NodeConfig, genesis: &Genesis) -> anyhow::Result<NodeStore> {
    let identity = varde_storage::ChainIdentity::new(genesis.chain_id.clone(), genesis.hash());
    varde_storage::RocksStore::open(&config.data_dir, &identity)
        .with_context(|| format!("cannot open the database in {}", config.data_dir.display()))
}
