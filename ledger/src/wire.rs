//! The edge between the wire (`varde_proto::v1`) and the domain ([`crate::domain`]): decoding and
//! validating transactions, with errors that name the field and never echo a refused value, and
//! encoding stored state back into wire messages for the API.

use prost::Message;
use varde_proto::v1;

use crate::canonical::{self, CanonicalError};
use crate::consensus_wire::{self, WireError};
use crate::domain::*;
use crate::identifiers::{self, HprNumber, IdentifierError, OrgNumber};
use crate::membership::{Institution, Role};
use crate::signing::{self, SigningError, TransactionId};

/// The largest encoded `SignedTransaction` accepted.
pub const TRANSACTION_BYTES_MAX: usize = 64 * 1024;
const CHAIN_ID_CHARS_MAX: usize = 128;
const NONCE_BYTES_MAX: usize = 32;
const RECORD_ID_CHARS_MAX: usize = 128;
const CATEGORY_CODE_CHARS_MAX: usize = 64;
const LOCATION_URI_CHARS_MAX: usize = 2048;
const REASON_CHARS_MAX: usize = 256;
const DEPARTMENT_CHARS_MAX: usize = 128;
const JUSTIFICATION_CHARS_MAX: usize = 512;
const INSTITUTION_NAME_CHARS_MAX: usize = 256;

/// What is wrong with one field. Never holds the field's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldProblem {
    #[error("is required")]
    Missing,
    #[error("must not be empty")]
    Empty,
    #[error("is longer than {max} characters")]
    TooLong { max: usize },
    #[error("must be {expected} bytes, got {actual}")]
    WrongLength { expected: usize, actual: usize },
    #[error("contains a control character")]
    ControlCharacter,
    #[error(
        "contains something shaped like a national identity number; use the subject pseudonym instead"
    )]
    NationalIdLike,
    #[error(
        "holds 11 consecutive ASCII digits, the shape of a national identity number; binary fields must not"
    )]
    DigitRun,
    #[error("{0}")]
    Identifier(#[from] IdentifierError),
    #[error("has unknown enum value {0}")]
    UnknownEnumValue(i32),
    #[error("must be set to a value other than UNSPECIFIED")]
    Unspecified,
    #[error("must be ETREAT for an emergency (break-the-glass) read")]
    EmergencyNeedsEtreat,
    #[error("must be later than valid_from_unix_ms")]
    EmptyWindow,
    #[error("must be unset unless {0} is set")]
    OnlyWith(&'static str),
    #[error("must name at least one expiry (expires_at_height or expires_at_unix_ms)")]
    NoExpiry,
    #[error("lists a value twice")]
    Duplicate,
    #[error("must not be negative")]
    Negative,
    #[error("must be below {0}")]
    NotBefore(&'static str),
}

/// A field that failed validation, by its path in the message (e.g. `grant_access.scope`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}` {problem}")]
pub struct FieldError {
    pub field: String,
    pub problem: FieldProblem,
}

fn field_error(field: &str, problem: impl Into<FieldProblem>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        problem: problem.into(),
    }
}

/// Why a submitted transaction is refused before it can reach a block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    #[error("the transaction is {size} bytes; at most {max} are accepted")]
    TooLarge { size: usize, max: usize },
    #[error("the bytes are not a SignedTransaction: {0}")]
    MalformedEnvelope(String),
    #[error(
        "the bytes are not the canonical encoding of the SignedTransaction they decode to (unknown, \
         repeated or out-of-order fields, non-minimal varints or explicitly encoded defaults)"
    )]
    NonCanonicalEnvelope,
    #[error("the body is not a TransactionBody: {0}")]
    MalformedBody(String),
    #[error(
        "the body is not the canonical encoding of the TransactionBody it decodes to (unknown, \
         repeated or out-of-order fields, non-minimal varints, unpacked repeated fields or \
         explicitly encoded defaults); sign what a standard proto3 encoder writes"
    )]
    NonCanonicalBody,
    #[error("the body names chain `{found}`, but this network is `{expected}`")]
    WrongChain { expected: String, found: String },
    #[error(transparent)]
    Signature(#[from] SigningError),
    #[error(transparent)]
    Field(#[from] FieldError),
}

/// A transaction whose envelope, signature and body have been checked; not yet its effects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTransaction {
    pub id: TransactionId,
    pub signer: [u8; 32],
    pub body: TransactionBody,
    /// The `SignedTransaction` as received.
    pub envelope: v1::SignedTransaction,
}

/// Decodes an encoded `SignedTransaction`, verifies its signature for `chain_id` and validates its
/// body into the domain. The envelope and the body must each be the canonical encoding of what
/// they decode to ([`canonical`]).
pub fn decode_transaction(
    chain_id: &str,
    bytes: &[u8],
) -> Result<VerifiedTransaction, TransactionError> {
    if bytes.len() > TRANSACTION_BYTES_MAX {
        return Err(TransactionError::TooLarge {
            size: bytes.len(),
            max: TRANSACTION_BYTES_MAX,
        });
    }
    let envelope = canonical::decode_canonical::<v1::SignedTransaction>(bytes).map_err(
        |error| match error {
            CanonicalError::Decode(error) => TransactionError::MalformedEnvelope(error.to_string()),
            CanonicalError::NotCanonical => TransactionError::NonCanonicalEnvelope,
        },
    )?;
    verify_envelope(chain_id, envelope)
}

/// As [`decode_transaction`], for an envelope already decoded (e.g. by gRPC): its own encoding is
/// whatever this node re-encodes, but the body's bytes are kept as received and must be canonical.
pub fn verify_envelope(
    chain_id: &str,
    envelope: v1::SignedTransaction,
) -> Result<VerifiedTransaction, TransactionError> {
    check_envelope(chain_id, envelope, false)
}

/// [`verify_envelope`], skipping the signature's curve arithmetic when `signature_verified`: the
/// caller verified these exact envelope bytes before (a node's own mempool).
pub fn check_envelope(
    chain_id: &str,
    envelope: v1::SignedTransaction,
    signature_verified: bool,
) -> Result<VerifiedTransaction, TransactionError> {
    let size = envelope.encoded_len();
    if size > TRANSACTION_BYTES_MAX {
        return Err(TransactionError::TooLarge {
            size,
            max: TRANSACTION_BYTES_MAX,
        });
    }
    // The body is stored byte for byte but checked through its decoded view: the two must agree.
    let wire_body =
        canonical::decode_canonical::<v1::TransactionBody>(&envelope.body).map_err(|error| {
            match error {
                CanonicalError::Decode(error) => TransactionError::MalformedBody(error.to_string()),
                CanonicalError::NotCanonical => TransactionError::NonCanonicalBody,
            }
        })?;
    // A named chain is checked first so that a wrong chain reads as such, not as a bad signature.
    if !wire_body.chain_id.is_empty() && wire_body.chain_id != chain_id {
        let found = if wire_body.chain_id.chars().count() > CHAIN_ID_CHARS_MAX
            || identifiers::contains_national_id_like(&wire_body.chain_id)
        {
            "(not shown)".to_owned()
        } else {
            wire_body.chain_id.clone()
        };
        return Err(TransactionError::WrongChain {
            expected: chain_id.to_owned(),
            found,
        });
    }
    let (id, verifying_key) = if signature_verified {
        signing::id_of_verified(chain_id, &envelope.signer_public_key, &envelope.body)?
    } else {
        signing::verify_strict(
            chain_id,
            &envelope.signer_public_key,
            &envelope.signature,
            &envelope.body,
        )?
    };
    let body = decode_body(wire_body)?;
    // Defence in depth: every field passed, but a number could still stand across the bytes of
    // adjacent fields (tags and lengths can be digits too).
    if identifiers::contains_plain_national_id(&envelope.body) {
        return Err(field_error("body", FieldProblem::NationalIdLike).into());
    }
    Ok(VerifiedTransaction {
        id,
        signer: verifying_key.to_bytes(),
        body,
        envelope,
    })
}

