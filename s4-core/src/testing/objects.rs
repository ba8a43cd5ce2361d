//! Conformance bodies of buckets and objects: CRUD, round trips, large
//! streams, ranges, conditional reads, pagination, folder delete, failed and
//! dropped puts, search, change events.

use super::*;

/// Bucket create, duplicate, list, non-empty delete, delete, missing delete.
pub async fn bucket_crud(s4: &S4) {
    let bucket = fresh_bucket(s4, "crud").await;
    let dup = assert_kind(
        s4.create_bucket(&bucket).await,
        ErrorKind::AlreadyExists,
        "duplicate create",
    );
    assert!(
        matches!(
            dup.code(),
            Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
        ),
        "{dup:?}"
    );
    let listing = s4.list_buckets().await.expect("list buckets");
    assert!(listing.buckets.iter().any(|b| b.name == bucket.as_str()));
    put(s4, &bucket, "x", Bytes::from_static(b"x")).await;
    let e = assert_kind(
        s4.delete_bucket(&bucket).await,
        ErrorKind::Conflict,
        "non-empty delete",
    );
    assert_eq!(e.code(), Some("BucketNotEmpty"));
    s4.delete_object(&bucket, &key("x"))
        .await
        .expect("delete x");
    s4.delete_bucket(&bucket)
        .await
        .expect("delete empty bucket");
    let listing = s4.list_buckets().await.expect("list buckets");
    assert!(!listing.buckets.iter().any(|b| b.name == bucket.as_str()));
    let e = assert_kind(
        s4.delete_bucket(&bucket).await,
        ErrorKind::NotFound,
        "missing delete",
    );
    assert_eq!(e.code(), Some("NoSuchBucket"));
    let e = assert_kind(
        s4.head_object(&bucket, &key("x")).await,
        ErrorKind::NotFound,
        "object of missing bucket",
    );
    assert!(
        matches!(e.code(), Some("NoSuchBucket" | "NotFound" | "NoSuchKey")),
        "{e:?}"
    );
}

/// Put, head, get and list for every key of [`TRICKY_KEYS`]; overwrite; missing key.
pub async fn object_roundtrip(s4: &S4) {
    let bucket = fresh_bucket(s4, "rt").await;
    for (i, k) in TRICKY_KEYS.iter().enumerate() {
        let data = pattern(1000 + i, i as u8);
        put(s4, &bucket, k, data.clone()).await;
        let info = s4.head_object(&bucket, &key(k)).await.expect("head");
        assert_eq!(info.size, data.len() as u64, "{k}");
        assert_eq!(info.key, *k);
        let got = get_all(s4, &bucket, k, GetObjectOptions::default())
            .await
            .expect("get");
        assert_eq!(got, data.to_vec(), "{k}");
    }
    let listed: BTreeSet<String> = all_keys(s4, &bucket, "").await.into_iter().collect();
    let expected: BTreeSet<String> = TRICKY_KEYS.iter().map(|k| k.to_string()).collect();
    assert_eq!(listed, expected);
    // Overwrite.
    put(s4, &bucket, "plain.txt", Bytes::from_static(b"new")).await;
    let got = get_all(s4, &bucket, "plain.txt", GetObjectOptions::default())
        .await
        .expect("get");
    assert_eq!(got, b"new");
    // Missing key.
    let e = assert_kind(
        get_all(s4, &bucket, "missing", GetObjectOptions::default()).await,
        ErrorKind::NotFound,
        "missing key",
    );
    assert_eq!(e.code(), Some("NoSuchKey"));
    // Empty object.
    put(s4, &bucket, "empty", Bytes::new()).await;
    assert_eq!(
        s4.head_object(&bucket, &key("empty"))
            .await
            .expect("head")
            .size,
        0
    );
    remove_bucket(s4, &bucket).await;
}

/// Objects larger than one part stream through a multipart upload and back.
pub async fn large_object_streams(s4: &S4) {
    let bucket = fresh_bucket(s4, "large").await;
    let data = pattern(crate::PART_SIZE * 2 + 12345, 7);
    put(s4, &bucket, "big/blob.bin", data.clone()).await;
    let info = s4
        .head_object(&bucket, &key("big/blob.bin"))
        .await
        .expect("head");
    assert_eq!(info.size, data.len() as u64);
    let got = get_all(s4, &bucket, "big/blob.bin", GetObjectOptions::default())
        .await
        .expect("get");
    assert!(got == data.to_vec(), "large object round trip differs");
    remove_bucket(s4, &bucket).await;
}

