//! # s4-http
//!
//! The HTTP adapter of S4: the REST and Server-Sent-Events API of the contract
//! (`/api/...`) over `hyper` 1.x, and the `s4` daemon. It holds no storage logic:
//! every route parses its request, calls `s4-core`, and renders the result.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use s4_core::S4;
//! use s4_http::{serve, App, HttpConfig};
//!
//! let app = App::new(S4::builder().build(), HttpConfig::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! serve(listener, app, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! ## Layout
//!
//! * [`server`]: accept loop, HTTP/1.1 + h2c, graceful shutdown ([`serve`]).
//! * [`app`]: shared state and the request pipeline (prefix, limits, routing, auth,
//!   headers, logging).
//! * [`router`]: the one route table; authentication and tests are driven by it.
//! * [`routes`]: handlers, one module per operation family.
//! * [`error`]: the only mapping from core errors to statuses and JSON bodies.
//! * [`body`], [`download`]: the one body type; JSON and streaming helpers.
//! * [`s3`]: the S3 protocol endpoint (second listener, `s3s`), served by
//!   [`server::serve_handler`].

#![warn(missing_docs, unreachable_pub)]

pub mod access;
pub mod app;
pub mod body;
pub mod download;
pub mod error;
pub mod multipart;
pub mod router;
pub mod routes;
pub mod s3;
pub mod server;

pub use app::{App, HttpConfig};
pub use server::{serve, serve_with, ServeOptions};