/// Validates a wire body into the domain.
pub fn decode_body(body: v1::TransactionBody) -> Result<TransactionBody, FieldError> {
    use v1::transaction_body::Action as Wire;
    if body.nonce.len() > NONCE_BYTES_MAX {
        return Err(field_error(
            "nonce",
            FieldProblem::TooLong {
                max: NONCE_BYTES_MAX,
            },
        ));
    }
    binary("nonce", &body.nonce)?;
    if body.expires_at_unix_ms < 0 {
        return Err(field_error("expires_at_unix_ms", FieldProblem::Negative));
    }
    let expiry = Expiry {
        height: (body.expires_at_height != 0).then_some(body.expires_at_height),
        unix_ms: (body.expires_at_unix_ms != 0).then_some(body.expires_at_unix_ms),
    };
    if expiry.height.is_none() && expiry.unix_ms.is_none() {
        return Err(field_error("expires_at_height", FieldProblem::NoExpiry));
    }
    let action = match body
        .action
        .ok_or_else(|| field_error("action", FieldProblem::Missing))?
    {
        Wire::AnchorRecord(anchor) => Action::AnchorRecord(RecordContent {
            record: record_key(
                "anchor_record",
                &anchor.custodian_org_number,
                &anchor.record_id,
            )?,
            subject: Some(subject(
                "anchor_record.subject_pseudonym",
                &anchor.subject_pseudonym,
            )?),
            category_code: text(
                "anchor_record.category_code",
                &anchor.category_code,
                CATEGORY_CODE_CHARS_MAX,
                true,
            )?,
            location_uri: text(
                "anchor_record.location_uri",
                &anchor.location_uri,
                LOCATION_URI_CHARS_MAX,
                true,
            )?,
            content_sha256: bytes32("anchor_record.content_sha256", &anchor.content_sha256)?,
            confidentiality: confidentiality(
                "anchor_record.confidentiality",
                anchor.confidentiality,
            )?,
            created_at_unix_ms: anchor.created_at_unix_ms,
        }),
        Wire::SupersedeRecord(supersede) => Action::SupersedeRecord(RecordContent {
            record: record_key(
                "supersede_record",
                &supersede.custodian_org_number,
                &supersede.record_id,
            )?,
            subject: None,
            category_code: text(
                "supersede_record.category_code",
                &supersede.category_code,
                CATEGORY_CODE_CHARS_MAX,
                true,
            )?,
            location_uri: text(
                "supersede_record.location_uri",
                &supersede.location_uri,
                LOCATION_URI_CHARS_MAX,
                true,
            )?,
            content_sha256: bytes32("supersede_record.content_sha256", &supersede.content_sha256)?,
            confidentiality: confidentiality(
                "supersede_record.confidentiality",
                supersede.confidentiality,
            )?,
            created_at_unix_ms: supersede.created_at_unix_ms,
        }),
        Wire::RetractRecord(retract) => Action::RetractRecord {
            record: record_key(
                "retract_record",
                &retract.custodian_org_number,
                &retract.record_id,
            )?,
            reason: text(
                "retract_record.reason",
                &retract.reason,
                REASON_CHARS_MAX,
                false,
            )?,
        },
        Wire::GrantAccess(grant) => Action::GrantAccess(grant_terms(grant)?),
        Wire::RevokeGrant(revoke) => Action::RevokeGrant {
            issuer: org_number("revoke_grant.issuer_org_number", &revoke.issuer_org_number)?,
            grant_id: TransactionId(bytes32("revoke_grant.grant_id", &revoke.grant_id)?),
            reason: text(
                "revoke_grant.reason",
                &revoke.reason,
                REASON_CHARS_MAX,
                false,
            )?,
        },
        Wire::BlockAccess(block) => {
            let (issuer, subject, target) = block_terms(block)?;
            Action::BlockAccess {
                issuer,
                subject,
                target,
            }
        }
        Wire::UnblockAccess(unblock) => Action::UnblockAccess {
            issuer: org_number(
                "unblock_access.issuer_org_number",
                &unblock.issuer_org_number,
            )?,
            block_id: TransactionId(bytes32("unblock_access.block_id", &unblock.block_id)?),
        },
        Wire::LogAccess(log) => Action::LogAccess(access_report(log)?),
        Wire::ReportMisbehaviour(report) => Action::ReportMisbehaviour(Box::new(evidence(
            "report_misbehaviour.evidence",
            report.evidence.as_ref(),
        )?)),
        Wire::ProposeChange(propose) => Action::ProposeChange(Box::new(change_proposal(propose)?)),
        Wire::ApproveChange(approve) => Action::ApproveChange {
            approver: org_number(
                "approve_change.approver_org_number",
                &approve.approver_org_number,
            )?,
            proposal_id: TransactionId(bytes32(
                "approve_change.proposal_id",
                &approve.proposal_id,
            )?),
        },
    };
    Ok(TransactionBody {
        expiry,
        nonce: body.nonce,
        action,
    })
}

fn change_proposal(propose: v1::ProposeChange) -> Result<ChangeProposal, FieldError> {
    let proposer = org_number(
        "propose_change.proposer_org_number",
        &propose.proposer_org_number,
    )?;
    let change = membership_change_from_wire(
        "propose_change.change",
        propose
            .change
            .as_ref()
            .ok_or_else(|| field_error("propose_change.change", FieldProblem::Missing))?,
    )?;
    if propose.effective_height == 0 {
        return Err(field_error(
            "propose_change.effective_height",
            FieldProblem::Missing,
        ));
    }
    if propose.approve_by_height >= propose.effective_height {
        return Err(field_error(
            "propose_change.approve_by_height",
            FieldProblem::NotBefore("effective_height"),
        ));
    }
    Ok(ChangeProposal {
        proposer,
        change,
        effective_height: propose.effective_height,
        approve_by_height: (propose.approve_by_height != 0).then_some(propose.approve_by_height),
    })
}

