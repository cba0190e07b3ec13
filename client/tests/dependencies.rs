//! Integrators build the client without the node: `varde-client` depends on no node, database
//! or peer-to-peer crate. Checked on the real dependency tree.

#[path = "../../test-support/cargo_tree.rs"]
mod cargo_tree;

const FORBIDDEN: [&str; 5] = [
    "varde-node",
    "varde-node-core",
    "rocksdb",
    "librocksdb-sys",
    "libp2p*",
];

// `cargo tree -p varde-client -e normal` holds the signing crate and the gRPC stack, and none of
// the forbidden crates (nor any `libp2p-*`).
#[test]
fn client_depends_on_no_node_database_or_peer_network() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let crates =
        cargo_tree::normal_dependencies(manifest, "varde-client", &["varde-ledger", "tonic"]);
    cargo_tree::assert_none_of(
        "varde-client",
        &crates,
        &FORBIDDEN,
        "integrators must build the client without the node",
    );
}
