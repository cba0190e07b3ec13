//! `varde dev`: a one-validator network with demo institutions and demo data in one directory.
//!
//! A fresh data directory gets keys (PKCS#8 PEM) for a hospital, a municipality, a consent
//! authority, an auditor and the validator, a `genesis.json` (chain `varde-dev`), a local CA
//! and the node's TLS certificate (`tls/`), a `node.toml`, and demo data loaded through the
//! normal signed-transaction path. An existing directory is resumed as it is: nothing is
//! regenerated or loaded again (a directory made before gRPC had TLS gets its `tls/` once).

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use tonic::transport::Channel;
use varde_client::tx;
use varde_proto::v1;

use crate::config::{GrpcTlsConfig, NodeConfig};
use crate::context::now_unix_ms;
use crate::demo::{self, DemoKeys};

/// Options of `varde dev`.
pub struct DevOptions {
    pub data_dir: PathBuf,
    pub grpc_addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
}

/// The files of a dev data directory.
pub struct DevLayout {
    pub root: PathBuf,
}

impl DevLayout {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
        }
    }
    pub fn keys_dir(&self) -> PathBuf {
        self.root.join("keys")
    }
    pub fn genesis(&self) -> PathBuf {
        self.root.join("genesis.json")
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("node.toml")
    }
    pub fn database(&self) -> PathBuf {
        self.root.join("db")
    }
    /// The local CA certificate and the node's TLS certificate and key.
    pub fn tls_dir(&self) -> PathBuf {
        self.root.join("tls")
    }
    pub fn tls_files(&self) -> crate::tls::LocalTlsFiles {
        crate::tls::single_node_files(&self.tls_dir())
    }
    /// The CA certificate that clients of the dev node trust (`varde --ca-file`).
    pub fn ca_certificate(&self) -> PathBuf {
        self.tls_files().ca_certificate
    }
    /// Written after the demo data is committed; its presence means "do not load again".
    pub fn demo_loaded_marker(&self) -> PathBuf {
        self.root.join("demo-data-loaded")
    }
}

/// Creates keys, genesis and config in a fresh `root`.
pub fn initialise(
    layout: &DevLayout,
    grpc_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
) -> anyhow::Result<NodeConfig> {
    std::fs::create_dir_all(layout.keys_dir())
        .with_context(|| format!("cannot create {}", layout.keys_dir().display()))?;
    let keys = DemoKeys::generate();
    keys.write(&layout.keys_dir())?;
    let genesis = keys.genesis(demo::CHAIN_ID, now_unix_ms());
    std::fs::write(
        layout.genesis(),
        serde_json::to_string_pretty(&genesis).expect("a genesis serialises"),
    )
    .with_context(|| format!("cannot write {}", layout.genesis().display()))?;
    let mut config = NodeConfig::new(
        PathBuf::from("db"),
        PathBuf::from("genesis.json"),
        PathBuf::from("keys").join(demo::VALIDATOR.key_file),
        grpc_addr,
    );
    config.grpc_tls = Some(make_tls(layout)?);
    config.metrics_listen_address = metrics_addr;
    std::fs::write(layout.config(), config.to_toml())
        .with_context(|| format!("cannot write {}", layout.config().display()))?;
    Ok(config)
}

/// The local CA and node certificate in `tls/` (made unless there), as config paths relative to
/// the directory.
fn make_tls(layout: &DevLayout) -> anyhow::Result<GrpcTlsConfig> {
    let files = crate::tls::ensure_single_node_pki(&layout.tls_dir(), demo::CHAIN_ID)?;
    let relative = |path: &Path| {
        path.strip_prefix(&layout.root)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| path.to_path_buf())
    };
    Ok(GrpcTlsConfig::files(
        relative(&files.certificate_chain),
        relative(&files.private_key),
    ))
}

/// A dev directory made before gRPC had TLS has no `[grpc_tls]`: give it the local CA and
/// certificate once. Returns whether the config was changed.
fn add_tls_if_missing(layout: &DevLayout) -> anyhow::Result<bool> {
    let path = layout.config();
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut config = NodeConfig::from_toml_unvalidated(&text)
        .with_context(|| format!("{} is not a valid node config", path.display()))?;
    if config.grpc_tls.is_some() {
        return Ok(false);
    }
    config.grpc_tls = Some(make_tls(layout)?);
    std::fs::write(&path, config.to_toml())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(true)
}

