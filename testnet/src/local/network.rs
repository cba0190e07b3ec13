//! A local network on disk: keys, genesis, one config per validator, the relay's routes, and the
//! state file that remembers ports and process ids.
//!
//! ```text
//! DIR/testnet.json        ports and pids (this module's NetworkState)
//! DIR/genesis.json        the chain: demo institutions and the validator operators
//! DIR/keys/*.pem          the demo institutions' keys (validator.pem is node 0's key)
//! DIR/node-I/node.toml    validator I's config; node-I/validator.pem, node-I/db/
//! DIR/tls/ca.pem          the network's local CA (clients trust it: `varde --ca-file`)
//! DIR/tls/node-I.pem      validator I's gRPC certificate; node-I-key.pem its key (0600)
//! DIR/relay.json          routes I→J of the fault-injecting relay; DIR/faults.json its faults
//! DIR/logs/               node-I.log, relay.log
//! ```

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use varde_ledger::identifiers::OrgNumber;
use varde_ledger::membership::{Genesis, Institution, Role};
#[cfg(test)]
use varde_node::config::Attack;
use varde_node::config::{NetworkConfig, NodeConfig, PeerConfig, TestingConfig};
use varde_node::demo::{self, DemoKeys};

use crate::relay::Route;

pub const STATE_FILE: &str = "testnet.json";

/// The institutions that operate the first validators; more get generated names.
const OPERATORS: [(&str, &str); 5] = [
    ("Norsk helsenett SF", "994598759"),
    ("Helse Sør-Øst RHF", "991324968"),
    ("Helse Vest RHF", "983658725"),
    ("Helse Midt-Norge RHF", "983658776"),
    ("Helse Nord RHF", "883658752"),
];
/// The most validators a local network runs (the consensus engine allows more; a laptop not).
pub const VALIDATORS_MAX: usize = 16;

/// One validator of a local network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    pub index: usize,
    pub operator: String,
    /// The validator's public key, hex.
    pub public_key: String,
    pub grpc: SocketAddr,
    pub metrics: SocketAddr,
    pub peer: SocketAddr,
    /// The process while it runs (checked against /proc before use: pids are reused).
    pub pid: Option<u32>,
    /// Test-only misbehaviour and clock skew, as in the validator's `[testing]` section.
    #[serde(default, skip_serializing_if = "TestingConfig::is_off")]
    pub testing: TestingConfig,
}

impl NodeState {
    pub fn is_byzantine(&self) -> bool {
        !self.testing.attacks.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkState {
    pub chain_id: String,
    pub nodes: Vec<NodeState>,
    pub relay_pid: Option<u32>,
}

/// Paths inside a network's directory.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }
    pub fn state(&self) -> PathBuf {
        self.root.join(STATE_FILE)
    }
    pub fn genesis(&self) -> PathBuf {
        self.root.join("genesis.json")
    }
    pub fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }
    pub fn node_dir(&self, index: usize) -> PathBuf {
        self.root.join(format!("node-{index}"))
    }
    pub fn node_config(&self, index: usize) -> PathBuf {
        self.node_dir(index).join("node.toml")
    }
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn node_log(&self, index: usize) -> PathBuf {
        self.logs().join(format!("node-{index}.log"))
    }
    pub fn relay_log(&self) -> PathBuf {
        self.logs().join("relay.log")
    }
    pub fn tls_dir(&self) -> PathBuf {
        self.root.join("tls")
    }
    /// The local CA certificate every validator's gRPC certificate is signed by.
    pub fn ca_certificate(&self) -> PathBuf {
        self.tls_dir().join("ca.pem")
    }
    pub fn node_certificate(&self, index: usize) -> PathBuf {
        self.tls_dir().join(format!("node-{index}.pem"))
    }
    pub fn node_tls_key(&self, index: usize) -> PathBuf {
        self.tls_dir().join(format!("node-{index}-key.pem"))
    }
    /// The CA certificate, read for a client.
    pub fn read_ca(&self) -> anyhow::Result<tonic::transport::Certificate> {
        Ok(varde_client::connect::read_ca_certificate(
            &self.ca_certificate(),
        )?)
    }

