//! The task that owns the swarm: dialling and redialling validators, sending consensus messages
//! and gossip, serving and requesting block sync, and cutting peers that send invalid data.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ListenError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm};
use prost::Message as _;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use varde_consensus::{
    Block, CommitCertificate, Ed25519Verifier, Height, Message, ProposalMessage,
};
use varde_ledger::consensus_wire;
use varde_proto::v1;
use varde_storage::Store;

use super::admission::GossipAdmission;
use super::budget::PeerBudgets;
use super::byzantine::{Attacks, FLOOD_IN_FLIGHT, Outbound};
use super::codec::{Frame, FrameCodec};
use super::frames::{self, PeerFault, decode_consensus, decode_synced, frame_bytes};
use super::redial::Redials;
use super::sets::{SetHistory, SetOf};
use super::{
    Behaviour, BehaviourEvent, Command, GOSSIP_BATCH_BYTES, GOSSIP_PACE, SYNC_BLOCKS_MAX,
    SwarmRecipe, ValidatorChange,
};
use crate::config::Attack;
use crate::context::NodeContext;
use crate::driver::{DriverHandle, Inbound};

/// An unanswered sync request is given up after this long, and another peer asked.
const SYNC_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a node outside the validator set asks for newer blocks.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

struct SyncInFlight {
    request: OutboundRequestId,
    peer: PeerId,
    since: Instant,
}

/// The other validators, as peers (sent consensus messages, and the only peers allowed to send
/// them), the observers, and where changes of the set come from.
pub(super) struct Validators {
    pub peers: BTreeSet<PeerId>,
    pub observers: BTreeSet<PeerId>,
    pub changes: watch::Receiver<Option<ValidatorChange>>,
    pub recipe: SwarmRecipe,
}

/// The task that owns the swarm.
pub struct NetworkTask<S: Store + 'static> {
    swarm: Swarm<Behaviour>,
    context: Arc<NodeContext<S>>,
    commands: mpsc::Receiver<Command>,
    gossip: mpsc::Receiver<v1::SignedTransaction>,
    /// Validators other than this node.
    validators: BTreeSet<PeerId>,
    /// Non-validator nodes allowed to connect.
    observers: BTreeSet<PeerId>,
    /// The consensus keys of each height, to check each consensus message's signature before
    /// it is delivered.
    sets: SetHistory,
    /// Governance changed the validator set (and maybe this node's key): the gate follows.
    validator_changes: watch::Receiver<Option<ValidatorChange>>,
    /// How to build the swarm again under a rotated key.
    recipe: SwarmRecipe,
    /// This node is outside the validator set (an observer, or a validator not yet added or
    /// removed): nobody sends it consensus messages, so it asks for blocks now and then.
    follows: bool,
    follow_due: Instant,
    /// Each peer's share of the driver's inbox.
    budgets: PeerBudgets,
    /// Where to dial validators.
    addresses: BTreeMap<PeerId, Multiaddr>,
    connected: BTreeSet<PeerId>,
    redials: Redials,
    sync: Option<SyncInFlight>,
    /// The lowest height the driver still needs, while it needs blocks.
    sync_wanted: Option<Height>,
    next_sync_peer: usize,
    pub listen_address: SocketAddr,
    /// Test-only misbehaviour; `None` on every real network.
    attacks: Option<Attacks>,
    /// Flood frames in flight, per peer (vote-flood attack only).
    flood: BTreeMap<PeerId, Vec<OutboundRequestId>>,
    /// Verifies and admits gossiped frames on its own thread.
    gossip_admission: GossipAdmission,
    /// Admitted transactions waiting for the next gossip frame.
    gossip_pending: Vec<v1::SignedTransaction>,
    gossip_pending_bytes: usize,
    /// When the waiting transactions go out, if any wait.
    gossip_due: Option<Instant>,
    gossip_last_sent: Option<Instant>,
}

