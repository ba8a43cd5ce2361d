//! Outbound HTTP (API §20): proxies, `NO_PROXY`, TLS roots and timeouts.
//!
//! Every call S4 makes to another server (the S3 backend, the HuggingFace Hub,
//! webhooks) takes its client from an [`Outbound`]: plain-`http://` targets go
//! through `httpProxy`, `https://` targets through `httpsProxy` (CONNECT), unless the
//! target matches `NO_PROXY`; `""` means direct. HTTPS trusts the system roots plus
//! the cluster CA bundles of [`CA_BUNDLES`] that exist.
//!
//! ```no_run
//! # async fn demo() -> s4_core::Result<()> {
//! use s4_core::outbound::{NoProxy, Outbound, ProxySettings};
//!
//! let outbound = Outbound::new(
//!     ProxySettings { http_proxy: "http://proxy:3128".into(), https_proxy: String::new() },
//!     NoProxy::parse("localhost,.svc"),
//! )
//! .with_ca_bundles()
//! .await;
//! let client = outbound.client()?; // proxied reqwest::Client
//! # let _ = client; Ok(()) }
//! ```

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The placeholder every secret is shown as (API §16).
pub const REDACTED: &str = "***REDACTED***";

/// CA bundles trusted in addition to the system roots, when present (API §20).
pub const CA_BUNDLES: &[&str] = &[
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
    "/var/run/secrets/kubernetes.io/serviceaccount/service-ca.crt",
    "/etc/pki/tls/certs/odh-ca-bundle.crt",
    "/etc/pki/tls/certs/odh-trusted-ca-bundle.crt",
];

/// Connect timeout of every outbound client.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default per-request timeout of [`Outbound::client`] (the Hub, tests of settings).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// The proxy settings (`httpProxy`, `httpsProxy`; `""` = direct).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxySettings {
    /// Proxy for plain-`http://` targets.
    #[serde(default)]
    pub http_proxy: String,
    /// Proxy for `https://` targets (CONNECT tunnelling).
    #[serde(default)]
    pub https_proxy: String,
}

impl std::fmt::Debug for ProxySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxySettings")
            .field("http_proxy", &redact_proxy_url(&self.http_proxy))
            .field("https_proxy", &redact_proxy_url(&self.https_proxy))
            .finish()
    }
}

impl ProxySettings {
    /// The same settings with passwords replaced by [`REDACTED`], for display.
    pub fn redacted(&self) -> Self {
        ProxySettings {
            http_proxy: redact_proxy_url(&self.http_proxy),
            https_proxy: redact_proxy_url(&self.https_proxy),
        }
    }

    /// Checks both values: `""` or an `http(s)://host[:port]` URL.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] naming the field.
    pub fn validate(&self) -> Result<()> {
        for (field, value) in [
            ("httpProxy", &self.http_proxy),
            ("httpsProxy", &self.https_proxy),
        ] {
            if value.trim().is_empty() {
                continue;
            }
            let url = reqwest::Url::parse(value.trim()).map_err(|e| {
                Error::invalid(format!("{field} is not a valid URL: {e}"))
                    .with_code("ValidationError")
            })?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(Error::invalid(format!(
                    "{field} must be an http(s)://host[:port] URL"
                ))
                .with_code("ValidationError"));
            }
        }
        Ok(())
    }

    /// Replaces a [`REDACTED`] password in `self` by the password of the same field
    /// in `stored` (a PUT that sends the redacted form back keeps the password).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when the placeholder is sent but no
    /// password is stored.
    pub fn keep_passwords_from(mut self, stored: &ProxySettings) -> Result<Self> {
        self.http_proxy = keep_password(&self.http_proxy, &stored.http_proxy, "httpProxy")?;
        self.https_proxy = keep_password(&self.https_proxy, &stored.https_proxy, "httpsProxy")?;
        Ok(self)
    }
}

