//! The page at `/` in a real browser (headless Chromium driven through
//! chromedriver with fantoccini), and the same forms over plain HTTP.
//!
//! The browser test needs Debian's `chromium` and `chromium-driver` packages
//! (`/usr/bin/chromium`, `/usr/bin/chromedriver`; `.ci/run` installs them).
//! Elsewhere point `CHROMIUM` and `CHROMEDRIVER` at your binaries. When they
//! are missing the test fails and says how to install them; set
//! `SKIP_BROWSER_TESTS=1` to skip it on purpose (it then says so).
//!
//! Screenshots of each step go to `target/screenshots/`. The signed-in page is
//! also copied to `docs/screenshot-signed-in.png` (used by the README) when
//! that file is missing or `UPDATE_SCREENSHOTS=1` is set.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use redis::Commands;
use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use serde_json::{json, Value};

use crate::common::app::{location, plain_client, with_token};
use crate::common::TestApp;

const HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Browser harness

struct Tools {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

/// Finds Chromium and ChromeDriver, or fails with how to install them.
fn browser_tools() -> Option<Tools> {
    if std::env::var("SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("SKIP_BROWSER_TESTS=1: the browser test is skipped on purpose");
        return None;
    }
    let pick = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(default))
    };
    let tools = Tools {
        chromium: pick("CHROMIUM", "/usr/bin/chromium"),
        chromedriver: pick("CHROMEDRIVER", "/usr/bin/chromedriver"),
    };
    let missing: Vec<String> = [&tools.chromium, &tools.chromedriver]
        .into_iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "the browser test needs Chromium and ChromeDriver, and {} is missing.\n\
         Install them:  sudo apt-get install -y chromium chromium-driver   (Debian/Ubuntu; .ci/run does this)\n\
         or point CHROMIUM=/path/to/chrome and CHROMEDRIVER=/path/to/chromedriver at your own,\n\
         or set SKIP_BROWSER_TESTS=1 to skip this test on purpose.",
        missing.join(" and ")
    );
    Some(tools)
}

/// A chromedriver process (in its own process group, so that the browsers it
/// starts go with it even when a test panics).
struct Driver {
    child: tokio::process::Child,
    url: String,
}

