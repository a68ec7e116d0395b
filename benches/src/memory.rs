//! The in-memory workloads: the same reads and writes against memory backends,
//! where there is no device at all and only the clients' own costs remain.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use io_executor::Executor;
use object_store::{ObjectStore, ObjectStoreExt};
use rand::{Rng, SeedableRng};

use crate::fs::{Sizes, Workload};

/// The workloads that make sense in memory (no buffered reader).
pub const WORKLOADS: [Workload; 9] = [
    Workload::Read,
    Workload::RangeRead,
    Workload::ReadHalf,
    Workload::Write,
    Workload::ParallelRangeRead(2),
    Workload::ParallelRangeRead(4),
    Workload::ParallelRangeRead(8),
    Workload::ParallelRangeRead(16),
    Workload::RangeRead4k,
];

/// Who serves the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Our `Operator` over the memory backend, on a dedicated pool.
    OursDedicated,
    /// Our `Operator` over the memory backend, on the caller's runtime.
    OursCallerRuntime,
    /// A `Bytes` slice taken on the calling thread: the floor. Every memory
    /// backend here hands out shared slices without copying, so this suite
    /// measures each client's per-operation overhead, not bytes moved.
    Std,
    /// OpenDAL's memory service.
    OpenDal,
    /// object_store's `InMemory`.
    ObjectStore,
}

impl Method {
    /// Every method.
    pub const ALL: [Method; 5] = [
        Method::OursDedicated,
        Method::OursCallerRuntime,
        Method::Std,
        Method::OpenDal,
        Method::ObjectStore,
    ];