/// Splits `scheme://userinfo@rest` into (`scheme://`, userinfo, `@rest`), if it has
/// a userinfo part.
fn split_userinfo(url: &str) -> Option<(&str, &str, &str)> {
    let start = url.find("://")? + 3;
    let authority_end = url[start..]
        .find(['/', '?', '#'])
        .map(|i| start + i)
        .unwrap_or(url.len());
    let at = url[start..authority_end].rfind('@')? + start;
    Some((&url[..start], &url[start..at], &url[at..]))
}

/// `http://user:pass@host` → `http://user:***REDACTED***@host`; other values unchanged.
pub fn redact_proxy_url(url: &str) -> String {
    match split_userinfo(url) {
        Some((head, userinfo, tail)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{head}{user}:{REDACTED}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

fn password_of(url: &str) -> Option<&str> {
    split_userinfo(url).and_then(|(_, userinfo, _)| userinfo.split_once(':').map(|(_, p)| p))
}

fn keep_password(new: &str, stored: &str, field: &str) -> Result<String> {
    if password_of(new) != Some(REDACTED) {
        return Ok(new.to_string());
    }
    let Some(password) = password_of(stored) else {
        return Err(Error::invalid(format!(
            "{field}: the redacted password placeholder was sent but no password is stored"
        ))
        .with_code("ValidationError"));
    };
    match split_userinfo(new) {
        Some((head, userinfo, tail)) => {
            let user = userinfo.split_once(':').map(|(u, _)| u).unwrap_or(userinfo);
            Ok(format!("{head}{user}:{password}{tail}"))
        }
        None => Ok(new.to_string()),
    }
}

/// One `NO_PROXY` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// `*`: every target.
    All,
    /// A host name: itself and its sub-domains (`.domain` = sub-domains and itself).
    Domain(String),
    /// An IP address.
    Ip(IpAddr),
    /// `host:port`: exactly that host and port.
    HostPort(String, u16),
}

/// Parsed `NO_PROXY`: comma-separated host names, `.domain` suffixes, `host:port`,
/// IPs; `*` = all (API §20).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    rules: Vec<Rule>,
}

fn normalize_host(host: &str) -> String {
    host.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

impl NoProxy {
    /// Parses a `NO_PROXY` value (empty entries ignored).
    pub fn parse(value: &str) -> Self {
        let mut rules = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                rules.push(Rule::All);
                continue;
            }
            if let Ok(ip) = normalize_host(entry).parse::<IpAddr>() {
                rules.push(Rule::Ip(ip));
                continue;
            }
            // `host:port` or `[v6]:port`.
            if let Some((host, port)) = entry.rsplit_once(':') {
                if let Ok(port) = port.parse::<u16>() {
                    let host = normalize_host(host);
                    if !host.contains(':') || entry.starts_with('[') {
                        rules.push(Rule::HostPort(host, port));
                        continue;
                    }
                }
            }
            let domain = normalize_host(entry.trim_start_matches('.'));
            if !domain.is_empty() {
                rules.push(Rule::Domain(domain));
            }
        }
        NoProxy { rules }
    }

    /// Whether no rule is configured.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether a target `host` (name or IP) on `port` is exempt from proxying.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        let host = normalize_host(host);
        let ip = host.parse::<IpAddr>().ok();
        self.rules.iter().any(|rule| match rule {
            Rule::All => true,
            Rule::Ip(rule_ip) => ip == Some(*rule_ip),
            Rule::HostPort(h, p) => {
                *p == port && (*h == host || h.parse::<IpAddr>().ok() == ip && ip.is_some())
            }
            Rule::Domain(d) => {
                ip.is_none()
                    && (host == *d
                        || host
                            .strip_suffix(d.as_str())
                            .is_some_and(|rest| rest.ends_with('.')))
            }
        })
    }

    /// Whether `url` is exempt from proxying.
    pub fn matches_url(&self, url: &reqwest::Url) -> bool {
        match (url.host_str(), url.port_or_known_default()) {
            (Some(host), Some(port)) => self.matches(host, port),
            _ => false,
        }
    }
}

