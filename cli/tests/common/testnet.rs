//! A local network of `varde node` processes for the multi-process tests, started and faulted
//! with `varde testnet`; `down` on drop. Every client talks gRPC over TLS, trusting only the CA
//! that `varde testnet up` made.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use serde_json::Value;
use tokio::time::Instant;
use tonic::transport::{Certificate, Channel, Endpoint};
use varde_node::demo::{self, DemoKeys};
use varde_proto::v1;

/// One network at a time (an async mutex: each test has its own runtime).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a network may take to commit what a test waits for (debug build, 2 busy cores).
pub const PATIENCE: Duration = Duration::from_secs(90);

pub fn varde(arguments: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_varde"))
        .args(arguments)
        .stdin(Stdio::null())
        .output()
        .expect("the varde binary runs")
}

/// A running local network; `down` on drop, so a failed test leaves no process behind.
pub struct Testnet {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    /// `https://127.0.0.1:PORT` of each validator.
    pub grpc: Vec<String>,
    /// The network's CA certificate file, and the certificate read for clients.
    pub ca_file: String,
    pub ca: Certificate,
    pub keys: DemoKeys,
}

impl Testnet {
    pub fn up(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("net");
        let root_text = root.display().to_string();
        let mut arguments = vec!["--json", "testnet", "up", "--dir", &root_text];
        arguments.extend_from_slice(extra);
        let output = varde(&arguments);
        if !output.status.success() {
            dump_logs(&root);
            panic!(
                "testnet up failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let document: Value = serde_json::from_slice(&output.stdout).unwrap();
        let grpc: Vec<String> = document["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|node| node["grpc"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            grpc.iter().all(|url| url.starts_with("https://")),
            "{grpc:?}"
        );
        let ca_file = document["ca_file"].as_str().unwrap().to_owned();
        let ca = varde_client::connect::read_ca_certificate(Path::new(&ca_file)).unwrap();
        let keys = DemoKeys::read(&root.join("keys")).unwrap();
        Self {
            _dir: dir,
            root,
            grpc,
            ca_file,
            ca,
            keys,
        }
    }

    /// A TLS channel to `node`, trusting the network's CA.
    pub async fn channel(&self, node: usize) -> Result<Channel, tonic::transport::Error> {
        Endpoint::from_shared(self.grpc[node].clone())
            .unwrap()
            .tls_config(varde_client::connect::client_tls_config(&self.ca))
            .unwrap()
            .connect()
            .await
    }

    pub fn run(&self, arguments: &[&str]) {
        let root = self.root.display().to_string();
        let mut all = vec!["testnet"];
        all.extend_from_slice(arguments);
        all.extend_from_slice(&["--dir", &root]);
        let output = varde(&all);
        assert!(
            output.status.success(),
            "varde {all:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    pub async fn ledger(&self, node: usize) -> v1::ledger_client::LedgerClient<Channel> {
        v1::ledger_client::LedgerClient::new(self.channel(node).await.unwrap())
    }

    pub async fn status(&self, node: usize) -> Option<v1::StatusResponse> {
        let call = async {
            let mut client = v1::node_client::NodeClient::new(self.channel(node).await.ok()?);
            client
                .status(v1::StatusRequest {})
                .await
                .ok()
                .map(tonic::Response::into_inner)
        };
        tokio::time::timeout(Duration::from_secs(3), call)
            .await
            .ok()
            .flatten()
    }

    pub async fn height(&self, node: usize) -> u64 {
        self.status(node).await.map_or(0, |status| status.height)
    }

    /// Waits until each of `nodes` has committed `height`.
    pub async fn wait_for_height(&self, nodes: &[usize], height: u64) {
        let deadline = Instant::now() + PATIENCE;
        for &node in nodes {
            while self.height(node).await < height {
                if Instant::now() > deadline {
                    dump_logs(&self.root);
                    panic!("validator {node} did not reach height {height}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// A fresh anchor by the demo hospital; `tag` keeps record ids apart.
    pub fn anchor(&self, tag: &str) -> v1::SignedTransaction {
        let now = varde_node::context::now_unix_ms();
        demo::sign(
            demo::CHAIN_ID,
            self.keys.of(demo::HOSPITAL),
            &demo::body(
                demo::CHAIN_ID,
                now,
                demo::anchor_action(
                    demo::HOSPITAL.org_number,
                    &format!("test-{tag}"),
                    demo::demo_subject(7),
                    "laboratory",
                    now,
                ),
            ),
        )
    }

    /// Submits to `node` and waits for the commit; returns the transaction id.
    pub async fn commit(&self, node: usize, transaction: v1::SignedTransaction) -> Vec<u8> {
        let response = self
            .ledger(node)
            .await
            .submit_and_wait(v1::SubmitAndWaitRequest {
                transaction: Some(transaction),
                timeout_ms: 60_000,
            })
            .await
            .unwrap_or_else(|status| panic!("submit to validator {node}: {status}"))
            .into_inner();
        assert!(
            response.receipt.is_some(),
            "a committed transaction has a receipt"
        );
        response.transaction_id
    }

    /// `request` signed by the demo auditor (`varde_client`, varde-query-v2).
    pub fn signed<T: varde_client::Signed>(&self, request: T) -> T {
        varde_client::Credentials::new(demo::CHAIN_ID, self.keys.of(demo::AUDITOR).clone())
            .sign(request)
            .unwrap()
    }

    /// Every block up to `height`, from `node`, as encoded headers.
    pub async fn headers(&self, node: usize, height: u64) -> Vec<v1::BlockHeader> {
        let mut client = self.ledger(node).await;
        let mut headers = Vec::new();
        for at in 1..=height {
            let request = self.signed(v1::GetBlockRequest {
                auth: None,
                height: at,
            });
            let block = client
                .get_block(request)
                .await
                .unwrap_or_else(|status| panic!("block {at} from validator {node}: {status}"))
                .into_inner();
            headers.push(block.header.unwrap());
        }
        headers
    }

    /// Every validator in `nodes` holds the same block hash chain and state roots up to the
    /// lowest height among them: no fork.
    pub async fn assert_agreement(&self, nodes: &[usize]) -> u64 {
        let mut lowest = u64::MAX;
        for &node in nodes {
            lowest = lowest.min(self.height(node).await);
        }
        assert!(lowest > 0, "the validators have committed");
        let reference = self.headers(nodes[0], lowest).await;
        for &node in &nodes[1..] {
            let headers = self.headers(node, lowest).await;
            for (index, (ours, theirs)) in reference.iter().zip(&headers).enumerate() {
                assert_eq!(
                    ours,
                    theirs,
                    "validators {} and {node} differ at height {}",
                    nodes[0],
                    index + 1
                );
            }
        }
        lowest
    }

    /// The transaction is committed on `node`.
    pub async fn assert_committed(&self, node: usize, id: &[u8]) {
        let response = self
            .ledger(node)
            .await
            .get_transaction(self.signed(v1::GetTransactionRequest {
                auth: None,
                transaction_id: id.to_vec(),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            response.status,
            v1::TransactionStatus::Committed as i32,
            "an acknowledged transaction is missing on validator {node}"
        );
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        let root = self.root.display().to_string();
        let _ = varde(&["testnet", "down", "--dir", &root]);
    }
}

pub fn dump_logs(root: &Path) {
    for entry in std::fs::read_dir(root.join("logs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        eprintln!("--- {} (last lines)", entry.path().display());
        for line in tail.iter().rev() {
            eprintln!("{line}");
        }
    }
}

pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// A node outside the testnet's validators: its own key, plaintext gRPC on loopback, dialling
/// the peer addresses of `peers` (validator indexes) directly; killed on drop.
pub struct OutsideNode {
    dir: PathBuf,
    pub grpc: std::net::SocketAddr,
    child: Child,
}

impl OutsideNode {
    pub fn start(net: &Testnet, name: &str, key: &SigningKey, peers: &[usize]) -> Self {
        let dir = net.root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        varde_ledger::keyfile::write_signing_key(&dir.join("validator.pem"), key).unwrap();
        let free = |_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
        };
        let [grpc, peer]: [std::net::SocketAddr; 2] = std::array::from_fn(free);
        let mut config = format!(
            "data_dir = \"db\"\ngenesis_path = \"../genesis.json\"\nvalidator_key_path = \"validator.pem\"\n\
             grpc_listen_address = \"{grpc}\"\ngrpc_tls = {{ plaintext = true }}\n\
             [block]\nempty_block_wait_ms = 500\n[consensus]\npropose_timeout_ms = 1000\n\
             [network]\nlisten_address = \"{peer}\"\n"
        );
        let state: Value =
            serde_json::from_str(&std::fs::read_to_string(net.root.join("testnet.json")).unwrap())
                .unwrap();
        for node in peers.iter().map(|index| &state["nodes"][index]) {
            config.push_str(&format!(
                "[[network.peers]]\npublic_key = \"{}\"\naddress = \"{}\"\n",
                node["public_key"].as_str().unwrap(),
                node["peer"].as_str().unwrap(),
            ));
        }
        std::fs::write(dir.join("node.toml"), config).unwrap();
        let log = std::fs::File::create(net.root.join("logs").join(format!("{name}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_varde"))
            .args(["node", "--config"])
            .arg(dir.join("node.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Self { dir, grpc, child }
    }

    pub async fn channel(&self) -> Option<Channel> {
        Endpoint::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect()
            .await
            .ok()
    }

    /// Its Status, when it answers.
    pub async fn status(&self) -> Option<v1::StatusResponse> {
        let channel = self.channel().await?;
        v1::node_client::NodeClient::new(channel)
            .status(v1::StatusRequest {})
            .await
            .ok()
            .map(tonic::Response::into_inner)
    }

    /// Its committed height (0 while it does not answer).
    pub async fn height(&self) -> u64 {
        self.status().await.map_or(0, |status| status.height)
    }

    /// The block hash chain up to `height` (signed by `net`'s auditor).
    pub async fn headers(&self, net: &Testnet, height: u64) -> Vec<v1::BlockHeader> {
        let mut client = v1::ledger_client::LedgerClient::new(self.channel().await.unwrap());
        let mut headers = Vec::new();
        for at in 1..=height {
            let block = client
                .get_block(net.signed(v1::GetBlockRequest {
                    auth: None,
                    height: at,
                }))
                .await
                .unwrap()
                .into_inner();
            headers.push(block.header.unwrap());
        }
        headers
    }
}

impl Drop for OutsideNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(self.dir.join("db"));
    }
}
