//! Nothing outside the fs root is ever created, read or deleted; a root given as a
//! URI is the directory the URL names.

use std::collections::BTreeSet;
use std::path::Path;

use storage::{ErrorKind, Operator};

/// Every path under `dir`, for before/after comparisons.
fn snapshot(dir: &Path) -> BTreeSet<String> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            out.insert(format!(
                "{} {}",
                path.strip_prefix(base).unwrap().display(),
                meta.len()
            ));
            if meta.is_dir() {
                walk(&path, base, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

struct Setup {
    _tmp: tempfile::TempDir,
    outside: std::path::PathBuf,
    root: std::path::PathBuf,
    op: storage::BlockingOperator,
}

/// `<tmp>/outside/secret`, `<tmp>/root`, and inside the root symlinks that point
/// out: `escape -> <tmp>/outside` (absolute), `up -> ../outside` (relative), and
/// `file-link -> <tmp>/outside/secret`.
fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    let root = tmp.path().join("root");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), "top secret").unwrap();
    std::fs::create_dir_all(root.join("inside")).unwrap();
    std::fs::write(root.join("inside/file"), "inside").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("escape")).unwrap();
    std::os::unix::fs::symlink("../outside", root.join("up")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), root.join("file-link")).unwrap();
    std::os::unix::fs::symlink("inside/file", root.join("good-link")).unwrap();
    let op = Operator::new(storage::services::Fs::new(&root).unwrap()).blocking();
    Setup {
        _tmp: tmp,
        outside,
        root,
        op,
    }
}

