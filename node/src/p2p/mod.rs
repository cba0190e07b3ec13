//! The validator network over libp2p (ARCHITECTURE.md, "Network"): TCP + Noise + Yamux, the validator's Ed25519
//! key as its libp2p identity.
//!
//! - **Gating.** Only the validators of the current set and the configured observers are
//!   allowed; any other peer is refused as soon as the Noise handshake has proved its key, before
//!   a protocol runs. The gate follows governance: at a height boundary that changes the set, a
//!   removed validator is cut and refused, a new one let in, and a node whose consensus key was
//!   rotated builds its swarm again under the new key.
//! - **Protocols** (request-response, [`codec`] frames with a size limit each):
//!   `/varde/consensus/1` consensus messages to every validator, `/varde/transactions/1` admitted
//!   transactions to every validator, `/varde/sync/1` committed blocks with their certificates.
//! - **Validation.** Every inbound frame is decoded and checked (lengths, required fields, the
//!   transactions' signatures through mempool admission, the consensus messages' signatures
//!   against the validator set) before it reaches the engine or the mempool. A peer that sends
//!   invalid data, or an observer that sends consensus messages, is disconnected and counted in
//!   metrics. Each peer has its share of the driver's inbox ([`budget`]).
//! - **Reconnection.** Lost or failed connections to validators are dialled again with backoff.
//!
//! One task owns the swarm ([`NetworkTask::run`]); the driver reaches it through [`P2pNetwork`].

mod admission;
mod budget;
mod byzantine;
pub mod codec;
mod frames;
pub mod redial;
mod sets;
mod task;

pub use task::NetworkTask;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{Multiaddr, PeerId, StreamProtocol, allow_block_list, identity};
use prost::Message as _;
use tokio::sync::{mpsc, watch};
use varde_consensus::{Height, Message, ValidatorSet};
use varde_ledger::consensus_wire;
use varde_proto::v1;
use varde_storage::Store;

use crate::context::NodeContext;
use crate::network::Network;
use codec::{FrameCodec, FrameLimits};

pub const CONSENSUS_PROTOCOL: StreamProtocol = StreamProtocol::new("/varde/consensus/1");
pub const TRANSACTIONS_PROTOCOL: StreamProtocol = StreamProtocol::new("/varde/transactions/1");
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/varde/sync/1");

/// The most blocks one sync response carries.
pub const SYNC_BLOCKS_MAX: u32 = 64;
/// A sync response stops adding blocks past this many bytes (it always carries at least one).
pub const SYNC_RESPONSE_BUDGET_BYTES: usize = 16 * 1024 * 1024;
/// How many bytes of transactions one gossip frame carries at most.
pub const GOSSIP_BATCH_BYTES: usize = 1024 * 1024;
/// Transactions waiting to be gossiped; beyond this, admission still succeeds but the
/// transaction is not gossiped (it stays in this node's mempool for its own proposals).
pub const GOSSIP_QUEUE_CAPACITY: usize = 16_384;
/// A gossip frame leaves at most this often per peer: the first transaction after a quiet spell
/// goes at once, those that follow within the pace ride together in the next frame.
pub const GOSSIP_PACE: Duration = Duration::from_millis(2);
/// Substreams of one protocol open at once on one connection (each frame is a substream);
/// beyond it libp2p drops inbound ones. Consensus under load keeps a few dozen open.
const STREAMS_PER_PROTOCOL_MAX: usize = 1_024;
const COMMAND_QUEUE_CAPACITY: usize = 4_096;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections stay open while idle: validators talk to each other for as long as they run.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// A validator to connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddress {
    pub public_key: [u8; 32],
    pub address: SocketAddr,
}

/// What the network needs to start.
#[derive(Debug, Clone)]
pub struct NetworkSettings {
    pub listen_address: SocketAddr,
    /// The validators this node dials (others may still dial it).
    pub peers: Vec<PeerAddress>,
    /// Keys of the validator set: allowed to connect and sent consensus messages.
    pub validators: Vec<[u8; 32]>,
    /// Keys of non-validator nodes allowed to connect (they may sync blocks).
    pub observers: Vec<[u8; 32]>,
    /// The largest consensus frame accepted (a proposal carries a whole block).
    pub consensus_frame_bytes_max: usize,
    /// Test-only misbehaviour (`[testing] attacks`; none without the `byzantine-test` feature).
    pub attacks: Vec<crate::config::Attack>,
}

/// Who passes the connection gate, and who of them is a validator (sent consensus messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    /// Every peer allowed to connect: the validators and the observers.
    pub allowed: BTreeSet<PeerId>,
    /// The other validators (this node's own peer id left out).
    pub validators: BTreeSet<PeerId>,
}

impl Gate {
    /// The gate of `settings`: `settings.validators` are the validator set's consensus keys
    /// (`Membership::validator_keys`), so an institution's submitting keys never pass as a
    /// validator; `settings.observers` pass but are no validators.
    pub fn new(settings: &NetworkSettings, own_peer: PeerId) -> anyhow::Result<Self> {
        let mut allowed = BTreeSet::new();
        let mut validators = BTreeSet::new();
        for key in &settings.validators {
            let peer = peer_id_of(key)?;
            allowed.insert(peer);
            if peer != own_peer {
                validators.insert(peer);
            }
        }
        for key in &settings.observers {
            allowed.insert(peer_id_of(key)?);
        }
        Ok(Self {
            allowed,
            validators,
        })
    }
}

