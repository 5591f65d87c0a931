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
    let id = WorkerId::new();
    let mut conn = pool.acquire().await.unwrap();
    storage::workers::register(&mut conn, id, "test-host", 1, "test").await.unwrap();
    QueueWorker::new(pool.clone(), id, format!("test/{id}"), Settings::default(), Arc::new(NoMasterKey))
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
