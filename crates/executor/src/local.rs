//! Local mode: one directory of migration files against one database, as the `migrate-hub` command line
//! tool runs it (`apply`, `status`, `down`, `repair`, `adopt`, `baseline`). The same rules as the fleet path: the same reader,
//! splitter, placeholders, lock and history table.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use domain::checksum::Checksum;
use domain::enums::{Direction, Engine, TlsMode, TransactionMode};
use domain::placeholder::{self, Syntax};
use domain::source::{self, Layout, Source, SourceFile, SourceMigration};
use domain::split::{self, Dialect};
use domain::values::VersionKey;
use secrecy::SecretString;

use crate::adopt::{self, Candidate, Tool};
use crate::apply::{self, ApplyError, ApplyOptions, LockRetries, Migration, Observer, Outcome};
use crate::history::{self, HistoryRow, HistoryStatus, HistoryTable};
use crate::recovery::{self, Recovered, Resolution};
use crate::target::{ConnectSettings, TargetConnection, TargetError};

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Source(#[from] source::SourceError),
    #[error("{path}: {source}")]
    Split {
        path: String,
        #[source]
        source: split::SplitError,
    },
    #[error("{path}: {source}")]
    Placeholder {
        path: String,
        #[source]
        source: placeholder::PlaceholderError,
    },
    #[error(
        "{path} uses {what} placeholders ({}) that are not substituted: pass `--placeholders {flag}` and \
         `--var NAME=VALUE` for each; nothing was run", .names.join(", ")
    )]
    UnchosenPlaceholders { path: String, what: &'static str, flag: &'static str, names: Vec<String> },
    #[error("version {version} ({path}) has no down migration")]
    NoDown { version: String, path: String },
    #[error(
        "version {version} is dirty ({state}); nothing was rolled back. Recover it first: `migrate-hub repair \
         --version {version} --mark-applied|--mark-rolled-back|--resume`"
    )]
    Dirty { version: String, state: String },
    #[error("version {0} is not in the directory, and resuming needs its statements")]
    NotInDirectory(String),
    #[error(transparent)]
    Recovery(#[from] recovery::RecoveryError),
    #[error(transparent)]
    Adopt(#[from] adopt::AdoptError),
    #[error("invalid database URL: {0}")]
    Url(String),
    #[error("{0}")]
    New(String),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("{path}: version {version}: {source}")]
    Apply {
        version: String,
        path: String,
        #[source]
        source: Box<ApplyError>,
    },
}

/// Reads the `.sql` files of `dir` (not its subdirectories) in `layout`, or the detected one.
pub fn load_dir(dir: &Path, layout: Option<Layout>, engine: Engine) -> Result<Source, LocalError> {
    let mut contents = Vec::new();
    walk(dir, "", 0, &mut contents)?;
    contents.sort();
    let files: Vec<SourceFile<'_>> = contents.iter().map(|(path, content)| SourceFile { path, content }).collect();
    Ok(source::read(&files, layout, engine)?)
}

/// How deep [`walk`] goes below the directory (diesel needs one level; deeper files are listed, unread).
const MAX_DEPTH: usize = 3;

/// Every file under `dir`, as a path relative to the migrations directory with `/` separators, with the
/// text of the `.sql` and `.toml` files (the others only need to be listed, to say they were skipped).
fn walk(dir: &Path, prefix: &str, depth: usize, out: &mut Vec<(String, String)>) -> Result<(), LocalError> {
    let read_error = |source| LocalError::Read { path: dir.display().to_string(), source };
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with('.') {
            continue; // .git, .DS_Store, editor files
        }
        let relative = format!("{prefix}{name}");
        if path.is_dir() {
            if depth < MAX_DEPTH {
                walk(&path, &format!("{relative}/"), depth + 1, out)?;
            } else {
                out.push((format!("{relative}/"), String::new()));
            }
            continue;
        }
        let text = if name.ends_with(".sql") || name.ends_with(".toml") {
            std::fs::read_to_string(&path)
                .map_err(|source| LocalError::Read { path: path.display().to_string(), source })?
        } else {
            String::new()
        };
        out.push((relative, text));
    }
    Ok(())
}

