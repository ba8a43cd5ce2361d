//! The copy loop: one task per file, each waiting for its place in the global FIFO
//! limit, resolving conflicts against the destination as it is when the file
//! starts, then streaming with progress counted as bytes pass, or, bucket to bucket
//! on an engine that can ([`crate::Backend::copy_object`]: S3), copying
//! server-side. Every write is atomic (temp-then-rename locally, single PUT or
//! aborted multipart on buckets, CopyObject or aborted multipart copy), so a failed
//! or cancelled file leaves nothing behind.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use futures::stream::BoxStream;
use object_store::ObjectStoreExt;
use tokio::task::JoinSet;

use super::limit::Ticket;
use super::{
    cancelled_error, ConflictMode, Endpoint, FileSource, FileState, FileStatus, JobEntry,
    JobStatus, Place,
};
use crate::error::{Error, ErrorKind, Result};
use crate::events::ObjectChange;
use crate::location::WriteOptions;
use crate::names::{BucketName, ObjectKey};
use crate::storage::{ServerCopy, ServerCopyOptions};
use crate::{GetObjectOptions, ProgressFn, PutObjectOptions, S4};

/// Back-off before each retry of a connection-level failure (§15.2).
const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

enum Outcome {
    Copied(u64),
    Skipped,
}

/// Runs every file of a job, then settles the job's terminal status.
pub(crate) async fn run_job(s4: S4, entry: Arc<JobEntry>, tickets: Vec<Ticket>) {
    let mut files = JoinSet::new();
    for (index, ticket) in tickets.into_iter().enumerate() {
        let s4 = s4.clone();
        let entry = Arc::clone(&entry);
        files.spawn(async move { run_file(&s4, &entry, index, ticket).await });
    }
    while files.join_next().await.is_some() {}
    entry.update(|state| {
        if state.job.status.is_terminal() {
            return;
        }
        for file in &mut state.job.files {
            if !matches!(file.status, FileStatus::Completed | FileStatus::Error) {
                file.status = FileStatus::Error;
                file.error = Some("Transfer task ended unexpectedly".into());
            }
        }
        let failed = state
            .job
            .files
            .iter()
            .any(|f| f.status == FileStatus::Error);
        state.job.status = if failed {
            JobStatus::Failed
        } else {
            JobStatus::Completed
        };
        state.job.completed_at = Some(Utc::now());
    });
}

