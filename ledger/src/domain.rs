//! Varde's domain types, independent of the wire format. [`crate::wire`] converts at the edge.

use serde::{Deserialize, Serialize};
use varde_consensus::{Evidence, VoteKind};

use crate::identifiers::{HprNumber, OrgNumber};
use crate::signing::TransactionId;

/// A patient's 32-byte pseudonym (HMAC-SHA256 of the national id under the network key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SubjectPseudonym(pub [u8; 32]);

/// A record: its custodian and the record id, unique per custodian.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordKey {
    pub custodian: OrgNumber,
    pub record_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Confidentiality {
    Normal,
    Restricted,
}

/// HL7 PurposeOfUse codes that Varde accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Purpose {
    Treat,
    Etreat,
    Coc,
    Hresch,
    Clintrch,
    Hoperat,
    Hpaymt,
    Pubhlth,
    Patrqt,
}

/// When a transaction stops being includable. At least one bound is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expiry {
    /// The last height at which it may be included.
    pub height: Option<u64>,
    /// The last block time (Unix ms) at which it may be included.
    pub unix_ms: Option<i64>,
}

/// A decoded and validated transaction body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionBody {
    pub expiry: Expiry,
    pub nonce: Vec<u8>,
    pub action: Action,
}

/// What a transaction asks the ledger to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    AnchorRecord(RecordContent),
    SupersedeRecord(RecordContent),
    RetractRecord {
        record: RecordKey,
        reason: String,
    },
    GrantAccess(GrantTerms),
    RevokeGrant {
        issuer: OrgNumber,
        grant_id: TransactionId,
        reason: String,
    },
    BlockAccess {
        issuer: OrgNumber,
        subject: SubjectPseudonym,
        target: BlockTarget,
    },
    UnblockAccess {
        issuer: OrgNumber,
        block_id: TransactionId,
    },
    LogAccess(AccessReport),
    /// Evidence that a validator equivocated; the reporter is the signer's institution.
    ReportMisbehaviour(Box<Evidence>),
    /// A change to the membership, put to the validators ([`crate::governance`]).
    ProposeChange(Box<ChangeProposal>),
    ApproveChange {
        approver: OrgNumber,
        proposal_id: TransactionId,
    },
}

impl Action {
    /// The institution the action names as acting for it; the signer's key must be one of its
    /// keys. `None` for a misbehaviour report, which acts for whichever institution signed it.
    pub fn actor(&self) -> Option<&OrgNumber> {
        match self {
            Action::AnchorRecord(content) | Action::SupersedeRecord(content) => {
                Some(&content.record.custodian)
            }
            Action::RetractRecord { record, .. } => Some(&record.custodian),
            Action::GrantAccess(terms) => Some(&terms.issuer),
            Action::RevokeGrant { issuer, .. }
            | Action::BlockAccess { issuer, .. }
            | Action::UnblockAccess { issuer, .. } => Some(issuer),
            Action::LogAccess(report) => Some(&report.accessor),
            Action::ReportMisbehaviour(_) => None,
            Action::ProposeChange(proposal) => Some(&proposal.proposer),
            Action::ApproveChange { approver, .. } => Some(approver),
        }
    }

    /// A short stable name, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::AnchorRecord(_) => "anchor_record",
            Action::SupersedeRecord(_) => "supersede_record",
            Action::RetractRecord { .. } => "retract_record",
            Action::GrantAccess(_) => "grant_access",
            Action::RevokeGrant { .. } => "revoke_grant",
            Action::BlockAccess { .. } => "block_access",
            Action::UnblockAccess { .. } => "unblock_access",
            Action::LogAccess(_) => "log_access",
            Action::ReportMisbehaviour(_) => "report_misbehaviour",
            Action::ProposeChange(_) => "propose_change",
            Action::ApproveChange { .. } => "approve_change",
        }
    }
}

