//! Commit certificates: more than two thirds of a height's validators' precommits for one block in
//! one round. A certificate makes a block final; anyone with the validator set can check it.

use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};

use crate::message::Vote;
use crate::signing::{SignatureVerifier, vote_digest};
use crate::types::{BlockId, Height, Round, ValidatorIndex, VoteKind};
use crate::validator_set::ValidatorSet;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitSignature {
    pub validator: ValidatorIndex,
    pub signature: Signature,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitCertificate {
    pub height: Height,
    pub round: Round,
    pub block_id: BlockId,
    /// Precommit signatures, in strictly increasing validator order.
    pub signatures: Vec<CommitSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("validator {0} is not in the validator set")]
    UnknownValidator(ValidatorIndex),
    #[error("signatures are not in strictly increasing validator order at validator {0}")]
    NotCanonical(ValidatorIndex),
    #[error("the precommit signature of validator {0} does not verify")]
    BadSignature(ValidatorIndex),
    #[error("{signers} signatures are not a quorum of {quorum}")]
    NoQuorum { signers: usize, quorum: usize },
}

impl CommitCertificate {
    /// The precommit a signer of this certificate signed.
    pub fn precommit(&self, validator: ValidatorIndex) -> Vote {
        Vote {
            kind: VoteKind::Precommit,
            height: self.height,
            round: self.round,
            block_id: Some(self.block_id),
            validator,
        }
    }

    /// Checks every signature and that the signers are a quorum of `validators`.
    pub fn verify(
        &self,
        chain_id: &str,
        validators: &ValidatorSet,
        verifier: &dyn SignatureVerifier,
    ) -> Result<(), CertificateError> {
        let mut previous: Option<ValidatorIndex> = None;
        for entry in &self.signatures {
            if previous.is_some_and(|previous| entry.validator <= previous) {
                return Err(CertificateError::NotCanonical(entry.validator));
            }
            previous = Some(entry.validator);
            let key = validators
                .key(entry.validator)
                .ok_or(CertificateError::UnknownValidator(entry.validator))?;
            let digest = vote_digest(chain_id, &self.precommit(entry.validator));
            if !verifier.verify(key, &digest, &entry.signature) {
                return Err(CertificateError::BadSignature(entry.validator));
            }
        }
        let quorum = validators.quorum();
        if self.signatures.len() < quorum {
            return Err(CertificateError::NoQuorum {
                signers: self.signatures.len(),
                quorum,
            });
        }
        Ok(())
    }
}
