//! HS256 JSON Web Tokens: issuing login tokens and verifying presented ones (API §4.3).
//!
//! Only HS256 is accepted. The validation allows exactly that one algorithm, so a
//! token whose header names anything else is rejected before its signature is even
//! looked at: `none` (which the `jsonwebtoken` crate cannot even parse as an
//! algorithm), RS256 (the classic "public key used as HMAC secret" confusion) and
//! also HS384/HS512 signed with the right secret. `exp` is required and checked with
//! zero leeway; `aud`/`nbf` are not interpreted.
//!
//! Claims are decoded into a generic JSON map rather than a typed struct, because
//! the crate deserializes claims *before* checking expiry: a typed struct would
//! turn "expired" into a JSON error for tokens that also lack a field, and would
//! hide which of the §4.5 messages applies. The payload is checked by hand instead.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde_json::{Map, Value};

use super::messages;
use super::User;
use crate::error::{Error, ErrorKind, Result};

/// Claims of a token issued at login (API §4.3).
#[derive(Serialize)]
struct LoginClaims<'a> {
    id: &'a str,
    username: &'a str,
    roles: &'a [String],
    iat: u64,
    exp: u64,
}

/// The HS256 key pair and validation rules, built once per service.
pub(crate) struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    /// Keys for `secret` (its UTF-8 bytes are the HMAC key).
    pub(crate) fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Belt and braces: `new` already lists only HS256; say it explicitly so a
        // future default change cannot widen it.
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);
        JwtKeys {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// Signs a token for `user`, valid for `lifetime_secs` from now.
    pub(crate) fn issue(&self, user: &User, lifetime_secs: u64) -> Result<String> {
        let iat = unix_now();
        let claims = LoginClaims {
            id: &user.id,
            username: &user.username,
            roles: &user.roles,
            iat,
            exp: iat.saturating_add(lifetime_secs),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::internal("Failed to issue token").with_source(e))
    }

    /// Verifies `token` and returns the user it names.
    ///
    /// # Errors
    /// [`ErrorKind::Unauthenticated`] with [`messages::INVALID_TOKEN`],
    /// [`messages::TOKEN_EXPIRED`] or [`messages::INVALID_TOKEN_PAYLOAD`];
    /// [`ErrorKind::Internal`] with [`messages::AUTHENTICATION_ERROR`] when the crypto
    /// provider itself fails.
    pub(crate) fn verify(&self, token: &str) -> Result<User> {
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &self.decoding, &self.validation)
                .map_err(map_jwt_error)?;
        user_from_claims(&data.claims)
            .ok_or_else(|| unauthenticated(messages::INVALID_TOKEN_PAYLOAD))
    }
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtKeys(HS256, <redacted>)")
    }
}

fn unauthenticated(message: &'static str) -> Error {
    Error::new(ErrorKind::Unauthenticated, message)
}

/// Maps a `jsonwebtoken` failure to the §4.5 messages. Unknown kinds fail closed
/// (401 "Invalid token").
fn map_jwt_error(err: jsonwebtoken::errors::Error) -> Error {
    let message = match err.kind() {
        JwtErrorKind::ExpiredSignature => messages::TOKEN_EXPIRED,
        // Both arise only after the signature verified: the payload is wrong.
        JwtErrorKind::MissingRequiredClaim(_) | JwtErrorKind::InvalidClaimFormat(_) => {
            messages::INVALID_TOKEN_PAYLOAD
        }
        JwtErrorKind::Provider(_) | JwtErrorKind::MissingAlgorithm => {
            return Error::internal(messages::AUTHENTICATION_ERROR)
                .with_code("AuthenticationError")
                .with_source(err)
        }
        _ => messages::INVALID_TOKEN,
    };
    unauthenticated(message).with_source(err)
}