#[test]
fn dotdot_and_nul_are_refused_before_any_io() {
    let s = setup();
    let before = snapshot(s.outside.parent().unwrap());
    for path in [
        "../outside/secret",
        "a/../../outside/secret",
        "inside/../../outside/secret",
        "nul\0byte",
    ] {
        assert_eq!(
            s.op.read(path).unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "{path:?}"
        );
        assert_eq!(
            s.op.write(path, "x").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            s.op.delete(path).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(s.op.stat(path).unwrap_err().kind(), ErrorKind::InvalidInput);
    }
    let err = s.op.read("a/../../x").unwrap_err();
    assert_eq!(err.path(), "a/../../x");
    assert!(err.to_string().contains("escapes the root"), "{err}");
    assert_eq!(snapshot(s.outside.parent().unwrap()), before);
}

#[test]
fn absolute_paths_resolve_inside_the_root() {
    let s = setup();
    assert_eq!(
        s.op.read("/etc/passwd").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    s.op.write("/etc/passwd", "mine").unwrap();
    assert_eq!(
        std::fs::read_to_string(s.root.join("etc/passwd")).unwrap(),
        "mine"
    );
    assert_eq!(s.op.read("/inside/file").unwrap(), "inside");
}

/// Symlinks are followed as if the root were `/`: those that point outside lead to
/// the same path inside the root instead.
#[test]
fn symlinks_never_lead_outside() {
    let s = setup();
    let everything = s.outside.parent().unwrap().to_path_buf();
    let outside_before = snapshot(&s.outside);

    // Reads through outward links find nothing of the outside.
    for path in ["escape/secret", "up/secret", "file-link"] {
        let err = s.op.read(path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{path}: {err}");
    }
    // A link that stays inside works.
    assert_eq!(s.op.read("good-link").unwrap(), "inside");

    // Inside the root, `escape` points at `<root><tmp>/outside`, which does not
    // exist: a write through it fails rather than create anything.
    let err = s.op.write("escape/planted", "x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    // Once that in-root target exists, writes through the links land inside the root.
    let inner_outside = s.root.join(s.outside.strip_prefix("/").unwrap());
    s.op.create_dir(&format!("{}/", s.outside.display()))
        .unwrap();
    assert!(inner_outside.is_dir());
    s.op.create_dir("outside/").unwrap();
    s.op.write("escape/planted", "x").unwrap();
    s.op.write("up/planted", "y").unwrap();
    // Replacing a link replaces the link, not what it points to.
    s.op.write("file-link", "z").unwrap();
    assert_eq!(
        std::fs::read_to_string(inner_outside.join("planted")).unwrap(),
        "x"
    );
    assert_eq!(
        std::fs::read_to_string(s.root.join("outside/planted")).unwrap(),
        "y"
    );
    assert!(!s.outside.join("planted").exists());
    assert_eq!(
        std::fs::read_to_string(s.outside.join("secret")).unwrap(),
        "top secret"
    );

    // Deleting through them removes nothing outside; remove_all removes the link only.
    s.op.delete("escape/secret").unwrap();
    s.op.remove_all("escape/").unwrap();
    s.op.remove_all("up").unwrap();
    s.op.delete("file-link").unwrap();
    assert!(
        std::fs::symlink_metadata(s.root.join("escape")).is_err(),
        "the link itself is gone"
    );
    assert_eq!(
        snapshot(&s.outside),
        outside_before,
        "nothing outside changed"
    );

    // Listing shows links as what they resolve to inside the root and never
    // descends outside.
    std::os::unix::fs::symlink(&everything, s.root.join("loop")).unwrap();
    let listed = s.op.list_recursive("").unwrap();
    assert!(
        listed.iter().all(|e| !e.path().contains("secret")),
        "{listed:?}"
    );
    assert_eq!(snapshot(&s.outside), outside_before);
}

/// A file read through a link that names another file outside the root (the kept
/// files are checked by a plain lookup of the path, which follows links as the
/// real `/` does) is still the one inside the root, read after read, and a new one
/// in its place is seen.
#[test]
fn a_link_that_resolves_elsewhere_outside_the_root_reads_the_file_inside() {
    let s = setup();
    let inner_outside = s.root.join(s.outside.strip_prefix("/").unwrap());
    std::fs::create_dir_all(&inner_outside).unwrap();
    std::fs::write(inner_outside.join("secret"), "inner").unwrap();
    for _ in 0..3 {
        assert_eq!(s.op.read("escape/secret").unwrap(), "inner");
        assert_eq!(s.op.read_range("escape/secret", 1..3).unwrap(), "nn");
        assert_eq!(s.op.read_range("file-link", 0..5).unwrap(), "inner");
    }
    std::fs::rename(inner_outside.join("secret"), inner_outside.join("old")).unwrap();
    std::fs::write(inner_outside.join("secret"), "newer").unwrap();
    assert_eq!(s.op.read_range("escape/secret", 0..5).unwrap(), "newer");
    assert_eq!(s.op.read_range("file-link", 0..5).unwrap(), "newer");
    assert_eq!(
        std::fs::read_to_string(s.outside.join("secret")).unwrap(),
        "top secret"
    );
}

#[test]
fn remove_all_of_the_root_stays_inside() {
    let s = setup();
    let outside_before = snapshot(&s.outside);
    s.op.remove_all("/").unwrap();
    assert!(s.root.exists(), "the root itself stays");
    assert_eq!(std::fs::read_dir(&s.root).unwrap().count(), 0);
    assert_eq!(snapshot(&s.outside), outside_before);
}

/// FIFOs, sockets and devices are no objects: listings leave them out (and links
/// to them; a FIFO and a socket here), as object_store's `LocalFileSystem` does, so that a scan of a
/// directory never opens one and waits. By its path a FIFO is still a file.
#[test]
fn listings_leave_out_fifos_sockets_and_devices() {
    let s = setup();
    let root = &s.root;
    std::fs::create_dir(root.join("d")).unwrap();
    std::fs::write(root.join("d/data.parquet"), "x").unwrap();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        root.join("d/pipe.parquet"),
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(root.join("d/sock")).unwrap();
    std::os::unix::fs::symlink("pipe.parquet", root.join("d/to-pipe")).unwrap();
    for recursive in [false, true] {
        let listed: Vec<String> = if recursive {
            s.op.list_recursive("d/").unwrap()
        } else {
            s.op.list("d/").unwrap()
        }
        .iter()
        .map(|e| e.path().to_owned())
        .collect();
        assert_eq!(listed, ["d/data.parquet"], "recursive: {recursive}");
    }
    assert!(s.op.stat("d/pipe.parquet").unwrap().is_file());
}

/// Read by its path, a FIFO (or a link to one) is refused at once with
/// `Unsupported`, saying what it is: opened as a file it would wait for a writer,
/// and the blocking thread waiting there would hold up the executor's shutdown. A
/// socket, which cannot be opened, is refused the same way.
#[test]
fn a_fifo_read_by_its_path_is_refused_without_waiting() {
    let s = setup();
    let root = s.root.clone();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        root.join("pipe.parquet"),
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    std::os::unix::fs::symlink("pipe.parquet", root.join("to-pipe")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let op = s.op.clone();
    std::thread::spawn(move || {
        let errors = [
            ("read", "FIFO", op.read("pipe.parquet").map(drop)),
            ("read a link", "FIFO", op.read("to-pipe").map(drop)),
            ("reader", "FIFO", op.reader("pipe.parquet").map(drop)),
            ("copy", "FIFO", op.copy("pipe.parquet", "copied")),
            ("read a socket", "socket", op.read("sock").map(drop)),
        ];
        let _ = tx.send(errors);
    });
    // Only so that the test fails rather than hangs if the open waits.
    let errors = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("a read of the FIFO waited for a writer");
    for (what, kind, result) in errors {
        let err = result.expect_err(what);
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{what}: {err}");
        assert!(
            err.to_string()
                .contains(&format!("not a regular file but a {kind}")),
            "{what}: {err}"
        );
    }
    assert!(!root.join("copied").exists());
    // The file itself is untouched, and a writer replaces it as any file.
    assert!(s.op.stat("pipe.parquet").unwrap().is_file());
    s.op.write("pipe.parquet", "now a file").unwrap();
    assert_eq!(s.op.read("pipe.parquet").unwrap(), "now a file");
}

/// A symlink to a directory is that directory to `stat` and `list` (`link/`): named
/// so, `delete` removes the link, as the docs say deleting removes a symlink
/// itself, never its target (it was `NotADirectory`). A link to a file named as a
/// directory is not one.
#[test]
fn deleting_a_linked_directory_removes_the_link_not_its_target() {
    let s = setup();
    let root = &s.root;
    std::fs::create_dir_all(root.join("real")).unwrap();
    std::fs::write(root.join("real/x"), "x").unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::os::unix::fs::symlink("real", root.join("link")).unwrap();
    std::os::unix::fs::symlink("empty", root.join("elink")).unwrap();
    std::os::unix::fs::symlink("real/x", root.join("flink")).unwrap();
    assert!(s.op.stat("link/").unwrap().is_dir());
    s.op.delete("elink/").unwrap();
    s.op.delete("link/").unwrap();
    let err = s.op.delete("flink/").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotADirectory, "{err}");
    for gone in ["link", "elink"] {
        assert!(root.join(gone).symlink_metadata().is_err(), "{gone} stays");
    }
    assert!(root.join("flink").symlink_metadata().is_ok());
    assert!(root.join("empty").is_dir());
    assert_eq!(s.op.read("real/x").unwrap(), "x");
}

/// A symlink that leads nowhere, where a directory has to be made (a write below
/// it, `create_dir`), fails at once saying so (`NotFound`: what it names is not
/// there), where it was 64 attempts to make the directory and then a bare
/// `NotFound`, an odd answer to a create.
#[test]
fn a_dangling_symlink_where_a_directory_is_made_says_so() {
    let s = setup();
    std::os::unix::fs::symlink("nowhere", s.root.join("dl")).unwrap();
    assert!(!s.op.exists("dl").unwrap());
    for err in [
        s.op.create_dir("dl/").unwrap_err(),
        s.op.write("dl/f", "x").unwrap_err(),
        s.op.create_dir("dl/a/b/").unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains("leads nowhere"), "{err}");
    }
    assert!(
        s.root.join("dl").symlink_metadata().is_ok(),
        "the link stays"
    );
}

/// `write_with(path, ..).if_not_exists(true)`.
fn write_new(op: &storage::BlockingOperator, path: &str) -> storage::Result<storage::Metadata> {
    let write = op
        .async_operator()
        .write_with(path, "v")
        .if_not_exists(true);
    futures::executor::block_on(std::future::IntoFuture::into_future(write))
}

/// A symlink whose target is missing (or a loop of links) is not there to `stat`,
/// `exists` and listings. What it still does is said: a write that must not
/// replace anything (`if_not_exists`) finds its name taken and says a symlink has
/// it; a directory that holds only such a link is not deleted, and says what it
/// holds; `delete` of it as a directory (`dl/`), which `stat` finds missing, is
/// fine, and leaves the link (`delete("dl")` removes it).
#[test]
fn a_dangling_symlink_is_named_where_it_still_matters() {
    let s = setup();
    std::os::unix::fs::symlink("nowhere", s.root.join("dl")).unwrap();
    std::os::unix::fs::symlink("lp", s.root.join("lp")).unwrap();
    // Through a file: leads nowhere too.
    std::os::unix::fs::symlink("inside/file/x", s.root.join("tf")).unwrap();
    for name in ["dl", "lp", "tf"] {
        assert!(!s.op.exists(name).unwrap(), "{name}");
        let err = write_new(&s.op, name).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{name}: {err}");
        assert!(
            err.to_string().contains("a symlink has that name"),
            "{name}: {err}"
        );
        assert_eq!(
            s.op.stat(&format!("{name}/")).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        s.op.delete(&format!("{name}/")).unwrap();
        assert!(s.root.join(name).symlink_metadata().is_ok(), "{name} stays");
    }
    // A write onto a file names no symlink.
    s.op.write("plain", "v").unwrap();
    let err = write_new(&s.op, "plain").unwrap_err();
    assert!(!err.to_string().contains("symlink"), "{err}");
    assert_eq!(
        s.op.delete("plain/").unwrap_err().kind(),
        ErrorKind::NotADirectory
    );

    std::fs::create_dir(s.root.join("d")).unwrap();
    std::os::unix::fs::symlink("nowhere", s.root.join("d/l")).unwrap();
    assert!(s.op.list("d/").unwrap().is_empty());
    let err = s.op.delete("d/").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DirectoryNotEmpty, "{err}");
    assert!(
        err.to_string()
            .contains("\"l\" (a symlink whose target is missing)"),
        "{err}"
    );
    s.op.delete("d/l").unwrap();
    s.op.delete("d/").unwrap();
    assert!(!s.root.join("d").exists());
}

/// A recursive listing walks into a symlinked directory, as object_store's
/// `LocalFileSystem` does (a query engine listing a table whose partitions are
/// links would otherwise miss their files), but not into one the walk is already
/// inside (`self -> .`, `real/deeper/up -> ../..`): those are listed, not entered,
/// so a cycle ends. An absolute link leads inside the root; a loop of links, or a
/// link through a file, is skipped.
#[test]
fn a_listing_walks_into_linked_directories_but_never_round_a_cycle() {
    let s = setup();
    let root = &s.root;
    std::fs::create_dir_all(root.join("real/deeper")).unwrap();
    std::fs::write(root.join("real/x"), "x").unwrap();
    std::fs::write(root.join("real/deeper/y"), "y").unwrap();
    std::os::unix::fs::symlink("real", root.join("link")).unwrap();
    std::os::unix::fs::symlink(".", root.join("self")).unwrap();
    std::os::unix::fs::symlink("../..", root.join("real/deeper/up")).unwrap();
    // Absolute: the root is `/`, so this leads to `<root>/real`.
    std::os::unix::fs::symlink("/real", root.join("abs")).unwrap();
    // A loop of links leads nowhere: skipped, as a dangling link is; so is a link
    // whose target passes through a file (`ENOTDIR`).
    std::os::unix::fs::symlink("loopy", root.join("loopy")).unwrap();
    // (Relative to the link's own directory: `real/x/loopy`, below the file.)
    std::os::unix::fs::symlink("x/loopy", root.join("real/loopy-through")).unwrap();
    // Named by its path, it is not found either, saying why.
    for err in [
        s.op.stat("loopy").unwrap_err(),
        s.op.read("loopy").unwrap_err(),
        s.op.stat("loopy/x").unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains("loop of symbolic links"), "{err}");
    }
    assert!(!s.op.exists("loopy").unwrap());

    let listed: BTreeSet<String> =
        s.op.list_recursive("")
            .unwrap()
            .iter()
            .map(|e| e.path().to_owned())
            .collect();
    for want in [
        "real/x",
        "real/deeper/y",
        "link/",
        "link/x",
        "link/deeper/y",
        "self/",
        "real/deeper/up/",
        "link/deeper/up/",
        "abs/x",
        "abs/deeper/y",
    ] {
        assert!(listed.contains(want), "{want} missing from {listed:?}");
    }
    for cycle in [
        "self/real/x",
        "real/deeper/up/real/x",
        "link/deeper/up/link/x",
    ] {
        assert!(!listed.contains(cycle), "{cycle} in {listed:?}");
    }
    assert!(
        listed
            .iter()
            .all(|p| !p.contains("secret") && !p.contains("loopy")),
        "nothing outside the root, no loop of links: {listed:?}"
    );
    // What the listing shows can be read by its name.
    assert_eq!(s.op.read("link/deeper/y").unwrap(), "y");
    // One level: the link is a directory, not walked into.
    let top: BTreeSet<String> =
        s.op.list("")
            .unwrap()
            .iter()
            .map(|e| e.path().to_owned())
            .collect();
    assert!(top.contains("link/") && !top.contains("link/x"), "{top:?}");
    // Removing a tree removes its links, never what they lead to.
    std::fs::create_dir(root.join("holder")).unwrap();
    std::os::unix::fs::symlink("../real", root.join("holder/l")).unwrap();
    s.op.remove_all("holder/").unwrap();
    assert!(!root.join("holder").exists());
    assert_eq!(s.op.read("real/deeper/y").unwrap(), "y");
    assert_eq!(s.op.read("link/x").unwrap(), "x");
}

/// A URI's path is percent-encoded, as object_store, DataFusion and
/// `dio_parquet::register` read a table's URL: `fs:///data/ware%20house` is the
/// directory `ware house`; `file://localhost/p` is `file:///p`.
#[test]
fn a_root_uri_is_percent_decoded() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_str().unwrap();
    for (uri, dir) in [
        (format!("fs://{base}/ware%20house"), "ware house"),
        (format!("file://{base}/100%25"), "100%"),
        (format!("file://localhost{base}/plain"), "plain"),
        // Not an escape: left as it is.
        (format!("fs://{base}/50%"), "50%"),
        (format!("fs://{base}/what%3F%23"), "what?#"),
    ] {
        let op = Operator::from_uri(&uri).unwrap().blocking();
        op.write("t", &b"x"[..]).unwrap();
        assert_eq!(
            std::fs::read(tmp.path().join(dir).join("t")).unwrap(),
            b"x",
            "{uri}"
        );
    }
    let err = Operator::from_uri("file://otherhost/p").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    // A query (S3's options, say) or a fragment is refused, not made part of the
    // root's name.
    for uri in [
        format!("fs://{base}/q?write_checks=false"),
        format!("file://{base}/f#part"),
    ] {
        let err = Operator::from_uri(&uri).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{uri}: {err}");
        assert!(err.to_string().contains("no query"), "{err}");
    }
    let made: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with('q') || name.starts_with('f'))
        .collect();
    assert!(made.is_empty(), "{made:?}");
}

