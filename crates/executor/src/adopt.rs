//! Adoption: a database that another tool (goose, golang-migrate, Flyway, sqlx, diesel, dbmate, refinery,
//! sql-migrate) migrated gets migrate-hub history rows for the versions that tool applied, without running
//! them, so the next apply goes on from there instead of starting again from the first version. And `baseline`: every
//! version up to one recorded as applied, for a database brought up to date by other means.
//!
//! Nothing is recorded unless all of it can be: the other tool's history must be clean (no dirty or failed
//! version), every version it applied must be one of the project's, and where it stored checksums (sqlx's
//! SHA-384, Flyway's CRC-32) they must match the files. The refusal names the versions.

use std::collections::BTreeMap;

use domain::checksum::Checksum;
use domain::enums::Engine;
use domain::values::VersionKey;
use sqlx::{AssertSqlSafe, Row};

use crate::apply::ApplyOptions;
use crate::history::{self, HistoryRow, HistoryStatus, NewHistoryRow};
use crate::target::{Session, TargetConnection, TargetError};

/// A tool whose history can be adopted (the closed set the hub stores too).
pub use domain::enums::ForeignTool as Tool;

/// What the other tool stored about a version's content, to compare with the file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stored {
    /// sqlx: SHA-384 of the up file.
    Sha384(Vec<u8>),
    /// Flyway: CRC-32 over the file's lines without their line breaks.
    FlywayCrc(i32),
}

/// The other tool's history, read.
#[derive(Debug, Clone, Default)]
pub struct Foreign {
    /// Versions it applied, with what it stored about them.
    applied: Vec<(String, Option<Stored>)>,
    /// golang-migrate and Flyway's baseline: every version up to this one counts as applied.
    up_to: Option<String>,
    /// Versions it left dirty or failed.
    dirty: Vec<String>,
    /// What was read but not adopted, for the report (e.g. Flyway's repeatable migrations).
    pub notes: Vec<String>,
}

/// A migration of the project, as adoption compares it.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub version: &'a VersionKey,
    pub name: &'a str,
    /// The up file as written (the other tools' checksums are over it).
    pub up_sql: &'a str,
    pub up_checksum: Checksum,
    pub statements: u32,
}

