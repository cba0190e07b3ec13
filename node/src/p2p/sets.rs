//! The validator set of each height, as the network layer checks consensus messages against it.
//!
//! Governance changes the set at height boundaries (`varde_ledger::governance`). The set of a
//! height up to the one after the committed head is final (the block before it decided it); of a
//! later height it is not known yet. So a message of a known height is checked against exactly
//! its height's set, one of a later height goes on to the engine unchecked here (the engine
//! verifies it when it reaches that height, and each peer's share of the driver's inbox bounds
//! what it can cost), and one of a finished height is dropped.

use varde_consensus::{Height, ValidatorSet};
use varde_ledger::Ledger;
use varde_storage::Store;

/// Which set a consensus message of some height is checked against.
pub(super) enum SetOf<'a> {
    /// A height already decided here: the message is of no use.
    Finished,
    /// The set of the message's height.
    Known(&'a ValidatorSet),
    /// A height beyond the one after the committed head.
    NotYetKnown,
}

/// The validator-set history, read from the ledger when a height past what it covers comes up.
pub(super) struct SetHistory {
    /// (first height, set), ascending.
    sets: Vec<(Height, ValidatorSet)>,
    /// The sets cover every height up to this one (the one after the head when read).
    known_through: Height,
}

impl SetHistory {
    pub fn read<S: Store>(ledger: &Ledger<S>) -> Self {
        let mut history = Self {
            sets: Vec::new(),
            known_through: 0,
        };
        history.reload(ledger);
        history
    }

    fn reload<S: Store>(&mut self, ledger: &Ledger<S>) {
        let head = ledger.height();
        let records = match ledger.validator_sets() {
            Ok(records) => records,
            Err(error) => {
                // Checks fall back to the engine, which reads no store; nothing is cut unfairly.
                tracing::error!(%error, "cannot read the validator-set history");
                self.sets.clear();
                self.known_through = 0;
                return;
            }
        };
        if records.len() != self.sets.len() {
            self.sets = records
                .iter()
                .filter_map(|record| {
                    let set = varde_ledger::governance::consensus_set(&record.keys).ok()?;
                    Some((record.from_height, set))
                })
                .collect();
        }
        self.known_through = head + 1;
    }

    /// The set to check a message of `height` against.
    pub fn set_of<S: Store>(&mut self, ledger: &Ledger<S>, height: Height) -> SetOf<'_> {
        let next = ledger.height() + 1;
        if height < next {
            return SetOf::Finished;
        }
        if height > next {
            return SetOf::NotYetKnown;
        }
        if height > self.known_through {
            self.reload(ledger);
        }
        match self.sets.iter().rev().find(|(from, _)| *from <= height) {
            Some((_, set)) => SetOf::Known(set),
            None => SetOf::NotYetKnown,
        }
    }
}
