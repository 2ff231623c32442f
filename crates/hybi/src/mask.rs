//! Payload masking (RFC 6455 §5.3): XOR with a repeating four-byte key.
//!
//! Masking is its own inverse, so the same functions mask and unmask. Both take the
//! position of the first byte within the payload (`offset`), so a payload that
//! arrives in pieces can be unmasked piece by piece.
//!
//! The loops below XOR 32-byte blocks as four `u64` lanes (which the compiler turns
//! into vector instructions), then whole words, then at most seven bytes, so masking
//! runs near memory speed for short payloads too.
//!
//! The crate is built for the baseline target (on x86-64: 16-byte SSE2 vectors). With
//! the `std` feature on x86-64, payloads of 128 bytes or more run the same
//! loops compiled for AVX2 (32-byte vectors) when the CPU has it, chosen at run time:
//! the engine's second and last `unsafe` (see `avx2` below).

/// The key as a `u64` pattern, rotated so that byte 0 lines up with payload
/// position `offset`.
#[inline]
fn key_word(key: [u8; 4], offset: usize) -> ([u8; 4], u64) {
    let r = offset & 3;
    let k = [key[r], key[(r + 1) & 3], key[(r + 2) & 3], key[(r + 3) & 3]];
    (
        k,
        u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]),
    )
}

#[inline(always)]
fn xor_word(chunk: &mut [u8], word: u64) {
    let mut w = [0u8; 8];
    w.copy_from_slice(chunk);
    chunk.copy_from_slice(&(u64::from_ne_bytes(w) ^ word).to_ne_bytes());
}

/// XORs `data` in place with `key`, where `data[0]` is byte `offset` of the payload.
///
/// ```
/// let key = [0x37, 0xfa, 0x21, 0x3d];
/// let mut payload = *b"Hello";
/// hybi::mask::apply_mask(key, 0, &mut payload);
/// assert_eq!(payload, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// // Unmask in two pieces: the offset carries the key position.
/// let (a, b) = payload.split_at_mut(2);
/// hybi::mask::apply_mask(key, 0, a);
/// hybi::mask::apply_mask(key, 2, b);
/// assert_eq!(&payload, b"Hello");
/// ```
#[inline]
pub fn apply_mask(key: [u8; 4], offset: usize, data: &mut [u8]) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if data.len() >= WIDE_MIN && avx2::apply_mask(key, offset, data) {
        return;
    }
    mask_in_place(key, offset, data);
}

/// Payloads this long or longer are masked with AVX2 where the CPU has it; shorter
/// ones are not worth the run-time check.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
const WIDE_MIN: usize = 128;