/// Everything an outbound client needs: proxies, exemptions, extra CA roots.
///
/// Cheap to clone. [`Outbound::default`] is direct, with system roots only.
#[derive(Debug, Clone, Default)]
pub struct Outbound {
    proxy: ProxySettings,
    no_proxy: NoProxy,
    /// Extra trusted CA bundles (PEM), loaded once.
    ca_pems: Arc<Vec<Vec<u8>>>,
}

impl Outbound {
    /// Outbound settings with `proxy` and `no_proxy`, system roots only.
    pub fn new(proxy: ProxySettings, no_proxy: NoProxy) -> Self {
        Outbound {
            proxy,
            no_proxy,
            ca_pems: Arc::new(Vec::new()),
        }
    }

    /// Also trusts the [`CA_BUNDLES`] that exist (read off the async runtime).
    pub async fn with_ca_bundles(mut self) -> Self {
        let pems = tokio::task::spawn_blocking(|| {
            CA_BUNDLES
                .iter()
                .filter_map(|path| std::fs::read(path).ok())
                .filter(|pem| reqwest::Certificate::from_pem_bundle(pem).is_ok())
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        self.ca_pems = Arc::new(pems);
        self
    }

    /// The same roots and exemptions with other proxies (e.g. the body of the proxy test).
    pub fn with_proxy(&self, proxy: ProxySettings) -> Self {
        Outbound {
            proxy,
            no_proxy: self.no_proxy.clone(),
            ca_pems: Arc::clone(&self.ca_pems),
        }
    }

    /// The proxy settings in effect.
    pub fn proxy(&self) -> &ProxySettings {
        &self.proxy
    }

    /// The `NO_PROXY` exemptions.
    pub fn no_proxy(&self) -> &NoProxy {
        &self.no_proxy
    }

    /// Extra trusted CA bundles (PEM).
    pub fn ca_pems(&self) -> &[Vec<u8>] {
        &self.ca_pems
    }

    /// The proxy URL a request to `target` goes through, if any.
    pub fn proxy_for(&self, target: &reqwest::Url) -> Option<String> {
        proxy_for(&self.proxy, &self.no_proxy, target)
    }

    /// A client builder with the proxies, exemptions, CA roots and the connect
    /// timeout applied (callers add their own request timeout and redirect policy).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when a proxy URL is invalid.
    pub fn client_builder(&self) -> Result<reqwest::ClientBuilder> {
        self.proxy.validate()?;
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT);
        if !self.proxy.http_proxy.trim().is_empty() || !self.proxy.https_proxy.trim().is_empty() {
            let proxy = self.proxy.clone();
            let no_proxy = self.no_proxy.clone();
            builder = builder.proxy(reqwest::Proxy::custom(move |url| {
                proxy_for(&proxy, &no_proxy, url)
            }));
        }
        let mut certs = Vec::new();
        for pem in self.ca_pems.iter() {
            if let Ok(bundle) = reqwest::Certificate::from_pem_bundle(pem) {
                certs.extend(bundle);
            }
        }
        if !certs.is_empty() {
            builder = builder.tls_certs_merge(certs);
        }
        Ok(builder)
    }

    /// A client with [`Outbound::client_builder`] and [`REQUEST_TIMEOUT`]; redirects
    /// followed (at most 10).
    ///
    /// # Errors
    /// As [`Outbound::client_builder`], or when the TLS setup fails.
    pub fn client(&self) -> Result<reqwest::Client> {
        self.client_builder()?
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| Error::internal("cannot build HTTP client").with_source(e))
    }
}

