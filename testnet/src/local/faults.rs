//! The faults that chaos injects into a running local network, and how each is undone: a kill
//! (restart), a SIGSTOP pause (SIGCONT: the messages that waited arrive late), an isolation
//! behind the relay (heal), and a clock set beyond the drift the others accept (restart with
//! the validator's usual offset).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::relay::{self, Faults};

use super::Launcher;

/// How far ahead a validator's clock is set by [`Fault::ClockAhead`]: past the 30 s a block may
/// be dated ahead of the others' clocks, whatever their own skew.
pub const CLOCK_AHEAD_MS: i64 = 60_000;

/// A fault of one validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Killed(usize),
    Paused(usize),
    Isolated(usize),
    ClockAhead(usize),
}

impl Fault {
    pub fn validator(self) -> usize {
        match self {
            Fault::Killed(index)
            | Fault::Paused(index)
            | Fault::Isolated(index)
            | Fault::ClockAhead(index) => index,
        }
    }
}

/// The faults in force on one network.
pub struct ActiveFaults {
    launcher: Launcher,
    root: PathBuf,
    /// Each validator's usual clock offset, restored when a clock fault is undone.
    clock_offsets: BTreeMap<usize, i64>,
    validators: usize,
    active: Vec<Fault>,
    /// The one-way delay on the routes that are not cut while someone is isolated.
    delay_ms: u64,
}

impl ActiveFaults {
    pub fn new(
        launcher: &Launcher,
        root: &Path,
        validators: usize,
        clock_offsets: BTreeMap<usize, i64>,
    ) -> Self {
        Self {
            launcher: launcher.clone(),
            root: root.to_path_buf(),
            clock_offsets,
            validators,
            active: Vec::new(),
            delay_ms: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.active.len()
    }

    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    /// Whether validator `index` has a fault now.
    pub fn touches(&self, index: usize) -> bool {
        self.active.iter().any(|fault| fault.validator() == index)
    }

    /// Injects `fault`; returns what was done, for the progress log.
    pub fn inject(&mut self, fault: Fault, delay_ms: u64) -> anyhow::Result<String> {
        let line = match fault {
            Fault::Killed(index) => {
                super::kill(&self.root, index)?;
                format!("kill {index}")
            }
            Fault::Paused(index) => {
                super::pause(&self.root, index)?;
                format!("pause {index} (SIGSTOP)")
            }
            Fault::Isolated(index) => {
                self.delay_ms = delay_ms;
                self.active.push(fault);
                self.write_partition()?;
                return Ok(format!("isolate {index} (others {delay_ms} ms delay)"));
            }
            Fault::ClockAhead(index) => {
                super::skew_clock(&self.launcher, &self.root, index, CLOCK_AHEAD_MS)?;
                format!("clock of {index} {CLOCK_AHEAD_MS} ms ahead (restarted)")
            }
        };
        self.active.push(fault);
        Ok(line)
    }

    /// Undoes the fault at `position` of the active ones.
    pub fn undo(&mut self, position: usize) -> anyhow::Result<String> {
        let fault = self.active.remove(position);
        Ok(match fault {
            Fault::Killed(index) => {
                super::restart(&self.launcher, &self.root, index)?;
                format!("restart {index}")
            }
            Fault::Paused(index) => {
                super::resume(&self.root, index)?;
                format!("resume {index} (SIGCONT)")
            }
            Fault::Isolated(index) => {
                self.write_partition()?;
                format!("reconnect {index}")
            }
            Fault::ClockAhead(index) => {
                let offset = self.clock_offsets.get(&index).copied().unwrap_or(0);
                super::skew_clock(&self.launcher, &self.root, index, offset)?;
                format!("clock of {index} back to {offset} ms (restarted)")
            }
        })
    }

    /// Undoes every fault, in the order they were injected.
    pub fn undo_all(&mut self) -> anyhow::Result<()> {
        while !self.active.is_empty() {
            self.undo(0)?;
        }
        Ok(())
    }

    /// The relay's partition: each isolated validator alone, everyone else together.
    fn write_partition(&self) -> anyhow::Result<()> {
        let isolated: Vec<usize> = self
            .active
            .iter()
            .filter_map(|fault| match fault {
                Fault::Isolated(index) => Some(*index),
                _ => None,
            })
            .collect();
        if isolated.is_empty() {
            return relay::write_faults(&self.root, &Faults::default());
        }
        let mut groups = vec![
            (0..self.validators)
                .filter(|index| !isolated.contains(index))
                .collect::<Vec<_>>(),
        ];
        groups.extend(isolated.iter().map(|index| vec![*index]));
        relay::write_faults(
            &self.root,
            &Faults {
                partition: Some(groups),
                delay_ms: self.delay_ms,
            },
        )
    }
}
