//! Workers against a real tool database and real targets: claiming, leases and fencing, the concurrency
//! limit, failure policies, cancellation, retries, checksum re-verification, draining on SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use domain::enums::{Direction, Engine, FailurePolicy, TransactionMode};
use domain::ids::{RunId, WorkerId};
use domain::model::RunItem;
use domain::policy::{EnvironmentPolicy, PinnedChecksums};
use domain::run::{RunItemStatus, RunStatus};
use executor::queue::{NoMasterKey, QueueWorker, Settings};
use migrate_hub_tests::fleet::Fleet;
use migrate_hub_tests::{MySqlDatabase, PgDatabase};
use storage::PageRequest;
use storage::queue::{Ended, Ending};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

fn fast() -> Settings {
    Settings {
        lease: Duration::from_secs(5),
        poll_interval: Duration::from_millis(200),
        retry_base: Duration::from_millis(50),
        retry_max: Duration::from_millis(200),
        connect_timeout: Duration::from_secs(2),
        heartbeat: Duration::from_secs(1),
        ..Settings::default()
    }
}

/// A registered worker running in this process until the sender is dropped or fired.
async fn start_worker(pool: &sqlx::PgPool, settings: Settings) -> (oneshot::Sender<()>, JoinHandle<()>) {
    let id = WorkerId::new();
    let mut conn = pool.acquire().await.unwrap();
    storage::workers::register(&mut conn, id, "test-host", 1, "test").await.unwrap();
    drop(conn);
    let worker = QueueWorker::new(pool.clone(), id, format!("test/{id}"), settings, Arc::new(NoMasterKey));
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        worker
            .run(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (stop, handle)
}

async fn wait_for_end(pool: &sqlx::PgPool, run: RunId, within: Duration) -> RunStatus {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let mut conn = pool.acquire().await.unwrap();
        let status = storage::runs::get(&mut conn, run).await.unwrap().status;
        if status.is_terminal() {
            return status;
        }
        assert!(tokio::time::Instant::now() < deadline, "run still {status} after {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn items(pool: &sqlx::PgPool, run: RunId) -> Vec<RunItem> {
    let mut conn = pool.acquire().await.unwrap();
    storage::run_items::list_for_run(&mut conn, run, None, &PageRequest::first(100)).await.unwrap().items
}

fn statuses(items: &[RunItem]) -> Vec<RunItemStatus> {
    items.iter().map(|i| i.status).collect()
}

#[tokio::test]
async fn a_worker_applies_a_run_to_postgres_and_mariadb_targets_and_ends_it_once() {
    let tool = PgDatabase::migrated().await;
    let (pg1, pg2, my) = (PgDatabase::fresh().await, PgDatabase::fresh().await, MySqlDatabase::fresh().await);
    let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::production_default()).await;
    fleet.add_target("pg-1", &pg1.url, None).await;
    fleet.add_target("pg-2", &pg2.url, None).await;
    fleet.add_target("my-1", &my.url, None).await;
    let version = fleet
        .migration(
            "0001",
            "CREATE TABLE widgets (id int);\nINSERT INTO widgets VALUES (1);\n",
            Some("DROP TABLE widgets;"),
            TransactionMode::Transaction,
            Engine::Postgres,
        )
        .await;
    let run = fleet.queue_run(&version, Direction::Up, FailurePolicy::StopOnFirstFailure, 2).await;
    let (stop, handle) = start_worker(&tool.pool, fast()).await;
    assert_eq!(wait_for_end(&tool.pool, run.id, Duration::from_secs(30)).await, RunStatus::Succeeded);
    let done = items(&tool.pool, run.id).await;
    assert_eq!(statuses(&done), [RunItemStatus::Succeeded; 3]);
    assert!(done.iter().all(|i| i.statements_done == 2 && i.statements_total == Some(2) && i.lease_owner.is_none()));
    assert!(done.iter().all(|i| (i.migrations_done, i.migrations_total) == (1, Some(1))), "{done:?}");
    assert!(pg1.has_table("widgets").await && pg2.has_table("widgets").await);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM widgets").fetch_one(&my.pool).await.unwrap();
    assert_eq!(rows, 1);
    let (status, run_id): (String, Option<String>) =
        sqlx::query_as("SELECT status, run_id FROM migrate_hub_history WHERE version = '0001'")
            .fetch_one(&pg1.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), run_id), ("applied", Some(run.id.to_string())));

    // Every statement's log line is kept, in order. On Postgres the server's clock times the migration's
    // commit too; on MariaDB, whose DDL commits by itself, there is none.
    let mut conn = tool.pool.acquire().await.unwrap();
    for item in &done {
        let logs = storage::logs::list(&mut conn, item.id, &PageRequest::first(100)).await.unwrap().items;
        let messages: Vec<&str> = logs.iter().map(|l| l.message.as_str()).collect();
        assert!(messages[0].starts_with("attempt 1 of 3 by test/"), "{messages:?}");
        let applied = if messages[0].contains(" on my-1 ") {
            (messages[4] == "applied (2 statements)").then_some("")
        } else {
            messages[4].strip_prefix("applied (2 statements, committed in ").and_then(|m| m.strip_suffix(" ms)"))
        };
        assert!(
            applied.is_some_and(|ms| ms.is_empty() || ms.parse::<f64>().is_ok_and(|ms| ms < 5000.0)),
            "{messages:?}"
        );
        assert_eq!(
            [&messages[1..4], &messages[5..]].concat(),
            [
                "migration 1 of 1: 0001 migration 0001 (2 statements)",
                "0001 statement 1: CREATE TABLE widgets (id int)",
                "0001 statement 2: INSERT INTO widgets VALUES (1)",
                "1 of 1 migrations applied, 0 skipped",
                "succeeded"
            ]
        );
    }
    let logs = storage::logs::list(&mut conn, done[0].id, &PageRequest::first(100)).await.unwrap().items;
    // Statement lines name their migration and number statements from 1.
    let statements: Vec<_> = logs.iter().map(|l| (l.version_key.as_deref(), l.statement_index)).collect();
    assert_eq!(
        statements[1..],
        [
            (Some("0001"), None),
            (Some("0001"), Some(1)),
            (Some("0001"), Some(2)),
            (Some("0001"), None),
            (None, None),
            (None, None)
        ]
    );
    assert_eq!((logs[2].rows_affected, logs[3].rows_affected), (Some(0), Some(1)));

    // The run's two state changes by the worker are in the audit chain, once each, and it verifies.
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_events WHERE object_id = $1 ORDER BY id")
        .bind(run.id.to_string())
        .fetch_all(&tool.pool)
        .await
        .unwrap();
    assert_eq!(actions, ["run.running", "run.succeeded"]);
    let verified = audit::verify(&mut conn, None).await.unwrap();
    assert!(matches!(verified, audit::Verification::Intact { rows: 2 }), "{verified:?}");

    // A down run reverts it everywhere.
    let down = fleet.queue_run(&version, Direction::Down, FailurePolicy::Continue, 3).await;
    assert_eq!(wait_for_end(&tool.pool, down.id, Duration::from_secs(30)).await, RunStatus::Succeeded);
    assert!(!pg1.has_table("widgets").await);
    drop(stop);
    handle.await.unwrap();
}

