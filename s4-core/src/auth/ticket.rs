//! One-time SSE tickets (API §5.2).
//!
//! Browsers' `EventSource` cannot send headers, so an authenticated client trades
//! its credentials for a short-lived ticket scoped to one `(type, resource)` pair
//! and passes it as `?ticket=`. A ticket is 32 bytes from the operating system's
//! CSPRNG, base64url without padding (43 characters): unguessable, so knowing it is
//! the credential.
//!
//! The store is a `HashMap` behind a **std** `Mutex`: every operation is a short,
//! synchronous map update that never awaits, so an async mutex would only add
//! overhead, and the critical section is what makes redemption single-use (lookup,
//! checks and removal happen under one lock, so two concurrent redemptions cannot
//! both succeed). A poisoned lock is recovered: no code path panics half-way
//! through an update, so the map is always consistent.
//!
//! Expiry uses [`tokio::time::Instant`], so tests can drive it with a paused clock;
//! the wall-clock `expiresAt` reported to clients comes from `SystemTime`. Expired
//! entries are purged opportunistically on `issue`/`redeem` once 60 s have passed
//! since the last purge, which needs no background task. Tickets are process-local
//! and die with the process.
//!
//! Tickets are never logged in full: logs carry at most an 8-character prefix.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::TryRngCore as _;
use tokio::time::Instant;

use super::messages;
use super::User;
use crate::error::{Error, ErrorKind, Result};

/// How often expired tickets are purged at least.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);
/// Characters of a ticket that may appear in logs.
const LOG_PREFIX_CHARS: usize = 8;

/// What a ticket grants access to (API §10.5 `resourceType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketType {
    /// `GET /api/transfer/progress/:jobId`; the resource is the job id.
    Transfer,
    /// `GET /api/objects/upload-progress/:encodedKey`; the resource is the encoded key.
    Upload,
}

impl TicketType {
    /// Parses `transfer` or `upload` (exact spelling).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] with [`messages::INVALID_RESOURCE_TYPE`] and code
    /// `BadRequest`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "transfer" => Ok(TicketType::Transfer),
            "upload" => Ok(TicketType::Upload),
            _ => {
                Err(Error::invalid(messages::INVALID_RESOURCE_TYPE)
                    .with_code("InvalidResourceType"))
            }
        }
    }

    /// `transfer` or `upload`.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketType::Transfer => "transfer",
            TicketType::Upload => "upload",
        }
    }
}

impl FromStr for TicketType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for TicketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A freshly issued ticket. `Debug` shows only a prefix of the value.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedTicket {
    /// The ticket value: 43 base64url characters.
    pub ticket: String,
    /// When it expires, in Unix **milliseconds** (`expiresAt`).
    pub expires_at_ms: u64,
    /// Its lifetime in whole seconds (`expiresIn`).
    pub expires_in: u64,
}

impl fmt::Debug for IssuedTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedTicket")
            .field("ticket", &log_prefix(&self.ticket))
            .field("expires_at_ms", &self.expires_at_ms)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

#[derive(Debug)]
struct Entry {
    user: User,
    resource_type: TicketType,
    resource: String,
    created_at: Instant,
    expires_at: Instant,
}

#[derive(Debug)]
struct State {
    tickets: HashMap<String, Entry>,
    last_purge: Instant,
}

impl State {
    /// Drops expired entries if the last purge is at least [`PURGE_INTERVAL`] old.
    fn maybe_purge(&mut self, now: Instant) {
        if now.duration_since(self.last_purge) >= PURGE_INTERVAL {
            self.tickets.retain(|_, entry| now <= entry.expires_at);
            self.last_purge = now;
        }
    }
}

/// In-memory store of one-time SSE tickets. Share it behind an `Arc` (the
/// [`AuthService`](super::AuthService) holds one).
pub struct TicketService {
    ttl: Duration,
    state: Mutex<State>,
}

