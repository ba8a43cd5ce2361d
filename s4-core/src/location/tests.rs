//! Tests of the locations service: a hostile-path corpus against every operation
//! (with a byte-for-byte check that a sentinel directory outside the root is
//! untouched), a symlink-swapping race, and the functional round trips.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tempfile::TempDir;

use super::*;

// ---------------------------------------------------------------- fixtures

struct Fixture {
    _tmp: TempDir,
    root: PathBuf,
    outside: PathBuf,
    locations: Locations,
}

impl Fixture {
    async fn new() -> Self {
        Self::with(|c| c).await
    }

    /// A location `local-0` at `<tmp>/root`, and a sentinel tree at `<tmp>/outside`.
    async fn with(configure: impl FnOnce(LocationsConfig) -> LocationsConfig) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = tmp.path().canonicalize().expect("canonical tempdir");
        let root = base.join("root");
        let outside = base.join("outside");
        fs::create_dir_all(root.join("data/sub")).expect("mkdir");
        fs::write(root.join("data/file.txt"), b"hello world").expect("write");
        fs::create_dir_all(outside.join("sub")).expect("mkdir");
        fs::write(outside.join("secret.txt"), b"TOP SECRET").expect("write");
        fs::write(outside.join("outside-only.txt"), b"outside").expect("write");
        fs::write(outside.join("sub/inner.bin"), [0u8, 1, 2, 3]).expect("write");
        symlink(outside.join("secret.txt"), root.join("evil.txt")).expect("symlink");
        symlink(&outside, root.join("evil_dir")).expect("symlink");
        symlink("../outside/secret.txt", root.join("evil_rel.txt")).expect("symlink");
        symlink("../../outside", root.join("data/evil_up")).expect("symlink");
        let config = configure(LocationsConfig::default().with_paths([root.clone()]));
        let locations = Locations::new(config).await;
        Self {
            _tmp: tmp,
            root,
            outside,
            locations,
        }
    }

    fn temp_files(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).expect("read_dir").flatten() {
                let path = entry.path();
                let ft = entry.file_type().expect("file type");
                if ft.is_dir() {
                    stack.push(path.clone());
                }
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".s4-upload-")
                {
                    found.push(path);
                }
            }
        }
        found
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Snap {
    Dir,
    File(Vec<u8>, std::time::SystemTime),
    Link(PathBuf),
}

/// Everything under `dir`: type, bytes and mtime of files, link texts.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Snap> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in fs::read_dir(&current).expect("read_dir").flatten() {
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).expect("lstat");
            let rel = path.strip_prefix(dir).expect("under dir").to_path_buf();
            let snap = if meta.is_symlink() {
                Snap::Link(fs::read_link(&path).expect("readlink"))
            } else if meta.is_dir() {
                stack.push(path.clone());
                Snap::Dir
            } else {
                Snap::File(
                    fs::read(&path).expect("read"),
                    meta.modified().expect("mtime"),
                )
            };
            out.insert(rel, snap);
        }
    }
    out
}

fn body(chunks: &[&[u8]]) -> impl Stream<Item = Result<Bytes>> + Send + 'static {
    let chunks: Vec<Result<Bytes>> = chunks
        .iter()
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks)
}

async fn read_all(stream: FileStream) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut body = stream.body;
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

async fn write(f: &Fixture, path: &str, data: &[u8]) -> Result<u64> {
    f.locations
        .write_file("local-0", path, body(&[data]), WriteOptions::default())
        .await
}

#[track_caller]
fn assert_forbidden<T: std::fmt::Debug>(result: Result<T>, what: &str) {
    let err = result.expect_err(what);
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{what}: {err:?}");
    assert_eq!(err.code(), Some(FORBIDDEN), "{what}: {err:?}");
}

#[track_caller]
fn assert_kind<T: std::fmt::Debug>(result: Result<T>, kind: ErrorKind, what: &str) -> Error {
    let err = result.expect_err(what);
    assert_eq!(err.kind(), kind, "{what}: {err:?}");
    err
}

/// Every operation on `path` (and on a child of it for the writing ones) must be
/// refused with 403 `Forbidden`.
async fn all_forbidden(f: &Fixture, path: &str) {
    let l = &f.locations;
    let child = format!("{path}/new.txt");
    assert_forbidden(
        l.list_dir("local-0", path, None, 0).await,
        &format!("list {path:?}"),
    );
    assert_forbidden(l.stat("local-0", path).await, &format!("stat {path:?}"));
    assert_forbidden(
        l.open_read("local-0", path, None).await,
        &format!("open_read {path:?}"),
    );
    assert_forbidden(
        l.read_prefix("local-0", path, 16).await,
        &format!("read_prefix {path:?}"),
    );
    assert_forbidden(write(f, path, b"x").await, &format!("write {path:?}"));
    assert_forbidden(write(f, &child, b"x").await, &format!("write {child:?}"));
    assert_forbidden(
        l.prepare_upload("local-0", &child).await,
        &format!("prepare {child:?}"),
    );
    assert_forbidden(
        l.create_dir("local-0", path).await,
        &format!("mkdir {path:?}"),
    );
    assert_forbidden(
        l.create_dir("local-0", &format!("{path}/newdir")).await,
        &format!("mkdir {path:?}/newdir"),
    );
    assert_forbidden(l.delete("local-0", path).await, &format!("delete {path:?}"));
}

// ---------------------------------------------------------------- path safety

