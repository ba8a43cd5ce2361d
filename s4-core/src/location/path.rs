//! Location ids and the lexical half of path safety (API §7.3 steps 1, 3 and 4).
//!
//! Nothing here touches the file system: [`RelPath::parse`] turns the decoded relative
//! path of a request into normalized components or refuses it with the contract's
//! messages. The file-system half (symlinks, races) is the job of the `cap_std::fs::Dir`
//! every operation runs against; see the module docs of [`crate::location`].

use std::borrow::Cow;
use std::io;
use std::path::PathBuf;

use crate::error::{Error, ErrorKind};

/// The machine code of every traversal / forbidden-path refusal.
pub(super) const FORBIDDEN: &str = "Forbidden";

/// A `PermissionDenied` error carrying the code `Forbidden` (a refused path, not an
/// `EACCES` from the file system).
pub(super) fn forbidden(message: impl Into<Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::PermissionDenied, message).with_code(FORBIDDEN)
}

/// The refusal of a path that leaves its location.
pub(super) fn escapes(path: &str) -> Error {
    forbidden(format!("Path escapes allowed directory: {path}"))
}

/// Whether `err` is cap-std's sandbox refusal ("a path led outside of the filesystem").
///
/// cap-std reports an escape (a `..` or a symlink leading outside the `Dir`, an absolute
/// symlink, or `openat2`'s `EXDEV` under `RESOLVE_BENEATH`) as a *synthetic*
/// `PermissionDenied` error without an OS error number, whereas a real `EACCES`/`EPERM`
/// always carries one. That difference is what tells a forbidden path (403 `Forbidden`)
/// from a permission problem (403 `Permission Denied`).
pub(super) fn is_escape(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::PermissionDenied && err.raw_os_error().is_none()
}

/// Parses `local-<n>` (`^local-(\d+)$`) against `count` configured locations.
pub(super) fn parse_location_id(id: &str, count: usize) -> Result<usize, Error> {
    let digits = id
        .strip_prefix("local-")
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| Error::not_found(format!("Invalid location ID: {id}")))?;
    match digits.parse::<usize>() {
        Ok(index) if index < count => Ok(index),
        Ok(index) => Err(Error::not_found(format!(
            "Location index out of bounds: {index}"
        ))),
        // More digits than fit a usize: certainly out of bounds.
        Err(_) => Err(Error::not_found(format!(
            "Location index out of bounds: {digits}"
        ))),
    }
}

/// A lexically normalized path relative to a location root: no empty, `.` or `..`
/// components, no `/`, `\` or NUL inside a component. The root is the empty path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct RelPath {
    parts: Vec<String>,
}

impl RelPath {
    /// The location root.
    pub(super) fn root() -> Self {
        Self::default()
    }

