//! Output: wire messages as JSON documents (bytes as lowercase hex, enums by their short names)
//! and as human-readable text.

use serde_json::{Value, json};
use varde_ledger::hex;
use varde_proto::v1;

use crate::exit::ExitKind;

/// Prints `document` as JSON, or the human text.
pub fn emit(json_output: bool, document: &Value, human: impl FnOnce() -> String) {
    if json_output {
        print_stdout(
            &serde_json::to_string_pretty(document).expect("JSON values always serialise"),
        );
    } else {
        let text = human();
        if !text.is_empty() {
            print_stdout(text.trim_end());
        }
    }
}

/// Writes a line to stdout; a closed pipe (`varde ... | head`) is not an error worth a panic.
fn print_stdout(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
}

/// Prints a failed command's error: always on stderr, and as a JSON document on stdout with
/// `--json` so that scripts get one document whatever happens.
pub fn print_error(error: &anyhow::Error, kind: ExitKind, json_output: bool) {
    let message = format!("{error:#}");
    eprintln!("error: {message}");
    if json_output {
        let document = json!({
            "error": { "kind": kind.name(), "exit_code": kind.code(), "message": message }
        });
        print_stdout(
            &serde_json::to_string_pretty(&document).expect("JSON values always serialise"),
        );
    }
}

/// Lowercase hex of `bytes` (empty string for no bytes).
pub fn hex_of(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Hex, or JSON null when the field is unset.
fn optional_hex(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        Value::Null
    } else {
        Value::String(hex::encode(bytes))
    }
}

fn optional_text(text: &str) -> Value {
    if text.is_empty() {
        Value::Null
    } else {
        Value::String(text.to_owned())
    }
}

/// An enum's protobuf name without its type prefix: `PURPOSE_OF_USE_TREAT` → `TREAT`.
fn short_name(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix).unwrap_or(full).to_owned()
}

pub fn purpose_name(value: i32) -> String {
    v1::PurposeOfUse::try_from(value).map_or_else(
        |_| format!("UNKNOWN({value})"),
        |purpose| short_name(purpose.as_str_name(), "PURPOSE_OF_USE_"),
    )
}

pub fn confidentiality_name(value: i32) -> String {
    v1::Confidentiality::try_from(value).map_or_else(
        |_| format!("UNKNOWN({value})"),
        |confidentiality| {
            short_name(confidentiality.as_str_name(), "CONFIDENTIALITY_").to_lowercase()
        },
    )
}

pub fn classification_name(value: i32) -> String {
    v1::AccessClassification::try_from(value).map_or_else(
        |_| format!("UNKNOWN({value})"),
        |classification| {
            short_name(classification.as_str_name(), "ACCESS_CLASSIFICATION_").to_lowercase()
        },
    )
}

pub fn rejection_name(value: i32) -> String {
    v1::RejectionReason::try_from(value).map_or_else(
        |_| format!("UNKNOWN({value})"),
        |reason| short_name(reason.as_str_name(), "REJECTION_REASON_").to_lowercase(),
    )
}

fn record_reference_json(record: Option<&v1::RecordReference>) -> Value {
    record.map_or(
        Value::Null,
        |record| json!({ "custodian": record.custodian_org_number, "record_id": record.record_id }),
    )
}

pub fn record_json(record: &v1::RecordPointer) -> Value {
    json!({
        "custodian": record.custodian_org_number,
        "record_id": record.record_id,
        "subject": hex_of(&record.subject_pseudonym),
        "category": record.category_code,
        "location": record.location_uri,
        "content_sha256": hex_of(&record.content_sha256),
        "confidentiality": confidentiality_name(record.confidentiality),
        "created_at_unix_ms": record.created_at_unix_ms,
        "version": record.version,
        "retracted": record.retracted,
        "retracted_at_height": record.retracted.then_some(record.retracted_at_height),
        "retraction_reason": record.retracted.then(|| record.retraction_reason.clone()),
        "last_transaction_id": hex_of(&record.last_transaction_id),
        "anchored_at_height": record.anchored_at_height,
    })
}

