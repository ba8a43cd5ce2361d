//! Fixed-window rate limiting per client and key (API §6).
//!
//! Each key (`login:<ip>`, `sse-ticket:<ip>`, ...) has a window of 60 s opened by
//! its first request. Requests are admitted while fewer than *max* were admitted in
//! the window; further ones are rejected until it ends. Rejected requests neither
//! count nor extend the window, so a client hammering a closed window is let in
//! again exactly when the window that shut it out ends.
//!
//! The rejection is an [`Error`] of kind [`ErrorKind::RateLimited`] with the limit's
//! message and [`Error::retry_at`] = the Unix second at which the window ends (the
//! body's `retryAfter`); [`retry_after_secs`] turns that into the `Retry-After`
//! header's delta.
//!
//! Windows are timed with [`tokio::time::Instant`] so tests can drive them with a
//! paused clock; `retry_at` is wall-clock (`SystemTime`). State is in process memory
//! behind a **std** `Mutex`: a check is a short synchronous map update that never
//! awaits, so an async mutex would only add cost. The store is bounded: whenever it
//! exceeds [`MAX_KEYS`] entries, expired windows are purged (if more windows than
//! that are live at once, the next purge waits until the store has doubled, so
//! purging stays amortized O(1) per request under a flood of distinct clients).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::error::{Error, ErrorKind, Result};

/// Length of a rate-limit window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Store size above which expired windows are purged.
pub const MAX_KEYS: usize = 10_000;

/// One of the contract's rate limits: key prefix, maximum per window, message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Key prefix; the full key is `<name>:<client ip>`.
    pub name: &'static str,
    /// Requests admitted per 60-s window.
    pub max: u32,
    /// Message of the 429 response.
    pub message: &'static str,
}

impl RateLimit {
    /// `POST /auth/login`: 5 per minute.
    pub const LOGIN: RateLimit =
        RateLimit::new("login", 5, "Too many login attempts. Maximum 5 per minute.");
    /// `POST /auth/sse-ticket`: 20 per minute.
    pub const SSE_TICKET: RateLimit = RateLimit::new(
        "sse-ticket",
        20,
        "Too many ticket requests. Maximum 20 per minute.",
    );
    /// Object listing with a `contains` search: 5 per minute.
    pub const CONTAINS_SEARCH: RateLimit = RateLimit::new(
        "contains-search",
        5,
        "Too many search requests. Maximum 5 per minute.",
    );
    /// Local uploads: 20 per minute.
    pub const LOCAL_UPLOAD: RateLimit = RateLimit::new(
        "upload",
        20,
        "Too many upload requests. Maximum 20 per minute.",
    );
    /// `POST /transfer`: 10 per minute.
    pub const TRANSFER: RateLimit = RateLimit::new(
        "transfer",
        10,
        "Too many transfer requests. Maximum 10 per minute.",
    );

    /// A custom limit.
    pub const fn new(name: &'static str, max: u32, message: &'static str) -> Self {
        RateLimit { name, max, message }
    }

    /// The key of `client` (usually the peer IP address) under this limit:
    /// `<name>:<client>`.
    pub fn key(&self, client: impl fmt::Display) -> String {
        format!("{}:{client}", self.name)
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    admitted: u32,
}

#[derive(Debug)]
struct State {
    windows: HashMap<String, Window>,
    purge_above: usize,
}

/// Process-local fixed-window rate limiter. Share it behind an `Arc`.
#[derive(Debug)]
pub struct RateLimiter {
    state: Mutex<State>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl RateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        RateLimiter {
            state: Mutex::new(State {
                windows: HashMap::new(),
                purge_above: MAX_KEYS,
            }),
        }
    }

    /// Admits or rejects one request for `key` under `limit`. An admitted request
    /// counts against the window; a rejected one does not.
    ///
    /// # Errors
    /// [`ErrorKind::RateLimited`] with `limit.message` and
    /// [`retry_at`](Error::retry_at) = Unix seconds (rounded up) at which the window
    /// ends.
    pub fn check(&self, key: &str, limit: &RateLimit) -> Result<()> {
        let now = Instant::now();
        let mut state = self.lock();
        if let Some(window) = state.windows.get_mut(key) {
            if now.duration_since(window.started) >= WINDOW {
                *window = Window {
                    started: now,
                    admitted: 0,
                };
            }
            return admit(window, now, key, limit);
        }
        let mut window = Window {
            started: now,
            admitted: 0,
        };
        let result = admit(&mut window, now, key, limit);
        state.windows.insert(key.to_owned(), window);
        if state.windows.len() > state.purge_above {
            state
                .windows
                .retain(|_, w| now.duration_since(w.started) < WINDOW);
            state.purge_above = MAX_KEYS.max(state.windows.len().saturating_mul(2));
        }
        result
    }

    /// [`check`](Self::check) with the key `<limit.name>:<client>`.
    ///
    /// # Errors
    /// As [`check`](Self::check).
    pub fn check_client(&self, limit: &RateLimit, client: impl fmt::Display) -> Result<()> {
        self.check(&limit.key(client), limit)
    }

    /// Number of stored windows (expired ones included until purged).
    pub fn len(&self) -> usize {
        self.lock().windows.len()
    }

    /// Whether no window is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code path panics mid-update, so a poisoned map is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Counts the request in `window` if there is room, else builds the rejection.
fn admit(window: &mut Window, now: Instant, key: &str, limit: &RateLimit) -> Result<()> {
    if window.admitted < limit.max {
        window.admitted += 1;
        return Ok(());
    }
    let remaining = WINDOW.saturating_sub(now.duration_since(window.started));
    let retry_at = unix_secs_ceil(SystemTime::now() + remaining);
    tracing::debug!(key, max = limit.max, retry_at, "rate limit exceeded");
    Err(Error::new(ErrorKind::RateLimited, limit.message).with_retry_at(retry_at))
}

/// Whole seconds until a rate-limited request may be retried, for the `Retry-After`
/// header: `retry_at - now`, at least 1. `None` if `err` carries no `retry_at`.
pub fn retry_after_secs(err: &Error) -> Option<u64> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    err.retry_at().map(|at| at.saturating_sub(now).max(1))
}

