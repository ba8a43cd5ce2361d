//! The `s3proto` group: the daemon's S3 protocol endpoint against its REST API on
//! the local backend, in the same run and the same daemon: a 1 GiB PUT and GET
//! through each, and 4 KiB GETs from 64 keep-alive connections.
//!
//! S3 requests use presigned URLs made by `object_store`'s signer (SigV4,
//! `UNSIGNED-PAYLOAD`), sent by the same lean hyper client as the REST requests,
//! so both paths cost the client the same: the PUT is one streamed request with a
//! Content-Length, like the REST upload.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use futures::StreamExt;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use object_store::aws::AmazonS3Builder;
use object_store::signer::Signer;

use crate::client::{self, Conn};
use crate::data::Payload;
use crate::process::Daemon;
use crate::report::{Better, Results, Target};
use crate::{daemon_env, mb_per_s, say, Plan, Result, DATA_BUCKET};

const ACCESS_KEY: &str = "S4BENCHACCESSKEY0001";
const SECRET_KEY: &str = "s4-bench-secret-00000000000000000000000";

/// Declares the group's metrics.
pub fn declare(r: &mut Results, plan: &Plan) {
    use Better::Higher;
    let size = format!("{} MiB", plan.size >> 20);
    let ratio = |reference: &str| {
        Some(Target::RatioOf {
            reference: reference.to_string(),
            factor: 0.8,
        })
    };
    r.declare(
        "s3proto.rest.put",
        &format!("S3 endpoint vs REST, local: REST upload {size}"),
        "MB/s",
        Higher,
        None,
    );
    r.declare(
        "s3proto.s3.put",
        &format!("S3 endpoint vs REST, local: S3 PUT {size}"),
        "MB/s",
        Higher,
        ratio("s3proto.rest.put"),
    );
    r.declare(
        "s3proto.rest.get",
        &format!("S3 endpoint vs REST, local: REST download {size}, warm"),
        "MB/s",
        Higher,
        None,
    );
    r.declare(
        "s3proto.s3.get",
        &format!("S3 endpoint vs REST, local: S3 GET {size}, warm"),
        "MB/s",
        Higher,
        ratio("s3proto.rest.get"),
    );
    r.declare(
        "s3proto.rest.small_get",
        &format!(
            "S3 endpoint vs REST, local: REST 4 KiB GETs ×{}",
            plan.concurrency
        ),
        "req/s",
        Higher,
        None,
    );
    r.declare(
        "s3proto.s3.small_get",
        &format!(
            "S3 endpoint vs REST, local: S3 4 KiB GETs ×{}",
            plan.concurrency
        ),
        "req/s",
        Higher,
        None,
    );
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Path and query of a presigned URL for `key` in the data bucket.
async fn presigned(signer: &impl Signer, method: Method, key: &str) -> Result<String> {
    let url = signer
        .signed_url(
            method,
            &object_store::path::Path::from(key),
            Duration::from_secs(3600),
        )
        .await?;
    Ok(match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    })
}

