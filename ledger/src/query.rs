//! Paginated listings over the secondary indexes in `Column::Indexes` (and over the recorded
//! misbehaviour in `Column::Meta`). The page token is the hex of the last key returned (opaque to
//! clients; checked to lie under the listing's prefix).

use varde_storage::{Column, Store};

use crate::domain::*;
use crate::hex;
use crate::identifiers::OrgNumber;
use crate::state::{StateError, StateView, keys};

pub const PAGE_SIZE_DEFAULT: usize = 50;
pub const PAGE_SIZE_MAX: usize = 500;

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
    /// Empty when there are no more items.
    pub next_page_token: String,
}

/// Lists index entries under `prefix` and loads each item with `load(index key, index value)`.
fn list<S, T>(
    store: &S,
    prefix: &[u8],
    page_size: usize,
    page_token: &str,
    load: impl Fn(&StateView<'_, S>, &[u8], &[u8]) -> Result<Option<T>, StateError>,
) -> Result<Page<T>, QueryError>
where
    S: Store + ?Sized,
{
    list_in(store, Column::Indexes, prefix, page_size, page_token, load)
}

/// As [`list`], over the entries under `prefix` in `column`; `load` gets the key after the prefix.
fn list_in<S, T>(
    store: &S,
    column: Column,
    prefix: &[u8],
    page_size: usize,
    page_token: &str,
    load: impl Fn(&StateView<'_, S>, &[u8], &[u8]) -> Result<Option<T>, StateError>,
) -> Result<Page<T>, QueryError>
where
    S: Store + ?Sized,
{
    let page_size = match page_size {
        0 => PAGE_SIZE_DEFAULT,
        size => size.min(PAGE_SIZE_MAX),
    };
    let cursor = if page_token.is_empty() {
        None
    } else {
        let key = hex::decode(page_token).ok_or(QueryError::InvalidPageToken)?;
        if !key.starts_with(prefix) {
            return Err(QueryError::InvalidPageToken);
        }
        Some(key)
    };
    let entries = store
        .scan_prefix(column, prefix, cursor.as_deref(), page_size + 1)
        .map_err(StateError::from)?;
    let view = StateView::new(store);
    let more = entries.len() > page_size;
    let mut items = Vec::new();
    let mut last_key = Vec::new();
    for (key, value) in entries.into_iter().take(page_size) {
        if let Some(item) = load(&view, &key[prefix.len()..], &value)? {
            items.push(item);
        }
        last_key = key;
    }
    Ok(Page {
        items,
        next_page_token: if more {
            hex::encode(&last_key)
        } else {
            String::new()
        },
    })
}

pub fn records_by_subject<S: Store + ?Sized>(
    store: &S,
    subject: &SubjectPseudonym,
    page_size: usize,
    page_token: &str,
) -> Result<Page<RecordPointer>, QueryError> {
    let prefix = keys::with_prefix(keys::INDEX_RECORDS_BY_SUBJECT, &[&subject.0]);
    list(
        store,
        &prefix,
        page_size,
        page_token,
        |view, record_key, _| view.get_json(Column::Records, record_key),
    )
}

/// Records of one custodian, straight from `Column::Records` (keyed by custodian first).
pub fn records_by_custodian<S: Store + ?Sized>(
    store: &S,
    custodian: &OrgNumber,
    page_size: usize,
    page_token: &str,
) -> Result<Page<RecordPointer>, QueryError> {
    let prefix = keys::custodian_prefix(custodian);
    let page_size = match page_size {
        0 => PAGE_SIZE_DEFAULT,
        size => size.min(PAGE_SIZE_MAX),
    };
    let cursor = if page_token.is_empty() {
        None
    } else {
        let key = hex::decode(page_token).ok_or(QueryError::InvalidPageToken)?;
        if !key.starts_with(&prefix) {
            return Err(QueryError::InvalidPageToken);
        }
        Some(key)
    };
    let entries = store
        .scan_prefix(Column::Records, &prefix, cursor.as_deref(), page_size + 1)
        .map_err(StateError::from)?;
    let more = entries.len() > page_size;
    let mut items = Vec::new();
    let mut last_key = Vec::new();
    for (key, value) in entries.into_iter().take(page_size) {
        items.push(crate::state::decode_json(Column::Records, &value)?);
        last_key = key;
    }
    Ok(Page {
        items,
        next_page_token: if more {
            hex::encode(&last_key)
        } else {
            String::new()
        },
    })
}

pub fn grants_by_subject<S: Store + ?Sized>(
    store: &S,
    subject: &SubjectPseudonym,
    page_size: usize,
    page_token: &str,
) -> Result<Page<Grant>, QueryError> {
    let prefix = keys::with_prefix(keys::INDEX_GRANTS_BY_SUBJECT, &[&subject.0]);
    list(
        store,
        &prefix,
        page_size,
        page_token,
        |view, grant_id, _| view.get_json(Column::Grants, grant_id),
    )
}

pub fn grants_by_grantee<S: Store + ?Sized>(
    store: &S,
    grantee: &OrgNumber,
    page_size: usize,
    page_token: &str,
) -> Result<Page<Grant>, QueryError> {
    let prefix = keys::with_prefix(
        keys::INDEX_GRANTS_BY_GRANTEE,
        &[&keys::custodian_prefix(grantee)],
    );
    list(
        store,
        &prefix,
        page_size,
        page_token,
        |view, grant_id, _| view.get_json(Column::Grants, grant_id),
    )
}

fn load_event<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    _position: &[u8],
    event_id: &[u8],
) -> Result<Option<AccessEvent>, StateError> {
    view.get_json(Column::AccessEvents, event_id)
}

/// Access events of a subject in commit order: the patient's access log.
pub fn access_events_by_subject<S: Store + ?Sized>(
    store: &S,
    subject: &SubjectPseudonym,
    page_size: usize,
    page_token: &str,
) -> Result<Page<AccessEvent>, QueryError> {
    let prefix = keys::with_prefix(keys::INDEX_EVENTS_BY_SUBJECT, &[&subject.0]);
    list(store, &prefix, page_size, page_token, load_event)
}

pub fn access_events_by_record<S: Store + ?Sized>(
    store: &S,
    record: &RecordKey,
    page_size: usize,
    page_token: &str,
) -> Result<Page<AccessEvent>, QueryError> {
    let mut record_part = keys::record(record);
    record_part.push(0);
    let prefix = keys::with_prefix(keys::INDEX_EVENTS_BY_RECORD, &[&record_part]);
    list(store, &prefix, page_size, page_token, load_event)
}

pub fn access_events_by_accessor<S: Store + ?Sized>(
    store: &S,
    accessor: &OrgNumber,
    page_size: usize,
    page_token: &str,
) -> Result<Page<AccessEvent>, QueryError> {
    let prefix = keys::with_prefix(
        keys::INDEX_EVENTS_BY_ACCESSOR,
        &[&keys::custodian_prefix(accessor)],
    );
    list(store, &prefix, page_size, page_token, load_event)
}

/// Recorded validator misbehaviour, ascending by height, round, validator index and kind.
pub fn misbehaviour<S: Store + ?Sized>(
    store: &S,
    page_size: usize,
    page_token: &str,
) -> Result<Page<Misbehaviour>, QueryError> {
    list_in(
        store,
        Column::Meta,
        keys::META_MISBEHAVIOUR,
        page_size,
        page_token,
        |_, _, value| crate::state::decode_json(Column::Meta, value).map(Some),
    )
}
