//! `varde pseudonym`: the subject pseudonym HMAC-SHA256(network key, national identity number).
//!
//! The national identity number is read from stdin only (a prompt without echo on a terminal,
//! one line when piped), never from argv, which every user on the machine can read in `ps`. It is
//! never echoed, printed in an error or logged, and is wiped from memory after use.

use std::io::{BufRead, IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;
use varde_client::subject_pseudonym;
use varde_ledger::hex;
use varde_ledger::identifiers::national_id_kind;
use zeroize::{Zeroize, Zeroizing};

use crate::exit::{Outcome, usage};
use crate::render;

/// The shortest network pseudonym key accepted (HMAC-SHA256 wants at least 32 bytes of key).
const NETWORK_KEY_BYTES_MIN: usize = 32;
/// The longest line read from stdin; a national identity number is 11 digits.
const INPUT_BYTES_MAX: u64 = 256;

#[derive(Debug, clap::Args)]
pub struct PseudonymArgs {
    /// The network's pseudonym key: hex text (at least 64 hex characters) or at least 32 raw
    /// bytes.
    #[arg(long, value_name = "FILE")]
    network_key_file: PathBuf,
}

pub fn run(arguments: &PseudonymArgs, json_output: bool) -> anyhow::Result<Outcome> {
    let network_key = read_network_key(&arguments.network_key_file)?;
    let national_id = if std::io::stdin().is_terminal() {
        Zeroizing::new(
            rpassword::prompt_password("National identity number (not shown): ")
                .context("cannot read from the terminal")?,
        )
    } else {
        read_line(&mut std::io::stdin().lock())?
    };
    let pseudonym = derive(&network_key, &national_id)?;
    let pseudonym_hex = hex::encode(&pseudonym);
    render::emit(json_output, &json!({ "pseudonym": pseudonym_hex }), || {
        pseudonym_hex.clone()
    });
    Ok(Outcome::Success)
}

/// Reads one line (at most a few hundred bytes) and wipes the buffer it came through.
pub fn read_line(input: &mut impl BufRead) -> anyhow::Result<Zeroizing<String>> {
    let mut line = Zeroizing::new(String::new());
    input
        .by_ref()
        .take(INPUT_BYTES_MAX)
        .read_line(&mut line)
        .map_err(|_| usage("cannot read the national identity number from stdin (as text)"))?;
    Ok(line)
}

/// Checks the input is a national identity number and derives the pseudonym. Errors never
/// contain the input.
pub fn derive(network_key: &[u8], input: &str) -> anyhow::Result<[u8; 32]> {
    let trimmed = input.trim();
    let Ok(mut digits) = <[u8; 11]>::try_from(trimmed.as_bytes()) else {
        return Err(usage(
            "the national identity number must be exactly 11 digits (no spaces or separators), \
             given on stdin",
        ));
    };
    let valid = digits.iter().all(u8::is_ascii_digit) && national_id_kind(&digits).is_some();
    digits.zeroize();
    if !valid {
        return Err(usage(
            "that is not a valid national identity number (fødselsnummer, D- or H-number: the \
             date or the check digits do not match); check it and try again",
        ));
    }
    Ok(subject_pseudonym(network_key, trimmed))
}

/// The network key: hex text when the file holds hex, otherwise the raw bytes.
pub fn read_network_key(path: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let bytes = Zeroizing::new(std::fs::read(path).with_context(|| {
        format!(
            "cannot read the network pseudonym key file {}",
            path.display()
        )
    })?);
    let from_hex = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| hex::decode(text.trim()));
    let key = Zeroizing::new(from_hex.unwrap_or_else(|| bytes.to_vec()));
    if key.len() < NETWORK_KEY_BYTES_MIN {
        return Err(anyhow::anyhow!(
            "{} holds {} bytes of key; a network pseudonym key is at least {NETWORK_KEY_BYTES_MIN} \
             bytes (64 hex characters): ask the network's operators for the right file",
            path.display(),
            key.len()
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic fødselsnummer with valid check digits (also used by varde-ledger's tests).
    const SYNTHETIC_ID: &str = "31129956715";

    // Piped input is one line; the newline is dropped and the result matches the ledger helper.
    #[test]
    fn piped_line_derives_the_ledger_pseudonym() {
        let mut input = std::io::Cursor::new(format!("{SYNTHETIC_ID}\n"));
        let line = read_line(&mut input).unwrap();
        let pseudonym = derive(&[0x42; 32], &line).unwrap();
        assert_eq!(
            hex::encode(&pseudonym),
            "1c04055f21192f5d31b580766ca4e1126703c4af73043d5ccf8c915f7b119c49"
        );
    }

    // Wrong lengths, letters and bad check digits are refused, and no error contains the input.
    #[test]
    fn bad_input_is_refused_without_echo() {
        for input in [
            "3112995671",
            "311299567150",
            "3112995671x",
            "31129956716",
            "12 34",
        ] {
            let error = derive(&[1; 32], input).unwrap_err();
            let message = format!("{error:#} {error:?}");
            assert!(
                !message.contains(input),
                "error echoed the input: {message}"
            );
            assert!(
                !message.contains("3112995"),
                "error echoed digits: {message}"
            );
        }
    }

    // Only the first few hundred bytes of stdin are read, so a huge pipe cannot exhaust memory.
    #[test]
    fn input_is_bounded() {
        let mut input = std::io::Cursor::new("1".repeat(10_000));
        let line = read_line(&mut input).unwrap();
        assert_eq!(line.len(), 256);
        assert!(derive(&[1; 32], &line).is_err());
    }
}
