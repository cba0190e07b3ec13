//! Deterministic execution of one verified transaction over the state view. Changes go into the
//! view's pending layer (committed later as one batch per block); nothing is written directly.

use prost::Message;
use varde_consensus::{Ed25519Verifier, ValidatorSet};
use varde_storage::{Column, Store};

use crate::access::{self, AccessRequest};
use crate::consensus_wire;
use crate::domain::*;
use crate::membership::{Membership, Role};
use crate::replay::{self, ReplayLimits, ReplayRefusal};
use crate::signing::TransactionId;
use crate::state::{StateError, StateView, keys};
use crate::wire::VerifiedTransaction;

/// How long before the block time a logged read may have happened: 24 hours. Long enough for an
/// EHR that sends its access log in daily batches, or that waits out a network outage of hours;
/// short enough that a reader cannot backdate a read by days, to before a grant was revoked or a
/// patient's block was placed, and that a supervisor reading the log knows each read reached the
/// ledger within a day of happening.
pub const ACCESS_TIME_BEFORE_BLOCK_MAX_MS: i64 = 24 * 3_600_000;
/// How far after the block time a logged read may lie: 5 minutes of clock skew between the
/// reader's clock and the proposer's, whose block time is checked against validators' clocks.
pub const ACCESS_TIME_AFTER_BLOCK_MAX_MS: i64 = 5 * 60_000;

/// Where in the chain a transaction executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutionContext {
    pub height: u64,
    pub time_unix_ms: i64,
    pub index: u32,
}

/// Why `apply` stopped: a rule said no (a rejected receipt), or storage failed (propagated, so
/// that the node stops rather than commit a block computed over a failing store).
pub(crate) enum Failure {
    Rejected(RejectionReason, String),
    Storage(StateError),
}

impl From<StateError> for Failure {
    fn from(error: StateError) -> Self {
        Failure::Storage(error)
    }
}

pub(crate) fn reject<T>(reason: RejectionReason, detail: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::Rejected(reason, detail.into()))
}

/// Executes `transaction` on chain `chain_id`, returning its receipt. Storage failures
/// propagate; rule violations become rejected receipts.
pub fn execute<S: Store + ?Sized>(
    view: &mut StateView<'_, S>,
    chain_id: &str,
    membership: &Membership,
    limits: ReplayLimits,
    context: ExecutionContext,
    transaction: &VerifiedTransaction,
) -> Result<Receipt, StateError> {
    let receipt = |outcome| Receipt {
        transaction_id: transaction.id,
        height: context.height,
        index: context.index,
        outcome,
    };
    // One id, one receipt: an id that already has one (committed with any outcome, even a
    // refusal that left it unremembered, such as an expiry beyond the horizon) is a duplicate,
    // so it is never applied later while its first receipt is what GetTransaction shows.
    if view
        .get(Column::TransactionIndex, &transaction.id.0)?
        .is_some()
    {
        return Ok(receipt(Outcome::Rejected {
            reason: RejectionReason::Duplicate,
            detail: "this transaction was already committed".to_owned(),
        }));
    }
    let expiry = transaction.body.expiry;
    match replay::check(
        view,
        limits,
        &transaction.id,
        &expiry,
        context.height,
        context.time_unix_ms,
    )? {
        Ok(()) => {}
        Err(refusal) => {
            let (reason, detail) = match refusal {
                ReplayRefusal::Expired => (
                    RejectionReason::Expired,
                    "the transaction's expiry has passed",
                ),
                ReplayRefusal::TooFar => (
                    RejectionReason::ExpiryTooFar,
                    "the expiry lies beyond the horizon",
                ),
                ReplayRefusal::Duplicate => (
                    RejectionReason::Duplicate,
                    "this transaction was already committed",
                ),
            };
            return Ok(receipt(Outcome::Rejected {
                reason,
                detail: detail.to_owned(),
            }));
        }
    }
    // From here the id is remembered whatever the outcome, so a rejected transaction is not
    // re-executed either.
    replay::remember(view, &transaction.id, &expiry);
    let outcome = match apply(view, chain_id, membership, context, transaction) {
        Ok(classification) => Outcome::Applied { classification },
        Err(Failure::Rejected(reason, detail)) => Outcome::Rejected { reason, detail },
        Err(Failure::Storage(error)) => return Err(error),
    };
    Ok(receipt(outcome))
}

