//! Governance of the membership on the ledger (docs/decisions/0009-governance.md).
//!
//! A validator institution proposes one [`MembershipChange`]; validator institutions approve it.
//! Once more than 2/3 of the validators in force have approved it (by count, one vote per
//! validator; the proposal is its proposer's approval), no later than its `approve_by_height`, it
//! is *approved*, and at the end of the block before its `effective_height` it is *enacted*: the
//! membership, and with it the validator set, of `effective_height` is the changed one. A change
//! that no longer applies then (another change came first) *fails*, and says why.
//!
//! What is kept, all in `Column::Meta`:
//!
//! | key | value |
//! | --- | --- |
//! | `member/` ‖ org number | `Member`: the membership in force (state-tree kind 5) |
//! | `gov/proposal/` ‖ id | `GovernanceProposal` (state-tree kind 6) |
//! | `gov/order/` ‖ height (8 BE) ‖ index (4 BE) | the id, in proposal order |
//! | `gov/due/` ‖ effective height (8 BE) ‖ id | empty: approved, to be enacted |
//! | `validator_sets/` ‖ first height (8 BE) | `ValidatorSetEntry`: the set history |

use prost::Message;
use sha2::{Digest, Sha256};
use varde_consensus::{ValidatorSet, VerifyingKey};
use varde_proto::v1;
use varde_storage::{Column, Store};

use crate::domain::{ChangeProposal, MembershipChange, RejectionReason};
use crate::execution::{ExecutionContext, Failure, reject};
use crate::identifiers::OrgNumber;
use crate::membership::{Institution, Membership, Role};
use crate::signing::TransactionId;
use crate::state::{StateError, StateView, keys};
use crate::stored::StoredValue;

pub const META_MEMBER: &[u8] = b"member/";
pub const META_PROPOSAL: &[u8] = b"gov/proposal/";
pub const META_PROPOSAL_ORDER: &[u8] = b"gov/order/";
const META_DUE: &[u8] = b"gov/due/";
pub const META_VALIDATOR_SETS: &[u8] = b"validator_sets/";

/// How far ahead of its proposal a change may take effect: about 12 days at one block a second.
pub const EFFECTIVE_HEIGHT_AHEAD_MAX: u64 = 1_000_000;

/// Approvals that make a proposal pass among `validators` validators: more than 2/3 of them.
pub fn approvals_needed(validators: usize) -> usize {
    validators * 2 / 3 + 1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposalStatus {
    Open,
    Approved,
    Enacted,
    Failed,
    /// Derived, never stored: open when its `approve_by_height` has passed.
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub org_number: OrgNumber,
    pub height: u64,
    pub transaction_id: TransactionId,
}

/// A proposal as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub id: TransactionId,
    pub proposer: OrgNumber,
    pub change: MembershipChange,
    pub proposed_at_height: u64,
    pub effective_height: u64,
    pub approve_by_height: u64,
    pub approvals: Vec<Approval>,
    /// As stored: never `Expired` (see [`Proposal::status_at`]).
    pub status: ProposalStatus,
    /// 0 until approved.
    pub approved_at_height: u64,
    /// Why an approved change was not enacted; empty otherwise.
    pub failure: String,
}

impl Proposal {
    /// The status as read over a head at `head_height`: an open proposal that no later block
    /// can approve any more (its approve-by height is reached) has expired.
    pub fn status_at(&self, head_height: u64) -> ProposalStatus {
        match self.status {
            ProposalStatus::Open if head_height >= self.approve_by_height => {
                ProposalStatus::Expired
            }
            status => status,
        }
    }

    /// The API message, with the status as read over a head at `height`.
    pub fn to_wire_at(&self, height: u64) -> v1::GovernanceProposal {
        let mut wire = proposal_to_wire(self);
        wire.status = status_to_wire(self.status_at(height)) as i32;
        wire
    }
}

fn status_to_wire(status: ProposalStatus) -> v1::ProposalStatus {
    match status {
        ProposalStatus::Open => v1::ProposalStatus::Open,
        ProposalStatus::Approved => v1::ProposalStatus::Approved,
        ProposalStatus::Enacted => v1::ProposalStatus::Enacted,
        ProposalStatus::Failed => v1::ProposalStatus::Failed,
        ProposalStatus::Expired => v1::ProposalStatus::Expired,
    }
}

