//! Inline previews for the view routes: images as data URLs, text as text.
//!
//! The same rules serve bucket objects and local files, so they live here. The
//! caller reads at most [`PREVIEW_LIMIT`] bytes and hands them over; nothing here
//! does I/O.

use base64::Engine as _;

/// Largest image inlined, and the number of text bytes read (1 MiB).
pub const PREVIEW_LIMIT: u64 = 1 << 20;

const IMAGE_TYPES: &[(&str, &str)] = &[
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("png", "image/png"),
    ("gif", "image/gif"),
    ("bmp", "image/bmp"),
    ("svg", "image/svg+xml"),
    ("webp", "image/webp"),
    ("ico", "image/x-icon"),
];

const TEXT_EXTENSIONS: &[&str] = &[
    "txt",
    "log",
    "md",
    "json",
    "jsonl",
    "yaml",
    "yml",
    "csv",
    "tsv",
    "xml",
    "html",
    "css",
    "scss",
    "js",
    "jsx",
    "ts",
    "tsx",
    "py",
    "sh",
    "bash",
    "bat",
    "ps1",
    "sql",
    "toml",
    "ini",
    "cfg",
    "conf",
    "cnf",
    "env",
    "properties",
    "java",
    "go",
    "rs",
    "rb",
    "php",
    "pl",
    "pm",
    "r",
    "rmd",
    "cs",
    "fs",
    "vb",
    "clj",
    "edn",
    "ipynb",
];

const TEXT_NAMES: &[&str] = &[
    "Dockerfile",
    "Containerfile",
    "Makefile",
    ".gitignore",
    ".gitattributes",
    ".editorconfig",
    ".dockerignore",
    ".babelrc",
    ".eslintrc",
    ".prettierrc",
];

/// What kind of preview a file gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviewKind {
    /// An image with this MIME type.
    Image(&'static str),
    /// Text.
    Text,
    /// No preview.
    Unsupported,
}

/// A preview, ready to serialize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preview {
    /// Available: `kind` is `image` or `text`.
    Available {
        /// `image` or `text`.
        kind: &'static str,
        /// Data URL or text.
        content: String,
        /// Whether the text was cut at [`PREVIEW_LIMIT`].
        truncated: bool,
    },
    /// Not available, with the reason (`too_large`, `binary`, `directory`, `unsupported_type`).
    Unavailable(&'static str),
}

/// Decides the preview kind from the leaf `name` and the stored content type.
pub fn preview_kind(name: &str, content_type: Option<&str>) -> PreviewKind {
    let extension = name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    if let Some((_, mime)) = IMAGE_TYPES.iter().find(|(ext, _)| *ext == extension) {
        return PreviewKind::Image(mime);
    }
    let text_type = content_type.is_some_and(|ct| {
        let ct = ct.to_ascii_lowercase();
        ct.starts_with("text/") || ct.split(';').next().map(str::trim) == Some("application/json")
    });
    if TEXT_EXTENSIONS.contains(&extension.as_str()) || TEXT_NAMES.contains(&name) || text_type {
        return PreviewKind::Text;
    }
    PreviewKind::Unsupported
}

/// Whether the preview of `kind` for a file of `size` bytes needs the file's first
/// bytes (and so a read), or can be decided from metadata alone.
pub fn needs_bytes(kind: PreviewKind, size: u64) -> bool {
    match kind {
        PreviewKind::Image(_) => size <= PREVIEW_LIMIT,
        PreviewKind::Text => true,
        PreviewKind::Unsupported => false,
    }
}

/// Builds the preview from the first bytes of a file (at most [`PREVIEW_LIMIT`]).
pub fn build_preview(kind: PreviewKind, size: u64, head: &[u8]) -> Preview {
    match kind {
        PreviewKind::Image(_) if size > PREVIEW_LIMIT => Preview::Unavailable("too_large"),
        PreviewKind::Image(mime) => Preview::Available {
            kind: "image",
            content: format!(
                "data:{mime};base64,{}",
                base64::engine::general_purpose::STANDARD.encode(head)
            ),
            truncated: false,
        },
        PreviewKind::Text => {
            let head = &head[..head.len().min(PREVIEW_LIMIT as usize)];
            if head.contains(&0) {
                return Preview::Unavailable("binary");
            }
            let truncated = size > PREVIEW_LIMIT;
            // Drop an incomplete trailing UTF-8 sequence cut by the limit.
            let mut end = head.len();
            if truncated || (head.len() as u64) < size {
                if let Err(e) = std::str::from_utf8(head) {
                    if e.error_len().is_none() {
                        end = e.valid_up_to();
                    }
                }
            }
            Preview::Available {
                kind: "text",
                content: String::from_utf8_lossy(&head[..end]).into_owned(),
                truncated,
            }
        }
        PreviewKind::Unsupported => Preview::Unavailable("unsupported_type"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(preview_kind("a.PNG", None), PreviewKind::Image("image/png"));
        assert_eq!(preview_kind("config.json", None), PreviewKind::Text);
        assert_eq!(preview_kind("Dockerfile", None), PreviewKind::Text);
        assert_eq!(preview_kind(".gitignore", None), PreviewKind::Text);
        assert_eq!(preview_kind("blob", Some("text/plain")), PreviewKind::Text);
        assert_eq!(
            preview_kind("blob", Some("application/json; charset=utf-8")),
            PreviewKind::Text
        );
        assert_eq!(preview_kind("model.bin", None), PreviewKind::Unsupported);
    }

    #[test]
    fn text_previews() {
        assert_eq!(
            build_preview(PreviewKind::Text, 3, b"a,b"),
            Preview::Available {
                kind: "text",
                content: "a,b".into(),
                truncated: false
            }
        );
        assert_eq!(
            build_preview(PreviewKind::Text, 3, b"a\0b"),
            Preview::Unavailable("binary")
        );
        // "é" is two bytes; a cut after its first byte is dropped.
        let mut head = vec![b'x'; PREVIEW_LIMIT as usize - 1];
        head.push(0xC3);
        match build_preview(PreviewKind::Text, PREVIEW_LIMIT + 1, &head) {
            Preview::Available {
                content, truncated, ..
            } => {
                assert!(truncated);
                assert_eq!(content.len(), PREVIEW_LIMIT as usize - 1);
            }
            other => panic!("unexpected {other:?}"),
        }
        // Invalid sequences become U+FFFD.
        match build_preview(PreviewKind::Text, 3, b"a\xFFb") {
            Preview::Available { content, .. } => assert_eq!(content, "a\u{FFFD}b"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn image_previews() {
        match build_preview(PreviewKind::Image("image/png"), 3, b"abc") {
            Preview::Available { kind, content, .. } => {
                assert_eq!(kind, "image");
                assert_eq!(content, "data:image/png;base64,YWJj");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            build_preview(PreviewKind::Image("image/png"), PREVIEW_LIMIT + 1, b""),
            Preview::Unavailable("too_large")
        );
    }
}
