//! Embedding s4-core in another service: create a bucket, put, list, get, delete.
//!
//! Runs on a temporary local data directory (the embedded default); set
//! `S4_EXAMPLE_MEMORY=1` to use the in-memory backend instead.
//!
//! ```sh
//! cargo run -p s4-examples --example embed
//! ```

use bytes::Bytes;
use futures::StreamExt;
use s4_core::storage::{LocalBackend, MemoryBackend};
use s4_core::{BucketName, GetObjectOptions, ListOptions, ObjectKey, Prefix, PutObjectOptions, S4};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data_dir = std::env::temp_dir().join(format!("s4-embed-example-{}", std::process::id()));
    let s4 = if std::env::var("S4_EXAMPLE_MEMORY").as_deref() == Ok("1") {
        S4::builder().backend(MemoryBackend::new()).build()
    } else {
        S4::builder()
            .backend(LocalBackend::open(&data_dir).await?)
            .build()
    };
    println!("backend: {}", s4.backend().name());

    // Watch every change S4 makes (what webhook notifications build on).
    let mut changes = s4.subscribe_changes();

    let bucket = BucketName::try_from("example-models")?;
    s4.create_bucket(&bucket).await?;

    // Put: any stream of bytes; nothing is buffered whole.
    let key = ObjectKey::try_from("llama/config.json")?;
    let body = futures::stream::iter([
        Ok(Bytes::from_static(b"{\"model\":")),
        Ok(Bytes::from_static(b"\"llama\"}")),
    ]);
    let written = s4
        .put_object(&bucket, &key, body, PutObjectOptions::default())
        .await?;
    println!("put {key}: {} bytes", written.size);

    // List one folder level.
    let page = s4
        .list_objects(
            &bucket,
            &ListOptions::default().with_prefix(Prefix::try_from("llama/")?),
        )
        .await?;
    for object in &page.objects {
        println!("listed {} ({} bytes)", object.key, object.size);
    }

    // Get: a stream of chunks.
    let mut object = s4
        .get_object(&bucket, &key, GetObjectOptions::default())
        .await?;
    let mut content = Vec::new();
    while let Some(chunk) = object.body.next().await {
        content.extend_from_slice(&chunk?);
    }
    println!("got {key}: {}", String::from_utf8_lossy(&content));

    // Delete the folder, then the bucket.
    let outcome = s4
        .delete_object(&bucket, &ObjectKey::try_from("llama/")?)
        .await?;
    println!("deleted {} object(s)", outcome.deleted.len());
    s4.delete_bucket(&bucket).await?;

    while let Ok(change) = changes.try_recv() {
        println!("change: {:?} {}/{}", change.kind, change.bucket, change.key);
    }
    let _ = tokio::fs::remove_dir_all(&data_dir).await;
    Ok(())
}
