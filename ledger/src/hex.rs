//! Lowercase hexadecimal, for identifiers shown to people and for test vectors.

/// Lowercase hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// The bytes of a hex string (either case); `None` when it has odd length or a non-hex character.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    fn nibble(character: u8) -> Option<u8> {
        match character {
            b'0'..=b'9' => Some(character - b'0'),
            b'a'..=b'f' => Some(character - b'a' + 10),
            b'A'..=b'F' => Some(character - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if bytes.len() % 2 != 0 {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// Serde adapter: a list of 32-byte keys as lowercase hex strings, so that genesis files stay
/// readable and editable (`#[serde(with = "crate::hex::key_list")]`).
pub mod key_list {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(keys: &[[u8; 32]], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(keys.iter().map(|key| super::encode(key)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<[u8; 32]>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|text| {
                super::decode(text)
                    .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                    .ok_or_else(|| {
                        D::Error::custom(format!("public key {text:?} is not 64 hex digits"))
                    })
            })
            .collect()
    }
}

/// Serde adapter: one 32-byte key as a lowercase hex string (`#[serde(with = "crate::hex::key")]`).
pub mod key {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(key: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::encode(key))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(deserializer)?;
        super::decode(&text)
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| D::Error::custom(format!("public key {text:?} is not 64 hex digits")))
    }
}

/// Serde adapter: an optional 32-byte key as a lowercase hex string, or absent
/// (`#[serde(with = "crate::hex::optional_key", default, skip_serializing_if = "Option::is_none")]`).
pub mod optional_key {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        key: &Option<[u8; 32]>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match key {
            Some(key) => super::key::serialize(key, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<[u8; 32]>, D::Error> {
        #[derive(Deserialize)]
        struct Key(#[serde(with = "super::key")] [u8; 32]);
        Ok(Option::<Key>::deserialize(deserializer)?.map(|Key(key)| key))
    }
}

/// Serde adapter: bytes as a lowercase hex string, half the size of serde's list of numbers
/// (`#[serde(with = "crate::hex::bytes")]`).
pub mod bytes {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::decode(&text)
            .ok_or_else(|| D::Error::custom("bytes are not an even count of hex digits"))
    }
}

#[cfg(test)]
mod tests {
    // Encoding and decoding round-trip; bad input is refused.
    #[test]
    fn round_trip_and_refusals() {
        assert_eq!(super::encode(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(super::decode("00ABff"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(super::decode("0"), None);
        assert_eq!(super::decode("zz"), None);
    }

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Keys(#[serde(with = "super::key_list")] Vec<[u8; 32]>);

    // Keys serialise as hex strings and read back; a short or non-hex key is refused by name.
    #[test]
    fn key_lists_are_hex_in_json() {
        let keys = Keys(vec![[0xab; 32]]);
        let json = serde_json::to_string(&keys).unwrap();
        assert_eq!(json, format!("[\"{}\"]", "ab".repeat(32)));
        assert_eq!(serde_json::from_str::<Keys>(&json).unwrap(), keys);
        let error = serde_json::from_str::<Keys>("[\"abcd\"]")
            .unwrap_err()
            .to_string();
        assert!(error.contains("not 64 hex digits"), "{error}");
    }
}
