//! Unit tests of the daemon configuration (`config.rs`).

use super::*;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

fn build(flags: &Overrides, vars: &[(&str, &str)]) -> Result<DaemonConfig, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    DaemonConfig::from_lookup(flags, &move |k| map.get(k).cloned())
}

fn env(vars: &[(&str, &str)]) -> Result<DaemonConfig, ConfigError> {
    build(&Overrides::default(), vars)
}

/// The one problem of `vars`, which must be invalid.
fn problem(vars: &[(&str, &str)]) -> String {
    match env(vars) {
        Ok(config) => panic!("{vars:?} accepted: {config:?}"),
        Err(e) => {
            assert_eq!(e.problems().len(), 1, "{e}");
            e.problems()[0].clone()
        }
    }
}

#[test]
fn every_section_from_one_environment() -> Result<(), ConfigError> {
    let data = std::env::temp_dir().join("s4-config-unit");
    let data_dir = data.display().to_string();
    let config = env(&[
        ("IP", "0.0.0.0"),
        ("PORT", "8081"),
        ("S4_DATA_DIR", &data_dir),
        ("AWS_S3_ENDPOINT", "http://127.0.0.1:3900"),
        ("AWS_S3_BUCKET", "shared"),
        ("S4_S3_TIMEOUT", "7"),
        ("MAX_FILE_SIZE_GB", "3"),
        ("S4_FSYNC", "off"),
        ("LOCAL_STORAGE_PATHS", "/a, /b"),
        ("HF_TOKEN", "hf_x"),
        ("NO_PROXY", "localhost"),
        ("NOTIFICATION_STORE_PATH", "/etc/s4/n.json"),
        ("NB_PREFIX", "nb/x/"),
        ("UI_USERNAME", "admin"),
        ("UI_PASSWORD", "pw"),
        ("JWT_SECRET", "k"),
        ("S4_S3_ENDPOINT", "on"),
        ("S4_S3_PORT", "9100"),
        ("S4_S3_ACCESS_KEY_ID", "AK"),
        ("S4_S3_SECRET_ACCESS_KEY", "SK"),
        ("S4_IDLE_TIMEOUT", "0"),
        ("S4_BODY_READ_TIMEOUT", "90"),
        ("LOG_LEVEL", "debug"),
        ("AUDIT_LOG_ENABLED", "false"),
        ("LOG_FORMAT", "JSON"),
    ])?;
    let s = &config.settings;
    assert_eq!((s.ip.to_string(), s.port), ("0.0.0.0".to_string(), 8081));
    let BackendSettings::S3 {
        config: s3,
        timeouts,
    } = &s.backend
    else {
        panic!("s3 backend expected: {:?}", s.backend);
    };
    assert_eq!(s3.endpoint, "http://127.0.0.1:3900");
    assert_eq!(timeouts.response, Duration::from_secs(7));
    assert!(!config.backend_explicit);
    assert_eq!(
        config.locations.paths,
        [PathBuf::from("/a"), PathBuf::from("/b")]
    );
    assert_eq!(config.locations.max_file_size, 3 << 30);
    assert!(!config.locations.fsync);
    assert_eq!(config.store.env.hf_token.as_deref(), Some("hf_x"));
    assert_eq!(config.store.env.no_proxy.as_deref(), Some("localhost"));
    assert_eq!(config.store.s3_timeouts, *timeouts);
    assert_eq!(
        config.store.settings_path,
        Some(data.join(s4_core::config_store::SETTINGS_FILE))
    );
    let initial = config
        .store
        .initial_s3
        .as_ref()
        .map(|s3| s3.default_bucket.as_str());
    assert_eq!(initial, Some("shared"));
    assert_eq!(config.notifications_store, PathBuf::from("/etc/s4/n.json"));
    assert_eq!(config.http.nb_prefix, "/nb/x");
    assert_eq!(config.http.max_file_size_gb, 3);
    assert_eq!(config.http.default_bucket, "shared");
    assert!(config.http.auth.auth_enabled());
    assert_eq!(config.s3_endpoint.mode, EndpointMode::On);
    assert_eq!(config.s3_endpoint.port, 9100);
    let credentials = config
        .s3_endpoint
        .credentials
        .as_ref()
        .map(|c| c.access_key_id.as_str());
    assert_eq!(credentials, Some("AK"));
    assert_eq!(config.serve.header_read_timeout, Duration::from_secs(30));
    assert_eq!(config.serve.idle_timeout, Duration::from_secs(1));
    assert_eq!(config.serve.body_read_timeout, Duration::from_secs(90));
    assert_eq!(config.log.directives, "debug,audit=off");
    assert_eq!(config.log.format, LogFormat::Json);
    Ok(())
}