/// A migration ready to run: split, with placeholders substituted.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub version: VersionKey,
    pub name: String,
    pub path: String,
    /// The up SQL as written (other tools' checksums are over it).
    pub up_sql: String,
    pub up_checksum: Checksum,
    pub statements: Vec<String>,
    /// The down statements, when the migration has a down part.
    pub down_statements: Option<Vec<String>>,
    pub transaction_mode: TransactionMode,
}

/// Splits every migration's up SQL and substitutes `variables`.
pub fn prepare(
    source: &Source,
    engine: Engine,
    variables: &BTreeMap<String, String>,
    syntaxes: &[Syntax],
) -> Result<Vec<Prepared>, LocalError> {
    check_placeholders(source, syntaxes)?;
    source.migrations.iter().map(|m| prepare_one(m, engine, variables, syntaxes)).collect()
}

/// River's and pop's placeholder markers in a file, when their syntax was not chosen: said before anything
/// runs, rather than as a syntax error at the statement that holds one.
fn check_placeholders(source: &Source, syntaxes: &[Syntax]) -> Result<(), LocalError> {
    let unchosen = [
        (Syntax::RiverTemplate, "River's `/* TEMPLATE: name */`", "river"),
        (Syntax::GoTemplate, "Go-template `{{ index .Options \"name\" }}`", "go"),
    ];
    for (syntax, what, flag) in unchosen.into_iter().filter(|(syntax, _, _)| !syntaxes.contains(syntax)) {
        for m in &source.migrations {
            let texts = [(m.up.as_str(), m.up_path.as_str())]
                .into_iter()
                .chain(m.down.as_deref().map(|down| (down, m.down_path.as_deref().unwrap_or(&m.up_path))));
            for (text, path) in texts {
                let names = placeholder::referenced(text, &[syntax]);
                if !names.is_empty() {
                    let names = names.into_iter().map(str::to_owned).collect();
                    return Err(LocalError::UnchosenPlaceholders { path: path.to_owned(), what, flag, names });
                }
            }
        }
    }
    Ok(())
}

fn prepare_one(
    m: &SourceMigration,
    engine: Engine,
    variables: &BTreeMap<String, String>,
    syntaxes: &[Syntax],
) -> Result<Prepared, LocalError> {
    let statements = split_and_substitute(&m.up, &m.up_path, engine, variables, syntaxes)?;
    let down_statements = match (&m.down, &m.down_path) {
        (Some(down), Some(path)) => Some(split_and_substitute(down, path, engine, variables, syntaxes)?),
        (Some(down), None) => Some(split_and_substitute(down, &m.up_path, engine, variables, syntaxes)?),
        _ => None,
    };
    Ok(Prepared {
        version: m.version.clone(),
        name: m.name.clone(),
        path: m.up_path.clone(),
        up_sql: m.up.clone(),
        // Over the text as written, before substitution: one checksum whatever the target's variables.
        up_checksum: Checksum::of(&m.up),
        statements,
        down_statements,
        transaction_mode: m.transaction_mode,
    })
}

fn split_and_substitute(
    sql: &str,
    path: &str,
    engine: Engine,
    variables: &BTreeMap<String, String>,
    syntaxes: &[Syntax],
) -> Result<Vec<String>, LocalError> {
    split::split(sql, Dialect::from(engine))
        .map_err(|source| LocalError::Split { path: path.to_owned(), source })?
        .iter()
        .map(|s| {
            placeholder::substitute(s.text(sql), variables, syntaxes)
                .map(|text| text.into_owned())
                .map_err(|source| LocalError::Placeholder { path: path.to_owned(), source })
        })
        .collect()
}

