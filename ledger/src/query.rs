//! Paginated listings over the secondary indexes in `Column::Indexes` (and over the records of a
//! custodian and the recorded misbehaviour).
//!
//! Each listing takes a visibility predicate (from [`crate::visibility`]) and skips what the
//! caller may not see, so a page is full whenever more visible items follow, and its token is
//! empty exactly when none do. Tokens are sealed by the node ([`crate::page_token`]) and name only
//! the last item the caller was shown.

use varde_storage::{Column, Store};

use crate::domain::*;
use crate::identifiers::OrgNumber;
use crate::page_token::PageTokenKey;
use crate::state::{StateError, StateView, keys};
use crate::stored::StoredValue;

pub const PAGE_SIZE_DEFAULT: usize = 50;
pub const PAGE_SIZE_MAX: usize = 500;
/// Index entries read per storage scan while filling a page.
const SCAN_CHUNK_MIN: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("the page token is not one this listing issued")]
    InvalidPageToken,
    #[error(transparent)]
    State(#[from] StateError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Empty when there are no more items the caller may see.
    pub next_page_token: String,
}

/// Where a page starts and how its token is sealed.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<'a> {
    /// 0 means [`PAGE_SIZE_DEFAULT`]; capped at [`PAGE_SIZE_MAX`].
    pub page_size: usize,
    /// Empty for the first page.
    pub page_token: &'a str,
    pub tokens: &'a PageTokenKey,
    /// Binds tokens to the caller, the method and the filter (any bytes that differ between
    /// listings that must not share tokens).
    pub scope: &'a [u8],
}

impl PageRequest<'_> {
    fn size(&self) -> usize {
        match self.page_size {
            0 => PAGE_SIZE_DEFAULT,
            size => size.min(PAGE_SIZE_MAX),
        }
    }
}

