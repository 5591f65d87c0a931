//! `app` use cases called directly, without HTTP: the rules live in `app` and `domain`, so they are tested
//! there too, on a real tool database, with a worker driven step by step (`try_execute_one`) on real targets.

use std::sync::Arc;

use app::{Caller, Hub};
use domain::enums::{ActorKind, Direction, Engine, FailurePolicy, TransactionMode};
use domain::ids::WorkerId;
use domain::model::{AuditActor, User};
use domain::policy::{Actor, Denial, EnvironmentPolicy};
use domain::run::LeftAs;
use executor::queue::{NoMasterKey, QueueWorker, Settings};
use migrate_hub_tests::PgDatabase;
use migrate_hub_tests::fleet::Fleet;

fn caller(user: &User) -> Caller {
    Caller {
        actor: Actor { user_id: user.id, role: user.role },
        audit: AuditActor { kind: ActorKind::User, user_id: Some(user.id), label: user.email.as_str().to_owned() },
        ip: None,
        user_agent: None,
    }
}

async fn stepping_worker(pool: &sqlx::PgPool) -> QueueWorker {
    worker_with(pool, Settings::default(), Arc::new(NoMasterKey)).await
}

/// A registered worker with `settings` (e.g. a test's clock) and `opener`, driven step by step.
async fn worker_with(
    pool: &sqlx::PgPool,
    settings: Settings,
    opener: Arc<dyn executor::queue::SecretOpener>,
) -> QueueWorker {
    let id = WorkerId::new();
    let mut conn = pool.acquire().await.unwrap();
    storage::workers::register(&mut conn, id, "test-host", 1, "test").await.unwrap();
    QueueWorker::new(pool.clone(), id, format!("test/{id}"), settings, opener)
}

/// An admin user (the fleet has a user and a manager).
async fn admin(pool: &sqlx::PgPool) -> User {
    let mut conn = pool.acquire().await.unwrap();
    let new = domain::model::NewUser {
        email: domain::values::Email::parse("root@example.com").unwrap(),
        display_name: domain::values::DisplayName::parse("Admin").unwrap(),
        role: domain::enums::Role::Admin,
        oidc_identity: None,
        password_hash: None,
    };
    storage::users::create(&mut conn, &new).await.unwrap()
}

/// Runs every claimable item, one at a time.
async fn drain(worker: &QueueWorker) -> Vec<&'static str> {
    let mut results = Vec::new();
    while let Some(outcome) = worker.try_execute_one().await {
        results.push(outcome.result);
    }
    results
}

#[tokio::test]
async fn a_requester_cannot_approve_their_own_run_and_nothing_is_recorded() {
    let tool = PgDatabase::migrated().await;
    let target = PgDatabase::fresh().await;
    let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::production_default()).await;
    fleet.add_target("pg", &target.url, None).await;
    let version =
        fleet.migration("001", "CREATE TABLE a (id int);", None, TransactionMode::Transaction, Engine::Postgres).await;
    let hub = Hub::new(tool.pool.clone());
    let request: app::runs::RunRequest = serde_json::from_value(serde_json::json!({
        "migration_id": version.migration_id, "environment_id": fleet.environment.id, "db_set_id": fleet.set.id,
    }))
    .unwrap();
    let no_comment = || -> app::runs::DecisionInput { serde_json::from_value(serde_json::json!({})).unwrap() };
    let requested = app::runs::request_run(&hub, &caller(&fleet.requester), None, request, None).await.unwrap();
    let refused =
        app::runs::approve(&hub, &caller(&fleet.requester), requested.run.id, no_comment()).await.unwrap_err();
    assert!(matches!(refused, app::AppError::Denied(Denial::SelfApproval)), "{refused:?}");
    let detail = app::runs::get_run(&hub, requested.run.id).await.unwrap();
    assert!(detail.approvals.is_empty(), "{:?}", detail.approvals);
    let approved = app::runs::approve(&hub, &caller(&fleet.manager), requested.run.id, no_comment()).await.unwrap();
    assert_eq!(approved.status.as_str(), "approved");
}

