//! The canary test: known secrets (server secret, OIDC client secret, a password, API tokens, an OIDC code
//! and state, a session cookie) go through the real `migrate-hub-server` binary, `create-admin` and
//! `set-password`; then its debug log, every audit row and every response body are searched for them.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use migrate_hub_tests::oidc::Provider;
use migrate_hub_tests::{PgDatabase, binary};
use reqwest::header::{ORIGIN, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::hub::{Browser, CLIENT_ID};

const SERVER_SECRET: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee01";
const CLIENT_SECRET: &str = "canary-client-secret-5e1f";
const PASSWORD: &str = "canary-password-8c2d-long";
const WRONG_PASSWORD: &str = "canary-wrong-password-41aa";

fn server(db: &PgDatabase, args: &[&str]) -> Command {
    let mut command = Command::new(binary("migrate-hub-server"));
    command
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("MIGRATE_HUB_SERVER_SECRET", SERVER_SECRET)
        .env("RUST_LOG", "debug")
        .env("NO_COLOR", "1");
    command
}

/// Every response seen, to be searched at the end.
#[derive(Default)]
struct Seen {
    bodies: Vec<String>,
}

impl Seen {
    async fn take(&mut self, response: reqwest::Response) -> (StatusCode, String) {
        let status = response.status();
        let headers = format!("{:?}", response.headers().iter().filter(|(k, _)| *k != SET_COOKIE).collect::<Vec<_>>());
        let body = response.text().await.unwrap();
        self.bodies.push(format!("{headers}\n{body}"));
        (status, body)
    }
}

fn stop(child: Child) -> String {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn no_secret_reaches_a_log_an_audit_row_or_a_response() {
    let provider = Provider::start().await;
    let db = PgDatabase::migrated().await;
    let mut logs = String::new();

    // create-admin prints the token as its last line (and only there).
    let out = server(&db, &["create-admin", "--email", "root@example.com"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let admin_token = stdout.lines().last().unwrap().trim().to_owned();
    assert!(auth::tokens::well_formed(&admin_token), "{stdout}");
    logs += &String::from_utf8_lossy(&out.stderr);

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let child = server(&db, &["serve"])
        .env("MIGRATE_HUB_BIND", format!("127.0.0.1:{port}"))
        .env("MIGRATE_HUB_OIDC_ISSUER", &provider.issuer)
        .env("MIGRATE_HUB_OIDC_CLIENT_ID", CLIENT_ID)
        .env("MIGRATE_HUB_OIDC_CLIENT_SECRET", CLIENT_SECRET)
        .env("MIGRATE_HUB_PASSWORD_LOGIN", "true")
        .env("MIGRATE_HUB_INSECURE_COOKIES", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let api = reqwest::Client::new();
    for _ in 0..200 {
        if api.get(format!("{url}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut seen = Seen::default();
    // Secrets learnt on the way: the session cookie, the OIDC code and state.
    let mut extra_needles = Vec::new();

    // The admin's token: used, used wrongly, and refused when it tries to mint another.
    let (status, _) =
        seen.take(api.get(format!("{url}/api/v1/me")).bearer_auth(&admin_token).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let mut near_miss = admin_token.clone();
    near_miss.replace_range(near_miss.len() - 1.., if admin_token.ends_with('0') { "1" } else { "0" });
    let (status, _) =
        seen.take(api.get(format!("{url}/api/v1/me")).bearer_auth(&near_miss).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Tokens are minted from a session only (below), never with a token.
    let refused = api.post(format!("{url}/api/v1/tokens")).bearer_auth(&admin_token).json(&json!({ "name": "ci" }));
    assert_eq!(seen.take(refused.send().await.unwrap()).await.0, StatusCode::FORBIDDEN);
    let (status, _) = seen
        .take(
            api.post(format!("{url}/api/v1/users"))
                .bearer_auth(&admin_token)
                .json(&json!({ "email": "pw@example.com" }))
                .send()
                .await
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // A password, set from standard input and used (right and wrong) at the login form.
    let mut set = server(&db, &["set-password", "--email", "pw@example.com"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    set.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    let out = set.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    logs += &String::from_utf8_lossy(&out.stderr);
    let browser = Browser {
        client: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        hub: url.clone(),
    };
    for (password, expected) in [(WRONG_PASSWORD, StatusCode::UNAUTHORIZED), (PASSWORD, StatusCode::SEE_OTHER)] {
        let response = browser
            .client
            .post(format!("{url}/login/password"))
            .header(ORIGIN, &url)
            .form(&[("email", "pw@example.com"), ("password", password)])
            .send()
            .await
            .unwrap();
        let cookie = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|c| c.to_str().unwrap().to_owned())
            .find(|c| c.starts_with("mh_session="));
        assert_eq!(seen.take(response).await.0, expected);
        if let Some(cookie) = cookie {
            let value = cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_owned();
            extra_needles.push(value);
        }
    }
    // The signed-in user mints a token: it is used, sent inside a malformed body, and revoked by the admin.
    let created = browser.send(Method::POST, "/api/v1/tokens", Some(json!({ "name": "ci" }))).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let ci_token = created["token_value"].as_str().unwrap().to_owned();
    let (status, _) =
        seen.take(api.get(format!("{url}/api/v1/tokens")).bearer_auth(&ci_token).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let bad_json = api
        .post(format!("{url}/api/v1/users"))
        .bearer_auth(&admin_token)
        .header("content-type", "application/json")
        .body(format!("{{\"email\": \"{ci_token}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(seen.take(bad_json).await.0, StatusCode::BAD_REQUEST);
    let revoke =
        api.delete(format!("{url}/api/v1/tokens/{}", created["id"].as_str().unwrap())).bearer_auth(&admin_token);
    assert_eq!(seen.take(revoke.send().await.unwrap()).await.0, StatusCode::OK);
    let response = browser.send(Method::POST, "/logout", None).await;
    assert_eq!(seen.take(response).await.0, StatusCode::SEE_OTHER);

    // An OIDC login: its code and state travel in the callback URL.
    provider.next(json!({ "sub": "canary-sub", "email": "oidc@example.com" })).await;
    let oidc = Browser { client: browser.client.clone(), hub: url.clone() };
    let callback = oidc.authorize(&oidc.start_login().await).await;
    let callback_url = reqwest::Url::parse(&callback).unwrap();
    for (k, v) in callback_url.query_pairs() {
        if k == "code" || k == "state" {
            extra_needles.push(v.into_owned());
        }
    }
    let response = oidc.callback(&callback).await;
    assert_eq!(seen.take(response).await.0, StatusCode::SEE_OTHER);
    let (status, _) = seen.take(oidc.get("/").await).await;
    assert_eq!(status, StatusCode::OK);

    logs += &stop(child);
    let audit: Vec<String> = sqlx::query_scalar("SELECT row_to_json(a)::text FROM audit_events a ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .unwrap();

    // The search is not blind: the log is at debug level and saw these flows, the audit has them.
    assert!(logs.contains("signed in with OIDC") && logs.contains("signed in with a password"), "{logs}");
    assert!(logs.contains("API token refused"));
    for action in ["user.created", "token.created", "token.revoked", "auth.login", "auth.logout", "user.password_set"] {
        assert!(audit.iter().any(|row| row.contains(&format!("\"{action}\""))), "{action} not audited: {audit:?}");
    }
    let mut needles = vec![
        admin_token.clone(),
        admin_token[10..].to_owned(),
        near_miss[10..].to_owned(),
        ci_token[10..].to_owned(),
        SERVER_SECRET.to_owned(),
        CLIENT_SECRET.to_owned(),
        PASSWORD.to_owned(),
        WRONG_PASSWORD.to_owned(),
    ];
    needles.extend(extra_needles);
    assert!(needles.len() >= 11 && needles.iter().all(|n| n.len() >= 16), "{needles:?}");
    let mut hits = Vec::new();
    for needle in &needles {
        for (place, haystack) in std::iter::once(("log", &logs))
            .chain(audit.iter().map(|a| ("audit", a)))
            .chain(seen.bodies.iter().map(|b| ("response", b)))
        {
            if haystack.contains(needle.as_str()) {
                hits.push(format!("{place} contains {}…", &needle[..6]));
            }
        }
    }
    assert!(hits.is_empty(), "{hits:#?}");
}