/// Rule checks and effects. The view is only changed once every check has passed.
fn apply<S: Store + ?Sized>(
    view: &mut StateView<'_, S>,
    chain_id: &str,
    membership: &Membership,
    context: ExecutionContext,
    transaction: &VerifiedTransaction,
) -> Result<Option<AccessClassification>, Failure> {
    let action = &transaction.body.action;
    let Some(signer) = membership.signer_for(&transaction.signer, action) else {
        if let Some(validator) = membership.validator_owner_of_key(&transaction.signer) {
            return reject(
                RejectionReason::UnknownSigner,
                format!(
                    "the signer's key is the validator key of {}, which signs only consensus \
                     messages and misbehaviour reports; sign with one of its public_keys",
                    validator.org_number
                ),
            );
        }
        return reject(
            RejectionReason::UnknownSigner,
            "the signer's key is not registered to any member",
        );
    };
    if let Some(actor) = action.actor().filter(|actor| **actor != signer.org_number) {
        let reason = match action {
            Action::AnchorRecord(_) | Action::SupersedeRecord(_) | Action::RetractRecord { .. } => {
                RejectionReason::NotCustodian
            }
            _ => RejectionReason::SignerNotInstitution,
        };
        return reject(
            reason,
            format!(
                "the signer's key belongs to {}, not to {actor}",
                signer.org_number
            ),
        );
    }
    let id = transaction.id;
    match action {
        Action::AnchorRecord(content) => {
            require_role(signer.has_role(Role::Submitter), "submitter")?;
            let key = keys::record(&content.record);
            if read::<RecordPointer, _>(view, Column::Records, &key)?.is_some() {
                return reject(
                    RejectionReason::RecordExists,
                    "this custodian already has a record with that id",
                );
            }
            let subject = content
                .subject
                .expect("an anchor always carries a subject (wire decoding)");
            let record = RecordPointer {
                record: content.record.clone(),
                subject,
                category_code: content.category_code.clone(),
                location_uri: content.location_uri.clone(),
                content_sha256: content.content_sha256,
                confidentiality: content.confidentiality,
                created_at_unix_ms: content.created_at_unix_ms,
                version: 1,
                retracted: None,
                last_transaction_id: id,
                anchored_at_height: context.height,
            };
            view.put_value(Column::Records, key, &record);
            view.put(
                Column::Indexes,
                keys::records_by_subject(&subject, &content.record),
                Vec::new(),
            );
            Ok(None)
        }
        Action::SupersedeRecord(content) => {
            require_role(signer.has_role(Role::Submitter), "submitter")?;
            let key = keys::record(&content.record);
            let mut record = existing_record(view, &key)?;
            record.category_code = content.category_code.clone();
            record.location_uri = content.location_uri.clone();
            record.content_sha256 = content.content_sha256;
            record.confidentiality = content.confidentiality;
            record.created_at_unix_ms = content.created_at_unix_ms;
            record.version = record.version.saturating_add(1);
            record.last_transaction_id = id;
            view.put_value(Column::Records, key, &record);
            Ok(None)
        }
        Action::RetractRecord {
            record: record_key,
            reason,
        } => {
            require_role(signer.has_role(Role::Submitter), "submitter")?;
            let key = keys::record(record_key);
            let mut record = existing_record(view, &key)?;
            record.retracted = Some(Retraction {
                height: context.height,
                reason: reason.clone(),
            });
            record.last_transaction_id = id;
            view.put_value(Column::Records, key, &record);
            Ok(None)
        }
        Action::GrantAccess(terms) => {
            let consent_authority = signer.has_role(Role::ConsentAuthority);
            if !consent_authority && !signer.has_role(Role::Submitter) {
                return reject(
                    RejectionReason::MissingRole,
                    "issuing grants needs the submitter or consent-authority role",
                );
            }
            if membership.institution(&terms.grantee).is_none() {
                return reject(
                    RejectionReason::UnknownInstitution,
                    "the grantee is not a member institution",
                );
            }
            match &terms.scope {
                GrantScope::Record(record_key) => {
                    let custodian = record_key.custodian == terms.issuer;
                    // Decided from the body alone, before any lookup: a non-custodian learns
                    // nothing about the record from this refusal.
                    if !consent_authority && !custodian {
                        return reject(
                            RejectionReason::NotAuthorisedIssuer,
                            "only the record's custodian or a consent authority may grant access to it",
                        );
                    }
                    let record =
                        read::<RecordPointer, _>(view, Column::Records, &keys::record(record_key))?;
                    match record {
                        Some(record) if custodian => {
                            if record.retracted.is_some() {
                                return reject(
                                    RejectionReason::RecordRetracted,
                                    "the record has been retracted",
                                );
                            }
                            if record.subject != terms.subject {
                                return reject(
                                    RejectionReason::SubjectMismatch,
                                    "the record belongs to another subject",
                                );
                            }
                        }
                        None if custodian => {
                            return reject(
                                RejectionReason::UnknownRecord,
                                "no such record at this custodian",
                            );
                        }
                        // A consent authority that is not the custodian gets one answer for an
                        // unknown, retracted or another subject's record, so that the refusal
                        // does not tell whether the record exists or whose it is.
                        Some(record)
                            if record.retracted.is_none() && record.subject == terms.subject => {}
                        _ => {
                            return reject(
                                RejectionReason::UnknownRecord,
                                "no record of this subject with that id at that custodian",
                            );
                        }
                    }
                }
                GrantScope::Category(_) | GrantScope::AllRecords => {
                    if !consent_authority {
                        return reject(
                            RejectionReason::NotAuthorisedIssuer,
                            "only a consent authority may grant access by category or to all records",
                        );
                    }
                }
            }
            let grant = Grant {
                grant_id: id,
                terms: terms.clone(),
                granted_at_height: context.height,
                revoked: None,
            };
            view.put_value(Column::Grants, id.0.to_vec(), &grant);
            view.put(
                Column::Indexes,
                keys::grants_by_subject(&terms.subject, &id),
                Vec::new(),
            );
            view.put(
                Column::Indexes,
                keys::grants_by_grantee(&terms.grantee, &id),
                Vec::new(),
            );
            Ok(None)
        }
        Action::RevokeGrant {
            issuer,
            grant_id,
            reason,
        } => {
            let Some(mut grant) = read::<Grant, _>(view, Column::Grants, &grant_id.0)? else {
                return reject(
                    RejectionReason::UnknownGrant,
                    format!("no grant {grant_id}"),
                );
            };
            if grant.terms.issuer != *issuer && !signer.has_role(Role::ConsentAuthority) {
                return reject(
                    RejectionReason::NotAuthorisedIssuer,
                    "only the grant's issuer or a consent authority may revoke it",
                );
            }
            if grant.revoked.is_some() {
                return reject(
                    RejectionReason::GrantAlreadyRevoked,
                    format!("grant {grant_id} is already revoked"),
                );
            }
            grant.revoked = Some(Revocation {
                height: context.height,
                unix_ms: context.time_unix_ms,
                reason: reason.clone(),
            });
            view.put_value(Column::Grants, grant_id.0.to_vec(), &grant);
            Ok(None)
        }
        Action::BlockAccess {
            issuer,
            subject,
            target,
        } => {
            require_role(signer.has_role(Role::ConsentAuthority), "consent-authority")?;
            let block = AccessBlock {
                block_id: id,
                issuer: issuer.clone(),
                subject: *subject,
                target: target.clone(),
                blocked_at_height: context.height,
                lifted_at_height: None,
                blocked_at_unix_ms: context.time_unix_ms,
                lifted_at_unix_ms: None,
            };
            view.put_value(Column::AccessBlocks, id.0.to_vec(), &block);
            view.put(
                Column::Indexes,
                keys::blocks_by_subject(subject, &id),
                Vec::new(),
            );
            Ok(None)
        }
        Action::UnblockAccess { block_id, .. } => {
            require_role(signer.has_role(Role::ConsentAuthority), "consent-authority")?;
            let Some(mut block) = read::<AccessBlock, _>(view, Column::AccessBlocks, &block_id.0)?
            else {
                return reject(
                    RejectionReason::UnknownBlock,
                    format!("no block {block_id}"),
                );
            };
            if block.lifted_at_height.is_some() {
                return reject(
                    RejectionReason::BlockAlreadyLifted,
                    format!("block {block_id} is already lifted"),
                );
            }
            block.lifted_at_height = Some(context.height);
            block.lifted_at_unix_ms = Some(context.time_unix_ms);
            view.put_value(Column::AccessBlocks, block_id.0.to_vec(), &block);
            Ok(None)
        }
        Action::LogAccess(report) => {
            require_role(signer.has_role(Role::Submitter), "submitter")?;
            check_access_time(report.accessed_at_unix_ms, context.time_unix_ms)?;
            let record = existing_record_any(view, &keys::record(&report.record))?;
            let (classification, reason, grant_id) = classify(view, report, &record)?;
            let event = AccessEvent {
                event_id: id,
                report: report.clone(),
                subject: record.subject,
                classification,
                flagged: classification != AccessClassification::Authorised,
                reason,
                grant_id,
                height: context.height,
            };
            view.put_value(Column::AccessEvents, id.0.to_vec(), &event);
            let (height, index) = (context.height, context.index);
            view.put(
                Column::Indexes,
                keys::events_by_subject(&record.subject, height, index),
                id.0.to_vec(),
            );
            view.put(
                Column::Indexes,
                keys::events_by_record(&report.record, height, index),
                id.0.to_vec(),
            );
            view.put(
                Column::Indexes,
                keys::events_by_accessor(&report.accessor, height, index),
                id.0.to_vec(),
            );
            Ok(Some(classification))
        }
        Action::ProposeChange(proposal) => {
            crate::governance::propose(view, membership, signer, context, id, proposal)?;
            Ok(None)
        }
        Action::ApproveChange { proposal_id, .. } => {
            crate::governance::approve(view, membership, signer, context, id, proposal_id)?;
            Ok(None)
        }
        Action::ReportMisbehaviour(evidence) => {
            require_role(signer.has_role(Role::Validator), "validator")?;
            let validators = evidence_validator_set(view, membership, evidence)?;
            if let Err(error) = evidence.verify(chain_id, &validators, &Ed25519Verifier) {
                return reject(RejectionReason::InvalidEvidence, error.to_string());
            }
            let slot = MisbehaviourSlot::of(evidence);
            // A verified evidence's validator is in the set; checked again rather than assumed.
            let Some(offender) = validators.key(slot.validator_index) else {
                return reject(
                    RejectionReason::InvalidEvidence,
                    format!("validator {} is not in the set", slot.validator_index),
                );
            };
            let key = keys::misbehaviour(&slot);
            if view.get(Column::Meta, &key)?.is_some() {
                return reject(
                    RejectionReason::EvidenceAlreadyRecorded,
                    format!(
                        "the {} of validator {} at height {} round {} is already recorded",
                        misbehaviour_name(slot.kind),
                        slot.validator_index,
                        slot.height,
                        slot.round
                    ),
                );
            }
            let record = Misbehaviour {
                offender: offender.to_bytes(),
                slot,
                recorded_at_height: context.height,
                reporter: signer.org_number.clone(),
                report_id: id,
                evidence: consensus_wire::evidence_to_wire(evidence).encode_to_vec(),
            };
            view.put_value(Column::Meta, key, &record);
            Ok(None)
        }
    }
}

