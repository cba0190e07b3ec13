//! The light client: it trusts the genesis file alone, accepts a header only with a commit
//! certificate of a quorum of its height's validators, and checks inclusion, consistency and
//! state proofs (a CheckAccess answer with its facts) against accepted headers. The checks are
//! Varde's own (`varde_ledger::proof`), re-exported here so that an integrator needs this crate
//! only: fetch bundles with [`crate::Client::get_transaction_proof`],
//! [`crate::Client::get_consistency_bundle`] or a CheckAccess with `with_proof`, and check them
//! with [`LightClient::verify_bundle`].
//!
//! Governance changes the validator set at a height boundary. A client that starts from genesis
//! trusts each later set only as the quorum of the set before hands over to it: the certified
//! header of the height before a change names the next set (`next_validator_set_hash`).
//! [`crate::Client::follow_validator_sets`] (or [`follow_set_changes`] over headers fetched
//! elsewhere) does this change by change, after which headers of every height verify.

use varde_proto::v1;

use crate::{Client, Error};

pub use varde_ledger::membership::Genesis;
pub use varde_ledger::proof::{LightClient, ProofError, VerifiedClaim, VerifiedHeader};

/// Why following a node's validator-set history stopped; `E` is the error of fetching a header
/// (a [`crate::Error`] for [`crate::Client::follow_validator_sets`]).
#[derive(Debug, thiserror::Error)]
pub enum FollowError<E = Error> {
    /// Fetching the history or a header failed.
    #[error("{0}")]
    Fetch(E),
    /// The history does not start at the genesis set, is out of order, or differs from the sets
    /// this client followed already: the node's history is false.
    #[error("the node's validator-set history does not hold: {0}")]
    History(ProofError),
    /// The certified header of the height before a change does not hand over to the set the
    /// node names (its certificate or its `next_validator_set_hash` does not hold).
    #[error("the validator set from height {from_height} is not proven: {source}")]
    SetChange {
        /// The first height the refused set would decide.
        from_height: u64,
        /// What did not hold.
        source: ProofError,
    },
}

/// Checks `served` (a node's validator-set history, `Ledger.GetValidatorSets`) against the sets
/// `light` trusts, then trusts each change not followed yet, in order, by the certified header of
/// the height before it, fetched with `header_of(height)`. Returns the changes followed (none
/// when the history holds no set `light` does not know).
pub async fn follow_set_changes<E>(
    light: &mut LightClient,
    served: &[v1::ValidatorSetEntry],
    mut header_of: impl AsyncFnMut(u64) -> Result<v1::CertifiedHeader, E>,
) -> Result<Vec<v1::ValidatorSetEntry>, FollowError<E>> {
    let changes = light
        .check_validator_sets(served)
        .map_err(FollowError::History)?;
    for change in &changes {
        let from_height = change.from_height;
        // The genesis set decides height 1, so a change starts at 2 at the earliest; asking for
        // height 0 would fetch the latest header instead.
        if from_height < 2 {
            return Err(FollowError::History(ProofError::HistoryOutOfOrder {
                from_height,
            }));
        }
        let header_before = header_of(from_height - 1)
            .await
            .map_err(FollowError::Fetch)?;
        light
            .follow_set_change(change, &header_before)
            .map_err(|source| FollowError::SetChange {
                from_height,
                source,
            })?;
    }
    Ok(changes)
}

impl Client {
    /// Fetches the node's validator-set history and follows every change `light` does not
    /// trust yet ([`follow_set_changes`]), with the certified headers of this node. Returns the
    /// changes followed.
    pub async fn follow_validator_sets(
        &self,
        light: &mut LightClient,
    ) -> Result<Vec<v1::ValidatorSetEntry>, FollowError> {
        let served = self
            .get_validator_sets()
            .await
            .map_err(FollowError::Fetch)?;
        follow_set_changes(light, &served, async |height| {
            self.get_certified_header(height).await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use varde_ledger::identifiers::OrgNumber;
    use varde_ledger::membership::{Institution, Role};

    use super::*;

    fn light() -> LightClient {
        LightClient::from_genesis(&Genesis {
            chain_id: "varde-test".to_owned(),
            genesis_time_unix_ms: 0,
            institutions: vec![Institution {
                org_number: OrgNumber::parse("994598759").unwrap(),
                name: "Norsk helsenett SF".to_owned(),
                roles: vec![Role::Validator],
                public_keys: Vec::new(),
                validator_key: Some(
                    ed25519_dalek::SigningKey::from_bytes(&[1; 32])
                        .verifying_key()
                        .to_bytes(),
                ),
            }],
        })
        .unwrap()
    }

    fn follow(
        light: &mut LightClient,
        served: &[v1::ValidatorSetEntry],
        header: Result<v1::CertifiedHeader, &'static str>,
    ) -> (
        Result<Vec<v1::ValidatorSetEntry>, FollowError<&'static str>>,
        Vec<u64>,
    ) {
        let mut asked = Vec::new();
        let result = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(follow_set_changes(light, served, async |height| {
                asked.push(height);
                header.clone()
            }));
        (result, asked)
    }

    // The genesis history alone needs no header; one that does not start with the genesis set
    // is refused before any is fetched; a change is asked for by the header of the height before
    // it, whose fetch error is passed on, and a header that does not verify is refused.
    #[test]
    fn set_changes_are_followed_by_the_header_before_them() {
        let mut light = light();
        let genesis = light.validator_sets();
        let (followed, asked) = follow(&mut light, &genesis, Err("unused"));
        assert_eq!((followed.unwrap(), asked), (Vec::new(), Vec::new()));

        let mut foreign = genesis.clone();
        foreign[0].validators = vec![vec![2; 32]];
        let (refused, asked) = follow(&mut light, &foreign, Err("unused"));
        assert!(
            matches!(refused, Err(FollowError::History(_))),
            "{refused:?}"
        );
        assert!(asked.is_empty());

        let mut grown = genesis.clone();
        grown.push(v1::ValidatorSetEntry {
            from_height: 7,
            ..genesis[0].clone()
        });
        let (failed, asked) = follow(&mut light, &grown, Err("node away"));
        assert!(
            matches!(failed, Err(FollowError::Fetch("node away"))),
            "{failed:?}"
        );
        assert_eq!(asked, vec![6]);
        let (refused, _) = follow(&mut light, &grown, Ok(v1::CertifiedHeader::default()));
        assert!(
            matches!(refused, Err(FollowError::SetChange { from_height: 7, .. })),
            "{refused:?}"
        );
        assert_eq!(light.validator_sets().len(), 1);
    }
}