/// The user named by verified claims: `id` and `username` non-empty strings,
/// `roles` an array of strings, optional `allowedLocations` an array of strings (or
/// null). Anything else is an invalid payload.
fn user_from_claims(claims: &Map<String, Value>) -> Option<User> {
    fn non_empty(value: Option<&Value>) -> Option<String> {
        value?.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
    }
    fn strings(value: &Value) -> Option<Vec<String>> {
        value
            .as_array()?
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect()
    }
    let allowed_locations = match claims.get("allowedLocations") {
        None | Some(Value::Null) => None,
        Some(v) => Some(strings(v)?),
    };
    Some(User {
        id: non_empty(claims.get("id"))?,
        username: non_empty(claims.get("username"))?,
        roles: strings(claims.get("roles")?)?,
        allowed_locations,
    })
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use serde_json::json;

    const SECRET: &str = "test-secret-for-unit-tests";

    fn keys() -> JwtKeys {
        JwtKeys::new(SECRET)
    }

    fn mint(alg: Algorithm, secret: &str, claims: &Value) -> String {
        jsonwebtoken::encode(
            &Header::new(alg),
            claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("test token encodes")
    }

    fn valid_claims() -> Value {
        let now = unix_now();
        json!({"id": "admin", "username": "alice", "roles": ["admin"], "iat": now, "exp": now + 3600})
    }

    fn message(result: Result<User>) -> (ErrorKind, String) {
        let err = result.expect_err("token must be rejected");
        (err.kind(), err.message().to_string())
    }

    fn rejected_with(token: &str, expected: &str) {
        assert_eq!(
            message(keys().verify(token)),
            (ErrorKind::Unauthenticated, expected.to_string()),
            "token {token}"
        );
    }

    #[test]
    fn issued_token_round_trips_with_exact_claims() {
        let keys = keys();
        let user = User::admin("alice");
        let token = keys.issue(&user, 28_800).expect("issue");
        let verified = keys.verify(&token).expect("own token verifies");
        assert_eq!(verified, user);

        let mut parts = token.split('.');
        let header = parts.next().expect("header");
        let payload = parts.next().expect("payload");
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("b64")).expect("json");
        assert_eq!(header["alg"], "HS256");
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json");
        let obj = claims.as_object().expect("object");
        let mut names: Vec<&str> = obj.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["exp", "iat", "id", "roles", "username"]);
        assert_eq!(claims["id"], "admin");
        assert_eq!(claims["username"], "alice");
        assert_eq!(claims["roles"], json!(["admin"]));
        let iat = claims["iat"].as_u64().expect("iat");
        assert_eq!(claims["exp"].as_u64(), Some(iat + 28_800));
    }

    #[test]
    fn externally_minted_token_with_allowed_locations() {
        let now = unix_now();
        let token = mint(
            Algorithm::HS256,
            SECRET,
            &json!({"id": "u1", "username": "bob", "roles": ["viewer"],
                    "allowedLocations": ["local-1"], "exp": now + 60, "aud": "whatever"}),
        );
        let user = keys().verify(&token).expect("valid");
        assert_eq!(
            user.allowed_locations.as_deref(),
            Some(&["local-1".to_string()][..])
        );
        assert!(!user.is_admin());
    }

    #[test]
    fn wrong_secret_is_invalid() {
        rejected_with(
            &mint(Algorithm::HS256, "other-secret", &valid_claims()),
            messages::INVALID_TOKEN,
        );
    }

    #[test]
    fn alg_none_is_invalid() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(valid_claims().to_string());
        rejected_with(&format!("{header}.{payload}."), messages::INVALID_TOKEN);
        // Also with a lowercase/uppercase variant and a bogus signature.
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"None","typ":"JWT"}"#);
        rejected_with(&format!("{header}.{payload}.c2ln"), messages::INVALID_TOKEN);
    }

    #[test]
    fn other_hmac_algorithms_with_the_right_secret_are_invalid() {
        rejected_with(
            &mint(Algorithm::HS512, SECRET, &valid_claims()),
            messages::INVALID_TOKEN,
        );
        rejected_with(
            &mint(Algorithm::HS384, SECRET, &valid_claims()),
            messages::INVALID_TOKEN,
        );
    }

    #[test]
    fn tampered_payload_is_invalid() {
        let token = mint(Algorithm::HS256, SECRET, &valid_claims());
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut claims = valid_claims();
        claims["username"] = json!("mallory");
        parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
        rejected_with(&parts.join("."), messages::INVALID_TOKEN);
    }

    #[test]
    fn malformed_tokens_are_invalid() {
        for token in ["", "abc", "a.b", "a.b.c", "a.b.c.d", "....", "Bearer x"] {
            rejected_with(token, messages::INVALID_TOKEN);
        }
    }

    #[test]
    fn expired_token() {
        let now = unix_now();
        let claims = json!({"id": "admin", "username": "alice", "roles": ["admin"],
                            "iat": now - 7200, "exp": now - 1});
        rejected_with(
            &mint(Algorithm::HS256, SECRET, &claims),
            messages::TOKEN_EXPIRED,
        );
        // Expiry is reported even when the payload also lacks fields.
        let claims = json!({"exp": now - 100});
        rejected_with(
            &mint(Algorithm::HS256, SECRET, &claims),
            messages::TOKEN_EXPIRED,
        );
    }

    #[test]
    fn missing_or_malformed_claims_are_invalid_payload() {
        let now = unix_now();
        let exp = now + 600;
        let cases = [
            json!({"username": "a", "roles": ["admin"], "exp": exp}),
            json!({"id": "", "username": "a", "roles": ["admin"], "exp": exp}),
            json!({"id": 7, "username": "a", "roles": ["admin"], "exp": exp}),
            json!({"id": "admin", "roles": ["admin"], "exp": exp}),
            json!({"id": "admin", "username": "", "roles": ["admin"], "exp": exp}),
            json!({"id": "admin", "username": "a", "exp": exp}),
            json!({"id": "admin", "username": "a", "roles": "admin", "exp": exp}),
            json!({"id": "admin", "username": "a", "roles": [1], "exp": exp}),
            json!({"id": "admin", "username": "a", "roles": [], "allowedLocations": "local-0", "exp": exp}),
            // `exp` is required.
            json!({"id": "admin", "username": "a", "roles": ["admin"]}),
            json!({"id": "admin", "username": "a", "roles": ["admin"], "exp": "soon"}),
        ];
        for claims in cases {
            rejected_with(
                &mint(Algorithm::HS256, SECRET, &claims),
                messages::INVALID_TOKEN_PAYLOAD,
            );
        }
        // Empty roles is still an array: accepted (a user with no roles).
        let claims = json!({"id": "u", "username": "a", "roles": [], "exp": exp});
        let user = keys()
            .verify(&mint(Algorithm::HS256, SECRET, &claims))
            .expect("valid");
        assert!(user.roles.is_empty());
        assert!(!user.can_access_location("local-0"));
    }
}

