//! Listing a local bucket: S3 semantics (delimited pages, continuation tokens)
//! over directories, with a cache of sorted directory names for large folders.

use super::*;

/// Directories with fewer entries are read on every page: that is cheap.
pub(super) const CACHE_MIN_ENTRIES: usize = 1000;
/// Most names kept by the listing cache (about 15 bytes each).
pub(super) const CACHE_MAX_NAMES: usize = 1_000_000;
/// A directory modified more recently than this is not cached: file-system
/// timestamps are coarse (a clock tick), so two changes within one tick could
/// leave the modification time unchanged. Past this age any change moves it.
pub(super) const CACHE_SETTLE: Duration = Duration::from_secs(2);

/// What identifies one state of a directory's entry list: any entry added,
/// removed or renamed changes its modification (and change) time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DirStamp {
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    nlink: u64,
}

impl DirStamp {
    pub(super) fn of(meta: &std::fs::Metadata) -> Self {
        DirStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            nlink: meta.nlink(),
        }
    }
}

/// The sorted entry names of one directory, packed in one string: object names
/// as they are, sub-directories with a trailing `/` (so they sort as keys do).
/// Staging files and non-UTF-8 names are left out.
#[derive(Debug, Default)]
pub(super) struct SortedNames {
    text: String,
    ends: Vec<u32>,
}

impl SortedNames {
    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }
    pub(super) fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }
}

/// Sorted names of large directories, reused while a directory is unchanged, so a
/// listing page costs a `stat` of the directory and of the entries on the page
/// instead of reading and sorting the whole directory every time.
#[derive(Debug, Default)]
pub(super) struct ListingCache {
    // A std lock: held only to look up or swap an entry, never during I/O.
    dirs: Mutex<HashMap<PathBuf, (DirStamp, Arc<SortedNames>)>>,
}

impl ListingCache {
    pub(super) fn get(&self, dir: &FsPath, stamp: DirStamp) -> Option<Arc<SortedNames>> {
        let dirs = self.dirs.lock().ok()?;
        match dirs.get(dir) {
            Some((cached, names)) if *cached == stamp => Some(Arc::clone(names)),
            _ => None,
        }
    }

    pub(super) fn put(&self, dir: &FsPath, stamp: DirStamp, names: &Arc<SortedNames>) {
        let Ok(mut dirs) = self.dirs.lock() else {
            return;
        };
        dirs.remove(dir);
        if names.len() < CACHE_MIN_ENTRIES || names.len() > CACHE_MAX_NAMES {
            return;
        }
        let held: usize = dirs.values().map(|(_, n)| n.len()).sum();
        if held + names.len() > CACHE_MAX_NAMES {
            dirs.clear();
        }
        dirs.insert(dir.to_path_buf(), (stamp, Arc::clone(names)));
    }
}

/// Reads and sorts the names of `dir` (blocking).
pub(super) fn read_sorted_names(dir: &FsPath) -> std::io::Result<SortedNames> {
    let mut names: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(mut name) = entry.file_name().into_string() else {
            continue; // Not UTF-8: cannot be an object key.
        };
        if is_staging_name(&name) {
            continue;
        }
        // `file_type` comes from readdir's d_type: no stat per entry. Symbolic
        // links are not objects: they are neither shown nor followed.
        let is_dir = match entry.file_type() {
            Ok(t) if t.is_symlink() => continue,
            Ok(t) => t.is_dir(),
            Err(_) => continue,
        };
        if is_dir {
            name.push('/');
        }
        names.push(name);
    }
    names.sort_unstable();
    let mut sorted = SortedNames {
        text: String::with_capacity(names.iter().map(String::len).sum()),
        ends: Vec::with_capacity(names.len()),
    };
    for name in names {
        sorted.text.push_str(&name);
        let end = u32::try_from(sorted.text.len())
            .map_err(|_| std::io::Error::other("directory listing too large"))?;
        sorted.ends.push(end);
    }
    Ok(sorted)
}

/// Lists one directory level of a bucket (blocking; run on the blocking pool).
pub(super) fn list_dir_page(
    cache: &ListingCache,
    bucket_dir: &FsPath,
    request: &PageRequest,
    start_after: Option<&str>,
) -> Result<Page> {
    let (dir_part, leaf_prefix) = split_prefix(request.prefix.as_str());
    let dir = confined(bucket_dir, dir_part.trim_end_matches('/')).ok_or_else(invalid_prefix)?;
    let Some(names) = dir_names(cache, bucket_dir, &dir)? else {
        return Ok(Page::default());
    };
    // Names with the leaf prefix are one run of the sorted list; start after the
    // token's key (a full key: compare it with `dir_part` + name).
    let all = names.len();
    let first = partition_point(all, |i| names.get(i) < leaf_prefix);
    let after = start_after.map_or(0, |after| {
        partition_point(all, |i| {
            dir_part
                .bytes()
                .chain(names.get(i).bytes())
                .le(after.bytes())
        })
    });
    let entries = (first.max(after)..all)
        .map(|i| names.get(i))
        .take_while(|name| name.starts_with(leaf_prefix))
        .map(|name| (format!("{dir_part}{name}"), name.ends_with('/')));
    let (page, next_token) = page_sorted(entries, start_after, request.max_keys);
    let mut out = Page {
        next_token,
        ..Page::default()
    };
    for (name, is_dir) in page {
        if is_dir {
            out.prefixes.push(name);
            continue;
        }
        let path = bucket_dir.join(&name);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue; // Deleted since readdir.
        };
        if !meta.is_file() {
            continue;
        }
        out.objects.push(ObjectSummary {
            last_modified: to_utc(meta.modified()),
            etag: Some(
                crate::storage::objmeta::etag_at(&path).unwrap_or_else(|| local_etag(&meta)),
            ),
            size: meta.len(),
            storage_class: "STANDARD".to_string(),
            key: name,
        });
    }
    Ok(out)
}

