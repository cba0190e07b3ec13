//! The node's TOML configuration and its validation. Every error names the field and says what is
//! wrong, so that an operator can fix the file without reading code. It lives here, not in the
//! node, so that it is parsed by the same code in the fuzz targets, which build without RocksDB.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Where the node keeps its database. Relative paths are relative to the config file.
    pub data_dir: PathBuf,
    /// The genesis file (JSON) of the chain this node belongs to.
    pub genesis_path: PathBuf,
    /// This validator's Ed25519 signing key (PKCS#8 PEM).
    pub validator_key_path: PathBuf,
    /// A consensus key that governance rotates this validator to (PKCS#8 PEM), if any. The node
    /// signs with whichever of its keys is in the validator set, and moves to this one at the
    /// height the rotation takes effect, without a restart (`varde gov propose
    /// rotate-validator-key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_validator_key_path: Option<PathBuf>,
    /// Where the gRPC API listens, e.g. "127.0.0.1:50051".
    pub grpc_listen_address: SocketAddr,
    /// Where Prometheus metrics are served (GET /metrics, plain HTTP); absent: no metrics endpoint.
    #[serde(default)]
    pub metrics_listen_address: Option<SocketAddr>,
    #[serde(default)]
    pub log_format: LogFormat,
    /// How gRPC is served: TLS with a certificate chain and key (PEM files), or plaintext on a
    /// loopback address when this says so explicitly. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_tls: Option<GrpcTlsConfig>,
    #[serde(default)]
    pub mempool: MempoolConfig,
    #[serde(default)]
    pub block: BlockConfig,
    #[serde(default)]
    pub consensus: ConsensusConfig,
    /// The validator network; absent: a single validator with no peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkConfig>,
    #[serde(default, skip_serializing_if = "TestingConfig::is_off")]
    pub testing: TestingConfig,
}

/// TLS of the gRPC API (`[grpc_tls]`): either both PEM files, or `plaintext = true`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcTlsConfig {
    /// The server's certificate chain (PEM): its own certificate first, then any intermediates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_chain_path: Option<PathBuf>,
    /// The private key of the first certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key_path: Option<PathBuf>,
    /// Serve gRPC without TLS. Allowed only on a loopback `grpc_listen_address`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub plaintext: bool,
}

impl GrpcTlsConfig {
    /// TLS with the certificate chain and key in these PEM files.
    pub fn files(certificate_chain_path: PathBuf, private_key_path: PathBuf) -> Self {
        Self {
            certificate_chain_path: Some(certificate_chain_path),
            private_key_path: Some(private_key_path),
            plaintext: false,
        }
    }

    /// No TLS (loopback addresses only).
    pub fn plaintext() -> Self {
        Self {
            plaintext: true,
            ..Self::default()
        }
    }

    fn validate(&self, listen: SocketAddr) -> Result<(), ConfigError> {
        let error = |field: &str, problem: String| ConfigError {
            field: format!("grpc_tls.{field}"),
            problem,
        };
        if self.plaintext {
            if self.certificate_chain_path.is_some() || self.private_key_path.is_some() {
                return Err(error(
                    "plaintext",
                    "cannot be combined with certificate_chain_path or private_key_path; \
                     remove `plaintext = true` to serve TLS, or remove the files"
                        .to_owned(),
                ));
            }
            if !listen.ip().is_loopback() {
                return Err(error(
                    "plaintext",
                    format!(
                        "is only allowed on a loopback grpc_listen_address (127.0.0.1 or ::1), \
                         got {listen}; to serve other hosts give grpc_tls.certificate_chain_path \
                         and grpc_tls.private_key_path (PEM) instead"
                    ),
                ));
            }
            return Ok(());
        }
        for (field, value) in [
            ("certificate_chain_path", &self.certificate_chain_path),
            ("private_key_path", &self.private_key_path),
        ] {
            match value {
                None => {
                    return Err(error(
                        field,
                        "missing: gRPC is served over TLS, which needs certificate_chain_path \
                         and private_key_path (PEM files); `plaintext = true` serves without TLS \
                         on a loopback address"
                            .to_owned(),
                    ));
                }
                Some(path) => check_path(&format!("grpc_tls.{field}"), path)?,
            }
        }
        Ok(())
    }
}

