//! Issue 16 regressions for identity: who may mint tokens (their owner, from a session, never with a token),
//! authors not approving their own content, empty OIDC subjects.
//!
//! - Item 3a: a token is created only by its owner. Nobody, admins included, can name another owner, and the
//!   tokens an admin made for someone else before the fix are revoked by the tool-schema migration.
//! - Item 3b: whoever authored a version in a run's content may neither approve nor deny it (API and page),
//!   and the refusal is audited.
//! - Item 10: tokens are minted from a signed-in session only, so no token can outlive or outrank the one
//!   that would have made it.
//! - Item 11: an ID token whose `sub` is empty (or too long) is a refused login, not a 500.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use domain::enums::{Role, TokenScope};
use domain::ids::UserId;
use migrate_hub_tests::oidc::Provider;
use migrate_hub_tests::{PgDatabase, binary};
use reqwest::header::{ACCEPT, ORIGIN};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::api::{Api, api_for, id, target_body};
use crate::hub::{Browser, Hub, HubOptions};

/// A user with a password, signed in through `/login/password` in a new browser.
async fn signed_in(hub: &Hub, email: &str, role: Role) -> (Browser, UserId) {
    let user = hub.user(email, role).await;
    (hub.password_session(user.id, email).await, user.id)
}

/// `(status, body as JSON)` of a response.
async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn tokens_of(hub: &Hub, user: UserId) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM api_tokens WHERE user_id = $1")
        .bind(user.as_uuid())
        .fetch_one(&hub.db.pool)
        .await
        .unwrap()
}

/// `(actor_kind, details)` of the audit events with `action`, oldest first.
async fn audited(hub: &Hub, action: &str) -> Vec<(String, Value)> {
    sqlx::query_as("SELECT actor_kind, details FROM audit_events WHERE action = $1 ORDER BY id")
        .bind(action)
        .fetch_all(&hub.db.pool)
        .await
        .unwrap()
}

// --- item 3a: tokens are created only by their owner ---

#[tokio::test]
async fn nobody_not_even_an_admin_can_mint_a_token_for_someone_else() {
    let hub = Hub::start(HubOptions { password_login: true, ..HubOptions::default() }).await;
    let (_, victim) = signed_in(&hub, "manager-victim@example.com", Role::Manager).await;
    for role in [Role::User, Role::Manager, Role::Admin] {
        let (browser, me) = signed_in(&hub, &format!("{role}@example.com"), role).await;
        // The API has no field for another owner: naming one is a malformed request, for every role.
        let body = json!({ "name": "for them", "user_id": victim.to_string() });
        let (status, body) = answer(browser.send(Method::POST, "/api/v1/tokens", Some(body)).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{role}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("user_id"), "{role}: {body}");
        // Nor does the page: an extra field changes nothing, the token is the signed-in person's own.
        let csrf = browser.csrf().await;
        let fields = [
            ("name", "page"),
            ("scope", "write"),
            ("expires_in_days", "1"),
            ("user_id", &victim.to_string()),
            ("csrf_token", &csrf),
        ];
        let response = browser
            .client
            .post(format!("{}/tokens", hub.url))
            .header(ORIGIN, &hub.url)
            .header(ACCEPT, "text/html")
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{role}");
        assert_eq!(tokens_of(&hub, me).await, 1, "{role}");
        // Listing someone else's tokens stays an admin's right.
        let listed = browser.get(&format!("/api/v1/tokens?user_id={victim}")).await.status();
        let expected = if role == Role::Admin { StatusCode::OK } else { StatusCode::FORBIDDEN };
        assert_eq!(listed, expected, "{role}");
    }
    assert_eq!(tokens_of(&hub, victim).await, 0, "no token was made for the victim");
    let created_for_others: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens WHERE created_by <> user_id")
        .fetch_one(&hub.db.pool)
        .await
        .unwrap();
    assert_eq!(created_for_others, 0);
}

