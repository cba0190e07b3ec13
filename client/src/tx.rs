//! Typed builders for every action of a transaction body, and [`Transaction`], which adds the
//! expiry and the nonce, checks the body with the ledger's own admission rules and signs it
//! (scheme `varde-tx-v1`, `varde_ledger::signing`) into the envelope a node accepts.
//!
//! ```
//! use varde_client::tx::{Anchor, Transaction};
//! # let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
//! let anchor = Anchor::new(
//!     "993467049",                      // the custodian: the signer's institution
//!     "journal-2026-0042",
//!     [0xab; 32],                       // the subject's pseudonym (`subject_pseudonym`)
//!     "psychiatry",
//!     "https://ehr.example/records/0042",
//!     [0x5a; 32],                       // SHA-256 of the record's content
//!     1_800_000_000_000,
//! );
//! let envelope = Transaction::new(anchor).sign("varde-dev", &key).unwrap();
//! assert_eq!(envelope.transaction_id.as_bytes().len(), 32);
//! ```

use std::time::Duration;

use ed25519_dalek::SigningKey;
use prost::Message as _;
use varde_ledger::signing::{self, TransactionId};
use varde_proto::v1;
use varde_proto::v1::transaction_body::Action;

use crate::error::BuildError;

pub use varde_ledger::governance::{EFFECTIVE_HEIGHT_AHEAD_MAX, approvals_needed};

/// The expiry of a [`Transaction`] when none is given: ten minutes after signing.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(600);

/// The length of a random nonce ([`Nonce::Random`]).
pub const RANDOM_NONCE_BYTES: usize = 16;

/// A purpose of use by its HL7 code (`TREAT`, `ETREAT`, `COC`, `HRESCH`, `CLINTRCH`, `HOPERAT`,
/// `HPAYMT`, `PUBHLTH`, `PATRQT`), in any case; `None` for any other text.
pub fn purpose_from_code(code: &str) -> Option<v1::PurposeOfUse> {
    let name = format!("PURPOSE_OF_USE_{}", code.trim().to_ascii_uppercase());
    match v1::PurposeOfUse::from_str_name(&name) {
        Some(v1::PurposeOfUse::Unspecified) | None => None,
        Some(purpose) => Some(purpose),
    }
}

/// Anchors a pointer to a new record (signed by its custodian).
#[derive(Debug, Clone, PartialEq)]
pub struct Anchor(v1::AnchorRecord);

impl Anchor {
    /// A pointer of normal confidentiality: custodian (organisation number), record id (unique
    /// within the custodian), subject pseudonym, category code, location URI at the custodian,
    /// SHA-256 of the content, and when the record was written at the source (Unix ms).
    pub fn new(
        custodian_org_number: impl Into<String>,
        record_id: impl Into<String>,
        subject_pseudonym: [u8; 32],
        category_code: impl Into<String>,
        location_uri: impl Into<String>,
        content_sha256: [u8; 32],
        created_at_unix_ms: i64,
    ) -> Self {
        Self(v1::AnchorRecord {
            custodian_org_number: custodian_org_number.into(),
            record_id: record_id.into(),
            subject_pseudonym: subject_pseudonym.to_vec(),
            category_code: category_code.into(),
            location_uri: location_uri.into(),
            content_sha256: content_sha256.to_vec(),
            confidentiality: v1::Confidentiality::Normal as i32,
            created_at_unix_ms,
        })
    }

    /// Sets the confidentiality (a restricted record opens only with a grant scoped to it, or
    /// as an emergency).
    pub fn confidentiality(mut self, confidentiality: v1::Confidentiality) -> Self {
        self.0.confidentiality = confidentiality as i32;
        self
    }
}

/// Replaces a record's content with a new version (signed by its custodian).
#[derive(Debug, Clone, PartialEq)]
pub struct Supersede(v1::SupersedeRecord);

impl Supersede {
    /// The new version of the custodian's record, of normal confidentiality.
    pub fn new(
        custodian_org_number: impl Into<String>,
        record_id: impl Into<String>,
        category_code: impl Into<String>,
        location_uri: impl Into<String>,
        content_sha256: [u8; 32],
        created_at_unix_ms: i64,
    ) -> Self {
        Self(v1::SupersedeRecord {
            custodian_org_number: custodian_org_number.into(),
            record_id: record_id.into(),
            category_code: category_code.into(),
            location_uri: location_uri.into(),
            content_sha256: content_sha256.to_vec(),
            confidentiality: v1::Confidentiality::Normal as i32,
            created_at_unix_ms,
        })
    }

    /// Sets the new version's confidentiality.
    pub fn confidentiality(mut self, confidentiality: v1::Confidentiality) -> Self {
        self.0.confidentiality = confidentiality as i32;
        self
    }
}

/// Withdraws a record pointer; its history stays (signed by its custodian).
#[derive(Debug, Clone, PartialEq)]
pub struct Retract(v1::RetractRecord);

