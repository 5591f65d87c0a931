//! The real migration sets under `../shared/workloads`, split.
//!
//! Those sets were copied unmodified from public projects (River, Hatchet, Apache Ranger, Ory Kratos);
//! they are read where they are, never copied into this repository. A missing directory fails
//! loudly: these files are the evidence that the splitter handles what users will send it. The
//! expected numbers were counted by reading the files (or by `grep` where it is exact, such as
//! function headers at the start of a line).

use std::path::{Path, PathBuf};

use super::{check_invariants, gap_is_ignorable};
use crate::split::{Dialect, Statement, split};

const WORKLOADS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/workloads");

#[derive(Debug)]
struct Split {
    /// The path below the workload directory.
    name: String,
    sql: String,
    statements: Vec<Statement>,
}

impl Split {
    fn texts(&self) -> impl Iterator<Item = &str> {
        self.statements.iter().map(|s| s.text(&self.sql))
    }
}

fn sql_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sql_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "sql") {
            out.push(path);
        }
    }
}

/// Splits every `.sql` file under `dir` (relative to the workloads), in name order, checking the
/// invariants of each; fails listing every file that does not split.
fn split_dir(dir: &str, dialect_of: impl Fn(&str) -> Dialect) -> Vec<Split> {
    let root = Path::new(WORKLOADS).join(dir);
    assert!(
        root.is_dir(),
        "the workload directory {} is missing: these tests need ../shared/workloads next to the repository \
         (see its README); they do not skip",
        root.display()
    );
    let mut paths = Vec::new();
    sql_files(&root, &mut paths);
    paths.sort();
    let mut failures = Vec::new();
    let mut splits = Vec::new();
    for path in paths {
        let name = path.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
        let sql = std::fs::read_to_string(&path).unwrap();
        let dialect = dialect_of(&name);
        match split(&sql, dialect) {
            Ok(statements) => {
                check_invariants(&sql, dialect, &statements).unwrap_or_else(|e| panic!("{name}: {e}"));
                splits.push(Split { name, sql, statements });
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "files that do not split:\n{}", failures.join("\n"));
    splits
}

fn file<'a>(splits: &'a [Split], name: &str) -> &'a Split {
    splits.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{name} not found"))
}

fn total(splits: &[Split]) -> usize {
    splits.iter().map(|s| s.statements.len()).sum()
}

/// The first two words of `text`, upper case, to recognise the statements that begin a body's
/// inner lines (had the body been cut).
fn head(text: &str) -> String {
    text.split_whitespace().take(2).collect::<Vec<_>>().join(" ").to_uppercase()
}

/// Statements that begin like a line from inside a procedural body: a sign the body was cut.
fn cut_bodies(splits: &[Split], inner: &[&str]) -> Vec<String> {
    let mut cut = Vec::new();
    for split in splits {
        for (statement, text) in split.statements.iter().zip(split.texts()) {
            let head = head(text);
            if inner.iter().any(|word| head == *word || head.starts_with(&format!("{word} "))) {
                cut.push(format!("{}:{}: {head}", split.name, statement.line));
            }
        }
    }
    cut
}

/// Lines that start with a routine header, counted without the splitter. Only unindented lines:
/// indented headers in these sets sit inside a DO block or an EXECUTE string.
fn header_lines(splits: &[Split], matches: impl Fn(&str) -> bool) -> usize {
    splits.iter().flat_map(|s| s.sql.lines()).filter(|line| matches(&line.to_uppercase())).count()
}

/// Statements that start with a routine header.
fn header_statements(splits: &[Split], matches: impl Fn(&str) -> bool) -> Vec<(&Split, &str)> {
    splits.iter().flat_map(|s| s.texts().map(move |t| (s, t))).filter(|(_, t)| matches(&t.to_uppercase())).collect()
}

const PLPGSQL_INNER: &[&str] =
    &["DECLARE", "RETURN", "END", "LOOP", "ELSE", "ELSIF", "PERFORM", "RAISE", "EXCEPTION", "IF"];

fn is_pg_function(text: &str) -> bool {
    text.starts_with("CREATE FUNCTION") || text.starts_with("CREATE OR REPLACE FUNCTION")
}

