//! FHIR R4 out: record pointers as DocumentReference, grants and patient blocks as Consent, access
//! events as AuditEvent, in one `collection` Bundle, for a subject, a height range, or both.
//!
//! What goes in is decided by the listings' own rule: a subject's items come from the same
//! listings that `varde.v1.Query` serves ([`crate::query`]) with the same predicates
//! ([`crate::visibility`]), and a height range's items are looked up from the transactions applied
//! in those blocks and then judged by the same predicates. An export never holds an item, or a
//! field of one, that the caller could not list: a retraction's or a revocation's reason is not
//! in the listings, so it is not exported either.
//!
//! The mapping (identifier systems, status rules, extensions) is in the crate's README ("FHIR
//! export"). Resources are `serde_json::Value`s: no FHIR model is a dependency of the ledger; the
//! tests parse every resource with a strict R4 model.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use varde_proto::v1;
use varde_storage::{Column, Store};

use crate::Ledger;
use crate::domain::*;
use crate::identifiers::{HprNumber, OrgNumber};
use crate::page_token::PageTokenKey;
use crate::query::{self, Page, PageRequest, QueryError};
use crate::signing::TransactionId;
use crate::state::{StateError, StateView, keys};
use crate::visibility::{self, Viewer};
use crate::wire;

/// Norwegian organisation numbers (Enhetsregisteret).
pub const SYSTEM_ORGANISATION_NUMBER: &str = "urn:oid:2.16.578.1.12.4.1.4.101";
/// Norwegian health-personnel (HPR) numbers.
pub const SYSTEM_HPR_NUMBER: &str = "urn:oid:2.16.578.1.12.4.1.4.4";
/// A subject's 32-byte pseudonym, lowercase hex: the only way a patient appears.
pub const SYSTEM_SUBJECT_PSEUDONYM: &str = "urn:varde:subject-pseudonym";
/// HL7 PurposeOfUse codes.
pub const SYSTEM_PURPOSE_OF_USE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
pub const SYSTEM_CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
pub const SYSTEM_ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
pub const SYSTEM_PARTICIPATION_TYPE: &str =
    "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
pub const SYSTEM_CONSENT_SCOPE: &str = "http://terminology.hl7.org/CodeSystem/consentscope";
pub const SYSTEM_DICOM: &str = "http://dicom.nema.org/resources/ontology/DCM";
pub const SYSTEM_RESTFUL_INTERACTION: &str = "http://hl7.org/fhir/restful-interaction";
pub const SYSTEM_AUDIT_ENTITY_TYPE: &str =
    "http://terminology.hl7.org/CodeSystem/audit-entity-type";
pub const SYSTEM_OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
/// A record's category code as the custodian wrote it.
pub const SYSTEM_RECORD_CATEGORY: &str = "urn:varde:record-category";
/// Ids of grants and patient blocks: the 32-byte id of the transaction that created them, hex.
pub const SYSTEM_GRANT_ID: &str = "urn:varde:grant-id";
pub const SYSTEM_ACCESS_BLOCK_ID: &str = "urn:varde:access-block-id";
/// Whether a grant rests on the patient's consent or on a statute.
pub const SYSTEM_GRANT_BASIS: &str = "urn:varde:grant-basis";
/// The prefix of a record id's system: a record id is unique per custodian, so the system names
/// the custodian (`urn:varde:record-id:974760673`).
pub const SYSTEM_RECORD_ID_PREFIX: &str = "urn:varde:record-id:";
/// `meta.source` of every resource: this prefix and the hex id of the latest transaction that
/// shaped the resource.
pub const SOURCE_TRANSACTION_PREFIX: &str = "urn:varde:transaction:";

/// One per transaction that shaped a resource, oldest first: sub-extensions `transaction` (hex
/// id, valueString), `height` (valueUnsignedInt), `action` (valueCode, e.g. `grant_access`) and
/// `time` (the block time, valueInstant). Each id is a committed transaction's, which
/// `Ledger.GetTransactionProof` (`varde proof tx`) proves with its receipt.
pub const EXTENSION_LEDGER_TRANSACTION: &str = "urn:varde:fhir:ledger-transaction";
/// On `DocumentReference.content.attachment`: the content's SHA-256, lowercase hex (valueString).
/// R4's `Attachment.hash` is defined as base64 SHA-1, so the SHA-256 cannot go there.
pub const EXTENSION_CONTENT_SHA256: &str = "urn:varde:fhir:content-sha256";
/// On AuditEvent: the ledger's classification (`classification` valueCode authorised, emergency
/// or unauthorised; `flagged` valueBoolean; `reason` valueString).
pub const EXTENSION_ACCESS_CLASSIFICATION: &str = "urn:varde:fhir:access-classification";
/// On AuditEvent: the basis the reader reported (`kind` valueCode grant, emergency or none;
/// `grant` valueIdentifier; `justification` valueString).
pub const EXTENSION_ACCESS_BASIS: &str = "urn:varde:fhir:access-basis";
/// On AuditEvent: the SHA-256 of the reader's attestation, hex (valueString).
pub const EXTENSION_ATTESTATION_SHA256: &str = "urn:varde:fhir:attestation-sha256";
/// On `Bundle.meta`: `chainId` (valueString) and `height` (valueUnsignedInt) the export holds at.
pub const EXTENSION_EXPORT: &str = "urn:varde:fhir:export";