pub(crate) fn proposal_to_wire(proposal: &Proposal) -> v1::GovernanceProposal {
    v1::GovernanceProposal {
        id: proposal.id.0.to_vec(),
        proposer_org_number: proposal.proposer.to_string(),
        change: Some(crate::wire::membership_change_to_wire(&proposal.change)),
        proposed_at_height: proposal.proposed_at_height,
        effective_height: proposal.effective_height,
        approve_by_height: proposal.approve_by_height,
        approvals: proposal
            .approvals
            .iter()
            .map(|approval| v1::GovernanceApproval {
                org_number: approval.org_number.to_string(),
                height: approval.height,
                transaction_id: approval.transaction_id.0.to_vec(),
            })
            .collect(),
        status: status_to_wire(proposal.status) as i32,
        approved_at_height: proposal.approved_at_height,
        failure: proposal.failure.clone(),
    }
}

pub(crate) fn proposal_from_wire(
    wire: v1::GovernanceProposal,
) -> Result<Proposal, crate::wire::FieldError> {
    use crate::wire::{bytes32 as bytes32_field, org_number};
    let status = match v1::ProposalStatus::try_from(wire.status) {
        Ok(v1::ProposalStatus::Open) => ProposalStatus::Open,
        Ok(v1::ProposalStatus::Approved) => ProposalStatus::Approved,
        Ok(v1::ProposalStatus::Enacted) => ProposalStatus::Enacted,
        Ok(v1::ProposalStatus::Failed) => ProposalStatus::Failed,
        _ => {
            return Err(crate::wire::FieldError {
                field: "status".to_owned(),
                problem: crate::wire::FieldProblem::UnknownEnumValue(wire.status),
            });
        }
    };
    let change = wire.change.unwrap_or_default();
    Ok(Proposal {
        id: TransactionId(bytes32_field("id", &wire.id)?),
        proposer: org_number("proposer_org_number", &wire.proposer_org_number)?,
        change: crate::wire::membership_change_from_wire("change", &change)?,
        proposed_at_height: wire.proposed_at_height,
        effective_height: wire.effective_height,
        approve_by_height: wire.approve_by_height,
        approvals: wire
            .approvals
            .iter()
            .map(|approval| {
                Ok(Approval {
                    org_number: org_number("approvals.org_number", &approval.org_number)?,
                    height: approval.height,
                    transaction_id: TransactionId(bytes32_field(
                        "approvals.transaction_id",
                        &approval.transaction_id,
                    )?),
                })
            })
            .collect::<Result<_, crate::wire::FieldError>>()?,
        status,
        approved_at_height: wire.approved_at_height,
        failure: wire.failure,
    })
}

/// One validator set of the history and the first height it decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorSetRecord {
    pub from_height: u64,
    /// Consensus keys in ascending byte order (the engine's validator indexes).
    pub keys: Vec<[u8; 32]>,
}

impl ValidatorSetRecord {
    /// The headers' `validator_set_hash` of this set ([`Membership::validator_set_hash`]).
    pub fn hash(&self) -> [u8; 32] {
        set_hash(&self.keys)
    }

    pub fn to_wire(&self) -> v1::ValidatorSetEntry {
        v1::ValidatorSetEntry {
            from_height: self.from_height,
            validators: self.keys.iter().map(|key| key.to_vec()).collect(),
            set_hash: self.hash().to_vec(),
        }
    }
}

/// The consensus engine's validator set of `keys` (ascending byte order, so that validator
/// indexes mean the same validators everywhere), or why they make none.
pub fn consensus_set(keys: &[[u8; 32]]) -> Result<ValidatorSet, String> {
    let verifying = keys
        .iter()
        .map(VerifyingKey::from_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("a validator key is not an Ed25519 point: {error}"))?;
    ValidatorSet::new(verifying).map_err(|error| format!("the validator set is unusable: {error}"))
}

/// SHA-256("varde-validators-v1" || 0x00 || each key in ascending byte order).
pub fn set_hash(keys: &[[u8; 32]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"varde-validators-v1\x00");
    for key in keys {
        hasher.update(key);
    }
    hasher.finalize().into()
}

fn proposal_key(id: &TransactionId) -> Vec<u8> {
    keys::with_prefix(META_PROPOSAL, &[&id.0])
}

fn due_prefix(effective_height: u64) -> Vec<u8> {
    keys::with_prefix(META_DUE, &[&effective_height.to_be_bytes()])
}

fn member_key(org_number: &OrgNumber) -> Vec<u8> {
    keys::with_prefix(META_MEMBER, &[org_number.as_str().as_bytes()])
}

fn validator_set_key(from_height: u64) -> Vec<u8> {
    keys::with_prefix(META_VALIDATOR_SETS, &[&from_height.to_be_bytes()])
}

