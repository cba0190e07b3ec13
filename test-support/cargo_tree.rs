//! The dependency checks' one reading of `cargo tree`, shared by the crates' tests that keep
//! heavy or forbidden crates out of a build (`#[path = "../../test-support/cargo_tree.rs"]`).
#![allow(dead_code)]

use std::process::Command;

/// The crate names `cargo tree <arguments> --prefix none` prints for the workspace of
/// `manifest_path` (each crate once per line it stands on).
pub fn crates(manifest_path: &str, arguments: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .arg("tree")
        .args(arguments)
        .args(["--prefix", "none", "--manifest-path", manifest_path])
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8(output.stdout).expect("cargo tree prints UTF-8");
    tree.lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The normal dependencies of `package` (in the workspace of `manifest_path`), checked to hold
/// every crate of `expected`, so that the tree was really read.
pub fn normal_dependencies(manifest_path: &str, package: &str, expected: &[&str]) -> Vec<String> {
    let crates = crates(manifest_path, &["-p", package, "-e", "normal"]);
    for name in expected {
        assert!(
            crates.iter().any(|crate_name| crate_name == name),
            "{name} is not in the tree of {package}: {crates:?}"
        );
    }
    crates
}

/// Panics with `why` when a crate of `crates` is named in `forbidden`: by its exact name, or by
/// its family with a trailing `*` (`tokio*` forbids `tokio` and `tokio-stream`).
pub fn assert_none_of(package: &str, crates: &[String], forbidden: &[&str], why: &str) {
    for name in crates {
        for forbidden in forbidden {
            let matches = match forbidden.strip_suffix('*') {
                Some(family) => name == family || name.starts_with(&format!("{family}-")),
                None => name == forbidden,
            };
            assert!(!matches, "{package} depends on {name}: {why}");
        }
    }
}
