//! Per-object metadata of the local and memory backends: content type, user
//! metadata, tags and a content ETag (S3's: hex MD5 of the bytes for single-part
//! writes, `"<md5 of part md5s>-<N>"` for multipart ones).
//!
//! The local backend keeps it in two extended attributes of the object's own file
//! (`user.s4.meta`, `user.s4.tags`). They are set on the staging file before it is
//! renamed into place, so the data and its metadata appear together in one atomic
//! `rename(2)`, move with the file, vanish with its unlink, and never show up in a
//! directory listing. See the README's design notes.

// The extended-attribute half serves only the local backend.
#![cfg_attr(not(feature = "local"), allow(dead_code))]

use std::os::fd::AsFd;
use std::path::Path as FsPath;
use std::sync::atomic::{AtomicBool, Ordering};

use md5::{Digest, Md5};
use object_store::{Attribute, AttributeValue, Attributes};
use serde::{Deserialize, Serialize};

/// Extended attribute holding a [`StoredMeta`] as JSON.
pub(crate) const META_XATTR: &str = "user.s4.meta";
/// Extended attribute holding the tag set as JSON (`[["key","value"],...]`).
pub(crate) const TAGS_XATTR: &str = "user.s4.tags";
/// Largest metadata record read back (the file system limits values further).
const MAX_XATTR: usize = 64 << 10;

/// What the local and memory backends keep with every object written by S4.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredMeta {
    /// ETag with its quotes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) etag: Option<String>,
    /// Content type as stored.
    #[serde(
        rename = "contentType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) content_type: Option<String>,
    /// User metadata (`x-amz-meta-*` equivalents), in the order given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) metadata: Vec<(String, String)>,
}

impl StoredMeta {
    /// The record for a write with `attributes` whose content hashes to `etag`
    /// (unless the attributes carry an [`etag_override_attribute`]).
    pub(crate) fn from_attributes(attributes: &Attributes, etag: String) -> Self {
        let mut meta = StoredMeta {
            etag: Some(etag),
            ..StoredMeta::default()
        };
        let overridden = etag_override_attribute();
        for (attribute, value) in attributes {
            match attribute {
                a if *a == overridden => meta.etag = Some(value.to_string()),
                Attribute::ContentType => meta.content_type = Some(value.to_string()),
                Attribute::Metadata(name) => {
                    meta.metadata.push((name.to_string(), value.to_string()))
                }
                _ => {}
            }
        }
        meta
    }

    /// Attributes as a read reports them: the stored type, or one guessed from the
    /// key's extension (objects written before metadata was kept).
    pub(crate) fn attributes(&self, key: &str) -> Attributes {
        let mut attributes = Attributes::new();
        let content_type = self.content_type.clone().or_else(|| guess_type(key));
        if let Some(ct) = content_type {
            attributes.insert(Attribute::ContentType, AttributeValue::from(ct));
        }
        for (name, value) in &self.metadata {
            attributes.insert(
                Attribute::Metadata(name.clone().into()),
                AttributeValue::from(value.clone()),
            );
        }
        attributes
    }
}

/// Internal write attribute: the ETag to record instead of the content's own
/// (multipart uploads completed from staged parts). Never stored as metadata.
pub(crate) const ETAG_OVERRIDE: &str = "\u{1}s4-etag";

/// The [`ETAG_OVERRIDE`] attribute.
pub(crate) fn etag_override_attribute() -> Attribute {
    Attribute::Metadata(ETAG_OVERRIDE.into())
}

/// The ETag a write with `attributes` records: the override, or `computed`.
pub(crate) fn etag_for(attributes: &Attributes, computed: String) -> String {
    attributes
        .get(&etag_override_attribute())
        .map(|v| v.to_string())
        .unwrap_or(computed)
}

/// The content type of a key guessed from its extension.
pub(crate) fn guess_type(key: &str) -> Option<String> {
    mime_guess::from_path(key)
        .first()
        .map(|m| m.essence_str().to_string())
}

