//! Leaf-name search over bucket listings (`q` with `startsWith` or `contains`).
//!
//! Matching is case-insensitive (ASCII folding; queries are ASCII) against the leaf
//! name: the text after the last `/` of a key, or a folder's last segment. Match
//! offsets are reported in UTF-16 code units, as browsers count them.

use crate::error::Result;
use crate::names::{leaf_name, BucketName};
use crate::object::ListOptions;
use crate::storage::{ObjectSummary, Page};
use crate::S4;

/// Backend page size of a contains scan.
pub const SCAN_PAGE_SIZE: usize = 500;
/// Backend pages a contains scan reads at most per request.
pub const SCAN_MAX_PAGES: usize = 5;

/// Search mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMode {
    /// Leaf starts with the query; one backend page.
    StartsWith,
    /// Leaf contains the query; a bounded multi-page scan.
    Contains,
}

/// Why a contains scan stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanStop {
    /// The page cap was hit with the backend still having more and too few matches.
    ScanCap,
    /// `max_keys` matching objects were found.
    MaxKeysReached,
    /// The listing ended.
    BucketExhausted,
}

impl ScanStop {
    /// The contract's name for the reason.
    pub fn as_str(self) -> &'static str {
        match self {
            ScanStop::ScanCap => "scanCap",
            ScanStop::MaxKeysReached => "maxKeysReached",
            ScanStop::BucketExhausted => "bucketExhausted",
        }
    }
}

/// A search request.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// Folder prefix to search in.
    pub prefix: crate::names::Prefix,
    /// Query text.
    pub query: String,
    /// Mode.
    pub mode: SearchMode,
    /// Re-run a startsWith page with no match as a contains scan.
    pub auto_broaden: bool,
    /// Page size (objects).
    pub max_keys: usize,
    /// Continuation token.
    pub continuation_token: Option<String>,
}

/// The matches of a search in one key's leaf name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMatches {
    /// The full key (or folder prefix).
    pub key: String,
    /// Half-open `[start, end)` UTF-16 offsets of every match in the leaf name.
    pub offsets: Vec<[usize; 2]>,
}

/// The matched keys of a search, each with its match offsets.
pub type MatchList = Vec<KeyMatches>;

/// The result of a search.
#[derive(Debug, Clone)]
pub struct SearchResult {
    /// Matching objects and folders, and the continuation token.
    pub page: Page,
    /// Whether more results may follow.
    pub is_truncated: bool,
    /// The mode that actually ran.
    pub mode: SearchMode,
    /// Set when a startsWith search was broadened into a contains scan.
    pub broadened: bool,
    /// Whether the scan stopped before the end of the listing.
    pub partial_result: bool,
    /// Backend pages read (contains scans).
    pub scan_pages: Option<usize>,
    /// Why the scan stopped (contains scans).
    pub scan_stopped: Option<ScanStop>,
    /// Match offsets for objects.
    pub object_matches: MatchList,
    /// Match offsets for folders.
    pub prefix_matches: MatchList,
}

/// Every occurrence of `query` in `leaf`, case-insensitively, in UTF-16 units,
/// advancing one unit after each hit (overlaps allowed).
pub fn match_offsets(leaf: &str, query: &str) -> Vec<[usize; 2]> {
    let fold = |u: u16| {
        if (u16::from(b'A')..=u16::from(b'Z')).contains(&u) {
            u + 32
        } else {
            u
        }
    };
    let hay: Vec<u16> = leaf.encode_utf16().map(fold).collect();
    let needle: Vec<u16> = query.encode_utf16().map(fold).collect();
    if needle.is_empty() || needle.len() > hay.len() {
        return Vec::new();
    }
    (0..=hay.len() - needle.len())
        .filter(|&i| hay[i..i + needle.len()] == needle[..])
        .map(|i| [i, i + needle.len()])
        .collect()
}

fn starts_with_ci(leaf: &str, query: &str) -> bool {
    leaf.len() >= query.len()
        && leaf.as_bytes()[..query.len()].eq_ignore_ascii_case(query.as_bytes())
}

fn contains_ci(leaf: &str, query: &str) -> bool {
    !match_offsets(leaf, query).is_empty()
}

fn matches_of(
    objects: &[ObjectSummary],
    prefixes: &[String],
    query: &str,
) -> (MatchList, MatchList) {
    let matches = |key: &str| {
        let offsets = match_offsets(leaf_name(key), query);
        (!offsets.is_empty()).then(|| KeyMatches {
            key: key.to_string(),
            offsets,
        })
    };
    let objs = objects.iter().filter_map(|o| matches(&o.key)).collect();
    let prefs = prefixes.iter().filter_map(|p| matches(p)).collect();
    (objs, prefs)
}

