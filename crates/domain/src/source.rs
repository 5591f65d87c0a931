//! Migration files as other tools lay them out, turned into one list of versioned migrations.
//!
//! Teams arrive with directories written for sqlx, golang-migrate, goose, Flyway, dbmate, pop (ory/kratos'
//! dialect-specific files) or plain numbered `.sql` files. This module reads the *contents* it is given
//! (the caller lists and reads the directory, so this stays pure) and produces, per version: its name, the
//! up and down SQL, and whether it may run in a transaction. What it cannot honour it says so, with the file
//! and line, rather than guessing: a duplicate version, a down file without an up, a malformed annotation,
//! a Flyway repeatable migration.
//!
//! Versions sort by [`VersionKey`]'s natural order, so `2_b` comes before `10_a` as every one of those
//! tools intends.

use std::collections::BTreeMap;

use crate::enums::{Engine, TransactionMode};
use crate::values::VersionKey;

/// A file handed in by the caller: its path relative to the migrations directory and its text.
#[derive(Debug, Clone, Copy)]
pub struct SourceFile<'a> {
    pub path: &'a str,
    pub content: &'a str,
}

/// The directory layouts understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `NNNN_name.sql` or `NNN-name.sql`, one file per version, up only (also sqlx's simple migrations,
    /// with `-- no-transaction` on the first line).
    Plain,
    /// `N_name.up.sql` / `N_name.down.sql` (sqlx reversible, golang-migrate), including pop's
    /// `N_name.postgres.up.sql` dialect overrides and `.autocommit.` files that run outside a transaction.
    UpDown,
    /// goose: one file per version with `-- +goose Up` / `-- +goose Down` sections.
    Goose,
    /// Flyway: `V1__name.sql` and undo `U1__name.sql`.
    Flyway,
    /// dbmate: one file per version with `-- migrate:up` / `-- migrate:down` sections.
    Dbmate,
    /// diesel: a folder per version, `2019-02-26-002946_create_users/up.sql` and `down.sql`, with an optional
    /// `metadata.toml` (`run_in_transaction = false`). The version is the folder's leading timestamp without
    /// its dashes, as diesel records it (`20190226002946`).
    Diesel,
    /// refinery: `V1__name.sql` (versioned) and `U2__name.sql` (unversioned: in refinery, one that may be
    /// applied out of order, not Flyway's undo), both up only.
    Refinery,
    /// sql-migrate (rubenv): one file per version, `1_name.sql` or `1-name.sql`, with `-- +migrate Up`
    /// (optionally `notransaction`) / `-- +migrate Down` sections and `StatementBegin` / `StatementEnd`.
    SqlMigrate,
}

impl Layout {
    pub const ALL: &'static [Layout] = &[
        Layout::Plain,
        Layout::UpDown,
        Layout::Goose,
        Layout::Flyway,
        Layout::Dbmate,
        Layout::Diesel,
        Layout::Refinery,
        Layout::SqlMigrate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Plain => "plain",
            Layout::UpDown => "up-down",
            Layout::Goose => "goose",
            Layout::Flyway => "flyway",
            Layout::Dbmate => "dbmate",
            Layout::Diesel => "diesel",
            Layout::Refinery => "refinery",
            Layout::SqlMigrate => "sql-migrate",
        }
    }
}

impl std::str::FromStr for Layout {
    type Err = SourceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "plain" => Ok(Layout::Plain),
            "up-down" | "updown" | "sqlx" | "golang-migrate" | "migrate" | "pop" | "morph" => Ok(Layout::UpDown),
            "goose" => Ok(Layout::Goose),
            "flyway" => Ok(Layout::Flyway),
            "dbmate" => Ok(Layout::Dbmate),
            "diesel" => Ok(Layout::Diesel),
            "refinery" => Ok(Layout::Refinery),
            "sql-migrate" => Ok(Layout::SqlMigrate),
            _ => Err(SourceError::UnknownLayout { name: s.to_owned() }),
        }
    }
}

/// One migration read from the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMigration {
    pub version: VersionKey,
    /// The descriptive part of the file name (`create_users` in `0001_create_users.sql`).
    pub name: String,
    pub up: String,
    pub down: Option<String>,
    pub transaction_mode: TransactionMode,
    pub up_path: String,
    pub down_path: Option<String>,
}

/// A file that was passed over, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

/// The result of reading a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub layout: Layout,
    /// In version order.
    pub migrations: Vec<SourceMigration>,
    /// Files the layout does not read (not migrations, or not named as the layout names them).
    pub skipped: Vec<Skipped>,
    /// Migrations written for another dialect than the target's (pop's `name.mysql.up.sql` beside
    /// `name.postgres.up.sql`): read as such and left out on purpose, so not among `skipped`.
    pub other_dialects: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error(
        "unknown migration layout {name:?} (expected one of plain, up-down, goose, flyway, dbmate, diesel, refinery, \
         sql-migrate)"
    )]
    UnknownLayout { name: String },
    #[error("version {version} is defined twice: {first} and {second}")]
    DuplicateVersion { version: String, first: String, second: String },
    #[error("{path}: a down migration without an up migration of the same version")]
    DownWithoutUp { path: String },
    #[error("{path}, line {line}: {message}")]
    Malformed { path: String, line: u32, message: String },
    #[error("{path}: {message}")]
    BadFileName { path: String, message: String },
}