pub fn record_text(record: &v1::RecordPointer) -> String {
    format!(
        "{}/{} v{} {} {}{} subject {} at {}",
        record.custodian_org_number,
        record.record_id,
        record.version,
        record.category_code,
        confidentiality_name(record.confidentiality),
        if record.retracted { " RETRACTED" } else { "" },
        hex_of(&record.subject_pseudonym),
        record.location_uri,
    )
}

fn scope_json(scope: Option<&v1::GrantScope>) -> Value {
    match scope.and_then(|scope| scope.scope.as_ref()) {
        Some(v1::grant_scope::Scope::Record(record)) => {
            json!({ "record": record_reference_json(Some(record)) })
        }
        Some(v1::grant_scope::Scope::CategoryCode(code)) => json!({ "category": code }),
        Some(v1::grant_scope::Scope::AllRecords(_)) => json!({ "all_records": true }),
        None => Value::Null,
    }
}

fn basis_json(basis: Option<&v1::GrantBasis>) -> Value {
    match basis.and_then(|basis| basis.basis.as_ref()) {
        Some(v1::grant_basis::Basis::PatientConsent(consent)) => {
            json!({ "patient_consent": { "reference": optional_text(&consent.reference) } })
        }
        Some(v1::grant_basis::Basis::Statutory(statute)) => {
            json!({ "statutory": { "name": statute.name } })
        }
        None => Value::Null,
    }
}

pub fn grant_terms_json(terms: &v1::GrantAccess) -> Value {
    json!({
        "issuer": terms.issuer_org_number,
        "subject": hex_of(&terms.subject_pseudonym),
        "grantee": terms.grantee_org_number,
        "grantee_hpr": optional_text(&terms.grantee_hpr_number),
        "grantee_department": optional_text(&terms.grantee_department),
        "scope": scope_json(terms.scope.as_ref()),
        "purposes": terms.purposes.iter().map(|purpose| purpose_name(*purpose)).collect::<Vec<_>>(),
        "valid_from_unix_ms": terms.valid_from_unix_ms,
        "valid_until_unix_ms": terms.valid_until_unix_ms,
        "basis": basis_json(terms.basis.as_ref()),
    })
}

pub fn grant_json(grant: &v1::Grant) -> Value {
    json!({
        "grant_id": hex_of(&grant.grant_id),
        "terms": grant.terms.as_ref().map_or(Value::Null, grant_terms_json),
        "granted_at_height": grant.granted_at_height,
        "revoked": grant.revoked,
        "revoked_at_height": grant.revoked.then_some(grant.revoked_at_height),
        "revoked_at_unix_ms": grant.revoked.then_some(grant.revoked_at_unix_ms),
        "revocation_reason": grant.revoked.then(|| grant.revocation_reason.clone()),
    })
}

pub fn grant_text(grant: &v1::Grant) -> String {
    let Some(terms) = grant.terms.as_ref() else {
        return format!("grant {} (no terms)", hex_of(&grant.grant_id));
    };
    let purposes: Vec<String> = terms.purposes.iter().map(|p| purpose_name(*p)).collect();
    format!(
        "grant {} to {} by {} for {} valid [{}, {}){}",
        hex_of(&grant.grant_id),
        terms.grantee_org_number,
        terms.issuer_org_number,
        purposes.join(","),
        terms.valid_from_unix_ms,
        terms.valid_until_unix_ms,
        if grant.revoked { " REVOKED" } else { "" },
    )
}

pub fn log_access_json(report: &v1::LogAccess) -> Value {
    let basis = match report.basis.as_ref() {
        Some(v1::log_access::Basis::GrantId(grant_id)) => json!({ "grant_id": hex_of(grant_id) }),
        Some(v1::log_access::Basis::Emergency(emergency)) => {
            json!({ "emergency": { "justification": emergency.justification } })
        }
        None => Value::Null,
    };
    json!({
        "accessor": report.accessor_org_number,
        "accessor_hpr": report.accessor_hpr_number,
        "record": record_reference_json(report.record.as_ref()),
        "purpose": purpose_name(report.purpose),
        "accessed_at_unix_ms": report.accessed_at_unix_ms,
        "attestation_sha256": optional_hex(&report.attestation_sha256),
        "basis": basis,
    })
}

