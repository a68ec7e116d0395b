//! [`BufferPool`]: recycled read buffers, handed out as zero-copy [`Bytes`].
//!
//! Parallel reads into fresh allocations pay for page faults: glibc returns large
//! blocks to the kernel on free, and the next read faults every page in again (on
//! the reference machine, sixteen concurrent 8 MiB reads fell from about 13 GiB/s to
//! about 2 GiB/s through page faults alone). A pooled buffer goes back to the pool
//! when the last `Bytes` that points into it is dropped (`Bytes::from_owner`), still
//! mapped and faulted in.
//!
//! Small reads are pooled too, from 4 KiB classes up. Ten thousand 4 KiB results
//! kept at once are 40 MiB that malloc may hand back to the kernel when they are
//! freed; in a scratch program it did, and the next storm faulted in and
//! zero-filled every page again. On an Intel Xeon a
//! storm of 10,000 `read_range` futures of 4 KiB took 31-35 ms with malloc's buffers
//! and 21-22 ms with pooled ones (a `pread` loop into one reused buffer: 10 ms).
//!
//! Buffers are zero-initialized once, when they are created, and stay initialized
//! while they are recycled. A read therefore fills a plain `&mut [u8]` of exactly
//! the requested length: sound without `unsafe`, and no zero-fill per read.
//!
//! Pooled buffers from 64 KiB up start on a page boundary. The kernel's copy into a
//! buffer that starts 16 bytes into a page (where malloc puts a large block) ran 4x
//! slower than into a page-aligned one on an AMD EPYC (`rep movsb` with a
//! misaligned destination): 9.4 ms against 2.3 ms for a 16 MiB `pread` from page
//! cache. Each such block is one page longer than its class and its data starts at
//! the first page boundary inside it, which needs no `unsafe`. Smaller classes
//! have no slack (see `slack`).
//!
//! Size classes are powers of two up to 64 KiB, and above it four to each doubling
//! (80, 96, 112 and 128 KiB, then 160 KiB, ...): a buffer is at most a quarter
//! larger than the read it was taken for (plus the page above), where powers of
//! two all the way up would nearly double a read just past one (33 MiB in a 64 MiB
//! block), whatever bound the caller put on its reads' lengths.
//!
//! Allocation is fallible: a buffer that cannot be had is an
//! [`ErrorKind::OutOfMemory`](crate::ErrorKind::OutOfMemory) error, never an abort.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

use crate::{Error, ErrorKind, Result};

/// The smallest class: 4 KiB. A read of more than half of it (2 KiB) is pooled;
/// smaller ones come straight from the allocator.
const MIN_POOLED_SHIFT: u32 = 12;
/// Classes from this one (64 KiB) up start on a page boundary (see
/// [`slack`]); smaller ones start where the allocator put them.
const ALIGNED_SHIFT: u32 = 16;
/// Buffers above 1 GiB are not pooled.
const MAX_POOLED_SHIFT: u32 = 30;
/// Classes below [`ALIGNED_SHIFT`]: one per power of two.
const POW2_CLASSES: usize = (ALIGNED_SHIFT - MIN_POOLED_SHIFT + 1) as usize;
/// Classes to each doubling above 64 KiB.
const PER_DOUBLING: usize = 4;
/// Every class: the powers of two up to 64 KiB, then four to each doubling up to
/// 1 GiB.
const CLASSES: usize = POW2_CLASSES + PER_DOUBLING * (MAX_POOLED_SHIFT - ALIGNED_SHIFT) as usize;
/// At most this many idle buffers per size class, or [`MAX_IDLE_CLASS_BYTES`]
/// worth of them if that is more: a storm of small reads returns hundreds of
/// 256 KiB batch buffers at once, and each one the pool turns away is allocated and
/// zero-filled again by the next storm.
const MAX_IDLE_PER_CLASS: usize = 64;
/// See [`MAX_IDLE_PER_CLASS`].
const MAX_IDLE_CLASS_BYTES: usize = 64 << 20;
/// Where a pooled buffer's data starts: a page boundary.
const ALIGN: usize = 4096;