impl Retract {
    /// Retracts the custodian's record.
    pub fn new(custodian_org_number: impl Into<String>, record_id: impl Into<String>) -> Self {
        Self(v1::RetractRecord {
            custodian_org_number: custodian_org_number.into(),
            record_id: record_id.into(),
            reason: String::new(),
        })
    }

    /// Why (free text; never a national identity number).
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.0.reason = reason.into();
        self
    }
}

/// What a grant covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One record.
    Record {
        /// The record's custodian.
        custodian_org_number: String,
        /// The record's id.
        record_id: String,
    },
    /// Every record of this category.
    Category(String),
    /// All the subject's records.
    AllRecords,
}

/// Grants an institution (or one person or department in it) access to a subject's records
/// (signed by the custodian or a consent authority).
#[derive(Debug, Clone, PartialEq)]
pub struct Grant(v1::GrantAccess);

impl Grant {
    /// A grant from `issuer` to `grantee` over `scope`, valid from `valid_from_unix_ms` until
    /// (excluding) `valid_until_unix_ms`, on the basis of the patient's consent (without a
    /// reference) and without purposes: add at least one with [`Grant::purpose`].
    pub fn new(
        issuer_org_number: impl Into<String>,
        subject_pseudonym: [u8; 32],
        grantee_org_number: impl Into<String>,
        scope: Scope,
        valid_from_unix_ms: i64,
        valid_until_unix_ms: i64,
    ) -> Self {
        let scope = match scope {
            Scope::Record {
                custodian_org_number,
                record_id,
            } => v1::grant_scope::Scope::Record(v1::RecordReference {
                custodian_org_number,
                record_id,
            }),
            Scope::Category(code) => v1::grant_scope::Scope::CategoryCode(code),
            Scope::AllRecords => v1::grant_scope::Scope::AllRecords(v1::AllRecords {}),
        };
        Self(v1::GrantAccess {
            issuer_org_number: issuer_org_number.into(),
            subject_pseudonym: subject_pseudonym.to_vec(),
            grantee_org_number: grantee_org_number.into(),
            grantee_hpr_number: String::new(),
            grantee_department: String::new(),
            scope: Some(v1::GrantScope { scope: Some(scope) }),
            purposes: Vec::new(),
            valid_from_unix_ms,
            valid_until_unix_ms,
            basis: Some(v1::GrantBasis {
                basis: Some(v1::grant_basis::Basis::PatientConsent(v1::PatientConsent {
                    reference: String::new(),
                })),
            }),
        })
    }

    /// Adds a purpose of use the grant allows.
    pub fn purpose(mut self, purpose: v1::PurposeOfUse) -> Self {
        self.0.purposes.push(purpose as i32);
        self
    }

    /// Only this person (HPR number) within the grantee.
    pub fn grantee_hpr(mut self, hpr_number: impl Into<String>) -> Self {
        self.0.grantee_hpr_number = hpr_number.into();
        self
    }

    /// Only this department within the grantee.
    pub fn grantee_department(mut self, department: impl Into<String>) -> Self {
        self.0.grantee_department = department.into();
        self
    }

    /// Basis: the patient's consent, with a reference to the consent document.
    pub fn consent(mut self, reference: impl Into<String>) -> Self {
        self.0.basis = Some(v1::GrantBasis {
            basis: Some(v1::grant_basis::Basis::PatientConsent(v1::PatientConsent {
                reference: reference.into(),
            })),
        });
        self
    }

    /// Basis: a statute instead of consent, e.g. "pasientjournalloven § 19".
    pub fn statute(mut self, name: impl Into<String>) -> Self {
        self.0.basis = Some(v1::GrantBasis {
            basis: Some(v1::grant_basis::Basis::Statutory(v1::StatutoryBasis {
                name: name.into(),
            })),
        });
        self
    }
}

/// Revokes a grant from its block on (signed by its issuer or a consent authority).
#[derive(Debug, Clone, PartialEq)]
pub struct Revoke(v1::RevokeGrant);

impl Revoke {
    /// Revokes the grant with id `grant_id` (the id of the transaction that made it).
    pub fn new(issuer_org_number: impl Into<String>, grant_id: [u8; 32]) -> Self {
        Self(v1::RevokeGrant {
            issuer_org_number: issuer_org_number.into(),
            grant_id: grant_id.to_vec(),
            reason: String::new(),
        })
    }

    /// Why (free text; never a national identity number).
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.0.reason = reason.into();
        self
    }
}

/// Registers a patient's block of an institution or a person; it holds even in emergencies
/// (signed by a consent authority).
#[derive(Debug, Clone, PartialEq)]
pub struct Block(v1::BlockAccess);