/// A membership change from its message, each field checked as in a transaction; `field` names
/// the message in errors.
pub fn membership_change_from_wire(
    field: &str,
    change: &v1::MembershipChange,
) -> Result<MembershipChange, FieldError> {
    use v1::membership_change::Change as Wire;
    let Some(wire) = &change.change else {
        return Err(field_error(field, FieldProblem::Missing));
    };
    let institution_key = |name: &str, key: &v1::InstitutionKey| {
        Ok::<_, FieldError>((
            org_number(&format!("{field}.{name}.org_number"), &key.org_number)?,
            bytes32(&format!("{field}.{name}.public_key"), &key.public_key)?,
        ))
    };
    Ok(match wire {
        Wire::AddInstitution(member) => MembershipChange::AddInstitution(member_from_wire(
            &format!("{field}.add_institution"),
            member,
        )?),
        Wire::RemoveInstitution(org) => MembershipChange::RemoveInstitution(org_number(
            &format!("{field}.remove_institution"),
            org,
        )?),
        Wire::UpdateInstitution(update) => {
            let prefix = format!("{field}.update_institution");
            MembershipChange::UpdateInstitution {
                org_number: org_number(&format!("{prefix}.org_number"), &update.org_number)?,
                name: text(
                    &format!("{prefix}.name"),
                    &update.name,
                    INSTITUTION_NAME_CHARS_MAX,
                    true,
                )?,
                roles: roles_from_wire(&format!("{prefix}.roles"), &update.roles)?,
            }
        }
        Wire::AddSubmittingKey(key) => {
            let (org_number, key) = institution_key("add_submitting_key", key)?;
            MembershipChange::AddSubmittingKey { org_number, key }
        }
        Wire::RevokeSubmittingKey(key) => {
            let (org_number, key) = institution_key("revoke_submitting_key", key)?;
            MembershipChange::RevokeSubmittingKey { org_number, key }
        }
        Wire::AddValidator(key) => {
            let (org_number, key) = institution_key("add_validator", key)?;
            MembershipChange::AddValidator { org_number, key }
        }
        Wire::RemoveValidator(org) => MembershipChange::RemoveValidator(org_number(
            &format!("{field}.remove_validator"),
            org,
        )?),
        Wire::RotateValidatorKey(key) => {
            let (org_number, key) = institution_key("rotate_validator_key", key)?;
            MembershipChange::RotateValidatorKey { org_number, key }
        }
    })
}

pub fn membership_change_to_wire(change: &MembershipChange) -> v1::MembershipChange {
    use v1::membership_change::Change as Wire;
    let institution_key = |org_number: &OrgNumber, key: &[u8; 32]| v1::InstitutionKey {
        org_number: org_number.to_string(),
        public_key: key.to_vec(),
    };
    let change = match change {
        MembershipChange::AddInstitution(institution) => {
            Wire::AddInstitution(member_to_wire(institution))
        }
        MembershipChange::RemoveInstitution(org) => Wire::RemoveInstitution(org.to_string()),
        MembershipChange::UpdateInstitution {
            org_number,
            name,
            roles,
        } => Wire::UpdateInstitution(v1::UpdateInstitution {
            org_number: org_number.to_string(),
            name: name.clone(),
            roles: roles
                .iter()
                .map(|role| role_to_wire(*role) as i32)
                .collect(),
        }),
        MembershipChange::AddSubmittingKey { org_number, key } => {
            Wire::AddSubmittingKey(institution_key(org_number, key))
        }
        MembershipChange::RevokeSubmittingKey { org_number, key } => {
            Wire::RevokeSubmittingKey(institution_key(org_number, key))
        }
        MembershipChange::AddValidator { org_number, key } => {
            Wire::AddValidator(institution_key(org_number, key))
        }
        MembershipChange::RemoveValidator(org) => Wire::RemoveValidator(org.to_string()),
        MembershipChange::RotateValidatorKey { org_number, key } => {
            Wire::RotateValidatorKey(institution_key(org_number, key))
        }
    };
    v1::MembershipChange {
        change: Some(change),
    }
}

fn roles_from_wire(field: &str, roles: &[i32]) -> Result<Vec<Role>, FieldError> {
    if roles.is_empty() {
        return Err(field_error(field, FieldProblem::Empty));
    }
    let mut decoded = Vec::with_capacity(roles.len());
    for value in roles {
        let role = match v1::InstitutionRole::try_from(*value) {
            Ok(v1::InstitutionRole::Validator) => Role::Validator,
            Ok(v1::InstitutionRole::Submitter) => Role::Submitter,
            Ok(v1::InstitutionRole::ConsentAuthority) => Role::ConsentAuthority,
            Ok(v1::InstitutionRole::Auditor) => Role::Auditor,
            Ok(v1::InstitutionRole::Unspecified) => {
                return Err(field_error(field, FieldProblem::Unspecified));
            }
            Err(_) => return Err(field_error(field, FieldProblem::UnknownEnumValue(*value))),
        };
        if decoded.contains(&role) {
            return Err(field_error(field, FieldProblem::Duplicate));
        }
        decoded.push(role);
    }
    Ok(decoded)
}

/// A member institution from its message, as an `AddInstitution` names it.
pub fn member_from_wire(field: &str, member: &v1::Member) -> Result<Institution, FieldError> {
    Ok(Institution {
        org_number: org_number(&format!("{field}.org_number"), &member.org_number)?,
        name: text(
            &format!("{field}.name"),
            &member.name,
            INSTITUTION_NAME_CHARS_MAX,
            true,
        )?,
        roles: roles_from_wire(&format!("{field}.roles"), &member.roles)?,
        public_keys: member
            .public_keys
            .iter()
            .map(|key| bytes32(&format!("{field}.public_keys"), key))
            .collect::<Result<_, _>>()?,
        validator_key: if member.validator_key.is_empty() {
            None
        } else {
            Some(bytes32(
                &format!("{field}.validator_key"),
                &member.validator_key,
            )?)
        },
    })
}

fn block_terms(
    block: v1::BlockAccess,
) -> Result<(OrgNumber, SubjectPseudonym, BlockTarget), FieldError> {
    Ok((
        org_number("block_access.issuer_org_number", &block.issuer_org_number)?,
        subject("block_access.subject_pseudonym", &block.subject_pseudonym)?,
        match block.target {
            Some(v1::block_access::Target::InstitutionOrgNumber(number)) => {
                BlockTarget::Institution(org_number(
                    "block_access.institution_org_number",
                    &number,
                )?)
            }
            Some(v1::block_access::Target::HprNumber(number)) => {
                BlockTarget::Person(hpr_number("block_access.hpr_number", &number)?)
            }
            None => return Err(field_error("block_access.target", FieldProblem::Missing)),
        },
    ))
}

