//! `varde.v1.Query`: records, grants, patient blocks, access events and CheckAccess, each answered
//! through the ledger's visibility rule (`varde_ledger::visibility`).
//!
//! A record that does not exist is NOT_FOUND only for its custodian and auditors; others get
//! PERMISSION_DENIED, so that existence does not leak.

use prost::Message;
use tonic::{Request, Response, Status};
use varde_ledger::access::AccessRequest;
use varde_ledger::domain::{RecordKey, RecordPointer, SubjectPseudonym};
use varde_ledger::fhir::{self, ExportError, ExportRequest};
use varde_ledger::identifiers::OrgNumber;
use varde_ledger::membership::Institution;
use varde_ledger::proof;
use varde_ledger::query::{self, PageRequest};
use varde_ledger::state::{StateView, keys};
use varde_ledger::visibility::{self, CheckAccessAnswer, Viewer};
use varde_ledger::wire;
use varde_proto::v1;
use varde_storage::{Column, Store};

use super::ledger_service::bundle_status;
use super::{Api, internal, invalid, query_status};
use crate::context::now_unix_ms;

/// What a page token is bound to: the calling institution, the method, which of the method's
/// filters (a small number that tells them apart, 0 for none) and its value.
pub(super) fn page_scope(
    caller: &Institution,
    method: &str,
    filter_kind: u8,
    filter: &[u8],
) -> Vec<u8> {
    let mut scope = Vec::with_capacity(16 + method.len() + filter.len());
    scope.extend_from_slice(caller.org_number.as_str().as_bytes());
    scope.push(0);
    scope.extend_from_slice(method.as_bytes());
    scope.push(0);
    scope.push(filter_kind);
    scope.extend_from_slice(filter);
    scope
}

fn subject(bytes: &[u8]) -> Result<SubjectPseudonym, Status> {
    wire::subject("subject_pseudonym", bytes).map_err(invalid)
}

/// The status for a refused or failed FHIR export; the messages name no personal data.
fn export_status(error: ExportError) -> Status {
    let message = error.to_string();
    match error {
        ExportError::NothingSelected | ExportError::InvalidHeightRange { .. } => {
            Status::invalid_argument(message)
        }
        ExportError::TooManyHeights { .. } | ExportError::TooManyResources { .. } => {
            Status::resource_exhausted(message)
        }
        ExportError::HeightBeyondFhir { .. } | ExportError::TimeBeyondFhir { .. } => {
            Status::failed_precondition(message)
        }
        ExportError::CorruptBlock { .. } | ExportError::Listing | ExportError::State(_) => {
            internal(message)
        }
    }
}

fn require_listing_for(
    viewer: &Viewer<'_>,
    org_number: &OrgNumber,
    what: &str,
) -> Result<(), Status> {
    if viewer.may_list_for(org_number) {
        Ok(())
    } else {
        Err(Status::permission_denied(format!(
            "only institution {org_number} itself or an auditor may list {what}"
        )))
    }
}

impl<S: Store + 'static> Api<S> {
    pub(super) fn page_request<'a>(
        &'a self,
        page_size: u32,
        page_token: &'a str,
        scope: &'a [u8],
    ) -> PageRequest<'a> {
        PageRequest {
            page_size: page_size as usize,
            page_token,
            tokens: &self.page_tokens,
            scope,
        }
    }

    fn record(&self, key: &RecordKey) -> Result<Option<RecordPointer>, Status> {
        StateView::new(self.context.ledger.store())
            .get_value::<RecordPointer>(Column::Records, &keys::record(key))
            .map_err(internal)
    }

    fn access_event_to_wire(&self, event: &varde_ledger::domain::AccessEvent) -> v1::AccessEvent {
        let mut wire_event = wire::access_event_to_wire(event);
        if let Some(institution) = self
            .context
            .ledger
            .membership()
            .institution(&event.report.accessor)
        {
            wire_event.accessor_institution_name = institution.name.clone();
        }
        wire_event
    }
}

