//! `varde proof` fetches self-contained proof bundles (`proof.proto`) from a node; `varde verify`
//! checks a bundle offline, or follows a node from genesis, with the light client of
//! `varde_ledger::proof`, trusting nothing but the genesis file.

use std::path::{Path, PathBuf};

use anyhow::Context;
use prost::Message;
use serde_json::{Value, json};
use varde_client::light::{Genesis, LightClient, VerifiedClaim, VerifiedHeader};
use varde_ledger::hex;
use varde_proto::v1;

use crate::client;
use crate::exit::{Outcome, usage};
use crate::query::{self, CheckQuestion, QueryOptions};
use crate::render;

/// Headers `varde verify --node` follows at most in one run.
const FOLLOW_HEADERS_MAX: u64 = 1_000_000;

#[derive(Debug, clap::Subcommand)]
pub enum ProofCommand {
    /// A committed transaction with its receipt, against a certified header.
    Tx {
        /// The transaction id (64 hex characters).
        #[arg(value_name = "TXID")]
        transaction_id: String,
        /// Prove against the header of this height (default: the latest).
        #[arg(long, default_value_t = 0, value_name = "H")]
        height: u64,
        #[command(flatten)]
        options: FetchOptions,
    },
    /// The ledger of SIZE transactions is a prefix of the ledger at a later certified header.
    Consistency {
        /// The earlier ledger size (a block header's `ledger_size`).
        #[arg(long = "from", value_name = "SIZE")]
        first_size: u64,
        /// The later header's height (default: the latest).
        #[arg(long, default_value_t = 0, value_name = "H")]
        to_height: u64,
        #[command(flatten)]
        options: FetchOptions,
    },
    /// A CheckAccess answer with the record, the grant it relied on and the absence (or
    /// presence) of patient blocks, proven against the latest certified header.
    Check {
        #[command(flatten)]
        question: CheckQuestion,
        #[command(flatten)]
        options: FetchOptions,
    },
    /// One record pointer, grant or patient block, with its value (or its absence), proven
    /// against the latest certified header.
    State {
        #[command(flatten)]
        entry: StateEntryArgs,
        #[command(flatten)]
        options: FetchOptions,
    },
}

/// Which state entry: a record (custodian and id), a grant or a patient block (by id).
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("entry").required(true).args(["record_custodian", "grant", "block", "member"])))]
pub struct StateEntryArgs {
    /// A record pointer's custodian (organisation number), with --record-id.
    #[arg(long, requires = "record_id", value_name = "ORG")]
    pub record_custodian: Option<String>,
    /// The record's id, with --record-custodian.
    #[arg(long, requires = "record_custodian", value_name = "ID")]
    pub record_id: Option<String>,
    /// A grant's id (64 hex characters).
    #[arg(long, value_name = "HEX")]
    pub grant: Option<String>,
    /// A patient block's id (64 hex characters).
    #[arg(long, value_name = "HEX")]
    pub block: Option<String>,
    /// A member institution (organisation number).
    #[arg(long, value_name = "ORG")]
    pub member: Option<String>,
}

impl StateEntryArgs {
    fn entry(self) -> anyhow::Result<v1::get_state_proof_request::Entry> {
        use v1::get_state_proof_request::Entry;
        let id = |text: &str, what: &str| {
            hex::decode(text.trim())
                .filter(|bytes| bytes.len() == 32)
                .ok_or_else(|| usage(format!("{what} must be 64 hex characters")))
        };
        Ok(
            match (
                self.record_custodian,
                self.record_id,
                self.grant,
                self.block,
                self.member,
            ) {
                (Some(custodian_org_number), Some(record_id), None, None, None) => {
                    Entry::Record(v1::RecordReference {
                        custodian_org_number,
                        record_id,
                    })
                }
                (None, None, Some(grant), None, None) => Entry::GrantId(id(&grant, "--grant")?),
                (None, None, None, Some(block), None) => Entry::BlockId(id(&block, "--block")?),
                (None, None, None, None, Some(member)) => Entry::MemberOrgNumber(member),
                _ => {
                    return Err(usage(
                        "give --record-custodian ORG --record-id ID, --grant HEX, --block HEX \
                         or --member ORG",
                    ));
                }
            },
        )
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct FetchOptions {
    /// Write the bundle (an encoded varde.v1.ProofBundle) to this file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Proof requests are signed like every read.
    #[command(flatten)]
    pub query: QueryOptions,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The genesis file: the only thing trusted.
    #[arg(long, value_name = "FILE")]
    pub genesis: PathBuf,
    /// Check this bundle offline ...
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "node",
        required_unless_present = "node"
    )]
    pub bundle: Option<PathBuf>,
    /// ... or follow this (untrusted) node from genesis: every header from --from-height to its
    /// head by its certificate and its link to the one before, and the ledger's consistency.
    #[arg(long, value_name = "URL")]
    pub node: Option<String>,
    /// With --node: the first height to check.
    #[arg(long, default_value_t = 1, value_name = "H")]
    pub from_height: u64,
    /// With --node: the caller's key file (PKCS#8 PEM) that signs the requests.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
}

