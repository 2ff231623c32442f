//! Caller-supplied randomness. The engine never touches an OS random source: clients
//! need unpredictable bytes for frame mask keys (RFC 6455 §5.3) and the handshake key
//! (§4.1), and get them from a [`RandomSource`] the caller provides.

/// A source of random bytes for mask keys and handshake keys.
///
/// RFC 6455 §10.3 asks for keys a hostile application cannot predict, so back this by a
/// cryptographically secure generator (the adapters use a ChaCha-based generator seeded
/// from the OS). Any `FnMut(&mut [u8]) + Send` closure is a `RandomSource`.
///
/// ```
/// use hybi::RandomSource;
/// let mut counter = 0u8;
/// let mut source = move |buf: &mut [u8]| {
///     for b in buf { counter = counter.wrapping_add(1); *b = counter; }
/// };
/// assert_eq!(source.mask_key(), [1, 2, 3, 4]);
/// ```
pub trait RandomSource: Send {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);

    /// Four random bytes for a frame's mask key.
    #[inline]
    fn mask_key(&mut self) -> [u8; 4] {
        let mut key = [0u8; 4];
        self.fill(&mut key);
        key
    }
}

impl<F: FnMut(&mut [u8]) + Send> RandomSource for F {
    #[inline]
    fn fill(&mut self, buf: &mut [u8]) {
        self(buf)
    }
}

impl RandomSource for alloc::boxed::Box<dyn RandomSource> {
    #[inline]
    fn fill(&mut self, buf: &mut [u8]) {
        (**self).fill(buf)
    }
}