/// A pool of read buffers in size classes from 4 KiB to 1 GiB (powers of two up to
/// 64 KiB, four to each doubling above), holding at most `max_idle_bytes` of idle
/// memory.
#[derive(Debug)]
pub struct BufferPool {
    classes: Box<[Mutex<Vec<BytesMut>>]>,
    idle_bytes: AtomicUsize,
    max_idle_bytes: usize,
}

impl BufferPool {
    /// A pool that keeps at most `max_idle_bytes` of idle buffers.
    pub fn new(max_idle_bytes: usize) -> Arc<Self> {
        let classes = (0..CLASSES).map(|_| Mutex::new(Vec::new())).collect();
        Arc::new(Self {
            classes,
            idle_bytes: AtomicUsize::new(0),
            max_idle_bytes,
        })
    }

    /// The process-wide pool (at most 256 MiB idle).
    pub fn global() -> Arc<Self> {
        static GLOBAL: OnceLock<Arc<BufferPool>> = OnceLock::new();
        Arc::clone(GLOBAL.get_or_init(|| BufferPool::new(256 << 20)))
    }

    /// A buffer with room for at least `len` bytes (see [`PooledBuf::space`]):
    /// `len` rounded up to its size class (above 64 KiB at most a quarter more, up
    /// to it the next power of two).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfMemory`] if the memory cannot be allocated.
    pub fn take(self: &Arc<Self>, len: usize) -> Result<PooledBuf> {
        let Some(class) = class_of(len) else {
            return Ok(PooledBuf {
                vec: allocate(len)?,
                start: 0,
                size: len,
                filled: 0,
                pool: None,
            });
        };
        let size = class_size(class);
        let recycled = self.classes[class].lock().pop();
        let vec = match recycled {
            Some(vec) => {
                self.idle_bytes.fetch_sub(size, Ordering::Relaxed);
                vec
            }
            None => allocate(size + slack(size))?,
        };
        // The same block always gives the same start: it never moves.
        let start = match vec.as_ptr().align_offset(ALIGN) {
            offset if offset < slack(size) => offset,
            _ => 0,
        };
        Ok(PooledBuf {
            vec,
            start,
            size,
            filled: 0,
            pool: Some(Arc::clone(self)),
        })
    }

    /// Idle bytes held right now.
    pub fn idle_bytes(&self) -> usize {
        self.idle_bytes.load(Ordering::Relaxed)
    }

    fn give(&self, vec: BytesMut, size: usize) {
        let Some(class) = class_of(size).filter(|&c| class_size(c) == size) else {
            return;
        };
        if vec.len() != size + slack(size)
            || self.idle_bytes.load(Ordering::Relaxed) + size > self.max_idle_bytes
        {
            return;
        }
        let mut idle = self.classes[class].lock();
        if idle.len() < MAX_IDLE_PER_CLASS.max(MAX_IDLE_CLASS_BYTES / size) {
            idle.push(vec);
            self.idle_bytes.fetch_add(size, Ordering::Relaxed);
        }
    }
}

/// `len` zero bytes, or an error if they cannot be allocated.
pub(crate) fn allocate(len: usize) -> Result<BytesMut> {
    let mut vec = Vec::new();
    vec.try_reserve_exact(len).map_err(|e| {
        Error::new(ErrorKind::OutOfMemory)
            .with_message(format!("cannot allocate a buffer of {len} bytes"))
            .with_source(e)
    })?;
    vec.resize(len, 0);
    // Zero-copy: the `Bytes` is the vector's only owner.
    Ok(BytesMut::from(Bytes::from(vec)))
}

/// The bytes a block of `size` holds beyond its class, so that its data can start
/// on a page boundary: a page from 64 KiB up, none below, where a page would double
/// a 4 KiB buffer and the copy gains less (a `pread` of 4 KiB from the page cache
/// into a page-aligned buffer took about 9% less time than into one 16 bytes in,
/// on an Intel Xeon).
fn slack(size: usize) -> usize {
    if size >= 1 << ALIGNED_SHIFT { ALIGN } else { 0 }
}

