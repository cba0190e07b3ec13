//! The invariants checked after every step of a run: agreement, validity, no honest equivocation,
//! evidence only against Byzantine validators; and liveness once the network has stabilised.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use std::sync::Arc;

use varde_consensus::{
    BlockId, Decision, Evidence, Height, Message, Round, SignatureVerifier, ValidatorIndex,
    ValidatorSet,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// Two honest validators committed different blocks at one height.
    Agreement {
        height: Height,
        node: usize,
        committed: BlockId,
        earlier: BlockId,
    },
    /// An honest validator committed a block nobody proposed, an invalid one, or one without a
    /// valid certificate.
    Validity {
        height: Height,
        node: usize,
        reason: String,
    },
    /// An honest validator signed two different messages for one slot.
    HonestEquivocation {
        node: usize,
        height: Height,
        round: Round,
        slot: &'static str,
    },
    /// Evidence that names an honest validator, or evidence that does not verify.
    FalseEvidence {
        reporter: usize,
        accused: ValidatorIndex,
    },
    /// The run needed more events than any healthy run does: a storm of messages or timers.
    EventStorm { events: u64 },
    /// An honest validator held more for its peers than its bounds allow.
    Memory {
        node: usize,
        buffered_future_messages: usize,
        executed_blocks: usize,
    },
    /// An honest validator's core stopped with no fault injected.
    CoreStopped { node: usize, error: String },
    /// After stabilisation an honest validator did not commit enough heights in time.
    Liveness {
        node: usize,
        height_at_stabilisation: Height,
        height_reached: Height,
        target: Height,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Agreement {
                height,
                node,
                committed,
                earlier,
            } => write!(
                formatter,
                "agreement: node {node} committed {committed:?} at height {height}, another honest node committed {earlier:?}"
            ),
            Violation::Validity {
                height,
                node,
                reason,
            } => write!(
                formatter,
                "validity: node {node} at height {height}: {reason}"
            ),
            Violation::HonestEquivocation {
                node,
                height,
                round,
                slot,
            } => write!(
                formatter,
                "equivocation: honest node {node} signed two {slot}s at height {height} round {round}"
            ),
            Violation::FalseEvidence { reporter, accused } => write!(
                formatter,
                "false evidence: node {reporter} produced evidence against honest or unproven validator {accused}"
            ),
            Violation::Memory {
                node,
                buffered_future_messages,
                executed_blocks,
            } => write!(
                formatter,
                "memory: honest node {node} held {buffered_future_messages} next-height messages and {executed_blocks} executed blocks"
            ),
            Violation::CoreStopped { node, error } => {
                write!(formatter, "core stopped: honest node {node}: {error}")
            }
            Violation::EventStorm { events } => write!(
                formatter,
                "event storm: the run needed {events} events without finishing"
            ),
            Violation::Liveness {
                node,
                height_at_stabilisation,
                height_reached,
                target,
            } => write!(
                formatter,
                "liveness: node {node} was at height {height_at_stabilisation} at stabilisation and reached {height_reached}, not {target}, in time"
            ),
        }
    }
}

pub struct Checker {
    chain_id: String,
    validators: ValidatorSet,
    /// Real Ed25519 checks behind the run's cache: each distinct signature is verified once.
    verifier: Arc<dyn SignatureVerifier>,
    byzantine: BTreeSet<usize>,
    committed: BTreeMap<Height, BlockId>,
    proposed: BTreeSet<BlockId>,
    /// What each honest validator signed per (node, height, round, slot).
    signed: BTreeMap<(usize, Height, Round, u8), Message>,
    /// The first violations found (at most [`MAX_VIOLATIONS_KEPT`]); `violation_count` counts all.
    pub violations: Vec<Violation>,
    pub violation_count: usize,
}

/// How many violations a run keeps for its report.
pub const MAX_VIOLATIONS_KEPT: usize = 16;

impl Checker {
    pub fn new(
        chain_id: String,
        validators: ValidatorSet,
        verifier: Arc<dyn SignatureVerifier>,
        byzantine: BTreeSet<usize>,
    ) -> Self {
        Self {
            chain_id,
            validators,
            verifier,
            byzantine,
            committed: BTreeMap::new(),
            proposed: BTreeSet::new(),
            signed: BTreeMap::new(),
            violations: Vec::new(),
            violation_count: 0,
        }
    }

