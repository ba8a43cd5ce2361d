//! Hostile bucket names, keys and prefixes: nothing may leave the store.

use super::*;

/// Prefixes an attacker would try: absolute paths, `..` chains, `./`, encoded
/// dots and slashes (kept verbatim: S4 never decodes twice), backslashes, NUL,
/// overlong segments. `outside` is an absolute directory outside the store.
pub fn hostile_prefixes(outside: &str) -> Vec<String> {
    vec![
        "/".into(),
        "/etc/".into(),
        "/etc".into(),
        format!("{outside}/"),
        format!("{outside}"),
        "../".into(),
        "../../../../etc/".into(),
        "a/../../".into(),
        "./".into(),
        "./a".into(),
        "a//".into(),
        "a/./b/".into(),
        "%2e%2e/".into(),
        "%2e%2e%2f%2e%2e%2f".into(),
        "..%2f..%2f".into(),
        "\\..\\..\\etc\\".into(),
        "a\u{0}b/".into(),
        format!("{}/", "x".repeat(300)),
        "y".repeat(1100),
    ]
}

/// Keys an attacker would try (see [`hostile_prefixes`]).
pub fn hostile_keys(outside: &str) -> Vec<String> {
    vec![
        "/etc/passwd".into(),
        format!("{outside}/secret.txt"),
        "../../../../etc/passwd".into(),
        "a/../../../etc/passwd".into(),
        "./a".into(),
        "a//b".into(),
        "x/".into(),
        ".".into(),
        "..".into(),
        "%2e%2e/%2e%2e/etc/passwd".into(),
        "..%2f..%2fetc%2fpasswd".into(),
        "a\\..\\..\\etc\\passwd".into(),
        "a\u{0}b".into(),
        "x".repeat(300),
        "z".repeat(1100),
    ]
}

/// The hostile corpus on every operation: each input is refused with a typed
/// client error (invalid input or not found) or, where it is a legal name, stays
/// inside the bucket; listings and searches only ever show the bucket's own keys.
/// `outside` is a directory outside the store holding data that must stay
/// unreachable (the caller checks it is unchanged afterwards).
pub async fn hostile_names(s4: &S4, outside: &str) {
    let bucket = fresh_bucket(s4, "hostile").await;
    let mine = ["inside/file.txt", "top.txt"];
    for k in mine {
        put(s4, &bucket, k, Bytes::from_static(b"mine")).await;
    }
    let client_error =
        |e: &Error| matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::NotFound);
    let check_page = |what: &str, page: &crate::Page, prefix: &Prefix| {
        for o in &page.objects {
            assert!(
                mine.contains(&o.key.as_str()),
                "{what} {prefix:?} listed {:?}",
                o.key
            );
        }
        for p in &page.prefixes {
            assert!(
                mine.iter().any(|k| k.starts_with(p.as_str())),
                "{what} {prefix:?} listed prefix {p:?}"
            );
        }
    };
    for raw in hostile_prefixes(outside) {
        let prefix = match Prefix::parse(&raw) {
            Ok(p) => p,
            Err(e) => {
                assert_eq!(e.code(), Some("InvalidPrefix"), "{raw:?}");
                continue;
            }
        };
        for delimited in [true, false] {
            let options = ListOptions::default()
                .with_prefix(prefix.clone())
                .with_delimited(delimited);
            match s4.list_objects(&bucket, &options).await {
                Ok(page) => check_page("list", &page, &prefix),
                Err(e) => assert!(client_error(&e), "list {raw:?}: {e:?}"),
            }
        }
        for mode in [SearchMode::Contains, SearchMode::StartsWith] {
            let options = SearchOptions {
                prefix: prefix.clone(),
                query: "pass".into(),
                mode,
                auto_broaden: true,
                max_keys: 100,
                continuation_token: None,
            };
            match s4.search_objects(&bucket, &options).await {
                Ok(result) => check_page("search", &result.page, &prefix),
                Err(e) => assert!(client_error(&e), "search {raw:?}: {e:?}"),
            }
        }
    }
    for raw in hostile_keys(outside) {
        let k = match ObjectKey::parse(&raw) {
            Ok(k) => k,
            Err(e) => {
                assert_eq!(e.code(), Some("InvalidKey"), "{raw:?}");
                continue;
            }
        };
        match s4
            .get_object(&bucket, &k, GetObjectOptions::default())
            .await
        {
            Ok(o) => panic!("read {raw:?} that was never written: {:?}", o.info),
            Err(e) => assert!(client_error(&e), "get {raw:?}: {e:?}"),
        }
        if let Err(e) = s4.head_object(&bucket, &k).await {
            assert!(client_error(&e), "head {raw:?}: {e:?}");
        } else {
            panic!("head {raw:?} found an object that was never written");
        }
        match s4.delete_object(&bucket, &k).await {
            Ok(outcome) => assert!(outcome.deleted.is_empty(), "delete {raw:?}: {outcome:?}"),
            Err(e) => assert!(client_error(&e), "delete {raw:?}: {e:?}"),
        }
        // A write either is refused or lands inside this bucket, under its name.
        let body = chunked(Bytes::from_static(b"planted"), 3);
        match s4
            .put_object(&bucket, &k, body, PutObjectOptions::default())
            .await
        {
            Ok(_) => {
                assert!(k.is_portable(), "wrote non-portable {raw:?}");
                let read = get_all(s4, &bucket, k.as_str(), GetObjectOptions::default())
                    .await
                    .expect("read back a written legal key");
                assert_eq!(read, b"planted");
                s4.delete_object(&bucket, &k)
                    .await
                    .expect("delete legal key");
            }
            Err(e) => assert!(client_error(&e), "put {raw:?}: {e:?}"),
        }
    }
    let left: BTreeSet<String> = all_keys(s4, &bucket, "").await.into_iter().collect();
    let expected: BTreeSet<String> = mine.iter().map(|k| k.to_string()).collect();
    assert_eq!(left, expected);
    remove_bucket(s4, &bucket).await;
}
