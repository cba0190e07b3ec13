//! Who may see what: the read side of Varde's access model. One rule decides, for every way that
//! ledger content leaves a node (queries, blocks, transactions, events, proofs), whether a caller
//! sees an item; the gRPC layer only asks.
//!
//! The rule (ARCHITECTURE.md, "Who sees what"):
//! - an **auditor** sees everything;
//! - a **consent authority** acts for patients (the patient portal): it sees every item about a
//!   subject when its request names that subject (a listing or stream filtered by the subject's
//!   pseudonym, which only someone who knows the patient's identity and the network key can
//!   derive), and otherwise what any institution sees;
//! - any institution sees a **record** it holds (custodian), or one that a grant to it covers
//!   now (not revoked, inside its window, in scope) unless the patient has blocked the institution
//!   or the grant's person; a **grant** it issued or received; a patient **block** it issued; an
//!   **access event** of its own reads or of reads of its records;
//! - a committed **transaction body** is seen by the parties of what it applied (as above, for
//!   the item it created or changed), and always by the institution that signed it; a rejected
//!   transaction only by its signer; a misbehaviour report by every member.
//!
//! Headers, commit certificates, transaction ids, positions and receipt codes are no personal data
//! and go to any member, so that proofs work for everyone.

use varde_storage::{Column, Store};

use crate::access::{self, AccessRequest};
use crate::domain::*;
use crate::identifiers::OrgNumber;
use crate::membership::{Institution, Role};
use crate::state::{StateError, StateView, keys};

/// The caller of a read, as the rule sees it.
#[derive(Debug, Clone)]
pub struct Viewer<'a> {
    pub institution: &'a Institution,
    /// The subject the request names (a listing or stream filtered by subject), if any.
    pub named_subject: Option<SubjectPseudonym>,
    /// The time grants are judged at (the serving node's clock).
    pub now_unix_ms: i64,
}

impl<'a> Viewer<'a> {
    pub fn new(institution: &'a Institution, now_unix_ms: i64) -> Self {
        Self {
            institution,
            named_subject: None,
            now_unix_ms,
        }
    }

    pub fn naming_subject(mut self, subject: SubjectPseudonym) -> Self {
        self.named_subject = Some(subject);
        self
    }

    pub fn is_auditor(&self) -> bool {
        self.institution.has_role(Role::Auditor)
    }

    fn is(&self, org_number: &OrgNumber) -> bool {
        self.institution.org_number == *org_number
    }

    /// Sees everything about `subject`: an auditor, or a consent authority that named it.
    pub fn acts_for(&self, subject: &SubjectPseudonym) -> bool {
        self.is_auditor()
            || (self.institution.has_role(Role::ConsentAuthority)
                && self.named_subject.as_ref() == Some(subject))
    }

    /// May list items by `org_number` (a custodian's records, a grantee's grants, an accessor's
    /// reads): that institution itself, or an auditor.
    pub fn may_list_for(&self, org_number: &OrgNumber) -> bool {
        self.is_auditor() || self.is(org_number)
    }
}

/// Whether `viewer` may see `record`.
pub fn may_see_record<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    viewer: &Viewer<'_>,
    record: &RecordPointer,
) -> Result<bool, StateError> {
    if viewer.acts_for(&record.subject) || viewer.is(&record.record.custodian) {
        return Ok(true);
    }
    for grant in access::grants_of_subject(view, &record.subject)? {
        if grant.terms.grantee == viewer.institution.org_number
            && grant_opens_record(view, &grant, record, viewer.now_unix_ms)?
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether `grant` covers `record` at `at_unix_ms` for one of its purposes, with no patient block
/// of its grantee (or its person) in force.
fn grant_opens_record<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    grant: &Grant,
    record: &RecordPointer,
    at_unix_ms: i64,
) -> Result<bool, StateError> {
    let covers = grant.terms.purposes.iter().any(|purpose| {
        let request = AccessRequest {
            accessor: grant.terms.grantee.clone(),
            person: grant.terms.grantee_person.clone(),
            record: record.record.clone(),
            purpose: *purpose,
            at_unix_ms,
        };
        access::grant_covers(grant, &request, record).is_ok()
    });
    if !covers {
        return Ok(false);
    }
    let blocked = access::is_blocked(
        view,
        &record.subject,
        &grant.terms.grantee,
        grant.terms.grantee_person.as_ref(),
    )?;
    Ok(!blocked)
}

/// Whether `viewer` may see `grant`: its issuer and grantee.
pub fn may_see_grant(viewer: &Viewer<'_>, grant: &Grant) -> bool {
    viewer.acts_for(&grant.terms.subject)
        || viewer.is(&grant.terms.grantee)
        || viewer.is(&grant.terms.issuer)
}

/// Whether `viewer` may see a patient's block: the consent authority that issued it.
pub fn may_see_access_block(viewer: &Viewer<'_>, block: &AccessBlock) -> bool {
    viewer.acts_for(&block.subject) || viewer.is(&block.issuer)
}

/// Whether `viewer` may see an access event: the accessor and the record's custodian.
pub fn may_see_access_event(viewer: &Viewer<'_>, event: &AccessEvent) -> bool {
    viewer.acts_for(&event.subject)
        || viewer.is(&event.report.accessor)
        || viewer.is(&event.report.record.custodian)
}

/// What decides who sees a committed transaction's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Rejected,
}

