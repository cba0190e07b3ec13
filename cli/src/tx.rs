//! `varde tx`: build a transaction body from flags or a JSON file with `varde_client::tx`'s
//! builders, sign it (scheme varde-tx-v1) and submit it.
//!
//! Each action's fields are one struct that is both the flags and the JSON file's shape: a flag
//! `--record-id` is the key `"record_id"` in the file. Flags given on the command line override
//! the file's values.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use varde_client::tx::{self, Expiry, Nonce, Transaction};
use varde_client::{Client, now_unix_ms};
use varde_ledger::hex;
use varde_proto::v1;
use varde_proto::v1::transaction_body::Action;

use crate::client;
use crate::exit::{Outcome, usage};
use crate::keys::read_key;
use crate::render;

/// Expiry used when neither `--expires-in` nor `--expires-in-blocks` is given.
const DEFAULT_EXPIRES_IN_SECONDS: u64 = 600;
/// How long `--wait` lets the node wait for the commit by default.
const DEFAULT_WAIT_SECONDS: u32 = 30;

#[derive(Debug, clap::Subcommand)]
pub enum TxCommand {
    /// Anchor a pointer to a new record (by its custodian).
    Anchor {
        #[command(flatten)]
        fields: AnchorFields,
        #[command(flatten)]
        options: TxOptions,
    },
    /// Replace a record's content with a new version (by its custodian).
    Supersede {
        #[command(flatten)]
        fields: SupersedeFields,
        #[command(flatten)]
        options: TxOptions,
    },
    /// Withdraw a record pointer; the history stays (by its custodian).
    Retract {
        #[command(flatten)]
        fields: RetractFields,
        #[command(flatten)]
        options: TxOptions,
    },
    /// Grant an institution access to a subject's records.
    Grant {
        #[command(flatten)]
        fields: GrantFields,
        #[command(flatten)]
        options: TxOptions,
    },
    /// Revoke a grant from now on.
    Revoke {
        #[command(flatten)]
        fields: RevokeFields,
        #[command(flatten)]
        options: TxOptions,
    },
    /// Register a patient's block of an institution or a person (holds even in emergencies).
    Block {
        #[command(flatten)]
        fields: BlockFields,
        #[command(flatten)]
        options: TxOptions,
    },
    /// Lift a block.
    Unblock {
        #[command(flatten)]
        fields: UnblockFields,
        #[command(flatten)]
        options: TxOptions,
    },
    /// Report one read of a record (with a grant, as an emergency, or without a basis).
    LogAccess {
        #[command(flatten)]
        fields: LogAccessFields,
        #[command(flatten)]
        options: TxOptions,
    },
}

/// What every `varde tx` command takes besides the action's fields.
#[derive(Debug, Clone, clap::Args)]
pub struct TxOptions {
    /// The action's fields as a JSON object (keys as the flags, with underscores); flags override.
    #[arg(long, value_name = "FILE.json")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub send: SendOptions,
}

/// How a transaction is signed and sent (`varde tx`, `varde gov propose` and `approve`).
#[derive(Debug, Clone, clap::Args)]
pub struct SendOptions {
    /// The signer's key file (PKCS#8 PEM): a registered submitting key of the acting institution
    /// (for governance, also its validator's consensus key).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The node's gRPC address.
    #[arg(long, default_value = client::DEFAULT_ENDPOINT, value_name = "URL")]
    pub endpoint: String,
    /// The chain id to sign for; fetched from the node's status when not given.
    #[arg(long)]
    pub chain_id: Option<String>,
    /// Expire this many blocks after the node's current height.
    #[arg(long, value_name = "N")]
    pub expires_in_blocks: Option<u64>,
    /// Expire this many seconds from now (default 600 when no expiry is given).
    #[arg(long, value_name = "SECONDS")]
    pub expires_in: Option<u64>,
    /// Wait until the transaction is committed and show its receipt.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: how long the node may wait for the commit.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_WAIT_SECONDS)]
    pub wait_timeout: u32,
    /// Print the body and transaction id without sending anything.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Default, Clone, clap::Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorFields {
    /// Organisation number of the custodian (the signer's institution).
    #[arg(long)]
    pub custodian: Option<String>,
    /// The record's id, unique within the custodian.
    #[arg(long)]
    pub record_id: Option<String>,
    /// The subject's pseudonym, 64 hex characters (from `varde pseudonym`).
    #[arg(long, value_name = "HEX")]
    pub subject: Option<String>,
    /// Category code (e.g. a document-type code).
    #[arg(long)]
    pub category: Option<String>,
    /// Where the custodian serves the record (URI).
    #[arg(long, value_name = "URI")]
    pub location: Option<String>,
    /// SHA-256 of the record's content, 64 hex characters.
    #[arg(long, value_name = "HEX")]
    pub content_sha256: Option<String>,
    /// normal (default) or restricted.
    #[arg(long)]
    pub confidentiality: Option<String>,
    /// When the record was written at the source (Unix ms); defaults to now.
    #[arg(long, value_name = "UNIX_MS")]
    pub created_at_unix_ms: Option<i64>,
}

