//! The storage layer against a real tool database: every entity round-trips through its typed functions,
//! lists paginate, and database errors arrive as not-found / conflict / reference.

use std::collections::BTreeMap;
use std::time::Duration;

use domain::checksum::Checksum;
use domain::enums::{
    ActorKind, ApprovalDecision, Direction, Engine, FailurePolicy, LogLevel, Role, TlsMode, TokenScope, TransactionMode,
};
use domain::ids::{TargetId, UserId, WorkerId};
use domain::model::{
    AuditActor, NewApiToken, NewApproval, NewEnvironment, NewLogLine, NewMigrationVersion, NewRun, NewUser,
    SealedSecret, SecretSource, Severity, StatementRange, TargetSpec, ValidationMessage,
};
use domain::policy::{EnvironmentPolicy, PinnedChecksums};
use domain::run::{RunItemStatus, RunStatus};
use domain::values::{DisplayName, Email, Identifier, MigrationName, Name, VersionKey};
use migrate_hub_tests::PgDatabase;
use storage::{PageRequest, StorageError};

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

fn name(s: &str) -> Name {
    Name::parse(s).unwrap()
}

async fn user(conn: &mut storage::PgConnection, address: &str, role: Role) -> domain::model::User {
    storage::users::create(
        conn,
        &NewUser {
            email: email(address),
            display_name: DisplayName::parse("Test User").unwrap(),
            role,
            oidc_identity: None,
            password_hash: None,
        },
    )
    .await
    .unwrap()
}

fn spec(target: &str, engine: Engine) -> TargetSpec {
    TargetSpec {
        name: name(target),
        engine,
        host: "127.0.0.1".into(),
        port: 5432,
        database: "app".into(),
        schema: Some(Identifier::parse("public").unwrap()),
        username: "app".into(),
        tls_mode: TlsMode::Prefer,
        labels: BTreeMap::from([("tier".into(), "gold".into())]),
        variables: BTreeMap::from([("schema".into(), "tenant_1".into())]),
    }
}

#[tokio::test]
async fn users_round_trip_and_conflict_on_email() {
    let db = PgDatabase::migrated().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let alice = user(&mut conn, "alice@example.com", Role::User).await;
    assert_eq!(storage::users::get(&mut conn, alice.id).await.unwrap(), alice);
    assert_eq!(storage::users::find_by_email(&mut conn, &alice.email).await.unwrap(), Some(alice.clone()));

    let again = storage::users::create(
        &mut conn,
        &NewUser {
            email: email("ALICE@example.com"),
            display_name: DisplayName::parse("Other").unwrap(),
            role: Role::Admin,
            oidc_identity: None,
            password_hash: None,
        },
    )
    .await
    .unwrap_err();
    assert!(again.is_conflict_on("users_email_key"), "{again:?}");

    let manager = storage::users::set_role(&mut conn, alice.id, Role::Manager).await.unwrap();
    assert_eq!(manager.role, Role::Manager);
    assert!(storage::users::set_disabled(&mut conn, alice.id, true).await.unwrap().disabled);

    let identity = domain::model::OidcIdentity { issuer: "https://issuer".into(), subject: "sub-1".into() };
    let logged_in =
        storage::users::record_login(&mut conn, alice.id, Some(&identity), &DisplayName::parse("Alice A").unwrap())
            .await
            .unwrap();
    assert_eq!(logged_in.oidc_identity, Some(identity.clone()));
    assert!(logged_in.last_login_at.is_some());
    assert_eq!(storage::users::find_by_oidc(&mut conn, &identity).await.unwrap().map(|u| u.id), Some(alice.id));

    // A second login never rebinds the identity to another subject.
    let other = domain::model::OidcIdentity { issuer: "https://issuer".into(), subject: "sub-2".into() };
    let relogin =
        storage::users::record_login(&mut conn, alice.id, Some(&other), &logged_in.display_name).await.unwrap();
    assert_eq!(relogin.oidc_identity, Some(identity));

    let missing = storage::users::get(&mut conn, UserId::new()).await.unwrap_err();
    assert!(matches!(missing, StorageError::NotFound("user")), "{missing:?}");

    assert!(storage::users::password_hash(&mut conn, &alice.email).await.unwrap().is_none());
    storage::users::set_password_hash(&mut conn, alice.id, Some("$argon2id$v=19$stub")).await.unwrap();
    // Disabled users have no usable password.
    assert!(storage::users::password_hash(&mut conn, &alice.email).await.unwrap().is_none());
    storage::users::set_disabled(&mut conn, alice.id, false).await.unwrap();
    assert!(storage::users::password_hash(&mut conn, &alice.email).await.unwrap().is_some());
}

