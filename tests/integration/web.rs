//! The web UI over HTTP, without a browser: forms keep what was typed and show each problem next to its
//! field, the run page disables approve for the requester with the reason and enables it for a manager,
//! actions post to the same use cases as the API (and their audit events say so), a refused action is shown
//! on the page, and errors a browser sees are HTML pages with the request id. (`browser.rs` drives the same
//! story in Chromium.)

use domain::enums::Role;
use migrate_hub_tests::PgDatabase;
use migrate_hub_tests::oidc::Provider;
use reqwest::header::{ACCEPT, ORIGIN};
use reqwest::{Method, Response, StatusCode};
use serde_json::json;

use crate::api::{api_for, target_body};
use crate::hub::{Browser, Hub, HubOptions};

/// A page as a browser asks for it.
async fn page(browser: &Browser, path: &str) -> (StatusCode, String) {
    let response =
        browser.client.get(format!("{}{path}", browser.hub)).header(ACCEPT, "text/html").send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// Posts a form as the hub's pages do (same origin, CSRF field).
async fn post_form(browser: &Browser, path: &str, fields: &[(&str, &str)]) -> Response {
    let csrf = browser.csrf().await;
    let mut body: Vec<(&str, &str)> = fields.to_vec();
    body.push(("csrf_token", &csrf));
    browser
        .client
        .post(format!("{}{path}", browser.hub))
        .header(ORIGIN, &browser.hub)
        .header(ACCEPT, "text/html")
        .form(&body)
        .send()
        .await
        .unwrap()
}

fn location(response: &Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The text between `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("no {start:?} in the page:\n{text}")) + start.len();
    let rest = &text[from..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

async fn signed_in(hub: &Hub, provider: &Provider, email: &str) -> Browser {
    let browser = hub.browser();
    provider.next(json!({ "sub": format!("{email}-sub"), "email": email })).await;
    browser.sign_in().await;
    browser
}

#[tokio::test]
async fn the_request_and_approval_story_through_the_pages() {
    let provider = Provider::start().await;
    let hub = Hub::start(HubOptions::oidc(&provider)).await;
    let target_db = PgDatabase::fresh().await;
    let admin = api_for(&hub, "admin@example.com", Role::Admin).await;
    hub.user("alice@example.com", Role::User).await;
    hub.user("bob@example.com", Role::Manager).await;
    let env = admin
        .ok(
            Method::POST,
            "/api/v1/environments",
            json!({ "name": "prod", "approval_required": true }),
            StatusCode::CREATED,
        )
        .await;
    let env_id = env["id"].as_str().unwrap().to_owned();
    let target = admin
        .ok(
            Method::POST,
            "/api/v1/targets",
            target_body(&env_id, "pg-one", "postgres", &target_db.url, None),
            StatusCode::CREATED,
        )
        .await;
    let set = admin
        .ok(
            Method::POST,
            "/api/v1/db-sets",
            json!({ "environment_id": env_id, "name": "all", "target_ids": [target["id"]] }),
            StatusCode::CREATED,
        )
        .await;
    let project = admin.ok(Method::POST, "/api/v1/projects", json!({ "name": "shop" }), StatusCode::CREATED).await;
    let project_id = project["id"].as_str().unwrap();

    // Not signed in: a browser is sent to the login page, an API client gets 401.
    let anonymous = hub.browser();
    let response = anonymous.client.get(format!("{}/runs", hub.url)).header(ACCEPT, "text/html").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login");
    assert_eq!(anonymous.get("/runs").await.status(), StatusCode::UNAUTHORIZED);

    let alice = signed_in(&hub, &provider, "alice@example.com").await;
    let (status, dashboard) = page(&alice, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(dashboard.contains("<h1>Dashboard</h1>"), "{dashboard}");
    assert!(!dashboard.contains("Awaiting your approval"), "a user approves nothing");

    // A refused form comes back with the problem next to its field and everything typed still there.
    let up = "CREATE TABLE orders (\n  id bigint PRIMARY KEY,\n  note text DEFAULT 'a < b & \"c\"'\n);\n";
    let fields = [
        ("project_id", project_id),
        ("version_key", ""),
        ("name", "create orders"),
        ("up_sql", up),
        ("down_sql", "DROP TABLE orders;"),
        ("transaction_mode", "transaction"),
    ];
    let response = post_form(&alice, "/migrations/new", &fields).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let form = response.text().await.unwrap();
    assert!(form.contains(r#"<p class="field-error" id="version_key-error">enter the version key</p>"#), "{form}");
    assert!(form.contains("aria-invalid=\"true\""), "{form}");
    assert!(
        form.contains("note text DEFAULT &#39;a &lt; b &amp; &quot;c&quot;&#39;")
            || form.contains("note text DEFAULT 'a &lt; b &amp; &quot;c&quot;'"),
        "{form}"
    );
    assert!(form.contains(r#"value="create orders""#), "{form}");

    // A value the use case refuses lands next to its field too.
    let mut bad_key = fields;
    bad_key[1] = ("version_key", "no spaces allowed");
    let response = post_form(&alice, "/migrations/new", &bad_key).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let form = response.text().await.unwrap();
    assert!(form.contains(r#"id="version_key-error""#), "{form}");

    let mut good = fields;
    good[1] = ("version_key", "20261121_0001");
    let response = post_form(&alice, "/migrations/new", &good).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap());
    let migration_path = location(&response);
    let migration_id = migration_path.trim_start_matches("/migrations/").to_owned();
    let (status, detail) = page(&alice, &migration_path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(detail.contains(r#"<span class="kw">CREATE</span>"#), "highlighted SQL: {detail}");
    assert_eq!(detail.matches(r#"<span class="line">"#).count(), 4 + 1, "one numbered line per SQL line");
    assert!(detail.contains("<ol class=\"statements\">"), "{detail}");

    // Request the run with a bad concurrency first: the form keeps the choices.
    let (_, form) = page(&alice, &format!("/runs/new?migration_id={migration_id}")).await;
    let key = between(&form, r#"name="idempotency_key" value=""#, "\"").to_owned();
    let env_id_s = env_id.as_str();
    let set_id = set["id"].as_str().unwrap();
    let mut run_fields = vec![
        ("migration_id", migration_id.as_str()),
        ("version", "1"),
        ("idempotency_key", key.as_str()),
        ("environment_id", env_id_s),
        ("db_set_id", set_id),
        ("direction", "up"),
        ("failure_policy", "stop_on_first_failure"),
        ("concurrency_limit", "0"),
        ("comment", "ship it"),
    ];
    let response = post_form(&alice, "/runs/new", &run_fields).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let form = response.text().await.unwrap();
    assert!(form.contains(r#"id="concurrency_limit-error""#), "{form}");
    assert!(form.contains(&format!(r#"<option value="{set_id}" selected>"#)), "{form}");
    assert!(form.contains(">ship it</textarea>"), "{form}");
    run_fields[7] = ("concurrency_limit", "2");
    let response = post_form(&alice, "/runs/new", &run_fields).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let run_path = location(&response);
    // The same form posted again (a double click) is the same run.
    let again = post_form(&alice, "/runs/new", &run_fields).await;
    assert_eq!(location(&again), run_path);

    // The requester sees approve disabled, with the reason.
    let (_, run_page) = page(&alice, &run_path).await;
    let approve = between(&run_page, r#"<button type="submit" disabled"#, "</button>");
    assert!(approve.ends_with(">Approve"), "{approve}");
    assert!(run_page.contains("The requester of a run cannot approve it or deny it."), "{run_page}");
    assert!(run_page.contains(r#"id="run-status""#), "{run_page}");
    // Posting anyway is refused by the use case, shown on the page, and audited.
    let response = post_form(&alice, &format!("{run_path}/approve"), &[("comment", "me"), ("version", "1")]).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let refused = response.text().await.unwrap();
    assert!(refused.contains("class=\"problems\""), "{refused}");
    assert!(hub.audit_actions().await.contains(&"run.approve_refused".to_owned()));

    // The manager sees it on the dashboard, approves and executes.
    let bob = signed_in(&hub, &provider, "bob@example.com").await;
    let (_, dashboard) = page(&bob, "/").await;
    assert!(between(&dashboard, "Awaiting your approval", "</section>").contains(&run_path), "{dashboard}");
    let (_, run_page) = page(&bob, &run_path).await;
    assert!(!run_page.contains(r#"<button type="submit" disabled aria-describedby="decision-reason">Approve"#));
    let response =
        post_form(&bob, &format!("{run_path}/approve"), &[("comment", "looks right"), ("version", "1")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap());
    let response = post_form(&bob, &format!("{run_path}/execute"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap());
    let (_, live) = page(&bob, &format!("{run_path}/live")).await;
    assert!(live.contains(r#"<table id="items">"#), "{live}");
    assert!(live.contains("pg-one"), "{live}");
    let actions = hub.audit_actions().await;
    for action in ["migration.create", "run.request", "run.approve", "run.execute"] {
        assert!(actions.contains(&action.to_owned()), "{action} not in {actions:?}");
    }

    // Lists and the version pages render.
    for path in ["/runs", "/runs?status=queued&mine=1", "/migrations", &format!("{migration_path}/versions/new")] {
        let (status, body) = page(&bob, path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
}

#[tokio::test]
async fn a_browser_gets_html_error_pages_with_the_request_id() {
    let provider = Provider::start().await;
    let hub = Hub::start(HubOptions::oidc(&provider)).await;
    hub.user("carol@example.com", Role::User).await;
    let carol = signed_in(&hub, &provider, "carol@example.com").await;

    let response =
        carol.client.get(format!("{}/no-such-page", hub.url)).header(ACCEPT, "text/html").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let body = response.text().await.unwrap();
    assert!(body.contains("<h1>Not found</h1>"), "{body}");
    let id = between(&body, r#"<code class="request-id">"#, "</code>");
    assert!(id.len() >= 8, "a request id: {id:?}");

    // A run that does not exist, and a page above the viewer's role.
    let (status, body) = page(&carol, "/runs/0190f0a0-0000-7000-8000-000000000000").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("Run not found.") || body.contains("run not found"), "{body}");
    let (status, body) = page(&carol, "/audit").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("<h1>Not allowed</h1>") && body.contains("request-id"), "{body}");

    // The API keeps answering JSON.
    let response = carol.get("/api/v1/nothing-here").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
}
