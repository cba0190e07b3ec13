//! `varde genesis`: create a genesis file and add institutions and validators to it.
//!
//! The file is `varde_ledger::membership::Genesis` as JSON; the node reads the same type.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use ed25519_dalek::VerifyingKey;
use serde_json::json;
use varde_ledger::hex;
use varde_ledger::identifiers::{IdentifierError, OrgNumber};
use varde_ledger::membership::{Genesis, Institution, Role};

use crate::exit::{Outcome, usage};
use crate::keys::read_key;
use crate::render;
use varde_client::now_unix_ms;

#[derive(Debug, clap::Subcommand)]
pub enum GenesisCommand {
    /// Start a new genesis file with a chain id and no institutions (never overwrites).
    New {
        /// The network's chain id, 1 to 128 printable characters (e.g. varde-test-1).
        #[arg(long)]
        chain_id: String,
        /// Where to write the genesis file.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The genesis time (Unix milliseconds); defaults to now.
        #[arg(long, value_name = "UNIX_MS")]
        genesis_time_unix_ms: Option<i64>,
    },
    /// Add a member institution with its roles and first submitting key (it signs the
    /// institution's transactions and queries). Validators are made with `add-validator`.
    AddInstitution {
        #[arg(long, value_name = "FILE")]
        genesis: PathBuf,
        /// Organisation number (9 digits, mod-11 check digit).
        #[arg(long)]
        org_number: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// One or more of: submitter, consent-authority, auditor (validator: use add-validator).
        #[arg(long = "role", value_name = "ROLE", required = true, value_parser = parse_role)]
        roles: Vec<Role>,
        #[command(flatten)]
        key: KeySource,
    },
    /// Make an institution a validator whose node has the given consensus key (adds the
    /// institution if it is new). The key is the node's `validator_key_path`; it becomes the
    /// institution's `validator_key`, never a submitting key.
    AddValidator {
        #[arg(long, value_name = "FILE")]
        genesis: PathBuf,
        /// Organisation number (9 digits, mod-11 check digit).
        #[arg(long)]
        org_number: String,
        /// Display name; needed when the institution is not in the genesis yet.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        key: KeySource,
    },
}

/// A public key, from a key file or given in hex.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub struct KeySource {
    /// A key file (PKCS#8 PEM) whose public key is registered.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// The public key as 64 hex characters.
    #[arg(long, value_name = "HEX")]
    public_key: Option<String>,
}

impl KeySource {
    fn public_key(&self) -> anyhow::Result<[u8; 32]> {
        match (&self.key, &self.public_key) {
            (Some(path), _) => Ok(read_key(path)?.verifying_key().to_bytes()),
            (None, Some(text)) => parse_public_key(text),
            (None, None) => Err(usage("give --key FILE or --public-key HEX")),
        }
    }
}

/// A 32-byte Ed25519 public key in hex, checked to be a valid curve point.
pub fn parse_public_key(text: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = hex::decode(text.trim())
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| usage("--public-key must be 64 hex characters (32 bytes)"))?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| usage("--public-key is not a valid Ed25519 public key"))?;
    Ok(bytes)
}

fn parse_role(text: &str) -> Result<Role, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|_| {
        format!("unknown role {text:?}: use validator, submitter, consent-authority or auditor")
    })
}