/// Ranged reads (bounded, open, suffix, clamped) and unsatisfiable ranges.
pub async fn ranges(s4: &S4) {
    let bucket = fresh_bucket(s4, "range").await;
    let data = pattern(1000, 3);
    put(s4, &bucket, "r.bin", data.clone()).await;
    let cases = [
        (ByteRange::Bounded(0, 9), 0..10),
        (ByteRange::Bounded(990, 5000), 990..1000),
        (ByteRange::From(500), 500..1000),
        (ByteRange::Suffix(100), 900..1000),
    ];
    for (range, expected) in cases {
        let object = s4
            .get_object(
                &bucket,
                &key("r.bin"),
                GetObjectOptions::default().with_range(range),
            )
            .await
            .expect("ranged get");
        assert_eq!(object.range, expected.clone(), "{range:?}");
        assert!(object.partial);
        assert_eq!(object.info.size, 1000);
        let got = get_all(
            s4,
            &bucket,
            "r.bin",
            GetObjectOptions::default().with_range(range),
        )
        .await
        .expect("get");
        assert_eq!(
            got,
            data[expected.start as usize..expected.end as usize].to_vec()
        );
    }
    let e = assert_kind(
        s4.get_object(
            &bucket,
            &key("r.bin"),
            GetObjectOptions::default().with_range(ByteRange::From(1000)),
        )
        .await,
        ErrorKind::RangeNotSatisfiable,
        "range past the end",
    );
    assert_eq!(e.object_size(), Some(1000));
    remove_bucket(s4, &bucket).await;
}

/// `If-None-Match` with the current ETag yields NotModified; another ETag reads.
pub async fn conditional_get(s4: &S4) {
    let bucket = fresh_bucket(s4, "cond").await;
    put(s4, &bucket, "c.txt", Bytes::from_static(b"content")).await;
    let etag = s4
        .head_object(&bucket, &key("c.txt"))
        .await
        .expect("head")
        .etag
        .expect("backends report ETags");
    assert_kind(
        s4.get_object(
            &bucket,
            &key("c.txt"),
            GetObjectOptions::default().with_if_none_match(etag.clone()),
        )
        .await,
        ErrorKind::NotModified,
        "matching etag",
    );
    assert_kind(
        s4.get_object(
            &bucket,
            &key("c.txt"),
            GetObjectOptions::default()
                .with_if_none_match(etag)
                .with_range(ByteRange::From(1)),
        )
        .await,
        ErrorKind::NotModified,
        "matching etag with range",
    );
    let got = get_all(
        s4,
        &bucket,
        "c.txt",
        GetObjectOptions::default().with_if_none_match("\"other\""),
    )
    .await
    .expect("non-matching etag reads");
    assert_eq!(got, b"content");
    remove_bucket(s4, &bucket).await;
}

/// Delimited listing with folders; pagination yields every entry exactly once.
pub async fn pagination_exactly_once(s4: &S4) {
    let bucket = fresh_bucket(s4, "page").await;
    let mut expected_top: BTreeSet<String> = BTreeSet::new();
    for i in 0..23 {
        let k = format!("f{i:02}.txt");
        put(s4, &bucket, &k, Bytes::from_static(b"1")).await;
        expected_top.insert(k);
    }
    for d in ["a", "b", "m", "z"] {
        for i in 0..3 {
            put(s4, &bucket, &format!("{d}/x{i}"), Bytes::from_static(b"1")).await;
        }
        expected_top.insert(format!("{d}/"));
    }
    // A folder whose name sorts between files ("f00.txt/" vs "f00.txt", "f01.txt").
    let stem = if s4.backend().allows_key_folder_overlap() {
        "f00.txt"
    } else {
        "f00.tx"
    };
    put(
        s4,
        &bucket,
        &format!("{stem}/inner"),
        Bytes::from_static(b"1"),
    )
    .await;
    expected_top.insert(format!("{stem}/"));
    let mut seen = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = s4
            .list_objects(
                &bucket,
                &ListOptions::default()
                    .with_max_keys(4)
                    .with_continuation_token(token.take()),
            )
            .await
            .expect("list page");
        pages += 1;
        assert!(page.objects.len() + page.prefixes.len() <= 4);
        seen.extend(page.objects.into_iter().map(|o| o.key));
        seen.extend(page.prefixes);
        match page.next_token {
            Some(t) => {
                assert!(
                    t.len() <= 512
                        && t.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"+/=._-".contains(&b)),
                    "token {t}"
                );
                token = Some(t);
            }
            None => break,
        }
        assert!(pages < 100, "pagination does not terminate");
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "an entry was listed twice: {seen:?}"
    );
    assert_eq!(unique, expected_top);
    // A sub-folder lists its own level only.
    let page = s4
        .list_objects(&bucket, &ListOptions::default().with_prefix(pfx("m/")))
        .await
        .expect("list m/");
    let keys: Vec<String> = page.objects.into_iter().map(|o| o.key).collect();
    assert_eq!(keys, vec!["m/x0", "m/x1", "m/x2"]);
    assert!(page.prefixes.is_empty());
    // A non-folder prefix filters by leaf start.
    let page = s4
        .list_objects(&bucket, &ListOptions::default().with_prefix(pfx("f1")))
        .await
        .expect("list f1");
    assert_eq!(page.objects.len(), 10);
    remove_bucket(s4, &bucket).await;
}