pub async fn run(command: ProofCommand, json_output: bool) -> anyhow::Result<Outcome> {
    let (bundle, out) = match command {
        ProofCommand::Tx {
            transaction_id,
            height,
            options,
        } => {
            let id = hex::decode(transaction_id.trim())
                .filter(|bytes| bytes.len() == 32)
                .ok_or_else(|| usage("TXID must be 64 hex characters (a transaction id)"))?;
            let client = query::open(&options.query).await?;
            let bundle = client
                .get_transaction_proof(&id, height)
                .await
                .map_err(client::call_error)?;
            (bundle, options.out)
        }
        ProofCommand::Consistency {
            first_size,
            to_height,
            options,
        } => {
            let client = query::open(&options.query).await?;
            let bundle = client
                .get_consistency_bundle(first_size, to_height)
                .await
                .map_err(client::call_error)?;
            (bundle, options.out)
        }
        ProofCommand::Check { question, options } => {
            let client = query::open(&options.query).await?;
            let request = question.request(true)?;
            let response = client
                .check_access(request)
                .await
                .map_err(client::call_error)?;
            let Some(bundle) = response.proof else {
                return Err(anyhow::anyhow!(
                    "the answer ({}: {}) comes without a proof: a denial for want of a grant \
                     cannot be proven, and a key that may not see the whole answer, or every \
                     fact it rests on (the record, the grant, the blocks), gets none",
                    if response.allowed {
                        "allowed"
                    } else {
                        "denied"
                    },
                    response.reason
                ));
            };
            (bundle, options.out)
        }
        ProofCommand::State { entry, options } => {
            let entry = entry.entry()?;
            let client = query::open(&options.query).await?;
            let bundle = client
                .get_state_proof(entry)
                .await
                .map_err(client::call_error)?;
            (bundle, options.out)
        }
    };
    let bytes = bundle.encode_to_vec();
    std::fs::write(&out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
    let document = json!({
        "bundle": out.display().to_string(),
        "bytes": bytes.len(),
        "headers": bundle.headers.iter().filter_map(|certified| certified.header.as_ref()).map(|header| header.height).collect::<Vec<_>>(),
    });
    render::emit(json_output, &document, || {
        format!(
            "wrote {} ({} bytes); check it with `varde verify --genesis GENESIS --bundle {}`",
            out.display(),
            bytes.len(),
            out.display()
        )
    });
    Ok(Outcome::Success)
}

fn read_genesis(path: &Path) -> anyhow::Result<LightClient> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the genesis file {}", path.display()))?;
    let genesis: Genesis = serde_json::from_str(&text)
        .map_err(|error| usage(format!("{} is not a genesis file: {error}", path.display())))?;
    LightClient::from_genesis(&genesis)
        .map_err(|error| usage(format!("{}: {error}", path.display())))
}

pub async fn run_verify(arguments: VerifyArgs, json_output: bool) -> anyhow::Result<Outcome> {
    let light = read_genesis(&arguments.genesis)?;
    match (&arguments.bundle, &arguments.node) {
        (Some(bundle), _) => verify_bundle(&light, bundle, json_output),
        (None, Some(node)) => {
            let key = arguments.key.as_deref().ok_or_else(|| {
                usage("--node needs --key FILE: the node answers signed requests only")
            })?;
            follow(&light, node, key, arguments.from_height, json_output).await
        }
        (None, None) => Err(usage("give --bundle FILE or --node URL")),
    }
}

