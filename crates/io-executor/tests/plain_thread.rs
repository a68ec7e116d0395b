//! Handles can be awaited from anywhere: no tokio needed on the caller's side.

mod common;

use common::{pool, within};

#[test]
fn handles_resolve_under_futures_block_on() {
    within(30, || {
        let executor = pool("plain", 2, 2);
        let a = executor.spawn(async {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            "async"
        });
        let b = executor.spawn_blocking(|| "blocking");
        assert_eq!(futures::executor::block_on(a).unwrap(), "async");
        assert_eq!(futures::executor::block_on(b).unwrap(), "blocking");
    });
}

#[test]
fn handles_resolve_under_a_multi_thread_runtime_and_join() {
    within(30, || {
        let executor = pool("plain-mt", 2, 2);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let ex = executor.clone();
        let sum: u64 = rt.block_on(async move {
            let handles: Vec<_> = (0..64_u64).map(|i| ex.spawn(async move { i })).collect();
            let mut sum = 0;
            for h in handles {
                sum += h.await.unwrap();
            }
            sum
        });
        assert_eq!(sum, (0..64).sum());
        // And a sync caller.
        assert_eq!(executor.spawn(async { 5 }).join().unwrap(), 5);
        // Joins and awaits work from a thread the pool never heard of.
        let ex = executor.clone();
        let from_thread = std::thread::spawn(move || ex.spawn_blocking(|| 9).join().unwrap());
        assert_eq!(from_thread.join().unwrap(), 9);
    });
}

/// The job's timers and IO use the worker's runtime, so they work even when the
/// caller has no runtime at all.
#[test]
fn jobs_have_io_and_time_drivers() {
    within(30, || {
        let executor = pool("drivers", 1, 1);
        let echoed = executor
            .spawn(async {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let server = tokio::spawn(async move {
                    let (mut socket, _) = listener.accept().await.unwrap();
                    let mut buf = [0; 5];
                    socket.read_exact(&mut buf).await.unwrap();
                    socket.write_all(&buf).await.unwrap();
                });
                let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
                client.write_all(b"hello").await.unwrap();
                let mut buf = [0; 5];
                client.read_exact(&mut buf).await.unwrap();
                server.await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                buf
            })
            .join()
            .unwrap();
        assert_eq!(&echoed, b"hello");
    });
}

/// An `Executor` held in a thread-local is dropped as its thread exits, perhaps
/// after the executor's own thread-locals on that thread are gone: a job it submits
/// and joins then is run (or refused, after a shutdown), and the process lives on.
/// (Reading a destroyed thread-local panics, which in a destructor aborts.)
#[test]
fn a_thread_locals_destructor_may_submit_and_join() {
    use std::cell::RefCell;
    use std::sync::mpsc;

    struct OnExit(io_executor::Executor, mpsc::Sender<Result<u32, bool>>);
    impl Drop for OnExit {
        fn drop(&mut self) {
            let joined = self.0.spawn_blocking(|| 7).join();
            let _ = self.1.send(joined.map_err(|e| e.is_shutdown()));
        }
    }
    thread_local! {
        static ON_EXIT: RefCell<Option<OnExit>> = const { RefCell::new(None) };
    }
    within(30, || {
        for shut_down in [false, true] {
            let executor = pool("plain-tls", 1, 1);
            let (tx, rx) = mpsc::channel();
            let on_thread = executor.clone();
            std::thread::spawn(move || {
                // Set first, so destroyed last: after whatever the calls below set.
                ON_EXIT.with(|late| *late.borrow_mut() = Some(OnExit(on_thread.clone(), tx)));
                assert_eq!(on_thread.spawn_blocking(|| 1).join().unwrap(), 1);
                if shut_down {
                    on_thread.shutdown();
                    assert!(!on_thread.accepts_jobs());
                }
            })
            .join()
            .unwrap();
            let expected = if shut_down { Err(true) } else { Ok(7) };
            assert_eq!(rx.recv().unwrap(), expected, "shut down: {shut_down}");
            executor.blocking_join();
        }
    });
}