/// Deleting `data` removes `data` and `data/**` but not `data.csv`; `k/` deletes a folder.
pub async fn folder_delete(s4: &S4) {
    let bucket = fresh_bucket(s4, "del").await;
    let overlap = s4.backend().allows_key_folder_overlap();
    for k in ["data.csv", "data/x", "data/y/z", "other/a", "other/b/c"] {
        put(s4, &bucket, k, Bytes::from_static(b"1")).await;
    }
    let data = s4
        .put_object(
            &bucket,
            &key("data"),
            chunked(Bytes::from_static(b"1"), 1),
            PutObjectOptions::default(),
        )
        .await;
    let mut expected: Vec<&str> = vec!["data/x", "data/y/z"];
    if overlap {
        data.expect("put data next to data/");
        expected.push("data");
    } else {
        let e = assert_kind(data, ErrorKind::Conflict, "object named like a folder");
        assert_eq!(e.code(), Some("KeyConflict"));
    }
    let outcome = s4
        .delete_object(&bucket, &key("data"))
        .await
        .expect("delete data");
    assert!(outcome.folder);
    let deleted: BTreeSet<String> = outcome
        .deleted
        .iter()
        .map(|k| k.as_str().to_string())
        .collect();
    assert_eq!(deleted, expected.iter().map(|s| s.to_string()).collect());
    let left: BTreeSet<String> = all_keys(s4, &bucket, "").await.into_iter().collect();
    assert_eq!(
        left,
        ["data.csv", "other/a", "other/b/c"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    let outcome = s4
        .delete_object(&bucket, &key("other/"))
        .await
        .expect("delete other/");
    assert_eq!(outcome.deleted.len(), 2);
    // Single key, then a missing key (idempotent).
    let outcome = s4
        .delete_object(&bucket, &key("data.csv"))
        .await
        .expect("delete data.csv");
    assert!(!outcome.folder);
    assert_eq!(outcome.deleted, vec![key("data.csv")]);
    let outcome = s4
        .delete_object(&bucket, &key("missing"))
        .await
        .expect("delete missing");
    assert!(!outcome.folder && outcome.deleted.is_empty());
    assert!(all_keys(s4, &bucket, "").await.is_empty());
    remove_bucket(s4, &bucket).await;
}

/// A put that fails (stream error, size limit, cancellation; single and multipart
/// sizes) leaves no object, and an existing object is not damaged.
pub async fn failed_puts_leave_nothing(s4: &S4) {
    let bucket = fresh_bucket(s4, "fail").await;
    put(s4, &bucket, "keep", Bytes::from_static(b"original")).await;
    for size in [1000usize, crate::PART_SIZE + 1000] {
        for target in ["new", "keep"] {
            // The body fails after `size` bytes.
            let data = pattern(size, 1);
            let failing = chunked(data, 64 << 10).chain(futures::stream::iter([Err(
                Error::invalid("client went away"),
            )]));
            let e = assert_kind(
                s4.put_object(&bucket, &key(target), failing, PutObjectOptions::default())
                    .await,
                ErrorKind::InvalidInput,
                "failing body",
            );
            assert_eq!(e.message(), "client went away");
            // Over the size limit.
            let body = chunked(pattern(size + 10, 2), 64 << 10);
            assert_kind(
                s4.put_object(
                    &bucket,
                    &key(target),
                    body,
                    PutObjectOptions::default().with_max_size(size as u64),
                )
                .await,
                ErrorKind::TooLarge,
                "size limit",
            );
            // Cancelled before the end.
            let token = CancellationToken::new();
            let cancel = token.clone();
            let body =
                chunked(pattern(size, 3), 64 << 10).chain(futures::stream::once(async move {
                    cancel.cancel();
                    futures::future::pending::<Result<Bytes>>().await
                }));
            assert_kind(
                s4.put_object(
                    &bucket,
                    &key(target),
                    body,
                    PutObjectOptions::default().with_cancel(token),
                )
                .await,
                ErrorKind::Cancelled,
                "cancelled",
            );
        }
    }
    let keys = all_keys(s4, &bucket, "").await;
    assert_eq!(keys, vec!["keep".to_string()]);
    let got = get_all(s4, &bucket, "keep", GetObjectOptions::default())
        .await
        .expect("get keep");
    assert_eq!(got, b"original");
    remove_bucket(s4, &bucket).await;
}

/// A put whose future is dropped mid-stream leaves no visible object.
pub async fn dropped_put_leaves_nothing(s4: &S4) {
    let bucket = fresh_bucket(s4, "drop").await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes>>(4);
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let task = {
        let s4 = s4.clone();
        let bucket = bucket.clone();
        tokio::spawn(async move {
            s4.put_object(
                &bucket,
                &key("dropped.bin"),
                body,
                PutObjectOptions::default(),
            )
            .await
        })
    };
    // Feed more than one part so a multipart upload is in flight, then drop the put.
    let data = pattern(crate::PART_SIZE + (1 << 20), 9);
    for chunk in data.chunks(1 << 20) {
        tx.send(Ok(Bytes::copy_from_slice(chunk)))
            .await
            .expect("put is reading");
    }
    task.abort();
    let _ = task.await;
    drop(tx);
    assert!(all_keys(s4, &bucket, "").await.is_empty());
    assert_kind(
        s4.head_object(&bucket, &key("dropped.bin")).await,
        ErrorKind::NotFound,
        "dropped object",
    );
    remove_bucket(s4, &bucket).await;
}

/// Leaf-name search in both modes, with UTF-16 match offsets.
pub async fn search(s4: &S4) {
    let bucket = fresh_bucket(s4, "search").await;
    for k in [
        "models/my-config.json",
        "models/config.yaml",
        "models/other.bin",
        "models/configs/a",
        "models/😀config",
    ] {
        put(s4, &bucket, k, Bytes::from_static(b"1")).await;
    }
    let opts = |mode, q: &str| SearchOptions {
        prefix: pfx("models/"),
        query: q.into(),
        mode,
        auto_broaden: false,
        max_keys: 100,
        continuation_token: None,
    };
    let r = s4
        .search_objects(&bucket, &opts(SearchMode::Contains, "CONFIG"))
        .await
        .expect("contains");
    let keys: Vec<&str> = r.page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            "models/config.yaml",
            "models/my-config.json",
            "models/😀config"
        ]
    );
    assert_eq!(r.page.prefixes, vec!["models/configs/".to_string()]);
    assert_eq!(r.scan_stopped, Some(crate::ScanStop::BucketExhausted));
    let m: std::collections::HashMap<_, _> = r
        .object_matches
        .iter()
        .map(|m| (m.key.clone(), m.offsets.clone()))
        .collect();
    assert_eq!(m.get("models/my-config.json"), Some(&vec![[3, 9]]));
    assert_eq!(m.get("models/😀config"), Some(&vec![[2, 8]]));
    let r = s4
        .search_objects(&bucket, &opts(SearchMode::StartsWith, "config"))
        .await
        .expect("startsWith");
    let keys: Vec<&str> = r.page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, vec!["models/config.yaml"]);
    assert_eq!(r.page.prefixes, vec!["models/configs/".to_string()]);
    assert_eq!(r.mode, SearchMode::StartsWith);
    let mut broaden = opts(SearchMode::StartsWith, "onfig");
    broaden.auto_broaden = true;
    let r = s4
        .search_objects(&bucket, &broaden)
        .await
        .expect("broadened");
    assert!(r.broadened);
    assert_eq!(r.mode, SearchMode::Contains);
    assert_eq!(r.page.objects.len(), 3);
    remove_bucket(s4, &bucket).await;
}

/// Successful writes and deletes are published as change events.
pub async fn change_events(s4: &S4) {
    let bucket = fresh_bucket(s4, "events").await;
    let mut changes = s4.subscribe_changes();
    put(s4, &bucket, "e/one", Bytes::from_static(b"12345")).await;
    s4.delete_object(&bucket, &key("e"))
        .await
        .expect("delete folder");
    let mut got = Vec::new();
    while got.len() < 2 {
        let change = changes.recv().await.expect("change event");
        if change.bucket == bucket {
            got.push((change.key.as_str().to_string(), change.kind));
        }
    }
    assert_eq!(
        got,
        vec![
            ("e/one".to_string(), ChangeKind::Created { size: 5 }),
            ("e/one".to_string(), ChangeKind::Removed),
        ]
    );
    remove_bucket(s4, &bucket).await;
}