/// Unix seconds of `t`, rounded up (0 before the epoch).
fn unix_secs_ceil(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix_now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs()
    }

    #[test]
    fn contract_limits() {
        let table = [
            (
                RateLimit::LOGIN,
                "login",
                5,
                "Too many login attempts. Maximum 5 per minute.",
            ),
            (
                RateLimit::SSE_TICKET,
                "sse-ticket",
                20,
                "Too many ticket requests. Maximum 20 per minute.",
            ),
            (
                RateLimit::CONTAINS_SEARCH,
                "contains-search",
                5,
                "Too many search requests. Maximum 5 per minute.",
            ),
            (
                RateLimit::LOCAL_UPLOAD,
                "upload",
                20,
                "Too many upload requests. Maximum 20 per minute.",
            ),
            (
                RateLimit::TRANSFER,
                "transfer",
                10,
                "Too many transfer requests. Maximum 10 per minute.",
            ),
        ];
        for (limit, name, max, message) in table {
            assert_eq!((limit.name, limit.max, limit.message), (name, max, message));
        }
        let ip: std::net::IpAddr = [10, 0, 0, 1].into();
        assert_eq!(RateLimit::LOGIN.key(ip), "login:10.0.0.1");
    }

    #[tokio::test(start_paused = true)]
    async fn admits_max_then_rejects_until_window_ends() {
        let limiter = RateLimiter::new();
        let before = unix_now();
        for i in 0..5 {
            assert!(
                limiter.check("login:1.2.3.4", &RateLimit::LOGIN).is_ok(),
                "request {i}"
            );
        }
        let err = limiter
            .check("login:1.2.3.4", &RateLimit::LOGIN)
            .expect_err("6th rejected");
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert_eq!(
            err.message(),
            "Too many login attempts. Maximum 5 per minute."
        );
        let retry_at = err.retry_at().expect("retry_at");
        // The window opened just now (the clock is paused) and ends 60 s later.
        assert!(
            retry_at >= before + 60 && retry_at <= unix_now() + 61,
            "{retry_at}"
        );
        let delta = retry_after_secs(&err).expect("delta");
        assert!((59..=61).contains(&delta), "{delta}");

        // Other keys are independent.
        assert!(limiter.check("login:5.6.7.8", &RateLimit::LOGIN).is_ok());
        assert!(limiter
            .check_client(&RateLimit::TRANSFER, "1.2.3.4")
            .is_ok());

        // A new window admits again.
        tokio::time::advance(WINDOW).await;
        for _ in 0..5 {
            assert!(limiter.check("login:1.2.3.4", &RateLimit::LOGIN).is_ok());
        }
        assert!(limiter.check("login:1.2.3.4", &RateLimit::LOGIN).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn rejections_do_not_extend_the_window() {
        let limiter = RateLimiter::new();
        let limit = RateLimit::new("t", 2, "slow down");
        assert!(limiter.check("t:a", &limit).is_ok());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(limiter.check("t:a", &limit).is_ok());
        // Hammer the closed window until just before it ends.
        for _ in 0..49 {
            tokio::time::advance(Duration::from_secs(1)).await;
            let err = limiter.check("t:a", &limit).expect_err("closed");
            assert_eq!(err.message(), "slow down");
        }
        // t = 59 s: still closed, one second left (rounded up to whole seconds).
        let err = limiter.check("t:a", &limit).expect_err("closed");
        assert!(matches!(retry_after_secs(&err), Some(1..=2)), "{err:?}");
        // t = 60 s: the window that opened at t = 0 has ended, despite the rejections.
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(limiter.check("t:a", &limit).is_ok());
    }

    #[test]
    fn retry_after_is_at_least_one() {
        let past = Error::new(ErrorKind::RateLimited, "x").with_retry_at(1);
        assert_eq!(retry_after_secs(&past), Some(1));
        let future = Error::new(ErrorKind::RateLimited, "x").with_retry_at(unix_now() + 30);
        assert!(matches!(retry_after_secs(&future), Some(29..=30)));
        assert_eq!(retry_after_secs(&Error::internal("x")), None);
    }

    #[tokio::test(start_paused = true)]
    async fn store_is_bounded() {
        let limiter = RateLimiter::new();
        let limit = RateLimit::new("k", 1, "m");
        for i in 0..MAX_KEYS {
            assert!(limiter.check(&format!("k:{i}"), &limit).is_ok());
        }
        assert_eq!(limiter.len(), MAX_KEYS);
        tokio::time::advance(WINDOW).await;
        // The 10 001st entry triggers a purge of every expired window.
        assert!(limiter.check("k:new", &limit).is_ok());
        assert_eq!(limiter.len(), 1);
        // Purged keys start fresh windows.
        assert!(limiter.check("k:0", &limit).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn live_windows_are_not_purged() {
        let limiter = RateLimiter::new();
        let limit = RateLimit::new("k", 1, "m");
        for i in 0..=MAX_KEYS {
            assert!(limiter.check(&format!("k:{i}"), &limit).is_ok());
        }
        // All live: nothing to purge, and limits still hold.
        assert_eq!(limiter.len(), MAX_KEYS + 1);
        assert!(limiter.check("k:0", &limit).is_err());
    }
}
