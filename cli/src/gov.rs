//! `varde gov`: governance of the membership. `propose` and `approve` build a ProposeChange or an
//! ApproveChange with `varde_client::tx`'s builders and sign and send it as `varde tx` does;
//! `list` and `show` read proposals with signed requests, as `varde query` does, and say for each
//! its change, heights, approvals, the approvals it needs and its status.

use std::path::PathBuf;

use serde_json::{Value, json};
use varde_client::tx::{self, EFFECTIVE_HEIGHT_AHEAD_MAX, approvals_needed};
use varde_client::{Client, now_unix_ms};
use varde_ledger::hex;
use varde_proto::v1;
use varde_proto::v1::transaction_body::Action;

use crate::client;
use crate::exit::{Outcome, usage};
use crate::genesis::parse_org_number;
use crate::keys::read_key;
use crate::query::{self, Paging, QueryOptions};
use crate::render;
use crate::tx::{Named, SendOptions, Session};

#[derive(Debug, clap::Subcommand)]
pub enum GovCommand {
    /// Propose one change to the membership, by a validator institution (signed with one of its
    /// submitting keys or its validator's consensus key). The proposal is its proposer's
    /// approval; its id is the transaction id, printed.
    Propose {
        #[command(subcommand)]
        change: ChangeCommand,
    },
    /// Approve a proposal, by a validator institution (signed as for `propose`). It passes once
    /// more than 2/3 of the validators in force have approved it.
    Approve {
        /// The proposal's id (64 hex characters): the transaction id of its ProposeChange.
        #[arg(value_name = "PROPOSAL_ID")]
        proposal_id: String,
        /// The approving institution's organisation number (the signer's).
        #[arg(long, value_name = "ORG")]
        approver: String,
        #[command(flatten)]
        send: SendOptions,
    },
    /// Governance proposals in the order they were proposed, with their approvals and status.
    /// Signed with a submitting key of any member, or a validator's consensus key.
    List {
        #[command(flatten)]
        paging: Paging,
        #[command(flatten)]
        options: QueryOptions,
    },
    /// One proposal by its id, with its approvals and status (signed as for `list`).
    Show {
        /// The proposal's id (64 hex characters).
        #[arg(value_name = "PROPOSAL_ID")]
        proposal_id: String,
        #[command(flatten)]
        options: QueryOptions,
    },
}

/// The kinds of change, each with its fields.
#[derive(Debug, clap::Subcommand)]
pub enum ChangeCommand {
    /// A new member institution, with its roles and keys as in a genesis file.
    AddInstitution {
        #[command(flatten)]
        institution: NewInstitution,
        #[command(flatten)]
        proposal: ProposalOptions,
    },
    /// A member leaves, with its keys and its validator.
    RemoveInstitution {
        #[command(flatten)]
        member: Member,
        #[command(flatten)]
        proposal: ProposalOptions,
    },
    /// A member's new name and roles (the validator role changes only with add-validator and
    /// remove-validator: give it exactly when the institution has it).
    UpdateInstitution {
        #[command(flatten)]
        member: Member,
        /// The new display name.
        #[arg(long)]
        name: String,
        /// Every role it is to hold: validator, submitter, consent-authority, auditor; repeat.
        #[arg(long = "role", value_name = "ROLE", required = true)]
        roles: Vec<String>,
        #[command(flatten)]
        proposal: ProposalOptions,
    },
    /// One more submitting key of a member.
    AddKey {
        #[command(flatten)]
        member: Member,
        #[command(flatten)]
        key: PublicKey,
        #[command(flatten)]
        proposal: ProposalOptions,
    },
    /// Revoke a member's submitting key: refused from the effective height on.
    RevokeKey {
        #[command(flatten)]
        member: Member,
        #[command(flatten)]
        key: PublicKey,
        #[command(flatten)]
        proposal: ProposalOptions,
    },
    /// Make a member a validator whose node signs with this consensus key.
    AddValidator {
        #[command(flatten)]
        member: Member,
        #[command(flatten)]
        key: PublicKey,
        #[command(flatten)]
        proposal: ProposalOptions,
    },
    /// A member's validator leaves the set (the member keeps its other roles).
    RemoveValidator {
        #[command(flatten)]
        member: Member,
        #[command(flatten)]
        proposal: ProposalOptions,
    },
    /// A member's validator signs with this new consensus key from the effective height on.
    RotateValidatorKey {
        #[command(flatten)]
        member: Member,
        #[command(flatten)]
        key: PublicKey,
        #[command(flatten)]
        proposal: ProposalOptions,
    },
}