#[derive(Debug, Default, Clone, clap::Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupersedeFields {
    /// Organisation number of the custodian.
    #[arg(long)]
    pub custodian: Option<String>,
    /// The record's id.
    #[arg(long)]
    pub record_id: Option<String>,
    /// Category code of the new version.
    #[arg(long)]
    pub category: Option<String>,
    /// Location (URI) of the new version.
    #[arg(long, value_name = "URI")]
    pub location: Option<String>,
    /// SHA-256 of the new content, 64 hex characters.
    #[arg(long, value_name = "HEX")]
    pub content_sha256: Option<String>,
    /// normal (default) or restricted.
    #[arg(long)]
    pub confidentiality: Option<String>,
    /// When the new version was written (Unix ms); defaults to now.
    #[arg(long, value_name = "UNIX_MS")]
    pub created_at_unix_ms: Option<i64>,
}

#[derive(Debug, Default, Clone, clap::Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetractFields {
    /// Organisation number of the custodian.
    #[arg(long)]
    pub custodian: Option<String>,
    /// The record's id.
    #[arg(long)]
    pub record_id: Option<String>,
    /// Why (free text, optional).
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Default, Clone, clap::Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantFields {
    /// Organisation number of the issuer (custodian or consent authority; the signer's).
    #[arg(long)]
    pub issuer: Option<String>,
    /// The subject's pseudonym, 64 hex characters.
    #[arg(long, value_name = "HEX")]
    pub subject: Option<String>,
    /// Organisation number of the institution granted access.
    #[arg(long)]
    pub grantee: Option<String>,
    /// Only this person (HPR number) within the grantee.
    #[arg(long)]
    pub grantee_hpr: Option<String>,
    /// Only this department within the grantee.
    #[arg(long)]
    pub grantee_department: Option<String>,
    /// Scope: one record, by its id (with --record-custodian, default the issuer).
    #[arg(long)]
    pub record_id: Option<String>,
    /// The custodian of --record-id.
    #[arg(long)]
    pub record_custodian: Option<String>,
    /// Scope: every record of this category.
    #[arg(long)]
    pub category: Option<String>,
    /// Scope: all the subject's records.
    #[arg(long)]
    #[serde(default)]
    pub all_records: bool,
    /// Purpose of use (TREAT, ETREAT, COC, HRESCH, CLINTRCH, HOPERAT, HPAYMT, PUBHLTH, PATRQT);
    /// repeat for several.
    #[arg(long = "purpose", value_name = "PURPOSE")]
    #[serde(default)]
    pub purposes: Vec<String>,
    /// Start of validity (Unix ms); defaults to now.
    #[arg(long, value_name = "UNIX_MS")]
    pub valid_from_unix_ms: Option<i64>,
    /// End of validity, exclusive (Unix ms).
    #[arg(long, value_name = "UNIX_MS")]
    pub valid_until_unix_ms: Option<i64>,
    /// End of validity as a duration from the start, instead of --valid-until-unix-ms.
    #[arg(long, value_name = "SECONDS")]
    pub valid_for_seconds: Option<u64>,
    /// Basis: the patient's consent, with an optional reference to the consent document
    /// (the default basis).
    #[arg(long)]
    pub consent_reference: Option<String>,
    /// Basis: a statute instead of consent, e.g. "pasientjournalloven § 19".
    #[arg(long)]
    pub statute: Option<String>,
}

#[derive(Debug, Default, Clone, clap::Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeFields {
    /// Organisation number of the revoking institution (the grant's issuer or a consent
    /// authority).
    #[arg(long)]
    pub issuer: Option<String>,
    /// The grant's id, 64 hex characters.
    #[arg(long, value_name = "HEX")]
    pub grant_id: Option<String>,
    /// Why (free text, optional).
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Default, Clone, clap::Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockFields {
    /// Organisation number of the consent authority registering the block.
    #[arg(long)]
    pub issuer: Option<String>,
    /// The subject's pseudonym, 64 hex characters.
    #[arg(long, value_name = "HEX")]
    pub subject: Option<String>,
    /// Block this institution (organisation number) ...
    #[arg(long)]
    pub institution: Option<String>,
    /// ... or this person (HPR number).
    #[arg(long)]
    pub hpr: Option<String>,
}

#[derive(Debug, Default, Clone, clap::Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnblockFields {
    /// Organisation number of the consent authority lifting the block.
    #[arg(long)]
    pub issuer: Option<String>,
    /// The block's id, 64 hex characters.
    #[arg(long, value_name = "HEX")]
    pub block_id: Option<String>,
}