/// Lists entries under `prefix` in `column`: `load(view, key after the prefix, value)` reads an
/// item, `visible(view, item)` says whether the caller may see it.
fn list<S, T>(
    store: &S,
    column: Column,
    prefix: &[u8],
    request: PageRequest<'_>,
    load: impl Fn(&StateView<'_, S>, &[u8], &[u8]) -> Result<Option<T>, StateError>,
    mut visible: impl FnMut(&StateView<'_, S>, &T) -> Result<bool, StateError>,
) -> Result<Page<T>, QueryError>
where
    S: Store + ?Sized,
{
    let page_size = request.size();
    let mut cursor = if request.page_token.is_empty() {
        None
    } else {
        let key = request
            .tokens
            .open(request.scope, request.page_token)
            .ok_or(QueryError::InvalidPageToken)?;
        if !key.starts_with(prefix) {
            return Err(QueryError::InvalidPageToken);
        }
        Some(key)
    };
    let view = StateView::new(store);
    let chunk = (page_size + 1).max(SCAN_CHUNK_MIN);
    // One item past the page tells whether another visible item follows.
    let mut shown: Vec<(Vec<u8>, T)> = Vec::with_capacity(page_size + 1);
    'scan: loop {
        let entries = store
            .scan_prefix(column, prefix, cursor.as_deref(), chunk)
            .map_err(StateError::from)?;
        let exhausted = entries.len() < chunk;
        for (key, value) in entries {
            if let Some(item) = load(&view, &key[prefix.len()..], &value)? {
                if visible(&view, &item)? {
                    shown.push((key.clone(), item));
                    if shown.len() > page_size {
                        break 'scan;
                    }
                }
            }
            cursor = Some(key);
        }
        if exhausted {
            break;
        }
    }
    let more = shown.len() > page_size;
    shown.truncate(page_size);
    let next_page_token = match shown.last() {
        Some((last_key, _)) if more => request.tokens.seal(request.scope, last_key),
        _ => String::new(),
    };
    Ok(Page {
        items: shown.into_iter().map(|(_, item)| item).collect(),
        next_page_token,
    })
}

/// Lists the items an index under `prefix` points at: each index key ends with the item's key in
/// `item_column`.
fn by_index<S, T>(
    store: &S,
    prefix: &[u8],
    item_column: Column,
    request: PageRequest<'_>,
    visible: impl FnMut(&StateView<'_, S>, &T) -> Result<bool, StateError>,
) -> Result<Page<T>, QueryError>
where
    S: Store + ?Sized,
    T: StoredValue,
{
    list(
        store,
        Column::Indexes,
        prefix,
        request,
        |view, item_key, _| view.get_value(item_column, item_key),
        visible,
    )
}

pub fn records_by_subject<S: Store + ?Sized>(
    store: &S,
    subject: &SubjectPseudonym,
    request: PageRequest<'_>,
    visible: impl FnMut(&StateView<'_, S>, &RecordPointer) -> Result<bool, StateError>,
) -> Result<Page<RecordPointer>, QueryError> {
    let prefix = keys::with_prefix(keys::INDEX_RECORDS_BY_SUBJECT, &[&subject.0]);
    by_index(store, &prefix, Column::Records, request, visible)
}

/// Records of one custodian, straight from `Column::Records` (keyed by custodian first).
pub fn records_by_custodian<S: Store + ?Sized>(
    store: &S,
    custodian: &OrgNumber,
    request: PageRequest<'_>,
    visible: impl FnMut(&StateView<'_, S>, &RecordPointer) -> Result<bool, StateError>,
) -> Result<Page<RecordPointer>, QueryError> {
    let prefix = keys::custodian_prefix(custodian);
    list(
        store,
        Column::Records,
        &prefix,
        request,
        |_, _, value| RecordPointer::decode(Column::Records, value).map(Some),
        visible,
    )
}

pub fn grants_by_subject<S: Store + ?Sized>(
    store: &S,
    subject: &SubjectPseudonym,
    request: PageRequest<'_>,
    visible: impl FnMut(&StateView<'_, S>, &Grant) -> Result<bool, StateError>,
) -> Result<Page<Grant>, QueryError> {
    let prefix = keys::with_prefix(keys::INDEX_GRANTS_BY_SUBJECT, &[&subject.0]);
    by_index(store, &prefix, Column::Grants, request, visible)
}

pub fn grants_by_grantee<S: Store + ?Sized>(
    store: &S,
    grantee: &OrgNumber,
    request: PageRequest<'_>,
    visible: impl FnMut(&StateView<'_, S>, &Grant) -> Result<bool, StateError>,
) -> Result<Page<Grant>, QueryError> {
    let prefix = keys::with_prefix(
        keys::INDEX_GRANTS_BY_GRANTEE,
        &[&keys::custodian_prefix(grantee)],
    );
    by_index(store, &prefix, Column::Grants, request, visible)
}

/// A patient's blocks of institutions and persons, lifted ones included.
pub fn access_blocks_by_subject<S: Store + ?Sized>(
    store: &S,
    subject: &SubjectPseudonym,
    request: PageRequest<'_>,
    visible: impl FnMut(&StateView<'_, S>, &AccessBlock) -> Result<bool, StateError>,
) -> Result<Page<AccessBlock>, QueryError> {
    let prefix = keys::with_prefix(keys::INDEX_BLOCKS_BY_SUBJECT, &[&subject.0]);
    by_index(store, &prefix, Column::AccessBlocks, request, visible)
}

/// Lists the access events an index under `prefix` points at (each entry's value is the event id).
fn events_by_index<S: Store + ?Sized>(
    store: &S,
    prefix: &[u8],
    request: PageRequest<'_>,
    visible: impl FnMut(&StateView<'_, S>, &AccessEvent) -> Result<bool, StateError>,
) -> Result<Page<AccessEvent>, QueryError> {
    list(
        store,
        Column::Indexes,
        prefix,
        request,
        |view, _position, event_id| view.get_value(Column::AccessEvents, event_id),
        visible,
    )
}

/// Access events of a subject in commit order: the patient's access log.
pub fn access_events_by_subject<S: Store + ?Sized>(
    store: &S,
    subject: &SubjectPseudonym,
    request: PageRequest<'_>,
    visible: impl FnMut(&StateView<'_, S>, &AccessEvent) -> Result<bool, StateError>,
) -> Result<Page<AccessEvent>, QueryError> {
    let prefix = keys::with_prefix(keys::INDEX_EVENTS_BY_SUBJECT, &[&subject.0]);
    events_by_index(store, &prefix, request, visible)
}

pub fn access_events_by_record<S: Store + ?Sized>(
    store: &S,
    record: &RecordKey,
    request: PageRequest<'_>,
    visible: impl FnMut(&StateView<'_, S>, &AccessEvent) -> Result<bool, StateError>,
) -> Result<Page<AccessEvent>, QueryError> {
    let mut record_part = keys::record(record);
    record_part.push(0);
    let prefix = keys::with_prefix(keys::INDEX_EVENTS_BY_RECORD, &[&record_part]);
    events_by_index(store, &prefix, request, visible)
}

pub fn access_events_by_accessor<S: Store + ?Sized>(
    store: &S,
    accessor: &OrgNumber,
    request: PageRequest<'_>,
    visible: impl FnMut(&StateView<'_, S>, &AccessEvent) -> Result<bool, StateError>,
) -> Result<Page<AccessEvent>, QueryError> {
    let prefix = keys::with_prefix(
        keys::INDEX_EVENTS_BY_ACCESSOR,
        &[&keys::custodian_prefix(accessor)],
    );
    events_by_index(store, &prefix, request, visible)
}

/// Recorded validator misbehaviour, ascending by height, round, validator index and kind. It
/// names validator keys only, so every member may see all of it.
pub fn misbehaviour<S: Store + ?Sized>(
    store: &S,
    request: PageRequest<'_>,
) -> Result<Page<Misbehaviour>, QueryError> {
    list(
        store,
        Column::Meta,
        keys::META_MISBEHAVIOUR,
        request,
        |_, _, value| Misbehaviour::decode(Column::Meta, value).map(Some),
        |_, _| Ok(true),
    )
}

/// Governance proposals in the order they were proposed.
pub fn proposals<S: Store + ?Sized>(
    store: &S,
    request: PageRequest<'_>,
) -> Result<Page<crate::governance::Proposal>, QueryError> {
    list(
        store,
        Column::Meta,
        crate::governance::META_PROPOSAL_ORDER,
        request,
        |view, _, value| {
            let id = crate::signing::TransactionId(<[u8; 32]>::try_from(value).map_err(|_| {
                StateError::Corrupt {
                    column: Column::Meta,
                    detail: "a proposal order entry that is not a 32-byte id".to_owned(),
                }
            })?);
            crate::governance::proposal(view, &id)
        },
        |_, _| Ok(true),
    )
}