    fn violate(&mut self, violation: Violation) {
        self.violation_count += 1;
        if self.violations.len() < MAX_VIOLATIONS_KEPT {
            self.violations.push(violation);
        }
    }

    /// Agreement is the one violation after which a run stops at once: nothing later can mend it.
    pub fn agreement_broken(&self) -> bool {
        self.violations
            .iter()
            .any(|violation| matches!(violation, Violation::Agreement { .. }))
    }

    /// Any validator's application built this block (getValue).
    pub fn record_proposed(&mut self, block_id: BlockId) {
        self.proposed.insert(block_id);
    }

    /// An honest validator sent `message`: if it signed it (rather than relaying another's vote), it
    /// must not conflict with anything it signed before.
    pub fn record_sent(&mut self, node: usize, message: &Message) {
        if message.sender() as usize != node {
            return;
        }
        let (slot, slot_name) = match message {
            Message::Proposal(_) => (0, "proposal"),
            Message::Vote(signed) => match signed.vote.kind {
                varde_consensus::VoteKind::Prevote => (1, "prevote"),
                varde_consensus::VoteKind::Precommit => (2, "precommit"),
            },
        };
        let key = (node, message.height(), message.round(), slot);
        match self.signed.get(&key) {
            Some(earlier) if earlier != message => {
                self.violate(Violation::HonestEquivocation {
                    node,
                    height: message.height(),
                    round: message.round(),
                    slot: slot_name,
                });
            }
            Some(_) => {}
            None => {
                self.signed.insert(key, message.clone());
            }
        }
    }

    /// Whether no honest validator has committed `height` yet (the referee judges it then).
    pub fn is_new_height(&self, height: Height) -> bool {
        !self.committed.contains_key(&height)
    }

    /// An honest validator committed `decision`; `problems` are the referee's findings.
    pub fn record_commit(&mut self, node: usize, decision: &Decision, problems: Vec<String>) {
        let height = decision.height;
        let block_id = decision.block.id;
        match self.committed.get(&height) {
            Some(&earlier) if earlier != block_id => self.violate(Violation::Agreement {
                height,
                node,
                committed: block_id,
                earlier,
            }),
            Some(_) => {}
            None => {
                self.committed.insert(height, block_id);
            }
        }
        for reason in self.validity_problems(decision).into_iter().chain(problems) {
            self.violate(Violation::Validity {
                height,
                node,
                reason,
            });
        }
    }

    /// What is wrong with a committed block: never proposed, invalid, or badly certified.
    fn validity_problems(&self, decision: &Decision) -> Vec<String> {
        let (height, block_id) = (decision.height, decision.block.id);
        let mut problems = Vec::new();
        if !self.proposed.contains(&block_id) {
            problems.push(format!("block {block_id:?} was never proposed"));
        }
        if decision.certificate.block_id != block_id || decision.certificate.height != height {
            problems.push("the certificate is for another block or height".to_owned());
        } else if let Err(error) =
            decision
                .certificate
                .verify(&self.chain_id, &self.validators, &*self.verifier)
        {
            problems.push(format!("the certificate does not verify: {error}"));
        }
        problems
    }

    /// An honest validator reported `evidence`: it must verify and name a Byzantine validator.
    pub fn record_evidence(&mut self, reporter: usize, evidence: &Evidence) {
        let accused = evidence.validator();
        let verifies = evidence
            .verify(&self.chain_id, &self.validators, &*self.verifier)
            .is_ok();
        if !verifies || !self.byzantine.contains(&(accused as usize)) {
            self.violate(Violation::FalseEvidence { reporter, accused });
        }
    }

    pub fn record_memory(&mut self, node: usize, buffered: usize, executed: usize) {
        self.violate(Violation::Memory {
            node,
            buffered_future_messages: buffered,
            executed_blocks: executed,
        });
    }

    pub fn record_core_failure(&mut self, node: usize, error: String) {
        self.violate(Violation::CoreStopped { node, error });
    }

    pub fn record_liveness_failure(&mut self, violation: Violation) {
        self.violate(violation);
    }

    pub fn record_event_storm(&mut self, events: u64) {
        self.violate(Violation::EventStorm { events });
    }
}