/// Writes what a new ledger starts with: the genesis members and the genesis validator set,
/// in force from height 1.
pub(crate) fn initialise<S: Store + ?Sized>(view: &mut StateView<'_, S>, membership: &Membership) {
    for institution in membership.institutions() {
        put_member(view, institution);
    }
    view.put_value(
        Column::Meta,
        validator_set_key(1),
        &ValidatorSetRecord {
            from_height: 1,
            keys: membership.validator_keys(),
        },
    );
}

fn put_member<S: Store + ?Sized>(view: &mut StateView<'_, S>, institution: &Institution) {
    view.put(
        Column::Meta,
        member_key(&institution.org_number),
        crate::wire::member_to_wire(institution).encode_to_vec(),
    );
}

/// A member as the state in `view` holds it (the message its state-tree leaf commits to).
pub fn stored_member<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    org_number: &OrgNumber,
) -> Result<Option<v1::Member>, StateError> {
    view.get(Column::Meta, &member_key(org_number))?
        .map(|bytes| {
            crate::canonical::decode_canonical(&bytes).map_err(|error| StateError::Corrupt {
                column: Column::Meta,
                detail: error.to_string(),
            })
        })
        .transpose()
}

/// The membership in force after the committed head, or `None` for a store that keeps none
/// (a ledger written before governance: its membership is the genesis one).
pub fn load_membership<S: Store + ?Sized>(store: &S) -> Result<Option<Membership>, StateError> {
    let view = StateView::new(store);
    let entries = view.scan_all(Column::Meta, META_MEMBER)?;
    if entries.is_empty() {
        return Ok(None);
    }
    let institutions = entries
        .iter()
        .map(|(_, value)| member_from_stored(value))
        .collect::<Result<Vec<_>, _>>()?;
    Membership::from_institutions(&institutions)
        .map(Some)
        .map_err(|error| StateError::Corrupt {
            column: Column::Meta,
            detail: format!("the stored membership does not hold: {error}"),
        })
}

fn member_from_stored(value: &[u8]) -> Result<Institution, StateError> {
    let corrupt = |detail: String| StateError::Corrupt {
        column: Column::Meta,
        detail,
    };
    let member: v1::Member =
        crate::canonical::decode_canonical(value).map_err(|error| corrupt(error.to_string()))?;
    crate::wire::member_from_wire("member", &member).map_err(|error| corrupt(error.to_string()))
}

/// The validator-set history, in ascending order of first height; empty for a store written
/// before governance (its only set is the genesis one).
pub fn validator_sets<S: Store + ?Sized>(store: &S) -> Result<Vec<ValidatorSetRecord>, StateError> {
    StateView::new(store)
        .scan_all(Column::Meta, META_VALIDATOR_SETS)?
        .iter()
        .map(|(_, value)| ValidatorSetRecord::decode(Column::Meta, value))
        .collect()
}

/// The validator set that decides `height`, from the history in `view`.
pub fn validator_set_at<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    height: u64,
) -> Result<Option<ValidatorSetRecord>, StateError> {
    let entries = view.scan_before(
        Column::Meta,
        META_VALIDATOR_SETS,
        &validator_set_key(height.saturating_add(1)),
    )?;
    entries
        .last()
        .map(|(_, value)| ValidatorSetRecord::decode(Column::Meta, value))
        .transpose()
}

pub fn proposal<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    id: &TransactionId,
) -> Result<Option<Proposal>, StateError> {
    view.get_value(Column::Meta, &proposal_key(id))
}

