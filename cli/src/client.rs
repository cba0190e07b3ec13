//! Talking to a node over gRPC through `varde_client`: connecting with `--endpoint` and
//! `--ca-file`, Node.Status, and the client's errors worded for the command line (flags to give,
//! exit codes).

use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::Context;
use varde_client::connect::{self, Target};
use varde_client::{CallError, CallErrorKind, Client, ConnectError, ConnectHint};
use varde_proto::v1;

use crate::exit::{Outcome, RefusedError, usage};
use crate::render;

/// The node address used when `--endpoint` is not given (`varde dev` serves TLS there).
pub const DEFAULT_ENDPOINT: &str = connect::DEFAULT_ENDPOINT;

/// The global `--ca-file` (or `VARDE_CA_FILE`), set once by `main` before any command runs.
static CA_FILE: OnceLock<PathBuf> = OnceLock::new();

/// Records the CA certificate file that `https://` endpoints are checked against.
pub fn set_ca_file(path: Option<PathBuf>) {
    if let Some(path) = path {
        let _ = CA_FILE.set(path);
    }
}

/// The `--ca-file` given, if any.
pub fn ca_file() -> Option<&'static PathBuf> {
    CA_FILE.get()
}

/// Says what to give when an https endpoint has no CA.
fn ca_file_missing(endpoint: &str) -> anyhow::Error {
    usage(format!(
        "{endpoint} is served over TLS: give --ca-file PATH (or set VARDE_CA_FILE) with the CA \
         certificate that signed the node's certificate (`varde dev` writes it to \
         ./varde-dev/tls/ca.pem, `varde testnet up` to ./varde-testnet/tls/ca.pem; an \
         institution's node: its PKI's CA certificate)"
    ))
}

#[derive(Debug, Clone, clap::Args)]
pub struct NodeArgs {
    /// The node's gRPC address.
    #[arg(long, default_value = DEFAULT_ENDPOINT, value_name = "URL")]
    pub endpoint: String,
}

/// Opens a client of the node (over TLS for `https://`, trusting `--ca-file` only), or says
/// how to get one running.
pub async fn connect(endpoint: &str) -> anyhow::Result<Client> {
    let target = Target::parse(endpoint).map_err(connect_error)?;
    let ca = if target.is_tls() {
        let ca_file = CA_FILE.get().ok_or_else(|| ca_file_missing(endpoint))?;
        let ca = connect::read_ca_certificate(ca_file)
            .map_err(|error| anyhow::anyhow!("--ca-file: {:#}", anyhow::Error::new(error)))?;
        Some(ca)
    } else {
        None
    };
    let channel = target.connect(ca.as_ref()).await.map_err(connect_error)?;
    Ok(Client::from_channel(channel, endpoint))
}

/// A connection that was not opened, in the command line's words.
fn connect_error(error: ConnectError) -> anyhow::Error {
    match error {
        ConnectError::InvalidUrl { endpoint } => usage(format!(
            "--endpoint {endpoint} is not a valid URL (e.g. {DEFAULT_ENDPOINT})"
        )),
        ConnectError::UnsupportedScheme { endpoint } => usage(format!(
            "--endpoint {endpoint} must start with https:// (or http:// for a node that \
             serves plaintext on loopback), e.g. {DEFAULT_ENDPOINT}"
        )),
        ConnectError::CaCertificateMissing { endpoint } => ca_file_missing(&endpoint),
        ConnectError::TlsConfig { endpoint, detail } => usage(format!(
            "--endpoint {endpoint}: cannot use TLS with this address: {detail}"
        )),
        ConnectError::Unreachable {
            endpoint,
            detail,
            hint,
        } => unreachable(&endpoint, &detail, hint),
    }
}

/// What to try, naming the flags.
fn hint_text(hint: ConnectHint) -> String {
    match hint {
        ConnectHint::UntrustedCertificate => {
            let ca = CA_FILE
                .get()
                .map_or_else(String::new, |path| format!(" {}", path.display()));
            format!(
                "the node's TLS certificate is not signed by the CA in --ca-file{ca} or does not \
                 name this host: give the CA that issued that node's certificate"
            )
        }
        ConnectHint::ProbablyPlaintext => "the node may serve plaintext: try http://".to_owned(),
        ConnectHint::ProbablyTls => {
            "if the node serves TLS (the default), use https:// and --ca-file".to_owned()
        }
    }
}

/// A node that could not be reached: "is it running" when nobody answered, else what to try.
fn unreachable(endpoint: &str, error: &str, hint: Option<ConnectHint>) -> anyhow::Error {
    match hint {
        Some(hint) => anyhow::anyhow!(
            "cannot connect to the node at {endpoint}: {error}; {}",
            hint_text(hint)
        ),
        None => anyhow::anyhow!(
            "cannot reach the node at {endpoint}: is `varde dev` running (or give --endpoint)? ({error})"
        ),
    }
}

