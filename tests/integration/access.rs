//! Who may reach what: every declared route against every role (tokens and sessions), the CSRF and
//! origin checks on every state-changing route, token and session lifecycles, password login, security
//! headers, and 5xx bodies.

use std::time::Duration;

use domain::enums::{Role, TokenScope};
use http::guard::Policy;
use http::routes::RouteSpec;
use reqwest::header::{ORIGIN, REFERER, SET_COOKIE};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::hub::{Browser, Hub, HubOptions};

use crate::hub::TEST_PASSWORD as PASSWORD;

/// A concrete path for a route pattern (`{id}` becomes a random uuid).
fn concrete(path: &str) -> String {
    path.replace("{id}", &uuid::Uuid::now_v7().to_string())
}

fn method(spec: &RouteSpec) -> Method {
    Method::from_bytes(spec.method.as_str().as_bytes()).unwrap()
}

async fn password_login(browser: &Browser, email: &str, password: &str) -> reqwest::Response {
    browser
        .client
        .post(format!("{}/login/password", browser.hub))
        .header(ORIGIN, &browser.hub)
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap()
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"]["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_route_declares_a_policy_and_anonymous_callers_reach_only_public_ones() {
    let hub = Hub::start(HubOptions { password_login: true, ..HubOptions::default() }).await;
    let table = http::routes::table();
    assert!(table.len() >= 15, "{table:?}");
    let mut seen = std::collections::HashSet::new();
    for spec in &table {
        assert!(seen.insert((spec.method.clone(), spec.path)), "declared twice: {spec:?}");
        let response = hub
            .browser()
            .client
            .request(method(spec), format!("{}{}", hub.url, concrete(spec.path)))
            .header(ORIGIN, &hub.url)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        match spec.policy {
            Policy::Public => assert_ne!(status, StatusCode::UNAUTHORIZED, "{spec:?}"),
            _ => assert_eq!(status, StatusCode::UNAUTHORIZED, "{spec:?}"),
        }
    }
}

/// Routes no API token may use, whatever its owner's role: tokens are minted from a signed-in session only, so
/// that no token outlives the one that made it.
const SESSION_ONLY: &[(&str, &str)] = &[("POST", "/api/v1/tokens")];

fn session_only(spec: &RouteSpec) -> bool {
    SESSION_ONLY.iter().any(|(method, path)| spec.method.as_str() == *method && spec.path == *path)
}

#[tokio::test]
async fn the_role_by_route_matrix_has_no_unexpected_success() {
    let hub = Hub::start(HubOptions { password_login: true, ..HubOptions::default() }).await;
    let mut callers = Vec::new();
    for role in [Role::User, Role::Manager, Role::Admin] {
        let user = hub.user(&format!("{role}@example.com"), role).await;
        callers.push((Some(role), Some(hub.token(&user, TokenScope::Write).await)));
    }
    callers.push((None, None));
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let table = http::routes::table();
    for route in SESSION_ONLY {
        assert!(table.iter().any(|spec| (spec.method.as_str(), spec.path) == *route), "not declared: {route:?}");
    }
    let (mut unexpected_success, mut wrongly_denied, mut cells) = (Vec::new(), Vec::new(), 0);
    for spec in table {
        // A valid body where the credential alone must refuse, so that a refusal is not the body's.
        let body = if session_only(&spec) { json!({ "name": "matrix" }) } else { json!({}) };
        for (role, token) in &callers {
            let mut request = client
                .request(method(&spec), format!("{}{}", hub.url, concrete(spec.path)))
                .header(ORIGIN, &hub.url)
                .json(&body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let status = request.send().await.unwrap().status();
            cells += 1;
            let allowed = match (spec.policy.least_role(), role) {
                (None, _) => true,
                (Some(_), None) => false,
                // Every caller here but the anonymous one holds a token.
                (Some(_), Some(_)) if session_only(&spec) => false,
                (Some(least), Some(role)) => *role >= least,
            };
            // A denied cell must be a 401/403: any other answer (2xx above all) means the handler ran.
            if !allowed && !matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                unexpected_success.push((spec.clone(), *role, status));
            }
            if allowed && matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                wrongly_denied.push((spec.clone(), *role, status));
            }
        }
    }
    assert!(cells >= 60, "{cells}");
    assert!(unexpected_success.is_empty(), "{unexpected_success:#?}");
    assert!(wrongly_denied.is_empty(), "{wrongly_denied:#?}");
}

