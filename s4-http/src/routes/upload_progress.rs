//! Upload-progress records (§12.3) for local uploads (§17.3): the same records
//! object uploads keep, so the UI follows both on `/objects/upload-progress/...`
//! and the abort route (§12.7) can stop them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use s4_core::location::WriteOptions;
use s4_core::uploads::UploadHandle;
use s4_core::ProgressFn;

use crate::app::App;
use crate::error::{client_closed, ApiError};

/// Progress records are updated at least every this many bytes.
const PROGRESS_STEP: u64 = 1 << 20;

/// Registers an upload of `key` and returns its handle and write options
/// (progress callback and abort token).
pub(crate) fn track<'a>(app: &'a App, key: &str) -> (UploadHandle<'a>, WriteOptions) {
    let handle = app.s4().uploads().start(key);
    let progress = progress_fn(app, key, &handle);
    let options = WriteOptions::default()
        .with_progress(progress)
        .with_cancel(handle.cancel_token());
    (handle, options)
}

/// The progress callback of the upload `handle` of `key`: updates its record (and
/// only its own, checked by upload id) every [`PROGRESS_STEP`] bytes.
pub(crate) fn progress_fn(app: &App, key: &str, handle: &UploadHandle<'_>) -> ProgressFn {
    let reported = Arc::new(AtomicU64::new(0));
    let s4 = app.s4().clone();
    let key = key.to_string();
    let id = handle.id();
    Arc::new(move |loaded: u64| {
        if loaded.saturating_sub(reported.load(Ordering::Relaxed)) >= PROGRESS_STEP {
            reported.store(loaded, Ordering::Relaxed);
            s4.uploads().update_loaded(&key, id, loaded);
        }
    })
}

/// Closes the record with `completed` or `failed`, passing the result through.
///
/// # Errors
/// The write's error.
pub(crate) fn finish(
    handle: UploadHandle<'_>,
    result: Result<u64, ApiError>,
) -> Result<u64, ApiError> {
    match result {
        Ok(size) => {
            handle.complete(size);
            Ok(size)
        }
        Err(e) => {
            if e.status == client_closed() {
                drop(handle); // The abort route already dropped the record.
            } else {
                handle.fail(&e.message);
            }
            Err(e)
        }
    }
}
