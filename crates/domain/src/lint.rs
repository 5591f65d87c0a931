//! SQL review of Postgres scripts with squawk's parser and rules (`squawk-linter`, the linter Postgres teams
//! already run), as messages kept with each version: a statement that does not parse is an **error**
//! (`syntax-error`, with its line and column), which pre-flight refuses before anyone approves; every default
//! squawk rule that fires is a **warning** naming its rule, statement, line and column, with squawk's help.
//!
//! Left out: squawk's timeout rules (`require-timeout-settings`, `require-lock-timeout`,
//! `require-statement-timeout`), because the hub sets `lock_timeout` and `statement_timeout` on every session
//! it opens, from the environment's policy. A statement may carry `-- migrate-hub:ignore rule-name[, …]` on a
//! line before it: its findings of those rules are kept as `info`, marked ignored, for the approver to see.
//!
//! MySQL and MariaDB scripts get rules of our own on `sqlparser`'s MySQL dialect instead ([`mysql`]): there
//! is no squawk for MySQL, and sqlparser cannot read every statement MySQL accepts, so there a statement it
//! cannot parse is a warning (`unparsed`), not an error.

use squawk_linter::{Linter, Rule};
use squawk_syntax::SourceFile;

use crate::enums::{Direction, Engine, Risk};
use crate::model::{Severity, ValidationMessage};
use crate::split::Statement;

pub mod mysql;

pub use mysql::mysql;

/// The rules the hub leaves out, and why (see the module doc).
const LEFT_OUT: &[Rule] = &[Rule::RequireTimeoutSettings, Rule::RequireLockTimeout, Rule::RequireStatementTimeout];

/// The comment that marks a finding as seen and accepted.
pub const IGNORE: &str = "-- migrate-hub:ignore";

/// One finding on a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// `syntax-error`, a squawk rule name, e.g. `ban-drop-column`, or one of [`mysql`]'s rules.
    pub rule: String,
    pub severity: Severity,
    /// The statement (from 0) of the script's split the finding is in, when it is in one.
    pub statement: Option<usize>,
    /// 1-based.
    pub line: u32,
    /// 1-based, in characters.
    pub column: u32,
    pub message: String,
    pub help: Option<String>,
    /// Marked with [`IGNORE`]: kept, as `info`.
    pub ignored: bool,
    /// The engine whose rules found it.
    pub engine: Engine,
}

impl Finding {
    /// The message kept with a version.
    pub fn to_message(&self, direction: Direction) -> ValidationMessage {
        ValidationMessage {
            severity: self.severity,
            code: self.rule.clone(),
            message: self.message.clone(),
            direction,
            statement_index: self.statement.and_then(|i| u32::try_from(i).ok()),
            engine: Some(self.engine),
            line: Some(self.line),
            column: Some(self.column),
            help: self.help.clone(),
            ignored: self.ignored,
        }
    }
}

/// The findings on `sql`, a Postgres script split into `statements`; `in_transaction`: the script runs in
/// one transaction (the version's transaction mode). In text order.
pub fn postgres(sql: &str, statements: &[Statement], in_transaction: bool) -> Vec<Finding> {
    let script = Script { sql, statements, engine: Engine::Postgres };
    let masked = mask_placeholders(sql);
    let parse = SourceFile::parse(&masked);
    // The parser recovers token by token, so one typo gives an error per token after it: the first of each
    // statement is the one that says where it went wrong.
    let mut findings: Vec<Finding> = Vec::new();
    for error in parse.errors() {
        let at = usize::from(error.range().start());
        let found = finding(script, at, "syntax-error".into(), Severity::Error, error.message().to_owned(), None);
        if !findings.iter().any(|f| f.statement == found.statement) {
            findings.push(found);
        }
    }
    if findings.is_empty() {
        let mut linter = Linter::with_rules(&[], LEFT_OUT);
        linter.settings.assume_in_transaction = in_transaction;
        for violation in linter.lint(&parse, &masked) {
            let at = usize::from(violation.text_range.start());
            let rule = violation.code.to_string();
            findings.push(finding(script, at, rule, Severity::Warning, violation.message, violation.help));
        }
    }
    findings.sort_by_key(|f| (f.line, f.column));
    findings
}