#[test]
fn river() {
    let splits = split_dir("river/riverdriver/riverpgxv5/migration/main", |_| Dialect::Postgres);
    assert_eq!((splits.len(), total(&splits)), (14, 73));

    // 002: a type, a table, five indexes, a plpgsql function calling pg_notify, a trigger, a table.
    let initial = file(&splits, "002_initial_schema.up.sql");
    let lines: Vec<u32> = initial.statements.iter().map(|s| s.line).collect();
    assert_eq!(lines, [1, 11, 52, 54, 56, 58, 60, 62, 80, 85]);
    let function = initial.texts().nth(7).unwrap();
    assert!(function.starts_with("CREATE OR REPLACE FUNCTION /* TEMPLATE: schema */river_job_notify()"));
    assert!(function.contains("pg_notify('river_insert', payload::text);\n  END IF;\n  RETURN NULL;\nEND;\n$$"));
    assert!(function.ends_with("LANGUAGE plpgsql"));

    assert_eq!(file(&splits, "004_pending_and_more.up.sql").statements.len(), 14);

    // 005: a `DO $body$` block with IF … END IF; inside comes first, whole.
    let unique_client = file(&splits, "005_migration_unique_client.up.sql");
    let block = &unique_client.statements[0];
    assert_eq!(block.line, 5);
    let text = block.text(&unique_client.sql);
    assert!(text.starts_with("DO\n$body$\nBEGIN") && text.ends_with("END;\n$body$\nLANGUAGE 'plpgsql'"), "{text}");
    assert!(cut_bodies(&splits, PLPGSQL_INNER).is_empty());
}

#[test]
fn hatchet_goose_files() {
    // Goose annotations (`-- +goose Up`, `StatementBegin`) are plain comments to the splitter.
    let splits = split_dir("hatchet/migrations", |_| Dialect::Postgres);
    assert_eq!((splits.len(), total(&splits)), (224, 1489));

    let cut = cut_bodies(&splits, PLPGSQL_INNER);
    assert!(cut.is_empty(), "function bodies were cut:\n{}", cut.join("\n"));
    // Every function header at the start of a line begins a statement, so no header was swallowed
    // into a previous statement, and each such statement holds a whole dollar-quoted body.
    let functions = header_statements(&splits, is_pg_function);
    assert_eq!(functions.len(), header_lines(&splits, is_pg_function));
    assert_eq!(functions.len(), 194);
    for (split, text) in &functions {
        assert!(text.matches("$$").count() % 2 == 0, "{}: {text}", split.name);
        assert!(text.to_uppercase().contains("LANGUAGE"), "{}: {text}", split.name);
    }

    // A DO block of 120 lines holding plpgsql loops, a `$BODY$` function and a trigger: one statement.
    let rebuild = file(&splits, "20250602191423_v1_0_22.sql");
    assert_eq!(rebuild.statements.len(), 1);
    assert_eq!(rebuild.statements[0].line, 6);
    let text = rebuild.texts().next().unwrap();
    assert!(text.starts_with("DO $$\nDECLARE") && text.ends_with("END $$"), "{text}");

    // The init migration has no bodies: one statement per line-ending `;` (138 of them).
    let init = file(&splits, "20240115180414_init.sql");
    assert_eq!(init.statements.len(), 138);
    assert_eq!(init.statements.len(), init.sql.matches(";\n").count());
}

