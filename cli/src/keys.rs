//! `varde keys`: Ed25519 signing keys as PKCS#8 PEM files (`varde_ledger::keyfile`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use ed25519_dalek::SigningKey;
use serde_json::json;
use varde_ledger::keyfile;
use zeroize::Zeroize;

use crate::exit::Outcome;
use crate::render;

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Generate a new signing key into a new file (never overwrites; mode 0600).
    New {
        /// Where to write the key (PKCS#8 PEM).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Print the public key of a key file (never the private key).
    Show {
        /// The key file (PKCS#8 PEM).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

pub fn run(command: KeysCommand, json_output: bool) -> anyhow::Result<Outcome> {
    let (path, key, created) = match command {
        KeysCommand::New { out } => {
            let key = generate()?;
            keyfile::write_signing_key(&out, &key)?;
            (out, key, true)
        }
        KeysCommand::Show { file } => {
            let key = read_key(&file)?;
            (file, key, false)
        }
    };
    let public_key = keyfile::public_key_hex(&key);
    render::emit(
        json_output,
        &json!({ "path": path.display().to_string(), "public_key": public_key, "created": created }),
        || {
            if created {
                format!(
                    "wrote a new key to {}\npublic key {public_key}",
                    path.display()
                )
            } else {
                format!("public key {public_key}")
            }
        },
    );
    Ok(Outcome::Success)
}

/// A fresh signing key from the operating system's random source.
pub fn generate() -> anyhow::Result<SigningKey> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|error| anyhow::anyhow!("the system's random source failed: {error}"))?;
    let key = SigningKey::from_bytes(&seed);
    seed.zeroize();
    Ok(key)
}

/// Reads a signing key file, with a hint when it is missing or malformed.
pub fn read_key(path: &Path) -> anyhow::Result<SigningKey> {
    keyfile::read_signing_key(path).with_context(|| {
        format!(
            "cannot use {} as a signing key (make one with `varde keys new --out FILE`)",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    // Two generated keys differ (the random source is used, not a constant).
    #[test]
    fn generated_keys_differ() {
        let first = super::generate().unwrap();
        let second = super::generate().unwrap();
        assert_ne!(first.to_bytes(), second.to_bytes());
    }
}