/// The member institution a change is about.
#[derive(Debug, Clone, clap::Args)]
pub struct Member {
    /// The institution's organisation number (9 digits, mod-11 check digit).
    #[arg(long, value_name = "ORG")]
    pub org_number: String,
}

/// A public key: 64 hex characters, or the public key of a key file.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub struct PublicKey {
    /// The public key as 64 hex characters ...
    #[arg(long, value_name = "HEX")]
    pub public_key: Option<String>,
    /// ... or the public key of this key file (PKCS#8 PEM; only its public key is used).
    #[arg(long, value_name = "FILE")]
    pub public_key_file: Option<PathBuf>,
}

impl PublicKey {
    fn bytes(&self) -> anyhow::Result<[u8; 32]> {
        match (&self.public_key, &self.public_key_file) {
            (Some(text), _) => parse_public_key("--public-key", text),
            (None, Some(path)) => Ok(read_key(path)?.verifying_key().to_bytes()),
            (None, None) => Err(usage("give --public-key HEX or --public-key-file FILE")),
        }
    }
}

/// An institution to add.
#[derive(Debug, Clone, clap::Args)]
pub struct NewInstitution {
    /// The institution's organisation number (9 digits, mod-11 check digit).
    #[arg(long, value_name = "ORG")]
    pub org_number: String,
    /// Its display name.
    #[arg(long)]
    pub name: String,
    /// Its roles: validator, submitter, consent-authority, auditor; repeat for several.
    #[arg(long = "role", value_name = "ROLE", required = true)]
    pub roles: Vec<String>,
    /// A submitting key, 64 hex characters; repeat for several.
    #[arg(long = "public-key", value_name = "HEX")]
    pub public_keys: Vec<String>,
    /// A key file (PKCS#8 PEM) whose public key is a submitting key; repeat for several.
    #[arg(long = "public-key-file", value_name = "FILE")]
    pub public_key_files: Vec<PathBuf>,
    /// With the validator role: its node's consensus key, 64 hex characters ...
    #[arg(long, value_name = "HEX", conflicts_with = "validator_key_file")]
    pub validator_key: Option<String>,
    /// ... or the public key of this key file.
    #[arg(long, value_name = "FILE")]
    pub validator_key_file: Option<PathBuf>,
}

/// The proposer and the heights of a proposal, and how it is signed and sent.
#[derive(Debug, Clone, clap::Args)]
pub struct ProposalOptions {
    /// The proposing institution's organisation number: a validator institution, the signer's.
    #[arg(long, value_name = "ORG")]
    pub proposer: String,
    /// The first height at which the change holds ...
    #[arg(
        long,
        value_name = "H",
        conflicts_with = "effective_in",
        required_unless_present = "effective_in"
    )]
    pub effective_height: Option<u64>,
    /// ... or this many heights after the node's current one (at least 2: the proposal itself is
    /// committed one height after it at the earliest).
    #[arg(long, value_name = "N")]
    pub effective_in: Option<u64>,
    /// The last height at which an approval counts; below the effective height (default: the
    /// height just before it).
    #[arg(long, value_name = "H")]
    pub approve_by: Option<u64>,
    #[command(flatten)]
    pub send: SendOptions,
}

/// A 32-byte Ed25519 public key in hex, checked to be a valid curve point; errors name `flag`.
fn parse_public_key(flag: &str, text: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = hex::decode(text.trim())
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| usage(format!("{flag} must be 64 hex characters (32 bytes)")))?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map_err(|_| usage(format!("{flag} is not a valid Ed25519 public key")))?;
    Ok(bytes)
}

fn parse_roles(roles: &[String]) -> anyhow::Result<Vec<v1::InstitutionRole>> {
    roles
        .iter()
        .map(|name| {
            tx::role_from_name(name).ok_or_else(|| {
                usage(format!(
                    "unknown role {name:?}: use validator, submitter, consent-authority or auditor"
                ))
            })
        })
        .collect()
}

fn org_number(flag: &str, text: &str) -> anyhow::Result<String> {
    Ok(parse_org_number(flag, text)?.to_string())
}