pub fn event_json(event: &v1::AccessEvent) -> Value {
    json!({
        "event_id": hex_of(&event.event_id),
        "report": event.report.as_ref().map_or(Value::Null, log_access_json),
        "subject": hex_of(&event.subject_pseudonym),
        "classification": classification_name(event.classification),
        "flagged": event.flagged,
        "reason": event.reason,
        "grant_id": optional_hex(&event.grant_id),
        "height": event.height,
        "accessor_institution_name": optional_text(&event.accessor_institution_name),
    })
}

pub fn receipt_json(receipt: &v1::Receipt) -> Value {
    let mut document = json!({
        "transaction_id": hex_of(&receipt.transaction_id),
        "height": receipt.height,
        "index": receipt.index,
    });
    let fields = document.as_object_mut().expect("built as an object");
    match receipt.outcome.as_ref() {
        Some(v1::receipt::Outcome::Applied(applied)) => {
            fields.insert("outcome".into(), "applied".into());
            if applied.classification != 0 {
                fields.insert(
                    "classification".into(),
                    classification_name(applied.classification).into(),
                );
            }
        }
        Some(v1::receipt::Outcome::Rejected(rejected)) => {
            fields.insert("outcome".into(), "rejected".into());
            fields.insert("reason".into(), rejection_name(rejected.reason).into());
            fields.insert("detail".into(), rejected.detail.clone().into());
        }
        None => {
            fields.insert("outcome".into(), Value::Null);
        }
    }
    document
}

pub fn receipt_text(receipt: &v1::Receipt) -> String {
    let outcome = match receipt.outcome.as_ref() {
        Some(v1::receipt::Outcome::Applied(applied)) if applied.classification != 0 => {
            format!(
                "applied (access classified {})",
                classification_name(applied.classification)
            )
        }
        Some(v1::receipt::Outcome::Applied(_)) => "applied".to_owned(),
        Some(v1::receipt::Outcome::Rejected(rejected)) => format!(
            "REJECTED: {} ({})",
            rejection_name(rejected.reason),
            rejected.detail
        ),
        None => "no outcome".to_owned(),
    };
    format!(
        "transaction {}\ncommitted at height {}, index {}: {}",
        hex_of(&receipt.transaction_id),
        receipt.height,
        receipt.index,
        outcome
    )
}

/// Whether a receipt says the ledger rejected the transaction.
pub fn receipt_rejected(receipt: &v1::Receipt) -> bool {
    matches!(receipt.outcome, Some(v1::receipt::Outcome::Rejected(_)))
}