fn verify_bundle(light: &LightClient, path: &Path, json_output: bool) -> anyhow::Result<Outcome> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    match light.verify_bundle(&bytes) {
        Ok(claim) => {
            let document = claim_json(&claim);
            render::emit(json_output, &document, || claim_text(&claim));
            Ok(Outcome::Success)
        }
        Err(error) => refuted(json_output, &format!("{}: {error}", path.display())),
    }
}

/// Prints why a proof does not hold; the exit code says so (1).
fn refuted(json_output: bool, reason: &str) -> anyhow::Result<Outcome> {
    let document = json!({ "verified": false, "reason": reason });
    render::emit(json_output, &document, || format!("NOT VERIFIED: {reason}"));
    Ok(Outcome::CheckFailed)
}

fn header_json(header: &VerifiedHeader) -> Value {
    json!({
        "height": header.height,
        "block_hash": hex::encode(&header.block_hash),
        "time_unix_ms": header.time_unix_ms,
        "ledger_size": header.ledger_size,
        "ledger_root": hex::encode(&header.ledger_root),
        "state_root": hex::encode(&header.state_root),
        "signers": header.signers,
    })
}

fn claim_json(claim: &VerifiedClaim) -> Value {
    match claim {
        VerifiedClaim::Transaction {
            header,
            transaction_id,
            leaf_index,
            receipt,
            transaction,
        } => json!({
            "verified": true,
            "claim": "transaction",
            "transaction_id": hex::encode(transaction_id),
            "leaf_index": leaf_index,
            "receipt": receipt.as_ref().map(render::receipt_json),
            "body_included": transaction.is_some(),
            "header": header_json(header),
        }),
        VerifiedClaim::Consistency { first, second } => json!({
            "verified": true,
            "claim": "consistency",
            "first": header_json(first),
            "second": header_json(second),
        }),
        VerifiedClaim::StateEntry { header, entry } => {
            use v1::state_entry::Value as Entry;
            json!({
                "verified": true,
                "claim": "state_entry",
                "entry": state_key_json(entry.key.as_ref()),
                "present": entry.value.is_some(),
                "record": match &entry.value {
                    Some(Entry::RecordValue(record)) => render::record_json(record),
                    _ => Value::Null,
                },
                "grant": match &entry.value {
                    Some(Entry::GrantValue(grant)) => render::grant_json(grant),
                    _ => Value::Null,
                },
                "block": match &entry.value {
                    Some(Entry::BlockValue(block)) => crate::access_log::block_json(block),
                    _ => Value::Null,
                },
                "member": match &entry.value {
                    Some(Entry::MemberValue(member)) => member_json(member),
                    _ => Value::Null,
                },
                "header": header_json(header),
            })
        }
        VerifiedClaim::AccessCheck {
            header,
            asked_by,
            at_unix_ms,
            question,
            check,
        } => json!({
            "verified": true,
            "claim": "access_check",
            "asked_by": asked_by,
            "accessor": question.accessor_org_number,
            "accessor_hpr": (!question.accessor_hpr_number.is_empty())
                .then(|| question.accessor_hpr_number.clone()),
            "record": question.record.as_ref().map(|record| json!({
                "custodian": record.custodian_org_number,
                "record_id": record.record_id,
            })),
            "purpose": render::purpose_name(question.purpose),
            "at_unix_ms": at_unix_ms,
            "allowed": check.allowed,
            "reason": check.reason,
            "emergency": check.emergency,
            "grant_id": (!check.grant_id.is_empty()).then(|| hex::encode(&check.grant_id)),
            "header": header_json(header),
        }),
    }
}

