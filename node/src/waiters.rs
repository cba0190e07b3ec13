//! SubmitAndWait's waiters, by transaction id: a committed block wakes exactly the callers
//! waiting for its transactions, at a cost of one lookup per transaction, however many wait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use varde_ledger::domain::Receipt;
use varde_ledger::signing::TransactionId;

type Waiting = HashMap<TransactionId, Vec<(u64, oneshot::Sender<Receipt>)>>;

/// The registry. Cheap to share; held only for short, non-async sections.
#[derive(Default)]
pub struct CommitWaiters {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    waiting: Waiting,
    next_token: u64,
}

/// One caller's wait; dropping it (answered, timed out or cancelled) removes it.
pub struct Waiter {
    id: TransactionId,
    token: u64,
    receipt: Option<oneshot::Receiver<Receipt>>,
    state: Arc<Mutex<State>>,
}

impl CommitWaiters {
    /// Registers a wait for `id`. Register before admitting the transaction, so that a commit
    /// right after admission is not missed.
    pub fn register(&self, id: TransactionId) -> Waiter {
        let (sender, receiver) = oneshot::channel();
        let mut state = self.state.lock().expect("waiters lock");
        let token = state.next_token;
        state.next_token = state.next_token.wrapping_add(1);
        state.waiting.entry(id).or_default().push((token, sender));
        Waiter {
            id,
            token,
            receipt: Some(receiver),
            state: self.state.clone(),
        }
    }

    /// Wakes the waiters of every committed transaction in `committed`.
    pub fn committed<'a>(
        &self,
        committed: impl IntoIterator<Item = (&'a TransactionId, &'a Receipt)>,
    ) {
        let mut state = self.state.lock().expect("waiters lock");
        if state.waiting.is_empty() {
            return;
        }
        for (id, receipt) in committed {
            if let Some(waiters) = state.waiting.remove(id) {
                for (_, sender) in waiters {
                    let _ = sender.send(receipt.clone());
                }
            }
        }
    }

    /// Callers waiting (for metrics and tests).
    pub fn len(&self) -> usize {
        let state = self.state.lock().expect("waiters lock");
        state.waiting.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Waiter {
    /// The receipt once the transaction commits; `None` if the registry went away (the node is
    /// stopping).
    pub async fn committed(&mut self) -> Option<Receipt> {
        let receiver = self.receipt.as_mut()?;
        let receipt = receiver.await.ok();
        self.receipt = None;
        receipt
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut state = self.state.lock().expect("waiters lock");
        if let Some(waiters) = state.waiting.get_mut(&self.id) {
            waiters.retain(|(token, _)| *token != self.token);
            if waiters.is_empty() {
                state.waiting.remove(&self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use varde_ledger::domain::Outcome;

    fn receipt(id: TransactionId) -> Receipt {
        Receipt {
            transaction_id: id,
            height: 7,
            index: 0,
            outcome: Outcome::Applied {
                classification: None,
            },
        }
    }

    #[tokio::test]
    async fn a_commit_wakes_its_waiters_and_no_one_else() {
        let waiters = CommitWaiters::default();
        let (first, second) = (TransactionId([1; 32]), TransactionId([2; 32]));
        let mut a = waiters.register(first);
        let mut b = waiters.register(first);
        let c = waiters.register(second);
        assert_eq!(waiters.len(), 3);
        let committed = receipt(first);
        waiters.committed([(&first, &committed)]);
        assert_eq!(a.committed().await, Some(committed.clone()));
        assert_eq!(b.committed().await, Some(committed));
        assert_eq!(waiters.len(), 1);
        drop(c);
        assert!(waiters.is_empty(), "a dropped wait leaves nothing behind");
    }
}
