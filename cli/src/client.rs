//! Talking to a node over gRPC: connecting, Node.Status, and turning gRPC statuses into errors
//! that say what to do next.

use std::time::Duration;

use anyhow::Context;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use varde_proto::v1;

use crate::exit::{Outcome, RefusedError, usage};
use crate::render;

/// The node address used when `--endpoint` is not given.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:50051";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, clap::Args)]
pub struct NodeArgs {
    /// The node's gRPC address.
    #[arg(long, default_value = DEFAULT_ENDPOINT, value_name = "URL")]
    pub endpoint: String,
}

/// Opens a channel to the node, or says how to get one running.
pub async fn connect(endpoint: &str) -> anyhow::Result<Channel> {
    let target = Endpoint::from_shared(endpoint.to_owned()).map_err(|_| {
        usage(format!(
            "--endpoint {endpoint} is not a valid URL (e.g. {DEFAULT_ENDPOINT})"
        ))
    })?;
    target
        .connect_timeout(CONNECT_TIMEOUT)
        .connect()
        .await
        .map_err(|error| unreachable(endpoint, &causes(&error)))
}

/// An error and its sources on one line (tonic's transport error says little by itself).
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn unreachable(endpoint: &str, error: &dyn std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot reach the node at {endpoint}: is `varde dev` running (or give --endpoint)? ({error})"
    )
}

/// The error for a failed call: admission refusals of a transaction become exit code 3, a node
/// that went away says so, everything else carries the node's message.
pub fn call_error(endpoint: &str, what: &str, status: &tonic::Status) -> anyhow::Error {
    let message = status.message();
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

    // An unavailable node gets a message that says to start `varde dev`.
    #[test]
    fn unavailable_says_what_to_do() {
        let error = call_error(
            DEFAULT_ENDPOINT,
            "submit",
            &tonic::Status::unavailable("connection refused"),
        );
        let message = error.to_string();
        assert!(message.contains("cannot reach the node at http://127.0.0.1:50051"));
        assert!(message.contains("varde dev"));
        assert_eq!(exit_kind_of(&error), ExitKind::Operational);
    }
}