fn proposal_id(text: &str) -> anyhow::Result<[u8; 32]> {
    hex::decode(text.trim())
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| {
            usage(
                "PROPOSAL_ID must be 64 hex characters: the transaction id `gov propose` printed \
                 (or an id from `gov list`)",
            )
        })
}

impl NewInstitution {
    fn institution(&self) -> anyhow::Result<tx::Institution> {
        let roles = parse_roles(&self.roles)?;
        let validator = roles.contains(&v1::InstitutionRole::Validator);
        let validator_key = match (&self.validator_key, &self.validator_key_file) {
            (Some(text), _) => Some(parse_public_key("--validator-key", text)?),
            (None, Some(path)) => Some(read_key(path)?.verifying_key().to_bytes()),
            (None, None) => None,
        };
        match (validator, validator_key.is_some()) {
            (true, false) => {
                return Err(usage(
                    "the validator role needs its node's consensus key: give --validator-key HEX \
                     or --validator-key-file FILE",
                ));
            }
            (false, true) => {
                return Err(usage(
                    "--validator-key goes with the validator role: add --role validator or drop \
                     the key",
                ));
            }
            _ => {}
        }
        let mut institution =
            tx::Institution::new(org_number("--org-number", &self.org_number)?, &self.name);
        for role in roles {
            institution = institution.role(role);
        }
        for text in &self.public_keys {
            institution = institution.submitting_key(parse_public_key("--public-key", text)?);
        }
        for path in &self.public_key_files {
            institution = institution.submitting_key(read_key(path)?.verifying_key().to_bytes());
        }
        if let Some(key) = validator_key {
            institution = institution.validator_key(key);
        }
        Ok(institution)
    }
}

impl ChangeCommand {
    fn proposal_options(&self) -> &ProposalOptions {
        match self {
            Self::AddInstitution { proposal, .. }
            | Self::RemoveInstitution { proposal, .. }
            | Self::UpdateInstitution { proposal, .. }
            | Self::AddKey { proposal, .. }
            | Self::RevokeKey { proposal, .. }
            | Self::AddValidator { proposal, .. }
            | Self::RemoveValidator { proposal, .. }
            | Self::RotateValidatorKey { proposal, .. } => proposal,
        }
    }

    /// The proposal of this change by `proposer`, effective at `effective_height`.
    fn proposal(&self, proposer: &str, effective_height: u64) -> anyhow::Result<tx::ProposeChange> {
        use tx::ProposeChange as Propose;
        let member = |member: &Member| org_number("--org-number", &member.org_number);
        Ok(match self {
            Self::AddInstitution { institution, .. } => {
                Propose::add_institution(proposer, institution.institution()?, effective_height)
            }
            Self::RemoveInstitution { member: who, .. } => {
                Propose::remove_institution(proposer, member(who)?, effective_height)
            }
            Self::UpdateInstitution {
                member: who,
                name,
                roles,
                ..
            } => Propose::update_institution(
                proposer,
                member(who)?,
                name,
                parse_roles(roles)?,
                effective_height,
            ),
            Self::AddKey {
                member: who, key, ..
            } => {
                Propose::add_submitting_key(proposer, member(who)?, key.bytes()?, effective_height)
            }
            Self::RevokeKey {
                member: who, key, ..
            } => Propose::revoke_submitting_key(
                proposer,
                member(who)?,
                key.bytes()?,
                effective_height,
            ),
            Self::AddValidator {
                member: who, key, ..
            } => Propose::add_validator(proposer, member(who)?, key.bytes()?, effective_height),
            Self::RemoveValidator { member: who, .. } => {
                Propose::remove_validator(proposer, member(who)?, effective_height)
            }
            Self::RotateValidatorKey {
                member: who, key, ..
            } => Propose::rotate_validator_key(
                proposer,
                member(who)?,
                key.bytes()?,
                effective_height,
            ),
        })
    }
}