/// `"<hex md5>"`.
pub(crate) fn single_etag(digest: &[u8]) -> String {
    format!("\"{}\"", hex(digest))
}

/// S3's multipart ETag: the MD5 of the concatenated binary part MD5s, `-<parts>`.
pub(crate) fn multipart_etag(part_digests: &[[u8; 16]]) -> String {
    let mut md5 = Md5::new();
    for d in part_digests {
        md5.update(d);
    }
    format!("\"{}-{}\"", hex(&md5.finalize()), part_digests.len())
}

/// The MD5 of a sequence of chunks.
pub(crate) fn md5_of<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> [u8; 16] {
    let mut md5 = Md5::new();
    for c in chunks {
        md5.update(c);
    }
    md5.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

static WARNED: AtomicBool = AtomicBool::new(false);

fn unsupported(e: rustix::io::Errno) -> bool {
    e == rustix::io::Errno::NOTSUP || e == rustix::io::Errno::OPNOTSUPP
}

fn warn_unsupported() {
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "the data directory's file system does not support user extended attributes: \
             object content types, metadata and tags are not kept"
        );
    }
}

/// Sets an attribute on an open file (blocking). A file system without user
/// extended attributes is tolerated (logged once): the object is still written.
pub(crate) fn set_fd<Fd: AsFd>(fd: Fd, name: &str, value: &[u8]) -> std::io::Result<()> {
    match rustix::fs::fsetxattr(fd, name, value, rustix::fs::XattrFlags::empty()) {
        Ok(()) => Ok(()),
        Err(e) if unsupported(e) => {
            warn_unsupported();
            Ok(())
        }
        Err(e) if e == rustix::io::Errno::TOOBIG || e == rustix::io::Errno::NOSPC => {
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "object metadata is too large",
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// Removes an attribute from an open file (blocking); absent is fine.
pub(crate) fn remove_fd<Fd: AsFd>(fd: Fd, name: &str) -> std::io::Result<()> {
    match rustix::fs::fremovexattr(fd, name) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::NODATA || unsupported(e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Reads an attribute of an open file (blocking); `None` when absent.
pub(crate) fn get_fd<Fd: AsFd>(fd: Fd, name: &str) -> std::io::Result<Option<Vec<u8>>> {
    // Records are small: a stack buffer first, the largest size only if needed.
    let mut small = [0u8; 1024];
    match rustix::fs::fgetxattr(fd.as_fd(), name, &mut small[..]) {
        Ok(n) => return Ok(Some(small[..n].to_vec())),
        Err(e) if e == rustix::io::Errno::NODATA || unsupported(e) => return Ok(None),
        Err(e) if e == rustix::io::Errno::RANGE => {}
        Err(e) => return Err(e.into()),
    }
    let mut buf = vec![0u8; MAX_XATTR];
    match rustix::fs::fgetxattr(fd, name, &mut buf[..]) {
        Ok(n) => {
            buf.truncate(n);
            Ok(Some(buf))
        }
        Err(e) if e == rustix::io::Errno::NODATA || unsupported(e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Reads an attribute by path (blocking); `None` when absent or unreadable.
pub(crate) fn get_path(path: &FsPath, name: &str) -> Option<Vec<u8>> {
    let mut buf = [0u8; 1024];
    match rustix::fs::getxattr(path, name, &mut buf[..]) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(e) if e == rustix::io::Errno::RANGE => {
            let mut big = vec![0u8; MAX_XATTR];
            let n = rustix::fs::getxattr(path, name, &mut big[..]).ok()?;
            big.truncate(n);
            Some(big)
        }
        Err(_) => None,
    }
}

/// The metadata record of an open object file.
pub(crate) fn read_meta_fd<Fd: AsFd>(fd: Fd) -> std::io::Result<Option<StoredMeta>> {
    Ok(get_fd(fd, META_XATTR)?.and_then(|raw| serde_json::from_slice(&raw).ok()))
}

/// The stored ETag of the object file at `path` (for listings: one `getxattr`).
pub(crate) fn etag_at(path: &FsPath) -> Option<String> {
    let raw = get_path(path, META_XATTR)?;
    serde_json::from_slice::<StoredMeta>(&raw).ok()?.etag
}

/// Writes the metadata record of an open (staging) file.
pub(crate) fn write_meta_fd<Fd: AsFd>(fd: Fd, meta: &StoredMeta) -> std::io::Result<()> {
    let raw = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
    set_fd(fd, META_XATTR, &raw)
}

/// Encodes a tag set.
pub(crate) fn encode_tags(tags: &[(String, String)]) -> Vec<u8> {
    serde_json::to_vec(tags).unwrap_or_default()
}

/// Decodes a tag set (an unreadable one is empty).
pub(crate) fn decode_tags(raw: &[u8]) -> Vec<(String, String)> {
    serde_json::from_slice(raw).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags() {
        // md5("") and md5("hello").
        assert_eq!(
            single_etag(&md5_of([&b""[..]])),
            "\"d41d8cd98f00b204e9800998ecf8427e\""
        );
        assert_eq!(
            single_etag(&md5_of([&b"hel"[..], &b"lo"[..]])),
            "\"5d41402abc4b2a76b9719d911017c592\""
        );
        let parts = [md5_of([&b"a"[..]]), md5_of([&b"b"[..]])];
        let tag = multipart_etag(&parts);
        assert!(tag.ends_with("-2\""), "{tag}");
        assert_eq!(tag.len(), 2 + 32 + 2);
    }

    #[test]
    fn record_round_trip_and_guess() {
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, "text/plain".into());
        attributes.insert(Attribute::Metadata("owner".into()), "team-a".into());
        let meta = StoredMeta::from_attributes(&attributes, "\"x\"".into());
        let raw = serde_json::to_vec(&meta).expect("json");
        let back: StoredMeta = serde_json::from_slice(&raw).expect("json");
        assert_eq!(back, meta);
        let legacy = StoredMeta::default().attributes("a/b.json");
        assert_eq!(
            legacy.get(&Attribute::ContentType).map(|v| v.to_string()),
            Some("application/json".to_string())
        );
    }

    #[test]
    fn xattrs_on_a_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("f");
        let file = std::fs::File::create(&path).expect("create");
        let meta = StoredMeta {
            etag: Some("\"e\"".into()),
            content_type: Some("text/plain".into()),
            metadata: vec![("k".into(), "v".into())],
        };
        write_meta_fd(&file, &meta).expect("set");
        let back = read_meta_fd(&file).expect("get");
        if back.is_none() {
            eprintln!("SKIPPED: no user xattrs on the temp file system");
            return;
        }
        assert_eq!(back, Some(meta));
        assert_eq!(etag_at(&path).as_deref(), Some("\"e\""));
        set_fd(&file, TAGS_XATTR, &encode_tags(&[("a".into(), "b".into())])).expect("tags");
        let tags = get_fd(&file, TAGS_XATTR).expect("get").expect("present");
        assert_eq!(decode_tags(&tags), vec![("a".to_string(), "b".to_string())]);
        remove_fd(&file, TAGS_XATTR).expect("remove");
        assert_eq!(get_fd(&file, TAGS_XATTR).expect("get"), None);
        // A record larger than the first read buffer.
        let big = StoredMeta {
            metadata: vec![("k".into(), "v".repeat(2000))],
            ..StoredMeta::default()
        };
        write_meta_fd(&file, &big).expect("set");
        assert_eq!(read_meta_fd(&file).expect("get"), Some(big.clone()));
        assert!(get_path(&path, META_XATTR).is_some_and(|raw| raw.len() > 2000));
    }
}
