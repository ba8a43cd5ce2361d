//! Unit tests of `mod.rs`.

use super::*;

#[test]
fn link_header() {
    assert_eq!(
        next_link("<https://h/api/x?cursor=abc>; rel=\"next\""),
        Some("https://h/api/x?cursor=abc")
    );
    assert_eq!(next_link("<a>; rel=\"prev\", <b>; rel=\"next\""), Some("b"));
    assert_eq!(next_link("<a>; rel=\"prev\""), None);
}

#[test]
fn origins() {
    let u = |s: &str| Url::parse(s).expect("url");
    assert!(same_origin(&u("http://a:1/x"), &u("http://a:1/")));
    assert!(!same_origin(&u("http://a:2/x"), &u("http://a:1/")));
    assert!(!same_origin(&u("http://b:1/x"), &u("http://a:1/")));
    assert!(same_origin(&u("https://a/x"), &u("https://a:443/")));
}

#[test]
fn model_info_errors() {
    let e = model_info_error(Some(404), br#"{"error":"Repository not found"}"#);
    assert_eq!(e.backend_status(), Some(404));
    assert_eq!(e.code(), Some("Repository not found"));
    assert_eq!(e.message(), "Repository not found");
    let e = model_info_error(None, b"");
    assert_eq!(e.code(), Some("HuggingFace API error"));
    assert_eq!(e.message(), "Error fetching model info from HuggingFace");
    assert_eq!(e.kind(), ErrorKind::Backend);
    let e = model_info_error(Some(429), b"slow down");
    assert_eq!(e.backend_status(), Some(429));
    assert_eq!(e.kind(), ErrorKind::RateLimited);
}