#[tokio::test]
async fn lists_paginate_by_key() {
    let db = PgDatabase::migrated().await;
    let mut conn = db.pool.acquire().await.unwrap();
    for i in 0..7 {
        user(&mut conn, &format!("user{i}@example.com"), Role::User).await;
    }
    let mut seen = Vec::new();
    let mut page = PageRequest::first(3);
    loop {
        let result = storage::users::list(&mut conn, &page).await.unwrap();
        assert!(result.items.len() <= 3);
        seen.extend(result.items.iter().map(|u| u.email.to_string()));
        match result.next {
            Some(next) => page = PageRequest::after(next, 3),
            None => break,
        }
    }
    let expected: Vec<String> = (0..7).map(|i| format!("user{i}@example.com")).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn tokens_are_found_by_hash_and_revoked() {
    let db = PgDatabase::migrated().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let owner = user(&mut conn, "ci@example.com", Role::User).await;
    let new = NewApiToken {
        user_id: owner.id,
        name: "ci".into(),
        prefix: "mh_abcd".into(),
        hash: [9; 32],
        scope: TokenScope::Write,
        created_by: owner.id,
        expires_at: None,
    };
    let token = storage::tokens::create(&mut conn, &new).await.unwrap();
    assert_eq!(storage::tokens::find_by_hash(&mut conn, &[9; 32]).await.unwrap(), Some((token.clone(), vec![9; 32])));
    assert_eq!(storage::tokens::find_by_hash(&mut conn, &[8; 32]).await.unwrap(), None);
    assert!(storage::tokens::create(&mut conn, &new).await.unwrap_err().is_conflict_on("api_tokens_hash_key"));

    storage::tokens::touch(&mut conn, token.id).await.unwrap();
    assert!(storage::tokens::get(&mut conn, token.id).await.unwrap().last_used_at.is_some());
    let revoked = storage::tokens::revoke(&mut conn, token.id).await.unwrap();
    assert!(!revoked.is_usable_at(chrono::Utc::now()));
    let listed = storage::tokens::list_for_user(&mut conn, owner.id, &PageRequest::first(10)).await.unwrap();
    assert_eq!(listed.items.len(), 1);
}

#[tokio::test]
async fn inventory_round_trips_and_sets_stay_within_one_environment() {
    let db = PgDatabase::migrated().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let prod = storage::environments::create(
        &mut conn,
        &NewEnvironment {
            name: name("prod"),
            description: "production".into(),
            policy: EnvironmentPolicy::production_default(),
        },
    )
    .await
    .unwrap();
    assert_eq!(prod.policy, EnvironmentPolicy::production_default());
    let dev = storage::environments::create(
        &mut conn,
        &NewEnvironment {
            name: name("dev"),
            description: String::new(),
            policy: EnvironmentPolicy::permissive_default(),
        },
    )
    .await
    .unwrap();
    assert_eq!(storage::environments::get(&mut conn, dev.id).await.unwrap(), dev);
    let mut stricter = EnvironmentPolicy::production_default();
    stricter.approvals_required = 2;
    stricter.statement_timeout = Some(Duration::from_secs(30));
    let updated = storage::environments::update(&mut conn, prod.id, "two approvals", &stricter).await.unwrap();
    assert_eq!(updated.policy, stricter);
    let names: Vec<String> = storage::environments::list(&mut conn, &PageRequest::first(10))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.name.to_string())
        .collect();
    assert_eq!(names, ["dev", "prod"]);

    let a = storage::targets::create(&mut conn, TargetId::new(), prod.id, &spec("tenant-a", Engine::Postgres), None)
        .await
        .unwrap();
    let b = storage::targets::create(
        &mut conn,
        TargetId::new(),
        prod.id,
        &spec("tenant-b", Engine::Mysql),
        Some("env:TENANT_B_PASSWORD"),
    )
    .await
    .unwrap();
    let foreign =
        storage::targets::create(&mut conn, TargetId::new(), dev.id, &spec("tenant-a", Engine::Postgres), None)
            .await
            .unwrap();
    assert_eq!(a.secret, SecretSource::None);
    assert_eq!(b.secret, SecretSource::Reference { reference: "env:TENANT_B_PASSWORD".into() });
    assert_eq!(storage::targets::get(&mut conn, a.id).await.unwrap(), a);
    let duplicate =
        storage::targets::create(&mut conn, TargetId::new(), prod.id, &spec("tenant-a", Engine::Postgres), None)
            .await
            .unwrap_err();
    assert!(duplicate.is_conflict_on("db_targets_env_name_key"), "{duplicate:?}");

    let sealed = SealedSecret { key_id: "k1".into(), nonce: [1; 12], ciphertext: vec![7; 32] };
    let with_secret = storage::targets::set_sealed_secret(&mut conn, a.id, &sealed).await.unwrap();
    assert_eq!(with_secret.secret, SecretSource::Sealed { key_id: "k1".into() });
    assert_eq!(storage::targets::sealed_secret(&mut conn, a.id).await.unwrap(), Some(sealed.clone()));
    let pending = storage::targets::sealed_not_under_key(&mut conn, "k2", &PageRequest::first(10)).await.unwrap();
    assert_eq!(pending.items, vec![a.id]);
    let resealed = SealedSecret { key_id: "k2".into(), nonce: [2; 12], ciphertext: vec![8; 32] };
    assert!(storage::targets::reseal_secret(&mut conn, a.id, &sealed, &resealed).await.unwrap());
    // A second rotation from the stale value changes nothing.
    assert!(!storage::targets::reseal_secret(&mut conn, a.id, &sealed, &resealed).await.unwrap());

    let search = storage::targets::list(&mut conn, prod.id, Some("-b"), &PageRequest::first(10)).await.unwrap();
    assert_eq!(search.items.iter().map(|t| t.id).collect::<Vec<_>>(), vec![b.id]);

    let set = storage::db_sets::create(&mut conn, prod.id, &name("all-tenants"), "").await.unwrap();
    assert_eq!(storage::db_sets::add_members(&mut conn, set.id, &[a.id, b.id]).await.unwrap(), 2);
    assert_eq!(storage::db_sets::add_members(&mut conn, set.id, &[a.id]).await.unwrap(), 0, "adding twice is a no-op");
    let refused = storage::db_sets::add_members(&mut conn, set.id, &[foreign.id]).await.unwrap_err();
    assert!(matches!(refused, StorageError::Reference { .. }), "{refused:?}");
    assert_eq!(storage::db_sets::count_members(&mut conn, set.id).await.unwrap(), 2);
    let members = storage::db_sets::list_members(&mut conn, set.id, None, &PageRequest::first(1)).await.unwrap();
    assert_eq!(members.items[0].id, a.id);
    assert_eq!(members.next, Some(name("tenant-a")));
    assert_eq!(storage::db_sets::remove_members(&mut conn, set.id, &[a.id]).await.unwrap(), 1);

    // A target used by a set can still be deleted (membership goes with it); an unknown one is not found.
    storage::targets::delete(&mut conn, a.id).await.unwrap();
    assert!(matches!(storage::targets::delete(&mut conn, a.id).await.unwrap_err(), StorageError::NotFound("target")));
}

