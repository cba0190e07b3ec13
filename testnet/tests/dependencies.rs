//! The simulator stays free of I/O: without the `local` feature, varde-testnet depends on the node
//! core, the ledger and the in-memory store, but on no node, database, network or async crate, so
//! `varde-sim` builds in seconds. Checked on the real dependency tree.

use std::process::Command;

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
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "varde-testnet",
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
    // The tree was really read: the engine and the node core are in it.
    assert!(
        crates.contains(&"varde-consensus") && crates.contains(&"varde-node-core"),
        "unexpected cargo tree output:\n{tree}"
    );
    for name in crates {
        for forbidden in FORBIDDEN {
            assert!(
                name != forbidden,
                "varde-testnet without `local` depends on {name}"
            );
        }
    }
}