#[tokio::test]
async fn hostile_paths_are_refused_and_outside_is_untouched() {
    let f = Fixture::new().await;
    let before = snapshot(&f.outside);
    let outside_abs = f.outside.to_string_lossy().into_owned();
    let deep = format!(
        "{}{}/secret.txt",
        "../".repeat(40),
        outside_abs.trim_start_matches('/')
    );
    let hostile = [
        "..".to_string(),
        "../".to_string(),
        "../outside".to_string(),
        "../outside/secret.txt".to_string(),
        "a/../../x".to_string(),
        "data/../../outside/secret.txt".to_string(),
        "data/sub/../../..".to_string(),
        deep,
        format!("{outside_abs}/secret.txt"),
        outside_abs.clone(),
        "/etc/passwd".to_string(),
        "//etc".to_string(),
        "data\0/file.txt".to_string(),
        "data/file.txt\0".to_string(),
        "..\\outside\\secret.txt".to_string(),
        "data\\file.txt".to_string(),
        // Symlinks leading outside: absolute and relative, file and directory.
        "evil.txt".to_string(),
        "evil_rel.txt".to_string(),
        "evil_dir".to_string(),
        "evil_dir/secret.txt".to_string(),
        "evil_dir/sub".to_string(),
        "evil_dir/sub/inner.bin".to_string(),
        "data/evil_up".to_string(),
        "data/evil_up/secret.txt".to_string(),
    ];
    for path in &hostile {
        all_forbidden(&f, path).await;
    }
    // The root-level messages of §7.3.
    let l = &f.locations;
    let msg = |r: Result<DirListing>| r.expect_err("refused").message().to_string();
    assert_eq!(
        msg(l.list_dir("local-0", "a\\b", None, 0).await),
        "Backslash characters not allowed in paths"
    );
    assert_eq!(
        msg(l.list_dir("local-0", "a\0b", None, 0).await),
        "Null bytes not allowed in paths"
    );
    assert_eq!(
        msg(l.list_dir("local-0", "/etc", None, 0).await),
        "Absolute paths not allowed: /etc"
    );
    assert_eq!(
        msg(l.list_dir("local-0", "a/../../x", None, 0).await),
        "Path escapes allowed directory: a/../../x"
    );
    assert_eq!(
        msg(l.list_dir("local-0", "evil_dir", None, 0).await),
        "Path escapes allowed directory: evil_dir"
    );
    // Nothing was created for the refused writes either.
    assert!(!f.root.join("x").exists());
    assert!(f.temp_files().is_empty());
    assert_eq!(snapshot(&f.outside), before, "the outside tree changed");
}

#[tokio::test]
async fn percent_encoded_dots_are_literal_names() {
    let f = Fixture::new().await;
    let before = snapshot(&f.outside);
    let l = &f.locations;
    let err = assert_kind(
        l.list_dir("local-0", "%2e%2e/%2e%2e/outside", None, 0)
            .await,
        ErrorKind::NotFound,
        "list %2e%2e",
    );
    assert_eq!(err.message(), "Parent directory not found: %2e%2e/%2e%2e");
    assert_kind(
        l.open_read("local-0", "%2e%2e/outside/secret.txt", None)
            .await,
        ErrorKind::NotFound,
        "read %2e%2e",
    );
    assert_kind(
        l.delete("local-0", "%2e%2e").await,
        ErrorKind::NotFound,
        "delete %2e%2e",
    );
    // Writing creates a directory literally named `%2e%2e` inside the root.
    assert_eq!(
        write(&f, "%2e%2e/%2e%2e/secret.txt", b"inside").await.ok(),
        Some(6)
    );
    assert_eq!(
        fs::read(f.root.join("%2e%2e/%2e%2e/secret.txt"))
            .ok()
            .as_deref(),
        Some(&b"inside"[..])
    );
    let listing = l
        .list_dir("local-0", "%2e%2e", None, 0)
        .await
        .expect("list");
    assert_eq!(listing.files[0].path, "%2e%2e/%2e%2e");
    assert_eq!(l.delete("local-0", "%2e%2e").await.ok(), Some(3));
    assert_eq!(snapshot(&f.outside), before);
}

#[tokio::test]
async fn directory_swapped_for_outside_symlink_between_calls() {
    let f = Fixture::new().await;
    let before = snapshot(&f.outside);
    let l = &f.locations;
    fs::create_dir(f.root.join("swap")).expect("mkdir");
    fs::write(f.root.join("swap/secret.txt"), b"inside").expect("write");
    let listing = l.list_dir("local-0", "swap", None, 0).await.expect("list");
    assert_eq!(listing.total_count, 1);
    let stream = l
        .open_read("local-0", "swap/secret.txt", None)
        .await
        .expect("open");
    assert_eq!(read_all(stream).await.ok().as_deref(), Some(&b"inside"[..]));

    // Swap the directory for a symlink to the outside tree.
    fs::rename(f.root.join("swap"), f.root.join("swap-old")).expect("rename");
    symlink(&f.outside, f.root.join("swap")).expect("symlink");

    for path in ["swap", "swap/secret.txt", "swap/sub", "swap/sub/inner.bin"] {
        all_forbidden(&f, path).await;
    }
    assert_eq!(snapshot(&f.outside), before);
}

#[tokio::test]
async fn delete_never_follows_symlinks() {
    let f = Fixture::new().await;
    let before = snapshot(&f.outside);
    let l = &f.locations;
    // A tree holding a link to the outside directory, a link to an outside file, and a
    // link to a directory inside the root.
    fs::create_dir_all(f.root.join("tree/deep")).expect("mkdir");
    fs::write(f.root.join("tree/deep/a.txt"), b"aaa").expect("write");
    symlink(&f.outside, f.root.join("tree/out_dir")).expect("symlink");
    symlink(
        f.outside.join("secret.txt"),
        f.root.join("tree/deep/out_file"),
    )
    .expect("symlink");
    symlink("../data", f.root.join("tree/data_link")).expect("symlink");
    // tree: deep, deep/a.txt, deep/out_file, out_dir, data_link = 5 entries + itself.
    assert_eq!(l.delete("local-0", "tree").await.ok(), Some(6));
    assert!(!f.root.join("tree").exists());
    assert!(
        f.root.join("data/file.txt").exists(),
        "link target inside must stay"
    );
    assert_eq!(snapshot(&f.outside), before);

    // A top-level link inside the root is removed as a link.
    symlink("data", f.root.join("data_link")).expect("symlink");
    assert_eq!(l.delete("local-0", "data_link").await.ok(), Some(1));
    assert!(f.root.join("data/file.txt").exists());
    // A dangling link can be removed.
    symlink("nowhere", f.root.join("dangling")).expect("symlink");
    assert_eq!(l.delete("local-0", "dangling").await.ok(), Some(1));
    assert!(fs::symlink_metadata(f.root.join("dangling")).is_err());
}