/// A streamed PUT of `payload` to `path`.
async fn put(conn: &mut Conn, host: &str, path: &str, payload: &Payload) -> Result<()> {
    let frames = futures::stream::iter(payload.iter()).map(|b| Ok::<_, Infallible>(Frame::data(b)));
    let request = http::Request::builder()
        .method(Method::PUT)
        .uri(path)
        .header(http::header::HOST, host)
        .header(http::header::CONTENT_LENGTH, payload.size)
        .body(BodyExt::boxed(StreamBody::new(frames)))?;
    let response = conn.send(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if status != StatusCode::OK {
        return Err(format!(
            "S3 PUT answered {status}: {}",
            String::from_utf8_lossy(&body)
        )
        .into());
    }
    Ok(())
}

/// Measures the group once.
pub async fn measure(plan: &Plan, r: &mut Results) -> Result<()> {
    let s3_port = free_port()?;
    let mut env = daemon_env(plan, "local");
    env.extend([
        ("S4_S3_ENDPOINT".to_string(), "on".to_string()),
        ("S4_S3_PORT".to_string(), s3_port.to_string()),
        ("S4_S3_ACCESS_KEY_ID".to_string(), ACCESS_KEY.to_string()),
        (
            "S4_S3_SECRET_ACCESS_KEY".to_string(),
            SECRET_KEY.to_string(),
        ),
    ]);
    let log = plan.work_dir.join("s4-s3proto.log");
    let daemon = Daemon::start(&plan.s4_bin, &env, &log).await?;
    let api = daemon.addr;
    let s3: std::net::SocketAddr = ([127, 0, 0, 1], s3_port).into();
    let s3_host = s3.to_string();
    client::create_bucket(api, DATA_BUCKET).await?;
    let signer = AmazonS3Builder::new()
        .with_endpoint(format!("http://{s3}"))
        .with_allow_http(true)
        .with_bucket_name(DATA_BUCKET)
        .with_access_key_id(ACCESS_KEY)
        .with_secret_access_key(SECRET_KEY)
        .with_region("us-east-1")
        .with_virtual_hosted_style_request(false)
        .build()?;
    let payload = Payload::new(plan.size, 4000);

    // 1 GiB through the REST API, then through the S3 endpoint.
    let mut conn = Conn::open(api).await?;
    let started = Instant::now();
    conn.upload(DATA_BUCKET, "s3proto-rest.bin", &payload)
        .await?;
    let rest_put = mb_per_s(plan.size, started.elapsed());
    r.add("s3proto.rest.put", rest_put);
    let mut conn = Conn::open(s3).await?;
    let path = presigned(&signer, Method::PUT, "s3proto-s3.bin").await?;
    let started = Instant::now();
    put(&mut conn, &s3_host, &path, &payload).await?;
    let s3_put = mb_per_s(plan.size, started.elapsed());
    r.add("s3proto.s3.put", s3_put);

    let mut conn = Conn::open(api).await?;
    let started = Instant::now();
    let got = conn.download(DATA_BUCKET, "s3proto-rest.bin").await?;
    let rest_get = mb_per_s(got, started.elapsed());
    r.add("s3proto.rest.get", rest_get);
    let mut conn = Conn::open(s3).await?;
    let path = presigned(&signer, Method::GET, "s3proto-s3.bin").await?;
    let started = Instant::now();
    let (status, got) = conn.get_discard(&path).await?;
    if status != StatusCode::OK || got != plan.size {
        return Err(format!("S3 GET answered {status} with {got} bytes").into());
    }
    let s3_get = mb_per_s(got, started.elapsed());
    r.add("s3proto.s3.get", s3_get);
    say(format!(
        "s3proto: PUT REST {rest_put:.0} / S3 {s3_put:.0} MB/s; GET REST {rest_get:.0} / S3 {s3_get:.0} MB/s"
    ));

    // 4 KiB GETs: one object, read through both.
    let small = Payload::new(4096, 4001);
    let mut conn = Conn::open(api).await?;
    conn.upload(DATA_BUCKET, "s3proto/4k.bin", &small).await?;
    let rest = client::get_load(
        api,
        &client::download_path(DATA_BUCKET, "s3proto/4k.bin"),
        plan.concurrency,
        plan.warmup,
        plan.load,
    )
    .await?;
    let path = presigned(&signer, Method::GET, "s3proto/4k.bin").await?;
    let s3_load = client::get_load(s3, &path, plan.concurrency, plan.warmup, plan.load).await?;
    if rest.errors > 0 || s3_load.errors > 0 {
        return Err(format!(
            "4 KiB GET errors: REST {}, S3 {}",
            rest.errors, s3_load.errors
        )
        .into());
    }
    r.add("s3proto.rest.small_get", rest.requests_per_sec);
    r.add("s3proto.s3.small_get", s3_load.requests_per_sec);
    say(format!(
        "s3proto: 4 KiB GETs REST {:.0} / S3 {:.0} req/s",
        rest.requests_per_sec, s3_load.requests_per_sec
    ));
    drop(daemon);
    for key in ["s3proto-rest.bin", "s3proto-s3.bin"] {
        let _ = std::fs::remove_file(plan.data_dir.join(DATA_BUCKET).join(key));
    }
    Ok(())
}
