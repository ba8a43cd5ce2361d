//! Configuration of the local locations: `LOCAL_STORAGE_PATHS`, the upload file-type
//! policy (API §17.8) and the size limit.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::settings;

/// Code of a file-type policy refusal.
pub const INVALID_FILE_TYPE: &str = "InvalidFileType";

/// Default size limit of uploads, downloads and raw views: 20 GiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 20 << 30;

/// Extensions uploads may have unless `ALLOWED_FILE_EXTENSIONS` replaces them.
pub const DEFAULT_ALLOWED_EXTENSIONS: &[&str] = &[
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".onnx",
    ".gguf",
    ".h5",
    ".csv",
    ".json",
    ".jsonl",
    ".parquet",
    ".arrow",
    ".feather",
    ".txt",
    ".md",
    ".yaml",
    ".yml",
    ".tar",
    ".gz",
    ".zip",
    ".tgz",
    ".jpg",
    ".jpeg",
    ".png",
    ".gif",
    ".bmp",
    ".wav",
    ".mp3",
    ".mp4",
    ".avi",
    ".ipynb",
    ".pdf",
    ".doc",
    ".docx",
    ".xls",
    ".xlsx",
    ".ppt",
    ".pptx",
    ".odt",
    ".ods",
    ".odp",
    ".rtf",
    ".xml",
    ".html",
    ".css",
    ".old",
    ".bak",
    ".backup",
    ".tmp",
    ".log",
    ".sql",
];

/// Extensions uploads may never have unless `BLOCKED_FILE_EXTENSIONS` replaces them.
pub const DEFAULT_BLOCKED_EXTENSIONS: &[&str] = &[
    ".exe", ".dll", ".so", ".dylib", ".sh", ".bat", ".cmd", ".com", ".js", ".ts", ".py", ".rb",
    ".pl", ".php", ".sys", ".drv",
];

/// The allow- and block-lists applied to the destination file name of local uploads.
///
/// Entries are lower-case and start with a dot. Computed once, at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTypePolicy {
    allowed: BTreeSet<String>,
    blocked: BTreeSet<String>,
}

impl Default for FileTypePolicy {
    /// The lists of API §17.8.
    fn default() -> Self {
        Self {
            allowed: DEFAULT_ALLOWED_EXTENSIONS
                .iter()
                .map(|e| e.to_string())
                .collect(),
            blocked: DEFAULT_BLOCKED_EXTENSIONS
                .iter()
                .map(|e| e.to_string())
                .collect(),
        }
    }
}

/// `"bin, .GGUF,,"` → `{".bin", ".gguf"}`: comma list, trimmed, dots optional,
/// case-insensitive, empties dropped.
fn parse_extensions(list: &str) -> impl Iterator<Item = String> + '_ {
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| format!(".{}", e.strip_prefix('.').unwrap_or(e).to_lowercase()))
}

/// Applies `<NAME>` (replaces, even when set to empty) or else `<NAME>_APPEND`.
fn apply_override(
    list: &mut BTreeSet<String>,
    lookup: &dyn Fn(&str) -> Option<String>,
    name: &str,
) {
    // "Set to empty" is meaningful here (it empties the list), so the raw lookup is
    // used rather than `settings::var`, which treats empty as unset.
    if let Some(replacement) = lookup(name) {
        *list = parse_extensions(&replacement).collect();
    } else if let Some(extra) = settings::var(lookup, &format!("{name}_APPEND")) {
        list.extend(parse_extensions(&extra));
    }
}