#[tokio::test]
async fn claims_hold_the_concurrency_limit_across_concurrent_workers() {
    let tool = PgDatabase::migrated().await;
    let (fleet, version) = unreachable_fleet(&tool, 6).await;
    let run = fleet.queue_run(&version, Direction::Up, FailurePolicy::Continue, 2).await;
    // Twelve workers claim at the same instant, each asking for everything.
    let mut claims = Vec::new();
    for _ in 0..12 {
        let pool = tool.pool.clone();
        claims.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await.unwrap();
            storage::workers::register(&mut conn, WorkerId::new(), "h", 1, "t").await.map(|w| w.id).unwrap()
        }));
    }
    let mut workers = Vec::new();
    for c in claims {
        workers.push(c.await.unwrap());
    }
    let mut racing = Vec::new();
    for worker in workers.clone() {
        let pool = tool.pool.clone();
        racing.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await.unwrap();
            storage::queue::claim(&mut conn, worker, Duration::from_secs(30), 10).await.unwrap()
        }));
    }
    let mut got = Vec::new();
    for r in racing {
        got.extend(r.await.unwrap());
    }
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(|c| c.run == run.id && c.run_status == RunStatus::Queued && c.attempt == 1));
    // Nothing more while both are held; one ending frees exactly one slot.
    let mut conn = tool.pool.acquire().await.unwrap();
    assert!(storage::queue::claim(&mut conn, workers[0], Duration::from_secs(30), 10).await.unwrap().is_empty());
    let ending = Ending {
        status: RunItemStatus::Succeeded,
        duration: Duration::from_millis(5),
        error_code: None,
        error_message: None,
    };
    let ended = storage::queue::finish(&mut conn, got[0].item, got[0].token, &ending).await.unwrap();
    assert!(matches!(ended, Ended::Done { pending_left: true, cancelled_pending: 0, .. }), "{ended:?}");
    let next = storage::queue::claim(&mut conn, workers[1], Duration::from_secs(30), 10).await.unwrap();
    assert_eq!(next.len(), 1);
    let running: i64 = sqlx::query_scalar("SELECT count(*) FROM run_items WHERE run_id = $1 AND status = 'running'")
        .bind(run.id.as_uuid())
        .fetch_one(&tool.pool)
        .await
        .unwrap();
    assert_eq!(running, 2);
}

