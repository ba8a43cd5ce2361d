//! Build-time switch for the S3 variants of the tests (`cfg(s4_test_s3)`).
//!
//! The backend-agnostic tests run on memory, local and S3; the S3 variants are
//! marked `#[cfg_attr(not(s4_test_s3), ignore = "needs S4_TEST_S3_ENDPOINT")]`, so
//! without an endpoint `cargo test` counts them as *ignored* instead of printing a
//! misleading `ok`. With `S4_REQUIRE_S3=1` they always run, and fail when the
//! endpoint is missing (CI can never go green without exercising S3).
//! Cargo reruns this script, and rebuilds the crate, when either variable changes.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(s4_test_s3)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=S4_TEST_S3_ENDPOINT");
    println!("cargo::rerun-if-env-changed=S4_REQUIRE_S3");
    let endpoint = std::env::var("S4_TEST_S3_ENDPOINT").is_ok_and(|v| !v.is_empty());
    let required = std::env::var("S4_REQUIRE_S3").is_ok_and(|v| v == "1");
    if endpoint || required {
        println!("cargo::rustc-cfg=s4_test_s3");
    }
}
