//! The small-read storm: 10,000 random reads of 4 KiB (or 64 KiB) of a large file
//! in the page cache, issued at once, as a query engine does for page indexes,
//! bloom filters, row lookups and vector-search fetches.

use std::fmt;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use io_executor::Executor;
use object_store::{ObjectStore, ObjectStoreExt};
use rand::{Rng, SeedableRng};

/// Reads per storm.
pub const READS: usize = 10_000;

/// One storm: [`READS`] reads of `size` bytes at random aligned offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Storm {
    /// Bytes per read.
    pub size: u64,
}

impl Storm {
    /// The storms `dio bench` runs: 4 KiB and 64 KiB reads.
    pub const ALL: [Storm; 2] = [Storm { size: 4 << 10 }, Storm { size: 64 << 10 }];

    /// `storm_4k`, `storm_64k`.
    pub fn name(&self) -> String {
        format!("storm_{}k", self.size >> 10)
    }

    /// Bytes one storm moves.
    pub fn bytes(&self) -> u64 {
        READS as u64 * self.size
    }

    /// The smallest file that holds [`READS`] reads of this storm apart from each
    /// other: a page between any two (see [`offsets`]).
    pub fn file_needed(&self) -> u64 {
        // Each read takes whole pages (the last one partly, for a size that is not
        // a multiple of a page).
        READS as u64 * self.size.div_ceil(PAGE) * PAGE + (READS as u64 - 1) * PAGE
    }
}

/// The unit offsets are drawn in: a page.
const PAGE: u64 = 4 << 10;

/// A storm's offsets in a file of `file_size` bytes: [`READS`] page-aligned reads
/// of `storm.size`, drawn at random (seeded by the size, so every method gets the
/// same), in random order, no two of them overlapping or touching. Every method then
/// reads every byte it is credited with: with `read_ranges`' coalescing off
/// (a gap of 0) ours still merges ranges that overlap or touch, which the other
/// methods read one by one.
///
/// `None` if the file is smaller than [`Storm::file_needed`].
pub fn offsets(storm: Storm, file_size: u64) -> Option<Vec<u64>> {
    use rand::seq::SliceRandom;
    if file_size < storm.file_needed() {
        return None;
    }
    let per_read = storm.size.div_ceil(PAGE);
    // Choose READS distinct values y_0 < y_1 < ... in 0..=free; read i starts at
    // page y_i + i * per_read, so consecutive reads are at least one page apart.
    let free = file_size / PAGE - READS as u64 * per_read;
    let mut rng = rand::rngs::StdRng::seed_from_u64(storm.size);
    let mut picks: Vec<u64> =
        rand::seq::index::sample(&mut rng, usize::try_from(free + 1).ok()?, READS)
            .into_iter()
            .map(|y| y as u64)
            .collect();
    picks.sort_unstable();
    let mut starts: Vec<u64> = picks
        .into_iter()
        .enumerate()
        .map(|(i, y)| (y + i as u64 * per_read) * PAGE)
        .collect();
    starts.shuffle(&mut rng);
    Some(starts)
}

impl fmt::Display for Storm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Who does the reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `read_ranges` with coalescing off: one call, every range.
    OursReadRanges,
    /// A `read_range` future per read, all awaited together.
    OursFutures,
    /// A `pread` loop on the calling thread over one open file: the floor a single
    /// core sets.
    Std,
    /// The same loop split over one thread per CPU (scoped threads, started for
    /// each storm): what the machine's cores can do together, the ceiling for any
    /// method that spreads the reads.
    StdThreads,
    /// The `pread` loop on the calling thread keeping every result, as a caller of
    /// a storm does and every other method must: each read lands in its own part
    /// of one buffer that holds them all (allocated once, reused by every run, so
    /// no allocation or page fault is counted). `std` reads each 4 KiB into the
    /// block it just freed, which stays in the L1 cache; here the results'
    /// footprint (40 MiB, 625 MiB) is what any reader that keeps them writes to.
    StdKept,
    /// `tokio::task::spawn_blocking` per read, over one open file.
    SpawnBlocking,
    /// OpenDAL's fs service, a `read_with(..).range(..)` future per read.
    OpenDal,
    /// object_store's `LocalFileSystem`, a `get_range` future per read.
    ObjectStore,
}

