//! Incremental, fail-fast UTF-8 validation for text messages that arrive in pieces.
//!
//! A text message may be split across frames, and a frame across reads, at any byte,
//! including inside a multi-byte character. [`Utf8Validator`] carries the bytes of an
//! unfinished character from one piece to the next and reports an error as soon as a
//! byte makes the sequence invalid (RFC 6455 §8.1: fail the connection with 1007), not
//! at the end of the message.

use core::fmt;

/// Where validation stopped: like `core::str::Utf8Error`.
struct Invalid {
    valid_up_to: usize,
    /// `None`: the input ended inside a character whose bytes so far are valid.
    error_len: Option<usize>,
}

/// Validates `bytes` with `core::str::from_utf8`, or with the SIMD validator of the
/// `simdutf8` crate (same results, several times faster on multi-byte text) when the
/// `std` feature lets it pick the CPU's vector instructions at run time.
#[inline]
fn check(bytes: &[u8]) -> Result<(), Invalid> {
    #[cfg(feature = "std")]
    let result = simdutf8::compat::from_utf8(bytes)
        .map(|_| ())
        .map_err(|e| Invalid {
            valid_up_to: e.valid_up_to(),
            error_len: e.error_len(),
        });
    #[cfg(not(feature = "std"))]
    let result = core::str::from_utf8(bytes)
        .map(|_| ())
        .map_err(|e| Invalid {
            valid_up_to: e.valid_up_to(),
            error_len: e.error_len(),
        });
    result
}

/// Below this length, text is first checked for plain ASCII (a few word-sized loads);
/// the general validators pay a setup cost that dominates short messages.
const SHORT_TEXT: usize = 256;

/// True if every byte is below 0x80. No early exit: the loop ORs whole words, which
/// the compiler turns into vector instructions, so it is cheaper than core's
/// `is_ascii` on the short texts it is used for.
#[inline]
fn is_ascii(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    let mut acc = 0u64;
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        acc |= u64::from_ne_bytes(b);
    }
    let tail = words.remainder().iter().fold(0u8, |a, &b| a | b);
    (acc & 0x8080_8080_8080_8080) == 0 && tail < 0x80
}

/// `bytes` as text, if it is valid UTF-8.
#[inline]
pub(crate) fn to_str(bytes: &[u8]) -> Option<&str> {
    if bytes.len() < SHORT_TEXT && is_ascii(bytes) {
        // SAFETY: every byte is below 0x80, and ASCII is valid UTF-8.
        #[allow(unsafe_code)]
        return Some(unsafe { validated_str(bytes) });
    }
    #[cfg(feature = "std")]
    {
        simdutf8::basic::from_utf8(bytes).ok()
    }
    #[cfg(not(feature = "std"))]
    {
        core::str::from_utf8(bytes).ok()
    }
}

/// `bytes` as text without validating it again.
///
/// One of the engine's two uses of `unsafe`, a measured fast path (docs/ARCHITECTURE.md
/// has the figures): a text message that arrived in pieces was validated piece by piece
/// (fail-fast, RFC 6455 §8.1) as it came in, and a short message was checked to be
/// ASCII; validating either again to build the `&str` was a large share of the receive
/// path. Callers pass only bytes that went, all of them and in order, through a
/// [`Utf8Validator`] whose [`finish`](Utf8Validator::finish) then succeeded, or that
/// `is_ascii` accepted; `tests/roundtrip.rs` and the fuzz targets deliver every such
/// message.
///
/// # Safety
/// `bytes` must be valid UTF-8. Each call site states why its bytes are.
#[inline]
#[allow(unsafe_code)]
pub(crate) unsafe fn validated_str(bytes: &[u8]) -> &str {
    debug_assert!(
        core::str::from_utf8(bytes).is_ok(),
        "validated_str on invalid UTF-8"
    );
    // SAFETY: the caller guarantees `bytes` is valid UTF-8 (see above), and the debug
    // assertion checks it in every test build.
    unsafe { core::str::from_utf8_unchecked(bytes) }
}

/// Text that is not valid UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utf8Error;

impl fmt::Display for Utf8Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid UTF-8 in text")
    }
}

impl core::error::Error for Utf8Error {}

/// Validates a stream of bytes as UTF-8, piece by piece.
///
/// ```
/// use hybi::utf8::Utf8Validator;
/// let mut v = Utf8Validator::new();
/// // "€" is E2 82 AC: split it across three pieces.
/// assert!(v.feed(b"price: \xE2").is_ok());
/// assert!(v.feed(b"\x82").is_ok());
/// assert!(v.feed(b"\xAC").is_ok());
/// assert!(v.finish().is_ok());
/// // A byte that can never continue the sequence fails right away.
/// assert!(v.feed(b"\xE2\x28").is_err());
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Utf8Validator {
    /// Bytes of an unfinished character carried over from the previous piece.
    partial: [u8; 4],
    /// How many bytes of `partial` are in use (0 to 3).
    partial_len: u8,
}

/// The length of the UTF-8 sequence a leading byte starts (0 if it cannot start one).
#[inline]
fn sequence_len(first: u8) -> usize {
    match first {
        0x00..=0x7F => 1,
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 0,
    }
}

