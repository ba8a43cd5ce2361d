//! Authentication: credential check, HS256 JWTs and one-time SSE tickets.
//!
//! (Being implemented; see issue 3.)