/// A claim whose snapshot was taken before another claim of the same run committed cannot see that claim's
/// items as running: it must count them from the run's row it locked (`claims_made`), or it takes more
/// than the limit allows. Claim A holds the run's row in an open transaction while claim B starts and
/// waits for it; A commits, and B gets only what is left.
#[tokio::test]
async fn a_claim_that_waited_for_another_counts_what_that_one_took() {
    let tool = PgDatabase::migrated().await;
    let (fleet, version) = unreachable_fleet(&tool, 6).await;
    let run = fleet.queue_run(&version, Direction::Up, FailurePolicy::Continue, 3).await;
    let mut conn = tool.pool.acquire().await.unwrap();
    let a = storage::workers::register(&mut conn, WorkerId::new(), "a", 1, "t").await.unwrap().id;
    let b = storage::workers::register(&mut conn, WorkerId::new(), "b", 1, "t").await.unwrap().id;
    let lease = Duration::from_secs(30);

    let mut first = tool.pool.begin().await.unwrap();
    let taken = storage::queue::claim(&mut first, a, lease, 2).await.unwrap();
    assert_eq!(taken.len(), 2);
    let pool = tool.pool.clone();
    let waiting = tokio::spawn(async move {
        let mut conn = pool.acquire().await.unwrap();
        storage::queue::claim(&mut conn, b, lease, 10).await.unwrap()
    });
    // B's statement has its snapshot and waits for the run's row.
    let blocked = async {
        loop {
            let waits: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&tool.pool)
            .await
            .unwrap();
            if waits > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), blocked).await.expect("the second claim never waited for the first");
    first.commit().await.unwrap();
    let second = waiting.await.unwrap();
    assert_eq!(second.len(), 1, "a limit of 3 with 2 taken leaves 1: {second:?}");
    let running: i64 = sqlx::query_scalar("SELECT count(*) FROM run_items WHERE run_id = $1 AND status = 'running'")
        .bind(run.id.as_uuid())
        .fetch_one(&tool.pool)
        .await
        .unwrap();
    assert_eq!(running, 3);
    // An ending gives exactly one slot back, without touching the run's row.
    let before: (i64, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("SELECT claims_made, updated_at FROM runs WHERE id = $1")
            .bind(run.id.as_uuid())
            .fetch_one(&tool.pool)
            .await
            .unwrap();
    let ending =
        Ending { status: RunItemStatus::Succeeded, duration: Duration::ZERO, error_code: None, error_message: None };
    let ended = storage::queue::finish(&mut conn, taken[0].item, taken[0].token, &ending).await.unwrap();
    assert!(matches!(ended, Ended::Done { pending_left: true, cancelled_pending: 0, waves: None, .. }), "{ended:?}");
    let after: (i64, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("SELECT claims_made, updated_at FROM runs WHERE id = $1")
            .bind(run.id.as_uuid())
            .fetch_one(&tool.pool)
            .await
            .unwrap();
    assert_eq!(before, after, "a plain ending leaves the run's row alone");
    assert_eq!(storage::queue::claim(&mut conn, a, lease, 10).await.unwrap().len(), 1);
    assert!(storage::queue::claim(&mut conn, b, lease, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn concurrent_endings_end_the_run_once_and_an_abandoned_run_is_swept() {
    let tool = PgDatabase::migrated().await;
    let (fleet, version) = unreachable_fleet(&tool, 8).await;
    let mut conn = tool.pool.acquire().await.unwrap();
    let worker = storage::workers::register(&mut conn, WorkerId::new(), "h", 1, "t").await.unwrap().id;
    let ending =
        Ending { status: RunItemStatus::Succeeded, duration: Duration::ZERO, error_code: None, error_message: None };

    // Eight items end at the same instant and each, seeing nothing pending, then tries to end the run: exactly
    // one does.
    let run = fleet.queue_run(&version, Direction::Up, FailurePolicy::Continue, 8).await;
    let claims = storage::queue::claim(&mut conn, worker, Duration::from_secs(30), 8).await.unwrap();
    assert_eq!(claims.len(), 8);
    storage::runs::set_status(&mut conn, run.id, RunStatus::Queued, RunStatus::Running, None).await.unwrap();
    let mut racing = Vec::new();
    for claim in claims {
        let (pool, ending) = (tool.pool.clone(), ending.clone());
        racing.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await.unwrap();
            let ending = Ending { error_code: None, error_message: None, ..ending };
            let ended = storage::queue::finish(&mut conn, claim.item, claim.token, &ending).await.unwrap();
            let last = matches!(ended, Ended::Done { pending_left: false, .. });
            (last, storage::queue::end_run(&mut conn, claim.run).await.unwrap())
        }));
    }
    let mut results = Vec::new();
    for r in racing {
        results.push(r.await.unwrap());
    }
    assert!(results.iter().all(|(last, _)| *last), "{results:?}");
    assert_eq!(results.iter().filter_map(|(_, ended)| *ended).collect::<Vec<_>>(), [RunStatus::Succeeded]);

    // The worker that ended the last item dies before ending the run: the sweeper ends it, once, and
    // leaves a run with an item still held alone.
    let abandoned = fleet.queue_run(&version, Direction::Up, FailurePolicy::Continue, 8).await;
    let claims = storage::queue::claim(&mut conn, worker, Duration::from_secs(30), 8).await.unwrap();
    storage::runs::set_status(&mut conn, abandoned.id, RunStatus::Queued, RunStatus::Running, None).await.unwrap();
    for claim in &claims[1..] {
        storage::queue::finish(&mut conn, claim.item, claim.token, &ending).await.unwrap();
    }
    assert!(storage::queue::sweep_runs(&mut conn, Duration::ZERO).await.unwrap().is_empty(), "an item is held");
    storage::queue::finish(&mut conn, claims[0].item, claims[0].token, &ending).await.unwrap();
    assert!(
        storage::queue::sweep_runs(&mut conn, Duration::from_secs(3600)).await.unwrap().is_empty(),
        "not idle long enough"
    );
    assert_eq!(
        storage::queue::sweep_runs(&mut conn, Duration::ZERO).await.unwrap(),
        [(abandoned.id, RunStatus::Succeeded)]
    );
    assert!(storage::queue::sweep_runs(&mut conn, Duration::ZERO).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_the_old_owner_is_fenced_out() {
    let tool = PgDatabase::migrated().await;
    let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::permissive_default()).await;
    fleet.add_target("t-1", "postgres://nobody@127.0.0.1:1/none", None).await;
    let version = fleet.migration("0001", "SELECT 1", None, TransactionMode::Transaction, Engine::Postgres).await;
    let run = fleet.queue_run(&version, Direction::Up, FailurePolicy::Continue, 1).await;
    let mut conn = tool.pool.acquire().await.unwrap();
    let (a, b) = (WorkerId::new(), WorkerId::new());
    storage::workers::register(&mut conn, a, "a", 1, "t").await.unwrap();
    storage::workers::register(&mut conn, b, "b", 2, "t").await.unwrap();
    let old = storage::queue::claim(&mut conn, a, Duration::from_millis(300), 1).await.unwrap().remove(0);
    assert!(
        storage::queue::claim(&mut conn, b, Duration::from_secs(30), 1).await.unwrap().is_empty(),
        "lease still held"
    );
    // A write with no lines is the worker's lease check.
    let check = storage::queue::Progress::default();
    assert_eq!(
        storage::queue::log(&mut conn, old.item, old.token, &check, &[]).await.unwrap(),
        Some(RunStatus::Queued)
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The lease has expired: the check fails for the old owner and another worker takes the item.
    assert_eq!(storage::queue::log(&mut conn, old.item, old.token, &check, &[]).await.unwrap(), None);
    let new = storage::queue::claim(&mut conn, b, Duration::from_secs(30), 1).await.unwrap().remove(0);
    assert_eq!((new.item, new.token, new.attempt), (old.item, old.token + 1, 2));
    // Whatever the old owner still tries is refused.
    assert!(
        storage::queue::renew(&mut conn, a, &[(old.item, old.token)], Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty()
    );
    let line = domain::model::NewLogLine {
        level: domain::enums::LogLevel::Info,
        message: "stale".into(),
        version_key: Some("0001".into()),
        statement_index: Some(1),
        duration_ms: None,
        rows_affected: None,
    };
    let progress = storage::queue::Progress {
        migrations_done: Some(0),
        migrations_total: Some(1),
        statements_done: Some(1),
        statements_total: None,
    };
    assert_eq!(
        storage::queue::log(&mut conn, old.item, old.token, &progress, std::slice::from_ref(&line)).await.unwrap(),
        None
    );
    let mut tx = tool.pool.begin().await.unwrap();
    let ending =
        Ending { status: RunItemStatus::Failed, duration: Duration::ZERO, error_code: Some("x"), error_message: None };
    assert_eq!(storage::queue::finish(&mut tx, old.item, old.token, &ending).await.unwrap(), Ended::Fenced);
    assert_eq!(storage::queue::release(&mut tx, old.item, old.token, Duration::ZERO, true, None).await.unwrap(), None);
    tx.commit().await.unwrap();
    // The new owner's writes count, and its ending ends the run.
    let progress = storage::queue::Progress { statements_total: Some(1), ..progress };
    assert!(
        storage::queue::log(&mut conn, new.item, new.token, &progress, std::slice::from_ref(&line))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        storage::queue::renew(&mut conn, b, &[(new.item, new.token)], Duration::from_secs(30)).await.unwrap(),
        [new.item]
    );
    storage::runs::set_status(&mut conn, run.id, RunStatus::Queued, RunStatus::Running, None).await.unwrap();
    let ok = Ending { status: RunItemStatus::Succeeded, ..ending };
    let ended = storage::queue::finish(&mut conn, new.item, new.token, &ok).await.unwrap();
    assert!(matches!(ended, Ended::Done { pending_left: false, .. }), "{ended:?}");
    // The worker whose ending left nothing held ends the run, exactly once.
    assert_eq!(storage::queue::end_run(&mut conn, run.id).await.unwrap(), Some(RunStatus::Succeeded));
    assert_eq!(storage::queue::end_run(&mut conn, run.id).await.unwrap(), None);
    let logs = storage::logs::list(&mut conn, new.item, &PageRequest::first(10)).await.unwrap().items;
    assert_eq!(logs.len(), 1, "only the owner's line was kept");
}

/// `count` targets nothing can reach (the queue's statements alone are under test) and one migration.
async fn unreachable_fleet(tool: &PgDatabase, count: usize) -> (Fleet, domain::model::MigrationVersion) {
    let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::permissive_default()).await;
    for i in 0..count {
        fleet.add_target(&format!("t-{i}"), "postgres://nobody@127.0.0.1:1/none", None).await;
    }
    let version = fleet.migration("0001", "SELECT 1", None, TransactionMode::Transaction, Engine::Postgres).await;
    (fleet, version)
}

/// Three targets (in name order); the middle one already has the table, so creating it fails there.
async fn fleet_failing_on_the_second(
    tool: &PgDatabase,
    dbs: &[PgDatabase],
) -> (Fleet, domain::model::MigrationVersion) {
    let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::permissive_default()).await;
    for (i, db) in dbs.iter().enumerate() {
        fleet.add_target(&format!("t-{i}"), &db.url, None).await;
    }
    sqlx::query("CREATE TABLE gadgets (id int)").execute(&dbs[1].pool).await.unwrap();
    let version = fleet
        .migration("0001", "CREATE TABLE gadgets (id int);", None, TransactionMode::Transaction, Engine::Postgres)
        .await;
    (fleet, version)
}

#[tokio::test]
async fn stop_on_first_failure_cancels_what_has_not_started_and_continue_goes_on() {
    let tool = PgDatabase::migrated().await;
    let dbs = [PgDatabase::fresh().await, PgDatabase::fresh().await, PgDatabase::fresh().await];
    let (fleet, version) = fleet_failing_on_the_second(&tool, &dbs).await;
    let (stop, handle) = start_worker(&tool.pool, Settings { slots: 1, batch: 1, ..fast() }).await;

    let run = fleet.queue_run(&version, Direction::Up, FailurePolicy::StopOnFirstFailure, 1).await;
    assert_eq!(wait_for_end(&tool.pool, run.id, Duration::from_secs(30)).await, RunStatus::Failed);
    let done = items(&tool.pool, run.id).await;
    assert_eq!(statuses(&done), [RunItemStatus::Succeeded, RunItemStatus::Failed, RunItemStatus::Cancelled]);
    assert_eq!(done[1].error_code.as_deref(), Some("sql_error"));
    assert!(done[1].error_message.as_deref().unwrap().contains("already exists"), "{:?}", done[1].error_message);
    assert_eq!(done[1].attempts, 1, "SQL errors are never retried");
    assert!(!dbs[2].has_table("gadgets").await);

    // The same content with `continue`: the first target skips (already applied), the third applies.
    let run = fleet.queue_run(&version, Direction::Up, FailurePolicy::Continue, 1).await;
    assert_eq!(wait_for_end(&tool.pool, run.id, Duration::from_secs(30)).await, RunStatus::Failed);
    let done = items(&tool.pool, run.id).await;
    assert_eq!(statuses(&done), [RunItemStatus::Skipped, RunItemStatus::Failed, RunItemStatus::Succeeded]);
    assert!(dbs[2].has_table("gadgets").await);
    drop(stop);
    handle.await.unwrap();
}

#[tokio::test]
async fn cancelling_a_run_stops_its_running_item_at_the_next_statement() {
    let tool = PgDatabase::migrated().await;
    let target = PgDatabase::fresh().await;
    let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::permissive_default()).await;
    fleet.add_target("t-1", &target.url, None).await;
    let version = fleet
        .migration(
            "0001",
            "CREATE TABLE before_sleep (id int);\nSELECT pg_sleep(1.5);\nCREATE TABLE after_sleep (id int);\n",
            None,
            TransactionMode::None,
            Engine::Postgres,
        )
        .await;
    let (stop, handle) = start_worker(&tool.pool, fast()).await;
    let run = fleet.queue_run(&version, Direction::Up, FailurePolicy::StopOnFirstFailure, 1).await;
    // Wait until the sleep is running on the target (the worker writes its progress in batches, so the tool
    // database may not show the first statement done yet), then cancel as the API will: the run, then its
    // pending items.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let sleeping: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND state = 'active' AND query LIKE 'SELECT pg\\_sleep(1.5)%' \
               AND pid <> pg_backend_pid()",
        )
        .fetch_one(&target.pool)
        .await
        .unwrap();
        if sleeping > 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the sleep never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(target.has_table("before_sleep").await, "statement 1 ran before the sleep");
    let mut tx = tool.pool.begin().await.unwrap();
    storage::runs::set_status(&mut tx, run.id, RunStatus::Running, RunStatus::Cancelled, Some(fleet.manager.id))
        .await
        .unwrap();
    storage::run_items::cancel_pending(&mut tx, run.id).await.unwrap();
    tx.commit().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let item = loop {
        let item = items(&tool.pool, run.id).await.remove(0);
        if item.status.is_terminal() {
            break item;
        }
        assert!(tokio::time::Instant::now() < deadline, "the item did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(item.status, RunItemStatus::Cancelled);
    assert_eq!(item.statements_done, 2, "stopped at the boundary after the sleep");
    assert!(
        item.error_message.as_deref().unwrap().starts_with(
            "run cancelled before statement 3 of 0001; statements before it were applied (see the target's history)"
        ),
        "{:?}",
        item.error_message
    );
    assert!(target.has_table("before_sleep").await && !target.has_table("after_sleep").await);
    // The target says so too: the half-applied migration needs recovery.
    let status: String = sqlx::query_scalar("SELECT status FROM migrate_hub_history WHERE version = '0001'")
        .fetch_one(&target.pool)
        .await
        .unwrap();
    assert_eq!(status, "failed");
    drop(stop);
    handle.await.unwrap();
}

#[tokio::test]
async fn connection_errors_are_retried_with_backoff_then_fail() {
    let tool = PgDatabase::migrated().await;
    let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::permissive_default()).await;
    fleet.add_target("unreachable", "postgres://app@127.0.0.1:1/app", None).await;
    let version = fleet.migration("0001", "SELECT 1", None, TransactionMode::Transaction, Engine::Postgres).await;
    let (stop, handle) = start_worker(&tool.pool, fast()).await;
    let run = fleet.queue_run(&version, Direction::Up, FailurePolicy::StopOnFirstFailure, 1).await;
    assert_eq!(wait_for_end(&tool.pool, run.id, Duration::from_secs(30)).await, RunStatus::Failed);
    let item = items(&tool.pool, run.id).await.remove(0);
    assert_eq!((item.status, item.attempts), (RunItemStatus::Failed, 3));
    assert_eq!(item.error_code.as_deref(), Some("connect"));
    assert!(item.error_message.as_deref().unwrap().ends_with("(gave up after 3 attempts)"), "{:?}", item.error_message);
    let mut conn = tool.pool.acquire().await.unwrap();
    let logs = storage::logs::list(&mut conn, item.id, &PageRequest::first(20)).await.unwrap().items;
    let retries = logs.iter().filter(|l| l.message.contains("retrying in")).count();
    assert_eq!(retries, 2, "{logs:?}");
    drop(stop);
    handle.await.unwrap();
}

#[tokio::test]
async fn tampered_sql_and_approvals_for_other_content_are_refused_by_the_worker() {
    let tool = PgDatabase::migrated().await;
    let target = PgDatabase::fresh().await;
    let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::production_default()).await;
    fleet.add_target("t-1", &target.url, None).await;
    let version = fleet
        .migration("0001", "CREATE TABLE approved (id int);", None, TransactionMode::Transaction, Engine::Postgres)
        .await;
    let (stop, handle) = start_worker(&tool.pool, fast()).await;

    // An approval pinned to other content (a wrong content checksum) does not let anything run.
    // It is the content checksum of a release of the same migration key with other SQL.
    let key = domain::values::VersionKey::parse("0001").unwrap();
    let tampered = PinnedChecksums { up: domain::checksum::Checksum::of("DROP TABLE everything;"), down: None };
    let other = domain::release::content_checksum([(&key, &tampered)]);
    assert_ne!(other, fleet.content(std::slice::from_ref(&version)).await);
    let run = fleet.queue_run_pinned(&version, Direction::Up, FailurePolicy::StopOnFirstFailure, 1, Some(other)).await;
    assert_eq!(wait_for_end(&tool.pool, run.id, Duration::from_secs(30)).await, RunStatus::Failed);
    let item = items(&tool.pool, run.id).await.remove(0);
    assert_eq!(item.error_code.as_deref(), Some("checksum_mismatch"));
    assert!(
        item.error_message.as_deref().unwrap().contains("the run has 0 of the 1 approvals it needs: refusing to apply"),
        "{:?}",
        item.error_message
    );

    // The stored SQL changed behind the hub's back (the immutability trigger bypassed by a superuser).
    sqlx::raw_sql(
        "ALTER TABLE migration_versions DISABLE TRIGGER USER; \
         UPDATE migration_versions SET up_sql = 'CREATE TABLE sneaky (id int);'; \
         ALTER TABLE migration_versions ENABLE TRIGGER USER;",
    )
    .execute(&tool.pool)
    .await
    .unwrap();
    let run = fleet.queue_run(&version, Direction::Up, FailurePolicy::StopOnFirstFailure, 1).await;
    assert_eq!(wait_for_end(&tool.pool, run.id, Duration::from_secs(30)).await, RunStatus::Failed);
    let item = items(&tool.pool, run.id).await.remove(0);
    assert_eq!(item.error_code.as_deref(), Some("checksum_mismatch"));
    assert!(
        item.error_message.as_deref().unwrap().contains("no longer matches its pinned content"),
        "{:?}",
        item.error_message
    );
    assert!(!target.has_table("sneaky").await && !target.has_table("approved").await);
    drop(stop);
    handle.await.unwrap();
}

