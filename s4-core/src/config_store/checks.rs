//! Connection checks of the settings routes (API §16.2–§16.5): try S3
//! credentials, a HuggingFace token or proxies without storing anything.

use super::*;

impl ConfigStore {
    /// Connects with `creds` (`secretAccessKey` = [`REDACTED`] means the stored
    /// secret) through the current proxies and lists buckets. Changes nothing.
    ///
    /// # Errors
    /// The backend's refusal (with its status and code), or a network failure
    /// ([`ErrorKind::Backend`], code `Error`).
    pub async fn test_s3(&self, mut creds: S3Settings) -> Result<()> {
        if creds.secret_access_key == REDACTED {
            creds.secret_access_key = self.s3().secret_access_key;
        }
        let backend =
            S3Backend::with_options(creds.config(), &self.outbound(), self.inner.s3_timeouts)?;
        backend.list_buckets().await.map(|_| ())
    }

    /// Calls `whoami-v2` with `token` ([`REDACTED`] = the stored token) and returns
    /// the access token's display name.
    ///
    /// # Errors
    /// Any failure, as [`HubClient::whoami`] reports it.
    pub async fn test_hf(&self, token: &str) -> Result<Option<String>> {
        let token = if token == REDACTED {
            self.hf_token()
        } else {
            token.to_string()
        };
        if token.is_empty() {
            return Err(validation("hfToken must not be empty"));
        }
        let hub = HubClient::new(self.hf_endpoint(), &self.outbound(), Some(token))?;
        hub.whoami().await.map(|w| w.access_token_display_name)
    }

    /// `GET test_url` through the proxies given (not the stored ones; a [`REDACTED`]
    /// password means the stored one), redirects followed (API §16.4).
    ///
    /// # Errors
    /// Code `ProxyTestError`: a non-2xx answer carries its status
    /// ([`Error::backend_status`]); no answer and other failures are 500s.
    pub async fn test_proxy(&self, proxy: ProxySettings, test_url: &str) -> Result<()> {
        let fail =
            |message: String| Error::new(ErrorKind::Backend, message).with_code("ProxyTestError");
        let stored = self.proxy();
        let proxy = proxy.clone().keep_passwords_from(&stored).unwrap_or(proxy);
        let url = reqwest::Url::parse(test_url.trim()).map_err(|e| fail(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(fail(format!("unsupported URL scheme: {}", url.scheme())));
        }
        let client = self
            .outbound()
            .with_proxy(proxy)
            .client_builder()
            .map_err(|e| fail(e.message().to_string()))?
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| fail(e.to_string()))?;
        match client.get(url).send().await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => {
                let status = response.status();
                Err(fail(format!(
                    "Connection failed with status: {} - {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                ))
                .with_backend_status(status.as_u16()))
            }
            Err(e) if e.is_connect() || e.is_timeout() || e.is_request() => {
                Err(fail("No response received from the server.".into()).with_source(e))
            }
            Err(e) => Err(fail(e.to_string())),
        }
    }
}