/// The peer-to-peer network of a validator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Where this node listens for its peers, e.g. "0.0.0.0:26656".
    pub listen_address: SocketAddr,
    /// The validators to dial: each one's public key (hex) and address.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    /// Public keys (hex) of non-validator nodes allowed to connect; every other key but the
    /// validators' is refused at the handshake.
    #[serde(default)]
    pub observers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub public_key: String,
    pub address: SocketAddr,
}

/// Behaviour for tests of the network's fault tolerance (`[testing]`). Refused unless
/// varde-node is built with the feature `byzantine-test`, so that no production build can be
/// configured into misbehaving.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestingConfig {
    /// Byzantine behaviours of this validator's network layer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attacks: Vec<Attack>,
    /// Added to this node's wall clock (block times, clock-drift checks, expiries).
    #[serde(skip_serializing_if = "is_zero")]
    pub clock_offset_ms: i64,
}

/// A Byzantine behaviour, carried out by the network layer (`p2p/byzantine.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attack {
    /// Every proposal and vote is followed by a conflicting one, signed with the same key.
    Equivocate,
    /// Half of the peers get the proposals and votes, the other half conflicting ones.
    SplitViews,
    /// Sync requests are answered with a block dated a day ahead under a one-signature
    /// certificate.
    FutureSync,
    /// Votes with invalid signatures, sent as fast as the connections take them.
    VoteFlood,
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

/// Whether this build accepts a `[testing]` section (feature `byzantine-test`).
pub const TESTING_SUPPORTED: bool = cfg!(feature = "byzantine-test");

/// The largest clock offset accepted: an hour either way.
pub const CLOCK_OFFSET_MAX_MS: i64 = 3_600_000;

impl TestingConfig {
    pub fn is_off(&self) -> bool {
        self.attacks.is_empty() && self.clock_offset_ms == 0
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.is_off() {
            return Ok(());
        }
        if !TESTING_SUPPORTED {
            return Err(ConfigError {
                field: "testing".to_owned(),
                problem: "this varde-node is built without the test-only feature \
                          `byzantine-test`; remove the [testing] section (it makes a validator \
                          misbehave, for fault-tolerance tests only)"
                    .to_owned(),
            });
        }
        check_range(
            "testing.clock_offset_ms",
            self.clock_offset_ms,
            -CLOCK_OFFSET_MAX_MS,
            CLOCK_OFFSET_MAX_MS,
        )
    }
}

/// Parses a 32-byte key written as 64 hex digits.
pub fn parse_public_key(field: &str, text: &str) -> Result<[u8; 32], ConfigError> {
    crate::hex::decode(text)
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| ConfigError {
            field: field.to_owned(),
            problem: format!("must be a 32-byte public key in 64 hex digits, got `{text}`"),
        })
}

impl NetworkConfig {
    /// The peers' keys, parsed; the first bad one is named.
    pub fn peer_keys(&self) -> Result<Vec<[u8; 32]>, ConfigError> {
        self.peers
            .iter()
            .enumerate()
            .map(|(index, peer)| {
                parse_public_key(
                    &format!("network.peers[{index}].public_key"),
                    &peer.public_key,
                )
            })
            .collect()
    }

