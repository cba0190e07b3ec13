//! A peer in the validator set that sends garbage is disconnected and counted; the node keeps
//! serving. The peer is a raw libp2p swarm holding the second validator's key, so it passes the
//! gate and reaches the protocols.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, Swarm, identity};
use tokio::sync::oneshot;
use varde_ledger::identifiers::OrgNumber;
use varde_ledger::membership::{Institution, Role};
use varde_node::config::{NetworkConfig, NodeConfig};
use varde_node::demo::{self, DemoKeys};
use varde_node::p2p::codec::{Frame, FrameCodec, FrameLimits};
use varde_node::p2p::{CONSENSUS_PROTOCOL, SYNC_PROTOCOL};
use varde_proto::v1;

type Peer = Swarm<request_response::Behaviour<FrameCodec>>;

fn free_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Starts a node whose genesis has two validators: its own key and `peer_key`.
async fn start_node(
    dir: &std::path::Path,
    peer_key: &SigningKey,
) -> (varde_node::RunningNode, oneshot::Sender<()>, SocketAddr) {
    start_node_with_observers(dir, peer_key, Vec::new()).await
}

/// [`start_node`], with `observers` (hex public keys) allowed to connect as non-validators.
async fn start_node_with_observers(
    dir: &std::path::Path,
    peer_key: &SigningKey,
    observers: Vec<String>,
) -> (varde_node::RunningNode, oneshot::Sender<()>, SocketAddr) {
    let keys = DemoKeys::from_seed(9);
    let mut genesis = keys.genesis(demo::CHAIN_ID, 0);
    genesis.institutions.push(Institution {
        org_number: OrgNumber::parse("991324968").unwrap(),
        name: "Helse Sør-Øst RHF".to_owned(),
        roles: vec![Role::Validator],
        public_keys: Vec::new(),
        validator_key: Some(peer_key.verifying_key().to_bytes()),
    });
    std::fs::write(
        dir.join("genesis.json"),
        serde_json::to_string(&genesis).unwrap(),
    )
    .unwrap();
    varde_ledger::keyfile::write_signing_key(&dir.join("validator.pem"), keys.of(demo::VALIDATOR))
        .unwrap();
    let peer_address = free_address();
    let mut config = NodeConfig::new(
        dir.join("db"),
        dir.join("genesis.json"),
        dir.join("validator.pem"),
        "127.0.0.1:0".parse().unwrap(),
    );
    config.grpc_tls = Some(varde_node::config::GrpcTlsConfig::plaintext());
    config.network = Some(NetworkConfig {
        listen_address: peer_address,
        peers: Vec::new(),
        observers,
    });
    let store = varde_node::node::open_store(&config, &genesis).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let node = varde_node::start(&config, genesis, store, async move {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    (node, stop, peer_address)
}

fn peer(key: &SigningKey, protocol: libp2p::StreamProtocol, request_limit: usize) -> Peer {
    let keypair = identity::Keypair::ed25519_from_bytes(key.to_bytes()).unwrap();
    libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                FrameCodec::new(FrameLimits {
                    request_bytes_max: request_limit,
                    response_bytes_max: 1024,
                }),
                [(protocol, ProtocolSupport::Full)],
                request_response::Config::default(),
            )
        })
        .unwrap()
        .with_swarm_config(|config| config.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

fn multiaddr(address: SocketAddr) -> Multiaddr {
    format!("/ip4/{}/tcp/{}", address.ip(), address.port())
        .parse()
        .unwrap()
}

/// Connects, sends `frame` on the peer's protocol, and says whether the node hung up within 10 s.
async fn send_and_expect_disconnect(swarm: &mut Peer, node: SocketAddr, frame: Bytes) -> bool {
    swarm.dial(multiaddr(node)).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline, swarm.select_next_some()).await;
        match event {
            Err(_) => return false,
            Ok(SwarmEvent::ConnectionEstablished { peer_id, .. }) => {
                swarm
                    .behaviour_mut()
                    .send_request(&peer_id, Frame::Bytes(frame.clone()));
            }
            Ok(SwarmEvent::ConnectionClosed { .. }) => return true,
            Ok(_) => {}
        }
    }
}

async fn invalid_peer_messages(node: &varde_node::RunningNode) -> u64 {
    let mut client = v1::node_client::NodeClient::connect(format!("http://{}", node.grpc_address))
        .await
        .unwrap();
    client
        .status(v1::StatusRequest {})
        .await
        .unwrap()
        .into_inner()
        .invalid_peer_messages
}