/// Where one version stands on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Pending,
    Applied,
    /// Applied with other content.
    Drift,
    /// A `running` or `failed` row: needs recovery.
    Dirty {
        status: &'static str,
        done: u32,
        total: u32,
    },
}

/// Compares the files with the target's history without changing anything.
pub async fn inspect<'p>(
    conn: &mut TargetConnection,
    prepared: &'p [Prepared],
    table: &HistoryTable,
) -> Result<(Vec<(State, &'p Prepared)>, Vec<HistoryRow>), LocalError> {
    let rows = if history::exists(conn, table).await? { history::all(conn, table).await? } else { Vec::new() };
    let states = prepared
        .iter()
        .map(|p| {
            let state = match rows.iter().find(|r| r.version == p.version.as_str()) {
                None => State::Pending,
                Some(r) if r.status != HistoryStatus::Applied => {
                    State::Dirty { status: r.status.as_str(), done: r.statements_done, total: r.statements_total }
                }
                // A repeatable migration whose content changed runs again.
                Some(r) if r.checksum != p.up_checksum.digest() && p.version.is_repeatable() => State::Pending,
                Some(r) if r.checksum != p.up_checksum.digest() => State::Drift,
                Some(_) => State::Applied,
            };
            (state, p)
        })
        .collect();
    // History rows of versions no longer in the directory.
    let unknown = rows.into_iter().filter(|r| !prepared.iter().any(|p| p.version.as_str() == r.version)).collect();
    Ok((states, unknown))
}

/// Settings of a local apply.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    pub history: HistoryTable,
    pub lock_wait: Duration,
    pub limits: crate::target::SessionLimits,
    pub allow_out_of_order: bool,
    pub worker: String,
    pub lock_retries: LockRetries,
}

/// Applies every migration in order; stops at the first failure. Returns each version's outcome.
pub async fn apply_all(
    conn: &mut TargetConnection,
    prepared: &[Prepared],
    options: &LocalOptions,
    observer: &mut impl Observer,
) -> Result<Vec<(VersionKey, Outcome)>, LocalError> {
    let mut outcomes = Vec::with_capacity(prepared.len());
    for index in 0..prepared.len() {
        let outcome = apply_one(conn, prepared, index, options, observer).await?;
        outcomes.push((prepared[index].version.clone(), outcome));
    }
    Ok(outcomes)
}

/// Applies `prepared[index]`; the versions before it are the ones that must already be there.
pub async fn apply_one(
    conn: &mut TargetConnection,
    prepared: &[Prepared],
    index: usize,
    options: &LocalOptions,
    observer: &mut impl Observer,
) -> Result<Outcome, LocalError> {
    let p = &prepared[index];
    let earlier = prepared[..index].iter().map(|e| e.version.clone()).collect();
    run(conn, p, Direction::Up, &p.statements, earlier, options.allow_out_of_order, options, observer).await
}

/// One direction of one migration through [`apply::apply`].
#[allow(clippy::too_many_arguments)] // Internal: the two callers differ in exactly these.
async fn run(
    conn: &mut TargetConnection,
    p: &Prepared,
    direction: Direction,
    statements: &[String],
    earlier_versions: Vec<VersionKey>,
    allow_out_of_order: bool,
    options: &LocalOptions,
    observer: &mut impl Observer,
) -> Result<Outcome, LocalError> {
    let migration = Migration {
        version: &p.version,
        name: &p.name,
        up_checksum: p.up_checksum,
        direction,
        statements: statements.to_vec(),
        transaction_mode: p.transaction_mode,
    };
    let apply_options = apply_options(options, earlier_versions, allow_out_of_order);
    apply::apply(conn, &migration, &apply_options, observer).await.map_err(|source| LocalError::Apply {
        version: p.version.to_string(),
        path: p.path.clone(),
        source: Box::new(source),
    })
}

/// Which applied versions to roll back.
#[derive(Debug, Clone)]
pub enum DownTo {
    /// The newest `n` applied versions.
    Steps(usize),
    /// Every applied version newer than this one.
    Version(VersionKey),
}