/// The effective height asked for, checked against the node's height when it is known.
fn effective_height(options: &ProposalOptions, node_height: Option<u64>) -> anyhow::Result<u64> {
    let effective_height = match (options.effective_height, options.effective_in) {
        (Some(height), None) => height,
        (None, Some(blocks)) => {
            if blocks < 2 {
                return Err(usage(
                    "--effective-in must be at least 2: the proposal is committed at the next \
                     height at the earliest, and the change takes effect after it",
                ));
            }
            if blocks > EFFECTIVE_HEIGHT_AHEAD_MAX {
                return Err(usage(format!(
                    "--effective-in may be at most {EFFECTIVE_HEIGHT_AHEAD_MAX} heights"
                )));
            }
            let height = node_height.ok_or_else(|| {
                usage("--effective-in needs the node's height: give --effective-height H instead")
            })?;
            height
                .checked_add(blocks)
                .ok_or_else(|| usage("--effective-in is too large"))?
        }
        _ => {
            return Err(usage(
                "give --effective-height H or --effective-in N, exactly one",
            ));
        }
    };
    if let Some(height) = node_height {
        if effective_height <= height.saturating_add(1) {
            return Err(usage(format!(
                "the effective height {effective_height} must lie after the height that commits \
                 the proposal; the node is at height {height}, so give at least {}",
                height.saturating_add(2)
            )));
        }
    }
    if let Some(approve_by) = options.approve_by {
        if approve_by >= effective_height {
            return Err(usage(format!(
                "--approve-by {approve_by} must be below the effective height {effective_height}"
            )));
        }
        if let Some(height) = node_height.filter(|height| approve_by <= *height) {
            return Err(usage(format!(
                "--approve-by {approve_by} has passed: the node is at height {height}"
            )));
        }
    }
    Ok(effective_height)
}

pub async fn run(command: GovCommand, json_output: bool) -> anyhow::Result<Outcome> {
    match command {
        GovCommand::Propose { change } => propose(&change, json_output).await,
        GovCommand::Approve {
            proposal_id: id,
            approver,
            send,
        } => {
            let action: Action =
                tx::ApproveChange::new(org_number("--approver", &approver)?, proposal_id(&id)?)
                    .into();
            let signing_key = read_key(&send.key)?;
            let session = Session::open(&send, false).await?;
            session
                .sign_and_send(
                    action,
                    &signing_key,
                    &send,
                    now_unix_ms(),
                    Named::Transaction,
                    json_output,
                )
                .await
        }
        GovCommand::List { paging, options } => {
            let caller = query::open(&options).await?;
            let (proposals, next, height) = query::paginate(&paging, async |page_token| {
                let response = caller
                    .list_proposals(paging.page_size, page_token)
                    .await
                    .map_err(client::call_error)?;
                Ok((
                    response.proposals,
                    response.next_page_token,
                    response.height,
                ))
            })
            .await?;
            let sets = validator_sets(&caller).await?;
            render::emit(
                json_output,
                &query::page_document(
                    "proposals",
                    proposals
                        .iter()
                        .map(|proposal| proposal_json(proposal, &sets, height))
                        .collect(),
                    &next,
                    height,
                ),
                || list_text(&proposals, &sets, &next, height),
            );
            Ok(Outcome::Success)
        }
        GovCommand::Show {
            proposal_id: id,
            options,
        } => {
            let id = proposal_id(&id)?;
            let caller = query::open(&options).await?;
            let response = caller.get_proposal(&id).await.map_err(client::call_error)?;
            let proposal = response.proposal.ok_or_else(|| {
                anyhow::anyhow!("the node answered GetProposal without a proposal")
            })?;
            let sets = validator_sets(&caller).await?;
            let height = response.height;
            render::emit(
                json_output,
                &json!({
                    "height": height,
                    "proposal": proposal_json(&proposal, &sets, height),
                }),
                || {
                    format!(
                        "{}\n(read at height {height})",
                        proposal_text(&proposal, &sets, height)
                    )
                },
            );
            Ok(Outcome::Success)
        }
    }
}

async fn propose(change: &ChangeCommand, json_output: bool) -> anyhow::Result<Outcome> {
    let options = change.proposal_options();
    let proposer = org_number("--proposer", &options.proposer)?;
    let signing_key = read_key(&options.send.key)?;
    // The node's height checks the heights asked for (and gives --effective-in its base); with
    // --dry-run and --effective-height the node is not needed.
    let needs_height = options.effective_in.is_some() || !options.send.dry_run;
    let session = Session::open(&options.send, needs_height).await?;
    let effective_height = effective_height(options, session.height())?;
    let mut proposal = change.proposal(&proposer, effective_height)?;
    if let Some(approve_by) = options.approve_by {
        proposal = proposal.approve_by(approve_by);
    }
    session
        .sign_and_send(
            proposal.into(),
            &signing_key,
            &options.send,
            now_unix_ms(),
            Named::Proposal,
            json_output,
        )
        .await
}