#[tokio::test]
async fn the_per_database_views_say_where_each_run_left_each_migration() {
    let tool = PgDatabase::migrated().await;
    let (a, b) = (PgDatabase::fresh().await, PgDatabase::fresh().await);
    let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::production_default()).await;
    let target_a = fleet.add_target("a", &a.url, None).await;
    let target_b = fleet.add_target("b", &b.url, None).await;
    // 003 fails on b, where its table already exists.
    sqlx::query("CREATE TABLE rel_c (id integer)").execute(&b.pool).await.unwrap();
    let mut versions = Vec::new();
    for (key, table) in [("001", "a"), ("002", "b"), ("003", "c")] {
        let up = format!("CREATE TABLE rel_{table} (id integer);");
        let down = format!("DROP TABLE rel_{table};");
        versions.push(fleet.migration(key, &up, Some(&down), TransactionMode::Transaction, Engine::Postgres).await);
    }
    let hub = Hub::new(tool.pool.clone());
    let worker = stepping_worker(&tool.pool).await;
    let up = fleet.queue_release(&versions, Direction::Up, FailurePolicy::Continue, 2, None).await;
    let mut results = drain(&worker).await;
    results.sort_unstable();
    assert_eq!(results, ["failed", "succeeded"]);

    let states = |rows: &[domain::model::MigrationOnTarget]| -> Vec<(String, LeftAs)> {
        rows.iter().map(|m| (m.version_key.as_str().to_owned(), m.state)).collect()
    };
    let on_a = app::inventory::applied_on_target(&hub, target_a).await.unwrap();
    let want = |rows: &[(&str, LeftAs)]| -> Vec<(String, LeftAs)> {
        rows.iter().map(|(k, s)| ((*k).to_owned(), *s)).collect()
    };
    assert_eq!(states(&on_a), want(&[("001", LeftAs::Applied), ("002", LeftAs::Applied), ("003", LeftAs::Applied)]));
    assert!(on_a.iter().all(|m| m.run_id == up.id && m.project_id == fleet.project.id && m.version_no == 1));
    let on_b = app::inventory::applied_on_target(&hub, target_b).await.unwrap();
    assert_eq!(states(&on_b), want(&[("001", LeftAs::Applied), ("002", LeftAs::Applied), ("003", LeftAs::Failed)]));
    let of_003 = app::migrations::status_per_target(&hub, versions[2].migration_id).await.unwrap();
    let per_target: Vec<(&str, LeftAs)> = of_003.iter().map(|t| (t.target_name.as_str(), t.state)).collect();
    assert_eq!(per_target, [("a", LeftAs::Applied), ("b", LeftAs::Failed)]);

    // A down release to 001 (a's 003 and 002 reverted, newest first): the newest run decides.
    let down_versions = vec![versions[2].clone(), versions[1].clone()];
    let down = fleet.queue_release(&down_versions, Direction::Down, FailurePolicy::Continue, 2, None).await;
    drain(&worker).await;
    let on_a = app::inventory::applied_on_target(&hub, target_a).await.unwrap();
    assert_eq!(states(&on_a), want(&[("001", LeftAs::Applied), ("002", LeftAs::Reverted), ("003", LeftAs::Reverted)]));
    assert_eq!(on_a.iter().filter(|m| m.run_id == down.id).count(), 2);
    let of_001 = app::migrations::status_per_target(&hub, versions[0].migration_id).await.unwrap();
    assert!(of_001.iter().all(|t| t.state == LeftAs::Applied && t.run_id == up.id), "{of_001:?}");
}