/// The versions a down would roll back, newest first, from the target's history.
pub async fn down_plan<'p>(
    conn: &mut TargetConnection,
    prepared: &'p [Prepared],
    table: &HistoryTable,
    to: &DownTo,
) -> Result<Vec<&'p Prepared>, LocalError> {
    let (states, unknown) = inspect(conn, prepared, table).await?;
    // A dirty version, known or not, stops the rollback: reverting the ones before it would leave it
    // on top of a schema it was never meant for.
    if let Some(row) = unknown.iter().find(|r| r.status != HistoryStatus::Applied) {
        return Err(LocalError::Dirty { version: row.version.clone(), state: recovery::describe(row) });
    }
    let dirty = states.iter().find_map(|(state, p)| match state {
        State::Dirty { status, done, total } => Some((p, format!("{status} at statement {done} of {total}"))),
        _ => None,
    });
    if let Some((p, state)) = dirty {
        return Err(LocalError::Dirty { version: p.version.to_string(), state });
    }
    // Repeatable migrations are never reverted (as in Flyway).
    let mut applied: Vec<&Prepared> = states
        .into_iter()
        .filter(|(s, p)| *s == State::Applied && !p.version.is_repeatable())
        .map(|(_, p)| p)
        .collect();
    applied.sort_by(|a, b| b.version.cmp(&a.version));
    Ok(match to {
        DownTo::Steps(n) => applied.into_iter().take(*n).collect(),
        DownTo::Version(v) => applied.into_iter().filter(|p| p.version > *v).collect(),
    })
}

/// Rolls one version back with its down statements.
pub async fn down_one(
    conn: &mut TargetConnection,
    p: &Prepared,
    options: &LocalOptions,
    observer: &mut impl Observer,
) -> Result<Outcome, LocalError> {
    let Some(statements) = &p.down_statements else {
        return Err(LocalError::NoDown { version: p.version.to_string(), path: p.path.clone() });
    };
    // Order does not constrain a rollback: the plan already picked the newest applied versions.
    run(conn, p, Direction::Down, statements, Vec::new(), true, options, observer).await
}

/// Gets the dirty `version` out of its state by `resolution` (see [`crate::recovery`]). A resume takes
/// the version's statements from the directory; the marks work for a version no longer in it too.
pub async fn repair(
    conn: &mut TargetConnection,
    prepared: &[Prepared],
    version: &VersionKey,
    resolution: Resolution,
    options: &LocalOptions,
    observer: &mut impl Observer,
) -> Result<Recovered, LocalError> {
    let found = prepared.iter().find(|p| p.version == *version);
    if found.is_none() && resolution == Resolution::Resume {
        return Err(LocalError::NotInDirectory(version.to_string()));
    }
    let migration = Migration {
        version,
        name: found.map_or("", |p| p.name.as_str()),
        up_checksum: found.map_or_else(|| Checksum::of(""), |p| p.up_checksum),
        direction: Direction::Up,
        statements: found.map(|p| p.statements.clone()).unwrap_or_default(),
        transaction_mode: found.map_or(TransactionMode::None, |p| p.transaction_mode),
    };
    let apply_options = apply_options(options, Vec::new(), true);
    Ok(recovery::recover(conn, &migration, resolution, None, &apply_options, observer).await?)
}

fn apply_options(options: &LocalOptions, earlier_versions: Vec<VersionKey>, allow_out_of_order: bool) -> ApplyOptions {
    ApplyOptions {
        history: options.history.clone(),
        lock_name: "local".into(),
        lock_wait: options.lock_wait,
        limits: options.limits,
        allow_out_of_order,
        earlier_versions,
        run_id: None,
        worker: options.worker.clone(),
        lock_retries: options.lock_retries,
        stop_at: None,
    }
}

