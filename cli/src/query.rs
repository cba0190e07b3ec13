//! `varde query`: signed queries (scheme varde-query-v2), made and sent by `varde_client`.

use std::path::PathBuf;

use serde_json::{Value, json};
use varde_client::Client;
use varde_ledger::hex;
use varde_proto::v1;

use crate::client;
use crate::exit::{Outcome, usage};
use crate::render;
use crate::tx::parse_purpose;

/// Pages fetched by `--all` at most, so that a misbehaving node cannot keep the loop going.
const PAGES_MAX: usize = 10_000;

#[derive(Debug, clap::Subcommand)]
pub enum QueryCommand {
    /// Record pointers of a subject or of a custodian.
    Records {
        /// The subject's pseudonym (64 hex characters) ...
        #[arg(long, value_name = "HEX", conflicts_with = "custodian")]
        subject: Option<String>,
        /// ... or the custodian's organisation number.
        #[arg(long, required_unless_present = "subject")]
        custodian: Option<String>,
        #[command(flatten)]
        paging: Paging,
        #[command(flatten)]
        options: QueryOptions,
    },
    /// Grants of a subject or to a grantee.
    Grants {
        /// The subject's pseudonym (64 hex characters) ...
        #[arg(long, value_name = "HEX", conflicts_with = "grantee")]
        subject: Option<String>,
        /// ... or the grantee's organisation number.
        #[arg(long, required_unless_present = "subject")]
        grantee: Option<String>,
        #[command(flatten)]
        paging: Paging,
        #[command(flatten)]
        options: QueryOptions,
    },
    /// Access events of a subject (the patient's "who looked at my records?"), of a record, or by
    /// an accessor, as a table.
    AccessLog {
        /// The subject's pseudonym (64 hex characters) ...
        #[arg(long, value_name = "HEX", conflicts_with_all = ["record_id", "accessor"])]
        subject: Option<String>,
        /// ... or a record: its custodian (with --record-id) ...
        #[arg(long, requires = "record_id")]
        record_custodian: Option<String>,
        /// ... and its id ...
        #[arg(long, requires = "record_custodian", conflicts_with = "accessor")]
        record_id: Option<String>,
        /// ... or the accessor's organisation number.
        #[arg(long, required_unless_present_any = ["subject", "record_id"])]
        accessor: Option<String>,
        #[command(flatten)]
        paging: Paging,
        #[command(flatten)]
        options: QueryOptions,
    },
    /// A patient's blocks of institutions and persons (lifted ones too).
    Blocks {
        /// The subject's pseudonym (64 hex characters).
        #[arg(long, value_name = "HEX")]
        subject: String,
        #[command(flatten)]
        paging: Paging,
        #[command(flatten)]
        options: QueryOptions,
    },
    /// May this institution read this record for this purpose? Exit code 0 allowed, 4 denied.
    Check {
        #[command(flatten)]
        question: CheckQuestion,
        #[command(flatten)]
        options: QueryOptions,
    },
}

/// The question of CheckAccess, as flags (`query check`, `proof check`).
#[derive(Debug, Clone, clap::Args)]
pub struct CheckQuestion {
    /// The institution that would read (organisation number).
    #[arg(long)]
    pub accessor: String,
    /// The person who would read (HPR number), optional.
    #[arg(long)]
    pub accessor_hpr: Option<String>,
    /// The record's custodian.
    #[arg(long)]
    pub record_custodian: String,
    /// The record's id.
    #[arg(long)]
    pub record_id: String,
    /// Purpose of use (TREAT, ETREAT, COC, ...).
    #[arg(long)]
    pub purpose: String,
    /// Decide at this time (Unix ms); default: the latest block's time.
    #[arg(long, value_name = "UNIX_MS")]
    pub at_unix_ms: Option<i64>,
}

