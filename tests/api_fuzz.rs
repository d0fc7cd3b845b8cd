//! An independent API fuzzer (schemathesis, from PyPI) against the served
//! `/openapi.json`, signed in: no 5xx, every error in the JSON shape, every
//! answer (status, content type, headers, body) as the document says.
//! Skipped with a note when schemathesis is not installed, unless
//! `REQUIRE_API_FUZZ=1` (CI sets it, and installs it).

use std::time::Duration;

use crate::common::TestApp;

/// The fuzzer's budget: examples per operation and a time cap.
const MAX_EXAMPLES: &str = "30";
const MAX_TIME_SECS: &str = "60";
const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis.toml");

fn schemathesis() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("schemathesis"))
        .find(|candidate| candidate.is_file())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_fuzzer_finds_nothing_undocumented() {
    let Some(fuzzer) = schemathesis() else {
        assert!(
            std::env::var_os("REQUIRE_API_FUZZ").is_none(),
            "REQUIRE_API_FUZZ is set but schemathesis is not on PATH (pip install schemathesis)"
        );
        eprintln!(
            "schemathesis is not installed: the API fuzz is skipped (pip install schemathesis)"
        );
        return;
    };
    let app = TestApp::builder()
        .var("GITHUB_WEBHOOK_SECRET", "api-fuzz-webhook-secret")
        .start()
        .await;
    let bob = app.sign_in("bob").await;
    let output = tokio::time::timeout(
        Duration::from_secs(300),
        tokio::process::Command::new(fuzzer)
            .args(["--config-file", CONFIG, "run", &app.at("/openapi.json")])
            .args(["--url", &app.url])
            .args(["--max-examples", MAX_EXAMPLES])
            .args(["--max-time", MAX_TIME_SECS])
            .args(["--workers", "2"])
            .args(["--seed", "20261201"])
            .args(["--header", &format!("Cookie: {}", bob.session_cookie)])
            // Signing out would end the fuzzer's own session midway.
            .args(["--exclude-path", "/logout"])
            .env("NO_COLOR", "1")
            .output(),
    )
    .await
    .expect("schemathesis finished within its budget")
    .expect("schemathesis ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