impl FileTypePolicy {
    /// Builds the lists from `ALLOWED_FILE_EXTENSIONS[_APPEND]` and
    /// `BLOCKED_FILE_EXTENSIONS[_APPEND]` read through `lookup`.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        let mut policy = Self::default();
        apply_override(&mut policy.allowed, lookup, "ALLOWED_FILE_EXTENSIONS");
        apply_override(&mut policy.blocked, lookup, "BLOCKED_FILE_EXTENSIONS");
        policy
    }

    /// The allowed extensions (lower-case, with the dot), sorted.
    pub fn allowed(&self) -> impl Iterator<Item = &str> {
        self.allowed.iter().map(String::as_str)
    }

    /// The blocked extensions (lower-case, with the dot), sorted.
    pub fn blocked(&self) -> impl Iterator<Item = &str> {
        self.blocked.iter().map(String::as_str)
    }

    /// Checks a file name (the last path component) against the policy.
    ///
    /// The extension runs from the last `.` of the name, lower-cased, dot included
    /// (so `.gitignore` has the extension `.gitignore`, and `x.` has `.`).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] with code [`INVALID_FILE_TYPE`] and message
    /// `Files without extensions are not allowed`, `File type <ext> is blocked for
    /// security reasons` or `File type <ext> is not in the allowed list`.
    pub fn check(&self, file_name: &str) -> Result<()> {
        let refuse = |message: String| Err(Error::invalid(message).with_code(INVALID_FILE_TYPE));
        let Some(dot) = file_name.rfind('.') else {
            return refuse("Files without extensions are not allowed".to_string());
        };
        let ext = file_name[dot..].to_lowercase();
        if self.blocked.contains(&ext) {
            return refuse(format!("File type {ext} is blocked for security reasons"));
        }
        if !self.allowed.contains(&ext) {
            return refuse(format!("File type {ext} is not in the allowed list"));
        }
        Ok(())
    }
}

/// Configuration of [`super::Locations`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationsConfig {
    /// The configured directories, in order: index `n` is `local-<n>`.
    pub paths: Vec<PathBuf>,
    /// The upload file-type policy.
    pub policy: FileTypePolicy,
    /// Size limit in bytes of uploads, downloads and raw views (`MAX_FILE_SIZE_GB` ×
    /// 2^30; the embedder passes it in, default 20 GiB).
    pub max_file_size: u64,
    /// Fsync an uploaded file and its directory entry before the upload succeeds
    /// (`S4_FSYNC`, default `true`; `false` for throw-away data).
    pub fsync: bool,
}

impl Default for LocationsConfig {
    /// No locations, default policy, 20 GiB.
    fn default() -> Self {
        Self {
            paths: Vec::new(),
            policy: FileTypePolicy::default(),
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            fsync: true,
        }
    }
}

impl LocationsConfig {
    /// Reads `LOCAL_STORAGE_PATHS` (comma-separated; trimmed; empties dropped) and the
    /// file-type variables through `lookup`. Never fails: there is nothing to reject
    /// (a missing directory is reported as unavailable, not refused).
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        let paths = settings::var(lookup, "LOCAL_STORAGE_PATHS")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        Self {
            paths,
            policy: FileTypePolicy::from_lookup(lookup),
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            fsync: fsync_from_lookup(lookup),
        }
    }

    /// Sets the size limit in bytes (e.g. `Settings::max_file_size`).
    pub fn with_max_file_size(mut self, bytes: u64) -> Self {
        self.max_file_size = bytes;
        self
    }

    /// Replaces the configured directories.
    pub fn with_paths<I, P>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        self.paths = paths.into_iter().map(Into::into).collect();
        self
    }

    /// Turns fsync before acknowledging an upload on or off.
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    /// Replaces the file-type policy.
    pub fn with_policy(mut self, policy: FileTypePolicy) -> Self {
        self.policy = policy;
        self
    }
}

/// `S4_FSYNC`: `false`, `0`, `no` or `off` (any case) turn durable writes off;
/// anything else, or unset, keeps them on. (The daemon's configuration rejects
/// other values at start, through the same [`settings::switch`].)
pub(crate) fn fsync_from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> bool {
    settings::switch("S4_FSYNC", lookup("S4_FSYNC").as_deref(), true).unwrap_or(true)
}

#[cfg(test)]
mod fsync_tests {
    use super::*;