/// The most resources one export holds; a larger selection is refused, not cut. A resource is
/// 2–3 KiB of JSON, up to about 5 KiB with every text field at its longest, so a Bundle at the
/// limit stays below the 4 MiB message size that stock gRPC clients accept by default.
pub const EXPORT_RESOURCES_MAX: usize = 500;
/// The most heights one export's range spans.
pub const EXPORT_HEIGHTS_MAX: u64 = 10_000;
/// FHIR R4 `unsignedInt` stops here; a height above it cannot be written.
const UNSIGNED_INT_MAX: u64 = i32::MAX as u64;

/// What to export: a subject's items, the items shaped by the transactions of a height range,
/// or a subject's items shaped in that range. At least one is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportRequest {
    pub subject: Option<SubjectPseudonym>,
    /// Inclusive; heights start at 1.
    pub heights: Option<(u64, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("name a subject, a height range, or both")]
    NothingSelected,
    #[error(
        "the height range {from}..={to} is empty or starts at 0: heights start at 1 and \
         from_height must not exceed to_height"
    )]
    InvalidHeightRange { from: u64, to: u64 },
    #[error("the height range spans {count} heights; at most {max} per export")]
    TooManyHeights { count: u64, max: u64 },
    #[error(
        "the selection holds more than {max} resources; export a smaller height range (with the \
         subject, if one is named)"
    )]
    TooManyResources { max: usize },
    #[error("height {height} is beyond what FHIR R4's unsignedInt can carry")]
    HeightBeyondFhir { height: u64 },
    #[error("the block time at height {height} is outside the years FHIR can write")]
    TimeBeyondFhir { height: u64 },
    #[error("the stored block at height {height} does not decode: {detail}")]
    CorruptBlock { height: u64, detail: String },
    #[error("the page token of an internal listing was refused")]
    Listing,
    #[error(transparent)]
    State(#[from] StateError),
}

impl From<QueryError> for ExportError {
    fn from(error: QueryError) -> Self {
        match error {
            QueryError::InvalidPageToken => ExportError::Listing,
            QueryError::State(error) => ExportError::State(error),
        }
    }
}

/// A finished export.
#[derive(Debug, Clone)]
pub struct Export {
    /// A FHIR R4 Bundle of type `collection`.
    pub bundle: Value,
    pub resource_count: usize,
    /// The height the export holds at (the head when it was made).
    pub height: u64,
}

/// The items of an export, in the order they go into the bundle.
#[derive(Default)]
struct Items {
    records: Vec<RecordPointer>,
    grants: Vec<Grant>,
    blocks: Vec<AccessBlock>,
    events: Vec<AccessEvent>,
}

impl Items {
    fn len(&self) -> usize {
        self.records.len() + self.grants.len() + self.blocks.len() + self.events.len()
    }
}

/// Builds the Bundle that `viewer` may see for `request`, at the ledger's head. `now_unix_ms`
/// stamps the bundle and decides whether a grant has expired (the viewer's own time, the
/// serving node's clock, decides what it may see). A viewer naming the subject is the caller's
/// business: pass `viewer` without one; this function names `request.subject` itself.
pub fn export<S: Store>(
    ledger: &Ledger<S>,
    viewer: &Viewer<'_>,
    request: &ExportRequest,
    now_unix_ms: i64,
) -> Result<Export, ExportError> {
    let store = ledger.store();
    let head_height = ledger
        .head()
        .map_err(ledger_state_error)?
        .map_or(0, |head| head.height);
    let viewer = match request.subject {
        Some(subject) => viewer.clone().naming_subject(subject),
        None => viewer.clone(),
    };
    let items = match (request.subject, request.heights) {
        (None, None) => return Err(ExportError::NothingSelected),
        (Some(subject), None) => subject_items(store, &viewer, &subject)?,
        (subject, Some((from, to))) => {
            if from == 0 || to < from {
                return Err(ExportError::InvalidHeightRange { from, to });
            }
            let count = to - from + 1;
            if count > EXPORT_HEIGHTS_MAX {
                return Err(ExportError::TooManyHeights {
                    count,
                    max: EXPORT_HEIGHTS_MAX,
                });
            }
            height_items(store, &viewer, subject.as_ref(), from, to.min(head_height))?
        }
    };
    if items.len() > EXPORT_RESOURCES_MAX {
        return Err(ExportError::TooManyResources {
            max: EXPORT_RESOURCES_MAX,
        });
    }
    let mut mapper = Mapper {
        ledger,
        view: StateView::new(store),
        block_times: BTreeMap::new(),
        now_unix_ms,
    };
    let mut entries = Vec::with_capacity(items.len());
    for record in &items.records {
        entries.push(entry(mapper.document_reference(record)?));
    }
    for grant in &items.grants {
        entries.push(entry(mapper.grant_consent(grant)?));
    }
    for block in &items.blocks {
        entries.push(entry(mapper.block_consent(block)?));
    }
    for event in &items.events {
        entries.push(entry(mapper.audit_event(event)?));
    }
    let resource_count = entries.len();
    let mut bundle = json!({
        "resourceType": "Bundle",
        "meta": {
            "extension": [{
                "url": EXTENSION_EXPORT,
                "extension": [
                    { "url": "chainId", "valueString": ledger.chain_id() },
                    { "url": "height", "valueUnsignedInt": unsigned_int(head_height)? },
                ],
            }],
        },
        "type": "collection",
    });
    if let Some(timestamp) = instant(now_unix_ms) {
        bundle["timestamp"] = Value::String(timestamp);
    }
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    Ok(Export {
        bundle,
        resource_count,
        height: head_height,
    })
}