impl Method {
    /// Every method.
    pub const ALL: [Method; 8] = [
        Method::OursReadRanges,
        Method::OursFutures,
        Method::Std,
        Method::StdThreads,
        Method::StdKept,
        Method::SpawnBlocking,
        Method::OpenDal,
        Method::ObjectStore,
    ];

    /// A short name for tables.
    pub fn name(&self) -> &'static str {
        match self {
            Method::OursReadRanges => "ours_read_ranges",
            Method::OursFutures => "ours_futures",
            Method::Std => "std",
            Method::StdThreads => "std_threads",
            Method::StdKept => "std_kept",
            Method::SpawnBlocking => "spawn_blocking",
            Method::OpenDal => "opendal",
            Method::ObjectStore => "object_store",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The file, the offsets, and every method's client.
#[derive(Debug)]
pub struct Fixture {
    dir: tempfile::TempDir,
    file: Arc<std::fs::File>,
    size: u64,
    /// The caller: a multi-thread runtime, as a query engine's would be.
    pub caller: tokio::runtime::Runtime,
    /// [`Method::StdKept`]'s buffer for every result of a storm, made on its
    /// first run.
    kept: std::sync::Mutex<Vec<u8>>,
    ours: storage::Operator,
    opendal: opendal::Operator,
    object_store: Arc<dyn ObjectStore>,
}

impl Fixture {
    /// Writes a file of `size` bytes (1 GiB for the benchmark; at least what each of
    /// `storms` needs, [`Storm::file_needed`]) to a temp directory and builds the
    /// clients; ours runs on `dedicated` without coalescing.
    ///
    /// # Errors
    ///
    /// If the file, the runtime or a client cannot be made: a message saying which.
    pub fn new(dedicated: Executor, size: u64, storms: &[Storm]) -> Result<Self, String> {
        let size = storms.iter().map(Storm::file_needed).fold(size, u64::max);
        let dir = tempfile::tempdir().map_err(|e| format!("cannot make a temp dir: {e}"))?;
        let path = dir.path().join("storm");
        crate::check_free_space(dir.path(), size, "the storm's file", "--size")?;
        // `std_kept`'s buffer lives as long as the fixture, and a method's results
        // live until they are checked: twice the largest storm's bytes at once;
        // and the file itself, on a tmpfs.
        let largest = storms.iter().map(Storm::bytes).max().unwrap_or(0);
        let file_in_memory = if crate::in_memory(dir.path()) {
            size
        } else {
            0
        };
        crate::check_free_memory(
            largest.saturating_mul(2).saturating_add(file_in_memory),
            "the storm suite",
            "--size, or storm set (`--filter storm_4k` runs the 4 KiB one alone)",
        )?;
        let written = (|| {
            // One random block, written over and over (a block per write would
            // take minutes in a debug build), each page of it stamped with its
            // page number in the file: a read served from another offset (8 MiB
            // off, say) returns other bytes, which the check catches.
            let mut chunk = vec![0_u8; 8 << 20];
            rand::rngs::StdRng::seed_from_u64(5).fill(&mut chunk[..]);
            let file = std::fs::File::create(&path)?;
            let mut at = 0;
            while at < size {
                // A stop between pieces of a file that may be many GiB: the temp
                // dir goes with the error.
                crate::stopped().map_err(std::io::Error::other)?;
                let n = (size - at).min(chunk.len() as u64) as usize;
                for (i, page) in chunk.chunks_mut(PAGE as usize).enumerate() {
                    let number = at / PAGE + i as u64;
                    let stamp = page.len().min(8);
                    page[..stamp].copy_from_slice(&number.to_le_bytes()[..stamp]);
                }
                file.write_all_at(&chunk[..n], at)?;
                at += n as u64;
            }
            // On disk before any read is measured (see `write_synced`).
            file.sync_all()?;
            std::fs::File::open(&path)
        })();
        // Stopped midway: said as every other stop is (the temp dir goes).
        crate::stopped()?;
        let file = Arc::new(written.map_err(|e| {
            format!(
                "cannot write the storm's {size}-byte file {}: {e}",
                path.display()
            )
        })?);
        let caller = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot build the caller's runtime: {e}"))?;
        let fs = storage::services::Fs::new(dir.path()).map_err(|e| e.to_string())?;
        let ours = storage::Operator::new(fs).with_executor(dedicated);
        let ours = ours
            .clone()
            .with_options(ours.options().with_coalesce_gap(0));
        let root = dir
            .path()
            .to_str()
            .ok_or_else(|| format!("{}: the temp dir is not UTF-8", dir.path().display()))?;
        let opendal = opendal::Operator::new(opendal::services::Fs::default().root(root))
            .map_err(|e| format!("opendal: {e}"))?
            .finish();
        let object_store: Arc<dyn ObjectStore> = Arc::new(
            object_store::local::LocalFileSystem::new_with_prefix(dir.path())
                .map_err(|e| format!("object_store: {e}"))?,
        );
        Ok(Self {
            dir,
            file,
            size,
            caller,
            kept: std::sync::Mutex::default(),
            ours,
            opendal,
            object_store,
        })
    }

    /// The storm's offsets in this fixture's file ([`offsets`]), the same for every
    /// method.
    ///
    /// # Panics
    ///
    /// If the file is too small for `storm`: one the fixture was not made for.
    pub fn offsets(&self, storm: Storm) -> Vec<u64> {
        offsets(storm, self.size)
            .unwrap_or_else(|| panic!("{storm} needs a larger file than the fixture's"))
    }

    /// One storm by `method`; returns the bytes read (checked).
    ///
    /// # Errors
    ///
    /// If a read fails or the reads return the wrong number of bytes: a line
    /// naming the method, the storm and the call.
    pub fn run(&self, method: Method, storm: Storm, offsets: &[u64]) -> Result<u64, String> {
        let len = storm.size;
        let got = match method {
            Method::Std => self.pread_loop(len, offsets),
            Method::StdThreads => self.pread_threads(len, offsets),
            Method::StdKept => self.pread_kept(len, offsets),
            _ => {
                let mut got = 0;
                let mut count = |_: usize, bytes: &[u8]| got += bytes.len() as u64;
                self.caller
                    .block_on(self.run_async(method, len, offsets, &mut count))
                    .map(|()| got)
            }
        }
        .map_err(|e| format!("{method} {storm}: {e}"))?;
        crate::check_moved(format_args!("{method} {storm}"), got, storm.bytes())
    }

    /// Runs one storm by `method` as [`run`](Self::run) does, and compares every
    /// read's bytes with the file's at its offset (read with `pread`): a method
    /// that returned other bytes, or put a read's bytes in another's place, would
    /// look fast for the wrong reason. The `pread` methods are the reference.
    ///
    /// # Errors
    ///
    /// The first read whose bytes differ, or a read missing, or an error as
    /// [`run`](Self::run)'s.
    pub fn check(&self, method: Method, storm: Storm, offsets: &[u64]) -> Result<(), String> {
        if matches!(method, Method::Std | Method::StdThreads | Method::StdKept) {
            return Ok(());
        }
        let len = storm.size;
        let mut expected = vec![0_u8; len as usize];
        let (mut seen, mut wrong) = (0, None);
        let mut compare = |i: usize, bytes: &[u8]| {
            seen += 1;
            if wrong.is_some() {
                return;
            }
            wrong = match self.file.read_exact_at(&mut expected, offsets[i]) {
                Err(e) => Some(format!(
                    "{method} {storm}: pread at {} (the reference): {e}",
                    offsets[i]
                )),
                Ok(()) if bytes != expected.as_slice() => Some(format!(
                    "{method} {storm}: read {i} (at {}) returned other bytes than the file holds",
                    offsets[i]
                )),
                Ok(()) => None,
            };
        };
        self.caller
            .block_on(self.run_async(method, len, offsets, &mut compare))
            .map_err(|e| format!("{method} {storm}: {e}"))?;
        if let Some(wrong) = wrong {
            return Err(wrong);
        }
        if seen != offsets.len() {
            return Err(format!(
                "{method} {storm}: {seen} reads came back of {}",
                offsets.len()
            ));
        }
        Ok(())
    }

    /// [`pread_loop`](Self::pread_loop) over one scoped thread per CPU.
    fn pread_threads(&self, len: u64, offsets: &[u64]) -> Result<u64, String> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per = offsets.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let loops: Vec<_> = offsets
                .chunks(per)
                .map(|part| scope.spawn(move || self.pread_loop(len, part)))
                .collect();
            loops
                .into_iter()
                .map(|t| {
                    t.join()
                        .unwrap_or_else(|_| Err("a pread thread panicked".to_owned()))
                })
                .sum()
        })
    }

    /// [`Method::StdKept`]: the loop, each result in its own part of one buffer.
    fn pread_kept(&self, len: u64, offsets: &[u64]) -> Result<u64, String> {
        let len = len as usize;
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < len * offsets.len() {
            *kept = vec![0_u8; len * offsets.len()];
        }
        for (part, &at) in kept.chunks_exact_mut(len).zip(offsets) {
            self.file
                .read_exact_at(part, at)
                .map_err(pread_failed(at))?;
        }
        std::hint::black_box(&*kept);
        Ok((len * offsets.len()) as u64)
    }

    fn pread_loop(&self, len: u64, offsets: &[u64]) -> Result<u64, String> {
        offsets
            .iter()
            .map(|&at| {
                let mut buf = vec![0_u8; len as usize];
                self.file
                    .read_exact_at(&mut buf, at)
                    .map_err(pread_failed(at))?;
                Ok(std::hint::black_box(buf).len() as u64)
            })
            .sum()
    }

    /// One storm by `method` (not a `pread` one), each read's bytes handed to
    /// `visit` with its index, in the order of `offsets`.
    async fn run_async(
        &self,
        method: Method,
        len: u64,
        offsets: &[u64],
        visit: &mut dyn FnMut(usize, &[u8]),
    ) -> Result<(), String> {
        match method {
            Method::OursReadRanges => {
                let ranges = offsets.iter().map(|&at| at..at + len).collect();
                let got = self
                    .ours
                    .read_ranges("storm", ranges)
                    .await
                    .map_err(|e| format!("read_ranges: {e}"))?;
                for (i, bytes) in got.iter().enumerate() {
                    visit(i, bytes);
                }
            }
            Method::OursFutures => {
                let reads: Vec<_> = offsets
                    .iter()
                    .map(|&at| self.ours.read_range("storm", at..at + len))
                    .collect();
                let got = futures::future::join_all(reads).await;
                for (i, r) in got.into_iter().enumerate() {
                    visit(i, &r.map_err(|e| format!("read_range: {e}"))?);
                }
            }
            Method::SpawnBlocking => {
                let reads: Vec<_> = offsets
                    .iter()
                    .map(|&at| {
                        let file = Arc::clone(&self.file);
                        tokio::task::spawn_blocking(move || {
                            let mut buf = vec![0_u8; len as usize];
                            file.read_exact_at(&mut buf, at).map(|()| buf)
                        })
                    })
                    .collect();
                let got = futures::future::join_all(reads).await;
                for (i, r) in got.into_iter().enumerate() {
                    let read = r.map_err(|e| format!("spawn_blocking: {e}"))?;
                    visit(i, &read.map_err(pread_failed(offsets[i]))?);
                }
            }
            Method::OpenDal => {
                let reads: Vec<_> = offsets
                    .iter()
                    .map(|&at| {
                        std::future::IntoFuture::into_future(
                            self.opendal.read_with("storm").range(at..at + len),
                        )
                    })
                    .collect();
                let got = futures::future::join_all(reads).await;
                for (i, r) in got.into_iter().enumerate() {
                    // One chunk from a file: no copy.
                    visit(i, &r.map_err(|e| format!("read: {e}"))?.to_bytes());
                }
            }
            Method::ObjectStore => {
                let path = object_store::path::Path::from("storm");
                let reads: Vec<_> = offsets
                    .iter()
                    .map(|&at| self.object_store.get_range(&path, at..at + len))
                    .collect();
                let got = futures::future::join_all(reads).await;
                for (i, r) in got.into_iter().enumerate() {
                    visit(i, &r.map_err(|e| format!("get_range: {e}"))?);
                }
            }
            Method::Std | Method::StdThreads | Method::StdKept => {
                unreachable!("{method} is read with pread on the calling thread")
            }
        }
        Ok(())
    }

    /// The directory holding the file.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// What a `pread` of the storm's file at `at` says when it fails.