// Undecodable consensus frames, an oversized frame and an unasked-for sync frame each get the
// validator peer disconnected and counted, and the node keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_a_validator_peer_disconnects_it() {
    let dir = tempfile::tempdir().unwrap();
    let peer_key = SigningKey::from_bytes(&[250; 32]);
    let (node, stop, address) = start_node(dir.path(), &peer_key).await;
    assert_eq!(invalid_peer_messages(&node).await, 0);

    let mut garbage = peer(&peer_key, CONSENSUS_PROTOCOL, 64 * 1024 * 1024);
    let frame = Bytes::from_static(b"\xff\xff\xff\xff not a consensus batch");
    assert!(send_and_expect_disconnect(&mut garbage, address, frame).await);
    assert_eq!(invalid_peer_messages(&node).await, 1);

    // A 20 MiB frame is over the consensus limit (4 MiB block + 1 MiB): refused by its prefix.
    let mut oversized = peer(&peer_key, CONSENSUS_PROTOCOL, 64 * 1024 * 1024);
    let frame = Bytes::from(vec![0u8; 20 * 1024 * 1024]);
    assert!(send_and_expect_disconnect(&mut oversized, address, frame).await);
    assert!(invalid_peer_messages(&node).await >= 2);

    // A sync request that does not decode.
    let mut bad_sync = peer(&peer_key, SYNC_PROTOCOL, 1024);
    let frame = Bytes::from_static(b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff");
    assert!(send_and_expect_disconnect(&mut bad_sync, address, frame).await);
    assert!(invalid_peer_messages(&node).await >= 3);

    let _ = stop.send(());
    node.wait().await.unwrap();
}

// A well-formed consensus batch from a validator peer keeps the connection open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_frame_keeps_the_peer_connected() {
    let dir = tempfile::tempdir().unwrap();
    let peer_key = SigningKey::from_bytes(&[251; 32]);
    let (node, stop, address) = start_node(dir.path(), &peer_key).await;
    let mut honest = peer(&peer_key, CONSENSUS_PROTOCOL, 1024 * 1024);
    let frame = Bytes::from(prost::Message::encode_to_vec(&v1::ConsensusBatch {
        messages: Vec::new(),
    }));
    assert!(!send_and_expect_disconnect(&mut honest, address, frame).await);
    assert_eq!(invalid_peer_messages(&node).await, 0);
    let _ = stop.send(());
    node.wait().await.unwrap();
}

/// A consensus batch of one prevote for nil at height 1, round 0, in the name of `validator`
/// (its index in the set) and signed by `signer`.
fn vote_frame(validator: u32, signer: &SigningKey) -> Bytes {
    let vote = varde_consensus::Vote {
        kind: varde_consensus::VoteKind::Prevote,
        height: 1,
        round: 0,
        block_id: None,
        validator,
    };
    let signed = varde_consensus::SignedVote::sign(demo::CHAIN_ID, vote, signer);
    let message = varde_consensus::Message::Vote(signed);
    Bytes::from(prost::Message::encode_to_vec(&v1::ConsensusBatch {
        messages: vec![varde_ledger::consensus_wire::message_to_wire(&message)],
    }))
}

// A well-formed vote whose signature does not verify gets the validator peer that sent it
// disconnected and counted: forgeries cost the sender its connection, not the node its time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_signature_disconnects_the_peer() {
    let dir = tempfile::tempdir().unwrap();
    let peer_key = SigningKey::from_bytes(&[252; 32]);
    let (node, stop, address) = start_node(dir.path(), &peer_key).await;
    let mut forger = peer(&peer_key, CONSENSUS_PROTOCOL, 1024 * 1024);
    let wrong_key = SigningKey::from_bytes(&[253; 32]);
    assert!(send_and_expect_disconnect(&mut forger, address, vote_frame(0, &wrong_key)).await);
    assert_eq!(invalid_peer_messages(&node).await, 1);
    let _ = stop.send(());
    node.wait().await.unwrap();
}

// An observer may connect and sync, but it is no validator: a consensus message from it, even
// a correctly signed one it relays, gets it disconnected and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_may_not_send_consensus_messages() {
    let dir = tempfile::tempdir().unwrap();
    let peer_key = SigningKey::from_bytes(&[254; 32]);
    let observer_key = SigningKey::from_bytes(&[255; 32]);
    let observer_hex: String = observer_key
        .verifying_key()
        .to_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let (node, stop, address) =
        start_node_with_observers(dir.path(), &peer_key, vec![observer_hex]).await;
    let mut observer = peer(&observer_key, CONSENSUS_PROTOCOL, 1024 * 1024);
    // The set is ordered by key bytes; the validator peer's own, correctly signed vote.
    let node_key = DemoKeys::from_seed(9)
        .of(demo::VALIDATOR)
        .verifying_key()
        .to_bytes();
    let peer_index = u32::from(node_key < peer_key.verifying_key().to_bytes());
    let relayed = vote_frame(peer_index, &peer_key);
    assert!(send_and_expect_disconnect(&mut observer, address, relayed).await);
    assert_eq!(invalid_peer_messages(&node).await, 1);
    let _ = stop.send(());
    node.wait().await.unwrap();
}