#[inline(always)]
fn mask_in_place(key: [u8; 4], offset: usize, data: &mut [u8]) {
    let (key, word) = key_word(key, offset);
    let mut blocks = data.chunks_exact_mut(32);
    for block in &mut blocks {
        for lane in block.chunks_exact_mut(8) {
            xor_word(lane, word);
        }
    }
    // 32 and 8 are multiples of 4: the rest starts at key position 0 again.
    let mut words = blocks.into_remainder().chunks_exact_mut(8);
    for lane in &mut words {
        xor_word(lane, word);
    }
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

/// Copies `src` into `dst` (same length) and masks it on the way, where `src[0]` is
/// byte `offset` of the payload. One pass over memory instead of copy-then-mask.
///
/// # Panics
/// If `src` and `dst` differ in length.
#[inline]
pub fn copy_masked(key: [u8; 4], offset: usize, src: &[u8], dst: &mut [u8]) {
    assert_eq!(src.len(), dst.len(), "copy_masked: length mismatch");
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if src.len() >= WIDE_MIN && avx2::copy_masked(key, offset, src, dst) {
        return;
    }
    copy_and_mask(key, offset, src, dst);
}

#[inline(always)]
fn copy_and_mask(key: [u8; 4], offset: usize, src: &[u8], dst: &mut [u8]) {
    let (key, word) = key_word(key, offset);
    let mut d_blocks = dst.chunks_exact_mut(32);
    let mut s_blocks = src.chunks_exact(32);
    for (d, s) in (&mut d_blocks).zip(&mut s_blocks) {
        for (d, s) in d.chunks_exact_mut(8).zip(s.chunks_exact(8)) {
            copy_word(d, s, word);
        }
    }
    let mut d_words = d_blocks.into_remainder().chunks_exact_mut(8);
    let mut s_words = s_blocks.remainder().chunks_exact(8);
    for (d, s) in (&mut d_words).zip(&mut s_words) {
        copy_word(d, s, word);
    }
    let d_tail = d_words.into_remainder();
    for (i, (d, s)) in d_tail.iter_mut().zip(s_words.remainder()).enumerate() {
        *d = *s ^ key[i & 3];
    }
}

#[inline(always)]
fn copy_word(dst: &mut [u8], src: &[u8], word: u64) {
    let mut w = [0u8; 8];
    w.copy_from_slice(src);
    dst.copy_from_slice(&(u64::from_ne_bytes(w) ^ word).to_ne_bytes());
}

/// The same loops compiled for AVX2, run only on CPUs that have it.
///
/// This is the engine's second `unsafe`, a measured fast path: the crate is built for
/// baseline x86-64, where the loops above use 16-byte SSE2 vectors, and unmasking was
/// half of the receive path for 1 KiB messages (the rest is the transport's copy).
/// Calling a function compiled with `#[target_feature(enable = "avx2")]` is sound
/// only on a CPU that supports AVX2; each wrapper checks that at run time
/// (`is_x86_feature_detected!` caches the answer) and returns `false`, having touched
/// nothing, where it does not. The tests below run both versions against a bytewise
/// reference.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[allow(unsafe_code)]
mod avx2 {
    /// # Safety
    /// The CPU must support AVX2. (`unsafe fn` rather than a safe target-feature
    /// function, which needs Rust 1.86; the crate supports 1.85.)
    #[target_feature(enable = "avx2")]
    unsafe fn mask_in_place(key: [u8; 4], offset: usize, data: &mut [u8]) {
        super::mask_in_place(key, offset, data);
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    unsafe fn copy_and_mask(key: [u8; 4], offset: usize, src: &[u8], dst: &mut [u8]) {
        super::copy_and_mask(key, offset, src, dst);
    }

    /// [`super::apply_mask`] with AVX2; `false` if the CPU lacks it.
    #[inline]
    pub(super) fn apply_mask(key: [u8; 4], offset: usize, data: &mut [u8]) -> bool {
        if !std::is_x86_feature_detected!("avx2") {
            return false;
        }
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { mask_in_place(key, offset, data) };
        true
    }

    /// [`super::copy_masked`] with AVX2; `false` if the CPU lacks it.
    #[inline]
    pub(super) fn copy_masked(key: [u8; 4], offset: usize, src: &[u8], dst: &mut [u8]) -> bool {
        if !std::is_x86_feature_detected!("avx2") {
            return false;
        }
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { copy_and_mask(key, offset, src, dst) };
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn naive(key: [u8; 4], offset: usize, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn rfc_6455_section_5_7_masked_hello() {
        let mut data = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask([0x37, 0xfa, 0x21, 0x3d], 0, &mut data);
        assert_eq!(&data, b"Hello");
    }

    proptest! {
        #[test]
        /// Every masking loop agrees with the bytewise reference.
        fn matches_bytewise_reference(
            key in any::<[u8; 4]>(),
            offset in 0usize..16,
            data in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            let mut fast = data.clone();
            let mut slow = data.clone();
            apply_mask(key, offset, &mut fast);
            naive(key, offset, &mut slow);
            prop_assert_eq!(&fast, &slow);

            let mut copied = vec![0u8; data.len()];
            copy_masked(key, offset, &data, &mut copied);
            prop_assert_eq!(&copied, &slow);

            // The baseline loops and, where the CPU has AVX2, the AVX2 ones, each
            // called directly (whatever the length).
            let mut in_place = data.clone();
            mask_in_place(key, offset, &mut in_place);
            prop_assert_eq!(&in_place, &slow);
            let mut copied = vec![0u8; data.len()];
            copy_and_mask(key, offset, &data, &mut copied);
            prop_assert_eq!(&copied, &slow);

            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            {
                let has_avx2 = std::is_x86_feature_detected!("avx2");
                let mut in_place = data.clone();
                prop_assert_eq!(avx2::apply_mask(key, offset, &mut in_place), has_avx2);
                let mut copied = vec![0u8; data.len()];
                prop_assert_eq!(avx2::copy_masked(key, offset, &data, &mut copied), has_avx2);
                if has_avx2 {
                    prop_assert_eq!(&in_place, &slow);
                    prop_assert_eq!(&copied, &slow);
                } else {
                    // Without AVX2 the wrappers leave the buffers untouched.
                    prop_assert_eq!(&in_place, &data);
                    prop_assert!(copied.iter().all(|&b| b == 0));
                }
            }
        }

        #[test]
        fn masking_in_pieces_equals_masking_at_once(
            key in any::<[u8; 4]>(),
            data in proptest::collection::vec(any::<u8>(), 0..600),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let mut whole = data.clone();
            apply_mask(key, 0, &mut whole);
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
            points.push(0);
            points.push(data.len());
            points.sort_unstable();
            let mut pieces = data.clone();
            for w in points.windows(2) {
                apply_mask(key, w[0], &mut pieces[w[0]..w[1]]);
            }
            prop_assert_eq!(whole, pieces);
        }
    }
}