fn claim_text(claim: &VerifiedClaim) -> String {
    match claim {
        VerifiedClaim::Transaction {
            header,
            transaction_id,
            leaf_index,
            receipt,
            transaction,
        } => {
            let receipt = match receipt {
                Some(receipt) => format!("\nits receipt: {}", render::receipt_text(receipt)),
                None => {
                    "\nits receipt's hash only (the bundle's caller may not see the transaction)"
                        .to_owned()
                }
            };
            format!(
                "VERIFIED: transaction {} is leaf {leaf_index} of the ledger at height {}{}\n\
                 header {} signed by {} of the genesis validators{receipt}",
                hex::encode(transaction_id),
                header.height,
                if transaction.is_some() {
                    ", its body included and its signature checked"
                } else {
                    ""
                },
                hex::encode(&header.block_hash),
                header.signers,
            )
        }
        VerifiedClaim::AccessCheck {
            header,
            asked_by,
            at_unix_ms,
            question,
            check,
        } => {
            let record = question.record.clone().unwrap_or_default();
            let person = if question.accessor_hpr_number.is_empty() {
                String::new()
            } else {
                format!(" (HPR {})", question.accessor_hpr_number)
            };
            let grant = if check.grant_id.is_empty() {
                String::new()
            } else {
                format!(", relying on grant {}", hex::encode(&check.grant_id))
            };
            format!(
                "VERIFIED: {}{person} may{} read {}/{} for {} at {at_unix_ms}: {}{grant}\n\
                 asked by {asked_by} (its signature checked); proven against the state root of \
                 header {} ({}), signed by {} of the genesis validators",
                question.accessor_org_number,
                if check.allowed { "" } else { " NOT" },
                record.custodian_org_number,
                record.record_id,
                render::purpose_name(question.purpose),
                check.reason,
                header.height,
                hex::encode(&header.block_hash),
                header.signers,
            )
        }
        VerifiedClaim::StateEntry { header, entry } => {
            use v1::state_entry::Value as Entry;
            let shown = match &entry.value {
                Some(Entry::RecordValue(record)) => render::record_text(record),
                Some(Entry::GrantValue(grant)) => render::grant_text(grant),
                Some(Entry::BlockValue(block)) => {
                    format!("patient block {}", crate::access_log::block_text(block))
                }
                Some(Entry::MemberValue(member)) => format!(
                    "member {} {} ({}), {} submitting key(s){}",
                    member.org_number,
                    member.name,
                    member_roles(member).join(", "),
                    member.public_keys.len(),
                    if member.validator_key.is_empty() {
                        String::new()
                    } else {
                        format!(", validator key {}", hex::encode(&member.validator_key))
                    }
                ),
                None => format!("{} is ABSENT", state_key_text(entry.key.as_ref())),
            };
            format!(
                "VERIFIED: {shown}\nproven against the state root of header {} ({}), signed by {} \
                 of the genesis validators",
                header.height,
                hex::encode(&header.block_hash),
                header.signers,
            )
        }
        VerifiedClaim::Consistency { first, second } => format!(
            "VERIFIED: the ledger of {} transactions at height {} is a prefix of the ledger of {} at height {}\n\
             both headers certified by validators of the genesis set",
            first.ledger_size, first.height, second.ledger_size, second.height
        ),
    }
}

fn state_key_json(key: Option<&v1::state_entry::Key>) -> Value {
    use v1::state_entry::Key;
    match key {
        Some(Key::Record(record)) => json!({
            "record": { "custodian": record.custodian_org_number, "record_id": record.record_id },
        }),
        Some(Key::GrantId(id)) => json!({ "grant_id": hex::encode(id) }),
        Some(Key::BlockId(id)) => json!({ "block_id": hex::encode(id) }),
        Some(Key::MemberOrgNumber(org_number)) => json!({ "member": org_number }),
        None => Value::Null,
    }
}

fn state_key_text(key: Option<&v1::state_entry::Key>) -> String {
    use v1::state_entry::Key;
    match key {
        Some(Key::Record(record)) => format!(
            "record {}/{}",
            record.custodian_org_number, record.record_id
        ),
        Some(Key::GrantId(id)) => format!("grant {}", hex::encode(id)),
        Some(Key::BlockId(id)) => format!("patient block {}", hex::encode(id)),
        Some(Key::MemberOrgNumber(org_number)) => format!("member {org_number}"),
        None => "an entry".to_owned(),
    }
}

fn member_roles(member: &v1::Member) -> Vec<String> {
    member
        .roles
        .iter()
        .map(|role| {
            v1::InstitutionRole::try_from(*role).map_or_else(
                |_| format!("UNKNOWN({role})"),
                |role| {
                    role.as_str_name()
                        .trim_start_matches("INSTITUTION_ROLE_")
                        .to_lowercase()
                },
            )
        })
        .collect()
}

