//! Integrators build the client without the node: `varde-client` depends on no node, database
//! or peer-to-peer crate. Checked on the real dependency tree.

use std::process::Command;

const FORBIDDEN: [&str; 5] = [
    "varde-node",
    "rocksdb",
    "librocksdb-sys",
    "libp2p",
    "varde-node-core",
];

// `cargo tree -p varde-client -e normal` names none of the forbidden crates.
#[test]
fn client_depends_on_no_node_database_or_peer_network() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "varde-client",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args([
            "--manifest-path",
            concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
        ])
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8(output.stdout).expect("cargo tree prints UTF-8");
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    // The tree was really read: the signing crate and the gRPC stack are in it.
    assert!(
        crates.contains(&"varde-ledger") && crates.contains(&"tonic"),
        "unexpected cargo tree output:\n{tree}"
    );
    for name in crates {
        assert!(
            !FORBIDDEN.contains(&name) && !name.starts_with("libp2p"),
            "varde-client depends on {name}"
        );
    }
}
