//! A read that blocks (opening a FIFO waits for a writer) blocks an executor thread,
//! never the caller's: a current-thread caller runtime stays free to run the task
//! that writes to the FIFO, so the read completes. Were the open to run on the
//! caller's thread, the writer could never run and the read would hang.

mod common;

use std::time::Duration;

use dio_object_store::IoObjectStore;
use object_store::ObjectStoreExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use rustix::fs::{CWD, FileType, Mode, OFlags};
use rustix::io::Errno;

#[test]
fn a_fifo_read_completes_while_the_callers_runtime_runs_its_writer() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    rustix::fs::mknodat(CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
    let store = IoObjectStore::new(
        LocalFileSystem::new_with_prefix(dir.path()).unwrap(),
        common::executor("fifo-io"),
    );

    common::caller_runtime().block_on(async {
        // Same runtime, same (only) thread as the read below.
        let writer = tokio::spawn(async move {
            // A non-blocking open for writing fails (ENXIO) until a reader has the
            // FIFO open: then the read is waiting, off this thread.
            let fd = loop {
                match rustix::fs::open(&fifo, OFlags::WRONLY | OFlags::NONBLOCK, Mode::empty()) {
                    Ok(fd) => break fd,
                    Err(Errno::NXIO) => tokio::time::sleep(Duration::from_millis(1)).await,
                    Err(e) => panic!("open the FIFO for writing: {e}"),
                }
            };
            // The reader may already be done (a FIFO's size is 0): ignore EPIPE.
            let _ = rustix::io::write(&fd, b"written later");
        });

        let read = common::guarded("the FIFO read (it ran on the caller's thread?)", async {
            store.get(&Path::from("pipe")).await?.bytes().await
        })
        .await;
        // `stat` reports a FIFO as empty, so the object is: what matters is that the
        // blocking open ran off this thread and returned.
        assert_eq!(read.unwrap().len(), 0);
        writer.await.unwrap();
    });
}