/// The bytes a buffer of `class` holds.
fn class_size(class: usize) -> usize {
    if class < POW2_CLASSES {
        return 1 << (class as u32 + MIN_POOLED_SHIFT);
    }
    // `2^shift` and `step` quarters of it more, `step` in 1..=4.
    let above = class - POW2_CLASSES;
    let shift = ALIGNED_SHIFT + (above / PER_DOUBLING) as u32;
    let step = above % PER_DOUBLING + 1;
    (1 << shift) + step * (1 << (shift - 2))
}

/// The class of a buffer for `len` bytes: the smallest that holds them; `None`
/// for lengths not pooled (2 KiB and less, above 1 GiB).
fn class_of(len: usize) -> Option<usize> {
    if !((1 << (MIN_POOLED_SHIFT - 1)) + 1..=(1 << MAX_POOLED_SHIFT)).contains(&len) {
        return None;
    }
    if len <= 1 << ALIGNED_SHIFT {
        let shift = len.next_power_of_two().trailing_zeros();
        return Some((shift - MIN_POOLED_SHIFT) as usize);
    }
    // `2^shift < len <= 2^(shift + 1)`, in quarters of `2^shift`.
    let shift = (len - 1).ilog2();
    let quarter = 1 << (shift - 2);
    let steps = (len - (1 << shift)).div_ceil(quarter);
    Some(POW2_CLASSES + (shift - ALIGNED_SHIFT) as usize * PER_DOUBLING + (steps - 1))
}

/// A buffer taken from a [`BufferPool`]; it goes back when dropped, or when the last
/// [`Bytes`] made by [`freeze`](Self::freeze) is.
#[derive(Debug)]
pub struct PooledBuf {
    /// Always fully initialized. The buffer is `vec[start..start + size]` (page
    /// aligned when pooled from 64 KiB up; `vec` ends at `start + at` while a part
    /// is split off); `filled` says how much of it holds data. A `BytesMut`, so
    /// that [`split_space`](Self::split_space) can hand part of it to another
    /// thread without a copy.
    vec: BytesMut,
    start: usize,
    size: usize,
    filled: usize,
    pool: Option<Arc<BufferPool>>,
}

impl PooledBuf {
    /// The whole buffer, at least as long as was asked for, to read into. Its
    /// contents are unspecified (zeros or an earlier read's bytes). While a part is
    /// split off ([`split_space`](Self::split_space)), only the part before it.
    pub fn space(&mut self) -> &mut [u8] {
        let end = (self.start + self.size).min(self.vec.len());
        &mut self.vec[self.start..end]
    }

    /// Declares the first `n` bytes of [`space`](Self::space) to be the data.
    ///
    /// # Panics
    ///
    /// Panics if `n` is larger than the buffer.
    pub fn set_filled(&mut self, n: usize) {
        assert!(
            n <= self.size,
            "filled {n} bytes of a {} byte buffer",
            self.size
        );
        self.filled = n;
    }

    /// How many bytes hold data.
    pub fn len(&self) -> usize {
        self.filled
    }

    /// `true` if no data has been filled in.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Turns the filled part into `Bytes` without copying.
    ///
    /// # Panics
    ///
    /// Panics if a part split off by [`split_space`](Self::split_space) has not
    /// been put back.
    pub fn freeze(self) -> Bytes {
        assert!(
            self.vec.len() >= self.start + self.size,
            "a split-off part of the buffer was not put back"
        );
        if self.pool.is_none() {
            let mut this = self;
            let mut vec = std::mem::take(&mut this.vec);
            vec.truncate(this.filled);
            return vec.freeze();
        }
        Bytes::from_owner(self)
    }

