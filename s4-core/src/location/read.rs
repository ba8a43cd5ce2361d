//! Reading locations: the configured locations, directory listings, `stat`, and
//! streamed (ranged) file reads.

use super::*;

impl Locations {
    /// All configured locations, in order, with `available` checked now.
    pub async fn list_locations(&self) -> Vec<LocationInfo> {
        let this = self.clone();
        blocking(move || {
            Ok(this
                .inner
                .roots
                .iter()
                .map(|root| LocationInfo {
                    id: root.id.clone(),
                    name: root.name.clone(),
                    path: root.path.to_string_lossy().into_owned(),
                    available: std::fs::metadata(&root.path).is_ok_and(|m| m.is_dir()),
                })
                .collect())
        })
        .await
        .unwrap_or_default()
    }

    /// Lists a directory (API §17.2): immediate children, sorted, then `offset` and
    /// `limit` (`None` = all) applied. Dangling symlinks and symlinks leading outside
    /// the location are omitted; in-flight upload temporaries are hidden. Buffers the
    /// directory's entries (they must be sorted before slicing).
    ///
    /// # Errors
    /// `NotFound` (unknown location, missing directory), `PermissionDenied` with code
    /// `Forbidden` (traversal) or without (EACCES), `InvalidInput`
    /// `Not a directory: <path>` when the path is a file.
    pub async fn list_dir(
        &self,
        id: &str,
        rel_path: &str,
        limit: Option<usize>,
        offset: usize,
    ) -> Result<DirListing> {
        let (index, rel) = self.resolve(id, rel_path)?;
        let current_path = rel.display();
        let parent_path = rel.parent_display();
        let mut entries = self
            .run(index, rel, rel_path, |_, target| ops::list(target))
            .await?;
        sort_entries(&mut entries);
        let total_count = entries.len();
        let files = entries
            .into_iter()
            .skip(offset)
            .take(limit.unwrap_or(usize::MAX))
            .collect();
        Ok(DirListing {
            files,
            current_path,
            parent_path,
            total_count,
        })
    }

    /// The entry at a path (for view metadata). A symlink reports its target's size
    /// and time; one leading outside the location is refused.
    ///
    /// # Errors
    /// As [`Self::list_dir`] (without the `Not a directory` case).
    pub async fn stat(&self, id: &str, rel_path: &str) -> Result<Entry> {
        let (index, rel) = self.resolve(id, rel_path)?;
        self.run(index, rel, rel_path, |root, target| {
            ops::stat(target, &root.name)
        })
        .await
    }

    /// Opens a regular file for streaming (download, raw view), optionally a byte
    /// range of it. Symlinks inside the location are followed. Size, type and range
    /// are those of the opened file, so a later change of the path does not matter.
    ///
    /// # Errors
    /// As [`Self::stat`], plus `InvalidInput` `Not a file: <path>` (directory or other
    /// non-regular file), `TooLarge` `File size <X.XX>GB exceeds limit of <Y.YY>GB`
    /// (GB = 2^30 bytes) above `max_file_size`, `RangeNotSatisfiable` (with
    /// [`Error::object_size`]).
    pub async fn open_read(
        &self,
        id: &str,
        rel_path: &str,
        range: Option<ByteRange>,
    ) -> Result<FileStream> {
        use std::io::{Seek, SeekFrom};
        let (index, rel) = self.resolve(id, rel_path)?;
        let name = rel.file_name().unwrap_or_default().to_string();
        let path = rel.display();
        let max = self.inner.config.max_file_size;
        let (file, size, modified, span) = self
            .run(index, rel, rel_path, move |_, target| {
                let (file, meta) = ops::open_file(target)?;
                let size = meta.len();
                if size > max {
                    return Err(Error::new(
                        ErrorKind::TooLarge,
                        format!(
                            "File size {:.2}GB exceeds limit of {:.2}GB",
                            gib(size),
                            gib(max)
                        ),
                    ));
                }
                let span = match range {
                    None => 0..size,
                    Some(range) => range.resolve(size).ok_or_else(|| {
                        Error::new(ErrorKind::RangeNotSatisfiable, "Range Not Satisfiable")
                            .with_object_size(size)
                    })?,
                };
                let mut file = file.into_std();
                if span.start > 0 {
                    file.seek(SeekFrom::Start(span.start))
                        .map_err(|e| target.fail(e, "read"))?;
                }
                let modified = meta
                    .modified()
                    .ok()
                    .map(|t| DateTime::<Utc>::from(t.into_std()));
                Ok((file, size, modified, span))
            })
            .await?;
        let body = file_body(file, span.end - span.start, path.clone());
        Ok(FileStream {
            name,
            path,
            size,
            modified,
            range: span,
            partial: range.is_some(),
            body,
        })
    }

    /// The first `max` bytes (or fewer) of a regular file, for previews
    /// ([`PREVIEW_MAX`]). Not subject to `max_file_size`.
    ///
    /// # Errors
    /// As [`Self::open_read`] (without the size limit and range cases).
    pub async fn read_prefix(&self, id: &str, rel_path: &str, max: usize) -> Result<Bytes> {
        let (index, rel) = self.resolve(id, rel_path)?;
        self.run(index, rel, rel_path, move |_, target| {
            let (file, _) = ops::open_file(target)?;
            ops::read_prefix(file, max, target).map(Bytes::from)
        })
        .await
    }
}

/// Streams `len` bytes from the current position of `file` in [`READ_CHUNK`] chunks,
/// failing (rather than ending quietly) if the file turns out shorter.
pub(super) fn file_body(
    file: std::fs::File,
    len: u64,
    path: String,
) -> BoxStream<'static, Result<Bytes>> {
    use tokio::io::AsyncReadExt;
    let reader = tokio::fs::File::from_std(file).take(len);
    let chunks = tokio_util::io::ReaderStream::with_capacity(reader, READ_CHUNK);
    futures::stream::unfold(
        (chunks, 0u64, false, path),
        move |(mut chunks, seen, done, path)| async move {
            if done {
                return None;
            }
            match chunks.next().await {
                Some(Ok(bytes)) => {
                    let seen = seen + bytes.len() as u64;
                    Some((Ok(bytes), (chunks, seen, false, path)))
                }
                Some(Err(err)) => {
                    let err = Error::from_io(err, format_args!("Cannot read '{path}'"));
                    Some((Err(err), (chunks, seen, true, path)))
                }
                None if seen < len => {
                    let err = Error::internal(format!("File '{path}' shrank while being read"));
                    Some((Err(err), (chunks, seen, true, path)))
                }
                None => None,
            }
        },
    )
    .boxed()
}
