//! The ledger builds without the node's heavy stack: no async runtime, network, database engine
//! or gRPC crate among its normal dependencies (the fuzz targets rely on it), checked on the real
//! dependency tree.

#[path = "../../test-support/cargo_tree.rs"]
mod cargo_tree;

const FORBIDDEN: [&str; 4] = ["tokio*", "libp2p*", "rocksdb*", "tonic*"];

// `cargo tree -p varde-ledger -e normal` names none of the forbidden crates.
#[test]
fn ledger_depends_on_no_runtime_network_database_or_grpc_crate() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let crates = cargo_tree::normal_dependencies(manifest, "varde-ledger", &["ed25519-dalek"]);
    cargo_tree::assert_none_of(
        "varde-ledger",
        &crates,
        &FORBIDDEN,
        "the fuzz targets must build without it",
    );
}