impl<'a> Candidate<'a> {
    /// A stored version of a hub project, with how many statements it splits into on the target (only
    /// the history row records that).
    pub fn of_version(v: &'a domain::model::ReleaseVersion, statements: usize) -> Self {
        Candidate {
            version: &v.version_key,
            name: v.name.as_str(),
            up_sql: &v.version.up_sql,
            up_checksum: v.version.checksums.up,
            statements: u32::try_from(statements).unwrap_or(u32::MAX),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    #[error(
        "{tool}'s history table {table} does not exist on this database: nothing to adopt (name it with --from-table)"
    )]
    NoTable { tool: Tool, table: String },
    #[error("{tool}'s history holds no applied version: nothing to adopt")]
    Nothing { tool: Tool },
    #[error("{tool}'s history is dirty at {}: finish or undo those with {tool} first; nothing was recorded", .versions.join(", "))]
    Dirty { tool: Tool, versions: Vec<String> },
    #[error("{tool} applied versions the project does not have: {}; nothing was recorded", .versions.join(", "))]
    Unknown { tool: Tool, versions: Vec<String> },
    #[error("{tool}'s checksums differ from the files for {}: the files changed since {tool} applied them; nothing was recorded", .versions.join(", "))]
    Checksum { tool: Tool, versions: Vec<String> },
    #[error("version {0} is not one of the project's")]
    NoSuchVersion(String),
    #[error("version {version} is already in migrate-hub's history ({state}); nothing was recorded")]
    Conflict { version: String, state: String },
    #[error("the target lock is held by another session (waited {0:?}); nothing was recorded")]
    LockTimeout(std::time::Duration),
    #[error(transparent)]
    Target(#[from] TargetError),
}

/// Reads `tool`'s history from `table` (its default when `None`; `schema.table` allowed).
pub async fn read_foreign(conn: &mut TargetConnection, tool: Tool, table: Option<&str>) -> Result<Foreign, AdoptError> {
    let name = table.unwrap_or(tool.default_table());
    let quoted = quote_table(name, conn.engine()).ok_or_else(|| AdoptError::NoTable { tool, table: name.into() })?;
    let pg = conn.engine() == Engine::Postgres;
    // Every column as text or a signed integer, alike on both engines.
    let text = |column: &str| if pg { format!("{column}::text") } else { format!("CAST({column} AS CHAR)") };
    let int = |column: &str| if pg { format!("({column})::int::int8") } else { format!("CAST({column} AS SIGNED)") };
    let sql = match tool {
        Tool::Goose => format!("SELECT {}, {} FROM {quoted} ORDER BY id", text("version_id"), int("is_applied")),
        Tool::GolangMigrate => format!("SELECT {}, {} FROM {quoted}", text("version"), int("dirty")),
        Tool::Flyway => format!(
            "SELECT version, type, {}, {} FROM {quoted} ORDER BY installed_rank",
            if pg { "checksum::int8".to_owned() } else { "CAST(checksum AS SIGNED)".to_owned() },
            int("success")
        ),
        Tool::Sqlx => {
            format!("SELECT {}, {}, checksum FROM {quoted} ORDER BY version", text("version"), int("success"))
        }
        Tool::Diesel | Tool::Dbmate => format!("SELECT {} FROM {quoted}", text("version")),
        Tool::Refinery => format!("SELECT {} FROM {quoted} ORDER BY version", text("version")),
        Tool::SqlMigrate => format!("SELECT {} FROM {quoted} ORDER BY applied_at, id", text("id")),
    };
    let rows = match conn.session_mut() {
        Session::Postgres(c) => sqlx::raw_sql(AssertSqlSafe(sql)).fetch_all(c).await.map(|rows| {
            rows.iter()
                .map(|r| {
                    read_row(
                        tool,
                        |i| r.try_get::<Option<String>, _>(i).ok().flatten(),
                        |i| r.try_get::<Option<i64>, _>(i).ok().flatten(),
                        |i| r.try_get::<Option<Vec<u8>>, _>(i).ok().flatten(),
                    )
                })
                .collect::<Vec<_>>()
        }),
        Session::Mysql { conn: c, .. } => sqlx::raw_sql(AssertSqlSafe(sql)).fetch_all(c).await.map(|rows| {
            rows.iter()
                .map(|r| {
                    read_row(
                        tool,
                        |i| mysql_text(r, i),
                        |i| r.try_get::<Option<i64>, _>(i).ok().flatten(),
                        |i| r.try_get::<Option<Vec<u8>>, _>(i).ok().flatten(),
                    )
                })
                .collect::<Vec<_>>()
        }),
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            let e = TargetError::from_sqlx(e);
            // Undefined table: 42P01 on Postgres, 1146 on MySQL.
            return Err(match &e {
                TargetError::Statement { code: Some(code), .. } if code == "42P01" || code == "1146" => {
                    AdoptError::NoTable { tool, table: name.to_owned() }
                }
                _ => e.into(),
            });
        }
    };
    Ok(fold(tool, rows))
}

/// A MySQL text column may come back as text or as bytes (a binary collation).
fn mysql_text(row: &sqlx::mysql::MySqlRow, index: usize) -> Option<String> {
    row.try_get::<Option<String>, _>(index).ok().flatten().or_else(|| {
        row.try_get::<Option<Vec<u8>>, _>(index).ok().flatten().map(|b| String::from_utf8_lossy(&b).into_owned())
    })
}

/// One row of the other tool's table, in the shape of its query in [`read_foreign`].
#[derive(Debug, Clone, Default)]
struct ForeignRow {
    version: Option<String>,
    kind: Option<String>,
    flag: Option<i64>,
    crc: Option<i64>,
    bytes: Option<Vec<u8>>,
}

