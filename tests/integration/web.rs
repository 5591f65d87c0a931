//! The web UI over HTTP, without a browser: forms keep what was typed and show each problem next to its
//! field, the run page disables approve for the requester with the reason and enables it for a manager,
//! actions post to the same use cases as the API (and their audit events say so), a refused action is shown
//! on the page, and errors a browser sees are HTML pages with the request id. Releases: the request form
//! of a project previews what it would pin and what pre-flight finds, and requests one run of the release;
//! an edit makes a run stale until it is refreshed (and approved again); a failed run is retried from its
//! page. (`browser.rs` drives the first story in Chromium.)

use domain::enums::Role;
use migrate_hub_tests::PgDatabase;
use migrate_hub_tests::oidc::Provider;
use reqwest::header::ACCEPT;
use reqwest::{Method, Response, StatusCode};
use serde_json::json;

use crate::api::{Api, api_for, target_body};
use crate::hub::{Browser, Hub, HubOptions, location};

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
    let (status, dashboard) = alice.page("/").await;
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
    let response = alice.post_form("/migrations/new", &fields).await;
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
    let response = alice.post_form("/migrations/new", &bad_key).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let form = response.text().await.unwrap();
    assert!(form.contains(r#"id="version_key-error""#), "{form}");

    let mut good = fields;
    good[1] = ("version_key", "20261121_0001");
    let response = alice.post_form("/migrations/new", &good).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap());
    let migration_path = location(&response);
    let migration_id = migration_path.trim_start_matches("/migrations/").to_owned();
    let (status, detail) = alice.page(&migration_path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(detail.contains(r#"<span class="kw">CREATE</span>"#), "highlighted SQL: {detail}");
    assert_eq!(detail.matches(r#"<span class="line">"#).count(), 4 + 1, "one numbered line per SQL line");
    assert!(detail.contains("<ol class=\"statements\">"), "{detail}");

    // Request the run with a bad concurrency first: the form keeps the choices.
    let (_, form) = alice.page(&format!("/runs/new?migration_id={migration_id}")).await;
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
    let response = alice.post_form("/runs/new", &run_fields).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let form = response.text().await.unwrap();
    assert!(form.contains(r#"id="concurrency_limit-error""#), "{form}");
    assert!(form.contains(&format!(r#"<option value="{set_id}" selected>"#)), "{form}");
    assert!(form.contains(">ship it</textarea>"), "{form}");
    run_fields[7] = ("concurrency_limit", "2");
    let response = alice.post_form("/runs/new", &run_fields).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let run_path = location(&response);
    // The same form posted again (a double click) is the same run.
    let again = alice.post_form("/runs/new", &run_fields).await;
    assert_eq!(location(&again), run_path);

    // The requester sees approve disabled, with the reason.
    let (_, run_page) = alice.page(&run_path).await;
    let approve = between(&run_page, r#"<button type="submit" disabled"#, "</button>");
    assert!(approve.ends_with(">Approve"), "{approve}");
    assert!(run_page.contains("The requester of a run cannot approve it or deny it."), "{run_page}");
    assert!(run_page.contains(r#"id="run-status""#), "{run_page}");
    // The single-migration run page names the migration, and the decision form pins the content checksum.
    assert!(run_page.contains("up release of shop: <code>20261121_0001</code> create orders"), "{run_page}");
    let content = between(&run_page, r#"<code id="content-checksum">"#, "<").to_owned();
    assert!(run_page.contains(&format!(r#"name="content_checksum" value="{content}""#)), "{run_page}");
    // Posting anyway is refused by the use case, shown on the page, and audited.
    let response =
        alice.post_form(&format!("{run_path}/approve"), &[("comment", "me"), ("content_checksum", &content)]).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let refused = response.text().await.unwrap();
    assert!(refused.contains("class=\"problems\""), "{refused}");
    assert!(hub.audit_actions().await.contains(&"run.approve_refused".to_owned()));

    // The manager sees it on the dashboard, approves and executes.
    let bob = signed_in(&hub, &provider, "bob@example.com").await;
    let (_, dashboard) = bob.page("/").await;
    assert!(between(&dashboard, "Awaiting your approval", "</section>").contains(&run_path), "{dashboard}");
    let (_, run_page) = bob.page(&run_path).await;
    assert!(!run_page.contains(r#"<button type="submit" disabled aria-describedby="decision-reason">Approve"#));
    // A checksum other than the pinned one is refused: the approver reviewed other content.
    let response = bob
        .post_form(&format!("{run_path}/approve"), &[("comment", "stale"), ("content_checksum", &"0".repeat(64))])
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let response = bob
        .post_form(&format!("{run_path}/approve"), &[("comment", "looks right"), ("content_checksum", &content)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap());
    let response = bob.post_form(&format!("{run_path}/execute"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // Back on the run page, at the grid, with a confirmation beside it.
    let to = location(&response);
    assert_eq!(to, format!("{run_path}?executed=1#executed"));
    let (_, executed) = bob.page(to.trim_end_matches("#executed")).await;
    let notice = between(&executed, r#"<p class="success" id="executed" role="status">"#, "</p>");
    assert!(notice.starts_with("Executed: the run is queued"), "{notice}");
    let (_, live) = bob.page(&format!("{run_path}/live")).await;
    assert!(live.contains(r#"<table id="items">"#), "{live}");
    assert!(live.contains("pg-one"), "{live}");
    let actions = hub.audit_actions().await;
    for action in ["migration.create", "run.request", "run.approve", "run.execute"] {
        assert!(actions.contains(&action.to_owned()), "{action} not in {actions:?}");
    }

    // The runs list shows a one-migration release as that migration and its version.
    let (_, list) = bob.page("/runs").await;
    assert!(list.contains("<code>20261121_0001</code></a> create orders <span class=\"muted\">v1</span>"), "{list}");

    // Lists and the version pages render.
    for path in ["/runs", "/runs?status=queued&mine=1", "/migrations", &format!("{migration_path}/versions/new")] {
        let (status, body) = bob.page(path).await;
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
    let (status, body) = carol.page("/runs/0190f0a0-0000-7000-8000-000000000000").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("Run not found.") || body.contains("run not found"), "{body}");
    let (status, body) = carol.page("/audit").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("<h1>Not allowed</h1>") && body.contains("request-id"), "{body}");

    // The API keeps answering JSON.
    let response = carol.get("/api/v1/nothing-here").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
}

/// A hub with an environment, one Postgres target (`pg-one`, no variables) in a set `all`, and a project
/// `shop`; alice (user) and bob (manager) signed in.
struct Shop {
    hub: Hub,
    _provider: Provider,
    _target_db: PgDatabase,
    admin: Api,
    env_id: String,
    set_id: String,
    project_id: String,
    alice: Browser,
    bob: Browser,
}

impl Shop {
    async fn start(approval_required: bool) -> Self {
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
                json!({ "name": "prod", "approval_required": approval_required }),
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
        let alice = signed_in(&hub, &provider, "alice@example.com").await;
        let bob = signed_in(&hub, &provider, "bob@example.com").await;
        Shop {
            env_id,
            set_id: set["id"].as_str().unwrap().to_owned(),
            project_id: project["id"].as_str().unwrap().to_owned(),
            hub,
            _provider: provider,
            _target_db: target_db,
            admin,
            alice,
            bob,
        }
    }

    /// A migration of the project; its id.
    async fn migration(&self, key: &str, name: &str, up: &str, down: Option<&str>) -> String {
        let body = json!({
            "project_id": self.project_id, "version_key": key, "name": name, "up_sql": up, "down_sql": down,
        });
        let created = self.admin.ok(Method::POST, "/api/v1/migrations", body, StatusCode::CREATED).await;
        created["migration"]["id"].as_str().unwrap().to_owned()
    }

    /// The release form's fields, with the form's own idempotency key.
    async fn release_form(&self, browser: &Browser, direction: &str, to: &str) -> Vec<(String, String)> {
        let (status, form) = browser.page(&format!("/runs/new?project_id={}", self.project_id)).await;
        assert_eq!(status, StatusCode::OK, "{form}");
        let key = between(&form, r#"name="idempotency_key" value=""#, "\"").to_owned();
        let (up_to, down_to) = if direction == "down" { ("", to) } else { (to, "") };
        [
            ("project_id", self.project_id.as_str()),
            ("idempotency_key", key.as_str()),
            ("direction", direction),
            ("up_to", up_to),
            ("down_to", down_to),
            ("environment_id", self.env_id.as_str()),
            ("db_set_id", self.set_id.as_str()),
            ("failure_policy", "stop_on_first_failure"),
            ("concurrency_limit", "1"),
            ("comment", "release of the shop"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    /// The runs as the API lists them.
    async fn runs(&self) -> Vec<serde_json::Value> {
        self.admin.get("/api/v1/runs").await["items"].as_array().unwrap().clone()
    }
}

/// `fields` with `action` (the button pressed).
async fn submit(browser: &Browser, fields: &[(String, String)], action: &str) -> Response {
    let mut body: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    body.push(("action", action));
    browser.post_form("/runs/new", &body).await
}

fn set_field(fields: &mut [(String, String)], name: &str, value: &str) {
    fields.iter_mut().find(|(k, _)| k == name).unwrap().1 = value.to_owned();
}

#[tokio::test]
async fn the_release_form_previews_what_it_pins_and_requests_one_run_of_the_release() {
    let shop = Shop::start(true).await;
    shop.migration(
        "001",
        "create customers",
        "CREATE TABLE customers (id bigint PRIMARY KEY);",
        Some("DROP TABLE customers;"),
    )
    .await;
    shop.migration("002", "create orders", "CREATE TABLE orders (id bigint PRIMARY KEY);", Some("DROP TABLE orders;"))
        .await;
    shop.migration("003", "tenant view", "CREATE VIEW ${schema}.orders_v AS SELECT 1 AS one;", None).await;
    let alice = &shop.alice;

    // The project's migrations page links to the release form; up to the newest by default.
    let (_, list) = alice.page(&format!("/migrations?project_id={}", shop.project_id)).await;
    assert!(
        list.contains(&format!(
            r#"href="/runs/new?project_id={}">Request a release of this project<"#,
            shop.project_id
        )),
        "{list}"
    );
    let (_, form) = alice.page(&format!("/runs/new?project_id={}", shop.project_id)).await;
    assert!(form.contains("<h1>Request a release of shop</h1>"), "{form}");
    assert!(form.contains(r#"<option value="003" selected>003 tenant view</option>"#), "{form}");
    assert!(form.contains(r#"<label for="down_to">"#), "{form}");
    assert!(form.contains(r#"name="action" value="preview">Preview</button>"#), "{form}");

    // Preview up to 002: both listed in order with the content checksum; pre-flight finds nothing; no run.
    let mut fields = shop.release_form(alice, "up", "002").await;
    let response = submit(alice, &fields, "preview").await;
    assert_eq!(response.status(), StatusCode::OK);
    let preview = response.text().await.unwrap();
    let table = between(&preview, r#"<table id="preview-versions">"#, "</table>");
    let (first, second) = (table.find("<code>001</code>").unwrap(), table.find("<code>002</code>").unwrap());
    assert!(first < second && !table.contains("003"), "{table}");
    assert!(table.contains("create orders"), "{table}");
    assert_eq!(between(&preview, r#"<code id="preview-content">"#, "<").len(), 64, "{preview}");
    assert!(preview.contains("Pre-flight: no problems on 1 target."), "{preview}");
    // The SQL review of what would be pinned: nothing risky in two CREATE TABLEs, one approval.
    let risk = between(&preview, r#"<p id="preview-risk">"#, "</p>");
    assert!(risk.contains(r#"<strong class="risk-low">low</strong>"#) && risk.contains("needs 1 approval"), "{risk}");
    assert!(preview.contains("No finding in the review of these versions."), "{preview}");
    assert!(preview.contains(">release of the shop</textarea>"), "what was typed is kept: {preview}");
    assert!(shop.runs().await.is_empty(), "a preview makes no run");

    // Up to 003: pre-flight names the variable and the target lacking it.
    set_field(&mut fields, "up_to", "003");
    let preview = submit(alice, &fields, "preview").await.text().await.unwrap();
    let preflight = between(&preview, r#"<ul class="messages" id="preflight">"#, "</ul>");
    assert!(preflight.contains("missing_variable"), "{preflight}");
    assert!(
        preflight.contains("003 uses the placeholder variable `schema`, which target pg-one lacks."),
        "{preflight}"
    );
    // Requesting it is refused, next to the set's field, with everything kept.
    let response = submit(alice, &fields, "request").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused = response.text().await.unwrap();
    let problem = between(&refused, r#"<p class="field-error" id="db_set_id-error">"#, "</p>");
    assert!(problem.contains("pg-one"), "{problem}");
    assert!(refused.contains(r#"<option value="003" selected>"#), "{refused}");
    assert!(refused.contains(">release of the shop</textarea>"), "{refused}");
    // A down release needs the version to go back to; 003 has no down script.
    let mut down = shop.release_form(alice, "down", "").await;
    let response = submit(alice, &down, "request").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains(r#"id="down_to-error""#));
    set_field(&mut down, "down_to", "001");
    let preview = submit(alice, &down, "preview").await.text().await.unwrap();
    assert!(preview.contains("no_down"), "{preview}");
    // Reverting 002 drops a table: the review says so, and the prod environment asks one approval more.
    let risk = between(&preview, r#"<p id="preview-risk">"#, "</p>");
    assert!(
        risk.contains(r#"<strong class="risk-high">high</strong>"#) && risk.contains("needs 2 approvals"),
        "{risk}"
    );
    let review = between(&preview, r#"<ul class="messages" id="preview-review">"#, "</ul>");
    assert!(review.contains("<code>002</code>") && review.contains("<code>ban-drop-table</code>"), "{review}");
    assert!(shop.runs().await.is_empty());

    // Up to 002: one run of two migrations, in order; posting the same form again is the same run.
    set_field(&mut fields, "up_to", "002");
    let response = submit(alice, &fields, "request").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap());
    let run_path = location(&response);
    assert_eq!(location(&submit(alice, &fields, "request").await), run_path);
    let runs = shop.runs().await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = shop.admin.get(&format!("/api/v1{run_path}")).await;
    let keys: Vec<&str> =
        run["migrations"].as_array().unwrap().iter().map(|m| m["version_key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["001", "002"], "{run}");
    let (_, run_page) = alice.page(&run_path).await;
    assert!(run_page.contains("up release of shop: 2 migrations in prod"), "{run_page}");
    assert!(run_page.contains("Migrations (2, in apply order)"), "{run_page}");
    assert!(
        run_page
            .contains(&format!(r#"<code id="content-checksum">{}</code>"#, run["content_checksum"].as_str().unwrap())),
        "{run_page}"
    );

    // Lists show the release as project, first → last and how many.
    let (_, list) = alice.page("/runs").await;
    assert!(
        list.contains("shop</a>: <code>001</code> → <code>002</code> <span class=\"muted\">(2 migrations)</span>"),
        "{list}"
    );
    let (_, dashboard) = shop.bob.page("/").await;
    assert!(between(&dashboard, "Awaiting your approval", "</section>").contains("(2 migrations)"), "{dashboard}");

    // In waves, scheduled: a plan the form cannot read is refused next to its field, with what was typed.
    let mut staged = shop.release_form(alice, "up", "002").await;
    staged.push(("waves".into(), "1, ten%".into()));
    staged.push(("advance".into(), "manual".into()));
    staged.push(("not_before".into(), "2030-01-01T02:00".into()));
    let response = submit(alice, &staged, "request").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused = response.text().await.unwrap();
    assert!(between(&refused, r#"id="waves-error">"#, "</p>").contains("ten%"), "{refused}");
    set_field(&mut staged, "waves", "1, 100%");
    let response = submit(alice, &staged, "request").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap());
    let staged_path = location(&response);
    let run = shop.admin.get(&format!("/api/v1{staged_path}")).await;
    assert_eq!(
        (run["waves"]["advance"].as_str(), run["not_before"].as_str()),
        (Some("manual"), Some("2030-01-01T02:00:00Z"))
    );
    let (_, page) = alice.page(&staged_path).await;
    assert!(between(&page, r#"<div id="waves""#, "</table>").contains("Rolls out in 1 wave"), "{page}");
    assert!(page.contains(r#"<p class="notice" id="schedule">Scheduled: nothing of this run starts before"#), "{page}");
}

#[tokio::test]
async fn an_edit_makes_a_release_stale_until_it_is_refreshed_and_approved_again() {
    let shop = Shop::start(true).await;
    let first = shop.migration("001", "create customers", "CREATE TABLE customers (id bigint);", None).await;
    shop.migration("002", "create orders", "CREATE TABLE orders (id bigint);", None).await;
    let (alice, bob) = (&shop.alice, &shop.bob);
    let response = submit(alice, &shop.release_form(alice, "up", "002").await, "request").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap());
    let run_path = location(&response);
    let (_, run_page) = bob.page(&run_path).await;
    assert!(!run_page.contains(r#"id="stale""#), "{run_page}");
    let content = between(&run_page, r#"<code id="content-checksum">"#, "<").to_owned();
    let response = bob.post_form(&format!("{run_path}/approve"), &[("content_checksum", &content)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap());

    // An edit of 001: the run is stale; execute is refused with the reason, the refresh button is there.
    let response = alice
        .post_form(
            &format!("/migrations/{first}/versions/new"),
            &[("up_sql", "CREATE TABLE customers (id bigint PRIMARY KEY);"), ("transaction_mode", "transaction")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap());
    // The migration's page lists its versions, with each one's review risk and the comparison, above the
    // long content of the version shown.
    let (_, versions) = bob.page(&format!("/migrations/{first}")).await;
    let list = versions.find("<h2>Versions</h2>").unwrap();
    let shown = versions.find("<h2>Version 2</h2>").unwrap();
    let compare = versions.find(r#"<h3 id="diff">Compare versions</h3>"#).unwrap();
    assert!(list < compare && compare < shown, "{versions}");
    assert!(versions.contains(r#"<th scope="col">SQL review risk</th>"#), "{versions}");
    let (_, run_page) = bob.page(&run_path).await;
    let stale = between(&run_page, r#"<div class="notice" id="stale">"#, "</form>");
    assert!(stale.contains(&format!(r#"action="{run_path}/refresh""#)), "{stale}");
    assert!(stale.contains(">Update to the newest versions</button>"), "{stale}");
    assert!(run_page.contains("(now 2: see what changed)"), "{run_page}");
    let execute = between(&run_page, &format!(r#"action="{run_path}/execute""#), "</form>");
    assert!(execute.contains("disabled"), "{execute}");
    let response = bob.post_form(&format!("{run_path}/execute"), &[]).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);

    // The requester refreshes: a new revision awaiting approval again, the earlier decision kept but not
    // counting, and the manager is asked again on the dashboard.
    let response = alice.post_form(&format!("{run_path}/refresh"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap());
    let (_, run_page) = bob.page(&run_path).await;
    assert!(!run_page.contains(r#"id="stale""#), "{run_page}");
    assert!(run_page.contains(r#"id="run-status" class="status status-awaiting_approval""#), "{run_page}");
    assert!(run_page.contains("<dt>Revision</dt><dd>2</dd>"), "{run_page}");
    assert!(run_page.contains("they no longer count"), "{run_page}");
    let refreshed = between(&run_page, r#"<code id="content-checksum">"#, "<").to_owned();
    assert_ne!(refreshed, content);
    let (_, dashboard) = bob.page("/").await;
    assert!(between(&dashboard, "Awaiting your approval", "</section>").contains(&run_path), "{dashboard}");
    let response = bob.post_form(&format!("{run_path}/approve"), &[("content_checksum", &refreshed)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap());
    assert!(hub_actions(&shop).await.contains(&"run.refresh".to_owned()));
}

async fn hub_actions(shop: &Shop) -> Vec<String> {
    shop.hub.audit_actions().await
}

/// A worker of this process on the hub's tool database, until the sender is dropped.
async fn start_worker(pool: &sqlx::PgPool) -> tokio::sync::oneshot::Sender<()> {
    use std::sync::Arc;
    use std::time::Duration;

    let id = domain::ids::WorkerId::new();
    let mut conn = pool.acquire().await.unwrap();
    storage::workers::register(&mut conn, id, "web-test", 1, "test").await.unwrap();
    drop(conn);
    let settings = executor::queue::Settings {
        poll_interval: Duration::from_millis(200),
        heartbeat: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(5),
        ..executor::queue::Settings::default()
    };
    let worker = executor::queue::QueueWorker::new(
        pool.clone(),
        id,
        format!("web-test/{id}"),
        settings,
        Arc::new(executor::queue::NoMasterKey),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        worker
            .run(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    stop
}

#[tokio::test]
async fn a_failed_release_is_retried_from_its_page_as_a_new_run() {
    let shop = Shop::start(false).await;
    shop.migration("001", "create customers", "CREATE TABLE customers (id bigint);", None).await;
    shop.migration("002", "broken", "INSERT INTO no_such_table VALUES (1);", None).await;
    let bob = &shop.bob;
    let response = submit(bob, &shop.release_form(bob, "up", "002").await, "request").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap());
    let run_path = location(&response);
    let response = bob.post_form(&format!("{run_path}/execute"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap());
    let _worker = start_worker(&shop.hub.db.pool).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let run_page = loop {
        let (_, run_page) = bob.page(&run_path).await;
        if run_page.contains(r#"id="run-status" class="status status-failed""#) {
            break run_page;
        }
        assert!(std::time::Instant::now() < deadline, "the run did not fail within 60 s:\n{run_page}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };

    // The item's log names the migration of each line, statements numbered from 1.
    let item = between(&run_page, &format!(r#"href="{run_path}/items/"#), "\"").to_owned();
    let (_, log) = bob.page(&format!("{run_path}/items/{item}")).await;
    let lines = between(&log, r#"<table id="log">"#, "</table>");
    assert!(lines.contains("<td><code>001</code></td><td class=\"num\">1</td>"), "{lines}");
    assert!(lines.contains("<code>002</code>"), "{lines}");

    // Retry: a new run of the same content for the unfinished target.
    let retry = between(&run_page, &format!(r#"action="{run_path}/retry""#), "</form>");
    assert!(retry.contains(">Retry unfinished targets</button>") && !retry.contains("disabled"), "{retry}");
    let response = bob.post_form(&format!("{run_path}/retry"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap());
    let retry_path = location(&response);
    assert_ne!(retry_path, run_path);
    let (_, retry_page) = bob.page(&retry_path).await;
    assert!(retry_page.contains(&format!(r#"Retries run <a href="{run_path}">"#)), "{retry_page}");
    let original = between(&run_page, r#"<code id="content-checksum">"#, "<").to_owned();
    assert!(retry_page.contains(&format!(r#"<code id="content-checksum">{original}</code>"#)), "{retry_page}");
    let (_, run_page) = bob.page(&run_path).await;
    assert!(run_page.contains(&format!(r#"Retried by <a href="{retry_path}">"#)), "{run_page}");
    assert_eq!(shop.runs().await.len(), 2);
}
