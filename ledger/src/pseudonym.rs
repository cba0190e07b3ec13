//! Subject pseudonyms: HMAC-SHA256(network pseudonym key, national identity number).
//!
//! A plain hash would not do: an 11-digit, date-structured number is brute-forced in minutes. The
//! network key stays with the members; the ledger only ever sees the 32-byte result.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The pseudonym of the person with `national_id` (the digits as written, no separators) under
/// the network's pseudonym key.
pub fn subject_pseudonym(network_key: &[u8], national_id: &str) -> [u8; 32] {
    // HMAC accepts keys of any length (longer keys are hashed first, RFC 2104).
    let mut mac =
        Hmac::<Sha256>::new_from_slice(network_key).expect("HMAC takes keys of any length");
    mac.update(national_id.as_bytes());
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use crate::hex;

    // RFC 4231 test case 2 ("Jefe" / "what do ya want for nothing?") pins the construction.
    #[test]
    fn matches_rfc_4231_case_2() {
        assert_eq!(
            hex::encode(&super::subject_pseudonym(
                b"Jefe",
                "what do ya want for nothing?"
            )),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    // A Varde-shaped vector: a 32-byte network key and a synthetic birth number.
    #[test]
    fn varde_vector() {
        let network_key = [0x42u8; 32];
        let pseudonym = super::subject_pseudonym(&network_key, "31129956715");
        assert_eq!(
            pseudonym,
            super::subject_pseudonym(&network_key, "31129956715")
        );
        assert_ne!(
            pseudonym,
            super::subject_pseudonym(&[0x43u8; 32], "31129956715")
        );
        assert_eq!(hex::encode(&pseudonym), PSEUDONYM_0X42_31129956715);
    }

    /// HMAC-SHA256(key = 32 bytes of 0x42, message = "31129956715"), computed independently with
    /// Python's `hmac.new(bytes([0x42]*32), b"31129956715", hashlib.sha256).hexdigest()`.
    const PSEUDONYM_0X42_31129956715: &str =
        "1c04055f21192f5d31b580766ca4e1126703c4af73043d5ccf8c915f7b119c49";
}