impl Block {
    /// Blocks the institution `blocked_org_number` from the subject's records.
    pub fn institution(
        issuer_org_number: impl Into<String>,
        subject_pseudonym: [u8; 32],
        blocked_org_number: impl Into<String>,
    ) -> Self {
        Self::with_target(
            issuer_org_number.into(),
            subject_pseudonym,
            v1::block_access::Target::InstitutionOrgNumber(blocked_org_number.into()),
        )
    }

    /// Blocks the person with HPR number `blocked_hpr_number`, in any institution.
    pub fn person(
        issuer_org_number: impl Into<String>,
        subject_pseudonym: [u8; 32],
        blocked_hpr_number: impl Into<String>,
    ) -> Self {
        Self::with_target(
            issuer_org_number.into(),
            subject_pseudonym,
            v1::block_access::Target::HprNumber(blocked_hpr_number.into()),
        )
    }

    fn with_target(
        issuer_org_number: String,
        subject_pseudonym: [u8; 32],
        target: v1::block_access::Target,
    ) -> Self {
        Self(v1::BlockAccess {
            issuer_org_number,
            subject_pseudonym: subject_pseudonym.to_vec(),
            target: Some(target),
        })
    }
}

/// Lifts a block (signed by a consent authority).
#[derive(Debug, Clone, PartialEq)]
pub struct Unblock(v1::UnblockAccess);

impl Unblock {
    /// Lifts the block with id `block_id` (the id of the transaction that placed it).
    pub fn new(issuer_org_number: impl Into<String>, block_id: [u8; 32]) -> Self {
        Self(v1::UnblockAccess {
            issuer_org_number: issuer_org_number.into(),
            block_id: block_id.to_vec(),
        })
    }
}

/// Reports one read of a record (signed by the institution that read). The ledger records every
/// report and classifies it: authorised by a grant, emergency, or unauthorised.
#[derive(Debug, Clone, PartialEq)]
pub struct LogAccess(v1::LogAccess);

impl LogAccess {
    /// A read by `accessor_hpr_number` at `accessor_org_number` of the custodian's record, for
    /// `purpose`, at `accessed_at_unix_ms` (at most 24 hours before and 5 minutes after the
    /// block that logs it), without a basis: name one with [`LogAccess::grant`] or
    /// [`LogAccess::emergency`].
    pub fn new(
        accessor_org_number: impl Into<String>,
        accessor_hpr_number: impl Into<String>,
        record_custodian_org_number: impl Into<String>,
        record_id: impl Into<String>,
        purpose: v1::PurposeOfUse,
        accessed_at_unix_ms: i64,
    ) -> Self {
        Self(v1::LogAccess {
            accessor_org_number: accessor_org_number.into(),
            accessor_hpr_number: accessor_hpr_number.into(),
            record: Some(v1::RecordReference {
                custodian_org_number: record_custodian_org_number.into(),
                record_id: record_id.into(),
            }),
            purpose: purpose as i32,
            accessed_at_unix_ms,
            attestation_sha256: Vec::new(),
            basis: None,
        })
    }

    /// Basis: the grant relied on.
    pub fn grant(mut self, grant_id: [u8; 32]) -> Self {
        self.0.basis = Some(v1::log_access::Basis::GrantId(grant_id.to_vec()));
        self
    }

    /// Basis: an emergency read ("break the glass"), with its justification; the purpose must
    /// be ETREAT.
    pub fn emergency(mut self, justification: impl Into<String>) -> Self {
        self.0.basis = Some(v1::log_access::Basis::Emergency(v1::EmergencyAccess {
            justification: justification.into(),
        }));
        self
    }

    /// SHA-256 of the caller's attestation of the read.
    pub fn attestation(mut self, attestation_sha256: [u8; 32]) -> Self {
        self.0.attestation_sha256 = attestation_sha256.to_vec();
        self
    }
}

/// Puts evidence that a validator signed two conflicting messages in one round on the ledger
/// (signed by a validator institution). `varde_ledger::consensus_wire::evidence_to_wire` makes
/// the wire evidence from the engine's.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportMisbehaviour(v1::ReportMisbehaviour);

impl ReportMisbehaviour {
    /// A report of `evidence`.
    pub fn new(evidence: v1::Evidence) -> Self {
        Self(v1::ReportMisbehaviour {
            evidence: Some(evidence),
        })
    }
}

/// A role of a member institution by its name in the genesis file (`validator`, `submitter`,
/// `consent-authority`, `auditor`), in any case and with `_` for `-`; `None` for any other text.
pub fn role_from_name(name: &str) -> Option<v1::InstitutionRole> {
    match name.trim().to_ascii_lowercase().replace('_', "-").as_str() {
        "validator" => Some(v1::InstitutionRole::Validator),
        "submitter" => Some(v1::InstitutionRole::Submitter),
        "consent-authority" => Some(v1::InstitutionRole::ConsentAuthority),
        "auditor" => Some(v1::InstitutionRole::Auditor),
        _ => None,
    }
}