fn read_row(
    tool: Tool,
    text: impl Fn(usize) -> Option<String>,
    int: impl Fn(usize) -> Option<i64>,
    bytes: impl Fn(usize) -> Option<Vec<u8>>,
) -> ForeignRow {
    match tool {
        Tool::Goose | Tool::GolangMigrate => ForeignRow { version: text(0), flag: int(1), ..ForeignRow::default() },
        Tool::Flyway => ForeignRow { version: text(0), kind: text(1), crc: int(2), flag: int(3), bytes: None },
        Tool::Sqlx => ForeignRow { version: text(0), flag: int(1), bytes: bytes(2), ..ForeignRow::default() },
        Tool::Diesel | Tool::Dbmate | Tool::Refinery | Tool::SqlMigrate => {
            ForeignRow { version: text(0), ..ForeignRow::default() }
        }
    }
}

/// The other tool's rows, read by its rules.
fn fold(tool: Tool, rows: Vec<ForeignRow>) -> Foreign {
    let mut foreign = Foreign::default();
    match tool {
        Tool::Goose => {
            // The newest row of a version says whether it is applied (old goose versions inserted
            // `is_applied = false` rows on down; newer ones delete). Version 0 is goose's own first row.
            let mut last: BTreeMap<String, (usize, bool)> = BTreeMap::new();
            for (order, row) in rows.into_iter().enumerate() {
                let Some(version) = row.version.filter(|v| v != "0") else { continue };
                last.insert(version, (order, row.flag == Some(1)));
            }
            let mut applied: Vec<(usize, String)> =
                last.into_iter().filter(|(_, (_, on))| *on).map(|(v, (order, _))| (order, v)).collect();
            applied.sort();
            foreign.applied = applied.into_iter().map(|(_, v)| (v, None)).collect();
        }
        Tool::GolangMigrate => {
            if let Some(row) = rows.into_iter().next()
                && let Some(version) = row.version
            {
                if row.flag == Some(1) {
                    foreign.dirty.push(version);
                } else {
                    foreign.up_to = Some(version);
                }
            }
        }
        Tool::Flyway => {
            for row in rows {
                let kind = row.kind.unwrap_or_default();
                let Some(version) = row.version else {
                    if kind == "SQL" {
                        foreign.notes.push("a repeatable (R__) migration in Flyway's history is not adopted".into());
                    }
                    continue;
                };
                match kind.as_str() {
                    "SCHEMA" => {}
                    "BASELINE" => foreign.up_to = Some(version),
                    "UNDO_SQL" | "DELETE" if row.flag == Some(1) => foreign.applied.retain(|(v, _)| *v != version),
                    _ if row.flag != Some(1) => foreign.dirty.push(version),
                    _ => {
                        let crc = row.crc.and_then(|c| i32::try_from(c).ok()).map(Stored::FlywayCrc);
                        foreign.applied.retain(|(v, _)| *v != version);
                        foreign.applied.push((version, crc));
                    }
                }
            }
        }
        Tool::Sqlx => {
            for row in rows {
                let Some(version) = row.version else { continue };
                if row.flag == Some(1) {
                    foreign.applied.push((version, row.bytes.map(Stored::Sha384)));
                } else {
                    foreign.dirty.push(version);
                }
            }
        }
        Tool::Diesel | Tool::Dbmate | Tool::Refinery => {
            foreign.applied = rows.into_iter().filter_map(|r| r.version).map(|v| (v, None)).collect();
        }
        Tool::SqlMigrate => {
            // sql-migrate records the file name (`1_init.sql`); the version is its leading number, as the
            // project's files are read (`domain::source`, layout `sql-migrate`).
            foreign.applied =
                rows.into_iter().filter_map(|r| r.version).map(|id| (sql_migrate_version(&id), None)).collect();
        }
    }
    foreign
}

/// The version of a sql-migrate id (a file name): its leading digits, or the whole id when it has none (which
/// then matches no version and is named in the refusal).
fn sql_migrate_version(id: &str) -> String {
    let digits: String = id.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() { id.to_owned() } else { digits }
}

