//! Validated names: [`BucketName`] and [`ObjectKey`].

use std::fmt;

use crate::error::{Error, Result};

/// A bucket name valid under S3's general-purpose rules (API contract §7.2):
/// 3–63 characters of `[a-z0-9.-]`, alphanumeric first and last characters, no
/// `..`, `.-` or `-.`, not an IPv4 address, no `xn--` prefix and no `-s3alias` /
/// `--ol-s3` suffix. Dots are allowed (`data.2024`).
///
/// Every name that reaches a backend has passed these checks, except names a
/// backend itself reported (an S3 engine may hold legacy names), which only
/// travel back to that backend.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketName(String);

/// Why a bucket name is invalid, in the order the checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketNameError {
    /// Empty.
    Missing,
    /// Shorter than 3 or longer than 63 characters.
    Length,
    /// Characters outside `[a-z0-9.-]`, or a `.`/`-` first or last.
    Format,
    /// `..`, `.-`, `-.`, an IPv4 address, the `xn--` prefix or a reserved suffix.
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

/// Whether `name` has the form of an IPv4 address (`192.168.5.4`).
fn is_ipv4_form(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
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
        let ok_char =
            |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'.';
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if !bytes.iter().all(ok_char) || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
            return Err(BucketNameError::Format);
        }
        if name.contains("..")
            || name.contains(".-")
            || name.contains("-.")
            || is_ipv4_form(name)
            || name.starts_with("xn--")
            || name.ends_with("-s3alias")
            || name.ends_with("--ol-s3")
        {
            return Err(BucketNameError::Pattern);
        }
        Ok(BucketName(name.to_string()))
    }

    /// Wraps a name a backend itself reported (e.g. a legacy S3 bucket name), to
    /// address that bucket again on the same backend. Never for client input.
    pub(crate) fn from_backend(name: impl Into<String>) -> Self {
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

/// Most bytes in an object key (S3's limit).
pub const MAX_KEY_BYTES: usize = 1024;

/// An object key: 1–1024 bytes of UTF-8 without control characters.
///
/// This is every key an S3 engine can hold and list, including keys written by
/// other tools that are not file-system paths: folder markers (`x/`), a leading
/// `/`, empty segments (`a//b`), `.` or `..` segments (`./a`). Such keys are valid
/// *names*; whether a backend can hold them is the backend's business: the S3
/// backend addresses them verbatim, while file-system and memory backends, where
/// they cannot exist, refuse them with `InvalidKey` (see [`ObjectKey::is_portable`]).
/// No key is ever turned into a file-system path without that check.
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
        if key.len() > MAX_KEY_BYTES {
            return Err(invalid("Object key is longer than 1024 bytes."));
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

    /// Whether the key is a plain relative path: `/`-separated segments, none
    /// empty, `.` or `..`, no leading or trailing `/`. Only such keys can be files
    /// of a file-system backend or `object_store` paths.
    pub fn is_portable(&self) -> bool {
        self.to_path().is_some()
    }

    /// The `object_store` path of a portable key (verbatim), `None` otherwise.
    pub(crate) fn to_path(&self) -> Option<object_store::path::Path> {
        object_store::path::Path::parse(&self.0)
            .ok()
            .filter(|p| p.as_ref() == self.0)
    }

    /// The portable path, or the `InvalidKey` error a backend that holds only
    /// portable keys answers for any other key.
    pub(crate) fn portable_path(&self) -> Result<object_store::path::Path> {
        self.to_path().ok_or_else(|| {
            Error::invalid(
                "Object key must not start or end with '/' or contain empty, '.' or '..' segments on this storage backend.",
            )
            .with_code("InvalidKey")
        })
    }
}

/// A listing, search or folder-delete prefix: at most 1024 bytes of UTF-8 without
/// control characters (the empty prefix is the whole bucket).
///
/// Like [`ObjectKey`], a prefix is a *name* prefix, not a path: the S3 backend
/// sends it verbatim; the file-system backend maps it onto directories only
/// through its confined path builder, which refuses anything but plain segments.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix(String);

impl Prefix {
    /// The empty prefix (the whole bucket).
    pub fn root() -> Self {
        Prefix(String::new())
    }

    /// Validates `prefix`.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] with code `InvalidPrefix`.
    pub fn parse(prefix: &str) -> Result<Self> {
        let invalid = |m: &'static str| Error::invalid(m).with_code("InvalidPrefix");
        if prefix.len() > MAX_KEY_BYTES {
            return Err(invalid("Decoded prefix is too long."));
        }
        if prefix.chars().any(|c| c.is_control()) {
            return Err(invalid("Prefix contains invalid characters."));
        }
        Ok(Prefix(prefix.to_string()))
    }

    /// The prefix as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the empty prefix.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether every folder of the prefix (the text up to its last `/`) is a plain
    /// segment (not empty, `.` or `..`), so that it can name directories of a
    /// file-system backend. The leaf after the last `/` is only a name prefix.
    pub fn is_portable(&self) -> bool {
        match self.0.rfind('/') {
            None => true,
            Some(i) => self.0[..i]
                .split('/')
                .all(|s| !s.is_empty() && s != "." && s != ".."),
        }
    }

    /// The folder prefix of a key or folder name: the text with one `/` appended
    /// unless it already ends in one.
    pub(crate) fn folder_of(key: &str) -> Prefix {
        if key.ends_with('/') {
            Prefix(key.to_string())
        } else {
            Prefix(format!("{key}/"))
        }
    }
}

impl TryFrom<&str> for Prefix {
    type Error = Error;
    fn try_from(value: &str) -> Result<Self> {
        Prefix::parse(value)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
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

    /// The bucket-name table of the API contract (§7.2, dots allowed).
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
            ("my_bucket", Err(Format)),
            ("-abc", Err(Format)),
            ("abc-", Err(Format)),
            (".abc", Err(Format)),
            ("abc.", Err(Format)),
            ("a/b", Err(Format)),
            ("a b", Err(Format)),
            ("my.bucket", Ok(())),
            ("data.2024", Ok(())),
            ("a.b.c.d.e", Ok(())),
            ("a--b", Ok(())),
            ("my..bucket", Err(Pattern)),
            ("my.-bucket", Err(Pattern)),
            ("my-.bucket", Err(Pattern)),
            ("192.168.1.1", Err(Pattern)),
            ("10.0.0.255", Err(Pattern)),
            ("1.2.3.4.5", Ok(())),
            ("xn--abc", Err(Pattern)),
            ("abc-s3alias", Err(Pattern)),
            ("abc--ol-s3", Err(Pattern)),
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
            let key = ObjectKey::parse(ok).expect(ok);
            assert!(key.is_portable(), "{ok}");
            assert_eq!(key.to_path().map(|p| p.to_string()).as_deref(), Some(ok));
        }
        // Valid names that are not paths: kept verbatim, never portable.
        for raw in [
            "/a", "a/", "x/", "a//b", "a/./b", "../a", "./a", ".", "..", "a ",
        ] {
            let key = ObjectKey::parse(raw).expect(raw);
            assert_eq!(key.as_str(), raw);
            if raw != "a " {
                assert!(!key.is_portable(), "{raw:?}");
                assert_eq!(
                    key.portable_path()
                        .err()
                        .and_then(|e| e.code().map(str::to_string))
                        .as_deref(),
                    Some("InvalidKey")
                );
            }
        }
        for bad in ["", "a\u{0}b", "a\nb", &"k".repeat(1025)] {
            let err = ObjectKey::parse(bad).err();
            assert_eq!(
                err.as_ref().and_then(|e| e.code()),
                Some("InvalidKey"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn prefixes() {
        assert!(Prefix::parse("").expect("empty").is_empty());
        assert_eq!(
            Prefix::parse("/etc/").expect("valid name").as_str(),
            "/etc/"
        );
        for bad in ["a\u{0}", "\u{7f}", &"p".repeat(1025)] {
            assert_eq!(
                Prefix::parse(bad)
                    .err()
                    .and_then(|e| e.code().map(str::to_string))
                    .as_deref(),
                Some("InvalidPrefix")
            );
        }
        for portable in ["", "a", "a/", "a/b", "a/b/", "a/.b", "a/.."] {
            assert!(
                Prefix::parse(portable).expect("valid").is_portable(),
                "{portable:?}"
            );
        }
        for raw in ["/", "/etc/", "a//", "./a", "../x/", "a/../b/", "a/./"] {
            assert!(!Prefix::parse(raw).expect("valid").is_portable(), "{raw:?}");
        }
        assert_eq!(Prefix::folder_of("a").as_str(), "a/");
        assert_eq!(Prefix::folder_of("a/").as_str(), "a/");
    }

    #[test]
    fn leaf_names() {
        assert_eq!(leaf_name("a/b/c.txt"), "c.txt");
        assert_eq!(leaf_name("a/b/"), "b");
        assert_eq!(leaf_name("c"), "c");
    }
}

/// Property tests: arbitrary input never panics, and whatever is accepted obeys the
/// rules of §7.2 (bucket names) and §7.1 (keys and prefixes).
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    /// §7.2 restated independently of [`BucketName::parse`].
    fn obeys_7_2(name: &str) -> bool {
        let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        let ipv4_form = {
            let parts: Vec<&str> = name.split('.').collect();
            parts.len() == 4
                && parts
                    .iter()
                    .all(|p| (1..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_digit()))
        };
        (3..=63).contains(&name.chars().count())
            && name.chars().all(|c| alnum(c) || c == '.' || c == '-')
            && name.starts_with(alnum)
            && name.ends_with(alnum)
            && !["..", ".-", "-."].iter().any(|p| name.contains(p))
            && !ipv4_form
            && !name.starts_with("xn--")
            && !name.ends_with("-s3alias")
            && !name.ends_with("--ol-s3")
    }

    /// A key or prefix that passed validation: 1..=1024 bytes (keys) of text
    /// without control characters.
    fn obeys_7_1(text: &str) -> bool {
        text.len() <= MAX_KEY_BYTES && !text.chars().any(char::is_control)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn bucket_name_any_text(name in any::<String>()) {
            if let Ok(bucket) = BucketName::parse(&name) {
                prop_assert!(obeys_7_2(&name), "accepted {name:?}");
                prop_assert_eq!(bucket.as_str(), name.as_str());
            }
        }

        /// Over the bucket alphabet, the validator agrees with §7.2 both ways, and a
        /// rejection converts to the `InvalidBucketName` error.
        #[test]
        fn bucket_name_alphabet(name in "[a-z0-9.-]{0,66}|[0-9]{1,4}(\\.[0-9]{1,4}){2,4}|xn--[a-z0-9]{1,5}|[a-z0-9]{1,5}(-s3alias|--ol-s3)") {
            match BucketName::parse(&name) {
                Ok(bucket) => {
                    prop_assert!(obeys_7_2(&name), "accepted {name:?}");
                    prop_assert_eq!(bucket.as_str(), name.as_str());
                }
                Err(_) => {
                    prop_assert!(!obeys_7_2(&name), "refused {name:?}");
                    let err = BucketName::try_from(name.as_str()).err();
                    prop_assert_eq!(err.as_ref().and_then(|e| e.code()), Some("InvalidBucketName"));
                }
            }
        }

        /// Dotted names of valid labels are accepted (`data.2024`).
        #[test]
        fn dotted_names_accepted(labels in prop::collection::vec("[a-z][a-z0-9-]{0,8}[a-z0-9]", 1..5)) {
            let name = labels.join(".");
            prop_assume!((3..=63).contains(&name.len()) && !name.starts_with("xn--"));
            prop_assume!(!name.ends_with("-s3alias") && !name.ends_with("--ol-s3"));
            prop_assert!(BucketName::parse(&name).is_ok(), "refused {name:?}");
        }

        #[test]
        fn object_key_any_text(key in any::<String>()) {
            match ObjectKey::parse(&key) {
                Ok(parsed) => {
                    prop_assert!(!key.is_empty() && obeys_7_1(&key), "accepted {key:?}");
                    prop_assert_eq!(parsed.as_str(), key.as_str());
                    prop_assert!(parsed.leaf().len() <= key.len());
                    if parsed.is_portable() {
                        // A portable key is plain segments, verbatim.
                        prop_assert!(key.split('/').all(|s| !s.is_empty() && s != "." && s != ".."));
                        let path = parsed.portable_path().map(|p| p.to_string()).ok();
                        prop_assert_eq!(path.as_deref(), Some(key.as_str()));
                    } else {
                        prop_assert!(parsed.portable_path().is_err());
                    }
                }
                Err(e) => prop_assert_eq!(e.code(), Some("InvalidKey")),
            }
        }

        /// Keys built from path-like pieces (slashes, dots, spaces): accepted keys that
        /// are portable never hold an empty, `.` or `..` segment.
        #[test]
        fn object_key_pathlike(key in "[a./ \\\\\u{0}-]{0,12}") {
            if let Ok(parsed) = ObjectKey::parse(&key) {
                prop_assert!(!key.contains('\0'));
                if parsed.is_portable() {
                    prop_assert!(!key.starts_with('/') && !key.ends_with('/'));
                    prop_assert!(key.split('/').all(|s| !s.is_empty() && s != "." && s != ".."), "{key:?}");
                }
            }
        }

        #[test]
        fn prefix_any_text(prefix in any::<String>()) {
            match Prefix::parse(&prefix) {
                Ok(parsed) => {
                    prop_assert!(obeys_7_1(&prefix), "accepted {prefix:?}");
                    prop_assert_eq!(parsed.as_str(), prefix.as_str());
                    prop_assert_eq!(parsed.is_empty(), prefix.is_empty());
                }
                Err(e) => prop_assert_eq!(e.code(), Some("InvalidPrefix")),
            }
        }

        /// A portable prefix's folders (before the last `/`) are plain segments.
        #[test]
        fn prefix_pathlike(prefix in "[a./-]{0,12}") {
            let parsed = Prefix::parse(&prefix).map_err(|e| TestCaseError::fail(e.to_string()))?;
            if parsed.is_portable() {
                if let Some(i) = prefix.rfind('/') {
                    prop_assert!(prefix[..i].split('/').all(|s| !s.is_empty() && s != "." && s != ".."), "{prefix:?}");
                }
            }
            let folder = Prefix::folder_of(&prefix);
            prop_assert!(folder.as_str().ends_with('/'));
            prop_assert!(folder.as_str().starts_with(prefix.as_str()));
        }

        #[test]
        fn leaf_is_a_suffix(key in "[a/]{0,10}") {
            let leaf = leaf_name(&key);
            prop_assert!(!leaf.contains('/'));
            prop_assert!(key.strip_suffix('/').unwrap_or(&key).ends_with(leaf));
        }
    }
}