/// The error of a client call: admission refusals of a transaction become exit code 3, a node
/// that went away says so, a transaction or query that cannot be signed is a usage error,
/// everything else carries the node's message.
pub fn call_error(error: varde_client::Error) -> anyhow::Error {
    match error {
        varde_client::Error::Connect(error) => connect_error(error),
        varde_client::Error::Call(error) => status_error(&error),
        error @ (varde_client::Error::Build(_)
        | varde_client::Error::QuerySigning(_)
        | varde_client::Error::NoCredentials) => usage(error.to_string()),
    }
}

fn status_error(error: &CallError) -> anyhow::Error {
    let what = match error.method {
        varde_client::ledger::SUBMIT | varde_client::ledger::SUBMIT_AND_WAIT => "submit",
        varde_client::node::STATUS => "status request",
        _ => "query",
    };
    let code = error.status.code();
    let message = error.status.message();
    match error.kind() {
        CallErrorKind::Unreachable { detail, hint } => unreachable(&error.endpoint, &detail, hint),
        CallErrorKind::Refused => anyhow::Error::new(RefusedError(format!(
            "the node refused the transaction ({code:?}): {message}"
        ))),
        CallErrorKind::Denied => anyhow::anyhow!(
            "the node refused the {what} ({code:?}): {message}; check that --key is a registered \
             key of a member institution whose roles allow this"
        ),
        CallErrorKind::TimedOut => anyhow::anyhow!(
            "the node did not answer the {what} in time ({message}); a submitted transaction may \
             still commit: look it up by its id"
        ),
        CallErrorKind::Other => {
            anyhow::anyhow!("the node answered the {what} with {code:?}: {message}")
        }
    }
}

/// A client of `endpoint` that signs reads with the key in `key_file` for `chain_id` (or the
/// node's).
pub async fn connect_signing(
    endpoint: &str,
    key_file: &std::path::Path,
    chain_id: Option<&str>,
) -> anyhow::Result<Client> {
    let key = crate::keys::read_key(key_file)?;
    let client = connect(endpoint).await?;
    let chain_id = self::chain_id(chain_id, &client).await?;
    Ok(client.with_credentials(varde_client::Credentials::new(chain_id, key)))
}

/// Node.Status of the node.
pub async fn status(client: &Client) -> anyhow::Result<v1::StatusResponse> {
    client.status().await.map_err(call_error)
}

/// The chain id given on the command line, or the node's.
pub async fn chain_id(given: Option<&str>, client: &Client) -> anyhow::Result<String> {
    match given {
        Some(chain_id) => Ok(chain_id.to_owned()),
        None => Ok(status(client)
            .await
            .context("fetching the chain id (give --chain-id to skip this)")?
            .chain_id),
    }
}

/// `varde status`.
pub async fn run_status(arguments: NodeArgs, json_output: bool) -> anyhow::Result<Outcome> {
    let client = connect(&arguments.endpoint).await?;
    let status = status(&client).await?;
    render::emit(
        json_output,
        &render::status_json(&arguments.endpoint, &status),
        || render::status_text(&arguments.endpoint, &status),
    );
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{ExitKind, exit_kind_of};

    fn failed(endpoint: &str, method: &'static str, status: tonic::Status) -> anyhow::Error {
        call_error(varde_client::Error::Call(CallError {
            endpoint: endpoint.to_owned(),
            method,
            status,
        }))
    }

    // Admission refusals of a submit map to exit code 3; the same codes on a query do not.
    #[test]
    fn submit_refusals_are_rejections() {
        let submit = varde_client::ledger::SUBMIT;
        let refused = tonic::Status::invalid_argument("bad signature");
        assert_eq!(
            exit_kind_of(&failed("http://x", submit, refused)),
            ExitKind::Rejected
        );
        let duplicate = tonic::Status::already_exists("duplicate");
        assert_eq!(
            exit_kind_of(&failed("http://x", submit, duplicate)),
            ExitKind::Rejected
        );
        let denied = tonic::Status::permission_denied("not allowed");
        let query = varde_client::query::CHECK_ACCESS;
        let error = failed("http://x", query, denied);
        assert_eq!(exit_kind_of(&error), ExitKind::Operational);
        assert!(error.to_string().contains("refused the query"));
        assert!(error.to_string().contains("--key"));
    }

    // Hints name the flags: a TLS certificate problem names --ca-file, a plaintext failure
    // suggests https.
    #[test]
    fn connect_hints_name_the_flags() {
        assert!(hint_text(ConnectHint::UntrustedCertificate).contains("--ca-file"));
        assert!(hint_text(ConnectHint::ProbablyTls).contains("https://"));
        let error = connect_error(ConnectError::InvalidUrl {
            endpoint: "x y".into(),
        });
        assert_eq!(exit_kind_of(&error), ExitKind::Usage);
        assert!(error.to_string().starts_with("--endpoint x y"));
    }

    // An unavailable node gets a message that says to start `varde dev`.
    #[test]
    fn unavailable_says_what_to_do() {
        let error = failed(
            DEFAULT_ENDPOINT,
            varde_client::ledger::SUBMIT,
            tonic::Status::unavailable("connection refused"),
        );
        let message = error.to_string();
        assert!(message.contains("cannot reach the node at https://127.0.0.1:50051"));
        assert!(message.contains("varde dev"));
        assert_eq!(exit_kind_of(&error), ExitKind::Operational);
    }
}