async fn audit_actions(pool: &sqlx::PgPool, run: domain::ids::RunId) -> Vec<String> {
    sqlx::query_scalar("SELECT action FROM audit_events WHERE object_id = $1 ORDER BY id")
        .bind(run.to_string())
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn tables_of(db: &PgDatabase) -> Vec<String> {
    sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

/// Requests a release of the fleet's project over its set with `waves`, approved by the manager and
/// executed by them.
async fn waved_release(hub: &Hub, fleet: &Fleet, waves: serde_json::Value) -> domain::model::Run {
    let mut body = serde_json::json!({
        "project_id": fleet.project.id, "environment_id": fleet.environment.id, "db_set_id": fleet.set.id,
        "failure_policy": "continue", "concurrency_limit": 4,
    });
    body.as_object_mut().unwrap().extend(waves.as_object().unwrap().clone());
    let request: app::runs::RunRequest = serde_json::from_value(body).unwrap();
    let requested = app::runs::request_run(hub, &caller(&fleet.requester), None, request, None).await.unwrap();
    let no_comment = || -> app::runs::DecisionInput { serde_json::from_value(serde_json::json!({})).unwrap() };
    app::runs::approve(hub, &caller(&fleet.manager), requested.run.id, no_comment()).await.unwrap();
    app::runs::execute(hub, &caller(&fleet.manager), requested.run.id).await.unwrap()
}

#[tokio::test]
async fn a_failing_canary_halts_a_three_wave_run_and_nothing_beyond_it_runs() {
    let tool = PgDatabase::migrated().await;
    let dbs =
        [PgDatabase::fresh().await, PgDatabase::fresh().await, PgDatabase::fresh().await, PgDatabase::fresh().await];
    let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::production_default()).await;
    for (name, db) in ["a", "b", "c", "d"].iter().zip(&dbs) {
        fleet.add_target(name, &db.url, None).await;
    }
    // `d` is the canary (labelled, so it goes first although it sorts last), and its 001 fails.
    sqlx::query("UPDATE db_targets SET labels = '{\"canary\": \"true\"}' WHERE name = 'd'")
        .execute(&tool.pool)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE wave_a (id integer)").execute(&dbs[3].pool).await.unwrap();
    fleet
        .migration("001", "CREATE TABLE wave_a (id integer);", None, TransactionMode::Transaction, Engine::Postgres)
        .await;
    let hub = Hub::new(tool.pool.clone());
    let worker = stepping_worker(&tool.pool).await;

    // A plan that cannot reach every target is refused at request, naming what to change.
    let bad: app::runs::RunRequest = serde_json::from_value(serde_json::json!({
        "project_id": fleet.project.id, "environment_id": fleet.environment.id, "db_set_id": fleet.set.id,
        "waves": [{"targets": 1}, {"percent": 50}],
    }))
    .unwrap();
    let refused = app::runs::request_run(&hub, &caller(&fleet.requester), None, bad, None).await.unwrap_err();
    assert_eq!(refused.code().as_str(), "invalid_waves", "{refused}");
    assert!(refused.to_string().contains("must reach every target"), "{refused}");

    let run = waved_release(
        &hub,
        &fleet,
        serde_json::json!({"waves": [{"targets": 1}, {"percent": 50}, {"percent": 100}], "first_label": "canary=true"}),
    )
    .await;
    let detail = app::runs::get_run(&hub, run.id).await.unwrap();
    let waves = detail.waves.as_ref().expect("the run has waves");
    let plan: Vec<(u32, u32, &str)> = waves.waves.iter().map(|w| (w.first, w.end, w.spec.as_str())).collect();
    assert_eq!(plan, [(0, 1, "1 target"), (1, 2, "50%"), (2, 4, "100%")]);

    // Only the canary is claimable; it fails, and the run halts with the others untouched.
    assert_eq!(drain(&worker).await, ["failed"]);
    let detail = app::runs::get_run(&hub, run.id).await.unwrap();
    assert_eq!(detail.run.status, domain::run::RunStatus::Halted);
    let waves = detail.waves.as_ref().unwrap();
    assert_eq!((waves.current, waves.failed, waves.waves[0].failed), (0, 1, 1));
    assert_eq!(waves.state(detail.run.status), domain::waves::WaveState::Halted);
    assert_eq!(waves.waves[1].pending + waves.waves[2].pending, 3);
    for db in &dbs[..3] {
        assert!(tables_of(db).await.is_empty(), "a target beyond the canary was touched");
    }
    let items = app::runs::list_items(&hub, run.id, None, &app::page(None, Some(10))).await.unwrap().items;
    let canary = items.iter().find(|i| i.ordinal == 0).unwrap();
    assert_eq!(canary.target_id, fleet.targets[3], "the labelled target goes first");
    assert!(audit_actions(&tool.pool, run.id).await.contains(&"run.halted".to_owned()));

    // The requester (a user) is not among the roles this environment lets execute: refused, and audited.
    let refused = app::waves::continue_run(&hub, &caller(&fleet.requester), run.id).await.unwrap_err();
    assert!(matches!(refused, app::AppError::Denied(Denial::RoleCannotExecute { .. })), "{refused:?}");
    assert!(audit_actions(&tool.pool, run.id).await.contains(&"run.continue_refused".to_owned()));
    assert_eq!(drain(&worker).await, Vec::<&str>::new(), "a refused continue starts nothing");

    // The manager continues despite the failure: the canary's wave tolerates it and the rest roll out.
    let continued = app::waves::continue_run(&hub, &caller(&fleet.manager), run.id).await.unwrap();
    assert_eq!(continued.status, domain::run::RunStatus::Running);
    assert_eq!(drain(&worker).await, ["succeeded", "succeeded", "succeeded"]);
    let detail = app::runs::get_run(&hub, run.id).await.unwrap();
    assert_eq!(detail.run.status, domain::run::RunStatus::Failed, "a finished run with a failed target failed");
    let waves = detail.waves.as_ref().unwrap();
    assert_eq!(waves.waves[0].tolerated_failures, 1);
    assert_eq!(waves.waves[1].started_by.as_ref().map(|(id, _)| *id), Some(fleet.manager.id));
    assert_eq!(waves.waves[2].started_by, None, "the last wave started by itself");
    let actions = audit_actions(&tool.pool, run.id).await;
    for expected in ["run.continue", "run.wave_started", "run.failed"] {
        assert!(actions.contains(&expected.to_owned()), "{expected} missing from {actions:?}");
    }
    for db in &dbs[..3] {
        assert_eq!(tables_of(db).await, ["migrate_hub_history", "wave_a"]);
    }
}

#[tokio::test]
async fn waves_that_advance_by_hand_wait_for_continue_from_someone_allowed() {
    let tool = PgDatabase::migrated().await;
    let dbs = [PgDatabase::fresh().await, PgDatabase::fresh().await, PgDatabase::fresh().await];
    let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::production_default()).await;
    for (name, db) in ["a", "b", "c"].iter().zip(&dbs) {
        fleet.add_target(name, &db.url, None).await;
    }
    fleet
        .migration("001", "CREATE TABLE wave_a (id integer);", None, TransactionMode::Transaction, Engine::Postgres)
        .await;
    let hub = Hub::new(tool.pool.clone());
    let worker = stepping_worker(&tool.pool).await;
    let run = waved_release(
        &hub,
        &fleet,
        serde_json::json!({"waves": [{"targets": 1}, {"percent": 100}], "advance": "manual"}),
    )
    .await;
    assert_eq!(drain(&worker).await, ["succeeded"]);
    let detail = app::runs::get_run(&hub, run.id).await.unwrap();
    assert_eq!(detail.run.status, domain::run::RunStatus::Running);
    let waves = detail.waves.as_ref().unwrap();
    assert_eq!(waves.state(detail.run.status), domain::waves::WaveState::AwaitingContinue);
    assert_eq!(
        detail.allowed(&caller(&fleet.requester).actor).proceed,
        Err(Denial::RoleCannotExecute { role: fleet.requester.role })
    );
    assert_eq!(detail.allowed(&caller(&fleet.manager).actor).proceed, Ok(()));
    assert_eq!(drain(&worker).await, Vec::<&str>::new(), "the next wave waits");

    let refused = app::waves::continue_run(&hub, &caller(&fleet.requester), run.id).await.unwrap_err();
    assert!(matches!(refused, app::AppError::Denied(Denial::RoleCannotExecute { .. })), "{refused:?}");
    app::waves::continue_run(&hub, &caller(&fleet.manager), run.id).await.unwrap();
    // Continuing twice is refused: the wave is running now.
    let twice = app::waves::continue_run(&hub, &caller(&fleet.manager), run.id).await.unwrap_err();
    assert!(matches!(twice, app::AppError::Denied(Denial::WrongStatus { action: "continue", .. })), "{twice:?}");
    assert_eq!(drain(&worker).await, ["succeeded", "succeeded"]);
    let detail = app::runs::get_run(&hub, run.id).await.unwrap();
    assert_eq!(detail.run.status, domain::run::RunStatus::Succeeded);
    let actions = audit_actions(&tool.pool, run.id).await;
    let continued: Vec<&String> = actions.iter().filter(|a| a.starts_with("run.continue")).collect();
    assert_eq!(continued, ["run.continue_refused", "run.continue", "run.continue_refused"]);
}

