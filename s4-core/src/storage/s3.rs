//! The S3 backend: any S3-compatible endpoint (AWS S3, MinIO, Ceph RGW, Garage).
//!
//! Object I/O goes through `object_store`'s [`AmazonS3`] (one store per bucket,
//! path-style addressing). Bucket operations and listings, which `object_store`
//! does not offer in the shape S4 needs, are plain SigV4-signed requests
//! (signed with `object_store`'s own [`AwsAuthorizer`]) parsed with `quick-xml`:
//! ListBuckets, HeadBucket, CreateBucket, DeleteBucket and ListObjectsV2 with the
//! backend's own continuation tokens, raw prefixes and storage classes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::aws::{AmazonS3, AmazonS3Builder, AwsAuthorizer, AwsCredential};
use object_store::{ClientOptions, ObjectStore};
use serde::Deserialize;

mod raw;

use super::{decode_token, encode_token, Backend, BucketInfo, BucketListing, CreatedBucket};
use super::{ObjectSummary, Page, PageRequest, RawObject};
use crate::error::{from_s3_response, Error, Result};
use crate::names::{BucketName, ObjectKey};

use super::s3_client::S3Timeouts;

mod tags;

pub use super::s3_config::S3Config;

/// Buckets of an S3-compatible endpoint.
#[derive(Debug)]
pub struct S3Backend {
    config: S3Config,
    endpoint: reqwest::Url,
    credential: AwsCredential,
    client: reqwest::Client,
    timeouts: S3Timeouts,
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
        let endpoint = reqwest::Url::parse(config.endpoint.trim_end_matches('/')).map_err(|e| {
            Error::invalid(format!("invalid S3 endpoint {:?}: {e}", config.endpoint))
        })?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host().is_none() {
            return Err(Error::invalid(format!(
                "invalid S3 endpoint {:?}: expected http(s)://host[:port]",
                config.endpoint
            )));
        }
        let proxy_url = outbound.proxy_for(&endpoint);
        let client = outbound
            .client_builder()?
            .connect_timeout(timeouts.connect)
            .read_timeout(timeouts.response)
            .pool_max_idle_per_host(16)
            .build()
            .map_err(|e| Error::internal("cannot build HTTP client").with_source(e))?;
        let credential = AwsCredential {
            key_id: config.access_key_id.clone(),
            secret_key: config.secret_access_key.clone(),
            token: None,
        };
        Ok(Self {
            config,
            endpoint,
            credential,
            client,
            timeouts,
            stores: RwLock::new(HashMap::new()),
            proxy_url,
            ca_pems: outbound.ca_pems().to_vec(),
        })
    }

    /// The configuration this backend was built from.
    pub fn config(&self) -> &S3Config {
        &self.config
    }

    fn client_options(&self) -> ClientOptions {
        let mut options = ClientOptions::new()
            .with_allow_http(true)
            .with_connect_timeout(self.timeouts.connect)
            .with_pool_max_idle_per_host(64);
        if let Some(proxy) = &self.proxy_url {
            options = options.with_proxy_url(proxy);
        }
        for pem in &self.ca_pems {
            for cert in object_store::Certificate::from_pem_bundle(pem).unwrap_or_default() {
                options = options.with_root_certificate(cert);
            }
        }
        options
    }

    /// Whether object I/O uses the quick-ACK hyper client (plain `http://`, no proxy).
    fn uses_quickack(&self) -> bool {
        self.endpoint.scheme() == "http" && self.proxy_url.is_none()
    }

    fn quickack_connector(&self) -> super::quickack::QuickAckConnector {
        super::quickack::QuickAckConnector {
            connect_timeout: self.timeouts.connect,
            request_timeout: self.timeouts.response,
            max_idle_per_host: 64,
        }
    }

    fn bucket_store(&self, bucket: &BucketName) -> Result<Arc<AmazonS3>> {
        if let Ok(stores) = self.stores.read() {
            if let Some(store) = stores.get(bucket.as_str()) {
                return Ok(Arc::clone(store));
            }
        }
        let options = self.client_options();
        let mut builder = AmazonS3Builder::new();
        // A proxied endpoint keeps object_store's client, which knows proxies.
        if self.uses_quickack() {
            // Plain-HTTP engines get the quick-ACK client (see `quickack`).
            builder = builder.with_http_connector(self.quickack_connector());
        } else if self.proxy_url.is_none() && self.ca_pems.is_empty() {
            builder = builder.with_http_connector(super::s3_client::TimedReqwestConnector {
                timeouts: self.timeouts,
                max_idle_per_host: 64,
            });
        }
        let store = builder
            .with_endpoint(self.endpoint.as_str().trim_end_matches('/'))
            .with_bucket_name(bucket.as_str())
            .with_access_key_id(&self.config.access_key_id)
            .with_secret_access_key(&self.config.secret_access_key)
            .with_region(&self.config.region)
            .with_virtual_hosted_style_request(false)
            .with_client_options(options)
            .with_retry(self.timeouts.retry_config())
            .build()
            .map_err(Error::from)?;
        let store = Arc::new(store);
        if let Ok(mut stores) = self.stores.write() {
            stores.insert(bucket.as_str().to_string(), Arc::clone(&store));
        }
        Ok(store)
    }

    fn url(&self, bucket: Option<&BucketName>, query: &[(&str, &str)]) -> reqwest::Url {
        let mut url = self.endpoint.clone();
        if let Some(bucket) = bucket {
            if let Ok(mut segments) = url.path_segments_mut() {
                segments.pop_if_empty().push(bucket.as_str());
            }
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends one signed request and returns the body of a 2xx answer.
    async fn send(&self, method: http::Method, url: reqwest::Url, body: Bytes) -> Result<Bytes> {
        let mut signed = http::Request::builder()
            .method(method.clone())
            .uri(url.as_str())
            .body(object_store::client::HttpRequestBody::from(body.clone()))
            .map_err(|e| Error::internal("cannot build S3 request").with_source(e))?;
        AwsAuthorizer::new(&self.credential, "s3", &self.config.region)
            .try_authorize(&mut signed, None)
            .map_err(|e| Error::internal("cannot sign S3 request").with_source(e))?;
        let idempotent = method != http::Method::POST;
        let body_len = body.len() as u64;
        let response = super::s3_client::with_retries(&self.timeouts, body_len, idempotent, || {
            let mut request = self
                .client
                .request(method.clone(), url.clone())
                .body(body.clone());
            for (name, value) in signed.headers() {
                request = request.header(name, value);
            }
            request.send()
        })
        .await?;
        let status = response.status().as_u16();
        let body = super::s3_client::read_body(&self.timeouts, response).await?;
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(from_s3_response(status, &String::from_utf8_lossy(&body)))
        }
    }
}

