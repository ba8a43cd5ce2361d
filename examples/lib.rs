//! Runnable examples of S4 (see the `[[example]]` targets):
//!
//! * `cargo run -p s4-examples --example embed` — embed `s4-core` in a service.
//! * `cargo run -p s4-examples --example server_in_process` — run the HTTP API
//!   in-process and call it.
