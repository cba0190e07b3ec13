//! The engine stays sans-IO: no async runtime, network, database or protobuf crate among its normal
//! dependencies, checked on the real dependency tree.

use std::process::Command;

const FORBIDDEN: [&str; 5] = ["tokio", "libp2p", "rocksdb", "tonic", "prost"];

// `cargo tree -p varde-consensus -e normal` names none of the forbidden crates.
#[test]
fn consensus_depends_on_no_runtime_network_database_or_protobuf_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "varde-consensus",
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
    // The tree was really read: the engine's own crypto is in it.
    assert!(
        crates.contains(&"ed25519-dalek"),
        "unexpected cargo tree output:\n{tree}"
    );
    for name in crates {
        for forbidden in FORBIDDEN {
            assert!(
                !(name == forbidden || name.starts_with(&format!("{forbidden}-"))),
                "varde-consensus depends on {name}, which brings I/O into the engine"
            );
        }
    }
}