fn member_json(member: &v1::Member) -> Value {
    json!({
        "org_number": member.org_number,
        "name": member.name,
        "roles": member_roles(member),
        "public_keys": member.public_keys.iter().map(|key| hex::encode(key)).collect::<Vec<_>>(),
        "validator_key": (!member.validator_key.is_empty()).then(|| hex::encode(&member.validator_key)),
    })
}

/// Follows a node from `from_height` to its head, checking every header's certificate, each
/// header's link to the one before, and the ledger's consistency from first to last.
async fn follow(
    light: &LightClient,
    endpoint: &str,
    key: &Path,
    from_height: u64,
    json_output: bool,
) -> anyhow::Result<Outcome> {
    let client = client::connect_signing(endpoint, key, Some(light.chain_id())).await?;
    let sets = client
        .get_validator_sets()
        .await
        .map_err(client::call_error)?;
    if let Err(error) = light.check_validator_sets(&sets) {
        return refuted(json_output, &format!("{endpoint}: {error}"));
    }
    let head = client
        .get_certified_header(0)
        .await
        .map_err(client::call_error)?;
    let head = match light.verify_header(&head) {
        Ok(head) => head,
        Err(error) => return refuted(json_output, &format!("{endpoint}, latest header: {error}")),
    };
    let from_height = from_height.max(1);
    if from_height > head.height {
        return Err(usage(format!(
            "--from-height {from_height} is above the node's head {}",
            head.height
        )));
    }
    if head.height - from_height >= FOLLOW_HEADERS_MAX {
        return Err(usage(format!(
            "the node is {} heights ahead; follow at most {FOLLOW_HEADERS_MAX} at a time with --from-height",
            head.height - from_height + 1
        )));
    }
    let mut previous: Option<VerifiedHeader> = None;
    let mut first: Option<VerifiedHeader> = None;
    for height in from_height..=head.height {
        let certified = client
            .get_certified_header(height)
            .await
            .map_err(client::call_error)?;
        let header = match light.verify_header(&certified) {
            Ok(header) if header.height == height => header,
            Ok(header) => {
                return refuted(
                    json_output,
                    &format!(
                        "{endpoint} answered height {height} with header {}",
                        header.height
                    ),
                );
            }
            Err(error) => return refuted(json_output, &format!("{endpoint}: {error}")),
        };
        if let Some(previous) = &previous {
            if header.previous_hash != previous.block_hash {
                return refuted(
                    json_output,
                    &format!(
                        "{endpoint}: header {height} does not link to header {}",
                        height - 1
                    ),
                );
            }
            if header.ledger_size < previous.ledger_size {
                return refuted(
                    json_output,
                    &format!("{endpoint}: the ledger shrinks at height {height}"),
                );
            }
        }
        if first.is_none() {
            first = Some(header.clone());
        }
        previous = Some(header);
    }
    let first = first.expect("at least one header");
    let last = previous.expect("at least one header");
    let bundle = client
        .get_consistency_bundle(first.ledger_size, last.height)
        .await
        .map_err(client::call_error)?;
    match light.verify_bundle(&bundle.encode_to_vec()) {
        Ok(VerifiedClaim::Consistency { second, .. }) if second.block_hash == last.block_hash => {}
        Ok(_) => {
            return refuted(
                json_output,
                &format!("{endpoint}: the consistency proof is not for the headers followed"),
            );
        }
        Err(error) => return refuted(json_output, &format!("{endpoint}: {error}")),
    }
    let document = json!({
        "verified": true,
        "claim": "followed",
        "from_height": first.height,
        "to_height": last.height,
        "headers": last.height - first.height + 1,
        "last": header_json(&last),
    });
    render::emit(json_output, &document, || {
        format!(
            "VERIFIED: {} headers from height {} to {} hold by their certificates and links; the ledger grew consistently from {} to {} transactions (root {})",
            last.height - first.height + 1,
            first.height,
            last.height,
            first.ledger_size,
            last.ledger_size,
            hex::encode(&last.ledger_root)
        )
    });
    Ok(Outcome::Success)
}
