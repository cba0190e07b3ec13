//! Talking to a node over gRPC: connecting, Node.Status, and turning gRPC statuses into errors
//! that say what to do next.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use varde_node::tls::causes;
use varde_proto::v1;

use crate::exit::{Outcome, RefusedError, usage};
use crate::render;

/// The node address used when `--endpoint` is not given (`varde dev` serves TLS there).
pub const DEFAULT_ENDPOINT: &str = "https://127.0.0.1:50051";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The global `--ca-file` (or `VARDE_CA_FILE`), set once by `main` before any command runs.
static CA_FILE: OnceLock<PathBuf> = OnceLock::new();

/// Records the CA certificate file that `https://` endpoints are checked against.
pub fn set_ca_file(path: Option<PathBuf>) {
    if let Some(path) = path {
        let _ = CA_FILE.set(path);
    }
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

/// Opens a channel to the node (over TLS for `https://`, trusting `--ca-file` only), or says
/// how to get one running.
pub async fn connect(endpoint: &str) -> anyhow::Result<Channel> {
    let target = Endpoint::from_shared(endpoint.to_owned()).map_err(|_| {
        usage(format!(
            "--endpoint {endpoint} is not a valid URL (e.g. {DEFAULT_ENDPOINT})"
        ))
    })?;
    let tls = match target.uri().scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => {
            return Err(usage(format!(
                "--endpoint {endpoint} must start with https:// (or http:// for a node that \
                 serves plaintext on loopback), e.g. {DEFAULT_ENDPOINT}"
            )));
        }
    };
    let target = if tls {
        let ca_file = CA_FILE.get().ok_or_else(|| ca_file_missing(endpoint))?;
        let ca = varde_node::tls::read_ca_certificate(ca_file)
            .map_err(|error| anyhow::anyhow!("--ca-file: {error:#}"))?;
        target
            .tls_config(varde_node::tls::client_tls_config(&ca))
            .map_err(|error| {
                usage(format!(
                    "--endpoint {endpoint}: cannot use TLS with this address: {}",
                    causes(&error)
                ))
            })?
    } else {
        target
    };
    target
        .connect_timeout(CONNECT_TIMEOUT)
        .connect()
        .await
        .map_err(|error| unreachable(endpoint, &causes(&error)))
}

/// What to try when a connection failed for a reason other than nobody listening (that one gets
/// the "is it running" message).
fn connect_hint(tls: bool, error: &str) -> Option<String> {
    let lowered = error.to_lowercase();
    if lowered.contains("connection refused") || lowered.contains("timed out") {
        return None;
    }
    if tls {
        if lowered.contains("certificate") || lowered.contains("unknownissuer") {
            let ca = CA_FILE
                .get()
                .map_or_else(String::new, |path| format!(" {}", path.display()));
            return Some(format!(
                "the node's TLS certificate is not signed by the CA in --ca-file{ca} or does not \
                 name this host: give the CA that issued that node's certificate"
            ));
        }
        if lowered.contains("corrupt message") || lowered.contains("invalidcontenttype") {
            return Some("the node may serve plaintext: try http://".to_owned());
        }
        return None;
    }
    Some("if the node serves TLS (the default), use https:// and --ca-file".to_owned())
}

/// A node that could not be reached: "is it running" when nobody answered, else what to try.
fn unreachable(endpoint: &str, error: &dyn std::fmt::Display) -> anyhow::Error {
    let error = error.to_string();
    match connect_hint(endpoint.starts_with("https://"), &error) {
        Some(hint) => anyhow::anyhow!("cannot connect to the node at {endpoint}: {error}; {hint}"),
        None => anyhow::anyhow!(
            "cannot reach the node at {endpoint}: is `varde dev` running (or give --endpoint)? ({error})"
        ),
    }
}