fn pread_failed(at: u64) -> impl FnOnce(std::io::Error) -> String {
    move |e| format!("pread at {at}: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every method's bytes are the file's; and a client that returns other
    /// bytes is caught: here the file replaced under the fixture, so that every
    /// client that opens it by path reads other bytes than the reference (a
    /// `pread` of the file the fixture opened).
    #[test]
    fn the_check_passes_every_method_and_catches_other_bytes() {
        let storm = Storm { size: 4 << 10 };
        let executor = io_executor::Builder::new()
            .name("storm-check")
            .build()
            .unwrap();
        let fixture = Fixture::new(executor.clone(), 0, &[storm]).unwrap();
        let offsets = fixture.offsets(storm);
        for method in Method::ALL {
            fixture.check(method, storm, &offsets).unwrap();
        }
        // No page of the file repeats another, even one a block (8 MiB) away: a
        // read served from the wrong offset cannot pass the check.
        let page = |at: u64| {
            let mut buf = vec![0_u8; PAGE as usize];
            fixture.file.read_exact_at(&mut buf, at).unwrap();
            buf
        };
        for &at in offsets
            .iter()
            .filter(|&&at| at + 2 * PAGE <= fixture.size)
            .take(100)
        {
            let shifted = (at + (8 << 20)) % (fixture.size - PAGE) / PAGE * PAGE;
            assert_ne!(page(at), page(shifted), "{at} and {shifted}");
            assert_ne!(page(at), page(at + PAGE), "{at}");
        }
        let path = fixture.dir().join("storm");
        let other = fixture.dir().join("other");
        let size = std::fs::metadata(&path).unwrap().len();
        std::fs::write(&other, vec![7_u8; size as usize]).unwrap();
        std::fs::rename(&other, &path).unwrap();
        for method in [
            Method::OursReadRanges,
            Method::OursFutures,
            Method::OpenDal,
            Method::ObjectStore,
        ] {
            let err = fixture.check(method, storm, &offsets).unwrap_err();
            assert!(err.contains("other bytes"), "{method}: {err}");
        }
        drop(fixture);
        executor.shutdown();
    }

    /// A file cut short midway through a run ends the storm of every method in an
    /// error that names the method and the storm, where it panicked.
    #[test]
    fn a_file_cut_short_midway_is_an_error_naming_the_method() {
        let storm = Storm { size: 4 << 10 };
        let executor = io_executor::Builder::new()
            .name("storm-short")
            .build()
            .unwrap();
        let fixture = Fixture::new(executor.clone(), 0, &[storm]).unwrap();
        let offsets = fixture.offsets(storm);
        std::fs::OpenOptions::new()
            .write(true)
            .open(fixture.dir().join("storm"))
            .unwrap()
            .set_len(4 << 10)
            .unwrap();
        for method in Method::ALL {
            let err = fixture.run(method, storm, &offsets).unwrap_err();
            assert!(err.starts_with(&format!("{method} {storm}: ")), "{err}");
        }
        drop(fixture);
        executor.shutdown();
    }

    #[test]
    fn offsets_are_apart_in_the_file_and_the_same_every_time() {
        // The storms `dio bench` runs, and a read size that is not whole pages.
        for storm in Storm::ALL.into_iter().chain([Storm { size: 5000 }]) {
            for file in [storm.file_needed(), 1 << 30] {
                let got = offsets(storm, file).unwrap();
                assert_eq!(got.len(), READS, "{storm}");
                assert_eq!(got, offsets(storm, file).unwrap(), "{storm}: seeded");
                let mut sorted = got.clone();
                sorted.sort_unstable();
                assert_ne!(got, sorted, "{storm}: issued in random order");
                assert!(sorted.iter().all(|at| at % PAGE == 0), "{storm}");
                assert!(
                    sorted[READS - 1] + storm.size <= file,
                    "{storm}: in the file"
                );
                for pair in sorted.windows(2) {
                    assert!(
                        pair[0] + storm.size < pair[1],
                        "{storm}: {} and {} overlap or touch",
                        pair[0],
                        pair[1]
                    );
                }
            }
            assert_eq!(offsets(storm, storm.file_needed() - 1), None, "{storm}");
        }
    }
}
