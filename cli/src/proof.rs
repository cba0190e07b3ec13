//! `varde proof` fetches self-contained proof bundles (`proof.proto`) from a node; `varde verify`
//! checks a bundle offline, or follows a node from genesis, with the light client of
//! `varde_ledger::proof`, trusting nothing but the genesis file.

use std::path::{Path, PathBuf};

use anyhow::Context;
use prost::Message;
use serde_json::{Value, json};
use varde_client::light::{
    FollowError, Genesis, LightClient, VerifiedClaim, VerifiedHeader, follow_set_changes,
};
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
                    Some(Entry::MemberValue(member)) => render::member_json(member),
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
                    render::role_names(&member.roles).join(", "),
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

/// What `varde verify --node` reads from the node (a trait, so that the checks also run over a
/// ledger in the tests).
trait HeaderSource {
    async fn validator_sets(&self) -> anyhow::Result<Vec<v1::ValidatorSetEntry>>;
    /// The certified header of `height` (0: the latest).
    async fn certified_header(&self, height: u64) -> anyhow::Result<v1::CertifiedHeader>;
    async fn consistency_bundle(
        &self,
        first_size: u64,
        second_height: u64,
    ) -> anyhow::Result<v1::ProofBundle>;
}

impl HeaderSource for varde_client::Client {
    async fn validator_sets(&self) -> anyhow::Result<Vec<v1::ValidatorSetEntry>> {
        self.get_validator_sets().await.map_err(client::call_error)
    }

    async fn certified_header(&self, height: u64) -> anyhow::Result<v1::CertifiedHeader> {
        self.get_certified_header(height)
            .await
            .map_err(client::call_error)
    }

    async fn consistency_bundle(
        &self,
        first_size: u64,
        second_height: u64,
    ) -> anyhow::Result<v1::ProofBundle> {
        self.get_consistency_bundle(first_size, second_height)
            .await
            .map_err(client::call_error)
    }
}

/// What following a node proved.
#[derive(Debug)]
struct Followed {
    first: VerifiedHeader,
    last: VerifiedHeader,
    /// The validator-set changes followed from genesis, in order.
    set_changes: Vec<v1::ValidatorSetEntry>,
}

/// Why following a node stopped.
#[derive(Debug)]
enum FollowFailure {
    /// The node's answers do not hold: the reason, printed as NOT VERIFIED.
    Refuted(String),
    /// A call failed or the command was given wrong; nothing was proven either way.
    Error(anyhow::Error),
}

impl From<anyhow::Error> for FollowFailure {
    fn from(error: anyhow::Error) -> Self {
        Self::Error(error)
    }
}

/// The hash of the set `sets` holds in force at `height`.
fn set_hash_at(sets: &[v1::ValidatorSetEntry], height: u64) -> Option<&[u8]> {
    sets.iter()
        .rev()
        .find(|set| set.from_height <= height)
        .map(|set| set.set_hash.as_slice())
}

