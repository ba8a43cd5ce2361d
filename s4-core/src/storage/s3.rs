//! The S3 backend: any S3-compatible endpoint (AWS S3, MinIO, Ceph RGW, Garage).
//!
//! Every request goes through one HTTP client (`quickack`: quick-ACK hyper for
//! plain `http://`, reqwest for `https://` or a proxy), one connection pool, one
//! set of timeouts. Object I/O goes through `object_store`'s [`AmazonS3`] (one
//! store per bucket sharing that client, path-style addressing). Bucket operations and listings, which `object_store`
//! does not offer in the shape S4 needs, are plain SigV4-signed requests
//! (`s3/request.rs`) parsed with `quick-xml`: ListBuckets, HeadBucket,
//! CreateBucket, DeleteBucket and ListObjectsV2 with the backend's own
//! continuation tokens, raw prefixes and storage classes; so are tagging
//! (`s3/tags.rs`), verbatim-key reads and deletes (`s3/raw.rs`) and server-side
//! copies (`s3/copy.rs`: CopyObject, multipart copy above
//! [`DEFAULT_MULTIPART_COPY_THRESHOLD`]).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::client::{HttpClient, HttpConnector};
use object_store::{ClientOptions, ObjectStore};
use serde::Deserialize;

mod copy;
#[cfg(test)]
mod fake_tests;
mod raw;
mod request;
mod sign;
mod tags;

use super::{decode_token, encode_token, Backend, BucketInfo, BucketListing, CreatedBucket};
use super::{ObjectSummary, Page, PageRequest, RawObject, ServerCopy, ServerCopyOptions};
use crate::error::{Error, Result};
use crate::names::{BucketName, ObjectKey};
use request::{object_path, Call, Requester};

use super::quickack::{route, QuickAckConnector, Route};
use super::s3_client::S3Timeouts;

pub use super::s3_config::S3Config;
pub use copy::{PendingUpload, ServerCopyStats, DEFAULT_MULTIPART_COPY_THRESHOLD};

/// Buckets of an S3-compatible endpoint.
#[derive(Debug)]
pub struct S3Backend {
    config: S3Config,
    endpoint: url::Url,
    /// The backend's own signed requests, on the shared client.
    requests: Requester,
    timeouts: S3Timeouts,
    /// Objects larger than this are copied server-side as multipart copies.
    multipart_copy_threshold: u64,
    copies: copy::Counters,
    // A std lock: never held across an await point.
    stores: RwLock<HashMap<String, Arc<AmazonS3>>>,
    /// Proxy of the object-store clients (API §20), when the endpoint is proxied.
    proxy_url: Option<String>,
    /// Extra trusted CA bundles (PEM) of the object-store clients.
    ca_pems: Vec<Vec<u8>>,
}

impl S3Backend {
    /// Creates a backend for `config` with the default [`S3Timeouts`]. Does not
    /// contact the endpoint.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when the endpoint is not an http(s) URL.
    pub fn new(config: S3Config) -> Result<Self> {
        Self::with_options(
            config,
            &crate::outbound::Outbound::default(),
            S3Timeouts::default(),
        )
    }

    /// Creates a backend for `config` whose every request follows `outbound`
    /// (proxy unless `NO_PROXY` exempts the endpoint, extra CA roots). Does not
    /// contact the endpoint.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when the endpoint or a proxy URL is invalid.
    pub fn with_outbound(config: S3Config, outbound: &crate::outbound::Outbound) -> Result<Self> {
        Self::with_options(config, outbound, S3Timeouts::default())
    }

    /// [`Self::new`] with explicit timeouts and retries.
    ///
    /// # Errors
    /// As [`Self::new`].
    pub fn with_timeouts(config: S3Config, timeouts: S3Timeouts) -> Result<Self> {
        Self::with_options(config, &crate::outbound::Outbound::default(), timeouts)
    }