fn grant_terms(grant: v1::GrantAccess) -> Result<GrantTerms, FieldError> {
    let scope = match grant.scope.and_then(|scope| scope.scope) {
        Some(v1::grant_scope::Scope::Record(record)) => {
            GrantScope::Record(record_reference("grant_access.scope.record", Some(record))?)
        }
        Some(v1::grant_scope::Scope::CategoryCode(code)) => GrantScope::Category(text(
            "grant_access.scope.category_code",
            &code,
            CATEGORY_CODE_CHARS_MAX,
            true,
        )?),
        Some(v1::grant_scope::Scope::AllRecords(_)) => GrantScope::AllRecords,
        None => return Err(field_error("grant_access.scope", FieldProblem::Missing)),
    };
    if grant.purposes.is_empty() {
        return Err(field_error("grant_access.purposes", FieldProblem::Missing));
    }
    let mut purposes = Vec::with_capacity(grant.purposes.len());
    for value in &grant.purposes {
        let purpose = purpose("grant_access.purposes", *value)?;
        if purposes.contains(&purpose) {
            return Err(field_error(
                "grant_access.purposes",
                FieldProblem::Duplicate,
            ));
        }
        purposes.push(purpose);
    }
    if grant.valid_until_unix_ms <= grant.valid_from_unix_ms {
        return Err(field_error(
            "grant_access.valid_until_unix_ms",
            FieldProblem::EmptyWindow,
        ));
    }
    let basis = match grant.basis.and_then(|basis| basis.basis) {
        Some(v1::grant_basis::Basis::PatientConsent(consent)) => GrantBasis::PatientConsent {
            reference: optional_text(
                "grant_access.basis.patient_consent.reference",
                &consent.reference,
                REASON_CHARS_MAX,
            )?,
        },
        Some(v1::grant_basis::Basis::Statutory(statute)) => GrantBasis::Statutory {
            name: text(
                "grant_access.basis.statutory.name",
                &statute.name,
                REASON_CHARS_MAX,
                true,
            )?,
        },
        None => return Err(field_error("grant_access.basis", FieldProblem::Missing)),
    };
    Ok(GrantTerms {
        issuer: org_number("grant_access.issuer_org_number", &grant.issuer_org_number)?,
        subject: subject("grant_access.subject_pseudonym", &grant.subject_pseudonym)?,
        grantee: org_number("grant_access.grantee_org_number", &grant.grantee_org_number)?,
        grantee_person: if grant.grantee_hpr_number.is_empty() {
            None
        } else {
            Some(hpr_number(
                "grant_access.grantee_hpr_number",
                &grant.grantee_hpr_number,
            )?)
        },
        grantee_department: optional_text(
            "grant_access.grantee_department",
            &grant.grantee_department,
            DEPARTMENT_CHARS_MAX,
        )?,
        scope,
        purposes,
        valid_from_unix_ms: grant.valid_from_unix_ms,
        valid_until_unix_ms: grant.valid_until_unix_ms,
        basis,
    })
}

fn access_report(log: v1::LogAccess) -> Result<AccessReport, FieldError> {
    let basis = match log.basis {
        Some(v1::log_access::Basis::GrantId(grant_id)) => {
            AccessBasis::Grant(TransactionId(bytes32("log_access.grant_id", &grant_id)?))
        }
        Some(v1::log_access::Basis::Emergency(emergency)) => AccessBasis::Emergency {
            justification: text(
                "log_access.emergency.justification",
                &emergency.justification,
                JUSTIFICATION_CHARS_MAX,
                true,
            )?,
        },
        None => AccessBasis::None,
    };
    let report = AccessReport {
        accessor: org_number("log_access.accessor_org_number", &log.accessor_org_number)?,
        accessor_person: hpr_number("log_access.accessor_hpr_number", &log.accessor_hpr_number)?,
        record: record_reference("log_access.record", log.record)?,
        purpose: purpose("log_access.purpose", log.purpose)?,
        accessed_at_unix_ms: log.accessed_at_unix_ms,
        attestation_sha256: if log.attestation_sha256.is_empty() {
            None
        } else {
            Some(bytes32(
                "log_access.attestation_sha256",
                &log.attestation_sha256,
            )?)
        },
        basis,
    };
    // Breaking the glass is emergency treatment: any other purpose is no emergency.
    if matches!(report.basis, AccessBasis::Emergency { .. }) && report.purpose != Purpose::Etreat {
        return Err(field_error(
            "log_access.purpose",
            FieldProblem::EmergencyNeedsEtreat,
        ));
    }
    Ok(report)
}

/// Checks the shape of consensus evidence (lengths, required parts); its signatures are checked
/// at execution, against the validator set.
fn evidence(
    field: &str,
    wire: Option<&v1::Evidence>,
) -> Result<varde_consensus::Evidence, FieldError> {
    let Some(wire) = wire.filter(|wire| wire.kind.is_some()) else {
        return Err(field_error(field, FieldProblem::Missing));
    };
    let evidence = consensus_wire::evidence_from_wire(wire).map_err(|error| match error {
        WireError::Missing(part) => field_error(&format!("{field}.{part}"), FieldProblem::Missing),
        WireError::Length {
            field: part,
            expected,
            found,
        } => field_error(
            &format!("{field}.{part}"),
            FieldProblem::WrongLength {
                expected,
                actual: found,
            },
        ),
        WireError::VoteKind(0) => {
            field_error(&format!("{field}.vote.kind"), FieldProblem::Unspecified)
        }
        WireError::VoteKind(value) => field_error(
            &format!("{field}.vote.kind"),
            FieldProblem::UnknownEnumValue(value),
        ),
        WireError::Step(value) => field_error(
            &format!("{field}.step"),
            FieldProblem::UnknownEnumValue(value),
        ),
    })?;
    evidence_binaries(field, wire)?;
    Ok(evidence)
}

/// The block ids and signatures of evidence are binary fields like any other.
fn evidence_binaries(field: &str, wire: &v1::Evidence) -> Result<(), FieldError> {
    match &wire.kind {
        Some(v1::evidence::Kind::DuplicateVote(pair)) => {
            for (name, signed) in [("first", &pair.first), ("second", &pair.second)] {
                let Some(signed) = signed else { continue };
                let path = format!("{field}.duplicate_vote.{name}");
                if let Some(vote) = &signed.vote {
                    binary(&format!("{path}.vote.block_id"), &vote.block_id)?;
                }
                binary(&format!("{path}.signature"), &signed.signature)?;
            }
        }
        Some(v1::evidence::Kind::DuplicateProposal(pair)) => {
            for (name, signed) in [("first", &pair.first), ("second", &pair.second)] {
                let Some(signed) = signed else { continue };
                let path = format!("{field}.duplicate_proposal.{name}");
                if let Some(proposal) = &signed.proposal {
                    binary(&format!("{path}.proposal.block_id"), &proposal.block_id)?;
                }
                binary(&format!("{path}.signature"), &signed.signature)?;
            }
        }
        None => {}
    }
    Ok(())
}