/// One change to the membership (`varde.v1.MembershipChange`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipChange {
    AddInstitution(crate::membership::Institution),
    RemoveInstitution(OrgNumber),
    UpdateInstitution {
        org_number: OrgNumber,
        name: String,
        roles: Vec<crate::membership::Role>,
    },
    AddSubmittingKey {
        org_number: OrgNumber,
        key: [u8; 32],
    },
    RevokeSubmittingKey {
        org_number: OrgNumber,
        key: [u8; 32],
    },
    AddValidator {
        org_number: OrgNumber,
        key: [u8; 32],
    },
    RemoveValidator(OrgNumber),
    RotateValidatorKey {
        org_number: OrgNumber,
        key: [u8; 32],
    },
}

/// A proposed change, as a `ProposeChange` states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeProposal {
    pub proposer: OrgNumber,
    pub change: MembershipChange,
    /// The first height the change holds at.
    pub effective_height: u64,
    /// The last height an approval counts at; `None`: the height before `effective_height`.
    pub approve_by_height: Option<u64>,
}

/// The content of an anchor or a supersession. The subject is ignored for a supersession (a
/// record never changes subject) and is the stored one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordContent {
    pub record: RecordKey,
    pub subject: Option<SubjectPseudonym>,
    pub category_code: String,
    pub location_uri: String,
    pub content_sha256: [u8; 32],
    pub confidentiality: Confidentiality,
    pub created_at_unix_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockTarget {
    Institution(OrgNumber),
    Person(HprNumber),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantScope {
    Record(RecordKey),
    Category(String),
    AllRecords,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantBasis {
    PatientConsent { reference: Option<String> },
    Statutory { name: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantTerms {
    pub issuer: OrgNumber,
    pub subject: SubjectPseudonym,
    pub grantee: OrgNumber,
    pub grantee_person: Option<HprNumber>,
    pub grantee_department: Option<String>,
    pub scope: GrantScope,
    pub purposes: Vec<Purpose>,
    /// Inclusive start of validity (Unix ms).
    pub valid_from_unix_ms: i64,
    /// Exclusive end of validity (Unix ms).
    pub valid_until_unix_ms: i64,
    pub basis: GrantBasis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessBasis {
    Grant(TransactionId),
    Emergency {
        justification: String,
    },
    /// No basis named: fine only for the custodian reading its own record.
    None,
}

/// One reported read of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessReport {
    pub accessor: OrgNumber,
    pub accessor_person: HprNumber,
    pub record: RecordKey,
    pub purpose: Purpose,
    pub accessed_at_unix_ms: i64,
    pub attestation_sha256: Option<[u8; 32]>,
    pub basis: AccessBasis,
}

/// A record pointer as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordPointer {
    pub record: RecordKey,
    pub subject: SubjectPseudonym,
    pub category_code: String,
    pub location_uri: String,
    pub content_sha256: [u8; 32],
    pub confidentiality: Confidentiality,
    pub created_at_unix_ms: i64,
    pub version: u32,
    pub retracted: Option<Retraction>,
    pub last_transaction_id: TransactionId,
    pub anchored_at_height: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retraction {
    pub height: u64,
    pub reason: String,
}

/// An access grant as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub grant_id: TransactionId,
    pub terms: GrantTerms,
    pub granted_at_height: u64,
    pub revoked: Option<Revocation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub height: u64,
    /// The block time of the revocation; reads after it are not covered.
    pub unix_ms: i64,
    pub reason: String,
}

/// A patient's block of an institution or person, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessBlock {
    pub block_id: TransactionId,
    pub issuer: OrgNumber,
    pub subject: SubjectPseudonym,
    pub target: BlockTarget,
    pub blocked_at_height: u64,
    pub lifted_at_height: Option<u64>,
    /// The block time at which it was placed and lifted: a logged read is judged against the
    /// blocks in force at its `accessed_at_unix_ms`.
    pub blocked_at_unix_ms: i64,
    pub lifted_at_unix_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessClassification {
    Authorised,
    Emergency,
    Unauthorised,
}

/// An access event (the audit trail), as stored. Never deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEvent {
    pub event_id: TransactionId,
    pub report: AccessReport,
    pub subject: SubjectPseudonym,
    pub classification: AccessClassification,
    pub flagged: bool,
    pub reason: String,
    pub grant_id: Option<TransactionId>,
    pub height: u64,
}

/// What a validator signed twice in one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MisbehaviourKind {
    DuplicatePrevote,
    DuplicatePrecommit,
    DuplicateProposal,
}

/// The slot in which a validator equivocated: one misbehaviour is recorded once per slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MisbehaviourSlot {
    pub validator_index: u32,
    pub height: u64,
    pub round: u32,
    pub kind: MisbehaviourKind,
}

