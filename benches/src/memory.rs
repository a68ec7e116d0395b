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
        crate::check_free_memory(sizes.big().saturating_mul(3), "the memory suite")?;
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
    /// # Panics
    ///
    /// If an operation fails or moves the wrong number of bytes.
    pub fn run(&self, method: Method, workload: Workload) -> u64 {
        let (small, half) = (self.sizes.small, self.sizes.half());
        let random = |below: u64| self.rng.lock().expect("rng").random_range(0..below);
        let ranges: Vec<(&str, std::ops::Range<u64>)> = match workload {
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
        };
        let moved = if workload == Workload::Write {
            self.write(method)
        } else if method == Method::Std {
            ranges
                .iter()
                .map(|(_, r)| {
                    // A zero-copy slice, as every other method hands out.
                    let slice =
                        std::hint::black_box(&self.big).slice(r.start as usize..r.end as usize);
                    std::hint::black_box(slice).len() as u64
                })
                .sum()
        } else {
            self.caller.block_on(async {
                let reads = ranges
                    .iter()
                    .map(|(name, r)| self.read(method, name, r.clone()));
                futures::future::join_all(reads).await.into_iter().sum()
            })
        };
        assert_eq!(moved, self.sizes.bytes(workload), "{method} {workload}");
        moved
    }

    async fn read(&self, method: Method, name: &str, range: std::ops::Range<u64>) -> u64 {
        match method {
            Method::OursDedicated | Method::Std => self.dedicated.read_range(name, range).await,
            Method::OursCallerRuntime => self.on_caller.read_range(name, range).await,
            Method::OpenDal => {
                let buffer = self
                    .opendal
                    .read_with(name)
                    .range(range)
                    .await
                    .expect("read");
                return buffer.len() as u64;
            }
            Method::ObjectStore => {
                let path = object_store::path::Path::from(name);
                let got = self
                    .object_store
                    .get_range(&path, range)
                    .await
                    .expect("get");
                return got.len() as u64;
            }
        }
        .expect("read")
        .len() as u64
    }

    fn write(&self, method: Method) -> u64 {
        let data = self.big.slice(..self.sizes.small as usize);
        if method == Method::Std {
            return std::hint::black_box(data.clone()).len() as u64;
        }
        self.caller.block_on(async {
            match method {
                Method::OursDedicated | Method::Std => {
                    self.dedicated.write("out", data).await.expect("write");
                }
                Method::OursCallerRuntime => {
                    self.on_caller.write("out", data).await.expect("write");
                }
                Method::OpenDal => drop(self.opendal.write("out", data).await.expect("write")),
                Method::ObjectStore => {
                    let path = object_store::path::Path::from("out");
                    drop(
                        self.object_store
                            .put(&path, data.into())
                            .await
                            .expect("put"),
                    );
                }
            }
        });
        self.sizes.small
    }
}