/// A failed request: [`crate::ErrorKind::Timeout`], `Unavailable` or
/// `ConnectionLost` (see `s3_client`).
#[allow(dead_code)]
fn transport_error(e: reqwest::Error) -> Error {
    super::s3_client::classify_reqwest(&e).with_source(e)
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
            .send(http::Method::GET, self.url(None, &[]), Bytes::new())
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
            owner: parsed.owner.map(|o| (o.display_name, o.id)),
        })
    }

    async fn head_bucket(&self, bucket: &BucketName) -> Result<()> {
        self.send(
            http::Method::HEAD,
            self.url(Some(bucket), &[]),
            Bytes::new(),
        )
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
        self.send(http::Method::PUT, self.url(Some(bucket), &[]), body)
            .await?;
        Ok(CreatedBucket {
            location: Some(format!("/{bucket}")),
        })
    }

    async fn delete_bucket(&self, bucket: &BucketName) -> Result<()> {
        self.send(
            http::Method::DELETE,
            self.url(Some(bucket), &[]),
            Bytes::new(),
        )
        .await?;
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
        let max_keys = request.max_keys.to_string();
        let mut query: Vec<(&str, &str)> = vec![
            ("list-type", "2"),
            ("max-keys", &max_keys),
            ("prefix", request.prefix.as_str()),
        ];
        if request.delimited {
            query.push(("delimiter", "/"));
        }
        if let Some(token) = token.as_deref() {
            query.push(("continuation-token", token));
        }
        let body = self
            .send(
                http::Method::GET,
                self.url(Some(bucket), &query),
                Bytes::new(),
            )
            .await?;
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