    pub fn read_state(&self) -> anyhow::Result<NetworkState> {
        let path = self.state();
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "no local network in {} (start one with `varde testnet up`)",
                self.root.display()
            )
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a testnet state file", path.display()))
    }

    /// Writes the state atomically (temp file, then rename).
    pub fn write_state(&self, state: &NetworkState) -> anyhow::Result<()> {
        let path = self.state();
        let temporary = self.root.join(format!(".{STATE_FILE}.tmp"));
        std::fs::write(
            &temporary,
            serde_json::to_vec_pretty(state).expect("the state serialises"),
        )?;
        std::fs::rename(&temporary, &path)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// A valid organisation number for generated operators (mod-11 check digit).
fn generated_org_number(index: usize) -> String {
    let weights = [3, 2, 7, 6, 5, 4, 3, 2];
    let mut base = 92_100_000 + index as u64 * 7;
    loop {
        let digits: Vec<u64> = base
            .to_string()
            .bytes()
            .map(|byte| u64::from(byte - b'0'))
            .collect();
        let sum: u64 = digits.iter().zip(weights).map(|(d, w)| d * w).sum();
        let check = match 11 - sum % 11 {
            11 => 0,
            10 => {
                base += 1;
                continue;
            }
            check => check,
        };
        return format!("{base}{check}");
    }
}

fn operator(index: usize) -> (String, String) {
    match OPERATORS.get(index) {
        Some((name, org)) => ((*name).to_owned(), (*org).to_owned()),
        None => (
            format!("Validator operator {index}"),
            generated_org_number(index),
        ),
    }
}

/// Free loopback ports, found by binding port 0. They are released before the processes bind
/// them, so another program could take one in between; `up` reports that as a start failure.
fn free_addresses(count: usize) -> anyhow::Result<Vec<SocketAddr>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("cannot find free loopback ports")?;
    listeners
        .iter()
        .map(|listener| listener.local_addr().map_err(Into::into))
        .collect()
}

/// What `create` writes.
pub struct Created {
    pub state: NetworkState,
    pub routes: Vec<Route>,
}

/// Test-only behaviour of some validators, by index: attacks and clock skew.
pub type Testing = BTreeMap<usize, TestingConfig>;

/// Checks that `testing` names validators of 0..`count` and that this build can run it.
pub fn check_testing(testing: &Testing, count: usize) -> anyhow::Result<()> {
    for (index, config) in testing {
        anyhow::ensure!(
            *index < count,
            "the misbehaving validator {index} is not one of 0..{count}"
        );
        anyhow::ensure!(
            config.is_off() || varde_node::config::TESTING_SUPPORTED,
            "validator {index}: Byzantine validators and clock skew need a varde built with the \
             test-only feature `byzantine-test` (cargo build -p varde-cli --features byzantine-test)"
        );
    }
    Ok(())
}