impl Export {
    /// The Bundle as UTF-8 JSON, each object's `resourceType` first and the Bundle's `entry`
    /// last, as in the R4 element order: streaming FHIR readers need the type before the other
    /// fields of an embedded resource.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let mut text = String::new();
        write_json(&self.bundle, &mut text);
        text.into_bytes()
    }
}

/// Writes `value` as compact JSON with `resourceType` first and `entry` last in every object, the
/// other fields in the map's order.
fn write_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(fields) => {
            out.push('{');
            let first = fields.get_key_value("resourceType");
            let last = fields.get_key_value("entry");
            let rest = fields
                .iter()
                .filter(|(name, _)| *name != "resourceType" && *name != "entry");
            let ordered = first.into_iter().chain(rest).chain(last);
            for (index, (name, field)) in ordered.enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(name.clone()).to_string());
                out.push(':');
                write_json(field, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn ledger_state_error(error: crate::LedgerError) -> ExportError {
    match error {
        crate::LedgerError::State(error) => ExportError::State(error),
        crate::LedgerError::Storage(error) => ExportError::State(StateError::Storage(error)),
        other => ExportError::State(StateError::Corrupt {
            column: Column::Meta,
            detail: other.to_string(),
        }),
    }
}

fn entry(resource: Value) -> Value {
    let full_url = format!(
        "urn:varde:fhir:{}:{}",
        resource["resourceType"].as_str().unwrap_or_default(),
        resource["id"].as_str().unwrap_or_default()
    );
    json!({ "fullUrl": full_url, "resource": resource })
}

/// Every page of one listing, with a key that seals tokens only for this loop. Stops past
/// [`EXPORT_RESOURCES_MAX`] items: the export is refused then anyway.
fn every_page<T>(
    scope: &[u8],
    mut fetch: impl FnMut(PageRequest<'_>) -> Result<Page<T>, QueryError>,
) -> Result<Vec<T>, ExportError> {
    let tokens = PageTokenKey::derive(b"varde-fhir-export-listing");
    let mut items = Vec::new();
    let mut token = String::new();
    loop {
        let page = fetch(PageRequest {
            page_size: query::PAGE_SIZE_MAX,
            page_token: &token,
            tokens: &tokens,
            scope,
        })?;
        items.extend(page.items);
        if page.next_page_token.is_empty() || items.len() > EXPORT_RESOURCES_MAX {
            return Ok(items);
        }
        token = page.next_page_token;
    }
}

/// A subject's items through the subject listings, with the predicates `varde.v1.Query` uses.
fn subject_items<S: Store + ?Sized>(
    store: &S,
    viewer: &Viewer<'_>,
    subject: &SubjectPseudonym,
) -> Result<Items, ExportError> {
    let records = every_page(b"records", |request| {
        query::records_by_subject(store, subject, request, |view, record| {
            visibility::may_see_record(view, viewer, record)
        })
    })?;
    let grants = every_page(b"grants", |request| {
        query::grants_by_subject(store, subject, request, |_, grant| {
            Ok(visibility::may_see_grant(viewer, grant))
        })
    })?;
    let blocks = every_page(b"blocks", |request| {
        query::access_blocks_by_subject(store, subject, request, |_, block| {
            Ok(visibility::may_see_access_block(viewer, block))
        })
    })?;
    let events = every_page(b"events", |request| {
        query::access_events_by_subject(store, subject, request, |_, event| {
            Ok(visibility::may_see_access_event(viewer, event))
        })
    })?;
    Ok(Items {
        records,
        grants,
        blocks,
        events,
    })
}

/// The state item an applied transaction created or changed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum ItemKey {
    Record(RecordKey),
    Grant(TransactionId),
    Block(TransactionId),
    Event(TransactionId),
}

/// The applied transactions of a stored block, decoded: (receipt, action).
fn applied_actions<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    height: u64,
) -> Result<Vec<(Receipt, Action)>, ExportError> {
    let Some(block) = stored_block(view, height)? else {
        return Ok(Vec::new());
    };
    let mut applied = Vec::new();
    for (index, envelope) in block.transactions.iter().enumerate() {
        let Ok(index) = u32::try_from(index) else {
            break;
        };
        let Some(receipt) =
            view.get_value::<Receipt>(Column::Receipts, &keys::position(height, index))?
        else {
            continue;
        };
        if !receipt.is_applied() {
            continue;
        }
        let body = v1::TransactionBody::decode(envelope.body.as_slice())
            .map_err(|error| error.to_string())
            .and_then(|body| wire::decode_body(body).map_err(|error| error.to_string()))
            .map_err(|detail| ExportError::CorruptBlock { height, detail })?;
        applied.push((receipt, body.action));
    }
    Ok(applied)
}

fn stored_block<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    height: u64,
) -> Result<Option<v1::Block>, ExportError> {
    let Some(bytes) = view.get(Column::Blocks, &height.to_be_bytes())? else {
        return Ok(None);
    };
    v1::Block::decode(bytes.as_slice())
        .map(Some)
        .map_err(|error| ExportError::CorruptBlock {
            height,
            detail: error.to_string(),
        })
}

