//! [`ByteRange`]: a requested range of an object, before its size is known.

use std::fmt;
use std::ops::{Bound, Range, RangeBounds};

use crate::{Error, ErrorKind, Result};

/// A range of bytes as requested, before the object's size is known.
///
/// Built from any `RangeBounds<u64>` (`0..4096`, `10..`, `..100`, `..=99`, `..`) with
/// [`new`](Self::new), the strict form every [`Operator`](crate::Operator) method
/// takes. [`resolve`](Self::resolve) checks it against the object's size; the rule is
/// the same on every backend:
///
/// - a range ending beyond the end of the object is [`ErrorKind::RangeNotSatisfiable`],
///   and the error states the object's `size`;
/// - `start..` reads to the end (`size..` is empty, `size + 1..` is not satisfiable);
/// - an empty range (`n..n`, with `n <= size`) gives empty bytes;
/// - a range whose start is after its end is [`ErrorKind::InvalidInput`].
///
/// Two more forms follow HTTP's `Range` header (RFC 9110 section 14.1.2), for callers
/// that speak it (the object_store adapter):
///
/// - [`http`](Self::http): an end beyond the object's end is cut to it; a start at or
///   beyond the end is [`ErrorKind::RangeNotSatisfiable`];
/// - [`suffix`](Self::suffix): the last `n` bytes (all of them if the object is
///   shorter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteRange {
    repr: Repr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Repr {
    Span { start: u64, end: Option<u64> },
    Http { start: u64, end: Option<u64> },
    Suffix(u64),
}

fn bounds(range: impl RangeBounds<u64>) -> (u64, Option<u64>) {
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
    (start, end)
}

impl ByteRange {
    /// The whole object.
    pub const FULL: ByteRange = ByteRange {
        repr: Repr::Span {
            start: 0,
            end: None,
        },
    };

    /// Converts any range expression (the strict form).
    pub fn new(range: impl RangeBounds<u64>) -> Self {
        let (start, end) = bounds(range);
        Self {
            repr: Repr::Span { start, end },
        }
    }

    /// A range with HTTP's rules: the end is cut to the object's end.
    pub fn http(range: impl RangeBounds<u64>) -> Self {
        let (start, end) = bounds(range);
        Self {
            repr: Repr::Http { start, end },
        }
    }

    /// The last `n` bytes of the object (all of it if it is shorter).
    pub fn suffix(n: u64) -> Self {
        Self {
            repr: Repr::Suffix(n),
        }
    }

    /// The first byte, where the range says it before the size is known (`None` for
    /// a suffix).
    pub fn start(&self) -> Option<u64> {
        match self.repr {
            Repr::Span { start, .. } | Repr::Http { start, .. } => Some(start),
            Repr::Suffix(_) => None,
        }
    }

    /// One past the last byte, if bounded.
    pub fn end(&self) -> Option<u64> {
        match self.repr {
            Repr::Span { end, .. } | Repr::Http { end, .. } => end,
            Repr::Suffix(_) => None,
        }
    }

    /// `n` of a suffix (the last `n` bytes).
    pub(crate) fn suffix_len(&self) -> Option<u64> {
        match self.repr {
            Repr::Suffix(n) => Some(n),
            _ => None,
        }
    }

    /// `start..end` of a strict bounded range (not HTTP's form, whose end is cut to
    /// the object's, nor a suffix).
    pub(crate) fn span(&self) -> Option<Range<u64>> {
        match self.repr {
            Repr::Span {
                start,
                end: Some(end),
            } => Some(start..end),
            _ => None,
        }
    }

    /// `true` for the whole object.
    pub fn is_full(&self) -> bool {
        *self == Self::FULL
    }

    /// `true` for a strict range that is empty whatever the object (`n..n`).
    pub fn is_empty_span(&self) -> bool {
        matches!(self.repr, Repr::Span { start, end: Some(end) } if start == end)
    }

    /// The value of an HTTP `Range` header asking for these bytes, or `None` for the
    /// whole object (and for an empty strict range, which no header can ask for).
    /// A server answers with at most these bytes; [`resolve`](Self::resolve) then
    /// applies this range's own rules to the size it reports.
    ///
    /// An end or a suffix past what a signed 64-bit integer holds, which no object
    /// reaches, is not sent as it is (servers that parse it as one refuse the
    /// range): such an end is left open, such a suffix asks for the whole object. (A
    /// start there is past every object: refused as such, it is resolved as any
    /// range past the end.)
    pub fn header_value(&self) -> Option<String> {
        const MOST: u64 = i64::MAX as u64;
        match self.repr {
            Repr::Span {
                start: 0,
                end: None,
            }
            | Repr::Http {
                start: 0,
                end: None,
            } => None,
            Repr::Span { start, end: None } | Repr::Http { start, end: None } => {
                Some(format!("bytes={start}-"))
            }
            Repr::Span {
                start,
                end: Some(end),
            }
            | Repr::Http {
                start,
                end: Some(end),
            } if end.checked_sub(1).is_some_and(|last| last > MOST) => {
                (end > start).then(|| format!("bytes={start}-"))
            }
            Repr::Span {
                start,
                end: Some(end),
            }
            | Repr::Http {
                start,
                end: Some(end),
            } => (end > start).then(|| format!("bytes={start}-{}", end - 1)),
            Repr::Suffix(n) => Some(format!("bytes=-{}", n.min(MOST))),
        }
    }

