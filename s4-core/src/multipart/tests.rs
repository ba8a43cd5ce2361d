//! Unit tests of multipart uploads.

use super::*;
use crate::storage::{LocalBackend, MemoryBackend};

fn body(data: &[u8]) -> impl Stream<Item = Result<Bytes>> + Send {
    futures::stream::iter(
        data.chunks(1 << 16)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    )
}

async fn read_all(s4: &S4, bucket: &BucketName, key: &ObjectKey) -> Result<Vec<u8>> {
    let object = s4.get_object(bucket, key, Default::default()).await?;
    let chunks: Vec<Bytes> = object.body.try_collect().await?;
    Ok(chunks.concat())
}

async fn round_trip(s4: S4) -> Result<()> {
    let uploads = MultipartUploads::new(s4.clone()).await?;
    let bucket = BucketName::try_from("mpu")?;
    s4.create_bucket(&bucket).await?;
    let key = ObjectKey::try_from("dir/big.bin")?;
    let mut changes = s4.subscribe_changes();
    let id = uploads
        .create(&bucket, &key, UploadOptions::default())
        .await?;
    let first = vec![7u8; MIN_PART_SIZE as usize];
    let p1 = uploads
        .upload_part(&bucket, &key, &id, 1, body(&first))
        .await?;
    // A replaced part counts once, with its new bytes.
    uploads
        .upload_part(&bucket, &key, &id, 2, body(b"old"))
        .await?;
    let p2 = uploads
        .upload_part(&bucket, &key, &id, 2, body(b"tail"))
        .await?;
    assert_eq!(
        p1.etag,
        objmeta::single_etag(&objmeta::md5_of([&first[..]]))
    );
    let listed = uploads.list_parts(&bucket, &key, &id)?;
    assert_eq!(
        listed.iter().map(|p| p.size).collect::<Vec<_>>(),
        vec![MIN_PART_SIZE, 4]
    );
    assert_eq!(uploads.list_uploads(&bucket, "dir/").len(), 1);
    assert!(
        s4.head_object(&bucket, &key).await.is_err(),
        "visible before complete"
    );

    let part = |n, e: &PartInfo| CompletedPart {
        part_number: n,
        etag: Some(e.etag.clone()),
    };
    let code = |r: Result<PutOutcome>| r.err().and_then(|e| e.code().map(str::to_string));
    assert_eq!(
        code(
            uploads
                .complete(&bucket, &key, &id, &[part(2, &p2), part(1, &p1)])
                .await
        )
        .as_deref(),
        Some("InvalidPartOrder")
    );
    assert_eq!(
        code(uploads.complete(&bucket, &key, &id, &[part(1, &p2)]).await).as_deref(),
        Some("InvalidPart")
    );
    assert_eq!(
        code(
            uploads
                .complete(&bucket, &key, &id, &[part(2, &p2), part(3, &p2)])
                .await
        )
        .as_deref(),
        Some("InvalidPart")
    );
    let small = uploads
        .upload_part(&bucket, &key, &id, 3, body(b"x"))
        .await?;
    assert_eq!(
        code(
            uploads
                .complete(&bucket, &key, &id, &[part(2, &p2), part(3, &small)])
                .await
        )
        .as_deref(),
        Some("EntityTooSmall")
    );
    let outcome = uploads
        .complete(&bucket, &key, &id, &[part(1, &p1), part(2, &p2)])
        .await?;
    let md5s = [
        objmeta::md5_of([&first[..]]),
        objmeta::md5_of([&b"tail"[..]]),
    ];
    let expected = objmeta::multipart_etag(&md5s);
    assert_eq!(outcome.etag.as_deref(), Some(expected.as_str()));
    let info = s4.head_object(&bucket, &key).await?;
    assert_eq!(info.etag.as_deref(), Some(expected.as_str()));
    let mut want = first.clone();
    want.extend_from_slice(b"tail");
    assert!(read_all(&s4, &bucket, &key).await? == want);
    // One creation event; the upload is gone.
    let created: Vec<_> = std::iter::from_fn(|| changes.try_recv().ok()).collect();
    assert_eq!(
        created,
        vec![crate::ObjectChange::created(
            &bucket,
            &key,
            want.len() as u64
        )]
    );
    assert!(uploads.list_uploads(&bucket, "").is_empty());
    assert_eq!(
        uploads
            .list_parts(&bucket, &key, &id)
            .err()
            .and_then(|e| e.code().map(str::to_string))
            .as_deref(),
        Some("NoSuchUpload")
    );

    // Abort: nothing visible, nothing staged, late parts refused.
    let other = ObjectKey::try_from("aborted.bin")?;
    let id = uploads
        .create(&bucket, &other, UploadOptions::default())
        .await?;
    uploads
        .upload_part(&bucket, &other, &id, 1, body(b"abc"))
        .await?;
    uploads.abort(&bucket, &other, &id).await?;
    assert!(s4.head_object(&bucket, &other).await.is_err());
    assert!(uploads
        .upload_part(&bucket, &other, &id, 2, body(b"late"))
        .await
        .is_err());
    if let Some(dir) = s4.backend().data_dir() {
        let staged = std::fs::read_dir(dir.join(".s4").join("multipart"))
            .map_err(|e| Error::from_io(e, "staging"))?
            .count();
        assert_eq!(staged, 0, "staged parts left");
    }
    // Unknown bucket; invalid part number.
    let missing = BucketName::try_from("nope")?;
    assert!(uploads
        .create(&missing, &key, UploadOptions::default())
        .await
        .is_err());
    let id = uploads
        .create(&bucket, &key, UploadOptions::default())
        .await?;
    assert!(uploads
        .upload_part(&bucket, &key, &id, 0, body(b""))
        .await
        .is_err());
    assert!(uploads
        .upload_part(&bucket, &key, &id, 10_001, body(b""))
        .await
        .is_err());
    Ok(())
}

#[tokio::test]
async fn memory_round_trip() -> Result<()> {
    round_trip(S4::builder().backend(MemoryBackend::new()).build()).await
}

#[tokio::test]
async fn local_round_trip() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::from_io(e, "tempdir"))?;
    let backend = LocalBackend::open(dir.path()).await?;
    round_trip(S4::builder().backend(backend).build()).await
}

#[tokio::test]
async fn leftovers_of_a_previous_run_are_removed() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::from_io(e, "tempdir"))?;
    let staging = dir.path().join(".s4").join("multipart");
    std::fs::create_dir_all(&staging).map_err(|e| Error::from_io(e, "mkdir"))?;
    std::fs::write(staging.join("old-1-x"), b"x").map_err(|e| Error::from_io(e, "write"))?;
    let backend = LocalBackend::open(dir.path()).await?;
    let _uploads = MultipartUploads::new(S4::builder().backend(backend).build()).await?;
    let left = std::fs::read_dir(&staging)
        .map_err(|e| Error::from_io(e, "read"))?
        .count();
    assert_eq!(left, 0);
    Ok(())
}