/// The whole chain of records a run needs, created through storage.
#[tokio::test]
async fn runs_items_approvals_and_logs() {
    let db = PgDatabase::migrated().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let requester = user(&mut conn, "dev@example.com", Role::User).await;
    let manager = user(&mut conn, "dba@example.com", Role::Manager).await;
    let env = storage::environments::create(
        &mut conn,
        &NewEnvironment {
            name: name("prod"),
            description: String::new(),
            policy: EnvironmentPolicy::production_default(),
        },
    )
    .await
    .unwrap();
    let set = storage::db_sets::create(&mut conn, env.id, &name("fleet"), "").await.unwrap();
    let mut targets = Vec::new();
    for t in ["t-3", "t-1", "t-2"] {
        let target = storage::targets::create(&mut conn, TargetId::new(), env.id, &spec(t, Engine::Postgres), None)
            .await
            .unwrap();
        targets.push(target.id);
    }
    storage::db_sets::add_members(&mut conn, set.id, &targets).await.unwrap();
    let project = storage::projects::create(
        &mut conn,
        &name("billing"),
        "",
        &Identifier::parse("billing_history").unwrap(),
        &domain::model::ProjectReview::default(),
        requester.id,
    )
    .await
    .unwrap();
    let migration = storage::migrations::create(
        &mut conn,
        project.id,
        &VersionKey::parse("20250121_0001").unwrap(),
        &MigrationName::parse("create invoices").unwrap(),
        Some("migrations/0001_invoices.sql"),
        requester.id,
    )
    .await
    .unwrap();
    let duplicate = storage::migrations::create(
        &mut conn,
        project.id,
        &VersionKey::parse("20250121_0001").unwrap(),
        &MigrationName::parse("again").unwrap(),
        None,
        requester.id,
    )
    .await
    .unwrap_err();
    assert!(duplicate.is_conflict_on("migrations_project_version_key"));
    drop(conn);

    let new_version = |up: &str| NewMigrationVersion {
        migration_id: migration.id,
        up_sql: up.into(),
        down_sql: Some("DROP TABLE invoices;\r\n".into()),
        transaction_mode: TransactionMode::Transaction,
        up_statements: vec![StatementRange { start: 0, end: u32::try_from(up.len()).unwrap() }],
        down_statements: vec![StatementRange { start: 0, end: 20 }],
        lint_results: vec![ValidationMessage {
            severity: Severity::Warning,
            code: "prefer-bigint".into(),
            message: "use bigint".into(),
            direction: Direction::Up,
            statement_index: Some(0),
            engine: Some(Engine::Postgres),
            line: Some(1),
            column: Some(1),
            help: Some("say bigint".into()),
            ignored: false,
        }],
        source_hash: Some([3; 32]),
        author_id: requester.id,
    };
    let mut tx = db.pool.begin().await.unwrap();
    let v1 = storage::versions::create(&mut tx, &new_version("CREATE TABLE invoices (id int);")).await.unwrap();
    let v2 = storage::versions::create(&mut tx, &new_version("CREATE TABLE invoices (id bigint);")).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!((v1.version_no, v2.version_no), (1, 2));
    assert_eq!(v2.checksums.up, Checksum::of("CREATE TABLE invoices (id bigint);"));
    assert_eq!(v2.checksums.down, Some(Checksum::of("DROP TABLE invoices;\n")), "checksums normalize CRLF");
    let mut conn = db.pool.acquire().await.unwrap();
    assert_eq!(storage::versions::latest(&mut conn, migration.id).await.unwrap(), Some(v2.clone()));
    assert_eq!(storage::versions::get(&mut conn, v1.id).await.unwrap(), v1);
    let history = storage::versions::list(&mut conn, migration.id, &PageRequest::first(1)).await.unwrap();
    assert_eq!(history.items[0].version_no, 2);
    let older = storage::versions::list(&mut conn, migration.id, &PageRequest::after(2, 5)).await.unwrap();
    assert_eq!(older.items.iter().map(|v| v.version_no).collect::<Vec<_>>(), vec![1]);
    drop(conn);

    // A release of one migration, pinned to its newest version.
    let key = VersionKey::parse("20250121_0001").unwrap();
    let content = domain::release::content_checksum([(&key, &v2.checksums)]);
    let new_run = NewRun {
        project_id: project.id,
        versions: vec![v2.id],
        content,
        retry_of: None,
        targets: None,
        direction: Direction::Up,
        environment_id: env.id,
        action: domain::model::RunAction::Release,
        scope: domain::model::RunScope::Set(set.id),
        status: RunStatus::initial(env.policy.approval_required),
        failure_policy: FailurePolicy::StopOnFirstFailure,
        concurrency_limit: 2,
        comment: "roll out".into(),
        requested_by: requester.id,
        idempotency_key: Some("req-1".into()),
        review: None,
        lint_override: None,
        first_label: None,
    };
    let mut tx = db.pool.begin().await.unwrap();
    let (run, items) = storage::runs::create(&mut tx, &new_run).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(items, 3);
    assert_eq!(run.status, RunStatus::AwaitingApproval);
    assert_eq!((run.project_id, run.content, run.revision, run.retry_of), (project.id, content, 1, None));
    let mut tx = db.pool.begin().await.unwrap();
    let repeated = storage::runs::create(&mut tx, &new_run).await.unwrap_err();
    assert!(repeated.is_conflict_on("runs_idempotency_key"), "{repeated:?}");
    tx.rollback().await.unwrap();

    let mut conn = db.pool.acquire().await.unwrap();
    assert_eq!(
        storage::runs::find_by_idempotency_key(&mut conn, requester.id, "req-1").await.unwrap(),
        Some(run.clone())
    );
    let items = storage::run_items::list_for_run(&mut conn, run.id, None, &PageRequest::first(10)).await.unwrap();
    let ordinals: Vec<u32> = items.items.iter().map(|i| i.ordinal).collect();
    assert_eq!(ordinals, [0, 1, 2]);
    assert!(items.items.iter().all(|i| i.status == RunItemStatus::Pending));
    // Items follow target-name order.
    assert_eq!(items.items[0].target_id, targets[1]);

    let inbox = storage::runs::awaiting_decision_by(&mut conn, manager.id, 10).await.unwrap();
    assert_eq!(inbox.iter().map(|r| r.id).collect::<Vec<_>>(), vec![run.id]);
    assert!(
        storage::runs::awaiting_decision_by(&mut conn, requester.id, 10).await.unwrap().is_empty(),
        "not one's own run"
    );

    let approval = storage::approvals::create(
        &mut conn,
        &NewApproval {
            run_id: run.id,
            approver: manager.id,
            decision: ApprovalDecision::Approve,
            comment: "looks good".into(),
            pinned: content,
            carried_from: None,
        },
    )
    .await
    .unwrap();
    // The decision is recorded for the run's current revision, direction and environment.
    assert_eq!(
        (approval.revision, approval.pinned, approval.environment_id, approval.direction, approval.carried_from),
        (1, content, env.id, Direction::Up, None)
    );
    // A second decision by the same approver on the same revision, whatever content it names, is refused.
    let other_content =
        domain::release::content_checksum([(&key, &PinnedChecksums { up: v1.checksums.up, down: None })]);
    assert_ne!(other_content, content);
    let twice = storage::approvals::create(
        &mut conn,
        &NewApproval {
            run_id: run.id,
            approver: manager.id,
            decision: ApprovalDecision::Deny,
            comment: String::new(),
            pinned: other_content,
            carried_from: None,
        },
    )
    .await
    .unwrap_err();
    assert!(twice.is_conflict_on("approvals_one_decision_per_approver"), "{twice:?}");
    assert_eq!(storage::approvals::list_for_run(&mut conn, run.id).await.unwrap(), vec![approval]);

    // Status changes are compare-and-set and must be legal.
    let approved = storage::runs::set_status(&mut conn, run.id, RunStatus::AwaitingApproval, RunStatus::Approved, None)
        .await
        .unwrap();
    assert_eq!(approved.status, RunStatus::Approved);
    let stale = storage::runs::set_status(&mut conn, run.id, RunStatus::AwaitingApproval, RunStatus::Approved, None)
        .await
        .unwrap_err();
    assert!(stale.is_conflict_on("runs_status"), "{stale:?}");
    let illegal = storage::runs::set_status(&mut conn, run.id, RunStatus::Approved, RunStatus::Succeeded, None)
        .await
        .unwrap_err();
    assert!(matches!(illegal, StorageError::Invalid { .. }), "{illegal:?}");
    let queued =
        storage::runs::set_status(&mut conn, run.id, RunStatus::Approved, RunStatus::Queued, Some(requester.id))
            .await
            .unwrap();
    assert_eq!((queued.executed_by, queued.queued_at.is_some()), (Some(requester.id), true));
    let cancelled =
        storage::runs::set_status(&mut conn, run.id, RunStatus::Queued, RunStatus::Cancelled, Some(manager.id))
            .await
            .unwrap();
    assert_eq!(cancelled.cancelled_by, Some(manager.id));
    assert!(cancelled.finished_at.is_some());
    assert_eq!(storage::run_items::cancel_pending(&mut conn, run.id).await.unwrap(), 3);
    let counts = storage::run_items::count_by_status(&mut conn, run.id).await.unwrap();
    assert_eq!(counts, vec![(RunItemStatus::Cancelled, 3)]);
    assert_eq!(storage::runs::count_by_status(&mut conn).await.unwrap(), vec![(RunStatus::Cancelled, 1)]);
    let listed = storage::runs::list(
        &mut conn,
        &storage::runs::RunFilter { status: Some(RunStatus::Cancelled), ..Default::default() },
        &PageRequest::first(10),
    )
    .await
    .unwrap();
    assert_eq!(listed.items.len(), 1);
    let none = storage::runs::list(
        &mut conn,
        &storage::runs::RunFilter { status: Some(RunStatus::Running), ..Default::default() },
        &PageRequest::first(10),
    )
    .await
    .unwrap();
    assert!(none.items.is_empty());

    let item = items.items[0].id;
    for i in 0..3 {
        storage::logs::append(
            &mut conn,
            item,
            &NewLogLine {
                level: LogLevel::Info,
                message: format!("statement {i}"),
                version_key: Some(key.as_str().to_owned()),
                statement_index: Some(i + 1),
                duration_ms: Some(5),
                rows_affected: Some(0),
            },
        )
        .await
        .unwrap();
    }
    let long = storage::logs::append(
        &mut conn,
        item,
        &NewLogLine {
            level: LogLevel::Error,
            message: "x".repeat(10_000),
            version_key: None,
            statement_index: None,
            duration_ms: None,
            rows_affected: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(long.message.chars().count(), storage::logs::MAX_MESSAGE_CHARS);
    // A line for an item that does not exist is not written.
    let nowhere = storage::logs::append(
        &mut conn,
        domain::ids::RunItemId::new(),
        &NewLogLine {
            level: LogLevel::Info,
            message: "lost".into(),
            version_key: None,
            statement_index: None,
            duration_ms: None,
            rows_affected: None,
        },
    )
    .await;
    assert!(matches!(nowhere, Err(StorageError::NotFound(_))), "{nowhere:?}");
    let lines = storage::logs::list(&mut conn, item, &PageRequest::after(0, 10)).await.unwrap();
    assert_eq!(lines.items.iter().map(|l| l.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(
        lines.items.iter().map(|l| (l.version_key.as_deref(), l.statement_index)).collect::<Vec<_>>(),
        // After seq 0: the second and third statement lines, then the long line about the whole item.
        [(Some("20250121_0001"), Some(2)), (Some("20250121_0001"), Some(3)), (None, None)]
    );
}

/// Releases: a run pins several versions in apply order, is refreshed onto newer ones (a new revision, a
/// decision per approver per revision), is frozen once started, and is retried for its unfinished targets.
#[tokio::test]
async fn releases_pin_refresh_and_retry() {
    let db = PgDatabase::migrated().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let requester = user(&mut conn, "dev@example.com", Role::User).await;
    let manager = user(&mut conn, "dba@example.com", Role::Manager).await;
    let env = storage::environments::create(
        &mut conn,
        &NewEnvironment {
            name: name("prod"),
            description: String::new(),
            policy: EnvironmentPolicy::production_default(),
        },
    )
    .await
    .unwrap();
    let set = storage::db_sets::create(&mut conn, env.id, &name("fleet"), "").await.unwrap();
    let mut targets = Vec::new();
    for t in ["t-1", "t-2", "t-3"] {
        let target = storage::targets::create(&mut conn, TargetId::new(), env.id, &spec(t, Engine::Postgres), None)
            .await
            .unwrap();
        targets.push(target.id);
    }
    storage::db_sets::add_members(&mut conn, set.id, &targets).await.unwrap();
    let project = storage::projects::create(
        &mut conn,
        &name("billing"),
        "",
        &Identifier::parse("history").unwrap(),
        &domain::model::ProjectReview::default(),
        requester.id,
    )
    .await
    .unwrap();
    // Keys in natural order 1 < 2 < 10 (not the text order 1 < 10 < 2).
    let mut migrations = Vec::new();
    for key in ["10", "1", "2"] {
        let m = storage::migrations::create(
            &mut conn,
            project.id,
            &VersionKey::parse(key).unwrap(),
            &MigrationName::parse(format!("migration {key}")).unwrap(),
            None,
            requester.id,
        )
        .await
        .unwrap();
        migrations.push(m);
    }
    drop(conn);
    let version = |migration: domain::ids::MigrationId, up: &str| NewMigrationVersion {
        migration_id: migration,
        up_sql: up.into(),
        down_sql: None,
        transaction_mode: TransactionMode::Transaction,
        up_statements: vec![StatementRange { start: 0, end: u32::try_from(up.len()).unwrap() }],
        down_statements: Vec::new(),
        lint_results: Vec::new(),
        source_hash: None,
        author_id: requester.id,
    };
    let (m10, m1, m2) = (&migrations[0], &migrations[1], &migrations[2]);
    let mut tx = db.pool.begin().await.unwrap();
    let v10 = storage::versions::create(&mut tx, &version(m10.id, "SELECT 10;")).await.unwrap();
    let v1 = storage::versions::create(&mut tx, &version(m1.id, "SELECT 1;")).await.unwrap();
    let v2 = storage::versions::create(&mut tx, &version(m2.id, "SELECT 2;")).await.unwrap();
    tx.commit().await.unwrap();
    let content_of = |versions: &[(&domain::model::Migration, &domain::model::MigrationVersion)]| {
        domain::release::content_checksum(versions.iter().map(|(m, v)| (&m.version_key, &v.checksums)))
    };

    let mut conn = db.pool.acquire().await.unwrap();
    let newest = storage::versions::newest_of_project(&mut conn, project.id, None).await.unwrap();
    assert_eq!(
        newest.iter().map(|v| (v.position, v.version_key.as_str(), v.version.id)).collect::<Vec<_>>(),
        [(0, "1", v1.id), (1, "2", v2.id), (2, "10", v10.id)]
    );
    assert_eq!(newest[1].name.as_str(), "migration 2");
    let some = storage::versions::newest_of_project(&mut conn, project.id, Some(&[m10.id, m1.id])).await.unwrap();
    assert_eq!(some.iter().map(|v| (v.position, v.version.id)).collect::<Vec<_>>(), [(0, v1.id), (1, v10.id)]);
    drop(conn);

    // Requested for two of the three targets.
    let content = content_of(&[(m1, &v1), (m2, &v2), (m10, &v10)]);
    let new_run = NewRun {
        project_id: project.id,
        versions: vec![v1.id, v2.id, v10.id],
        content,
        retry_of: None,
        targets: Some(vec![targets[2], targets[0]]),
        direction: Direction::Up,
        environment_id: env.id,
        action: domain::model::RunAction::Release,
        scope: domain::model::RunScope::Set(set.id),
        status: RunStatus::AwaitingApproval,
        failure_policy: FailurePolicy::Continue,
        concurrency_limit: 1,
        comment: String::new(),
        requested_by: requester.id,
        idempotency_key: None,
        review: None,
        lint_override: None,
        first_label: None,
    };
    let mut tx = db.pool.begin().await.unwrap();
    let (run, items) = storage::runs::create(&mut tx, &new_run).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!((items, run.revision, run.content, run.project_id), (2, 1, content, project.id));
    let mut tx = db.pool.begin().await.unwrap();
    let empty = storage::runs::create(&mut tx, &NewRun { versions: Vec::new(), ..new_run.clone() }).await.unwrap_err();
    assert!(matches!(empty, StorageError::Invalid { .. }), "{empty:?}");
    tx.rollback().await.unwrap();

    let mut conn = db.pool.acquire().await.unwrap();
    let pinned = storage::versions::of_run(&mut conn, run.id).await.unwrap();
    assert_eq!(
        pinned.iter().map(|v| (v.position, v.version_key.as_str(), v.version.id)).collect::<Vec<_>>(),
        [(0, "1", v1.id), (1, "2", v2.id), (2, "10", v10.id)]
    );
    let items = storage::run_items::list_for_run(&mut conn, run.id, None, &PageRequest::first(10)).await.unwrap();
    assert_eq!(items.items.iter().map(|i| i.target_id).collect::<Vec<_>>(), [targets[0], targets[2]]);
    let labels = storage::runs::labels(&mut conn, &[run.id]).await.unwrap();
    let label = &labels[0].1;
    assert_eq!(
        (label.version_key.as_str(), label.last_key.as_str(), label.versions, label.migration),
        ("1", "10", 3, m1.id)
    );
    let first = storage::approvals::create(
        &mut conn,
        &NewApproval {
            run_id: run.id,
            approver: manager.id,
            decision: ApprovalDecision::Approve,
            comment: String::new(),
            pinned: content,
            carried_from: None,
        },
    )
    .await
    .unwrap();
    assert_eq!((first.revision, first.pinned), (1, content));
    drop(conn);

    // An edit of migration 2, then a refresh onto it: revision 2, the new versions, the new content.
    let mut tx = db.pool.begin().await.unwrap();
    let v2b = storage::versions::create(&mut tx, &version(m2.id, "SELECT 2 + 0;")).await.unwrap();
    tx.commit().await.unwrap();
    let refreshed_content = content_of(&[(m1, &v1), (m2, &v2b), (m10, &v10)]);
    assert_ne!(refreshed_content, content);
    let pinned_review = domain::model::RunReview {
        risk: domain::enums::Risk::High,
        findings: vec![domain::model::ReviewFinding {
            version_key: "2".into(),
            message: ValidationMessage {
                line: Some(1),
                column: Some(1),
                engine: Some(Engine::Postgres),
                ..ValidationMessage::check(Severity::Warning, "ban-drop-column", "drops".into(), Direction::Up, Some(0))
            },
        }],
    };
    let mut tx = db.pool.begin().await.unwrap();
    let refreshed = storage::runs::repin(
        &mut tx,
        run.id,
        &[v1.id, v2b.id, v10.id],
        &refreshed_content,
        RunStatus::AwaitingApproval,
        Some(&pinned_review),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // The new content's review is pinned with it.
    assert_eq!(refreshed.risk, Some(domain::enums::Risk::High));
    let mut again = db.pool.acquire().await.unwrap();
    assert_eq!(storage::runs::review(&mut again, run.id).await.unwrap(), Some(pinned_review.findings.clone()));
    drop(again);
    assert_eq!(
        (refreshed.revision, refreshed.content, refreshed.status),
        (2, refreshed_content, RunStatus::AwaitingApproval)
    );
    let mut conn = db.pool.acquire().await.unwrap();
    assert_eq!(storage::runs::get(&mut conn, run.id).await.unwrap(), refreshed);
    let pinned = storage::versions::of_run(&mut conn, run.id).await.unwrap();
    assert_eq!(pinned.iter().map(|v| v.version.id).collect::<Vec<_>>(), [v1.id, v2b.id, v10.id]);
    // The same approver decides again on the new revision; the old decision stays on record.
    let second = storage::approvals::create(
        &mut conn,
        &NewApproval {
            run_id: run.id,
            approver: manager.id,
            decision: ApprovalDecision::Approve,
            comment: String::new(),
            pinned: refreshed_content,
            carried_from: None,
        },
    )
    .await
    .unwrap();
    assert_eq!((second.revision, second.pinned), (2, refreshed_content));
    let decisions = storage::approvals::list_for_run(&mut conn, run.id).await.unwrap();
    assert_eq!(
        decisions.iter().map(|a| (a.revision, a.pinned)).collect::<Vec<_>>(),
        [(1, content), (2, refreshed_content)]
    );
    let approved = storage::runs::set_status(&mut conn, run.id, RunStatus::AwaitingApproval, RunStatus::Approved, None)
        .await
        .unwrap();
    let queued = storage::runs::set_status(&mut conn, run.id, RunStatus::Approved, RunStatus::Queued, Some(manager.id))
        .await
        .unwrap();
    assert_eq!((approved.revision, queued.revision, queued.content), (2, 2, refreshed_content));
    drop(conn);

    // Once queued, it applies what it pins: no refresh, and the database refuses a change of its versions.
    let mut tx = db.pool.begin().await.unwrap();
    let late =
        storage::runs::repin(&mut tx, run.id, &[v1.id], &content, RunStatus::AwaitingApproval, None).await.unwrap_err();
    assert!(late.is_conflict_on("runs_status"), "{late:?}");
    tx.rollback().await.unwrap();
    let frozen = sqlx::query("DELETE FROM run_migrations WHERE run_id = $1")
        .bind(run.id.as_uuid())
        .execute(&db.pool)
        .await
        .unwrap_err();
    let frozen = StorageError::from(frozen);
    assert!(matches!(&frozen, StorageError::Refused(message) if message.contains("frozen")), "{frozen:?}");
    let mut conn = db.pool.acquire().await.unwrap();
    assert_eq!(storage::versions::of_run(&mut conn, run.id).await.unwrap().len(), 3);

    // Cancelled before it ran anywhere: both targets are unfinished, and a retry is made for them.
    storage::runs::set_status(&mut conn, run.id, RunStatus::Queued, RunStatus::Cancelled, Some(requester.id))
        .await
        .unwrap();
    assert_eq!(storage::run_items::cancel_pending(&mut conn, run.id).await.unwrap(), 2);
    let unfinished = storage::runs::unfinished_targets(&mut conn, run.id).await.unwrap();
    assert_eq!(unfinished, [targets[0], targets[2]]);
    assert!(storage::runs::retries_of(&mut conn, run.id).await.unwrap().is_empty());
    drop(conn);
    let mut tx = db.pool.begin().await.unwrap();
    let (retry, items) = storage::runs::create(
        &mut tx,
        &NewRun {
            versions: vec![v1.id, v2b.id, v10.id],
            content: refreshed_content,
            retry_of: Some(run.id),
            targets: Some(unfinished),
            status: RunStatus::Approved,
            ..new_run.clone()
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!((items, retry.retry_of, retry.revision), (2, Some(run.id), 1));
    let mut conn = db.pool.acquire().await.unwrap();
    let carried = storage::approvals::create(
        &mut conn,
        &NewApproval {
            run_id: retry.id,
            approver: manager.id,
            decision: ApprovalDecision::Approve,
            comment: String::new(),
            pinned: refreshed_content,
            carried_from: Some(second.id),
        },
    )
    .await
    .unwrap();
    assert_eq!((carried.revision, carried.carried_from), (1, Some(second.id)));
    assert_eq!(storage::runs::retries_of(&mut conn, run.id).await.unwrap(), [retry.id]);
    assert_eq!(storage::runs::get(&mut conn, retry.id).await.unwrap().retry_of, Some(run.id));
}

#[tokio::test]
async fn workers_register_heartbeat_and_stop() {
    let db = PgDatabase::migrated().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let id = WorkerId::new();
    let worker = storage::workers::register(&mut conn, id, "host-1", 4242, "0.1.0").await.unwrap();
    assert_eq!(worker.status, domain::enums::WorkerStatus::Running);
    let beat = storage::workers::heartbeat(&mut conn, id).await.unwrap();
    assert!(beat.last_heartbeat_at >= worker.last_heartbeat_at);
    let stopped = storage::workers::stop(&mut conn, id).await.unwrap();
    assert!(stopped.stopped_at.is_some());
    assert!(matches!(storage::workers::heartbeat(&mut conn, id).await.unwrap_err(), StorageError::NotFound(_)));
    let alive = storage::workers::list(&mut conn, None, &PageRequest::first(10)).await.unwrap();
    assert_eq!(alive.items, vec![stopped]);
}

#[tokio::test]
async fn audit_chain_verifies_and_detects_tampering() {
    let db = PgDatabase::migrated().await;
    let actor = AuditActor { kind: ActorKind::System, user_id: None, label: "system".into() };
    for i in 0..3 {
        let mut tx = db.pool.begin().await.unwrap();
        audit::record(
            &mut tx,
            None,
            &audit::Event {
                actor: actor.clone(),
                action: audit::Action::EnvironmentCreate,
                object_type: "environment".into(),
                object_id: Some(format!("env-{i}")),
                details: serde_json::json!({"name": format!("env-{i}"), "approvals": i}),
                ip: Some("::1".parse().unwrap()),
                user_agent: Some("tests".into()),
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let mut conn = db.pool.acquire().await.unwrap();
    assert_eq!(audit::verify(&mut conn, None).await.unwrap(), audit::Verification::Intact { rows: 3 });
    let listed = storage::audit::list(
        &mut conn,
        &storage::audit::AuditFilter { action: Some("environment".into()), ..Default::default() },
        &PageRequest::first(2),
    )
    .await
    .unwrap();
    assert_eq!(listed.items.len(), 2);
    assert_eq!(listed.items[0].entry.object_id.as_deref(), Some("env-2"));

    // Tampering needs the trigger out of the way; the chain then shows the first broken row.
    sqlx::query("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_events SET details = '{\"name\": \"forged\"}' WHERE object_id = 'env-1'")
        .execute(&mut *conn)
        .await
        .unwrap();
    let second = listed.items[1].id;
    assert_eq!(
        audit::verify(&mut conn, None).await.unwrap(),
        audit::Verification::Broken { row_id: second, reason: "content does not match its hash" }
    );
}

/// The chain key is what each call is given (no process-wide key): a keyed chain verifies with its key only,
/// and a writer without the key cannot extend it.
#[tokio::test]
async fn a_keyed_chain_verifies_with_its_key_and_refuses_unkeyed_writers() {
    let db = PgDatabase::migrated().await;
    let (key, other) = (audit::ChainKey::new(&[7; 32]), audit::ChainKey::new(&[8; 32]));
    let event = |i: i32| audit::Event {
        actor: AuditActor { kind: ActorKind::System, user_id: None, label: "system".into() },
        action: audit::Action::EnvironmentCreate,
        object_type: "environment".into(),
        object_id: Some(format!("env-{i}")),
        details: serde_json::json!({ "i": i }),
        ip: None,
        user_agent: None,
    };
    for i in 0..2 {
        let mut tx = db.pool.begin().await.unwrap();
        audit::record(&mut tx, Some(&key), &event(i)).await.unwrap();
        tx.commit().await.unwrap();
    }
    let mut conn = db.pool.acquire().await.unwrap();
    assert_eq!(audit::verify(&mut conn, Some(&key)).await.unwrap(), audit::Verification::Intact { rows: 2 });
    let first = storage::audit::scan(&mut conn, 0, 1).await.unwrap()[0].id;
    assert_eq!(
        audit::verify(&mut conn, Some(&other)).await.unwrap(),
        audit::Verification::Broken { row_id: first, reason: "content does not match its hash" }
    );
    let unkeyed = audit::verify(&mut conn, None).await.unwrap();
    assert!(matches!(unkeyed, audit::Verification::Broken { row_id, .. } if row_id == first), "{unkeyed:?}");
    let mut tx = db.pool.begin().await.unwrap();
    let refused = audit::record(&mut tx, None, &event(2)).await.unwrap_err();
    assert!(
        matches!(&refused, audit::AuditError::Storage(StorageError::Refused(m)) if m == audit::NO_CHAIN_KEY),
        "{refused:?}"
    );
}
