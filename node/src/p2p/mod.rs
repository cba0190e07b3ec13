//! The validator network over libp2p (DESIGN.md §5): TCP + Noise + Yamux, the validator's Ed25519
//! key as its libp2p identity.
//!
//! - **Gating.** Only the genesis validators and the configured observers are allowed; any other
//!   peer is refused as soon as the Noise handshake has proved its key, before a protocol runs.
//! - **Protocols** (request-response, [`codec`] frames with a size limit each):
//!   `/varde/consensus/1` consensus messages to every validator, `/varde/transactions/1` admitted
//!   transactions to every validator, `/varde/sync/1` committed blocks with their certificates.
//! - **Validation.** Every inbound frame is decoded and checked (lengths, required fields, the
//!   transactions' signatures through mempool admission) before it reaches the engine or the
//!   mempool. A peer that sends invalid data is disconnected and counted in metrics.
//! - **Reconnection.** Lost or failed connections to validators are dialled again with backoff.
//!
//! One task owns the swarm ([`NetworkTask::run`]); the driver reaches it through [`P2pNetwork`].

pub mod codec;
pub mod redial;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ListenError, NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, allow_block_list, identity};
use prost::Message as _;
use tokio::sync::mpsc;
use tokio::time::Instant;
use varde_consensus::{Block, CommitCertificate, Height, Message};
use varde_ledger::consensus_wire;
use varde_proto::v1;
use varde_storage::{Column, Store};

use crate::context::{NodeContext, now_unix_ms};
use crate::driver::{DriverHandle, Inbound};
use crate::mempool::AdmissionError;
use crate::network::Network;
use codec::{Frame, FrameCodec, FrameLimits};
use redial::Redials;

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
const COMMAND_QUEUE_CAPACITY: usize = 4_096;
/// An unanswered sync request is given up after this long, and another peer asked.
const SYNC_TIMEOUT: Duration = Duration::from_secs(10);
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
        request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT),
    )
}

enum Command {
    /// An encoded `ConsensusBatch` for every validator.
    Consensus(Bytes),
    /// The driver needs committed blocks from this height on.
    Sync(Height),
}

/// The driver's side of the network: queues and returns, never blocks.
pub struct P2pNetwork {
    commands: mpsc::Sender<Command>,
}