/// Follows `node` from `from_height` to its head: its validator-set history from genesis, each
/// change by the certified header before it; every header's certificate by the set of its height,
/// its link to the one before and the next height's set it names; the ledger's consistency from
/// the first header to the last.
async fn follow_node(
    node: &impl HeaderSource,
    endpoint: &str,
    genesis_client: &LightClient,
    from_height: u64,
) -> Result<Followed, FollowFailure> {
    let refuted = |reason: String| FollowFailure::Refuted(format!("{endpoint}: {reason}"));
    // The head first: the history read after it holds every change up to it.
    let head = node.certified_header(0).await?;
    let served = node.validator_sets().await?;
    let mut light = genesis_client.clone();
    let set_changes = follow_set_changes(&mut light, &served, async |height| {
        node.certified_header(height).await
    })
    .await
    .map_err(|error| match error {
        FollowError::Fetch(error) => FollowFailure::Error(error),
        refused => refuted(refused.to_string()),
    })?;
    let trusted_sets = light.validator_sets();
    let head = light
        .verify_header(&head)
        .map_err(|error| refuted(format!("latest header: {error}")))?;
    let from_height = from_height.max(1);
    if from_height > head.height {
        return Err(usage(format!(
            "--from-height {from_height} is above the node's head {}",
            head.height
        ))
        .into());
    }
    if head.height - from_height >= FOLLOW_HEADERS_MAX {
        return Err(usage(format!(
            "the node is {} heights ahead; follow at most {FOLLOW_HEADERS_MAX} at a time with --from-height",
            head.height - from_height + 1
        ))
        .into());
    }
    let mut previous: Option<VerifiedHeader> = None;
    let mut first: Option<VerifiedHeader> = None;
    for height in from_height..=head.height {
        let certified = node.certified_header(height).await?;
        let header = match light.verify_header(&certified) {
            Ok(header) if header.height == height => header,
            Ok(header) => {
                return Err(refuted(format!(
                    "answered height {height} with header {}",
                    header.height
                )));
            }
            Err(error) => return Err(refuted(error.to_string())),
        };
        // A header names the next height's set: a change the history leaves out shows here.
        let announced = certified
            .header
            .as_ref()
            .map(|header| header.next_validator_set_hash.as_slice())
            .unwrap_or_default();
        if !announced.is_empty() && Some(announced) != set_hash_at(&trusted_sets, height + 1) {
            return Err(refuted(format!(
                "header {height} names a validator set for height {} that the node's \
                 validator-set history does not hold",
                height + 1
            )));
        }
        if let Some(previous) = &previous {
            if header.previous_hash != previous.block_hash {
                return Err(refuted(format!(
                    "header {height} does not link to header {}",
                    height - 1
                )));
            }
            if header.ledger_size < previous.ledger_size {
                return Err(refuted(format!("the ledger shrinks at height {height}")));
            }
        }
        if first.is_none() {
            first = Some(header.clone());
        }
        previous = Some(header);
    }
    let first = first.expect("at least one header");
    let last = previous.expect("at least one header");
    let bundle = node
        .consistency_bundle(first.ledger_size, last.height)
        .await?;
    match light.verify_bundle(&bundle.encode_to_vec()) {
        Ok(VerifiedClaim::Consistency { second, .. }) if second.block_hash == last.block_hash => {}
        Ok(_) => {
            return Err(refuted(
                "the consistency proof is not for the headers followed".to_owned(),
            ));
        }
        Err(error) => return Err(refuted(error.to_string())),
    }
    Ok(Followed {
        first,
        last,
        set_changes,
    })
}

