//! The bounds-checked reader that every binary layout of this crate parses with: envelopes,
//! session responses and tokens, signed status-list updates and trust snapshots. One home for
//! the rule that a read past the end is refused, never a panic, with the layout's own error.

use crate::error::CoreError;

/// Reads a byte layout front to back. Integers are big-endian. A read past the end is the
/// layout's error `E`, built by `truncated` from the name of the field being read (a layout
/// whose parser answers only "not this layout" uses `()`).
pub(crate) struct Reader<'a, E = CoreError> {
    rest: &'a [u8],
    truncated: fn(&str) -> E,
}

impl<'a, E> Reader<'a, E> {
    /// A reader over `bytes`; `truncated` names the error of a read past the end.
    pub(crate) fn new(bytes: &'a [u8], truncated: fn(&str) -> E) -> Self {
        Reader { rest: bytes, truncated }
    }

    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], E> {
        if self.rest.len() < n {
            return Err((self.truncated)(what));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// The next `N` bytes, as an array.
    pub(crate) fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], E> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    /// A `u8`.
    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, E> {
        Ok(self.array::<1>(what)?[0])
    }

    /// A `u16be`.
    pub(crate) fn u16(&mut self, what: &str) -> Result<u16, E> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// A `u32be`.
    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, E> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// A `u64be`.
    pub(crate) fn u64(&mut self, what: &str) -> Result<u64, E> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// An `i64be`.
    pub(crate) fn i64(&mut self, what: &str) -> Result<i64, E> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }

    /// A `u32be` count or length, as a `usize` (every count of these layouts fits in 32 bits,
    /// and 32 bits fit in the `usize` of every target this crate builds for).
    pub(crate) fn len(&mut self, what: &str) -> Result<usize, E> {
        let n = self.u32(what)?;
        usize::try_from(n).map_err(|_| (self.truncated)(what))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::Reader;
    use crate::error::CoreError;

    fn truncated(what: &str) -> CoreError {
        CoreError::EnvelopeMalformed(format!("truncated at {what}"))
    }

    #[test]
    fn reads_in_order_and_refuses_a_read_past_the_end() {
        let bytes = [0, 1, 0, 0, 0, 2, 0xff, 9, 9];
        let mut r = Reader::new(&bytes, truncated);
        assert_eq!(r.u16("a").unwrap(), 1);
        assert_eq!(r.len("b").unwrap(), 2);
        assert_eq!(r.u8("c").unwrap(), 0xff);
        assert_eq!(r.rest(), &[9, 9]);
        let err = r.u32("d").unwrap_err();
        assert!(err.to_string().contains("truncated at d"), "{err}");
        // A refused read consumes nothing.
        assert_eq!(r.take(2, "e").unwrap(), &[9, 9]);
        assert!(r.rest().is_empty());
        assert!(r.take(1, "f").is_err());
        assert_eq!(r.take(0, "g").unwrap(), &[] as &[u8]);
    }
}