    /// [`Self::with_outbound`] with explicit timeouts and retries.
    ///
    /// # Errors
    /// As [`Self::with_outbound`].
    pub fn with_options(
        config: S3Config,
        outbound: &crate::outbound::Outbound,
        timeouts: S3Timeouts,
    ) -> Result<Self> {
        let endpoint = url::Url::parse(config.endpoint.trim_end_matches('/')).map_err(|e| {
            Error::invalid(format!("invalid S3 endpoint {:?}: {e}", config.endpoint))
        })?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host().is_none() {
            return Err(Error::invalid(format!(
                "invalid S3 endpoint {:?}: expected http(s)://host[:port]",
                config.endpoint
            )));
        }
        outbound.proxy().validate()?;
        let proxy_url = outbound.proxy_for(&endpoint);
        let ca_pems = outbound.ca_pems().to_vec();
        let options = client_options(&timeouts, proxy_url.as_deref(), &ca_pems);
        // The one client of every request to the engine (see `quickack`).
        let client = QuickAckConnector {
            connect_timeout: timeouts.connect,
            request_timeout: timeouts.response,
            max_idle_per_host: MAX_IDLE_PER_HOST,
        }
        .connect(&options)
        .map_err(Error::from)?;
        Ok(Self {
            requests: Requester {
                client,
                endpoint: endpoint.clone(),
                access_key: config.access_key_id.clone(),
                secret: config.secret_access_key.clone(),
                region: config.region.clone(),
                timeouts,
            },
            config,
            endpoint,
            timeouts,
            multipart_copy_threshold: DEFAULT_MULTIPART_COPY_THRESHOLD,
            copies: copy::Counters::default(),
            stores: RwLock::new(HashMap::new()),
            proxy_url,
            ca_pems,
        })
    }

    /// Copies objects larger than `bytes` server-side as multipart copies
    /// (UploadPartCopy) instead of one CopyObject. Default
    /// [`DEFAULT_MULTIPART_COPY_THRESHOLD`] (5 GiB, CopyObject's limit); lower it to
    /// exercise multipart copies with small objects (at least 5 MiB, S3's smallest
    /// part).
    #[must_use]
    pub fn with_multipart_copy_threshold(mut self, bytes: u64) -> Self {
        self.multipart_copy_threshold =
            bytes.clamp(copy::MIN_PART, DEFAULT_MULTIPART_COPY_THRESHOLD);
        self
    }

    /// What [`Backend::copy_object`] copied server-side so far.
    pub fn server_copy_stats(&self) -> ServerCopyStats {
        self.copies.snapshot()
    }

    /// The configuration this backend was built from.
    pub fn config(&self) -> &S3Config {
        &self.config
    }

    fn client_options(&self) -> ClientOptions {
        client_options(&self.timeouts, self.proxy_url.as_deref(), &self.ca_pems)
    }

    /// Whether request paths reach the engine exactly as written (the hyper client
    /// does; reqwest's URL parser removes `.` and `..` segments).
    pub(super) fn verbatim_paths(&self) -> bool {
        route(self.endpoint.scheme(), self.proxy_url.is_some()) == Route::QuickAck
    }

    fn bucket_store(&self, bucket: &BucketName) -> Result<Arc<AmazonS3>> {
        if let Ok(stores) = self.stores.read() {
            if let Some(store) = stores.get(bucket.as_str()) {
                return Ok(Arc::clone(store));
            }
        }
        let store = AmazonS3Builder::new()
            .with_http_connector(SharedClient(self.requests.client.clone()))
            .with_endpoint(self.endpoint.as_str().trim_end_matches('/'))
            .with_bucket_name(bucket.as_str())
            .with_access_key_id(&self.config.access_key_id)
            .with_secret_access_key(&self.config.secret_access_key)
            .with_region(&self.config.region)
            .with_virtual_hosted_style_request(false)
            .with_client_options(self.client_options())
            .with_retry(self.timeouts.retry_config())
            .build()
            .map_err(Error::from)?;
        let store = Arc::new(store);
        if let Ok(mut stores) = self.stores.write() {
            stores.insert(bucket.as_str().to_string(), Arc::clone(&store));
        }
        Ok(store)
    }
}

