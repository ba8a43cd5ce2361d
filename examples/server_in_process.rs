//! Running the S4 HTTP API in-process: bind 127.0.0.1:0, serve, call it, shut down.
//!
//! ```sh
//! cargo run -p s4-examples --example server_in_process
//! ```

use s4_core::storage::MemoryBackend;
use s4_core::S4;
use s4_http::{serve, App, HttpConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let s4 = S4::builder().backend(MemoryBackend::new()).build();
    let app = App::new(s4, HttpConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/api", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, app, async {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::new();
    let health: serde_json::Value = client.get(&base).send().await?.json().await?;
    println!("GET /api -> {health}");
    let created: serde_json::Value = client
        .post(format!("{base}/buckets"))
        .json(&serde_json::json!({ "bucketName": "in-process" }))
        .send()
        .await?
        .json()
        .await?;
    println!("POST /api/buckets -> {created}");
    let buckets: serde_json::Value = client
        .get(format!("{base}/buckets"))
        .send()
        .await?
        .json()
        .await?;
    println!("GET /api/buckets -> {buckets}");

    // Graceful shutdown: stop accepting, drain in-flight requests.
    let _ = stop.send(());
    server.await??;
    println!("server stopped");
    Ok(())
}
