//! Object tags (API §12.9) on the [`S4`] handle: kept with the object on the local
//! and memory backends, passed through to S3 (an engine without tagging answers
//! `NotImplemented`).

use crate::error::{Error, Result};
use crate::names::{BucketName, ObjectKey};
use crate::storage::Tag;
use crate::S4;

/// Most tags on one object.
pub const MAX_TAGS: usize = 10;
/// Longest tag key, in characters.
pub const MAX_TAG_KEY: usize = 128;
/// Longest tag value, in characters.
pub const MAX_TAG_VALUE: usize = 256;

/// Checks a tag set against §12.9: at most 10 entries, keys of 1–128 characters
/// (unique), values of 0–256.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming the offending field.
pub fn validate_tags(tags: &[Tag]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Error::invalid(format!(
            "body/tags must NOT have more than {MAX_TAGS} items"
        )));
    }
    for (i, (key, value)) in tags.iter().enumerate() {
        let n = key.chars().count();
        if n == 0 {
            return Err(Error::invalid(format!(
                "body/tags/{i}/Key must NOT have fewer than 1 characters"
            )));
        }
        if n > MAX_TAG_KEY {
            return Err(Error::invalid(format!(
                "body/tags/{i}/Key must NOT have more than {MAX_TAG_KEY} characters"
            )));
        }
        if value.chars().count() > MAX_TAG_VALUE {
            return Err(Error::invalid(format!(
                "body/tags/{i}/Value must NOT have more than {MAX_TAG_VALUE} characters"
            )));
        }
        if tags[..i].iter().any(|(k, _)| k == key) {
            return Err(Error::invalid(format!(
                "body/tags/{i}/Key must be unique ({key:?} repeats)"
            )));
        }
    }
    Ok(())
}

impl S4 {
    /// The tags of an object.
    ///
    /// # Errors
    /// `NoSuchKey`/`NotFound`, `NoSuchBucket`, `NotImplemented` (engines without
    /// tagging), backend failures.
    pub async fn get_object_tags(&self, bucket: &BucketName, key: &ObjectKey) -> Result<Vec<Tag>> {
        self.backend().get_object_tags(bucket, key).await
    }

    /// Replaces the tags of an object (validated by [`validate_tags`]).
    ///
    /// # Errors
    /// As [`S4::get_object_tags`], and `InvalidInput` for an invalid set.
    pub async fn put_object_tags(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        tags: &[Tag],
    ) -> Result<()> {
        validate_tags(tags)?;
        self.backend().put_object_tags(bucket, key, tags).await
    }

    /// Removes every tag of an object.
    ///
    /// # Errors
    /// As [`S4::get_object_tags`].
    pub async fn delete_object_tags(&self, bucket: &BucketName, key: &ObjectKey) -> Result<()> {
        self.backend().delete_object_tags(bucket, key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(k: &str, v: &str) -> Tag {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn validation_table() {
        let long = |n: usize| "x".repeat(n);
        let ok: Vec<Vec<Tag>> = vec![
            vec![],
            vec![t("project", "llm")],
            vec![t(&long(128), &long(256))],
            vec![t("k", "")],
            (0..10).map(|i| t(&format!("k{i}"), "v")).collect(),
        ];
        for tags in ok {
            assert!(validate_tags(&tags).is_ok(), "{tags:?}");
        }
        let bad: Vec<Vec<Tag>> = vec![
            vec![t("", "v")],
            vec![t(&long(129), "v")],
            vec![t("k", &long(257))],
            (0..11).map(|i| t(&format!("k{i}"), "v")).collect(),
            vec![t("k", "a"), t("k", "b")],
        ];
        for tags in bad {
            let e = validate_tags(&tags).expect_err("invalid");
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
        }
    }
}
