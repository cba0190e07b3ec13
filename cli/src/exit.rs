//! Exit codes that scripts rely on (documented in cli/README.md; never renumber them).
//!
//! 0 success (for `query check`: access allowed), 1 operational error, 2 usage error,
//! 3 transaction rejected by the ledger, 4 access denied.

use std::fmt;

/// What a command ended with when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The ledger committed the transaction with a rejected receipt.
    Rejected,
    /// `query check` answered deny.
    Denied,
    /// A check the command ran found a fault (a chaos run lost a transaction or saw a fork);
    /// the command printed what it found.
    CheckFailed,
}

/// The stable exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    Success = 0,
    Operational = 1,
    Usage = 2,
    Rejected = 3,
    Denied = 4,
}

impl ExitKind {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// A short name used in JSON error documents.
    pub fn name(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Operational => "operational",
            Self::Usage => "usage",
            Self::Rejected => "rejected",
            Self::Denied => "denied",
        }
    }
}

impl From<Outcome> for ExitKind {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Success => Self::Success,
            Outcome::Rejected => Self::Rejected,
            Outcome::Denied => Self::Denied,
            Outcome::CheckFailed => Self::Operational,
        }
    }
}

/// A usage error found after argument parsing (a missing or malformed field, from flags or from
/// `--file`). Exit code 2, like clap's own errors.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The ledger refused a transaction at admission (bad signature, unknown signer, duplicate, a
/// refused field...). Exit code 3, like a rejected receipt.
#[derive(Debug)]
pub struct RefusedError(pub String);

impl fmt::Display for RefusedError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for RefusedError {}

/// Shorthand for a usage error.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

/// The exit kind of a failed command: usage and refusal errors anywhere in the chain decide it,
/// everything else is operational.
pub fn exit_kind_of(error: &anyhow::Error) -> ExitKind {
    if error
        .chain()
        .any(|cause| cause.downcast_ref::<UsageError>().is_some())
    {
        ExitKind::Usage
    } else if error
        .chain()
        .any(|cause| cause.downcast_ref::<RefusedError>().is_some())
    {
        ExitKind::Rejected
    } else {
        ExitKind::Operational
    }
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::*;

    // The numeric codes are the documented, stable ones.
    #[test]
    fn codes_are_stable() {
        assert_eq!(ExitKind::Success.code(), 0);
        assert_eq!(ExitKind::Operational.code(), 1);
        assert_eq!(ExitKind::Usage.code(), 2);
        assert_eq!(ExitKind::Rejected.code(), 3);
        assert_eq!(ExitKind::Denied.code(), 4);
        assert_eq!(ExitKind::from(Outcome::Denied), ExitKind::Denied);
        assert_eq!(ExitKind::from(Outcome::Rejected), ExitKind::Rejected);
        assert_eq!(ExitKind::from(Outcome::Success), ExitKind::Success);
    }

    // Usage and refusal markers are found even under added context; anything else is operational.
    #[test]
    fn errors_map_to_exit_kinds() {
        let wrapped = Err::<(), _>(usage("missing --record-id"))
            .context("building the transaction")
            .unwrap_err();
        assert_eq!(exit_kind_of(&wrapped), ExitKind::Usage);
        let refused = anyhow::Error::new(RefusedError("duplicate".into()));
        assert_eq!(exit_kind_of(&refused), ExitKind::Rejected);
        let io = anyhow::Error::new(std::io::Error::other("disk full"));
        assert_eq!(exit_kind_of(&io), ExitKind::Operational);
    }
}