/// The validator-set history, to count the approvals a proposal needs.
async fn validator_sets(caller: &Client) -> anyhow::Result<Vec<v1::ValidatorSetEntry>> {
    caller
        .get_validator_sets()
        .await
        .map_err(client::call_error)
}

/// The height whose validators count a proposal's approvals: the one that approved it, or for
/// one not approved, the next height (the first that could include another approval).
fn counting_height(proposal: &v1::GovernanceProposal, read_at_height: u64) -> u64 {
    if proposal.approved_at_height != 0 {
        proposal.approved_at_height
    } else {
        read_at_height.saturating_add(1)
    }
}

/// The number of validators in force at `height`, from the set history.
fn validators_at(sets: &[v1::ValidatorSetEntry], height: u64) -> Option<usize> {
    sets.iter()
        .filter(|set| set.from_height <= height)
        .max_by_key(|set| set.from_height)
        .map(|set| set.validators.len())
}

fn status_name(status: i32) -> String {
    v1::ProposalStatus::try_from(status).map_or_else(
        |_| format!("UNKNOWN({status})"),
        |status| {
            status
                .as_str_name()
                .trim_start_matches("PROPOSAL_STATUS_")
                .to_owned()
        },
    )
}

fn optional_height(height: u64) -> Value {
    if height == 0 {
        Value::Null
    } else {
        Value::from(height)
    }
}

pub fn proposal_json(
    proposal: &v1::GovernanceProposal,
    sets: &[v1::ValidatorSetEntry],
    read_at_height: u64,
) -> Value {
    let counted_at = counting_height(proposal, read_at_height);
    let validators = validators_at(sets, counted_at);
    json!({
        "id": render::hex_of(&proposal.id),
        "proposer": proposal.proposer_org_number,
        "change": render::change_json(proposal.change.as_ref()),
        "description": render::change_text(proposal.change.as_ref()),
        "proposed_at_height": proposal.proposed_at_height,
        "effective_height": proposal.effective_height,
        "approve_by_height": proposal.approve_by_height,
        "approvals": proposal.approvals.iter().map(|approval| json!({
            "org_number": approval.org_number,
            "height": approval.height,
            "transaction_id": render::hex_of(&approval.transaction_id),
        })).collect::<Vec<_>>(),
        "approvals_needed": validators.map(approvals_needed),
        "validators": validators,
        "validators_at_height": counted_at,
        "status": status_name(proposal.status),
        "approved_at_height": optional_height(proposal.approved_at_height),
        "failure": (!proposal.failure.is_empty()).then(|| proposal.failure.clone()),
    })
}

fn status_text(proposal: &v1::GovernanceProposal) -> String {
    let name = status_name(proposal.status);
    match v1::ProposalStatus::try_from(proposal.status) {
        Ok(v1::ProposalStatus::Open) => format!(
            "{name}: approvals count until height {}",
            proposal.approve_by_height
        ),
        Ok(v1::ProposalStatus::Approved) => format!(
            "{name} at height {}; takes effect at height {}",
            proposal.approved_at_height, proposal.effective_height
        ),
        Ok(v1::ProposalStatus::Enacted) => format!(
            "{name}: in force since height {} (approved at height {})",
            proposal.effective_height, proposal.approved_at_height
        ),
        Ok(v1::ProposalStatus::Failed) => format!(
            "{name} at height {}: {}",
            proposal.effective_height, proposal.failure
        ),
        Ok(v1::ProposalStatus::Expired) => format!(
            "{name}: not approved by height {}",
            proposal.approve_by_height
        ),
        _ => name,
    }
}