#[tokio::test]
async fn symlinks_inside_the_root_are_followed_for_reads() {
    let f = Fixture::new().await;
    let l = &f.locations;
    symlink("data/file.txt", f.root.join("link.txt")).expect("symlink");
    symlink("../file.txt", f.root.join("data/sub/up.txt")).expect("symlink");
    symlink("data", f.root.join("data_link")).expect("symlink");
    symlink("missing.txt", f.root.join("dangling.txt")).expect("symlink");
    // An absolute link is refused even when it points inside (the sandbox cannot tell).
    symlink(f.root.join("data/file.txt"), f.root.join("abs_inside.txt")).expect("symlink");

    let stream = l
        .open_read("local-0", "link.txt", None)
        .await
        .expect("open");
    assert_eq!(
        read_all(stream).await.ok().as_deref(),
        Some(&b"hello world"[..])
    );
    let stream = l
        .open_read("local-0", "data/sub/up.txt", None)
        .await
        .expect("open");
    assert_eq!(stream.size, 11);
    let stream = l
        .open_read("local-0", "data_link/file.txt", None)
        .await
        .expect("open");
    assert_eq!(
        read_all(stream).await.ok().as_deref(),
        Some(&b"hello world"[..])
    );
    let listing = l
        .list_dir("local-0", "data_link", None, 0)
        .await
        .expect("list");
    assert_eq!(listing.current_path, "data_link");
    assert!(listing.files.iter().any(|e| e.path == "data_link/file.txt"));

    let entry = l.stat("local-0", "link.txt").await.expect("stat");
    assert_eq!(entry.kind, EntryKind::Symlink);
    assert_eq!(entry.size, Some(11));
    assert_eq!(entry.target.as_deref(), Some("data/file.txt"));

    let root = l.list_dir("local-0", "", None, 0).await.expect("list root");
    let names: Vec<&str> = root.files.iter().map(|e| e.name.as_str()).collect();
    // Directories first (data, data_link is a symlink so it is not a directory entry).
    assert_eq!(names, vec!["data", "data_link", "link.txt"]);
    let link = &root.files[2];
    assert_eq!(
        (link.kind, link.size, link.target.as_deref()),
        (EntryKind::Symlink, Some(11), Some("data/file.txt"))
    );
    let sub = l
        .list_dir("local-0", "data/sub", None, 0)
        .await
        .expect("list sub");
    assert_eq!(
        sub.files.len(),
        1,
        "a link to ../file.txt stays inside the root"
    );
    assert_eq!(sub.files[0].size, Some(11));

    assert_kind(
        l.stat("local-0", "dangling.txt").await,
        ErrorKind::NotFound,
        "dangling",
    );
    assert_forbidden(l.stat("local-0", "abs_inside.txt").await, "absolute link");
}

/// A symlink is retargeted between the inside and the outside as fast as possible
/// while every operation runs through it: nothing may ever reach the outside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlink_swapping_race_never_escapes() {
    let f = Fixture::new().await;
    fs::create_dir(f.root.join("real")).expect("mkdir");
    fs::write(f.root.join("real/secret.txt"), b"inside").expect("write");
    symlink("real", f.root.join("flip")).expect("symlink");
    let before = snapshot(&f.outside);

    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let stop = Arc::clone(&stop);
        let root = f.root.clone();
        let outside = f.outside.clone();
        std::thread::spawn(move || {
            let mut flips = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let target: &Path = if flips.is_multiple_of(2) {
                    &outside
                } else {
                    Path::new("real")
                };
                let tmp = root.join("flip.tmp");
                let _ = fs::remove_file(&tmp);
                if symlink(target, &tmp).is_ok() {
                    let _ = fs::rename(&tmp, root.join("flip"));
                }
                flips += 1;
            }
            flips
        })
    };

    let l = &f.locations;
    for i in 0..150 {
        if let Ok(stream) = l.open_read("local-0", "flip/secret.txt", None).await {
            assert_eq!(read_all(stream).await.ok().as_deref(), Some(&b"inside"[..]));
        }
        if let Ok(bytes) = l.read_prefix("local-0", "flip/secret.txt", 64).await {
            assert_eq!(&bytes[..], b"inside");
        }
        if let Ok(listing) = l.list_dir("local-0", "flip", None, 0).await {
            assert!(listing.files.iter().all(|e| e.name != "outside-only.txt"));
        }
        if let Ok(entry) = l.stat("local-0", "flip/outside-only.txt").await {
            panic!("stat reached the outside: {entry:?}");
        }
        let name = format!("flip/new-{i}.txt");
        if write(&f, &name, b"new").await.is_ok() {
            let _ = l.delete("local-0", &name).await;
        }
        let _ = l.create_dir("local-0", &format!("flip/dir-{i}")).await;
        let _ = l.delete("local-0", "flip/outside-only.txt").await;
        let _ = l.delete("local-0", "flip/sub").await;
    }
    stop.store(true, Ordering::Relaxed);
    let flips = flipper.join().expect("flipper thread");
    assert!(flips > 0);
    assert_eq!(
        snapshot(&f.outside),
        before,
        "the race reached the outside tree"
    );
    assert_eq!(
        fs::read(f.root.join("real/secret.txt")).ok().as_deref(),
        Some(&b"inside"[..])
    );
}

#[tokio::test]
async fn location_ids_are_checked_first() {
    let f = Fixture::new().await;
    let l = &f.locations;
    let err = assert_kind(
        l.stat("local-x", "../..").await,
        ErrorKind::NotFound,
        "bad id",
    );
    assert_eq!(err.message(), "Invalid location ID: local-x");
    let err = assert_kind(
        l.list_dir("local-1", "", None, 0).await,
        ErrorKind::NotFound,
        "oob",
    );
    assert_eq!(err.message(), "Location index out of bounds: 1");
    assert_kind(l.delete("0", "a").await, ErrorKind::NotFound, "bad id");
    assert_kind(l.quota_usage("local-9"), ErrorKind::NotFound, "quota id");
    // Upload: an empty path is reported before the location id (§17.3 step 2).
    let err = assert_kind(
        l.prepare_upload("nope", "").await,
        ErrorKind::InvalidInput,
        "empty",
    );
    assert_eq!(err.message(), "File path is required");
}

