//! The ledger builds without the node's heavy stack: no async runtime, network, database engine
//! or gRPC crate among its normal dependencies (the fuzz targets rely on it), checked on the real
//! dependency tree.

use std::process::Command;

const FORBIDDEN: [&str; 4] = ["tokio", "libp2p", "rocksdb", "tonic"];

// `cargo tree -p varde-ledger -e normal` names none of the forbidden crates.
#[test]
fn ledger_depends_on_no_runtime_network_database_or_grpc_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "varde-ledger",
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
    // The tree was really read: the ledger's own crypto is in it.
    assert!(
        crates.contains(&"ed25519-dalek"),
        "unexpected cargo tree output:\n{tree}"
    );
    for name in crates {
        for forbidden in FORBIDDEN {
            assert!(
                !(name == forbidden || name.starts_with(&format!("{forbidden}-"))),
                "varde-ledger depends on {name}, which the fuzz targets must build without"
            );
        }
    }
}