/// A new member institution, as [`ProposeChange::add_institution`] proposes it: organisation
/// number, name, roles and keys, as in the genesis file.
#[derive(Debug, Clone, PartialEq)]
pub struct Institution(v1::Member);

impl Institution {
    /// An institution without roles or keys: add at least one role, a submitting key unless its
    /// only role is validator, and a validator key exactly when it has the validator role.
    pub fn new(org_number: impl Into<String>, name: impl Into<String>) -> Self {
        Self(v1::Member {
            org_number: org_number.into(),
            name: name.into(),
            roles: Vec::new(),
            public_keys: Vec::new(),
            validator_key: Vec::new(),
        })
    }

    /// Adds a role.
    pub fn role(mut self, role: v1::InstitutionRole) -> Self {
        self.0.roles.push(role as i32);
        self
    }

    /// Adds a submitting key (an Ed25519 public key that signs its transactions and queries).
    pub fn submitting_key(mut self, public_key: [u8; 32]) -> Self {
        self.0.public_keys.push(public_key.to_vec());
        self
    }

    /// Sets the consensus key of its validator node (with the validator role).
    pub fn validator_key(mut self, public_key: [u8; 32]) -> Self {
        self.0.validator_key = public_key.to_vec();
        self
    }
}

impl From<Institution> for v1::Member {
    fn from(institution: Institution) -> Self {
        institution.0
    }
}

/// Proposes one change to the membership, taking effect at `effective_height` once validator
/// institutions of more than 2/3 of the validators in force ([`approvals_needed`]) have approved
/// it; the proposal is its proposer's approval. Signed by the proposer, a validator institution,
/// with a submitting key or its validator key. The proposal's id is the transaction id of its
/// envelope ([`SignedEnvelope::transaction_id`]).
///
/// The effective height must lie after the height that includes the proposal, at most
/// [`EFFECTIVE_HEIGHT_AHEAD_MAX`] heights after it; approvals count up to the height before it,
/// or up to [`ProposeChange::approve_by`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProposeChange(v1::ProposeChange);

impl ProposeChange {
    fn with_change(
        proposer_org_number: impl Into<String>,
        change: v1::membership_change::Change,
        effective_height: u64,
    ) -> Self {
        Self(v1::ProposeChange {
            proposer_org_number: proposer_org_number.into(),
            change: Some(v1::MembershipChange {
                change: Some(change),
            }),
            effective_height,
            approve_by_height: 0,
        })
    }

    fn institution_key(org_number: impl Into<String>, public_key: [u8; 32]) -> v1::InstitutionKey {
        v1::InstitutionKey {
            org_number: org_number.into(),
            public_key: public_key.to_vec(),
        }
    }

    /// A new member institution.
    pub fn add_institution(
        proposer_org_number: impl Into<String>,
        institution: impl Into<v1::Member>,
        effective_height: u64,
    ) -> Self {
        Self::with_change(
            proposer_org_number,
            v1::membership_change::Change::AddInstitution(institution.into()),
            effective_height,
        )
    }

    /// The institution `org_number` leaves, with its keys and its validator.
    pub fn remove_institution(
        proposer_org_number: impl Into<String>,
        org_number: impl Into<String>,
        effective_height: u64,
    ) -> Self {
        Self::with_change(
            proposer_org_number,
            v1::membership_change::Change::RemoveInstitution(org_number.into()),
            effective_height,
        )
    }

    /// A new name and roles for `org_number`. The validator role changes only with
    /// [`ProposeChange::add_validator`] and [`ProposeChange::remove_validator`]: keep it in
    /// `roles` exactly when the institution has it.
    pub fn update_institution(
        proposer_org_number: impl Into<String>,
        org_number: impl Into<String>,
        name: impl Into<String>,
        roles: impl IntoIterator<Item = v1::InstitutionRole>,
        effective_height: u64,
    ) -> Self {
        Self::with_change(
            proposer_org_number,
            v1::membership_change::Change::UpdateInstitution(v1::UpdateInstitution {
                org_number: org_number.into(),
                name: name.into(),
                roles: roles.into_iter().map(|role| role as i32).collect(),
            }),
            effective_height,
        )
    }

    /// Registers one more submitting key of `org_number`.
    pub fn add_submitting_key(
        proposer_org_number: impl Into<String>,
        org_number: impl Into<String>,
        public_key: [u8; 32],
        effective_height: u64,
    ) -> Self {
        Self::with_change(
            proposer_org_number,
            v1::membership_change::Change::AddSubmittingKey(Self::institution_key(
                org_number, public_key,
            )),
            effective_height,
        )
    }

