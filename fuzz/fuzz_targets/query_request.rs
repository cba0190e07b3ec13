//! A query request as the node handles it: the first byte picks the method, the rest is the
//! request. The signature is checked over the request without its `auth` (`signing::verify_query`,
//! the node's authentication), then the fields the handler validates, then the page token
//! (`PageTokenKey::open`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use varde_fuzz::CHAIN_ID;
use varde_ledger::page_token::PageTokenKey;
use varde_ledger::signing::{self, SignedRequest};
use varde_ledger::wire;
use varde_proto::v1;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    match selector % 11 {
        0 => drop(authenticated::<v1::GetTransactionRequest>(
            "/varde.v1.Ledger/GetTransaction",
            bytes,
        )),
        1 => drop(authenticated::<v1::GetBlockRequest>(
            "/varde.v1.Ledger/GetBlock",
            bytes,
        )),
        2 => drop(authenticated::<v1::GetInclusionProofRequest>(
            "/varde.v1.Ledger/GetInclusionProof",
            bytes,
        )),
        3 => drop(authenticated::<v1::StreamEventsRequest>(
            "/varde.v1.Ledger/StreamEvents",
            bytes,
        )),
        4 => {
            if let Some(request) = authenticated::<v1::ListMisbehaviourRequest>(
                "/varde.v1.Ledger/ListMisbehaviour",
                bytes,
            ) {
                page_token(&request.page_token);
            }
        }
        5 => {
            if let Some(request) =
                authenticated::<v1::GetRecordRequest>("/varde.v1.Query/GetRecord", bytes)
            {
                let _ = wire::record_reference("record", request.record);
            }
        }
        6 => {
            use v1::list_records_request::Filter;
            if let Some(request) =
                authenticated::<v1::ListRecordsRequest>("/varde.v1.Query/ListRecords", bytes)
            {
                match &request.filter {
                    Some(Filter::SubjectPseudonym(subject)) => {
                        let _ = wire::subject("subject_pseudonym", subject);
                    }
                    Some(Filter::CustodianOrgNumber(org)) => {
                        let _ = wire::org_number("custodian_org_number", org);
                    }
                    None => {}
                }
                page_token(&request.page_token);
            }
        }
        7 => {
            use v1::list_grants_request::Filter;
            if let Some(request) =
                authenticated::<v1::ListGrantsRequest>("/varde.v1.Query/ListGrants", bytes)
            {
                match &request.filter {
                    Some(Filter::SubjectPseudonym(subject)) => {
                        let _ = wire::subject("subject_pseudonym", subject);
                    }
                    Some(Filter::GranteeOrgNumber(org)) => {
                        let _ = wire::org_number("grantee_org_number", org);
                    }
                    None => {}
                }
                page_token(&request.page_token);
            }
        }
        8 => {
            use v1::list_access_events_request::Filter;
            if let Some(request) = authenticated::<v1::ListAccessEventsRequest>(
                "/varde.v1.Query/ListAccessEvents",
                bytes,
            ) {
                match &request.filter {
                    Some(Filter::SubjectPseudonym(subject)) => {
                        let _ = wire::subject("subject_pseudonym", subject);
                    }
                    Some(Filter::Record(record)) => {
                        let _ = wire::record_reference("record", Some(record.clone()));
                    }
                    Some(Filter::AccessorOrgNumber(org)) => {
                        let _ = wire::org_number("accessor_org_number", org);
                    }
                    None => {}
                }
                page_token(&request.page_token);
            }
        }
        9 => {
            if let Some(request) = authenticated::<v1::ListAccessBlocksRequest>(
                "/varde.v1.Query/ListAccessBlocks",
                bytes,
            ) {
                let _ = wire::subject("subject_pseudonym", &request.subject_pseudonym);
                page_token(&request.page_token);
            }
        }
        _ => {
            if let Some(request) =
                authenticated::<v1::CheckAccessRequest>("/varde.v1.Query/CheckAccess", bytes)
            {
                let _ = wire::org_number("accessor_org_number", &request.accessor_org_number);
                if !request.accessor_hpr_number.is_empty() {
                    let _ = wire::hpr_number("accessor_hpr_number", &request.accessor_hpr_number);
                }
                let _ = wire::record_reference("record", request.record);
                let _ = wire::purpose("purpose", request.purpose);
            }
        }
    }
});

/// The request, decoded as gRPC does, with its signature checked when it carries one.
fn authenticated<R: SignedRequest + Default>(method: &str, bytes: &[u8]) -> Option<R> {
    let request = R::decode(bytes).ok()?;
    if let Some(auth) = request.auth()
        && let Ok(key) = signing::verify_query(CHAIN_ID, method, auth, &request.unsigned_bytes())
    {
        assert_eq!(key.as_bytes().as_slice(), auth.caller_public_key.as_slice());
    }
    Some(request)
}

/// A caller's page token: only a token this key sealed for this scope opens, and a sealed
/// cursor opens to itself.
fn page_token(token: &str) {
    let key = PageTokenKey::derive(b"varde-fuzz page tokens");
    let scope = b"caller|method|filter";
    if let Some(cursor) = key.open(scope, token) {
        assert_eq!(key.seal(scope, &cursor), token.to_ascii_lowercase());
    }
    let cursor = token.as_bytes();
    if cursor.len() <= 256 {
        assert_eq!(
            key.open(scope, &key.seal(scope, cursor)).as_deref(),
            Some(cursor)
        );
    }
}