/// Whether `viewer` may see the body of a committed (or pending) transaction with `action`,
/// signed by `signer`. Items are looked up in the state the node holds now: a record, grant or
/// block never changes subject or parties, so the current state answers for every height.
pub fn may_see_transaction<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    viewer: &Viewer<'_>,
    signer: Option<&Institution>,
    action: &Action,
    outcome: Outcome,
) -> Result<bool, StateError> {
    if viewer.is_auditor() || signer.is_some_and(|signer| viewer.is(&signer.org_number)) {
        return Ok(true);
    }
    // Misbehaviour and governance name validators and members only, which every member may know.
    if matches!(
        action,
        Action::ReportMisbehaviour(_) | Action::ProposeChange(_) | Action::ApproveChange { .. }
    ) {
        return Ok(true);
    }
    if outcome == Outcome::Rejected {
        return Ok(false);
    }
    match action {
        Action::AnchorRecord(content) | Action::SupersedeRecord(content) => {
            record_visible(view, viewer, &content.record)
        }
        Action::RetractRecord { record, .. } => record_visible(view, viewer, record),
        Action::GrantAccess(terms) => Ok(viewer.acts_for(&terms.subject)
            || viewer.is(&terms.grantee)
            || viewer.is(&terms.issuer)),
        Action::RevokeGrant { grant_id, .. } => Ok(view
            .get_value::<Grant>(Column::Grants, &grant_id.0)?
            .is_some_and(|grant| may_see_grant(viewer, &grant))),
        Action::BlockAccess {
            subject, issuer, ..
        } => Ok(viewer.acts_for(subject) || viewer.is(issuer)),
        Action::UnblockAccess { block_id, .. } => Ok(view
            .get_value::<AccessBlock>(Column::AccessBlocks, &block_id.0)?
            .is_some_and(|block| may_see_access_block(viewer, &block))),
        Action::LogAccess(report) => {
            if viewer.is(&report.accessor) || viewer.is(&report.record.custodian) {
                return Ok(true);
            }
            Ok(stored_record(view, &report.record)?
                .is_some_and(|record| viewer.acts_for(&record.subject)))
        }
        Action::ReportMisbehaviour(_) | Action::ProposeChange(_) | Action::ApproveChange { .. } => {
            Ok(true)
        }
    }
}

fn stored_record<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    key: &RecordKey,
) -> Result<Option<RecordPointer>, StateError> {
    view.get_value::<RecordPointer>(Column::Records, &keys::record(key))
}

fn record_visible<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    viewer: &Viewer<'_>,
    key: &RecordKey,
) -> Result<bool, StateError> {
    if viewer.is(&key.custodian) {
        return Ok(true);
    }
    match stored_record(view, key)? {
        Some(record) => may_see_record(view, viewer, &record),
        None => Ok(false),
    }
}

/// The subject a transaction is about, from its body or the item it changed; `None` for a
/// misbehaviour report or governance, or for an item this state does not hold.
pub fn subject_of<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    action: &Action,
) -> Result<Option<SubjectPseudonym>, StateError> {
    Ok(match action {
        Action::AnchorRecord(content) => match content.subject {
            Some(subject) => Some(subject),
            None => stored_record(view, &content.record)?.map(|record| record.subject),
        },
        Action::SupersedeRecord(content) => {
            stored_record(view, &content.record)?.map(|record| record.subject)
        }
        Action::RetractRecord { record, .. } => {
            stored_record(view, record)?.map(|record| record.subject)
        }
        Action::LogAccess(report) => {
            stored_record(view, &report.record)?.map(|record| record.subject)
        }
        Action::GrantAccess(terms) => Some(terms.subject),
        Action::RevokeGrant { grant_id, .. } => view
            .get_value::<Grant>(Column::Grants, &grant_id.0)?
            .map(|grant| grant.terms.subject),
        Action::BlockAccess { subject, .. } => Some(*subject),
        Action::UnblockAccess { block_id, .. } => view
            .get_value::<AccessBlock>(Column::AccessBlocks, &block_id.0)?
            .map(|block| block.subject),
        Action::ReportMisbehaviour(_) | Action::ProposeChange(_) | Action::ApproveChange { .. } => {
            None
        }
    })
}

/// What CheckAccess may tell `viewer` about `request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckAccessAnswer {
    /// The whole decision with its reason: an auditor, a consent authority, the record's
    /// custodian, or the accessor about a record it may see.
    Full,
    /// The accessor asking about a record it may not see: a denial that says nothing of whether
    /// the record, a grant or a patient block exists.
    Opaque,
    /// Anyone else: refused.
    Refused,
}

pub const REASON_OPAQUE_DENIAL: &str = "no valid grant in scope";

/// Who may ask CheckAccess, and how much the answer may say.
pub fn check_access_answer<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    viewer: &Viewer<'_>,
    request: &AccessRequest,
) -> Result<CheckAccessAnswer, StateError> {
    if viewer.is_auditor()
        || viewer.institution.has_role(Role::ConsentAuthority)
        || viewer.is(&request.record.custodian)
    {
        return Ok(CheckAccessAnswer::Full);
    }
    if !viewer.is(&request.accessor) {
        return Ok(CheckAccessAnswer::Refused);
    }
    let Some(record) = stored_record(view, &request.record)? else {
        return Ok(CheckAccessAnswer::Opaque);
    };
    if access::is_blocked(
        view,
        &record.subject,
        &request.accessor,
        request.person.as_ref(),
    )? {
        return Ok(CheckAccessAnswer::Opaque);
    }
    Ok(if may_see_record(view, viewer, &record)? {
        CheckAccessAnswer::Full
    } else {
        CheckAccessAnswer::Opaque
    })
}

/// The decision as `answer` lets it be told.
pub fn redact_decision(decision: access::Decision, answer: CheckAccessAnswer) -> access::Decision {
    match answer {
        CheckAccessAnswer::Full => decision,
        CheckAccessAnswer::Opaque | CheckAccessAnswer::Refused => access::Decision {
            allowed: false,
            reason: REASON_OPAQUE_DENIAL.to_owned(),
            grant_used: None,
            emergency: false,
            height: decision.height,
        },
    }
}