    /// Splits off [`space`](Self::space) from `at` on, to be filled on another
    /// thread while this one fills the rest; [`unsplit`](Self::unsplit) puts it
    /// back, without a copy. Until then `space` is only the first `at` bytes.
    ///
    /// # Panics
    ///
    /// Panics if `at` is beyond the buffer, or a part is split off already.
    pub fn split_space(&mut self, at: usize) -> SpaceTail {
        assert!(
            at <= self.size,
            "split at {at} of a {} byte buffer",
            self.size
        );
        assert!(
            self.vec.len() >= self.start + self.size,
            "a part of the buffer is split off already"
        );
        let end = self.start + self.size;
        // The bytes after the buffer's size (alignment slack) go with the tail, and
        // come back with it.
        let bytes = self.vec.split_off(self.start + at);
        SpaceTail {
            bytes,
            len: end - (self.start + at),
        }
    }

    /// Puts back a part split off by [`split_space`](Self::split_space), with
    /// whatever was written into it.
    ///
    /// # Panics
    ///
    /// Panics if `tail` is not the part split off this buffer.
    pub fn unsplit(&mut self, tail: SpaceTail) {
        join_in_place(
            &mut self.vec,
            tail.bytes,
            "not the part split off this buffer",
        );
    }
}

/// A part of a [`PooledBuf`] to fill on another thread: split off by
/// [`PooledBuf::split_space`], or off another part by [`SpaceTail::split_off`].
#[derive(Debug)]
pub struct SpaceTail {
    bytes: BytesMut,
    len: usize,
}

impl SpaceTail {
    /// The part, to read into.
    pub fn space(&mut self) -> &mut [u8] {
        &mut self.bytes[..self.len]
    }

    /// Splits off this part's [`space`](Self::space) from `at` on, as
    /// [`PooledBuf::split_space`] does, so a part can be cut into pieces for
    /// several threads; [`unsplit`](Self::unsplit) joins them again, without a
    /// copy.
    ///
    /// # Panics
    ///
    /// Panics if `at` is beyond this part.
    pub fn split_off(&mut self, at: usize) -> SpaceTail {
        assert!(at <= self.len, "split at {at} of a {} byte part", self.len);
        let bytes = self.bytes.split_off(at);
        let rest = SpaceTail {
            bytes,
            len: self.len - at,
        };
        self.len = at;
        rest
    }

    /// Puts back the part split off this one by [`split_off`](Self::split_off).
    ///
    /// # Panics
    ///
    /// Panics if `rest` does not start where this part ends in memory (not the
    /// part that follows this one).
    pub fn unsplit(&mut self, rest: SpaceTail) {
        join_in_place(
            &mut self.bytes,
            rest.bytes,
            "not the part that follows this one",
        );
        self.len += rest.len;
    }
}

/// Appends `back` to `front` without a copy, which `BytesMut::unsplit` does only
/// when `back` starts where `front` ends in memory (it copies otherwise, which here
/// would mean the bytes read into `back` land elsewhere).
///
/// # Panics
///
/// With `message`, if `back` does not start where `front` ends.
fn join_in_place(front: &mut BytesMut, back: BytesMut, message: &str) {
    let expected = front.as_ptr() as usize + front.len();
    assert_eq!(back.as_ptr() as usize, expected, "{message}");
    front.unsplit(back);
}

