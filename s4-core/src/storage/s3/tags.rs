//! Object tagging on S3 (`?tagging`), as plain signed requests: `object_store` has
//! no tagging API. Engines without tagging (Garage) answer 501 `NotImplemented`,
//! which is passed through.

use bytes::Bytes;
use object_store::aws::AwsAuthorizer;
use serde::Deserialize;

use super::{parse_xml, transport_error, S3Backend};
use crate::error::{from_s3_response, Error, Result};
use crate::names::{BucketName, ObjectKey};
use crate::storage::Tag;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Tagging {
    #[serde(default)]
    tag_set: TagSet,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct TagSet {
    #[serde(default)]
    tag: Vec<TagXml>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagXml {
    key: String,
    #[serde(default)]
    value: String,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

impl S3Backend {
    fn tagging_url(&self, bucket: &BucketName, key: &ObjectKey) -> reqwest::Url {
        let mut url = self.url(Some(bucket), &[]);
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.extend(key.as_str().split('/'));
        }
        url.set_query(Some("tagging="));
        url
    }

    async fn send_tagging(
        &self,
        method: http::Method,
        url: reqwest::Url,
        body: Bytes,
    ) -> Result<Bytes> {
        use base64::Engine as _;
        let md5 = base64::engine::general_purpose::STANDARD
            .encode(super::super::objmeta::md5_of([&body[..]]));
        let mut signed = http::Request::builder()
            .method(method.clone())
            .uri(url.as_str())
            .header("content-md5", &md5)
            .body(object_store::client::HttpRequestBody::from(body.clone()))
            .map_err(|e| Error::internal("cannot build S3 request").with_source(e))?;
        AwsAuthorizer::new(&self.credential, "s3", &self.config.region)
            .try_authorize(&mut signed, None)
            .map_err(|e| Error::internal("cannot sign S3 request").with_source(e))?;
        let mut request = self.client.request(method, url).body(body);
        for (name, value) in signed.headers() {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport_error)?;
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(from_s3_response(status, &String::from_utf8_lossy(&body)))
        }
    }

    pub(super) async fn get_tags(&self, bucket: &BucketName, key: &ObjectKey) -> Result<Vec<Tag>> {
        let body = self
            .send_tagging(
                http::Method::GET,
                self.tagging_url(bucket, key),
                Bytes::new(),
            )
            .await?;
        let parsed: Tagging = parse_xml(&body)?;
        Ok(parsed
            .tag_set
            .tag
            .into_iter()
            .map(|t| (t.key, t.value))
            .collect())
    }

    pub(super) async fn put_tags(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        tags: &[Tag],
    ) -> Result<()> {
        let mut xml =
            String::from("<Tagging xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><TagSet>");
        for (k, v) in tags {
            xml.push_str(&format!(
                "<Tag><Key>{}</Key><Value>{}</Value></Tag>",
                escape(k),
                escape(v)
            ));
        }
        xml.push_str("</TagSet></Tagging>");
        self.send_tagging(
            http::Method::PUT,
            self.tagging_url(bucket, key),
            Bytes::from(xml),
        )
        .await
        .map(|_| ())
    }

    pub(super) async fn delete_tags(&self, bucket: &BucketName, key: &ObjectKey) -> Result<()> {
        self.send_tagging(
            http::Method::DELETE,
            self.tagging_url(bucket, key),
            Bytes::new(),
        )
        .await
        .map(|_| ())
    }
}