#[tokio::test]
async fn permission_denied_is_not_forbidden() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new().await;
    let locked = f.root.join("locked");
    fs::create_dir(&locked).expect("mkdir");
    fs::write(locked.join("x.txt"), b"x").expect("write");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).expect("chmod");
    if fs::read_dir(&locked).is_ok() {
        // Running with CAP_DAC_OVERRIDE (root): permissions are not enforced.
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).expect("chmod");
        return;
    }
    let err = assert_kind(
        f.locations.list_dir("local-0", "locked", None, 0).await,
        ErrorKind::PermissionDenied,
        "list locked",
    );
    assert_eq!(err.code(), None);
    let err = assert_kind(
        f.locations.open_read("local-0", "locked/x.txt", None).await,
        ErrorKind::PermissionDenied,
        "read locked",
    );
    assert_eq!(err.code(), None);
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).expect("chmod");
}

// ---------------------------------------------------------------- locations

#[tokio::test]
async fn lists_locations_and_tolerates_missing_roots() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    fs::create_dir(&data).expect("mkdir");
    let linked = tmp.path().join("linked");
    symlink(&data, &linked).expect("symlink");
    let missing = tmp.path().join("later");
    let l = Locations::new(LocationsConfig::default().with_paths([
        data.clone(),
        missing.clone(),
        linked.clone(),
        PathBuf::from("/"),
    ]))
    .await;
    let infos = l.list_locations().await;
    let summary: Vec<(&str, &str, bool)> = infos
        .iter()
        .map(|i| (i.id.as_str(), i.name.as_str(), i.available))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("local-0", "data", true),
            ("local-1", "later", false),
            ("local-2", "linked", true),
            ("local-3", "/", true),
        ]
    );
    assert_eq!(infos[0].path, data.to_string_lossy());
    assert!(!infos[1].available);

    // A missing root is NotFound, and is picked up once it appears.
    let err = assert_kind(
        l.list_dir("local-1", "", None, 0).await,
        ErrorKind::NotFound,
        "missing",
    );
    assert_eq!(err.message(), "Storage location not available: local-1");
    fs::create_dir(&missing).expect("mkdir");
    fs::write(missing.join("a.txt"), b"a").expect("write");
    assert_eq!(
        l.list_dir("local-1", "", None, 0)
            .await
            .map(|d| d.total_count)
            .ok(),
        Some(1)
    );
    // A root that is itself a symlink works.
    fs::write(data.join("b.txt"), b"b").expect("write");
    assert_eq!(
        l.stat("local-2", "b.txt").await.map(|e| e.size).ok(),
        Some(Some(1))
    );
}

#[tokio::test]
async fn disabled_when_no_paths() {
    let l = Locations::new(LocationsConfig::from_lookup(&|_| None)).await;
    assert!(l.is_empty());
    assert!(l.list_locations().await.is_empty());
    let err = assert_kind(
        l.list_dir("local-0", "", None, 0).await,
        ErrorKind::NotFound,
        "none",
    );
    assert_eq!(err.message(), "Location index out of bounds: 0");
}

// ---------------------------------------------------------------- listing

#[tokio::test]
async fn listing_sorts_before_paginating() {
    let f = Fixture::new().await;
    let l = &f.locations;
    let dir = f.root.join("sorted");
    for d in ["Zdir", "adir", "empty"] {
        fs::create_dir_all(dir.join(d)).expect("mkdir");
    }
    for (name, data) in [
        ("b.txt", &b"bb"[..]),
        ("A.txt", b"A"),
        ("a.txt", b"a"),
        ("É.txt", b"e"),
    ] {
        fs::write(dir.join(name), data).expect("write");
    }
    // An in-flight upload temporary is not listed.
    fs::write(dir.join(".s4-upload-0123.tmp"), b"partial").expect("write");

    let all = l
        .list_dir("local-0", "sorted/", None, 0)
        .await
        .expect("list");
    let names: Vec<&str> = all.files.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["adir", "empty", "Zdir", "A.txt", "a.txt", "b.txt", "É.txt"]
    );
    assert_eq!(all.total_count, 7);
    assert_eq!(all.current_path, "sorted");
    assert_eq!(all.parent_path.as_deref(), Some("."));
    let empty = &all.files[1];
    assert_eq!(
        (empty.kind, empty.size, empty.modified),
        (EntryKind::Directory, None, None)
    );
    assert_eq!(empty.path, "sorted/empty");
    let b = &all.files[5];
    assert_eq!(
        (b.kind, b.size, b.path.as_str()),
        (EntryKind::File, Some(2), "sorted/b.txt")
    );
    assert!(b.modified.is_some());

    let page = l
        .list_dir("local-0", "sorted", Some(2), 1)
        .await
        .expect("page");
    let names: Vec<&str> = page.files.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, vec!["empty", "Zdir"]);
    assert_eq!(page.total_count, 7);
    let page = l
        .list_dir("local-0", "sorted", None, 5)
        .await
        .expect("tail");
    assert_eq!(page.files.len(), 2);
    let page = l
        .list_dir("local-0", "sorted", Some(3), 50)
        .await
        .expect("past end");
    assert!(page.files.is_empty());
    assert_eq!(page.total_count, 7);

    let empty = l
        .list_dir("local-0", "sorted/empty", None, 0)
        .await
        .expect("empty dir");
    assert_eq!(
        (empty.total_count, empty.parent_path.as_deref()),
        (0, Some("sorted"))
    );
    let root = l.list_dir("local-0", ".", None, 0).await.expect("root");
    assert_eq!((root.current_path.as_str(), root.parent_path), ("", None));
    // Dangling and escaping symlinks are omitted from listings.
    let names: Vec<&str> = root.files.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, vec!["data", "sorted"]);
}