impl Driver {
    async fn start(tools: &Tools, log: &Path) -> Driver {
        let port = free_port();
        let log = std::fs::File::create(log).expect("chromedriver log file");
        let child = tokio::process::Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", tools.chromedriver.display()));
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = http
                .get(format!("{url}/status"))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success());
            if let Some(response) = ready {
                let body: Value = response.json().await.unwrap_or_default();
                if body["value"]["ready"] == json!(true) {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Driver { child, url }
    }

    /// A new headless Chromium session with a fresh profile.
    async fn session(&self, tools: &Tools, profile: &Path, javascript: bool) -> Client {
        let mut options = json!({
            "binary": tools.chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1000,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        });
        if !javascript {
            options["prefs"] = json!({"profile.managed_default_content_settings.javascript": 2});
        }
        let capabilities = json!({"browserName": "chrome", "goog:chromeOptions": options});
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        // chromedriver is plain HTTP on loopback: no TLS connector needed.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("start a Chromium session through chromedriver")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and the browsers it started.
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn screenshot_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target>/tmp; screenshots live beside it.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    dir
}

async fn shoot(client: &Client, name: &str) -> PathBuf {
    let png = client.screenshot().await.expect("screenshot");
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).expect("write screenshot");
    path
}

async fn find(client: &Client, css: &str) -> fantoccini::elements::Element {
    match client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
    {
        Ok(element) => element,
        Err(e) => panic!("no element {css:?} on {}: {e}", url_of(client).await),
    }
}

async fn url_of(client: &Client) -> String {
    client
        .current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_default()
}

/// Waits until the element's text contains `needle`; returns the text.
async fn wait_text(client: &Client, css: &str, needle: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = match client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{css:?} never contained {needle:?} (last text {text:?}) on {}",
            url_of(client).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until no element matches `css`.
async fn wait_gone(client: &Client, css: &str) {
    let deadline = Instant::now() + WAIT;
    while !client
        .find_all(Locator::Css(css))
        .await
        .expect("find_all")
        .is_empty()
    {
        assert!(Instant::now() < deadline, "{css:?} is still on the page");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The node ids the page lists, in order.
async fn listed(client: &Client) -> Vec<String> {
    let mut ids = Vec::new();
    for li in client
        .find_all(Locator::Css("#exclusions > li"))
        .await
        .expect("list")
    {
        ids.push(li.attr("data-id").await.expect("attr").unwrap_or_default());
    }
    ids
}

/// Waits until CSS animations (the "added" highlight) have finished.
async fn settle(client: &Client) {
    let deadline = Instant::now() + WAIT;
    while js(
        client,
        "return document.getAnimations().every(a => a.playState === 'finished')",
    )
    .await
        != json!(true)
    {
        assert!(Instant::now() < deadline, "animations never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn js(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.expect("execute")
}

fn li(id: &str) -> String {
    format!("#exclusions > li[data-id=\"{id}\"]")
}

/// Signed out → "Sign in with GitHub" → the simulator's chooser → `login` →
/// back on the page, signed in.
async fn sign_in(client: &Client, app: &TestApp, login: &str, shot: Option<&str>) {
    client.goto(&app.url).await.expect("open /");
    find(client, "a[href=\"/login\"]")
        .await
        .click()
        .await
        .unwrap();
    let choice = find(
        client,
        &format!("button[name=\"sim_user\"][value=\"{login}\"]"),
    )
    .await;
    assert!(
        url_of(client).await.starts_with(&app.sim.url()),
        "the sign-in link leads to (simulated) GitHub"
    );
    if let Some(name) = shot {
        shoot(client, name).await;
    }
    choice.click().await.unwrap();
    wait_text(client, "h1#who", login).await;
    assert_eq!(url_of(client).await, app.at("/"), "back on the page");
}

async fn add_with_form(client: &Client, id: &str) {
    let input = find(client, "#node-id").await;
    input.clear().await.unwrap();
    input.send_keys(id).await.unwrap();
    find(client, "#add-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
}

async fn sign_out(client: &Client) {
    find(client, "form.signout button")
        .await
        .click()
        .await
        .unwrap();
    find(client, "a[href=\"/login\"]").await;
}

fn members(app: &TestApp, id: u64) -> Vec<String> {
    let mut ids: Vec<String> = app
        .local_conn()
        .smembers(format!("user:{id}:mnodes"))
        .unwrap();
    ids.sort();
    ids
}

// ---------------------------------------------------------------------------
// The browser test

/// alice (a sponsor) with JavaScript: the list updates in place. bob (not a
/// sponsor) with JavaScript off: the same forms work by plain posts.
#[tokio::test]
async fn the_page_in_a_real_browser() {
    let Some(tools) = browser_tools() else {
        return;
    };
    let app = TestApp::spawn().await;
    let dir = screenshot_dir();
    let driver = Driver::start(&tools, &dir.join("chromedriver.log")).await;
    let profiles = tempfile::tempdir().expect("profile dir");

    let alice = driver
        .session(&tools, &profiles.path().join("alice"), true)
        .await;
    as_alice_with_javascript(&alice, &app).await;
    alice.close().await.expect("close alice's browser");

    let bob = driver
        .session(&tools, &profiles.path().join("bob"), false)
        .await;
    as_bob_without_javascript(&bob, &app).await;
    bob.close().await.expect("close bob's browser");
    drop(driver);
    app.stop().await;
}

async fn as_alice_with_javascript(client: &Client, app: &TestApp) {
    // Signed out: what the service is, and the way in.
    client.goto(&app.url).await.unwrap();
    let intro = wait_text(client, "main", "Sign in with GitHub").await;
    assert!(intro.contains("acme-org"), "{intro}");
    shoot(client, "01-signed-out").await;

    sign_in(client, app, "alice", Some("02-simulator-chooser")).await;
    let badge = find(client, "#sponsor-badge").await;
    assert_eq!(badge.text().await.unwrap(), "Sponsor");
    wait_text(client, ".status", "$10/month").await;
    assert!(client
        .find_all(Locator::Css("#expiry-note"))
        .await
        .unwrap()
        .is_empty());
    let avatar = find(client, "img.avatar").await;
    assert_eq!(
        avatar.attr("src").await.unwrap().as_deref(),
        Some(format!("{}/avatars/1001", app.sim.url()).as_str())
    );
    assert_eq!(
        js(
            client,
            "return document.documentElement.dataset.enhanced || null"
        )
        .await,
        json!("true"),
        "the script ran"
    );
    shoot(client, "03-signed-in-alice").await;

    // Add two with the form; the script updates the list without a reload.
    js(client, "window.__samePage = true; return null").await;
    add_with_form(client, "MDQ6VXNlcjE=").await;
    find(client, &li("MDQ6VXNlcjE=")).await;
    add_with_form(client, "node/2 é").await;
    find(client, &li("node/2 é")).await;
    wait_text(client, "#notice", "Excluded node/2 é.").await;
    assert_eq!(listed(client).await, ["MDQ6VXNlcjE=", "node/2 é"]);
    wait_text(client, "#count", "2").await;
    assert_eq!(
        js(client, "return window.__samePage === true").await,
        json!(true),
        "added in place, no page load"
    );
    assert_eq!(members(app, 1001), ["MDQ6VXNlcjE=", "node/2 é"]);
    settle(client).await;
    let signed_in = shoot(client, "04-signed-in-two-exclusions").await;
    publish_docs_screenshot(&signed_in);

    // An invalid id (258 bytes in 129 characters): the error is shown inline.
    add_with_form(client, &"é".repeat(129)).await;
    let error = wait_text(client, "#error", "not accepted").await;
    assert!(error.contains("1 to 256 bytes"), "{error}");
    assert_eq!(listed(client).await.len(), 2);
    shoot(client, "05-inline-error").await;

    // Reload: the server renders the same list.
    client.refresh().await.unwrap();
    find(client, &li("node/2 é")).await;
    assert_eq!(listed(client).await, ["MDQ6VXNlcjE=", "node/2 é"]);
    assert_eq!(find(client, "#error").await.text().await.unwrap(), "");

    // Remove one, in place; focus stays in the list.
    find(client, &format!("{} button", li("node/2 é")))
        .await
        .click()
        .await
        .unwrap();
    wait_gone(client, &li("node/2 é")).await;
    wait_text(client, "#notice", "Removed node/2 é.").await;
    wait_text(client, "#count", "1").await;
    assert_eq!(
        js(client, "return document.activeElement.closest('li') ? document.activeElement.closest('li').dataset.id : null").await,
        json!("MDQ6VXNlcjE="),
        "focus moved to the remaining item's button"
    );
    shoot(client, "06-removed-one").await;
    client.refresh().await.unwrap();
    find(client, &li("MDQ6VXNlcjE=")).await;
    assert_eq!(listed(client).await, ["MDQ6VXNlcjE="]);
    assert_eq!(members(app, 1001), ["MDQ6VXNlcjE="]);

    api_token_in_the_page(client, app, 1001, true).await;

    // A phone-sized window: nothing scrolls sideways.
    client.set_window_size(390, 844).await.unwrap();
    assert_eq!(
        js(
            client,
            "return document.documentElement.scrollWidth <= window.innerWidth"
        )
        .await,
        json!(true),
        "no horizontal scrolling at 390px"
    );
    shoot(client, "07-phone").await;
    client.set_window_size(1000, 900).await.unwrap();

    sign_out(client).await;
    assert_eq!(url_of(client).await, app.at("/"));
    shoot(client, "08-signed-out-again").await;
}

async fn as_bob_without_javascript(client: &Client, app: &TestApp) {
    sign_in(client, app, "bob", None).await;
    assert_eq!(
        js(
            client,
            "return document.documentElement.dataset.enhanced || null"
        )
        .await,
        Value::Null,
        "JavaScript is off in this browser"
    );
    let note = wait_text(client, "#expiry-note", "24 hours").await;
    assert!(note.contains("Not a sponsor"), "{note}");
    assert_eq!(
        find(client, "#sponsor-link")
            .await
            .attr("href")
            .await
            .unwrap()
            .as_deref(),
        Some("https://github.com/sponsors/acme-org")
    );
    assert!(client
        .find_all(Locator::Css("#sponsor-badge"))
        .await
        .unwrap()
        .is_empty());
    shoot(client, "09-signed-in-bob").await;

    // Plain form posts: each answers 303 back to the page.
    add_with_form(client, "bob-1").await;
    find(client, &li("bob-1")).await;
    add_with_form(client, "bob 2/é").await;
    find(client, &li("bob 2/é")).await;
    assert_eq!(listed(client).await, ["bob 2/é", "bob-1"]);
    assert_eq!(url_of(client).await, app.at("/"));
    let ttl: i64 = app.local_conn().ttl("user:1002:mnodes").unwrap();
    assert!(ttl > 0 && ttl <= 86_400, "non-sponsors' sets expire: {ttl}");

    // A rejected id: back on the page with the error in words.
    add_with_form(client, &"é".repeat(129)).await;
    wait_text(client, "#error", "not accepted").await;
    assert_eq!(url_of(client).await, app.at("/?error=invalid_id"));
    shoot(client, "10-bob-error-without-javascript").await;

    client.goto(&app.url).await.unwrap();
    find(client, &format!("{} button", li("bob 2/é")))
        .await
        .click()
        .await
        .unwrap();
    wait_gone(client, &li("bob 2/é")).await;
    assert_eq!(listed(client).await, ["bob-1"]);
    assert_eq!(members(app, 1002), ["bob-1"]);
    shoot(client, "11-bob-removed-one").await;

    api_token_in_the_page(client, app, 1002, false).await;

    sign_out(client).await;
    shoot(client, "12-bob-signed-out").await;
}

/// Creates an API token with the page's form, sees it once (with a working
/// copy button when the script runs), uses it, revokes it with the page.
async fn api_token_in_the_page(client: &Client, app: &TestApp, user_id: u64, javascript: bool) {
    client.goto(&app.url).await.unwrap();
    find(client, "#token-name")
        .await
        .send_keys("notebook")
        .await
        .unwrap();
    find(client, "#create-token").await.click().await.unwrap();
    let token = find(client, "#new-token")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(token.starts_with("sg_") && token.len() == 43, "{token:?}");
    let copy = find(client, "#copy-token").await;
    assert_eq!(
        copy.is_displayed().await.unwrap(),
        javascript,
        "the copy button needs the script"
    );
    if javascript {
        copy.click().await.unwrap();
        // Copied, or selected for Ctrl+C where the browser refuses the clipboard.
        let said = wait_text(client, "#copy-notice", ".").await;
        assert!(
            said.starts_with("Copied") || said.starts_with("Selected"),
            "{said}"
        );
    }
    shoot(
        client,
        if javascript {
            "13-new-token"
        } else {
            "14-new-token-without-javascript"
        },
    )
    .await;
    let (status, _, me) = with_token(plain_client().get(app.at("/me")), &token).await;
    assert_eq!((status, me["id"].as_u64()), (200, Some(user_id)), "{me}");

    // Shown once: a reload lists the token but no longer shows it.
    client.goto(&app.url).await.unwrap();
    let row = find(client, "#token-list li").await;
    assert!(row.text().await.unwrap().contains("notebook"));
    assert!(client
        .find_all(Locator::Css("#new-token"))
        .await
        .unwrap()
        .is_empty());
    find(client, "#token-list .revoke button")
        .await
        .click()
        .await
        .unwrap();
    wait_gone(client, "#token-list li").await;
    assert_eq!(
        with_token(plain_client().get(app.at("/me")), &token)
            .await
            .0,
        401,
        "revoked"
    );
}

/// Copies the signed-in screenshot to `docs/` when it is missing, or when
/// `UPDATE_SCREENSHOTS=1` asks for a fresh one.
fn publish_docs_screenshot(png: &Path) {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let target = docs.join("screenshot-signed-in.png");
    let update = std::env::var("UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1");
    if update || !target.exists() {
        std::fs::create_dir_all(&docs).expect("create docs/");
        std::fs::copy(png, &target).expect("copy the screenshot to docs/");
    }
}

// ---------------------------------------------------------------------------
// The same forms over plain HTTP (no browser needed)

async fn page(client: &reqwest::Client, url: &str) -> String {
    let response = client
        .get(url)
        .header(ACCEPT, HTML)
        .send()
        .await
        .expect("GET page");
    assert_eq!(response.status(), 200, "GET {url}");
    assert!(response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    response.text().await.unwrap()
}

async fn form_post(client: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (u16, String) {
    let response = client
        .post(url)
        .header(ACCEPT, HTML)
        .form(form)
        .send()
        .await
        .expect("POST form");
    let status = response.status().as_u16();
    let to = if status == 303 {
        location(&response)
    } else {
        response.text().await.unwrap()
    };
    (status, to)
}

#[tokio::test]
async fn forms_work_without_javascript_and_errors_come_back_as_words() {
    let app = TestApp::builder().var("QUOTA_FREE", 2).start().await;

    // Signed out: the sign-in button, and no personal data cached.
    let anonymous = app.client();
    let response = anonymous.get(app.at("/")).send().await.unwrap();
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    let html = response.text().await.unwrap();
    assert!(html.contains("href=\"/login\""));
    assert!(html.contains("Sign in with GitHub"));
    // A form post from a browser whose session ended: the page, not JSON.
    assert_eq!(
        form_post(&anonymous, &app.at("/exclude"), &[("id", "x")]).await,
        (303, "/?error=not_signed_in".to_owned())
    );
    assert!(page(&anonymous, &app.at("/?error=not_signed_in"))
        .await
        .contains("Your session has ended"));

    // The stylesheet and script the page links to are served by the app.
    for (needle, kind) in [
        ("/static/app.css?v=", "text/css"),
        ("/static/app.js?v=", "text/javascript"),
    ] {
        let start = html.find(needle).expect(needle);
        let end = start + html[start..].find('"').unwrap();
        let response = anonymous
            .get(app.at(&html[start..end]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{needle}");
        assert!(response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with(kind));
    }
    assert_eq!(
        anonymous
            .get(app.at("/static/nope.css"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let bob = app.sign_in("bob").await;
    let html = page(&bob.client, &app.at("/")).await;
    assert!(html.contains("bob"));
    assert!(html.contains("24 hours"), "the expiry note in hours");
    assert!(html.contains("href=\"https://github.com/sponsors/acme-org\""));
    assert!(!html.contains("sponsor-badge"));

    // Add: 303 to the page, which lists the id (escaped, with a removal form
    // whose action percent-encodes it as one path segment).
    assert_eq!(
        form_post(&bob.client, &app.at("/exclude"), &[("id", "node/2 é")]).await,
        (303, "/".to_owned())
    );
    let html = page(&bob.client, &app.at("/")).await;
    assert!(html.contains("data-id=\"node/2 é\""), "{html}");
    assert!(html.contains("action=\"/exclusions/node%2F2%20%C3%A9/delete\""));

    // Invalid id: 303 to /?error=invalid_id, and the page says why.
    let (status, to) = form_post(&bob.client, &app.at("/exclude"), &[("id", "a\u{1}b")]).await;
    assert_eq!((status, to.as_str()), (303, "/?error=invalid_id"));
    let html = page(&bob.client, &app.at(&to)).await;
    assert!(html.contains("role=\"alert\" id=\"error\">That node id was not accepted"));

    // Quota (QUOTA_FREE=2): the page names the limit.
    assert_eq!(
        form_post(&bob.client, &app.at("/exclude"), &[("id", "<b>two</b>")]).await,
        (303, "/".to_owned())
    );
    let (status, to) = form_post(&bob.client, &app.at("/exclude"), &[("id", "three")]).await;
    assert_eq!((status, to.as_str()), (303, "/?error=quota_exceeded"));
    assert!(page(&bob.client, &app.at(&to))
        .await
        .contains("it holds at most 2 node ids"));

    // Markup in an id is text, never markup.
    let html = page(&bob.client, &app.at("/")).await;
    assert!(!html.contains("<b>two</b>"));
    assert!(html.contains("&#60;b&#62;two&#60;/b&#62;") || html.contains("&lt;b&gt;two"));

    // Unknown codes are harmless.
    assert!(page(&bob.client, &app.at("/?error=%3Cscript%3E"))
        .await
        .contains("Something went wrong. Please try again."));

    // Remove with the form: 303, and it is gone, from the page and from Redis.
    assert_eq!(
        form_post(
            &bob.client,
            &app.at("/exclusions/node%2F2%20%C3%A9/delete"),
            &[]
        )
        .await,
        (303, "/".to_owned())
    );
    let html = page(&bob.client, &app.at("/")).await;
    assert!(!html.contains("node/2 é"));
    assert_eq!(members(&app, bob.id), ["<b>two</b>"]);
    assert_eq!(
        form_post(&bob.client, &app.at("/exclusions/%01/delete"), &[]).await,
        (303, "/?error=invalid_id".to_owned())
    );

    // JSON clients still get JSON errors from the same endpoints.
    let (status, body) = bob.exclude_form(&app, "").await;
    assert_eq!(status, 422);
    assert_eq!(body["error"], "invalid_id");
    let response = anonymous
        .post(app.at("/exclusions/x/delete"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // Sign out with the form: back to the signed-out page.
    assert_eq!(
        form_post(&bob.client, &app.at("/logout"), &[]).await,
        (303, "/".to_owned())
    );
    assert!(page(&bob.client, &app.at("/"))
        .await
        .contains("Sign in with GitHub"));

    // A sponsor sees the badge and tier instead of the expiry note.
    let alice = app.sign_in("alice").await;
    let html = page(&alice.client, &app.at("/")).await;
    assert!(html.contains("id=\"sponsor-badge\""));
    assert!(html.contains("$10/month"));
    assert!(!html.contains("id=\"expiry-note\""));
    app.stop().await;
}

/// Failed sign-ins are HTML pages for browsers, with the app's look.
#[tokio::test]
async fn a_denied_sign_in_is_a_page_not_json() {
    let app = TestApp::spawn().await;
    let client = app.client();
    let authorize = app.begin_login(&client).await;
    let callback = app.deny_at_github(&client, &authorize).await;
    let response = client
        .get(callback)
        .header(ACCEPT, HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let html = response.text().await.unwrap();
    assert!(html.contains("<h1>403 Forbidden</h1>"), "{html}");
    assert!(html.contains("/static/app.css?v="));
    assert!(html.contains("href=\"/\""));
    app.stop().await;
}
