//! `Ledger.StreamEvents`: committed events from a height on, then live, each one the caller may
//! see. With a subject filter, a consent authority acting for that subject sees every event about
//! it (the patient's live notifications); the subject of a supersession, retraction, read,
//! revocation or unblock is that of the item it changed.
//!
//! A stream lives at most its lifetime (default one hour, at most a day), and ends as soon as its
//! caller's membership changes (a removed key or role): the client resumes with a fresh signature.

use std::pin::Pin;
use std::time::Duration;

use prost::Message as _;
use tokio::sync::broadcast;
use tokio_stream::Stream;
use tonic::Status;
use varde_ledger::domain::{Receipt, SubjectPseudonym};
use varde_ledger::membership::Institution;
use varde_ledger::state::StateView;
use varde_ledger::visibility::{self, Viewer};
use varde_ledger::wire;
use varde_proto::v1;
use varde_storage::Store;

use super::{Api, internal, invalid};
use crate::context::now_unix_ms;
use crate::events::CommittedTransaction;

pub type EventStream = Pin<Box<dyn Stream<Item = Result<v1::LedgerEvent, Status>> + Send>>;

/// A stream's lifetime when the request names none, and the longest one granted.
pub const STREAM_LIFETIME_DEFAULT: Duration = Duration::from_secs(60 * 60);
pub const STREAM_LIFETIME_MAX: Duration = Duration::from_secs(24 * 60 * 60);

struct EventFilter {
    kinds: Vec<i32>,
    subject: Option<SubjectPseudonym>,
    institution: Option<String>,
    caller: Institution,
}

impl EventFilter {
    fn new(request: &v1::StreamEventsRequest, caller: Institution) -> Result<Self, Status> {
        for kind in &request.kinds {
            if v1::EventKind::try_from(*kind).is_err() {
                return Err(Status::invalid_argument(format!(
                    "field `kinds` has unknown event kind {kind}"
                )));
            }
        }
        let subject = if request.subject_pseudonym.is_empty() {
            None
        } else {
            Some(wire::subject("subject_pseudonym", &request.subject_pseudonym).map_err(invalid)?)
        };
        let institution = if request.institution_org_number.is_empty() {
            None
        } else {
            Some(
                wire::org_number("institution_org_number", &request.institution_org_number)
                    .map_err(invalid)?
                    .as_str()
                    .to_owned(),
            )
        };
        Ok(Self {
            kinds: request.kinds.clone(),
            subject,
            institution,
            caller,
        })
    }
}

