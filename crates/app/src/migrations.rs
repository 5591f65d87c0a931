//! Migrations and their immutable versions: authoring, editing (a new version), and importing a directory.
//!
//! Every version is checked when it is made: its size, that it splits into statements (as Postgres and as
//! MySQL; it must split as one of them), and that a `transaction`-mode version has no statement Postgres
//! refuses inside a transaction. What is worth knowing but not fatal is kept with the version as
//! validation messages.

use audit::Action;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use domain::ErrorCode;
use domain::enums::{Direction, Engine, TransactionMode};
use domain::ids::{MigrationId, ProjectId, UserId};
use domain::model::{Migration, MigrationVersion, NewMigrationVersion, Severity, StatementRange, ValidationMessage};
use domain::source::{Layout, SourceFile};
use domain::split::{self, Dialect};
use domain::values::{MigrationName, VersionKey};
use ring::digest;
use serde::{Deserialize, Serialize};
use serde_json::json;
use storage::{Page, PageRequest};

use crate::error::db;
use crate::{AppError, AppResult, Caller, Hub, record};

pub use storage::runs::LatestRun;

/// Size limits on migration SQL.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest up or down script, in bytes (SPEC §7: 1 MiB by default).
    pub max_sql_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_sql_bytes: 1 << 20 }
    }
}

/// Most files one import may carry.
pub const MAX_IMPORT_FILES: usize = 10_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewMigrationInput {
    pub project_id: ProjectId,
    /// Sortable version key, e.g. `20250121_0001`.
    pub version_key: String,
    pub name: String,
    pub up_sql: String,
    #[serde(default)]
    pub down_sql: Option<String>,
    #[serde(default)]
    pub transaction_mode: Option<TransactionMode>,
}

/// The content of a new version of a migration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionInput {
    pub up_sql: String,
    #[serde(default)]
    pub down_sql: Option<String>,
    #[serde(default)]
    pub transaction_mode: Option<TransactionMode>,
}

/// One file of a directory import.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportFile {
    /// Relative to the migrations directory, e.g. `0001_init.up.sql`.
    pub path: String,
    pub content: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportInput {
    pub files: Vec<ImportFile>,
    /// `plain`, `up-down`, `goose`, `flyway`, `dbmate`, `diesel`, `refinery` or `sql-migrate`; detected when
    /// absent.
    #[serde(default)]
    pub layout: Option<String>,
    /// Whose dialect the files are written in (goose and dbmate statement annotations); default postgres.
    #[serde(default)]
    pub engine: Option<Engine>,
    /// Import even when some files are not migrations of the layout (they are listed in `skipped`);
    /// without it such an import is refused (422 `unreadable`) and nothing is stored.
    #[serde(default)]
    pub allow_unknown_files: bool,
}

