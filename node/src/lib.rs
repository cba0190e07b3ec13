//! `varde-node`: one validator. It wires the mempool, the consensus engine, the ledger, storage,
//! the gRPC API and metrics together (ARCHITECTURE.md, "Network" and "Interfaces"); the libp2p network plugs in through
//! [`network::Network`] and [`driver::DriverHandle`].
//!
//! Tasks and channels (see `README.md`):
//! - the consensus driver ([`driver`]): owns the engine; inbound messages on a bounded mpsc;
//!   publishes committed blocks on a tokio broadcast channel;
//! - the gRPC server ([`grpc`], over TLS by default: [`tls`]): admits transactions to the
//!   mempool and reads the ledger;
//! - the metrics endpoint ([`metrics`]).

pub mod config;
pub mod context;
pub mod demo;
pub mod dev;
pub mod driver;
pub mod events;
pub mod grpc;
pub mod mempool;
pub mod metrics;
pub mod network;
pub mod node;
pub mod p2p;
pub mod service;
pub mod tls;
pub mod waiters;

pub use config::NodeConfig;
pub use dev::{DevOptions, run_dev};
pub use node::{RunningNode, start};