/// Guesses the layout from names and contents: Flyway names, goose or dbmate annotations, `.up.sql`
/// files, else plain. `None` when there is no `.sql` file at all.
pub fn detect(files: &[SourceFile<'_>]) -> Option<Layout> {
    if files.iter().any(|f| diesel_path(f.path).is_some_and(|(_, file)| file == "up.sql")) {
        return Some(Layout::Diesel);
    }
    let sql: Vec<&SourceFile<'_>> =
        files.iter().filter(|f| !f.path.contains('/') && file_name(f.path).ends_with(".sql")).collect();
    if sql.is_empty() {
        return None;
    }
    let flyway: Vec<(char, String, &str)> = sql.iter().filter_map(|f| flyway_name(file_name(f.path))).collect();
    if !flyway.is_empty() {
        // refinery's `U` is an unversioned up migration, never the undo of a `V` of the same version.
        let undo_of_nothing = flyway
            .iter()
            .any(|(prefix, version, _)| *prefix == 'U' && !flyway.iter().any(|(p, v, _)| *p == 'V' && v == version));
        return Some(if undo_of_nothing { Layout::Refinery } else { Layout::Flyway });
    }
    if sql.iter().any(|f| f.content.lines().any(|l| goose_annotation(l).is_some())) {
        return Some(Layout::Goose);
    }
    if sql.iter().any(|f| f.content.lines().any(|l| sql_migrate_annotation(l).is_some())) {
        return Some(Layout::SqlMigrate);
    }
    if sql.iter().any(|f| f.content.lines().any(|l| dbmate_annotation(l).is_some())) {
        return Some(Layout::Dbmate);
    }
    if sql.iter().any(|f| {
        let name = file_name(f.path);
        name.ends_with(".up.sql") || name.ends_with(".down.sql")
    }) {
        return Some(Layout::UpDown);
    }
    Some(Layout::Plain)
}

/// Reads `files` in `layout` (detected when `None`), keeping only what applies to `engine` where files are
/// dialect-specific.
pub fn read(files: &[SourceFile<'_>], layout: Option<Layout>, engine: Engine) -> Result<Source, SourceError> {
    let Some(layout) = layout.or_else(|| detect(files)) else {
        let skipped = skipped_all(files);
        return Ok(Source { layout: Layout::Plain, migrations: Vec::new(), skipped, other_dialects: Vec::new() });
    };
    let mut skipped = Vec::new();
    let mut other_dialects = Vec::new();
    let mut builder = Builder::default();
    if layout == Layout::Diesel {
        read_diesel(files, &mut builder, &mut skipped)?;
        return Ok(Source { layout, migrations: builder.finish()?, skipped, other_dialects: Vec::new() });
    }
    for file in files {
        let name = file_name(file.path);
        if file.path.contains('/') {
            let reason = format!("in a subfolder: the {} layout reads only the directory's own files", layout.as_str());
            skipped.push(Skipped { path: file.path.to_owned(), reason });
            continue;
        }
        if !name.ends_with(".sql") {
            skipped.push(Skipped { path: file.path.to_owned(), reason: "not a .sql file".into() });
            continue;
        }
        match layout {
            Layout::Plain => read_plain(file, &mut builder, &mut skipped)?,
            Layout::UpDown => read_up_down(file, engine, &mut builder, &mut skipped, &mut other_dialects)?,
            Layout::Goose => read_sectioned(file, Sections::Goose, &mut builder, &mut skipped)?,
            Layout::Dbmate => read_sectioned(file, Sections::Dbmate, &mut builder, &mut skipped)?,
            Layout::SqlMigrate => read_sectioned(file, Sections::SqlMigrate, &mut builder, &mut skipped)?,
            Layout::Flyway => read_flyway(file, false, &mut builder, &mut skipped)?,
            Layout::Refinery => read_flyway(file, true, &mut builder, &mut skipped)?,
            Layout::Diesel => {}
        }
    }
    Ok(Source { layout, migrations: builder.finish()?, skipped, other_dialects })
}

fn skipped_all(files: &[SourceFile<'_>]) -> Vec<Skipped> {
    files.iter().map(|f| Skipped { path: f.path.to_owned(), reason: "not a .sql file".into() }).collect()
}

fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Which half of a migration a file (or section) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Half {
    Up,
    Down,
}

/// Collects halves by version; a version's two halves may come from two files.
#[derive(Debug, Default)]
struct Builder {
    entries: BTreeMap<VersionKey, Entry>,
}

#[derive(Debug, Default)]
struct Entry {
    name: String,
    up: Option<(String, String)>,
    down: Option<(String, String)>,
    /// How each half was marked: `None` where it said nothing.
    up_mode: Option<TransactionMode>,
    /// Specific (dialect) files win over generic ones of the same version and half.
    up_specific: bool,
    down_specific: bool,
}

struct Piece<'a> {
    version: VersionKey,
    name: &'a str,
    half: Half,
    path: &'a str,
    sql: String,
    mode: Option<TransactionMode>,
    specific: bool,
}

impl Builder {
    fn add(&mut self, h: Piece<'_>) -> Result<(), SourceError> {
        let entry = self.entries.entry(h.version.clone()).or_default();
        if entry.name.is_empty() {
            entry.name = h.name.to_owned();
        }
        let (slot, specific) = match h.half {
            Half::Up => (&mut entry.up, &mut entry.up_specific),
            Half::Down => (&mut entry.down, &mut entry.down_specific),
        };
        match slot {
            Some((first, _)) if *specific == h.specific => {
                return Err(SourceError::DuplicateVersion {
                    version: h.version.to_string(),
                    first: first.clone(),
                    second: h.path.to_owned(),
                });
            }
            // A generic file after the dialect-specific one: the specific one stays.
            Some(_) if *specific => return Ok(()),
            _ => {}
        }
        *slot = Some((h.path.to_owned(), h.sql));
        *specific = h.specific;
        if h.half == Half::Up {
            entry.up_mode = h.mode;
            entry.name = h.name.to_owned();
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<SourceMigration>, SourceError> {
        let mut out = Vec::with_capacity(self.entries.len());
        for (version, entry) in self.entries {
            let Some((up_path, up)) = entry.up else {
                let path = entry.down.map(|(path, _)| path).unwrap_or_default();
                return Err(SourceError::DownWithoutUp { path });
            };
            let (down_path, down) = entry.down.unzip();
            out.push(SourceMigration {
                version,
                name: entry.name,
                up,
                down,
                transaction_mode: entry.up_mode.unwrap_or(TransactionMode::Transaction),
                up_path,
                down_path,
            });
        }
        Ok(out)
    }
}

/// `<digits><sep><rest>`: the version and the rest of the name.
fn numbered<'a>(name: &'a str, separators: &[char]) -> Option<(&'a str, &'a str)> {
    let digits = name.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (version, rest) = name.split_at(digits);
    let rest = rest.strip_prefix(separators)?;
    Some((version, rest))
}

fn version_key(path: &str, version: &str) -> Result<VersionKey, SourceError> {
    VersionKey::parse(version).map_err(|e| SourceError::BadFileName { path: path.to_owned(), message: e.to_string() })
}

/// A migration that must not run in a transaction is marked on its first line: sqlx writes
/// `-- no-transaction`, morph `-- morph:nontransactional`.
fn sqlx_mode(sql: &str) -> Option<TransactionMode> {
    let first = sql.trim_start_matches('\u{feff}').lines().next().unwrap_or_default().trim();
    let marked = ["-- no-transaction", "-- morph:nontransactional"].iter().any(|m| first.eq_ignore_ascii_case(m));
    marked.then_some(TransactionMode::None)
}

fn read_plain(file: &SourceFile<'_>, builder: &mut Builder, skipped: &mut Vec<Skipped>) -> Result<(), SourceError> {
    let name = file_name(file.path);
    let stem = &name[..name.len() - ".sql".len()];
    let Some((version, rest)) = numbered(stem, &['_', '-']) else {
        skipped
            .push(Skipped { path: file.path.to_owned(), reason: "name does not start with a version number".into() });
        return Ok(());
    };
    builder.add(Piece {
        version: version_key(file.path, version)?,
        name: rest,
        half: Half::Up,
        path: file.path,
        sql: file.content.to_owned(),
        mode: sqlx_mode(file.content),
        specific: false,
    })
}

/// Dialect segments of pop-style names; files for other engines than the target's are skipped.
const DIALECTS: &[(&str, Option<Engine>)] = &[
    ("postgres", Some(Engine::Postgres)),
    ("mysql", Some(Engine::Mysql)),
    ("cockroach", None),
    ("sqlite3", None),
    ("sqlite", None),
];

fn read_up_down(
    file: &SourceFile<'_>,
    engine: Engine,
    builder: &mut Builder,
    skipped: &mut Vec<Skipped>,
    other_dialects: &mut Vec<String>,
) -> Result<(), SourceError> {
    let name = file_name(file.path);
    let (stem, half) = if let Some(stem) = name.strip_suffix(".up.sql") {
        (stem, Half::Up)
    } else if let Some(stem) = name.strip_suffix(".down.sql") {
        (stem, Half::Down)
    } else {
        skipped.push(Skipped { path: file.path.to_owned(), reason: "neither .up.sql nor .down.sql".into() });
        return Ok(());
    };
    let Some((version, rest)) = numbered(stem, &['_']) else {
        skipped
            .push(Skipped { path: file.path.to_owned(), reason: "name does not start with a version number".into() });
        return Ok(());
    };
    let (rest, autocommit) = match rest.strip_suffix(".autocommit") {
        Some(rest) => (rest, true),
        None => (rest, false),
    };
    let mut specific = false;
    let mut base = rest;
    if let Some((before, dialect)) = rest.rsplit_once('.')
        && let Some((_, dialect_engine)) = DIALECTS.iter().find(|(d, _)| *d == dialect)
    {
        if *dialect_engine != Some(engine) {
            other_dialects.push(file.path.to_owned());
            return Ok(());
        }
        specific = true;
        base = before;
    }
    let mode = if autocommit { Some(TransactionMode::None) } else { sqlx_mode(file.content) };
    builder.add(Piece {
        version: version_key(file.path, version)?,
        name: base,
        half,
        path: file.path,
        sql: file.content.to_owned(),
        mode,
        specific,
    })
}

#[derive(Debug, Clone, Copy)]
enum Sections {
    Goose,
    Dbmate,
    SqlMigrate,
}

/// A goose annotation on a line: what follows `-- +goose `, if the line is one.
fn goose_annotation(line: &str) -> Option<&str> {
    line.trim().strip_prefix("-- +goose").map(str::trim)
}

/// A sql-migrate annotation on a line: what follows `-- +migrate `, if the line is one.
fn sql_migrate_annotation(line: &str) -> Option<&str> {
    line.trim().strip_prefix("-- +migrate").map(str::trim)
}

fn dbmate_annotation(line: &str) -> Option<&str> {
    line.trim().strip_prefix("-- migrate:").map(str::trim)
}

/// goose, dbmate and sql-migrate files: one file, an up section and an optional down section, marked by
/// comments.
fn read_sectioned(
    file: &SourceFile<'_>,
    sections: Sections,
    builder: &mut Builder,
    skipped: &mut Vec<Skipped>,
) -> Result<(), SourceError> {
    let name = file_name(file.path);
    let stem = &name[..name.len() - ".sql".len()];
    let separators: &[char] = if matches!(sections, Sections::SqlMigrate) { &['_', '-'] } else { &['_'] };
    let Some((version, rest)) = numbered(stem, separators) else {
        skipped
            .push(Skipped { path: file.path.to_owned(), reason: "name does not start with a version number".into() });
        return Ok(());
    };
    let malformed = |line: usize, message: String| SourceError::Malformed {
        path: file.path.to_owned(),
        line: u32::try_from(line + 1).unwrap_or(u32::MAX),
        message,
    };
    let mut up = String::new();
    let mut down = String::new();
    let mut current: Option<Half> = None;
    let mut seen_down = false;
    let mut no_transaction = false;
    let mut open_statement: Option<usize> = None;
    for (n, line) in file.content.split_inclusive('\n').enumerate() {
        let annotation = match sections {
            Sections::Goose => goose_annotation(line),
            Sections::Dbmate => dbmate_annotation(line),
            Sections::SqlMigrate => sql_migrate_annotation(line),
        };
        if let Some(annotation) = annotation {
            let mut words = annotation.split_whitespace();
            let keyword = words.next().unwrap_or_default().to_ascii_lowercase();
            let options: Vec<&str> = words.collect();
            match (sections, keyword.as_str()) {
                (_, "up") => {
                    if current.is_some() {
                        return Err(malformed(n, "a second up section".into()));
                    }
                    current = Some(Half::Up);
                    match sections {
                        Sections::Dbmate => {
                            no_transaction |= dbmate_no_transaction(&options).map_err(|m| malformed(n, m))?;
                        }
                        Sections::SqlMigrate => {
                            no_transaction |= sql_migrate_no_transaction(&options).map_err(|m| malformed(n, m))?;
                        }
                        Sections::Goose => {}
                    }
                }
                (_, "down") => {
                    if current != Some(Half::Up) || seen_down {
                        return Err(malformed(n, "a down section must follow the up section, once".into()));
                    }
                    if let Some(open) = open_statement {
                        return Err(malformed(open, "StatementBegin without StatementEnd".into()));
                    }
                    current = Some(Half::Down);
                    seen_down = true;
                    match sections {
                        Sections::Dbmate => {
                            dbmate_no_transaction(&options).map_err(|m| malformed(n, m))?;
                        }
                        Sections::SqlMigrate => {
                            sql_migrate_no_transaction(&options).map_err(|m| malformed(n, m))?;
                        }
                        Sections::Goose => {}
                    }
                }
                (Sections::Goose | Sections::SqlMigrate, "statementbegin") => {
                    if current.is_none() || open_statement.is_some() {
                        return Err(malformed(n, "StatementBegin outside a section or inside another".into()));
                    }
                    open_statement = Some(n);
                }
                (Sections::Goose | Sections::SqlMigrate, "statementend") => {
                    if open_statement.take().is_none() {
                        return Err(malformed(n, "StatementEnd without StatementBegin".into()));
                    }
                }
                (Sections::Goose, "no") if options.iter().any(|o| o.eq_ignore_ascii_case("transaction")) => {
                    no_transaction = true;
                }
                (Sections::Goose, "envsub") => {}
                (_, other) => return Err(malformed(n, format!("unknown annotation {other:?}"))),
            }
        }
        match current {
            Some(Half::Up) if annotation.is_none() || !starts_section(annotation) => up.push_str(line),
            Some(Half::Down) if annotation.is_none() || !starts_section(annotation) => down.push_str(line),
            _ => {}
        }
    }
    if let Some(open) = open_statement {
        return Err(malformed(open, "StatementBegin without StatementEnd".into()));
    }
    if current.is_none() {
        let marker = match sections {
            Sections::Goose => "-- +goose Up",
            Sections::Dbmate => "-- migrate:up",
            Sections::SqlMigrate => "-- +migrate Up",
        };
        return Err(SourceError::Malformed {
            path: file.path.to_owned(),
            line: 1,
            message: format!("no `{marker}` section"),
        });
    }
    let version = version_key(file.path, version)?;
    let mode = no_transaction.then_some(TransactionMode::None);
    builder.add(Piece {
        version: version.clone(),
        name: rest,
        half: Half::Up,
        path: file.path,
        sql: up,
        mode,
        specific: false,
    })?;
    if seen_down {
        builder.add(Piece {
            version,
            name: rest,
            half: Half::Down,
            path: file.path,
            sql: down,
            mode,
            specific: false,
        })?;
    }
    Ok(())
}

/// Section markers are not part of the SQL; the other annotations are comments the SQL keeps.
fn starts_section(annotation: Option<&str>) -> bool {
    annotation.is_some_and(|a| {
        let keyword = a.split_whitespace().next().unwrap_or_default();
        keyword.eq_ignore_ascii_case("up") || keyword.eq_ignore_ascii_case("down")
    })
}

/// sql-migrate options after `-- +migrate Up` or `Down`: `notransaction`.
fn sql_migrate_no_transaction(options: &[&str]) -> Result<bool, String> {
    let mut no_transaction = false;
    for option in options {
        if option.eq_ignore_ascii_case("notransaction") {
            no_transaction = true;
        } else {
            return Err(format!("unknown sql-migrate option {option:?}"));
        }
    }
    Ok(no_transaction)
}

/// dbmate options after `-- migrate:up`: `transaction:false` (or `true`).
fn dbmate_no_transaction(options: &[&str]) -> Result<bool, String> {
    let mut no_transaction = false;
    for option in options {
        match option.split_once(':') {
            Some(("transaction", "false")) => no_transaction = true,
            Some(("transaction", "true")) => {}
            _ => return Err(format!("unknown dbmate option {option:?}")),
        }
    }
    Ok(no_transaction)
}

/// `V1_2__name.sql` → (prefix 'V', "1.2", "name"); `R__name.sql` → ('R', "", "name").
fn flyway_name(name: &str) -> Option<(char, String, &str)> {
    let stem = name.strip_suffix(".sql")?;
    let prefix = stem.chars().next().filter(|c| matches!(c, 'V' | 'U' | 'R'))?;
    let (version, description) = stem[1..].split_once("__")?;
    let valid = if prefix == 'R' {
        version.is_empty()
    } else {
        version.starts_with(|c: char| c.is_ascii_digit())
            && version.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '_')
    };
    valid.then(|| (prefix, version.replace('_', "."), description))
}

/// Flyway (`V` up, `U` undo) or, with `refinery`, refinery (`V` and `U` both up).
fn read_flyway(
    file: &SourceFile<'_>,
    refinery: bool,
    builder: &mut Builder,
    skipped: &mut Vec<Skipped>,
) -> Result<(), SourceError> {
    let tool = if refinery { "refinery" } else { "Flyway" };
    let Some((prefix, version, description)) = flyway_name(file_name(file.path)) else {
        skipped.push(Skipped { path: file.path.to_owned(), reason: format!("not a {tool} migration name") });
        return Ok(());
    };
    if prefix == 'R' {
        // Flyway's repeatable: keyed `R__<description>`, which sorts after every numbered version.
        let key = format!("R__{description}");
        if refinery || VersionKey::parse(key.as_str()).is_err() {
            let reason = if refinery {
                "refinery has no repeatable migrations (R__)".to_owned()
            } else {
                "a repeatable migration's description may only hold letters, digits, '.', '_' and '-'".to_owned()
            };
            skipped.push(Skipped { path: file.path.to_owned(), reason });
            return Ok(());
        }
        builder.add(Piece {
            version: version_key(file.path, &key)?,
            name: description,
            half: Half::Up,
            path: file.path,
            sql: file.content.to_owned(),
            mode: None,
            specific: false,
        })?;
        return Ok(());
    }
    builder.add(Piece {
        version: version_key(file.path, &version)?,
        name: description,
        half: if prefix == 'V' || refinery { Half::Up } else { Half::Down },
        path: file.path,
        sql: file.content.to_owned(),
        mode: None,
        specific: false,
    })
}

/// `<folder>/<file>` with nothing deeper: (folder, file).
fn diesel_path(path: &str) -> Option<(&str, &str)> {
    let (folder, file) = path.split_once('/')?;
    (!file.contains('/')).then_some((folder, file))
}

/// diesel: a folder per version. Its leading part up to the first `_` is the version, dashes removed
/// (`2019-02-26-002946_create_users` → `20190226002946`); `00000000000000_diesel_initial_setup` too.
fn read_diesel(files: &[SourceFile<'_>], builder: &mut Builder, skipped: &mut Vec<Skipped>) -> Result<(), SourceError> {
    let mut no_transaction: BTreeMap<&str, bool> = BTreeMap::new();
    for file in files {
        if let Some((folder, "metadata.toml")) = diesel_path(file.path) {
            no_transaction.insert(folder, diesel_no_transaction(file)?);
        }
    }
    for file in files {
        let skip = |skipped: &mut Vec<Skipped>, reason: &str| {
            skipped.push(Skipped { path: file.path.to_owned(), reason: reason.to_owned() });
        };
        let Some((folder, name)) = diesel_path(file.path) else {
            skip(skipped, "not in a migration folder (diesel reads <version>_<name>/up.sql and down.sql)");
            continue;
        };
        let half = match name {
            "up.sql" => Half::Up,
            "down.sql" => Half::Down,
            "metadata.toml" => continue,
            _ => {
                skip(skipped, "diesel reads only up.sql, down.sql and metadata.toml in a migration folder");
                continue;
            }
        };
        let (stamp, rest) = folder.split_once('_').unwrap_or((folder, ""));
        let version: String = stamp.chars().filter(|c| *c != '-').collect();
        if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
            skip(skipped, "the folder's name does not start with a version (digits and dashes, then `_`)");
            continue;
        }
        let mode = match no_transaction.get(folder) {
            Some(true) => Some(TransactionMode::None),
            Some(false) => Some(TransactionMode::Transaction),
            None => None,
        };
        builder.add(Piece {
            version: version_key(file.path, &version)?,
            name: rest,
            half,
            path: file.path,
            sql: file.content.to_owned(),
            mode,
            specific: false,
        })?;
    }
    Ok(())
}

/// `run_in_transaction = false` in a diesel folder's `metadata.toml` (the only key diesel reads there).
fn diesel_no_transaction(file: &SourceFile<'_>) -> Result<bool, SourceError> {
    let mut no_transaction = false;
    for (i, line) in file.content.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let malformed = |message: String| SourceError::Malformed {
            path: file.path.to_owned(),
            line: u32::try_from(i + 1).unwrap_or(u32::MAX),
            message,
        };
        match line.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
            Some(("run_in_transaction", "false")) => no_transaction = true,
            Some(("run_in_transaction", "true")) => no_transaction = false,
            _ => {
                return Err(malformed(format!(
                    "{line:?}: diesel's metadata.toml has only run_in_transaction = true|false"
                )));
            }
        }
    }
    Ok(no_transaction)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files<'a>(list: &'a [(&'a str, &'a str)]) -> Vec<SourceFile<'a>> {
        list.iter().map(|(path, content)| SourceFile { path, content }).collect()
    }

    fn read_pg(list: &[(&str, &str)]) -> Result<Source, SourceError> {
        read(&files(list), None, Engine::Postgres)
    }

    fn versions(source: &Source) -> Vec<String> {
        source.migrations.iter().map(|m| m.version.to_string()).collect()
    }

    #[test]
    fn plain_files_sort_numerically_and_ignore_other_files() {
        let source = read_pg(&[
            ("10_ten.sql", "SELECT 10;"),
            ("2-two.sql", "SELECT 2;"),
            ("README.md", "# notes"),
            ("0001_one.sql", "-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (c);"),
        ])
        .unwrap();
        assert_eq!(source.layout, Layout::Plain);
        assert_eq!(versions(&source), ["0001", "2", "10"]);
        assert_eq!(source.migrations[0].transaction_mode, TransactionMode::None);
        assert_eq!(source.migrations[1].transaction_mode, TransactionMode::Transaction);
        assert_eq!(source.migrations[1].name, "two");
        assert_eq!(source.skipped, vec![Skipped { path: "README.md".into(), reason: "not a .sql file".into() }]);
    }

    #[test]
    fn diesel_folders_are_versions() {
        let source = read_pg(&[
            (
                "00000000000000_diesel_initial_setup/up.sql",
                "CREATE FUNCTION f() RETURNS int AS 'SELECT 1' LANGUAGE sql;",
            ),
            ("00000000000000_diesel_initial_setup/down.sql", "DROP FUNCTION f();"),
            ("2019-02-26-002946_create_users/up.sql", "CREATE TABLE users (id int);"),
            ("2019-02-26-002946_create_users/down.sql", "DROP TABLE users;"),
            ("2019-03-01-000000_index_users/up.sql", "CREATE INDEX CONCURRENTLY u ON users (id);"),
            ("2019-03-01-000000_index_users/metadata.toml", "# diesel\nrun_in_transaction = false\n"),
            ("2019-03-01-000000_index_users/notes.txt", "why"),
            ("README.md", "# notes"),
        ])
        .unwrap();
        assert_eq!(source.layout, Layout::Diesel);
        assert_eq!(versions(&source), ["00000000000000", "20190226002946", "20190301000000"]);
        assert_eq!(source.migrations[1].name, "create_users");
        assert_eq!(source.migrations[1].down.as_deref(), Some("DROP TABLE users;"));
        assert_eq!(source.migrations[1].transaction_mode, TransactionMode::Transaction);
        assert_eq!(source.migrations[2].transaction_mode, TransactionMode::None);
        let skipped: Vec<&str> = source.skipped.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(skipped, ["2019-03-01-000000_index_users/notes.txt", "README.md"]);
        let err = read_pg(&[("1_a/up.sql", "SELECT 1;"), ("1_a/metadata.toml", "run_in_transaction = maybe")]);
        assert!(matches!(err, Err(SourceError::Malformed { line: 1, .. })), "{err:?}");
    }

    #[test]
    fn morph_marks_no_transaction_on_its_first_line() {
        let source = read_pg(&[
            ("000001_index.up.sql", "-- morph:nontransactional\nCREATE INDEX CONCURRENTLY i ON t (c);"),
            ("000001_index.down.sql", "DROP INDEX i;"),
        ])
        .unwrap();
        assert_eq!(source.migrations[0].transaction_mode, TransactionMode::None);
    }

    #[test]
    fn refinery_u_files_are_unversioned_ups_not_undos() {
        let source =
            read_pg(&[("V1__create.sql", "CREATE TABLE a ();"), ("U2__seed.sql", "INSERT INTO a DEFAULT VALUES;")])
                .unwrap();
        assert_eq!(source.layout, Layout::Refinery);
        assert_eq!(versions(&source), ["1", "2"]);
        assert_eq!(source.migrations[1].up, "INSERT INTO a DEFAULT VALUES;");
        // A `U` beside its `V` is Flyway's undo.
        let source = read_pg(&[("V1__create.sql", "CREATE TABLE a ();"), ("U1__create.sql", "DROP TABLE a;")]).unwrap();
        assert_eq!(source.layout, Layout::Flyway);
        assert_eq!(source.migrations[0].down.as_deref(), Some("DROP TABLE a;"));
    }

    #[test]
    fn files_in_subfolders_are_listed_as_skipped() {
        let source = read_pg(&[
            ("0001_a.sql", "SELECT 1;"),
            ("versioned/v1.2/0002_b.sql", "SELECT 2;"),
            ("versioned/manifest.yaml", "v1.2"),
        ])
        .unwrap();
        assert_eq!(versions(&source), ["0001"]);
        assert_eq!(source.skipped.len(), 2);
        assert!(source.skipped[0].reason.contains("subfolder"), "{:?}", source.skipped);
    }

    #[test]
    fn empty_and_comment_only_files_are_migrations() {
        let source = read_pg(&[("1_empty.sql", ""), ("2_comment.sql", "-- nothing to do\n")]).unwrap();
        assert_eq!(source.migrations.len(), 2);
    }

    #[test]
    fn up_down_pairs_and_errors() {
        let source = read_pg(&[
            ("001_a.up.sql", "CREATE TABLE a ();"),
            ("001_a.down.sql", "DROP TABLE a;"),
            ("002_b.up.sql", "CREATE TABLE b ();"),
        ])
        .unwrap();
        assert_eq!(source.layout, Layout::UpDown);
        assert_eq!(source.migrations[0].down.as_deref(), Some("DROP TABLE a;"));
        assert_eq!(source.migrations[1].down, None);

        let orphan = read_pg(&[("001_a.up.sql", "x"), ("002_b.down.sql", "y")]).unwrap_err();
        assert_eq!(orphan, SourceError::DownWithoutUp { path: "002_b.down.sql".into() });
        let duplicate = read_pg(&[("001_a.up.sql", "x"), ("001_b.up.sql", "y")]).unwrap_err();
        assert!(matches!(duplicate, SourceError::DuplicateVersion { .. }), "{duplicate}");
        assert!(duplicate.to_string().contains("001_a.up.sql") && duplicate.to_string().contains("001_b.up.sql"));
    }

    #[test]
    fn sql_migrate_sections_statements_and_no_transaction() {
        let first = "-- +migrate Up\nCREATE TABLE a (id int);\n-- +migrate StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n-- +migrate StatementEnd\n\n-- +migrate Down\nDROP TABLE a;\n";
        let second = "-- +migrate Up notransaction\nCREATE INDEX CONCURRENTLY i ON a (id);\n";
        let source = read_pg(&[("1_init.sql", first), ("2-index.sql", second), ("README.md", "")]).unwrap();
        assert_eq!(source.layout, Layout::SqlMigrate);
        assert_eq!(versions(&source), ["1", "2"]);
        let (a, b) = (&source.migrations[0], &source.migrations[1]);
        assert_eq!((a.name.as_str(), b.name.as_str()), ("init", "index"));
        assert!(!a.up.contains("+migrate Up") && a.up.contains("CREATE FUNCTION"), "{}", a.up);
        assert_eq!(a.down.as_deref(), Some("DROP TABLE a;\n"));
        assert_eq!((a.transaction_mode, b.transaction_mode), (TransactionMode::Transaction, TransactionMode::None));
        assert_eq!(source.skipped.len(), 1, "{:?}", source.skipped);
        let unknown = read_pg(&[("1_x.sql", "-- +migrate Up sideways\nSELECT 1;\n")]).unwrap_err();
        assert!(unknown.to_string().contains("unknown sql-migrate option"), "{unknown}");
        let unclosed = read_pg(&[("1_x.sql", "-- +migrate Up\n-- +migrate StatementBegin\nSELECT 1;\n")]).unwrap_err();
        assert!(unclosed.to_string().contains("StatementBegin without StatementEnd"), "{unclosed}");
        assert_eq!("sql-migrate".parse::<Layout>().unwrap(), Layout::SqlMigrate);
    }

    #[test]
    fn dialect_files_override_generic_ones() {
        let list = [
            ("20150100000001000000_networks.up.sql", "generic"),
            ("20150100000001000000_networks.postgres.up.sql", "pg"),
            ("20150100000001000000_networks.mysql.up.sql", "my"),
            ("20150100000001000000_networks.cockroach.up.sql", "crdb"),
            ("20241029153900000001_identities.autocommit.up.sql", "CREATE INDEX CONCURRENTLY x ON y (z);"),
        ];
        let pg = read(&files(&list), None, Engine::Postgres).unwrap();
        assert_eq!(pg.migrations[0].up, "pg");
        assert_eq!(pg.migrations[0].name, "networks");
        assert_eq!(pg.migrations[1].transaction_mode, TransactionMode::None);
        let my = read(&files(&list), None, Engine::Mysql).unwrap();
        assert_eq!(my.migrations[0].up, "my");
        // Other dialects' files are left out on purpose, not unread.
        assert!(pg.skipped.is_empty(), "{:?}", pg.skipped);
        assert_eq!(
            pg.other_dialects,
            ["20150100000001000000_networks.mysql.up.sql", "20150100000001000000_networks.cockroach.up.sql"]
        );
    }

    #[test]
    fn goose_sections_statements_and_no_transaction() {
        let sql = "-- +goose Up\n-- +goose NO TRANSACTION\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n-- +goose StatementEnd\n\n-- +goose Down\nDROP FUNCTION f;\n";
        let source = read_pg(&[("20240115180414_init.sql", sql)]).unwrap();
        assert_eq!(source.layout, Layout::Goose);
        let m = &source.migrations[0];
        assert_eq!(m.transaction_mode, TransactionMode::None);
        assert!(m.up.contains("CREATE FUNCTION") && !m.up.contains("DROP FUNCTION"));
        assert!(!m.up.contains("+goose Up"));
        assert_eq!(m.down.as_deref(), Some("DROP FUNCTION f;\n"));
        let lower = read_pg(&[("1_x.sql", "-- +goose Up\n-- +goose no transaction\nSELECT 1;\n")]).unwrap();
        assert_eq!(lower.migrations[0].transaction_mode, TransactionMode::None);
    }

    #[test]
    fn goose_errors_name_file_and_line() {
        let unclosed = read_pg(&[("1_x.sql", "-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n")]).unwrap_err();
        assert_eq!(
            unclosed,
            SourceError::Malformed {
                path: "1_x.sql".into(),
                line: 2,
                message: "StatementBegin without StatementEnd".into()
            }
        );
        let unknown = read_pg(&[("1_x.sql", "-- +goose Up\n-- +goose Sideways\n")]).unwrap_err();
        assert!(matches!(unknown, SourceError::Malformed { line: 2, .. }), "{unknown}");
        let no_up = read(&files(&[("1_x.sql", "SELECT 1;\n")]), Some(Layout::Goose), Engine::Postgres).unwrap_err();
        assert!(no_up.to_string().contains("-- +goose Up"), "{no_up}");
    }

    #[test]
    fn dbmate_sections_and_options() {
        let sql =
            "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (c);\n-- migrate:down\nDROP INDEX i;\n";
        let source = read_pg(&[("20200101000000_index.sql", sql)]).unwrap();
        assert_eq!(source.layout, Layout::Dbmate);
        assert_eq!(source.migrations[0].transaction_mode, TransactionMode::None);
        assert_eq!(source.migrations[0].down.as_deref(), Some("DROP INDEX i;\n"));
        let bad = read_pg(&[("1_x.sql", "-- migrate:up transaction:maybe\n")]).unwrap_err();
        assert!(matches!(bad, SourceError::Malformed { line: 1, .. }), "{bad}");
    }

    #[test]
    fn flyway_versions_undo_and_repeatables() {
        let source = read_pg(&[
            ("V1__init.sql", "CREATE TABLE a ();"),
            ("V1_1__more.sql", "CREATE TABLE b ();"),
            ("U1_1__more.sql", "DROP TABLE b;"),
            ("R__views.sql", "CREATE VIEW v AS SELECT 1;"),
        ])
        .unwrap();
        assert_eq!(source.layout, Layout::Flyway);
        // The repeatable sorts after the numbered versions.
        assert_eq!(versions(&source), ["1", "1.1", "R__views"]);
        assert_eq!(source.migrations[1].down.as_deref(), Some("DROP TABLE b;"));
        assert!(source.migrations[2].version.is_repeatable() && source.skipped.is_empty());
    }

    #[test]
    fn layouts_parse_by_name() {
        for layout in Layout::ALL {
            assert_eq!(layout.as_str().parse::<Layout>().unwrap(), *layout);
        }
        assert_eq!("sqlx".parse::<Layout>().unwrap(), Layout::UpDown);
        assert!("liquibase".parse::<Layout>().is_err());
    }

    /// Real migration sets from public projects (`../shared/workloads`, beside the repository).
    mod workloads {
        use super::*;

        fn load(dir: &str) -> Vec<(String, String)> {
            let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/workloads/");
            let path = format!("{root}{dir}");
            let entries = std::fs::read_dir(&path).unwrap_or_else(|e| panic!("workload {path} missing: {e}"));
            let mut out: Vec<(String, String)> = entries
                .map(|entry| entry.unwrap().path())
                .filter(|p| p.is_file())
                .map(|p| {
                    let name = p.file_name().unwrap().to_string_lossy().into_owned();
                    let content = std::fs::read_to_string(&p).unwrap_or_default();
                    (name, content)
                })
                .collect();
            out.sort();
            out
        }

        fn read_dir(dir: &str, engine: Engine) -> (usize, Source) {
            let loaded = load(dir);
            let list: Vec<SourceFile<'_>> = loaded.iter().map(|(path, content)| SourceFile { path, content }).collect();
            let sql_files = list.iter().filter(|f| f.path.ends_with(".sql")).count();
            (sql_files, read(&list, None, engine).unwrap_or_else(|e| panic!("{dir}: {e}")))
        }

        fn assert_sorted(source: &Source) {
            assert!(source.migrations.windows(2).all(|w| w[0].version < w[1].version));
        }

        #[test]
        fn river_is_up_down_with_every_down() {
            let (files, source) = read_dir("river/riverdriver/riverpgxv5/migration/main", Engine::Postgres);
            assert_eq!(source.layout, Layout::UpDown);
            assert_eq!(source.migrations.len() * 2, files, "every version has an up and a down file");
            assert!(source.migrations.iter().all(|m| m.down.is_some()));
            assert_eq!(source.migrations[0].version.as_str(), "001");
            assert_sorted(&source);
        }

        #[test]
        fn hatchet_is_goose_with_no_transaction_versions() {
            let (files, source) = read_dir("hatchet/migrations", Engine::Postgres);
            assert_eq!(source.layout, Layout::Goose);
            assert_eq!(source.migrations.len(), files);
            let none = source.migrations.iter().filter(|m| m.transaction_mode == TransactionMode::None).count();
            // 33 files say NO TRANSACTION (some in lower case, some more than once).
            assert_eq!(none, 33);
            assert!(source.migrations.iter().all(|m| !m.up.contains("+goose Up") && !m.up.contains("+goose Down")));
            assert_sorted(&source);
        }

        #[test]
        fn kratos_picks_the_dialect_files() {
            for engine in [Engine::Postgres, Engine::Mysql] {
                let (_, source) = read_dir("ory-kratos/persistence/sql/migrations/sql", engine);
                assert_eq!(source.layout, Layout::UpDown);
                let other = match engine {
                    Engine::Postgres => ".mysql.",
                    Engine::Mysql => ".postgres.",
                };
                assert!(source.migrations.iter().all(|m| !m.up_path.contains(other)), "{engine}");
                assert!(source.migrations.iter().any(|m| m.transaction_mode == TransactionMode::None));
                assert!(source.migrations.len() > 100, "{engine}: {}", source.migrations.len());
                assert_sorted(&source);
            }
        }

        #[test]
        fn ranger_patches_are_plain() {
            for dialect in ["mysql", "postgres"] {
                let (files, source) =
                    read_dir(&format!("apache-ranger/security-admin/db/{dialect}/patches"), Engine::Mysql);
                assert_eq!(source.layout, Layout::Plain);
                assert_eq!(source.migrations.len(), files);
                assert_sorted(&source);
            }
        }
    }
}
