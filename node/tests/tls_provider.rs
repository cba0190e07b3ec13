//! TLS runs on rustls with the ring provider: aws-lc (another long C build that wants cmake)
//! stays out of the whole workspace's dependency tree. Checked on the real tree.

use std::process::Command;

// `cargo tree --workspace` (normal and build edges, every feature the workspace enables) holds
// ring and rustls but no aws-lc crate.
#[test]
fn the_workspace_uses_ring_and_never_aws_lc() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "tree",
            "--workspace",
            "-e",
            "normal,build",
            "--prefix",
            "none",
        ])
        .args([
            "--manifest-path",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"),
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
    for expected in ["rustls", "ring", "rcgen", "tonic"] {
        assert!(
            crates.contains(&expected),
            "{expected} is not in the tree:\n{tree}"
        );
    }
    let aws_lc: Vec<&&str> = crates
        .iter()
        .filter(|name| name.starts_with("aws-lc"))
        .collect();
    assert!(aws_lc.is_empty(), "aws-lc is in the tree: {aws_lc:?}");
}
