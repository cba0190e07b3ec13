//! The figures of a run: committed throughput over the steady window, submit→commit latency of
//! the transactions due in it, what was refused and why, and the exactly-once check.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::check::ExactlyOnce;
use super::drive::{Answer, Mode, Sample};

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Everything a run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub mode: &'static str,
    /// Open loop: the rate offered.
    pub offered_tps: Option<f64>,
    /// Closed loop: the calls kept in flight.
    pub in_flight: Option<usize>,
    pub nodes: usize,
    pub connections: usize,
    pub warmup_seconds: f64,
    pub seconds: f64,
    /// Transactions due (open loop) or sent (closed loop) in the steady window.
    pub sent: usize,
    /// Commits acknowledged in the steady window.
    pub committed: usize,
    pub throughput_tps: f64,
    /// Of the transactions due in the window and committed: from due (open loop) or sent
    /// (closed loop) to the acknowledged commit.
    pub latency: Latency,
    /// Committed with a refusal by the ledger's rules (the mix should have none).
    pub rejected_by_rules: usize,
    /// Refused by a node with RESOURCE_EXHAUSTED (overload), over the whole run.
    pub refused_overload: usize,
    /// Other failures by status code, over the whole run.
    pub failed: BTreeMap<String, usize>,
    /// Not sent because the generator's in-flight limit was reached.
    pub not_sent: usize,
    pub exactly_once: Option<ExactlyOnce>,
}

/// The window of a run's samples that counts.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub warmup: Duration,
    pub steady: Duration,
}

impl Window {
    fn contains(&self, at: Duration) -> bool {
        at >= self.warmup && at < self.warmup + self.steady
    }
}

/// The figures of `samples` over `window`.
pub fn summarise(
    samples: &[Sample],
    window: Window,
    mode: Mode,
    nodes: usize,
    connections: usize,
) -> Report {
    let mut latencies: Vec<Duration> = Vec::new();
    let mut sent = 0;
    let mut committed = 0;
    let mut rejected_by_rules = 0;
    let mut refused_overload = 0;
    let mut not_sent = 0;
    let mut failed: BTreeMap<String, usize> = BTreeMap::new();
    for sample in samples {
        let due_in_window = window.contains(sample.due);
        if due_in_window {
            sent += 1;
        }
        match sample.answer {
            Answer::Committed { rejected, .. } => {
                if window.contains(sample.answered) {
                    committed += 1;
                }
                if due_in_window {
                    latencies.push(sample.answered.saturating_sub(sample.due));
                }
                if rejected {
                    rejected_by_rules += 1;
                }
            }
            Answer::Failed(tonic::Code::ResourceExhausted) => refused_overload += 1,
            Answer::Failed(code) => *failed.entry(format!("{code:?}")).or_default() += 1,
            Answer::NotSent => not_sent += 1,
        }
    }
    latencies.sort_unstable();
    let (offered_tps, in_flight, mode_name) = match mode {
        Mode::Open { rate } => (Some(rate), None, "open-loop"),
        Mode::Closed { in_flight } => (None, Some(in_flight), "closed-loop"),
    };
    Report {
        mode: mode_name,
        offered_tps,
        in_flight,
        nodes,
        connections,
        warmup_seconds: window.warmup.as_secs_f64(),
        seconds: window.steady.as_secs_f64(),
        sent,
        committed,
        throughput_tps: committed as f64 / window.steady.as_secs_f64().max(f64::EPSILON),
        latency: Latency {
            p50_ms: percentile_ms(&latencies, 0.50),
            p90_ms: percentile_ms(&latencies, 0.90),
            p99_ms: percentile_ms(&latencies, 0.99),
            max_ms: latencies.last().map_or(0.0, |max| max.as_secs_f64() * 1e3),
        },
        rejected_by_rules,
        refused_overload,
        failed,
        not_sent,
        exactly_once: None,
    }
}

/// The latency below which `fraction` of `sorted` falls (nearest rank).
fn percentile_ms(sorted: &[Duration], fraction: f64) -> f64 {
    let rank = ((sorted.len() as f64 * fraction).ceil() as usize).saturating_sub(1);
    sorted
        .get(rank)
        .map_or(0.0, |latency| latency.as_secs_f64() * 1e3)
}

