//! Fixed-window rate limiting per client and key.
//!
//! (Being implemented; see issue 3.)