    /// Revokes a submitting key of `org_number`: refused from the effective height on; what it
    /// signed before stays valid history.
    pub fn revoke_submitting_key(
        proposer_org_number: impl Into<String>,
        org_number: impl Into<String>,
        public_key: [u8; 32],
        effective_height: u64,
    ) -> Self {
        Self::with_change(
            proposer_org_number,
            v1::membership_change::Change::RevokeSubmittingKey(Self::institution_key(
                org_number, public_key,
            )),
            effective_height,
        )
    }

    /// Gives the member `org_number` the validator role, its node signing with `consensus_key`.
    pub fn add_validator(
        proposer_org_number: impl Into<String>,
        org_number: impl Into<String>,
        consensus_key: [u8; 32],
        effective_height: u64,
    ) -> Self {
        Self::with_change(
            proposer_org_number,
            v1::membership_change::Change::AddValidator(Self::institution_key(
                org_number,
                consensus_key,
            )),
            effective_height,
        )
    }

    /// The validator of `org_number` leaves the set (the institution keeps its other roles).
    pub fn remove_validator(
        proposer_org_number: impl Into<String>,
        org_number: impl Into<String>,
        effective_height: u64,
    ) -> Self {
        Self::with_change(
            proposer_org_number,
            v1::membership_change::Change::RemoveValidator(org_number.into()),
            effective_height,
        )
    }

    /// The validator of `org_number` signs with `consensus_key` from the effective height on;
    /// its old key counts up to the height before.
    pub fn rotate_validator_key(
        proposer_org_number: impl Into<String>,
        org_number: impl Into<String>,
        consensus_key: [u8; 32],
        effective_height: u64,
    ) -> Self {
        Self::with_change(
            proposer_org_number,
            v1::membership_change::Change::RotateValidatorKey(Self::institution_key(
                org_number,
                consensus_key,
            )),
            effective_height,
        )
    }

    /// The last height at which an approval counts (below the effective height; by default the
    /// height just before it).
    pub fn approve_by(mut self, height: u64) -> Self {
        self.0.approve_by_height = height;
        self
    }
}

/// Approves a governance proposal (signed by a validator institution, with a submitting key or
/// its validator key).
#[derive(Debug, Clone, PartialEq)]
pub struct ApproveChange(v1::ApproveChange);

impl ApproveChange {
    /// `approver_org_number`'s approval of the proposal `proposal_id` (the transaction id of its
    /// ProposeChange).
    pub fn new(approver_org_number: impl Into<String>, proposal_id: [u8; 32]) -> Self {
        Self(v1::ApproveChange {
            approver_org_number: approver_org_number.into(),
            proposal_id: proposal_id.to_vec(),
        })
    }
}

macro_rules! into_action {
    ($($builder:ident => $variant:ident),* $(,)?) => {$(
        impl From<$builder> for Action {
            fn from(builder: $builder) -> Self {
                Action::$variant(builder.0)
            }
        }
    )*};
}

into_action!(
    Anchor => AnchorRecord,
    Supersede => SupersedeRecord,
    Retract => RetractRecord,
    Grant => GrantAccess,
    Revoke => RevokeGrant,
    Block => BlockAccess,
    Unblock => UnblockAccess,
    LogAccess => LogAccess,
    ReportMisbehaviour => ReportMisbehaviour,
    ProposeChange => ProposeChange,
    ApproveChange => ApproveChange,
);

/// When a transaction stops being includable. A node remembers a transaction's id until then,
/// so that a replay is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// This long after the signing time (wall clock).
    After(Duration),
    /// At a height and/or a time (Unix ms); 0 leaves that one unset, and at least one must be
    /// set. `Client::expiry_in_blocks` gives a height from the node's.
    At {
        /// The last height that may include it (0: none).
        height: u64,
        /// The latest block time that may include it (0: none).
        unix_ms: i64,
    },
}

impl Default for Expiry {
    fn default() -> Self {
        Self::After(DEFAULT_EXPIRY)
    }
}

/// What tells apart two transactions with the same action and expiry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Nonce {
    /// [`RANDOM_NONCE_BYTES`] fresh random bytes each time a body is made (the default): the
    /// same action signed twice is two transactions. To retry a submission safely, resubmit
    /// the same [`SignedEnvelope`], not a newly signed one.
    #[default]
    Random,
    /// No nonce: the same action and expiry signed twice is one transaction (the node refuses
    /// the second as a duplicate).
    Empty,
    /// These bytes (at most 32).
    Given(Vec<u8>),
}

/// A transaction body in the making: an action, its expiry and its nonce.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    action: Action,
    expiry: Expiry,
    nonce: Nonce,
}

/// A signed transaction, ready to submit.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedEnvelope {
    /// What a node accepts (`Ledger.Submit`).
    pub transaction: v1::SignedTransaction,
    /// The transaction id: the signing digest.
    pub transaction_id: TransactionId,
    /// The body that was signed (its bytes are `transaction.body`).
    pub body: v1::TransactionBody,
}