/// The validator set of the evidence's height, in the order the node gives its consensus engine
/// (ascending key bytes), so that validator indexes in evidence mean the same validators: from the
/// stored history, or the membership in force for a ledger that keeps none.
fn evidence_validator_set<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    membership: &Membership,
    evidence: &varde_consensus::Evidence,
) -> Result<ValidatorSet, Failure> {
    let height = MisbehaviourSlot::of(evidence).height;
    let keys = match crate::governance::validator_set_at(view, height)? {
        Some(record) => record.keys,
        None => membership.validator_keys(),
    };
    // The node refuses to start with an unusable set; no evidence can verify against one.
    crate::governance::consensus_set(&keys)
        .or_else(|detail| reject(RejectionReason::InvalidEvidence, detail))
}

/// A logged read must lie in `[block time − 24 h, block time + 5 min]` (both ends included). Only
/// the block time counts, never a clock, so every validator decides alike. Within the window the
/// read is classified at its reported time.
fn check_access_time(accessed_at_unix_ms: i64, block_time_unix_ms: i64) -> Result<(), Failure> {
    let earliest = block_time_unix_ms.saturating_sub(ACCESS_TIME_BEFORE_BLOCK_MAX_MS);
    let latest = block_time_unix_ms.saturating_add(ACCESS_TIME_AFTER_BLOCK_MAX_MS);
    if (earliest..=latest).contains(&accessed_at_unix_ms) {
        return Ok(());
    }
    let position = if accessed_at_unix_ms < earliest {
        format!(
            "{} ms before the block time {block_time_unix_ms}",
            block_time_unix_ms.abs_diff(accessed_at_unix_ms)
        )
    } else {
        format!(
            "{} ms after the block time {block_time_unix_ms}",
            accessed_at_unix_ms.abs_diff(block_time_unix_ms)
        )
    };
    reject(
        RejectionReason::AccessTimeOutsideWindow,
        format!(
            "accessed_at_unix_ms {accessed_at_unix_ms} lies {position}; a read is logged at most \
             24 hours after it happened and at most 5 minutes ahead of the block time \
             (window [{earliest}, {latest}])"
        ),
    )
}

