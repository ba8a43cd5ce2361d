//! Conformance bodies of object metadata: content types, user metadata,
//! ETags (single and multipart), tags.

use super::*;

/// The ETag of `k`'s listing entry: the delimited listing of its folder, or with
/// `recursive` the non-delimited listing of the same prefix (a separate walk on
/// the local backend).
async fn listed_etag(s4: &S4, bucket: &BucketName, k: &str, recursive: bool) -> Option<String> {
    let prefix = k.rfind('/').map(|i| &k[..=i]).unwrap_or("");
    let page = s4
        .list_objects(
            bucket,
            &ListOptions::default()
                .with_prefix(pfx(prefix))
                .with_delimited(!recursive)
                .with_max_keys(1000),
        )
        .await
        .expect("list");
    page.objects.into_iter().find(|o| o.key == k)?.etag
}

/// The ETag every route must report for `k`: listing = HEAD = GET.
async fn consistent_etag(s4: &S4, bucket: &BucketName, k: &str) -> String {
    let head = s4.head_object(bucket, &key(k)).await.expect("head");
    let get = s4
        .get_object(bucket, &key(k), GetObjectOptions::default())
        .await
        .expect("get");
    let listed = listed_etag(s4, bucket, k, false).await;
    let listed_recursive = listed_etag(s4, bucket, k, true).await;
    let etag = head.etag.clone().expect("HEAD reports an ETag");
    assert_eq!(
        get.info.etag.as_deref(),
        Some(etag.as_str()),
        "GET vs HEAD ETag"
    );
    assert_eq!(
        listed.as_deref(),
        Some(etag.as_str()),
        "listing vs HEAD ETag"
    );
    assert_eq!(
        listed_recursive.as_deref(),
        Some(etag.as_str()),
        "non-delimited listing vs HEAD ETag"
    );
    etag
}

/// Content type (given or guessed from the extension) and user metadata are kept,
/// replaced by an overwrite and gone with a delete; the ETag is the MD5 of the bytes.
pub async fn object_metadata(s4: &S4) {
    let bucket = fresh_bucket(s4, "meta").await;
    let body = Bytes::from_static(b"hello");
    s4.put_object(
        &bucket,
        &key("docs/readme.txt"),
        chunked(body.clone(), 2),
        PutObjectOptions::default()
            .with_content_type("text/plain")
            .with_metadata("Owner", "team-a")
            .with_metadata("stage", "dev"),
    )
    .await
    .expect("put with metadata");
    let info = s4
        .head_object(&bucket, &key("docs/readme.txt"))
        .await
        .expect("head");
    assert_eq!(info.content_type.as_deref(), Some("text/plain"));
    let mut metadata = info.metadata.clone();
    metadata.sort();
    assert_eq!(
        metadata,
        vec![
            ("owner".to_string(), "team-a".to_string()),
            ("stage".to_string(), "dev".to_string())
        ]
    );
    let etag = consistent_etag(s4, &bucket, "docs/readme.txt").await;
    assert_eq!(
        etag, "\"5d41402abc4b2a76b9719d911017c592\"",
        "MD5 of the bytes"
    );
    let got = s4
        .get_object(
            &bucket,
            &key("docs/readme.txt"),
            GetObjectOptions::default(),
        )
        .await
        .expect("get");
    assert_eq!(got.info.content_type.as_deref(), Some("text/plain"));

    // No type (or the generic one): guessed from the extension.
    for (k, given) in [
        ("a/config.json", None),
        ("a/page.html", Some("application/octet-stream")),
    ] {
        let mut options = PutObjectOptions::default();
        if let Some(ct) = given {
            options = options.with_content_type(ct);
        }
        s4.put_object(&bucket, &key(k), chunked(body.clone(), 5), options)
            .await
            .expect("put");
    }
    for (k, expected) in [
        ("a/config.json", "application/json"),
        ("a/page.html", "text/html"),
    ] {
        let info = s4.head_object(&bucket, &key(k)).await.expect("head");
        assert_eq!(info.content_type.as_deref(), Some(expected), "{k}");
    }

    // An overwrite replaces type, metadata and ETag.
    s4.put_object(
        &bucket,
        &key("docs/readme.txt"),
        chunked(Bytes::from_static(b"bye"), 3),
        PutObjectOptions::default().with_content_type("text/markdown"),
    )
    .await
    .expect("overwrite");
    let info = s4
        .head_object(&bucket, &key("docs/readme.txt"))
        .await
        .expect("head");
    assert_eq!(info.content_type.as_deref(), Some("text/markdown"));
    assert!(info.metadata.is_empty(), "{:?}", info.metadata);
    let etag = consistent_etag(s4, &bucket, "docs/readme.txt").await;
    assert_eq!(
        etag,
        crate::storage::objmeta::single_etag(&crate::storage::objmeta::md5_of([&b"bye"[..]]))
    );

    // Delete removes object and metadata; a new object under the key starts clean.
    s4.delete_object(&bucket, &key("docs/readme.txt"))
        .await
        .expect("delete");
    assert_kind(
        s4.head_object(&bucket, &key("docs/readme.txt")).await,
        ErrorKind::NotFound,
        "deleted",
    );
    put(s4, &bucket, "docs/readme.txt", Bytes::from_static(b"x")).await;
    let info = s4
        .head_object(&bucket, &key("docs/readme.txt"))
        .await
        .expect("head");
    assert!(info.metadata.is_empty());
    assert_eq!(
        info.content_type.as_deref(),
        Some("text/plain"),
        "guessed again"
    );

    // Metadata that cannot travel as an HTTP header is refused before any write.
    assert_kind(
        s4.put_object(
            &bucket,
            &key("bad"),
            chunked(body.clone(), 5),
            PutObjectOptions::default().with_metadata("bad name", "v"),
        )
        .await,
        ErrorKind::InvalidInput,
        "metadata name with a space",
    );
    remove_bucket(s4, &bucket).await;
}