#[tonic::async_trait]
impl<S: Store + 'static> v1::query_server::Query for Api<S> {
    async fn get_record(
        &self,
        request: Request<v1::GetRecordRequest>,
    ) -> Result<Response<v1::GetRecordResponse>, Status> {
        let request = request.into_inner();
        let caller = self.authenticate("/varde.v1.Query/GetRecord", &request)?;
        let key = wire::record_reference("record", request.record.clone()).map_err(invalid)?;
        let height = self.height()?;
        let viewer = Viewer::new(&caller, now_unix_ms());
        let may_know = viewer.may_list_for(&key.custodian);
        let hidden = || Status::permission_denied("this institution may not see that record");
        let Some(record) = self.record(&key)? else {
            return Err(if may_know {
                Status::not_found(format!(
                    "no record `{}` of custodian {}",
                    key.record_id, key.custodian
                ))
            } else {
                hidden()
            });
        };
        let view = StateView::new(self.context.ledger.store());
        if !visibility::may_see_record(&view, &viewer, &record).map_err(internal)? {
            return Err(hidden());
        }
        Ok(Response::new(v1::GetRecordResponse {
            record: Some(wire::record_to_wire(&record)),
            height,
        }))
    }

    async fn list_records(
        &self,
        request: Request<v1::ListRecordsRequest>,
    ) -> Result<Response<v1::ListRecordsResponse>, Status> {
        use v1::list_records_request::Filter;
        let request = request.into_inner();
        let method = "/varde.v1.Query/ListRecords";
        let caller = self.authenticate(method, &request)?;
        let height = self.height()?;
        let store = self.context.ledger.store();
        let viewer = Viewer::new(&caller, now_unix_ms());
        let visible = |view: &StateView<'_, S>, record: &RecordPointer| {
            visibility::may_see_record(view, &viewer, record)
        };
        let page = match &request.filter {
            Some(Filter::SubjectPseudonym(bytes)) => {
                let subject = subject(bytes)?;
                let viewer = viewer.clone().naming_subject(subject);
                let scope = page_scope(&caller, method, 1, &subject.0);
                query::records_by_subject(
                    store,
                    &subject,
                    self.page_request(request.page_size, &request.page_token, &scope),
                    |view, record| visibility::may_see_record(view, &viewer, record),
                )
                .map_err(query_status)?
            }
            Some(Filter::CustodianOrgNumber(custodian)) => {
                let custodian =
                    wire::org_number("custodian_org_number", custodian).map_err(invalid)?;
                require_listing_for(&viewer, &custodian, "a custodian's records")?;
                let scope = page_scope(&caller, method, 2, custodian.as_str().as_bytes());
                query::records_by_custodian(
                    store,
                    &custodian,
                    self.page_request(request.page_size, &request.page_token, &scope),
                    visible,
                )
                .map_err(query_status)?
            }
            None => {
                return Err(Status::invalid_argument(
                    "set `subject_pseudonym` or `custodian_org_number`",
                ));
            }
        };
        Ok(Response::new(v1::ListRecordsResponse {
            records: page.items.iter().map(wire::record_to_wire).collect(),
            next_page_token: page.next_page_token,
            height,
        }))
    }

    async fn list_grants(
        &self,
        request: Request<v1::ListGrantsRequest>,
    ) -> Result<Response<v1::ListGrantsResponse>, Status> {
        use v1::list_grants_request::Filter;
        let request = request.into_inner();
        let method = "/varde.v1.Query/ListGrants";
        let caller = self.authenticate(method, &request)?;
        let height = self.height()?;
        let store = self.context.ledger.store();
        let viewer = Viewer::new(&caller, now_unix_ms());
        let page = match &request.filter {
            Some(Filter::SubjectPseudonym(bytes)) => {
                let subject = subject(bytes)?;
                let viewer = viewer.clone().naming_subject(subject);
                let scope = page_scope(&caller, method, 1, &subject.0);
                query::grants_by_subject(
                    store,
                    &subject,
                    self.page_request(request.page_size, &request.page_token, &scope),
                    |_, grant| Ok(visibility::may_see_grant(&viewer, grant)),
                )
                .map_err(query_status)?
            }
            Some(Filter::GranteeOrgNumber(grantee)) => {
                let grantee = wire::org_number("grantee_org_number", grantee).map_err(invalid)?;
                require_listing_for(&viewer, &grantee, "a grantee's grants")?;
                let scope = page_scope(&caller, method, 2, grantee.as_str().as_bytes());
                query::grants_by_grantee(
                    store,
                    &grantee,
                    self.page_request(request.page_size, &request.page_token, &scope),
                    |_, grant| Ok(visibility::may_see_grant(&viewer, grant)),
                )
                .map_err(query_status)?
            }
            None => {
                return Err(Status::invalid_argument(
                    "set `subject_pseudonym` or `grantee_org_number`",
                ));
            }
        };
        Ok(Response::new(v1::ListGrantsResponse {
            grants: page.items.iter().map(wire::grant_to_wire).collect(),
            next_page_token: page.next_page_token,
            height,
        }))
    }

    async fn list_access_events(
        &self,
        request: Request<v1::ListAccessEventsRequest>,
    ) -> Result<Response<v1::ListAccessEventsResponse>, Status> {
        use v1::list_access_events_request::Filter;
        let request = request.into_inner();
        let method = "/varde.v1.Query/ListAccessEvents";
        let caller = self.authenticate(method, &request)?;
        let height = self.height()?;
        let store = self.context.ledger.store();
        let viewer = Viewer::new(&caller, now_unix_ms());
        let page = match &request.filter {
            Some(Filter::SubjectPseudonym(bytes)) => {
                let subject = subject(bytes)?;
                let viewer = viewer.clone().naming_subject(subject);
                let scope = page_scope(&caller, method, 1, &subject.0);
                query::access_events_by_subject(
                    store,
                    &subject,
                    self.page_request(request.page_size, &request.page_token, &scope),
                    |_, event| Ok(visibility::may_see_access_event(&viewer, event)),
                )
                .map_err(query_status)?
            }
            Some(Filter::Record(record)) => {
                let key =
                    wire::record_reference("record", Some(record.clone())).map_err(invalid)?;
                let scope = page_scope(&caller, method, 2, &keys::record(&key));
                query::access_events_by_record(
                    store,
                    &key,
                    self.page_request(request.page_size, &request.page_token, &scope),
                    |_, event| Ok(visibility::may_see_access_event(&viewer, event)),
                )
                .map_err(query_status)?
            }
            Some(Filter::AccessorOrgNumber(accessor)) => {
                let accessor =
                    wire::org_number("accessor_org_number", accessor).map_err(invalid)?;
                require_listing_for(&viewer, &accessor, "an accessor's reads")?;
                let scope = page_scope(&caller, method, 3, accessor.as_str().as_bytes());
                query::access_events_by_accessor(
                    store,
                    &accessor,
                    self.page_request(request.page_size, &request.page_token, &scope),
                    |_, event| Ok(visibility::may_see_access_event(&viewer, event)),
                )
                .map_err(query_status)?
            }
            None => {
                return Err(Status::invalid_argument(
                    "set `subject_pseudonym`, `record` or `accessor_org_number`",
                ));
            }
        };
        Ok(Response::new(v1::ListAccessEventsResponse {
            events: page
                .items
                .iter()
                .map(|event| self.access_event_to_wire(event))
                .collect(),
            next_page_token: page.next_page_token,
            height,
        }))
    }

    async fn list_access_blocks(
        &self,
        request: Request<v1::ListAccessBlocksRequest>,
    ) -> Result<Response<v1::ListAccessBlocksResponse>, Status> {
        let request = request.into_inner();
        let method = "/varde.v1.Query/ListAccessBlocks";
        let caller = self.authenticate(method, &request)?;
        let height = self.height()?;
        let subject = subject(&request.subject_pseudonym)?;
        let viewer = Viewer::new(&caller, now_unix_ms()).naming_subject(subject);
        let scope = page_scope(&caller, method, 2, &subject.0);
        let page = query::access_blocks_by_subject(
            self.context.ledger.store(),
            &subject,
            self.page_request(request.page_size, &request.page_token, &scope),
            |_, block| Ok(visibility::may_see_access_block(&viewer, block)),
        )
        .map_err(query_status)?;
        Ok(Response::new(v1::ListAccessBlocksResponse {
            blocks: page.items.iter().map(wire::access_block_to_wire).collect(),
            next_page_token: page.next_page_token,
            height,
        }))
    }

    async fn export_fhir(
        &self,
        request: Request<v1::ExportFhirRequest>,
    ) -> Result<Response<v1::ExportFhirResponse>, Status> {
        let request = request.into_inner();
        let caller = self.authenticate("/varde.v1.Query/ExportFhir", &request)?;
        let subject = if request.subject_pseudonym.is_empty() {
            None
        } else {
            Some(subject(&request.subject_pseudonym)?)
        };
        let heights = match (request.from_height, request.to_height) {
            (0, 0) => None,
            range => Some(range),
        };
        let export_request = ExportRequest { subject, heights };
        // An export reads up to 10 000 blocks: off the async workers.
        let context = self.context.clone();
        let export = tokio::task::spawn_blocking(move || {
            let now = now_unix_ms();
            fhir::export(
                &context.ledger,
                &Viewer::new(&caller, now),
                &export_request,
                now,
            )
        })
        .await
        .map_err(internal)?
        .map_err(export_status)?;
        Ok(Response::new(v1::ExportFhirResponse {
            bundle_json: export.to_json_bytes(),
            resource_count: u32::try_from(export.resource_count).unwrap_or(u32::MAX),
            height: export.height,
        }))
    }

    async fn check_access(
        &self,
        request: Request<v1::CheckAccessRequest>,
    ) -> Result<Response<v1::CheckAccessResponse>, Status> {
        let request = request.into_inner();
        let caller = self.authenticate("/varde.v1.Query/CheckAccess", &request)?;
        let accessor = wire::org_number("accessor_org_number", &request.accessor_org_number)
            .map_err(invalid)?;
        let person = if request.accessor_hpr_number.is_empty() {
            None
        } else {
            Some(
                wire::hpr_number("accessor_hpr_number", &request.accessor_hpr_number)
                    .map_err(invalid)?,
            )
        };
        let record = wire::record_reference("record", request.record.clone()).map_err(invalid)?;
        let purpose = wire::purpose("purpose", request.purpose).map_err(invalid)?;
        let access_request = AccessRequest {
            accessor,
            person,
            record,
            purpose,
            at_unix_ms: 0,
        };
        let viewer = Viewer::new(&caller, now_unix_ms());
        let answer = visibility::check_access_answer(
            &StateView::new(self.context.ledger.store()),
            &viewer,
            &access_request,
        )
        .map_err(internal)?;
        if answer == CheckAccessAnswer::Refused {
            return Err(Status::permission_denied(
                "CheckAccess may be asked by the accessor about itself, the record's custodian, \
                 a consent authority or an auditor",
            ));
        }
        let at_unix_ms = (request.at_unix_ms != 0).then_some(request.at_unix_ms);
        let (decision, proof) = if request.with_proof && answer == CheckAccessAnswer::Full {
            varde_ledger::proof::check_access_with_proof(
                &self.context.ledger,
                &access_request,
                at_unix_ms,
                &request.encode_to_vec(),
                &viewer,
            )
            .map_err(internal)?
        } else {
            let decision = self
                .context
                .ledger
                .check_access(access_request, at_unix_ms)
                .map_err(internal)?;
            (decision, None)
        };
        let decision = visibility::redact_decision(decision, answer);
        Ok(Response::new(v1::CheckAccessResponse {
            proof,
            allowed: decision.allowed,
            reason: decision.reason,
            grant_id: decision
                .grant_used
                .map(|id| id.0.to_vec())
                .unwrap_or_default(),
            height: decision.height,
            emergency: decision.emergency,
        }))
    }

    async fn get_state_proof(
        &self,
        request: Request<v1::GetStateProofRequest>,
    ) -> Result<Response<v1::ProofBundle>, Status> {
        let request = request.into_inner();
        let caller = self.authenticate("/varde.v1.Query/GetStateProof", &request)?;
        let entry = request
            .entry
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("set `record`, `grant_id` or `block_id`"))?;
        let key = proof::StateEntryKey::from_wire(entry)
            .map_err(|error| Status::invalid_argument(error.to_string()))?;
        let viewer = Viewer::new(&caller, now_unix_ms());
        proof::state_entry_bundle(&self.context.ledger, &key, &viewer)
            .map_err(bundle_status)?
            .map(Response::new)
            .ok_or_else(|| {
                Status::permission_denied(
                    "this institution may not see that entry (or learn whether it exists)",
                )
            })
    }
}
