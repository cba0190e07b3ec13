//! The simulator stays free of I/O: without the `local` feature, varde-testnet depends on the node
//! core, the ledger and the in-memory store, but on no node, database, network or async crate, so
//! `varde-sim` builds in seconds. Checked on the real dependency tree.

#[path = "../../test-support/cargo_tree.rs"]
mod cargo_tree;

const FORBIDDEN: [&str; 6] = [
    "varde-node",
    "librocksdb-sys",
    "tokio",
    "libp2p",
    "rocksdb",
    "tonic",
];

// `cargo tree -p varde-testnet -e normal` without features names none of the forbidden crates.
#[test]
fn simulator_depends_on_no_database_network_or_runtime() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let crates = cargo_tree::normal_dependencies(
        manifest,
        "varde-testnet",
        &["varde-consensus", "varde-node-core"],
    );
    cargo_tree::assert_none_of(
        "varde-testnet",
        &crates,
        &FORBIDDEN,
        "the simulator builds without `local`'s database, network and runtime",
    );
}
