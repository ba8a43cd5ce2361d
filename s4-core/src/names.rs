//! Validated names: [`BucketName`] and [`ObjectKey`].

use std::fmt;

use crate::error::{Error, Result};

/// A bucket name valid under S4's rules: 3–63 characters of `[a-z0-9-]`, alphanumeric
/// first and last characters, and no `--` anywhere (which also excludes `xn--`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketName(String);

/// Why a bucket name is invalid, in the order the checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketNameError {
    /// Empty.
    Missing,
    /// Shorter than 3 or longer than 63 characters.
    Length,
    /// Characters outside `[a-z0-9-]`, or a `-` first or last.
    Format,
    /// Contains `--` (including the reserved `xn--` prefix).
    Pattern,
}

impl BucketNameError {
    /// The human-readable message for this failure.
    pub fn message(self) -> &'static str {
        match self {
            BucketNameError::Missing => "Bucket name is required.",
            BucketNameError::Length => "Bucket name must be between 3 and 63 characters.",
            BucketNameError::Format => "Bucket name format is invalid.",
            BucketNameError::Pattern => "Bucket name contains invalid patterns.",
        }
    }
}

impl BucketName {
    /// Validates `name`.
    ///
    /// # Errors
    /// The first failing [`BucketNameError`] check.
    pub fn parse(name: &str) -> Result<Self, BucketNameError> {
        if name.is_empty() {
            return Err(BucketNameError::Missing);
        }
        if !(3..=63).contains(&name.len()) {
            return Err(BucketNameError::Length);
        }
        let bytes = name.as_bytes();
        let ok_char = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if !bytes.iter().all(ok_char) || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
            return Err(BucketNameError::Format);
        }
        if name.contains("--") {
            return Err(BucketNameError::Pattern);
        }
        Ok(BucketName(name.to_string()))
    }

    /// Wraps a name without validation: for names reported by a backend, or for
    /// routes that let the backend judge the name.
    pub fn unchecked(name: impl Into<String>) -> Self {
        BucketName(name.into())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for BucketName {
    type Error = Error;
    fn try_from(value: &str) -> Result<Self> {
        BucketName::parse(value)
            .map_err(|e| Error::invalid(e.message()).with_code("InvalidBucketName"))
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for BucketName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// An object key that every backend can store: non-empty, no empty, `.` or `..`
/// segments, no control characters, no leading or trailing `/`.
///
/// These are the limits of `object_store`'s paths; anything else (spaces, `%`, `#`,
/// `?`, `+`, any Unicode) is kept verbatim.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Validates `key`.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] with code `InvalidKey`.
    pub fn parse(key: &str) -> Result<Self> {
        let invalid = |m: &'static str| Error::invalid(m).with_code("InvalidKey");
        if key.is_empty() {
            return Err(invalid("Object key must not be empty."));
        }
        if key.starts_with('/') || key.ends_with('/') {
            return Err(invalid(
                "Object key must not start or end with '/' (use a folder delete for prefixes).",
            ));
        }
        if key.len() > 1024 {
            return Err(invalid("Object key is longer than 1024 bytes."));
        }
        for segment in key.split('/') {
            if segment.is_empty() || segment == "." || segment == ".." {
                return Err(invalid(
                    "Object key must not contain empty, '.' or '..' segments.",
                ));
            }
        }
        if key.chars().any(|c| c.is_control()) {
            return Err(invalid("Object key must not contain control characters."));
        }
        Ok(ObjectKey(key.to_string()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last `/`-separated segment (the file name).
    pub fn leaf(&self) -> &str {
        leaf_name(&self.0)
    }

    pub(crate) fn to_path(&self) -> object_store::path::Path {
        // Validated above to satisfy `Path::parse`, which keeps the text verbatim.
        object_store::path::Path::parse(&self.0)
            .unwrap_or_else(|_| object_store::path::Path::from(self.0.as_str()))
    }
}

impl TryFrom<&str> for ObjectKey {
    type Error = Error;
    fn try_from(value: &str) -> Result<Self> {
        ObjectKey::parse(value)
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// The text after the last `/` of `key` (ignoring one trailing `/`).
pub fn leaf_name(key: &str) -> &str {
    let trimmed = key.strip_suffix('/').unwrap_or(key);
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bucket-name table of the API contract (§7.2).
    #[test]
    fn bucket_name_table() {
        use BucketNameError::*;
        let cases: &[(&str, Result<(), BucketNameError>)] = &[
            ("", Err(Missing)),
            ("ab", Err(Length)),
            ("abc", Ok(())),
            (&"a".repeat(63), Ok(())),
            (&"a".repeat(64), Err(Length)),
            ("My-Bucket", Err(Format)),
            ("my.bucket", Err(Format)),
            ("my_bucket", Err(Format)),
            ("-abc", Err(Format)),
            ("abc-", Err(Format)),
            ("a--b", Err(Pattern)),
            ("xn--abc", Err(Pattern)),
            ("192-168-1-1", Ok(())),
            ("models-2024", Ok(())),
        ];
        for (name, expected) in cases {
            assert_eq!(
                BucketName::parse(name).map(|_| ()),
                *expected,
                "bucket name {name:?}"
            );
        }
    }

    #[test]
    fn object_keys() {
        for ok in [
            "a",
            "a b",
            "a+b",
            "100%",
            "a#b",
            "a?b",
            "ünï/cödé",
            "😀/🚀.txt",
            "a/b/c",
        ] {
            assert!(ObjectKey::parse(ok).is_ok(), "{ok}");
            assert_eq!(
                ObjectKey::parse(ok)
                    .map(|k| k.to_path().to_string())
                    .ok()
                    .as_deref(),
                Some(ok)
            );
        }
        for bad in ["", "/a", "a/", "a//b", "a/./b", "../a", "a\u{0}b", "a\nb"] {
            let err = ObjectKey::parse(bad).err();
            assert_eq!(
                err.as_ref().and_then(|e| e.code()),
                Some("InvalidKey"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn leaf_names() {
        assert_eq!(leaf_name("a/b/c.txt"), "c.txt");
        assert_eq!(leaf_name("a/b/"), "b");
        assert_eq!(leaf_name("c"), "c");
    }
}
