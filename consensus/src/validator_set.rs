//! The validators of one height: their keys, the quorum arithmetic and the proposer rotation.

use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

use crate::types::{Height, Round, ValidatorIndex};

/// The most validators a set may hold. All-to-all voting suits tens of validators, not thousands.
pub const MAX_VALIDATORS: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    #[error("a validator set needs at least one validator")]
    Empty,
    #[error("a validator set holds at most {MAX_VALIDATORS} validators, not {0}")]
    TooLarge(usize),
    #[error("validator {0} appears more than once in the set")]
    Duplicate(ValidatorIndex),
}

/// An ordered set of validators with equal voting power.
///
/// Quorums follow from n alone: a *quorum* is more than two thirds of n (2f+1 when n = 3f+1), so
/// two quorums always share an honest validator; a *skip threshold* is more than one third (f+1),
/// so it always contains an honest validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorSet {
    keys: Vec<VerifyingKey>,
    hash: [u8; 32],
}

impl ValidatorSet {
    pub fn new(keys: Vec<VerifyingKey>) -> Result<Self, ValidatorSetError> {
        if keys.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        if keys.len() > MAX_VALIDATORS {
            return Err(ValidatorSetError::TooLarge(keys.len()));
        }
        for (index, key) in keys.iter().enumerate() {
            if keys[..index].contains(key) {
                return Err(ValidatorSetError::Duplicate(index as ValidatorIndex));
            }
        }
        let mut hasher = Sha256::new();
        hasher.update(b"varde/validator-set/v1\0");
        hasher.update((keys.len() as u32).to_be_bytes());
        for key in &keys {
            hasher.update(key.as_bytes());
        }
        Ok(Self {
            keys,
            hash: hasher.finalize().into(),
        })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The number of Byzantine validators the set tolerates: f = ⌊(n − 1) / 3⌋.
    pub fn fault_tolerance(&self) -> usize {
        (self.len() - 1) / 3
    }

    /// More than two thirds of the validators: ⌊2n / 3⌋ + 1.
    pub fn quorum(&self) -> usize {
        2 * self.len() / 3 + 1
    }

    /// More than one third of the validators: ⌊n / 3⌋ + 1.
    pub fn skip_threshold(&self) -> usize {
        self.len() / 3 + 1
    }

    /// The proposer of a round: a rotation over the set that moves on with both height and round.
    pub fn proposer(&self, height: Height, round: Round) -> ValidatorIndex {
        let n = self.len() as u64;
        ((height % n + u64::from(round) % n) % n) as ValidatorIndex
    }

    pub fn key(&self, index: ValidatorIndex) -> Option<&VerifyingKey> {
        self.keys.get(index as usize)
    }

    pub fn index_of(&self, key: &VerifyingKey) -> Option<ValidatorIndex> {
        self.keys
            .iter()
            .position(|candidate| candidate == key)
            .map(|index| index as ValidatorIndex)
    }

    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    /// SHA-256 over the ordered keys, domain separated; block headers commit to it.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn set_of(n: usize) -> ValidatorSet {
        let keys = (0..n)
            .map(|i| SigningKey::from_bytes(&[i as u8 + 1; 32]).verifying_key())
            .collect();
        ValidatorSet::new(keys).unwrap()
    }

    // Quorum and skip threshold are the textbook 2f+1 and f+1 for n = 3f+1.
    #[test]
    fn thresholds_for_three_f_plus_one() {
        for f in 0..6 {
            let set = set_of(3 * f + 1);
            assert_eq!(set.fault_tolerance(), f);
            assert_eq!(set.quorum(), 2 * f + 1);
            assert_eq!(set.skip_threshold(), f + 1);
        }
    }

    // For every n, two quorums overlap in more than f validators, so in at least one honest one.
    #[test]
    fn two_quorums_share_an_honest_validator() {
        for n in 1..=64 {
            let set = set_of(n);
            let overlap = 2 * set.quorum() - n;
            assert!(overlap > set.fault_tolerance(), "n = {n}");
            assert!(set.skip_threshold() > set.fault_tolerance(), "n = {n}");
            assert!(set.quorum() <= n, "n = {n}");
        }
    }

    // The proposer rotates through every validator within n consecutive rounds.
    #[test]
    fn proposer_rotates_over_all_validators() {
        let set = set_of(7);
        for height in [1, 2, 100] {
            let mut seen: Vec<_> = (0..7).map(|round| set.proposer(height, round)).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..7).collect::<Vec<_>>());
        }
    }

    // Empty sets and duplicate keys are refused.
    #[test]
    fn refuses_empty_and_duplicates() {
        assert_eq!(ValidatorSet::new(vec![]), Err(ValidatorSetError::Empty));
        let key = SigningKey::from_bytes(&[9; 32]).verifying_key();
        assert_eq!(
            ValidatorSet::new(vec![key, key]),
            Err(ValidatorSetError::Duplicate(1))
        );
    }
}