/// The items shaped by the transactions applied in `from..=to`, that the viewer may see (and of
/// `subject`, when one is named), in the order of their first transaction in the range.
fn height_items<S: Store + ?Sized>(
    store: &S,
    viewer: &Viewer<'_>,
    subject: Option<&SubjectPseudonym>,
    from: u64,
    to: u64,
) -> Result<Items, ExportError> {
    let view = StateView::new(store);
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for height in from..=to {
        for (receipt, action) in applied_actions(&view, height)? {
            let key = match action {
                Action::AnchorRecord(content) | Action::SupersedeRecord(content) => {
                    ItemKey::Record(content.record)
                }
                Action::RetractRecord { record, .. } => ItemKey::Record(record),
                Action::GrantAccess(_) => ItemKey::Grant(receipt.transaction_id),
                Action::RevokeGrant { grant_id, .. } => ItemKey::Grant(grant_id),
                Action::BlockAccess { .. } => ItemKey::Block(receipt.transaction_id),
                Action::UnblockAccess { block_id, .. } => ItemKey::Block(block_id),
                Action::LogAccess(_) => ItemKey::Event(receipt.transaction_id),
                Action::ReportMisbehaviour(_)
                | Action::ProposeChange(_)
                | Action::ApproveChange { .. } => continue,
            };
            if seen.insert(key.clone()) {
                order.push(key);
            }
        }
    }
    let of_subject = |item_subject: &SubjectPseudonym| subject.is_none_or(|s| s == item_subject);
    let mut items = Items::default();
    for key in order {
        match key {
            ItemKey::Record(key) => {
                let Some(record) =
                    view.get_value::<RecordPointer>(Column::Records, &keys::record(&key))?
                else {
                    continue;
                };
                if of_subject(&record.subject)
                    && visibility::may_see_record(&view, viewer, &record)?
                {
                    items.records.push(record);
                }
            }
            ItemKey::Grant(id) => {
                let Some(grant) = view.get_value::<Grant>(Column::Grants, &id.0)? else {
                    continue;
                };
                if of_subject(&grant.terms.subject) && visibility::may_see_grant(viewer, &grant) {
                    items.grants.push(grant);
                }
            }
            ItemKey::Block(id) => {
                let Some(block) = view.get_value::<AccessBlock>(Column::AccessBlocks, &id.0)?
                else {
                    continue;
                };
                if of_subject(&block.subject) && visibility::may_see_access_block(viewer, &block) {
                    items.blocks.push(block);
                }
            }
            ItemKey::Event(id) => {
                let Some(event) = view.get_value::<AccessEvent>(Column::AccessEvents, &id.0)?
                else {
                    continue;
                };
                if of_subject(&event.subject) && visibility::may_see_access_event(viewer, &event) {
                    items.events.push(event);
                }
            }
        }
        if items.len() > EXPORT_RESOURCES_MAX {
            break;
        }
    }
    Ok(items)
}

/// One transaction behind a resource.
struct Shaping {
    id: TransactionId,
    height: u64,
    action: &'static str,
}

struct Mapper<'a, S: Store> {
    ledger: &'a Ledger<S>,
    view: StateView<'a, S>,
    block_times: BTreeMap<u64, i64>,
    now_unix_ms: i64,
}