/// Property tests: no presented text makes verification panic or succeed without
/// the secret, and every valid token names exactly the user it was issued for.
#[cfg(test)]
mod proptests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use proptest::prelude::*;

    const SECRET: &str = "proptest-secret";

    /// Three dot-separated parts: arbitrary text, or Base64 of arbitrary JSON-ish
    /// headers and payloads with arbitrary signatures.
    fn token_like() -> impl Strategy<Value = String> {
        let part = prop_oneof![
            "[A-Za-z0-9_=+/-]{0,40}",
            any::<String>().prop_map(|s| URL_SAFE_NO_PAD.encode(s)),
            Just(URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#)),
            Just(URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#)),
            "\\{\"(id|exp|roles|username)\":[0-9a-z\\[\\]\"]{0,12}\\}"
                .prop_map(|s| URL_SAFE_NO_PAD.encode(s)),
        ];
        prop::collection::vec(part, 1..5).prop_map(|p| p.join("."))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_text_is_rejected(token in prop_oneof![any::<String>(), token_like()]) {
            let err = JwtKeys::new(SECRET).verify(&token).err();
            prop_assert!(err.is_some(), "accepted {token:?}");
            prop_assert!(err.is_some_and(|e| e.kind() == ErrorKind::Unauthenticated));
        }

        /// Issued tokens verify to the same user; altering any one character of them
        /// (or verifying with another secret) is rejected.
        #[test]
        fn issued_tokens_round_trip(
            id in "[^\u{0}]{1,12}",
            username in any::<String>().prop_filter("non-empty", |s| !s.is_empty()),
            roles in prop::collection::vec(any::<String>(), 0..3),
            flip in any::<prop::sample::Index>(),
        ) {
            let keys = JwtKeys::new(SECRET);
            let user = User { id, username, roles, allowed_locations: None };
            let token = keys.issue(&user, 3600).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let verified = keys.verify(&token).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&verified.id, &user.id);
            prop_assert_eq!(&verified.username, &user.username);
            prop_assert_eq!(&verified.roles, &user.roles);
            prop_assert!(JwtKeys::new("another-secret").verify(&token).is_err());
            let i = flip.index(token.len());
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            if tampered != token {
                // Flipping the last character of the signature may only touch its
                // ignored trailing bits; anything else must be rejected.
                if i != token.len() - 1 {
                    prop_assert!(keys.verify(&tampered).is_err(), "tampered at {}", i);
                }
            }
        }
    }
}