/// A transaction body as JSON, for `--dry-run`.
pub fn body_json(body: &v1::TransactionBody) -> Value {
    use v1::transaction_body::Action;
    let (kind, action) = match body.action.as_ref() {
        Some(Action::AnchorRecord(anchor)) => (
            "anchor",
            json!({
                "custodian": anchor.custodian_org_number,
                "record_id": anchor.record_id,
                "subject": hex_of(&anchor.subject_pseudonym),
                "category": anchor.category_code,
                "location": anchor.location_uri,
                "content_sha256": hex_of(&anchor.content_sha256),
                "confidentiality": confidentiality_name(anchor.confidentiality),
                "created_at_unix_ms": anchor.created_at_unix_ms,
            }),
        ),
        Some(Action::SupersedeRecord(supersede)) => (
            "supersede",
            json!({
                "custodian": supersede.custodian_org_number,
                "record_id": supersede.record_id,
                "category": supersede.category_code,
                "location": supersede.location_uri,
                "content_sha256": hex_of(&supersede.content_sha256),
                "confidentiality": confidentiality_name(supersede.confidentiality),
                "created_at_unix_ms": supersede.created_at_unix_ms,
            }),
        ),
        Some(Action::RetractRecord(retract)) => (
            "retract",
            json!({
                "custodian": retract.custodian_org_number,
                "record_id": retract.record_id,
                "reason": retract.reason,
            }),
        ),
        Some(Action::GrantAccess(grant)) => ("grant", grant_terms_json(grant)),
        Some(Action::RevokeGrant(revoke)) => (
            "revoke",
            json!({
                "issuer": revoke.issuer_org_number,
                "grant_id": hex_of(&revoke.grant_id),
                "reason": revoke.reason,
            }),
        ),
        Some(Action::BlockAccess(block)) => {
            let (institution, hpr) = match block.target.as_ref() {
                Some(v1::block_access::Target::InstitutionOrgNumber(number)) => {
                    (Value::String(number.clone()), Value::Null)
                }
                Some(v1::block_access::Target::HprNumber(number)) => {
                    (Value::Null, Value::String(number.clone()))
                }
                None => (Value::Null, Value::Null),
            };
            (
                "block",
                json!({
                    "issuer": block.issuer_org_number,
                    "subject": hex_of(&block.subject_pseudonym),
                    "institution": institution,
                    "hpr": hpr,
                }),
            )
        }
        Some(Action::UnblockAccess(unblock)) => (
            "unblock",
            json!({
                "issuer": unblock.issuer_org_number,
                "block_id": hex_of(&unblock.block_id),
            }),
        ),
        Some(Action::LogAccess(log)) => ("log-access", log_access_json(log)),
        Some(Action::ReportMisbehaviour(report)) => (
            "report-misbehaviour",
            json!({ "evidence_bytes": report.evidence.as_ref().map(prost::Message::encoded_len) }),
        ),
        Some(Action::ProposeChange(propose)) => (
            "propose-change",
            json!({
                "proposer": propose.proposer_org_number,
                "change": change_json(propose.change.as_ref()),
                "description": change_text(propose.change.as_ref()),
                "effective_height": propose.effective_height,
                "approve_by_height": (propose.approve_by_height != 0).then_some(propose.approve_by_height),
            }),
        ),
        Some(Action::ApproveChange(approve)) => (
            "approve-change",
            json!({
                "approver": approve.approver_org_number,
                "proposal_id": hex_of(&approve.proposal_id),
            }),
        ),
        None => ("none", Value::Null),
    };
    json!({
        "chain_id": optional_text(&body.chain_id),
        "expires_at_height": (body.expires_at_height != 0).then_some(body.expires_at_height),
        "expires_at_unix_ms": (body.expires_at_unix_ms != 0).then_some(body.expires_at_unix_ms),
        "nonce": optional_hex(&body.nonce),
        "action": kind,
        "fields": action,
    })
}

/// A role by its genesis-file name: `validator`, `submitter`, `consent-authority`, `auditor`.
pub fn role_name(value: i32) -> String {
    v1::InstitutionRole::try_from(value).map_or_else(
        |_| format!("UNKNOWN({value})"),
        |role| {
            short_name(role.as_str_name(), "INSTITUTION_ROLE_")
                .to_lowercase()
                .replace('_', "-")
        },
    )
}

pub fn role_names(roles: &[i32]) -> Vec<String> {
    roles.iter().map(|role| role_name(*role)).collect()
}

pub fn member_json(member: &v1::Member) -> Value {
    json!({
        "org_number": member.org_number,
        "name": member.name,
        "roles": role_names(&member.roles),
        "public_keys": member.public_keys.iter().map(|key| hex_of(key)).collect::<Vec<_>>(),
        "validator_key": optional_hex(&member.validator_key),
    })
}