/// The membership after `change`, held to the genesis rules, or why the change does not apply.
pub fn membership_after(
    membership: &Membership,
    change: &MembershipChange,
) -> Result<Membership, String> {
    let mut institutions: Vec<Institution> = membership.institutions().cloned().collect();
    let position = |institutions: &[Institution], org_number: &OrgNumber| {
        institutions
            .iter()
            .position(|institution| institution.org_number == *org_number)
            .ok_or_else(|| format!("{org_number} is not a member"))
    };
    match change {
        MembershipChange::AddInstitution(institution) => {
            if position(&institutions, &institution.org_number).is_ok() {
                return Err(format!("{} is a member already", institution.org_number));
            }
            institutions.push(institution.clone());
        }
        MembershipChange::RemoveInstitution(org_number) => {
            let at = position(&institutions, org_number)?;
            institutions.remove(at);
        }
        MembershipChange::UpdateInstitution {
            org_number,
            name,
            roles,
        } => {
            let at = position(&institutions, org_number)?;
            let institution = &mut institutions[at];
            if roles.contains(&Role::Validator) != institution.has_role(Role::Validator) {
                return Err(
                    "the validator role changes only by add_validator and remove_validator"
                        .to_owned(),
                );
            }
            institution.name = name.clone();
            institution.roles = roles.clone();
        }
        MembershipChange::AddSubmittingKey { org_number, key } => {
            let at = position(&institutions, org_number)?;
            institutions[at].public_keys.push(*key);
        }
        MembershipChange::RevokeSubmittingKey { org_number, key } => {
            let at = position(&institutions, org_number)?;
            let keys = &mut institutions[at].public_keys;
            let Some(index) = keys.iter().position(|held| held == key) else {
                return Err(format!("the key is not a submitting key of {org_number}"));
            };
            keys.remove(index);
        }
        MembershipChange::AddValidator { org_number, key } => {
            let at = position(&institutions, org_number)?;
            let institution = &mut institutions[at];
            if institution.has_role(Role::Validator) {
                return Err(format!("{org_number} runs a validator already"));
            }
            institution.roles.push(Role::Validator);
            institution.validator_key = Some(*key);
        }
        MembershipChange::RemoveValidator(org_number) => {
            let at = position(&institutions, org_number)?;
            let institution = &mut institutions[at];
            if !institution.has_role(Role::Validator) {
                return Err(format!("{org_number} runs no validator"));
            }
            institution.roles.retain(|role| *role != Role::Validator);
            institution.validator_key = None;
            if institution.roles.is_empty() {
                return Err(format!(
                    "{org_number} would have no role left; remove the institution instead"
                ));
            }
        }
        MembershipChange::RotateValidatorKey { org_number, key } => {
            let at = position(&institutions, org_number)?;
            let institution = &mut institutions[at];
            if !institution.has_role(Role::Validator) {
                return Err(format!("{org_number} runs no validator"));
            }
            institution.validator_key = Some(*key);
        }
    }
    Membership::from_institutions(&institutions).map_err(|error| error.to_string())
}

/// Approvals of `proposal` that count in `membership`: those of its validator institutions.
fn counted_approvals(proposal: &Proposal, membership: &Membership) -> usize {
    proposal
        .approvals
        .iter()
        .filter(|approval| {
            membership
                .institution(&approval.org_number)
                .is_some_and(|institution| institution.has_role(Role::Validator))
        })
        .count()
}

/// Stores `proposal`, approved when its approvals suffice at `height`.
fn store_proposal<S: Store + ?Sized>(
    view: &mut StateView<'_, S>,
    membership: &Membership,
    height: u64,
    mut proposal: Proposal,
) {
    if proposal.status == ProposalStatus::Open
        && counted_approvals(&proposal, membership)
            >= approvals_needed(membership.validator_keys().len())
    {
        proposal.status = ProposalStatus::Approved;
        proposal.approved_at_height = height;
        view.put(
            Column::Meta,
            keys::with_prefix(&due_prefix(proposal.effective_height), &[&proposal.id.0]),
            Vec::new(),
        );
    }
    view.put_value(Column::Meta, proposal_key(&proposal.id), &proposal);
}

fn require_validator(signer: &Institution) -> Result<(), Failure> {
    if signer.has_role(Role::Validator) {
        return Ok(());
    }
    reject(
        RejectionReason::MissingRole,
        format!(
            "{} lacks the role validator, which governance needs",
            signer.org_number
        ),
    )
}

/// A `ProposeChange` by `signer` (its proposer), committed at `context` as transaction `id`.
pub(crate) fn propose<S: Store + ?Sized>(
    view: &mut StateView<'_, S>,
    membership: &Membership,
    signer: &Institution,
    context: ExecutionContext,
    id: TransactionId,
    proposed: &ChangeProposal,
) -> Result<(), Failure> {
    require_validator(signer)?;
    let height = context.height;
    if proposed.effective_height <= height
        || proposed.effective_height - height > EFFECTIVE_HEIGHT_AHEAD_MAX
    {
        return reject(
            RejectionReason::InvalidChange,
            format!(
                "effective_height must lie after this block's height {height} and at most \
                 {EFFECTIVE_HEIGHT_AHEAD_MAX} heights after it"
            ),
        );
    }
    let approve_by_height = proposed
        .approve_by_height
        .unwrap_or(proposed.effective_height - 1);
    if approve_by_height < height {
        return reject(
            RejectionReason::InvalidChange,
            format!("approve_by_height has passed (this block is at height {height})"),
        );
    }
    if let Err(detail) = membership_after(membership, &proposed.change) {
        return reject(RejectionReason::InvalidChange, detail);
    }
    let proposal = Proposal {
        id,
        proposer: signer.org_number.clone(),
        change: proposed.change.clone(),
        proposed_at_height: height,
        effective_height: proposed.effective_height,
        approve_by_height,
        approvals: vec![Approval {
            org_number: signer.org_number.clone(),
            height,
            transaction_id: id,
        }],
        status: ProposalStatus::Open,
        approved_at_height: 0,
        failure: String::new(),
    };
    view.put(
        Column::Meta,
        keys::with_prefix(
            META_PROPOSAL_ORDER,
            &[&keys::position(height, context.index)],
        ),
        id.0.to_vec(),
    );
    store_proposal(view, membership, height, proposal);
    Ok(())
}

