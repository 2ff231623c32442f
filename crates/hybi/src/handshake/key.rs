//! `Sec-WebSocket-Key` and `Sec-WebSocket-Accept` (RFC 6455 §4.1, §4.2.2).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use core::fmt;
use sha1::{Digest, Sha1};

use crate::random::RandomSource;

/// The GUID a server appends to the client's key before hashing it (RFC 6455 §1.3).
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A `Sec-WebSocket-Key`: 16 bytes, base64-encoded into exactly 24 characters.
///
/// A value of this type always decodes to 16 bytes; it keeps the encoding it was made
/// from, which is what the accept hash is computed over.
///
/// ```
/// use hybi::handshake::Key;
/// let key = Key::parse(b"dGhlIHNhbXBsZSBub25jZQ==").unwrap();
/// assert_eq!(key.accept().as_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    encoded: [u8; 24],
}

impl Key {
    /// A fresh key from 16 bytes of `rng` (RFC 6455 §4.1: "randomly selected").
    pub fn generate<R: RandomSource + ?Sized>(rng: &mut R) -> Key {
        let mut nonce = [0u8; 16];
        rng.fill(&mut nonce);
        Key::from_nonce(nonce)
    }

    /// The key that encodes `nonce`.
    pub fn from_nonce(nonce: [u8; 16]) -> Key {
        let mut encoded = [0u8; 24];
        // 16 bytes always encode to 24 characters (with "=="), so this cannot fail.
        let written = STANDARD.encode_slice(nonce, &mut encoded);
        debug_assert_eq!(written, Ok(24));
        Key { encoded }
    }

    /// Checks a received `Sec-WebSocket-Key` value: canonical, padded base64 that
    /// decodes to exactly 16 bytes.
    pub fn parse(value: &[u8]) -> Result<Key, KeyError> {
        let decoded = STANDARD.decode(value).map_err(|_| KeyError::NotBase64)?;
        if decoded.len() != 16 {
            return Err(KeyError::WrongLength(decoded.len()));
        }
        // Canonical, padded base64 of 16 bytes is exactly 24 characters.
        let encoded = value.try_into().map_err(|_| KeyError::NotBase64)?;
        Ok(Key { encoded })
    }

    /// The key as sent in the header.
    pub fn as_str(&self) -> &str {
        // Base64 output is ASCII.
        core::str::from_utf8(&self.encoded).unwrap_or_default()
    }

    /// The `Sec-WebSocket-Accept` value a server answers this key with.
    pub fn accept(&self) -> AcceptKey {
        accept_key(&self.encoded)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Key").field(&self.as_str()).finish()
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `Sec-WebSocket-Accept` value: base64(SHA-1(key + [`GUID`])), 28 characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AcceptKey {
    encoded: [u8; 28],
}

impl AcceptKey {
    /// The value as sent in the header.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.encoded).unwrap_or_default()
    }
}

impl fmt::Debug for AcceptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AcceptKey").field(&self.as_str()).finish()
    }
}

impl fmt::Display for AcceptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `Sec-WebSocket-Accept` value for the `Sec-WebSocket-Key` value `key`, taken as
/// the bytes that were sent (RFC 6455 §4.2.2 step 5.4). For servers behind another
/// HTTP stack that only need the hash; [`Key::accept`] is the same for a checked key.
pub fn accept_key(key: &[u8]) -> AcceptKey {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID.as_bytes());
    let digest = sha.finalize();
    let mut encoded = [0u8; 28];
    // 20 bytes always encode to 28 characters (with "="), so this cannot fail.
    let written = STANDARD.encode_slice(digest, &mut encoded);
    debug_assert_eq!(written, Ok(28));
    AcceptKey { encoded }
}

/// Why a `Sec-WebSocket-Key` value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// Not canonical, padded base64.
    NotBase64,
    /// Base64 that decodes to this many bytes instead of 16.
    WrongLength(usize),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::NotBase64 => f.write_str("Sec-WebSocket-Key is not base64"),
            KeyError::WrongLength(n) => {
                write!(f, "Sec-WebSocket-Key decodes to {n} bytes, not 16")
            }
        }
    }
}

impl core::error::Error for KeyError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_section_1_3_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ==").as_str(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let Ok(key) = Key::parse(b"dGhlIHNhbXBsZSBub25jZQ==") else {
            panic!("the RFC's example key")
        };
        assert_eq!(key.as_str(), "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(key.accept().as_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        // The nonce of the example is the ASCII text "the sample nonce".
        assert_eq!(Key::from_nonce(*b"the sample nonce"), key);
    }

    #[test]
    fn generated_keys_use_sixteen_random_bytes() {
        let mut calls = 0;
        let mut rng = |buf: &mut [u8]| {
            calls += 1;
            assert_eq!(buf.len(), 16);
            buf.fill(0xff);
        };
        let key = Key::generate(&mut rng);
        assert_eq!(calls, 1);
        assert_eq!(key.as_str(), "/////////////////////w==");
        assert_eq!(Key::parse(key.as_str().as_bytes()), Ok(key));
    }

    #[test]
    fn bad_keys_are_refused() {
        assert_eq!(Key::parse(b"not base64!"), Err(KeyError::NotBase64));
        assert_eq!(Key::parse(b""), Err(KeyError::WrongLength(0)));
        assert_eq!(Key::parse(b"AAAA"), Err(KeyError::WrongLength(3)));
        assert_eq!(
            Key::parse(b"AAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            Err(KeyError::WrongLength(21))
        );
        // Unpadded and non-canonical encodings of 16 bytes.
        assert_eq!(
            Key::parse(b"dGhlIHNhbXBsZSBub25jZQ"),
            Err(KeyError::NotBase64)
        );
        assert_eq!(
            Key::parse(b"dGhlIHNhbXBsZSBub25jZR=="),
            Err(KeyError::NotBase64)
        );
    }
}
