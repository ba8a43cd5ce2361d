//! End-to-end tests of the web console in a real headless Chromium, driven over
//! WebDriver (chromedriver + fantoccini), against a real daemon on 127.0.0.1:0 on
//! the local backend and on Garage, with authentication off and on (the latter
//! also under an `NB_PREFIX`).
//!
//! One session walks the list: log in, create a bucket, upload a small text
//! file and a 5 MiB binary through the file picker and by drag-and-drop, see them
//! listed with their sizes, preview, details, download (bytes compared), folders
//! with breadcrumbs and the back button, filter, copy to a local location and watch
//! the job reach 100 %, import a model from a fake Hub, add and test a webhook,
//! change and test settings, delete file, folder and bucket with confirmations, and
//! no browser console error during the whole session. Every step asserts on what
//! the page shows.
//!
//! Without `chromium`/`chromedriver` the tests skip with a printed reason; with
//! `S4_REQUIRE_BROWSER=1` (CI) they fail instead.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Kind, Running};
use fantoccini::{Client, ClientBuilder, Locator};
use s4_core::auth::AuthConfig;
use s4_core::fakes::{FakeHub, FakeServer, ForwardProxy, Reply, GOOD_TOKEN};
use s4_core::S4;
use s4_http::HttpConfig;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Longest wait for anything the page should show.
const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);
const USER: &str = "admin";
const PASSWORD: &str = "console-e2e-password";
const FIVE_MIB: usize = 5 * 1024 * 1024;

/// One browser at a time: the machine is small and Chromium is heavy.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn chromium() -> PathBuf {
    std::env::var_os("S4_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

fn chromedriver() -> PathBuf {
    std::env::var_os("S4_CHROMEDRIVER")
        .map_or_else(|| PathBuf::from("/usr/bin/chromedriver"), PathBuf::from)
}

/// `true` when the browser is installed; otherwise prints why the test skips, or
/// panics when `S4_REQUIRE_BROWSER=1`.
fn browser_available() -> bool {
    let missing: Vec<String> = [chromium(), chromedriver()]
        .into_iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let reason = format!(
        "{} not found (apt-get install chromium chromium-driver, or set S4_CHROMIUM / S4_CHROMEDRIVER)",
        missing.join(" and ")
    );
    assert!(
        std::env::var("S4_REQUIRE_BROWSER").as_deref() != Ok("1"),
        "S4_REQUIRE_BROWSER=1 but {reason}"
    );
    eprintln!("SKIPPED: console end-to-end test: {reason}");
    false
}

/// A chromedriver process with its own Chromium profile; killed on drop.
struct Driver {
    child: tokio::process::Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Polls `check` until it yields a value or [`WAIT`] passes.
async fn poll<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

async fn start_driver() -> (Driver, Client) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = tokio::process::Command::new(chromedriver())
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    poll("chromedriver to listen", || {
        let http = http.clone();
        let status = format!("{url}/status");
        async move {
            let response = http.get(status).send().await.ok()?;
            let body: Value = response.json().await.ok()?;
            (body["value"]["ready"] == true).then_some(())
        }
    })
    .await;
    let profile = tempfile::tempdir().expect("profile dir");
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium().display().to_string(),
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        },
        "goog:loggingPrefs": { "browser": "ALL" },
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&url)
        .await
        .expect("WebDriver session");
    (
        Driver {
            child,
            url,
            _profile: profile,
        },
        client,
    )
}

/// The daemon under test with its fakes.
struct Server {
    origin: String,
    prefix: String,
    kind: Kind,
    local_root: PathBuf,
    s4: S4,
    _hub: FakeHub,
    _running: Running,
    _dirs: Vec<tempfile::TempDir>,
}

impl Server {
    /// The console's address (under the prefix).
    fn console(&self) -> String {
        format!("{}{}/", self.origin, self.prefix)
    }
}