/// Which of `candidates` (the project's migrations, in order) the other tool applied: their indexes, or
/// why nothing may be adopted.
pub fn plan(tool: Tool, foreign: &Foreign, candidates: &[Candidate<'_>]) -> Result<Vec<usize>, AdoptError> {
    if !foreign.dirty.is_empty() {
        return Err(AdoptError::Dirty { tool, versions: foreign.dirty.clone() });
    }
    let find = |recorded: &str| candidates.iter().position(|c| c.version.same_as(recorded));
    let unknown: Vec<String> = foreign
        .applied
        .iter()
        .map(|(v, _)| v)
        .chain(foreign.up_to.iter())
        .filter(|v| find(v).is_none())
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(AdoptError::Unknown { tool, versions: unknown });
    }
    let mut chosen: Vec<usize> = Vec::new();
    if let Some(up_to) = foreign.up_to.as_deref().and_then(find) {
        chosen.extend(0..=up_to);
    }
    let mut differ = Vec::new();
    for (version, stored) in &foreign.applied {
        let Some(index) = find(version) else { continue };
        if let Some(stored) = stored
            && !matches(stored, candidates[index].up_sql)
        {
            differ.push(version.clone());
        }
        chosen.push(index);
    }
    if !differ.is_empty() {
        return Err(AdoptError::Checksum { tool, versions: differ });
    }
    chosen.sort_unstable();
    chosen.dedup();
    if chosen.is_empty() {
        return Err(AdoptError::Nothing { tool });
    }
    Ok(chosen)
}

fn matches(stored: &Stored, up_sql: &str) -> bool {
    match stored {
        Stored::Sha384(digest) => ring::digest::digest(&ring::digest::SHA384, up_sql.as_bytes()).as_ref() == digest,
        Stored::FlywayCrc(crc) => flyway_checksum(up_sql) == *crc,
    }
}

/// Flyway's checksum of a file: CRC-32 over each line's UTF-8 bytes without its line break (`\n`, `\r\n`
/// or `\r`), a byte-order mark left out, read as a signed 32-bit number.
pub fn flyway_checksum(text: &str) -> i32 {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut crc = crc32fast::Hasher::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        crc.update(&rest.as_bytes()[..end]);
        let tail = &rest[end..];
        rest = tail
            .strip_prefix("\r\n")
            .or_else(|| tail.strip_prefix('\n'))
            .or_else(|| tail.strip_prefix('\r'))
            .unwrap_or(tail);
    }
    crc.finalize() as i32
}