/// Where a local client reaches a node listening on `address` (an unspecified address such as
/// 0.0.0.0 is reached on loopback, which the certificate names).
pub fn local_address(address: SocketAddr) -> SocketAddr {
    match address.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, address.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, address.port()))
        }
        _ => address,
    }
}

/// A channel to the dev node as `config` serves it: over TLS trusting `ca_path`, or plaintext.
pub async fn connect_local(
    config: &NodeConfig,
    address: SocketAddr,
    ca_path: &Path,
) -> anyhow::Result<Channel> {
    let address = local_address(address);
    if config.grpc_tls.as_ref().is_some_and(|tls| tls.plaintext) {
        return Ok(varde_client::connect::connect(&format!("http://{address}"), None).await?);
    }
    let ca = varde_client::connect::read_ca_certificate(ca_path)?;
    Ok(varde_client::connect::connect_tls(address, &ca).await?)
}

/// Runs the dev node until `shutdown` completes.
pub async fn run_dev(
    options: DevOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let layout = DevLayout::new(&options.data_dir);
    let fresh = !layout.config().exists();
    if fresh {
        if layout.genesis().exists() || layout.keys_dir().exists() {
            bail!(
                "{} holds a partial dev network (genesis or keys without node.toml); remove the directory or point --data-dir elsewhere",
                layout.root.display()
            );
        }
        initialise(&layout, options.grpc_addr, options.metrics_addr)?;
    } else if add_tls_if_missing(&layout)? {
        println!(
            "  added TLS to {}: a local CA and node certificate in {}",
            layout.config().display(),
            layout.tls_dir().display()
        );
    }
    let mut config = NodeConfig::load(&layout.config())?;
    // The addresses given now win over the ones written when the directory was made.
    config.grpc_listen_address = options.grpc_addr;
    config.metrics_listen_address = options.metrics_addr;
    let genesis = crate::node::read_genesis(&config.genesis_path)?;
    let store = crate::node::open_store(&config, &genesis)?;
    let node = crate::node::start(&config, genesis, store, shutdown).await?;

    let plaintext = config.grpc_tls.as_ref().is_some_and(|tls| tls.plaintext);
    let url = if plaintext {
        format!("http://{}", node.grpc_address)
    } else {
        varde_client::connect::https_url(node.grpc_address)
    };
    println!("Varde dev node (chain {}) serving", demo::CHAIN_ID);
    if plaintext {
        println!("  gRPC:    {url} (plaintext, as node.toml says)");
    } else {
        println!("  gRPC:    {url} (TLS)");
        println!(
            "  CA:      {} (give clients --ca-file or VARDE_CA_FILE)",
            layout.ca_certificate().display()
        );
    }
    match node.metrics_address {
        Some(address) => println!("  metrics: http://{address}/metrics"),
        None => println!("  metrics: off"),
    }
    println!("  data:    {}", layout.root.display());
    println!("  demo keys (PKCS#8 PEM):");
    for institution in demo::ALL {
        println!(
            "    {:<28} {} ({})  {}",
            institution.name,
            institution.org_number,
            institution
                .roles
                .iter()
                .map(|role| serde_json::to_string(role)
                    .unwrap_or_default()
                    .replace('"', ""))
                .collect::<Vec<_>>()
                .join(","),
            layout.keys_dir().join(institution.key_file).display()
        );
    }

    if !layout.demo_loaded_marker().exists() {
        let keys = DemoKeys::read(&layout.keys_dir())?;
        let channel = connect_local(&config, node.grpc_address, &layout.ca_certificate()).await?;
        load_demo_data(channel, &keys).await?;
        std::fs::write(layout.demo_loaded_marker(), b"demo data committed\n")?;
        println!("  demo data loaded");
    } else {
        println!("  resumed an existing data directory");
    }
    node.wait().await
}

