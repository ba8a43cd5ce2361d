//! The abort matrix (issue #9, item 3): uploads cut at every interesting point — after
//! the head, inside a part header, at 1 KiB / 1 MiB / 3 MiB / 5.5 MiB (after the first
//! multipart part), one byte short, inside a chunked body, and with a TCP reset —
//! leave nothing behind: not in a local location's tree, not in the local backend's
//! data directory (dot-files included), not in a bucket listing on any backend. The
//! same keys upload fine afterwards.

mod common;

use std::time::Duration;

use common::{b64, files, multipart_body, start, start_with_locations, tree, Kind, TestServer};
use s4_core::location::{Locations, LocationsConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PAYLOAD: usize = 8 << 20;
const BOUND: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy)]
enum Cut {
    /// Close after this many body bytes (Content-Length body).
    At(usize),
    /// Close after the head and part of a chunked body, mid-chunk.
    Chunked,
    /// Reset (RST) after this many body bytes.
    Reset(usize),
}

/// Where the multipart preamble (boundary line and part header) ends.
fn preamble_len(body: &[u8]) -> usize {
    body.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .expect("part header")
}

fn cuts(body: &[u8]) -> Vec<(&'static str, Cut)> {
    let pre = preamble_len(body);
    vec![
        ("after the head", Cut::At(0)),
        ("inside the part header", Cut::At(pre / 2)),
        ("at 1 KiB", Cut::At(pre + 1024)),
        ("at 1 MiB", Cut::At(pre + (1 << 20))),
        ("at 3 MiB", Cut::At(pre + (3 << 20))),
        ("at 5.5 MiB", Cut::At(pre + (11 << 19))),
        ("one byte short", Cut::At(body.len() - 1)),
        ("inside a chunked body", Cut::Chunked),
        ("with a reset", Cut::Reset(pre + (2 << 20))),
    ]
}

/// Sends an upload to `path` and cuts it as told.
async fn cut_upload(s: &TestServer, path: &str, boundary: &str, body: &[u8], cut: Cut) {
    let mut stream = s.raw().await;
    let chunked = matches!(cut, Cut::Chunked);
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_string()
    } else {
        format!("Content-Length: {}", body.len())
    };
    let head = format!(
        "POST /api{path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n{framing}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    match cut {
        Cut::At(n) => {
            let _ = stream.write_all(&body[..n]).await;
        }
        Cut::Chunked => {
            for piece in body[..(1 << 20)].chunks(64 << 10) {
                let _ = stream
                    .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                    .await;
                let _ = stream.write_all(piece).await;
                let _ = stream.write_all(b"\r\n").await;
            }
            // A chunk announced but only half sent.
            let _ = stream.write_all(b"10000\r\n").await;
            let _ = stream.write_all(&body[(1 << 20)..(1 << 20) + 0x8000]).await;
        }
        Cut::Reset(n) => {
            let _ = stream.write_all(&body[..n]).await;
            #[allow(deprecated)]
            let _ = stream.set_linger(Some(Duration::ZERO));
            drop(stream);
            return;
        }
    }
    // The client stops sending (the server reads end-of-stream mid-body); once the
    // server closes the connection it is done with the request.
    let _ = stream.shutdown().await;
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(BOUND, stream.read_to_end(&mut sink)).await;
    assert!(closed.is_ok(), "the server kept a truncated request open");
    let answer = String::from_utf8_lossy(&sink);
    assert!(
        !answer.starts_with("HTTP/1.1 200"),
        "a truncated upload succeeded: {answer}"
    );
}

/// Waits (bounded) until `check` holds; returns whether it did.
async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    tokio::time::timeout(BOUND, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .is_ok()
}

async fn upload_ok(s: &TestServer, path: &str, data: &[u8]) {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(data.to_vec()).file_name("abort.bin"),
    );
    let response = s
        .client
        .post(s.url(path))
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{path}: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_location_uploads_leave_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let root = dir.path().join("volume");
    std::fs::create_dir_all(&root).expect("mkdir");
    let locations = Locations::new(LocationsConfig::default().with_paths([root.clone()])).await;
    let s = start_with_locations(locations, |_| {}).await;
    let payload = s4_core::testing::pattern(PAYLOAD, 11);
    let (boundary, body) = multipart_body(&payload);
    let path = format!("/local/upload/local-0/{}", b64("abort.bin"));
    for (label, cut) in cuts(&body) {
        cut_upload(&s, &path, &boundary, &body, cut).await;
        assert!(
            eventually(|| tree(&root).is_empty()).await,
            "{label}: left behind {:?}",
            tree(&root)
        );
    }
    let listing = s.get_json("/local/files/local-0").await;
    assert_eq!(listing.0, 200, "{}", listing.1);
    assert_eq!(listing.1["files"], serde_json::json!([]), "{}", listing.1);
    // The same upload works afterwards, and only its file exists.
    upload_ok(&s, &path, &payload).await;
    assert_eq!(tree(&root), vec![root.join("abort.bin")]);
    assert_eq!(
        std::fs::read(root.join("abort.bin")).expect("read"),
        payload.to_vec()
    );
}

async fn object_uploads_leave_nothing(kind: Kind) {
    let Some(s) = start(kind).await else {
        eprintln!("skipping {kind:?}: backend not configured (S4_TEST_S3_*)");
        return;
    };
    let bucket = s.bucket("aborts").await;
    let payload = s4_core::testing::pattern(PAYLOAD, 12);
    let (boundary, body) = multipart_body(&payload);
    let path = format!("/objects/upload/{bucket}/{}", b64("abort.bin"));
    let name = s4_core::BucketName::try_from(bucket.as_str()).expect("bucket");
    for (label, cut) in cuts(&body) {
        cut_upload(&s, &path, &boundary, &body, cut).await;
        let keys = s4_core::testing::all_keys(&s.s4, &name, "").await;
        assert!(keys.is_empty(), "{kind:?} {label}: listed {keys:?}");
        if let Some(data) = s.data_dir() {
            let left = || files(data);
            assert!(
                eventually(|| left().is_empty()).await,
                "{kind:?} {label}: left behind {:?}",
                left()
            );
        }
    }
    // Whatever the aborted requests were doing has finished: nothing appeared.
    if let Some(data) = s.data_dir() {
        assert!(
            eventually(|| files(data).is_empty()).await,
            "{kind:?}: {:?}",
            files(data)
        );
    }
    upload_ok(&s, &path, &payload).await;
    let keys = s4_core::testing::all_keys(&s.s4, &name, "").await;
    assert_eq!(keys, vec!["abort.bin".to_string()], "{kind:?}");
    let download = s
        .get(&format!("/objects/download/{bucket}/{}", b64("abort.bin")))
        .await;
    assert_eq!(download.status(), 200);
    assert_eq!(download.bytes().await.expect("bytes").len(), PAYLOAD);
    if let Some(data) = s.data_dir() {
        let stray: Vec<_> = files(data)
            .into_iter()
            .filter(|p| !p.ends_with("abort.bin"))
            .collect();
        assert!(stray.is_empty(), "{kind:?}: {stray:?}");
    }
    s.remove_bucket(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_uploads_leave_nothing_memory() {
    object_uploads_leave_nothing(Kind::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_uploads_leave_nothing_local() {
    object_uploads_leave_nothing(Kind::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(s4_test_s3), ignore = "needs S4_TEST_S3_ENDPOINT")]
async fn object_uploads_leave_nothing_s3() {
    object_uploads_leave_nothing(Kind::S3).await;
}