/// Records `chosen` of `candidates` as applied in the history of `options`, under its lock, with
/// `options.worker` saying where from (e.g. `adopted from goose`). Versions already recorded applied with
/// the same content are left as they are; any other row for one of them refuses the whole adoption.
/// Returns how many rows were written and how many were already there.
pub async fn record(
    conn: &mut TargetConnection,
    options: &ApplyOptions,
    candidates: &[Candidate<'_>],
    chosen: &[usize],
) -> Result<(usize, usize), AdoptError> {
    if !conn.limit_and_lock(options.limits, &options.lock_name, options.lock_wait).await? {
        return Err(AdoptError::LockTimeout(options.lock_wait));
    }
    let result = locked_record(conn, options, candidates, chosen).await;
    let unlocked = conn.unlock(&options.lock_name).await;
    let counts = result?;
    unlocked?;
    Ok(counts)
}

async fn locked_record(
    conn: &mut TargetConnection,
    options: &ApplyOptions,
    candidates: &[Candidate<'_>],
    chosen: &[usize],
) -> Result<(usize, usize), AdoptError> {
    let table = &options.history;
    let rows: Vec<HistoryRow> = history::ensure_and_read(conn, table).await?;
    let mut todo = Vec::new();
    let mut already = 0;
    for &index in chosen {
        let candidate = &candidates[index];
        match rows.iter().find(|r| r.version == candidate.version.as_str()) {
            None => todo.push(candidate),
            Some(row) if row.status == HistoryStatus::Applied && row.checksum == candidate.up_checksum.digest() => {
                already += 1;
            }
            Some(row) => {
                let state = if row.status == HistoryStatus::Applied {
                    "applied with other content".to_owned()
                } else {
                    crate::recovery::describe(row)
                };
                return Err(AdoptError::Conflict { version: row.version.clone(), state });
            }
        }
    }
    for candidate in &todo {
        let row = NewHistoryRow {
            version: candidate.version.as_str(),
            name: candidate.name,
            checksum: candidate.up_checksum.digest(),
            checksum_algorithm: candidate.up_checksum.algorithm().as_str(),
            status: HistoryStatus::Applied,
            statements_done: candidate.statements,
            statements_total: candidate.statements,
            run_id: options.run_id.clone(),
            worker: &options.worker,
        };
        history::insert(conn, table, &row).await?;
    }
    Ok((todo.len(), already))
}

/// The indexes of `candidates` up to and including `to`, for `baseline`.
pub fn up_to(candidates: &[Candidate<'_>], to: &VersionKey) -> Result<Vec<usize>, AdoptError> {
    if !candidates.iter().any(|c| c.version == to) {
        return Err(AdoptError::NoSuchVersion(to.to_string()));
    }
    Ok(candidates.iter().enumerate().filter(|(_, c)| c.version <= to).map(|(i, _)| i).collect())
}

/// `name` or `schema.name` as a quoted identifier of `engine`; `None` if a part is not a plain identifier.
fn quote_table(name: &str, engine: Engine) -> Option<String> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.is_empty() || parts.len() > 2 {
        return None;
    }
    let quoted: Option<Vec<String>> = parts
        .iter()
        .map(|part| {
            // Leading underscores are common here (`_sqlx_migrations`, `__diesel_schema_migrations`).
            let valid = !part.is_empty()
                && part.len() <= 63
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !part.starts_with(|c: char| c.is_ascii_digit());
            valid.then(|| match engine {
                Engine::Postgres => format!("\"{part}\""),
                Engine::Mysql => format!("`{part}`"),
            })
        })
        .collect();
    quoted.map(|q| q.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flyway_checksums_ignore_line_breaks_and_the_bom() {
        let unix = "CREATE TABLE a (id int);\nINSERT INTO a VALUES (1);\n";
        assert_eq!(
            flyway_checksum(unix),
            flyway_checksum("\u{feff}CREATE TABLE a (id int);\r\nINSERT INTO a VALUES (1);")
        );
        // CRC-32 of the concatenated lines, as Flyway's ChecksumCalculator computes it.
        let expected = crc32fast::hash(b"CREATE TABLE a (id int);INSERT INTO a VALUES (1);") as i32;
        assert_eq!(flyway_checksum(unix), expected);
        assert_ne!(flyway_checksum(unix), flyway_checksum("CREATE TABLE a (id bigint);\n"));
    }

    #[test]
    fn goose_reads_the_newest_row_of_each_version() {
        let row = |v: &str, on: bool| ForeignRow {
            version: Some(v.into()),
            flag: Some(i64::from(on)),
            ..ForeignRow::default()
        };
        let foreign =
            fold(Tool::Goose, vec![row("0", true), row("1", true), row("2", true), row("2", false), row("3", true)]);
        assert_eq!(foreign.applied, vec![("1".to_owned(), None), ("3".to_owned(), None)]);
    }

    #[test]
    fn sql_migrate_ids_are_file_names_read_for_their_version() {
        let row = |id: &str| ForeignRow { version: Some(id.into()), ..ForeignRow::default() };
        let foreign = fold(Tool::SqlMigrate, vec![row("1_init.sql"), row("0002-users.sql"), row("notes.sql")]);
        let applied: Vec<&str> = foreign.applied.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(applied, ["1", "0002", "notes.sql"]);
    }

    #[test]
    fn table_names_are_quoted_or_refused() {
        assert_eq!(
            quote_table("public._sqlx_migrations", Engine::Postgres).unwrap(),
            "\"public\".\"_sqlx_migrations\""
        );
        assert_eq!(quote_table("schema_migrations", Engine::Mysql).unwrap(), "`schema_migrations`");
        assert!(quote_table("x; DROP TABLE y", Engine::Postgres).is_none());
        assert!(quote_table("a.b.c", Engine::Postgres).is_none());
    }
}