async fn start_server(kind: Kind, auth: bool) -> Option<Server> {
    let hub = FakeHub::start().await;
    let mut config = HttpConfig::default();
    let prefix = if auth { "/s4-console" } else { "" };
    config.nb_prefix = prefix.to_string();
    if auth {
        config.auth = AuthConfig::from_lookup(&|k| match k {
            "UI_USERNAME" => Some(USER.into()),
            "UI_PASSWORD" => Some(PASSWORD.into()),
            "JWT_SECRET" => Some("console-e2e-secret".into()),
            "COOKIE_REQUIRE_HTTPS" => Some("false".into()),
            _ => None,
        });
    }
    // The console runs over a real store: the embedded default (local) or Garage.
    let backend = match kind {
        Kind::Memory => Kind::Local,
        other => other,
    };
    let served = common::s4_with_location(backend, &hub.url(), config).await?;
    Some(Server {
        origin: format!("http://{}", served.running.addr),
        prefix: prefix.to_string(),
        kind,
        local_root: served.local_root,
        s4: served.s4,
        _hub: hub,
        _running: served.running,
        _dirs: served.dirs,
    })
}

/// Browser helpers: every wait polls what the page shows.
struct Page<'a> {
    client: &'a Client,
    screenshots: Option<PathBuf>,
}