    /// Validates and normalizes a decoded relative path (§7.3 steps 3 and 4), in the
    /// contract's order: backslash, NUL, absolute, escape.
    ///
    /// The text is used verbatim: `%2e%2e` is a (weird) file name, not `..`.
    pub(super) fn parse(raw: &str) -> Result<Self, Error> {
        if raw.contains('\\') {
            return Err(forbidden("Backslash characters not allowed in paths"));
        }
        if raw.contains('\0') {
            return Err(forbidden("Null bytes not allowed in paths"));
        }
        if raw.starts_with('/') {
            return Err(forbidden(format!("Absolute paths not allowed: {raw}")));
        }
        let mut parts: Vec<String> = Vec::new();
        for part in raw.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(escapes(raw));
                    }
                }
                name => parts.push(name.to_string()),
            }
        }
        Ok(Self { parts })
    }

    /// Whether this is the location root.
    pub(super) fn is_root(&self) -> bool {
        self.parts.is_empty()
    }

    /// The path as the API shows it: `a/b`, `""` for the root.
    pub(super) fn display(&self) -> String {
        self.parts.join("/")
    }

    /// The path to hand to a `Dir` method: `a/b`, `.` for the root.
    pub(super) fn fs_path(&self) -> PathBuf {
        if self.parts.is_empty() {
            PathBuf::from(".")
        } else {
            self.parts.iter().collect()
        }
    }

    /// The parent (the root's parent is the root).
    pub(super) fn parent(&self) -> Self {
        let mut parts = self.parts.clone();
        parts.pop();
        Self { parts }
    }

    /// The last component; `None` for the root.
    pub(super) fn file_name(&self) -> Option<&str> {
        self.parts.last().map(String::as_str)
    }

    /// This path with one more component (`name` must be a single component).
    pub(super) fn join(&self, name: &str) -> Self {
        let mut parts = self.parts.clone();
        parts.push(name.to_string());
        Self { parts }
    }

    /// The components.
    pub(super) fn parts(&self) -> &[String] {
        &self.parts
    }

    /// The API's `parentPath`: `None` at the root, `"."` for a top-level entry.
    pub(super) fn parent_display(&self) -> Option<String> {
        if self.is_root() {
            None
        } else if self.parts.len() == 1 {
            Some(".".to_string())
        } else {
            Some(self.parent().display())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(raw: &str) -> String {
        let err = RelPath::parse(raw).expect_err(raw);
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{raw}");
        assert_eq!(err.code(), Some(FORBIDDEN), "{raw}");
        err.message().to_string()
    }

    #[test]
    fn normalizes() {
        let p = |raw: &str| RelPath::parse(raw).map(|p| p.display()).expect(raw);
        assert_eq!(p(""), "");
        assert_eq!(p("."), "");
        assert_eq!(p("a//b/./c/"), "a/b/c");
        assert_eq!(p("a/../b"), "b");
        assert_eq!(p("a/.."), "");
        assert_eq!(p("%2e%2e/%2e%2e/x"), "%2e%2e/%2e%2e/x");
        assert_eq!(p("...."), "....");
        assert_eq!(p("é t/ü"), "é t/ü");
    }

    #[test]
    fn refuses_in_contract_order() {
        assert_eq!(
            refused("..\\x"),
            "Backslash characters not allowed in paths"
        );
        assert_eq!(refused("a\0b"), "Null bytes not allowed in paths");
        assert_eq!(
            refused("/etc\\x"),
            "Backslash characters not allowed in paths"
        );
        assert_eq!(
            refused("/etc/passwd"),
            "Absolute paths not allowed: /etc/passwd"
        );
        assert_eq!(refused("/../x"), "Absolute paths not allowed: /../x");
        assert_eq!(refused(".."), "Path escapes allowed directory: ..");
        assert_eq!(refused("../"), "Path escapes allowed directory: ../");
        assert_eq!(
            refused("a/../../x"),
            "Path escapes allowed directory: a/../../x"
        );
    }

    #[test]
    fn parent_paths() {
        let parse = |raw: &str| RelPath::parse(raw).expect(raw);
        assert_eq!(parse("").parent_display(), None);
        assert_eq!(parse("a").parent_display().as_deref(), Some("."));
        assert_eq!(parse("a/b").parent_display().as_deref(), Some("a"));
        assert_eq!(parse("").fs_path(), PathBuf::from("."));
        assert_eq!(parse("a/b").fs_path(), PathBuf::from("a/b"));
    }

    #[test]
    fn location_ids() {
        assert_eq!(parse_location_id("local-0", 2).ok(), Some(0));
        assert_eq!(parse_location_id("local-01", 2).ok(), Some(1));
        let msg = |id: &str| {
            let err = parse_location_id(id, 2).expect_err(id);
            assert_eq!(err.kind(), ErrorKind::NotFound);
            err.message().to_string()
        };
        assert_eq!(msg("local-2"), "Location index out of bounds: 2");
        assert_eq!(
            msg("local-99999999999999999999999"),
            "Location index out of bounds: 99999999999999999999999"
        );
        assert_eq!(msg("local-"), "Invalid location ID: local-");
        assert_eq!(msg("local--1"), "Invalid location ID: local--1");
        assert_eq!(msg("local-1a"), "Invalid location ID: local-1a");
        assert_eq!(msg("local-١"), "Invalid location ID: local-١");
        assert_eq!(msg("s3-0"), "Invalid location ID: s3-0");
    }
}
