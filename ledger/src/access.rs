//! Access decisions: may an institution (and person) read a record for a purpose at a time?
//!
//! Order of the rules: an unknown or retracted record is denied; a patient's block of the
//! institution or the person denies, even in an emergency; the custodian may read its own record;
//! a valid grant in scope allows (validity window and revocation checked at the time asked); a
//! restricted record is in scope only of a grant scoped to that very record; otherwise ETREAT is
//! allowed as emergency access (it must be logged with a justification), and anything else is
//! denied.

use varde_storage::{Column, Store};

use crate::domain::*;
use crate::identifiers::{HprNumber, OrgNumber};
use crate::signing::TransactionId;
use crate::state::{StateError, StateView, keys};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequest {
    pub accessor: OrgNumber,
    pub person: Option<HprNumber>,
    pub record: RecordKey,
    pub purpose: Purpose,
    pub at_unix_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
    pub grant_used: Option<TransactionId>,
    /// Allowed only as emergency access.
    pub emergency: bool,
    /// The height the decision holds at.
    pub height: u64,
}

impl Decision {
    fn deny(reason: &str, height: u64) -> Self {
        Self {
            allowed: false,
            reason: reason.to_owned(),
            grant_used: None,
            emergency: false,
            height,
        }
    }
}

pub const REASON_UNKNOWN_RECORD: &str = "unknown record";
pub const REASON_RETRACTED: &str = "record retracted";
pub const REASON_BLOCKED: &str = "blocked by patient";
pub const REASON_CUSTODIAN: &str = "custodian's own record";
pub const REASON_GRANT: &str = "grant valid";
pub const REASON_EMERGENCY: &str = "emergency access";
pub const REASON_NO_GRANT: &str = "no valid grant in scope";

/// Decides `request` over the state in `view` at `height`.
pub fn check_access<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    request: &AccessRequest,
    height: u64,
) -> Result<Decision, StateError> {
    let record =
        view.get_value::<RecordPointer>(Column::Records, &keys::record(&request.record))?;
    decide(
        request,
        record.as_ref(),
        |record| {
            is_blocked(
                view,
                &record.subject,
                &request.accessor,
                request.person.as_ref(),
            )
        },
        |record| grants_of_subject(view, &record.subject),
        height,
    )
}

/// The rules of CheckAccess over the facts they need: the record (if any), whether a patient
/// block of the accessor or the person is in force, and the subject's grants (asked only when
/// the rules get that far). The node decides over its state; a light client over proven facts.
pub fn decide<E>(
    request: &AccessRequest,
    record: Option<&RecordPointer>,
    blocked: impl FnOnce(&RecordPointer) -> Result<bool, E>,
    grants: impl FnOnce(&RecordPointer) -> Result<Vec<Grant>, E>,
    height: u64,
) -> Result<Decision, E> {
    let Some(record) = record else {
        return Ok(Decision::deny(REASON_UNKNOWN_RECORD, height));
    };
    if record.retracted.is_some() {
        return Ok(Decision::deny(REASON_RETRACTED, height));
    }
    if blocked(record)? {
        return Ok(Decision::deny(REASON_BLOCKED, height));
    }
    if record.record.custodian == request.accessor {
        return Ok(Decision {
            allowed: true,
            reason: REASON_CUSTODIAN.to_owned(),
            grant_used: None,
            emergency: false,
            height,
        });
    }
    for grant in grants(record)? {
        if grant_covers(&grant, request, record).is_ok() {
            return Ok(Decision {
                allowed: true,
                reason: REASON_GRANT.to_owned(),
                grant_used: Some(grant.grant_id),
                emergency: false,
                height,
            });
        }
    }
    if request.purpose == Purpose::Etreat {
        return Ok(Decision {
            allowed: true,
            reason: REASON_EMERGENCY.to_owned(),
            grant_used: None,
            emergency: true,
            height,
        });
    }
    Ok(Decision::deny(REASON_NO_GRANT, height))
}