impl<S: Store> Mapper<'_, S> {
    fn block_time(&mut self, height: u64) -> Result<i64, ExportError> {
        if let Some(time) = self.block_times.get(&height) {
            return Ok(*time);
        }
        let time = stored_block(&self.view, height)?
            .and_then(|block| block.header)
            .map(|header| header.time_unix_ms)
            .ok_or_else(|| ExportError::CorruptBlock {
                height,
                detail: "no block header is stored at this height".to_owned(),
            })?;
        self.block_times.insert(height, time);
        Ok(time)
    }

    fn block_instant(&mut self, height: u64) -> Result<String, ExportError> {
        let time = self.block_time(height)?;
        instant(time).ok_or(ExportError::TimeBeyondFhir { height })
    }

    /// The applied transaction at `height` whose action `matches`.
    fn find_transaction(
        &self,
        height: u64,
        matches: impl Fn(&Action) -> bool,
    ) -> Result<Option<TransactionId>, ExportError> {
        Ok(applied_actions(&self.view, height)?
            .into_iter()
            .find(|(_, action)| matches(action))
            .map(|(receipt, _)| receipt.transaction_id))
    }

    /// `meta` and the provenance extensions of a resource shaped by `shapings` (oldest first).
    fn provenance(
        &mut self,
        shapings: &[Shaping],
        version_id: Option<String>,
    ) -> Result<(Value, Vec<Value>), ExportError> {
        let mut extensions = Vec::with_capacity(shapings.len());
        for shaping in shapings {
            let time = self.block_instant(shaping.height)?;
            extensions.push(json!({
                "url": EXTENSION_LEDGER_TRANSACTION,
                "extension": [
                    { "url": "transaction", "valueString": shaping.id.to_hex() },
                    { "url": "height", "valueUnsignedInt": unsigned_int(shaping.height)? },
                    { "url": "action", "valueCode": shaping.action },
                    { "url": "time", "valueInstant": time },
                ],
            }));
        }
        let mut meta = json!({});
        if let Some(last) = shapings.last() {
            meta["source"] =
                Value::String(format!("{SOURCE_TRANSACTION_PREFIX}{}", last.id.to_hex()));
        }
        if let Some(version_id) = version_id {
            meta["versionId"] = Value::String(version_id);
        }
        Ok((meta, extensions))
    }

    fn organisation(&self, org_number: &OrgNumber) -> Value {
        let mut reference = json!({
            "type": "Organization",
            "identifier": {
                "system": SYSTEM_ORGANISATION_NUMBER,
                "value": org_number.as_str(),
            },
        });
        if let Some(name) = self
            .ledger
            .membership()
            .institution(org_number)
            .and_then(|institution| fhir_string(&institution.name))
        {
            reference["display"] = Value::String(name);
        }
        reference
    }

    fn document_reference(&mut self, record: &RecordPointer) -> Result<Value, ExportError> {
        let action = if record.retracted.is_some() {
            "retract_record"
        } else if record.version <= 1 {
            "anchor_record"
        } else {
            "supersede_record"
        };
        let mut shapings = Vec::new();
        if let Some(receipt) = self
            .ledger
            .receipt(&record.last_transaction_id)
            .map_err(ledger_state_error)?
        {
            shapings.push(Shaping {
                id: record.last_transaction_id,
                height: receipt.height,
                action,
            });
        }
        let (meta, extensions) = self.provenance(&shapings, Some(record.version.to_string()))?;
        let mut attachment = json!({
            "extension": [{
                "url": EXTENSION_CONTENT_SHA256,
                "valueString": crate::hex::encode(&record.content_sha256),
            }],
        });
        if fhir_uri(&record.location_uri) {
            attachment["url"] = Value::String(record.location_uri.clone());
        } else if let Some(title) = fhir_string(&record.location_uri) {
            attachment["title"] = Value::String(title);
        }
        let (confidentiality, confidentiality_display) = match record.confidentiality {
            Confidentiality::Normal => ("N", "normal"),
            Confidentiality::Restricted => ("R", "restricted"),
        };
        let mut resource = json!({
            "resourceType": "DocumentReference",
            "id": record_resource_id(&record.record),
            "meta": meta,
            "identifier": [record_identifier(&record.record, Some(self.organisation(&record.record.custodian)))],
            // Retracted: the record was deleted at its source, and the pointer must not be
            // followed; R4 has no "withdrawn", and `superseded` would promise a successor.
            "status": if record.retracted.is_some() { "entered-in-error" } else { "current" },
            "docStatus": if record.version <= 1 { "final" } else { "amended" },
            "type": category_concept(&record.category_code),
            "category": [category_concept(&record.category_code)],
            "subject": patient(&record.subject),
            "custodian": self.organisation(&record.record.custodian),
            "securityLabel": [{
                "coding": [{
                    "system": SYSTEM_CONFIDENTIALITY,
                    "code": confidentiality,
                    "display": confidentiality_display,
                }],
            }],
            "content": [{ "attachment": attachment }],
        });
        if !extensions.is_empty() {
            resource["extension"] = Value::Array(extensions);
        }
        if let Some(date) = instant(record.created_at_unix_ms) {
            resource["date"] = Value::String(date);
        }
        Ok(resource)
    }

    fn grant_consent(&mut self, grant: &Grant) -> Result<Value, ExportError> {
        let terms = &grant.terms;
        let mut shapings = vec![Shaping {
            id: grant.grant_id,
            height: grant.granted_at_height,
            action: "grant_access",
        }];
        if let Some(revocation) = &grant.revoked {
            let revoked_by = self.find_transaction(revocation.height, |action| {
                matches!(action, Action::RevokeGrant { grant_id, .. } if *grant_id == grant.grant_id)
            })?;
            if let Some(id) = revoked_by {
                shapings.push(Shaping {
                    id,
                    height: revocation.height,
                    action: "revoke_grant",
                });
            }
        }
        let (meta, extensions) = self.provenance(&shapings, None)?;
        let expired = self.now_unix_ms >= terms.valid_until_unix_ms;
        let status = if grant.revoked.is_some() || expired {
            "inactive"
        } else {
            "active"
        };
        // A department is stored but not enforced (CheckAccess has no department input): it is
        // said in the institution's display only.
        let mut grantee = self.organisation(&terms.grantee);
        if let Some(department) = terms.grantee_department.as_deref().and_then(fhir_string) {
            let name = grantee["display"]
                .as_str()
                .unwrap_or(terms.grantee.as_str())
                .to_owned();
            grantee["display"] = Value::String(format!("{name} (department: {department})"));
        }
        let mut actors = vec![json!({ "role": recipient_role(), "reference": grantee })];
        if let Some(person) = &terms.grantee_person {
            actors.push(json!({ "role": recipient_role(), "reference": practitioner(person) }));
        }
        let mut provision = json!({
            "type": "permit",
            "actor": actors,
            "purpose": terms.purposes.iter().map(|purpose| purpose_coding(*purpose)).collect::<Vec<_>>(),
        });
        if let Some(period) = period(terms.valid_from_unix_ms, Some(terms.valid_until_unix_ms)) {
            provision["period"] = period;
        }
        match &terms.scope {
            GrantScope::Record(key) => {
                provision["data"] = json!([{
                    "meaning": "instance",
                    "reference": {
                        "type": "DocumentReference",
                        "identifier": record_identifier(key, None),
                    },
                }]);
            }
            GrantScope::Category(code) => {
                provision["code"] = json!([category_concept(code)]);
                provision["securityLabel"] = json!([normal_confidentiality()]);
            }
            // A grant of every record covers the normal ones only: a restricted record opens
            // only with a grant of that very record.
            GrantScope::AllRecords => {
                provision["securityLabel"] = json!([normal_confidentiality()]);
            }
        }
        let policy_rule = match &terms.basis {
            GrantBasis::PatientConsent { reference } => {
                let mut rule = json!({
                    "coding": [
                        { "system": SYSTEM_ACT_CODE, "code": "OPTIN", "display": "opt-in" },
                        { "system": SYSTEM_GRANT_BASIS, "code": "patient-consent" },
                    ],
                    "text": "patient consent",
                });
                if let Some(text) = reference.as_deref().and_then(fhir_string) {
                    rule["text"] = Value::String(format!("patient consent: {text}"));
                }
                rule
            }
            GrantBasis::Statutory { name } => {
                let mut rule = json!({
                    "coding": [{ "system": SYSTEM_GRANT_BASIS, "code": "statutory" }],
                    "text": "statutory basis",
                });
                if let Some(text) = fhir_string(name) {
                    rule["text"] = Value::String(format!("statutory basis: {text}"));
                }
                rule
            }
        };
        Ok(json!({
            "resourceType": "Consent",
            "id": grant.grant_id.to_hex(),
            "meta": meta,
            "extension": extensions,
            "identifier": [{ "system": SYSTEM_GRANT_ID, "value": grant.grant_id.to_hex() }],
            "status": status,
            "scope": privacy_scope(),
            "category": [information_access_category()],
            "patient": patient(&terms.subject),
            "dateTime": self.block_instant(grant.granted_at_height)?,
            "organization": [self.organisation(&terms.issuer)],
            "policyRule": policy_rule,
            "provision": provision,
        }))
    }

    fn block_consent(&mut self, block: &AccessBlock) -> Result<Value, ExportError> {
        let mut shapings = vec![Shaping {
            id: block.block_id,
            height: block.blocked_at_height,
            action: "block_access",
        }];
        if let Some(lifted_at_height) = block.lifted_at_height {
            let lifted_by = self.find_transaction(lifted_at_height, |action| {
                matches!(action, Action::UnblockAccess { block_id, .. } if *block_id == block.block_id)
            })?;
            if let Some(id) = lifted_by {
                shapings.push(Shaping {
                    id,
                    height: lifted_at_height,
                    action: "unblock_access",
                });
            }
        }
        let (meta, extensions) = self.provenance(&shapings, None)?;
        let blocked_at = self.block_time(block.blocked_at_height)?;
        let lifted_at = match block.lifted_at_height {
            Some(height) => Some(self.block_time(height)?),
            None => None,
        };
        let target = match &block.target {
            BlockTarget::Institution(org_number) => self.organisation(org_number),
            BlockTarget::Person(hpr_number) => practitioner(hpr_number),
        };
        let mut provision = json!({
            "type": "deny",
            "actor": [{ "role": recipient_role(), "reference": target }],
        });
        if let Some(period) = period(blocked_at, lifted_at) {
            provision["period"] = period;
        }
        Ok(json!({
            "resourceType": "Consent",
            "id": block.block_id.to_hex(),
            "meta": meta,
            "extension": extensions,
            "identifier": [{ "system": SYSTEM_ACCESS_BLOCK_ID, "value": block.block_id.to_hex() }],
            "status": if block.lifted_at_height.is_some() { "inactive" } else { "active" },
            "scope": privacy_scope(),
            "category": [information_access_category()],
            "patient": patient(&block.subject),
            "dateTime": self.block_instant(block.blocked_at_height)?,
            "organization": [self.organisation(&block.issuer)],
            "policyRule": {
                "coding": [
                    { "system": SYSTEM_ACT_CODE, "code": "OPTOUT", "display": "opt-out" },
                    { "system": SYSTEM_GRANT_BASIS, "code": "patient-block" },
                ],
                "text": "patient block: holds for every purpose, emergencies included",
            },
            "provision": provision,
        }))
    }

    fn audit_event(&mut self, event: &AccessEvent) -> Result<Value, ExportError> {
        let report = &event.report;
        let shapings = [Shaping {
            id: event.event_id,
            height: event.height,
            action: "log_access",
        }];
        let (meta, mut extensions) = self.provenance(&shapings, None)?;
        let (classification, outcome_word) = match event.classification {
            AccessClassification::Authorised => ("authorised", "authorised"),
            AccessClassification::Emergency => ("emergency", "emergency access, flagged"),
            AccessClassification::Unauthorised => ("unauthorised", "unauthorised, flagged"),
        };
        let mut classification_parts = vec![
            json!({ "url": "classification", "valueCode": classification }),
            json!({ "url": "flagged", "valueBoolean": event.flagged }),
        ];
        if let Some(reason) = fhir_string(&event.reason) {
            classification_parts.push(json!({ "url": "reason", "valueString": reason }));
        }
        extensions.push(json!({
            "url": EXTENSION_ACCESS_CLASSIFICATION,
            "extension": classification_parts,
        }));
        let basis_parts = match &report.basis {
            AccessBasis::Grant(grant_id) => vec![
                json!({ "url": "kind", "valueCode": "grant" }),
                json!({ "url": "grant", "valueIdentifier": grant_identifier(grant_id) }),
            ],
            AccessBasis::Emergency { justification } => {
                let mut parts = vec![json!({ "url": "kind", "valueCode": "emergency" })];
                if let Some(text) = fhir_string(justification) {
                    parts.push(json!({ "url": "justification", "valueString": text }));
                }
                parts
            }
            AccessBasis::None => vec![json!({ "url": "kind", "valueCode": "none" })],
        };
        extensions.push(json!({ "url": EXTENSION_ACCESS_BASIS, "extension": basis_parts }));
        if let Some(hash) = report.attestation_sha256 {
            extensions.push(json!({
                "url": EXTENSION_ATTESTATION_SHA256,
                "valueString": crate::hex::encode(&hash),
            }));
        }
        let mut entities = vec![
            json!({
                "what": {
                    "type": "DocumentReference",
                    "identifier": record_identifier(&report.record, None),
                },
                "type": { "system": SYSTEM_AUDIT_ENTITY_TYPE, "code": "2", "display": "System Object" },
                "role": { "system": SYSTEM_OBJECT_ROLE, "code": "3", "display": "Report" },
            }),
            json!({
                "what": patient(&event.subject),
                "type": { "system": SYSTEM_AUDIT_ENTITY_TYPE, "code": "1", "display": "Person" },
                "role": { "system": SYSTEM_OBJECT_ROLE, "code": "1", "display": "Patient" },
            }),
        ];
        if let Some(grant_id) = &event.grant_id {
            entities.push(json!({
                "what": { "type": "Consent", "identifier": grant_identifier(grant_id) },
                "type": { "system": SYSTEM_AUDIT_ENTITY_TYPE, "code": "2", "display": "System Object" },
                "description": "the grant the ledger found authorising this read",
            }));
        }
        let accessed_at =
            instant(report.accessed_at_unix_ms).ok_or(ExportError::TimeBeyondFhir {
                height: event.height,
            })?;
        let purpose = json!({ "coding": [purpose_coding(report.purpose)] });
        Ok(json!({
            "resourceType": "AuditEvent",
            "id": event.event_id.to_hex(),
            "meta": meta,
            "extension": extensions,
            "type": { "system": SYSTEM_DICOM, "code": "110110", "display": "Patient Record" },
            "subtype": [{ "system": SYSTEM_RESTFUL_INTERACTION, "code": "read", "display": "read" }],
            "action": "R",
            "period": { "start": accessed_at, "end": accessed_at },
            "recorded": self.block_instant(event.height)?,
            // The read happened; whether it was allowed is the classification's job.
            "outcome": "0",
            "outcomeDesc": outcome_word,
            "purposeOfEvent": [purpose],
            "agent": [
                {
                    "who": practitioner(&report.accessor_person),
                    "requestor": true,
                    "purposeOfUse": [purpose],
                },
                { "who": self.organisation(&report.accessor), "requestor": false },
            ],
            "source": { "observer": self.organisation(&report.accessor) },
            "entity": entities,
        }))
    }
}