#[derive(Debug, Default, Clone, clap::Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogAccessFields {
    /// Organisation number of the institution that read (the signer's).
    #[arg(long)]
    pub accessor: Option<String>,
    /// HPR number of the person who read.
    #[arg(long)]
    pub accessor_hpr: Option<String>,
    /// Custodian of the record read.
    #[arg(long)]
    pub record_custodian: Option<String>,
    /// Id of the record read.
    #[arg(long)]
    pub record_id: Option<String>,
    /// Purpose of use (TREAT, ETREAT, ...).
    #[arg(long)]
    pub purpose: Option<String>,
    /// When the read happened (Unix ms); defaults to now. The ledger refuses a time more than
    /// 24 hours before or 5 minutes after the block time (ACCESS_TIME_OUTSIDE_WINDOW).
    #[arg(long, value_name = "UNIX_MS")]
    pub accessed_at_unix_ms: Option<i64>,
    /// SHA-256 of the caller's attestation, 64 hex characters.
    #[arg(long, value_name = "HEX")]
    pub attestation_sha256: Option<String>,
    /// Basis: the grant relied on, 64 hex characters ...
    #[arg(long, value_name = "HEX")]
    pub grant_id: Option<String>,
    /// ... or an emergency read, with its justification (needs --purpose ETREAT).
    #[arg(long, value_name = "JUSTIFICATION")]
    pub emergency: Option<String>,
}

/// Overlays the flags given on the command line over the file's object and reads the result.
pub fn merge_with_file<T: Serialize + DeserializeOwned>(
    flags: &T,
    file: Option<Value>,
) -> anyhow::Result<T> {
    let Some(file) = file else {
        return Ok(serde_json::from_value(serde_json::to_value(flags)?)?);
    };
    let Value::Object(mut merged) = file else {
        return Err(usage(
            "--file must hold one JSON object of the action's fields",
        ));
    };
    let Value::Object(given) = serde_json::to_value(flags)? else {
        unreachable!("field structs serialise as objects");
    };
    for (name, value) in given {
        let unset = match &value {
            Value::Null | Value::Bool(false) => true,
            Value::Array(items) => items.is_empty(),
            _ => false,
        };
        if !unset {
            merged.insert(name, value);
        }
    }
    serde_json::from_value(Value::Object(merged)).map_err(|error| usage(format!("--file: {error}")))
}

fn read_file(path: &PathBuf) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --file {}", path.display()))?;
    serde_json::from_str(&text).map_err(|error| {
        usage(format!(
            "--file {} is not valid JSON ({error}); it holds one object of the action's fields",
            path.display()
        ))
    })
}

fn required<T: Clone>(value: &Option<T>, name: &str) -> anyhow::Result<T> {
    value.clone().ok_or_else(|| {
        usage(format!(
            "missing --{} (or \"{name}\" in --file)",
            name.replace('_', "-")
        ))
    })
}

/// 32 bytes given as 64 hex characters. The message names the flag, never the value.
fn bytes32(value: &str, name: &str) -> anyhow::Result<[u8; 32]> {
    match hex::decode(value.trim()).and_then(|bytes| <[u8; 32]>::try_from(bytes).ok()) {
        Some(bytes) => Ok(bytes),
        _ => Err(usage(format!(
            "--{} must be 64 hex characters (32 bytes)",
            name.replace('_', "-")
        ))),
    }
}

fn required_bytes32(value: &Option<String>, name: &str) -> anyhow::Result<[u8; 32]> {
    bytes32(&required(value, name)?, name)
}

/// A purpose of use by its HL7 code, e.g. `TREAT` (any case).
pub fn parse_purpose(text: &str) -> anyhow::Result<v1::PurposeOfUse> {
    tx::purpose_from_code(text).ok_or_else(|| {
        usage(format!(
            "unknown purpose of use {text:?}: use TREAT, ETREAT, COC, HRESCH, CLINTRCH, HOPERAT, \
             HPAYMT, PUBHLTH or PATRQT"
        ))
    })
}

fn parse_confidentiality(value: Option<&str>) -> anyhow::Result<v1::Confidentiality> {
    match value
        .map(|text| text.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("normal") => Ok(v1::Confidentiality::Normal),
        Some("restricted") => Ok(v1::Confidentiality::Restricted),
        Some(_) => Err(usage("--confidentiality must be normal or restricted")),
    }
}

impl AnchorFields {
    pub fn action(&self, now_ms: i64) -> anyhow::Result<Action> {
        Ok(tx::Anchor::new(
            required(&self.custodian, "custodian")?,
            required(&self.record_id, "record_id")?,
            required_bytes32(&self.subject, "subject")?,
            required(&self.category, "category")?,
            required(&self.location, "location")?,
            required_bytes32(&self.content_sha256, "content_sha256")?,
            self.created_at_unix_ms.unwrap_or(now_ms),
        )
        .confidentiality(parse_confidentiality(self.confidentiality.as_deref())?)
        .into())
    }
}