/// What an import did, per migration (by version key).
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportReport {
    pub layout: String,
    /// New migrations (version 1).
    pub created: Vec<String>,
    /// Existing migrations whose files changed: a new version each.
    pub updated: Vec<String>,
    /// Existing migrations whose files did not change.
    pub unchanged: Vec<String>,
    /// Files that were not read as migrations, with why.
    pub skipped: Vec<SkippedFile>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SkippedFile {
    pub path: String,
    pub reason: String,
}

/// A checked version, ready to store.
struct Checked {
    up_statements: Vec<StatementRange>,
    down_statements: Vec<StatementRange>,
    messages: Vec<ValidationMessage>,
}

fn size(what: &'static str, sql: &str, limits: Limits) -> AppResult<()> {
    if sql.len() > limits.max_sql_bytes {
        return Err(AppError::TooLarge { what, size: sql.len(), limit: limits.max_sql_bytes });
    }
    Ok(())
}

fn message(
    severity: Severity,
    code: &str,
    message: String,
    direction: Direction,
    index: Option<usize>,
) -> ValidationMessage {
    ValidationMessage::check(severity, code, message, direction, index)
}

/// Splits one script as both dialects. Returns the stored split and its dialect: Postgres's when it splits
/// as Postgres, unless the files were declared MySQL (`written_for`) and split as MySQL.
fn split_both(
    field: &'static str,
    sql: &str,
    direction: Direction,
    written_for: Option<Engine>,
    messages: &mut Vec<ValidationMessage>,
) -> AppResult<(Vec<split::Statement>, Dialect)> {
    let pg = split::split(sql, Dialect::Postgres);
    let my = split::split(sql, Dialect::Mysql);
    if written_for == Some(Engine::Mysql)
        && let Ok(my) = &my
    {
        return Ok((my.clone(), Dialect::Mysql));
    }
    let statements = match (pg, my) {
        (Ok(pg), my) => {
            if let Err(e) = my {
                messages.push(message(
                    Severity::Warning,
                    "mysql_split",
                    format!(
                        "does not split as MySQL (line {}, column {}: {}); it can run on Postgres targets only",
                        e.line, e.column, e.message
                    ),
                    direction,
                    None,
                ));
            }
            (pg, Dialect::Postgres)
        }
        (Err(e), Ok(my)) => {
            messages.push(message(
                Severity::Warning,
                "postgres_split",
                format!(
                    "does not split as Postgres (line {}, column {}: {}); it can run on MySQL targets only",
                    e.line, e.column, e.message
                ),
                direction,
                None,
            ));
            (my, Dialect::Mysql)
        }
        (Err(e), Err(_)) => {
            return Err(AppError::invalid(
                field,
                ErrorCode::Unsplittable,
                format!("{field} does not split into statements: line {}, column {}: {}", e.line, e.column, e.message),
            ));
        }
    };
    Ok(statements)
}

fn check(
    up: &str,
    down: Option<&str>,
    mode: TransactionMode,
    limits: Limits,
    dialects: &[Engine],
    declared: Option<Engine>,
) -> AppResult<Checked> {
    // Files written for MySQL alone are split as MySQL wherever they can be.
    let written_for = declared.or(match dialects {
        [only] => Some(*only),
        _ => None,
    });
    size("up_sql", up, limits)?;
    if let Some(down) = down {
        size("down_sql", down, limits)?;
    }
    let mut messages = Vec::new();
    let (up_split, up_dialect) = split_both("up_sql", up, Direction::Up, written_for, &mut messages)?;
    if up_split.is_empty() {
        return Err(AppError::invalid(
            "up_sql",
            ErrorCode::Empty,
            "up_sql has no statements (only whitespace or comments)",
        ));
    }
    let down_split = match down {
        Some(down) => {
            let (statements, dialect) = split_both("down_sql", down, Direction::Down, written_for, &mut messages)?;
            if statements.is_empty() {
                return Err(AppError::invalid(
                    "down_sql",
                    ErrorCode::Empty,
                    "down_sql has no statements; leave it out if there is no rollback",
                ));
            }
            (statements, dialect)
        }
        None => {
            messages.push(message(
                Severity::Info,
                "no_down",
                "no down migration: this version cannot be rolled back by the hub".to_owned(),
                Direction::Down,
                None,
            ));
            (Vec::new(), Dialect::Postgres)
        }
    };
    let (down_split, down_dialect) = down_split;
    for (direction, sql, statements, field, dialect) in [
        (Direction::Up, up, &up_split, "up_sql", up_dialect),
        (Direction::Down, down.unwrap_or(""), &down_split, "down_sql", down_dialect),
    ] {
        if field == "down_sql" && down.is_none() {
            continue;
        }
        // What cannot run inside a transaction is a Postgres rule (MySQL's DDL commits on its own).
        let postgres_statements: &[split::Statement] = if dialect == Dialect::Postgres { statements } else { &[] };
        for (i, statement) in postgres_statements.iter().enumerate() {
            if let Some(what) = split::non_transactional(statement.text(sql)) {
                if mode == TransactionMode::Transaction {
                    return Err(AppError::invalid(
                        "transaction_mode",
                        ErrorCode::NeedsNoTransaction,
                        format!(
                            "{field} statement {} ({what}) cannot run inside a transaction on Postgres; set transaction_mode to \"none\"",
                            i + 1
                        ),
                    ));
                }
                messages.push(message(
                    Severity::Info,
                    "non_transactional",
                    format!("{what} runs outside a transaction; a failure after it leaves the target needing recovery"),
                    direction,
                    Some(i),
                ));
            }
        }
        // SQL review, with the rules of each dialect the project declares where the script splits as it
        // (squawk's for Postgres, the hub's own for MySQL): what the environment's policy refuses is refused at
        // request for targets of that engine; the rest is for whoever approves.
        let in_transaction = mode == TransactionMode::Transaction;
        if dialects.contains(&Engine::Postgres) && dialect == Dialect::Postgres {
            messages.extend(
                domain::lint::postgres(sql, statements, in_transaction).iter().map(|f| f.to_message(direction)),
            );
        }
        if dialects.contains(&Engine::Mysql) {
            let mysql =
                if dialect == Dialect::Mysql { Ok(statements.clone()) } else { split::split(sql, Dialect::Mysql) };
            if let Ok(mysql) = mysql {
                messages
                    .extend(domain::lint::mysql(sql, &mysql, in_transaction).iter().map(|f| f.to_message(direction)));
            }
        }
    }
    if mode == TransactionMode::None && up_split.len() > 1 {
        messages.push(message(
            Severity::Warning,
            "not_atomic",
            format!(
                "transaction_mode \"none\" with {} statements: a failure part-way leaves the target needing recovery",
                up_split.len()
            ),
            Direction::Up,
            None,
        ));
    }
    messages.sort_by_key(|m| std::cmp::Reverse(m.severity));
    Ok(Checked { up_statements: split::ranges(&up_split), down_statements: split::ranges(&down_split), messages })
}

fn new_version(
    migration: MigrationId,
    up: String,
    down: Option<String>,
    mode: TransactionMode,
    checked: Checked,
    source_hash: Option<[u8; 32]>,
    author: &Caller,
) -> NewMigrationVersion {
    NewMigrationVersion {
        migration_id: migration,
        up_sql: up,
        down_sql: down,
        transaction_mode: mode,
        up_statements: checked.up_statements,
        down_statements: checked.down_statements,
        lint_results: checked.messages,
        source_hash,
        author_id: author.actor.user_id,
    }
}

fn version_details(m: &Migration, v: &MigrationVersion) -> serde_json::Value {
    json!({
        "project_id": m.project_id,
        "version_key": m.version_key.as_str(),
        "version": v.version_no,
        "up_checksum": v.checksums.up.to_hex(),
        "down_checksum": v.checksums.down.map(|c| c.to_hex()),
        "transaction_mode": v.transaction_mode.as_str(),
    })
}

/// A new migration and its version 1. Anyone signed in may author one; running it is what needs approval.
pub async fn create_migration(
    hub: &Hub,
    caller: &Caller,
    limits: Limits,
    input: NewMigrationInput,
) -> AppResult<(Migration, MigrationVersion)> {
    let key = VersionKey::parse(input.version_key).map_err(AppError::value("version_key"))?;
    let name = MigrationName::parse(input.name).map_err(AppError::value("name"))?;
    let mode = input.transaction_mode.unwrap_or(TransactionMode::Transaction);
    let project = {
        let mut conn = hub.pool.acquire().await.map_err(db)?;
        storage::projects::get(&mut conn, input.project_id).await?
    };
    let checked = check(&input.up_sql, input.down_sql.as_deref(), mode, limits, &project.review.dialects, None)?;
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let migration =
        storage::migrations::create(&mut tx, input.project_id, &key, &name, None, caller.actor.user_id).await?;
    let new = new_version(migration.id, input.up_sql, input.down_sql, mode, checked, None, caller);
    let version = storage::versions::create(&mut tx, &new).await?;
    record(
        &mut tx,
        hub,
        caller,
        Action::MigrationCreate,
        "migration",
        migration.id,
        version_details(&migration, &version),
    )
    .await?;
    tx.commit().await.map_err(db)?;
    Ok((migration, version))
}

/// An edit: a new version of the migration. Content equal to the newest version's (same checksums and
/// mode) makes nothing and returns that version with `false`.
pub async fn create_version(
    hub: &Hub,
    caller: &Caller,
    limits: Limits,
    migration: MigrationId,
    input: VersionInput,
) -> AppResult<(MigrationVersion, bool)> {
    let mode = input.transaction_mode.unwrap_or(TransactionMode::Transaction);
    let dialects = {
        let mut conn = hub.pool.acquire().await.map_err(db)?;
        let m = storage::migrations::get(&mut conn, migration).await?;
        storage::projects::get(&mut conn, m.project_id).await?.review.dialects
    };
    let checked = check(&input.up_sql, input.down_sql.as_deref(), mode, limits, &dialects, None)?;
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let m = storage::migrations::get(&mut tx, migration).await?;
    let new = new_version(migration, input.up_sql, input.down_sql, mode, checked, None, caller);
    if let Some(latest) = storage::versions::latest(&mut tx, migration).await?
        && latest.checksums == new.checksums()
        && latest.transaction_mode == mode
    {
        return Ok((latest, false));
    }
    let version = storage::versions::create(&mut tx, &new).await?;
    record(&mut tx, hub, caller, Action::MigrationVersion, "migration", m.id, version_details(&m, &version)).await?;
    tx.commit().await.map_err(db)?;
    Ok((version, true))
}

fn source_hash(
    up_path: &str,
    up: &str,
    down_path: Option<&str>,
    down: Option<&str>,
    mode: TransactionMode,
) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in [Some(up_path), Some(up), down_path, down, Some(mode.as_str())] {
        match part {
            None => ctx.update(&[0]),
            Some(text) => {
                ctx.update(&[1]);
                ctx.update(&(text.len() as u64).to_be_bytes());
                ctx.update(text.as_bytes());
            }
        }
    }
    let mut out = [0; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Imports in progress in this server process: at most one per user and [`MAX_CONCURRENT_IMPORTS`] in
/// all, so imports cannot take every tool-database connection (each holds one for its transaction). An
/// import that would go past either bound is refused at once (`AppError::Busy`, 429), not queued: a
/// queue would hold the request, its body and a worker. The gate lives in the server's state, one per
/// server; several replicas each bound their own imports.
#[derive(Debug, Default)]
pub struct ImportGate {
    running: Mutex<HashSet<UserId>>,
}

/// Most imports one server process runs at a time, whoever asks.
pub const MAX_CONCURRENT_IMPORTS: usize = 3;

/// A place taken in the [`ImportGate`], given back when dropped (also when the request is abandoned).
#[derive(Debug)]
struct ImportPermit<'a> {
    gate: &'a ImportGate,
    user: UserId,
}

impl ImportGate {
    fn running(&self) -> std::sync::MutexGuard<'_, HashSet<UserId>> {
        // The set stays consistent whatever a panicking holder did (insert and remove are single steps).
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn enter(&self, user: UserId) -> AppResult<ImportPermit<'_>> {
        let mut running = self.running();
        if running.contains(&user) {
            return Err(AppError::Busy {
                code: ErrorCode::ImportInProgress,
                message: "you already have an import running; wait for it to finish, then try again".into(),
            });
        }
        if running.len() >= MAX_CONCURRENT_IMPORTS {
            return Err(AppError::Busy {
                code: ErrorCode::ImportsBusy,
                message: format!(
                    "the hub is running {MAX_CONCURRENT_IMPORTS} imports already; try again in a few seconds"
                ),
            });
        }
        running.insert(user);
        Ok(ImportPermit { gate: self, user })
    }
}