/// A resource id for a record: SHA-256 over custodian and record id, hex (64 characters, what
/// FHIR allows; a record id may hold characters an id may not).
pub fn record_resource_id(record: &RecordKey) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"varde-fhir-record-v1");
    hasher.update([0]);
    hasher.update(keys::record(record));
    crate::hex::encode(&hasher.finalize())
}

fn record_identifier(record: &RecordKey, assigner: Option<Value>) -> Value {
    let mut identifier = json!({
        "system": format!("{SYSTEM_RECORD_ID_PREFIX}{}", record.custodian.as_str()),
        "value": record.record_id,
    });
    if let Some(assigner) = assigner {
        identifier["assigner"] = assigner;
    }
    identifier
}

fn grant_identifier(grant_id: &TransactionId) -> Value {
    json!({ "system": SYSTEM_GRANT_ID, "value": grant_id.to_hex() })
}

fn patient(subject: &SubjectPseudonym) -> Value {
    json!({
        "type": "Patient",
        "identifier": {
            "system": SYSTEM_SUBJECT_PSEUDONYM,
            "value": crate::hex::encode(&subject.0),
        },
    })
}

fn practitioner(hpr_number: &HprNumber) -> Value {
    json!({
        "type": "Practitioner",
        "identifier": { "system": SYSTEM_HPR_NUMBER, "value": hpr_number.to_string() },
    })
}

