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
//! let app = App::new(S4::builder().memory().build(), HttpConfig::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! serve(listener, app, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! ## Layout
//!
//! What an embedder needs is public: [`serve`]/[`serve_with`] ([`ServeOptions`]),
//! [`App`] with its [`HttpConfig`] (and [`Cors`]), the daemon's [`config`]
//! ([`DaemonConfig`], the variable table [`config::ENV_VARS`]), and the
//! [`router`]'s route table (tooling and tests walk it). Everything else is the
//! crate's own:
//!
//! * [`config`]: the daemon's one configuration, every variable read and checked
//!   in one function from one snapshot of the environment.
//! * `server.rs`: accept loop, HTTP/1.1 + h2c, graceful shutdown.
//! * `app.rs`: shared state ([`App`], [`HttpConfig`]) and the per-request context;
//!   `pipeline.rs`: the request pipeline (prefix, limits, routing, auth, headers,
//!   logging).
//! * [`router`]: the one route table; authentication and tests are driven by it.
//! * `routes/`: handlers, one module per operation family.
//! * `error.rs`: the only mapping from core errors to statuses and JSON bodies.
//! * `body.rs` (`body/plain.rs`), `download.rs`: the one body type; JSON and
//!   streaming helpers.
//! * `access.rs`: authentication, CORS, security headers; `cookie.rs`: the
//!   session cookie's wire format.
//! * `console.rs`: the embedded web console, served outside `/api`.
//! * [`s3`]: the S3 protocol endpoint (second listener, `s3s`), served by the
//!   same accept loop as the API (`server.rs`).

#![warn(missing_docs, unreachable_pub)]

mod access;
mod app;
mod body;
pub mod config;
mod console;
mod cookie;
mod download;
mod error;
mod multipart;
mod pipeline;
pub mod router;
mod routes;
pub mod s3;
mod server;

pub use access::Cors;
pub use app::{App, HttpConfig};
pub use config::DaemonConfig;
pub use server::{serve, serve_with, ServeOptions};
