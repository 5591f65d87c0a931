//! `migrate-hub lint`: the SQL review the hub runs when a version is stored (`domain::lint`), on a directory,
//! before anything runs: for CI (`--format github` prints workflow annotations) and for people.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use domain::enums::{Direction, Engine, TransactionMode};
use domain::lint::{self, Finding};
use domain::model::Severity;
use domain::source::Layout;
use domain::split::{self, Dialect};
use executor::local::{self, Prepared};

/// How findings are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `path:line:column: severity rule: message`, then a summary line.
    Text,
    /// One JSON array of findings.
    Json,
    /// GitHub Actions workflow commands (`::error file=…,line=…::…`), then the summary line.
    Github,
}

/// One finding with where it is.
struct Located {
    path: String,
    version: String,
    direction: Direction,
    /// 1-based, in the file.
    line: u32,
    finding: Finding,
}

pub fn run(dir: &Path, engine: Engine, layout: &str, format: Format) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let layout = match layout {
        "auto" => None,
        other => Some(other.parse::<Layout>()?),
    };
    let source = local::load_dir(dir, layout, engine)?;
    let mut err = std::io::stderr().lock();
    for skipped in &source.skipped {
        writeln!(err, "not read: {} ({})", skipped.path, skipped.reason)?;
    }
    if source.migrations.is_empty() {
        writeln!(err, "error: {} holds no migration to lint", dir.display())?;
        return Ok(ExitCode::FAILURE);
    }
    let dialect = dialect(engine);
    let mut found: Vec<Located> = Vec::new();
    let mut scripts = 0;
    for m in &source.migrations {
        let halves = [
            (Direction::Up, Some(m.up.as_str()), Some(m.up_path.as_str())),
            (Direction::Down, m.down.as_deref(), m.down_path.as_deref()),
        ];
        for (direction, sql, path) in halves {
            let (Some(sql), Some(path)) = (sql, path) else { continue };
            scripts += 1;
            let offset = lines_before(dir, path, sql);
            let at = |line: u32| line.saturating_add(offset);
            let locate = |finding: Finding| Located {
                path: path.to_owned(),
                version: m.version.to_string(),
                direction,
                line: at(finding.line),
                finding,
            };
            let statements = match split::split(sql, dialect) {
                Ok(statements) => statements,
                Err(e) => {
                    found.push(locate(Finding {
                        rule: "split-error".into(),
                        severity: Severity::Error,
                        statement: None,
                        line: e.line,
                        column: e.column,
                        message: e.message.to_string(),
                        help: None,
                        ignored: false,
                        engine,
                    }));
                    continue;
                }
            };
            let in_transaction = m.transaction_mode == TransactionMode::Transaction;
            found.extend(review(engine, sql, &statements, in_transaction).into_iter().map(locate));
        }
    }
    let count = |severity: Severity, ignored: bool| {
        found.iter().filter(|l| l.finding.severity == severity && l.finding.ignored == ignored).count()
    };
    let (errors, warnings, ignored) =
        (count(Severity::Error, false), count(Severity::Warning, false), count(Severity::Info, true));
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            let items: Vec<_> = found
                .iter()
                .map(|l| {
                    serde_json::json!({
                        "file": l.path, "version": l.version, "direction": l.direction.as_str(),
                        "rule": l.finding.rule, "severity": severity_name(l.finding.severity),
                        "statement": l.finding.statement.map(|s| s + 1), "line": l.line, "column": l.finding.column,
                        "message": l.finding.message, "help": l.finding.help, "ignored": l.finding.ignored,
                    })
                })
                .collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&items)?)?;
        }
        Format::Text | Format::Github => {
            for l in &found {
                let f = &l.finding;
                let help = f.help.as_deref().map(|h| format!(" (help: {h})")).unwrap_or_default();
                let ignored = if f.ignored { " [ignored]" } else { "" };
                if format == Format::Github {
                    let command = match f.severity {
                        Severity::Error => "error",
                        Severity::Warning => "warning",
                        Severity::Info => "notice",
                    };
                    let text = format!("{}{help}{ignored}", f.message).replace('%', "%25").replace('\n', "%0A");
                    writeln!(
                        out,
                        "::{command} file={},line={},col={},title={}::{text}",
                        l.path, l.line, f.column, f.rule
                    )?;
                } else {
                    writeln!(
                        out,
                        "{}:{}:{}: {} {}: {}{help}{ignored}",
                        l.path,
                        l.line,
                        f.column,
                        severity_name(f.severity),
                        f.rule,
                        f.message
                    )?;
                }
            }
            writeln!(
                out,
                "linted={} scripts={scripts} errors={errors} warnings={warnings} ignored={ignored}",
                source.migrations.len()
            )?;
        }
    }
    Ok(if errors > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// How many lines of its file come before `script` (goose, dbmate and sql-migrate keep both directions in
/// one file), so findings name the file's own lines; 0 when it cannot tell.
fn lines_before(dir: &Path, path: &str, script: &str) -> u32 {
    std::fs::read_to_string(dir.join(path))
        .ok()
        .and_then(|file| file.find(script).map(|at| file[..at].matches('\n').count()))
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0)
}

fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

fn dialect(engine: Engine) -> Dialect {
    match engine {
        Engine::Postgres => Dialect::Postgres,
        Engine::Mysql => Dialect::Mysql,
    }
}

/// The engine's rules: squawk's on Postgres, the hub's own on MySQL.
fn review(engine: Engine, sql: &str, statements: &[split::Statement], in_transaction: bool) -> Vec<Finding> {
    match engine {
        Engine::Postgres => lint::postgres(sql, statements, in_transaction),
        Engine::Mysql => lint::mysql(sql, statements, in_transaction),
    }
}

/// The review's errors on the up scripts `apply` is about to run on `engine`, as lines to print (`path:line:
/// column: error rule: message`); empty when there is none. On MySQL there is none: a statement sqlparser
/// cannot read is a warning there, since the server may well accept it.
pub fn errors(dir: &Path, prepared: &[Prepared], engine: Engine) -> Vec<String> {
    let mut lines = Vec::new();
    for p in prepared {
        let Ok(statements) = split::split(&p.up_sql, dialect(engine)) else { continue };
        let in_transaction = p.transaction_mode == TransactionMode::Transaction;
        let offset = lines_before(dir, &p.path, &p.up_sql);
        for f in review(engine, &p.up_sql, &statements, in_transaction) {
            if f.severity == Severity::Error {
                let line = f.line.saturating_add(offset);
                lines.push(format!("{}:{line}:{}: error {}: {}", p.path, f.column, f.rule, f.message));
            }
        }
    }
    lines
}