/// A clock a test sets, which moves on by `step` seconds each time the worker reads it.
#[derive(Clone, Default)]
struct TestClock {
    now: Arc<std::sync::atomic::AtomicI64>,
    step: Arc<std::sync::atomic::AtomicI64>,
}

impl TestClock {
    fn set(&self, at: &str, step_secs: i64) {
        let at = chrono::DateTime::parse_from_rfc3339(at).unwrap().timestamp();
        self.now.store(at, std::sync::atomic::Ordering::SeqCst);
        self.step.store(step_secs, std::sync::atomic::Ordering::SeqCst);
    }

    fn clock(&self) -> executor::apply::Clock {
        let (now, step) = (self.now.clone(), self.step.clone());
        executor::apply::Clock::new(move || {
            let step = step.load(std::sync::atomic::Ordering::SeqCst);
            let at = now.fetch_add(step, std::sync::atomic::Ordering::SeqCst);
            chrono::DateTime::from_timestamp(at, 0).unwrap()
        })
    }
}

#[tokio::test]
async fn a_closed_maintenance_window_holds_a_run_until_it_opens_and_a_closing_one_stops_between_migrations() {
    let tool = PgDatabase::migrated().await;
    let target = PgDatabase::fresh().await;
    let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::production_default()).await;
    fleet.add_target("pg", &target.url, None).await;
    for (key, table) in [("001", "a"), ("002", "b"), ("003", "c")] {
        let up = format!("CREATE TABLE win_{table} (id integer);");
        fleet.migration(key, &up, None, TransactionMode::Transaction, Engine::Postgres).await;
    }
    let hub = Hub::new(tool.pool.clone());
    let admin = admin(&tool.pool).await;
    let env = fleet.environment.id;
    let windows =
        |lines: &[&str]| app::windows::WindowsInput { windows: lines.iter().map(|l| (*l).to_owned()).collect() };

    // Only admins set windows; a line that cannot be read, or an unknown zone, is refused naming it.
    let refused =
        app::windows::set_windows(&hub, &caller(&fleet.manager), env, windows(&["Sat 02:00-05:00 UTC"])).await;
    assert!(matches!(refused, Err(app::AppError::Denied(Denial::NotAdmin))), "{refused:?}");
    let refused = app::windows::set_windows(&hub, &caller(&admin), env, windows(&["Sat 02:00-05:00 Mars/Olympus"]))
        .await
        .unwrap_err();
    assert_eq!(refused.code().as_str(), "invalid_window");
    assert!(refused.to_string().contains("Mars/Olympus"), "{refused}");
    let refused =
        app::windows::set_windows(&hub, &caller(&admin), env, windows(&["Sam 02:00-05:00 UTC"])).await.unwrap_err();
    assert!(refused.to_string().contains("unknown day"), "{refused}");
    // Saturdays 02:00-05:00 in Berlin (UTC+1 in December): 01:00-04:00 UTC. 2026-12-12 is a Saturday.
    let set = app::windows::set_windows(&hub, &caller(&admin), env, windows(&["Sat 02:00-05:00 Europe/Berlin"]))
        .await
        .unwrap();
    assert_eq!(set.windows, ["Sat 02:00-05:00 Europe/Berlin"]);
    let friday = chrono::DateTime::parse_from_rfc3339("2026-12-11T12:00:00Z").unwrap().to_utc();
    let state = app::windows::windows_of(&hub, env, friday).await.unwrap().state;
    assert!(!state.open());
    assert_eq!(state.next_opens_at.map(|t| t.to_rfc3339()), Some("2026-12-12T01:00:00+00:00".to_owned()));

    let time = TestClock::default();
    let worker =
        worker_with(&tool.pool, Settings { clock: time.clock(), ..Settings::default() }, Arc::new(NoMasterKey)).await;
    let request: app::runs::RunRequest = serde_json::from_value(serde_json::json!({
        "project_id": fleet.project.id, "environment_id": env, "db_set_id": fleet.set.id,
    }))
    .unwrap();
    let requested = app::runs::request_run(&hub, &caller(&fleet.requester), None, request, None).await.unwrap();
    let no_comment = || -> app::runs::DecisionInput { serde_json::from_value(serde_json::json!({})).unwrap() };
    app::runs::approve(&hub, &caller(&fleet.manager), requested.run.id, no_comment()).await.unwrap();
    app::runs::execute(&hub, &caller(&fleet.manager), requested.run.id).await.unwrap();

    // Friday noon: closed, nothing is claimed.
    time.set("2026-12-11T12:00:00Z", 0);
    assert_eq!(drain(&worker).await, Vec::<&str>::new());
    let applied = "SELECT version FROM migrate_hub_history WHERE status = 'applied' ORDER BY version";
    let tables: Vec<String> = sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
        .fetch_all(&target.pool)
        .await
        .unwrap();
    assert!(tables.is_empty(), "{tables:?}");

    // Saturday 01:30 UTC, open until 04:00 UTC. The clock moves an hour per read: claimed at 01:30, 001
    // starts at 02:30, 002 at 03:30; at 04:30, before 003, the window has closed: 003 waits.
    time.set("2026-12-12T01:30:00Z", 3600);
    assert_eq!(drain(&worker).await, ["waiting"]);
    let rows: Vec<String> = sqlx::query_scalar(applied).fetch_all(&target.pool).await.unwrap();
    assert_eq!(rows, ["001", "002"]);
    let items = app::runs::list_items(&hub, requested.run.id, None, &app::page(None, Some(10))).await.unwrap().items;
    assert_eq!(items[0].status, domain::run::RunItemStatus::Pending);
    assert_eq!(items[0].error_code.as_deref(), Some("window_closed"));
    assert_eq!(items[0].attempts, 0, "waiting for a window is not a failed attempt");

    // The next Saturday's window: the rest is applied.
    time.set("2026-12-19T01:30:00Z", 0);
    assert_eq!(drain(&worker).await, ["succeeded"]);
    let rows: Vec<String> = sqlx::query_scalar(applied).fetch_all(&target.pool).await.unwrap();
    assert_eq!(rows, ["001", "002", "003"]);
    let actions = audit_actions(&tool.pool, requested.run.id).await;
    assert!(actions.contains(&"run.succeeded".to_owned()), "{actions:?}");
}