async fn run_file(s4: &S4, entry: &Arc<JobEntry>, index: usize, ticket: Ticket) {
    let slot = tokio::select! {
        biased;
        _ = entry.cancel.cancelled() => return,
        slot = ticket => match slot {
            Ok(slot) => slot,
            Err(_) => return,
        },
    };
    let go = entry.update(|state| {
        if state.job.status.is_terminal() {
            return false;
        }
        state.job.files[index].status = FileStatus::Transferring;
        if state.job.status == JobStatus::Queued {
            state.job.status = JobStatus::Active;
            state.job.started_at = Some(Utc::now());
        }
        true
    });
    if !go {
        return;
    }
    let mut attempt = 0;
    let result = loop {
        let result = copy_file(s4, entry, index).await;
        match result {
            Err(e) if is_connection_failure(&e) && attempt < RETRY_DELAYS.len() => {
                tracing::warn!(job = %entry.id, error = %e, "transfer read failed; retrying");
                let delay = RETRY_DELAYS[attempt];
                attempt += 1;
                entry.update(|state| state.job.files[index].loaded = 0);
                tokio::select! {
                    biased;
                    _ = entry.cancel.cancelled() => break Err(cancelled_error()),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            other => break other,
        }
    };
    drop(slot);
    entry.update(|state| {
        if state.job.status == JobStatus::Cancelled {
            // The cancel already marked this file.
            return;
        }
        let file = &mut state.job.files[index];
        match result {
            Ok(Outcome::Copied(size)) => {
                file.size = size;
                file.loaded = size;
                file.status = FileStatus::Completed;
            }
            Ok(Outcome::Skipped) => {
                file.size = 0;
                file.loaded = 0;
                file.skipped = true;
                file.status = FileStatus::Completed;
            }
            Err(e) => {
                tracing::info!(job = %entry.id, file = %file.destination, error = %e, "transfer file failed");
                file.status = FileStatus::Error;
                file.error = Some(e.message().to_string());
            }
        }
    });
}

/// Connection-level failures (§15.2: refused, reset, timeout, DNS): the S3
/// client's typed transport failures, and backend errors without an HTTP status.
fn is_connection_failure(e: &Error) -> bool {
    match e.kind() {
        ErrorKind::Timeout | ErrorKind::Unavailable | ErrorKind::ConnectionLost => true,
        ErrorKind::Backend => e.backend_status().is_none(),
        _ => false,
    }
}

/// `<dir>/<stem>-<n><ext>`, the extension taken from the last `.` of the leaf,
/// ignoring a leading dot.
pub(crate) fn renamed(path: &str, n: u64) -> String {
    let (dir, leaf) = match path.rfind('/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => ("", path),
    };
    let (stem, ext) = match leaf.rfind('.') {
        Some(i) if i > 0 => (&leaf[..i], &leaf[i..]),
        _ => (leaf, ""),
    };
    format!("{dir}{stem}-{n}{ext}")
}

async fn exists(s4: &S4, destination: &Endpoint, path: &str) -> Result<bool> {
    let _permit = s4
        .transfer_state()
        .metadata
        .acquire()
        .await
        .map_err(|_| Error::internal("transfer metadata limiter closed"))?;
    match &destination.place {
        Place::Bucket(bucket) => {
            let key = ObjectKey::try_from(path)?;
            match s4.head_object(bucket, &key).await {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == ErrorKind::NotFound && e.code() != Some("NoSuchBucket") => {
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        }
        Place::Local(id) => s4.locations().exists(id, path).await,
    }
}

/// Conflict resolution (§15.2 step 1): the destination path to write, or `None` to
/// skip. Claims the chosen name so files of the same job never pick the same one.
async fn resolve_destination(
    s4: &S4,
    entry: &Arc<JobEntry>,
    index: usize,
) -> Result<Option<String>> {
    let plan = &entry.plans[index];
    let original = plan.destination.clone();
    let claim = |path: &str| entry.lock().claimed.insert(path.to_string());
    if entry.conflict == ConflictMode::Overwrite {
        claim(&original);
        return Ok(Some(original));
    }
    if !exists(s4, &entry.destination, &original).await? && claim(&original) {
        return Ok(Some(original));
    }
    if entry.conflict == ConflictMode::Skip || plan.marker {
        return Ok(None);
    }
    let mut n = 1;
    loop {
        if entry.cancel.is_cancelled() {
            return Err(cancelled_error());
        }
        let candidate = renamed(&original, n);
        if !entry.lock().claimed.contains(&candidate)
            && !exists(s4, &entry.destination, &candidate).await?
            && claim(&candidate)
        {
            return Ok(Some(candidate));
        }
        n += 1;
    }
}

fn leaf(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

async fn copy_file(s4: &S4, entry: &Arc<JobEntry>, index: usize) -> Result<Outcome> {
    let Some(destination) = resolve_destination(s4, entry, index).await? else {
        return Ok(Outcome::Skipped);
    };
    let plan = &entry.plans[index];
    let shown = entry.destination.display(&destination);
    entry.update(|state| {
        let file = &mut state.job.files[index];
        file.destination_path = destination.clone();
        file.destination = shown;
        file.started = true;
    });
    let cancel = entry.cancel.clone();
    let progress: ProgressFn = {
        let entry = Arc::clone(entry);
        Arc::new(move |loaded| entry.update(|state| state.job.files[index].loaded = loaded))
    };
    let from_bucket = matches!(
        (&plan.source, &entry.source_endpoint),
        (
            FileSource::Location { .. },
            Some(Endpoint {
                place: Place::Bucket(_),
                ..
            })
        )
    );

    // Markers and `.s3keep` leaves arriving in a local directory.
    if let Place::Local(id) = &entry.destination.place {
        if plan.marker || (from_bucket && leaf(&destination) == ".s3keep") {
            let dir = parent(&destination);
            if !dir.is_empty() {
                s4.locations().create_dir(id, dir).await?;
            }
            return Ok(Outcome::Copied(0));
        }
    }
    if plan.marker {
        if let Place::Bucket(bucket) = &entry.destination.place {
            let key = ObjectKey::try_from(destination.as_str())?;
            let empty = futures::stream::empty::<Result<Bytes>>();
            s4.put_object(bucket, &key, empty, PutObjectOptions::default())
                .await?;
            return Ok(Outcome::Copied(0));
        }
    }

    // Bucket → bucket on the same engine: server-side copy where the backend can.
    if let (
        FileSource::Location { full_path },
        Some(Endpoint {
            place: Place::Bucket(src),
            ..
        }),
        Place::Bucket(dst),
    ) = (
        &plan.source,
        &entry.source_endpoint,
        &entry.destination.place,
    ) {
        if !(src == dst && *full_path == destination) {
            let size = entry.lock().job.files[index].size;
            let from = ObjectKey::try_from(full_path.as_str())?;
            let to = ObjectKey::try_from(destination.as_str())?;
            let options = ServerCopyOptions::new(size)
                .with_cancel(cancel.clone())
                .with_progress(Arc::clone(&progress));
            match server_copy(s4, (src, &from), (dst, &to), &options).await {
                Ok(ServerCopy::Copied { size }) => {
                    entry.update(|state| state.job.files[index].size = size);
                    s4.publish(ObjectChange::created(dst, &to, size));
                    if cancel.is_cancelled() {
                        discard_cancelled_copy(s4, entry, index).await;
                        return Err(cancelled_error());
                    }
                    return Ok(Outcome::Copied(size));
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Cancelled || cancel.is_cancelled() => {
                    return Err(cancelled_error());
                }
                Err(e) => {
                    tracing::info!(job = %entry.id, error = %e, "server-side copy failed; streaming instead");
                }
            }
        }
    }

    let (body, size) = open_source(s4, entry, index).await?;
    entry.update(|state| state.job.files[index].size = size);
    let written = match &entry.destination.place {
        Place::Bucket(bucket) => {
            let key = ObjectKey::try_from(destination.as_str())?;
            // Share the part budget of one put between the copies running now, so
            // memory stays flat however many files are copied at once (one file
            // alone keeps the full parallelism).
            let running = s4.transfers().running_copies().max(1);
            let options = PutObjectOptions::default()
                .with_progress(progress)
                .with_cancel(cancel.clone())
                .with_parts_in_flight(crate::PARTS_IN_FLIGHT / running);
            s4.put_object(bucket, &key, body, options)
                .await
                .map_err(|e| {
                    if e.kind() == ErrorKind::Cancelled {
                        cancelled_error()
                    } else {
                        e
                    }
                })?
                .size
        }
        Place::Local(id) => {
            let options = WriteOptions::default()
                .with_progress(progress)
                .with_cancel(cancel.clone());
            s4.locations()
                .write_replace(id, &destination, body, options)
                .await?
        }
    };
    if let (FileSource::External(file), Some(source)) = (&plan.source, &entry.external) {
        if let Err(e) = source.verify(file, written).await {
            let snapshot = entry.lock().job.files[index].clone();
            if let Err(removal) = remove_destination(s4, &entry.destination, &snapshot).await {
                tracing::warn!(error = %removal, "cannot remove a file that failed verification");
            }
            return Err(e);
        }
    }
    Ok(Outcome::Copied(written))
}

/// A server-side copy that landed although the job was cancelled meanwhile (a
/// single CopyObject is one request the engine finishes whatever S4 does; the
/// backend returns only once it is done, so the destination's state is known
/// here). The job already reports the file cancelled, so the object this copy
/// created is removed, like the aborted upload of a cancelled streamed copy.
/// With `overwrite` the destination may have existed before (its old content is
/// gone either way): the complete new copy is kept rather than deleting data the
/// job did not create; the cleanup of the cancelled job removes it if asked (the
/// file counts as started).
async fn discard_cancelled_copy(s4: &S4, entry: &Arc<JobEntry>, index: usize) {
    if entry.conflict == ConflictMode::Overwrite {
        return;
    }
    // Skip and rename claimed a destination that did not exist when the file
    // started (`resolve_destination`): this copy created it.
    let file = entry.lock().job.files[index].clone();
    if let Err(e) = remove_destination(s4, &entry.destination, &file).await {
        tracing::warn!(job = %entry.id, error = %e, "cannot remove a copy that landed after the cancel");
    }
}

/// [`crate::Backend::copy_object`] after the same key checks as a streamed write.
async fn server_copy(
    s4: &S4,
    from: (&BucketName, &ObjectKey),
    to: (&BucketName, &ObjectKey),
    options: &ServerCopyOptions,
) -> Result<ServerCopy> {
    let backend = s4.backend();
    if !backend.holds_any_key() && (!from.1.is_portable() || !to.1.is_portable()) {
        return Ok(ServerCopy::Unsupported);
    }
    backend.confine(from.0, from.1).await?;
    backend.confine(to.0, to.1).await?;
    backend.copy_object(from, to, options).await
}

async fn open_source(
    s4: &S4,
    entry: &Arc<JobEntry>,
    index: usize,
) -> Result<(BoxStream<'static, Result<Bytes>>, u64)> {
    let plan = &entry.plans[index];
    match (&plan.source, &entry.source_endpoint, &entry.external) {
        (FileSource::External(file), _, Some(source)) => {
            let (body, learned) = tokio::select! {
                biased;
                _ = entry.cancel.cancelled() => return Err(cancelled_error()),
                opened = source.open_sized(file) => opened?,
            };
            let size = if file.size == 0 {
                learned.unwrap_or(0)
            } else {
                file.size
            };
            Ok((body, size))
        }
        (FileSource::Location { full_path }, Some(source), _) => match &source.place {
            Place::Bucket(bucket) => {
                let key = ObjectKey::try_from(full_path.as_str())?;
                let object = s4
                    .get_object(bucket, &key, GetObjectOptions::default())
                    .await?;
                Ok((object.body, object.info.size))
            }
            Place::Local(id) => {
                let file = s4.locations().open_read_unlimited(id, full_path).await?;
                Ok((file.body, file.size))
            }
        },
        _ => Err(Error::internal("transfer file has no source")),
    }
}

/// Deletes a file's final destination (cleanup, failed verification). Missing is
/// fine. Bucket deletions publish a change event.
pub(crate) async fn remove_destination(
    s4: &S4,
    destination: &Endpoint,
    file: &FileState,
) -> Result<()> {
    let path = file.destination_path.as_str();
    match &destination.place {
        Place::Bucket(bucket) => {
            let key = ObjectKey::try_from(path)?;
            let object_path = key.portable_path()?;
            s4.backend().confine(bucket, &key).await?;
            let store = s4.backend().store(bucket).await?;
            let existed = store.head(&object_path).await.is_ok();
            match store.delete(&object_path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            if existed {
                s4.publish(ObjectChange::removed(bucket, &key));
            }
            Ok(())
        }
        Place::Local(id) => {
            if leaf(path) == ".s3keep" && file.source.starts_with("s3:") {
                // Nothing was written for it (only its directory was created).
                return Ok(());
            }
            match s4.locations().delete(id, path).await {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_rule() {
        assert_eq!(renamed("report.tar.gz", 1), "report.tar-1.gz");
        assert_eq!(renamed("README", 1), "README-1");
        assert_eq!(renamed("dir.x/a.txt", 2), "dir.x/a-2.txt");
        assert_eq!(renamed("d/.env", 1), "d/.env-1");
        assert_eq!(renamed("d/noext", 3), "d/noext-3");
    }

    /// Refused, reset and timed-out reads are retried; answers of the engine
    /// (a status) and the caller's own errors are not.
    #[test]
    fn connection_failures_are_retried() {
        for kind in [
            ErrorKind::Timeout,
            ErrorKind::Unavailable,
            ErrorKind::ConnectionLost,
            ErrorKind::Backend,
        ] {
            assert!(is_connection_failure(&Error::new(kind, "x")), "{kind:?}");
        }
        for kind in [
            ErrorKind::NotFound,
            ErrorKind::Cancelled,
            ErrorKind::InvalidInput,
        ] {
            assert!(!is_connection_failure(&Error::new(kind, "x")), "{kind:?}");
        }
    }
}
