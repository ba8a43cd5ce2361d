//! The configuration store of API §14: one JSON file
//! `{"buckets":{"<bucket>":[<entry>,...]}}`, cached in memory after the first read.
//!
//! Writes are serialized by an async mutex (one writer at a time, held across the
//! file write so two updates can never interleave), rewrite the whole file to a
//! temporary sibling and rename it over the old one, so a crash leaves either the
//! old or the new file, never a torn one. The cache is replaced only after the
//! rename succeeded: a failed write changes nothing. Readers take a snapshot (an
//! `Arc`) under a std lock that is never held across an await point.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use super::NotificationEntry;
use crate::error::{Error, Result};

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoreFile {
    /// Bucket name → entries (buckets without entries are absent).
    #[serde(default)]
    pub(crate) buckets: BTreeMap<String, Vec<NotificationEntry>>,
}

/// The store: a file (or memory only, when no path is configured) plus its cache.
#[derive(Debug)]
pub(crate) struct Store {
    path: Option<PathBuf>,
    writer: tokio::sync::Mutex<()>,
    // `None` until loaded. A std lock: only ever held to clone or swap the `Arc`.
    cache: RwLock<Option<Arc<StoreFile>>>,
}

impl Store {
    pub(crate) fn new(path: Option<PathBuf>) -> Self {
        Store {
            path,
            writer: tokio::sync::Mutex::new(()),
            cache: RwLock::new(None),
        }
    }

    pub(crate) fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The cached content, without loading (empty before the first load).
    pub(crate) fn cached(&self) -> Arc<StoreFile> {
        self.cache
            .read()
            .ok()
            .and_then(|c| c.clone())
            .unwrap_or_default()
    }

    fn cached_if_loaded(&self) -> Option<Arc<StoreFile>> {
        self.cache.read().ok().and_then(|c| c.clone())
    }

    fn set_cache(&self, file: Arc<StoreFile>) {
        if let Ok(mut cache) = self.cache.write() {
            *cache = Some(file);
        }
    }

    /// The content, read from the file on first use. A missing or unreadable file
    /// reads as empty (§14).
    pub(crate) async fn snapshot(&self) -> Arc<StoreFile> {
        if let Some(file) = self.cached_if_loaded() {
            return file;
        }
        let _guard = self.writer.lock().await;
        self.load_locked().await
    }

    async fn load_locked(&self) -> Arc<StoreFile> {
        if let Some(file) = self.cached_if_loaded() {
            return file;
        }
        let file = Arc::new(match &self.path {
            None => StoreFile::default(),
            Some(path) => read_file(path).await,
        });
        self.set_cache(Arc::clone(&file));
        file
    }

    /// Applies `change` to a copy of the content and persists it; the cache is
    /// updated only when the write succeeded.
    ///
    /// # Errors
    /// The error `change` returns (nothing is written), or
    /// [`crate::ErrorKind::Internal`] when the file cannot be written.
    pub(crate) async fn update<T>(
        &self,
        change: impl FnOnce(&mut StoreFile) -> Result<T>,
    ) -> Result<T> {
        let _guard = self.writer.lock().await;
        let current = self.load_locked().await;
        let mut next = (*current).clone();
        let out = change(&mut next)?;
        next.buckets.retain(|_, entries| !entries.is_empty());
        if let Some(path) = &self.path {
            write_file(path, &next).await?;
        }
        self.set_cache(Arc::new(next));
        Ok(out)
    }
}

async fn read_file(path: &Path) -> StoreFile {
    match tokio::fs::read(path).await {
        Ok(bytes) => match serde_json::from_slice::<StoreFile>(&bytes) {
            Ok(mut file) => {
                file.buckets.retain(|_, entries| !entries.is_empty());
                file
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "notification store is not valid JSON; reading it as empty");
                StoreFile::default()
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => StoreFile::default(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "notification store is unreadable; reading it as empty");
            StoreFile::default()
        }
    }
}

/// Writes `file` to a temporary sibling of `path`, then renames it over `path`.
async fn write_file(path: &Path, file: &StoreFile) -> Result<()> {
    let fail = |e: std::io::Error, what: &str| {
        Error::internal(format!(
            "cannot {what} notification store {}: {e}",
            path.display()
        ))
        .with_source(e)
    };
    let bytes = serde_json::to_vec_pretty(file)
        .map_err(|e| Error::internal(format!("cannot encode notification store: {e}")))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| fail(e, "create the directory of"))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "notifications.json".into());
    let temp = path.with_file_name(format!(".{name}.tmp-{:016x}", rand::random::<u64>()));
    let written = async {
        tokio::fs::write(&temp, &bytes)
            .await
            .map_err(|e| fail(e, "write"))?;
        tokio::fs::rename(&temp, path)
            .await
            .map_err(|e| fail(e, "replace"))
    }
    .await;
    if written.is_err() {
        let _ = tokio::fs::remove_file(&temp).await;
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> NotificationEntry {
        NotificationEntry {
            id: id.into(),
            endpoint: "http://127.0.0.1:1/hook".into(),
            events: vec!["s3:ObjectCreated:*".into()],
            prefix: None,
            suffix: Some(".csv".into()),
            secret: None,
        }
    }

    #[tokio::test]
    async fn persists_and_reloads() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("nested/.s4/notifications.json");
        let store = Store::new(Some(path.clone()));
        assert!(store.snapshot().await.buckets.is_empty());
        store
            .update(|f| {
                f.buckets.insert("b1".into(), vec![entry("a")]);
                f.buckets.insert("empty".into(), vec![]);
                Ok(())
            })
            .await
            .expect("write");
        let text = std::fs::read_to_string(&path).expect("file");
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(value["buckets"]["b1"][0]["id"], "a");
        assert_eq!(value["buckets"]["b1"][0]["suffix"], ".csv");
        assert!(value["buckets"]["b1"][0].get("prefix").is_none());
        assert!(value["buckets"].get("empty").is_none(), "{value}");
        // No temporary file left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().expect("parent"))
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        let reopened = Store::new(Some(path));
        assert_eq!(reopened.snapshot().await.buckets["b1"], vec![entry("a")]);
    }

    #[tokio::test]
    async fn failed_write_changes_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        // The parent "directory" is a file: the write must fail.
        let blocker = dir.path().join("blocker");
        std::fs::write(&blocker, b"x").expect("file");
        let store = Store::new(Some(blocker.join("notifications.json")));
        let err = store
            .update(|f| {
                f.buckets.insert("b1".into(), vec![entry("a")]);
                Ok(())
            })
            .await
            .expect_err("write must fail");
        assert_eq!(err.kind(), crate::ErrorKind::Internal);
        assert!(store.snapshot().await.buckets.is_empty());
    }

    #[tokio::test]
    async fn unreadable_file_reads_as_empty() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notifications.json");
        std::fs::write(&path, b"{not json").expect("file");
        let store = Store::new(Some(path));
        assert!(store.snapshot().await.buckets.is_empty());
    }
}