/// `sql` with each placeholder a target fills in (`${name}`, pop's `{{ index .Options "name" }}`) turned into
/// an identifier of underscores of the same length, so the parser sees a name where the target's value will
/// be and every offset stays where it was. River's `/* TEMPLATE: name */` is a comment already.
fn mask_placeholders(sql: &str) -> String {
    let mut bytes = sql.as_bytes().to_vec();
    for (open, close) in [("${", "}"), ("{{", "}}")] {
        let mut from = 0;
        while let Some(start) = sql[from..].find(open).map(|i| from + i) {
            let Some(end) = sql[start + open.len()..].find(close).map(|i| start + open.len() + i + close.len()) else {
                break;
            };
            if sql[start..end].contains('\n') {
                from = start + open.len();
                continue;
            }
            bytes[start..end].fill(b'_');
            from = end;
        }
    }
    // Only ASCII bytes of whole placeholders were replaced, each by one ASCII byte.
    String::from_utf8(bytes).unwrap_or_else(|_| sql.to_owned())
}

/// A script being reviewed: its text, its split, and the engine whose rules review it.
#[derive(Clone, Copy)]
struct Script<'a> {
    sql: &'a str,
    statements: &'a [Statement],
    engine: Engine,
}

/// The finding of `rule` at byte `at` of the script: its line, column and statement, and whether an ignore
/// comment names it.
fn finding(
    script: Script<'_>,
    at: usize,
    rule: String,
    severity: Severity,
    message: String,
    help: Option<String>,
) -> Finding {
    let Script { sql, statements, engine } = script;
    let at = at.min(sql.len());
    let before = sql.get(..at).unwrap_or_default();
    let line = u32::try_from(before.matches('\n').count() + 1).unwrap_or(u32::MAX);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = u32::try_from(before[line_start..].chars().count() + 1).unwrap_or(u32::MAX);
    let statement = statements.iter().position(|s| s.range.start <= at && at < s.range.end.max(s.range.start + 1));
    // The ignore comment may stand on any line from just before the statement down to the finding's line.
    let from = statement.map_or(line_start, |i| statements[i].range.start.min(line_start));
    let above = sql.get(..from).unwrap_or_default().trim_end_matches([' ', '\t', '\r', '\n']);
    let previous_line = above.rsplit('\n').next().unwrap_or_default();
    let ignored = severity != Severity::Error
        && std::iter::once(previous_line)
            .chain(sql.get(from..line_start).unwrap_or_default().lines())
            .any(|l| ignores(l, &rule));
    let severity = if ignored { Severity::Info } else { severity };
    Finding { rule, severity, statement, line, column, message, help, ignored, engine }
}

/// Whether `line` is an ignore comment naming `rule`.
fn ignores(line: &str, rule: &str) -> bool {
    line.trim()
        .strip_prefix(IGNORE)
        .is_some_and(|names| names.split([',', ' ']).map(str::trim).any(|name| name == rule))
}

/// Rules whose statements destroy data or hold a lock that blocks the application for the length of a
/// table rewrite or scan: a release with one of them is high-risk (the environment may ask for more
/// approvals). Postgres rules are squawk's names; MySQL rules are the hub's own.
const HIGH_RISK: &[&str] = &[
    "syntax-error",
    "split-error",
    // Destructive.
    "ban-drop-database",
    "ban-drop-schema",
    "ban-drop-table",
    "ban-drop-column",
    "ban-truncate-cascade",
    "ban-truncate-table",
    "update-without-where",
    "delete-without-where",
    // Breaks the application still running on the old names.
    "renaming-table",
    "renaming-column",
    // Rewrites or scans the table under a lock that blocks writes (or reads).
    "changing-column-type",
    "adding-required-field",
    "adding-not-nullable-field",
    "adding-serial-primary-key-field",
    "adding-field-with-default",
    "adding-foreign-key-constraint",
    "constraint-missing-not-valid",
    "disallowed-unique-constraint",
    "adding-unique-key",
    "require-concurrent-index-creation",
    "require-concurrent-index-deletion",
    "ban-alter-domain-with-add-constraint",
];

/// Whether `rule` names a rule of the SQL review that a project may switch off: a squawk rule or one of the
/// hub's MySQL rules; never a syntax error.
pub fn may_switch_off(rule: &str) -> bool {
    if matches!(rule, "syntax-error" | "split-error") {
        return false;
    }
    rule.parse::<Rule>().is_ok() || mysql::RULES.contains(&rule)
}