/// A symlink is read and copied as the file it leads to, and renamed as that too,
/// as an object store renames (copy, then remove the source): the content lands at
/// the new name and the link goes. Moved as a link, a relative one would break,
/// and onto its own target it replaced the only copy with a link to itself.
#[test]
fn renaming_a_symlink_renames_what_it_leads_to_and_loses_nothing() {
    let s = setup();
    // Onto its own target: the data stays, the link goes.
    s.op.write("data", "precious").unwrap();
    std::os::unix::fs::symlink("data", s.root.join("link")).unwrap();
    s.op.rename("link", "data").unwrap();
    assert_eq!(s.op.read("data").unwrap(), "precious");
    assert!(!s.root.join("link").exists() && s.root.join("link").symlink_metadata().is_err());
    // A relative link into another directory: the content arrives.
    std::fs::create_dir_all(s.root.join("a")).unwrap();
    s.op.write("a/v3", "version 3").unwrap();
    std::os::unix::fs::symlink("v3", s.root.join("a/cur")).unwrap();
    s.op.rename("a/cur", "b/cur").unwrap();
    assert_eq!(s.op.read("b/cur").unwrap(), "version 3");
    assert_eq!(s.op.read("a/v3").unwrap(), "version 3", "the target stays");
    assert!(
        s.root.join("a/cur").symlink_metadata().is_err(),
        "the link goes"
    );
    // A link that leads nowhere (outside the root is nowhere) is not found, as a
    // read of it is; a link to a directory is refused, as a directory is.
    assert_eq!(
        s.op.rename("file-link", "x").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    std::os::unix::fs::symlink("inside", s.root.join("dir-link")).unwrap();
    assert_eq!(
        s.op.rename("dir-link", "x").unwrap_err().kind(),
        ErrorKind::IsADirectory
    );
    // Onto a directory: refused, as any rename there is.
    let e = s.op.rename("good-link", "inside").unwrap_err();
    assert_eq!(
        (e.kind(), e.path()),
        (ErrorKind::IsADirectory, "inside"),
        "{e}"
    );
    assert!(s.root.join("file-link").symlink_metadata().is_ok());
    assert!(s.root.join("dir-link").symlink_metadata().is_ok());
    assert!(s.root.join("good-link").symlink_metadata().is_ok());
}

/// A symlink to a directory is that directory to a write, a writer, a copy and
/// a rename onto it, as it is to `stat` and `read`: `IsADirectory`, naming it,
/// and the link and what it leads to are left as they were (a partition linked
/// into a table does not vanish from its listing). A link to a file, or one
/// leading nowhere, is replaced by the new file, as documented.
#[test]
fn a_write_onto_a_link_to_a_directory_is_refused() {
    let s = setup();
    s.op.write("real/part=1/f", "data").unwrap();
    s.op.write("src", "new").unwrap();
    std::fs::create_dir_all(s.root.join("table")).unwrap();
    std::os::unix::fs::symlink("../real/part=1", s.root.join("table/part=1")).unwrap();
    assert!(s.op.stat("table/part=1").unwrap().is_dir());
    let refused = [
        s.op.write("table/part=1", "x").map(drop),
        s.op.writer("table/part=1").map(drop),
        s.op.copy("src", "table/part=1"),
        s.op.rename("src", "table/part=1"),
    ];
    for (i, result) in refused.into_iter().enumerate() {
        let err = result.unwrap_err();
        assert_eq!(
            (err.kind(), err.path()),
            (ErrorKind::IsADirectory, "table/part=1"),
            "{i}: {err}"
        );
    }
    assert!(
        s.root
            .join("table/part=1")
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let listed: Vec<String> =
        s.op.list("table/part=1/")
            .unwrap()
            .into_iter()
            .map(|e| e.path().to_owned())
            .collect();
    assert_eq!(listed, ["table/part=1/f"]);
    assert_eq!(s.op.read("src").unwrap(), "new", "the source stays");
    // A link that leads nowhere is replaced.
    std::os::unix::fs::symlink("../real/none", s.root.join("table/part=2")).unwrap();
    s.op.write("table/part=2", "x").unwrap();
    assert_eq!(s.op.read("table/part=2").unwrap(), "x");
}

/// Two names of one file (hard links): a rename of one onto the other leaves one
/// name, as on memory and S3 (rename(2) alone would leave both). A file renamed
/// onto itself, by any path, is left as it is.
#[test]
fn renaming_a_hard_link_onto_its_twin_leaves_one_name() {
    let s = setup();
    s.op.write("a", "shared").unwrap();
    std::fs::hard_link(s.root.join("a"), s.root.join("b")).unwrap();
    s.op.rename("a", "b").unwrap();
    assert!(!s.root.join("a").exists(), "the source goes");
    assert_eq!(s.op.read("b").unwrap(), "shared");
    // Onto itself, through a linked directory: the same entry, nothing to do.
    std::os::unix::fs::symlink("inside", s.root.join("via")).unwrap();
    s.op.rename("via/file", "inside/file").unwrap();
    assert_eq!(s.op.read("inside/file").unwrap(), "inside");
    s.op.rename("inside/file", "inside/file").unwrap();
    assert_eq!(s.op.read("inside/file").unwrap(), "inside");
}

/// A name longer than the filesystem holds (255 bytes) is refused when the
/// writer opens, before any data is written, where it was found only at the
/// commit; nothing is left behind.
#[test]
fn a_name_too_long_is_refused_when_the_writer_opens() {
    let dir = tempfile::tempdir().unwrap();
    let op = Operator::new(storage::services::Fs::new(dir.path()).unwrap());
    let long = "n".repeat(300);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let err = op.writer(&long).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert_eq!(err.path(), long, "{err}");
        let err = op.write(&format!("d/{long}"), "x").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    });
    let left: Vec<_> = std::fs::read_dir(dir.path().join("d"))
        .map(|entries| entries.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

/// A tree made deeper than a path may be (below the root, a name at a time) is
/// never listed under paths no call takes: a file whose path would be too long
/// fails the listing, saying so, in a listing of its directory and in a
/// recursive one, as a directory too deep to walk into does.
#[test]
fn a_file_whose_path_is_too_long_fails_the_listing() {
    use rustix::fs::{CWD, Mode, OFlags, mkdirat, openat};
    let s = setup();
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut dir = openat(CWD, &s.root, flags, Mode::empty()).unwrap();
    let mut path = String::new();
    for name in std::iter::once("deep".to_owned()).chain((0..16).map(|_| "n".repeat(254))) {
        mkdirat(&dir, &name, Mode::from(0o755)).unwrap();
        dir = openat(&dir, &name, flags, Mode::empty()).unwrap();
        path.push_str(&name);
        path.push('/');
    }
    let name = "f".repeat(storage::raw::MAX_PATH_LEN + 1 - path.len());
    let file = OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC;
    drop(openat(&dir, &name, file, Mode::from(0o644)).unwrap());
    assert!(path.len() <= storage::raw::MAX_PATH_LEN);
    for listed in [s.op.list(&path), s.op.list_recursive("deep/")] {
        let err = listed.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("bytes long"), "{err}");
    }
}