/// A member in words: number, name, roles and keys.
pub fn member_text(member: &v1::Member) -> String {
    let keys = if member.public_keys.is_empty() {
        "no submitting key".to_owned()
    } else {
        format!(
            "submitting key{} {}",
            if member.public_keys.len() == 1 {
                ""
            } else {
                "s"
            },
            member
                .public_keys
                .iter()
                .map(|key| hex_of(key))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let validator = if member.validator_key.is_empty() {
        String::new()
    } else {
        format!(", validator key {}", hex_of(&member.validator_key))
    };
    format!(
        "{} \"{}\" (roles {}; {keys}{validator})",
        member.org_number,
        member.name,
        role_names(&member.roles).join(", ")
    )
}

/// A governance change as JSON: `kind` (the `MembershipChange` field's name, with `-`) and its
/// fields.
pub fn change_json(change: Option<&v1::MembershipChange>) -> Value {
    use v1::membership_change::Change;
    let institution_key = |kind: &str, key: &v1::InstitutionKey| {
        json!({
            "kind": kind,
            "org_number": key.org_number,
            "public_key": hex_of(&key.public_key),
        })
    };
    match change.and_then(|change| change.change.as_ref()) {
        Some(Change::AddInstitution(member)) => {
            json!({ "kind": "add-institution", "institution": member_json(member) })
        }
        Some(Change::RemoveInstitution(org_number)) => {
            json!({ "kind": "remove-institution", "org_number": org_number })
        }
        Some(Change::UpdateInstitution(update)) => json!({
            "kind": "update-institution",
            "org_number": update.org_number,
            "name": update.name,
            "roles": role_names(&update.roles),
        }),
        Some(Change::AddSubmittingKey(key)) => institution_key("add-submitting-key", key),
        Some(Change::RevokeSubmittingKey(key)) => institution_key("revoke-submitting-key", key),
        Some(Change::AddValidator(key)) => institution_key("add-validator", key),
        Some(Change::RemoveValidator(org_number)) => {
            json!({ "kind": "remove-validator", "org_number": org_number })
        }
        Some(Change::RotateValidatorKey(key)) => institution_key("rotate-validator-key", key),
        None => json!({ "kind": Value::Null }),
    }
}

/// A governance change in words.
pub fn change_text(change: Option<&v1::MembershipChange>) -> String {
    use v1::membership_change::Change;
    match change.and_then(|change| change.change.as_ref()) {
        Some(Change::AddInstitution(member)) => {
            format!("add institution {}", member_text(member))
        }
        Some(Change::RemoveInstitution(org_number)) => {
            format!("remove institution {org_number}, with its keys and its validator, if any")
        }
        Some(Change::UpdateInstitution(update)) => format!(
            "update institution {}: name \"{}\", roles {}",
            update.org_number,
            update.name,
            role_names(&update.roles).join(", ")
        ),
        Some(Change::AddSubmittingKey(key)) => format!(
            "add submitting key {} to {}",
            hex_of(&key.public_key),
            key.org_number
        ),
        Some(Change::RevokeSubmittingKey(key)) => format!(
            "revoke submitting key {} of {}",
            hex_of(&key.public_key),
            key.org_number
        ),
        Some(Change::AddValidator(key)) => format!(
            "add a validator run by {} with consensus key {}",
            key.org_number,
            hex_of(&key.public_key)
        ),
        Some(Change::RemoveValidator(org_number)) => {
            format!("remove the validator of {org_number} from the set")
        }
        Some(Change::RotateValidatorKey(key)) => format!(
            "rotate the validator key of {} to {}",
            key.org_number,
            hex_of(&key.public_key)
        ),
        None => "no change".to_owned(),
    }
}

pub fn status_json(endpoint: &str, status: &v1::StatusResponse) -> Value {
    json!({
        "endpoint": endpoint,
        "chain_id": status.chain_id,
        "node_public_key": hex_of(&status.node_public_key),
        "height": status.height,
        "latest_block_hash": hex_of(&status.latest_block_hash),
        "latest_block_time_unix_ms": status.latest_block_time_unix_ms,
        "validator_count": status.validator_count,
        "version": status.version,
        "catching_up": status.catching_up,
        "round": status.round,
        "peers": status.peers,
        "mempool_transactions": status.mempool_transactions,
        "sync_target_height": status.sync_target_height,
        "blocks_committed": status.blocks_committed,
        "transactions_committed": status.transactions_committed,
        "commit_latency_p50_ms": status.commit_latency_p50_ms,
        "commit_latency_p99_ms": status.commit_latency_p99_ms,
        "rejected_transactions": status.rejected_transactions.iter().collect::<std::collections::BTreeMap<_, _>>(),
        "invalid_peer_messages": status.invalid_peer_messages,
        "connections_refused": status.connections_refused,
    })
}

/// One line per validator of a local network.
pub fn testnet_status_text(reports: &[varde_testnet::local::NodeReport]) -> String {
    let mut text = format!(
        "{:<3} {:<8} {:>7} {:>5} {:>5} {:>7} {:>9} {:>9}  {:<16} {}\n",
        "#",
        "state",
        "height",
        "round",
        "peers",
        "mempool",
        "p50 ms",
        "p99 ms",
        "last hash",
        "catching up"
    );
    for report in reports {
        match &report.status {
            Ok(status) => text.push_str(&format!(
                "{:<3} {:<8} {:>7} {:>5} {:>5} {:>7} {:>9} {:>9}  {:<16} {}\n",
                report.node.index,
                if report.node.is_byzantine() {
                    "byzant."
                } else {
                    "running"
                },
                status.height,
                status.round,
                status.peers,
                status.mempool_transactions,
                status.commit_latency_p50_ms,
                status.commit_latency_p99_ms,
                hex_of(&status.latest_block_hash)
                    .chars()
                    .take(16)
                    .collect::<String>(),
                if status.catching_up {
                    format!("yes, to {}", status.sync_target_height)
                } else {
                    "no".to_owned()
                },
            )),
            Err(error) => text.push_str(&format!(
                "{:<3} {:<8} {}\n",
                report.node.index,
                if report.running { "running" } else { "stopped" },
                error
            )),
        }
    }
    text
}

/// The reasons and counts of rejected transactions, e.g. `expired 2, duplicate 1`, or `none`.
fn rejections_text(status: &v1::StatusResponse) -> String {
    let mut reasons: Vec<_> = status.rejected_transactions.iter().collect();
    reasons.sort();
    if reasons.is_empty() {
        return "none".to_owned();
    }
    reasons
        .iter()
        .map(|(reason, count)| format!("{reason} {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn status_text(endpoint: &str, status: &v1::StatusResponse) -> String {
    format!(
        "node        {endpoint}\nchain id    {}\nnode key    {}\nheight      {} (round {})\nlatest hash {}\nblock time  {} (unix ms)\nvalidators  {}\npeers       {}\nmempool     {} transactions\ncommitted   {} blocks, {} transactions since start\nlatency     p50 {} ms, p99 {} ms (block time to commit)\nrejected    {}\npeer faults {} invalid messages, {} refused connections\nversion     {}\ncatching up {}",
        status.chain_id,
        hex_of(&status.node_public_key),
        status.height,
        status.round,
        hex_of(&status.latest_block_hash),
        status.latest_block_time_unix_ms,
        status.validator_count,
        status.peers,
        status.mempool_transactions,
        status.blocks_committed,
        status.transactions_committed,
        status.commit_latency_p50_ms,
        status.commit_latency_p99_ms,
        rejections_text(status),
        status.invalid_peer_messages,
        status.connections_refused,
        status.version,
        if status.catching_up {
            format!("yes, to height {}", status.sync_target_height)
        } else {
            "no".to_owned()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Enum values print by their short names, and unknown numbers do not panic.
    #[test]
    fn enum_names_are_short() {
        assert_eq!(purpose_name(v1::PurposeOfUse::Etreat as i32), "ETREAT");
        assert_eq!(
            confidentiality_name(v1::Confidentiality::Restricted as i32),
            "restricted"
        );
        assert_eq!(
            rejection_name(v1::RejectionReason::UnknownRecord as i32),
            "unknown_record"
        );
        assert_eq!(purpose_name(99), "UNKNOWN(99)");
    }

    // A rejected receipt renders its reason and counts as rejected; an applied one does not.
    #[test]
    fn receipts_render_their_outcome() {
        let rejected = v1::Receipt {
            transaction_id: vec![1; 32],
            height: 4,
            index: 0,
            outcome: Some(v1::receipt::Outcome::Rejected(v1::Rejected {
                reason: v1::RejectionReason::RecordExists as i32,
                detail: "record exists".into(),
            })),
        };
        assert!(receipt_rejected(&rejected));
        let document = receipt_json(&rejected);
        assert_eq!(document["outcome"], "rejected");
        assert_eq!(document["reason"], "record_exists");
        let applied = v1::Receipt {
            outcome: Some(v1::receipt::Outcome::Applied(v1::Applied::default())),
            ..rejected
        };
        assert!(!receipt_rejected(&applied));
        assert_eq!(receipt_json(&applied)["outcome"], "applied");
    }
}