impl Transaction {
    /// `action` with the default expiry ([`DEFAULT_EXPIRY`] after signing) and a random nonce.
    pub fn new(action: impl Into<Action>) -> Self {
        Self {
            action: action.into(),
            expiry: Expiry::default(),
            nonce: Nonce::default(),
        }
    }

    /// Sets the expiry.
    pub fn expiry(mut self, expiry: Expiry) -> Self {
        self.expiry = expiry;
        self
    }

    /// Sets the nonce.
    pub fn nonce(mut self, nonce: Nonce) -> Self {
        self.nonce = nonce;
        self
    }

    /// The body for `chain_id` with the expiry counted from `now_unix_ms`, checked with the
    /// ledger's admission rules (field formats, no national identity number anywhere, an
    /// expiry set).
    pub fn body(
        &self,
        chain_id: &str,
        now_unix_ms: i64,
    ) -> Result<v1::TransactionBody, BuildError> {
        let (expires_at_height, expires_at_unix_ms) = match self.expiry {
            Expiry::After(duration) => {
                let unix_ms = i64::try_from(duration.as_millis())
                    .ok()
                    .and_then(|milliseconds| now_unix_ms.checked_add(milliseconds))
                    .ok_or(BuildError::TooLarge { what: "the expiry" })?;
                (0, unix_ms)
            }
            Expiry::At { height, unix_ms } => (height, unix_ms),
        };
        let nonce = match &self.nonce {
            Nonce::Random => rand::random::<[u8; RANDOM_NONCE_BYTES]>().to_vec(),
            Nonce::Empty => Vec::new(),
            Nonce::Given(bytes) => bytes.clone(),
        };
        let body = v1::TransactionBody {
            chain_id: chain_id.to_owned(),
            expires_at_height,
            expires_at_unix_ms,
            nonce,
            action: Some(self.action.clone()),
        };
        varde_ledger::wire::decode_body(body.clone())?;
        Ok(body)
    }

    /// Signs for `chain_id` with `key` (a registered submitting key of the acting institution,
    /// or, for governance and misbehaviour reports, its validator's consensus key), counting the
    /// expiry from the wall clock.
    pub fn sign(&self, chain_id: &str, key: &SigningKey) -> Result<SignedEnvelope, BuildError> {
        self.sign_at(chain_id, key, crate::now_unix_ms())
    }

    /// Signs for `chain_id` with `key`, counting the expiry from `now_unix_ms`.
    pub fn sign_at(
        &self,
        chain_id: &str,
        key: &SigningKey,
        now_unix_ms: i64,
    ) -> Result<SignedEnvelope, BuildError> {
        sign_body(chain_id, key, self.body(chain_id, now_unix_ms)?)
    }
}

/// Signs a body made elsewhere (e.g. one read from a file) as it is, without the admission
/// checks of [`Transaction::body`].
pub fn sign_body(
    chain_id: &str,
    key: &SigningKey,
    body: v1::TransactionBody,
) -> Result<SignedEnvelope, BuildError> {
    let (transaction, transaction_id) = sign_bytes(chain_id, key, body.encode_to_vec())?;
    Ok(SignedEnvelope {
        transaction,
        transaction_id,
        body,
    })
}