#[tokio::test]
async fn notify_wakes_an_idle_worker_long_before_its_next_poll() {
    let tool = PgDatabase::migrated().await;
    let target = PgDatabase::fresh().await;
    let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::permissive_default()).await;
    fleet.add_target("t-1", &target.url, None).await;
    let version = fleet.migration("0001", "SELECT 1", None, TransactionMode::Transaction, Engine::Postgres).await;
    let (stop, handle) =
        start_worker(&tool.pool, Settings { poll_interval: Duration::from_secs(3600), ..fast() }).await;
    // Let the worker's first (empty) claim pass, so only a notification can wake it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let run = fleet.queue_run(&version, Direction::Up, FailurePolicy::Continue, 1).await;
    assert_eq!(wait_for_end(&tool.pool, run.id, Duration::from_secs(20)).await, RunStatus::Succeeded);
    drop(stop);
    handle.await.unwrap();
}

#[tokio::test]
async fn sigterm_lets_the_running_item_finish_then_the_worker_exits() {
    let tool = PgDatabase::migrated().await;
    let target = PgDatabase::fresh().await;
    let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::permissive_default()).await;
    fleet.add_target("t-1", &target.url, None).await;
    let version = fleet
        .migration(
            "0001",
            "SELECT pg_sleep(1);\nCREATE TABLE drained (id int);",
            None,
            TransactionMode::None,
            Engine::Postgres,
        )
        .await;
    let mut worker = std::process::Command::new(migrate_hub_tests::binary("migrate-hub-worker"))
        .env("DATABASE_URL", &tool.url)
        .env("MIGRATE_HUB_POLL_MS", "100")
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let run = fleet.queue_run(&version, Direction::Up, FailurePolicy::Continue, 1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while items(&tool.pool, run.id).await[0].statements_done < 1 {
        assert!(tokio::time::Instant::now() < deadline, "the item never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = i32::try_from(worker.id()).unwrap();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap().success());
    let status = tokio::task::spawn_blocking(move || worker.wait().unwrap()).await.unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(items(&tool.pool, run.id).await[0].status, RunItemStatus::Succeeded);
    assert!(target.has_table("drained").await);
    let stopped: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM workers WHERE status = 'stopped'")
        .fetch_one(&tool.pool)
        .await
        .unwrap();
    assert_eq!(stopped, 1);
}

/// A worker registered for driving the queue step by step with `try_execute_one`.
async fn stepping_worker(pool: &sqlx::PgPool) -> QueueWorker {
    let id = WorkerId::new();
    let mut conn = pool.acquire().await.unwrap();
    storage::workers::register(&mut conn, id, "test-host", 1, "test").await.unwrap();
    QueueWorker::new(pool.clone(), id, format!("test/{id}"), fast(), Arc::new(NoMasterKey))
}

/// A tool database with two Postgres targets and one migration that creates `table` on them.
async fn two_targets_one_table(
    table: &str,
) -> (PgDatabase, Fleet, domain::model::MigrationVersion, (PgDatabase, PgDatabase)) {
    let tool = PgDatabase::migrated().await;
    let (one, two) = (PgDatabase::fresh().await, PgDatabase::fresh().await);
    let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::production_default()).await;
    fleet.add_target("one", &one.url, None).await;
    fleet.add_target("two", &two.url, None).await;
    let up = format!("CREATE TABLE {table} (id integer);");
    let version = fleet.migration("001", &up, None, TransactionMode::Transaction, Engine::Postgres).await;
    (tool, fleet, version, (one, two))
}

/// A worker claims through one tool-database connection it keeps; when the server ends that connection,
/// the next claim is sent again on another at once instead of finding nothing until the next wake-up.
#[tokio::test]
async fn a_claim_goes_through_when_its_kept_connection_was_ended() {
    let (tool, fleet, version, _targets) = two_targets_one_table("kept").await;
    let worker = stepping_worker(&tool.pool).await;
    let run = fleet.queue_release(&[version], Direction::Up, FailurePolicy::Continue, 1, None).await;
    assert_eq!(worker.try_execute_one().await.map(|o| o.result), Some("succeeded"));
    // The session whose last statement was the claim: the kept connection (waited for until it is gone).
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE '-- Claims up to%'",
    )
    .fetch_all(&tool.pool)
    .await
    .unwrap();
    assert_eq!(ended, [true], "one session claims");
    assert_eq!(worker.try_execute_one().await.map(|o| o.result), Some("succeeded"), "the second item is claimed");
    assert_eq!(wait_for_end(&tool.pool, run.id, Duration::from_secs(5)).await, RunStatus::Succeeded);
}