/// Writes keys, genesis, configs and relay routes for `count` validators into a fresh directory.
/// `testing` gives some validators a Byzantine behaviour or a skewed clock.
pub fn create(
    layout: &Layout,
    count: usize,
    testing: &Testing,
    genesis_time_unix_ms: i64,
) -> anyhow::Result<Created> {
    anyhow::ensure!(
        (1..=VALIDATORS_MAX).contains(&count),
        "a local network has 1 to {VALIDATORS_MAX} validators, not {count}"
    );
    check_testing(testing, count)?;
    std::fs::create_dir_all(layout.keys())?;
    std::fs::create_dir_all(layout.logs())?;
    let validator_keys: Vec<ed25519_dalek::SigningKey> = (0..count)
        .map(|_| ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>()))
        .collect();
    let mut demo_keys = DemoKeys::generate();
    demo_keys.keys[demo::ALL.len() - 1] = validator_keys[0].clone();
    demo_keys.write(&layout.keys())?;

    let mut genesis: Genesis = demo_keys.genesis(demo::CHAIN_ID, genesis_time_unix_ms);
    genesis
        .institutions
        .retain(|institution| !institution.has_role(Role::Validator));
    for (index, key) in validator_keys.iter().enumerate() {
        let (name, org) = operator(index);
        genesis.institutions.push(Institution {
            org_number: OrgNumber::parse(&org)
                .map_err(|error| anyhow::anyhow!("operator {index}: {error}"))?,
            name,
            roles: vec![Role::Validator],
            // The node's key is the operator's consensus key; operators submit nothing.
            public_keys: Vec::new(),
            validator_key: Some(key.verifying_key().to_bytes()),
        });
    }
    std::fs::write(
        layout.genesis(),
        serde_json::to_string_pretty(&genesis).expect("a genesis serialises"),
    )?;

    let addresses = free_addresses(count * 3 + count * count.saturating_sub(1))?;
    let (node_addresses, route_addresses) = addresses.split_at(count * 3);
    let mut nodes = Vec::with_capacity(count);
    for (index, key) in validator_keys.iter().enumerate() {
        nodes.push(NodeState {
            index,
            operator: operator(index).0,
            public_key: varde_ledger::hex::encode(&key.verifying_key().to_bytes()),
            grpc: node_addresses[index * 3],
            metrics: node_addresses[index * 3 + 1],
            peer: node_addresses[index * 3 + 2],
            pid: None,
            testing: testing.get(&index).cloned().unwrap_or_default(),
        });
    }
    // Node I reaches node J through the relay's route I→J.
    let mut routes = Vec::new();
    let mut route_address = route_addresses.iter();
    for from in 0..count {
        for to in (0..count).filter(|to| *to != from) {
            routes.push(Route {
                from,
                to,
                listen: *route_address.next().expect("one address per route"),
                target: nodes[to].peer,
            });
        }
    }
    write_tls(layout, count)?;
    for (index, key) in validator_keys.iter().enumerate() {
        let node_dir = layout.node_dir(index);
        std::fs::create_dir_all(&node_dir)?;
        varde_ledger::keyfile::write_signing_key(&node_dir.join("validator.pem"), key)?;
        let mut config = NodeConfig::new(
            PathBuf::from("db"),
            PathBuf::from("../genesis.json"),
            PathBuf::from("validator.pem"),
            nodes[index].grpc,
        );
        config.grpc_tls = Some(grpc_tls(index));
        config.metrics_listen_address = Some(nodes[index].metrics);
        config.block.empty_block_wait_ms = 500;
        // A local network idles too, but its tests and demos wait for blocks: one every 2 s.
        config.block.heartbeat_ms = 2_000;
        // Loopback links carry a proposal in milliseconds: a second is ample, and a crashed or
        // Byzantine proposer then costs its heights one second each rather than three.
        config.consensus.propose_timeout_ms = 1_000;
        config.network = Some(NetworkConfig {
            listen_address: nodes[index].peer,
            peers: routes
                .iter()
                .filter(|route| route.from == index)
                .map(|route| PeerConfig {
                    public_key: nodes[route.to].public_key.clone(),
                    address: route.listen,
                })
                .collect(),
            observers: Vec::new(),
        });
        config.testing = nodes[index].testing.clone();
        std::fs::write(layout.node_config(index), config.to_toml())?;
    }
    crate::relay::write_routes(&layout.root, &routes)?;
    let state = NetworkState {
        chain_id: demo::CHAIN_ID.to_owned(),
        nodes,
        relay_pid: None,
    };
    layout.write_state(&state)?;
    Ok(Created { state, routes })
}

/// A local CA and one loopback gRPC certificate per validator, in `DIR/tls/`.
fn write_tls(layout: &Layout, count: usize) -> anyhow::Result<()> {
    let nodes: Vec<_> = (0..count)
        .map(|index| {
            (
                format!("Varde validator {index}"),
                layout.node_certificate(index),
                layout.node_tls_key(index),
            )
        })
        .collect();
    varde_node::tls::write_local_pki(
        &format!("testnet {}", layout.root.display()),
        &layout.ca_certificate(),
        &nodes,
    )
}