impl Network for P2pNetwork {
    fn broadcast(&mut self, messages: &[Message]) {
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
}

/// Why a peer's frame was refused; the peer is cut.
#[derive(Debug, thiserror::Error)]
enum PeerFault {
    #[error("undecodable frame: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("malformed value: {0}")]
    Wire(#[from] consensus_wire::WireError),
    #[error("invalid transaction: {0}")]
    Transaction(AdmissionError),
    #[error("a response nobody asked for")]
    Unsolicited,
    #[error("a frame of {length} bytes exceeds the limit of {limit}")]
    Oversized { length: usize, limit: usize },
}

/// The bytes of a frame that respected its protocol's limit.
fn frame_bytes(frame: &Frame) -> Result<&[u8], PeerFault> {
    match frame {
        Frame::Bytes(bytes) => Ok(bytes),
        Frame::Oversized { length, limit } => Err(PeerFault::Oversized {
            length: *length,
            limit: *limit,
        }),
    }
}

struct SyncInFlight {
    request: OutboundRequestId,
    peer: PeerId,
    since: Instant,
}

/// The task that owns the swarm.
pub struct NetworkTask<S: Store + 'static> {
    swarm: Swarm<Behaviour>,
    context: Arc<NodeContext<S>>,
    commands: mpsc::Receiver<Command>,
    gossip: mpsc::Receiver<v1::SignedTransaction>,
    /// Validators other than this node.
    validators: BTreeSet<PeerId>,
    /// Where to dial validators.
    addresses: BTreeMap<PeerId, Multiaddr>,
    connected: BTreeSet<PeerId>,
    redials: Redials,
    sync: Option<SyncInFlight>,
    /// The lowest height the driver still needs, while it needs blocks.
    sync_wanted: Option<Height>,
    next_sync_peer: usize,
    pub listen_address: SocketAddr,
}

/// Builds the swarm and binds the listener. The returned handle goes to the driver; the task is
/// run with the driver's handle ([`NetworkTask::run`]).
pub fn build<S: Store + 'static>(
    settings: &NetworkSettings,
    signing_key: &SigningKey,
    context: Arc<NodeContext<S>>,
) -> anyhow::Result<(P2pNetwork, NetworkTask<S>)> {
    let keypair = identity::Keypair::ed25519_from_bytes(signing_key.to_bytes())
        .context("the validator key is not a valid libp2p identity")?;
    let own_peer = keypair.public().to_peer_id();
    let mut allowed = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
    let mut validators = BTreeSet::new();
    for key in &settings.validators {
        let peer = peer_id_of(key)?;
        allowed.allow_peer(peer);
        if peer != own_peer {
            validators.insert(peer);
        }
    }
    for key in &settings.observers {
        allowed.allow_peer(peer_id_of(key)?);
    }
    let mut addresses = BTreeMap::new();
    for peer in &settings.peers {
        let peer_id = peer_id_of(&peer.public_key)?;
        if peer_id != own_peer {
            addresses.insert(peer_id, multiaddr_of(peer.address));
        }
    }
    let consensus_limits = FrameLimits {
        request_bytes_max: settings.consensus_frame_bytes_max,
        response_bytes_max: 16,
    };
    let transaction_limits = FrameLimits {
        request_bytes_max: 2 * GOSSIP_BATCH_BYTES,
        response_bytes_max: 16,
    };
    let sync_limits = FrameLimits {
        request_bytes_max: 64,
        response_bytes_max: SYNC_RESPONSE_BUDGET_BYTES + settings.consensus_frame_bytes_max,
    };
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .context("cannot set up the TCP transport")?
        .with_behaviour(|_| Behaviour {
            gate: allowed,
            consensus: protocol(CONSENSUS_PROTOCOL, consensus_limits),
            transactions: protocol(TRANSACTIONS_PROTOCOL, transaction_limits),
            sync: protocol(SYNC_PROTOCOL, sync_limits),
        })
        .context("cannot set up the network behaviour")?
        .with_swarm_config(|config| config.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    swarm
        .listen_on(multiaddr_of(settings.listen_address))
        .with_context(|| format!("cannot listen for peers on {}", settings.listen_address))?;

    let (command_sender, commands) = mpsc::channel(COMMAND_QUEUE_CAPACITY);
    let (gossip_sender, gossip) = mpsc::channel(GOSSIP_QUEUE_CAPACITY);
    // Set once, here: the gRPC API hands admitted transactions to the network through it.
    let _ = context.transaction_gossip.set(gossip_sender);
    Ok((
        P2pNetwork {
            commands: command_sender,
        },
        NetworkTask {
            swarm,
            context,
            commands,
            gossip,
            validators,
            addresses,
            connected: BTreeSet::new(),
            redials: Redials::default(),
            sync: None,
            sync_wanted: None,
            next_sync_peer: 0,
            listen_address: settings.listen_address,
        },
    ))
}

impl<S: Store + 'static> NetworkTask<S> {
    /// Runs until `shutdown` completes.
    pub async fn run(mut self, driver: DriverHandle, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        let now = Instant::now();
        let peers: Vec<PeerId> = self.addresses.keys().copied().collect();
        for peer in peers {
            self.dial(peer, now);
        }
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                event = self.swarm.select_next_some() => self.on_swarm_event(event, &driver),
                Some(command) = self.commands.recv() => self.on_command(command),
                Some(transaction) = self.gossip.recv() => self.gossip_transactions(transaction),
                _ = tick.tick() => self.on_tick(),
            }
        }
        tracing::info!("network stopped");
    }

    fn dial(&mut self, peer: PeerId, now: Instant) {
        let Some(address) = self.addresses.get(&peer) else {
            return;
        };
        let options = DialOpts::peer_id(peer)
            .addresses(vec![address.clone()])
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        if let Err(error) = self.swarm.dial(options) {
            tracing::debug!(%peer, %error, "dial not started");
            if !self.connected.contains(&peer) {
                self.redials.failed(peer, now);
            }
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        for peer in self.redials.due(now) {
            if !self.connected.contains(&peer) {
                self.dial(peer, now);
            }
        }
        if let Some(in_flight) = &self.sync {
            if now.duration_since(in_flight.since) > SYNC_TIMEOUT {
                self.sync = None;
                self.send_sync_request();
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Consensus(frame) => {
                let peers: Vec<PeerId> = self
                    .validators
                    .intersection(&self.connected)
                    .copied()
                    .collect();
                for peer in peers {
                    self.swarm
                        .behaviour_mut()
                        .consensus
                        .send_request(&peer, Frame::Bytes(frame.clone()));
                }
            }
            Command::Sync(from_height) => {
                self.sync_wanted = Some(
                    self.sync_wanted
                        .map_or(from_height, |wanted| wanted.max(from_height)),
                );
                if self.sync.is_none() {
                    self.send_sync_request();
                }
            }
        }
    }

    /// Asks the next connected validator (round-robin) for blocks from the wanted height.
    fn send_sync_request(&mut self) {
        let Some(from_height) = self.sync_wanted else {
            return;
        };
        let peers: Vec<PeerId> = self
            .validators
            .intersection(&self.connected)
            .copied()
            .collect();
        if peers.is_empty() {
            return;
        }
        let peer = peers[self.next_sync_peer % peers.len()];
        self.next_sync_peer = self.next_sync_peer.wrapping_add(1);
        let request = v1::SyncRequest {
            from_height,
            max_blocks: SYNC_BLOCKS_MAX,
        };
        let request = self
            .swarm
            .behaviour_mut()
            .sync
            .send_request(&peer, Frame::Bytes(Bytes::from(request.encode_to_vec())));
        tracing::debug!(%peer, from_height, "asking for committed blocks");
        self.sync = Some(SyncInFlight {
            request,
            peer,
            since: Instant::now(),
        });
    }

    /// Sends one admitted transaction, and whatever else is waiting, to every validator.
    fn gossip_transactions(&mut self, first: v1::SignedTransaction) {
        let mut bytes = first.encoded_len();
        let mut batch = vec![first];
        while bytes < GOSSIP_BATCH_BYTES {
            match self.gossip.try_recv() {
                Ok(transaction) => {
                    bytes += transaction.encoded_len();
                    batch.push(transaction);
                }
                Err(_) => break,
            }
        }
        let frame = Bytes::from(
            v1::TransactionBatch {
                transactions: batch,
            }
            .encode_to_vec(),
        );
        let peers: Vec<PeerId> = self
            .validators
            .intersection(&self.connected)
            .copied()
            .collect();
        for peer in peers {
            self.swarm
                .behaviour_mut()
                .transactions
                .send_request(&peer, Frame::Bytes(frame.clone()));
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>, driver: &DriverHandle) {
        let metrics = &self.context.metrics;
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                if self.connected.insert(peer_id) {
                    tracing::info!(peer = %peer_id, "peer connected");
                }
                self.redials.connected(&peer_id);
                metrics.peers.set(self.connected.len() as i64);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                self.connected.remove(&peer_id);
                metrics.peers.set(self.connected.len() as i64);
                tracing::info!(peer = %peer_id, cause = ?cause.map(|cause| cause.to_string()), "peer disconnected");
                if self.addresses.contains_key(&peer_id) {
                    self.redials.failed(peer_id, Instant::now());
                }
                if self.sync.as_ref().is_some_and(|sync| sync.peer == peer_id) {
                    self.sync = None;
                    self.send_sync_request();
                }
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "dial failed");
                self.redials.failed(peer, Instant::now());
            }
            SwarmEvent::IncomingConnectionError {
                error,
                send_back_addr,
                ..
            } => {
                if let ListenError::Denied { cause } = &error {
                    metrics.connections_refused.inc();
                    tracing::warn!(from = %send_back_addr, %cause, "refused a peer outside the validator set");
                } else {
                    tracing::debug!(from = %send_back_addr, %error, "incoming connection failed");
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening for peers");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Consensus(event)) => {
                self.on_consensus_event(event, driver);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Transactions(event)) => {
                self.on_transactions_event(event);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync_event(event, driver),
            _ => {}
        }
    }

    /// Cuts a peer that sent invalid data, counts it, and waits before dialling it again.
    fn cut(&mut self, peer: PeerId, protocol: &str, fault: &PeerFault) {
        tracing::warn!(%peer, protocol, %fault, "peer sent invalid data; disconnecting");
        self.context.metrics.count_invalid_peer_message(protocol);
        let _ = self.swarm.disconnect_peer_id(peer);
        let now = Instant::now();
        for _ in 0..6 {
            self.redials.failed(peer, now);
        }
    }

    fn count_io_failure(&mut self, peer: PeerId, protocol: &str, error: &dyn std::fmt::Display) {
        // A frame over the limit or cut short arrives as an I/O error of the stream.
        tracing::warn!(%peer, protocol, %error, "peer stream failed; disconnecting");
        self.context.metrics.count_invalid_peer_message(protocol);
        let _ = self.swarm.disconnect_peer_id(peer);
    }

    fn on_consensus_event(
        &mut self,
        event: request_response::Event<Frame, Frame>,
        driver: &DriverHandle,
    ) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .consensus
                    .send_response(channel, Frame::Bytes(Bytes::new()));
                match frame_bytes(&request).and_then(decode_consensus) {
                    Ok(messages) => {
                        for message in messages {
                            if !driver.deliver(Inbound::Message(message)) {
                                tracing::debug!("consensus inbox full; message dropped");
                            }
                        }
                    }
                    Err(fault) => self.cut(peer, "consensus", &fault),
                }
            }
            request_response::Event::InboundFailure {
                peer,
                error: request_response::InboundFailure::Io(error),
                ..
            } => self.count_io_failure(peer, "consensus", &error),
            _ => {}
        }
    }

    fn on_transactions_event(&mut self, event: request_response::Event<Frame, Frame>) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .transactions
                    .send_response(channel, Frame::Bytes(Bytes::new()));
                if let Err(fault) =
                    frame_bytes(&request).and_then(|frame| self.admit_gossiped(frame))
                {
                    self.cut(peer, "transactions", &fault);
                }
            }
            request_response::Event::InboundFailure {
                peer,
                error: request_response::InboundFailure::Io(error),
                ..
            } => self.count_io_failure(peer, "transactions", &error),
            _ => {}
        }
    }

    /// Admits gossiped transactions to the mempool; the signature is verified here, once.
    fn admit_gossiped(&mut self, frame: &[u8]) -> Result<(), PeerFault> {
        let batch = v1::TransactionBatch::decode(frame)?;
        let now = now_unix_ms();
        let mut admitted = 0usize;
        let mut fault = None;
        {
            let mut mempool = self.context.mempool.lock().expect("mempool lock");
            for transaction in &batch.transactions {
                match mempool.admit(&self.context.ledger, transaction, now) {
                    Ok(_) => admitted += 1,
                    Err(error @ (AdmissionError::Invalid(_) | AdmissionError::UnknownSigner)) => {
                        fault = Some(PeerFault::Transaction(error));
                        break;
                    }
                    // Already known, committed meanwhile, expired in flight, or no room.
                    Err(_) => {}
                }
            }
            self.context
                .metrics
                .mempool_transactions
                .set(mempool.len() as i64);
        }
        if admitted > 0 {
            self.context.mempool_changed.notify_one();
        }
        fault.map_or(Ok(()), Err)
    }

    fn on_sync_event(
        &mut self,
        event: request_response::Event<Frame, Frame>,
        driver: &DriverHandle,
    ) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => match frame_bytes(&request)
                .and_then(|frame| v1::SyncRequest::decode(frame).map_err(PeerFault::from))
            {
                Ok(request) => {
                    let response = match self.read_blocks(&request) {
                        Ok(response) => response,
                        Err(error) => {
                            tracing::error!(%error, "cannot read blocks for a peer");
                            return;
                        }
                    };
                    let _ = self.swarm.behaviour_mut().sync.send_response(
                        channel,
                        Frame::Bytes(Bytes::from(response.encode_to_vec())),
                    );
                }
                Err(fault) => self.cut(peer, "sync", &fault),
            },
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if self
                    .sync
                    .as_ref()
                    .is_none_or(|sync| sync.request != request_id)
                {
                    return self.cut(peer, "sync", &PeerFault::Unsolicited);
                }
                self.sync = None;
                match frame_bytes(&response).and_then(decode_synced) {
                    Ok((blocks, head_height)) => self.deliver_synced(blocks, head_height, driver),
                    Err(fault) => {
                        self.cut(peer, "sync", &fault);
                        self.send_sync_request();
                    }
                }
            }
            request_response::Event::OutboundFailure {
                request_id,
                error,
                peer,
                ..
            } if self
                .sync
                .as_ref()
                .is_some_and(|sync| sync.request == request_id) =>
            {
                tracing::debug!(%peer, %error, "sync request failed");
                self.sync = None;
                if let request_response::OutboundFailure::Io(error) = &error {
                    self.count_io_failure(peer, "sync", error);
                }
                self.send_sync_request();
            }
            request_response::Event::InboundFailure {
                peer,
                error: request_response::InboundFailure::Io(error),
                ..
            } => self.count_io_failure(peer, "sync", &error),
            _ => {}
        }
    }

    fn deliver_synced(
        &mut self,
        blocks: Vec<(Block, CommitCertificate)>,
        head_height: Height,
        driver: &DriverHandle,
    ) {
        let metrics = &self.context.metrics;
        metrics
            .sync_target_height
            .set(head_height.min(i64::MAX as u64) as i64);
        let Some(last) = blocks.last().map(|(_, certificate)| certificate.height) else {
            // The peer has nothing newer; the next message from ahead asks again.
            self.sync_wanted = None;
            return;
        };
        metrics.blocks_synced.inc_by(blocks.len() as u64);
        for (block, certificate) in blocks {
            if !driver.deliver(Inbound::Committed { block, certificate }) {
                // The driver is busy: let its next request say where it stands.
                self.sync_wanted = None;
                return;
            }
        }
        if last < head_height {
            self.sync_wanted = Some(last + 1);
            self.send_sync_request();
        } else {
            self.sync_wanted = None;
        }
    }

    /// Reads consecutive committed blocks with their certificates for a peer.
    fn read_blocks(&self, request: &v1::SyncRequest) -> anyhow::Result<v1::SyncResponse> {
        let head_height = self.context.ledger.head()?.map_or(0, |head| head.height);
        let store = self.context.ledger.store();
        let mut blocks = Vec::new();
        let mut bytes = 0usize;
        let count = u64::from(request.max_blocks.clamp(1, SYNC_BLOCKS_MAX));
        let mut height = request.from_height.max(1);
        while height <= head_height
            && height < request.from_height.max(1).saturating_add(count)
            && bytes < SYNC_RESPONSE_BUDGET_BYTES
        {
            let key = height.to_be_bytes();
            let (Some(block), Some(certificate)) = (
                store.get(Column::Blocks, &key)?,
                store.get(Column::Certificates, &key)?,
            ) else {
                break;
            };
            let certificate: CommitCertificate = serde_json::from_slice(&certificate)
                .context("a stored commit certificate does not decode")?;
            bytes += block.len();
            blocks.push(v1::SyncedBlock {
                block,
                certificate: Some(consensus_wire::certificate_to_wire(&certificate)),
            });
            height += 1;
        }
        Ok(v1::SyncResponse {
            blocks,
            head_height,
        })
    }
}

fn decode_consensus(frame: &[u8]) -> Result<Vec<Message>, PeerFault> {
    let batch = v1::ConsensusBatch::decode(frame)?;
    batch
        .messages
        .into_iter()
        .map(|message| consensus_wire::message_from_wire(message).map_err(PeerFault::from))
        .collect()
}

fn decode_synced(frame: &[u8]) -> Result<(Vec<(Block, CommitCertificate)>, Height), PeerFault> {
    let response = v1::SyncResponse::decode(frame)?;
    let mut blocks = Vec::with_capacity(response.blocks.len());
    for synced in response.blocks {
        let certificate = consensus_wire::certificate_from_wire(
            synced
                .certificate
                .as_ref()
                .ok_or(consensus_wire::WireError::Missing("certificate"))?,
        )?;
        blocks.push((
            Block {
                id: certificate.block_id,
                payload: Arc::from(synced.block),
            },
            certificate,
        ));
    }
    Ok((blocks, response.head_height))
}