impl MisbehaviourSlot {
    /// The slot that `evidence` claims (whether both messages share it is `Evidence::verify`'s
    /// check); taken from the first message.
    pub fn of(evidence: &Evidence) -> Self {
        match evidence {
            Evidence::DuplicateVote { first, .. } => Self {
                validator_index: first.vote.validator,
                height: first.vote.height,
                round: first.vote.round,
                kind: match first.vote.kind {
                    VoteKind::Prevote => MisbehaviourKind::DuplicatePrevote,
                    VoteKind::Precommit => MisbehaviourKind::DuplicatePrecommit,
                },
            },
            Evidence::DuplicateProposal { first, .. } => Self {
                validator_index: first.proposal.proposer,
                height: first.proposal.height,
                round: first.proposal.round,
                kind: MisbehaviourKind::DuplicateProposal,
            },
        }
    }
}

/// A validator's equivocation, as stored once a report of it is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Misbehaviour {
    /// The offending validator's public key.
    #[serde(with = "crate::hex::key")]
    pub offender: [u8; 32],
    pub slot: MisbehaviourSlot,
    /// The height of the block that committed the report.
    pub recorded_at_height: u64,
    pub reporter: OrgNumber,
    pub report_id: TransactionId,
    /// The encoded `varde.v1.Evidence`, so that anyone can check the signatures again.
    #[serde(with = "crate::hex::bytes")]
    pub evidence: Vec<u8>,
}

/// Why a committed transaction changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectionReason {
    UnknownSigner,
    SignerNotInstitution,
    MissingRole,
    Expired,
    Duplicate,
    ExpiryTooFar,
    UnknownRecord,
    RecordExists,
    RecordRetracted,
    NotCustodian,
    NotAuthorisedIssuer,
    UnknownGrant,
    GrantAlreadyRevoked,
    UnknownBlock,
    BlockAlreadyLifted,
    UnknownInstitution,
    SubjectMismatch,
    InvalidEvidence,
    EvidenceAlreadyRecorded,
    /// A logged read's `accessed_at_unix_ms` lies outside the window around the block time
    /// ([`crate::execution::ACCESS_TIME_BEFORE_BLOCK_MAX_MS`], `..._AFTER_BLOCK_MAX_MS`).
    AccessTimeOutsideWindow,
    UnknownProposal,
    ProposalClosed,
    AlreadyApproved,
    InvalidChange,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Applied {
        classification: Option<AccessClassification>,
    },
    Rejected {
        reason: RejectionReason,
        detail: String,
    },
}

/// The result of one committed transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub transaction_id: TransactionId,
    pub height: u64,
    pub index: u32,
    pub outcome: Outcome,
}

impl Receipt {
    pub fn is_applied(&self) -> bool {
        matches!(self.outcome, Outcome::Applied { .. })
    }

    pub fn rejection(&self) -> Option<RejectionReason> {
        match self.outcome {
            Outcome::Rejected { reason, .. } => Some(reason),
            Outcome::Applied { .. } => None,
        }
    }
}