/// The libp2p peer id of an Ed25519 validator key.
pub fn peer_id_of(public_key: &[u8; 32]) -> anyhow::Result<PeerId> {
    let key = identity::ed25519::PublicKey::try_from_bytes(public_key)
        .context("not an Ed25519 public key")?;
    Ok(identity::PublicKey::from(key).to_peer_id())
}

fn multiaddr_of(address: SocketAddr) -> Multiaddr {
    let ip = match address.ip() {
        IpAddr::V4(ip) => Protocol::Ip4(ip),
        IpAddr::V6(ip) => Protocol::Ip6(ip),
    };
    Multiaddr::empty()
        .with(ip)
        .with(Protocol::Tcp(address.port()))
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    gate: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    consensus: request_response::Behaviour<FrameCodec>,
    transactions: request_response::Behaviour<FrameCodec>,
    sync: request_response::Behaviour<FrameCodec>,
}

fn protocol(name: StreamProtocol, limits: FrameLimits) -> request_response::Behaviour<FrameCodec> {
    request_response::Behaviour::with_codec(
        FrameCodec::new(limits),
        [(name, ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(REQUEST_TIMEOUT)
            .with_max_concurrent_streams(STREAMS_PER_PROTOCOL_MAX),
    )
}

enum Command {
    /// An encoded `ConsensusBatch` for every validator.
    Consensus(Bytes),
    /// Consensus messages that a Byzantine test node forges before sending.
    Forge(Vec<Message>),
    /// The driver needs committed blocks from this height on.
    Sync(Height),
}

/// A validator set that takes effect at the coming height, and the key this node signs with in
/// it (its network identity).
#[derive(Clone)]
pub(crate) struct ValidatorChange {
    validators: ValidatorSet,
    own_key: SigningKey,
}

/// What a swarm is built from, besides its key and gate: kept to build it again after a key
/// rotation.
#[derive(Clone, Copy)]
pub(crate) struct SwarmRecipe {
    consensus: FrameLimits,
    transactions: FrameLimits,
    sync: FrameLimits,
}

/// The driver's side of the network: queues and returns, never blocks.
pub struct P2pNetwork {
    commands: mpsc::Sender<Command>,
    /// Hand messages over unencoded, to be forged (Byzantine test mode only).
    forge: bool,
    /// The latest set change (a watch: never lost behind a full queue).
    validator_changes: watch::Sender<Option<ValidatorChange>>,
}

impl Network for P2pNetwork {
    fn broadcast(&mut self, messages: &[Message]) {
        if self.forge {
            let _ = self.commands.try_send(Command::Forge(messages.to_vec()));
            return;
        }
        let batch = v1::ConsensusBatch {
            messages: messages
                .iter()
                .map(consensus_wire::message_to_wire)
                .collect(),
        };
        // Encoded once, shared by every peer's request.
        let frame = Bytes::from(batch.encode_to_vec());
        if self.commands.try_send(Command::Consensus(frame)).is_err() {
            tracing::warn!("the network is behind; consensus messages dropped (they are resent)");
        }
    }

    fn request_sync(&mut self, from_height: Height) {
        let _ = self.commands.try_send(Command::Sync(from_height));
    }

    fn validators_changed(&mut self, validators: &ValidatorSet, own_key: &SigningKey) {
        self.validator_changes.send_replace(Some(ValidatorChange {
            validators: validators.clone(),
            own_key: own_key.clone(),
        }));
    }
}

/// A swarm under `signing_key` that lets in `allowed` peers only; not yet listening.
fn new_swarm(
    signing_key: &SigningKey,
    recipe: &SwarmRecipe,
    allowed: &BTreeSet<PeerId>,
) -> anyhow::Result<libp2p::Swarm<Behaviour>> {
    let keypair = identity::Keypair::ed25519_from_bytes(signing_key.to_bytes())
        .context("the validator key is not a valid libp2p identity")?;
    let mut gate = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
    for peer in allowed {
        gate.allow_peer(*peer);
    }
    let recipe = *recipe;
    Ok(libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .context("cannot set up the TCP transport")?
        .with_behaviour(|_| Behaviour {
            gate,
            consensus: protocol(CONSENSUS_PROTOCOL, recipe.consensus),
            transactions: protocol(TRANSACTIONS_PROTOCOL, recipe.transactions),
            sync: protocol(SYNC_PROTOCOL, recipe.sync),
        })
        .context("cannot set up the network behaviour")?
        .with_swarm_config(|config| config.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build())
}

/// Builds the swarm and binds the listener. The returned handle goes to the driver; the task is
/// run with the driver's handle ([`NetworkTask::run`]).
pub fn build<S: Store + 'static>(
    settings: &NetworkSettings,
    signing_key: &SigningKey,
    context: Arc<NodeContext<S>>,
) -> anyhow::Result<(P2pNetwork, NetworkTask<S>)> {
    let own_peer = peer_id_of(&signing_key.verifying_key().to_bytes())?;
    let gate = Gate::new(settings, own_peer)?;
    let observers = settings
        .observers
        .iter()
        .map(peer_id_of)
        .collect::<anyhow::Result<BTreeSet<_>>>()?;
    let genesis_set = crate::driver::genesis_validators(&context)?;
    let attacks = byzantine::Attacks::new(
        &settings.attacks,
        context.ledger.chain_id(),
        signing_key,
        &genesis_set,
    );
    let forge = attacks
        .as_ref()
        .is_some_and(byzantine::Attacks::forges_messages);
    let mut addresses = BTreeMap::new();
    for peer in &settings.peers {
        let peer_id = peer_id_of(&peer.public_key)?;
        if peer_id != own_peer {
            addresses.insert(peer_id, multiaddr_of(peer.address));
        }
    }
    let recipe = SwarmRecipe {
        consensus: FrameLimits {
            request_bytes_max: settings.consensus_frame_bytes_max,
            response_bytes_max: 16,
        },
        transactions: FrameLimits {
            request_bytes_max: 2 * GOSSIP_BATCH_BYTES,
            response_bytes_max: 16,
        },
        sync: FrameLimits {
            request_bytes_max: 64,
            response_bytes_max: SYNC_RESPONSE_BUDGET_BYTES + settings.consensus_frame_bytes_max,
        },
    };
    let mut swarm = new_swarm(signing_key, &recipe, &gate.allowed)?;
    swarm
        .listen_on(multiaddr_of(settings.listen_address))
        .with_context(|| format!("cannot listen for peers on {}", settings.listen_address))?;
    let (change_sender, changes) = watch::channel(None);
    let validators = task::Validators {
        peers: gate.validators,
        observers,
        changes,
        recipe,
    };

    let (command_sender, commands) = mpsc::channel(COMMAND_QUEUE_CAPACITY);
    let (gossip_sender, gossip) = mpsc::channel(GOSSIP_QUEUE_CAPACITY);
    // Set once, here: the gRPC API hands admitted transactions to the network through it.
    let _ = context.transaction_gossip.set(gossip_sender);
    Ok((
        P2pNetwork {
            commands: command_sender,
            forge,
            validator_changes: change_sender,
        },
        NetworkTask::new(
            swarm,
            context,
            commands,
            gossip,
            validators,
            addresses,
            settings.listen_address,
        )
        .context("cannot start the gossip admission thread")?
        .with_attacks(attacks),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{self, DemoKeys};
    use varde_ledger::membership::{Membership, Role};

    // A validator institution's submitting key does not pass the gate and is no validator; its
    // consensus key does and is, and observers pass without being validators.
    #[test]
    fn submitting_keys_do_not_pass_the_gate() {
        let keys = DemoKeys::from_seed(3);
        let mut genesis = keys.genesis(demo::CHAIN_ID, 0);
        let submitting = SigningKey::from_bytes(&[0x77; 32])
            .verifying_key()
            .to_bytes();
        let operator = genesis
            .institutions
            .iter_mut()
            .find(|institution| institution.has_role(Role::Validator))
            .unwrap();
        operator.roles.push(Role::Submitter);
        operator.public_keys.push(submitting);
        let second = SigningKey::from_bytes(&[0x78; 32]);
        let mut other = operator.clone();
        other.org_number = varde_ledger::identifiers::OrgNumber::parse("991324968").unwrap();
        other.public_keys = vec![
            SigningKey::from_bytes(&[0x79; 32])
                .verifying_key()
                .to_bytes(),
        ];
        other.validator_key = Some(second.verifying_key().to_bytes());
        genesis.institutions.push(other.clone());
        let membership = Membership::from_genesis(&genesis).unwrap();
        let observer = SigningKey::from_bytes(&[0x7a; 32])
            .verifying_key()
            .to_bytes();
        let settings = NetworkSettings {
            listen_address: "127.0.0.1:0".parse().unwrap(),
            peers: Vec::new(),
            validators: membership.validator_keys(),
            observers: vec![observer],
            consensus_frame_bytes_max: 1024,
            attacks: Vec::new(),
        };
        let own = keys.of(demo::VALIDATOR).verifying_key().to_bytes();
        let gate = Gate::new(&settings, peer_id_of(&own).unwrap()).unwrap();

        for key in [submitting, other.public_keys[0]] {
            let peer = peer_id_of(&key).unwrap();
            assert!(!gate.allowed.contains(&peer));
            assert!(!gate.validators.contains(&peer));
        }
        let second_peer = peer_id_of(&second.verifying_key().to_bytes()).unwrap();
        assert!(gate.allowed.contains(&second_peer));
        assert_eq!(gate.validators, BTreeSet::from([second_peer]));
        assert!(gate.allowed.contains(&peer_id_of(&own).unwrap()));
        assert!(gate.allowed.contains(&peer_id_of(&observer).unwrap()));
        assert_eq!(gate.allowed.len(), 3);
    }
}