/// Creates the next migration of `dir` (made if missing), named `name`, in its layout (`layout`, or the one
/// detected; an empty directory gets plain files): the files with empty sections, never over an existing
/// one. The version follows the newest: the next number at the same width, or a UTC timestamp (`now`) where
/// the directory uses timestamps, and for an empty directory unless `sequential`. Returns the paths made,
/// relative to `dir`.
pub fn new_migration(
    dir: &Path,
    layout: Option<Layout>,
    name: &str,
    now: chrono::DateTime<chrono::Utc>,
    sequential: bool,
) -> Result<Vec<String>, LocalError> {
    let name: String = name
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .collect::<String>()
        .split('_')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    if name.is_empty() || name.len() > 100 {
        return Err(LocalError::New("the name needs letters or digits (at most 100)".into()));
    }
    std::fs::create_dir_all(dir).map_err(|source| LocalError::Read { path: dir.display().to_string(), source })?;
    let source = load_dir(dir, layout, Engine::Postgres)?;
    let layout = layout.unwrap_or(source.layout);
    let newest = source.migrations.iter().map(|m| &m.version).max().map(VersionKey::as_str);
    let stamp = |format: &str| now.format(format).to_string();
    let version = match layout {
        Layout::Flyway | Layout::Refinery => {
            let major = newest.and_then(|v| v.split('.').next()).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            (major + 1).to_string()
        }
        Layout::Diesel => after(newest, stamp("%Y%m%d%H%M%S")),
        Layout::Dbmate => after(newest, stamp("%Y%m%d%H%M%S")),
        Layout::Plain | Layout::UpDown | Layout::Goose | Layout::SqlMigrate => match newest {
            Some(v) if v.bytes().all(|b| b.is_ascii_digit()) && v.len() < 12 => next_number(v),
            Some(v) => after(Some(v), stamp("%Y%m%d%H%M%S")),
            None if sequential => if layout == Layout::Goose { "00001" } else { "0001" }.to_owned(),
            None => stamp("%Y%m%d%H%M%S"),
        },
    };
    let files: Vec<(String, &str)> = match layout {
        Layout::Plain => vec![(format!("{version}_{name}.sql"), "")],
        Layout::UpDown => vec![(format!("{version}_{name}.up.sql"), ""), (format!("{version}_{name}.down.sql"), "")],
        Layout::Goose => vec![(format!("{version}_{name}.sql"), "-- +goose Up\n\n-- +goose Down\n")],
        Layout::Dbmate => vec![(format!("{version}_{name}.sql"), "-- migrate:up\n\n-- migrate:down\n")],
        Layout::SqlMigrate => vec![(format!("{version}_{name}.sql"), "-- +migrate Up\n\n-- +migrate Down\n")],
        Layout::Flyway | Layout::Refinery => vec![(format!("V{version}__{name}.sql"), "")],
        Layout::Diesel => {
            // The folder's timestamp with diesel's dashes: 2019-02-26-002946.
            let (d, t) = version.split_at(8);
            let folder = format!("{}-{}-{}-{t}_{name}", &d[..4], &d[4..6], &d[6..]);
            vec![(format!("{folder}/up.sql"), ""), (format!("{folder}/down.sql"), "")]
        }
    };
    for (path, text) in &files {
        let full = dir.join(path);
        let failed = |source| LocalError::Read { path: full.display().to_string(), source };
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&full).map_err(failed)?;
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(failed)?;
    }
    Ok(files.into_iter().map(|(path, _)| path).collect())
}

/// `stamp`, or the number after `newest` when the clock is not past it (a version from the future, or two
/// in one second).
fn after(newest: Option<&str>, stamp: String) -> String {
    match newest {
        Some(v) if v.bytes().all(|b| b.is_ascii_digit()) && v.len() >= stamp.len() && *v >= *stamp.as_str() => {
            next_number(v)
        }
        _ => stamp,
    }
}