impl SupersedeFields {
    pub fn action(&self, now_ms: i64) -> anyhow::Result<Action> {
        Ok(tx::Supersede::new(
            required(&self.custodian, "custodian")?,
            required(&self.record_id, "record_id")?,
            required(&self.category, "category")?,
            required(&self.location, "location")?,
            required_bytes32(&self.content_sha256, "content_sha256")?,
            self.created_at_unix_ms.unwrap_or(now_ms),
        )
        .confidentiality(parse_confidentiality(self.confidentiality.as_deref())?)
        .into())
    }
}

impl RetractFields {
    pub fn action(&self) -> anyhow::Result<Action> {
        let retract = tx::Retract::new(
            required(&self.custodian, "custodian")?,
            required(&self.record_id, "record_id")?,
        );
        Ok(match &self.reason {
            Some(reason) => retract.reason(reason.clone()),
            None => retract,
        }
        .into())
    }
}

impl GrantFields {
    pub fn action(&self, now_ms: i64) -> anyhow::Result<Action> {
        let issuer = required(&self.issuer, "issuer")?;
        let scopes_given = usize::from(self.record_id.is_some())
            + usize::from(self.category.is_some())
            + usize::from(self.all_records);
        if scopes_given != 1 {
            return Err(usage(
                "give exactly one scope: --record-id ID, --category CODE or --all-records",
            ));
        }
        let scope = if let Some(record_id) = &self.record_id {
            tx::Scope::Record {
                custodian_org_number: self.record_custodian.clone().unwrap_or(issuer.clone()),
                record_id: record_id.clone(),
            }
        } else if let Some(category) = &self.category {
            tx::Scope::Category(category.clone())
        } else {
            tx::Scope::AllRecords
        };
        if self.purposes.is_empty() {
            return Err(usage(
                "missing --purpose (or \"purposes\" in --file): e.g. --purpose TREAT",
            ));
        }
        let purposes = self
            .purposes
            .iter()
            .map(|purpose| parse_purpose(purpose))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let valid_from = self.valid_from_unix_ms.unwrap_or(now_ms);
        let valid_until = match (self.valid_until_unix_ms, self.valid_for_seconds) {
            (Some(until), None) => until,
            (None, Some(seconds)) => i64::try_from(seconds)
                .ok()
                .and_then(|seconds| seconds.checked_mul(1000))
                .and_then(|milliseconds| valid_from.checked_add(milliseconds))
                .ok_or_else(|| usage("--valid-for-seconds is too large"))?,
            (Some(_), Some(_)) => {
                return Err(usage(
                    "give --valid-until-unix-ms or --valid-for-seconds, not both",
                ));
            }
            (None, None) => {
                return Err(usage(
                    "missing the end of validity: --valid-until-unix-ms or --valid-for-seconds",
                ));
            }
        };
        if self.statute.is_some() && self.consent_reference.is_some() {
            return Err(usage(
                "the basis is either consent (--consent-reference) or --statute, not both",
            ));
        }
        let mut grant = tx::Grant::new(
            issuer,
            required_bytes32(&self.subject, "subject")?,
            required(&self.grantee, "grantee")?,
            scope,
            valid_from,
            valid_until,
        );
        for purpose in purposes {
            grant = grant.purpose(purpose);
        }
        if let Some(hpr) = &self.grantee_hpr {
            grant = grant.grantee_hpr(hpr.clone());
        }
        if let Some(department) = &self.grantee_department {
            grant = grant.grantee_department(department.clone());
        }
        grant = match (&self.statute, &self.consent_reference) {
            (Some(name), _) => grant.statute(name.clone()),
            (None, Some(reference)) => grant.consent(reference.clone()),
            (None, None) => grant,
        };
        Ok(grant.into())
    }
}

impl RevokeFields {
    pub fn action(&self) -> anyhow::Result<Action> {
        let revoke = tx::Revoke::new(
            required(&self.issuer, "issuer")?,
            required_bytes32(&self.grant_id, "grant_id")?,
        );
        Ok(match &self.reason {
            Some(reason) => revoke.reason(reason.clone()),
            None => revoke,
        }
        .into())
    }
}

impl BlockFields {
    pub fn action(&self) -> anyhow::Result<Action> {
        if self.institution.is_some() == self.hpr.is_some() {
            return Err(usage(
                "give exactly one target: --institution ORG_NUMBER or --hpr HPR_NUMBER",
            ));
        }
        let issuer = required(&self.issuer, "issuer")?;
        let subject = required_bytes32(&self.subject, "subject")?;
        Ok(match (&self.institution, &self.hpr) {
            (Some(institution), _) => tx::Block::institution(issuer, subject, institution.clone()),
            (None, hpr) => tx::Block::person(issuer, subject, hpr.clone().unwrap_or_default()),
        }
        .into())
    }
}