fn misbehaviour_name(kind: MisbehaviourKind) -> &'static str {
    match kind {
        MisbehaviourKind::DuplicatePrevote => "duplicate prevote",
        MisbehaviourKind::DuplicatePrecommit => "duplicate precommit",
        MisbehaviourKind::DuplicateProposal => "duplicate proposal",
    }
}

/// Classifies a reported read at its reported time: blocks in force then hold first (even in an
/// emergency), then the named grant, then emergency, then the custodian's own reads; anything else
/// is unauthorised.
fn classify<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    report: &AccessReport,
    record: &RecordPointer,
) -> Result<(AccessClassification, String, Option<TransactionId>), Failure> {
    let blocked = access::was_blocked_at(
        view,
        &record.subject,
        &report.accessor,
        Some(&report.accessor_person),
        report.accessed_at_unix_ms,
    )?;
    if blocked {
        return Ok((
            AccessClassification::Unauthorised,
            access::REASON_BLOCKED.to_owned(),
            None,
        ));
    }
    let request = AccessRequest {
        accessor: report.accessor.clone(),
        person: Some(report.accessor_person.clone()),
        record: report.record.clone(),
        purpose: report.purpose,
        at_unix_ms: report.accessed_at_unix_ms,
    };
    Ok(match &report.basis {
        AccessBasis::Grant(grant_id) => {
            match read::<Grant, _>(view, Column::Grants, &grant_id.0)? {
                None => (
                    AccessClassification::Unauthorised,
                    "unknown grant".to_owned(),
                    None,
                ),
                Some(grant) => match access::grant_covers(&grant, &request, record) {
                    Ok(()) => (
                        AccessClassification::Authorised,
                        access::REASON_GRANT.to_owned(),
                        Some(*grant_id),
                    ),
                    Err(why) => (AccessClassification::Unauthorised, why.to_owned(), None),
                },
            }
        }
        AccessBasis::Emergency { .. } => (
            AccessClassification::Emergency,
            access::REASON_EMERGENCY.to_owned(),
            None,
        ),
        AccessBasis::None if record.record.custodian == report.accessor => (
            AccessClassification::Authorised,
            access::REASON_CUSTODIAN.to_owned(),
            None,
        ),
        AccessBasis::None => (
            AccessClassification::Unauthorised,
            "no grant or emergency named".to_owned(),
            None,
        ),
    })
}

fn require_role(has_role: bool, role: &str) -> Result<(), Failure> {
    if has_role {
        Ok(())
    } else {
        reject(
            RejectionReason::MissingRole,
            format!("this action needs the {role} role"),
        )
    }
}

fn read<T: crate::stored::StoredValue, S: Store + ?Sized>(
    view: &StateView<'_, S>,
    column: Column,
    key: &[u8],
) -> Result<Option<T>, Failure> {
    Ok(view.get_value(column, key)?)
}

fn existing_record_any<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    key: &[u8],
) -> Result<RecordPointer, Failure> {
    match read::<RecordPointer, _>(view, Column::Records, key)? {
        Some(record) => Ok(record),
        None => reject(
            RejectionReason::UnknownRecord,
            "no such record at this custodian",
        ),
    }
}

fn existing_record<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    key: &[u8],
) -> Result<RecordPointer, Failure> {
    let record = existing_record_any(view, key)?;
    if record.retracted.is_some() {
        return reject(
            RejectionReason::RecordRetracted,
            "the record has been retracted",
        );
    }
    Ok(record)
}