/// The sorted names of the directory `dir` of the bucket at `bucket_dir`
/// (blocking), from the cache while it is unchanged; `None` when `dir` is not a
/// directory inside the bucket (missing, a file, or reached through a link).
pub(super) fn dir_names(
    cache: &ListingCache,
    bucket_dir: &FsPath,
    dir: &FsPath,
) -> Result<Option<Arc<SortedNames>>> {
    let not_found = |e: &std::io::Error| {
        matches!(
            e.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
        )
    };
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => meta,
        Ok(_) => return Ok(None),
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(Error::from_io(e, "cannot list bucket")),
    };
    // Only plain segments were joined and the last one is not a link; an
    // intermediate one could be (planted from outside S4): resolve once.
    if dir != bucket_dir && !resolves_inside(bucket_dir, dir) {
        return Ok(None);
    }
    let stamp = DirStamp::of(&meta);
    if let Some(names) = cache.get(dir, stamp) {
        return Ok(Some(names));
    }
    let settled = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_some_and(|age| age >= CACHE_SETTLE);
    let names = match read_sorted_names(dir) {
        Ok(names) => Arc::new(names),
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(Error::from_io(e, "cannot list bucket")),
    };
    if settled {
        // Stamped before the read: a change during it invalidates the entry.
        cache.put(dir, stamp, &names);
    }
    Ok(Some(names))
}

/// One directory being walked by [`walk_page`].
pub(super) struct WalkFrame {
    path: PathBuf,
    /// Key text of the directory (`""` or ending in `/`).
    key_prefix: String,
    names: Arc<SortedNames>,
    next: usize,
    /// Name prefix entries must have (only the first directory's leaf prefix).
    leaf: String,
}

/// One page of a recursive (non-delimited) listing (blocking): a depth-first walk
/// of the folders under the prefix only, in key order (sorted names, folders with
/// their trailing `/`, yield keys in byte order), skipping whole folders that lie
/// before the continuation key, and stopping after `max_keys` objects.
pub(super) fn walk_page(
    cache: &ListingCache,
    bucket_dir: &FsPath,
    request: &PageRequest,
    start_after: Option<&str>,
) -> Result<Page> {
    let (dir_part, leaf_prefix) = split_prefix(request.prefix.as_str());
    let dir = confined(bucket_dir, dir_part.trim_end_matches('/')).ok_or_else(invalid_prefix)?;
    let Some(names) = dir_names(cache, bucket_dir, &dir)? else {
        return Ok(Page::default());
    };
    // Where to start in a directory: the first entry that is not entirely before
    // the continuation key (a folder holding it is not before it).
    let start_in = |key_prefix: &str, names: &SortedNames, leaf: &str| -> usize {
        let all = names.len();
        let first = partition_point(all, |i| names.get(i) < leaf);
        let after = start_after.map_or(0, |after| {
            partition_point(all, |i| {
                let full = format!("{key_prefix}{}", names.get(i));
                full.as_str() < after && !after.starts_with(full.as_str())
            })
        });
        first.max(after)
    };
    let next = start_in(dir_part, &names, leaf_prefix);
    let mut stack = vec![WalkFrame {
        path: dir,
        key_prefix: dir_part.to_string(),
        names,
        next,
        leaf: leaf_prefix.to_string(),
    }];
    let mut objects: Vec<ObjectSummary> = Vec::new();
    let mut more = false;
    while let Some(frame) = stack.last_mut() {
        if frame.next >= frame.names.len() {
            stack.pop();
            continue;
        }
        let name = frame.names.get(frame.next).to_string();
        frame.next += 1;
        if !name.starts_with(frame.leaf.as_str()) {
            stack.pop(); // Sorted: the run of matching names is over.
            continue;
        }
        let key = format!("{}{name}", frame.key_prefix);
        if let Some(folder) = name.strip_suffix('/') {
            if start_after.is_some_and(|after| after >= key.as_str() && !after.starts_with(&key)) {
                continue; // Every key below sorts before the continuation key.
            }
            let path = frame.path.join(folder);
            if let Some(names) = dir_names(cache, bucket_dir, &path)? {
                let next = start_in(&key, &names, "");
                stack.push(WalkFrame {
                    path,
                    key_prefix: key,
                    names,
                    next,
                    leaf: String::new(),
                });
            }
            continue;
        }
        if start_after.is_some_and(|after| key.as_str() <= after) {
            continue;
        }
        if objects.len() == request.max_keys {
            more = true;
            break;
        }
        let path = frame.path.join(&name);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue; // Deleted since readdir.
        };
        if !meta.is_file() {
            continue;
        }
        objects.push(ObjectSummary {
            last_modified: to_utc(meta.modified()),
            // As reads report it: one getxattr per object on the page.
            etag: Some(
                crate::storage::objmeta::etag_at(&path).unwrap_or_else(|| local_etag(&meta)),
            ),
            size: meta.len(),
            storage_class: "STANDARD".to_string(),
            key,
        });
    }
    let next_token = if more {
        objects.last().map(|o| crate::storage::encode_token(&o.key))
    } else {
        None
    };
    Ok(Page {
        objects,
        prefixes: Vec::new(),
        next_token,
    })
}

/// The first index in `0..len` for which `before` is false (`before` must be true
/// for a prefix of the range and false after it).
pub(super) fn partition_point(len: usize, before: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if before(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}