    pub fn observer_keys(&self) -> Result<Vec<[u8; 32]>, ConfigError> {
        self.observers
            .iter()
            .enumerate()
            .map(|(index, key)| parse_public_key(&format!("network.observers[{index}]"), key))
            .collect()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let keys = self.peer_keys()?;
        self.observer_keys()?;
        for (index, key) in keys.iter().enumerate() {
            if keys[..index].contains(key) {
                return Err(ConfigError {
                    field: format!("network.peers[{index}].public_key"),
                    problem: "is listed twice".to_owned(),
                });
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolConfig {
    /// The most transactions waiting at once.
    pub max_transactions: usize,
    /// The most bytes of encoded transactions waiting at once.
    pub max_bytes: usize,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            max_transactions: 10_000,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlockConfig {
    /// The most transactions in one block.
    pub max_transactions: usize,
    /// The most bytes of encoded transactions in one block.
    pub max_bytes: usize,
    /// How long a proposer waits for transactions before proposing an empty block.
    pub empty_block_wait_ms: u64,
    /// The longest an idle network goes without a block: after a block, a validator with no
    /// transaction waiting starts the next height only when one arrives, another validator starts
    /// it, or this passes (then an empty block, the heartbeat, is committed). 0: no idling, an
    /// empty block every `empty_block_wait_ms`.
    pub heartbeat_ms: u64,
}

/// The default heartbeat: an idle network commits 8,640 empty blocks a day instead of 86,400.
pub const HEARTBEAT_MS_DEFAULT: u64 = 10_000;

impl Default for BlockConfig {
    fn default() -> Self {
        Self {
            max_transactions: 1_000,
            max_bytes: 4 * 1024 * 1024,
            empty_block_wait_ms: 1_000,
            heartbeat_ms: HEARTBEAT_MS_DEFAULT,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusConfig {
    pub propose_timeout_ms: u64,
    pub prevote_timeout_ms: u64,
    pub precommit_timeout_ms: u64,
    /// Added to each timeout per round, so that rounds eventually outlast the message delay.
    pub timeout_increase_per_round_ms: u64,
    pub rebroadcast_interval_ms: u64,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        let defaults = varde_consensus::Timeouts::default();
        Self {
            propose_timeout_ms: defaults.propose_ms.max(3_000),
            prevote_timeout_ms: defaults.prevote_ms,
            precommit_timeout_ms: defaults.precommit_ms,
            timeout_increase_per_round_ms: defaults.increase_per_round_ms,
            rebroadcast_interval_ms: defaults.rebroadcast_ms,
        }
    }
}

impl ConsensusConfig {
    pub fn timeouts(&self) -> varde_consensus::Timeouts {
        varde_consensus::Timeouts {
            propose_ms: self.propose_timeout_ms,
            prevote_ms: self.prevote_timeout_ms,
            precommit_ms: self.precommit_timeout_ms,
            increase_per_round_ms: self.timeout_increase_per_round_ms,
            rebroadcast_ms: self.rebroadcast_interval_ms,
        }
    }
}

/// A configuration that cannot be used, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ConfigError {
    pub field: String,
    pub problem: String,
}

/// Reading or parsing the file failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("config file {path}: {error}")]
    Invalid { path: String, error: ConfigError },
}

fn check_range<T: PartialOrd + std::fmt::Display + Copy>(
    field: &str,
    value: T,
    min: T,
    max: T,
) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError {
            field: field.to_owned(),
            problem: format!("must be between {min} and {max}, got {value}"),
        });
    }
    Ok(())
}

fn check_path(field: &str, value: &Path) -> Result<(), ConfigError> {
    if value.as_os_str().is_empty() {
        return Err(ConfigError {
            field: field.to_owned(),
            problem: "must not be empty".to_owned(),
        });
    }
    Ok(())
}

impl NodeConfig {
    /// A configuration with defaults for everything but the paths and the gRPC address. Set
    /// `grpc_tls` before use: a config without it does not validate.
    pub fn new(
        data_dir: PathBuf,
        genesis_path: PathBuf,
        validator_key_path: PathBuf,
        grpc_listen_address: SocketAddr,
    ) -> Self {
        Self {
            data_dir,
            genesis_path,
            validator_key_path,
            next_validator_key_path: None,
            grpc_listen_address,
            grpc_tls: None,
            metrics_listen_address: None,
            log_format: LogFormat::Human,
            mempool: MempoolConfig::default(),
            block: BlockConfig::default(),
            consensus: ConsensusConfig::default(),
            network: None,
            testing: TestingConfig::default(),
        }
    }

    /// Parses TOML text and validates it.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: NodeConfig = toml::from_str(text).map_err(|error| ConfigError {
            field: "config".to_owned(),
            problem: error.message().to_owned(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a config file; relative paths become relative to its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut config: NodeConfig =
            toml::from_str(&text).map_err(|error| ConfigFileError::Parse {
                path: path.display().to_string(),
                message: error.to_string(),
            })?;
        config
            .validate()
            .map_err(|error| ConfigFileError::Invalid {
                path: path.display().to_string(),
                error,
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let tls = config.grpc_tls.as_mut();
        let (chain, key) = match tls {
            Some(tls) => (
                tls.certificate_chain_path.as_mut(),
                tls.private_key_path.as_mut(),
            ),
            None => (None, None),
        };
        for field in [
            Some(&mut config.data_dir),
            Some(&mut config.genesis_path),
            Some(&mut config.validator_key_path),
            config.next_validator_key_path.as_mut(),
            chain,
            key,
        ]
        .into_iter()
        .flatten()
        {
            if field.is_relative() {
                *field = base.join(&*field);
            }
        }
        Ok(config)
    }

    /// Parses TOML text without validating it (paths stay as written): for tools that rewrite a
    /// config file, e.g. to add a section that an older version did not write.
    pub fn from_toml_unvalidated(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|error| ConfigError {
            field: "config".to_owned(),
            problem: error.message().to_owned(),
        })
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the node config always serialises")
    }

    /// Checks every bound; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_path("data_dir", &self.data_dir)?;
        check_path("genesis_path", &self.genesis_path)?;
        check_path("validator_key_path", &self.validator_key_path)?;
        if let Some(next) = &self.next_validator_key_path {
            check_path("next_validator_key_path", next)?;
        }
        match &self.grpc_tls {
            None => {
                return Err(ConfigError {
                    field: "grpc_tls".to_owned(),
                    problem: "missing: gRPC is served over TLS; add a [grpc_tls] section with \
                              certificate_chain_path and private_key_path (PEM files), or \
                              `plaintext = true` to serve without TLS on a loopback address"
                        .to_owned(),
                });
            }
            Some(tls) => tls.validate(self.grpc_listen_address)?,
        }
        if let Some(metrics) = self.metrics_listen_address {
            if metrics == self.grpc_listen_address && metrics.port() != 0 {
                return Err(ConfigError {
                    field: "metrics_listen_address".to_owned(),
                    problem: format!("must differ from grpc_listen_address, both are {metrics}"),
                });
            }
        }
        check_range(
            "mempool.max_transactions",
            self.mempool.max_transactions,
            1,
            1_000_000,
        )?;
        check_range(
            "mempool.max_bytes",
            self.mempool.max_bytes,
            64 * 1024,
            4 * 1024 * 1024 * 1024,
        )?;
        check_range(
            "block.max_transactions",
            self.block.max_transactions,
            1,
            100_000,
        )?;
        check_range(
            "block.max_bytes",
            self.block.max_bytes,
            64 * 1024,
            64 * 1024 * 1024,
        )?;
        if self.block.max_transactions > self.mempool.max_transactions {
            return Err(ConfigError {
                field: "block.max_transactions".to_owned(),
                problem: format!(
                    "must not exceed mempool.max_transactions ({}), got {}",
                    self.mempool.max_transactions, self.block.max_transactions
                ),
            });
        }
        check_range(
            "consensus.propose_timeout_ms",
            self.consensus.propose_timeout_ms,
            50,
            600_000,
        )?;
        check_range(
            "consensus.prevote_timeout_ms",
            self.consensus.prevote_timeout_ms,
            10,
            600_000,
        )?;
        check_range(
            "consensus.precommit_timeout_ms",
            self.consensus.precommit_timeout_ms,
            10,
            600_000,
        )?;
        check_range(
            "consensus.timeout_increase_per_round_ms",
            self.consensus.timeout_increase_per_round_ms,
            0,
            600_000,
        )?;
        check_range(
            "consensus.rebroadcast_interval_ms",
            self.consensus.rebroadcast_interval_ms,
            10,
            600_000,
        )?;
        if let Some(network) = &self.network {
            network.validate()?;
        }
        self.testing.validate()?;
        if self.block.heartbeat_ms != 0
            && !(self.block.empty_block_wait_ms..=3_600_000).contains(&self.block.heartbeat_ms)
        {
            return Err(ConfigError {
                field: "block.heartbeat_ms".to_owned(),
                problem: format!(
                    "must be 0 (no idling) or between block.empty_block_wait_ms ({}) and \
                     3600000, got {}",
                    self.block.empty_block_wait_ms, self.block.heartbeat_ms
                ),
            });
        }
        // The proposer must answer well within the propose timeout, or it times itself out.
        if self.block.empty_block_wait_ms.saturating_mul(2) > self.consensus.propose_timeout_ms {
            return Err(ConfigError {
                field: "block.empty_block_wait_ms".to_owned(),
                problem: format!(
                    "must be at most half of consensus.propose_timeout_ms ({}), got {}",
                    self.consensus.propose_timeout_ms, self.block.empty_block_wait_ms
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
data_dir = "data"
genesis_path = "genesis.json"
validator_key_path = "validator.pem"
grpc_listen_address = "127.0.0.1:50051"
grpc_tls = { plaintext = true }
"#;

    // A minimal file parses, takes the defaults and validates.
    #[test]
    fn minimal_config_takes_defaults() {
        let config = NodeConfig::from_toml(MINIMAL).unwrap();
        assert_eq!(config.mempool, MempoolConfig::default());
        assert_eq!(config.log_format, LogFormat::Human);
        assert_eq!(config.metrics_listen_address, None);
    }

    // Writing a config and reading it back gives the same config.
    #[test]
    fn config_round_trips_through_toml() {
        let mut config = NodeConfig::from_toml(MINIMAL).unwrap();
        config.metrics_listen_address = Some("127.0.0.1:9100".parse().unwrap());
        config.log_format = LogFormat::Json;
        assert_eq!(NodeConfig::from_toml(&config.to_toml()).unwrap(), config);
    }

    // A zero mempool bound is refused with the field, the range and the value.
    #[test]
    fn zero_mempool_is_refused_naming_the_field() {
        let text = format!("{MINIMAL}\n[mempool]\nmax_transactions = 0\n");
        let error = NodeConfig::from_toml(&text).unwrap_err();
        assert_eq!(
            error.to_string(),
            "mempool.max_transactions: must be between 1 and 1000000, got 0"
        );
    }

    // An unknown key, a bad log format and a bad address are parse errors that say so.
    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let unknown = format!("{MINIMAL}\nmempool_size = 3\n");
        assert!(
            NodeConfig::from_toml(&unknown)
                .unwrap_err()
                .problem
                .contains("mempool_size")
        );
        let format = format!("{MINIMAL}\nlog_format = \"xml\"\n");
        assert!(NodeConfig::from_toml(&format).is_err());
        let address = MINIMAL.replace("127.0.0.1:50051", "localhost");
        assert!(NodeConfig::from_toml(&address).is_err());
    }

    // Blocks larger than the mempool, and an empty-block wait too close to the propose timeout, are refused.
    #[test]
    fn inconsistent_limits_are_refused() {
        let text = format!(
            "{MINIMAL}\n[mempool]\nmax_transactions = 10\n[block]\nmax_transactions = 20\n"
        );
        let error = NodeConfig::from_toml(&text).unwrap_err();
        assert_eq!(error.field, "block.max_transactions");
        let text = format!(
            "{MINIMAL}\n[block]\nempty_block_wait_ms = 900\n[consensus]\npropose_timeout_ms = 1000\n"
        );
        let error = NodeConfig::from_toml(&text).unwrap_err();
        assert_eq!(error.field, "block.empty_block_wait_ms");
        let text = format!("{MINIMAL}\n[consensus]\nprevote_timeout_ms = 1\n");
        assert_eq!(
            NodeConfig::from_toml(&text).unwrap_err().to_string(),
            "consensus.prevote_timeout_ms: must be between 10 and 600000, got 1"
        );
    }

    // A network section parses; a malformed or repeated peer key is refused by its index.
    #[test]
    fn network_section_is_checked() {
        let key = "ab".repeat(32);
        let text = format!(
            "{MINIMAL}\n[network]\nlisten_address = \"127.0.0.1:26656\"\n\
             [[network.peers]]\npublic_key = \"{key}\"\naddress = \"127.0.0.1:26657\"\n"
        );
        let config = NodeConfig::from_toml(&text).unwrap();
        assert_eq!(
            config.network.as_ref().unwrap().peer_keys().unwrap(),
            vec![[0xab; 32]]
        );
        assert_eq!(NodeConfig::from_toml(&config.to_toml()).unwrap(), config);
        let short = text.replace(&key, "abcd");
        assert_eq!(
            NodeConfig::from_toml(&short).unwrap_err().field,
            "network.peers[0].public_key"
        );
        let twice = format!(
            "{text}[[network.peers]]\npublic_key = \"{key}\"\naddress = \"127.0.0.1:26658\"\n"
        );
        let error = NodeConfig::from_toml(&twice).unwrap_err();
        assert_eq!(
            error.to_string(),
            "network.peers[1].public_key: is listed twice"
        );
    }

    // Without a [grpc_tls] section the config is refused with what to add.
    #[test]
    fn grpc_tls_is_required() {
        let text = MINIMAL.replace("grpc_tls = { plaintext = true }", "");
        let error = NodeConfig::from_toml(&text).unwrap_err();
        assert_eq!(error.field, "grpc_tls");
        assert!(error.problem.contains("certificate_chain_path"), "{error}");
        assert!(error.problem.contains("plaintext = true"), "{error}");
    }

    // Plaintext is refused on a non-loopback address (saying to give the PEM files), and when
    // combined with certificate files; it is accepted on ::1.
    #[test]
    fn plaintext_only_on_loopback() {
        let text = MINIMAL.replace("127.0.0.1:50051", "0.0.0.0:50051");
        let error = NodeConfig::from_toml(&text).unwrap_err();
        assert_eq!(error.field, "grpc_tls.plaintext");
        assert!(error.problem.contains("loopback"), "{error}");
        assert!(error.problem.contains("0.0.0.0:50051"), "{error}");
        assert!(error.problem.contains("certificate_chain_path"), "{error}");
        let text = MINIMAL.replace("127.0.0.1:50051", "10.0.0.7:50051");
        assert_eq!(
            NodeConfig::from_toml(&text).unwrap_err().field,
            "grpc_tls.plaintext"
        );
        let text = MINIMAL.replace("127.0.0.1:50051", "[::1]:50051");
        NodeConfig::from_toml(&text).unwrap();
        let text = MINIMAL.replace(
            "{ plaintext = true }",
            "{ plaintext = true, certificate_chain_path = \"tls/chain.pem\" }",
        );
        assert_eq!(
            NodeConfig::from_toml(&text).unwrap_err().field,
            "grpc_tls.plaintext"
        );
    }

    // TLS needs both files; a missing one is named. With both it parses on any address, round
    // trips, and `load` resolves the files relative to the config file.
    #[test]
    fn tls_files_are_required_and_resolved() {
        let public = MINIMAL.replace("127.0.0.1:50051", "0.0.0.0:50051");
        let text = public.replace(
            "{ plaintext = true }",
            "{ certificate_chain_path = \"tls/chain.pem\" }",
        );
        let error = NodeConfig::from_toml(&text).unwrap_err();
        assert_eq!(error.field, "grpc_tls.private_key_path");
        assert!(error.problem.starts_with("missing"), "{error}");
        let text = public.replace(
            "{ plaintext = true }",
            "{ certificate_chain_path = \"tls/chain.pem\", private_key_path = \"tls/key.pem\" }",
        );
        let config = NodeConfig::from_toml(&text).unwrap();
        assert_eq!(NodeConfig::from_toml(&config.to_toml()).unwrap(), config);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, config.to_toml()).unwrap();
        let loaded = NodeConfig::load(&path).unwrap();
        let tls = loaded.grpc_tls.unwrap();
        assert_eq!(
            tls.certificate_chain_path.unwrap(),
            dir.path().join("tls/chain.pem")
        );
        assert_eq!(
            tls.private_key_path.unwrap(),
            dir.path().join("tls/key.pem")
        );
        assert!(!tls.plaintext);
    }

    // A [testing] section is refused by a build without the test-only feature; with it, the
    // clock offset is bounded.
    #[test]
    fn testing_section_needs_the_test_feature() {
        let text = format!("{MINIMAL}\n[testing]\nattacks = [\"vote-flood\"]\n");
        let result = NodeConfig::from_toml(&text);
        if cfg!(feature = "byzantine-test") {
            let config = result.unwrap();
            assert_eq!(config.testing.attacks, vec![Attack::VoteFlood]);
            assert_eq!(NodeConfig::from_toml(&config.to_toml()).unwrap(), config);
            let skewed = format!("{MINIMAL}\n[testing]\nclock_offset_ms = 3600001\n");
            assert_eq!(
                NodeConfig::from_toml(&skewed).unwrap_err().field,
                "testing.clock_offset_ms"
            );
        } else {
            let error = result.unwrap_err();
            assert_eq!(error.field, "testing");
            assert!(error.problem.contains("byzantine-test"), "{error}");
        }
        let unknown = format!("{MINIMAL}\n[testing]\nattacks = [\"lie\"]\n");
        assert!(NodeConfig::from_toml(&unknown).is_err());
    }

    // An empty path is refused by name.
    #[test]
    fn empty_paths_are_refused() {
        let text = MINIMAL.replace("\"data\"", "\"\"");
        assert_eq!(NodeConfig::from_toml(&text).unwrap_err().field, "data_dir");
    }
}