/// Signs encoded body bytes exactly as they are (the signature covers the bytes as sent; a node
/// admits only canonical encodings, `varde_ledger::canonical`).
pub fn sign_bytes(
    chain_id: &str,
    key: &SigningKey,
    body: Vec<u8>,
) -> Result<(v1::SignedTransaction, TransactionId), BuildError> {
    let parts = signing::sign(chain_id, key, &body).map_err(|source| BuildError::Signing {
        chain_id: chain_id.to_owned(),
        source,
    })?;
    let transaction = v1::SignedTransaction {
        body,
        signer_public_key: parts.signer_public_key.to_vec(),
        signature: parts.signature.to_vec(),
    };
    Ok((transaction, parts.transaction_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSPITAL: &str = "974760673";
    const MUNICIPALITY: &str = "983974899";
    const NEW_MEMBER: &str = "974761394";
    const NOW: i64 = 1_800_000_000_000;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[3; 32])
    }

    fn every_action() -> Vec<Action> {
        let subject = [0xab; 32];
        let id = [0xef; 32];
        vec![
            Anchor::new(
                HOSPITAL,
                "R-1",
                subject,
                "note",
                "https://ehr.example/r/1",
                id,
                NOW,
            )
            .into(),
            Supersede::new(
                HOSPITAL,
                "R-1",
                "note",
                "https://ehr.example/r/1v2",
                id,
                NOW,
            )
            .confidentiality(v1::Confidentiality::Restricted)
            .into(),
            Retract::new(HOSPITAL, "R-1").reason("deleted").into(),
            Grant::new(
                HOSPITAL,
                subject,
                MUNICIPALITY,
                Scope::Category("note".into()),
                NOW,
                NOW + 3_600_000,
            )
            .purpose(v1::PurposeOfUse::Treat)
            .statute("helsepersonelloven § 45")
            .into(),
            Revoke::new(HOSPITAL, id).into(),
            Block::person(HOSPITAL, subject, "12345").into(),
            Block::institution(HOSPITAL, subject, MUNICIPALITY).into(),
            Unblock::new(HOSPITAL, id).into(),
            LogAccess::new(
                MUNICIPALITY,
                "7654321",
                HOSPITAL,
                "R-1",
                v1::PurposeOfUse::Etreat,
                NOW,
            )
            .emergency("unconscious patient")
            .into(),
            ApproveChange::new(HOSPITAL, id).into(),
        ]
        .into_iter()
        .chain(every_change(50).into_iter().map(Action::from))
        .collect()
    }

    /// One proposal of every kind of membership change, effective at `effective_height`.
    fn every_change(effective_height: u64) -> Vec<ProposeChange> {
        let new_key = [0x11; 32];
        vec![
            ProposeChange::add_institution(
                HOSPITAL,
                Institution::new(NEW_MEMBER, "Ny kommune")
                    .role(v1::InstitutionRole::Submitter)
                    .role(v1::InstitutionRole::Auditor)
                    .submitting_key(new_key),
                effective_height,
            ),
            ProposeChange::remove_institution(HOSPITAL, MUNICIPALITY, effective_height),
            ProposeChange::update_institution(
                HOSPITAL,
                MUNICIPALITY,
                "Bergen kommune",
                [v1::InstitutionRole::Submitter],
                effective_height,
            ),
            ProposeChange::add_submitting_key(HOSPITAL, MUNICIPALITY, new_key, effective_height),
            ProposeChange::revoke_submitting_key(HOSPITAL, MUNICIPALITY, new_key, effective_height),
            ProposeChange::add_validator(HOSPITAL, MUNICIPALITY, new_key, effective_height),
            ProposeChange::remove_validator(HOSPITAL, MUNICIPALITY, effective_height),
            ProposeChange::rotate_validator_key(HOSPITAL, MUNICIPALITY, new_key, effective_height)
                .approve_by(effective_height - 10),
        ]
    }

    // Every action builds a body that passes the ledger's admission rules and signs into an
    // envelope that the ledger's strict verifier accepts, with the id it reports.
    #[test]
    fn every_action_signs_and_verifies() {
        for action in every_action() {
            let envelope = Transaction::new(action.clone())
                .sign_at("varde-test", &key(), NOW)
                .unwrap_or_else(|error| panic!("{action:?}: {error}"));
            let (id, _) = signing::verify_strict(
                "varde-test",
                &envelope.transaction.signer_public_key,
                &envelope.transaction.signature,
                &envelope.transaction.body,
            )
            .unwrap();
            assert_eq!(id, envelope.transaction_id);
            assert_eq!(envelope.body.expires_at_unix_ms, NOW + 600_000);
            assert_eq!(envelope.body.nonce.len(), RANDOM_NONCE_BYTES);
        }
    }

    // The expiry and the nonce are as asked; without any expiry the ledger's rule refuses it.
    #[test]
    fn expiry_and_nonce_are_as_asked() {
        let action = Revoke::new(HOSPITAL, [1; 32]);
        let body = Transaction::new(action.clone())
            .expiry(Expiry::At {
                height: 10,
                unix_ms: 0,
            })
            .nonce(Nonce::Empty)
            .body("varde-test", NOW)
            .unwrap();
        assert_eq!((body.expires_at_height, body.expires_at_unix_ms), (10, 0));
        assert!(body.nonce.is_empty());
        let again = Transaction::new(action.clone())
            .nonce(Nonce::Given(vec![7; 8]))
            .body("varde-test", NOW)
            .unwrap();
        assert_eq!(again.nonce, vec![7; 8]);
        let never = Transaction::new(action).expiry(Expiry::At {
            height: 0,
            unix_ms: 0,
        });
        assert!(matches!(
            never.body("varde-test", NOW),
            Err(BuildError::Refused(_))
        ));
    }

    // Fields the ledger would refuse (a national-id-shaped reason, a bad org number) are caught
    // before signing, and the error does not echo the value.
    #[test]
    fn ledger_rules_are_checked_before_signing() {
        let error = Transaction::new(Retract::new(HOSPITAL, "R-1").reason("patient 31129956715"))
            .sign_at("varde-test", &key(), NOW)
            .unwrap_err();
        assert!(!error.to_string().contains("31129956715"), "{error}");
        assert!(
            Transaction::new(Revoke::new("974760674", [1; 32]))
                .sign_at("varde-test", &key(), NOW)
                .is_err()
        );
    }

    // Each constructor names its kind of change, the institution and key it is given, and the
    // heights; the ledger's own decoder reads back the same change.
    #[test]
    fn proposals_carry_their_change() {
        use v1::membership_change::Change;
        let proposals = every_change(50);
        let kinds: Vec<&str> = proposals
            .iter()
            .map(
                |proposal| match proposal.0.change.as_ref().and_then(|c| c.change.as_ref()) {
                    Some(Change::AddInstitution(member)) => {
                        assert_eq!(member.org_number, NEW_MEMBER);
                        assert_eq!(member.public_keys, vec![vec![0x11; 32]]);
                        assert_eq!(
                            member.roles,
                            vec![
                                v1::InstitutionRole::Submitter as i32,
                                v1::InstitutionRole::Auditor as i32
                            ]
                        );
                        "add_institution"
                    }
                    Some(Change::RemoveInstitution(org)) => {
                        assert_eq!(org, MUNICIPALITY);
                        "remove_institution"
                    }
                    Some(Change::UpdateInstitution(update)) => {
                        assert_eq!(update.name, "Bergen kommune");
                        "update_institution"
                    }
                    Some(Change::AddSubmittingKey(key)) => {
                        assert_eq!(
                            (key.org_number.as_str(), key.public_key.as_slice()),
                            (MUNICIPALITY, &[0x11; 32][..])
                        );
                        "add_submitting_key"
                    }
                    Some(Change::RevokeSubmittingKey(_)) => "revoke_submitting_key",
                    Some(Change::AddValidator(_)) => "add_validator",
                    Some(Change::RemoveValidator(_)) => "remove_validator",
                    Some(Change::RotateValidatorKey(_)) => "rotate_validator_key",
                    None => "none",
                },
            )
            .collect();
        assert_eq!(
            kinds,
            [
                "add_institution",
                "remove_institution",
                "update_institution",
                "add_submitting_key",
                "revoke_submitting_key",
                "add_validator",
                "remove_validator",
                "rotate_validator_key"
            ]
        );
        for proposal in &proposals {
            assert_eq!(proposal.0.proposer_org_number, HOSPITAL);
            assert_eq!(proposal.0.effective_height, 50);
        }
        assert_eq!(proposals[0].0.approve_by_height, 0);
        assert_eq!(proposals[7].0.approve_by_height, 40);
        let body = Transaction::new(proposals[3].clone())
            .body("varde-test", NOW)
            .unwrap();
        let decoded = varde_ledger::wire::decode_body(body).unwrap();
        assert!(matches!(
            decoded.action,
            varde_ledger::domain::Action::ProposeChange(_)
        ));
    }

    // The ledger's rules on proposals are checked before signing: no effective height, an
    // approve-by height not below it, a key that is not 32 bytes' worth, a bad org number.
    #[test]
    fn proposals_the_ledger_refuses_are_not_signed() {
        let refused = |proposal: ProposeChange| {
            matches!(
                Transaction::new(proposal).sign_at("varde-test", &key(), NOW),
                Err(BuildError::Refused(_))
            )
        };
        assert!(refused(ProposeChange::remove_validator(
            HOSPITAL,
            MUNICIPALITY,
            0
        )));
        assert!(refused(
            ProposeChange::remove_validator(HOSPITAL, MUNICIPALITY, 20).approve_by(20)
        ));
        assert!(refused(ProposeChange::remove_institution(
            HOSPITAL,
            "974760674",
            20
        )));
        assert!(refused(ProposeChange::add_institution(
            HOSPITAL,
            Institution::new(NEW_MEMBER, "Uten roller"),
            20
        )));
        assert!(!refused(
            ProposeChange::remove_validator(HOSPITAL, MUNICIPALITY, 20).approve_by(19)
        ));
        let mut short_id = ApproveChange::new(HOSPITAL, [1; 32]);
        short_id.0.proposal_id.pop();
        assert!(matches!(
            Transaction::new(short_id).sign_at("varde-test", &key(), NOW),
            Err(BuildError::Refused(_))
        ));
    }

    // Roles parse by their genesis names in any case, with - or _; other names do not.
    #[test]
    fn roles_parse() {
        assert_eq!(
            role_from_name("Consent_Authority"),
            Some(v1::InstitutionRole::ConsentAuthority)
        );
        assert_eq!(
            role_from_name(" validator "),
            Some(v1::InstitutionRole::Validator)
        );
        assert_eq!(role_from_name("unspecified"), None);
        assert_eq!(role_from_name("admin"), None);
    }

    // Purposes parse by their HL7 code in any case; UNSPECIFIED and unknown codes do not.
    #[test]
    fn purposes_parse() {
        assert_eq!(purpose_from_code("etreat"), Some(v1::PurposeOfUse::Etreat));
        assert_eq!(purpose_from_code(" COC "), Some(v1::PurposeOfUse::Coc));
        assert_eq!(purpose_from_code("UNSPECIFIED"), None);
        assert_eq!(purpose_from_code("SHOPPING"), None);
    }
}