/// `v` plus one, at least as wide (`0009` → `0010`).
fn next_number(v: &str) -> String {
    let n = v.parse::<u128>().map_or(1, |n| n + 1);
    format!("{n:0width$}", width = v.len())
}

/// What `adopt` or `baseline` found and did.
#[derive(Debug, Clone)]
pub struct Adopted {
    /// The versions recorded as applied (or, with `dry_run`, that would be), in order.
    pub versions: Vec<VersionKey>,
    /// How many of them were recorded already.
    pub already: usize,
    /// What was read but not adopted.
    pub notes: Vec<String>,
}

fn candidates(prepared: &[Prepared]) -> Vec<Candidate<'_>> {
    prepared
        .iter()
        .map(|p| Candidate {
            version: &p.version,
            name: &p.name,
            up_sql: &p.up_sql,
            up_checksum: p.up_checksum,
            statements: u32::try_from(p.statements.len()).unwrap_or(u32::MAX),
        })
        .collect()
}

/// Records as applied the versions that `tool` applied on this database (its history table `from_table`,
/// or its default), without running them (see [`crate::adopt`]).
pub async fn adopt(
    conn: &mut TargetConnection,
    prepared: &[Prepared],
    tool: Tool,
    from_table: Option<&str>,
    options: &LocalOptions,
    dry_run: bool,
) -> Result<Adopted, LocalError> {
    let foreign = adopt::read_foreign(conn, tool, from_table).await?;
    let candidates = candidates(prepared);
    let chosen = adopt::plan(tool, &foreign, &candidates)?;
    let table = from_table.unwrap_or(tool.default_table());
    let source = format!("adopted from {tool} ({table}) by {}", options.worker);
    let recorded = record(conn, &candidates, &chosen, &source, options, dry_run).await?;
    Ok(Adopted { notes: foreign.notes, ..recorded })
}

/// Records every version up to and including `to` as applied without running it (a database brought up
/// to date by other means).
pub async fn baseline(
    conn: &mut TargetConnection,
    prepared: &[Prepared],
    to: &VersionKey,
    options: &LocalOptions,
    dry_run: bool,
) -> Result<Adopted, LocalError> {
    let candidates = candidates(prepared);
    let chosen = adopt::up_to(&candidates, to)?;
    let source = format!("baseline to {to} by {}", options.worker);
    record(conn, &candidates, &chosen, &source, options, dry_run).await
}