impl S4 {
    /// Searches a bucket folder by leaf name. See the module documentation.
    ///
    /// # Errors
    /// As [`S4::list_objects`].
    pub async fn search_objects(
        &self,
        bucket: &BucketName,
        options: &SearchOptions,
    ) -> Result<SearchResult> {
        let max_keys = options.max_keys.clamp(1, 2000);
        if options.mode == SearchMode::StartsWith {
            let page = self
                .list_objects(
                    bucket,
                    &ListOptions::default()
                        .with_prefix(options.prefix.clone())
                        .with_max_keys(max_keys)
                        .with_continuation_token(options.continuation_token.clone()),
                )
                .await?;
            let objects: Vec<ObjectSummary> = page
                .objects
                .into_iter()
                .filter(|o| starts_with_ci(leaf_name(&o.key), &options.query))
                .collect();
            let prefixes: Vec<String> = page
                .prefixes
                .into_iter()
                .filter(|p| starts_with_ci(leaf_name(p), &options.query))
                .collect();
            if !(options.auto_broaden && objects.is_empty() && prefixes.is_empty()) {
                let (object_matches, prefix_matches) =
                    matches_of(&objects, &prefixes, &options.query);
                return Ok(SearchResult {
                    is_truncated: page.next_token.is_some(),
                    page: Page {
                        objects,
                        prefixes,
                        next_token: page.next_token,
                    },
                    mode: SearchMode::StartsWith,
                    broadened: false,
                    partial_result: false,
                    scan_pages: None,
                    scan_stopped: None,
                    object_matches,
                    prefix_matches,
                });
            }
        }
        let mut result = self.contains_scan(bucket, options, max_keys).await?;
        result.broadened = options.mode == SearchMode::StartsWith;
        Ok(result)
    }

    async fn contains_scan(
        &self,
        bucket: &BucketName,
        options: &SearchOptions,
        max_keys: usize,
    ) -> Result<SearchResult> {
        let mut objects = Vec::new();
        let mut prefixes = Vec::new();
        let mut token = options.continuation_token.clone();
        let mut pages = 0;
        let mut more = false;
        while pages < SCAN_MAX_PAGES {
            let page = self
                .list_objects(
                    bucket,
                    &ListOptions::default()
                        .with_prefix(options.prefix.clone())
                        .with_max_keys(SCAN_PAGE_SIZE)
                        .with_continuation_token(token.take()),
                )
                .await?;
            pages += 1;
            objects.extend(
                page.objects
                    .into_iter()
                    .filter(|o| contains_ci(leaf_name(&o.key), &options.query)),
            );
            prefixes.extend(
                page.prefixes
                    .into_iter()
                    .filter(|p| contains_ci(leaf_name(p), &options.query)),
            );
            more = page.next_token.is_some();
            token = page.next_token;
            if objects.len() >= max_keys || !more {
                break;
            }
        }
        let stopped = if pages >= SCAN_MAX_PAGES && more && objects.len() < max_keys {
            ScanStop::ScanCap
        } else if objects.len() >= max_keys {
            ScanStop::MaxKeysReached
        } else {
            ScanStop::BucketExhausted
        };
        objects.truncate(max_keys);
        let truncated = more && matches!(stopped, ScanStop::MaxKeysReached | ScanStop::ScanCap);
        let (object_matches, prefix_matches) = matches_of(&objects, &prefixes, &options.query);
        Ok(SearchResult {
            page: Page {
                objects,
                prefixes,
                next_token: if truncated { token } else { None },
            },
            is_truncated: truncated,
            mode: SearchMode::Contains,
            broadened: false,
            partial_result: truncated,
            scan_pages: Some(pages),
            scan_stopped: Some(stopped),
            object_matches,
            prefix_matches,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_in_utf16() {
        assert_eq!(match_offsets("my-config.json", "config"), vec![[3, 9]]);
        assert_eq!(match_offsets("CONFIG", "config"), vec![[0, 6]]);
        assert_eq!(match_offsets("aaa", "aa"), vec![[0, 2], [1, 3]]);
        // The emoji is two UTF-16 units.
        assert_eq!(match_offsets("😀ab", "ab"), vec![[2, 4]]);
        assert_eq!(match_offsets("x", "xy"), Vec::<[usize; 2]>::new());
    }

    #[test]
    fn starts_with() {
        assert!(starts_with_ci("Model.bin", "mod"));
        assert!(!starts_with_ci("a-model", "mod"));
        assert!(!starts_with_ci("é", "e"));
    }
}