#[tokio::test]
async fn listing_errors() {
    let f = Fixture::new().await;
    let l = &f.locations;
    let err = assert_kind(
        l.list_dir("local-0", "data/file.txt", None, 0).await,
        ErrorKind::InvalidInput,
        "file",
    );
    assert_eq!(err.message(), "Not a directory: data/file.txt");
    let err = assert_kind(
        l.list_dir("local-0", "nope", None, 0).await,
        ErrorKind::NotFound,
        "missing",
    );
    assert_eq!(err.message(), "Path not found: nope");
    let err = assert_kind(
        l.list_dir("local-0", "no/such/dir", None, 0).await,
        ErrorKind::NotFound,
        "missing",
    );
    assert_eq!(err.message(), "Parent directory not found: no/such");
}

#[tokio::test]
async fn listing_fields() {
    let f = Fixture::new().await;
    symlink("data/file.txt", f.root.join("link.txt")).expect("symlink");
    let listing = f
        .locations
        .list_dir("local-0", "", None, 0)
        .await
        .expect("list");
    // The JSON of these values is the adapter's (s4-http `routes/local_wire.rs`).
    assert_eq!(listing.current_path, "");
    assert_eq!(listing.parent_path, None);
    assert_eq!(listing.total_count, 2);
    let dir = &listing.files[0];
    assert_eq!((dir.name.as_str(), dir.path.as_str()), ("data", "data"));
    assert_eq!(dir.kind, EntryKind::Directory);
    assert_eq!(
        (dir.size, dir.modified, dir.target.as_deref()),
        (None, None, None)
    );
    let link = &listing.files[1];
    assert_eq!(link.kind, EntryKind::Symlink);
    assert_eq!(link.target.as_deref(), Some("data/file.txt"));
    assert_eq!(link.size, Some(11));
    assert!(link.modified.is_some());
    let sub = f
        .locations
        .list_dir("local-0", "data/sub", None, 0)
        .await
        .expect("list");
    assert_eq!(sub.parent_path.as_deref(), Some("data"));
}

// ---------------------------------------------------------------- reads

#[tokio::test]
async fn reads_ranges_prefixes_and_limits() {
    let f = Fixture::with(|c| c.with_max_file_size(20)).await;
    let l = &f.locations;
    let stream = l
        .open_read("local-0", "data/file.txt", Some(ByteRange::Bounded(2, 4)))
        .await
        .expect("range");
    assert_eq!(
        (stream.range.clone(), stream.partial, stream.size),
        (2..5, true, 11)
    );
    assert_eq!(stream.content_length(), 3);
    assert_eq!(read_all(stream).await.ok().as_deref(), Some(&b"llo"[..]));
    let stream = l
        .open_read("local-0", "data/file.txt", None)
        .await
        .expect("whole");
    assert_eq!(
        (stream.name.as_str(), stream.path.as_str()),
        ("file.txt", "data/file.txt")
    );
    assert!(!stream.partial);
    let err = assert_kind(
        l.open_read("local-0", "data/file.txt", Some(ByteRange::From(11)))
            .await,
        ErrorKind::RangeNotSatisfiable,
        "range",
    );
    assert_eq!(err.object_size(), Some(11));

    assert_eq!(
        l.read_prefix("local-0", "data/file.txt", 5).await.ok(),
        Some(Bytes::from_static(b"hello"))
    );
    assert_eq!(
        l.read_prefix("local-0", "data/file.txt", PREVIEW_MAX)
            .await
            .map(|b| b.len())
            .ok(),
        Some(11)
    );

    let err = assert_kind(
        l.open_read("local-0", "data", None).await,
        ErrorKind::InvalidInput,
        "dir",
    );
    assert_eq!(err.message(), "Not a file: data");
    assert_kind(
        l.read_prefix("local-0", "data", 5).await,
        ErrorKind::InvalidInput,
        "dir prefix",
    );
    assert_kind(
        l.open_read("local-0", "", None).await,
        ErrorKind::InvalidInput,
        "root",
    );
    assert_kind(
        l.open_read("local-0", "nope.txt", None).await,
        ErrorKind::NotFound,
        "missing",
    );

    fs::write(f.root.join("big.bin"), [7u8; 21]).expect("write");
    let err = assert_kind(
        l.open_read("local-0", "big.bin", None).await,
        ErrorKind::TooLarge,
        "big",
    );
    assert_eq!(err.message(), "File size 0.00GB exceeds limit of 0.00GB");
    // Previews are not subject to the size limit.
    assert_eq!(
        l.read_prefix("local-0", "big.bin", 4)
            .await
            .map(|b| b.len())
            .ok(),
        Some(4)
    );
}

#[tokio::test]
async fn large_file_streams_in_chunks() {
    let f = Fixture::new().await;
    let data: Vec<u8> = (0..(READ_CHUNK * 2 + 123))
        .map(|i| (i % 251) as u8)
        .collect();
    fs::write(f.root.join("large.bin"), &data).expect("write");
    let stream = f
        .locations
        .open_read("local-0", "large.bin", None)
        .await
        .expect("open");
    let mut body = stream.body;
    let mut sizes = Vec::new();
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("chunk");
        sizes.push(chunk.len());
        out.extend_from_slice(&chunk);
    }
    assert!(sizes.iter().all(|s| *s <= READ_CHUNK));
    assert!(sizes.len() >= 3);
    assert_eq!(out, data);
}

#[tokio::test]
async fn stat_entries() {
    let f = Fixture::new().await;
    let l = &f.locations;
    let root = l.stat("local-0", "").await.expect("root");
    assert_eq!(
        (root.name.as_str(), root.path.as_str(), root.kind),
        ("root", "", EntryKind::Directory)
    );
    let file = l.stat("local-0", "data//file.txt").await.expect("file");
    assert_eq!(
        (file.name.as_str(), file.path.as_str(), file.size),
        ("file.txt", "data/file.txt", Some(11))
    );
    let dir = l.stat("local-0", "data/sub/").await.expect("dir");
    assert_eq!(
        (dir.kind, dir.path.as_str()),
        (EntryKind::Directory, "data/sub")
    );
}