impl Drop for ImportPermit<'_> {
    fn drop(&mut self) {
        self.gate.running().remove(&self.user);
    }
}

/// A migration of an import, checked and ready to store.
struct Imported<'a> {
    file: &'a domain::source::SourceMigration,
    checked: Checked,
    name: MigrationName,
    hash: [u8; 32],
}

impl Imported<'_> {
    fn into_version(self, migration: MigrationId, author: &Caller) -> NewMigrationVersion {
        let m = self.file;
        new_version(migration, m.up.clone(), m.down.clone(), m.transaction_mode, self.checked, Some(self.hash), author)
    }
}

/// Imports a directory of migration files into a project, in one transaction: files not seen before make
/// migrations, changed files make new versions, unchanged files (same paths and content) do nothing.
///
/// Bounded so that no one can starve the hub: one import per user and a few in all at a time
/// ([`ImportGate`]); every file is read and checked before a tool-database connection is taken; and the
/// writes are a fixed handful of statements whatever the number of files (each a batch over arrays), so
/// the connection is held briefly.
pub async fn import(
    hub: &Hub,
    caller: &Caller,
    limits: Limits,
    gate: &ImportGate,
    project: ProjectId,
    input: ImportInput,
) -> AppResult<ImportReport> {
    if input.files.is_empty() {
        return Err(AppError::invalid("files", ErrorCode::Empty, "an import needs at least one file"));
    }
    if input.files.len() > MAX_IMPORT_FILES {
        return Err(AppError::invalid(
            "files",
            ErrorCode::TooMany,
            format!("at most {MAX_IMPORT_FILES} files per import"),
        ));
    }
    let _permit = gate.enter(caller.actor.user_id)?;
    let dialects = {
        let mut conn = hub.pool.acquire().await.map_err(db)?;
        storage::projects::get(&mut conn, project).await?.review.dialects
    };
    let engine = input.engine.or(match dialects.as_slice() {
        [only] => Some(*only),
        _ => None,
    });
    let layout = input
        .layout
        .as_deref()
        .map(str::parse::<Layout>)
        .transpose()
        .map_err(|e| AppError::invalid("layout", ErrorCode::UnknownLayout, e.to_string()))?;
    let files: Vec<SourceFile<'_>> =
        input.files.iter().map(|f| SourceFile { path: f.path.as_str(), content: f.content.as_str() }).collect();
    let mut source = domain::source::read(&files, layout, engine.unwrap_or(Engine::Postgres))
        .map_err(|e| AppError::invalid("files", ErrorCode::Unreadable, e.to_string()))?;
    // Repeatable migrations (Flyway's R__) run through the CLI; a release's content is versioned, so the
    // hub lists them as not imported rather than pin content that is meant to change.
    let (repeatable, versioned): (Vec<_>, Vec<_>) =
        std::mem::take(&mut source.migrations).into_iter().partition(|m| m.version.is_repeatable());
    source.migrations = versioned;
    source.skipped.extend(repeatable.into_iter().map(|m| domain::source::Skipped {
        path: m.up_path,
        reason:
            "a repeatable migration (R__): the hub imports versioned migrations only; apply it with the CLI".to_owned(),
    }));
    let listed = || {
        let mut list: Vec<String> =
            source.skipped.iter().take(10).map(|s| format!("{} ({})", s.path, s.reason)).collect();
        if source.skipped.len() > 10 {
            list.push(format!("and {} more", source.skipped.len() - 10));
        }
        list.join("; ")
    };
    if source.migrations.is_empty() {
        return Err(AppError::invalid(
            "files",
            ErrorCode::Unreadable,
            format!("no migration found (read as the {} layout): {}", source.layout.as_str(), listed()),
        ));
    }
    if !source.skipped.is_empty() && !input.allow_unknown_files {
        return Err(AppError::invalid(
            "files",
            ErrorCode::Unreadable,
            format!(
                "{} file(s) are not migrations of the {} layout, so nothing was imported: {}. Choose the layout, \
                 leave them out, or set allow_unknown_files",
                source.skipped.len(),
                source.layout.as_str(),
                listed()
            ),
        ));
    }
    let mut report = ImportReport {
        layout: source.layout.as_str().to_owned(),
        skipped: source
            .skipped
            .iter()
            .map(|s| SkippedFile { path: s.path.clone(), reason: s.reason.clone() })
            .collect(),
        ..ImportReport::default()
    };
    // Check everything before taking a connection, so a bad file fails the import with its name and
    // parsing never holds one.
    let mut imported = Vec::with_capacity(source.migrations.len());
    for m in &source.migrations {
        let checked =
            check(&m.up, m.down.as_deref(), m.transaction_mode, limits, &dialects, engine).map_err(|e| match e {
                AppError::Invalid { code, message, .. } => {
                    AppError::Invalid { field: Some("files"), code, message: format!("{}: {message}", m.up_path) }
                }
                other => other,
            })?;
        let name = MigrationName::parse(if m.name.is_empty() {
            m.version.as_str().to_owned()
        } else {
            m.name.replace('_', " ")
        })
        .map_err(|e| AppError::invalid("files", ErrorCode::InvalidValue, format!("{}: {e}", m.up_path)))?;
        let hash = source_hash(&m.up_path, &m.up, m.down_path.as_deref(), m.down.as_deref(), m.transaction_mode);
        imported.push(Imported { file: m, checked, name, hash });
    }

    let mut tx = hub.pool.begin().await.map_err(db)?;
    storage::projects::get(&mut tx, project).await?;
    // The migrations that exist, locked, and their newest versions: what each file is compared with.
    let keys: Vec<&VersionKey> = imported.iter().map(|i| &i.file.version).collect();
    let existing = storage::migrations::lock_by_keys(&mut tx, project, &keys).await?;
    let ids: Vec<MigrationId> = existing.iter().map(|m| m.id).collect();
    let latest: HashMap<MigrationId, storage::versions::VersionDigest> =
        storage::versions::latest_digests(&mut tx, &ids).await?.into_iter().map(|v| (v.migration_id, v)).collect();
    let existing: HashMap<&str, MigrationId> = existing.iter().map(|m| (m.version_key.as_str(), m.id)).collect();

    let mut to_create = Vec::new();
    let mut versions = Vec::new();
    for i in imported {
        let key = i.file.version.as_str().to_owned();
        match existing.get(key.as_str()) {
            None => {
                report.created.push(key);
                to_create.push(i);
            }
            Some(&migration) => {
                let hash = i.hash;
                let new = i.into_version(migration, caller);
                let same = latest.get(&migration).is_some_and(|l| {
                    l.source_hash == Some(hash)
                        || (l.checksums == new.checksums() && l.transaction_mode == new.transaction_mode)
                });
                if same {
                    report.unchanged.push(key);
                } else {
                    versions.push(new);
                    report.updated.push(key);
                }
            }
        }
    }
    let new_migrations: Vec<storage::migrations::NewMigration<'_>> = to_create
        .iter()
        .map(|i| storage::migrations::NewMigration {
            key: &i.file.version,
            name: &i.name,
            source_path: Some(i.file.up_path.as_str()),
        })
        .collect();
    let created = storage::migrations::create_many(&mut tx, project, &new_migrations, caller.actor.user_id).await?;
    versions.extend(created.into_iter().zip(to_create).map(|(id, i)| i.into_version(id, caller)));
    storage::versions::create_many(&mut tx, &versions).await?;
    const LISTED: usize = 200;
    record(
        &mut tx,
        hub,
        caller,
        Action::MigrationImport,
        "project",
        project,
        json!({
            "layout": report.layout,
            "created": report.created.iter().take(LISTED).collect::<Vec<_>>(),
            "updated": report.updated.iter().take(LISTED).collect::<Vec<_>>(),
            "created_count": report.created.len(),
            "updated_count": report.updated.len(),
            "unchanged_count": report.unchanged.len(),
        }),
    )
    .await?;
    tx.commit().await.map_err(db)?;
    Ok(report)
}