/// A binary field (nonce, hash, pseudonym, id, signature) must not hold 11 consecutive ASCII
/// digits, nor, read as UTF-8, anything the free-text rule refuses.
fn binary(field: &str, value: &[u8]) -> Result<(), FieldError> {
    if identifiers::contains_ascii_digit_run(value) {
        return Err(field_error(field, FieldProblem::DigitRun));
    }
    if identifiers::contains_national_id_like(&String::from_utf8_lossy(value)) {
        return Err(field_error(field, FieldProblem::NationalIdLike));
    }
    Ok(())
}

/// Validates a free-text field: length in characters, no control characters, nothing shaped like
/// a national identity number.
pub fn text(
    field: &str,
    value: &str,
    max_chars: usize,
    required: bool,
) -> Result<String, FieldError> {
    if value.is_empty() {
        return if required {
            Err(field_error(field, FieldProblem::Empty))
        } else {
            Ok(String::new())
        };
    }
    if value.chars().count() > max_chars {
        return Err(field_error(field, FieldProblem::TooLong { max: max_chars }));
    }
    if value.chars().any(char::is_control) {
        return Err(field_error(field, FieldProblem::ControlCharacter));
    }
    if identifiers::contains_national_id_like(value) {
        return Err(field_error(field, FieldProblem::NationalIdLike));
    }
    Ok(value.to_owned())
}

fn optional_text(field: &str, value: &str, max_chars: usize) -> Result<Option<String>, FieldError> {
    let value = text(field, value, max_chars, false)?;
    Ok((!value.is_empty()).then_some(value))
}

pub fn org_number(field: &str, value: &str) -> Result<OrgNumber, FieldError> {
    if value.is_empty() {
        return Err(field_error(field, FieldProblem::Missing));
    }
    OrgNumber::parse(value).map_err(|error| field_error(field, error))
}

pub fn hpr_number(field: &str, value: &str) -> Result<HprNumber, FieldError> {
    if value.is_empty() {
        return Err(field_error(field, FieldProblem::Missing));
    }
    HprNumber::parse(value).map_err(|error| field_error(field, error))
}

pub(crate) fn bytes32(field: &str, value: &[u8]) -> Result<[u8; 32], FieldError> {
    let bytes = <[u8; 32]>::try_from(value).map_err(|_| {
        field_error(
            field,
            if value.is_empty() {
                FieldProblem::Missing
            } else {
                FieldProblem::WrongLength {
                    expected: 32,
                    actual: value.len(),
                }
            },
        )
    })?;
    binary(field, value)?;
    Ok(bytes)
}

pub fn subject(field: &str, value: &[u8]) -> Result<SubjectPseudonym, FieldError> {
    bytes32(field, value).map(SubjectPseudonym)
}

fn record_key(prefix: &str, custodian: &str, record_id: &str) -> Result<RecordKey, FieldError> {
    Ok(RecordKey {
        custodian: org_number(&format!("{prefix}.custodian_org_number"), custodian)?,
        record_id: text(
            &format!("{prefix}.record_id"),
            record_id,
            RECORD_ID_CHARS_MAX,
            true,
        )?,
    })
}

pub fn record_reference(
    field: &str,
    reference: Option<v1::RecordReference>,
) -> Result<RecordKey, FieldError> {
    let reference = reference.ok_or_else(|| field_error(field, FieldProblem::Missing))?;
    record_key(field, &reference.custodian_org_number, &reference.record_id)
}

fn confidentiality(field: &str, value: i32) -> Result<Confidentiality, FieldError> {
    match v1::Confidentiality::try_from(value) {
        Ok(v1::Confidentiality::Normal) => Ok(Confidentiality::Normal),
        Ok(v1::Confidentiality::Restricted) => Ok(Confidentiality::Restricted),
        Ok(v1::Confidentiality::Unspecified) => Err(field_error(field, FieldProblem::Unspecified)),
        Err(_) => Err(field_error(field, FieldProblem::UnknownEnumValue(value))),
    }
}

pub fn purpose(field: &str, value: i32) -> Result<Purpose, FieldError> {
    use v1::PurposeOfUse as Wire;
    Ok(match Wire::try_from(value) {
        Ok(Wire::Treat) => Purpose::Treat,
        Ok(Wire::Etreat) => Purpose::Etreat,
        Ok(Wire::Coc) => Purpose::Coc,
        Ok(Wire::Hresch) => Purpose::Hresch,
        Ok(Wire::Clintrch) => Purpose::Clintrch,
        Ok(Wire::Hoperat) => Purpose::Hoperat,
        Ok(Wire::Hpaymt) => Purpose::Hpaymt,
        Ok(Wire::Pubhlth) => Purpose::Pubhlth,
        Ok(Wire::Patrqt) => Purpose::Patrqt,
        Ok(Wire::Unspecified) => return Err(field_error(field, FieldProblem::Unspecified)),
        Err(_) => return Err(field_error(field, FieldProblem::UnknownEnumValue(value))),
    })
}

// ----- Domain to wire, for the API. -----

pub fn purpose_to_wire(purpose: Purpose) -> v1::PurposeOfUse {
    use v1::PurposeOfUse as Wire;
    match purpose {
        Purpose::Treat => Wire::Treat,
        Purpose::Etreat => Wire::Etreat,
        Purpose::Coc => Wire::Coc,
        Purpose::Hresch => Wire::Hresch,
        Purpose::Clintrch => Wire::Clintrch,
        Purpose::Hoperat => Wire::Hoperat,
        Purpose::Hpaymt => Wire::Hpaymt,
        Purpose::Pubhlth => Wire::Pubhlth,
        Purpose::Patrqt => Wire::Patrqt,
    }
}

fn confidentiality_to_wire(confidentiality: Confidentiality) -> v1::Confidentiality {
    match confidentiality {
        Confidentiality::Normal => v1::Confidentiality::Normal,
        Confidentiality::Restricted => v1::Confidentiality::Restricted,
    }
}

fn record_reference_to_wire(record: &RecordKey) -> v1::RecordReference {
    v1::RecordReference {
        custodian_org_number: record.custodian.to_string(),
        record_id: record.record_id.clone(),
    }
}

pub fn record_to_wire(record: &RecordPointer) -> v1::RecordPointer {
    v1::RecordPointer {
        custodian_org_number: record.record.custodian.to_string(),
        record_id: record.record.record_id.clone(),
        subject_pseudonym: record.subject.0.to_vec(),
        category_code: record.category_code.clone(),
        location_uri: record.location_uri.clone(),
        content_sha256: record.content_sha256.to_vec(),
        confidentiality: confidentiality_to_wire(record.confidentiality) as i32,
        created_at_unix_ms: record.created_at_unix_ms,
        version: record.version,
        retracted: record.retracted.is_some(),
        last_transaction_id: record.last_transaction_id.0.to_vec(),
        anchored_at_height: record.anchored_at_height,
        retracted_at_height: record
            .retracted
            .as_ref()
            .map_or(0, |retraction| retraction.height),
        retraction_reason: record
            .retracted
            .as_ref()
            .map(|retraction| retraction.reason.clone())
            .unwrap_or_default(),
    }
}