fn role_name(role: Role) -> String {
    serde_json::to_value(role)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// An organisation number, with an error that says which part is wrong.
pub fn parse_org_number(flag: &str, text: &str) -> anyhow::Result<OrgNumber> {
    OrgNumber::parse(text).map_err(|error| match error {
        IdentifierError::OrgNumberCheckDigit => usage(format!(
            "{flag} {text}: the check digit (the last digit) is wrong (mod 11, weights \
             3,2,7,6,5,4,3,2); check the number in Enhetsregisteret"
        )),
        _ => usage(format!(
            "{flag} {text}: an organisation number is exactly 9 digits"
        )),
    })
}

pub fn run(command: GenesisCommand, json_output: bool) -> anyhow::Result<Outcome> {
    match command {
        GenesisCommand::New {
            chain_id,
            out,
            genesis_time_unix_ms,
        } => {
            if chain_id.is_empty() || chain_id.len() > 128 || chain_id.chars().any(char::is_control)
            {
                return Err(usage(
                    "--chain-id must be 1 to 128 bytes of printable text (e.g. varde-test-1)",
                ));
            }
            let genesis = Genesis {
                chain_id,
                genesis_time_unix_ms: genesis_time_unix_ms.unwrap_or_else(now_unix_ms),
                institutions: Vec::new(),
            };
            write_new(&out, &genesis)?;
            report(json_output, &out, &genesis, || {
                format!(
                    "wrote genesis for chain {} to {}; add institutions with `varde genesis add-institution`",
                    genesis.chain_id,
                    out.display()
                )
            });
        }
        GenesisCommand::AddInstitution {
            genesis: path,
            org_number,
            name,
            roles,
            key,
        } => {
            let org_number = parse_org_number("--org-number", &org_number)?;
            let public_key = key.public_key()?;
            let mut genesis = read(&path)?;
            add_institution(&mut genesis, org_number.clone(), name, roles, public_key)?;
            write_replace(&path, &genesis)?;
            report(json_output, &path, &genesis, || {
                format!(
                    "added institution {org_number} to {} ({} institutions)",
                    path.display(),
                    genesis.institutions.len()
                )
            });
        }
        GenesisCommand::AddValidator {
            genesis: path,
            org_number,
            name,
            key,
        } => {
            let org_number = parse_org_number("--org-number", &org_number)?;
            let public_key = key.public_key()?;
            let mut genesis = read(&path)?;
            add_validator(&mut genesis, org_number.clone(), name, public_key)?;
            write_replace(&path, &genesis)?;
            report(json_output, &path, &genesis, || {
                format!(
                    "{org_number} is a validator with key {} in {}",
                    hex::encode(&public_key),
                    path.display()
                )
            });
        }
    }
    Ok(Outcome::Success)
}

fn report(json_output: bool, path: &Path, genesis: &Genesis, human: impl FnOnce() -> String) {
    let institutions: Vec<_> = genesis
        .institutions
        .iter()
        .map(|institution| {
            json!({
                "org_number": institution.org_number.as_str(),
                "name": institution.name,
                "roles": institution.roles.iter().map(|role| role_name(*role)).collect::<Vec<_>>(),
                "public_keys": institution.public_keys.iter().map(|key| hex::encode(key)).collect::<Vec<_>>(),
                "validator_key": institution.validator_key.map(|key| hex::encode(&key)),
            })
        })
        .collect();
    render::emit(
        json_output,
        &json!({
            "path": path.display().to_string(),
            "chain_id": genesis.chain_id,
            "genesis_time_unix_ms": genesis.genesis_time_unix_ms,
            "institutions": institutions,
        }),
        human,
    );
}

/// Refuses a key that any institution has registered already, as a submitting key or as its
/// validator key.
fn refuse_registered_key(genesis: &Genesis, public_key: &[u8; 32]) -> anyhow::Result<()> {
    if let Some(owner) = genesis.institutions.iter().find(|institution| {
        institution.public_keys.contains(public_key)
            || institution.validator_key == Some(*public_key)
    }) {
        return Err(usage(format!(
            "public key {} is registered already (institution {}); each key belongs to one \
             institution: make a new one with `varde keys new`",
            hex::encode(public_key),
            owner.org_number
        )));
    }
    Ok(())
}

pub fn add_institution(
    genesis: &mut Genesis,
    org_number: OrgNumber,
    name: String,
    mut roles: Vec<Role>,
    public_key: [u8; 32],
) -> anyhow::Result<()> {
    if roles.contains(&Role::Validator) {
        return Err(usage(
            "the validator role comes with the node's consensus key: add the institution \
             without it, then run `varde genesis add-validator --org-number N --key NODE_KEY`",
        ));
    }
    if roles.is_empty() {
        return Err(usage(
            "give at least one --role (submitter, consent-authority or auditor)",
        ));
    }
    check_name(&name)?;
    if genesis
        .institutions
        .iter()
        .any(|institution| institution.org_number == org_number)
    {
        return Err(usage(format!(
            "institution {org_number} is in the genesis already; use `varde genesis add-validator` \
             to make it a validator"
        )));
    }
    refuse_registered_key(genesis, &public_key)?;
    roles.sort();
    roles.dedup();
    genesis.institutions.push(Institution {
        org_number,
        name,
        roles,
        public_keys: vec![public_key],
        validator_key: None,
    });
    Ok(())
}

fn check_name(name: &str) -> anyhow::Result<()> {
    if name.trim().is_empty() || name.chars().any(char::is_control) {
        return Err(usage("--name must be printable, non-empty text"));
    }
    Ok(())
}

/// Gives `org_number` the validator role and `validator_key` as its consensus key, adding the
/// institution (validator role only, no submitting key) when it is new. Its submitting keys stay
/// as they are: they never count as validators.
pub fn add_validator(
    genesis: &mut Genesis,
    org_number: OrgNumber,
    name: Option<String>,
    validator_key: [u8; 32],
) -> anyhow::Result<()> {
    let existing = genesis
        .institutions
        .iter()
        .position(|institution| institution.org_number == org_number);
    let Some(index) = existing else {
        let name = name.ok_or_else(|| {
            usage(format!(
                "institution {org_number} is not in the genesis yet: give --name to add it"
            ))
        })?;
        check_name(&name)?;
        refuse_registered_key(genesis, &validator_key)?;
        genesis.institutions.push(Institution {
            org_number,
            name,
            roles: vec![Role::Validator],
            public_keys: Vec::new(),
            validator_key: Some(validator_key),
        });
        return Ok(());
    };
    match genesis.institutions[index].validator_key {
        Some(key) if key == validator_key => {}
        Some(key) => {
            return Err(usage(format!(
                "institution {org_number} is a validator with key {} already; an institution \
                 runs one validator",
                hex::encode(&key)
            )));
        }
        None => refuse_registered_key(genesis, &validator_key)?,
    }
    let institution = &mut genesis.institutions[index];
    institution.validator_key = Some(validator_key);
    if !institution.has_role(Role::Validator) {
        institution.roles.push(Role::Validator);
        institution.roles.sort();
    }
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<Genesis> {
    let text = fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the genesis file {} (make one with `varde genesis new`)",
            path.display()
        )
    })?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a Varde genesis file", path.display()))
}