impl UnblockFields {
    pub fn action(&self) -> anyhow::Result<Action> {
        Ok(tx::Unblock::new(
            required(&self.issuer, "issuer")?,
            required_bytes32(&self.block_id, "block_id")?,
        )
        .into())
    }
}

impl LogAccessFields {
    pub fn action(&self, now_ms: i64) -> anyhow::Result<Action> {
        if self.grant_id.is_some() && self.emergency.is_some() {
            return Err(usage(
                "the basis is either --grant-id or --emergency JUSTIFICATION, not both",
            ));
        }
        let grant_id = self
            .grant_id
            .as_ref()
            .map(|grant_id| bytes32(grant_id, "grant_id"))
            .transpose()?;
        let mut log = tx::LogAccess::new(
            required(&self.accessor, "accessor")?,
            required(&self.accessor_hpr, "accessor_hpr")?,
            required(&self.record_custodian, "record_custodian")?,
            required(&self.record_id, "record_id")?,
            parse_purpose(&required(&self.purpose, "purpose")?)?,
            self.accessed_at_unix_ms.unwrap_or(now_ms),
        );
        if let Some(hash) = &self.attestation_sha256 {
            log = log.attestation(bytes32(hash, "attestation_sha256")?);
        }
        log = match (grant_id, &self.emergency) {
            (Some(grant_id), _) => log.grant(grant_id),
            (None, Some(justification)) => log.emergency(justification.clone()),
            (None, None) => log,
        };
        Ok(log.into())
    }
}

/// Reads the file (if any), merges the flags over it and builds the action.
fn build<T: Serialize + DeserializeOwned>(
    fields: &T,
    options: &TxOptions,
    to_action: impl FnOnce(&T) -> anyhow::Result<Action>,
) -> anyhow::Result<Action> {
    let file = options.file.as_ref().map(read_file).transpose()?;
    let merged = merge_with_file(fields, file)?;
    to_action(&merged)
}

/// The action of a `varde tx` command and its options.
pub fn action_of(command: &TxCommand, now_ms: i64) -> anyhow::Result<(Action, &TxOptions)> {
    Ok(match command {
        TxCommand::Anchor { fields, options } => (
            build(fields, options, |fields| fields.action(now_ms))?,
            options,
        ),
        TxCommand::Supersede { fields, options } => (
            build(fields, options, |fields| fields.action(now_ms))?,
            options,
        ),
        TxCommand::Retract { fields, options } => {
            (build(fields, options, RetractFields::action)?, options)
        }
        TxCommand::Grant { fields, options } => (
            build(fields, options, |fields| fields.action(now_ms))?,
            options,
        ),
        TxCommand::Revoke { fields, options } => {
            (build(fields, options, RevokeFields::action)?, options)
        }
        TxCommand::Block { fields, options } => {
            (build(fields, options, BlockFields::action)?, options)
        }
        TxCommand::Unblock { fields, options } => {
            (build(fields, options, UnblockFields::action)?, options)
        }
        TxCommand::LogAccess { fields, options } => (
            build(fields, options, |fields| fields.action(now_ms))?,
            options,
        ),
    })
}

/// The body with its expiry; checked with the ledger's own admission rules before it is signed.
pub fn body(
    chain_id: &str,
    action: Action,
    expires_at_height: u64,
    expires_at_unix_ms: i64,
) -> anyhow::Result<v1::TransactionBody> {
    // The expiry is absolute here, so the time the builder counts from does not matter.
    Transaction::new(action)
        .expiry(Expiry::At {
            height: expires_at_height,
            unix_ms: expires_at_unix_ms,
        })
        .nonce(Nonce::Empty)
        .body(chain_id, 0)
        .map_err(|error| usage(error.to_string()))
}

pub async fn run(command: TxCommand, json_output: bool) -> anyhow::Result<Outcome> {
    let now_ms = now_unix_ms();
    let (action, options) = action_of(&command, now_ms)?;
    let signing_key = read_key(&options.send.key)?;
    let session = Session::open(&options.send, false).await?;
    session
        .sign_and_send(
            action,
            &signing_key,
            &options.send,
            now_ms,
            Named::Transaction,
            json_output,
        )
        .await
}

/// The node a transaction goes to and the chain id it is signed for, fetched as far as the
/// options need them.
pub struct Session {
    node: Option<Client>,
    status: Option<v1::StatusResponse>,
    chain_id: String,
}

/// What else the transaction's id names, for the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    Transaction,
    /// A governance proposal: its id is the ProposeChange's transaction id.
    Proposal,
}