    /// A short name for tables.
    pub fn name(&self) -> &'static str {
        match self {
            Method::OursDedicated => "ours_dedicated",
            Method::OursCallerRuntime => "ours_caller_rt",
            Method::Std => "std",
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

/// Every client, loaded with the same two objects.
#[derive(Debug)]
pub struct Fixture {
    caller: tokio::runtime::Runtime,
    dedicated: storage::Operator,
    on_caller: storage::Operator,
    opendal: opendal::Operator,
    object_store: Arc<dyn ObjectStore>,
    /// What `Std` slices.
    big: Bytes,
    sizes: Sizes,
    rng: std::sync::Mutex<rand::rngs::StdRng>,
}

impl Fixture {
    /// Loads `small` and `big` into every memory backend.
    ///
    /// # Errors
    ///
    /// If the objects would not fit in the memory available
    /// ([`check_free_memory`](crate::check_free_memory)).
    ///
    /// # Panics
    ///
    /// If a runtime or client cannot be built.
    pub fn new(dedicated: Executor, sizes: Sizes) -> Result<Self, String> {
        // The objects (shared by ours and object_store; OpenDAL's memory service
        // keeps a copy), and up to as much again in reads in flight.
        crate::check_free_memory(sizes.big().saturating_mul(3), "the memory suite", "--size")?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let mut data = vec![0_u8; sizes.big() as usize];
        rng.fill(&mut data[..]);
        let big = Bytes::from(data);
        let small = big.slice(..sizes.small as usize);
        let caller = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("caller runtime");
        let memory = storage::services::Memory::new();
        let dedicated = storage::Operator::new(memory.clone()).with_executor(dedicated);
        let on_caller = storage::Operator::new(memory)
            .with_executor(Executor::from_handle(caller.handle().clone()));
        let opendal = opendal::Operator::new(opendal::services::Memory::default())
            .expect("opendal memory")
            .finish();
        let object_store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        caller.block_on(async {
            for (name, data) in [("small", &small), ("big", &big)] {
                dedicated
                    .write(name, data.clone())
                    .await
                    .expect("load ours");
                opendal
                    .write(name, data.clone())
                    .await
                    .expect("load opendal");
                let path = object_store::path::Path::from(name);
                object_store
                    .put(&path, data.clone().into())
                    .await
                    .expect("load object_store");
            }
        });
        Ok(Self {
            caller,
            dedicated,
            on_caller,
            opendal,
            object_store,
            big,
            sizes,
            rng: std::sync::Mutex::new(rng),
        })
    }

    /// One iteration of `workload` by `method`; returns the bytes moved.
    ///
    /// # Errors
    ///
    /// If an operation fails or moves the wrong number of bytes: a line naming the
    /// method, the workload, the call and the object.
    pub fn run(&self, method: Method, workload: Workload) -> Result<u64, String> {
        let ranges = self.ranges(workload);
        let moved = if workload == Workload::Write {
            self.write(method)
        } else if method == Method::Std {
            Ok(ranges
                .iter()
                .map(|(_, r)| {
                    // A zero-copy slice, as every other method hands out.
                    let slice =
                        std::hint::black_box(&self.big).slice(r.start as usize..r.end as usize);
                    std::hint::black_box(slice).len() as u64
                })
                .sum())
        } else {
            self.caller.block_on(async {
                let reads = ranges
                    .iter()
                    .map(|(name, r)| self.read(method, name, r.clone()));
                futures::future::join_all(reads)
                    .await
                    .into_iter()
                    .sum::<Result<u64, String>>()
            })
        }
        .map_err(|e| format!("{method} {workload}: {e}"))?;
        crate::check_moved(
            format_args!("{method} {workload}"),
            moved,
            self.sizes.bytes(workload),
        )
    }

    /// The objects and ranges one iteration of `workload` reads (a write's: what
    /// it writes, of `small`); random ranges drawn anew.
    fn ranges(&self, workload: Workload) -> Vec<(&'static str, std::ops::Range<u64>)> {
        let (small, half) = (self.sizes.small, self.sizes.half());
        let random = |below: u64| {
            self.rng
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .random_range(0..below)
        };
        match workload {
            Workload::Read | Workload::Write | Workload::BufRead => vec![("small", 0..small)],
            Workload::RangeRead => {
                let at = random(half);
                vec![("small", at..at + half)]
            }
            Workload::ReadHalf => vec![("small", 0..half)],
            Workload::RangeRead4k => {
                let at = random(small - 4096);
                vec![("small", at..at + 4096)]
            }
            Workload::ParallelRangeRead(n) => (0..n as u64)
                .map(|i| ("big", i * half..(i + 1) * half))
                .collect(),
        }
    }

    /// Checks, untimed, that `method` returns the right bytes for `workload` (what
    /// the run counts only by length): each range read compared with the data
    /// loaded; a write read back. `Std` slices the data itself: nothing to check.
    ///
    /// # Errors
    ///
    /// A line naming the method, the workload and the object whose bytes differ,
    /// or the operation that failed.
    pub fn check(&self, method: Method, workload: Workload) -> Result<(), String> {
        if method == Method::Std {
            return Ok(());
        }
        let context = |e: String| format!("{method} {workload}: {e}");
        if workload == Workload::Write {
            self.write(method).map_err(context)?;
            let expected = self.big.slice(..self.sizes.small as usize);
            let back = self
                .caller
                .block_on(self.fetch(method, "out", 0..self.sizes.small))
                .map_err(context)?;
            if back != expected {
                return Err(context("the object written reads back other bytes".into()));
            }
            return Ok(());
        }
        for (name, range) in self.ranges(workload) {
            let got = self
                .caller
                .block_on(self.fetch(method, name, range.clone()))
                .map_err(context)?;
            // `small` is the start of `big`.
            if got != self.big.slice(range.start as usize..range.end as usize) {
                return Err(context(format!(
                    "the bytes {range:?} of {name:?} are not the object's"
                )));
            }
        }
        Ok(())
    }

    /// The bytes `method` reads at `range` of `name`, whole.
    async fn fetch(
        &self,
        method: Method,
        name: &str,
        range: std::ops::Range<u64>,
    ) -> Result<Bytes, String> {
        Ok(match method {
            Method::OursDedicated | Method::Std => self
                .dedicated
                .read_range(name, range)
                .await
                .map_err(crate::failed("read_range", name))?,
            Method::OursCallerRuntime => self
                .on_caller
                .read_range(name, range)
                .await
                .map_err(crate::failed("read_range", name))?,
            Method::OpenDal => self
                .opendal
                .read_with(name)
                .range(range)
                .await
                .map_err(crate::failed("read", name))?
                .to_bytes(),
            Method::ObjectStore => self
                .object_store
                .get_range(&object_store::path::Path::from(name), range)
                .await
                .map_err(crate::failed("get_range", name))?,
        })
    }

    /// The length of what `method` reads at `range` of `name` (the timed read).
    async fn read(
        &self,
        method: Method,
        name: &str,
        range: std::ops::Range<u64>,
    ) -> Result<u64, String> {
        // OpenDAL's memory service answers with one chunk: `to_bytes` copies nothing.
        Ok(self.fetch(method, name, range).await?.len() as u64)
    }

    fn write(&self, method: Method) -> Result<u64, String> {
        let data = self.big.slice(..self.sizes.small as usize);
        if method == Method::Std {
            return Ok(std::hint::black_box(data.clone()).len() as u64);
        }
        self.caller.block_on(async {
            match method {
                Method::OursDedicated | Method::Std => drop(
                    self.dedicated
                        .write("out", data)
                        .await
                        .map_err(crate::failed("write", "out"))?,
                ),
                Method::OursCallerRuntime => drop(
                    self.on_caller
                        .write("out", data)
                        .await
                        .map_err(crate::failed("write", "out"))?,
                ),
                Method::OpenDal => drop(
                    self.opendal
                        .write("out", data)
                        .await
                        .map_err(crate::failed("write", "out"))?,
                ),
                Method::ObjectStore => {
                    let path = object_store::path::Path::from("out");
                    drop(
                        self.object_store
                            .put(&path, data.into())
                            .await
                            .map_err(crate::failed("put", "out"))?,
                    );
                }
            }
            Ok::<(), String>(())
        })?;
        Ok(self.sizes.small)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every method moves each workload's bytes; and an object gone midway ends the
    /// run in an error naming the method, the workload and the object, where it
    /// panicked.
    #[test]
    fn every_method_runs_and_an_object_gone_midway_is_an_error() {
        let executor = io_executor::Builder::new()
            .name("mem-check")
            .build()
            .unwrap();
        let fixture = Fixture::new(executor.clone(), Sizes { small: 64 << 10 }).unwrap();
        for workload in Workload::ALL {
            for method in Method::ALL {
                let moved = fixture.run(method, workload).unwrap();
                assert_eq!(moved, fixture.sizes.bytes(workload), "{method} {workload}");
                fixture.check(method, workload).unwrap();
            }
        }
        // Bytes of the right length but not the object's are caught, naming the
        // method and the object.
        let other: Bytes = fixture.big.iter().map(|b| b.wrapping_add(1)).collect();
        let small = other.slice(..fixture.sizes.small as usize);
        fixture
            .caller
            .block_on(fixture.opendal.write("small", small))
            .unwrap();
        let err = fixture.check(Method::OpenDal, Workload::Read).unwrap_err();
        assert!(
            err.starts_with("opendal read: ") && err.contains("\"small\" are not the object's"),
            "{err}"
        );
        fixture.check(Method::ObjectStore, Workload::Read).unwrap();
        fixture.caller.block_on(async {
            fixture.dedicated.delete("small").await.unwrap();
            fixture.opendal.delete("small").await.unwrap();
            let path = object_store::path::Path::from("small");
            object_store::ObjectStoreExt::delete(&*fixture.object_store, &path)
                .await
                .unwrap();
        });
        for method in Method::ALL.into_iter().filter(|m| *m != Method::Std) {
            let err = fixture.run(method, Workload::Read).unwrap_err();
            assert!(
                err.starts_with(&format!("{method} {}: ", Workload::Read))
                    && err.contains("\"small\""),
                "{err}"
            );
        }
        drop(fixture);
        executor.shutdown();
    }
}