/// `varde verify --node`: follows the node and prints what held, or why not (exit code 1).
async fn follow(
    light: &LightClient,
    endpoint: &str,
    key: &Path,
    from_height: u64,
    json_output: bool,
) -> anyhow::Result<Outcome> {
    let client = client::connect_signing(endpoint, key, Some(light.chain_id())).await?;
    let Followed {
        first,
        last,
        set_changes,
    } = match follow_node(&client, endpoint, light, from_height).await {
        Ok(followed) => followed,
        Err(FollowFailure::Refuted(reason)) => return refuted(json_output, &reason),
        Err(FollowFailure::Error(error)) => return Err(error),
    };
    let document = json!({
        "verified": true,
        "claim": "followed",
        "from_height": first.height,
        "to_height": last.height,
        "headers": last.height - first.height + 1,
        "set_changes_followed": set_changes.len(),
        "set_changes": set_changes.iter().map(|change| json!({
            "from_height": change.from_height,
            "validators": change.validators.len(),
            "set_hash": hex::encode(&change.set_hash),
        })).collect::<Vec<_>>(),
        "last": header_json(&last),
    });
    render::emit(json_output, &document, || {
        let changes = if set_changes.is_empty() {
            "no validator-set change to follow: the genesis set decides every height".to_owned()
        } else {
            format!(
                "followed {} validator-set change{} from genesis, each certified by the set before it (from height{} {})",
                set_changes.len(),
                if set_changes.len() == 1 { "" } else { "s" },
                if set_changes.len() == 1 { "" } else { "s" },
                set_changes
                    .iter()
                    .map(|change| format!(
                        "{} ({} validators)",
                        change.from_height,
                        change.validators.len()
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        format!(
            "VERIFIED: {} headers from height {} to {} hold by their certificates and links; the ledger grew consistently from {} to {} transactions (root {})\n{changes}",
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

#[cfg(test)]
mod tests {
    use varde_benches::fixtures;
    use varde_client::tx::{ApproveChange, Expiry, ProposeChange, Transaction};
    use varde_ledger::Ledger;
    use varde_ledger::membership::Role;
    use varde_ledger::proof;
    use varde_ledger::stored::StoredValue;

    use super::*;

    /// The height the set shrinks from four validators to three at.
    const EFFECTIVE_HEIGHT: u64 = 4;
    const HEAD: u64 = 5;

    type TestLedger = Ledger<varde_node::node::NodeStore>;

    /// A node over a ledger: its history as served (possibly false) and its head (possibly below
    /// the ledger's).
    struct LedgerNode {
        ledger: TestLedger,
        served_sets: Vec<v1::ValidatorSetEntry>,
        head: u64,
    }

    impl HeaderSource for LedgerNode {
        async fn validator_sets(&self) -> anyhow::Result<Vec<v1::ValidatorSetEntry>> {
            Ok(self.served_sets.clone())
        }

        async fn certified_header(&self, height: u64) -> anyhow::Result<v1::CertifiedHeader> {
            let height = if height == 0 { self.head } else { height };
            anyhow::ensure!(height <= self.head, "no header at {height}");
            proof::certified_header(&self.ledger, height)?
                .ok_or_else(|| anyhow::anyhow!("no header at {height}"))
        }

        async fn consistency_bundle(
            &self,
            first_size: u64,
            second_height: u64,
        ) -> anyhow::Result<v1::ProofBundle> {
            Ok(proof::consistency_bundle(
                &self.ledger,
                first_size,
                second_height,
            )?)
        }
    }

    /// Commits the next block of `transactions` (each must apply), certified by the first
    /// `signers` validators in index order.
    fn commit(ledger: &TestLedger, transactions: Vec<v1::SignedTransaction>, signers: usize) {
        let mut executed = ledger
            .execute_block([9; 32], fixtures::next_block_time(ledger), transactions)
            .unwrap();
        for receipt in &executed.receipts {
            assert!(receipt.is_applied(), "{receipt:?}");
        }
        let mut certificate = fixtures::certificate(executed.head.height, executed.block_hash);
        certificate.signatures.truncate(signers);
        executed.attach_certificate(StoredValue::encode(&certificate));
        ledger.commit(executed).unwrap();
    }

    /// The fixtures' chain of four validators, where governance takes out the validator last in
    /// index order from [`EFFECTIVE_HEIGHT`] on (proposed and approved by the three others, each
    /// signing with its consensus key), committed up to [`HEAD`].
    fn ledger(directory: &Path) -> TestLedger {
        let genesis = fixtures::genesis();
        let config = varde_node::NodeConfig::new(
            directory.join("data"),
            directory.join("genesis.json"),
            directory.join("validator.pem"),
            "127.0.0.1:0".parse().unwrap(),
        );
        let store = varde_node::node::open_store(&config, &genesis).unwrap();
        let ledger = Ledger::open(store, genesis.clone()).unwrap();
        let ordered = fixtures::validator_keys_in_order();
        let institution_of = |key: &ed25519_dalek::SigningKey| {
            genesis
                .institutions
                .iter()
                .find(|institution| {
                    institution.validator_key == Some(key.verifying_key().to_bytes())
                })
                .unwrap()
        };
        let leaving = institution_of(&ordered[3]);
        let leaving_org = leaving.org_number.to_string();
        let proposer = institution_of(&ordered[0]).org_number.to_string();
        // An institution whose only role is validator leaves altogether.
        let change = if leaving.roles == [Role::Validator] {
            ProposeChange::remove_institution(&proposer, leaving_org, EFFECTIVE_HEIGHT)
        } else {
            ProposeChange::remove_validator(&proposer, leaving_org, EFFECTIVE_HEIGHT)
        };
        let sign = |action: varde_proto::v1::transaction_body::Action, key| {
            Transaction::new(action)
                .expiry(Expiry::At {
                    height: 100,
                    unix_ms: 0,
                })
                .sign_at(fixtures::CHAIN, key, fixtures::T0)
                .unwrap()
        };
        let proposal = sign(change.into(), &ordered[0]);
        commit(&ledger, vec![proposal.transaction], 4);
        let approvals = [&ordered[1], &ordered[2]]
            .into_iter()
            .map(|key| {
                let approver = institution_of(key).org_number.to_string();
                let approve = ApproveChange::new(approver, proposal.transaction_id.0);
                sign(approve.into(), key).transaction
            })
            .collect();
        commit(&ledger, approvals, 4);
        commit(&ledger, Vec::new(), 4);
        for _ in EFFECTIVE_HEIGHT..=HEAD {
            commit(&ledger, Vec::new(), 3);
        }
        ledger
    }

    fn node(ledger: TestLedger, head: u64) -> LedgerNode {
        let served_sets = proof::validator_set_history(&ledger).unwrap();
        LedgerNode {
            ledger,
            served_sets,
            head,
        }
    }

    fn follow(node: &LedgerNode) -> Result<Followed, FollowFailure> {
        let light = LightClient::from_genesis(&fixtures::genesis()).unwrap();
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(follow_node(node, "node", &light, 1))
    }

    fn refusal(node: &LedgerNode) -> String {
        match follow(node) {
            Err(FollowFailure::Refuted(reason)) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    // Following from genesis trusts the smaller set by the header before it and then checks
    // every header to the head, each by the set of its height.
    #[test]
    fn follows_a_governance_change_of_the_validator_set() {
        let directory = tempfile::tempdir().unwrap();
        let node = node(ledger(directory.path()), HEAD);
        assert_eq!(node.served_sets.len(), 2);
        let followed = follow(&node).unwrap();
        assert_eq!(followed.set_changes.len(), 1);
        assert_eq!(followed.set_changes[0].from_height, EFFECTIVE_HEIGHT);
        assert_eq!(followed.set_changes[0].validators.len(), 3);
        assert_eq!((followed.first.height, followed.last.height), (1, HEAD));
        assert_eq!(followed.last.signers, 3);
    }

    // A node that hides the change is refused, even when its head is the last height of the old
    // set (the header names the next set); one that names another set than the header before
    // the change announces is refused too.
    #[test]
    fn false_validator_set_histories_are_refused() {
        let directory = tempfile::tempdir().unwrap();
        let mut node = node(ledger(directory.path()), HEAD);
        let honest = node.served_sets.clone();

        node.served_sets.truncate(1);
        let hidden = refusal(&node);
        assert!(hidden.contains("latest header"), "{hidden}");
        node.head = EFFECTIVE_HEIGHT - 1;
        let hidden = refusal(&node);
        assert!(
            hidden.contains("header 3 names a validator set for height 4"),
            "{hidden}"
        );

        let mut forged = honest.clone();
        let mut keys: Vec<[u8; 32]> = fixtures::validator_keys_in_order()[..2]
            .iter()
            .map(|key| key.verifying_key().to_bytes())
            .collect();
        keys.push(fixtures::key(99).verifying_key().to_bytes());
        keys.sort();
        forged[1].validators = keys.iter().map(|key| key.to_vec()).collect();
        forged[1].set_hash = varde_ledger::governance::set_hash(&keys).to_vec();
        node.served_sets = forged;
        node.head = HEAD;
        let forged = refusal(&node);
        assert!(
            forged.contains("validator set from height 4 is not proven"),
            "{forged}"
        );

        node.served_sets = honest;
        assert!(follow(&node).is_ok());
    }
}