/// Whether the patient has an active block of the institution or the person.
pub fn is_blocked<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    subject: &SubjectPseudonym,
    accessor: &OrgNumber,
    person: Option<&HprNumber>,
) -> Result<bool, StateError> {
    any_block(view, subject, accessor, person, |block| {
        block.lifted_at_height.is_none()
    })
}

/// Whether a block of the institution or the person was in force at `at_unix_ms`: placed at or
/// before it and not lifted by then (block times). A logged read is judged this way, so a block
/// placed after the read does not flag it, and a block lifted before the read is logged still
/// does.
pub fn was_blocked_at<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    subject: &SubjectPseudonym,
    accessor: &OrgNumber,
    person: Option<&HprNumber>,
    at_unix_ms: i64,
) -> Result<bool, StateError> {
    any_block(view, subject, accessor, person, |block| {
        block.blocked_at_unix_ms <= at_unix_ms
            && block
                .lifted_at_unix_ms
                .is_none_or(|lifted| at_unix_ms < lifted)
    })
}

fn any_block<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    subject: &SubjectPseudonym,
    accessor: &OrgNumber,
    person: Option<&HprNumber>,
    in_force: impl Fn(&AccessBlock) -> bool,
) -> Result<bool, StateError> {
    let prefix = keys::with_prefix(keys::INDEX_BLOCKS_BY_SUBJECT, &[&subject.0]);
    for (key, _) in view.scan_all(Column::Indexes, &prefix)? {
        let block_id = &key[prefix.len()..];
        let Some(block) = view.get_value::<AccessBlock>(Column::AccessBlocks, block_id)? else {
            continue;
        };
        if !in_force(&block) {
            continue;
        }
        let hit = match &block.target {
            BlockTarget::Institution(org_number) => org_number == accessor,
            BlockTarget::Person(hpr_number) => Some(hpr_number) == person,
        };
        if hit {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Every grant ever issued for `subject`, in grant-id order.
pub fn grants_of_subject<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    subject: &SubjectPseudonym,
) -> Result<Vec<Grant>, StateError> {
    let prefix = keys::with_prefix(keys::INDEX_GRANTS_BY_SUBJECT, &[&subject.0]);
    let mut grants = Vec::new();
    for (key, _) in view.scan_all(Column::Indexes, &prefix)? {
        if let Some(grant) = view.get_value::<Grant>(Column::Grants, &key[prefix.len()..])? {
            grants.push(grant);
        }
    }
    Ok(grants)
}

/// Whether `grant` allows `request` on `record`; the reason it does not otherwise.
pub fn grant_covers(
    grant: &Grant,
    request: &AccessRequest,
    record: &RecordPointer,
) -> Result<(), &'static str> {
    let terms = &grant.terms;
    if terms.subject != record.subject {
        return Err("grant is for another subject");
    }
    if terms.grantee != request.accessor {
        return Err("grant is for another institution");
    }
    if let Some(person) = &terms.grantee_person {
        if request.person.as_ref() != Some(person) {
            return Err("grant is for another person");
        }
    }
    let in_scope = match &terms.scope {
        GrantScope::Record(key) => *key == record.record,
        GrantScope::Category(code) => {
            *code == record.category_code && record.confidentiality == Confidentiality::Normal
        }
        GrantScope::AllRecords => record.confidentiality == Confidentiality::Normal,
    };
    if !in_scope {
        return Err("record not in the grant's scope");
    }
    if !terms.purposes.contains(&request.purpose) {
        return Err("purpose not granted");
    }
    if request.at_unix_ms < terms.valid_from_unix_ms {
        return Err("grant not yet valid");
    }
    if request.at_unix_ms >= terms.valid_until_unix_ms {
        return Err("grant expired");
    }
    if let Some(revocation) = &grant.revoked {
        if request.at_unix_ms >= revocation.unix_ms {
            return Err("grant revoked");
        }
    }
    Ok(())
}
