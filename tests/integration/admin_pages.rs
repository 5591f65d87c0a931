//! The admin and account pages over HTTP, for what the browser flow does not cover: a target's password is
//! never rendered back, the connection check (a working target and a wrong port), db set membership through
//! the form with search, a refused form keeping what was typed, tokens shown once, the last admin, the audit
//! page's chain status, and `/admin/*` and `/audit` refused to non-admins.

use domain::enums::Role;
use reqwest::StatusCode;
use reqwest::header::CACHE_CONTROL;
use serde_json::{Value, json};

use crate::hub::{Browser, Hub, HubOptions, location};

const KEYS: &str = "k1:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// The target password the pages must never show.
const TARGET_PASSWORD: &str = "Tr1cky-target-pa55word-9f3e";

async fn hub() -> Hub {
    Hub::start(HubOptions { password_login: true, master_keys: Some(KEYS.into()), ..HubOptions::default() }).await
}

async fn json(browser: &Browser, path: &str) -> Value {
    let response = browser.get(path).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// Creates an environment through its form; returns its id.
async fn environment(browser: &Browser, name: &str) -> String {
    let response = browser
        .post_form(
            "/admin/environments",
            &[
                ("name", name),
                ("approval_required", "false"),
                ("allow_out_of_order", "false"),
                ("execute_roles", "user"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap());
    let envs = json(browser, "/api/v1/environments").await;
    let env = envs["items"].as_array().unwrap().iter().find(|e| e["name"] == name).unwrap();
    env["id"].as_str().unwrap().to_owned()
}

/// Host, port, database and user of a database URL.
fn parts(url: &str) -> (String, String, String, String) {
    let url = reqwest::Url::parse(url).unwrap();
    (
        url.host_str().unwrap().to_owned(),
        url.port().unwrap().to_string(),
        url.path().trim_start_matches('/').to_owned(),
        url.username().to_owned(),
    )
}

/// A reachable Postgres database that is not the hub's own (a target may never be the tool database):
/// the maintenance database of the test server, which the tests only connect to.
fn elsewhere(hub: &Hub) -> String {
    let mut url = reqwest::Url::parse(&hub.db.url).unwrap();
    url.set_path("/postgres");
    url.to_string()
}

/// Creates a Postgres target through the form (pointing at `url`); returns its id.
async fn target(browser: &Browser, env: &str, name: &str, url: &str, password: Option<&str>) -> String {
    let (host, port, database, username) = parts(url);
    let mut fields = vec![
        ("environment_id", env),
        ("engine", "postgres"),
        ("name", name),
        ("host", host.as_str()),
        ("port", port.as_str()),
        ("database", database.as_str()),
        ("username", username.as_str()),
        ("tls_mode", "disable"),
        ("labels", "team=payments\nregion=eu"),
    ];
    if let Some(password) = password {
        fields.push(("password", password));
    }
    let response = browser.post_form("/admin/targets", &fields).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap());
    let list = json(browser, &format!("/api/v1/targets?environment_id={env}&search={name}")).await;
    let found = list["items"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap();
    found["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_target_password_set_through_the_pages_is_never_rendered_back() {
    let hub = hub().await;
    let admin = hub.signed_in("admin@example.com", Role::Admin).await;
    let env = environment(&admin, "staging").await;
    let id = target(&admin, &env, "orders", &elsewhere(&hub), Some(TARGET_PASSWORD)).await;
    // Set again through the secret form, and once more with a refused form (both a password and a
    // reference), whose 422 page must not echo the password either.
    let response = admin.post_form(&format!("/admin/targets/{id}/secret"), &[("password", TARGET_PASSWORD)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let refused = admin
        .post_form(
            &format!("/admin/targets/{id}/secret"),
            &[("password", TARGET_PASSWORD), ("secret_ref", "env:ORDERS_PASSWORD")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused = refused.text().await.unwrap();
    assert!(refused.contains("not both"), "{refused}");
    assert!(!refused.contains(TARGET_PASSWORD));
    let (host, _, database, username) = parts(&hub.db.url);
    let refused = admin
        .post_form(
            "/admin/targets",
            &[
                ("environment_id", &env),
                ("engine", "postgres"),
                ("name", "other"),
                ("host", &host),
                ("port", "not a port"),
                ("database", &database),
                ("username", &username),
                ("password", TARGET_PASSWORD),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!refused.text().await.unwrap().contains(TARGET_PASSWORD));

    let set = admin.post_form("/admin/db-sets", &[("environment_id", &env), ("name", "all-orders")]).await;
    assert_eq!(set.status(), StatusCode::SEE_OTHER);
    let set_page = location(&set);
    let test = admin.post_form(&format!("/admin/targets/{id}/test"), &[]).await;
    assert_eq!(test.status(), StatusCode::OK);
    assert!(!test.text().await.unwrap().contains(TARGET_PASSWORD));
    let target_page = admin.html(&format!("/admin/targets/{id}")).await;
    assert!(target_page.contains(r#"id="secret-status">sealed<"#), "{target_page}");
    for path in [
        "/".to_owned(),
        "/admin/environments".to_owned(),
        format!("/admin/environments/{env}"),
        format!("/admin/targets?environment_id={env}"),
        format!("/admin/targets/{id}"),
        "/admin/db-sets".to_owned(),
        set_page,
        "/admin/users".to_owned(),
        "/tokens".to_owned(),
        "/audit".to_owned(),
        "/audit?object_type=target".to_owned(),
    ] {
        let html = admin.html(&path).await;
        assert!(!html.contains(TARGET_PASSWORD), "{path} shows the password");
        assert!(!html.contains("pa55word"), "{path} shows part of the password");
    }
    let audit: Value = json(&admin, "/api/v1/audit?action=target").await;
    assert!(!audit.to_string().contains(TARGET_PASSWORD));
}

#[tokio::test]
async fn the_connection_check_reaches_a_working_target_and_explains_a_wrong_port() {
    let hub = hub().await;
    let admin = hub.signed_in("admin@example.com", Role::Admin).await;
    let env = environment(&admin, "dev").await;
    // A Postgres the test can reach (trust auth: the sealed password is opened and sent, and ignored).
    let reachable = elsewhere(&hub);
    let id = target(&admin, &env, "tooldb", &reachable, Some(TARGET_PASSWORD)).await;
    let ok = admin.post_form(&format!("/admin/targets/{id}/test"), &[]).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let ok = ok.text().await.unwrap();
    assert!(ok.contains(r#"id="connection-test""#) && ok.contains("Connected. Server version:"), "{ok}");
    assert!(ok.contains("PostgreSQL"), "{ok}");

    // The same target on a port nobody listens on.
    let (host, _, database, username) = parts(&reachable);
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let response = admin
        .post_form(
            &format!("/admin/targets/{id}"),
            &[
                ("name", "tooldb"),
                ("host", &host),
                ("port", &unused),
                ("database", &database),
                ("username", &username),
                ("tls_mode", "disable"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap());
    let failed = admin.post_form(&format!("/admin/targets/{id}/test"), &[]).await;
    assert_eq!(failed.status(), StatusCode::OK);
    let failed = failed.text().await.unwrap();
    assert!(failed.contains("Could not connect (connect):"), "{failed}");
    assert!(failed.contains(&format!("cannot connect to the target at {host}:{unused}")), "{failed}");
    assert!(!failed.contains(TARGET_PASSWORD));

    // A reference is the workers' to read: the server says so instead of reading its own environment. (This
    // hub allows no reference, so it is refused when set, and stored directly as an older hub could have.)
    let response = admin.post_form(&format!("/admin/targets/{id}/secret"), &[("secret_ref", "env:HOME")]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("MIGRATE_HUB_SECRET_REFS"));
    sqlx::query(
        "UPDATE db_targets SET secret_ref = 'env:HOME', secret_ciphertext = NULL, secret_nonce = NULL, \
         secret_key_id = NULL WHERE id = $1::uuid",
    )
    .bind(&id)
    .execute(&hub.db.pool)
    .await
    .unwrap();
    let reference = admin.post_form(&format!("/admin/targets/{id}/test"), &[]).await.text().await.unwrap();
    assert!(reference.contains("only the workers read"), "{reference}");

    let actions = hub.audit_actions().await;
    assert_eq!(actions.iter().filter(|a| *a == "target.test_connection").count(), 3, "{actions:?}");
    let details: Vec<Value> =
        sqlx::query_scalar("SELECT details FROM audit_events WHERE action = 'target.test_connection' ORDER BY id")
            .fetch_all(&hub.db.pool)
            .await
            .unwrap();
    assert_eq!(details[0]["ok"], true);
    assert_eq!((details[1]["ok"].clone(), details[1]["stage"].clone()), (Value::Bool(false), "connect".into()));

    // Not for managers.
    let manager = hub.signed_in("manager@example.com", Role::Manager).await;
    assert_eq!(manager.post_form(&format!("/admin/targets/{id}/test"), &[]).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn db_set_members_are_added_and_removed_through_the_form_with_search() {
    let hub = hub().await;
    let admin = hub.signed_in("admin@example.com", Role::Admin).await;
    let env = environment(&admin, "prod").await;
    let mut ids = std::collections::HashMap::new();
    for name in ["web-1", "web-2", "web-3", "db-1", "db-2"] {
        ids.insert(name, target(&admin, &env, name, &elsewhere(&hub), None).await);
    }
    let response = admin.post_form("/admin/db-sets", &[("environment_id", &env), ("name", "webs")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let set_path = location(&response);

    // The set's page renames and describes it; a bad name is refused with what was typed kept.
    let refused = admin.post_form(&set_path, &[("name", "Web Servers"), ("description", "the web tier")]).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused = refused.text().await.unwrap();
    assert!(refused.contains(r#"value="Web Servers""#) && refused.contains(r#"value="the web tier""#), "{refused}");
    let renamed = admin.post_form(&set_path, &[("name", "web-tier"), ("description", "the web tier")]).await;
    assert_eq!((renamed.status(), location(&renamed)), (StatusCode::SEE_OTHER, set_path.clone()));
    let html = admin.html(&set_path).await;
    assert!(html.contains("<h1>Db set web-tier</h1>") && html.contains("<p>the web tier</p>"), "{html}");

    // Searching the candidates narrows them; nothing is a member yet.
    let html = admin.html(&format!("{set_path}?add_search=web")).await;
    assert!(html.contains(r#"id="member-count"><strong>0</strong>"#), "{html}");
    for name in ["web-1", "web-2", "web-3"] {
        assert!(html.contains(&format!(r#"name="add" value="{}""#, ids[name])), "{name}");
    }
    assert!(!html.contains(&ids["db-1"]));

    // Tick two, apply.
    let response = admin
        .post_form(
            &format!("{set_path}/members"),
            &[("add", &ids["web-1"]), ("add", &ids["web-3"]), ("add_search", "web")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap());
    let back = location(&response);
    assert!(back.contains("added=2") && back.contains("add_search=web"), "{back}");
    let html = admin.html(&back).await;
    assert!(html.contains(r#"id="member-count"><strong>2</strong>"#));
    assert!(html.contains(&format!(r#"name="remove" value="{}""#, ids["web-1"])));
    assert!(html.contains(&format!(r#"name="add" value="{}""#, ids["web-2"])));
    assert!(!html.contains(&format!(r#"name="add" value="{}""#, ids["web-1"])));

    // Search the members, remove one and add another in one change.
    let html = admin.html(&format!("{set_path}?search=web-3")).await;
    assert!(html.contains(&format!(r#"name="remove" value="{}""#, ids["web-3"])));
    assert!(!html.contains(&format!(r#"name="remove" value="{}""#, ids["web-1"])));
    let response =
        admin.post_form(&format!("{set_path}/members"), &[("remove", &ids["web-3"]), ("add", &ids["db-2"])]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).contains("added=1&removed=1"), "{}", location(&response));
    let set_id = set_path.rsplit('/').next().unwrap();
    let members = json(&admin, &format!("/api/v1/db-sets/{set_id}/members")).await;
    let mut names: Vec<&str> =
        members["items"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["db-2", "web-1"]);

    // Nothing ticked, or a target of another environment: refused on the page, nothing changed.
    let response = admin.post_form(&format!("{set_path}/members"), &[]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("Tick the targets"));
    let other_env = environment(&admin, "qa").await;
    let stranger = target(&admin, &other_env, "web-9", &elsewhere(&hub), None).await;
    let response = admin.post_form(&format!("{set_path}/members"), &[("add", &stranger)]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let actions = hub.audit_actions().await;
    assert_eq!(actions.iter().filter(|a| *a == "db_set.members").count(), 2, "{actions:?}");
}

#[tokio::test]
async fn a_refused_form_keeps_what_was_typed_and_says_what_is_wrong() {
    let hub = hub().await;
    let admin = hub.signed_in("admin@example.com", Role::Admin).await;
    let response = admin
        .post_form(
            "/admin/environments",
            &[
                ("name", "Not A Slug!"),
                ("description", "typed <b>text</b>"),
                ("approval_required", "true"),
                ("approvals_required", "2"),
                ("execute_roles", "manager"),
                ("lock_timeout_ms", "12345"),
                ("target_lock_wait_ms", "soon"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"value="Not A Slug!""#), "{html}");
    assert!(html.contains(r#"value="typed &lt;b&gt;text&lt;/b&gt;""#), "{html}");
    assert!(html.contains(r#"value="12345""#) && html.contains(r#"value="soon""#));
    assert!(html.contains(r#"value="manager" checked"#), "{html}");
    assert!(html.contains(r#"id="target_lock_wait_ms-error""#), "{html}");
    // Fixed, it passes and says nothing of the earlier problem.
    let response = admin
        .post_form(
            "/admin/environments",
            &[
                ("name", "prod"),
                ("approval_required", "true"),
                ("approvals_required", "2"),
                ("execute_roles", "manager"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // A rule of the use case (approval without approvers) comes back on the edit form, typed values kept.
    let env = json(&admin, "/api/v1/environments").await["items"][0]["id"].as_str().unwrap().to_owned();
    let response = admin
        .post_form(
            &format!("/admin/environments/{env}"),
            &[
                ("approval_required", "true"),
                ("approvals_required", "0"),
                ("execute_roles", "admin"),
                ("lock_timeout_ms", "777"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"value="777""#) && html.contains(r#"class="problems""#), "{html}");

    // The token form too.
    let user = hub.signed_in("user@example.com", Role::User).await;
    let response = user.post_form("/tokens", &[("name", "ci"), ("scope", "read"), ("expires_in_days", "99999")]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"value="ci""#) && html.contains(r#"value="99999""#), "{html}");
    assert!(html.contains(r#"value="read" selected"#), "{html}");
    assert!(html.contains("between 1 and 3650"), "{html}");
}

#[tokio::test]
async fn a_token_is_shown_once_and_revocable_from_the_page() {
    let hub = hub().await;
    let user = hub.signed_in("user@example.com", Role::User).await;
    let response = user.post_form("/tokens", &[("name", "laptop"), ("scope", "read"), ("expires_in_days", "7")]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    let html = response.text().await.unwrap();
    assert!(html.contains("shown only once"), "{html}");
    let start = html.find("value=\"mh_").unwrap() + "value=\"".len();
    let token = &html[start..start + 67];
    assert!(token.starts_with("mh_"));
    let me = reqwest::Client::new().get(format!("{}/api/v1/me", hub.url)).bearer_auth(token).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let list = user.html("/tokens").await;
    assert!(list.contains("laptop") && !list.contains(&token[10..]), "the value is shown once");
    let id = json(&user, "/api/v1/tokens").await["items"][0]["id"].as_str().unwrap().to_owned();
    // Someone else cannot revoke it, nor learn it exists.
    let other = hub.signed_in("other@example.com", Role::User).await;
    assert_eq!(other.post_form(&format!("/tokens/{id}/revoke"), &[]).await.status(), StatusCode::NOT_FOUND);
    let response = user.post_form(&format!("/tokens/{id}/revoke"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let me = reqwest::Client::new().get(format!("{}/api/v1/me", hub.url)).bearer_auth(token).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    assert!(user.html("/tokens").await.contains("status-revoked"));
    let actions = hub.audit_actions().await;
    assert!(actions.contains(&"token.created".to_owned()) && actions.contains(&"token.revoked".to_owned()));

    // An admin sees anyone's tokens from the users page and revokes one (a lost laptop); users cannot.
    user.post_form("/tokens", &[("name", "ci"), ("scope", "write"), ("expires_in_days", "7")]).await;
    let ci = json(&user, "/api/v1/tokens").await["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let owner = json(&user, "/api/v1/me").await["user"]["id"].as_str().unwrap().to_owned();
    let admin = hub.signed_in("admin@example.com", Role::Admin).await;
    let tokens_path = format!("/admin/users/{owner}/tokens");
    assert!(admin.html("/admin/users").await.contains(&format!(r#"href="{tokens_path}""#)));
    let theirs = admin.html(&tokens_path).await;
    assert!(
        theirs.contains("API tokens of user@example.com") && theirs.contains(&format!("{tokens_path}/{ci}/revoke"))
    );
    let denied = other.post_form(&format!("{tokens_path}/{ci}/revoke"), &[]).await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    let revoked = admin.post_form(&format!("{tokens_path}/{ci}/revoke"), &[]).await;
    assert_eq!((revoked.status(), location(&revoked)), (StatusCode::SEE_OTHER, format!("{tokens_path}?revoked=ci")));
    let token = json(&user, "/api/v1/tokens").await["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == ci.as_str())
        .unwrap()
        .clone();
    assert!(token["revoked_at"].is_string(), "{token}");
}

#[tokio::test]
async fn users_are_provisioned_promoted_and_disabled_but_the_last_admin_stays() {
    let hub = hub().await;
    let admin = hub.signed_in("admin@example.com", Role::Admin).await;
    let response = admin.post_form("/admin/users", &[("email", "New.Person@Example.com"), ("role", "manager")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap());
    let html = admin.html("/admin/users").await;
    assert!(html.contains("new.person@example.com"), "{html}");
    let users = json(&admin, "/api/v1/users").await;
    let find = |email: &str| {
        users["items"].as_array().unwrap().iter().find(|u| u["email"] == email).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (new, me) = (find("new.person@example.com"), find("admin@example.com"));
    let duplicate = admin.post_form("/admin/users", &[("email", "new.person@example.com"), ("role", "user")]).await;
    assert_eq!(duplicate.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(duplicate.text().await.unwrap().contains("already exists"));
    let bad = admin.post_form("/admin/users", &[("email", "not-an-email"), ("role", "user")]).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.unwrap().contains(r#"id="email-error""#));

    assert_eq!(
        admin.post_form(&format!("/admin/users/{new}"), &[("role", "admin")]).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        admin.post_form(&format!("/admin/users/{new}"), &[("disabled", "true")]).await.status(),
        StatusCode::SEE_OTHER
    );
    let users = json(&admin, "/api/v1/users").await;
    let new_user = users["items"].as_array().unwrap().iter().find(|u| u["id"] == new.as_str()).unwrap().clone();
    assert_eq!((new_user["role"].as_str(), new_user["disabled"].as_bool()), (Some("admin"), Some(true)));
    // The only enabled admin cannot disable or demote themselves.
    let refused = admin.post_form(&format!("/admin/users/{me}"), &[("disabled", "true")]).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text().await.unwrap().contains("last enabled admin"));
    let refused = admin.post_form(&format!("/admin/users/{me}"), &[("role", "user")]).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(admin.me().await.is_ok());
    let actions = hub.audit_actions().await;
    assert_eq!(actions.iter().filter(|a| *a == "user.created").count(), 1);
    assert_eq!(actions.iter().filter(|a| *a == "user.updated").count(), 2);
}

#[tokio::test]
async fn the_audit_page_filters_pages_and_shows_the_chain_status() {
    let hub = hub().await;
    let admin = hub.signed_in("admin@example.com", Role::Admin).await;
    for name in ["a", "b", "c"] {
        environment(&admin, name).await;
    }
    let html = admin.html("/audit").await;
    assert!(html.contains(r#"id="chain-status""#) && html.contains("Chain intact"), "{html}");
    // A link cannot make a page say something: only names and fixed sentences are shown back.
    for path in [
        "/admin/environments?saved=Your%20hub%20was%20moved%2C%20sign%20in%20at%20evil.example",
        "/admin/targets?saved=Your%20hub%20was%20moved&deleted=sign%20in%20at%20evil.example",
    ] {
        let html = admin.html(path).await;
        assert!(!html.contains("evil.example") && !html.contains("hub was moved"), "{path}: {html}");
    }
    let html = admin.html("/audit?action=environment").await;
    assert_eq!(html.matches("<code>environment.create</code>").count(), 3, "{html}");
    // Each event reads as who, what and about what: the object links to its page, the details are pairs.
    assert!(html.contains(r#"href="/admin/environments/"#) && html.contains("<dt>name</dt><dd>a</dd>"), "{html}");
    assert!(html.contains(r#"<span class="muted">signed in</span>"#), "{html}");
    assert!(html.contains(r#"href="/audit?action=environment.create""#), "{html}");
    assert!(!html.contains("<code>auth.login"), "{html}");
    let html = admin.html("/audit?action=environment&before=2000-01-01T00:00").await;
    assert!(html.contains("No events match."));
    let bad = admin.client.get(format!("{}/audit?from=yesterday", hub.url)).send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.unwrap().contains(r#"value="yesterday""#));

    // A broken chain is named by its first broken row.
    sqlx::query("ALTER TABLE audit_events DISABLE TRIGGER USER").execute(&hub.db.pool).await.unwrap();
    let second: i64 = sqlx::query_scalar("SELECT id FROM audit_events ORDER BY id OFFSET 1 LIMIT 1")
        .fetch_one(&hub.db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_events SET action = 'environment.update' WHERE id = $1")
        .bind(second)
        .execute(&hub.db.pool)
        .await
        .unwrap();
    let html = admin.html("/audit").await;
    assert!(html.contains(&format!("Chain broken at event {second}")), "{html}");
}

#[tokio::test]
async fn admin_pages_are_refused_to_users_and_managers() {
    let hub = hub().await;
    let admin = hub.signed_in("admin@example.com", Role::Admin).await;
    let env = environment(&admin, "prod").await;
    for role in [Role::User, Role::Manager] {
        let browser = hub.signed_in(&format!("{role}@example.com"), role).await;
        for path in [
            "/admin/environments".to_owned(),
            format!("/admin/environments/{env}"),
            format!("/admin/targets?environment_id={env}"),
            "/admin/db-sets".to_owned(),
            "/admin/users".to_owned(),
            "/audit".to_owned(),
        ] {
            let response =
                browser.client.get(format!("{}{path}", hub.url)).header("accept", "text/html").send().await.unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{role} GET {path}");
            assert!(response.text().await.unwrap().contains("Not allowed"));
        }
        for path in ["/admin/environments", "/admin/targets", "/admin/db-sets", "/admin/users"] {
            let response = browser.post_form(path, &[("name", "sneaky"), ("email", "x@example.com")]).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{role} POST {path}");
        }
        let response =
            browser.post_form(&format!("/admin/environments/{env}"), &[("approval_required", "false")]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        // Their own tokens page is theirs, without the admin links.
        let html = browser.html("/tokens").await;
        assert!(!html.contains(r#"href="/admin/users""#));
    }
    let actions = hub.audit_actions().await;
    assert!(!actions.iter().any(|a| a.starts_with("user.") || a == "environment.update"), "{actions:?}");
}

#[tokio::test]
async fn a_targets_history_is_read_on_its_page_and_through_the_api_with_its_dirty_rows() {
    use executor::apply::{ApplyOptions, Migration, Silent, apply};
    use executor::history::HistoryTable;
    use executor::target::{LockSession, SessionLimits, TargetConnection};
    let hub = hub().await;
    let admin = hub.signed_in("admin@example.com", Role::Admin).await;
    let env = environment(&admin, "dev").await;
    let pg = migrate_hub_tests::PgDatabase::fresh().await;
    let id = target(&admin, &env, "orders", &pg.url, Some(TARGET_PASSWORD)).await;
    // Before anything was applied: the table is not there, said so.
    let api = crate::api::api_for(&hub, "ops@example.com", Role::Admin).await;
    let project = api
        .ok(reqwest::Method::POST, "/api/v1/projects", serde_json::json!({"name": "shop"}), StatusCode::CREATED)
        .await;
    let project_id = project["id"].as_str().unwrap().to_owned();
    let empty = api.get(&format!("/api/v1/targets/{id}/history")).await;
    assert_eq!((empty["outcome"].as_str(), empty["tables"][0]["exists"].as_bool()), (Some("read"), Some(false)));

    // One version applied, the next stopped at its second statement outside a transaction (the project's
    // rows, as a worker writes them).
    let settings = executor::local::settings_from_url(&pg.url).unwrap();
    let mut conn = TargetConnection::connect(&settings, LockSession::Work).await.unwrap();
    let options = ApplyOptions {
        history: HistoryTable {
            schema: None,
            table: domain::values::Identifier::parse("migrate_hub_history").unwrap(),
            project: project_id.clone(),
        },
        lock_name: "t".into(),
        lock_wait: std::time::Duration::from_secs(2),
        limits: SessionLimits { lock_timeout: std::time::Duration::from_secs(5), statement_timeout: None },
        allow_out_of_order: false,
        earlier_versions: Vec::new(),
        run_id: Some("0190a0a0-0000-7000-8000-000000000001".into()),
        worker: "w1".into(),
        lock_retries: executor::apply::LockRetries::NONE,
        stop_at: None,
    };
    let (v1, v2) =
        (domain::values::VersionKey::parse("0001").unwrap(), domain::values::VersionKey::parse("0002").unwrap());
    let migration = |version, sql: &str, statements: &[&str], mode| Migration {
        version,
        name: "m",
        up_checksum: domain::checksum::Checksum::of(sql),
        direction: domain::enums::Direction::Up,
        statements: statements.iter().map(|s| (*s).to_owned()).collect(),
        transaction_mode: mode,
    };
    use domain::enums::TransactionMode;
    apply(
        &mut conn,
        &migration(&v1, "a", &["CREATE TABLE a (id int)"], TransactionMode::Transaction),
        &options,
        &mut Silent,
    )
    .await
    .unwrap();
    let half = migration(&v2, "b", &["CREATE TABLE b (id int)", "SELECT 1/0"], TransactionMode::None);
    apply(&mut conn, &half, &ApplyOptions { earlier_versions: vec![v1.clone()], ..options.clone() }, &mut Silent)
        .await
        .unwrap_err();
    conn.close().await;

    let read = api.get(&format!("/api/v1/targets/{id}/history")).await;
    let rows = read["tables"][0]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{read}");
    assert_eq!(
        (rows[0]["version"].as_str(), rows[0]["status"].as_str(), rows[0]["dirty"].as_bool()),
        (Some("0001"), Some("applied"), Some(false))
    );
    assert_eq!(rows[0]["project_name"], "shop");
    assert_eq!(rows[0]["run_id"], "0190a0a0-0000-7000-8000-000000000001");
    assert_eq!(
        (rows[1]["status"].as_str(), rows[1]["dirty"].as_bool(), rows[1]["statements_done"].as_i64()),
        (Some("failed"), Some(true), Some(1))
    );
    assert!(rows[1]["error"].as_str().unwrap().contains("up failed at statement 2"), "{read}");
    assert!(!read.to_string().contains(TARGET_PASSWORD));

    // The page shows it, the dirty row marked with the way out.
    let page = admin.post_form(&format!("/admin/targets/{id}/history"), &[]).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains(r#"id="target-history""#) && page.contains("Dirty: 0002"), "{page}");
    assert!(page.contains("migrate-hub repair --version V"), "{page}");
    assert!(page.contains("Nobody holds the target lock now."), "{page}");
    assert!(!page.contains(TARGET_PASSWORD));
    // The dirty row's recovery is requested from the page: refused while the form names another row than
    // the one on the target, made (and shown with the row as read) when it names that one.
    assert!(page.contains("Request recovery") && page.contains(r#"id="adopt""#), "{page}");
    let files = serde_json::json!({"files": [
        {"path": "0001_m.sql", "content": "CREATE TABLE a (id int);"},
        {"path": "0002_m.sql", "content": "CREATE TABLE b (id int);"},
    ]});
    api.ok(reqwest::Method::POST, &format!("/api/v1/projects/{project_id}/import"), files, StatusCode::OK).await;
    let checksum = domain::checksum::Checksum::of("b").to_hex();
    let recovery = |done: &'static str| {
        vec![
            ("kind", "recovery".to_owned()),
            ("project_id", project_id.clone()),
            ("version_key", "0002".to_owned()),
            ("seen_statements_done", done.to_owned()),
            ("seen_checksum", checksum.clone()),
            ("resolution", "mark_applied".to_owned()),
        ]
    };
    let fields = |pairs: &[(&'static str, String)]| pairs.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>();
    let stale = fields(&recovery("0"));
    let stale: Vec<(&str, &str)> = stale.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = admin.post_form(&format!("/admin/targets/{id}/request"), &stale).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused = refused.text().await.unwrap();
    assert!(refused.contains("There is a problem") && refused.contains("failed at statement 1 of 2"), "{refused}");
    let current = fields(&recovery("1"));
    let current: Vec<(&str, &str)> = current.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let made = admin.post_form(&format!("/admin/targets/{id}/request"), &current).await;
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
    let run_page = made.headers()["location"].to_str().unwrap().to_owned();
    let shown = admin.html(&run_page).await;
    assert!(shown.contains("Recovery (mark applied)") && shown.contains("failed at statement 1 of 2"), "{shown}");
    // The SQL review of what the run pins is on the run's page, for whoever approves.
    let review = shown.split(r#"id="review""#).nth(1).unwrap_or_default();
    assert!(review.contains("prefer-bigint-over-int") && review.contains("0002"), "{shown}");
    // A session holding the hub's lock on the target (a worker applying, or one stuck) is named.
    let mut holder = TargetConnection::connect(&settings, LockSession::Work).await.unwrap();
    let target_id: domain::ids::TargetId = id.parse().unwrap();
    let lock = executor::queue::target_lock_name(target_id);
    assert!(holder.lock(&lock, std::time::Duration::ZERO).await.unwrap());
    let held = api.get(&format!("/api/v1/targets/{id}/history")).await;
    let named = held["lock_holder"].as_str().unwrap_or_default();
    assert!(named.starts_with("server process ") && named.contains("of migrate-hub"), "{held}");
    holder.close().await;

    // A MariaDB target the same way.
    let my = migrate_hub_tests::MySqlDatabase::fresh().await;
    let body = crate::api::target_body(&env, "orders-my", "mysql", &my.url, None);
    let created = api.ok(reqwest::Method::POST, "/api/v1/targets", body, StatusCode::CREATED).await;
    let my_id = created["id"].as_str().unwrap().to_owned();
    let settings = executor::local::settings_from_url(&my.url).unwrap();
    let mut conn = TargetConnection::connect(&settings, LockSession::Work).await.unwrap();
    let half = migration(&v2, "b", &["CREATE TABLE b (id int)", "SELECT * FROM nowhere"], TransactionMode::None);
    apply(&mut conn, &half, &options, &mut Silent).await.unwrap_err();
    conn.close().await;
    let read = api.get(&format!("/api/v1/targets/{my_id}/history")).await;
    let rows = read["tables"][0]["rows"].as_array().unwrap();
    assert_eq!((rows[0]["version"].as_str(), rows[0]["dirty"].as_bool()), (Some("0002"), Some(true)), "{read}");
    assert_eq!(rows[0]["checksum"].as_str().unwrap(), domain::checksum::Checksum::of("b").to_hex(), "{read}");
    assert!(rows[0]["started_at"].as_str().unwrap().ends_with('Z'), "{read}");

    // Audited with the outcome, not the rows; not for managers, through the page or the API.
    let details: Vec<Value> =
        sqlx::query_scalar("SELECT details FROM audit_events WHERE action = 'target.read_history' ORDER BY id")
            .fetch_all(&hub.db.pool)
            .await
            .unwrap();
    assert_eq!(details.len(), 5);
    assert_eq!((details[2]["ok"].clone(), details[2]["dirty"].clone()), (Value::Bool(true), Value::from(1)));
    let manager = hub.signed_in("manager@example.com", Role::Manager).await;
    assert_eq!(manager.post_form(&format!("/admin/targets/{id}/history"), &[]).await.status(), StatusCode::FORBIDDEN);
    let boss = crate::api::api_for(&hub, "boss@example.com", Role::Manager).await;
    let (status, _) = boss.call(reqwest::Method::GET, &format!("/api/v1/targets/{id}/history"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_manager_creates_a_project_and_sets_its_sql_review_through_the_pages() {
    let hub = hub().await;
    let manager = hub.signed_in("manager@example.com", Role::Manager).await;
    let user = hub.signed_in("user@example.com", Role::User).await;
    // A hub with no run shows the way on the dashboard, with nothing done yet.
    let dashboard = manager.html("/").await;
    assert!(dashboard.contains(r#"<h2 id="getting-started">Getting started</h2>"#), "{dashboard}");
    assert_eq!(dashboard.matches(r#"<li class="todo">"#).count(), 6, "{dashboard}");
    // The migrations page sends a newcomer to the projects page, whose form starts with both dialects.
    assert!(manager.html("/migrations").await.contains(r#"<a href="/projects">Projects</a>"#));
    let form = manager.html("/projects").await;
    assert!(form.contains(r#"value="postgres" checked"#) && form.contains(r#"value="mysql" checked"#), "{form}");
    assert!(form.contains(r#"value="migrate_hub_history""#), "{form}");

    // A bad rule name is refused next to its field, and what was typed is kept.
    let fields = [
        ("name", "orders"),
        ("description", "the orders service"),
        ("history_table", "orders_history"),
        ("dialects", "postgres"),
        ("lint_rules_off", "prefer-text-field, syntax-error"),
    ];
    let refused = manager.post_form("/projects", &fields).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused = refused.text().await.unwrap();
    assert!(refused.contains(r#"id="lint_rules_off""#) && refused.contains("syntax errors cannot be"), "{refused}");
    assert!(refused.contains("the orders service"), "{refused}");

    let mut fields = fields;
    fields[4] = ("lint_rules_off", "prefer-text-field\nprefer-bigint-over-int");
    let created = manager.post_form("/projects", &fields).await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&created), "/projects?saved=orders");
    let dashboard = manager.html("/").await;
    let done: Vec<&str> =
        dashboard.split(r#"<li class="done">"#).skip(1).map(|s| s.split("</li>").next().unwrap()).collect();
    assert_eq!(done.len(), 1, "{dashboard}");
    assert!(done[0].contains("A project") && done[0].contains(r#"href="/projects""#), "{dashboard}");
    let projects = json(&manager, "/api/v1/projects").await;
    let project = &projects["items"][0];
    assert_eq!(
        (&project["history_table"], &project["dialects"], &project["lint_rules_off"]),
        (&json!("orders_history"), &json!(["postgres"]), &json!(["prefer-bigint-over-int", "prefer-text-field"])),
        "{project}"
    );
    let path = format!("/projects/{}", project["id"].as_str().unwrap());

    // Its page edits the dialects and rules; no dialect at all is refused.
    let none = manager.post_form(&path, &[("description", "orders"), ("lint_rules_off", "")]).await;
    assert_eq!(none.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(none.text().await.unwrap().contains("name at least one dialect"));
    let saved =
        manager.post_form(&path, &[("description", "orders"), ("dialects", "mysql"), ("dialects", "postgres")]).await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let project = json(&manager, &format!("/api/v1{path}")).await;
    assert_eq!((&project["dialects"], &project["lint_rules_off"]), (&json!(["postgres", "mysql"]), &json!([])));
    // Anyone signed in sees it; only a manager may change it.
    let read_only = user.html(&path).await;
    assert!(
        read_only.contains("Written for postgres and mysql.") && !read_only.contains("Save project"),
        "{read_only}"
    );
    let denied = user.post_form(&path, &[("description", "mine"), ("dialects", "postgres")]).await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
}

/// A multipart/form-data body as a browser sends a folder upload: the CSRF field, then one part per file
/// (its name is its path in the chosen folder), then the choices.
fn multipart(csrf: Option<&str>, files: &[(&str, &str, &[u8])], fields: &[(&str, &str)]) -> (String, Vec<u8>) {
    let boundary = "----migrate-hub-test-boundary";
    let mut body = Vec::new();
    let mut text = |name: &str, value: &str| {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    };
    if let Some(csrf) = csrf {
        text("csrf_token", csrf);
    }
    for (name, value) in fields {
        text(name, value);
    }
    for (field, path, content) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{path}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(browser: &Browser, path: &str, (content_type, body): (String, Vec<u8>)) -> (StatusCode, String) {
    let response = browser
        .client
        .post(format!("{}{path}", browser.hub))
        .header(reqwest::header::ORIGIN, &browser.hub)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .header(reqwest::header::ACCEPT, "text/html")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn a_directory_is_imported_by_upload_as_a_folder_or_a_zip() {
    let hub = hub().await;
    let manager = hub.signed_in("manager@example.com", Role::Manager).await;
    let created = manager.post_form("/projects", &[("name", "shop"), ("dialects", "postgres")]).await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let projects = json(&manager, "/api/v1/projects").await;
    let project = projects["items"][0]["id"].as_str().unwrap().to_owned();
    let page = manager.html(&format!("/projects/{project}")).await;
    assert!(page.contains(&format!(r#"href="/projects/{project}/import""#)), "{page}");
    let form = manager.html(&format!("/projects/{project}/import")).await;
    assert!(form.contains(r#"enctype="multipart/form-data""#) && form.contains("data-directory"), "{form}");
    let path = format!("/projects/{project}/import");
    let csrf = manager.csrf().await;
    let folder: [(&str, &str, &[u8]); 5] = [
        ("files", "migrations/001_users.up.sql", b"CREATE TABLE users (id bigint PRIMARY KEY);"),
        ("files", "migrations/001_users.down.sql", b"DROP TABLE users;"),
        ("files", "migrations/002_orders.up.sql", b"CREATE TABLE orders (id bigint PRIMARY KEY);"),
        ("files", "migrations/002_orders.down.sql", b"DROP TABLE orders;"),
        ("files", "migrations/.DS_Store", b"\x00\x01"),
    ];

    // Without the CSRF field the upload is refused and nothing is imported.
    let (status, _) = upload(&manager, &path, multipart(None, &folder, &[("layout", "auto")])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, page) = upload(&manager, &path, multipart(Some(&csrf), &folder, &[("layout", "auto")])).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("2 created, 0 with a new version, 0 unchanged"), "{page}");
    assert!(page.contains("<code>migrations/.DS_Store</code>: hidden or a macOS copy"), "{page}");
    let migrations = json(&manager, &format!("/api/v1/migrations?project_id={project}")).await;
    let keys: Vec<&str> =
        migrations["items"].as_array().unwrap().iter().map(|m| m["version_key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["001", "002"]);

    // The same folder as a .zip: unchanged, but 002 edited: a new version.
    let zipped = {
        use std::io::Write;
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (_, name, content) in &folder[..4] {
            zip.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            let content: &[u8] = if name.ends_with("002_orders.up.sql") {
                b"CREATE TABLE orders (id bigint PRIMARY KEY, total numeric);"
            } else {
                content
            };
            zip.write_all(content).unwrap();
        }
        zip.finish().unwrap().into_inner()
    };
    let archive: [(&str, &str, &[u8]); 1] = [("archive", "migrations.zip", &zipped)];
    let (status, page) = upload(&manager, &path, multipart(Some(&csrf), &archive, &[])).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("0 created, 1 with a new version, 1 unchanged"), "{page}");

    // A file the layout does not read stops the import, named, unless allowed.
    let stray: [(&str, &str, &[u8]); 2] =
        [("files", "m/003_items.up.sql", b"CREATE TABLE items (id int);"), ("files", "m/README.md", b"# notes")];
    let (status, page) = upload(&manager, &path, multipart(Some(&csrf), &stray, &[])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("README.md"), "{page}");
    let allowed = multipart(Some(&csrf), &stray, &[("allow_unknown_files", "true")]);
    let (status, page) = upload(&manager, &path, allowed).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("1 created") && page.contains("<code>README.md</code>"), "{page}");
    // Nothing chosen: said so.
    let (status, page) = upload(&manager, &path, multipart(Some(&csrf), &[("files", "", b"")], &[])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("choose a folder or a .zip"), "{page}");
}