impl Report {
    /// The table, then the one line scripts grep for.
    pub fn render(&self) -> String {
        let mut text = String::new();
        let mut row = |name: &str, value: String| {
            let _ = writeln!(text, "{name:<28} {value}");
        };
        row("mode", self.mode.to_owned());
        if let Some(rate) = self.offered_tps {
            row("offered (tx/s)", format!("{rate:.1}"));
        }
        if let Some(in_flight) = self.in_flight {
            row("in flight", in_flight.to_string());
        }
        row(
            "nodes / connections",
            format!("{} / {}", self.nodes, self.connections),
        );
        row(
            "window",
            format!(
                "{:.0} s after {:.0} s of warm-up",
                self.seconds, self.warmup_seconds
            ),
        );
        row("sent in window", self.sent.to_string());
        row("committed in window", self.committed.to_string());
        row("throughput (tx/s)", format!("{:.1}", self.throughput_tps));
        row(
            "latency p50 / p90 (ms)",
            format!("{:.1} / {:.1}", self.latency.p50_ms, self.latency.p90_ms),
        );
        row(
            "latency p99 / max (ms)",
            format!("{:.1} / {:.1}", self.latency.p99_ms, self.latency.max_ms),
        );
        row("rejected by the rules", self.rejected_by_rules.to_string());
        row(
            "refused RESOURCE_EXHAUSTED",
            self.refused_overload.to_string(),
        );
        let failed = if self.failed.is_empty() {
            "0".to_owned()
        } else {
            self.failed
                .iter()
                .map(|(code, count)| format!("{count} {code}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        row("failed", failed);
        if self.not_sent > 0 {
            row("not sent (in-flight limit)", self.not_sent.to_string());
        }
        if let Some(check) = &self.exactly_once {
            row(
                "exactly once",
                format!(
                    "{} ({} acknowledged, {} missing, {} duplicated, {} at another height; blocks {}..={})",
                    if check.holds() { "holds" } else { "VIOLATED" },
                    check.acknowledged,
                    check.missing,
                    check.duplicated,
                    check.wrong_height,
                    check.first_height,
                    check.last_height
                ),
            );
        }
        let _ = writeln!(text, "{}", self.summary_line());
        text
    }

    /// `throughput_tps: X, p50_ms: A, p99_ms: B`.
    pub fn summary_line(&self) -> String {
        format!(
            "throughput_tps: {:.1}, p50_ms: {:.1}, p99_ms: {:.1}",
            self.throughput_tps, self.latency.p50_ms, self.latency.p99_ms
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(index: usize, due_ms: u64, answered_ms: u64, answer: Answer) -> Sample {
        Sample {
            index,
            due: Duration::from_millis(due_ms),
            answered: Duration::from_millis(answered_ms),
            answer,
        }
    }

    // Only the window counts; latency runs from the due time; refusals are sorted by kind.
    #[test]
    fn the_window_and_the_latencies() {
        let committed = Answer::Committed {
            height: 3,
            rejected: false,
        };
        let samples = vec![
            sample(0, 500, 900, committed), // warm-up: not counted
            sample(1, 1_000, 1_010, committed),
            sample(2, 1_500, 1_530, committed),
            sample(3, 2_500, 3_100, committed), // due in window, answered after it
            sample(
                4,
                2_600,
                2_600,
                Answer::Failed(tonic::Code::ResourceExhausted),
            ),
            sample(5, 2_700, 2_700, Answer::Failed(tonic::Code::Unavailable)),
        ];
        let window = Window {
            warmup: Duration::from_secs(1),
            steady: Duration::from_secs(2),
        };
        let report = summarise(&samples, window, Mode::Open { rate: 2.0 }, 1, 1);
        assert_eq!(report.sent, 5);
        assert_eq!(report.committed, 2);
        assert_eq!(report.throughput_tps, 1.0);
        assert_eq!(report.latency.p50_ms, 30.0);
        assert_eq!(report.latency.max_ms, 600.0);
        assert_eq!(report.refused_overload, 1);
        assert_eq!(report.failed.get("Unavailable"), Some(&1));
        assert!(
            report
                .render()
                .ends_with("throughput_tps: 1.0, p50_ms: 30.0, p99_ms: 600.0\n")
        );
    }
}