pub fn grant_terms_to_wire(terms: &GrantTerms) -> v1::GrantAccess {
    v1::GrantAccess {
        issuer_org_number: terms.issuer.to_string(),
        subject_pseudonym: terms.subject.0.to_vec(),
        grantee_org_number: terms.grantee.to_string(),
        grantee_hpr_number: terms
            .grantee_person
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        grantee_department: terms.grantee_department.clone().unwrap_or_default(),
        scope: Some(v1::GrantScope {
            scope: Some(match &terms.scope {
                GrantScope::Record(record) => {
                    v1::grant_scope::Scope::Record(record_reference_to_wire(record))
                }
                GrantScope::Category(code) => v1::grant_scope::Scope::CategoryCode(code.clone()),
                GrantScope::AllRecords => v1::grant_scope::Scope::AllRecords(v1::AllRecords {}),
            }),
        }),
        purposes: terms
            .purposes
            .iter()
            .map(|purpose| purpose_to_wire(*purpose) as i32)
            .collect(),
        valid_from_unix_ms: terms.valid_from_unix_ms,
        valid_until_unix_ms: terms.valid_until_unix_ms,
        basis: Some(v1::GrantBasis {
            basis: Some(match &terms.basis {
                GrantBasis::PatientConsent { reference } => {
                    v1::grant_basis::Basis::PatientConsent(v1::PatientConsent {
                        reference: reference.clone().unwrap_or_default(),
                    })
                }
                GrantBasis::Statutory { name } => {
                    v1::grant_basis::Basis::Statutory(v1::StatutoryBasis { name: name.clone() })
                }
            }),
        }),
    }
}

pub fn grant_to_wire(grant: &Grant) -> v1::Grant {
    v1::Grant {
        grant_id: grant.grant_id.0.to_vec(),
        terms: Some(grant_terms_to_wire(&grant.terms)),
        granted_at_height: grant.granted_at_height,
        revoked: grant.revoked.is_some(),
        revoked_at_height: grant
            .revoked
            .as_ref()
            .map_or(0, |revocation| revocation.height),
        revoked_at_unix_ms: grant
            .revoked
            .as_ref()
            .map_or(0, |revocation| revocation.unix_ms),
        revocation_reason: grant
            .revoked
            .as_ref()
            .map(|revocation| revocation.reason.clone())
            .unwrap_or_default(),
    }
}

pub fn classification_to_wire(classification: AccessClassification) -> v1::AccessClassification {
    match classification {
        AccessClassification::Authorised => v1::AccessClassification::Authorised,
        AccessClassification::Emergency => v1::AccessClassification::Emergency,
        AccessClassification::Unauthorised => v1::AccessClassification::Unauthorised,
    }
}

pub fn access_event_to_wire(event: &AccessEvent) -> v1::AccessEvent {
    let report = &event.report;
    v1::AccessEvent {
        event_id: event.event_id.0.to_vec(),
        report: Some(v1::LogAccess {
            accessor_org_number: report.accessor.to_string(),
            accessor_hpr_number: report.accessor_person.to_string(),
            record: Some(record_reference_to_wire(&report.record)),
            purpose: purpose_to_wire(report.purpose) as i32,
            accessed_at_unix_ms: report.accessed_at_unix_ms,
            attestation_sha256: report
                .attestation_sha256
                .map(|hash| hash.to_vec())
                .unwrap_or_default(),
            basis: match &report.basis {
                AccessBasis::Grant(grant_id) => {
                    Some(v1::log_access::Basis::GrantId(grant_id.0.to_vec()))
                }
                AccessBasis::Emergency { justification } => {
                    Some(v1::log_access::Basis::Emergency(v1::EmergencyAccess {
                        justification: justification.clone(),
                    }))
                }
                AccessBasis::None => None,
            },
        }),
        subject_pseudonym: event.subject.0.to_vec(),
        classification: classification_to_wire(event.classification) as i32,
        flagged: event.flagged,
        reason: event.reason.clone(),
        grant_id: event.grant_id.map(|id| id.0.to_vec()).unwrap_or_default(),
        height: event.height,
        accessor_institution_name: String::new(),
    }
}

pub fn access_block_to_wire(block: &AccessBlock) -> v1::AccessBlockEntry {
    v1::AccessBlockEntry {
        block_id: block.block_id.0.to_vec(),
        terms: Some(v1::BlockAccess {
            issuer_org_number: block.issuer.to_string(),
            subject_pseudonym: block.subject.0.to_vec(),
            target: Some(match &block.target {
                BlockTarget::Institution(org_number) => {
                    v1::block_access::Target::InstitutionOrgNumber(org_number.to_string())
                }
                BlockTarget::Person(hpr_number) => {
                    v1::block_access::Target::HprNumber(hpr_number.to_string())
                }
            }),
        }),
        blocked_at_height: block.blocked_at_height,
        lifted: block.lifted_at_height.is_some(),
        lifted_at_height: block.lifted_at_height.unwrap_or_default(),
        blocked_at_unix_ms: block.blocked_at_unix_ms,
        lifted_at_unix_ms: block.lifted_at_unix_ms.unwrap_or_default(),
    }
}

pub fn misbehaviour_kind_to_wire(kind: MisbehaviourKind) -> v1::MisbehaviourKind {
    match kind {
        MisbehaviourKind::DuplicatePrevote => v1::MisbehaviourKind::DuplicatePrevote,
        MisbehaviourKind::DuplicatePrecommit => v1::MisbehaviourKind::DuplicatePrecommit,
        MisbehaviourKind::DuplicateProposal => v1::MisbehaviourKind::DuplicateProposal,
    }
}

/// A recorded misbehaviour for the API. Fails only when the stored evidence bytes do not decode,
/// which means the database is damaged.
pub fn misbehaviour_to_wire(
    record: &Misbehaviour,
) -> Result<v1::MisbehaviourRecord, prost::DecodeError> {
    Ok(v1::MisbehaviourRecord {
        offender_public_key: record.offender.to_vec(),
        validator_index: record.slot.validator_index,
        height: record.slot.height,
        round: record.slot.round,
        kind: misbehaviour_kind_to_wire(record.slot.kind) as i32,
        recorded_at_height: record.recorded_at_height,
        reporter_org_number: record.reporter.to_string(),
        report_transaction_id: record.report_id.0.to_vec(),
        evidence: Some(v1::Evidence::decode(record.evidence.as_slice())?),
    })
}

