//! Unit tests of `local.rs`.

use super::*;
use crate::names::Prefix;
use proptest::prelude::*;
use std::path::Component;

/// `path` is `base` plus exactly `segments` normal components.
fn normal_below(base: &FsPath, path: &FsPath, segments: usize) -> bool {
    path.strip_prefix(base).is_ok_and(|rest| {
        rest.components().count() == segments
            && rest.components().all(|c| matches!(c, Component::Normal(_)))
    })
}

/// Path-like text: segments that are empty, `.`, `..`, absolute-looking,
/// backslashed, NUL-bearing, overlong or plain.
fn pathlike() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just(String::new()),
        Just(".".to_string()),
        Just("..".to_string()),
        Just("..\\..".to_string()),
        Just("a\0b".to_string()),
        Just("%2e%2e".to_string()),
        Just("x".repeat(256)),
        "[a-z. ~\\\\-]{1,6}",
    ];
    prop::collection::vec(segment, 0..6).prop_map(|s| s.join("/"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn confined_never_leaves_base(rel in prop_oneof![pathlike(), any::<String>()]) {
        let base = FsPath::new("/data/bucket");
        if let Some(path) = confined(base, &rel) {
            let segments = if rel.is_empty() { 0 } else { rel.split('/').count() };
            prop_assert!(normal_below(base, &path, segments), "{rel:?} -> {path:?}");
        }
    }

    /// Every portable key (with segments a file name can hold) is confined to
    /// normal components under the bucket; no other key is.
    #[test]
    fn portable_keys_are_confined(key in prop_oneof![pathlike(), any::<String>()]) {
        let base = FsPath::new("/data/bucket");
        if let Ok(key) = ObjectKey::parse(&key) {
            let path = confined(base, key.as_str());
            if key.is_portable() && key.as_str().split('/').all(|s| s.len() <= NAME_MAX) {
                let path = path.ok_or_else(|| TestCaseError::fail(format!("{key:?} refused")))?;
                prop_assert!(normal_below(base, &path, key.as_str().split('/').count()));
            } else if !key.is_portable() {
                prop_assert!(path.is_none(), "non-portable {key:?} confined");
            }
        }
    }

    /// The folder part of every portable prefix is confined under the bucket, the
    /// way listing and search build it.
    #[test]
    fn portable_prefixes_are_confined(prefix in prop_oneof![pathlike(), any::<String>()]) {
        let base = FsPath::new("/data/bucket");
        if let Ok(prefix) = Prefix::parse(&prefix) {
            let (dir_part, _) = split_prefix(prefix.as_str());
            let rel = dir_part.trim_end_matches('/');
            let path = confined(base, rel);
            if prefix.is_portable() && rel.split('/').all(|s| s.len() <= NAME_MAX) {
                let path = path.ok_or_else(|| TestCaseError::fail(format!("{prefix:?} refused")))?;
                let segments = if rel.is_empty() { 0 } else { rel.split('/').count() };
                prop_assert!(normal_below(base, &path, segments));
            } else if let Some(path) = path {
                prop_assert!(path.starts_with(base));
            }
        }
    }
}

/// On a real bucket holding a symbolic link to a sibling directory, a confined
/// path resolves inside the bucket exactly when it does not pass the link.
#[test]
fn symlinks_out_are_caught() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().canonicalize().expect("canonical temp dir");
    let bucket = root.join("bucket");
    std::fs::create_dir_all(bucket.join("a/b")).expect("mkdir");
    std::fs::create_dir_all(root.join("outside/etc")).expect("mkdir");
    std::os::unix::fs::symlink(root.join("outside"), bucket.join("out")).expect("symlink");
    std::os::unix::fs::symlink(root.join("outside"), bucket.join("a/out")).expect("symlink");
    let segment = prop_oneof![Just("a"), Just("b"), Just("out"), Just("etc"), Just("new")];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(256));
    runner
        .run(&prop::collection::vec(segment, 1..5), |segments| {
            let rel = segments.join("/");
            let path = confined(&bucket, &rel)
                .ok_or_else(|| TestCaseError::fail(format!("{rel:?} refused")))?;
            let passes_link = segments.iter().position(|s| *s == "out").is_some_and(|i| {
                // The links are `out` and `a/out`; any other `.../out` does not exist.
                i == 0 || (i == 1 && segments[0] == "a")
            });
            prop_assert_eq!(resolves_inside(&bucket, &path), !passes_link, "{:?}", rel);
            Ok(())
        })
        .expect("confinement property");
}
