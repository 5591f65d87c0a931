//! A tool database populated for workers: users, an environment, targets pointing at real databases, a db
//! set, a project, migrations and queued runs, made through the storage functions (the REST API is
//! another issue). Shared by the worker tests and the `cargo xtask bench` / `chaos` commands.

use std::collections::BTreeMap;

use domain::checksum::Checksum;
use domain::enums::{ApprovalDecision, Direction, Engine, FailurePolicy, Role, TlsMode, TransactionMode};
use domain::ids::TargetId;
use domain::model::{
    DbSet, Environment, MigrationVersion, NewApproval, NewEnvironment, NewMigrationVersion, NewRun, NewUser, Project,
    Run, StatementRange, TargetSpec, User,
};
use domain::policy::EnvironmentPolicy;
use domain::run::RunStatus;
use domain::values::{DisplayName, Email, Identifier, MigrationName, Name, VersionKey};
use sqlx::PgPool;

/// One environment with its set of targets, and the people who request and approve runs.
#[derive(Debug)]
pub struct Fleet {
    pub pool: PgPool,
    pub requester: User,
    pub manager: User,
    pub environment: Environment,
    pub project: Project,
    pub set: DbSet,
    pub targets: Vec<TargetId>,
    /// The TLS mode of the targets added from now on (`prefer` unless changed).
    pub tls_mode: TlsMode,
}

impl Fleet {
    /// Creates the users, an environment with `policy`, an empty db set and a project whose history table
    /// is `migrate_hub_history`.
    pub async fn new(pool: &PgPool, policy: EnvironmentPolicy) -> Self {
        let mut conn = pool.acquire().await.unwrap();
        let user = |email: &str, role| NewUser {
            email: Email::parse(email).unwrap(),
            display_name: DisplayName::parse("Fleet User").unwrap(),
            role,
            oidc_identity: None,
            password_hash: None,
        };
        let requester = storage::users::create(&mut conn, &user("dev@example.com", Role::User)).await.unwrap();
        let manager = storage::users::create(&mut conn, &user("dba@example.com", Role::Manager)).await.unwrap();
        let environment = storage::environments::create(
            &mut conn,
            &NewEnvironment { name: Name::parse("fleet").unwrap(), description: String::new(), policy },
        )
        .await
        .unwrap();
        let set = storage::db_sets::create(&mut conn, environment.id, &Name::parse("all").unwrap(), "").await.unwrap();
        let project = storage::projects::create(
            &mut conn,
            &Name::parse("app").unwrap(),
            "",
            &Identifier::parse("migrate_hub_history").unwrap(),
            &domain::model::ProjectReview::default(),
            requester.id,
        )
        .await
        .unwrap();
        Fleet {
            pool: pool.clone(),
            requester,
            manager,
            environment,
            project,
            set,
            targets: Vec::new(),
            tls_mode: TlsMode::Prefer,
        }
    }

    /// Adds a target for the database at `url` (`postgres://…` or `mysql://…`) to the set. A password in
    /// the URL is not stored: the target refers to `env:<password_env>`, which the worker must have.
    pub async fn add_target(&mut self, name: &str, url: &str, password_env: Option<&str>) -> TargetId {
        self.add_target_with(name, url, password_env, BTreeMap::new()).await
    }

    /// [`add_target`](Self::add_target) with placeholder variables.
    pub async fn add_target_with(
        &mut self,
        name: &str,
        url: &str,
        password_env: Option<&str>,
        variables: BTreeMap<String, String>,
    ) -> TargetId {
        let parsed = Url::parse(url);
        let spec = TargetSpec {
            name: Name::parse(name).unwrap(),
            engine: parsed.engine,
            host: parsed.host,
            port: parsed.port,
            database: parsed.database,
            schema: None,
            username: parsed.user,
            tls_mode: self.tls_mode,
            labels: BTreeMap::new(),
            variables,
        };
        let reference = password_env.map(|name| format!("env:{name}"));
        let mut conn = self.pool.acquire().await.unwrap();
        let target =
            storage::targets::create(&mut conn, TargetId::new(), self.environment.id, &spec, reference.as_deref())
                .await
                .unwrap();
        storage::db_sets::add_members(&mut conn, self.set.id, &[target.id]).await.unwrap();
        self.targets.push(target.id);
        target.id
    }

    /// A migration `key` with one version of `up` (and `down`) SQL, split for `engine`.
    pub async fn migration(
        &self,
        key: &str,
        up: &str,
        down: Option<&str>,
        mode: TransactionMode,
        engine: Engine,
    ) -> MigrationVersion {
        let mut conn = self.pool.acquire().await.unwrap();
        let migration = storage::migrations::create(
            &mut conn,
            self.project.id,
            &VersionKey::parse(key).unwrap(),
            &MigrationName::parse(format!("migration {key}")).unwrap(),
            None,
            self.requester.id,
        )
        .await
        .unwrap();
        drop(conn);
        self.version(migration.id, up, down, mode, engine).await
    }