impl Page<'_> {
    async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.expect("script")
    }

    /// Waits until an element matching `css` contains `text`; on timeout the
    /// failure shows what those elements and the notifications said.
    async fn wait_text(&self, css: &str, text: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let found = self
                .js(
                    "return [...document.querySelectorAll(arguments[0])].some(e => e.textContent.includes(arguments[1]));",
                    vec![json!(css), json!(text)],
                )
                .await;
            if found == true {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                let seen = self
                    .js(
                        "return { matched: [...document.querySelectorAll(arguments[0])].map(e => e.textContent.slice(0, 300)),
                                  toasts: [...document.querySelectorAll('#toasts .toast')].map(e => e.textContent),
                                  hash: location.hash };",
                        vec![json!(css)],
                    )
                    .await;
                panic!("timed out waiting for {css:?} to show {text:?}; page: {seen:#}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until no element matching `css` contains `text`.
    async fn wait_no_text(&self, css: &str, text: &str) {
        poll(&format!("{css:?} to stop showing {text:?}"), || async {
            let found = self
                .js(
                    "return [...document.querySelectorAll(arguments[0])].some(e => e.textContent.includes(arguments[1]));",
                    vec![json!(css), json!(text)],
                )
                .await;
            (found == false).then_some(())
        })
        .await;
    }

    /// Waits until the console finished rendering the current route.
    async fn wait_ready(&self) {
        poll("the page to render", || async {
            let ready = self
                .js(
                    "const m = document.getElementById('main'); return !!m && m.dataset.ready === location.hash;",
                    vec![],
                )
                .await;
            (ready == true).then_some(())
        })
        .await;
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("element {css}: {e}"))
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.expect("click");
    }

    /// Clicks the button or link whose text is exactly `text`, inside `scope`.
    async fn click_text(&self, scope: &str, text: &str) {
        let xpath = format!(
            "{scope}//*[(self::button or self::a) and normalize-space()='{text}' and not(ancestor-or-self::*[@hidden])]"
        );
        let element = self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("{xpath}: {e}"));
        element.click().await.expect("click");
    }

    async fn fill(&self, css: &str, value: &str) {
        let element = self.find(css).await;
        element.clear().await.expect("clear");
        element.send_keys(value).await.expect("type");
    }

    async fn select(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("goto");
        self.wait_ready().await;
    }

    /// Sets the location hash (client-side navigation) and waits for the page.
    async fn route(&self, hash: &str) {
        self.js("location.hash = arguments[0];", vec![json!(hash)])
            .await;
        self.wait_ready().await;
    }

    async fn toast(&self, text: &str) {
        self.wait_text("#toasts .toast", text).await;
        // Clear, so a later wait for the same text sees a new toast.
        self.js(
            "document.querySelectorAll('#toasts .toast').forEach(t => t.remove());",
            vec![],
        )
        .await;
    }

    async fn shot(&self, name: &str) {
        if let Some(dir) = &self.screenshots {
            self.js(
                "document.querySelectorAll('#toasts .toast').forEach(t => t.remove());",
                vec![],
            )
            .await;
            let png = self.client.screenshot().await.expect("screenshot");
            std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
        }
    }

    /// SHA-256 (hex) of what the page downloads from the link `css`.
    async fn downloaded_sha256(&self, css: &str) -> String {
        let href = self
            .find(css)
            .await
            .prop("href")
            .await
            .expect("href")
            .expect("a link");
        let value = self
            .client
            .execute_async(
                "const [url, done] = arguments;
                 fetch(url, { credentials: 'same-origin' })
                   .then(r => { if (!r.ok) throw new Error('HTTP ' + r.status); return r.arrayBuffer(); })
                   .then(b => crypto.subtle.digest('SHA-256', b))
                   .then(d => done([...new Uint8Array(d)].map(x => x.toString(16).padStart(2, '0')).join('')))
                   .catch(e => done('error: ' + e.message));",
                vec![json!(href)],
            )
            .await
            .expect("download script");
        value.as_str().expect("digest").to_string()
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The bytes of the 5 MiB dropped binary; the page builds the same.
fn dropped_binary() -> Vec<u8> {
    (0..FIVE_MIB).map(|i| ((i * 7 + 3) % 251) as u8).collect()
}

/// A fake S3 endpoint that answers ListBuckets (for the settings connection test
/// on the local backend).
async fn fake_s3() -> FakeServer {
    FakeServer::start(|_| {
        Reply::new(
            200,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListAllMyBucketsResult><Owner><ID>o</ID><DisplayName>o</DisplayName></Owner><Buckets></Buckets></ListAllMyBucketsResult>",
        )
        .header("content-type", "application/xml")
    })
    .await
}

async fn console_session(kind: Kind, auth: bool) {
    if !browser_available() {
        return;
    }
    let Some(server) = start_server(kind, auth).await else {
        return;
    };
    let _one_browser = BROWSER.lock().await;
    let (driver, client) = start_driver().await;
    // One set of screenshots: the local backend with authentication. They land in
    // target/ so a test run leaves the work tree clean; S4_UPDATE_SCREENSHOTS=1
    // refreshes the committed set in docs/screenshots (the README shows it).
    let screenshots = (kind == Kind::Local && auth).then(|| {
        let dir = if std::env::var_os("S4_UPDATE_SCREENSHOTS").is_some_and(|v| v == "1") {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots")
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots")
        };
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        dir
    });
    let page = Page {
        client: &client,
        screenshots,
    };
    let files = tempfile::tempdir().expect("upload dir");
    session(&page, &server, files.path()).await;
    let errors = browser_errors(&driver, &client).await;
    client.close().await.expect("close browser");
    assert!(errors.is_empty(), "browser console errors: {errors:#?}");
}

/// The SEVERE entries of the browser's console log.
async fn browser_errors(driver: &Driver, client: &Client) -> Vec<Value> {
    let id = client
        .session_id()
        .await
        .expect("session id")
        .expect("a session");
    let response: Value = reqwest::Client::new()
        .post(format!("{}/session/{id}/se/log", driver.url))
        .json(&json!({ "type": "browser" }))
        .send()
        .await
        .expect("log request")
        .json()
        .await
        .expect("log JSON");
    let entries = response["value"].as_array().cloned().unwrap_or_default();
    entries
        .into_iter()
        .filter(|e| e["level"] == "SEVERE")
        .collect()
}

async fn session(page: &Page<'_>, server: &Server, files: &Path) {
    let bucket = s4_core::testing::unique_bucket("console").to_string();
    let auth = !server.prefix.is_empty();

    // ---- log in
    page.goto(&server.console()).await;
    if auth {
        page.wait_text("h1", "Log in to S4").await;
        page.shot("login").await;
        page.fill("input[name=username]", USER).await;
        page.fill("input[name=password]", PASSWORD).await;
        page.click("form button[type=submit]").await;
        page.toast(&format!("Logged in as {USER}")).await;
        page.wait_text("#user", USER).await;
    }
    page.wait_text("h1", "Storage").await;
    page.wait_text("#locals", "available").await;

    // ---- create a bucket
    page.fill("input[name=bucketName]", &bucket).await;
    page.click_text("", "Create bucket").await;
    page.toast("Bucket created successfully").await;
    page.wait_ready().await;
    page.wait_text("h1", &format!("Bucket {bucket}")).await;
    page.wait_text("#empty", "This folder is empty").await;

    // ---- upload through the file picker: a small text file and a 5 MiB binary
    let text = "hello from the console\nline two\n";
    let binary: Vec<u8> = (0..FIVE_MIB).map(|i| (i % 253) as u8).collect();
    let text_path = files.join("notes.txt");
    let bin_path = files.join("blob.bin");
    std::fs::write(&text_path, text).expect("write");
    std::fs::write(&bin_path, &binary).expect("write");
    page.find("#file-input")
        .await
        .send_keys(&format!("{}\n{}", text_path.display(), bin_path.display()))
        .await
        .expect("pick files");
    page.wait_text("#uploads", "notes.txt").await;
    page.toast("Uploaded blob.bin").await;
    page.wait_text(
        "tr[data-name='notes.txt'] td.size",
        &format!("{} Bytes", text.len()),
    )
    .await;
    page.wait_text("tr[data-name='blob.bin'] td.size", "5.00 MB")
        .await;

    // ---- and by drag-and-drop (a DataTransfer built in the page)
    page.js(
        "const dt = new DataTransfer();
         dt.items.add(new File(['dropped text\\n'], 'dropped.txt', { type: 'text/plain' }));
         const n = 5 * 1024 * 1024, bytes = new Uint8Array(n);
         for (let i = 0; i < n; i++) bytes[i] = (i * 7 + 3) % 251;
         dt.items.add(new File([bytes], 'dropped.bin'));
         document.getElementById('dropzone').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));",
        vec![],
    )
    .await;
    page.wait_text("tr[data-name='dropped.txt'] td.size", "13 Bytes")
        .await;
    page.wait_text("tr[data-name='dropped.bin'] td.size", "5.00 MB")
        .await;
    page.wait_text(
        "tr[data-name='notes.txt'] td.size",
        &format!("{} Bytes", text.len()),
    )
    .await;
    page.wait_text("#uploads", "done").await;

    // ---- a whole folder through the folder picker
    let batch = files.join("batch");
    std::fs::create_dir_all(batch.join("sub")).expect("mkdir");
    std::fs::write(batch.join("a.txt"), "a").expect("write");
    std::fs::write(batch.join("sub/b.txt"), "bb").expect("write");
    page.find("#folder-input")
        .await
        .send_keys(&batch.display().to_string())
        .await
        .expect("pick folder");
    page.wait_text("#uploads", "batch/sub/b.txt").await;
    page.wait_text("tr[data-name='batch'] a.folder", "batch")
        .await;
    page.shot("browser").await;

    // ---- download both (from the listing) and compare bytes
    assert_eq!(
        page.downloaded_sha256("a[data-download='blob.bin']").await,
        sha256_hex(&binary)
    );
    assert_eq!(
        page.downloaded_sha256("a[data-download='dropped.bin']")
            .await,
        sha256_hex(&dropped_binary())
    );

    // ---- keyboard: arrows move between rows, "/" jumps to the filter
    page.find("tr[data-name='blob.bin'] a.name-link")
        .await
        .send_keys(&fantoccini::key::Key::Down.to_string())
        .await
        .expect("arrow down");
    let focused = page
        .js("return document.activeElement.textContent;", vec![])
        .await;
    assert_eq!(focused, json!("dropped.bin"));
    page.client
        .active_element()
        .await
        .expect("focused element")
        .send_keys("/")
        .await
        .expect("slash");
    let focused = page.js("return document.activeElement.id;", vec![]).await;
    assert_eq!(focused, json!("filter"));

    // ---- preview the text, open details, download from the view page
    page.click("tr[data-name='notes.txt'] a.name-link").await;
    page.wait_ready().await;
    page.wait_text("#preview-text", "hello from the console")
        .await;
    page.wait_text("#details", &format!("({} bytes)", text.len()))
        .await;
    page.wait_text("#details", "ETag").await;
    page.wait_text("#details", "Last modified").await;
    if server.kind == Kind::Local {
        // Tags (the local backend keeps them; Garage does not implement them).
        page.click("#show-tags").await;
        page.click_text("//div[@id='tags']", "Add tag").await;
        page.fill(
            "#tags tbody tr:last-child input[aria-label='Tag key']",
            "project",
        )
        .await;
        page.fill(
            "#tags tbody tr:last-child input[aria-label='Tag value']",
            "console",
        )
        .await;
        page.click_text("//div[@id='tags']", "Save tags").await;
        page.toast("Tags updated successfully").await;
        let key = s4_core::ObjectKey::try_from("notes.txt").expect("key");
        let b = s4_core::BucketName::try_from(bucket.as_str()).expect("bucket");
        let tags = server.s4.get_object_tags(&b, &key).await.expect("tags");
        assert_eq!(tags, vec![("project".to_string(), "console".to_string())]);
    }
    assert_eq!(
        page.downloaded_sha256("#download").await,
        sha256_hex(text.as_bytes())
    );
    page.client.back().await.expect("back");
    page.wait_ready().await;
    page.wait_text("#listing", "blob.bin").await;

    // ---- a folder: create, go in, out with the breadcrumbs, and the back button
    page.click_text("//section[@id='browser']", "New folder")
        .await;
    page.fill("[data-prompt-input]", "docs").await;
    page.click("[data-confirm]").await;
    page.toast("Folder \"docs\" created").await;
    page.wait_text("tr[data-name='docs']", "docs").await;
    page.click("tr[data-name='docs'] a.name-link").await;
    page.wait_ready().await;
    page.wait_text("#crumbs [aria-current=page]", "docs").await;
    page.wait_text("#empty", "This folder is empty").await;
    page.click_text("//nav[@id='crumbs']", &bucket).await;
    page.wait_ready().await;
    page.wait_text("#listing", "notes.txt").await;
    page.client.back().await.expect("back");
    page.wait_ready().await;
    page.wait_text("#crumbs [aria-current=page]", "docs").await;
    page.client.back().await.expect("back");
    page.wait_ready().await;
    page.wait_text("#listing", "dropped.bin").await;

    // ---- filter by name, both modes
    page.fill("#filter", "blo").await;
    page.select("#filter-mode", "startsWith").await;
    page.click_text("//form[@role='search']", "Filter").await;
    page.wait_ready().await;
    page.wait_text("#filter-info", "Filter \"blo\" (startsWith")
        .await;
    page.wait_text("#listing", "blob.bin").await;
    page.wait_no_text("#listing", "notes.txt").await;
    page.fill("#filter", "ropp").await;
    page.select("#filter-mode", "contains").await;
    page.click_text("//form[@role='search']", "Filter").await;
    page.wait_ready().await;
    page.wait_text("#filter-info", "Filter \"ropp\" (contains")
        .await;
    page.wait_text("#listing mark", "ropp").await;
    page.wait_no_text("#listing", "blob.bin").await;
    page.click_text("//form[@role='search']", "Clear").await;
    page.wait_ready().await;
    page.wait_text("#listing", "notes.txt").await;

    // ---- copy the binary to the local location and watch the job reach 100 %
    page.click("tr[data-name='blob.bin'] input[type=checkbox]")
        .await;
    page.wait_text("#selection", "1 selected").await;
    page.click_text("//div[@id='selection']", "Copy/Move…")
        .await;
    page.select("#dest-location", "local:local-0").await;
    page.fill("#dest-path", "backup").await;
    page.select("#conflict", "overwrite").await;
    page.shot("copy-dialog").await;
    page.click("#start-transfer").await;
    page.wait_ready().await;
    page.wait_text("#job-status", "completed").await;
    page.wait_text("#job-percent", "100 %").await;
    page.wait_text("#job-counts", "1 of 1 files done").await;
    page.shot("transfer").await;
    let copied = std::fs::read(server.local_root.join("backup/blob.bin")).expect("copied file");
    assert_eq!(sha256_hex(&copied), sha256_hex(&binary));
    page.route("#/browse/local/local-0/backup").await;
    page.wait_text("tr[data-name='blob.bin'] td.size", "5.00 MB")
        .await;

    // ---- import a model from the fake Hub
    page.route("#/import").await;
    page.fill("#hf-model", "org/model").await;
    page.select("#hf-destination", &format!("s3:{bucket}"))
        .await;
    page.fill("#hf-prefix", "models").await;
    page.shot("import").await;
    page.click_text("//form[@id='import-form']", "Start import")
        .await;
    page.toast("Model import started").await;
    page.wait_ready().await;
    page.wait_text("h1", "Import job").await;
    page.wait_text("#job-status", "completed").await;
    page.wait_text("#job-percent", "100 %").await;
    page.wait_text("#job-counts", "5 of 5 files done").await;
    page.route(&format!("#/browse/s3/{bucket}/models/org/model"))
        .await;
    page.wait_text("tr[data-name='config.json']", "config.json")
        .await;
    page.wait_text("tr[data-name='tokenizer']", "tokenizer")
        .await;
    // JSON is pretty-printed and highlighted.
    page.click("tr[data-name='config.json'] a.name-link").await;
    page.wait_ready().await;
    page.wait_text("#preview-text", "{\n  \"model_type\": \"fake\"\n}")
        .await;
    page.wait_text("#preview-text .tok-p", "\"model_type\"")
        .await;
    page.wait_text("#preview-text .tok-s", "\"fake\"").await;
    page.shot("preview").await;

    // ---- a webhook: add, test, remove
    let receiver = FakeServer::start(|_| Reply::new(200, "ok")).await;
    let hook = format!("{}/hook", receiver.url());
    page.route(&format!("#/notifications/{bucket}")).await;
    page.fill("#hook-endpoint", &hook).await;
    page.click_text("//form[@id='hook-form']", "Add webhook")
        .await;
    page.toast("Notification configuration updated successfully")
        .await;
    page.wait_ready().await;
    page.wait_text("#hooks", &hook).await;
    page.click_text("//table[@id='hooks']", "Test").await;
    page.toast("Endpoint responded with status 200").await;
    assert!(receiver
        .requests()
        .iter()
        .any(|r| r.path() == "/hook" && r.method == "POST"));
    page.shot("notifications").await;
    page.click_text("//table[@id='hooks']", "Remove").await;
    page.click("[data-confirm]").await;
    page.toast("Notification removed successfully").await;
    page.wait_ready().await;
    page.wait_text("main", "No webhooks for this bucket").await;

    // ---- settings: change and test
    page.route("#/settings").await;
    page.wait_text("#settings-s3", "Secret access key").await;
    page.shot("settings").await;
    page.select("#page-size", "25").await;
    page.click("#page-size-save").await;
    page.toast("Settings updated successfully").await;
    page.fill("#max-concurrent", "3").await;
    page.click("#concurrency-save").await;
    page.toast("Settings updated successfully").await;
    page.fill("#hf-token-setting", GOOD_TOKEN).await;
    page.click("#hf-test").await;
    page.toast("Connection successful (token").await;
    page.click("#hf-save").await;
    page.toast("Settings updated successfully").await;
    let proxy = ForwardProxy::start().await;
    page.fill("#proxy-http", &proxy.url()).await;
    page.fill(
        "#proxy-test-url",
        &format!("{}{}/api", server.origin, server.prefix),
    )
    .await;
    page.click("#proxy-test").await;
    page.toast("Connection successful").await;
    assert!(
        !proxy.requests().is_empty(),
        "the proxy test used the proxy"
    );
    let fake = fake_s3().await;
    let s3 = (server.kind == Kind::S3)
        .then(s4_core::testing::s3_test_config)
        .flatten();
    let (endpoint, key, secret, region) = match s3 {
        Some(c) => (c.endpoint, c.access_key_id, c.secret_access_key, c.region),
        None => (fake.url(), "ak".into(), "sk".into(), "us-east-1".into()),
    };
    page.fill("#s3-endpoint", &endpoint).await;
    page.fill("#s3-access-key", &key).await;
    page.fill("#s3-secret", &secret).await;
    page.fill("#s3-region", &region).await;
    page.click("#s3-test").await;
    page.toast("Connection successful").await;
    // Reloaded, the settings show the new values and the secrets redacted.
    page.client.refresh().await.expect("reload");
    page.wait_ready().await;
    poll("the saved settings", || async {
        let v = page
            .js(
                "return [document.getElementById('page-size').value, document.getElementById('max-concurrent').value, document.getElementById('hf-token-setting').value];",
                vec![],
            )
            .await;
        (v == json!(["25", "3", "***REDACTED***"])).then_some(())
    })
    .await;
    page.wait_text("#settings-hf", "shown as ***REDACTED***")
        .await;

    // ---- narrow window
    page.route(&format!("#/browse/s3/{bucket}")).await;
    page.client
        .set_window_size(420, 900)
        .await
        .expect("narrow window");
    page.wait_text("#listing", "notes.txt").await;
    page.shot("browser-narrow").await;
    page.client
        .set_window_size(1280, 900)
        .await
        .expect("wide window");

    // ---- delete the file, the folder, then everything and the bucket
    page.click("tr[data-name='notes.txt'] button.danger").await;
    page.wait_text("dialog", "Delete \"notes.txt\"?").await;
    page.click("[data-confirm]").await;
    page.toast("Deleted notes.txt").await;
    page.wait_ready().await;
    page.wait_no_text("#listing", "notes.txt").await;
    page.click("tr[data-name='docs'] button.danger").await;
    page.wait_text("dialog", "Delete the folder \"docs\"").await;
    page.click("[data-confirm]").await;
    page.toast("Deleted docs").await;
    page.wait_ready().await;
    page.wait_no_text("#listing", "docs").await;
    page.click("#listing thead input[type=checkbox]").await;
    page.click_text("//div[@id='selection']", "Delete selected")
        .await;
    page.click("[data-confirm]").await;
    page.toast("Deleted 5 items").await;
    page.wait_ready().await;
    page.wait_text("#empty", "This folder is empty").await;
    page.route("#/").await;
    page.wait_text("#buckets", &bucket).await;
    page.shot("storage").await;
    page.click(&format!("tr[data-bucket='{bucket}'] button.danger"))
        .await;
    page.wait_text("dialog", "must be empty").await;
    let confirm = page.find("[data-confirm]").await;
    assert!(
        !confirm.is_enabled().await.expect("enabled"),
        "confirm before typing"
    );
    page.fill("[data-confirm-input]", &bucket).await;
    page.click("[data-confirm]").await;
    page.toast("Bucket deleted successfully").await;
    page.wait_ready().await;
    page.wait_no_text("main", &bucket).await;
    let listing = server.s4.list_buckets().await.expect("buckets");
    assert!(
        !listing.buckets.iter().any(|x| x.name == bucket),
        "bucket still exists"
    );

    // ---- log out
    if auth {
        page.click("#logout").await;
        page.toast("Logged out successfully").await;
        page.wait_text("h1", "Log in to S4").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_local_auth_off() {
    console_session(Kind::Local, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_local_auth_on() {
    console_session(Kind::Local, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(s4_test_s3), ignore = "needs S4_TEST_S3_ENDPOINT")]
async fn console_garage_auth_off() {
    console_session(Kind::S3, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(s4_test_s3), ignore = "needs S4_TEST_S3_ENDPOINT")]
async fn console_garage_auth_on() {
    console_session(Kind::S3, true).await;
}