/// One request a [`Receiver`] got: its headers (lower-cased names) and body.
#[derive(Debug, Clone)]
struct Received {
    headers: std::collections::HashMap<String, String>,
    body: Vec<u8>,
}

/// A local HTTP receiver for webhooks: answers each request with the next status of `answers` (then 200)
/// and keeps what it got.
struct Receiver {
    url: String,
    got: Arc<std::sync::Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(answers: Vec<u16>) -> Receiver {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/migrate-hub", listener.local_addr().unwrap());
        let got: Arc<std::sync::Mutex<Vec<Received>>> = Arc::default();
        let answers = Arc::new(std::sync::Mutex::new(std::collections::VecDeque::from(answers)));
        let kept = got.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, length) = loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break (None, 0);
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap()))
                            .unwrap_or(0);
                        break (Some(end + 4), length);
                    }
                };
                let Some(start) = head_end else { continue };
                while buffer.len() < start + length {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buffer[..start]).to_string();
                let headers = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
                    .collect();
                kept.lock().unwrap().push(Received { headers, body: buffer[start..start + length].to_vec() });
                let status = answers.lock().unwrap().pop_front().unwrap_or(200);
                let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = socket.write_all(reply.as_bytes()).await;
            }
        });
        Receiver { url, got }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn webhooks_are_signed_retried_after_a_500_and_never_sent_to_a_refused_url() {
    use secrecy::ExposeSecret;
    let tool = PgDatabase::migrated().await;
    let target = PgDatabase::fresh().await;
    let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::production_default()).await;
    fleet.add_target("pg", &target.url, None).await;
    fleet
        .migration("001", "CREATE TABLE hook_a (id integer);", None, TransactionMode::Transaction, Engine::Postgres)
        .await;
    let bind: std::net::SocketAddr = "127.0.0.1:18080".parse().unwrap();
    let hub = Hub::new(tool.pool.clone()).with_addresses(Some("https://hub.example.test"), Some(bind));
    let admin = admin(&tool.pool).await;
    let keys = test_keys();
    let receiver = Receiver::start(vec![500]).await;
    let env = fleet.environment.id;
    let input = |url: &str, events: &[&str], format: &str| -> app::webhooks::WebhookInput {
        serde_json::from_value(serde_json::json!({"url": url, "events": events, "format": format})).unwrap()
    };

    // Refused: not http(s), credentials, the hub's public address, its socket, a link-local address.
    for url in [
        "ftp://example.com/hook",
        "http://user:pw@example.com/hook",
        "https://hub.example.test/api/v1/runs",
        "http://127.0.0.1:18080/hook",
        "http://localhost:18080/hook",
        "http://169.254.169.254/latest/meta-data",
    ] {
        let refused =
            app::webhooks::create_webhook(&hub, &caller(&admin), Some(&keys), env, input(url, &["run.failed"], "json"))
                .await
                .unwrap_err();
        assert_eq!(refused.code().as_str(), "refused_url", "{url}: {refused}");
    }
    let no_keys =
        app::webhooks::create_webhook(&hub, &caller(&admin), None, env, input(&receiver.url, &["run.failed"], "json"))
            .await
            .unwrap_err();
    assert_eq!(no_keys.code().as_str(), "no_master_keys");
    let by_manager = app::webhooks::create_webhook(
        &hub,
        &caller(&fleet.manager),
        Some(&keys),
        env,
        input(&receiver.url, &["run.failed"], "json"),
    )
    .await;
    assert!(matches!(by_manager, Err(app::AppError::Denied(Denial::NotAdmin))), "{by_manager:?}");
    let made = app::webhooks::create_webhook(
        &hub,
        &caller(&admin),
        Some(&keys),
        env,
        input(&receiver.url, &["approval.requested", "run.started", "run.succeeded"], "json"),
    )
    .await
    .unwrap();
    let secret = made.secret.expose_secret().to_owned();
    assert!(secret.starts_with("whsec_"));
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT secret_ciphertext FROM webhooks").fetch_one(&tool.pool).await.unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains(&secret), "the secret is sealed at rest");
    let logged: Vec<String> =
        sqlx::query_scalar("SELECT details::text FROM audit_events WHERE action LIKE 'webhook.%'")
            .fetch_all(&tool.pool)
            .await
            .unwrap();
    assert!(logged.iter().all(|d| !d.contains(&secret) && !d.contains("/hooks/migrate-hub")), "{logged:?}");

    let time = TestClock::default();
    time.set("2026-12-06T12:00:00Z", 0);
    let settings =
        Settings { clock: time.clock(), hub_url: Some("https://hub.example.test".into()), ..Settings::default() };
    let worker = worker_with(&tool.pool, settings, Arc::new(keys)).await;
    // Deliveries are due from the database's clock; the test's runs ahead of it so they all are.
    time.set(&(chrono::Utc::now() + chrono::Duration::seconds(5)).to_rfc3339(), 0);

    let request: app::runs::RunRequest = serde_json::from_value(serde_json::json!({
        "project_id": fleet.project.id, "environment_id": env, "db_set_id": fleet.set.id,
    }))
    .unwrap();
    let requested = app::runs::request_run(&hub, &caller(&fleet.requester), None, request, None).await.unwrap();
    // The receiver answers 500 first: the delivery waits and is tried again.
    let first = worker.try_deliver_webhooks().await.unwrap();
    assert_eq!(
        first.iter().map(|s| (s.event.as_str(), s.status, s.code)).collect::<Vec<_>>(),
        [("approval.requested", "pending", Some(500))]
    );
    assert!(worker.try_deliver_webhooks().await.unwrap().is_empty(), "not before its backoff");
    let later = chrono::Utc::now() + chrono::Duration::seconds(30);
    time.set(&later.to_rfc3339(), 0);
    let second = worker.try_deliver_webhooks().await.unwrap();
    assert_eq!(second.iter().map(|s| s.status).collect::<Vec<_>>(), ["delivered"]);
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    let delivered = &got[1];
    let signature = &delivered.headers["x-migratehub-signature"];
    assert!(
        domain::webhooks::verify(secret.as_bytes(), signature, &delivered.body, later.timestamp(), 300),
        "the signature verifies under the secret: {signature}"
    );
    assert!(!domain::webhooks::verify(b"whsec_other", signature, &delivered.body, later.timestamp(), 300));
    assert_eq!(delivered.headers["x-migratehub-event"], "approval.requested");
    let body: serde_json::Value = serde_json::from_slice(&delivered.body).unwrap();
    assert_eq!(body["run_id"], requested.run.id.to_string());
    assert_eq!(body["link"], format!("https://hub.example.test/runs/{}", requested.run.id));

    // The run goes through: started and succeeded are sent too (queued with the changes themselves).
    let no_comment = || -> app::runs::DecisionInput { serde_json::from_value(serde_json::json!({})).unwrap() };
    app::runs::approve(&hub, &caller(&fleet.manager), requested.run.id, no_comment()).await.unwrap();
    app::runs::execute(&hub, &caller(&fleet.manager), requested.run.id).await.unwrap();
    assert_eq!(drain(&worker).await, ["succeeded"]);
    let sent = worker.try_deliver_webhooks().await.unwrap();
    let mut events: Vec<(&str, &str)> = sent.iter().map(|s| (s.event.as_str(), s.status)).collect();
    events.sort_unstable();
    assert_eq!(events, [("run.started", "delivered"), ("run.succeeded", "delivered")]);

    // A Slack-compatible webhook's test delivery is one line of text.
    let slack_receiver = Receiver::start(Vec::new()).await;
    let slack = app::webhooks::create_webhook(
        &hub,
        &caller(&admin),
        Some(&test_keys()),
        env,
        input(&slack_receiver.url, &["run.failed"], "slack"),
    )
    .await
    .unwrap();
    app::webhooks::test_webhook(&hub, &caller(&admin), slack.webhook.id).await.unwrap();
    assert_eq!(
        worker.try_deliver_webhooks().await.unwrap().iter().map(|s| s.status).collect::<Vec<_>>(),
        ["delivered"]
    );
    let text: serde_json::Value = serde_json::from_slice(&slack_receiver.received()[0].body).unwrap();
    assert!(text["text"].as_str().unwrap().starts_with("migrate-hub webhook for fleet test delivery"), "{text}");
    let log = app::webhooks::deliveries(&hub, &caller(&admin), env, 50).await.unwrap();
    assert_eq!(log.len(), 4);
    assert!(log.iter().all(|d| d.status == "delivered"), "{log:?}");
    assert_eq!(log.iter().find(|d| d.event == "approval.requested").unwrap().attempts, 2);

    // Rotating the master keys reseals webhook secrets too: a worker with only the new key still signs.
    let both = format!("k1:{},k2:{}", "ab".repeat(32), "cd".repeat(32));
    let both = auth::secrets::KeyRing::parse(&secrecy::SecretString::from(both)).unwrap();
    let rotated = {
        let mut conn = tool.pool.acquire().await.unwrap();
        auth::secrets::rotate(&mut conn, &both).await.unwrap()
    };
    assert_eq!(rotated.resealed, 2);
    let only_new =
        auth::secrets::KeyRing::parse(&secrecy::SecretString::from(format!("k2:{}", "cd".repeat(32)))).unwrap();
    let new_worker =
        worker_with(&tool.pool, Settings { clock: time.clock(), ..Settings::default() }, Arc::new(only_new)).await;
    app::webhooks::test_webhook(&hub, &caller(&admin), made.webhook.id).await.unwrap();
    assert_eq!(
        new_worker.try_deliver_webhooks().await.unwrap().iter().map(|s| s.status).collect::<Vec<_>>(),
        ["delivered"]
    );
    let last = receiver.received().pop().unwrap();
    assert!(domain::webhooks::verify(
        secret.as_bytes(),
        &last.headers["x-migratehub-signature"],
        &last.body,
        later.timestamp(),
        300
    ));
}