impl Utf8Validator {
    /// A validator at the start of a message.
    #[inline]
    pub const fn new() -> Utf8Validator {
        Utf8Validator {
            partial: [0; 4],
            partial_len: 0,
        }
    }

    /// Forgets any unfinished character, ready for a new message.
    #[inline]
    pub fn reset(&mut self) {
        self.partial_len = 0;
    }

    /// True if the bytes fed so far end inside a character.
    #[inline]
    pub const fn is_incomplete(&self) -> bool {
        self.partial_len != 0
    }

    /// Validates the next piece of the message.
    ///
    /// Returns an error as soon as the bytes so far cannot be the start of valid UTF-8.
    /// A piece may end inside a character; the rest is expected in the next piece.
    /// After an error the validator's state is unspecified until [`reset`](Self::reset).
    #[inline]
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), Utf8Error> {
        if self.partial_len != 0 {
            data = self.complete_partial(data)?;
        }
        match check(data) {
            Ok(()) => Ok(()),
            Err(e) => {
                if e.error_len.is_some() {
                    return Err(Utf8Error);
                }
                // The input ended inside a character whose bytes so far are valid.
                let tail = &data[e.valid_up_to..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len() as u8;
                Ok(())
            }
        }
    }

    /// Moves bytes from `data` into the carried character until it is complete (or
    /// `data` runs out), and returns what is left of `data`.
    #[cold]
    fn complete_partial<'a>(&mut self, data: &'a [u8]) -> Result<&'a [u8], Utf8Error> {
        let have = usize::from(self.partial_len);
        let want = sequence_len(self.partial[0]);
        let take = (want - have).min(data.len());
        self.partial[have..have + take].copy_from_slice(&data[..take]);
        let now = have + take;
        match core::str::from_utf8(&self.partial[..now]) {
            Ok(_) => {
                self.partial_len = 0;
                Ok(&data[take..])
            }
            Err(e) if e.error_len().is_none() => {
                // Still a valid prefix; `data` is exhausted.
                self.partial_len = now as u8;
                Ok(&data[take..])
            }
            Err(_) => Err(Utf8Error),
        }
    }

    /// Checks that the message does not end inside a character.
    #[inline]
    pub fn finish(&self) -> Result<(), Utf8Error> {
        if self.partial_len == 0 {
            Ok(())
        } else {
            Err(Utf8Error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_ascii_check_finds_a_high_byte_anywhere() {
        for len in 0..300 {
            let mut bytes = alloc::vec![b'a'; len];
            assert!(is_ascii(&bytes), "len {len}");
            for at in 0..len {
                for high in [0x80, 0xC3, 0xFF] {
                    bytes[at] = high;
                    assert!(!is_ascii(&bytes), "len {len}, 0x{high:x} at {at}");
                }
                bytes[at] = b'a';
            }
        }
    }

    #[test]
    fn short_and_long_texts_are_accepted_or_refused_as_core_does() {
        let cases: [&[u8]; 7] = [
            b"",
            b"plain ascii",
            "κόσμε".as_bytes(),
            &[0xC0, 0x80],             // overlong
            &[b'a', 0xED, 0xA0, 0x80], // surrogate
            &[b'a'; 255],
            &[0xF4, 0x90, 0x80, 0x80], // above U+10FFFF
        ];
        for bytes in cases {
            for repeat in [1, 100] {
                let text = bytes.repeat(repeat);
                assert_eq!(to_str(&text), core::str::from_utf8(&text).ok());
            }
        }
    }

    fn feed_split(bytes: &[u8], cut_every: usize) -> Result<(), Utf8Error> {
        let mut v = Utf8Validator::new();
        for piece in bytes.chunks(cut_every.max(1)) {
            v.feed(piece)?;
        }
        v.finish()
    }

    #[test]
    fn fails_on_the_first_bad_byte_not_at_the_end() {
        // Autobahn 6.4.x: valid prefix, then a byte that makes it invalid.
        let mut v = Utf8Validator::new();
        assert!(v.feed("κόσμε".as_bytes()).is_ok());
        assert!(v.feed(b"\xF4\x90").is_err(), "F4 90 is above U+10FFFF");

        let mut v = Utf8Validator::new();
        assert!(v.feed(b"\xED").is_ok());
        assert!(v.feed(b"\xA0").is_err(), "ED A0 starts a surrogate");

        let mut v = Utf8Validator::new();
        assert!(v.feed(b"\xC0").is_err(), "C0 is never valid");
    }

    #[test]
    fn truncated_character_fails_at_finish() {
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"ok \xF0\x9F\x98").is_ok());
        assert!(v.is_incomplete());
        assert_eq!(v.finish(), Err(Utf8Error));
    }

    #[test]
    fn partial_character_then_invalid_continuation() {
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"\xE2\x82").is_ok());
        assert!(v.feed(b"A").is_err());
    }

    proptest! {
        #[test]
        fn agrees_with_core_for_every_split(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            cut in 1usize..8,
        ) {
            let expected = core::str::from_utf8(&bytes).is_ok();
            prop_assert_eq!(feed_split(&bytes, cut).is_ok(), expected);
        }

        #[test]
        fn valid_strings_pass_for_every_split(s in "\\PC{0,40}", cut in 1usize..6) {
            prop_assert!(feed_split(s.as_bytes(), cut).is_ok());
        }
    }
}
