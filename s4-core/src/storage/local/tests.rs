//! Unit tests of `local.rs`.

use super::*;

/// Pages of a large, settled directory come from the cache, and any change to
/// the directory is seen on the next page.
#[test]
fn cached_listing_pages_and_invalidates() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let bucket = tmp.path();
    let n = CACHE_MIN_ENTRIES + 200;
    for i in 0..n {
        std::fs::write(bucket.join(format!("k{i:05}")), b"x").expect("write");
    }
    std::fs::create_dir(bucket.join("k00003-dir")).expect("mkdir");
    std::fs::write(bucket.join("k00001#123"), b"staging").expect("write");
    let old = SystemTime::now() - Duration::from_secs(3600);
    let settle = || {
        std::fs::File::open(bucket)
            .and_then(|d| d.set_modified(old))
            .expect("set directory mtime");
    };
    settle();
    let cache = ListingCache::default();
    let request = |prefix: &str, token: Option<String>| PageRequest {
        prefix: crate::names::Prefix::parse(prefix).expect("test prefix"),
        delimited: true,
        max_keys: 500,
        token,
    };
    let mut keys = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page =
            list_dir_page(&cache, bucket, &request("", None), after.as_deref()).expect("page");
        keys.extend(page.objects.iter().map(|o| o.key.clone()));
        keys.extend(page.prefixes.iter().cloned());
        match page.next_token {
            Some(t) => after = Some(decode_token(&t).expect("token")),
            None => break,
        }
    }
    assert_eq!(keys.len(), n + 1);
    assert!(keys.contains(&"k00003-dir/".to_string()));
    assert!(!keys.iter().any(|k| k.contains('#')));
    let dir = bucket.to_path_buf();
    let stamp = DirStamp::of(&std::fs::metadata(&dir).expect("stat"));
    assert!(
        cache.get(&dir, stamp).is_some(),
        "settled directory is cached"
    );

    // A prefix query is served from the same cache.
    let page = list_dir_page(&cache, bucket, &request("k010", None), None).expect("page");
    assert_eq!(page.objects.len(), 100);
    assert_eq!(page.objects[0].key, "k01000");

    // A new file changes the directory: the next page sees it.
    std::fs::write(bucket.join("a-new"), b"x").expect("write");
    let page = list_dir_page(&cache, bucket, &request("", None), None).expect("page");
    assert_eq!(page.objects[0].key, "a-new");
    settle();
    std::fs::remove_file(bucket.join("a-new")).expect("remove");
    let page = list_dir_page(&cache, bucket, &request("", None), None).expect("page");
    assert_eq!(page.objects[0].key, "k00000");
}

#[test]
fn staging_names() {
    assert!(is_staging_name("file.bin#1"));
    assert!(is_staging_name("a#b#12"));
    assert!(!is_staging_name("a#b"));
    assert!(!is_staging_name("a#"));
    assert!(!is_staging_name("plain"));
}