fn proxy_for(proxy: &ProxySettings, no_proxy: &NoProxy, target: &reqwest::Url) -> Option<String> {
    let chosen = match target.scheme() {
        "http" => proxy.http_proxy.trim(),
        "https" => proxy.https_proxy.trim(),
        _ => "",
    };
    if chosen.is_empty() || no_proxy.matches_url(target) {
        None
    } else {
        Some(chosen.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        assert_eq!(
            redact_proxy_url("http://user:pass@proxy:3128"),
            "http://user:***REDACTED***@proxy:3128"
        );
        assert_eq!(redact_proxy_url("http://proxy:3128"), "http://proxy:3128");
        assert_eq!(
            redact_proxy_url("http://user@proxy:3128"),
            "http://user@proxy:3128"
        );
        assert_eq!(redact_proxy_url(""), "");
        let shown = format!(
            "{:?}",
            ProxySettings {
                http_proxy: "http://u:secret@p:1".into(),
                https_proxy: String::new()
            }
        );
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn placeholder_keeps_password() {
        let stored = ProxySettings {
            http_proxy: "http://u:s3cr3t@p:1".into(),
            https_proxy: "http://v:other@q:2".into(),
        };
        let sent = stored.redacted();
        let kept = sent.keep_passwords_from(&stored).expect("kept");
        assert_eq!(kept, stored);
        let changed = ProxySettings {
            http_proxy: "http://u:new@p:1".into(),
            https_proxy: String::new(),
        }
        .keep_passwords_from(&stored)
        .expect("changed");
        assert_eq!(changed.http_proxy, "http://u:new@p:1");
        let orphan = ProxySettings {
            http_proxy: format!("http://u:{REDACTED}@p:1"),
            https_proxy: String::new(),
        };
        assert!(orphan
            .keep_passwords_from(&ProxySettings::default())
            .is_err());
    }

    #[test]
    fn validation() {
        let ok = ProxySettings {
            http_proxy: "http://p:3128".into(),
            https_proxy: String::new(),
        };
        assert!(ok.validate().is_ok());
        let bad = ProxySettings {
            http_proxy: "not a url".into(),
            https_proxy: String::new(),
        };
        assert!(bad.validate().is_err());
        let ftp = ProxySettings {
            http_proxy: String::new(),
            https_proxy: "ftp://p".into(),
        };
        assert!(ftp.validate().is_err());
    }

    #[test]
    fn no_proxy_rules() {
        let np = NoProxy::parse("localhost, .svc,example.com,10.0.0.1,hub:8080,[::1]");
        assert!(np.matches("localhost", 80));
        assert!(np.matches("a.b.svc", 443));
        assert!(np.matches("svc", 443));
        assert!(np.matches("example.com", 1));
        assert!(np.matches("www.example.com", 1));
        assert!(!np.matches("notexample.com", 1));
        assert!(np.matches("10.0.0.1", 5));
        assert!(!np.matches("10.0.0.2", 5));
        assert!(np.matches("hub", 8080));
        assert!(!np.matches("hub", 8081));
        assert!(np.matches("::1", 1));
        assert!(NoProxy::parse("*").matches("anything", 1));
        assert!(NoProxy::parse("").is_empty());
        assert!(NoProxy::parse("127.0.0.1:9000").matches("127.0.0.1", 9000));
        assert!(!NoProxy::parse("127.0.0.1:9000").matches("127.0.0.1", 9001));
    }

    #[test]
    fn proxy_choice_by_scheme() {
        let outbound = Outbound::new(
            ProxySettings {
                http_proxy: "http://hp:1".into(),
                https_proxy: "http://sp:2".into(),
            },
            NoProxy::parse("direct.example"),
        );
        let url = |s: &str| reqwest::Url::parse(s).expect("url");
        assert_eq!(
            outbound.proxy_for(&url("http://x/")).as_deref(),
            Some("http://hp:1")
        );
        assert_eq!(
            outbound.proxy_for(&url("https://x/")).as_deref(),
            Some("http://sp:2")
        );
        assert_eq!(outbound.proxy_for(&url("http://direct.example/")), None);
        assert_eq!(Outbound::default().proxy_for(&url("http://x/")), None);
    }
}