async fn record(
    conn: &mut TargetConnection,
    candidates: &[Candidate<'_>],
    chosen: &[usize],
    source: &str,
    options: &LocalOptions,
    dry_run: bool,
) -> Result<Adopted, LocalError> {
    let versions: Vec<VersionKey> = chosen.iter().map(|&i| candidates[i].version.clone()).collect();
    if dry_run {
        return Ok(Adopted { versions, already: 0, notes: Vec::new() });
    }
    let apply_options =
        ApplyOptions { worker: source.chars().take(200).collect(), ..apply_options(options, Vec::new(), true) };
    let (_, already) = adopt::record(conn, &apply_options, candidates, chosen).await?;
    Ok(Adopted { versions, already, notes: Vec::new() })
}

/// Parses `postgres://user:password@host:port/database?sslmode=…` or `mysql://…` (also `postgresql://`,
/// `mariadb://`). The error never repeats the URL, which may hold a password.
pub fn settings_from_url(url: &str) -> Result<ConnectSettings, LocalError> {
    let bad = |what: &str| LocalError::Url(what.to_owned());
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("expected scheme://…"))?;
    let (engine, default_port) = match scheme {
        "postgres" | "postgresql" => (Engine::Postgres, 5432),
        "mysql" | "mariadb" => (Engine::Mysql, 3306),
        _ => return Err(bad("the scheme must be postgres:// or mysql://")),
    };
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, database) = rest.split_once('/').ok_or_else(|| bad("no database name in the URL"))?;
    if database.is_empty() {
        return Err(bad("no database name in the URL"));
    }
    let (credentials, address) = match authority.rsplit_once('@') {
        Some((credentials, address)) => (Some(credentials), address),
        None => (None, authority),
    };
    let (username, password) = match credentials {
        Some(c) => match c.split_once(':') {
            Some((user, password)) => (decode(user)?, Some(SecretString::from(decode(password)?))),
            None => (decode(c)?, None),
        },
        None => (String::from(if engine == Engine::Postgres { "postgres" } else { "root" }), None),
    };
    let (host, port) = match address.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().map_err(|_| bad("the port is not a number"))?),
        None => (address, default_port),
    };
    let mut tls_mode = TlsMode::Prefer;
    let mut mysql_sql_mode = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if matches!(key, "sslmode" | "ssl-mode" | "ssl_mode") {
            tls_mode = match value.to_ascii_lowercase().replace('_', "-").as_str() {
                "disable" | "disabled" => TlsMode::Disable,
                "prefer" | "preferred" | "allow" => TlsMode::Prefer,
                "require" | "required" => TlsMode::Require,
                "verify-ca" => TlsMode::VerifyCa,
                "verify-full" | "verify-identity" => TlsMode::VerifyFull,
                _ => return Err(bad("unknown sslmode")),
            };
        } else if key == "sql_mode" {
            if engine != Engine::Mysql {
                return Err(bad("sql_mode applies to mysql:// URLs only"));
            }
            let mode = decode(value)?;
            if !mode.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ',') {
                return Err(bad("sql_mode may hold only letters, digits, '_' and ','"));
            }
            mysql_sql_mode = Some(mode);
        }
    }
    Ok(ConnectSettings {
        engine,
        host: host.trim_start_matches('[').trim_end_matches(']').to_owned(),
        port,
        database: decode(database)?,
        username,
        password,
        tls_mode,
        connect_timeout: Duration::from_secs(10),
        mysql_sql_mode,
    })
}

/// Percent-decoding of URL parts.
fn decode(part: &str) -> Result<String, LocalError> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = part.get(i + 1..i + 3).ok_or_else(|| LocalError::Url("bad percent-encoding".into()))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| LocalError::Url("bad percent-encoding".into()))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| LocalError::Url("percent-encoding is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn urls_parse_with_defaults_and_decoding() {
        let s = settings_from_url("postgres://app:p%40ss@db.internal:6432/orders?sslmode=verify-full").unwrap();
        assert_eq!(
            (s.engine, s.host.as_str(), s.port, s.database.as_str()),
            (Engine::Postgres, "db.internal", 6432, "orders")
        );
        assert_eq!((s.username.as_str(), s.password.as_ref().map(|p| p.expose_secret())), ("app", Some("p@ss")));
        assert_eq!(s.tls_mode, TlsMode::VerifyFull);
        let m = settings_from_url("mysql://root@127.0.0.1/test").unwrap();
        assert_eq!((m.engine, m.port, m.password.is_none(), m.mysql_sql_mode), (Engine::Mysql, 3306, true, None));
        let m = settings_from_url("mysql://root@127.0.0.1/test?sql_mode=NO_ENGINE_SUBSTITUTION%2CANSI_QUOTES").unwrap();
        assert_eq!(m.mysql_sql_mode.as_deref(), Some("NO_ENGINE_SUBSTITUTION,ANSI_QUOTES"));
        assert!(settings_from_url("mysql://root@h/test?sql_mode=x';DROP").is_err());
        assert!(settings_from_url("postgres://u@h/test?sql_mode=ANSI").is_err());
    }

    #[test]
    fn bad_urls_never_echo_the_password() {
        for url in [
            "postgres://u:secret@h:x/db",
            "ftp://u:secret@h/db",
            "postgres://u:secret@h:5432",
            "postgres://u:secret@h/db?sslmode=sometimes",
        ] {
            let err = settings_from_url(url).unwrap_err().to_string();
            assert!(!err.contains("secret"), "{err}");
        }
    }
}
