//! The disclaimer status (API §16.7), kept in its own small JSON file.

use super::*;

impl ConfigStore {
    /// The disclaimer status: `unknown` when the file is missing, unreadable,
    /// malformed or has none (API §16.7).
    pub async fn disclaimer(&self) -> String {
        let unknown = || "unknown".to_string();
        let Ok(bytes) = tokio::fs::read(&self.inner.disclaimer_path).await else {
            return unknown();
        };
        let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
            return unknown();
        };
        value
            .pointer("/disclaimer/status")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(unknown)
    }

    /// Stores the disclaimer status (non-empty), keeping the file's other keys.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an empty status; I/O errors other than a
    /// missing file.
    pub async fn set_disclaimer(&self, status: &str) -> Result<()> {
        if status.trim().is_empty() {
            return Err(validation("status is required"));
        }
        let _guard = self.inner.updates.lock().await;
        let path = &self.inner.disclaimer_path;
        let mut root = match tokio::fs::read(path).await {
            Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| Value::Object(Default::default())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Value::Object(Default::default()),
            Err(e) => return Err(Error::from_io(e, format!("cannot read {}", path.display()))),
        };
        if let Some(object) = root.as_object_mut() {
            object.insert("disclaimer".into(), serde_json::json!({ "status": status }));
        }
        let bytes = serde_json::to_vec_pretty(&root)
            .map_err(|e| Error::internal("cannot encode disclaimer").with_source(e))?;
        write_atomic(path, &bytes).await
    }
}
