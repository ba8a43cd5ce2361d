//! A full disk answers 507 and leaves nothing behind, for object uploads on the local
//! backend and for local-location uploads. Needs a small tmpfs: the test mounts one
//! (root in CI) and skips with a printed reason where mounting is not permitted.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::{b64, files};
use s4_core::location::{Locations, LocationsConfig};
use s4_core::storage::LocalBackend;
use s4_core::S4;
use s4_http::{serve, App, HttpConfig};
use serde_json::{json, Value};

/// A 2 MiB tmpfs, unmounted on drop (then its mount point, a temporary directory,
/// is removed).
struct SmallFs {
    path: PathBuf,
    _mount_point: tempfile::TempDir,
}

impl SmallFs {
    fn mount() -> Option<SmallFs> {
        let dir = tempfile::tempdir().expect("temp dir");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIPPED: disk-full test: cannot mount a tmpfs here (needs root)");
            return None;
        }
        Some(SmallFs {
            path: dir.path().to_path_buf(),
            _mount_point: dir,
        })
    }
    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_answers_507_and_leaves_nothing() {
    let Some(fs) = SmallFs::mount() else { return };
    let data_dir = fs.path().join("buckets");
    let volume = fs.path().join("volume");
    std::fs::create_dir_all(&volume).expect("mkdir");
    let backend = LocalBackend::open(&data_dir).await.expect("backend");
    let locations = Locations::new(LocationsConfig::default().with_paths([volume.clone()])).await;
    let s4 = S4::builder()
        .shared_backend(Arc::new(backend))
        .locations(locations)
        .build();
    let app = App::new(s4, HttpConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/api", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, app, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{base}/buckets"))
        .json(&json!({"bucketName": "full"}))
        .send()
        .await
        .expect("create bucket");
    assert_eq!(created.status().as_u16(), 200);
    let upload = |url: String| {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(vec![7u8; 3 << 20]).file_name("big.bin"),
        );
        let request = client.post(url).multipart(form);
        async move {
            let r = request.send().await.expect("upload");
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    // 3 MiB into a 2 MiB file system.
    let (status, body) = upload(format!("{base}/objects/upload/full/{}", b64("big.bin"))).await;
    assert_eq!(
        (status, body),
        (
            507,
            json!({"error": "InsufficientStorage", "message": "Not enough disk space"})
        )
    );
    let (status, body) = upload(format!("{base}/local/upload/local-0/{}", b64("big.bin"))).await;
    assert_eq!(
        (status, body),
        (
            507,
            json!({"error": "Insufficient Storage", "message": "Disk full"})
        )
    );
    // Nothing left behind: no object, no staging or temporary file.
    assert_eq!(files(&data_dir), Vec::<PathBuf>::new());
    assert_eq!(files(&volume), Vec::<PathBuf>::new());
    let _ = stop.send(());
    server.await.expect("join").expect("serve");
}