pub fn proposal_text(
    proposal: &v1::GovernanceProposal,
    sets: &[v1::ValidatorSetEntry],
    read_at_height: u64,
) -> String {
    let counted_at = counting_height(proposal, read_at_height);
    let needed = match validators_at(sets, counted_at) {
        Some(validators) => format!(
            "{} needed (more than 2/3 of the {validators} validator{} in force at height \
             {counted_at})",
            approvals_needed(validators),
            if validators == 1 { "" } else { "s" }
        ),
        None => format!("needed unknown (no validator set is known at height {counted_at})"),
    };
    let mut text = format!(
        "proposal {}\n  change       {}\n  proposed by  {} at height {}\n  effective at height {}\n  approve by   height {}\n  approvals    {}, {needed}\n",
        render::hex_of(&proposal.id),
        render::change_text(proposal.change.as_ref()),
        proposal.proposer_org_number,
        proposal.proposed_at_height,
        proposal.effective_height,
        proposal.approve_by_height,
        proposal.approvals.len(),
    );
    for approval in &proposal.approvals {
        text.push_str(&format!(
            "               {} at height {}\n",
            approval.org_number, approval.height
        ));
    }
    text.push_str(&format!("  status       {}", status_text(proposal)));
    text
}

fn list_text(
    proposals: &[v1::GovernanceProposal],
    sets: &[v1::ValidatorSetEntry],
    next: &str,
    height: u64,
) -> String {
    let mut text = format!("{} proposals at height {height}\n", proposals.len());
    for proposal in proposals {
        text.push('\n');
        text.push_str(&proposal_text(proposal, sets, height));
        text.push('\n');
    }
    if !next.is_empty() {
        text.push_str(&format!("\nmore: --page-token {next} (or --all)\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::exit::{ExitKind, exit_kind_of};

    const VALIDATOR: &str = "994598759";
    const HOSPITAL: &str = "993467049";

    #[derive(Debug, clap::Parser)]
    struct Harness {
        #[command(subcommand)]
        command: GovCommand,
    }

    fn parse(arguments: &[&str]) -> Result<GovCommand, clap::Error> {
        let mut all = vec!["gov"];
        all.extend_from_slice(arguments);
        Harness::try_parse_from(all).map(|harness| harness.command)
    }

    fn change(arguments: &[&str]) -> ChangeCommand {
        let mut all = vec!["propose"];
        all.extend_from_slice(arguments);
        all.extend(["--proposer", VALIDATOR, "--key", "k.pem"]);
        match parse(&all).unwrap() {
            GovCommand::Propose { change } => change,
            other => panic!("expected a proposal, got {other:?}"),
        }
    }

    fn key_hex() -> String {
        hex::encode(
            &ed25519_dalek::SigningKey::from_bytes(&[5; 32])
                .verifying_key()
                .to_bytes(),
        )
    }

    // Every kind of change builds from its flags into a body the ledger's own rules accept,
    // with the institution, key and heights given.
    #[test]
    fn every_kind_builds() {
        let key = key_hex();
        let kinds: Vec<Vec<&str>> = vec![
            vec![
                "add-institution",
                "--org-number",
                "974761394",
                "--name",
                "Ny kommune",
                "--role",
                "submitter",
                "--role",
                "consent-authority",
                "--public-key",
                &key,
            ],
            vec!["remove-institution", "--org-number", HOSPITAL],
            vec![
                "update-institution",
                "--org-number",
                HOSPITAL,
                "--name",
                "OUS HF",
                "--role",
                "submitter",
            ],
            vec!["add-key", "--org-number", HOSPITAL, "--public-key", &key],
            vec!["revoke-key", "--org-number", HOSPITAL, "--public-key", &key],
            vec![
                "add-validator",
                "--org-number",
                HOSPITAL,
                "--public-key",
                &key,
            ],
            vec!["remove-validator", "--org-number", VALIDATOR],
            vec![
                "rotate-validator-key",
                "--org-number",
                VALIDATOR,
                "--public-key",
                &key,
            ],
        ];
        let mut names = Vec::new();
        for mut arguments in kinds {
            arguments.extend(["--effective-height", "40", "--approve-by", "30"]);
            let command = change(&arguments);
            let options = command.proposal_options();
            let effective = effective_height(options, Some(10)).unwrap();
            assert_eq!(effective, 40);
            let proposal = command
                .proposal(VALIDATOR, effective)
                .unwrap()
                .approve_by(30);
            let body = crate::tx::body("varde-test", proposal.into(), 0, 1).unwrap();
            let Some(Action::ProposeChange(propose)) = &body.action else {
                panic!("expected a proposal");
            };
            assert_eq!(propose.proposer_org_number, VALIDATOR);
            assert_eq!(
                (propose.effective_height, propose.approve_by_height),
                (40, 30)
            );
            let change = render::change_json(propose.change.as_ref());
            names.push(change["kind"].as_str().unwrap().to_owned());
            if let Some(public_key) = change.get("public_key") {
                assert_eq!(public_key, &Value::String(key.clone()));
            }
        }
        assert_eq!(
            names,
            [
                "add-institution",
                "remove-institution",
                "update-institution",
                "add-submitting-key",
                "revoke-submitting-key",
                "add-validator",
                "remove-validator",
                "rotate-validator-key"
            ]
        );
    }

    // A key file's public key is the key proposed; a key that is not 64 hex characters is a
    // usage error naming the flag.
    #[test]
    fn keys_come_from_hex_or_a_key_file() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("new.pem");
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        varde_ledger::keyfile::write_signing_key(&path, &key).unwrap();
        let command = change(&[
            "add-key",
            "--org-number",
            HOSPITAL,
            "--public-key-file",
            path.to_str().unwrap(),
            "--effective-height",
            "9",
        ]);
        let proposal = command.proposal(VALIDATOR, 9).unwrap();
        let body = crate::tx::body("varde-test", proposal.into(), 0, 1).unwrap();
        let Some(Action::ProposeChange(propose)) = &body.action else {
            panic!("expected a proposal");
        };
        assert_eq!(
            render::change_json(propose.change.as_ref())["public_key"],
            hex::encode(&key.verifying_key().to_bytes())
        );
        let short = change(&[
            "revoke-key",
            "--org-number",
            HOSPITAL,
            "--public-key",
            "abcd",
            "--effective-height",
            "9",
        ]);
        let error = short.proposal(VALIDATOR, 9).unwrap_err();
        assert_eq!(exit_kind_of(&error), ExitKind::Usage);
        assert!(error.to_string().contains("--public-key"), "{error}");
        // Both a hex key and a key file, or neither, is refused by the parser.
        assert!(
            parse(&[
                "propose",
                "add-key",
                "--org-number",
                HOSPITAL,
                "--proposer",
                VALIDATOR,
                "--key",
                "k.pem",
                "--effective-height",
                "9"
            ])
            .is_err()
        );
    }

    // Heights: --effective-in counts from the node's height and must be at least 2; an effective
    // height the proposal cannot precede, or an approve-by height not below it, is refused.
    #[test]
    fn heights_are_checked() {
        let options = |arguments: &[&str]| {
            let mut all = vec!["remove-validator", "--org-number", VALIDATOR];
            all.extend_from_slice(arguments);
            change(&all).proposal_options().clone()
        };
        assert_eq!(
            effective_height(&options(&["--effective-in", "5"]), Some(100)).unwrap(),
            105
        );
        for (arguments, height) in [
            (vec!["--effective-in", "1"], Some(100)),
            (vec!["--effective-in", "5"], None),
            (vec!["--effective-height", "101"], Some(100)),
            (vec!["--effective-height", "50", "--approve-by", "50"], None),
            (
                vec!["--effective-height", "150", "--approve-by", "90"],
                Some(100),
            ),
        ] {
            let error = effective_height(&options(&arguments), height).unwrap_err();
            assert_eq!(exit_kind_of(&error), ExitKind::Usage, "{arguments:?}");
        }
        assert!(
            parse(&[
                "propose",
                "remove-validator",
                "--org-number",
                VALIDATOR,
                "--proposer",
                VALIDATOR,
                "--key",
                "k.pem"
            ])
            .is_err()
        );
    }

    // The validator role and the validator key go together when adding an institution; an
    // unknown role is named.
    #[test]
    fn new_institutions_are_checked() {
        let command = |extra: &[&str]| {
            let mut all = vec![
                "add-institution",
                "--org-number",
                "974761394",
                "--name",
                "Ny",
                "--effective-height",
                "9",
            ];
            all.extend_from_slice(extra);
            change(&all)
        };
        let key = key_hex();
        for extra in [
            vec!["--role", "validator"],
            vec![
                "--role",
                "submitter",
                "--public-key",
                &key,
                "--validator-key",
                &key,
            ],
            vec!["--role", "admin", "--public-key", &key],
        ] {
            let error = command(&extra).proposal(VALIDATOR, 9).unwrap_err();
            assert_eq!(exit_kind_of(&error), ExitKind::Usage, "{extra:?}");
        }
        assert!(
            command(&["--role", "admin"])
                .proposal(VALIDATOR, 9)
                .unwrap_err()
                .to_string()
                .contains("\"admin\"")
        );
        command(&["--role", "validator", "--validator-key", &key])
            .proposal(VALIDATOR, 9)
            .unwrap();
    }

    fn sample_proposal(status: v1::ProposalStatus) -> v1::GovernanceProposal {
        v1::GovernanceProposal {
            id: vec![0xab; 32],
            proposer_org_number: VALIDATOR.to_owned(),
            change: Some(v1::MembershipChange {
                change: Some(v1::membership_change::Change::RevokeSubmittingKey(
                    v1::InstitutionKey {
                        org_number: HOSPITAL.to_owned(),
                        public_key: vec![0xcd; 32],
                    },
                )),
            }),
            proposed_at_height: 5,
            effective_height: 12,
            approve_by_height: 11,
            approvals: vec![
                v1::GovernanceApproval {
                    org_number: VALIDATOR.to_owned(),
                    height: 5,
                    transaction_id: vec![0xab; 32],
                },
                v1::GovernanceApproval {
                    org_number: HOSPITAL.to_owned(),
                    height: 7,
                    transaction_id: vec![0xef; 32],
                },
            ],
            status: status as i32,
            approved_at_height: if status == v1::ProposalStatus::Open {
                0
            } else {
                7
            },
            failure: if status == v1::ProposalStatus::Failed {
                "993467049 is not a member".to_owned()
            } else {
                String::new()
            },
        }
    }

    fn sets() -> Vec<v1::ValidatorSetEntry> {
        let set = |from_height, validators: usize| v1::ValidatorSetEntry {
            from_height,
            validators: (0..validators).map(|index| vec![index as u8; 32]).collect(),
            set_hash: vec![0; 32],
        };
        vec![set(1, 4), set(8, 1)]
    }

    // A proposal renders its change in words, heights, each approval and the approvals needed by
    // the validators in force where they count: at its approval, or at the next height.
    #[test]
    fn proposals_render() {
        let approved = sample_proposal(v1::ProposalStatus::Approved);
        let document = proposal_json(&approved, &sets(), 9);
        assert_eq!(document["status"], "APPROVED");
        assert_eq!(document["change"]["kind"], "revoke-submitting-key");
        assert_eq!(document["approvals"][1]["org_number"], HOSPITAL);
        assert_eq!(document["approvals"][1]["height"], 7);
        assert_eq!(
            (
                document["validators"].clone(),
                document["approvals_needed"].clone()
            ),
            (json!(4), json!(3))
        );
        let text = proposal_text(&approved, &sets(), 9);
        assert!(
            text.contains(&format!(
                "revoke submitting key {} of {HOSPITAL}",
                "cd".repeat(32)
            )),
            "{text}"
        );
        assert!(text.contains(&format!("{HOSPITAL} at height 7")), "{text}");
        assert!(
            text.contains("3 needed (more than 2/3 of the 4 validators in force at height 7)"),
            "{text}"
        );
        let open = sample_proposal(v1::ProposalStatus::Open);
        let document = proposal_json(&open, &sets(), 9);
        assert_eq!(document["validators_at_height"], 10);
        assert_eq!(document["approvals_needed"], 1);
        assert_eq!(document["approved_at_height"], Value::Null);
        let failed = sample_proposal(v1::ProposalStatus::Failed);
        assert_eq!(
            proposal_json(&failed, &sets(), 20)["failure"],
            "993467049 is not a member"
        );
        assert!(
            proposal_text(&failed, &sets(), 20)
                .contains("FAILED at height 12: 993467049 is not a member")
        );
        let expired = sample_proposal(v1::ProposalStatus::Expired);
        assert_eq!(proposal_json(&expired, &sets(), 20)["status"], "EXPIRED");
    }

    // A proposal id that is not 64 hex characters is a usage error.
    #[test]
    fn proposal_ids_are_checked() {
        assert_eq!(
            exit_kind_of(&proposal_id("xyz").unwrap_err()),
            ExitKind::Usage
        );
        assert_eq!(proposal_id(&"0a".repeat(32)).unwrap(), [0x0a; 32]);
    }
}