    /// A new version of an existing migration (an edit).
    pub async fn version(
        &self,
        migration: domain::ids::MigrationId,
        up: &str,
        down: Option<&str>,
        mode: TransactionMode,
        engine: Engine,
    ) -> MigrationVersion {
        let ranges = |sql: &str| -> Vec<StatementRange> {
            domain::split::split(sql, engine.into())
                .unwrap()
                .iter()
                .map(|s| StatementRange {
                    start: u32::try_from(s.text_range.start).unwrap(),
                    end: u32::try_from(s.text_range.end).unwrap(),
                })
                .collect()
        };
        let new = NewMigrationVersion {
            migration_id: migration,
            up_sql: up.to_owned(),
            down_sql: down.map(str::to_owned),
            transaction_mode: mode,
            up_statements: ranges(up),
            down_statements: down.map(ranges).unwrap_or_default(),
            lint_results: Vec::new(),
            source_hash: None,
            author_id: self.requester.id,
        };
        let mut tx = self.pool.begin().await.unwrap();
        let version = storage::versions::create(&mut tx, &new).await.unwrap();
        tx.commit().await.unwrap();
        version
    }

    /// A run of `version` over the whole set, approved by the manager where the environment needs it,
    /// executed, queued and announced to the workers: a release of one migration.
    pub async fn queue_run(
        &self,
        version: &MigrationVersion,
        direction: Direction,
        failure_policy: FailurePolicy,
        concurrency_limit: u32,
    ) -> Run {
        self.queue_release(std::slice::from_ref(version), direction, failure_policy, concurrency_limit, None).await
    }

    /// [`queue_run`](Self::queue_run) whose approval pins `pinned` (content checksum) instead of the
    /// release's own.
    pub async fn queue_run_pinned(
        &self,
        version: &MigrationVersion,
        direction: Direction,
        failure_policy: FailurePolicy,
        concurrency_limit: u32,
        pinned: Option<Checksum>,
    ) -> Run {
        self.queue_release(std::slice::from_ref(version), direction, failure_policy, concurrency_limit, pinned).await
    }

    /// The content checksum of `versions` as a release (in this order).
    pub async fn content(&self, versions: &[MigrationVersion]) -> Checksum {
        let mut conn = self.pool.acquire().await.unwrap();
        let mut entries = Vec::new();
        for version in versions {
            let migration = storage::migrations::get(&mut conn, version.migration_id).await.unwrap();
            entries.push((migration.version_key, version.checksums));
        }
        domain::release::content_checksum(entries.iter().map(|(k, c)| (k, c)))
    }

    /// A release of `versions` (in apply order) over the whole set, approved by the manager where the
    /// environment needs it (pinning `pinned`, or the release's content checksum), executed, queued and
    /// announced to the workers.
    pub async fn queue_release(
        &self,
        versions: &[MigrationVersion],
        direction: Direction,
        failure_policy: FailurePolicy,
        concurrency_limit: u32,
        pinned: Option<Checksum>,
    ) -> Run {
        let policy = &self.environment.policy;
        let content = self.content(versions).await;
        let mut tx = self.pool.begin().await.unwrap();
        let (run, _) = storage::runs::create(
            &mut tx,
            &NewRun {
                project_id: self.project.id,
                versions: versions.iter().map(|v| v.id).collect(),
                content,
                retry_of: None,
                targets: None,
                direction,
                action: domain::model::RunAction::Release,
                environment_id: self.environment.id,
                scope: domain::model::RunScope::Set(self.set.id),
                status: RunStatus::initial(policy.approval_required),
                failure_policy,
                concurrency_limit,
                comment: String::new(),
                requested_by: self.requester.id,
                idempotency_key: None,
                review: None,
                lint_override: None,
                first_label: None,
            },
        )
        .await
        .unwrap();
        if policy.approval_required {
            storage::approvals::create(
                &mut tx,
                &NewApproval {
                    run_id: run.id,
                    approver: self.manager.id,
                    decision: ApprovalDecision::Approve,
                    comment: String::new(),
                    pinned: pinned.unwrap_or(content),
                    carried_from: None,
                },
            )
            .await
            .unwrap();
            storage::runs::set_status(&mut tx, run.id, RunStatus::AwaitingApproval, RunStatus::Approved, None)
                .await
                .unwrap();
        }
        let run =
            storage::runs::set_status(&mut tx, run.id, RunStatus::Approved, RunStatus::Queued, Some(self.manager.id))
                .await
                .unwrap();
        storage::queue::notify(&mut tx, run.id).await.unwrap();
        tx.commit().await.unwrap();
        run
    }
}

/// The parts of a database URL a target needs.
struct Url {
    engine: Engine,
    user: String,
    host: String,
    port: u16,
    database: String,
}

impl Url {
    fn parse(url: &str) -> Self {
        let (scheme, rest) = url.split_once("://").unwrap();
        let engine = if scheme.starts_with("postgres") { Engine::Postgres } else { Engine::Mysql };
        let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
        let (credentials, location) = rest.rsplit_once('@').unwrap();
        let user = credentials.split_once(':').map_or(credentials, |(u, _)| u).to_owned();
        let (address, database) = location.split_once('/').unwrap();
        let default_port = if engine == Engine::Postgres { 5432 } else { 3306 };
        let (host, port) = address.rsplit_once(':').map_or((address, default_port), |(h, p)| (h, p.parse().unwrap()));
        Url { engine, user, host: host.to_owned(), port, database: database.to_owned() }
    }
}
