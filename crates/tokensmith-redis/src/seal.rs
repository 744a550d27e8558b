//! The keys derived from `encryption_key` (HKDF-SHA-256) and the sealed
//! value format (AES-256-GCM, the Redis key bound as associated data).
//!
//! A sealed value is `0x01 || nonce (12 random bytes) || ciphertext || tag
//! (16 bytes)`; the plaintext is core's [`encode_token`](tokensmith_core::encode_token)
//! document. The associated data is `"tokensmith-redis v1\0" || the Redis key`,
//! so a value copied to another key (another provider, another prefix) does
//! not open.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, KeyType, Salt};
use ring::rand::{SecureRandom as _, SystemRandom};
use tokensmith_core::NamingKey;

/// The first byte of a sealed value (its format version).
const VERSION: u8 = 1;

/// The HKDF salt: fixed, so every process sharing the config derives the
/// same keys.
const SALT: &[u8] = b"tokensmith-redis v1 hkdf salt";

/// The prefix of the associated data.
const AAD_PREFIX: &[u8] = b"tokensmith-redis v1\0";

/// The length of the encryption key, in bytes.
pub(crate) const KEY_LEN: usize = 32;

/// The bytes a sealed value adds to its plaintext: version, nonce, tag.
pub(crate) const OVERHEAD: usize = 1 + NONCE_LEN + 16;

/// The two keys derived from one `encryption_key`.
pub(crate) struct Keys {
    aead: LessSafeKey,
    pub(crate) naming: NamingKey,
}

/// An HKDF output length.
struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl Keys {
    /// Derives the value key and the naming key from `master` (32 bytes).
    pub(crate) fn derive(master: &[u8; KEY_LEN]) -> Self {
        let prk = Salt::new(HKDF_SHA256, SALT).extract(master);
        let expand = |info: &'static [u8]| {
            let mut out = [0_u8; KEY_LEN];
            // 32 bytes is far below HKDF-SHA-256's limit (255 × 32): cannot fail.
            if let Ok(okm) = prk.expand(&[info], Len(KEY_LEN)) {
                let _ = okm.fill(&mut out);
            }
            out
        };
        let mut value_key = expand(b"value encryption");
        let mut naming_key = expand(b"key names");
        let aead = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &value_key).unwrap_or_else(|_| unreachable!("32 bytes")),
        );
        let naming = NamingKey::new(&naming_key);
        value_key.fill(0);
        naming_key.fill(0);
        Self { aead, naming }
    }

    /// Seals `plaintext` for the Redis key `key`.
    pub(crate) fn seal(
        &self,
        key: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, ring::error::Unspecified> {
        let mut nonce = [0_u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce)?;
        let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.aead.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(key)),
            &mut body,
        )?;
        out.extend_from_slice(&body);
        body.fill(0);
        Ok(out)
    }

    /// Opens a value [`seal`](Self::seal) wrote for `key`: `None` when it
    /// was written with another key, for another Redis key, in another
    /// format, or changed since.
    pub(crate) fn open(&self, key: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        let (&version, rest) = sealed.split_first()?;
        if version != VERSION || rest.len() < NONCE_LEN + 16 {
            return None;
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let len = self.aead.open_in_place(nonce, Aad::from(aad(key)), &mut body).ok()?.len();
        body.truncate(len);
        Some(body)
    }
}

fn aad(key: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_PREFIX.len() + key.len());
    aad.extend_from_slice(AAD_PREFIX);
    aad.extend_from_slice(key.as_bytes());
    aad
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `n` random bytes, as lowercase hex.
pub(crate) fn random_hex(n: usize) -> Result<String, ring::error::Unspecified> {
    let mut bytes = vec![0_u8; n];
    SystemRandom::new().fill(&mut bytes)?;
    let mut out = String::with_capacity(2 * n);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_under_its_key_and_redis_key() {
        let keys = Keys::derive(&[7; KEY_LEN]);
        let sealed = keys.seal("p:token:a", b"hello").unwrap();
        assert_eq!(sealed.len(), 5 + OVERHEAD);
        assert_eq!(keys.open("p:token:a", &sealed).as_deref(), Some(&b"hello"[..]));
        assert_eq!(keys.open("p:token:b", &sealed), None, "bound to its Redis key");
        assert_eq!(Keys::derive(&[8; KEY_LEN]).open("p:token:a", &sealed), None, "wrong key");
        for i in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 1;
            assert_eq!(keys.open("p:token:a", &tampered), None, "byte {i}");
        }
        assert_eq!(keys.open("p:token:a", &sealed[..sealed.len() - 1]), None);
        assert_eq!(keys.open("p:token:a", b""), None);
        assert_ne!(keys.seal("p:token:a", b"hello").unwrap(), sealed, "a fresh nonce each time");
    }
}