#[test]
fn size_format_and_gib() {
    assert_eq!(format_size(0), "0 Bytes");
    assert_eq!(format_size(512), "512.00 Bytes");
    assert_eq!(format_size(120_000), "117.19 KB");
    assert_eq!(format_size(12 << 30), "12.00 GB");
    assert_eq!(format_size(3 << 50), "3.00 PB");
    assert_eq!(format_size(u64::MAX), "16384.00 PB");
    assert_eq!(format!("{:.2}", gib(21 << 30)), "21.00");
}

// ---------------------------------------------------------------- uploads

#[tokio::test]
async fn upload_round_trip_with_unicode_and_nested_dirs() {
    let f = Fixture::new().await;
    let l = &f.locations;
    let path = "new dir/ünïcødé/deep/my file (1).csv";
    let written = l
        .write_file(
            "local-0",
            path,
            body(&[b"a,b\n", b"1,2\n"]),
            WriteOptions::default(),
        )
        .await
        .expect("upload");
    assert_eq!(written, 8);
    let stream = l.open_read("local-0", path, None).await.expect("read back");
    assert_eq!(
        read_all(stream).await.ok().as_deref(),
        Some(&b"a,b\n1,2\n"[..])
    );
    let listing = l
        .list_dir("local-0", "new dir/ünïcødé/deep", None, 0)
        .await
        .expect("list");
    assert_eq!(listing.files.len(), 1);
    assert_eq!(listing.files[0].path, path);
    assert_eq!(listing.parent_path.as_deref(), Some("new dir/ünïcødé"));
    assert!(f.temp_files().is_empty());
    assert_eq!(
        l.quota_usage("local-0").ok(),
        Some(QuotaUsage { bytes: 8, files: 1 })
    );
    // Empty uploads are fine.
    assert_eq!(write(&f, "empty.txt", b"").await.ok(), Some(0));
}

#[tokio::test]
async fn upload_checks_in_contract_order() {
    let f = Fixture::new().await;
    let l = &f.locations;
    let err = assert_kind(write(&f, "", b"x").await, ErrorKind::InvalidInput, "empty");
    assert_eq!(err.message(), "File path is required");
    assert_kind(
        write(&f, "a/..", b"x").await,
        ErrorKind::InvalidInput,
        "root",
    );

    // Step 3 runs before step 5: parents of a refused file are still created.
    let err = assert_kind(
        write(&f, "made/by/mkdir/run.sh", b"x").await,
        ErrorKind::InvalidInput,
        "sh",
    );
    assert_eq!(
        (err.code(), err.message()),
        (
            Some(INVALID_FILE_TYPE),
            "File type .sh is blocked for security reasons"
        )
    );
    assert!(f.root.join("made/by/mkdir").is_dir());
    let err = assert_kind(
        write(&f, "README", b"x").await,
        ErrorKind::InvalidInput,
        "no ext",
    );
    assert_eq!(err.message(), "Files without extensions are not allowed");
    let err = assert_kind(
        write(&f, "x.rs", b"x").await,
        ErrorKind::InvalidInput,
        "not allowed",
    );
    assert_eq!(err.message(), "File type .rs is not in the allowed list");

    // Step 5 before step 6: an existing file with a blocked type reports the type.
    fs::write(f.root.join("exists.sh"), b"#!").expect("write");
    let err = assert_kind(
        write(&f, "exists.sh", b"x").await,
        ErrorKind::InvalidInput,
        "policy first",
    );
    assert_eq!(err.code(), Some(INVALID_FILE_TYPE));

    // Step 6: no overwrite, the existing file is untouched.
    let err = assert_kind(
        write(&f, "data/file.txt", b"evil").await,
        ErrorKind::AlreadyExists,
        "exists",
    );
    assert_eq!(err.message(), "File already exists");
    assert_eq!(
        fs::read(f.root.join("data/file.txt")).ok().as_deref(),
        Some(&b"hello world"[..])
    );
    // A directory or a (dangling) symlink at the destination is "existing" too.
    fs::create_dir(f.root.join("data/dir.txt")).expect("mkdir");
    assert_kind(
        write(&f, "data/dir.txt", b"x").await,
        ErrorKind::AlreadyExists,
        "dir",
    );
    symlink("nowhere.txt", f.root.join("dangling.txt")).expect("symlink");
    assert_kind(
        write(&f, "dangling.txt", b"x").await,
        ErrorKind::AlreadyExists,
        "dangling",
    );
    assert!(fs::symlink_metadata(f.root.join("nowhere.txt")).is_err());

    // A file in the way of a parent directory.
    let err = assert_kind(
        write(&f, "data/file.txt/x.txt", b"x").await,
        ErrorKind::Conflict,
        "in the way",
    );
    assert_eq!(err.message(), "A file exists at this path");

    // The two-step API: prepare (steps 2-3), then check/write (5-8).
    let target = l
        .prepare_upload("local-0", "two/step.json")
        .await
        .expect("prepare");
    assert_eq!(
        (target.path().as_str(), target.file_name()),
        ("two/step.json", "step.json")
    );
    assert!(f.root.join("two").is_dir());
    target.check().await.expect("checks pass");
    assert_eq!(
        target
            .write(body(&[b"{}"]), WriteOptions::default())
            .await
            .ok(),
        Some(2)
    );
    assert!(f.temp_files().is_empty());
}

#[tokio::test]
async fn upload_never_replaces_a_file_created_meanwhile() {
    let f = Fixture::new().await;
    let dest = f.root.join("race.txt");
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    let dest_clone = dest.clone();
    // The body creates the destination itself before ending: the final link must fail.
    let racing = body(&[b"mine"]).chain(futures::stream::once(async move {
        fs::write(&dest_clone, b"theirs").expect("write");
        let _ = tx.send(());
        Ok(Bytes::new())
    }));
    let err = assert_kind(
        f.locations
            .write_file("local-0", "race.txt", racing, WriteOptions::default())
            .await,
        ErrorKind::AlreadyExists,
        "appeared meanwhile",
    );
    assert_eq!(err.message(), "File already exists");
    assert!(rx.await.is_ok());
    assert_eq!(fs::read(&dest).ok().as_deref(), Some(&b"theirs"[..]));
    assert!(f.temp_files().is_empty());
    assert_eq!(
        f.locations.quota_usage("local-0").ok(),
        Some(QuotaUsage::default())
    );
}