/// An `ApproveChange` of `proposal_id` by `signer`, committed at `context` as transaction `id`.
pub(crate) fn approve<S: Store + ?Sized>(
    view: &mut StateView<'_, S>,
    membership: &Membership,
    signer: &Institution,
    context: ExecutionContext,
    id: TransactionId,
    proposal_id: &TransactionId,
) -> Result<(), Failure> {
    require_validator(signer)?;
    let Some(mut proposal) = proposal(view, proposal_id)? else {
        return reject(RejectionReason::UnknownProposal, "no proposal has this id");
    };
    match proposal.status {
        ProposalStatus::Open if context.height <= proposal.approve_by_height => {}
        ProposalStatus::Open | ProposalStatus::Expired => {
            return reject(
                RejectionReason::ProposalClosed,
                format!(
                    "the proposal's approve_by_height {} has passed",
                    proposal.approve_by_height
                ),
            );
        }
        _ => {
            return reject(
                RejectionReason::ProposalClosed,
                format!(
                    "the proposal was approved at height {}",
                    proposal.approved_at_height
                ),
            );
        }
    }
    if proposal
        .approvals
        .iter()
        .any(|approval| approval.org_number == signer.org_number)
    {
        return reject(
            RejectionReason::AlreadyApproved,
            format!("{} approved this proposal already", signer.org_number),
        );
    }
    proposal.approvals.push(Approval {
        org_number: signer.org_number.clone(),
        height: context.height,
        transaction_id: id,
    });
    store_proposal(view, membership, context.height, proposal);
    Ok(())
}

/// At the end of the block before `next_height`: enacts, in ascending order of id, the approved
/// proposals effective at `next_height`, and records the membership (and validator set, when it
/// changed) they give. Returns the new membership when any change was enacted.
pub(crate) fn enact_due<S: Store + ?Sized>(
    view: &mut StateView<'_, S>,
    membership: &Membership,
    next_height: u64,
) -> Result<Option<Membership>, StateError> {
    let due = view.scan_all(Column::Meta, &due_prefix(next_height))?;
    if due.is_empty() {
        return Ok(None);
    }
    let mut current: Option<Membership> = None;
    for (key, _) in due {
        view.delete(Column::Meta, key.clone());
        let id = TransactionId(
            key[key.len() - 32..]
                .try_into()
                .expect("a due key ends with a 32-byte id"),
        );
        let Some(mut proposal) = proposal(view, &id)? else {
            return Err(StateError::Corrupt {
                column: Column::Meta,
                detail: "a due governance change names no stored proposal".to_owned(),
            });
        };
        match membership_after(current.as_ref().unwrap_or(membership), &proposal.change) {
            Ok(changed) => {
                proposal.status = ProposalStatus::Enacted;
                current = Some(changed);
            }
            Err(detail) => {
                proposal.status = ProposalStatus::Failed;
                proposal.failure = detail;
            }
        }
        view.put_value(Column::Meta, proposal_key(&id), &proposal);
    }
    let Some(changed) = current else {
        return Ok(None);
    };
    for institution in membership.institutions() {
        if changed.institution(&institution.org_number).is_none() {
            view.delete(Column::Meta, member_key(&institution.org_number));
        }
    }
    for institution in changed.institutions() {
        if membership.institution(&institution.org_number) != Some(institution) {
            put_member(view, institution);
        }
    }
    if changed.validator_keys() != membership.validator_keys() {
        view.put_value(
            Column::Meta,
            validator_set_key(next_height),
            &ValidatorSetRecord {
                from_height: next_height,
                keys: changed.validator_keys(),
            },
        );
    }
    Ok(Some(changed))
}