/// The master keys of the webhook test (one key, `k1`).
fn test_keys() -> auth::secrets::KeyRing {
    auth::secrets::KeyRing::parse(&secrecy::SecretString::from(format!("k1:{}", "ab".repeat(32)))).unwrap()
}

#[tokio::test]
async fn drift_after_a_hand_made_alter_is_found_on_postgres_and_mariadb_and_cleared_by_accepting() {
    let tool = PgDatabase::migrated().await;
    let (pg, my) = (PgDatabase::fresh().await, migrate_hub_tests::MySqlDatabase::fresh().await);
    let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::production_default()).await;
    let pg_target = fleet.add_target("pg", &pg.url, None).await;
    let my_target = fleet.add_target("my", &my.url, None).await;
    let up = "CREATE TABLE drift_a (id integer PRIMARY KEY, note varchar(20));\nCREATE INDEX drift_a_note ON drift_a (note);";
    fleet.migration("001", up, None, TransactionMode::Transaction, Engine::Postgres).await;
    let hub = Hub::new(tool.pool.clone());
    let admin = admin(&tool.pool).await;
    let env = fleet.environment.id;
    let every = |minutes: Option<u32>| app::drift::DriftSchedule { check_every_minutes: minutes };
    let refused = app::drift::set_schedule(&hub, &caller(&fleet.manager), env, every(Some(60))).await;
    assert!(matches!(refused, Err(app::AppError::Denied(Denial::NotAdmin))), "{refused:?}");
    app::drift::set_schedule(&hub, &caller(&admin), env, every(Some(60))).await.unwrap();

    let time = TestClock::default();
    time.set(&chrono::Utc::now().to_rfc3339(), 0);
    let worker =
        worker_with(&tool.pool, Settings { clock: time.clock(), ..Settings::default() }, Arc::new(NoMasterKey)).await;
    let request: app::runs::RunRequest = serde_json::from_value(serde_json::json!({
        "project_id": fleet.project.id, "environment_id": env, "db_set_id": fleet.set.id, "concurrency_limit": 2,
    }))
    .unwrap();
    let requested = app::runs::request_run(&hub, &caller(&fleet.requester), None, request, None).await.unwrap();
    let no_comment = || -> app::runs::DecisionInput { serde_json::from_value(serde_json::json!({})).unwrap() };
    app::runs::approve(&hub, &caller(&fleet.manager), requested.run.id, no_comment()).await.unwrap();
    app::runs::execute(&hub, &caller(&fleet.manager), requested.run.id).await.unwrap();
    assert_eq!(drain(&worker).await, ["succeeded", "succeeded"]);

    // The apply left each target's baseline; nothing is due before the hour.
    for target in [pg_target, my_target] {
        let state = app::drift::drift_of(&hub, target).await.unwrap().expect("a baseline after the apply");
        assert_eq!((state.baseline_run, state.drifted_since), (Some(requested.run.id), None));
    }
    assert!(worker.try_check_drift().await.unwrap().is_empty());
    // An hour on, nothing changed: checked, no drift.
    time.set(&(chrono::Utc::now() + chrono::Duration::minutes(61)).to_rfc3339(), 0);
    let checked = worker.try_check_drift().await.unwrap();
    assert_eq!(checked.len(), 2);
    assert!(checked.iter().all(|c| c.differences.is_empty() && !c.new), "{checked:?}");

    // Someone alters both by hand.
    sqlx::query("ALTER TABLE drift_a ADD COLUMN secret_flag boolean").execute(&pg.pool).await.unwrap();
    sqlx::query("CREATE TABLE drift_b (id integer)").execute(&pg.pool).await.unwrap();
    sqlx::query("ALTER TABLE drift_a DROP INDEX drift_a_note").execute(&my.pool).await.unwrap();
    time.set(&(chrono::Utc::now() + chrono::Duration::minutes(122)).to_rfc3339(), 0);
    let mut checked = worker.try_check_drift().await.unwrap();
    checked.sort_by_key(|c| c.target != pg_target);
    let named = |c: &executor::queue::DriftChecked| -> Vec<(String, &'static str)> {
        c.differences.iter().map(|d| (d.object.clone(), d.change.as_str())).collect()
    };
    assert_eq!(named(&checked[0]), [("table:drift_a".to_owned(), "changed"), ("table:drift_b".to_owned(), "added")]);
    assert_eq!(named(&checked[1]), [("index:drift_a.drift_a_note".to_owned(), "removed")]);
    assert!(checked.iter().all(|c| c.new));
    let audited: Vec<String> =
        sqlx::query_scalar("SELECT details::text FROM audit_events WHERE action = 'target.drift_detected' ORDER BY id")
            .fetch_all(&tool.pool)
            .await
            .unwrap();
    assert_eq!(audited.len(), 2);
    assert!(audited.iter().all(|d| !d.contains("secret_flag")), "names of objects only, never columns: {audited:?}");
    assert_eq!(app::drift::count_drifted(&hub).await.unwrap(), 2);

    // Accepting makes the schema as checked the baseline: the next check finds nothing.
    let refused = app::drift::accept(&hub, &caller(&fleet.manager), pg_target).await;
    assert!(matches!(refused, Err(app::AppError::Denied(Denial::NotAdmin))), "{refused:?}");
    for target in [pg_target, my_target] {
        let state = app::drift::accept(&hub, &caller(&admin), target).await.unwrap();
        assert_eq!((state.drifted_since, state.accepted_by), (None, Some(admin.id)));
    }
    assert_eq!(app::drift::count_drifted(&hub).await.unwrap(), 0);
    time.set(&(chrono::Utc::now() + chrono::Duration::minutes(183)).to_rfc3339(), 0);
    let checked = worker.try_check_drift().await.unwrap();
    assert_eq!(checked.len(), 2);
    assert!(checked.iter().all(|c| c.differences.is_empty()), "{checked:?}");
}