/// The error for a failed call: admission refusals of a transaction become exit code 3, a node
/// that went away says so, everything else carries the node's message.
pub fn call_error(endpoint: &str, what: &str, status: &tonic::Status) -> anyhow::Error {
    let message = status.message();
    // A status made on this side from a failed connection (e.g. plaintext to a TLS node) carries
    // the transport error as its source; the node never answered.
    if let Some(source) = std::error::Error::source(status) {
        if matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Internal
        ) {
            return unreachable(endpoint, &format!("{message}: {}", causes(source)));
        }
    }
    match status.code() {
        Code::Unavailable => unreachable(endpoint, &message),
        Code::InvalidArgument
        | Code::PermissionDenied
        | Code::AlreadyExists
        | Code::FailedPrecondition
            if what == "submit" =>
        {
            anyhow::Error::new(RefusedError(format!(
                "the node refused the transaction ({:?}): {message}",
                status.code()
            )))
        }
        Code::Unauthenticated | Code::PermissionDenied => anyhow::anyhow!(
            "the node refused the {what} ({:?}): {message}; check that --key is a registered key \
             of a member institution whose roles allow this",
            status.code()
        ),
        Code::DeadlineExceeded => anyhow::anyhow!(
            "the node did not answer the {what} in time ({message}); a submitted transaction may \
             still commit: look it up by its id"
        ),
        code => anyhow::anyhow!("the node answered the {what} with {code:?}: {message}"),
    }
}

/// Node.Status of `endpoint` over `channel`.
pub async fn status(channel: Channel, endpoint: &str) -> anyhow::Result<v1::StatusResponse> {
    let mut client = v1::node_client::NodeClient::new(channel);
    client
        .status(v1::StatusRequest {})
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| call_error(endpoint, "status request", &status))
}

/// The chain id given on the command line, or the node's.
pub async fn chain_id(
    given: Option<&str>,
    channel: Channel,
    endpoint: &str,
) -> anyhow::Result<String> {
    match given {
        Some(chain_id) => Ok(chain_id.to_owned()),
        None => Ok(status(channel, endpoint)
            .await
            .context("fetching the chain id (give --chain-id to skip this)")?
            .chain_id),
    }
}

/// `varde status`.
pub async fn run_status(arguments: NodeArgs, json_output: bool) -> anyhow::Result<Outcome> {
    let channel = connect(&arguments.endpoint).await?;
    let status = status(channel, &arguments.endpoint).await?;
    render::emit(
        json_output,
        &render::status_json(&arguments.endpoint, &status),
        || render::status_text(&arguments.endpoint, &status),
    );
    Ok(Outcome::Success)
}

/// Milliseconds since the Unix epoch now.
pub fn now_unix_ms() -> i64 {
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(elapsed.as_millis()).expect("milliseconds since 1970 fit an i64")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{ExitKind, exit_kind_of};

    // Admission refusals of a submit map to exit code 3; the same codes on a query do not.
    #[test]
    fn submit_refusals_are_rejections() {
        let refused = tonic::Status::invalid_argument("bad signature");
        assert_eq!(
            exit_kind_of(&call_error("http://x", "submit", &refused)),
            ExitKind::Rejected
        );
        let duplicate = tonic::Status::already_exists("duplicate");
        assert_eq!(
            exit_kind_of(&call_error("http://x", "submit", &duplicate)),
            ExitKind::Rejected
        );
        let denied = tonic::Status::permission_denied("not allowed");
        assert_eq!(
            exit_kind_of(&call_error("http://x", "query", &denied)),
            ExitKind::Operational
        );
    }

    // Hints: a TLS certificate problem names --ca-file, a plaintext failure suggests https, a
    // refused connection gets no hint.
    #[test]
    fn connect_hints_say_what_to_try() {
        assert!(
            connect_hint(true, "invalid peer certificate: UnknownIssuer")
                .unwrap()
                .contains("--ca-file")
        );
        assert!(
            connect_hint(false, "connection reset by peer")
                .unwrap()
                .contains("https://")
        );
        assert_eq!(
            connect_hint(false, "Connection refused (os error 111)"),
            None
        );
    }

    // An unavailable node gets a message that says to start `varde dev`.
    #[test]
    fn unavailable_says_what_to_do() {
        let error = call_error(
            DEFAULT_ENDPOINT,
            "submit",
            &tonic::Status::unavailable("connection refused"),
        );
        let message = error.to_string();
        assert!(message.contains("cannot reach the node at https://127.0.0.1:50051"));
        assert!(message.contains("varde dev"));
        assert_eq!(exit_kind_of(&error), ExitKind::Operational);
    }
}