#[test]
fn defaults_of_an_empty_environment() -> Result<(), ConfigError> {
    let config = env(&[])?;
    assert_eq!(config.settings.port, 5000);
    assert_eq!(config.settings.backend.name(), "local");
    assert!(config.locations.paths.is_empty());
    assert!(config.locations.fsync);
    assert_eq!(
        config.notifications_store,
        PathBuf::from("./s4-data/.s4/notifications.json")
    );
    assert!(!config.http.auth.auth_enabled());
    assert_eq!(config.s3_endpoint.mode, EndpointMode::Auto);
    assert_eq!(config.s3_endpoint.port, DEFAULT_S3_PORT);
    assert!(config.s3_endpoint.credentials.is_none());
    assert_eq!(config.serve.idle_timeout, Duration::from_secs(60));
    assert_eq!(config.log.directives, "info");
    assert_eq!(config.log.format, LogFormat::Text);
    Ok(())
}

#[test]
fn flags_override_the_environment() -> Result<(), ConfigError> {
    let flags = Overrides {
        ip: Some("::1".into()),
        port: Some(9000),
        backend: Some("memory".into()),
        data_dir: Some("/srv/s4".into()),
        header_read_timeout: Some(5),
        idle_timeout: Some(6),
        body_read_timeout: Some(7),
        s3_endpoint: Some(EndpointMode::Off),
        s3_port: Some(9001),
    };
    let config = build(
        &flags,
        &[
            ("IP", "10.0.0.1"),
            ("PORT", "1"),
            ("S4_BACKEND", "local"),
            ("S4_DATA_DIR", "/elsewhere"),
            ("S4_HEADER_READ_TIMEOUT", "50"),
            ("S4_IDLE_TIMEOUT", "60"),
            ("S4_BODY_READ_TIMEOUT", "70"),
            ("S4_S3_ENDPOINT", "on"),
            ("S4_S3_PORT", "1"),
        ],
    )?;
    assert_eq!(config.settings.ip.to_string(), "::1");
    assert_eq!(config.settings.port, 9000);
    assert_eq!(config.settings.backend, BackendSettings::Memory);
    assert!(config.backend_explicit);
    assert_eq!(config.settings.data_dir, PathBuf::from("/srv/s4"));
    assert_eq!(config.serve.header_read_timeout, Duration::from_secs(5));
    assert_eq!(config.serve.idle_timeout, Duration::from_secs(6));
    assert_eq!(config.serve.body_read_timeout, Duration::from_secs(7));
    assert_eq!(config.s3_endpoint.mode, EndpointMode::Off);
    assert_eq!(config.s3_endpoint.port, 9001);
    // A flag also repairs a malformed variable it overrides.
    let config = build(&flags, &[("PORT", "http"), ("S4_S3_PORT", "x")])?;
    assert_eq!(config.settings.port, 9000);
    Ok(())
}