/// A multipart write's ETag is S3's `"<md5 of part md5s>-<N>"` (the same as the
/// engine computes: the S3 variant checks it against the real engine).
pub async fn multipart_etag(s4: &S4) {
    let bucket = fresh_bucket(s4, "mpetag").await;
    let data = pattern(2 * crate::PART_SIZE + 1000, 7);
    put(s4, &bucket, "big.bin", data.clone()).await;
    // Parts of the backend's size (5 MiB on S3, 1 MiB on the local backend).
    let part_size = s4.backend().part_size();
    let digests: Vec<[u8; 16]> = data
        .chunks(part_size)
        .map(|part| crate::storage::objmeta::md5_of([part]))
        .collect();
    let expected = crate::storage::objmeta::multipart_etag(&digests);
    let parts = data.len().div_ceil(part_size);
    assert!(parts >= 3);
    assert!(expected.ends_with(&format!("-{parts}\"")), "{expected}");
    let etag = consistent_etag(s4, &bucket, "big.bin").await;
    assert_eq!(etag, expected);
    remove_bucket(s4, &bucket).await;
}

/// Tags (§12.9) round-trip, are replaced as a set, dropped by an overwrite and
/// validated; an engine without tagging answers `NotImplemented`.
pub async fn object_tags(s4: &S4) {
    let bucket = fresh_bucket(s4, "tags").await;
    put(s4, &bucket, "t/obj.txt", Bytes::from_static(b"tagged")).await;
    let k = key("t/obj.txt");
    let tags = match s4.get_object_tags(&bucket, &k).await {
        Ok(tags) => tags,
        Err(e) => {
            // Garage does not implement tagging: the answer must say so.
            assert_eq!(e.code(), Some("NotImplemented"), "{e:?}");
            assert_eq!(s4.backend().name(), "s3");
            remove_bucket(s4, &bucket).await;
            return;
        }
    };
    assert!(tags.is_empty());
    let set = vec![
        ("project".to_string(), "llm".to_string()),
        ("empty".to_string(), String::new()),
    ];
    s4.put_object_tags(&bucket, &k, &set)
        .await
        .expect("put tags");
    assert_eq!(s4.get_object_tags(&bucket, &k).await.expect("get"), set);
    let etag = consistent_etag(s4, &bucket, "t/obj.txt").await;
    assert_eq!(
        etag,
        crate::storage::objmeta::single_etag(&crate::storage::objmeta::md5_of([&b"tagged"[..]])),
        "tags do not change the ETag"
    );
    let one = vec![("only".to_string(), "one".to_string())];
    s4.put_object_tags(&bucket, &k, &one)
        .await
        .expect("replace");
    assert_eq!(s4.get_object_tags(&bucket, &k).await.expect("get"), one);
    s4.delete_object_tags(&bucket, &k)
        .await
        .expect("delete tags");
    assert!(s4
        .get_object_tags(&bucket, &k)
        .await
        .expect("get")
        .is_empty());
    s4.put_object_tags(&bucket, &k, &one).await.expect("put");
    put(s4, &bucket, "t/obj.txt", Bytes::from_static(b"new")).await;
    assert!(
        s4.get_object_tags(&bucket, &k)
            .await
            .expect("get")
            .is_empty(),
        "an overwrite starts without tags"
    );
    let eleven: Vec<(String, String)> = (0..11).map(|i| (format!("k{i}"), "v".into())).collect();
    assert_kind(
        s4.put_object_tags(&bucket, &k, &eleven).await,
        ErrorKind::InvalidInput,
        "11 tags",
    );
    assert_kind(
        s4.get_object_tags(&bucket, &key("t/missing")).await,
        ErrorKind::NotFound,
        "tags of a missing key",
    );
    remove_bucket(s4, &bucket).await;
}