/// The server binary with `secret` and `db`, running `args`.
fn server(db: &PgDatabase, secret: &str, args: &[&str]) -> Command {
    let mut command = Command::new(binary("migrate-hub-server"));
    command
        .args(args)
        .env_remove("RUST_LOG")
        .env("DATABASE_URL", &db.url)
        .env("MIGRATE_HUB_SERVER_SECRET", secret)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn tokens_an_admin_made_for_someone_else_before_the_fix_are_revoked_by_the_upgrade() {
    const SECRET: &str = "5ec2e7005ec2e7005ec2e7005ec2e7005ec2e7005ec2e7005ec2e7005ec2e700";
    // A tool database as the release before the fix left it, with a token an admin minted for a manager
    // (the way to approve their own runs as the manager) and one the manager made.
    let db = PgDatabase::fresh().await;
    storage::schema::MIGRATOR.run_to(20261203000001, &db.pool).await.unwrap();
    let (admin, manager) = (UserId::new(), UserId::new());
    for (id, email, role) in [(admin, "admin@example.com", "admin"), (manager, "boss@example.com", "manager")] {
        sqlx::query("INSERT INTO users (id, email, display_name, role) VALUES ($1, $2, $2, $3)")
            .bind(id.as_uuid())
            .bind(email)
            .bind(role)
            .execute(&db.pool)
            .await
            .unwrap();
    }
    let key = auth::keys::ServerSecret::parse(&SecretString::from(SECRET)).unwrap().token_key();
    let mut conn = db.pool.acquire().await.unwrap();
    let mut tokens = Vec::new();
    for creator in [admin, manager] {
        let minted = auth::tokens::mint(&key, manager, creator, "t".into(), TokenScope::Write, None).unwrap();
        let token = storage::tokens::create(&mut conn, &minted.new).await.unwrap();
        tokens.push((token.id, minted.token.expose_secret().to_owned()));
    }
    drop(conn);
    let [(planted_id, planted), (own_id, own)] = <[_; 2]>::try_from(tokens).unwrap();

    // The upgrade, by the real binary.
    let out = server(&db, SECRET, &["migrate"]).stderr(Stdio::piped()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let revoked = |id: domain::ids::TokenId| {
        let pool = db.pool.clone();
        async move {
            sqlx::query_scalar::<_, bool>("SELECT revoked_at IS NOT NULL FROM api_tokens WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert!(revoked(planted_id).await, "the token made for someone else is revoked");
    assert!(!revoked(own_id).await, "the owner's own token is not");

    // And the server treats it so.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let _server = Serving(server(&db, SECRET, &["serve", "--bind", &format!("127.0.0.1:{port}")]).spawn().unwrap());
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client.get(format!("{url}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let me = |token: String| client.get(format!("{url}/api/v1/me")).bearer_auth(token).send();
    let refused = me(planted).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.text().await.unwrap().contains("revoked"));
    assert_eq!(me(own).await.unwrap().status(), StatusCode::OK);
}

// --- item 3b: the authors of a run's content may not decide on it ---

/// A `prod` environment needing one approval, with a set of one target, and a project; returns the request
/// body fields (`environment_id`, `db_set_id`) and the project id.
async fn prod(admin: &Api, target: &PgDatabase) -> (Value, String) {
    let env = admin
        .ok(
            Method::POST,
            "/api/v1/environments",
            json!({"name": "prod", "approval_required": true}),
            StatusCode::CREATED,
        )
        .await;
    let t = admin
        .ok(
            Method::POST,
            "/api/v1/targets",
            target_body(&id(&env), "db", "postgres", &target.url, None),
            StatusCode::CREATED,
        )
        .await;
    let set = admin
        .ok(
            Method::POST,
            "/api/v1/db-sets",
            json!({"environment_id": id(&env), "name": "all", "target_ids": [id(&t)]}),
            StatusCode::CREATED,
        )
        .await;
    let project = admin.ok(Method::POST, "/api/v1/projects", json!({"name": "shop"}), StatusCode::CREATED).await;
    (json!({"environment_id": id(&env), "db_set_id": id(&set)}), id(&project))
}

#[tokio::test]
async fn whoever_authored_a_version_in_a_run_can_neither_approve_nor_deny_it() {
    let hub = Hub::start(HubOptions { password_login: true, ..HubOptions::default() }).await;
    let target = PgDatabase::fresh().await;
    let admin = api_for(&hub, "admin@example.com", Role::Admin).await;
    let dev = api_for(&hub, "dev@example.com", Role::User).await;
    let reviewer = api_for(&hub, "reviewer@example.com", Role::Manager).await;
    let author = api_for(&hub, "mallory@example.com", Role::Manager).await;
    let author_id = author.get("/api/v1/me").await["user"]["id"].as_str().unwrap().parse().unwrap();
    let author_page = hub.password_session(author_id, "mallory@example.com").await;
    let (place, project) = prod(&admin, &target).await;

    // The developer writes a migration; the manager writes its newest version (the content of the run);
    // the developer requests the run.
    let created = dev
        .ok(
            Method::POST,
            "/api/v1/migrations",
            json!({"project_id": project, "version_key": "0001", "name": "orders",
                   "up_sql": "CREATE TABLE orders (id int);"}),
            StatusCode::CREATED,
        )
        .await;
    let migration = id(&created["migration"]);
    let edit = json!({"up_sql": "CREATE TABLE orders (id bigint);"});
    author.ok(Method::POST, &format!("/api/v1/migrations/{migration}/versions"), edit, StatusCode::CREATED).await;
    let mut request = place.clone();
    request["migration_id"] = json!(migration);
    let run = id(&dev.ok(Method::POST, "/api/v1/runs", request, StatusCode::CREATED).await);

    // The author may neither approve nor deny it, whatever they send.
    for action in ["approve", "deny"] {
        let (status, body) =
            author.call(Method::POST, &format!("/api/v1/runs/{run}/{action}"), Some(json!({"version": 2}))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{action}: {body}");
        assert_eq!(body["error"]["code"], "author_approval", "{action}: {body}");
        assert_eq!(
            body["error"]["message"],
            "you authored a migration version in this run, so you cannot approve it or deny it"
        );
    }
    let refusals: Vec<_> =
        [audited(&hub, "run.approve_refused").await, audited(&hub, "run.deny_refused").await].concat();
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert!(refusals.iter().all(|(_, details)| details["reason"] == "author_approval"), "{refusals:?}");
    assert!(audited(&hub, "run.approve").await.is_empty() && audited(&hub, "run.deny").await.is_empty());

    // The page shows the author a disabled button with the reason.
    let html = author_page
        .client
        .get(format!("{}/runs/{run}", hub.url))
        .header(ACCEPT, "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let approve = html.split(r#"<button type="submit" disabled"#).nth(1).unwrap_or_default();
    assert!(approve.split("</button>").next().unwrap().ends_with(">Approve"), "{html}");
    assert!(
        html.contains("You authored a migration version in this run, so you cannot approve it or deny it."),
        "{html}"
    );

    // Someone who wrote none of it approves.
    let approved =
        reviewer.ok(Method::POST, &format!("/api/v1/runs/{run}/approve"), json!({"version": 2}), StatusCode::OK).await;
    assert_eq!(approved["status"], "approved");

    // In a release of several migrations, writing any one version is enough to be refused, even for an admin
    // who requested nothing.
    let second = admin
        .ok(
            Method::POST,
            "/api/v1/migrations",
            json!({"project_id": project, "version_key": "0002", "name": "items",
                   "up_sql": "CREATE TABLE items (id int);"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(second["version"]["author_id"], admin.get("/api/v1/me").await["user"]["id"], "{second}");
    let mut request = place.clone();
    request["project_id"] = json!(project);
    let release = dev.ok(Method::POST, "/api/v1/runs", request, StatusCode::CREATED).await;
    assert_eq!(release["migrations"].as_array().unwrap().len(), 2, "{release}");
    let content = release["content_checksum"].clone();
    let path = format!("/api/v1/runs/{}/approve", id(&release));
    let (status, body) = admin.call(Method::POST, &path, Some(json!({"content_checksum": content}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("author_approval")), "{body}");
    let (status, body) = author.call(Method::POST, &path, Some(json!({"content_checksum": content}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("author_approval")), "{body}");
    let approved = reviewer.ok(Method::POST, &path, json!({"content_checksum": content}), StatusCode::OK).await;
    assert_eq!(approved["status"], "approved");
}

// --- item 10: tokens are minted from a session only ---

#[tokio::test]
async fn a_token_cannot_mint_another_token_only_a_signed_in_session_can() {
    let hub = Hub::start(HubOptions { password_login: true, ..HubOptions::default() }).await;
    let (browser, me) = signed_in(&hub, "ci-owner@example.com", Role::Admin).await;
    // From the session: a short-lived token.
    let body = json!({ "name": "one day", "expires_in_days": 1 });
    let (status, parent) = answer(browser.send(Method::POST, "/api/v1/tokens", Some(body)).await).await;
    assert_eq!(status, StatusCode::CREATED, "{parent}");
    let parent = parent["token_value"].as_str().unwrap().to_owned();

    // With it: no ten-year token, through the API or the page, whatever the owner's role.
    let client = reqwest::Client::new();
    let body = json!({ "name": "ten years", "expires_in_days": 3650 });
    let response = client.post(format!("{}/api/v1/tokens", hub.url)).bearer_auth(&parent).json(&body).send().await;
    let (status, body) = answer(response.unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "session_required", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("signed-in session"), "{body}");
    let response = client
        .post(format!("{}/tokens", hub.url))
        .bearer_auth(&parent)
        .header(ACCEPT, "text/html")
        .form(&[("name", "ten years"), ("scope", "write"), ("expires_in_days", "3650")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("signed-in session"));
    assert_eq!(tokens_of(&hub, me).await, 1, "only the session's token exists");

    // Both refusals are audited, as the token's.
    let refused = audited(&hub, "token.create_refused").await;
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused.iter().all(|(kind, d)| kind == "token" && d["reason"] == "session_required"), "{refused:?}");

    // Revoking the parent leaves nothing behind that still works.
    let id = sqlx::query_scalar::<_, uuid::Uuid>("SELECT id FROM api_tokens WHERE user_id = $1")
        .bind(me.as_uuid())
        .fetch_one(&hub.db.pool)
        .await
        .unwrap();
    let response = browser.send(Method::DELETE, &format!("/api/v1/tokens/{id}"), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = client.get(format!("{}/api/v1/me", hub.url)).bearer_auth(&parent).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let live: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL")
        .fetch_one(&hub.db.pool)
        .await
        .unwrap();
    assert_eq!(live, 0);
}

// --- item 11: an empty subject is a refused login ---

#[tokio::test]
async fn an_id_token_with_an_empty_or_overlong_subject_is_a_refused_login() {
    let provider = Provider::start().await;
    let hub = Hub::start(HubOptions::oidc(&provider)).await;
    for sub in [String::new(), "s".repeat(256), "line\nbreak".to_owned()] {
        provider.next(json!({ "sub": sub, "email": "nobody@example.com" })).await;
        let browser = hub.browser();
        let response = browser.oidc_login().await;
        let status = response.status();
        let page = response.text().await.unwrap();
        assert_eq!(status, StatusCode::FORBIDDEN, "sub {sub:?}: {page}");
        assert!(page.contains("(reason: subject)"), "sub {sub:?}: {page}");
        assert_eq!(browser.me().await.unwrap_err(), StatusCode::UNAUTHORIZED);
    }
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&hub.db.pool).await.unwrap();
    assert_eq!(users, 0, "no account is made by a refused login");
    // Every case reached the token endpoint and was refused by the hub's check.
    assert_eq!(provider.token_requests().await.len(), 3);

    // The longest subject OpenID Connect allows signs in.
    provider.next(json!({ "sub": "s".repeat(255), "email": "long@example.com" })).await;
    hub.browser().sign_in().await;
}
