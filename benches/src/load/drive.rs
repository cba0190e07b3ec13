//! Sending the prepared transactions: open loop at a fixed rate, or closed loop with a fixed
//! number in flight, each with SubmitAndWait over a few long-lived HTTP/2 connections per node
//! (many calls in flight on each).
//!
//! Open loop: transaction `i` is due at `start + i / rate`, and its latency is counted from
//! then, not from when it was actually sent, so that queueing in the generator or the node
//! shows in the figures instead of lowering the offered load.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::Code;
use tonic::transport::Channel;
use varde_proto::v1;
use varde_proto::v1::ledger_client::LedgerClient;

use super::workload::Prepared;

/// How long a SubmitAndWait waits for the commit before the call counts as failed.
pub const COMMIT_WAIT: Duration = Duration::from_secs(30);

/// How the load is offered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Transactions due at `rate` per second whatever the answers.
    Open { rate: f64 },
    /// `in_flight` calls at all times: a new one as soon as one is answered.
    Closed { in_flight: usize },
}

/// What happened to one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Committed at this height; `rejected` when the ledger's rules refused it there (it is on
    /// the ledger with its refusal, as every committed transaction is).
    Committed { height: u64, rejected: bool },
    /// Refused or failed with this status code.
    Failed(Code),
    /// Not sent: the open loop had too many calls in flight (a generator limit, reported).
    NotSent,
}

/// One transaction's fate, with times measured from the start of the run.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub index: usize,
    /// When it was due (open loop) or sent (closed loop).
    pub due: Duration,
    /// When the answer came.
    pub answered: Duration,
    pub answer: Answer,
}

/// Live counters for the progress display.
#[derive(Debug, Default)]
pub struct Progress {
    pub committed: AtomicU64,
    pub failed: AtomicU64,
    pub in_flight: AtomicU64,
}

/// Connections to spread the calls over.
#[derive(Clone)]
pub struct Connections {
    channels: Arc<Vec<Channel>>,
    next: Arc<AtomicUsize>,
}

impl Connections {
    pub fn new(channels: Vec<Channel>) -> Self {
        assert!(!channels.is_empty(), "at least one connection");
        Self {
            channels: Arc::new(channels),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn next_client(&self) -> LedgerClient<Channel> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.channels.len();
        LedgerClient::new(self.channels[index].clone()).max_decoding_message_size(16 * 1024 * 1024)
    }
}

/// Sends `transactions` as `mode` says for `duration` (the open loop sends what is due within
/// it, the closed loop stops starting calls at its end), waits for every call to end, and
/// returns one sample per transaction started (open loop: per transaction due).
pub async fn drive(
    connections: Connections,
    transactions: Arc<Vec<Prepared>>,
    mode: Mode,
    duration: Duration,
    max_in_flight: usize,
    progress: Arc<Progress>,
) -> Vec<Sample> {
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let start = Instant::now();
    match mode {
        Mode::Open { rate } => {
            open_loop(
                &connections,
                &transactions,
                rate,
                duration,
                max_in_flight,
                &progress,
                start,
                &sender,
            )
            .await
        }
        Mode::Closed { in_flight } => {
            closed_loop(
                &connections,
                &transactions,
                in_flight,
                duration,
                &progress,
                start,
                &sender,
            )
            .await
        }
    }
    drop(sender);
    let mut samples = Vec::new();
    while let Some(sample) = receiver.recv().await {
        samples.push(sample);
    }
    samples.sort_unstable_by_key(|sample| sample.index);
    samples
}

#[allow(clippy::too_many_arguments)]
async fn open_loop(
    connections: &Connections,
    transactions: &Arc<Vec<Prepared>>,
    rate: f64,
    duration: Duration,
    max_in_flight: usize,
    progress: &Arc<Progress>,
    start: Instant,
    samples: &mpsc::UnboundedSender<Sample>,
) {
    let due_count = ((duration.as_secs_f64() * rate) as usize).min(transactions.len());
    for index in 0..due_count {
        let due = Duration::from_secs_f64(index as f64 / rate);
        let due_at = start + due;
        if Instant::now() < due_at {
            tokio::time::sleep_until(due_at).await;
        }
        if progress.in_flight.load(Ordering::Relaxed) >= max_in_flight as u64 {
            progress.failed.fetch_add(1, Ordering::Relaxed);
            let _ = samples.send(Sample {
                index,
                due,
                answered: due,
                answer: Answer::NotSent,
            });
            continue;
        }
        progress.in_flight.fetch_add(1, Ordering::Relaxed);
        let client = connections.next_client();
        let transactions = transactions.clone();
        let progress = progress.clone();
        let samples = samples.clone();
        tokio::spawn(async move {
            let answer = submit(client, &transactions[index].envelope).await;
            let answered = start.elapsed();
            record(&progress, answer);
            let _ = samples.send(Sample {
                index,
                due,
                answered,
                answer,
            });
        });
    }
    // Every call spawned holds a sender: `drive` waits for them by draining the channel.
}

async fn closed_loop(
    connections: &Connections,
    transactions: &Arc<Vec<Prepared>>,
    in_flight: usize,
    duration: Duration,
    progress: &Arc<Progress>,
    start: Instant,
    samples: &mpsc::UnboundedSender<Sample>,
) {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let connections = connections.clone();
        let transactions = transactions.clone();
        let progress = progress.clone();
        let samples = samples.clone();
        let next = next.clone();
        workers.spawn(async move {
            while start.elapsed() < duration {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(transaction) = transactions.get(index) else {
                    return;
                };
                let due = start.elapsed();
                progress.in_flight.fetch_add(1, Ordering::Relaxed);
                let answer = submit(connections.next_client(), &transaction.envelope).await;
                record(&progress, answer);
                let _ = samples.send(Sample {
                    index,
                    due,
                    answered: start.elapsed(),
                    answer,
                });
            }
        });
    }
    while workers.join_next().await.is_some() {}
}

fn record(progress: &Progress, answer: Answer) {
    progress.in_flight.fetch_sub(1, Ordering::Relaxed);
    let counter = match answer {
        Answer::Committed { .. } => &progress.committed,
        _ => &progress.failed,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

/// One SubmitAndWait.
pub async fn submit(mut client: LedgerClient<Channel>, envelope: &v1::SignedTransaction) -> Answer {
    let request = v1::SubmitAndWaitRequest {
        transaction: Some(envelope.clone()),
        timeout_ms: COMMIT_WAIT.as_millis() as u32,
    };
    let call = client.submit_and_wait(request);
    match tokio::time::timeout(COMMIT_WAIT + Duration::from_secs(5), call).await {
        Ok(Ok(response)) => match response.into_inner().receipt {
            Some(receipt) => Answer::Committed {
                height: receipt.height,
                rejected: matches!(receipt.outcome, Some(v1::receipt::Outcome::Rejected(_))),
            },
            None => Answer::Failed(Code::Internal),
        },
        Ok(Err(status)) => Answer::Failed(status.code()),
        Err(_) => Answer::Failed(Code::DeadlineExceeded),
    }
}