/// In a pool of two connections (the least a worker accepts), the listener holds one and the claims do not
/// keep the other: the items still get a connection and the release is applied.
#[tokio::test]
async fn a_worker_with_two_tool_database_connections_still_applies() {
    let (tool, fleet, version, (one, two)) = two_targets_one_table("small_pool").await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(3))
        .connect(&tool.url)
        .await
        .unwrap();
    let (stop, handle) = start_worker(&pool, fast()).await;
    let run = fleet.queue_release(&[version], Direction::Up, FailurePolicy::Continue, 2, None).await;
    assert_eq!(wait_for_end(&tool.pool, run.id, Duration::from_secs(20)).await, RunStatus::Succeeded);
    assert!(one.has_table("small_pool").await && two.has_table("small_pool").await);
    drop(stop);
    handle.await.unwrap();
}

#[tokio::test]
async fn a_release_is_applied_per_target_in_one_session_step_by_step() {
    let tool = PgDatabase::migrated().await;
    let (pg, my) = (PgDatabase::fresh().await, MySqlDatabase::fresh().await);
    let mut fleet = Fleet::new(&tool.pool, EnvironmentPolicy::production_default()).await;
    fleet.add_target("pg", &pg.url, None).await;
    fleet.add_target("my", &my.url, None).await;
    let mut versions = Vec::new();
    for (key, table) in [("001", "a"), ("002", "b"), ("003", "c")] {
        let up = format!("CREATE TABLE rel_{table} (id integer);\nINSERT INTO rel_{table} VALUES (1);");
        let down = format!("DROP TABLE rel_{table};");
        versions.push(fleet.migration(key, &up, Some(&down), TransactionMode::Transaction, Engine::Postgres).await);
    }
    let worker = stepping_worker(&tool.pool).await;
    let run = fleet.queue_release(&versions, Direction::Up, FailurePolicy::Continue, 2, None).await;
    let first = worker.try_execute_one().await.expect("an item is claimable");
    let second = worker.try_execute_one().await.expect("a second item is claimable");
    assert_eq!((first.result, second.result), ("succeeded", "succeeded"));
    assert_eq!(worker.try_execute_one().await, None, "nothing left to claim");
    assert_eq!(wait_for_end(&tool.pool, run.id, Duration::from_secs(5)).await, RunStatus::Succeeded);
    let applied = "SELECT version FROM migrate_hub_history WHERE status = 'applied' ORDER BY version";
    let pg_rows: Vec<String> = sqlx::query_scalar(applied).fetch_all(&pg.pool).await.unwrap();
    let my_rows: Vec<String> = sqlx::query_scalar(applied).fetch_all(&my.pool).await.unwrap();
    assert_eq!(pg_rows, ["001", "002", "003"]);
    assert_eq!(my_rows, ["001", "002", "003"]);
    for item in items(&tool.pool, run.id).await {
        assert_eq!((item.migrations_done, item.migrations_total), (3, Some(3)), "{item:?}");
        let mut conn = tool.pool.acquire().await.unwrap();
        let lines = storage::logs::list(&mut conn, item.id, &PageRequest::first(500)).await.unwrap().items;
        let statements: Vec<(Option<&str>, Option<u32>)> = lines
            .iter()
            .filter(|l| l.statement_index.is_some())
            .map(|l| (l.version_key.as_deref(), l.statement_index))
            .collect();
        assert_eq!(
            statements,
            [
                (Some("001"), Some(1)),
                (Some("001"), Some(2)),
                (Some("002"), Some(1)),
                (Some("002"), Some(2)),
                (Some("003"), Some(1)),
                (Some("003"), Some(2)),
            ],
            "one line per statement, numbered from 1 within its migration"
        );
    }
    // The hub leaves no session behind on the target.
    let sessions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'migrate-hub'",
    )
    .fetch_one(&pg.pool)
    .await
    .unwrap();
    assert_eq!(sessions, 0, "the hub's session is closed after the item");

    // A release of the three and a fourth that fails: the three are skipped, the fourth's error names it,
    // and its transaction left nothing behind.
    let broken = fleet
        .migration(
            "004",
            "CREATE TABLE rel_d (id integer);\nSELECT no_such_function();",
            None,
            TransactionMode::Transaction,
            Engine::Postgres,
        )
        .await;
    let mut all = versions.clone();
    all.push(broken);
    let run = fleet.queue_release(&all, Direction::Up, FailurePolicy::Continue, 2, None).await;
    let outcomes = [worker.try_execute_one().await.unwrap(), worker.try_execute_one().await.unwrap()];
    assert!(outcomes.iter().all(|o| o.result == "failed"), "{outcomes:?}");
    assert_eq!(wait_for_end(&tool.pool, run.id, Duration::from_secs(5)).await, RunStatus::Failed);
    for item in items(&tool.pool, run.id).await {
        let message = item.error_message.clone().unwrap_or_default();
        assert!(message.starts_with("004: statement 2 failed"), "{message}");
        assert_eq!(item.migrations_done, 3, "{item:?}");
    }
    let pg_rows: Vec<String> = sqlx::query_scalar(applied).fetch_all(&pg.pool).await.unwrap();
    assert_eq!(pg_rows, ["001", "002", "003"]);
    let leftover: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('rel_d')::text").fetch_one(&pg.pool).await.unwrap();
    assert_eq!(leftover, None, "004's transaction was rolled back on Postgres");

    // Down to nothing: newest first, in one session.
    let mut reverse = versions.clone();
    reverse.reverse();
    let run = fleet.queue_release(&reverse, Direction::Down, FailurePolicy::Continue, 2, None).await;
    assert_eq!(worker.try_execute_one().await.unwrap().result, "succeeded");
    assert_eq!(worker.try_execute_one().await.unwrap().result, "succeeded");
    assert_eq!(wait_for_end(&tool.pool, run.id, Duration::from_secs(5)).await, RunStatus::Succeeded);
    let pg_rows: Vec<String> = sqlx::query_scalar(applied).fetch_all(&pg.pool).await.unwrap();
    assert!(pg_rows.is_empty(), "{pg_rows:?}");
}
