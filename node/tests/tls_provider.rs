//! TLS runs on rustls with the ring provider: aws-lc (another long C build that wants cmake)
//! stays out of the whole workspace's dependency tree. Checked on the real tree.

#[path = "../../test-support/cargo_tree.rs"]
mod cargo_tree;

// `cargo tree --workspace` (normal and build edges, every feature the workspace enables) holds
// ring and rustls but no aws-lc crate.
#[test]
fn the_workspace_uses_ring_and_never_aws_lc() {
    let crates = cargo_tree::crates(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"),
        &["--workspace", "-e", "normal,build"],
    );
    for expected in ["rustls", "ring", "rcgen", "tonic"] {
        assert!(
            crates.iter().any(|name| name == expected),
            "{expected} is not in the tree: {crates:?}"
        );
    }
    let aws_lc: Vec<&String> = crates
        .iter()
        .filter(|name| name.starts_with("aws-lc"))
        .collect();
    assert!(aws_lc.is_empty(), "aws-lc is in the tree: {aws_lc:?}");
}