    #[test]
    fn s4_fsync_defaults_to_on() {
        assert!(fsync_from_lookup(&|_| None));
        assert!(fsync_from_lookup(&|_| Some("true".into())));
        assert!(!fsync_from_lookup(&|_| Some(" FALSE ".into())));
        assert!(!fsync_from_lookup(&|_| Some("0".into())));
        assert!(LocationsConfig::default().fsync);
        assert!(
            !LocationsConfig::from_lookup(&|n| (n == "S4_FSYNC").then(|| "false".into())).fsync
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> LocationsConfig {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LocationsConfig::from_lookup(&move |k| map.get(k).cloned())
    }

    fn reason(policy: &FileTypePolicy, name: &str) -> Option<String> {
        policy.check(name).err().map(|e| {
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert_eq!(e.code(), Some(INVALID_FILE_TYPE));
            e.message().to_string()
        })
    }

    #[test]
    fn paths() {
        assert!(config(&[]).paths.is_empty());
        assert!(config(&[("LOCAL_STORAGE_PATHS", " , ")]).paths.is_empty());
        let c = config(&[("LOCAL_STORAGE_PATHS", " /data , ,/mnt/models,")]);
        assert_eq!(
            c.paths,
            vec![PathBuf::from("/data"), PathBuf::from("/mnt/models")]
        );
        assert_eq!(c.max_file_size, 20 << 30);
        assert_eq!(c.with_max_file_size(5).max_file_size, 5);
    }

    #[test]
    fn default_policy() {
        let p = FileTypePolicy::default();
        assert_eq!(reason(&p, "model.safetensors"), None);
        assert_eq!(reason(&p, "DATA.CSV"), None);
        assert_eq!(reason(&p, "archive.tar.gz"), None);
        assert_eq!(
            reason(&p, "README").as_deref(),
            Some("Files without extensions are not allowed")
        );
        assert_eq!(
            reason(&p, "run.SH").as_deref(),
            Some("File type .sh is blocked for security reasons")
        );
        assert_eq!(
            reason(&p, "x.rs").as_deref(),
            Some("File type .rs is not in the allowed list")
        );
        assert_eq!(
            reason(&p, ".gitignore").as_deref(),
            Some("File type .gitignore is not in the allowed list")
        );
        assert_eq!(
            reason(&p, "x.").as_deref(),
            Some("File type . is not in the allowed list")
        );
    }

    #[test]
    fn overrides() {
        let c = config(&[("ALLOWED_FILE_EXTENSIONS_APPEND", "rs, .TOML")]);
        assert_eq!(reason(&c.policy, "main.rs"), None);
        assert_eq!(reason(&c.policy, "Cargo.toml"), None);
        assert_eq!(reason(&c.policy, "a.csv"), None);

        let c = config(&[
            ("ALLOWED_FILE_EXTENSIONS", "rs"),
            ("ALLOWED_FILE_EXTENSIONS_APPEND", "toml"),
        ]);
        assert_eq!(c.policy.allowed().collect::<Vec<_>>(), vec![".rs"]);

        // Set to empty: nothing is allowed any more.
        let c = config(&[("ALLOWED_FILE_EXTENSIONS", "")]);
        assert_eq!(c.policy.allowed().count(), 0);
        assert!(reason(&c.policy, "a.csv").is_some());

        // An empty _APPEND is just unset.
        let c = config(&[("BLOCKED_FILE_EXTENSIONS_APPEND", "")]);
        assert_eq!(c.policy, FileTypePolicy::default());

        let c = config(&[("BLOCKED_FILE_EXTENSIONS_APPEND", "CSV")]);
        assert_eq!(
            reason(&c.policy, "a.csv").as_deref(),
            Some("File type .csv is blocked for security reasons")
        );
        let c = config(&[("BLOCKED_FILE_EXTENSIONS", "")]);
        assert_eq!(c.policy.blocked().count(), 0);
        assert_eq!(
            reason(&c.policy, "x.sh").as_deref(),
            Some("File type .sh is not in the allowed list")
        );
    }
}