impl TicketService {
    /// A store whose tickets live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        TicketService {
            ttl,
            state: Mutex::new(State {
                tickets: HashMap::new(),
                last_purge: Instant::now(),
            }),
        }
    }

    /// The ticket lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Issues a ticket letting `user` open the SSE stream of `(resource_type,
    /// resource)` once, within the TTL. `resource` is compared verbatim on redemption
    /// (the percent-decoded path segment). The ticket is not bound to an existing job
    /// or upload.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] with [`messages::TICKET_FIELDS_REQUIRED`] (code
    /// `BadRequest`) when `resource` is empty; [`ErrorKind::Internal`] with
    /// [`messages::TICKET_FAILED`] (code `InternalServerError`) when the OS random
    /// source fails.
    pub fn issue(
        &self,
        user: &User,
        resource_type: TicketType,
        resource: &str,
    ) -> Result<IssuedTicket> {
        if resource.is_empty() {
            return Err(
                Error::invalid(messages::TICKET_FIELDS_REQUIRED).with_code("TicketFieldsRequired")
            );
        }
        let ticket = random_ticket()?;
        let now = Instant::now();
        let expires_at_ms = SystemTime::now()
            .checked_add(self.ttl)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(u64::MAX);
        let entry = Entry {
            user: user.clone(),
            resource_type,
            resource: resource.to_owned(),
            created_at: now,
            expires_at: now + self.ttl,
        };
        {
            let mut state = self.lock();
            state.maybe_purge(now);
            state.tickets.insert(ticket.clone(), entry);
        }
        tracing::debug!(
            ticket = %log_prefix(&ticket),
            user = %user.username,
            resource_type = %resource_type,
            resource = %resource,
            "SSE ticket issued"
        );
        Ok(IssuedTicket {
            ticket,
            expires_at_ms,
            expires_in: self.ttl.as_secs(),
        })
    }

    /// Redeems `ticket` for the SSE stream of `(expected_type, resource)` and returns
    /// the user it was issued to. A valid ticket is deleted in the same critical
    /// section that checks it, so it can be used once only.
    ///
    /// A ticket presented for another type or resource is rejected and left
    /// untouched (it stays usable for its own stream); an expired one is deleted.
    /// A ticket is valid while `now <= expiresAt`.
    ///
    /// # Errors
    /// [`ErrorKind::Unauthenticated`] with [`messages::INVALID_TICKET`] when the
    /// ticket is unknown, expired, already used, or scoped to another type/resource.
    pub fn redeem(&self, ticket: &str, expected_type: TicketType, resource: &str) -> Result<User> {
        let now = Instant::now();
        let outcome = {
            let mut state = self.lock();
            state.maybe_purge(now);
            match state.tickets.get(ticket) {
                None => Err("unknown or used"),
                Some(entry) if now > entry.expires_at => {
                    state.tickets.remove(ticket);
                    Err("expired")
                }
                Some(entry)
                    if entry.resource_type != expected_type || entry.resource != resource =>
                {
                    Err("scoped to another resource")
                }
                Some(_) => state.tickets.remove(ticket).ok_or("unknown or used"),
            }
        };
        match outcome {
            Ok(entry) => {
                tracing::debug!(
                    ticket = %log_prefix(ticket),
                    user = %entry.user.username,
                    age_ms = now.duration_since(entry.created_at).as_millis(),
                    "SSE ticket redeemed"
                );
                Ok(entry.user)
            }
            Err(reason) => {
                tracing::debug!(
                    ticket = %log_prefix(ticket),
                    resource_type = %expected_type,
                    reason,
                    "SSE ticket rejected"
                );
                Err(Error::new(
                    ErrorKind::Unauthenticated,
                    messages::INVALID_TICKET,
                ))
            }
        }
    }

    /// Number of stored tickets (expired ones included until purged).
    pub fn len(&self) -> usize {
        self.lock().tickets.len()
    }

    /// Whether no ticket is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for TicketService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TicketService")
            .field("ttl", &self.ttl)
            .field("tickets", &self.len())
            .finish()
    }
}

/// 32 bytes from the OS CSPRNG, base64url without padding (43 characters).
fn random_ticket() -> Result<String> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.try_fill_bytes(&mut bytes).map_err(|e| {
        Error::internal(messages::TICKET_FAILED)
            .with_code("TicketFailed")
            .with_source(e)
    })?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// At most [`LOG_PREFIX_CHARS`] characters of `ticket`, followed by `…`.
