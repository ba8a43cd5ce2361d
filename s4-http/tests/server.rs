//! The server itself: HTTP/2 without TLS (h2c) and graceful shutdown.

mod common;

use common::{b64, start, Kind};
use futures::StreamExt;
use s4_core::storage::MemoryBackend;
use s4_core::{BucketName, ObjectKey, PutObjectOptions, S4};
use s4_http::{serve_with, App, HttpConfig, ServeOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge() {
    let s = start(Kind::Memory).await.expect("server");
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let response = client.get(s.url("/")).send().await.expect("h2c request");
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_drains_in_flight_requests() {
    let s4 = S4::builder().backend(MemoryBackend::new()).build();
    let bucket = BucketName::try_from("drain").expect("name");
    s4.create_bucket(&bucket).await.expect("bucket");
    let data = s4_core::testing::pattern(8 << 20, 1);
    let key = ObjectKey::try_from("big.bin").expect("key");
    s4.put_object(
        &bucket,
        &key,
        s4_core::testing::chunked(data.clone(), 1 << 20),
        PutObjectOptions::default(),
    )
    .await
    .expect("put");
    let app = App::new(s4, HttpConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_with(
        listener,
        app,
        async {
            let _ = stopped.await;
        },
        ServeOptions::default(),
    ));
    // Start a download and read its first chunk: the request is in flight.
    let client = reqwest::Client::new();
    let response = client
        .get(format!(
            "http://{addr}/api/objects/download/drain/{}",
            b64("big.bin")
        ))
        .send()
        .await
        .expect("download");
    let mut body = response.bytes_stream();
    let mut received = body
        .next()
        .await
        .expect("first chunk")
        .expect("chunk")
        .len();
    // Shut down: the listener closes, the in-flight download still completes.
    stop.send(()).expect("server running");
    while let Some(chunk) = body.next().await {
        received += chunk.expect("download completes during drain").len();
    }
    assert_eq!(received, data.len());
    server.await.expect("join").expect("serve returns cleanly");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[test]
fn invalid_configuration_fails_before_listening() {
    for (var, value, needle) in [
        ("PORT", "http", "PORT=\"http\" is not a valid port"),
        (
            "IP",
            "localhost:80",
            "IP=\"localhost:80\" is not a valid IP address",
        ),
        (
            "S4_BACKEND",
            "ftp",
            "S4_BACKEND=\"ftp\" is not one of local, memory, s3",
        ),
        (
            "LOG_LEVEL",
            "verbose",
            "LOG_LEVEL=\"verbose\" is not one of",
        ),
        (
            "LOG_FORMAT",
            "xml",
            "LOG_FORMAT=\"xml\" is not one of text, json",
        ),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_s4"))
            .env(var, value)
            .env("S4_DATA_DIR", std::env::temp_dir().join("s4-config-test"))
            .output()
            .expect("run s4");
        assert_eq!(output.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{stderr}");
    }
}

#[test]
fn malformed_dotenv_stops_the_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join(".env"),
        "PORT=5000\nTHIS IS NOT A SETTING\n",
    )
    .expect("write");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_s4"))
        .current_dir(dir.path())
        .env("S4_BACKEND", "memory")
        .env("S4_DATA_DIR", dir.path())
        // Were the file accepted, this invalid port would stop the start instead
        // (with a message not naming `.env`): the test never leaves a server running.
        .env("PORT", "not-a-port")
        .output()
        .expect("run s4");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(".env:"), "{stderr}");
}

#[test]
fn help_lists_every_variable_and_flag() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_s4"))
        .arg("--help")
        .output()
        .expect("run s4 --help");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for (name, _) in s4_http::config::ENV_VARS {
        assert!(help.contains(name), "--help lacks {name}");
    }
    for flag in ["--ip", "--port", "--backend", "--data-dir"] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}