#[test]
fn hatchet_splits_in_milliseconds() {
    // Linear time: a generous bound that only a quadratic lexer would break, even in a debug build.
    let splits = split_dir("hatchet/migrations", |_| Dialect::Postgres);
    let started = std::time::Instant::now();
    let count: usize = splits.iter().map(|s| split(&s.sql, Dialect::Postgres).unwrap().len()).sum();
    assert_eq!(count, 1489);
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[test]
fn apache_ranger_mysql() {
    let splits = split_dir("apache-ranger/security-admin/db/mysql", |_| Dialect::Mysql);
    assert_eq!((splits.len(), total(&splits)), (75, 1019));

    // `delimiter ;;` … `end;;` … `delimiter ;`: drop, create, call, drop.
    let patch = file(&splits, "patches/033-add-unique-constraint-on-table-x_policy.sql");
    let heads: Vec<String> = patch.texts().map(head).collect();
    assert_eq!(
        heads,
        ["DROP PROCEDURE", "CREATE PROCEDURE", "CALL CREATE_UNIQUE_CONSTRAINT_ON_NAME_SERVICE()", "DROP PROCEDURE"]
    );
    let procedure = patch.texts().nth(1).unwrap();
    assert!(procedure.ends_with("end if;\n\tend if;\nend"), "{procedure}");

    // `DELIMITER $$`, with `$$` after a statement on the same line.
    let patch = file(&splits, "patches/008-removeTrailingSlash.sql");
    assert_eq!(patch.statements.iter().map(|s| s.line).collect::<Vec<_>>(), [22, 23, 142, 143, 177, 179, 180]);

    let procedures =
        header_statements(&splits, |t| t.starts_with("CREATE PROCEDURE") || t.starts_with("CREATE DEFINER"));
    assert_eq!(procedures.len(), 87);
    for (split, text) in &procedures {
        assert!(text.to_uppercase().ends_with("END"), "{}: {text}", split.name);
    }
    let cut =
        cut_bodies(&splits, &["DECLARE", "END", "END IF", "ELSE", "LEAVE", "FETCH", "OPEN", "CLOSE", "DELIMITER"]);
    assert!(cut.is_empty(), "procedure bodies were cut:\n{}", cut.join("\n"));
}

#[test]
fn apache_ranger_mysql_without_delimiter_lines() {
    // The same files with their DELIMITER lines removed and every statement ended by `;`: the
    // compound-body tracking alone must then find the same 87 procedures and every other statement.
    let splits = split_dir("apache-ranger/security-admin/db/mysql", |_| Dialect::Mysql);
    for original in &splits {
        let rewritten: String = original.texts().map(|t| format!("{t};\n")).collect();
        let again = split(&rewritten, Dialect::Mysql).unwrap_or_else(|e| panic!("{}: {e}", original.name));
        let texts: Vec<&str> = again.iter().map(|s| s.text(&rewritten)).collect();
        assert_eq!(texts, original.texts().collect::<Vec<_>>(), "{}", original.name);
    }
}

#[test]
fn apache_ranger_postgres() {
    let splits = split_dir("apache-ranger/security-admin/db/postgres", |_| Dialect::Postgres);
    assert_eq!((splits.len(), total(&splits)), (59, 1407));
    let functions = header_statements(&splits, is_pg_function);
    assert_eq!(functions.len(), 68);
    assert_eq!(functions.len(), header_lines(&splits, is_pg_function));
    for (split, text) in &functions {
        assert!(text.matches("$$").count() == 2, "{}: {text}", split.name);
    }
    // The loader's sentinel statements and `commit;` lines are statements like any other.
    let sentinels = splits.iter().flat_map(|s| s.texts()).filter(|t| *t == "select 'delimiter start'").count();
    assert!(sentinels > 0);
    assert!(cut_bodies(&splits, PLPGSQL_INNER).is_empty());
}

#[test]
fn ory_kratos_both_dialects() {
    let dialect_of = |name: &str| if name.contains(".mysql.") { Dialect::Mysql } else { Dialect::Postgres };
    let splits = split_dir("ory-kratos/persistence/sql/migrations/sql", dialect_of);
    assert_eq!((splits.len(), total(&splits)), (1343, 1878));
    let mysql: Vec<&Split> = splits.iter().filter(|s| s.name.contains(".mysql.")).collect();
    assert_eq!((mysql.len(), mysql.iter().map(|s| s.statements.len()).sum::<usize>()), (641, 906));

    // Empty and comment-only files (265, as the workload README says) have no statements, and
    // exactly those: the independent gap scanner of the invariants agrees file by file.
    let empty: Vec<&Split> = splits.iter().filter(|s| s.statements.is_empty()).collect();
    assert_eq!(empty.len(), 265);
    for split in &splits {
        let ignorable = gap_is_ignorable(&split.sql, dialect_of(&split.name), &mut ";".to_owned());
        assert_eq!(ignorable, split.statements.is_empty(), "{}", split.name);
    }
}