impl Session {
    /// Connects when anything is to be sent or fetched; Node.Status is asked for the chain id
    /// (unless given), a height-based expiry, or when `needs_height`.
    pub async fn open(options: &SendOptions, needs_height: bool) -> anyhow::Result<Self> {
        let needs_status =
            options.chain_id.is_none() || options.expires_in_blocks.is_some() || needs_height;
        let node = if !options.dry_run || needs_status {
            Some(client::connect(&options.endpoint).await?)
        } else {
            None
        };
        let status = match (&node, needs_status) {
            (Some(node), true) => Some(client::status(node).await?),
            _ => None,
        };
        let chain_id = options
            .chain_id
            .clone()
            .or_else(|| status.as_ref().map(|status| status.chain_id.clone()))
            .expect("the status is fetched when no chain id is given");
        Ok(Self {
            node,
            status,
            chain_id,
        })
    }

    /// The node's current height, when its status was fetched.
    pub fn height(&self) -> Option<u64> {
        self.status.as_ref().map(|status| status.height)
    }

    /// Adds the expiry of `options`, signs `action` with `signing_key` and submits it (with
    /// `--wait`, waits for its receipt), or with `--dry-run` prints what would be sent.
    pub async fn sign_and_send(
        self,
        action: Action,
        signing_key: &ed25519_dalek::SigningKey,
        options: &SendOptions,
        now_ms: i64,
        named: Named,
        json_output: bool,
    ) -> anyhow::Result<Outcome> {
        let chain_id = self.chain_id;
        let expires_at_height = match options.expires_in_blocks {
            Some(blocks) => {
                let height = self.status.as_ref().map_or(0, |status| status.height);
                height
                    .checked_add(blocks)
                    .ok_or_else(|| usage("--expires-in-blocks is too large"))?
            }
            None => 0,
        };
        let expires_at_unix_ms = match (options.expires_in, options.expires_in_blocks) {
            (Some(seconds), _) => seconds_after(now_ms, seconds)?,
            (None, Some(_)) => 0,
            (None, None) => seconds_after(now_ms, DEFAULT_EXPIRES_IN_SECONDS)?,
        };
        let body = body(&chain_id, action, expires_at_height, expires_at_unix_ms)?;
        let envelope = tx::sign_body(&chain_id, signing_key, body)
            .map_err(|error| usage(error.to_string()))?;
        let transaction_id = envelope.transaction_id.to_hex();
        let body = &envelope.body;
        // A proposal is named by its id before anything else is said of it.
        let named_line = match named {
            Named::Transaction => String::new(),
            Named::Proposal => format!("proposal {transaction_id}\n"),
        };
        let with_name = |mut document: Value| {
            if named == Named::Proposal {
                document["proposal_id"] = Value::String(transaction_id.clone());
            }
            document
        };

        let Some(node) = self.node.filter(|_| !options.dry_run) else {
            let document = with_name(json!({
                "transaction_id": transaction_id,
                "chain_id": chain_id,
                "signer_public_key": render::hex_of(&envelope.transaction.signer_public_key),
                "body": render::body_json(body),
                "body_hex": render::hex_of(&envelope.transaction.body),
                "submitted": false,
            }));
            render::emit(json_output, &document, || {
                format!(
                    "dry run: nothing sent\n{named_line}transaction {transaction_id}\nchain id {chain_id}\nbody {}",
                    serde_json::to_string_pretty(&render::body_json(body))
                        .expect("JSON values always serialise")
                )
            });
            return Ok(Outcome::Success);
        };

        if !options.wait {
            node.submit(envelope).await.map_err(client::call_error)?;
            render::emit(
                json_output,
                &with_name(
                    json!({ "transaction_id": transaction_id, "chain_id": chain_id, "submitted": true, "receipt": null }),
                ),
                || {
                    format!(
                        "{named_line}submitted transaction {transaction_id} (pending; use --wait for the receipt)"
                    )
                },
            );
            return Ok(Outcome::Success);
        }
        let timeout = Duration::from_secs(u64::from(options.wait_timeout));
        let response = node
            .submit_and_wait(envelope, timeout)
            .await
            .map_err(client::call_error)?;
        let receipt = response.receipt.unwrap_or_default();
        let rejected = render::receipt_rejected(&receipt);
        render::emit(
            json_output,
            &with_name(json!({
                "transaction_id": transaction_id,
                "chain_id": chain_id,
                "submitted": true,
                "receipt": render::receipt_json(&receipt),
            })),
            || format!("{named_line}{}", render::receipt_text(&receipt)),
        );
        Ok(if rejected {
            Outcome::Rejected
        } else {
            Outcome::Success
        })
    }
}