/// Idle keep-alive connections kept to the engine.
const MAX_IDLE_PER_HOST: usize = 64;

/// The `User-Agent` of every request to the engine.
pub const USER_AGENT: &str = concat!("s4/", env!("CARGO_PKG_VERSION"));

/// The options of the backend's one HTTP client: `timeout` is the response
/// timeout of [`S3Timeouts`] (see [`QuickAckConnector`]), never a cap on a whole
/// transfer.
fn client_options(
    timeouts: &S3Timeouts,
    proxy: Option<&str>,
    ca_pems: &[Vec<u8>],
) -> ClientOptions {
    let mut options = ClientOptions::new()
        .with_allow_http(true)
        .with_user_agent(http::HeaderValue::from_static(USER_AGENT))
        .with_connect_timeout(timeouts.connect)
        .with_timeout(timeouts.response)
        .with_pool_max_idle_per_host(MAX_IDLE_PER_HOST);
    if let Some(proxy) = proxy {
        options = options.with_proxy_url(proxy);
    }
    for pem in ca_pems {
        for cert in object_store::Certificate::from_pem_bundle(pem).unwrap_or_default() {
            options = options.with_root_certificate(cert);
        }
    }
    options
}

/// Hands every bucket's store the backend's one client (and so one connection pool).
#[derive(Debug)]
struct SharedClient(HttpClient);

impl HttpConnector for SharedClient {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(self.0.clone())
    }
}

