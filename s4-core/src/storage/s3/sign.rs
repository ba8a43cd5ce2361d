//! SigV4 for the S3 backend's own requests, and S3's URI encoding: a leaf that
//! `request.rs` (which signs and sends every request) and the request builders
//! (`raw.rs`, `copy.rs`, `tags.rs`) share.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Percent-encodes `text` with S3's URI rules; `/` is kept when `keep_slash`.
pub(super) fn uri_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/');
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return Vec::new(),
    };
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Who signs, for where.
pub(super) struct Signer<'a> {
    pub(super) access_key: &'a str,
    pub(super) secret: &'a str,
    pub(super) region: &'a str,
}

/// The SigV4 `Authorization` value of a request. `path` and `query` are the
/// canonical (encoded) path and query string; `headers` are the lower-case
/// (name, value) pairs to sign, sorted by name.
pub(super) fn sigv4_authorization(
    signer: &Signer<'_>,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, String)],
    now: DateTime<Utc>,
    payload_hash: &str,
) -> String {
    let Signer {
        access_key,
        secret,
        region,
    } = *signer;
    let date = now.format("%Y%m%d").to_string();
    let canonical_headers: String = headers
        .iter()
        .map(|(n, v)| format!("{n}:{}\n", v.trim()))
        .collect();
    let signed: Vec<&str> = headers.iter().map(|(n, _)| *n).collect();
    let signed = signed.join(";");
    let canonical =
        format!("{method}\n{path}\n{query}\n{canonical_headers}\n{signed}\n{payload_hash}");
    let scope = format!("{date}/{region}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        now.format("%Y%m%dT%H%M%SZ"),
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let key = hmac(format!("AWS4{secret}").as_bytes(), &date);
    let key = hmac(&key, region);
    let key = hmac(&key, "s3");
    let key = hmac(&key, "aws4_request");
    let signature = hex(&hmac(&key, &to_sign));
    format!("AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}")
}

pub(super) fn has_dot_segment(key: &str) -> bool {
    key.split('/').any(|s| s == "." || s == "..")
}

pub(super) fn header<'a>(response: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    response.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_keys_verbatim() {
        assert_eq!(uri_encode("a//b", true), "a//b");
        assert_eq!(uri_encode("./a", true), "./a");
        assert_eq!(uri_encode("x/", true), "x/");
        assert_eq!(uri_encode("a b+c", true), "a%20b%2Bc");
        assert_eq!(uri_encode("ü", true), "%C3%BC");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
    }

    /// The worked example of AWS's SigV4 documentation for S3 ("GET Object": the
    /// first 10 bytes of test.txt, empty-payload hash): the exact signature.
    #[test]
    fn signature_matches_aws_example() {
        let now = DateTime::parse_from_rfc3339("2013-05-24T00:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let headers = vec![
            ("host", "examplebucket.s3.amazonaws.com".to_string()),
            ("range", "bytes=0-9".to_string()),
            ("x-amz-content-sha256", empty.to_string()),
            ("x-amz-date", "20130524T000000Z".to_string()),
        ];
        let signer = Signer {
            access_key: "AKIAIOSFODNN7EXAMPLE",
            secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            region: "us-east-1",
        };
        let auth = sigv4_authorization(&signer, "GET", "/test.txt", "", &headers, now, empty);
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }
}

/// Property tests: raw keys are sent exactly as stored.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The encoded path holds only unreserved characters, `/` and `%XX`, and
        /// percent-decodes back to the key's exact bytes (no segment dropped, no
        /// normalization), so the key S3 receives is the key S4 was given.
        #[test]
        fn uri_encode_is_exact(key in prop_oneof![any::<String>(), "[a./ ~%+-]{0,12}"], keep_slash in any::<bool>()) {
            let encoded = uri_encode(&key, keep_slash);
            prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b) || (keep_slash && b == b'/')));
            let decoded = percent_encoding::percent_decode_str(&encoded).collect::<Vec<u8>>();
            prop_assert_eq!(decoded, key.as_bytes());
        }
    }
}
