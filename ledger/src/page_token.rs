//! Page tokens: opaque to clients, authenticated by the node, and bound to the caller and the
//! listing that issued them.
//!
//! A token carries the cursor of a listing (the index key of the last item the caller was
//! shown), sealed with deterministic authenticated encryption in the SIV style, built from
//! HMAC-SHA256 alone:
//!
//! ```text
//! tag       = HMAC(key, "varde-page-token-v1/tag"  || u16be(len(scope)) || scope || cursor)[..16]
//! keystream = HMAC(key, "varde-page-token-v1/mask" || tag || u32be(i)) for i = 0, 1, ...
//! token     = hex(tag || cursor XOR keystream)
//! ```
//!
//! `scope` names the caller's key, the method and the filter, so a token works only for the
//! listing and the caller it was issued to; changing any bit makes it fail. The key is derived
//! from the node's own secret, so tokens survive a restart of that node but not a move to another.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::hex;

const TAG_BYTES: usize = 16;
/// Cursors are index keys: bounded by the longest key the ledger writes, with room to spare.
const CURSOR_BYTES_MAX: usize = 4 * 1024;

/// The node's key for sealing page tokens.
#[derive(Clone)]
pub struct PageTokenKey([u8; 32]);

impl std::fmt::Debug for PageTokenKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("PageTokenKey(..)")
    }
}

impl PageTokenKey {
    /// Derives the key from a secret the node keeps (e.g. its signing key's seed).
    pub fn derive(secret: &[u8]) -> Self {
        let mut mac = mac(secret);
        mac.update(b"varde-page-token-v1/key");
        Self(mac.finalize().into_bytes().into())
    }

    /// Seals `cursor` for `scope`.
    pub fn seal(&self, scope: &[u8], cursor: &[u8]) -> String {
        let tag = self.tag(scope, cursor);
        let mut sealed = Vec::with_capacity(TAG_BYTES + cursor.len());
        sealed.extend_from_slice(&tag);
        sealed.extend_from_slice(cursor);
        self.mask(&tag, &mut sealed[TAG_BYTES..]);
        hex::encode(&sealed)
    }

    /// The cursor inside `token`, if this key sealed it for `scope`.
    pub fn open(&self, scope: &[u8], token: &str) -> Option<Vec<u8>> {
        if token.len() > 2 * (TAG_BYTES + CURSOR_BYTES_MAX) {
            return None;
        }
        let sealed = hex::decode(token)?;
        if sealed.len() < TAG_BYTES {
            return None;
        }
        let (tag, masked) = sealed.split_at(TAG_BYTES);
        let tag: [u8; TAG_BYTES] = tag.try_into().ok()?;
        let mut cursor = masked.to_vec();
        self.mask(&tag, &mut cursor);
        let expected = self.tag(scope, &cursor);
        // Constant-time comparison: the tag is what authenticates the token.
        let difference = expected
            .iter()
            .zip(tag.iter())
            .fold(0u8, |difference, (left, right)| difference | (left ^ right));
        (difference == 0).then_some(cursor)
    }

    fn tag(&self, scope: &[u8], cursor: &[u8]) -> [u8; TAG_BYTES] {
        let mut mac = mac(&self.0);
        mac.update(b"varde-page-token-v1/tag");
        mac.update(&(scope.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
        mac.update(scope);
        mac.update(cursor);
        let full: [u8; 32] = mac.finalize().into_bytes().into();
        full[..TAG_BYTES].try_into().expect("16 of 32 bytes")
    }

    fn mask(&self, tag: &[u8; TAG_BYTES], data: &mut [u8]) {
        for (block, chunk) in data.chunks_mut(32).enumerate() {
            let mut mac = mac(&self.0);
            mac.update(b"varde-page-token-v1/mask");
            mac.update(tag);
            mac.update(&(block as u32).to_be_bytes());
            let keystream: [u8; 32] = mac.finalize().into_bytes().into();
            for (byte, key) in chunk.iter_mut().zip(keystream) {
                *byte ^= key;
            }
        }
    }
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length")
}

#[cfg(test)]
mod tests {
    use super::*;

    // A sealed cursor opens for its scope, and its hex does not contain the cursor in clear.
    #[test]
    fn seals_and_opens() {
        let key = PageTokenKey::derive(b"node secret");
        let cursor = b"events_by_subject/0123456789abcdef0123456789abcdef-position".to_vec();
        let token = key.seal(b"caller|ListAccessEvents|subject", &cursor);
        assert!(!token.contains(&hex::encode(&cursor[..8])));
        assert_eq!(
            key.open(b"caller|ListAccessEvents|subject", &token),
            Some(cursor)
        );
    }

    // Another scope (caller, method or filter), another key, or any changed character fails.
    #[test]
    fn refuses_other_scopes_keys_and_tampering() {
        let key = PageTokenKey::derive(b"node secret");
        let token = key.seal(b"scope", b"cursor bytes");
        assert_eq!(key.open(b"scope2", &token), None);
        assert_eq!(
            PageTokenKey::derive(b"other node").open(b"scope", &token),
            None
        );
        for position in 0..token.len() {
            let mut tampered = token.clone().into_bytes();
            tampered[position] = if tampered[position] == b'0' {
                b'1'
            } else {
                b'0'
            };
            let tampered = String::from_utf8(tampered).unwrap();
            assert_eq!(key.open(b"scope", &tampered), None, "position {position}");
        }
        assert_eq!(key.open(b"scope", ""), None);
        assert_eq!(key.open(b"scope", "zz"), None);
        assert_eq!(key.open(b"scope", &token[..token.len() - 2]), None);
    }
}