#[test]
fn one_bad_variable_of_each_kind_is_named() {
    for (vars, needle) in [
        (&[("PORT", "http")][..], "PORT=\"http\" is not a valid port"),
        (&[("BACKEND_PORT", "-1")], "BACKEND_PORT=\"-1\""),
        (
            &[("IP", "localhost:80")],
            "IP=\"localhost:80\" is not a valid IP address",
        ),
        (
            &[("S4_BACKEND", "ftp")],
            "S4_BACKEND=\"ftp\" is not one of local, memory, s3",
        ),
        (&[("S4_BACKEND", "s3")], "needs AWS_S3_ENDPOINT"),
        (
            &[("AWS_S3_ENDPOINT", "ftp://x")],
            "AWS_S3_ENDPOINT=\"ftp://x\"",
        ),
        (
            &[("LOG_LEVEL", "verbose")],
            "LOG_LEVEL=\"verbose\" is not one of",
        ),
        (&[("LOG_LEVEL", "info,=x=y")], "LOG_LEVEL=\"info,=x=y\""),
        (
            &[("LOG_FORMAT", "xml")],
            "LOG_FORMAT=\"xml\" is not one of text, json",
        ),
        (&[("S4_FSYNC", "sometimes")], "S4_FSYNC=\"sometimes\""),
        (&[("S4_S3_TIMEOUT", "soon")], "S4_S3_TIMEOUT=\"soon\""),
        (&[("S4_S3_RETRIES", "99")], "S4_S3_RETRIES=\"99\""),
        (&[("HF_ENDPOINT", "not a url")], "HF_ENDPOINT=\"not a url\""),
        (
            &[("HTTPS_PROXY", "proxy:3128")],
            "HTTPS_PROXY=\"proxy:3128\"",
        ),
        (
            &[("S4_S3_ENDPOINT", "maybe")],
            "S4_S3_ENDPOINT=\"maybe\" is not one of auto, on, off",
        ),
        (
            &[("S4_S3_PORT", "70000")],
            "S4_S3_PORT=\"70000\" is not a valid port",
        ),
        (
            &[("S4_S3_ACCESS_KEY_ID", "AK")],
            "S4_S3_ACCESS_KEY_ID and S4_S3_SECRET_ACCESS_KEY",
        ),
        (
            &[("S4_IDLE_TIMEOUT", "1m")],
            "S4_IDLE_TIMEOUT=\"1m\" is not a whole number",
        ),
    ] {
        let message = problem(vars);
        assert!(message.contains(needle), "{vars:?}: {message}");
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let err = env(&[
        ("PORT", "http"),
        ("LOG_FORMAT", "xml"),
        ("S4_S3_PORT", "x"),
        ("HF_ENDPOINT", "::"),
    ])
    .expect_err("invalid");
    let text = err.to_string();
    for name in ["PORT=", "LOG_FORMAT=", "S4_S3_PORT=", "HF_ENDPOINT="] {
        assert!(text.contains(name), "{name}: {text}");
    }
    assert_eq!(err.problems().len(), 4, "one line per problem: {text}");
    let err = env(&[
        ("PORT", "x"),
        ("IP", "y"),
        ("HTTP_PROXY", "z:1"),
        ("HF_ENDPOINT", "::"),
    ])
    .expect_err("invalid");
    assert_eq!(err.problems().len(), 4, "one line per problem: {err}");
}

#[test]
fn contract_fallbacks_stay_lenient() -> Result<(), ConfigError> {
    let config = env(&[
        ("MAX_FILE_SIZE_GB", "lots"),
        ("JWT_EXPIRATION_HOURS", "-1"),
        ("SSE_TICKET_TTL_SECONDS", "x"),
        ("MAX_FILES_PER_PAGE", "many"),
        ("MAX_CONCURRENT_TRANSFERS", "0"),
    ])?;
    assert_eq!(config.settings.max_file_size_gb, 20);
    assert_eq!(config.http.auth.jwt_expiration_hours(), 8);
    assert_eq!(config.settings.max_concurrent_transfers, 2);
    Ok(())
}

/// The names `from_lookup` asks for, over `vars`.
fn names_read(vars: &[(&str, &str)]) -> BTreeSet<String> {
    let map: HashMap<&str, &str> = vars.iter().copied().collect();
    let read = RefCell::new(BTreeSet::new());
    let lookup = |name: &str| {
        read.borrow_mut().insert(name.to_string());
        map.get(name).map(|v| v.to_string())
    };
    let _ = DaemonConfig::from_lookup(&Overrides::default(), &lookup);
    read.into_inner()
}

#[test]
fn the_help_table_lists_exactly_the_variables_read() {
    let mut table = BTreeSet::new();
    for (name, meaning) in ENV_VARS {
        assert!(table.insert(name.to_string()), "{name} listed twice");
        assert!(!meaning.is_empty(), "{name} has no meaning");
    }
    // Conditional reads: `BACKEND_PORT` only without `PORT`, `no_proxy` only
    // without `NO_PROXY`, `*_APPEND` only without the list itself.
    let mut read = names_read(&[]);
    read.extend(names_read(&[
        ("PORT", "1"),
        ("NO_PROXY", "x"),
        ("AWS_S3_ENDPOINT", "http://127.0.0.1:1"),
        ("ALLOWED_FILE_EXTENSIONS", ".a"),
        ("BLOCKED_FILE_EXTENSIONS", ".b"),
    ]));
    let unlisted: Vec<_> = read.difference(&table).collect();
    assert!(
        unlisted.is_empty(),
        "read but not in ENV_VARS: {unlisted:?}"
    );
    let unread: Vec<_> = table.difference(&read).collect();
    assert!(unread.is_empty(), "in ENV_VARS but never read: {unread:?}");
}

/// The directory watched for out-of-band changes of a configuration.
fn watched(config: &DaemonConfig) -> Option<PathBuf> {
    watched_bucket_root(config.bucket_data_path.clone(), &config.settings.backend)
}

#[test]
fn bucket_data_path_defaults_to_the_local_bucket_root() -> Result<(), ConfigError> {
    let config = env(&[("S4_DATA_DIR", "/srv/s4-data")])?;
    assert_eq!(config.bucket_data_path, None);
    assert_eq!(watched(&config), Some(PathBuf::from("/srv/s4-data")));
    // Empty is unset.
    let config = env(&[("S4_DATA_DIR", "/srv/s4-data"), ("BUCKET_DATA_PATH", " ")])?;
    assert_eq!(config.bucket_data_path, None);
    assert_eq!(watched(&config), Some(PathBuf::from("/srv/s4-data")));
    // No local bucket root: nothing watched unless the variable says where.
    for vars in [
        &[("S4_BACKEND", "memory")][..],
        &[("AWS_S3_ENDPOINT", "http://127.0.0.1:3900")][..],
        &[("S4_BACKEND", "memory"), ("BUCKET_DATA_PATH", "")][..],
    ] {
        let config = env(vars)?;
        assert_eq!(watched(&config), None, "{vars:?}");
    }
    Ok(())
}

#[test]
fn bucket_data_path_set_is_watched_whatever_the_backend() -> Result<(), ConfigError> {
    for backend in [
        &[("S4_DATA_DIR", "/srv/s4-data")][..],
        &[("S4_BACKEND", "memory")][..],
        &[("AWS_S3_ENDPOINT", "http://127.0.0.1:3900")][..],
    ] {
        let mut vars = backend.to_vec();
        vars.push(("BUCKET_DATA_PATH", " /var/lib/engine/buckets "));
        let config = env(&vars)?;
        let expected = PathBuf::from("/var/lib/engine/buckets");
        assert_eq!(
            config.bucket_data_path.as_ref(),
            Some(&expected),
            "{vars:?}"
        );
        assert_eq!(watched(&config), Some(expected), "{vars:?}");
    }
    Ok(())
}