impl<S: Store + 'static> Api<S> {
    /// Starts the task that serves one StreamEvents call.
    pub(super) fn event_stream(
        &self,
        request: v1::StreamEventsRequest,
        caller: Institution,
    ) -> Result<EventStream, Status> {
        let lifetime = match request.lifetime_seconds {
            0 => STREAM_LIFETIME_DEFAULT,
            seconds => Duration::from_secs(u64::from(seconds)).min(STREAM_LIFETIME_MAX),
        };
        let filter = EventFilter::new(&request, caller)?;
        let mut live = self.context.committed.subscribe();
        let api = self.clone();
        let stopped = self.stopped();
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<v1::LedgerEvent, Status>>(64);
        tokio::spawn(async move {
            let expired = tokio::time::sleep(lifetime);
            tokio::pin!(stopped, expired);
            // Catch up from storage, then follow the live channel; fall back to storage on lag.
            let mut next_height = request.from_height.max(1);
            loop {
                if !api.still_member(&filter.caller) {
                    return;
                }
                let head = match api.height() {
                    Ok(head) => head,
                    Err(status) => {
                        let _ = sender.send(Err(status)).await;
                        return;
                    }
                };
                while next_height <= head {
                    if !send_all(&sender, api.stored_events(next_height, &filter)).await {
                        return;
                    }
                    next_height += 1;
                }
                // Stop as soon as the client goes away: this task holds the node context.
                let received = tokio::select! {
                    _ = sender.closed() => return,
                    _ = &mut stopped => return,
                    _ = &mut expired => return,
                    received = live.recv() => received,
                };
                match received {
                    Ok(block) if block.height == next_height => {
                        if !api.still_member(&filter.caller) {
                            return;
                        }
                        let events = api.events_of(block.height, &block.transactions, &filter);
                        if !send_all(&sender, events).await {
                            return;
                        }
                        next_height += 1;
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {} // Re-read from storage.
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(
            receiver,
        )))
    }

    /// Whether the caller's institution is still a member with the same keys and roles.
    fn still_member(&self, caller: &Institution) -> bool {
        self.context
            .ledger
            .membership()
            .institution(&caller.org_number)
            .is_some_and(|current| current == caller)
    }

    fn stored_events(
        &self,
        height: u64,
        filter: &EventFilter,
    ) -> Result<Vec<v1::LedgerEvent>, Status> {
        let Some(block) = self.block_at(height)? else {
            return Ok(Vec::new());
        };
        let mut transactions = Vec::with_capacity(block.transactions.len());
        for (index, envelope) in block.transactions.into_iter().enumerate() {
            let index = index as u32;
            let Some(receipt) = self.receipt_at(height, index)? else {
                continue;
            };
            transactions.push(CommittedTransaction {
                id: receipt.transaction_id,
                index,
                envelope,
                receipt,
            });
        }
        self.events_of(height, &transactions, filter)
    }

    /// The events of one block's transactions that pass `filter` and that its caller may see.
    fn events_of(
        &self,
        height: u64,
        transactions: &[CommittedTransaction],
        filter: &EventFilter,
    ) -> Result<Vec<v1::LedgerEvent>, Status> {
        let view = StateView::new(self.context.ledger.store());
        let mut viewer = Viewer::new(&filter.caller, now_unix_ms());
        viewer.named_subject = filter.subject;
        let membership = self.context.ledger.membership();
        let mut events = Vec::new();
        for transaction in transactions {
            let Ok(wire_body) = v1::TransactionBody::decode(transaction.envelope.body.as_slice())
            else {
                continue;
            };
            let kind = event_kind(&wire_body) as i32;
            if !filter.kinds.is_empty() && !filter.kinds.contains(&kind) {
                continue;
            }
            let Ok(body) = wire::decode_body(wire_body.clone()) else {
                continue;
            };
            if let Some(wanted) = &filter.subject {
                let subject = visibility::subject_of(&view, &body.action).map_err(internal)?;
                if subject.as_ref() != Some(wanted) {
                    continue;
                }
            }
            if let Some(wanted) = &filter.institution {
                if !named_institutions(&wire_body).contains(wanted) {
                    continue;
                }
            }
            let signer = <[u8; 32]>::try_from(transaction.envelope.signer_public_key.as_slice())
                .ok()
                .and_then(|key| membership.owner_of_key(&key));
            let visible = visibility::may_see_transaction(
                &view,
                &viewer,
                signer,
                &body.action,
                outcome(&transaction.receipt),
            )
            .map_err(internal)?;
            if !visible {
                continue;
            }
            events.push(v1::LedgerEvent {
                height,
                index: transaction.index,
                transaction_id: transaction.id.0.to_vec(),
                kind,
                body: Some(wire_body),
                receipt: Some(wire::receipt_to_wire(&transaction.receipt)),
            });
        }
        Ok(events)
    }
}

/// Sends one height's events, or its error; false when the stream is over (the client left or
/// an error was sent).
async fn send_all(
    sender: &tokio::sync::mpsc::Sender<Result<v1::LedgerEvent, Status>>,
    events: Result<Vec<v1::LedgerEvent>, Status>,
) -> bool {
    match events {
        Ok(events) => {
            for event in events {
                if sender.send(Ok(event)).await.is_err() {
                    return false;
                }
            }
            true
        }
        Err(status) => {
            let _ = sender.send(Err(status)).await;
            false
        }
    }
}

fn outcome(receipt: &Receipt) -> visibility::Outcome {
    if receipt.is_applied() {
        visibility::Outcome::Applied
    } else {
        visibility::Outcome::Rejected
    }
}

fn event_kind(body: &v1::TransactionBody) -> v1::EventKind {
    use v1::transaction_body::Action;
    match &body.action {
        Some(Action::AnchorRecord(_) | Action::SupersedeRecord(_) | Action::RetractRecord(_)) => {
            v1::EventKind::Record
        }
        Some(Action::GrantAccess(_) | Action::RevokeGrant(_)) => v1::EventKind::Grant,
        Some(Action::BlockAccess(_) | Action::UnblockAccess(_)) => v1::EventKind::Block,
        Some(Action::LogAccess(_)) => v1::EventKind::Access,
        Some(Action::ReportMisbehaviour(_)) => v1::EventKind::Misbehaviour,
        Some(Action::ProposeChange(_) | Action::ApproveChange(_)) => v1::EventKind::Governance,
        None => v1::EventKind::Unspecified,
    }
}

/// The institutions a body names (actor, grantee, block target, custodian of the record read),
/// for the `institution_org_number` filter.
fn named_institutions(body: &v1::TransactionBody) -> Vec<String> {
    use v1::transaction_body::Action;
    match &body.action {
        Some(Action::AnchorRecord(anchor)) => vec![anchor.custodian_org_number.clone()],
        Some(Action::SupersedeRecord(record)) => vec![record.custodian_org_number.clone()],
        Some(Action::RetractRecord(record)) => vec![record.custodian_org_number.clone()],
        Some(Action::GrantAccess(grant)) => {
            let mut parties = vec![
                grant.issuer_org_number.clone(),
                grant.grantee_org_number.clone(),
            ];
            if let Some(v1::grant_scope::Scope::Record(record)) =
                grant.scope.as_ref().and_then(|scope| scope.scope.as_ref())
            {
                parties.push(record.custodian_org_number.clone());
            }
            parties
        }
        Some(Action::RevokeGrant(revoke)) => vec![revoke.issuer_org_number.clone()],
        Some(Action::BlockAccess(block)) => {
            let mut parties = vec![block.issuer_org_number.clone()];
            if let Some(v1::block_access::Target::InstitutionOrgNumber(target)) = &block.target {
                parties.push(target.clone());
            }
            parties
        }
        Some(Action::UnblockAccess(unblock)) => vec![unblock.issuer_org_number.clone()],
        Some(Action::LogAccess(log)) => {
            let mut parties = vec![log.accessor_org_number.clone()];
            if let Some(record) = &log.record {
                parties.push(record.custodian_org_number.clone());
            }
            parties
        }
        Some(Action::ProposeChange(propose)) => vec![propose.proposer_org_number.clone()],
        Some(Action::ApproveChange(approve)) => vec![approve.approver_org_number.clone()],
        // The reporter is the signer's institution, not named in the body.
        Some(Action::ReportMisbehaviour(_)) | None => Vec::new(),
    }
}