fn parse_xml<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T> {
    let text = std::str::from_utf8(body).map_err(|e| {
        Error::new(crate::ErrorKind::Backend, "invalid backend response").with_source(e)
    })?;
    quick_xml::de::from_str(text).map_err(|e| {
        Error::new(crate::ErrorKind::Backend, "cannot parse backend response").with_source(e)
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListAllMyBucketsResult {
    owner: Option<Owner>,
    #[serde(default)]
    buckets: BucketsXml,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Owner {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(default)]
    display_name: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct BucketsXml {
    #[serde(default)]
    bucket: Vec<BucketXml>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BucketXml {
    name: String,
    creation_date: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListBucketResult {
    #[serde(default)]
    contents: Vec<ContentsXml>,
    #[serde(default)]
    common_prefixes: Vec<PrefixXml>,
    #[serde(default)]
    is_truncated: bool,
    next_continuation_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContentsXml {
    key: String,
    last_modified: String,
    #[serde(rename = "ETag")]
    etag: Option<String>,
    #[serde(default)]
    size: u64,
    storage_class: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PrefixXml {
    prefix: String,
}

fn bucket_path(bucket: &BucketName) -> String {
    object_path(bucket.as_str(), None)
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[async_trait]
impl Backend for S3Backend {
    fn name(&self) -> &'static str {
        "s3"
    }

    async fn list_buckets(&self) -> Result<BucketListing> {
        let body = self
            .requests
            .send_ok(&Call::new(http::Method::GET, "/".into()))
            .await?;
        let parsed: ListAllMyBucketsResult = parse_xml(&body)?;
        Ok(BucketListing {
            buckets: parsed
                .buckets
                .bucket
                .into_iter()
                .map(|b| BucketInfo {
                    created: b.creation_date.as_deref().and_then(parse_time),
                    name: b.name,
                })
                .collect(),
            owner: parsed.owner.map(|o| super::BucketOwner {
                display_name: o.display_name,
                id: o.id,
            }),
        })
    }

    async fn head_bucket(&self, bucket: &BucketName) -> Result<()> {
        self.requests
            .send_ok(&Call::new(http::Method::HEAD, bucket_path(bucket)))
            .await
            .map(|_| ())
    }

    async fn create_bucket(&self, bucket: &BucketName) -> Result<CreatedBucket> {
        // us-east-1 is the default location and must not be named explicitly.
        let body = if self.config.region.is_empty() || self.config.region == "us-east-1" {
            Bytes::new()
        } else {
            Bytes::from(format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                self.config.region
            ))
        };
        // Not repeated after a timeout: a second attempt would answer "already
        // yours" for a bucket the first one created.
        let call = Call::new(http::Method::PUT, bucket_path(bucket)).body(body);
        self.requests.send_ok(&call.not_idempotent()).await?;
        Ok(CreatedBucket {
            location: Some(format!("/{bucket}")),
        })
    }

    async fn delete_bucket(&self, bucket: &BucketName) -> Result<()> {
        // Not repeated after a timeout: a second attempt would answer NoSuchBucket.
        let call = Call::new(http::Method::DELETE, bucket_path(bucket)).not_idempotent();
        self.requests.send_ok(&call).await?;
        if let Ok(mut stores) = self.stores.write() {
            stores.remove(bucket.as_str());
        }
        Ok(())
    }

    async fn store(&self, bucket: &BucketName) -> Result<Arc<dyn ObjectStore>> {
        Ok(self.bucket_store(bucket)? as Arc<dyn ObjectStore>)
    }

    fn holds_any_key(&self) -> bool {
        true
    }

    async fn get_raw(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        range: Option<std::ops::Range<u64>>,
        head: bool,
    ) -> Result<RawObject> {
        self.raw_get(bucket, key, range, head).await
    }

    async fn delete_raw(&self, bucket: &BucketName, key: &ObjectKey) -> Result<()> {
        self.raw_delete(bucket, key).await
    }

    async fn copy_object(
        &self,
        from: (&BucketName, &ObjectKey),
        to: (&BucketName, &ObjectKey),
        options: &ServerCopyOptions,
    ) -> Result<ServerCopy> {
        self.server_copy(from, to, options).await
    }

    async fn get_object_tags(
        &self,
        bucket: &BucketName,
        key: &crate::names::ObjectKey,
    ) -> Result<Vec<super::Tag>> {
        self.get_tags(bucket, key).await
    }

    async fn put_object_tags(
        &self,
        bucket: &BucketName,
        key: &crate::names::ObjectKey,
        tags: &[super::Tag],
    ) -> Result<()> {
        self.put_tags(bucket, key, tags).await
    }

    async fn delete_object_tags(
        &self,
        bucket: &BucketName,
        key: &crate::names::ObjectKey,
    ) -> Result<()> {
        self.delete_tags(bucket, key).await
    }

    async fn list_page(&self, bucket: &BucketName, request: &PageRequest) -> Result<Page> {
        let token = request.token.as_deref().map(decode_token).transpose()?;
        let mut call = Call::new(http::Method::GET, bucket_path(bucket))
            .query("list-type", "2")
            .query("max-keys", request.max_keys.to_string())
            .query("prefix", request.prefix.as_str());
        if request.delimited {
            call = call.query("delimiter", "/");
        }
        if let Some(token) = token {
            call = call.query("continuation-token", token);
        }
        let body = self.requests.send_ok(&call).await?;
        let parsed: ListBucketResult = parse_xml(&body)?;
        let next_token = match (parsed.is_truncated, parsed.next_continuation_token) {
            (true, Some(t)) if !t.is_empty() => Some(encode_token(&t)),
            _ => None,
        };
        Ok(Page {
            objects: parsed
                .contents
                .into_iter()
                .map(|c| ObjectSummary {
                    last_modified: parse_time(&c.last_modified).unwrap_or_default(),
                    etag: c.etag,
                    size: c.size,
                    storage_class: c.storage_class.unwrap_or_else(|| "STANDARD".to_string()),
                    key: c.key,
                })
                .collect(),
            prefixes: parsed
                .common_prefixes
                .into_iter()
                .map(|p| p.prefix)
                .collect(),
            next_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{FakeServer, ForwardProxy, Recorded, Reply};
    use crate::names::Prefix;
    use crate::outbound::{NoProxy, Outbound, ProxySettings};
    use object_store::ObjectStoreExt;

    /// A fake engine answering every request S4 sends with a plausible document.
    pub(super) fn engine(r: &Recorded) -> Reply {
        let xml = |body: &str| {
            Reply::new(200, body.to_string()).header("Content-Type", "application/xml")
        };
        if r.path() == "/" {
            return xml("<ListAllMyBucketsResult><Buckets><Bucket><Name>bkt</Name><CreationDate>2025-01-01T00:00:00.000Z</CreationDate></Bucket></Buckets></ListAllMyBucketsResult>");
        }
        if r.target.contains("list-type=2") {
            return xml("<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>k</Key><LastModified>2025-01-01T00:00:00.000Z</LastModified><ETag>\"e\"</ETag><Size>5</Size></Contents></ListBucketResult>");
        }
        if r.target.contains("tagging") {
            return xml(
                "<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>",
            );
        }
        if r.path() == "/bkt" {
            return Reply::new(200, "");
        }
        Reply::new(200, "hello")
            .header("ETag", "\"e\"")
            .header("Last-Modified", "Wed, 01 Jan 2025 00:00:00 GMT")
    }

    /// One request of every kind: buckets, listings, tagging, object I/O through
    /// `object_store`, a verbatim-key read. Returns how many requests it sent.
    async fn every_kind_of_request(backend: &S3Backend) -> usize {
        let bucket = BucketName::try_from("bkt").expect("bucket");
        let listing = backend.list_buckets().await.expect("list buckets");
        assert_eq!(listing.buckets[0].name, "bkt");
        backend.head_bucket(&bucket).await.expect("head bucket");
        let request = PageRequest {
            prefix: Prefix::try_from("").expect("prefix"),
            delimited: true,
            max_keys: 10,
            token: None,
        };
        let page = backend.list_page(&bucket, &request).await.expect("list");
        assert_eq!(page.objects[0].key, "k");
        let key = ObjectKey::try_from("k").expect("key");
        let tags = backend.get_object_tags(&bucket, &key).await.expect("tags");
        assert_eq!(tags, vec![("a".to_string(), "b".to_string())]);
        let store = backend.store(&bucket).await.expect("store");
        let got = store
            .get(&object_store::path::Path::from("k"))
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body");
        assert_eq!(&got[..], b"hello");
        let marker = ObjectKey::try_from("x/").expect("key");
        backend
            .get_raw(&bucket, &marker, None, true)
            .await
            .expect("raw head");
        6
    }

    pub(super) fn config(endpoint: String) -> S3Config {
        S3Config {
            endpoint,
            access_key_id: "id".into(),
            secret_access_key: "secret".into(),
            region: "us-east-1".into(),
        }
    }

    /// Bucket operations, listings and tagging take the same client as object I/O:
    /// every request carries the user agent of the backend's one `ClientOptions`
    /// (the quick-ACK client applies it as reqwest does), and with a proxy
    /// configured every one of them, object I/O and bucket operations alike, goes
    /// through the proxy.
    #[tokio::test]
    async fn every_request_takes_the_one_client() {
        let fake = FakeServer::start(engine).await;
        let direct = S3Backend::new(config(fake.url())).expect("backend");
        assert!(direct.verbatim_paths(), "plain http: the quick-ACK client");
        let sent = every_kind_of_request(&direct).await;
        let seen = fake.requests();
        assert_eq!(seen.len(), sent);
        for r in &seen {
            assert_eq!(
                r.header("user-agent"),
                Some(USER_AGENT),
                "{} {}",
                r.method,
                r.target
            );
        }

        let proxy = ForwardProxy::start().await;
        let outbound = Outbound::new(
            ProxySettings {
                http_proxy: proxy.url(),
                https_proxy: String::new(),
            },
            NoProxy::default(),
        );
        let proxied = S3Backend::with_outbound(config(fake.url()), &outbound).expect("backend");
        assert!(!proxied.verbatim_paths(), "proxied: reqwest");
        let sent = every_kind_of_request(&proxied).await;
        let through = proxy.requests();
        assert_eq!(through.len(), sent, "every request went through the proxy");
        assert!(through
            .iter()
            .all(|r| r.header("user-agent") == Some(USER_AGENT)));
        assert_eq!(fake.requests().len(), seen.len() + sent);
    }
}