/// The demo transactions: records for two pseudonymous patients and a grant (the reads follow).
pub fn demo_transactions(keys: &DemoKeys, now_unix_ms: i64) -> Vec<v1::SignedTransaction> {
    let chain = demo::CHAIN_ID;
    let hospital = demo::HOSPITAL.org_number;
    let municipality = demo::MUNICIPALITY.org_number;
    let patient_one = demo::demo_subject(1);
    let patient_two = demo::demo_subject(2);
    let body = |action| demo::body(chain, now_unix_ms, action);
    let mut transactions = vec![
        demo::sign(
            chain,
            keys.of(demo::HOSPITAL),
            &body(demo::anchor_action(
                hospital,
                "epikrise-2026-0001",
                patient_one.clone(),
                "discharge-summary",
                now_unix_ms,
            )),
        ),
        demo::sign(
            chain,
            keys.of(demo::HOSPITAL),
            &body(demo::anchor_action(
                hospital,
                "lab-2026-0042",
                patient_one.clone(),
                "laboratory",
                now_unix_ms,
            )),
        ),
        demo::sign(
            chain,
            keys.of(demo::MUNICIPALITY),
            &body(demo::anchor_action(
                municipality,
                "pleie-2026-0007",
                patient_two,
                "home-care-plan",
                now_unix_ms,
            )),
        ),
    ];
    let grant = tx::Grant::new(
        demo::CONSENT_AUTHORITY.org_number,
        demo::demo_pseudonym(1),
        municipality,
        tx::Scope::Category("discharge-summary".to_owned()),
        now_unix_ms - 60_000,
        now_unix_ms + 90 * 24 * 3_600_000,
    )
    .purpose(v1::PurposeOfUse::Treat)
    .purpose(v1::PurposeOfUse::Coc)
    .consent("samtykke-demo-1");
    transactions.push(demo::sign(
        chain,
        keys.of(demo::CONSENT_AUTHORITY),
        &body(grant.into()),
    ));
    transactions
}

/// The demo access event, which names the grant committed before it.
pub fn demo_access_event(
    keys: &DemoKeys,
    grant_id: [u8; 32],
    now_unix_ms: i64,
) -> v1::SignedTransaction {
    demo::sign(
        demo::CHAIN_ID,
        keys.of(demo::MUNICIPALITY),
        &demo::body(
            demo::CHAIN_ID,
            now_unix_ms,
            tx::LogAccess::new(
                demo::MUNICIPALITY.org_number,
                "9144900",
                demo::HOSPITAL.org_number,
                "epikrise-2026-0001",
                v1::PurposeOfUse::Treat,
                now_unix_ms,
            )
            .grant(grant_id)
            .into(),
        ),
    )
}

/// The demo emergency read: the second health trust breaks the glass on the first patient's lab
/// record, which no grant covers, so that the patient's access log shows a flagged emergency.
pub fn demo_emergency_access(keys: &DemoKeys, now_unix_ms: i64) -> v1::SignedTransaction {
    demo::sign(
        demo::CHAIN_ID,
        keys.of(demo::HEALTH_TRUST),
        &demo::body(
            demo::CHAIN_ID,
            now_unix_ms,
            tx::LogAccess::new(
                demo::HEALTH_TRUST.org_number,
                "8812345",
                demo::HOSPITAL.org_number,
                "lab-2026-0042",
                v1::PurposeOfUse::Etreat,
                now_unix_ms,
            )
            .emergency("bevisstløs pasient i akuttmottaket")
            .into(),
        ),
    )
}

/// Submits the demo data over `channel` and waits for each transaction's commit.
pub async fn load_demo_data(channel: Channel, keys: &DemoKeys) -> anyhow::Result<()> {
    let mut client = v1::ledger_client::LedgerClient::new(channel);
    let now = now_unix_ms();
    let mut grant_id = [0; 32];
    for transaction in demo_transactions(keys, now) {
        let response = client
            .submit_and_wait(v1::SubmitAndWaitRequest {
                transaction: Some(transaction),
                timeout_ms: 30_000,
            })
            .await
            .context("loading demo data")?
            .into_inner();
        grant_id = <[u8; 32]>::try_from(response.transaction_id).map_err(|_| {
            anyhow::anyhow!(
                "loading demo data: the node gave a transaction id that is not 32 bytes"
            )
        })?;
    }
    client
        .submit_and_wait(v1::SubmitAndWaitRequest {
            transaction: Some(demo_access_event(keys, grant_id, now)),
            timeout_ms: 30_000,
        })
        .await
        .context("loading the demo access event")?;
    client
        .submit_and_wait(v1::SubmitAndWaitRequest {
            transaction: Some(demo_emergency_access(keys, now)),
            timeout_ms: 30_000,
        })
        .await
        .context("loading the demo emergency access event")?;
    Ok(())
}