    /// Refuses a range that starts after it ends, whatever the object's size: a
    /// read checks this before any IO (a backend's request for it would ask for
    /// nothing, or for everything).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`], with `range` context.
    pub(crate) fn check_order(&self) -> Result<()> {
        match (self.start(), self.end()) {
            (Some(start), Some(end)) if start > end => Err(self.backwards()),
            _ => Ok(()),
        }
    }

    fn backwards(&self) -> Error {
        Error::new(ErrorKind::InvalidInput)
            .with_message("range starts after it ends")
            .with_context("range", self)
    }

    /// The concrete range within an object of `size` bytes.
    ///
    /// # Errors
    ///
    /// See the rules on [`ByteRange`]. Errors carry `range` and `size` context.
    pub fn resolve(&self, size: u64) -> Result<Range<u64>> {
        let unsatisfiable = || {
            Error::new(ErrorKind::RangeNotSatisfiable)
                .with_context("range", self)
                .with_context("size", size)
        };
        let backwards = || self.backwards();
        match self.repr {
            Repr::Span { start, end } => {
                let end = end.unwrap_or(size.max(start));
                if start > end {
                    return Err(backwards());
                }
                if end > size {
                    return Err(unsatisfiable());
                }
                Ok(start..end)
            }
            Repr::Http { start, end } => {
                if end.is_some_and(|end| start > end) {
                    return Err(backwards());
                }
                if start >= size {
                    return Err(unsatisfiable());
                }
                Ok(start..end.map_or(size, |end| end.min(size)))
            }
            Repr::Suffix(n) => Ok(size.saturating_sub(n)..size),
        }
    }
}

impl Default for ByteRange {
    fn default() -> Self {
        Self::FULL
    }
}

impl<R: RangeBounds<u64>> From<R> for ByteRange {
    fn from(range: R) -> Self {
        Self::new(range)
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.repr {
            Repr::Span {
                start,
                end: Some(end),
            } => write!(f, "{start}..{end}"),
            Repr::Span { start, end: None } => write!(f, "{start}.."),
            Repr::Http {
                start,
                end: Some(end),
            } if end > start => {
                write!(f, "bytes={start}-{}", end - 1)
            }
            Repr::Http {
                start,
                end: Some(end),
            } => write!(f, "bytes={start}-{end} (empty)"),
            Repr::Http { start, end: None } => write!(f, "bytes={start}-"),
            Repr::Suffix(n) => write!(f, "bytes=-{n}"),
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
        #[expect(
            clippy::reversed_empty_ranges,
            reason = "a backwards range is the case"
        )]
        let backwards = ByteRange::new(5..4);
        assert_eq!(
            backwards.resolve(10).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn http_ranges_cut_the_end_and_refuse_a_start_past_it() {
        assert_eq!(ByteRange::http(2..100).resolve(14).unwrap(), 2..14);
        assert_eq!(ByteRange::http(3..).resolve(14).unwrap(), 3..14);
        let err = ByteRange::http(14..).resolve(14).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RangeNotSatisfiable);
        assert_eq!(err.context("range"), Some("bytes=14-"));
        assert_eq!(ByteRange::suffix(2).resolve(14).unwrap(), 12..14);
        assert_eq!(ByteRange::suffix(100).resolve(14).unwrap(), 0..14);
        assert_eq!(ByteRange::suffix(0).resolve(14).unwrap(), 14..14);
    }

    #[test]
    fn header_values() {
        assert_eq!(ByteRange::FULL.header_value(), None);
        assert_eq!(ByteRange::new(0..10).header_value().unwrap(), "bytes=0-9");
        assert_eq!(ByteRange::new(5..).header_value().unwrap(), "bytes=5-");
        assert_eq!(ByteRange::new(5..5).header_value(), None);
        assert_eq!(ByteRange::http(5..9).header_value().unwrap(), "bytes=5-8");
        assert_eq!(ByteRange::suffix(7).header_value().unwrap(), "bytes=-7");
        // Beyond what a signed 64-bit position holds: open, or the whole object.
        assert_eq!(
            ByteRange::http(90..u64::MAX).header_value().unwrap(),
            "bytes=90-"
        );
        assert_eq!(
            ByteRange::new(0..u64::MAX).header_value().unwrap(),
            "bytes=0-"
        );
        assert_eq!(
            ByteRange::new(0..(1 << 63)).header_value().unwrap(),
            format!("bytes=0-{}", i64::MAX)
        );
        assert_eq!(
            ByteRange::suffix(u64::MAX).header_value().unwrap(),
            format!("bytes=-{}", i64::MAX)
        );
    }
}