impl AsRef<[u8]> for PooledBuf {
    fn as_ref(&self) -> &[u8] {
        &self.vec[self.start..self.start + self.filled]
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.give(std::mem::take(&mut self.vec), self.size);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_return_when_the_last_bytes_drops() {
        let pool = BufferPool::new(64 << 20);
        let mut buf = pool.take(1 << 20).unwrap();
        buf.space()[..1000].fill(7);
        buf.set_filled(1000);
        let bytes = buf.freeze();
        assert_eq!(bytes.len(), 1000);
        let slice = bytes.slice(10..20);
        drop(bytes);
        assert_eq!(pool.idle_bytes(), 0, "a slice still holds it");
        assert_eq!(&slice[..], &[7; 10]);
        drop(slice);
        assert_eq!(pool.idle_bytes(), 1 << 20);
        let again = pool.take(1_000_000).unwrap();
        assert_eq!(again.size, 1 << 20, "recycled, rounded up to its class");
        assert!(again.is_empty());
        assert_eq!(pool.idle_bytes(), 0);
    }

    #[test]
    fn pooled_buffers_start_on_a_page_boundary() {
        let pool = BufferPool::new(64 << 20);
        for len in [64 << 10, 100_000, 1 << 20, 16 << 20] {
            let mut buf = pool.take(len).unwrap();
            assert!(buf.space().len() >= len);
            assert_eq!(buf.space().as_ptr() as usize % ALIGN, 0, "{len}");
            buf.space()[..len].fill(1);
            buf.set_filled(len);
            let bytes = buf.freeze();
            assert_eq!(bytes.as_ptr() as usize % ALIGN, 0, "{len}");
            assert!(bytes.iter().all(|&b| b == 1));
        }
        // Recycled buffers too.
        let mut again = pool.take(1 << 20).unwrap();
        assert_eq!(again.space().as_ptr() as usize % ALIGN, 0);
    }

    #[test]
    fn a_split_off_part_is_filled_elsewhere_and_comes_back_without_a_copy() {
        let pool = BufferPool::new(64 << 20);
        let mut buf = pool.take(1 << 20).unwrap();
        let at = buf.space().as_ptr() as usize;
        let mut tail = buf.split_space(300_000);
        assert_eq!(buf.space().len(), 300_000);
        assert_eq!(tail.space().len(), (1 << 20) - 300_000);
        let filler = std::thread::spawn(move || {
            tail.space().fill(2);
            tail
        });
        buf.space().fill(1);
        buf.unsplit(filler.join().unwrap());
        assert_eq!(buf.space().as_ptr() as usize, at, "the same memory");
        buf.set_filled(1 << 20);
        let bytes = buf.freeze();
        assert!(bytes[..300_000].iter().all(|&b| b == 1));
        assert!(bytes[300_000..].iter().all(|&b| b == 2));
        drop(bytes);
        assert_eq!(pool.idle_bytes(), 1 << 20, "back in the pool, whole");
    }

    #[test]
    fn a_split_off_part_cuts_into_pieces_that_join_again_in_order() {
        let pool = BufferPool::new(64 << 20);
        let mut buf = pool.take(1 << 20).unwrap();
        let at = buf.space().as_ptr() as usize;
        let mut first = buf.split_space(100_000);
        let mut second = first.split_off(250_000);
        let mut third = second.split_off(400_000);
        assert_eq!(first.space().len(), 250_000);
        assert_eq!(second.space().len(), 400_000);
        assert_eq!(third.space().len(), (1 << 20) - 750_000);
        let filler = std::thread::spawn(move || {
            third.space().fill(4);
            third
        });
        buf.space().fill(1);
        first.space().fill(2);
        second.space().fill(3);
        second.unsplit(filler.join().unwrap());
        first.unsplit(second);
        assert_eq!(first.space().len(), (1 << 20) - 100_000);
        buf.unsplit(first);
        assert_eq!(buf.space().as_ptr() as usize, at, "the same memory");
        buf.set_filled(1 << 20);
        let bytes = buf.freeze();
        assert!(bytes[..100_000].iter().all(|&b| b == 1));
        assert!(bytes[100_000..350_000].iter().all(|&b| b == 2));
        assert!(bytes[350_000..750_000].iter().all(|&b| b == 3));
        assert!(bytes[750_000..].iter().all(|&b| b == 4));
        drop(bytes);
        assert_eq!(pool.idle_bytes(), 1 << 20, "back in the pool, whole");
    }

    #[test]
    #[should_panic(expected = "not the part that follows this one")]
    fn pieces_joined_out_of_order_panic_instead_of_mixing_bytes() {
        let pool = BufferPool::new(64 << 20);
        let mut buf = pool.take(1 << 20).unwrap();
        let mut first = buf.split_space(0);
        let mut second = first.split_off(1000);
        let third = second.split_off(1000);
        first.unsplit(third);
    }

    #[test]
    fn small_reads_buffers_are_recycled_in_their_own_classes() {
        let pool = BufferPool::new(64 << 20);
        // A storm of 4 KiB reads whose results are all kept, then dropped.
        let kept: Vec<Bytes> = (0..100_u8)
            .map(|i| {
                let mut buf = pool.take(4096).unwrap();
                assert_eq!(buf.vec.len(), 4096, "exactly its class, no slack");
                buf.space().fill(i);
                buf.set_filled(4096);
                buf.freeze()
            })
            .collect();
        for (i, bytes) in kept.iter().enumerate() {
            assert!(bytes.iter().all(|&b| usize::from(b) == i), "{i}");
        }
        let blocks: std::collections::HashSet<usize> =
            kept.iter().map(|b| b.as_ptr() as usize).collect();
        drop(kept);
        assert_eq!(pool.idle_bytes(), 100 * 4096, "every one came back");
        // The next storm reads into the same memory.
        let again: Vec<PooledBuf> = (0..100).map(|_| pool.take(3000).unwrap()).collect();
        assert_eq!(pool.idle_bytes(), 0);
        for mut buf in again {
            assert_eq!(buf.space().len(), 4096, "3000 bytes take the 4 KiB class");
            assert!(blocks.contains(&(buf.space().as_ptr() as usize)));
        }
        assert_eq!(pool.idle_bytes(), 100 * 4096);
        // Classes do not mix: a 5000 byte read does not take a 4 KiB buffer.
        let mut larger = pool.take(5000).unwrap();
        assert_eq!(larger.space().len(), 8192);
        assert_eq!(pool.idle_bytes(), 100 * 4096);
    }

    #[test]
    fn small_and_over_budget_buffers_are_not_kept() {
        let pool = BufferPool::new(1 << 20);
        drop(pool.take(100).unwrap());
        drop(pool.take(2048).unwrap());
        assert_eq!(pool.idle_bytes(), 0, "2 KiB and less: malloc's");
        let (a, b) = (pool.take(1 << 20).unwrap(), pool.take(1 << 20).unwrap());
        drop(a);
        drop(b);
        assert_eq!(pool.idle_bytes(), 1 << 20, "capped at max_idle_bytes");
    }

    #[test]
    fn a_buffer_is_at_most_a_quarter_larger_than_asked() {
        let pool = BufferPool::new(0);
        // 2 KiB and less: not pooled.
        let mut last = 1 << (MIN_POOLED_SHIFT - 1);
        assert_eq!(class_of(last), None);
        for class in 0..CLASSES {
            let size = class_size(class);
            assert!(size > last, "classes grow: {class}");
            assert_eq!(size % ALIGN, 0, "whole pages: {class}");
            assert_eq!(class_of(size), Some(class), "{size}");
            assert_eq!(class_of(last + 1), Some(class), "{}", last + 1);
            last = size;
        }
        assert_eq!(last, 1 << MAX_POOLED_SHIFT);
        assert_eq!(class_of(last + 1), None);
        for len in [
            (64 << 10) + 1,
            100_000,
            (1 << 20) + 1,
            (33 << 20) + 5,
            (3 << 20) - 1,
            (8 << 20) + 1,
        ] {
            let taken = pool.take(len).unwrap();
            assert!(taken.size >= len, "{len}");
            assert!(taken.size - len <= len / 4, "{len}: {}", taken.size);
            assert!(taken.vec.len() <= taken.size + ALIGN, "{len}");
        }
        // Sizes of a class are taken whole, as before.
        for len in [4096, 64 << 10, 1 << 20, 8 << 20, 16 << 20] {
            assert_eq!(pool.take(len).unwrap().size, len);
        }
        assert_eq!(pool.take(5 << 20).unwrap().size, 5 << 20);
    }

    #[test]
    fn an_impossible_buffer_is_an_error_not_an_abort() {
        let pool = BufferPool::new(1 << 20);
        let err = pool.take(usize::MAX / 2).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfMemory);
    }
}