pub fn rejection_reason_to_wire(reason: RejectionReason) -> v1::RejectionReason {
    use v1::RejectionReason as Wire;
    match reason {
        RejectionReason::UnknownSigner => Wire::UnknownSigner,
        RejectionReason::SignerNotInstitution => Wire::SignerNotInstitution,
        RejectionReason::MissingRole => Wire::MissingRole,
        RejectionReason::Expired => Wire::Expired,
        RejectionReason::Duplicate => Wire::Duplicate,
        RejectionReason::ExpiryTooFar => Wire::ExpiryTooFar,
        RejectionReason::UnknownRecord => Wire::UnknownRecord,
        RejectionReason::RecordExists => Wire::RecordExists,
        RejectionReason::RecordRetracted => Wire::RecordRetracted,
        RejectionReason::NotCustodian => Wire::NotCustodian,
        RejectionReason::NotAuthorisedIssuer => Wire::NotAuthorisedIssuer,
        RejectionReason::UnknownGrant => Wire::UnknownGrant,
        RejectionReason::GrantAlreadyRevoked => Wire::GrantAlreadyRevoked,
        RejectionReason::UnknownBlock => Wire::UnknownBlock,
        RejectionReason::BlockAlreadyLifted => Wire::BlockAlreadyLifted,
        RejectionReason::UnknownInstitution => Wire::UnknownInstitution,
        RejectionReason::SubjectMismatch => Wire::SubjectMismatch,
        RejectionReason::InvalidEvidence => Wire::InvalidEvidence,
        RejectionReason::EvidenceAlreadyRecorded => Wire::EvidenceAlreadyRecorded,
        RejectionReason::AccessTimeOutsideWindow => Wire::AccessTimeOutsideWindow,
        RejectionReason::UnknownProposal => Wire::UnknownProposal,
        RejectionReason::ProposalClosed => Wire::ProposalClosed,
        RejectionReason::AlreadyApproved => Wire::AlreadyApproved,
        RejectionReason::InvalidChange => Wire::InvalidChange,
    }
}

pub fn receipt_to_wire(receipt: &Receipt) -> v1::Receipt {
    v1::Receipt {
        transaction_id: receipt.transaction_id.0.to_vec(),
        height: receipt.height,
        index: receipt.index,
        outcome: Some(match &receipt.outcome {
            Outcome::Applied { classification } => v1::receipt::Outcome::Applied(v1::Applied {
                classification: classification.map_or(
                    v1::AccessClassification::Unspecified,
                    classification_to_wire,
                ) as i32,
            }),
            Outcome::Rejected { reason, detail } => v1::receipt::Outcome::Rejected(v1::Rejected {
                reason: rejection_reason_to_wire(*reason) as i32,
                detail: detail.clone(),
            }),
        }),
    }
}

/// A committed grant back from its API message: the fact a light client proved, for the access
/// rules (a revocation's reason is not in the message and is left empty).
pub fn grant_from_wire(grant: &v1::Grant) -> Result<Grant, FieldError> {
    let terms = grant
        .terms
        .clone()
        .ok_or_else(|| field_error("grant.terms", FieldProblem::Missing))?;
    Ok(Grant {
        grant_id: TransactionId(bytes32("grant.grant_id", &grant.grant_id)?),
        terms: grant_terms(terms)?,
        granted_at_height: grant.granted_at_height,
        revoked: if grant.revoked {
            Some(Revocation {
                height: grant.revoked_at_height,
                unix_ms: grant.revoked_at_unix_ms,
                reason: grant.revocation_reason.clone(),
            })
        } else if grant.revoked_at_height != 0
            || grant.revoked_at_unix_ms != 0
            || !grant.revocation_reason.is_empty()
        {
            return Err(field_error(
                "grant.revocation",
                FieldProblem::OnlyWith("grant.revoked"),
            ));
        } else {
            None
        },
    })
}

/// A committed record pointer back from its API message.
pub fn record_from_wire(record: &v1::RecordPointer) -> Result<RecordPointer, FieldError> {
    Ok(RecordPointer {
        record: record_key("record", &record.custodian_org_number, &record.record_id)?,
        subject: subject("record.subject_pseudonym", &record.subject_pseudonym)?,
        category_code: record.category_code.clone(),
        location_uri: record.location_uri.clone(),
        content_sha256: bytes32("record.content_sha256", &record.content_sha256)?,
        confidentiality: confidentiality("record.confidentiality", record.confidentiality)?,
        created_at_unix_ms: record.created_at_unix_ms,
        version: record.version,
        retracted: if record.retracted {
            Some(Retraction {
                height: record.retracted_at_height,
                reason: record.retraction_reason.clone(),
            })
        } else if record.retracted_at_height != 0 || !record.retraction_reason.is_empty() {
            return Err(field_error(
                "record.retraction",
                FieldProblem::OnlyWith("record.retracted"),
            ));
        } else {
            None
        },
        last_transaction_id: TransactionId(bytes32(
            "record.last_transaction_id",
            &record.last_transaction_id,
        )?),
        anchored_at_height: record.anchored_at_height,
    })
}

// ----- Stored values back from their wire form (crate::stored), checked like wire input. -----

fn transaction_id(field: &str, value: &[u8]) -> Result<TransactionId, FieldError> {
    bytes32(field, value).map(TransactionId)
}

pub fn classification_from_wire(
    field: &str,
    value: i32,
) -> Result<AccessClassification, FieldError> {
    match v1::AccessClassification::try_from(value) {
        Ok(v1::AccessClassification::Authorised) => Ok(AccessClassification::Authorised),
        Ok(v1::AccessClassification::Emergency) => Ok(AccessClassification::Emergency),
        Ok(v1::AccessClassification::Unauthorised) => Ok(AccessClassification::Unauthorised),
        Ok(v1::AccessClassification::Unspecified) => {
            Err(field_error(field, FieldProblem::Unspecified))
        }
        Err(_) => Err(field_error(field, FieldProblem::UnknownEnumValue(value))),
    }
}

/// A stored access event back from its message (the served-only `accessor_institution_name` is
/// not part of it).
pub fn access_event_from_wire(event: &v1::AccessEvent) -> Result<AccessEvent, FieldError> {
    let report = event
        .report
        .clone()
        .ok_or_else(|| field_error("access_event.report", FieldProblem::Missing))?;
    Ok(AccessEvent {
        event_id: transaction_id("access_event.event_id", &event.event_id)?,
        report: access_report(report)?,
        subject: subject("access_event.subject_pseudonym", &event.subject_pseudonym)?,
        classification: classification_from_wire(
            "access_event.classification",
            event.classification,
        )?,
        flagged: event.flagged,
        // Written by the ledger's classification, not by a submitter.
        reason: event.reason.clone(),
        grant_id: if event.grant_id.is_empty() {
            None
        } else {
            Some(transaction_id("access_event.grant_id", &event.grant_id)?)
        },
        height: event.height,
    })
}

/// A patient's block back from its message; the block times are not in it and are the caller's
/// to set (`crate::stored` keeps them beside the message).
pub fn access_block_from_wire(block: &v1::AccessBlockEntry) -> Result<AccessBlock, FieldError> {
    if !block.lifted && (block.lifted_at_height != 0 || block.lifted_at_unix_ms != 0) {
        return Err(field_error(
            "access_block.lifted_at",
            FieldProblem::OnlyWith("access_block.lifted"),
        ));
    }
    let terms = block
        .terms
        .clone()
        .ok_or_else(|| field_error("access_block.terms", FieldProblem::Missing))?;
    let (issuer, subject, target) = block_terms(terms)?;
    Ok(AccessBlock {
        block_id: transaction_id("access_block.block_id", &block.block_id)?,
        issuer,
        subject,
        target,
        blocked_at_height: block.blocked_at_height,
        lifted_at_height: block.lifted.then_some(block.lifted_at_height),
        blocked_at_unix_ms: block.blocked_at_unix_ms,
        lifted_at_unix_ms: block.lifted.then_some(block.lifted_at_unix_ms),
    })
}

