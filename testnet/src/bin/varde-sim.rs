//! `varde-sim`: runs Varde's node core (consensus engine, block rules, catch-up, persist → send →
//! apply) through seeded, deterministic simulations.
//!
//! `varde-sim --seeds N` runs seeds 0..N over mixed scenarios (a share of them changing the
//! validator set by governance), `--governance` over governance scenarios only; `varde-sim --seed
//! S` replays one seed exactly and describes it. The line before the last says how many seeds
//! changed their validator set; the last line is always `seeds: N, violations: V, seconds: T`.

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use varde_testnet::sim::{BrokenRule, Mix, SeedReport, default_threads, run_seed_in, run_seeds_in};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RuleToBreak {
    /// Count 2f votes as a quorum instead of 2f+1.
    QuorumTwoF,
    /// Ignore the lock when prevoting.
    IgnoreLock,
    /// Forget the persisted safety state on restart.
    ForgetSafetyState,
    /// Do not hold proposals to the validator's clock.
    SkipTimeCheck,
    /// Buffer next-height messages without bound.
    UnboundedFutureBuffer,
    /// Ignore the propose timeout.
    IgnoreProposeTimeout,
    /// Keep the old validator set when governance changes it.
    KeepOldValidatorSet,
}

/// Deterministic simulation of Varde's BFT consensus engine.
#[derive(Debug, Parser)]
#[command(name = "varde-sim", version)]
struct Arguments {
    /// Run this many seeds, starting at --first-seed.
    #[arg(long, default_value_t = 100, conflicts_with = "seed")]
    seeds: u64,
    /// The first seed of a --seeds run.
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Replay exactly this one seed and describe it.
    #[arg(long)]
    seed: Option<u64>,
    /// Worker threads (default: the machine's cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Switch off a safety rule in every honest validator, to show that the simulator notices.
    #[arg(long, value_enum)]
    break_rule: Option<RuleToBreak>,
    /// Run governance scenarios only: the validator set changes across heights.
    #[arg(long, conflicts_with = "fixed_set")]
    governance: bool,
    /// Run fixed-set scenarios only: the genesis validators decide every height.
    #[arg(long)]
    fixed_set: bool,
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    let broken_rule = arguments.break_rule.map(|rule| match rule {
        RuleToBreak::QuorumTwoF => BrokenRule::QuorumOfTwoF,
        RuleToBreak::IgnoreLock => BrokenRule::IgnoreLock,
        RuleToBreak::ForgetSafetyState => BrokenRule::ForgetSafetyState,
        RuleToBreak::SkipTimeCheck => BrokenRule::SkipTimeCheck,
        RuleToBreak::UnboundedFutureBuffer => BrokenRule::UnboundedFutureBuffer,
        RuleToBreak::IgnoreProposeTimeout => BrokenRule::IgnoreProposeTimeout,
        RuleToBreak::KeepOldValidatorSet => BrokenRule::KeepOldValidatorSet,
    });
    let mix = if arguments.governance {
        Mix::Governance
    } else if arguments.fixed_set {
        Mix::FixedSet
    } else {
        Mix::Mixed
    };
    let started = Instant::now();
    let (seeds, violations, with_set_changes) = match arguments.seed {
        Some(seed) => {
            let report = run_seed_in(seed, broken_rule, mix);
            println!("seed {seed}: {}", report.scenario);
            println!(
                "  virtual time {} ms, {} events, highest committed height {}, {} set changes, {} rejected messages, {} refused synced blocks, {} evidence",
                report.stats.virtual_ms,
                report.stats.events,
                report.stats.highest_committed,
                report.stats.set_changes,
                report.stats.rejected_messages,
                report.stats.invalid_synced_blocks,
                report.stats.evidence_reported,
            );
            if report.stats.set_changes > 0 {
                println!(
                    "  {} heights certified by new keys, {} messages of removed validators, {} crashes across changes, {} misbehaviour of added validators recorded",
                    report.stats.heights_signed_by_new_keys,
                    report.stats.lingering_messages,
                    report.stats.boundary_crashes,
                    report.stats.added_validator_misbehaviour_recorded,
                );
            }
            print_failure(&report);
            let changed = u64::from(report.stats.set_changes > 0);
            (1, report.stats.violations, changed)
        }
        None => run_many(&arguments, broken_rule, mix),
    };
    println!("seeds with validator-set changes: {with_set_changes}");
    println!(
        "seeds: {seeds}, violations: {violations}, seconds: {:.1}",
        started.elapsed().as_secs_f64()
    );
    if violations == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_failure(report: &SeedReport) {
    for violation in &report.violations {
        println!("SEED={} {violation}", report.seed);
    }
    let unshown = report.stats.violations - report.violations.len();
    if unshown > 0 {
        println!("SEED={} and {unshown} more violations", report.seed);
    }
}

/// Runs the seeds of a `--seeds` run on worker threads, printing each failure as it is found.
fn run_many(arguments: &Arguments, broken_rule: Option<BrokenRule>, mix: Mix) -> (u64, usize, u64) {
    let threads = arguments.threads.unwrap_or_else(default_threads);
    let seeds = arguments.first_seed..arguments.first_seed + arguments.seeds;
    let summary = run_seeds_in(seeds, broken_rule, mix, threads, print_failure);
    let violations = summary
        .failures
        .iter()
        .map(|report| report.stats.violations)
        .sum();
    (arguments.seeds, violations, summary.seeds_with_set_changes)
}
