//! How the effective settings are derived (environment over persisted over
//! defaults) and how the settings file is read and written (atomically).

use std::path::Path;

use super::values::*;
use crate::error::{Error, Result};
use crate::outbound::ProxySettings;

pub(super) fn env_wins<T: PartialEq + Clone>(
    name: &str,
    env: Option<T>,
    persisted: Option<&T>,
    default: T,
) -> T {
    match (env, persisted) {
        (Some(env), Some(stored)) => {
            if env != *stored {
                tracing::info!(
                    variable = name,
                    "environment variable is set and wins over the persisted setting"
                );
            }
            env
        }
        (Some(env), None) => env,
        (None, Some(stored)) => stored.clone(),
        (None, None) => default,
    }
}

pub(super) fn effective(
    env: &EnvSettings,
    initial_s3: Option<&S3Settings>,
    p: &Persisted,
) -> RuntimeSettings {
    let base = initial_s3.cloned().unwrap_or_else(|| S3Settings {
        access_key_id: "s4admin".into(),
        secret_access_key: "s4secret".into(),
        region: "us-east-1".into(),
        endpoint: String::new(),
        default_bucket: String::new(),
    });
    let ps = p.s3.as_ref();
    let s3 = S3Settings {
        access_key_id: env_wins(
            "AWS_ACCESS_KEY_ID",
            env.access_key_id.clone(),
            ps.map(|s| &s.access_key_id),
            base.access_key_id,
        ),
        secret_access_key: env_wins(
            "AWS_SECRET_ACCESS_KEY",
            env.secret_access_key.clone(),
            ps.map(|s| &s.secret_access_key),
            base.secret_access_key,
        ),
        region: env_wins(
            "AWS_DEFAULT_REGION",
            env.region.clone(),
            ps.map(|s| &s.region),
            base.region,
        ),
        endpoint: env_wins(
            "AWS_S3_ENDPOINT",
            env.endpoint.clone(),
            ps.map(|s| &s.endpoint),
            base.endpoint,
        ),
        default_bucket: env_wins(
            "AWS_S3_BUCKET",
            env.default_bucket.clone(),
            ps.map(|s| &s.default_bucket),
            base.default_bucket,
        ),
    };
    let pp = p.proxy.as_ref();
    RuntimeSettings {
        s3,
        hf_token: env_wins(
            "HF_TOKEN",
            env.hf_token.clone(),
            p.hf_token.as_ref(),
            String::new(),
        ),
        proxy: ProxySettings {
            http_proxy: env_wins(
                "HTTP_PROXY",
                env.http_proxy.clone(),
                pp.map(|x| &x.http_proxy),
                String::new(),
            ),
            https_proxy: env_wins(
                "HTTPS_PROXY",
                env.https_proxy.clone(),
                pp.map(|x| &x.https_proxy),
                String::new(),
            ),
        },
        max_concurrent_transfers: env_wins(
            "MAX_CONCURRENT_TRANSFERS",
            env.max_concurrent_transfers
                .as_deref()
                .map(parse_max_concurrent),
            p.max_concurrent_transfers.as_ref(),
            DEFAULT_MAX_CONCURRENT_TRANSFERS,
        ),
        max_files_per_page: env_wins(
            "MAX_FILES_PER_PAGE",
            env.max_files_per_page.as_deref().map(snap_page_size),
            p.max_files_per_page.as_ref(),
            DEFAULT_MAX_FILES_PER_PAGE,
        ),
    }
}

pub(super) async fn read_persisted(path: &Path) -> Result<Persisted> {
    match tokio::fs::read(path).await {
        Ok(bytes) => {
            let persisted: Persisted = serde_json::from_slice(&bytes).map_err(|e| {
                Error::invalid(format!(
                    "settings file {} is corrupt ({e}); fix or remove it",
                    path.display()
                ))
                .with_code("CorruptSettings")
            })?;
            if persisted
                .max_files_per_page
                .is_some_and(|n| !PAGE_SIZES.contains(&n))
                || persisted.max_concurrent_transfers == Some(0)
            {
                return Err(Error::invalid(format!(
                    "settings file {} is corrupt (value out of range); fix or remove it",
                    path.display()
                ))
                .with_code("CorruptSettings"));
            }
            Ok(persisted)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Persisted::default()),
        Err(e) => Err(Error::from_io(
            e,
            format!("cannot read settings file {}", path.display()),
        )),
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a
/// rename: readers see the old or the new content, never a part.
pub(super) async fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| Error::from_io(e, format!("cannot create {}", dir.display())))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "settings".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", rand::random::<u64>()));
    let result = async {
        let mut file = tokio::fs::File::create(&tmp).await?;
        tokio::io::AsyncWriteExt::write_all(&mut file, bytes).await?;
        file.sync_all().await?;
        drop(file);
        tokio::fs::rename(&tmp, path).await
    }
    .await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(Error::from_io(
            e,
            format!("cannot write {}", path.display()),
        ));
    }
    Ok(())
}