impl CheckQuestion {
    /// The unsigned CheckAccessRequest, asking for a proof with `with_proof`.
    pub fn request(self, with_proof: bool) -> anyhow::Result<v1::CheckAccessRequest> {
        Ok(v1::CheckAccessRequest {
            auth: None,
            accessor_org_number: self.accessor,
            accessor_hpr_number: self.accessor_hpr.unwrap_or_default(),
            record: Some(v1::RecordReference {
                custodian_org_number: self.record_custodian,
                record_id: self.record_id,
            }),
            purpose: parse_purpose(&self.purpose)? as i32,
            at_unix_ms: self.at_unix_ms.unwrap_or(0),
            with_proof,
        })
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct QueryOptions {
    /// The caller's key file (PKCS#8 PEM), a registered key of a member institution.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The node's gRPC address.
    #[arg(long, default_value = client::DEFAULT_ENDPOINT, value_name = "URL")]
    pub endpoint: String,
    /// The chain id to sign for; fetched from the node's status when not given.
    #[arg(long)]
    pub chain_id: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Paging {
    /// Results per page (node default 50, at most 500).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub page_size: u32,
    /// Continue from a previous answer's next_page_token.
    #[arg(long, value_name = "TOKEN")]
    pub page_token: Option<String>,
    /// Fetch every page.
    #[arg(long)]
    pub all: bool,
}

fn subject_bytes(text: &str) -> anyhow::Result<Vec<u8>> {
    hex::decode(text.trim())
        .filter(|bytes| bytes.len() == 32)
        .ok_or_else(|| {
            usage("--subject must be 64 hex characters (a pseudonym from `varde pseudonym`)")
        })
}

/// What a page of results gives back: items, the next token, the height.
pub type Page<T> = (Vec<T>, String, u64);

/// Fetches one page, or every page with `--all`.
pub async fn paginate<T>(
    paging: &Paging,
    mut fetch: impl AsyncFnMut(String) -> anyhow::Result<Page<T>>,
) -> anyhow::Result<Page<T>> {
    let mut token = paging.page_token.clone().unwrap_or_default();
    let mut items = Vec::new();
    for _ in 0..PAGES_MAX {
        let (page, next, height) = fetch(token).await?;
        items.extend(page);
        if !paging.all || next.is_empty() {
            return Ok((items, next, height));
        }
        token = next;
    }
    Err(anyhow::anyhow!(
        "the node kept returning pages after {PAGES_MAX}; use --page-size and --page-token"
    ))
}

/// A client of `--endpoint` that signs with `--key` for `--chain-id` (or the node's).
pub async fn open(options: &QueryOptions) -> anyhow::Result<Client> {
    client::connect_signing(&options.endpoint, &options.key, options.chain_id.as_deref()).await
}

pub fn page_document(name: &str, items: Vec<Value>, next: &str, height: u64) -> Value {
    json!({
        "height": height,
        name: items,
        "next_page_token": if next.is_empty() { Value::Null } else { Value::String(next.to_owned()) },
    })
}

fn page_text(lines: Vec<String>, what: &str, next: &str, height: u64) -> String {
    let mut text = format!("{} {what} at height {height}\n", lines.len());
    for line in lines {
        text.push_str(&line);
        text.push('\n');
    }
    if !next.is_empty() {
        text.push_str(&format!("more: --page-token {next} (or --all)\n"));
    }
    text
}

pub async fn run(command: QueryCommand, json_output: bool) -> anyhow::Result<Outcome> {
    match command {
        QueryCommand::Records {
            subject,
            custodian,
            paging,
            options,
        } => {
            let filter = match (subject, custodian) {
                (Some(subject), _) => {
                    v1::list_records_request::Filter::SubjectPseudonym(subject_bytes(&subject)?)
                }
                (None, Some(custodian)) => {
                    v1::list_records_request::Filter::CustodianOrgNumber(custodian)
                }
                (None, None) => return Err(usage("give --subject HEX or --custodian ORG_NUMBER")),
            };
            let caller = open(&options).await?;
            let (records, next, height) = paginate(&paging, async |page_token| {
                let request = v1::ListRecordsRequest {
                    auth: None,
                    filter: Some(filter.clone()),
                    page_size: paging.page_size,
                    page_token,
                };
                let response = caller
                    .list_records(request)
                    .await
                    .map_err(client::call_error)?;
                Ok((response.records, response.next_page_token, response.height))
            })
            .await?;
            render::emit(
                json_output,
                &page_document(
                    "records",
                    records.iter().map(render::record_json).collect(),
                    &next,
                    height,
                ),
                || {
                    page_text(
                        records.iter().map(render::record_text).collect(),
                        "records",
                        &next,
                        height,
                    )
                },
            );
        }
        QueryCommand::Grants {
            subject,
            grantee,
            paging,
            options,
        } => {
            let filter = match (subject, grantee) {
                (Some(subject), _) => {
                    v1::list_grants_request::Filter::SubjectPseudonym(subject_bytes(&subject)?)
                }
                (None, Some(grantee)) => v1::list_grants_request::Filter::GranteeOrgNumber(grantee),
                (None, None) => return Err(usage("give --subject HEX or --grantee ORG_NUMBER")),
            };
            let caller = open(&options).await?;
            let (grants, next, height) = paginate(&paging, async |page_token| {
                let request = v1::ListGrantsRequest {
                    auth: None,
                    filter: Some(filter.clone()),
                    page_size: paging.page_size,
                    page_token,
                };
                let response = caller
                    .list_grants(request)
                    .await
                    .map_err(client::call_error)?;
                Ok((response.grants, response.next_page_token, response.height))
            })
            .await?;
            render::emit(
                json_output,
                &page_document(
                    "grants",
                    grants.iter().map(render::grant_json).collect(),
                    &next,
                    height,
                ),
                || {
                    page_text(
                        grants.iter().map(render::grant_text).collect(),
                        "grants",
                        &next,
                        height,
                    )
                },
            );
        }
        QueryCommand::AccessLog {
            subject,
            record_custodian,
            record_id,
            accessor,
            paging,
            options,
        } => {
            use v1::list_access_events_request::Filter;
            let filter = match (subject, record_custodian, record_id, accessor) {
                (Some(subject), ..) => Filter::SubjectPseudonym(subject_bytes(&subject)?),
                (None, Some(custodian_org_number), Some(record_id), _) => {
                    Filter::Record(v1::RecordReference {
                        custodian_org_number,
                        record_id,
                    })
                }
                (None, _, _, Some(accessor)) => Filter::AccessorOrgNumber(accessor),
                _ => {
                    return Err(usage(
                        "give --subject HEX, --record-custodian ORG --record-id ID, or --accessor ORG",
                    ));
                }
            };
            let caller = open(&options).await?;
            let (events, next, height) = paginate(&paging, async |page_token| {
                let request = v1::ListAccessEventsRequest {
                    auth: None,
                    filter: Some(filter.clone()),
                    page_size: paging.page_size,
                    page_token,
                };
                let response = caller
                    .list_access_events(request)
                    .await
                    .map_err(client::call_error)?;
                Ok((response.events, response.next_page_token, response.height))
            })
            .await?;
            render::emit(
                json_output,
                &page_document(
                    "events",
                    events.iter().map(render::event_json).collect(),
                    &next,
                    height,
                ),
                || crate::access_log::page_text(&events, &next, height),
            );
        }
        QueryCommand::Blocks {
            subject,
            paging,
            options,
        } => {
            let subject = subject_bytes(&subject)?;
            let caller = open(&options).await?;
            let (blocks, next, height) = paginate(&paging, async |page_token| {
                let request = v1::ListAccessBlocksRequest {
                    auth: None,
                    subject_pseudonym: subject.clone(),
                    page_size: paging.page_size,
                    page_token,
                };
                let response = caller
                    .list_access_blocks(request)
                    .await
                    .map_err(client::call_error)?;
                Ok((response.blocks, response.next_page_token, response.height))
            })
            .await?;
            render::emit(
                json_output,
                &page_document(
                    "blocks",
                    blocks.iter().map(crate::access_log::block_json).collect(),
                    &next,
                    height,
                ),
                || {
                    page_text(
                        blocks.iter().map(crate::access_log::block_text).collect(),
                        "blocks",
                        &next,
                        height,
                    )
                },
            );
        }
        QueryCommand::Check { question, options } => {
            let request = question.request(false)?;
            let caller = open(&options).await?;
            let response = caller
                .check_access(request)
                .await
                .map_err(client::call_error)?;
            render::emit(json_output, &check_json(&response), || {
                check_text(&response)
            });
            return Ok(if response.allowed {
                Outcome::Success
            } else {
                Outcome::Denied
            });
        }
    }
    Ok(Outcome::Success)
}

fn check_json(response: &v1::CheckAccessResponse) -> Value {
    json!({
        "allowed": response.allowed,
        "emergency": response.emergency,
        "reason": response.reason,
        "grant_id": if response.grant_id.is_empty() { Value::Null } else { Value::String(hex::encode(&response.grant_id)) },
        "height": response.height,
    })
}

fn check_text(response: &v1::CheckAccessResponse) -> String {
    let verdict = match (response.allowed, response.emergency) {
        (true, true) => "ALLOWED as emergency access (log the read with --emergency JUSTIFICATION)",
        (true, false) => "ALLOWED",
        (false, _) => "DENIED",
    };
    let grant = if response.grant_id.is_empty() {
        String::new()
    } else {
        format!(", grant {}", hex::encode(&response.grant_id))
    };
    format!(
        "{verdict}: {}{grant} (at height {})",
        response.reason, response.height
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // A denied check renders as DENIED; an emergency allow says to log the justification.
    #[test]
    fn check_answers_render() {
        let denied = v1::CheckAccessResponse {
            allowed: false,
            reason: "blocked by patient".into(),
            ..Default::default()
        };
        assert!(check_text(&denied).starts_with("DENIED: blocked by patient"));
        assert_eq!(check_json(&denied)["grant_id"], Value::Null);
        let emergency = v1::CheckAccessResponse {
            allowed: true,
            emergency: true,
            ..Default::default()
        };
        assert!(check_text(&emergency).contains("--emergency"));
    }

    // --all follows next_page_token until it is empty; without --all one page is fetched.
    #[test]
    fn pagination_follows_tokens() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let pages = |all| Paging {
            page_size: 2,
            page_token: None,
            all,
        };
        let fetch = async |token: String| -> anyhow::Result<Page<u32>> {
            Ok(match token.as_str() {
                "" => (vec![1, 2], "p2".into(), 9),
                "p2" => (vec![3, 4], "p3".into(), 9),
                _ => (vec![5], String::new(), 9),
            })
        };
        let (all, next, _) = runtime.block_on(paginate(&pages(true), fetch)).unwrap();
        assert_eq!(all, vec![1, 2, 3, 4, 5]);
        assert!(next.is_empty());
        let (first, next, _) = runtime.block_on(paginate(&pages(false), fetch)).unwrap();
        assert_eq!(first, vec![1, 2]);
        assert_eq!(next, "p2");
    }
}
