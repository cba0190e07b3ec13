//! The `varde-sim` command's contract with scripts: its last line, and `SEED=S` on a failure.

use std::process::Command;

fn run(arguments: &[&str]) -> (bool, Vec<String>) {
    let output = Command::new(env!("CARGO_BIN_EXE_varde-sim"))
        .args(arguments)
        .output()
        .expect("varde-sim runs");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    (
        output.status.success(),
        stdout.lines().map(str::to_owned).collect(),
    )
}

fn assert_summary(line: &str, seeds: u64) -> u64 {
    let parts: Vec<&str> = line.split(", ").collect();
    assert_eq!(parts.len(), 3, "last line: {line}");
    assert_eq!(parts[0], format!("seeds: {seeds}"));
    let violations = parts[1]
        .strip_prefix("violations: ")
        .expect("violations field");
    let seconds = parts[2].strip_prefix("seconds: ").expect("seconds field");
    seconds.parse::<f64>().expect("seconds is a number");
    violations.parse().expect("violations is a number")
}

// A clean run exits 0 and ends with exactly `seeds: N, violations: 0, seconds: T`.
#[test]
fn clean_run_ends_with_the_summary_line() {
    let (success, lines) = run(&["--seeds", "20", "--first-seed", "100"]);
    assert!(success);
    assert_eq!(assert_summary(lines.last().unwrap(), 20), 0);
}

// A failing seed is named as `SEED=S` with what was violated, and the command exits non-zero.
#[test]
fn failing_seed_is_named_for_replay() {
    let (success, lines) = run(&["--seed", "12", "--break-rule", "quorum-two-f"]);
    assert!(!success);
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("SEED=12 agreement:")),
        "{lines:?}"
    );
    assert!(assert_summary(lines.last().unwrap(), 1) > 0);
}

// `--governance` runs only seeds whose validator set changes: the line before the summary says
// so for every seed, and the summary line keeps its format. A fixed-set run changes none.
#[test]
fn governance_runs_count_their_set_changes() {
    let (success, lines) = run(&["--governance", "--seeds", "4", "--first-seed", "40"]);
    assert!(success, "{lines:?}");
    assert_eq!(assert_summary(lines.last().unwrap(), 4), 0);
    assert_eq!(
        lines[lines.len() - 2],
        "seeds with validator-set changes: 4"
    );
    let (success, lines) = run(&["--fixed-set", "--seeds", "4", "--first-seed", "40"]);
    assert!(success, "{lines:?}");
    assert_eq!(
        lines[lines.len() - 2],
        "seeds with validator-set changes: 0"
    );
}
