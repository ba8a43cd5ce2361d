//! Object tagging on S3 (`?tagging`), as plain signed requests: `object_store` has
//! no tagging API. Engines without tagging (Garage) answer 501 `NotImplemented`,
//! which is passed through.

use bytes::Bytes;
use serde::Deserialize;

use super::request::{object_path, Call};
use super::{parse_xml, S3Backend};
use crate::error::Result;
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

pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

impl S3Backend {
    async fn send_tagging(
        &self,
        method: http::Method,
        bucket: &BucketName,
        key: &ObjectKey,
        body: Bytes,
    ) -> Result<Bytes> {
        use base64::Engine as _;
        let md5 = base64::engine::general_purpose::STANDARD
            .encode(super::super::objmeta::md5_of([&body[..]]));
        let call = Call::new(method, object_path(bucket.as_str(), Some(key.as_str())))
            .query("tagging", "")
            .header("content-md5", md5)
            .body(body);
        self.requests.send_ok(&call).await
    }

    pub(super) async fn get_tags(&self, bucket: &BucketName, key: &ObjectKey) -> Result<Vec<Tag>> {
        let body = self
            .send_tagging(http::Method::GET, bucket, key, Bytes::new())
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
        self.send_tagging(http::Method::PUT, bucket, key, Bytes::from(xml))
            .await
            .map(|_| ())
    }

    pub(super) async fn delete_tags(&self, bucket: &BucketName, key: &ObjectKey) -> Result<()> {
        self.send_tagging(http::Method::DELETE, bucket, key, Bytes::new())
            .await
            .map(|_| ())
    }
}