#[tokio::test]
async fn every_state_changing_route_needs_the_csrf_token_and_the_hubs_origin_with_a_session() {
    let hub = Hub::start(HubOptions { password_login: true, ..HubOptions::default() }).await;
    let admin = hub.signed_in("admin@example.com", Role::Admin).await;
    let csrf = admin.csrf().await;
    let audit_before = hub.audit_actions().await.len();
    // Logout last: it ends the session the other cases use.
    let mut unsafe_routes: Vec<_> = http::routes::table().into_iter().filter(|s| s.method != "GET").collect();
    unsafe_routes.sort_by_key(|s| s.path == "/logout");
    assert!(unsafe_routes.len() >= 6);
    for spec in &unsafe_routes {
        let url = format!("{}{}", hub.url, concrete(spec.path));
        let send = |csrf: Option<&str>, origin: Option<&str>, referer: Option<&str>| {
            let mut request = admin.client.request(method(spec), &url).json(&json!({ "name": "x" }));
            if let Some(csrf) = csrf {
                request = request.header("x-csrf-token", csrf);
            }
            if let Some(origin) = origin {
                request = request.header(ORIGIN, origin);
            }
            if let Some(referer) = referer {
                request = request.header(REFERER, referer);
            }
            request.send()
        };
        let evil = "https://evil.example";
        let cases = [
            (None, Some(hub.url.as_str()), None, "csrf"),
            (Some("0".repeat(64)), Some(hub.url.as_str()), None, "csrf"),
            (Some(csrf.clone()), Some(evil), None, "bad_origin"),
            (Some(csrf.clone()), None, None, "bad_origin"),
            (Some(csrf.clone()), None, Some(format!("{evil}/page")), "bad_origin"),
            (Some(csrf.clone()), None, Some(format!("{}.evil.example/", hub.url)), "bad_origin"),
        ];
        for (token, origin, referer, expected) in cases {
            let response = send(token.as_deref(), origin, referer.as_deref()).await.unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{spec:?} {expected}");
            if spec.policy != Policy::Public {
                assert_eq!(error_code(response).await, expected, "{spec:?}");
            }
        }
        // With both, the request reaches its handler (whatever it then says about the body).
        let same_page = Some(format!("{}/", hub.url));
        let response = send(Some(&csrf), None, same_page.as_deref()).await.unwrap();
        assert_ne!(response.status(), StatusCode::FORBIDDEN, "{spec:?}");
    }
    // Nothing was done by the refused requests: the only changes are those of the accepted requests that
    // had a valid body (`{"name": "x"}` makes a token, an environment and a project), and the logout, last.
    let audit_after = hub.audit_actions().await;
    assert_eq!(&audit_after[audit_before..], ["token.created", "environment.create", "project.create", "auth.logout"]);

    // A form post carries the token as a field, as the pages send it.
    let browser = hub.signed_in("user@example.com", Role::User).await;
    let csrf = browser.csrf().await;
    let response = browser
        .client
        .post(format!("{}/logout", hub.url))
        .header(ORIGIN, &hub.url)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(browser.me().await.unwrap_err(), StatusCode::UNAUTHORIZED);

    // Token-authenticated calls are exempt: browsers never attach bearer tokens by themselves.
    let user = hub.user("ci@example.com", Role::Manager).await;
    let token = hub.token(&user, TokenScope::Write).await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/projects", hub.url))
        .bearer_auth(&token)
        .json(&json!({ "name": "from-ci" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn tokens_are_shown_once_scoped_revocable_expiring_and_owned() {
    let hub = Hub::start(HubOptions { password_login: true, ..HubOptions::default() }).await;
    let alice = hub.signed_in("alice@example.com", Role::User).await;
    let response = alice.send(Method::POST, "/api/v1/tokens", Some(json!({ "name": "laptop", "scope": "read" }))).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let read_token = created["token_value"].as_str().unwrap().to_owned();
    assert!(read_token.starts_with(created["prefix"].as_str().unwrap()));
    let listed: Value = alice.get("/api/v1/tokens").await.json().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(&read_token[10..]), "the token is shown once");
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT token_hash FROM api_tokens").fetch_one(&hub.db.pool).await.unwrap();
    assert_eq!(stored.len(), 32);

    let api = reqwest::Client::new();
    let me: Value =
        api.get(format!("{}/api/v1/me", hub.url)).bearer_auth(&read_token).send().await.unwrap().json().await.unwrap();
    assert_eq!((me["auth"].as_str(), me.get("csrf_token")), (Some("token"), None));
    let write = api.post(format!("{}/api/v1/tokens", hub.url)).bearer_auth(&read_token).json(&json!({"name": "x"}));
    let response = write.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(response).await, "read_only_token");
    let last_used: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT last_used_at FROM api_tokens").fetch_one(&hub.db.pool).await.unwrap();
    assert!(last_used.is_some());

    // Someone else's tokens: not listed, not revocable (not even confirmed to exist).
    let bob = hub.signed_in("bob@example.com", Role::User).await;
    let id = created["id"].as_str().unwrap();
    let alice_id = created["user_id"].as_str().unwrap();
    assert_eq!(bob.get(&format!("/api/v1/tokens?user_id={alice_id}")).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(bob.send(Method::DELETE, &format!("/api/v1/tokens/{id}"), None).await.status(), StatusCode::NOT_FOUND);
    // Bob makes his own; an admin sees anyone's tokens (and may revoke them) but mints none for them.
    let for_bob = bob.send(Method::POST, "/api/v1/tokens", Some(json!({ "name": "bob's ci" }))).await;
    assert_eq!(for_bob.status(), StatusCode::CREATED);
    let for_bob: Value = for_bob.json().await.unwrap();
    let bob_id = bob.me().await.unwrap()["user"]["id"].clone();
    assert_eq!((&for_bob["user_id"], &for_bob["created_by"]), (&bob_id, &bob_id));
    let admin = hub.signed_in("admin@example.com", Role::Admin).await;
    let listed: Value =
        admin.get(&format!("/api/v1/tokens?user_id={}", bob_id.as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(listed["items"][0]["id"], for_bob["id"]);

    // Revoked: refused from the next request on.
    let response = alice.send(Method::DELETE, &format!("/api/v1/tokens/{id}"), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = api.get(format!("{}/api/v1/me", hub.url)).bearer_auth(&read_token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.text().await.unwrap().contains("revoked"));

    // Expired, malformed, unknown, or of a disabled owner: refused.
    let bobs = for_bob["token_value"].as_str().unwrap().to_owned();
    let me = |token: String| {
        let api = api.clone();
        let url = format!("{}/api/v1/me", hub.url);
        async move { api.get(url).bearer_auth(token).send().await.unwrap().status() }
    };
    assert_eq!(me(bobs.clone()).await, StatusCode::OK);
    sqlx::query("UPDATE api_tokens SET created_at = now() - interval '2 days', expires_at = now() - interval '1 day' WHERE id = $1")
        .bind(uuid::Uuid::parse_str(for_bob["id"].as_str().unwrap()).unwrap())
        .execute(&hub.db.pool)
        .await
        .unwrap();
    assert_eq!(me(bobs).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me("not-a-token".into()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(format!("mh_{}", "ab".repeat(32))).await, StatusCode::UNAUTHORIZED);
    let carol = hub.user("carol@example.com", Role::User).await;
    let carols = hub.token(&carol, TokenScope::Write).await;
    assert_eq!(me(carols.clone()).await, StatusCode::OK);
    let mut conn = hub.db.pool.acquire().await.unwrap();
    storage::users::set_disabled(&mut conn, carol.id, true).await.unwrap();
    assert_eq!(me(carols).await, StatusCode::UNAUTHORIZED);
    let actions = hub.audit_actions().await;
    assert_eq!(actions.iter().filter(|a| *a == "token.created").count(), 2);
    assert_eq!(actions.iter().filter(|a| *a == "token.revoked").count(), 1);
}

#[tokio::test]
async fn sessions_end_at_logout_when_idle_after_the_absolute_limit_and_when_the_user_is_disabled() {
    let hub = Hub::start(HubOptions {
        password_login: true,
        idle: Duration::from_secs(2),
        absolute: Duration::from_secs(5),
        ..HubOptions::default()
    })
    .await;
    // Idle.
    let idle = hub.signed_in("idle@example.com", Role::User).await;
    assert!(idle.me().await.is_ok());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(idle.me().await.unwrap_err(), StatusCode::UNAUTHORIZED);

    // Absolute: used every second, it still ends five seconds after login.
    let busy = hub.signed_in("busy@example.com", Role::User).await;
    let started = std::time::Instant::now();
    while busy.me().await.is_ok() {
        assert!(started.elapsed() < Duration::from_secs(8), "the session outlived its absolute limit");
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
    assert!(started.elapsed() >= Duration::from_millis(3500), "{:?}", started.elapsed());

    // Logout: the old cookie is worthless afterwards, even replayed.
    let _ = hub.signed_in("out@example.com", Role::User).await;
    let plain = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = plain
        .post(format!("{}/login/password", hub.url))
        .header(ORIGIN, &hub.url)
        .form(&[("email", "out@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_owned();
    let me = |client: &reqwest::Client| client.get(format!("{}/api/v1/me", hub.url)).header("cookie", &cookie).send();
    let body: Value = me(&plain).await.unwrap().json().await.unwrap();
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    let response = plain
        .post(format!("{}/logout", hub.url))
        .header("cookie", &cookie)
        .header(ORIGIN, &hub.url)
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(me(&plain).await.unwrap().status(), StatusCode::UNAUTHORIZED);

    // Disabled by an admin: ended on the next request.
    let victim = hub.signed_in("victim@example.com", Role::User).await;
    let admin = hub.signed_in("admin@example.com", Role::Admin).await;
    let id = victim.me().await.unwrap()["user"]["id"].clone();
    let response = admin
        .send(Method::PATCH, &format!("/api/v1/users/{}", id.as_str().unwrap()), Some(json!({ "disabled": true })))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(victim.me().await.unwrap_err(), StatusCode::UNAUTHORIZED);
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = 'victim@example.com'",
    )
    .fetch_one(&hub.db.pool)
    .await
    .unwrap();
    assert_eq!(left, 0);
    // The last admin can be neither demoted nor disabled.
    let admin_id = admin.me().await.unwrap()["user"]["id"].as_str().unwrap().to_owned();
    let response =
        admin.send(Method::PATCH, &format!("/api/v1/users/{admin_id}"), Some(json!({ "role": "user" }))).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(admin.me().await.unwrap()["user"]["role"], "admin");
}

#[tokio::test]
async fn password_login_is_off_by_default_uniform_on_failure_and_rate_limited() {
    let off = Hub::start(HubOptions::default()).await;
    let response = password_login(&off.browser(), "a@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let hub = Hub::start(HubOptions { password_login: true, ..HubOptions::default() }).await;
    let _ = hub.signed_in("pw@example.com", Role::User).await;
    let wrong = password_login(&hub.browser(), "pw@example.com", "a wrong password, long").await;
    let unknown = password_login(&hub.browser(), "nobody@example.com", PASSWORD).await;
    assert_eq!((wrong.status(), unknown.status()), (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED));
    let (wrong, unknown) = (wrong.text().await.unwrap(), unknown.text().await.unwrap());
    assert!(wrong.contains("reason: bad_credentials") && unknown.contains("reason: bad_credentials"));
    // A foreign origin cannot post the login form (login CSRF).
    let response = hub
        .browser()
        .client
        .post(format!("{}/login/password", hub.url))
        .header(ORIGIN, "https://evil.example")
        .form(&[("email", "pw@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Ten attempts a minute per account, then 429 even with the right password.
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(password_login(&hub.browser(), "pw@example.com", "still the wrong one").await.status());
    }
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    let response = password_login(&hub.browser(), "pw@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn responses_carry_security_headers_and_cookies_their_attributes() {
    let hub = Hub::start(HubOptions { password_login: true, secure_cookies: true, ..HubOptions::default() }).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for path in ["/login", "/api/v1/me", "/healthz", "/nope"] {
        let response = client.get(format!("{}{path}", hub.url)).send().await.unwrap();
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'self'"), "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "same-origin", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert!(headers.get("strict-transport-security").is_none(), "no HSTS over plain http: {path}");
    }
    // The session cookie: host-only, Secure, HttpOnly, SameSite=Lax.
    let user = hub.user("c@example.com", Role::User).await;
    let hash = auth::password::hash(SecretString::from(PASSWORD)).await.unwrap();
    let mut conn = hub.db.pool.acquire().await.unwrap();
    storage::users::set_password_hash(&mut conn, user.id, Some(&hash)).await.unwrap();
    let response = client
        .post(format!("{}/login/password", hub.url))
        .header(ORIGIN, &hub.url)
        .form(&[("email", "c@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-mh_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(!cookie.contains("Domain="), "{cookie}");
}

#[tokio::test]
async fn a_server_error_body_is_a_request_id_and_nothing_inside() {
    let hub = Hub::start(HubOptions { password_login: true, ..HubOptions::default() }).await;
    let browser = hub.signed_in("e@example.com", Role::User).await;
    sqlx::query("DROP TABLE sessions").execute(&hub.db.pool).await.unwrap();
    let response = browser.get("/api/v1/me").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "internal", "{body}");
    assert!(!body["error"]["request_id"].as_str().unwrap_or_default().is_empty(), "{body}");
    assert!(!body.to_string().contains("sessions"), "{body}");
}

#[tokio::test]
async fn signing_in_issues_a_new_session_key_and_the_previous_one_dies() {
    let hub = Hub::start(HubOptions { password_login: true, ..HubOptions::default() }).await;
    for email in ["first@example.com", "second@example.com"] {
        let user = hub.user(email, Role::User).await;
        let hash = auth::password::hash(SecretString::from(PASSWORD)).await.unwrap();
        let mut conn = hub.db.pool.acquire().await.unwrap();
        storage::users::set_password_hash(&mut conn, user.id, Some(&hash)).await.unwrap();
    }
    let plain = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = |email: &'static str, session: Option<(String, String)>| {
        let mut request = plain
            .post(format!("{}/login/password", hub.url))
            .header(ORIGIN, &hub.url)
            .form(&[("email", email), ("password", PASSWORD)]);
        if let Some((cookie, csrf)) = session {
            // Signed in already, the request is a session request: it needs the CSRF token too.
            request = request.header("cookie", cookie).header("x-csrf-token", csrf);
        }
        request.send()
    };
    let cookie_of = |response: &reqwest::Response| {
        response.headers()[SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_owned()
    };
    let first = login("first@example.com", None).await.unwrap();
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let first = cookie_of(&first);
    // The same browser signs in again (e.g. as someone else): a new key, and the old one is gone.
    let me = |cookie: String| plain.get(format!("{}/api/v1/me", hub.url)).header("cookie", cookie).send();
    let body: Value = me(first.clone()).await.unwrap().json().await.unwrap();
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    let second = login("second@example.com", Some((first.clone(), csrf))).await.unwrap();
    assert_eq!(second.status(), StatusCode::SEE_OTHER);
    let second = cookie_of(&second);
    assert_ne!(first, second);
    assert_eq!(me(first).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let body: Value = me(second).await.unwrap().json().await.unwrap();
    assert_eq!(body["user"]["email"], "second@example.com");
}