fn recipient_role() -> Value {
    json!({
        "coding": [{
            "system": SYSTEM_PARTICIPATION_TYPE,
            "code": "IRCP",
            "display": "information recipient",
        }],
    })
}

fn privacy_scope() -> Value {
    json!({
        "coding": [{
            "system": SYSTEM_CONSENT_SCOPE,
            "code": "patient-privacy",
            "display": "Privacy Consent",
        }],
    })
}

fn information_access_category() -> Value {
    json!({
        "coding": [{ "system": SYSTEM_ACT_CODE, "code": "INFA", "display": "information access" }],
    })
}

fn normal_confidentiality() -> Value {
    json!({ "system": SYSTEM_CONFIDENTIALITY, "code": "N", "display": "normal" })
}

fn category_concept(code: &str) -> Value {
    if fhir_code(code) {
        json!({ "coding": [{ "system": SYSTEM_RECORD_CATEGORY, "code": code }] })
    } else {
        json!({ "text": fhir_string(code).unwrap_or_else(|| "uncategorised".to_owned()) })
    }
}

pub fn purpose_code(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Treat => "TREAT",
        Purpose::Etreat => "ETREAT",
        Purpose::Coc => "COC",
        Purpose::Hresch => "HRESCH",
        Purpose::Clintrch => "CLINTRCH",
        Purpose::Hoperat => "HOPERAT",
        Purpose::Hpaymt => "HPAYMT",
        Purpose::Pubhlth => "PUBHLTH",
        Purpose::Patrqt => "PATRQT",
    }
}