/// The risk one finding carries: an ignored one (seen and accepted) or an `info` carries none.
pub fn risk_of(message: &ValidationMessage) -> Risk {
    match message.severity {
        Severity::Info => Risk::Low,
        _ if message.ignored => Risk::Low,
        Severity::Error => Risk::High,
        Severity::Warning if HIGH_RISK.contains(&message.code.as_str()) => Risk::High,
        Severity::Warning => Risk::Medium,
    }
}

/// The risk of a set of findings: the highest of theirs, `Low` for none.
pub fn risk<'a>(findings: impl IntoIterator<Item = &'a ValidationMessage>) -> Risk {
    findings.into_iter().map(risk_of).max().unwrap_or(Risk::Low)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::split::{Dialect, split};

    fn lint(sql: &str) -> Vec<Finding> {
        let statements = split(sql, Dialect::Postgres).unwrap();
        postgres(sql, &statements, true)
    }

    fn rules(findings: &[Finding]) -> Vec<&str> {
        findings.iter().map(|f| f.rule.as_str()).collect()
    }

    #[test]
    fn a_typo_is_a_syntax_error_with_its_line_and_column() {
        let found = lint("CREATE TABLE a (id bigint);\nCREAT INDEX a_id ON a (id);\n");
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!((f.rule.as_str(), f.severity, f.line, f.column), ("syntax-error", Severity::Error, 2, 1));
        assert_eq!(f.statement, Some(1));
        let message = f.to_message(Direction::Up);
        assert_eq!(
            (message.severity, message.engine, message.statement_index),
            (Severity::Error, Some(Engine::Postgres), Some(1))
        );
        assert_eq!((message.line, message.column), (Some(2), Some(1)), "{message:?}");
        assert!(message.is_finding() && !message.message.starts_with("line"), "{}", message.message);
    }

    #[test]
    fn risky_statements_are_warnings_naming_their_rule_and_clean_twins_pass() {
        // (risky, its rule, the clean twin: the safe way to the same end, where that rule does not fire)
        let cases = [
            (
                "DROP TABLE a;",
                "ban-drop-table",
                "ALTER TABLE IF EXISTS a ADD COLUMN IF NOT EXISTS retired_at timestamptz;",
            ),
            (
                "ALTER TABLE a DROP COLUMN b;",
                "ban-drop-column",
                "ALTER TABLE a ADD COLUMN IF NOT EXISTS b_retired boolean;",
            ),
            (
                "ALTER TABLE a ADD COLUMN c text NOT NULL;",
                "adding-required-field",
                "ALTER TABLE a ADD COLUMN c text NOT NULL DEFAULT '';",
            ),
            (
                "ALTER TABLE a ALTER COLUMN b TYPE bigint;",
                "changing-column-type",
                "ALTER TABLE a ADD COLUMN b_big bigint;",
            ),
            ("ALTER TABLE a RENAME COLUMN b TO c;", "renaming-column", "ALTER TABLE a ADD COLUMN c text;"),
            ("ALTER TABLE a RENAME TO b;", "renaming-table", "CREATE VIEW b AS SELECT * FROM a;"),
            (
                "CREATE INDEX a_b ON a (b);",
                "require-concurrent-index-creation",
                "CREATE INDEX CONCURRENTLY a_b ON a (b);",
            ),
            (
                "ALTER TABLE a ADD CONSTRAINT a_b_fk FOREIGN KEY (b) REFERENCES c (id);",
                "adding-foreign-key-constraint",
                "ALTER TABLE a ADD CONSTRAINT a_b_fk FOREIGN KEY (b) REFERENCES c (id) NOT VALID;",
            ),
            (
                "ALTER TABLE a ADD CONSTRAINT a_b_check CHECK (b > 0);",
                "constraint-missing-not-valid",
                "ALTER TABLE a ADD CONSTRAINT a_b_check CHECK (b > 0) NOT VALID;",
            ),
            (
                "CREATE TABLE t (id int PRIMARY KEY);",
                "prefer-bigint-over-int",
                "CREATE TABLE t (id bigint PRIMARY KEY);",
            ),
            (
                "CREATE TABLE t (id bigint PRIMARY KEY, at timestamp);",
                "prefer-timestamp-tz",
                "CREATE TABLE t (id bigint PRIMARY KEY, at timestamptz);",
            ),
            (
                "CREATE TABLE t (id bigint PRIMARY KEY, name varchar(100));",
                "prefer-text-field",
                "CREATE TABLE t (id bigint PRIMARY KEY, name text);",
            ),
            (
                "ALTER TABLE a ALTER COLUMN b DROP NOT NULL;",
                "ban-drop-not-null",
                "ALTER TABLE a ALTER COLUMN b SET DEFAULT 0;",
            ),
        ];
        for (sql, rule, twin) in cases {
            let found = lint(sql);
            assert!(rules(&found).contains(&rule), "{sql}: {found:?}");
            assert!(found.iter().all(|f| f.severity == Severity::Warning), "{sql}: {found:?}");
            // CONCURRENTLY cannot run in a transaction: its twin is reviewed as a no-transaction version.
            let statements = split(twin, Dialect::Postgres).unwrap();
            let twin_found = postgres(twin, &statements, !twin.contains("CONCURRENTLY"));
            assert!(!rules(&twin_found).contains(&rule), "{twin}: {twin_found:?}");
            assert!(twin_found.iter().all(|f| f.rule != "syntax-error"), "{twin}: {twin_found:?}");
        }
        let clean = [
            "CREATE TABLE IF NOT EXISTS t (id bigint PRIMARY KEY, at timestamptz, name text);",
            "ALTER TABLE a ADD COLUMN IF NOT EXISTS c text;",
        ];
        for sql in clean {
            assert_eq!(lint(sql), Vec::new(), "{sql}");
        }
    }

    #[test]
    fn the_hubs_own_timeouts_make_squawks_timeout_rules_moot() {
        let found = lint("ALTER TABLE IF EXISTS a ADD COLUMN IF NOT EXISTS c text;");
        assert!(found.iter().all(|f| !f.rule.contains("timeout")), "{found:?}");
    }

    #[test]
    fn placeholders_a_target_fills_in_are_not_syntax_errors() {
        for sql in [
            "CREATE VIEW ${schema}.orders_v AS SELECT 1 AS one;",
            "CREATE TABLE {{ index .Options \"Namespace\" }}.identities (id bigint PRIMARY KEY);",
            "CREATE TABLE /* TEMPLATE: schema */river_job (id bigint PRIMARY KEY);",
        ] {
            assert!(lint(sql).iter().all(|f| f.rule != "syntax-error"), "{sql}: {:?}", lint(sql));
        }
        // The offsets stay: a finding after a placeholder is on its own line and column.
        let found = lint("CREATE TABLE ${schema}.a (id bigint PRIMARY KEY);\nDROP TABLE ${schema}.b;\n");
        assert_eq!(
            found.iter().map(|f| (f.rule.as_str(), f.line, f.column)).collect::<Vec<_>>(),
            [("ban-drop-table", 2, 1)]
        );
    }

    #[test]
    fn an_ignore_comment_keeps_the_finding_as_info() {
        let sql = "-- migrate-hub:ignore ban-drop-table\nDROP TABLE a;\nDROP TABLE b;\n";
        let found = lint(sql);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].ignored && found[0].severity == Severity::Info, "{found:?}");
        assert!(!found[1].ignored && found[1].severity == Severity::Warning, "{found:?}");
        let kept = found[0].to_message(Direction::Up);
        assert!(kept.ignored && kept.is_finding(), "{kept:?}");
        assert_eq!(risk_of(&kept), Risk::Low);
        assert_eq!(risk_of(&found[1].to_message(Direction::Up)), Risk::High);
    }

    #[test]
    fn risk_is_high_for_destructive_or_locking_rules_medium_for_other_warnings() {
        let risk_of_sql = |sql: &str| risk(&lint(sql).iter().map(|f| f.to_message(Direction::Up)).collect::<Vec<_>>());
        assert_eq!(risk_of_sql("ALTER TABLE a DROP COLUMN b;"), Risk::High);
        assert_eq!(risk_of_sql("CREAT TABLE a (id bigint);"), Risk::High);
        assert_eq!(risk_of_sql("CREATE TABLE t (id bigint PRIMARY KEY, at timestamp);"), Risk::Medium);
        assert_eq!(risk_of_sql("CREATE TABLE IF NOT EXISTS t (id bigint PRIMARY KEY, name text);"), Risk::Low);
    }
}