#[tokio::test]
async fn oversized_upload_leaves_nothing() {
    let f = Fixture::with(|c| c.with_max_file_size(10)).await;
    let err = assert_kind(
        f.locations
            .write_file(
                "local-0",
                "d/big.bin",
                body(&[b"12345", b"67890", b"x"]),
                WriteOptions::default(),
            )
            .await,
        ErrorKind::TooLarge,
        "too large",
    );
    assert_eq!((err.message(), err.code()), ("File too large", None));
    assert!(!f.root.join("d/big.bin").exists());
    assert!(f.temp_files().is_empty());
    // Exactly at the limit is fine.
    assert_eq!(write(&f, "d/ok.bin", b"1234567890").await.ok(), Some(10));
}

#[tokio::test]
async fn body_error_leaves_nothing() {
    let f = Fixture::new().await;
    let failing = body(&[b"partial data"]).chain(futures::stream::once(async {
        Err(Error::new(ErrorKind::InvalidInput, "client went away").with_code("Body"))
    }));
    let err = f
        .locations
        .write_file("local-0", "fail.txt", failing, WriteOptions::default())
        .await
        .expect_err("body error");
    assert_eq!(
        (err.kind(), err.code(), err.message()),
        (ErrorKind::InvalidInput, Some("Body"), "client went away")
    );
    assert!(!f.root.join("fail.txt").exists());
    assert!(f.temp_files().is_empty());
    assert_eq!(
        f.locations.quota_usage("local-0").ok(),
        Some(QuotaUsage::default())
    );
}

#[tokio::test]
async fn cancelled_upload_leaves_nothing() {
    let f = Fixture::new().await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let progress_seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = Arc::clone(&progress_seen);
    let trigger = cancel.clone();
    let options = WriteOptions::default()
        .with_cancel(cancel)
        .with_progress(Arc::new(move |n| {
            seen.store(n, Ordering::SeqCst);
            trigger.cancel();
        }));
    let endless = body(&[b"first"]).chain(futures::stream::pending());
    let err = assert_kind(
        f.locations
            .write_file("local-0", "c.txt", endless, options)
            .await,
        ErrorKind::Cancelled,
        "cancel",
    );
    assert_eq!(err.message(), "Upload aborted by client");
    assert_eq!(progress_seen.load(Ordering::SeqCst), 5);
    assert!(!f.root.join("c.txt").exists());
    assert!(f.temp_files().is_empty());
}

