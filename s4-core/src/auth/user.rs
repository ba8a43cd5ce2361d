//! The authenticated identity and its local-location authorization (API §4.7).

use super::messages;
use crate::error::{Error, ErrorKind, Result};

/// The role that may access everything.
pub const ADMIN_ROLE: &str = "admin";

/// An authenticated identity: from a verified JWT, an SSE ticket, or the synthetic
/// proxy user of mode `none`. Its JSON shape on the wire is the HTTP adapter's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable identifier (`"admin"` for login tokens).
    pub id: String,
    /// Display and audit name.
    pub username: String,
    /// Roles; `admin` grants access to every local location.
    pub roles: Vec<String>,
    /// For non-admins: the local location ids the user may access (absent = none).
    pub allowed_locations: Option<Vec<String>>,
}

impl User {
    /// The synthetic user every request is in mode `none`:
    /// `{"id":"proxy-user","username":"proxy-user","roles":["admin"]}`.
    pub fn proxy_user() -> Self {
        User {
            id: "proxy-user".into(),
            username: "proxy-user".into(),
            roles: vec![ADMIN_ROLE.into()],
            allowed_locations: None,
        }
    }

    /// The administrator a login token names: id `admin`, role `admin`.
    pub fn admin(username: impl Into<String>) -> Self {
        User {
            id: "admin".into(),
            username: username.into(),
            roles: vec![ADMIN_ROLE.into()],
            allowed_locations: None,
        }
    }

    /// Whether the user has the `admin` role.
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == ADMIN_ROLE)
    }

    /// Whether the user may access the local location `location_id`: admins may
    /// access all, others only those in `allowed_locations`.
    pub fn can_access_location(&self, location_id: &str) -> bool {
        self.is_admin()
            || self
                .allowed_locations
                .as_deref()
                .is_some_and(|ids| ids.iter().any(|id| id == location_id))
    }

    /// [`can_access_location`](Self::can_access_location) as a result.
    ///
    /// # Errors
    /// [`ErrorKind::PermissionDenied`] `Access denied to location: <id>`.
    pub fn check_location(&self, location_id: &str) -> Result<()> {
        if self.can_access_location(location_id) {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::PermissionDenied,
                format!("{}{location_id}", messages::LOCATION_DENIED_PREFIX),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_user_is_admin() {
        let user = User::proxy_user();
        assert_eq!(user.id, "proxy-user");
        assert_eq!(user.username, "proxy-user");
        assert_eq!(user.roles, [ADMIN_ROLE]);
        assert!(user.is_admin());
        assert!(user.can_access_location("local-7"));
    }

    #[test]
    fn location_access() {
        let admin = User::admin("alice");
        assert!(admin.can_access_location("local-0"));
        let mut user = User {
            id: "u".into(),
            username: "bob".into(),
            roles: vec!["viewer".into()],
            allowed_locations: None,
        };
        assert!(!user.can_access_location("local-0"), "absent = none");
        user.allowed_locations = Some(vec!["local-1".into()]);
        assert!(user.can_access_location("local-1"));
        assert!(!user.can_access_location("local-0"));
        assert!(!user.can_access_location("local-10"));
        let err = user.check_location("local-0").expect_err("denied");
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        assert_eq!(err.message(), "Access denied to location: local-0");
        assert!(user.check_location("local-1").is_ok());
    }
}