impl<S: Store + 'static> NetworkTask<S> {
    pub(super) fn new(
        swarm: Swarm<Behaviour>,
        context: Arc<NodeContext<S>>,
        commands: mpsc::Receiver<Command>,
        gossip: mpsc::Receiver<v1::SignedTransaction>,
        validators: Validators,
        addresses: BTreeMap<PeerId, Multiaddr>,
        listen_address: SocketAddr,
    ) -> std::io::Result<Self> {
        let Validators {
            peers: validators,
            observers,
            changes: validator_changes,
            recipe,
        } = validators;
        Ok(Self {
            swarm,
            gossip_admission: GossipAdmission::start(context.clone())?,
            sets: SetHistory::read(&context.ledger),
            context,
            commands,
            gossip,
            validators,
            observers,
            validator_changes,
            recipe,
            follows: false,
            follow_due: Instant::now(),
            budgets: PeerBudgets::default(),
            addresses,
            connected: BTreeSet::new(),
            redials: Redials::default(),
            sync: None,
            sync_wanted: None,
            // A random first peer, so that a restarted node does not always ask the same one.
            next_sync_peer: usize::from(rand::random::<u16>()),
            listen_address,
            attacks: None,
            flood: BTreeMap::new(),
            gossip_pending: Vec::new(),
            gossip_pending_bytes: 0,
            gossip_due: None,
            gossip_last_sent: None,
        })
    }

    pub(super) fn with_attacks(mut self, attacks: Option<Attacks>) -> Self {
        self.attacks = attacks;
        self
    }

    /// Whether this node is outside the set of the next height, as its ledger says.
    fn outside_the_set(&self) -> bool {
        let own = *self.swarm.local_peer_id();
        !self
            .context
            .ledger
            .membership()
            .validator_keys()
            .iter()
            .any(|key| super::peer_id_of(key).is_ok_and(|peer| peer == own))
    }

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
        let flooding = self
            .attacks
            .as_ref()
            .is_some_and(|attacks| attacks.has(Attack::VoteFlood));
        let far_future = now + Duration::from_secs(86_400 * 365);
        self.follows = self.outside_the_set();
        let mut flood_tick = tokio::time::interval(Duration::from_millis(5));
        flood_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                event = self.swarm.select_next_some() => self.on_swarm_event(event, &driver),
                Some(command) = self.commands.recv() => self.on_command(command),
                Ok(()) = self.validator_changes.changed() => self.on_validators_changed(),
                Some(transaction) = self.gossip.recv() => self.queue_gossip(transaction),
                Some((peer, fault)) = self.gossip_admission.faults.recv() => {
                    self.cut(peer, "transactions", &fault);
                }
                _ = tokio::time::sleep_until(self.gossip_due.unwrap_or(far_future)),
                    if self.gossip_due.is_some() => self.send_gossip(),
                _ = tick.tick() => self.on_tick(),
                _ = flood_tick.tick(), if flooding => self.flood(),
            }
        }
        tracing::info!("network stopped");
    }

    /// The validator set changes at the coming height: the gate lets the new validators in and
    /// cuts the removed ones, consensus messages go to the new set, and a rotated key becomes
    /// this node's identity (the swarm is built again under it, and every peer dialled again).
    fn on_validators_changed(&mut self) {
        let Some(change) = self.validator_changes.borrow_and_update().clone() else {
            return;
        };
        let own_peer = match super::peer_id_of(&change.own_key.verifying_key().to_bytes()) {
            Ok(peer) => peer,
            Err(error) => {
                tracing::error!(%error, "this node's consensus key is no libp2p identity");
                return;
            }
        };
        let mut members = BTreeSet::new();
        for key in change.validators.keys() {
            match super::peer_id_of(&key.to_bytes()) {
                Ok(peer) => {
                    members.insert(peer);
                }
                Err(error) => tracing::error!(%error, "a validator key is no libp2p identity"),
            }
        }
        let previous = std::mem::take(&mut self.validators);
        self.validators = members
            .iter()
            .copied()
            .filter(|peer| *peer != own_peer)
            .collect();
        let gate = &mut self.swarm.behaviour_mut().gate;
        for peer in &self.validators {
            gate.allow_peer(*peer);
        }
        let removed: Vec<PeerId> = previous
            .difference(&members)
            .filter(|peer| !self.observers.contains(peer))
            .copied()
            .collect();
        for peer in &removed {
            gate.disallow_peer(*peer);
        }
        for peer in removed {
            tracing::info!(%peer, "a validator left the set; disconnecting it");
            let _ = self.swarm.disconnect_peer_id(peer);
            self.addresses.remove(&peer);
            self.redials.connected(&peer);
        }
        if own_peer != *self.swarm.local_peer_id() {
            self.rebuild_swarm(&change.own_key);
        }
        self.follows = !members.contains(&own_peer);
    }

    /// Replaces the swarm with one under `key`, listening where the old one did, and dials every
    /// known validator again.
    fn rebuild_swarm(&mut self, key: &ed25519_dalek::SigningKey) {
        let mut allowed = self.validators.clone();
        allowed.extend(self.observers.iter().copied());
        let swarm = match super::new_swarm(key, &self.recipe, &allowed) {
            Ok(swarm) => swarm,
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "cannot build the network under the rotated key");
                return;
            }
        };
        // The old swarm goes first, so that its listener frees the port.
        drop(std::mem::replace(&mut self.swarm, swarm));
        if let Err(error) = self
            .swarm
            .listen_on(super::multiaddr_of(self.listen_address))
        {
            tracing::error!(%error, address = %self.listen_address, "cannot listen for peers under the rotated key");
        }
        tracing::info!(peer = %self.swarm.local_peer_id(), "the network runs under the rotated consensus key");
        self.connected.clear();
        self.budgets = PeerBudgets::default();
        self.sync = None;
        self.flood.clear();
        self.context.metrics.peers.set(0);
        let now = Instant::now();
        let peers: Vec<PeerId> = self.addresses.keys().copied().collect();
        for peer in peers {
            self.redials.connected(&peer);
            self.dial(peer, now);
        }
    }

    /// Validators (other than this node) with an open connection.
    fn connected_validators(&self) -> Vec<PeerId> {
        self.validators
            .intersection(&self.connected)
            .copied()
            .collect()
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
        if self.follows && now >= self.follow_due && self.sync.is_none() {
            self.follow_due = now + FOLLOW_INTERVAL;
            self.sync_wanted = Some(self.context.ledger.height() + 1);
            self.send_sync_request();
        }
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
                let peers = self.connected_validators();
                for peer in peers {
                    self.swarm
                        .behaviour_mut()
                        .consensus
                        .send_request(&peer, Frame::Bytes(frame.clone()));
                }
            }
            Command::Forge(messages) => self.send_forged(messages),
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

    /// Sends forged consensus messages (Byzantine test mode): to every validator, or split
    /// between the two halves of the connected validators.
    fn send_forged(&mut self, messages: Vec<Message>) {
        let peers = self.connected_validators();
        let Some(attacks) = self.attacks.as_mut() else {
            return;
        };
        let encode = |messages: &[Message]| {
            Bytes::from(
                v1::ConsensusBatch {
                    messages: messages
                        .iter()
                        .map(consensus_wire::message_to_wire)
                        .collect(),
                }
                .encode_to_vec(),
            )
        };
        let (first, second) = match attacks.outbound(&self.context.ledger, messages) {
            Outbound::ToAll(messages) => {
                let frame = encode(&messages);
                (frame.clone(), frame)
            }
            Outbound::Split { first, second } => (encode(&first), encode(&second)),
        };
        let half = peers.len() / 2;
        for (position, peer) in peers.into_iter().enumerate() {
            let frame = if position < half { &first } else { &second };
            self.swarm
                .behaviour_mut()
                .consensus
                .send_request(&peer, Frame::Bytes(frame.clone()));
        }
    }

    /// Keeps [`FLOOD_IN_FLIGHT`] frames of invalid votes in flight to every connected validator
    /// (vote-flood attack).
    fn flood(&mut self) {
        let Some(attacks) = self.attacks.as_ref() else {
            return;
        };
        let peers = self.connected_validators();
        self.flood.retain(|peer, _| peers.contains(peer));
        let consensus = &mut self.swarm.behaviour_mut().consensus;
        for peer in peers {
            let in_flight = self.flood.entry(peer).or_default();
            in_flight.retain(|request| consensus.is_pending_outbound(&peer, request));
            while in_flight.len() < FLOOD_IN_FLIGHT {
                let frame = attacks.flood_frame(&self.context.ledger);
                in_flight.push(consensus.send_request(&peer, Frame::Bytes(frame)));
            }
        }
    }

    /// Asks the next connected validator (round-robin) for blocks from the wanted height.
    fn send_sync_request(&mut self) {
        let Some(from_height) = self.sync_wanted else {
            return;
        };
        let peers = self.connected_validators();
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

    /// Queues an admitted transaction (and whatever else waits in the channel) for gossip: it
    /// goes at once after a quiet spell, or with the next frame at most [`GOSSIP_PACE`] after
    /// the last, so that a busy node sends a few large frames rather than one per transaction.
    fn queue_gossip(&mut self, first: v1::SignedTransaction) {
        let mut next = Some(first);
        while let Some(transaction) = next {
            self.gossip_pending_bytes += transaction.encoded_len();
            self.gossip_pending.push(transaction);
            if self.gossip_pending_bytes >= GOSSIP_BATCH_BYTES {
                self.send_gossip();
            }
            next = self.gossip.try_recv().ok();
        }
        if self.gossip_pending.is_empty() {
            return;
        }
        let now = Instant::now();
        let due = self
            .gossip_last_sent
            .map_or(now, |last| (last + GOSSIP_PACE).max(now));
        if due <= now {
            self.send_gossip();
        } else {
            self.gossip_due.get_or_insert(due);
        }
    }

    /// Sends the waiting transactions to every validator in one frame.
    fn send_gossip(&mut self) {
        self.gossip_due = None;
        if self.gossip_pending.is_empty() {
            return;
        }
        self.gossip_last_sent = Some(Instant::now());
        self.gossip_pending_bytes = 0;
        let frame = Bytes::from(
            v1::TransactionBatch {
                transactions: std::mem::take(&mut self.gossip_pending),
            }
            .encode_to_vec(),
        );
        let peers = self.connected_validators();
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
                self.budgets.remove(&peer_id);
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

    fn on_consensus_event(
        &mut self,
        event: request_response::Event<Frame, Frame>,
        driver: &DriverHandle,
    ) {
        let Some((peer, request)) =
            one_way_request(&mut self.swarm.behaviour_mut().consensus, event)
        else {
            return;
        };
        if !self.validators.contains(&peer) {
            // An observer follows by sync; it has no say in consensus.
            return self.cut(peer, "consensus", &PeerFault::NotAValidator);
        }
        let messages = frame_bytes(&request)
            .and_then(decode_consensus)
            .and_then(|messages| self.check_signatures(messages));
        match messages {
            Ok(messages) => self.deliver_consensus(peer, messages, driver),
            Err(fault) => self.cut(peer, "consensus", &fault),
        }
    }

    /// Checks every signature in `messages` against the validator set. The signer need not be
    /// the peer (a validator retransmits the votes that prove its round), but an honest
    /// validator only ever relays votes it verified, so one forgery is the peer's fault: it is
    /// cut rather than allowed to spend the driver's time on a stream of them.
    ///
    /// Each message is checked against the set of its own height ([`SetHistory`]); one of a
    /// finished height is dropped, one of a height whose set is not known yet goes on unchecked.
    fn check_signatures(&mut self, messages: Vec<Message>) -> Result<Vec<Message>, PeerFault> {
        let ledger = &self.context.ledger;
        let chain_id = ledger.chain_id();
        let mut kept = Vec::with_capacity(messages.len());
        for message in messages {
            let set = match self.sets.set_of(ledger, message.height()) {
                SetOf::Finished => continue,
                SetOf::NotYetKnown => {
                    kept.push(message);
                    continue;
                }
                SetOf::Known(set) => set,
            };
            let verifies = match &message {
                Message::Vote(signed) => signed.verify(chain_id, set, &Ed25519Verifier),
                Message::Proposal(ProposalMessage {
                    signed,
                    proof_of_lock,
                    ..
                }) => {
                    signed.verify(chain_id, set, &Ed25519Verifier)
                        && proof_of_lock
                            .iter()
                            .all(|prevote| prevote.verify(chain_id, set, &Ed25519Verifier))
                }
            };
            if !verifies {
                return Err(PeerFault::BadSignature);
            }
            kept.push(message);
        }
        Ok(kept)
    }

    /// Hands `peer`'s messages to the driver within the peer's share of its inbox.
    fn deliver_consensus(&mut self, peer: PeerId, messages: Vec<Message>, driver: &DriverHandle) {
        let granted = self.budgets.take(peer, messages.len(), Instant::now());
        if granted < messages.len() {
            tracing::debug!(%peer, dropped = messages.len() - granted, "peer over its share; consensus messages dropped");
        }
        for message in messages.into_iter().take(granted) {
            if !driver.deliver(Inbound::Message(message)) {
                tracing::debug!("consensus inbox full; message dropped");
            }
        }
    }

    fn on_transactions_event(&mut self, event: request_response::Event<Frame, Frame>) {
        let Some((peer, request)) =
            one_way_request(&mut self.swarm.behaviour_mut().transactions, event)
        else {
            return;
        };
        match request {
            Frame::Bytes(frame) => {
                if !self.gossip_admission.submit(peer, frame) {
                    tracing::debug!(%peer, "gossip admission behind; frame dropped");
                }
            }
            oversized => {
                if let Err(fault) = frame_bytes(&oversized) {
                    self.cut(peer, "transactions", &fault);
                }
            }
        }
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
                    let answer = match self.attacks.as_ref() {
                        Some(attacks) if attacks.has(Attack::FutureSync) => {
                            attacks.forged_sync(&self.context.ledger, &request)
                        }
                        _ => frames::read_blocks(&self.context.ledger, &request),
                    };
                    let response = match answer {
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
                // A peer gone or slow, or a response cut short: ask another.
                tracing::debug!(%peer, %error, "sync request failed");
                self.sync = None;
                self.send_sync_request();
            }
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
}

/// A request of a one-way protocol (consensus, transactions): acknowledged at once, since the
/// acknowledgement says nothing about validity, and handed back with its sender to be judged.
fn one_way_request(
    behaviour: &mut request_response::Behaviour<FrameCodec>,
    event: request_response::Event<Frame, Frame>,
) -> Option<(PeerId, Frame)> {
    match event {
        request_response::Event::Message {
            peer,
            message:
                request_response::Message::Request {
                    request, channel, ..
                },
            ..
        } => {
            let _ = behaviour.send_response(channel, Frame::Bytes(Bytes::new()));
            Some((peer, request))
        }
        request_response::Event::InboundFailure { peer, error, .. } => {
            // The peer went away before the acknowledgement: nothing it sent was judged.
            tracing::debug!(%peer, %error, "inbound request failed");
            None
        }
        _ => None,
    }
}