pub async fn get_migration(hub: &Hub, id: MigrationId) -> AppResult<(Migration, Option<MigrationVersion>)> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    let m = storage::migrations::get(&mut conn, id).await?;
    let latest = storage::versions::latest(&mut conn, id).await?;
    Ok((m, latest))
}

/// Per target, where the hub's runs left the migration (its page's status per target).
pub async fn status_per_target(hub: &Hub, id: MigrationId) -> AppResult<Vec<domain::model::TargetOfMigration>> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::run_items::applied_of_migration(&mut conn, id).await?)
}

pub async fn list_migrations(
    hub: &Hub,
    project: ProjectId,
    page: &PageRequest<VersionKey>,
) -> AppResult<Page<Migration, VersionKey>> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    storage::projects::get(&mut conn, project).await?;
    Ok(storage::migrations::list(&mut conn, project, page).await?)
}

pub async fn list_versions(
    hub: &Hub,
    migration: MigrationId,
    page: &PageRequest<u32>,
) -> AppResult<Page<MigrationVersion, u32>> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    storage::migrations::get(&mut conn, migration).await?;
    Ok(storage::versions::list(&mut conn, migration, page).await?)
}

pub async fn get_version(hub: &Hub, migration: MigrationId, number: u32) -> AppResult<MigrationVersion> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::versions::get_by_number(&mut conn, migration, number).await?)
}

/// Where each of `migrations` stands per environment: its newest run there.
pub async fn latest_runs(hub: &Hub, migrations: &[MigrationId]) -> AppResult<Vec<LatestRun>> {
    if migrations.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::runs::latest_per_environment(&mut conn, migrations).await?)
}
