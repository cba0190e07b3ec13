//! The simulator's own guarantees: the engine holds every invariant over many seeds, with fixed
//! and with changing validator sets, a broken safety rule is caught, runs replay exactly, and the
//! scenario mix really exercises every fault.

use varde_testnet::sim::{
    BrokenRule, ChangeKind, GOVERNANCE_SHARE, Mix, Scenario, SeedReport, Strategy, Violation,
    default_threads, run_seed, run_seed_in, run_seeds, run_seeds_in,
};

fn describe(failures: &[SeedReport]) -> String {
    failures
        .iter()
        .flat_map(|report| {
            report.violations.iter().map(move |violation| {
                format!("SEED={} {violation} ({})", report.seed, report.scenario)
            })
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// A thousand seeds of mixed faults: agreement, validity, no honest equivocation, honest evidence
// only against Byzantine validators, and liveness after stabilisation, checked after every event.
#[test]
fn a_thousand_seeds_hold_every_invariant() {
    let failures = run_seeds(0..1_000, None, default_threads(), |_| {});
    assert!(
        failures.is_empty(),
        "violations found:\n{}",
        describe(&failures)
    );
}

// Seeds that once failed, each with what it showed:
// - 4624, 6018: a validator restarted with a valid block in its safety state re-proposed it
//   without counting the block's polka again, so it did not prevote its own re-proposal; with a
//   Byzantine validator refusing every block, the height stalled (liveness).
#[test]
fn seeds_that_once_failed_hold_every_invariant() {
    // 4624, 6018: a restored valid block's prevotes were not counted. 45127, 54798: a block
    // judged invalid for a time beyond the validator's clock stayed invalid for the whole height,
    // though its time had since passed, so validators locked on it never gathered a quorum.
    for seed in [4_624, 6_018, 45_127, 54_798] {
        let report = run_seed_in(seed, None, Mix::FixedSet);
        assert!(
            report.violations.is_empty(),
            "{}",
            describe(std::slice::from_ref(&report))
        );
    }
}

/// The first seed below 1,000 on which two honest validators commit different blocks.
fn first_agreement_violation(broken_rule: BrokenRule) -> Option<SeedReport> {
    first_violation(broken_rule, |violation| {
        matches!(violation, Violation::Agreement { .. })
    })
}

/// The first seed below 1,000 with `broken_rule` on which the checker reports a violation that
/// `wanted` picks.
fn first_violation(
    broken_rule: BrokenRule,
    wanted: impl Fn(&Violation) -> bool,
) -> Option<SeedReport> {
    (0..1_000)
        .map(|seed| run_seed(seed, Some(broken_rule)))
        .find(|report| report.violations.iter().any(&wanted))
}

// A validator that forgets its persisted safety state on restart signs again what it signed
// before, and the checker sees an honest validator equivocate.
#[test]
fn forgetting_the_safety_state_is_caught_as_equivocation() {
    let report = first_violation(BrokenRule::ForgetSafetyState, |violation| {
        matches!(violation, Violation::HonestEquivocation { .. })
    });
    assert!(
        report.is_some(),
        "no honest equivocation within 1,000 seeds"
    );
}

// Validators that do not hold proposals to their clocks commit a Byzantine proposer's block dated
// a day ahead, and the referee sees a block that breaks the time rule.
#[test]
fn skipping_the_time_check_is_caught_as_invalid_blocks() {
    let report = first_violation(
        BrokenRule::SkipTimeCheck,
        |violation| matches!(violation, Violation::Validity { reason, .. } if reason.contains("ahead")),
    );
    assert!(report.is_some(), "no validity violation within 1,000 seeds");
}

// An engine that buffers next-height messages without its per-validator bound fills up under a
// flooding validator, and the checker sees it.
#[test]
fn an_unbounded_buffer_is_caught_as_unbounded_memory() {
    let report = first_violation(BrokenRule::UnboundedFutureBuffer, |violation| {
        matches!(violation, Violation::Memory { .. })
    });
    assert!(report.is_some(), "no memory violation within 1,000 seeds");
}

// An engine that ignores the propose timeout waits for ever for a silent proposer, and the
// checker sees honest validators stop committing after stabilisation.
#[test]
fn ignoring_the_propose_timeout_is_caught_as_lost_liveness() {
    let report = first_violation(BrokenRule::IgnoreProposeTimeout, |violation| {
        matches!(violation, Violation::Liveness { .. })
    });
    assert!(report.is_some(), "no liveness violation within 1,000 seeds");
}

// Counting 2f votes as a quorum lets two blocks commit at one height, and the simulator sees it.
#[test]
fn a_quorum_of_two_f_is_caught_breaking_agreement() {
    let report = first_agreement_violation(BrokenRule::QuorumOfTwoF);
    assert!(
        report.is_some(),
        "no agreement violation within 1,000 seeds"
    );
}

// Prevoting against one's lock lets a later round commit another block, and the simulator sees it.
#[test]
fn ignoring_the_lock_is_caught_breaking_agreement() {
    let report = first_agreement_violation(BrokenRule::IgnoreLock);
    assert!(
        report.is_some(),
        "no agreement violation within 1,000 seeds"
    );
}

// The same seed gives the same run, event for event, with a fixed set and a changing one.
#[test]
fn a_seed_replays_exactly() {
    for (seed, mix) in [
        (3, Mix::FixedSet),
        (17, Mix::FixedSet),
        (4_242, Mix::FixedSet),
        (5, Mix::Governance),
    ] {
        let first = run_seed_in(seed, None, mix);
        let second = run_seed_in(seed, None, mix);
        assert_eq!(format!("{first:?}"), format!("{second:?}"), "seed {seed}");
        assert!(first.stats.events > 0 && first.stats.highest_committed > 0);
    }
}

// Over 300 seeds every size, Byzantine strategy and network fault occurs, so the thousand-seed run
// above is not a thousand calm networks.
#[test]
fn the_scenario_mix_covers_every_fault() {
    let scenarios: Vec<Scenario> = (0..300)
        .map(|seed| Scenario::from_seed(seed, None))
        .collect();
    for size in [4, 7, 10] {
        assert!(
            scenarios.iter().any(|s| s.validator_count == size),
            "n = {size}"
        );
    }
    for strategy in [
        Strategy::Silent,
        Strategy::Equivocate,
        Strategy::Mirror,
        Strategy::Garbage,
        Strategy::TimeWarp,
        Strategy::SyncForger,
        Strategy::Flood,
        Strategy::Oversize,
    ] {
        assert!(
            scenarios
                .iter()
                .any(|s| s.byzantine.iter().any(|(_, used)| *used == strategy)),
            "{strategy:?}"
        );
    }
    let full_f = |s: &Scenario| s.byzantine.len() == (s.validator_count - 1) / 3;
    assert!(
        scenarios
            .iter()
            .any(|s| s.validator_count == 10 && full_f(s)),
        "f = 3 Byzantine of 10"
    );
    assert!(scenarios.iter().any(|s| !s.crashes.is_empty()), "crashes");
    assert!(
        scenarios.iter().any(|s| !s.step_crashes.is_empty()),
        "crashes inside a step"
    );
    assert!(
        scenarios.iter().any(|s| s.ledger) && scenarios.iter().any(|s| !s.ledger),
        "both applications"
    );
    assert!(
        scenarios
            .iter()
            .any(|s| s.clock_skew_ms.iter().any(|skew| *skew != 0)),
        "clock skew"
    );
    assert!(
        scenarios.iter().any(|s| !s.partitions.is_empty()),
        "partitions"
    );
    assert!(scenarios.iter().any(|s| s.intruder), "intruder");
    assert!(scenarios.iter().any(|s| s.network.loss > 0.1), "loss");
    assert!(
        scenarios.iter().any(|s| s.network.duplication > 0.0),
        "duplication"
    );
    assert!(
        scenarios.iter().any(|s| s.network.long_delay > 0.0),
        "long delays"
    );
    assert!(
        scenarios
            .iter()
            .any(|s| !s.crashes.is_empty() && !s.byzantine.is_empty() && s.network.loss > 0.0),
        "faults combined"
    );
    assert!(
        scenarios.iter().any(|s| s.governance.is_some())
            && scenarios.iter().any(|s| s.governance.is_none()),
        "fixed and changing validator sets"
    );
}

/// Runs governance seeds `seeds` on the machine's cores; every report, in seed order.
fn governance_reports(seeds: std::ops::Range<u64>) -> Vec<SeedReport> {
    let threads = default_threads().max(1) as u64;
    let mut reports: Vec<SeedReport> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|worker| {
                let seeds = seeds.clone();
                scope.spawn(move || {
                    seeds
                        .filter(|seed| seed % threads == worker)
                        .map(|seed| run_seed_in(seed, None, Mix::Governance))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("a simulation thread"))
            .collect()
    });
    reports.sort_by_key(|report| report.seed);
    reports
}

// Governance seeds: validators added, removed and rotated across heights, with a removed
// validator that keeps voting, a new one that equivocates, and crashes across the changes. Every
// invariant holds, each honest node's chain has the chain's validator-set history, and a light
// client from the genesis follows each one; and each attack really happened on some seed.
#[test]
fn governance_seeds_hold_every_invariant() {
    let reports = governance_reports(0..120);
    let failures: Vec<SeedReport> = reports
        .iter()
        .filter(|report| report.stats.violations > 0)
        .cloned()
        .collect();
    assert!(
        failures.is_empty(),
        "violations found:\n{}",
        describe(&failures)
    );
    let seeds_where =
        |what: &dyn Fn(&SeedReport) -> bool| reports.iter().filter(|report| what(report)).count();
    assert_eq!(
        seeds_where(&|report| report.stats.set_changes > 0),
        reports.len(),
        "every governance seed changes the set"
    );
    assert!(
        seeds_where(&|report| report.stats.set_changes >= 2) > 0,
        "several changes in one run"
    );
    // A validator that joined, or a rotated key, signed the certificates of later heights.
    assert!(
        seeds_where(&|report| report.stats.heights_signed_by_new_keys > 0) > 10,
        "new keys certify heights"
    );
    // Removed validators went on signing for the heights after their removal, in vain.
    assert!(
        seeds_where(&|report| report.stats.lingering_messages > 0) > 10,
        "removed validators that keep voting"
    );
    // Honest reports of an added validator's equivocation verified on the ledger against the
    // set of their height.
    assert!(
        seeds_where(&|report| report.stats.added_validator_misbehaviour_recorded > 0) > 0,
        "an added validator's equivocation on the ledger"
    );
    assert!(
        seeds_where(&|report| report.stats.boundary_crashes > 0) > 10,
        "crashes across set changes"
    );
}

// Governance scenarios as the seed draws them: every kind of change, two at one height, the
// Byzantine validators at the boundaries, crashes across changes (the rotated validator's too),
// and at most f Byzantine validators in every set of the plan.
#[test]
fn the_governance_mix_covers_every_change() {
    let scenarios: Vec<Scenario> = (0..300)
        .map(|seed| Scenario::from_seed_in(seed, None, Mix::Governance))
        .collect();
    let plans: Vec<_> = scenarios
        .iter()
        .map(|s| s.governance.as_ref().expect("a governance scenario"))
        .collect();
    let has = |what: &dyn Fn(&ChangeKind) -> bool| {
        plans
            .iter()
            .any(|plan| plan.changes.iter().any(|change| what(&change.kind)))
    };
    for new_institution in [true, false] {
        assert!(
            has(
                &|kind| matches!(kind, ChangeKind::AddValidator { new_institution: n, .. } if *n == new_institution)
            ),
            "add, new institution {new_institution}"
        );
    }
    for whole_institution in [true, false] {
        assert!(
            has(
                &|kind| matches!(kind, ChangeKind::RemoveValidator { whole_institution: w, .. } if *w == whole_institution)
            ),
            "remove, whole institution {whole_institution}"
        );
    }
    assert!(
        has(&|kind| matches!(kind, ChangeKind::RotateKey { .. })),
        "rotation"
    );
    assert!(
        plans.iter().any(|plan| plan.changes.len() == 3),
        "all three changes in one run"
    );
    assert!(
        plans.iter().any(|plan| plan
            .changes
            .windows(2)
            .any(|pair| pair[0].effective_height == pair[1].effective_height)),
        "two changes at one height"
    );
    assert!(
        scenarios.iter().any(|s| s
            .byzantine
            .iter()
            .any(|(_, strategy)| *strategy == Strategy::Lingering)),
        "a removed validator that lingers"
    );
    assert!(
        scenarios.iter().any(|s| {
            let joiner = s.governance.as_ref().and_then(|plan| plan.joiner);
            joiner.is_some_and(|node| s.strategy_of(node) == Some(Strategy::Equivocate))
        }),
        "a joining validator that equivocates"
    );
    assert!(
        scenarios.iter().any(|s| {
            let plan = s.governance.as_ref().expect("a governance scenario");
            plan.boundary_crashes
                .iter()
                .any(|crash| Some(crash.node) == plan.rotated() && crash.effects.is_some())
        }),
        "the rotated validator dies inside a step around its rotation"
    );
    for scenario in &scenarios {
        let plan = scenario.governance.as_ref().expect("a governance scenario");
        for (from, members) in plan.node_sets(scenario.validator_count) {
            let faulty = members
                .iter()
                .filter(|node| scenario.strategy_of(**node).is_some())
                .count();
            assert!(
                faulty <= (members.len() - 1) / 3,
                "seed {}: {faulty} Byzantine of {} from height {from}",
                scenario.seed,
                members.len()
            );
        }
    }
    // A mixed run draws governance scenarios on a share of its seeds.
    let mixed = (0..1_000)
        .filter(|seed| Scenario::from_seed(*seed, None).governance.is_some())
        .count() as f64
        / 1_000.0;
    assert!(
        (GOVERNANCE_SHARE - 0.05..GOVERNANCE_SHARE + 0.05).contains(&mixed),
        "{mixed} of mixed seeds are governance seeds"
    );
}

// Validators that keep the set they started with when governance changes it (so a removed
// validator's votes still count, and a joiner's or a rotated key's do not) are caught three
// ways: their cores decide with a set other than their height's, their certificates do not
// verify against the set of their height, and a light client from the genesis refuses their
// chains.
#[test]
fn keeping_the_old_validator_set_is_caught() {
    let report = (0..100)
        .map(|seed| run_seed(seed, Some(BrokenRule::KeepOldValidatorSet)))
        .find(|report| {
            let has = |wanted: &dyn Fn(&Violation) -> bool| report.violations.iter().any(wanted);
            has(&|violation| matches!(violation, Violation::ValidatorSet { node: Some(_), .. }))
                && has(&|violation| matches!(violation, Violation::Validity { reason, .. } if reason.contains("set of its height")))
                && has(&|violation| matches!(violation, Violation::LightClient { .. }))
        });
    assert!(
        report.is_some(),
        "no seed below 100 caught the old set three ways"
    );
}

// `run_seeds_in` counts the seeds whose chain changed its set: all of a governance run, none of
// a fixed-set run.
#[test]
fn runs_count_the_seeds_with_set_changes() {
    let governance = run_seeds_in(0..6, None, Mix::Governance, default_threads(), |_| {});
    assert_eq!(governance.seeds_with_set_changes, 6);
    let fixed = run_seeds_in(0..6, None, Mix::FixedSet, default_threads(), |_| {});
    assert_eq!(fixed.seeds_with_set_changes, 0);
}