fn log_prefix(ticket: &str) -> String {
    let mut prefix: String = ticket.chars().take(LOG_PREFIX_CHARS).collect();
    prefix.push('…');
    prefix
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> TicketService {
        TicketService::new(Duration::from_secs(60))
    }

    fn user() -> User {
        User::admin("alice")
    }

    fn assert_invalid(result: Result<User>) {
        let err = result.expect_err("ticket must be rejected");
        assert_eq!(err.kind(), ErrorKind::Unauthenticated);
        assert_eq!(err.message(), "Invalid or expired ticket");
    }

    #[tokio::test]
    async fn ticket_format() {
        let tickets = service();
        let issued = tickets
            .issue(&user(), TicketType::Transfer, "job-1")
            .expect("issue");
        assert_eq!(issued.ticket.len(), 43);
        assert!(issued
            .ticket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(&issued.ticket)
                .expect("base64url")
                .len(),
            32
        );
        assert_eq!(issued.expires_in, 60);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after epoch")
            .as_millis() as u64;
        assert!(issued.expires_at_ms > now_ms + 59_000 && issued.expires_at_ms <= now_ms + 60_000);
        let other = tickets
            .issue(&user(), TicketType::Transfer, "job-1")
            .expect("issue");
        assert_ne!(issued.ticket, other.ticket);
        let debug = format!("{issued:?}");
        assert!(!debug.contains(&issued.ticket));
    }

    #[tokio::test]
    async fn single_use() {
        let tickets = service();
        let t = tickets
            .issue(&user(), TicketType::Upload, "a2V5")
            .expect("issue")
            .ticket;
        assert_eq!(
            tickets
                .redeem(&t, TicketType::Upload, "a2V5")
                .expect("first use"),
            user()
        );
        assert_invalid(tickets.redeem(&t, TicketType::Upload, "a2V5"));
        assert!(tickets.is_empty());
    }

    #[tokio::test]
    async fn unknown_ticket() {
        assert_invalid(service().redeem("nope", TicketType::Transfer, "job-1"));
        assert_invalid(service().redeem("", TicketType::Transfer, "job-1"));
    }

    #[tokio::test]
    async fn wrong_resource_or_type_leaves_ticket_untouched() {
        let tickets = service();
        let t = tickets
            .issue(&user(), TicketType::Transfer, "job-1")
            .expect("issue")
            .ticket;
        assert_invalid(tickets.redeem(&t, TicketType::Transfer, "job-2"));
        assert_invalid(tickets.redeem(&t, TicketType::Upload, "job-1"));
        assert_eq!(tickets.len(), 1);
        assert!(tickets.redeem(&t, TicketType::Transfer, "job-1").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn expiry() {
        let tickets = service();
        let a = tickets
            .issue(&user(), TicketType::Transfer, "job-1")
            .expect("issue")
            .ticket;
        let b = tickets
            .issue(&user(), TicketType::Transfer, "job-1")
            .expect("issue")
            .ticket;
        // Valid while now <= expiresAt.
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(tickets.redeem(&a, TicketType::Transfer, "job-1").is_ok());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_invalid(tickets.redeem(&b, TicketType::Transfer, "job-1"));
        assert!(
            tickets.is_empty(),
            "an expired ticket is deleted when presented"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn expired_tickets_are_purged() {
        let tickets = service();
        for i in 0..5 {
            tickets
                .issue(&user(), TicketType::Transfer, &format!("job-{i}"))
                .expect("issue");
        }
        assert_eq!(tickets.len(), 5);
        tokio::time::advance(Duration::from_secs(61)).await;
        tickets
            .issue(&user(), TicketType::Upload, "k")
            .expect("issue");
        assert_eq!(
            tickets.len(),
            1,
            "expired tickets purged on the next operation"
        );
    }

    #[tokio::test]
    async fn user_and_roles_are_captured() {
        let tickets = service();
        let viewer = User {
            id: "u1".into(),
            username: "bob".into(),
            roles: vec!["viewer".into()],
            allowed_locations: Some(vec!["local-1".into()]),
        };
        let t = tickets
            .issue(&viewer, TicketType::Upload, "k")
            .expect("issue")
            .ticket;
        assert_eq!(
            tickets.redeem(&t, TicketType::Upload, "k").expect("valid"),
            viewer
        );
    }

    #[test]
    fn parse_types() {
        assert_eq!(
            TicketType::parse("transfer").ok(),
            Some(TicketType::Transfer)
        );
        assert_eq!(
            "upload".parse::<TicketType>().ok(),
            Some(TicketType::Upload)
        );
        let err = TicketType::parse("Upload").expect_err("case-sensitive");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            err.message(),
            "Invalid resourceType. Must be 'transfer' or 'upload'"
        );
        assert_eq!(err.code(), Some("InvalidResourceType"));
    }

    #[tokio::test]
    async fn empty_resource_is_rejected() {
        let err = service()
            .issue(&user(), TicketType::Upload, "")
            .expect_err("empty");
        assert_eq!(err.message(), "Resource and resourceType are required");
    }

    #[test]
    fn log_prefix_is_short() {
        assert_eq!(log_prefix("abcdefghijklmnop"), "abcdefgh…");
        assert_eq!(log_prefix("ab"), "ab…");
    }
}
