//! Constant-time check of the login user name and password (API §4.2).
//!
//! Why digests: comparing the raw strings, even with a constant-time primitive,
//! leaks their *lengths* (a constant-time equality of unequal-length slices returns
//! early), and a naive `==` leaks how many leading bytes matched. Hashing both the
//! supplied and the configured value to fixed-length SHA-256 digests first makes
//! every comparison a 32-byte against 32-byte comparison whose time does not depend
//! on the inputs, and [`subtle::ConstantTimeEq`] keeps the compiler from
//! short-circuiting it. The user name and the password are always both compared,
//! and the two results are combined without branching, so timing does not reveal
//! which of the two was wrong.

use std::fmt;

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// SHA-256 digest of `s`: a fixed-length (32-byte) stand-in for the secret.
pub(crate) fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// Compares two digests in constant time.
pub(crate) fn ct_eq_digests(a: &[u8; 32], b: &[u8; 32]) -> bool {
    bool::from(a.ct_eq(b))
}

/// Digests of the configured user name and password (simple mode only).
#[derive(Clone)]
pub(crate) struct Credentials {
    username: [u8; 32],
    password: [u8; 32],
}

impl Credentials {
    /// Hashes the configured values once, at start-up.
    pub(crate) fn new(username: &str, password: &str) -> Self {
        Credentials {
            username: digest(username),
            password: digest(password),
        }
    }

    /// Whether both `username` and `password` match, in constant time.
    pub(crate) fn matches(&self, username: &str, password: &str) -> bool {
        let user_ok = ct_eq_digests(&self.username, &digest(username));
        let pass_ok = ct_eq_digests(&self.password, &digest(password));
        // Non-short-circuiting `&`: both comparisons always run, and neither result
        // decides whether the other is computed.
        user_ok & pass_ok
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_fixed_length_and_compare_correctly() {
        let short = digest("a");
        let long = digest(&"a".repeat(10_000));
        let empty = digest("");
        // Different input lengths, same digest length: the comparison never sees
        // the inputs' lengths.
        assert_eq!(short.len(), 32);
        assert_eq!(long.len(), 32);
        assert_eq!(empty.len(), 32);
        assert!(ct_eq_digests(&short, &digest("a")));
        assert!(!ct_eq_digests(&short, &long));
        assert!(!ct_eq_digests(&short, &empty));
        // A shared prefix does not make digests "closer".
        assert!(!ct_eq_digests(&digest("password"), &digest("password1")));
    }

    #[test]
    fn credential_matrix() {
        let creds = Credentials::new("admin", "s3cret-password");
        assert!(creds.matches("admin", "s3cret-password"));
        assert!(!creds.matches("admin2", "s3cret-password"), "wrong user");
        assert!(!creds.matches("admin", "s3cret-passwore"), "wrong password");
        assert!(!creds.matches("admin", "s3cret"), "prefix of the password");
        assert!(
            !creds.matches("admin", "s3cret-password-longer"),
            "longer password"
        );
        assert!(!creds.matches("", ""), "empty");
        assert!(!creds.matches("s3cret-password", "admin"), "swapped");
        assert_eq!(format!("{creds:?}"), "Credentials(<redacted>)");
    }
}