fn seconds_after(now_ms: i64, seconds: u64) -> anyhow::Result<i64> {
    i64::try_from(seconds)
        .ok()
        .and_then(|seconds| seconds.checked_mul(1000))
        .and_then(|milliseconds| now_ms.checked_add(milliseconds))
        .ok_or_else(|| usage("--expires-in is too large"))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::exit::{ExitKind, exit_kind_of};

    const HOSPITAL: &str = "974760673";
    const MUNICIPALITY: &str = "983974899";
    const NOW: i64 = 1_800_000_000_000;

    #[derive(Debug, clap::Parser)]
    struct Harness {
        #[command(subcommand)]
        command: TxCommand,
    }

    fn parse(arguments: &[&str]) -> TxCommand {
        let mut all = vec!["tx"];
        all.extend_from_slice(arguments);
        Harness::try_parse_from(all).unwrap().command
    }

    fn subject() -> String {
        "ab".repeat(32)
    }

    // Anchor flags become an AnchorRecord with decoded hex fields and the defaults filled in.
    #[test]
    fn anchor_flags_build_the_body() {
        let subject = subject();
        let hash = "cd".repeat(32);
        let command = parse(&[
            "anchor",
            "--key",
            "k.pem",
            "--custodian",
            HOSPITAL,
            "--record-id",
            "R-1",
            "--subject",
            &subject,
            "--category",
            "note",
            "--location",
            "https://ehr.example/r/1",
            "--content-sha256",
            &hash,
        ]);
        let (action, options) = action_of(&command, NOW).unwrap();
        assert_eq!(options.send.endpoint, client::DEFAULT_ENDPOINT);
        let Action::AnchorRecord(anchor) = &action else {
            panic!("expected an anchor, got {action:?}");
        };
        assert_eq!(anchor.custodian_org_number, HOSPITAL);
        assert_eq!(anchor.subject_pseudonym, vec![0xab; 32]);
        assert_eq!(anchor.content_sha256, vec![0xcd; 32]);
        assert_eq!(anchor.confidentiality, v1::Confidentiality::Normal as i32);
        assert_eq!(anchor.created_at_unix_ms, NOW);
        let body = body("varde-test", action, 0, NOW + 60_000).unwrap();
        assert_eq!(body.expires_at_unix_ms, NOW + 60_000);
    }

    // A missing field is a usage error that names the flag and the file key.
    #[test]
    fn missing_field_names_flag_and_key() {
        let command = parse(&["anchor", "--key", "k.pem", "--custodian", HOSPITAL]);
        let error = action_of(&command, NOW).unwrap_err();
        assert_eq!(exit_kind_of(&error), ExitKind::Usage);
        assert!(error.to_string().contains("--record-id"));
        assert!(error.to_string().contains("\"record_id\""));
    }

    // A grant's scope, purposes, window and basis come out as the proto expects.
    #[test]
    fn grant_flags_build_the_body() {
        let subject = subject();
        let command = parse(&[
            "grant",
            "--key",
            "k.pem",
            "--issuer",
            HOSPITAL,
            "--subject",
            &subject,
            "--grantee",
            MUNICIPALITY,
            "--record-id",
            "R-1",
            "--purpose",
            "treat",
            "--purpose",
            "COC",
            "--valid-for-seconds",
            "3600",
            "--statute",
            "helsepersonelloven § 45",
        ]);
        let (action, _) = action_of(&command, NOW).unwrap();
        let Action::GrantAccess(grant) = &action else {
            panic!("expected a grant");
        };
        assert_eq!(
            grant.purposes,
            vec![v1::PurposeOfUse::Treat as i32, v1::PurposeOfUse::Coc as i32]
        );
        assert_eq!(grant.valid_from_unix_ms, NOW);
        assert_eq!(grant.valid_until_unix_ms, NOW + 3_600_000);
        let Some(v1::grant_scope::Scope::Record(record)) =
            grant.scope.as_ref().and_then(|scope| scope.scope.clone())
        else {
            panic!("expected a record scope");
        };
        assert_eq!(record.custodian_org_number, HOSPITAL);
        assert!(matches!(
            grant.basis.as_ref().and_then(|basis| basis.basis.clone()),
            Some(v1::grant_basis::Basis::Statutory(_))
        ));
        assert!(body("varde-test", action, 10, 0).is_ok());
    }

    // Two scopes, or none, are refused.
    #[test]
    fn grant_needs_exactly_one_scope() {
        let subject = subject();
        let command = parse(&[
            "grant",
            "--key",
            "k.pem",
            "--issuer",
            HOSPITAL,
            "--subject",
            &subject,
            "--grantee",
            MUNICIPALITY,
            "--all-records",
            "--category",
            "note",
            "--purpose",
            "TREAT",
            "--valid-for-seconds",
            "60",
        ]);
        let error = action_of(&command, NOW).unwrap_err();
        assert!(error.to_string().contains("exactly one scope"));
    }

    // A JSON file gives the same fields as the flags, and flags given override the file.
    #[test]
    fn json_file_gives_the_same_fields() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("log.json");
        std::fs::write(
            &path,
            serde_json::to_string(&json!({
                "accessor": MUNICIPALITY,
                "accessor_hpr": "1234567",
                "record_custodian": HOSPITAL,
                "record_id": "R-1",
                "purpose": "ETREAT",
                "emergency": "unconscious patient",
            }))
            .unwrap(),
        )
        .unwrap();
        let path_text = path.to_str().unwrap();
        let command = parse(&[
            "log-access",
            "--key",
            "k.pem",
            "--file",
            path_text,
            "--record-id",
            "R-2",
        ]);
        let (action, _) = action_of(&command, NOW).unwrap();
        let Action::LogAccess(log) = action else {
            panic!("expected a log access");
        };
        assert_eq!(log.accessor_org_number, MUNICIPALITY);
        assert_eq!(log.record.unwrap().record_id, "R-2");
        assert_eq!(log.purpose, v1::PurposeOfUse::Etreat as i32);
        assert!(matches!(
            log.basis,
            Some(v1::log_access::Basis::Emergency(_))
        ));
    }

    // Unknown keys in the file and non-object files are usage errors.
    #[test]
    fn json_file_refuses_unknown_keys() {
        let unknown = merge_with_file(
            &RevokeFields::default(),
            Some(json!({ "issuer": HOSPITAL, "grant": "x" })),
        )
        .unwrap_err();
        assert_eq!(exit_kind_of(&unknown), ExitKind::Usage);
        assert!(unknown.to_string().contains("grant"));
        let not_object = merge_with_file(&RevokeFields::default(), Some(json!([1]))).unwrap_err();
        assert_eq!(exit_kind_of(&not_object), ExitKind::Usage);
    }

    // Every action builds from its flags and passes the ledger's own field checks.
    #[test]
    fn every_action_builds() {
        let subject = subject();
        let id = "ef".repeat(32);
        let commands: Vec<Vec<&str>> = vec![
            vec![
                "supersede",
                "--custodian",
                HOSPITAL,
                "--record-id",
                "R-1",
                "--category",
                "note",
                "--location",
                "https://ehr.example/r/1v2",
                "--content-sha256",
                &id,
                "--confidentiality",
                "restricted",
            ],
            vec![
                "retract",
                "--custodian",
                HOSPITAL,
                "--record-id",
                "R-1",
                "--reason",
                "deleted",
            ],
            vec!["revoke", "--issuer", HOSPITAL, "--grant-id", &id],
            vec![
                "block",
                "--issuer",
                HOSPITAL,
                "--subject",
                &subject,
                "--hpr",
                "12345",
            ],
            vec!["unblock", "--issuer", HOSPITAL, "--block-id", &id],
            vec![
                "log-access",
                "--accessor",
                MUNICIPALITY,
                "--accessor-hpr",
                "7654321",
                "--record-custodian",
                HOSPITAL,
                "--record-id",
                "R-1",
                "--purpose",
                "ETREAT",
                "--grant-id",
                &id,
            ],
        ];
        for mut arguments in commands {
            arguments.extend(["--key", "k.pem"]);
            let command = parse(&arguments);
            let (action, _) =
                action_of(&command, NOW).unwrap_or_else(|error| panic!("{arguments:?}: {error:#}"));
            body("varde-test", action, 5, 0)
                .unwrap_or_else(|error| panic!("{arguments:?}: {error:#}"));
        }
    }

    // Fields the ledger would refuse (a national-id-shaped value, a bad org number) are caught
    // before signing, and the error does not echo the value.
    #[test]
    fn ledger_rules_are_checked_before_signing() {
        let id = "ef".repeat(32);
        let command = parse(&[
            "retract",
            "--key",
            "k.pem",
            "--custodian",
            HOSPITAL,
            "--record-id",
            "R-1",
            "--reason",
            "patient 31129956715 asked",
        ]);
        let (action, _) = action_of(&command, NOW).unwrap();
        let error = body("varde-test", action, 5, 0).unwrap_err();
        assert_eq!(exit_kind_of(&error), ExitKind::Usage);
        assert!(!format!("{error:#}").contains("31129956715"));
        let command = parse(&[
            "revoke",
            "--key",
            "k.pem",
            "--issuer",
            "974760674",
            "--grant-id",
            &id,
        ]);
        let (action, _) = action_of(&command, NOW).unwrap();
        assert!(body("varde-test", action, 5, 0).is_err());
        // No expiry at all is refused too.
        let command = parse(&[
            "revoke",
            "--key",
            "k.pem",
            "--issuer",
            HOSPITAL,
            "--grant-id",
            &id,
        ]);
        let (action, _) = action_of(&command, NOW).unwrap();
        assert!(body("varde-test", action, 0, 0).is_err());
    }

    // Purposes parse in any case; UNSPECIFIED and unknown codes are refused.
    #[test]
    fn purposes_parse() {
        assert_eq!(parse_purpose("etreat").unwrap(), v1::PurposeOfUse::Etreat);
        assert!(parse_purpose("UNSPECIFIED").is_err());
        assert!(parse_purpose("SHOPPING").is_err());
    }
}