/// Validator `index`'s `[grpc_tls]`, relative to its config file.
fn grpc_tls(index: usize) -> varde_node::config::GrpcTlsConfig {
    varde_node::config::GrpcTlsConfig::files(
        PathBuf::from(format!("../tls/node-{index}.pem")),
        PathBuf::from(format!("../tls/node-{index}-key.pem")),
    )
}

/// A network made before gRPC had TLS gets its CA, certificates and `[grpc_tls]` sections once;
/// a network that has them keeps them. Returns whether anything was added.
pub fn add_tls_if_missing(layout: &Layout, state: &NetworkState) -> anyhow::Result<bool> {
    if layout.ca_certificate().exists() {
        return Ok(false);
    }
    write_tls(layout, state.nodes.len())?;
    for node in &state.nodes {
        let path = layout.node_config(node.index);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut config = NodeConfig::from_toml_unvalidated(&text)
            .with_context(|| format!("{} is not a valid node config", path.display()))?;
        config.grpc_tls = Some(grpc_tls(node.index));
        std::fs::write(&path, config.to_toml())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Generated operators get organisation numbers the ledger accepts, all different.
    #[test]
    fn generated_org_numbers_are_valid_and_distinct() {
        let numbers: Vec<String> = (0..VALIDATORS_MAX).map(|index| operator(index).1).collect();
        for number in &numbers {
            OrgNumber::parse(number).unwrap();
        }
        let mut unique = numbers.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), numbers.len());
    }

    // A network of four has four validator configs that reach each peer through its own route,
    // a genesis with four validators, and refuses a fifth Byzantine index.
    #[test]
    fn four_validators_are_laid_out() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        let equivocating = TestingConfig {
            attacks: vec![Attack::Equivocate],
            clock_offset_ms: 0,
        };
        // Without the test-only feature no validator may misbehave.
        let testing = if varde_node::config::TESTING_SUPPORTED {
            Testing::from([(3, equivocating.clone())])
        } else {
            assert!(create(&layout, 4, &Testing::from([(3, equivocating)]), 0).is_err());
            return;
        };
        let created = create(&layout, 4, &testing, 0).unwrap();
        assert_eq!(created.routes.len(), 12);
        let genesis: Genesis =
            serde_json::from_str(&std::fs::read_to_string(layout.genesis()).unwrap()).unwrap();
        let membership = varde_ledger::membership::Membership::from_genesis(&genesis).unwrap();
        assert_eq!(membership.validator_keys().len(), 4);
        let config = NodeConfig::load(&layout.node_config(1)).unwrap();
        let tls = config.grpc_tls.clone().unwrap();
        assert_eq!(
            tls.certificate_chain_path.unwrap(),
            layout.node_dir(1).join("../tls/node-1.pem")
        );
        varde_node::tls::server_tls_config(config.grpc_tls.as_ref().unwrap())
            .unwrap()
            .expect("validators serve TLS");
        layout.read_ca().unwrap();
        let network = config.network.unwrap();
        assert_eq!(network.peers.len(), 3);
        for peer in &network.peers {
            let route = created
                .routes
                .iter()
                .find(|route| route.listen == peer.address)
                .unwrap();
            assert_eq!(route.from, 1);
            assert_eq!(created.state.nodes[route.to].public_key, peer.public_key);
        }
        assert_eq!(
            NodeConfig::from_toml_unvalidated(
                &std::fs::read_to_string(layout.node_config(3)).unwrap()
            )
            .unwrap()
            .testing,
            equivocating
        );
        assert_eq!(layout.read_state().unwrap(), created.state);
        let other = tempfile::tempdir().unwrap();
        let fifth = Testing::from([(4, equivocating)]);
        assert!(create(&Layout::new(other.path()), 4, &fifth, 0).is_err());
    }
}
