//! [`ByteRange`]: a requested range of an object, before its size is known.

use std::fmt;
use std::ops::{Bound, Range, RangeBounds};

use crate::{Error, ErrorKind, Result};

/// A range of bytes as requested: `start..end` or `start..` (to the end).
///
/// Built from any `RangeBounds<u64>` (`0..4096`, `10..`, `..100`, `..=99`, `..`).
/// [`resolve`](Self::resolve) checks it against the object's size; the rule is the
/// same on every backend:
///
/// - a range ending beyond the end of the object is [`ErrorKind::RangeNotSatisfiable`],
///   and the error states the object's `size`;
/// - `start..` reads to the end (`size..` is empty, `size + 1..` is not satisfiable);
/// - an empty range (`n..n`, with `n <= size`) gives empty bytes;
/// - a range whose start is after its end is [`ErrorKind::InvalidInput`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteRange {
    start: u64,
    end: Option<u64>,
}

impl ByteRange {
    /// The whole object.
    pub const FULL: ByteRange = ByteRange {
        start: 0,
        end: None,
    };

    /// Converts any range expression.
    pub fn new(range: impl RangeBounds<u64>) -> Self {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => Some(e.saturating_add(1)),
            Bound::Excluded(&e) => Some(e),
            Bound::Unbounded => None,
        };
        Self { start, end }
    }

    /// The first byte.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// One past the last byte, if bounded.
    pub fn end(&self) -> Option<u64> {
        self.end
    }

    /// `true` for the whole object.
    pub fn is_full(&self) -> bool {
        *self == Self::FULL
    }

    /// The concrete range within an object of `size` bytes.
    ///
    /// # Errors
    ///
    /// See the rules on [`ByteRange`]. Errors carry `range` and `size` context.
    pub fn resolve(&self, size: u64) -> Result<Range<u64>> {
        let end = self.end.unwrap_or(size.max(self.start));
        if self.start > end {
            return Err(Error::new(ErrorKind::InvalidInput)
                .with_message("range starts after it ends")
                .with_context("range", self));
        }
        if end > size {
            return Err(Error::new(ErrorKind::RangeNotSatisfiable)
                .with_context("range", self)
                .with_context("size", size));
        }
        Ok(self.start..end)
    }
}

impl<R: RangeBounds<u64>> From<R> for ByteRange {
    fn from(range: R) -> Self {
        Self::new(range)
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.end {
            Some(end) => write!(f, "{}..{end}", self.start),
            None => write!(f, "{}..", self.start),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_against_size() {
        assert_eq!(ByteRange::new(..).resolve(10).unwrap(), 0..10);
        assert_eq!(ByteRange::new(3..).resolve(10).unwrap(), 3..10);
        assert_eq!(ByteRange::new(10..).resolve(10).unwrap(), 10..10);
        assert_eq!(ByteRange::new(2..=4).resolve(10).unwrap(), 2..5);
        assert_eq!(ByteRange::new(5..5).resolve(10).unwrap(), 5..5);
        assert_eq!(ByteRange::new(0..0).resolve(0).unwrap(), 0..0);
    }

    #[test]
    fn rejects_out_of_bounds_and_backwards() {
        let err = ByteRange::new(0..4096).resolve(100).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RangeNotSatisfiable);
        assert_eq!(err.context("size"), Some("100"));
        assert_eq!(err.context("range"), Some("0..4096"));
        assert_eq!(
            ByteRange::new(11..).resolve(10).unwrap_err().kind(),
            ErrorKind::RangeNotSatisfiable
        );
        let backwards = ByteRange {
            start: 5,
            end: Some(4),
        };
        assert_eq!(
            backwards.resolve(10).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
}