fn encode(genesis: &Genesis) -> String {
    let mut text = serde_json::to_string_pretty(genesis).expect("a genesis always serialises");
    text.push('\n');
    text
}

/// Writes a new file, refusing to overwrite one.
fn write_new(path: &Path, genesis: &Genesis) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|error| {
            if error.kind() == std::io::ErrorKind::AlreadyExists {
                anyhow::anyhow!(
                    "{} exists already; refusing to overwrite a genesis (choose another --out)",
                    path.display()
                )
            } else {
                anyhow::anyhow!("cannot create {}: {error}", path.display())
            }
        })?;
    file.write_all(encode(genesis).as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Replaces the file through a temporary file and a rename, so a crash leaves the old or the new.
fn write_replace(path: &Path, genesis: &Genesis) -> anyhow::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let result = fs::File::create(&temporary)
        .and_then(|mut file| {
            file.write_all(encode(genesis).as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&temporary, path));
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{ExitKind, exit_kind_of};

    fn empty() -> Genesis {
        Genesis {
            chain_id: "varde-test".into(),
            genesis_time_unix_ms: 1,
            institutions: Vec::new(),
        }
    }

    fn org(text: &str) -> OrgNumber {
        OrgNumber::parse(text).unwrap()
    }

    // A wrong check digit is a usage error whose message names the check digit.
    #[test]
    fn org_number_check_digit_message() {
        assert!(parse_org_number("--org-number", "974760673").is_ok());
        let error = parse_org_number("--org-number", "974760674").unwrap_err();
        assert!(error.to_string().contains("check digit"));
        assert_eq!(exit_kind_of(&error), ExitKind::Usage);
        let error = parse_org_number("--org-number", "12345").unwrap_err();
        assert!(error.to_string().contains("9 digits"));
    }

    // A key registered by one institution is refused for another, and duplicates are refused.
    #[test]
    fn duplicate_keys_and_institutions_are_refused() {
        let mut genesis = empty();
        let key = [9u8; 32];
        add_institution(
            &mut genesis,
            org("974760673"),
            "Hospital".into(),
            vec![Role::Submitter],
            key,
        )
        .unwrap();
        let error = add_institution(
            &mut genesis,
            org("983974899"),
            "Municipality".into(),
            vec![Role::Submitter],
            key,
        )
        .unwrap_err();
        assert!(error.to_string().contains("registered already"));
        assert!(
            add_institution(
                &mut genesis,
                org("974760673"),
                "Again".into(),
                vec![Role::Auditor],
                [8u8; 32]
            )
            .is_err()
        );
        assert!(add_validator(&mut genesis, org("983974899"), Some("M".into()), key).is_err());
    }

    // add-validator gives an existing institution the validator role and its consensus key,
    // leaving its submitting keys alone, or creates a validator-only institution with --name. The
    // consensus key is never a submitting key, and no key serves twice.
    #[test]
    fn add_validator_extends_or_creates() {
        let mut genesis = empty();
        add_institution(
            &mut genesis,
            org("974760673"),
            "Hospital".into(),
            vec![Role::Submitter],
            [1u8; 32],
        )
        .unwrap();
        add_validator(&mut genesis, org("974760673"), None, [2u8; 32]).unwrap();
        let hospital = &genesis.institutions[0];
        assert_eq!(hospital.roles, vec![Role::Validator, Role::Submitter]);
        assert_eq!(hospital.public_keys, vec![[1u8; 32]]);
        assert_eq!(hospital.validator_key, Some([2u8; 32]));
        // Again with the same key: nothing changes; with another: one validator per institution.
        add_validator(&mut genesis, org("974760673"), None, [2u8; 32]).unwrap();
        assert_eq!(genesis.institutions[0].validator_key, Some([2u8; 32]));
        let error = add_validator(&mut genesis, org("974760673"), None, [4u8; 32]).unwrap_err();
        assert!(error.to_string().contains("one validator"), "{error}");

        assert!(add_validator(&mut genesis, org("983974899"), None, [3u8; 32]).is_err());
        // A submitting key or another validator's key is refused as a consensus key.
        for taken in [[1u8; 32], [2u8; 32]] {
            let error =
                add_validator(&mut genesis, org("983974899"), Some("K".into()), taken).unwrap_err();
            assert!(error.to_string().contains("registered already"), "{error}");
        }
        add_validator(
            &mut genesis,
            org("983974899"),
            Some("Kommune".into()),
            [3u8; 32],
        )
        .unwrap();
        assert_eq!(genesis.institutions.len(), 2);
        let kommune = &genesis.institutions[1];
        assert_eq!(kommune.roles, vec![Role::Validator]);
        assert!(kommune.public_keys.is_empty());
        assert_eq!(kommune.validator_key, Some([3u8; 32]));
        // A consensus key is refused as a submitting key.
        let error = add_institution(
            &mut genesis,
            org("993467049"),
            "Sykehus".into(),
            vec![Role::Submitter],
            [3u8; 32],
        )
        .unwrap_err();
        assert!(error.to_string().contains("registered already"), "{error}");
    }

    // add-institution refuses the validator role: that comes with a consensus key.
    #[test]
    fn add_institution_refuses_the_validator_role() {
        let mut genesis = empty();
        let error = add_institution(
            &mut genesis,
            org("974760673"),
            "Hospital".into(),
            vec![Role::Validator, Role::Submitter],
            [1u8; 32],
        )
        .unwrap_err();
        assert!(error.to_string().contains("add-validator"), "{error}");
        assert_eq!(exit_kind_of(&error), ExitKind::Usage);
        assert!(genesis.institutions.is_empty());
    }

    // Roles parse by their genesis names and unknown ones are refused with the list.
    #[test]
    fn roles_parse_by_name() {
        assert_eq!(parse_role("consent-authority"), Ok(Role::ConsentAuthority));
        assert!(parse_role("admin").unwrap_err().contains("submitter"));
        assert_eq!(role_name(Role::ConsentAuthority), "consent-authority");
    }
}
