//! A real OIDC provider process for login tests: `tests/oidc/provider.mjs` (npm `oauth2-mock-server` plus
//! PKCE, single-use codes and a control API to script each login and forge broken ID tokens). See
//! `tests/oidc/README.md`. `cargo xtask test` installs it (`npm ci`); the process ends with the handle.

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running provider; dropping it stops the process.
#[derive(Debug)]
pub struct Provider {
    /// The issuer URL (no trailing slash).
    pub issuer: String,
    http: reqwest::Client,
    _child: Child,
}

fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oidc")
}

impl Provider {
    /// Starts a provider on a free loopback port.
    pub async fn start() -> Self {
        let dir = provider_dir();
        assert!(
            dir.join("node_modules/oauth2-mock-server").is_dir(),
            "the test OIDC provider is not installed: run `cargo xtask test` (or `npm ci` in {})",
            dir.display()
        );
        let mut child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            .env("OIDC_PORT", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("TEST_LOG").is_some() { Stdio::inherit() } else { Stdio::null() })
            .kill_on_drop(true)
            .spawn()
            .expect("start node tests/oidc/provider.mjs (is Node.js installed?)");
        let stdout = child.stdout.take().expect("provider stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
            .await
            .expect("the OIDC provider did not start within 30 s")
            .expect("read the provider's stdout")
            .expect("the OIDC provider exited before listening");
        let issuer = first.strip_prefix("listening ").expect("`listening <issuer>` line").trim().to_owned();
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { issuer, http, _child: child }
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let response = self.http.post(format!("{}/__control/{path}", self.issuer)).json(&body).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "control {path}: {status} {body}");
        body
    }

    /// Scripts the next login (`sub`, `email`, `email_verified`, `tamper`, `claims`; see the README).
    pub async fn next(&self, login: Value) {
        self.control("next", login).await;
    }

    /// Adds a new signing key (and with `drop_old`, removes the others).
    pub async fn rotate(&self, drop_old: bool) {
        self.control("rotate", json!({ "drop_old": drop_old })).await;
    }

    /// One key in the JWKS, without a `kid`, and tokens without one.
    pub async fn single_key_no_kid(&self) {
        self.control("single-key-no-kid", json!({})).await;
    }

    /// Back to the start-up key, no pending login, empty request log.
    pub async fn reset(&self) {
        self.control("reset", json!({})).await;
    }

    /// The `/token` requests seen so far.
    pub async fn token_requests(&self) -> Vec<Value> {
        let response = self.http.get(format!("{}/__control/requests", self.issuer)).send().await.unwrap();
        response.json().await.unwrap()
    }
}