pub fn misbehaviour_kind_from_wire(
    field: &str,
    value: i32,
) -> Result<MisbehaviourKind, FieldError> {
    match v1::MisbehaviourKind::try_from(value) {
        Ok(v1::MisbehaviourKind::DuplicatePrevote) => Ok(MisbehaviourKind::DuplicatePrevote),
        Ok(v1::MisbehaviourKind::DuplicatePrecommit) => Ok(MisbehaviourKind::DuplicatePrecommit),
        Ok(v1::MisbehaviourKind::DuplicateProposal) => Ok(MisbehaviourKind::DuplicateProposal),
        Ok(v1::MisbehaviourKind::Unspecified) => Err(field_error(field, FieldProblem::Unspecified)),
        Err(_) => Err(field_error(field, FieldProblem::UnknownEnumValue(value))),
    }
}

/// A recorded misbehaviour back from its message; its evidence is checked for shape as a report's
/// is and kept in its canonical encoding.
pub fn misbehaviour_from_wire(record: &v1::MisbehaviourRecord) -> Result<Misbehaviour, FieldError> {
    let evidence = record
        .evidence
        .as_ref()
        .ok_or_else(|| field_error("misbehaviour.evidence", FieldProblem::Missing))?;
    self::evidence("misbehaviour.evidence", Some(evidence))?;
    Ok(Misbehaviour {
        offender: bytes32(
            "misbehaviour.offender_public_key",
            &record.offender_public_key,
        )?,
        slot: MisbehaviourSlot {
            validator_index: record.validator_index,
            height: record.height,
            round: record.round,
            kind: misbehaviour_kind_from_wire("misbehaviour.kind", record.kind)?,
        },
        recorded_at_height: record.recorded_at_height,
        reporter: org_number(
            "misbehaviour.reporter_org_number",
            &record.reporter_org_number,
        )?,
        report_id: transaction_id(
            "misbehaviour.report_transaction_id",
            &record.report_transaction_id,
        )?,
        evidence: evidence.encode_to_vec(),
    })
}

pub fn rejection_reason_from_wire(field: &str, value: i32) -> Result<RejectionReason, FieldError> {
    use v1::RejectionReason as Wire;
    Ok(match Wire::try_from(value) {
        Ok(Wire::UnknownSigner) => RejectionReason::UnknownSigner,
        Ok(Wire::SignerNotInstitution) => RejectionReason::SignerNotInstitution,
        Ok(Wire::MissingRole) => RejectionReason::MissingRole,
        Ok(Wire::Expired) => RejectionReason::Expired,
        Ok(Wire::Duplicate) => RejectionReason::Duplicate,
        Ok(Wire::ExpiryTooFar) => RejectionReason::ExpiryTooFar,
        Ok(Wire::UnknownRecord) => RejectionReason::UnknownRecord,
        Ok(Wire::RecordExists) => RejectionReason::RecordExists,
        Ok(Wire::RecordRetracted) => RejectionReason::RecordRetracted,
        Ok(Wire::NotCustodian) => RejectionReason::NotCustodian,
        Ok(Wire::NotAuthorisedIssuer) => RejectionReason::NotAuthorisedIssuer,
        Ok(Wire::UnknownGrant) => RejectionReason::UnknownGrant,
        Ok(Wire::GrantAlreadyRevoked) => RejectionReason::GrantAlreadyRevoked,
        Ok(Wire::UnknownBlock) => RejectionReason::UnknownBlock,
        Ok(Wire::BlockAlreadyLifted) => RejectionReason::BlockAlreadyLifted,
        Ok(Wire::UnknownInstitution) => RejectionReason::UnknownInstitution,
        Ok(Wire::SubjectMismatch) => RejectionReason::SubjectMismatch,
        Ok(Wire::InvalidEvidence) => RejectionReason::InvalidEvidence,
        Ok(Wire::EvidenceAlreadyRecorded) => RejectionReason::EvidenceAlreadyRecorded,
        Ok(Wire::AccessTimeOutsideWindow) => RejectionReason::AccessTimeOutsideWindow,
        Ok(Wire::UnknownProposal) => RejectionReason::UnknownProposal,
        Ok(Wire::ProposalClosed) => RejectionReason::ProposalClosed,
        Ok(Wire::AlreadyApproved) => RejectionReason::AlreadyApproved,
        Ok(Wire::InvalidChange) => RejectionReason::InvalidChange,
        Ok(Wire::Unspecified) => return Err(field_error(field, FieldProblem::Unspecified)),
        Err(_) => return Err(field_error(field, FieldProblem::UnknownEnumValue(value))),
    })
}

/// A receipt back from its message.
pub fn receipt_from_wire(receipt: &v1::Receipt) -> Result<Receipt, FieldError> {
    let outcome = match receipt
        .outcome
        .as_ref()
        .ok_or_else(|| field_error("receipt.outcome", FieldProblem::Missing))?
    {
        v1::receipt::Outcome::Applied(applied) => Outcome::Applied {
            classification: if applied.classification
                == v1::AccessClassification::Unspecified as i32
            {
                None
            } else {
                Some(classification_from_wire(
                    "receipt.applied.classification",
                    applied.classification,
                )?)
            },
        },
        v1::receipt::Outcome::Rejected(rejected) => Outcome::Rejected {
            reason: rejection_reason_from_wire("receipt.rejected.reason", rejected.reason)?,
            detail: rejected.detail.clone(),
        },
    };
    Ok(Receipt {
        transaction_id: transaction_id("receipt.transaction_id", &receipt.transaction_id)?,
        height: receipt.height,
        index: receipt.index,
        outcome,
    })
}

pub fn role_to_wire(role: Role) -> v1::InstitutionRole {
    match role {
        Role::Validator => v1::InstitutionRole::Validator,
        Role::Submitter => v1::InstitutionRole::Submitter,
        Role::ConsentAuthority => v1::InstitutionRole::ConsentAuthority,
        Role::Auditor => v1::InstitutionRole::Auditor,
    }
}

/// A member institution as the state tree commits to it and the genesis hash covers it.
pub fn member_to_wire(institution: &Institution) -> v1::Member {
    v1::Member {
        org_number: institution.org_number.to_string(),
        name: institution.name.clone(),
        roles: institution
            .roles
            .iter()
            .map(|role| role_to_wire(*role) as i32)
            .collect(),
        public_keys: institution
            .public_keys
            .iter()
            .map(|key| key.to_vec())
            .collect(),
        validator_key: institution
            .validator_key
            .map(|key| key.to_vec())
            .unwrap_or_default(),
    }
}