fn purpose_coding(purpose: Purpose) -> Value {
    json!({ "system": SYSTEM_PURPOSE_OF_USE, "code": purpose_code(purpose) })
}

/// A FHIR Period from a half-open window `[start, end)`: FHIR's `end` is inclusive, so it is the
/// window's last millisecond. A bound FHIR cannot write (before year 1 or after 9999) is left
/// out, which FHIR reads as open on that side; `None` when neither can be written.
fn period(start_unix_ms: i64, end_unix_ms: Option<i64>) -> Option<Value> {
    let mut period = json!({});
    if let Some(start) = instant(start_unix_ms) {
        period["start"] = Value::String(start);
    }
    if let Some(end) = end_unix_ms.and_then(|end| instant(end.saturating_sub(1))) {
        period["end"] = Value::String(end);
    }
    (period.as_object().is_some_and(|fields| !fields.is_empty())).then_some(period)
}

fn unsigned_int(height: u64) -> Result<u64, ExportError> {
    if height > UNSIGNED_INT_MAX {
        return Err(ExportError::HeightBeyondFhir { height });
    }
    Ok(height)
}

/// A FHIR `instant` (UTC, milliseconds) for a Unix time in ms; `None` outside years 1–9999.
pub fn instant(unix_ms: i64) -> Option<String> {
    const DAY_MS: i64 = 86_400_000;
    let days = unix_ms.div_euclid(DAY_MS);
    let ms_of_day = unix_ms.rem_euclid(DAY_MS);
    let (year, month, day) = civil_from_days(days);
    if !(1..=9999).contains(&year) {
        return None;
    }
    let hours = ms_of_day / 3_600_000;
    let minutes = ms_of_day / 60_000 % 60;
    let seconds = ms_of_day / 1_000 % 60;
    let millis = ms_of_day % 1_000;
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{hours:02}:{minutes:02}:{seconds:02}.{millis:03}Z"
    ))
}

/// Year, month, day of a count of days since 1970-01-01 (proleptic Gregorian; H. Hinnant's
/// algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Whether `text` is a FHIR `code`: non-empty, single spaces between non-blank runs.
fn fhir_code(text: &str) -> bool {
    !text.is_empty() && text.split_whitespace().collect::<Vec<_>>().join(" ") == text
}

/// Whether `text` is a FHIR `uri`/`url`: no whitespace, not empty.
fn fhir_uri(text: &str) -> bool {
    !text.is_empty() && !text.chars().any(char::is_whitespace)
}

/// `text` as a FHIR `string` (not empty, no surrounding blanks), if anything is left.
fn fhir_string(text: &str) -> Option<String> {
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Instants are UTC with milliseconds, across leap days and the epoch; years FHIR cannot
    // write give None instead of a wrong date.
    #[test]
    fn instants_are_exact_and_bounded() {
        assert_eq!(instant(0).unwrap(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            instant(1_780_000_000_123).unwrap(),
            "2026-05-28T20:26:40.123Z"
        );
        assert_eq!(
            instant(951_782_400_000).unwrap(),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(instant(-1).unwrap(), "1969-12-31T23:59:59.999Z");
        assert_eq!(instant(i64::MAX), None);
        assert_eq!(instant(i64::MIN), None);
        assert_eq!(
            instant(253_402_300_799_999).unwrap(),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(instant(253_402_300_800_000), None);
    }

    // Codes keep single inner spaces only; anything else goes to text.
    #[test]
    fn category_codes_that_fhir_cannot_hold_become_text() {
        assert!(fhir_code("psychiatry"));
        assert!(fhir_code("lab result"));
        assert!(!fhir_code("lab  result"));
        assert!(!fhir_code(" lab"));
        assert!(!fhir_code(""));
        assert_eq!(category_concept("lab  result")["text"], "lab  result");
        assert_eq!(category_concept("")["text"], "uncategorised");
    }

    // A half-open window ends one millisecond before its bound; unwritable bounds are left out.
    #[test]
    fn periods_are_inclusive_and_open_where_unwritable() {
        let window = period(0, Some(1_000)).unwrap();
        assert_eq!(window["start"], "1970-01-01T00:00:00.000Z");
        assert_eq!(window["end"], "1970-01-01T00:00:00.999Z");
        let open = period(0, Some(i64::MAX)).unwrap();
        assert!(open.get("end").is_none());
        assert!(period(i64::MIN, Some(i64::MAX)).is_none());
    }
}
