//! kill -9 mid-upload (issue #9, item 3): a child `s4` process is killed with SIGKILL
//! while a local-location upload streams into it, then restarted on the same data
//! directory and location. No temporary or partial file is anywhere, listings are
//! clean, and the same upload then succeeds.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::daemon::Daemon;
use common::{b64, files, multipart_body, tree};
use tokio::io::AsyncWriteExt;

const BOUND: Duration = Duration::from_secs(30);

/// Starts `s4` on an ephemeral port over `data` with `volume` as `local-0`, and waits
/// for its "listening" line.
fn spawn(dir: &Path, data: &Path, volume: &Path) -> Daemon {
    Daemon::start(
        dir,
        &[
            ("S4_BACKEND", &"local"),
            ("S4_DATA_DIR", &data),
            ("LOCAL_STORAGE_PATHS", &volume),
        ],
    )
}

/// Whether process `pid` has a file open under `dir` (the upload's temporary file,
/// named or not).
fn has_open_file_under(pid: u32, dir: &Path) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|target| target.starts_with(dir) && target != dir && !target.is_dir())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_upload_leaves_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let volume = dir.path().join("volume");
    std::fs::create_dir_all(&data).expect("mkdir");
    std::fs::create_dir_all(&volume).expect("mkdir");
    let volume = volume.canonicalize().expect("canonical");

    let mut daemon = spawn(dir.path(), &data, &volume);
    let payload = s4_core::testing::pattern(8 << 20, 21);
    let (boundary, body) = multipart_body(&payload);
    let path = format!("/api/local/upload/local-0/{}", b64("big.bin"));
    let mut stream = tokio::net::TcpStream::connect(daemon.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream
        .write_all(&body[..3 << 20])
        .await
        .expect("first 3 MiB");
    // Wait until the daemon writes the upload's file, then kill it.
    let pid = daemon.child.id();
    let writing = tokio::time::timeout(BOUND, async {
        while !has_open_file_under(pid, &volume) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        writing.is_ok(),
        "the daemon never started writing the upload"
    );
    daemon.child.kill().expect("SIGKILL");
    daemon.child.wait().expect("reaped");
    drop(stream);

    // Nothing in the location; no temporary file anywhere under the data directory.
    assert_eq!(tree(&volume), Vec::<PathBuf>::new());
    let stray = files(&data);
    assert!(stray.is_empty(), "{stray:?}");

    // Restart on the same directories: listings are clean and the upload works.
    let daemon = spawn(dir.path(), &data, &volume);
    let client = reqwest::Client::new();
    let base = daemon.api();
    let listing: serde_json::Value = client
        .get(format!("{base}/local/files/local-0"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listing["files"], serde_json::json!([]), "{listing}");
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(payload.to_vec()).file_name("big.bin"),
    );
    let response = client
        .post(format!("{base}/local/upload/local-0/{}", b64("big.bin")))
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), 200);
    assert_eq!(tree(&volume), vec![volume.join("big.bin")]);
    assert_eq!(
        std::fs::read(volume.join("big.bin")).expect("read").len(),
        payload.len()
    );
}
