//! `varde export fhir`: a FHIR R4 Bundle of a subject's or a height range's record pointers,
//! grants, patient blocks and access events, fetched with a signed `Query.ExportFhir` and written
//! to a file exactly as the node served it (the mapping: ledger/README.md, "FHIR export").

use std::path::PathBuf;

use serde_json::json;
use varde_ledger::hex;
use varde_proto::v1;

use crate::client;
use crate::exit::{Outcome, usage};
use crate::query::QueryOptions;
use crate::render;

#[derive(Debug, clap::Subcommand)]
pub enum ExportCommand {
    /// A FHIR R4 Bundle (JSON) of DocumentReference, Consent and AuditEvent resources: what the
    /// calling institution may list of a subject, of a height range, or of a subject in a range.
    Fhir(FhirArgs),
}

#[derive(Debug, clap::Args)]
pub struct FhirArgs {
    /// The subject's pseudonym (64 hex characters, from `varde pseudonym`).
    #[arg(long, value_name = "HEX", required_unless_present = "from_height")]
    pub subject_pseudonym: Option<String>,
    /// The first height of the range (from 1; with --to-height).
    #[arg(long, value_name = "H", requires = "to_height")]
    pub from_height: Option<u64>,
    /// The last height of the range, inclusive (at most 10 000 heights per export).
    #[arg(long, value_name = "H", requires = "from_height")]
    pub to_height: Option<u64>,
    /// Where to write the Bundle.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[command(flatten)]
    pub options: QueryOptions,
}

pub async fn run(command: ExportCommand, json_output: bool) -> anyhow::Result<Outcome> {
    match command {
        ExportCommand::Fhir(arguments) => run_fhir(arguments, json_output).await,
    }
}

async fn run_fhir(arguments: FhirArgs, json_output: bool) -> anyhow::Result<Outcome> {
    let subject_pseudonym = match &arguments.subject_pseudonym {
        Some(text) => hex::decode(text.trim())
            .filter(|bytes| bytes.len() == 32)
            .ok_or_else(|| {
                usage(
                    "--subject-pseudonym must be 64 hex characters (a pseudonym from `varde \
                     pseudonym`)",
                )
            })?,
        None => Vec::new(),
    };
    let (from_height, to_height) = match (arguments.from_height, arguments.to_height) {
        (Some(from), Some(to)) if from == 0 || to < from => {
            return Err(usage(
                "--from-height must be at least 1 and not above --to-height",
            ));
        }
        (Some(from), Some(to)) => (from, to),
        _ => (0, 0),
    };
    let options = &arguments.options;
    let client = crate::query::open(options).await?;
    let response = client
        .export_fhir(v1::ExportFhirRequest {
            auth: None,
            subject_pseudonym,
            from_height,
            to_height,
        })
        .await
        .map_err(client::call_error)?;
    std::fs::write(&arguments.out, &response.bundle_json).map_err(|error| {
        anyhow::anyhow!(
            "cannot write the Bundle to {}: {error}",
            arguments.out.display()
        )
    })?;
    let out = arguments.out.display().to_string();
    render::emit(
        json_output,
        &json!({
            "out": out,
            "resource_count": response.resource_count,
            "height": response.height,
            "bytes": response.bundle_json.len(),
        }),
        || {
            format!(
                "wrote a FHIR R4 Bundle of {} resources (at height {}) to {out}",
                response.resource_count, response.height
            )
        },
    );
    Ok(Outcome::Success)
}
