//! The engine stays sans-IO: no async runtime, network, database or protobuf crate among its normal
//! dependencies, checked on the real dependency tree.

#[path = "../../test-support/cargo_tree.rs"]
mod cargo_tree;

const FORBIDDEN: [&str; 5] = ["tokio*", "libp2p*", "rocksdb*", "tonic*", "prost*"];

// `cargo tree -p varde-consensus -e normal` names none of the forbidden crates.
#[test]
fn consensus_depends_on_no_runtime_network_database_or_protobuf_crate() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let crates = cargo_tree::normal_dependencies(manifest, "varde-consensus", &["ed25519-dalek"]);
    cargo_tree::assert_none_of(
        "varde-consensus",
        &crates,
        &FORBIDDEN,
        "it brings I/O into the engine",
    );
}