#[tokio::test]
async fn dropped_upload_future_leaves_no_temp_file() {
    let f = Fixture::new().await;
    let written = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&written);
    let options =
        WriteOptions::default().with_progress(Arc::new(move |n| seen.store(n, Ordering::SeqCst)));
    let endless = body(&[b"some bytes"]).chain(futures::stream::pending());
    let upload = f
        .locations
        .write_file("local-0", "dropped/file.txt", endless, options);
    let mut upload = Box::pin(upload);
    // Drive the upload until its temporary file holds bytes, then drop it midway.
    let mut started = false;
    for _ in 0..500 {
        tokio::select! {
            result = &mut upload => panic!("upload cannot finish: {result:?}"),
            _ = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
        if written.load(Ordering::SeqCst) > 0 {
            started = true;
            break;
        }
    }
    assert!(started, "the upload never started writing");
    drop(upload);
    assert!(f.temp_files().is_empty(), "temporary file left behind");
    assert!(!f.root.join("dropped/file.txt").exists());
    // Nothing at all in the destination directory, dot-files included.
    let left: Vec<_> = std::fs::read_dir(f.root.join("dropped"))
        .expect("read_dir")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

// ---------------------------------------------------------------- mkdir, delete, quota

#[tokio::test]
async fn create_dir_rules() {
    let f = Fixture::new().await;
    let l = &f.locations;
    assert_eq!(
        l.create_dir("local-0", "new-folder/sub/")
            .await
            .ok()
            .as_deref(),
        Some("new-folder/sub")
    );
    assert!(f.root.join("new-folder/sub").is_dir());
    assert_eq!(
        l.create_dir("local-0", "new-folder/sub")
            .await
            .ok()
            .as_deref(),
        Some("new-folder/sub")
    );
    assert_eq!(
        l.create_dir("local-0", "data").await.ok().as_deref(),
        Some("data")
    );
    symlink("data", f.root.join("data_link")).expect("symlink");
    assert!(l.create_dir("local-0", "data_link/sub/more").await.is_ok());
    assert!(f.root.join("data/sub/more").is_dir());

    for empty in ["", ".", "a/.."] {
        let err = assert_kind(
            l.create_dir("local-0", empty).await,
            ErrorKind::InvalidInput,
            empty,
        );
        assert_eq!(err.message(), "Directory path is required");
    }
    for blocked in ["data/file.txt", "data/file.txt/sub"] {
        let err = assert_kind(
            l.create_dir("local-0", blocked).await,
            ErrorKind::Conflict,
            blocked,
        );
        assert_eq!(err.message(), "A file exists at this path");
    }
    symlink("nowhere", f.root.join("dangling")).expect("symlink");
    assert_kind(
        l.create_dir("local-0", "dangling/x").await,
        ErrorKind::Conflict,
        "dangling",
    );
    assert!(!f.root.join("nowhere").exists());
}

#[tokio::test]
async fn delete_counts_and_root_refusal() {
    let f = Fixture::new().await;
    let l = &f.locations;
    fs::create_dir_all(f.root.join("d/e/f")).expect("mkdir");
    fs::write(f.root.join("d/a.txt"), b"a").expect("write");
    fs::write(f.root.join("d/e/b.txt"), b"b").expect("write");
    // d: a.txt, e, e/b.txt, e/f → 4 + 1.
    assert_eq!(l.delete("local-0", "d").await.ok(), Some(5));
    assert!(!f.root.join("d").exists());
    assert_eq!(l.delete("local-0", "data/file.txt").await.ok(), Some(1));
    assert_eq!(l.delete("local-0", "data/sub").await.ok(), Some(1));
    assert_kind(
        l.delete("local-0", "data/file.txt").await,
        ErrorKind::NotFound,
        "gone",
    );
    assert_kind(
        l.delete("local-0", "no/such/x").await,
        ErrorKind::NotFound,
        "missing parent",
    );

    for root in ["", ".", "data/..", "/"] {
        assert_forbidden(l.delete("local-0", root).await, root);
    }
    let err = l.delete("local-0", "").await.expect_err("root");
    assert_eq!(
        err.message(),
        "Cannot delete the root of a storage location"
    );
    assert!(f.root.join("data").is_dir());
}

#[tokio::test]
async fn quota_accounting() {
    let f = Fixture::with(|c| c.with_max_file_size(DEFAULT_MAX_FILE_SIZE)).await;
    let l = &f.locations;
    write(&f, "q/one.txt", b"12345").await.expect("upload");
    write(&f, "q/two.txt", b"123").await.expect("upload");
    assert_eq!(
        l.quota_usage("local-0").ok(),
        Some(QuotaUsage { bytes: 8, files: 2 })
    );
    assert_eq!(l.delete("local-0", "q/one.txt").await.ok(), Some(1));
    assert_eq!(
        l.quota_usage("local-0").ok(),
        Some(QuotaUsage { bytes: 3, files: 1 })
    );
    // Deleting more than was recorded never goes below zero.
    assert_eq!(l.delete("local-0", "data").await.ok(), Some(4));
    assert_eq!(l.delete("local-0", "q").await.ok(), Some(2));
    assert_eq!(l.quota_usage("local-0").ok(), Some(QuotaUsage::default()));

    let root = &l.inner.roots[0];
    // 88 GiB used + a declared 20 GiB > 100 GiB (§17.9: the declared size).
    *root.usage.lock().expect("usage") = QuotaUsage {
        bytes: 88 << 30,
        files: 0,
    };
    let declared = |bytes: u64| WriteOptions::default().with_declared_size(bytes);
    let err = assert_kind(
        f.locations
            .write_file("local-0", "q/three.txt", body(&[b"x"]), declared(20 << 30))
            .await,
        ErrorKind::TooLarge,
        "bytes quota",
    );
    assert_eq!(
        (err.code(), err.message()),
        (
            Some(QUOTA_EXCEEDED),
            "Storage quota exceeded. 12.00 GB remaining."
        )
    );
    // A small declared upload still fits: the limit is not MAX_FILE_SIZE (once
    // that is above 100 GiB, every upload used to be refused).
    assert_eq!(
        f.locations
            .write_file("local-0", "q/small.txt", body(&[b"x"]), declared(1 << 30))
            .await
            .ok(),
        Some(1)
    );
    // Quota is step 7: after the existence check (step 6).
    fs::write(f.root.join("there.txt"), b"x").expect("write");
    assert_kind(
        write(&f, "there.txt", b"x").await,
        ErrorKind::AlreadyExists,
        "exists first",
    );

    *root.usage.lock().expect("usage") = QuotaUsage {
        bytes: 70 << 30,
        files: 9_999,
    };
    write(&f, "q/last.txt", b"x")
        .await
        .expect("the 10 000th file fits");
    let err = assert_kind(
        write(&f, "q/over.txt", b"x").await,
        ErrorKind::TooLarge,
        "files quota",
    );
    assert_eq!(
        (err.code(), err.message()),
        (
            Some(QUOTA_EXCEEDED),
            "File count quota exceeded. 0 files remaining."
        )
    );
    assert!(!f.root.join("q/over.txt").exists());
}

#[tokio::test]
async fn body_is_not_pulled_before_the_checks_pass() {
    let f = Fixture::new().await;
    let polled = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&polled);
    let watched = futures::stream::poll_fn(move |_| {
        flag.store(true, Ordering::SeqCst);
        std::task::Poll::Ready(None::<Result<Bytes>>)
    });
    let target = f
        .locations
        .prepare_upload("local-0", "x.exe")
        .await
        .expect("prepare");
    let err = target
        .write(watched, WriteOptions::default())
        .await
        .expect_err("blocked type");
    assert_eq!(err.code(), Some(INVALID_FILE_TYPE));
    assert!(
        !polled.load(Ordering::SeqCst),
        "body polled before the checks"
    );
}

#[tokio::test]
async fn multi_chunk_upload_round_trip() {
    let f = Fixture::new().await;
    let data: Vec<u8> = (0..(1 << 20) + 17).map(|i| (i % 253) as u8).collect();
    let chunks: Vec<Result<Bytes>> = data
        .chunks(64 << 10)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let written = f
        .locations
        .write_file(
            "local-0",
            "big/model.bin",
            futures::stream::iter(chunks),
            WriteOptions::default(),
        )
        .await
        .expect("upload");
    assert_eq!(written, data.len() as u64);
    let stream = f
        .locations
        .open_read("local-0", "big/model.bin", None)
        .await
        .expect("open");
    assert_eq!(read_all(stream).await.ok(), Some(data));
}

#[tokio::test]
async fn fifo_is_not_a_file_and_does_not_block() {
    let f = Fixture::new().await;
    let fifo = f.root.join("pipe.txt");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        return; // no mkfifo on this system
    }
    let opened = tokio::time::timeout(
        Duration::from_secs(5),
        f.locations.read_prefix("local-0", "pipe.txt", 16),
    )
    .await
    .expect("opening a FIFO must not block");
    let err = opened.expect_err("not a regular file");
    assert_eq!(
        (err.kind(), err.message()),
        (ErrorKind::InvalidInput, "Not a file: pipe.txt")
    );
    // Listed as a (non-directory) entry, and deletable.
    let listing = f
        .locations
        .list_dir("local-0", "", None, 0)
        .await
        .expect("list");
    assert!(listing
        .files
        .iter()
        .any(|e| e.name == "pipe.txt" && e.kind == EntryKind::File));
    assert_eq!(
        f.locations.delete("local-0", "pipe.txt").await.ok(),
        Some(1)
    );
}
