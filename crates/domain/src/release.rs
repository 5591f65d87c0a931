//! The rules of a release: a run that applies an ordered list of migration versions of one project.
//!
//! - **Selection.** An up release applies every migration of the project, in ascending version order,
//!   up to and including an optional `up_to` key ([`select_up`]). A down release reverts every migration
//!   strictly above a `down_to` key, newest first ([`select_down`]). A key that names no migration of the
//!   project, and a release with nothing in it, are refused ([`SelectError`]).
//! - **Content.** What a release applies is pinned by one checksum over its versions' keys and script
//!   checksums in apply order ([`content_checksum`]). An approval is given for that checksum, so editing any
//!   version, or changing which versions or their order, makes it a different release. A SQL migration
//!   computes the same text for the runs made before releases, so the format is fixed (`v1`).
//! - **Pre-flight.** Before a release is requested, [`preflight`] finds everything that would make it fail
//!   on some target of the db set without running anything: the very checks the worker makes when it
//!   prepares a target (splitting by the target's dialect, per-target placeholder variables, statements
//!   that Postgres refuses inside the migration's transaction), a down release's versions without a down
//!   script, and lint errors of the direction applied. A release pre-flight accepts is one the worker will
//!   not refuse for these reasons on any target.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fmt::Write as _;

use crate::checksum::Checksum;
use crate::enums::{Direction, Engine, LintBlock, TransactionMode};
use crate::error_code::ErrorCode;
use crate::lint;
use crate::model::{ReviewFinding, RunAction, RunReview, Severity, ValidationMessage};
use crate::placeholder::{self, PlaceholderError, Syntax};
use crate::policy::PinnedChecksums;
use crate::split::{self, Statement};
use crate::values::VersionKey;

/// The placeholder syntaxes substituted per target by the workers (`${name}`, River's `/* TEMPLATE: name */`
/// and pop's `{{ index .Options "name" }}`).
pub const TARGET_SYNTAXES: &[Syntax] = &[Syntax::DollarBraces, Syntax::RiverTemplate, Syntax::GoTemplate];

/// The first line of the text [`content_checksum`] hashes; the version of its format.
const CONTENT_HEADER: &str = "migrate-hub release v1\n";

/// How many problems [`summarize`] spells out.
const SUMMARY_LIMIT: usize = 5;

/// The checksum of a release's content: SHA-256 (via [`Checksum::of`]) over the text
/// `"migrate-hub release v1\n"` followed, per version in apply order, by `"{version_key} {up_hex} {down_hex or -}\n"`.
///
/// A SQL migration computes the same text for the runs made before releases, so the format must stay
/// exactly this; a new format needs a new header line.
pub fn content_checksum<'a>(entries: impl IntoIterator<Item = (&'a VersionKey, &'a PinnedChecksums)>) -> Checksum {
    let mut text = String::from(CONTENT_HEADER);
    for (key, pinned) in entries {
        let down = pinned.down.map_or_else(|| "-".to_owned(), |down| down.to_hex());
        // Writing to a `String` cannot fail.
        let _ = writeln!(text, "{} {} {down}", key.as_str(), pinned.up.to_hex());
    }
    // Version keys and hex digits are ASCII without `\r`, so the normalization of `Checksum::of` changes
    // nothing and this is the plain SHA-256 of the text, as the SQL migration computes it.
    Checksum::of(&text)
}

/// The content checksum of a run doing `action` with `entries` (in apply order): for a release, exactly
/// [`content_checksum`]; for a baseline, adoption or recovery, SHA-256 over a header naming the kind, a line
/// with its parameters (the tool and table; the resolution and the row seen), then the versions as in a
/// release. An approval pins this, so it covers what the run will do, not only which files.
pub fn run_content<'a>(
    action: &RunAction,
    entries: impl IntoIterator<Item = (&'a VersionKey, &'a PinnedChecksums)>,
) -> Checksum {
    let parameters = match action {
        RunAction::Release => return content_checksum(entries),
        RunAction::Baseline => String::new(),
        RunAction::Adopt { from, table } => format!("from {from} {}\n", table.as_deref().unwrap_or("-")),
        RunAction::Recovery { resolution, seen } => {
            let checksum: String = seen.checksum.iter().map(|b| format!("{b:02x}")).collect();
            format!(
                "resolve {resolution} seen {} {}/{} {checksum}\n",
                seen.status, seen.statements_done, seen.statements_total
            )
        }
    };
    let mut text = format!("migrate-hub {} v1\n{parameters}", action.kind());
    for (key, pinned) in entries {
        let down = pinned.down.map_or_else(|| "-".to_owned(), |down| down.to_hex());
        let _ = writeln!(text, "{} {} {down}", key.as_str(), pinned.up.to_hex());
    }
    Checksum::of(&text)
}

/// Why the versions of a release cannot be selected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// `up_to` or `down_to` names no migration of the project.
    #[error("version {key} is not a migration of this project")]
    UnknownVersion {
        /// The key as given.
        key: String,
    },
    /// The release would contain nothing: the project has no migrations, or `down_to` is the newest.
    #[error("the release would contain no migration: there is nothing to apply or revert")]
    Empty,
}

/// Indices into `keys` (sorted ascending, unique) of an up release up to and including `up_to` (default: all),
/// in apply order.
pub fn select_up(keys: &[VersionKey], up_to: Option<&VersionKey>) -> Result<Vec<usize>, SelectError> {
    let end = match up_to {
        Some(key) => position(keys, key)? + 1,
        None => keys.len(),
    };
    if end == 0 {
        return Err(SelectError::Empty);
    }
    Ok((0..end).collect())
}

/// Indices into `keys` (sorted ascending, unique) of a down release: every key strictly above `down_to`,
/// newest first. `down_to` must be one of `keys`.
pub fn select_down(keys: &[VersionKey], down_to: &VersionKey) -> Result<Vec<usize>, SelectError> {
    let start = position(keys, down_to)? + 1;
    if start == keys.len() {
        return Err(SelectError::Empty);
    }
    Ok((start..keys.len()).rev().collect())
}

/// Where `key` is in the sorted `keys`.
fn position(keys: &[VersionKey], key: &VersionKey) -> Result<usize, SelectError> {
    debug_assert!(keys.is_sorted(), "version keys must be sorted ascending");
    keys.binary_search(key).map_err(|_| SelectError::UnknownVersion { key: key.as_str().to_owned() })
}

/// A version of a release, as pre-flight sees it.
#[derive(Debug, Clone, Copy)]
pub struct PreflightVersion<'a> {
    /// The migration's version key.
    pub version_key: &'a VersionKey,
    /// The up script, before substitution.
    pub up_sql: &'a str,
    /// The down script, before substitution, if the version has one.
    pub down_sql: Option<&'a str>,
    /// Whether the version runs in one transaction.
    pub transaction_mode: TransactionMode,
    /// The lint and validation messages stored with the version (both directions).
    pub lint: &'a [ValidationMessage],
}

/// A target of the run's db set, as pre-flight sees it.
#[derive(Debug, Clone, Copy)]
pub struct PreflightTarget<'a> {
    /// The target's name, for messages.
    pub name: &'a str,
    /// Its engine, which decides how the SQL is split and whether the transaction check applies.
    pub engine: Engine,
    /// Its placeholder variables.
    pub variables: &'a BTreeMap<String, String>,
}

/// Why a release cannot work on some target; `Display` is a full sentence naming what and where
/// (statements numbered from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A statement uses a placeholder whose variable the target does not define.
    MissingVariable {
        /// The version.
        version_key: String,
        /// The variable's name.
        variable: String,
        /// The target's name.
        target: String,
    },
    /// The target defines the variable, but its value cannot be substituted safely (see
    /// [`placeholder`](crate::placeholder)); the worker refuses it as it does a missing one.
    InvalidVariable {
        /// The version.
        version_key: String,
        /// The variable's name.
        variable: String,
        /// The target's name.
        target: String,
        /// Why the value is refused (never the value itself).
        reason: &'static str,
    },
    /// The script cannot be split by the dialect of some target's engine.
    Split {
        /// The version.
        version_key: String,
        /// The engine whose dialect failed.
        engine: Engine,
        /// The splitter's message, with line and column.
        message: String,
    },
    /// On Postgres, a transaction-mode version contains a statement that cannot run in a transaction.
    NeedsNoTransaction {
        /// The version.
        version_key: String,
        /// The statement, numbered from 1.
        statement: usize,
        /// What the statement is, e.g. `CREATE INDEX CONCURRENTLY`.
        what: &'static str,
    },
    /// A down release contains a version without a down script.
    NoDown {
        /// The version.
        version_key: String,
    },
    /// The release goes to targets of an engine the project does not declare (the message names them).
    Undeclared {
        /// The full sentence.
        message: String,
    },
    /// A finding of the SQL review that the environment's policy (`lint_block`) refuses.
    Lint {
        /// The version.
        version_key: String,
        /// Error or warning.
        severity: Severity,
        /// The rule's name.
        code: String,
        /// The finding's message, with its line.
        message: String,
    },
}

impl Problem {
    /// A stable code for the kind of problem: `missing_variable`, `invalid_variable`, `split_error`,
    /// `needs_no_transaction`, `no_down`, `lint_error` or `lint_warning`.
    pub fn code(&self) -> ErrorCode {
        match self {
            Problem::MissingVariable { .. } => ErrorCode::MissingVariable,
            Problem::InvalidVariable { .. } => ErrorCode::InvalidVariable,
            Problem::Split { .. } => ErrorCode::SplitError,
            Problem::NeedsNoTransaction { .. } => ErrorCode::NeedsNoTransaction,
            Problem::NoDown { .. } => ErrorCode::NoDown,
            Problem::Undeclared { .. } => ErrorCode::DialectNotDeclared,
            Problem::Lint { severity: Severity::Error, .. } => ErrorCode::LintError,
            Problem::Lint { .. } => ErrorCode::LintWarning,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::MissingVariable { version_key, variable, target } => {
                write!(f, "{version_key} uses the placeholder variable `{variable}`, which target {target} lacks")
            }
            Problem::InvalidVariable { version_key, variable, target, reason } => write!(
                f,
                "{version_key} uses the placeholder variable `{variable}`, whose value on target {target} \
                 cannot be substituted: {reason}"
            ),
            Problem::Split { version_key, engine, message } => {
                write!(f, "{version_key} cannot be split into statements for {engine}: {message}")
            }
            Problem::NeedsNoTransaction { version_key, statement, what } => write!(
                f,
                "{version_key} runs in a transaction, but its statement {statement} ({what}) cannot run inside \
                 one on Postgres; set its transaction mode to none"
            ),
            Problem::NoDown { version_key } => write!(f, "{version_key} has no down script, so it cannot be reverted"),
            Problem::Undeclared { message } => f.write_str(message),
            Problem::Lint { version_key, severity, code, message } => {
                let what = if *severity == Severity::Error { "error" } else { "warning" };
                write!(f, "{version_key} has the SQL review {what} {code}: {message}")
            }
        }
    }
}

/// Everything that would make `direction` of these versions fail on these targets, found before anything runs.
///
/// These are the checks the worker makes when it prepares a target: the script of the direction is split by
/// the target's dialect, each statement's placeholders must have a value among the target's variables that
/// can be substituted, and on Postgres a transaction-mode version may not contain a statement
/// [`non_transactional`](crate::split::non_transactional) refuses (checked after substitution, as the worker
/// does). Added to them: a down release's versions without a down script. The worker stops at the first
/// failure of a target; this reports every one, so a pair of version and target has a problem here exactly
/// when the worker would refuse it. What the SQL review found is [`review`]'s, and what of it the policy
/// refuses [`blocking`]'s.
///
/// Deduplicated; ordered by version (as given), then by target (as given), a version's own problem (no down
/// script) first. Each version is split once per engine present among the targets, and targets that
/// give the placeholders of a version the same values share one substitution, so thousands of targets cost
/// little more than their variable lookups.
pub fn preflight(
    direction: Direction,
    versions: &[PreflightVersion<'_>],
    targets: &[PreflightTarget<'_>],
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for version in versions {
        let key = version.version_key.as_str();
        let sql = match direction {
            Direction::Up => Some(version.up_sql),
            Direction::Down => version.down_sql,
        };
        if sql.is_none() {
            problems.push(Problem::NoDown { version_key: key.to_owned() });
        }
        if let Some(sql) = sql {
            check_targets(key, sql, version.transaction_mode, targets, &mut problems);
        }
    }
    problems
}

/// The SQL review of `direction` of these versions for targets of `engines`: the findings kept with each
/// version (in the given order) for that direction, of a rule that holds for one of the engines, less the
/// rules the project switched off (`rules_off`), and their risk. Ignored findings are kept (as `info`), for
/// the approver to see.
pub fn review(
    direction: Direction,
    versions: &[PreflightVersion<'_>],
    engines: &[Engine],
    rules_off: &[String],
) -> RunReview {
    let mut findings = Vec::new();
    for version in versions {
        for message in version.lint {
            let applies = message.engine.is_none_or(|engine| engines.contains(&engine));
            if message.is_finding() && message.direction == direction && applies && !rules_off.contains(&message.code) {
                findings.push(ReviewFinding { version_key: version.version_key.to_string(), message: message.clone() });
            }
        }
    }
    RunReview { risk: lint::risk(findings.iter().map(|f| &f.message)), findings }
}

/// The findings of `review` that `block` refuses, as problems (errors first, then warnings, each in review
/// order); ignored findings never.
pub fn blocking(review: &RunReview, block: LintBlock) -> Vec<Problem> {
    let least = match block {
        LintBlock::Never => return Vec::new(),
        LintBlock::Error => Severity::Error,
        LintBlock::Warning => Severity::Warning,
    };
    let mut refused: Vec<&ReviewFinding> =
        review.findings.iter().filter(|f| f.message.severity >= least && !f.message.ignored).collect();
    refused.sort_by_key(|f| std::cmp::Reverse(f.message.severity));
    refused
        .into_iter()
        .map(|f| {
            let m = &f.message;
            Problem::Lint {
                version_key: f.version_key.clone(),
                severity: m.severity,
                code: m.code.clone(),
                message: match m.line {
                    Some(line) => format!("line {line}: {}", m.message),
                    None => m.message.clone(),
                },
            }
        })
        .collect()
}

/// The per-target checks of one script, appended to `problems` in target order.
fn check_targets(
    key: &str,
    sql: &str,
    mode: TransactionMode,
    targets: &[PreflightTarget<'_>],
    problems: &mut Vec<Problem>,
) {
    // Engine::ALL is tiny, so a linear map from engine to its prepared script is enough.
    let mut prepared: Vec<(Engine, Result<Prepared<'_>, String>)> = Vec::new();
    let mut split_reported: Vec<Engine> = Vec::new();
    let mut no_transaction_reported: Vec<(usize, &'static str)> = Vec::new();
    for target in targets {
        let index = match prepared.iter().position(|(engine, _)| *engine == target.engine) {
            Some(index) => index,
            None => {
                let checked = target.engine == Engine::Postgres && mode == TransactionMode::Transaction;
                prepared.push((target.engine, Prepared::new(sql, target.engine, checked)));
                prepared.len() - 1
            }
        };
        let (engine, script) = &mut prepared[index];
        let script = match script {
            Ok(script) => script,
            Err(message) => {
                if !split_reported.contains(engine) {
                    split_reported.push(*engine);
                    problems.push(Problem::Split {
                        version_key: key.to_owned(),
                        engine: *engine,
                        message: message.clone(),
                    });
                }
                continue;
            }
        };
        let verdict = script.verdict(target.variables);
        for variable in &verdict.missing {
            problems.push(Problem::MissingVariable {
                version_key: key.to_owned(),
                variable: (*variable).to_owned(),
                target: target.name.to_owned(),
            });
        }
        for (variable, reason) in &verdict.invalid {
            problems.push(Problem::InvalidVariable {
                version_key: key.to_owned(),
                variable: (*variable).to_owned(),
                target: target.name.to_owned(),
                reason,
            });
        }
        if let Some(found) = verdict.no_transaction
            && !no_transaction_reported.contains(&found)
        {
            no_transaction_reported.push(found);
            problems.push(Problem::NeedsNoTransaction {
                version_key: key.to_owned(),
                statement: found.0,
                what: found.1,
            });
        }
    }
}

/// One statement of a script split for one engine.
#[derive(Debug)]
struct PreparedStatement<'s> {
    text: &'s str,
    /// The variables it refers to, in order of first use (what the worker checks before substituting).
    names: Vec<&'s str>,
}

/// A script split for one engine, with what every target's verdict depends on.
#[derive(Debug)]
struct Prepared<'s> {
    statements: Vec<PreparedStatement<'s>>,
    /// Every variable the script refers to, in order of first use: a verdict depends only on their values.
    names: Vec<&'s str>,
    /// Whether the transaction check applies (Postgres, transaction mode).
    checked: bool,
    /// Verdicts by the values of `names` (`None`: undefined).
    verdicts: HashMap<Vec<Option<&'s str>>, Verdict<'s>>,
}

/// What one target makes of a prepared script.
#[derive(Debug, Clone, Default)]
struct Verdict<'s> {
    /// Variables used but undefined, in order of first use.
    missing: Vec<&'s str>,
    /// Variables whose value cannot be substituted, with why, in order of first use.
    invalid: Vec<(&'s str, &'static str)>,
    /// The first statement (1-based) the transaction check refuses, and what it is.
    no_transaction: Option<(usize, &'static str)>,
}

impl<'s> Prepared<'s> {
    /// Splits `sql` as the worker does for a target of `engine`; the error is the splitter's message.
    fn new(sql: &'s str, engine: Engine, checked: bool) -> Result<Self, String> {
        let split: Vec<Statement> = split::split(sql, engine.into()).map_err(|e| e.to_string())?;
        let mut names: Vec<&str> = Vec::new();
        let statements = split
            .iter()
            .map(|statement| {
                let text = statement.text(sql);
                let statement_names = placeholder::referenced(text, TARGET_SYNTAXES);
                for name in &statement_names {
                    if !names.contains(name) {
                        names.push(name);
                    }
                }
                PreparedStatement { text, names: statement_names }
            })
            .collect();
        Ok(Prepared { statements, names, checked, verdicts: HashMap::new() })
    }

    /// The verdict for a target with `variables`, computed once per distinct set of values of `names`.
    fn verdict(&mut self, variables: &'s BTreeMap<String, String>) -> Verdict<'s> {
        let values: Vec<Option<&'s str>> =
            self.names.iter().map(|name| variables.get(*name).map(String::as_str)).collect();
        if let Some(verdict) = self.verdicts.get(&values) {
            return verdict.clone();
        }
        let verdict = self.compute(variables);
        self.verdicts.insert(values, verdict.clone());
        verdict
    }

    /// Statement by statement, as the worker's `statements_for` and `apply` do: a statement whose variables
    /// are all defined is substituted, and on Postgres in transaction mode its substituted text is checked.
    /// Unlike the worker, this goes on after a failure, so every problem is found at once.
    fn compute(&self, variables: &BTreeMap<String, String>) -> Verdict<'s> {
        let mut verdict = Verdict::default();
        for (index, statement) in self.statements.iter().enumerate() {
            let mut complete = true;
            for name in &statement.names {
                if !variables.contains_key(*name) {
                    complete = false;
                    if !verdict.missing.contains(name) {
                        verdict.missing.push(name);
                    }
                }
            }
            if !complete {
                continue;
            }
            let text = if statement.names.is_empty() {
                Cow::Borrowed(statement.text)
            } else {
                match placeholder::substitute(statement.text, variables, TARGET_SYNTAXES) {
                    Ok(text) => text,
                    Err(PlaceholderError::InvalidValue { name, reason }) => {
                        // `name` is one of the statement's names; keep the borrowed one for the verdict.
                        if let Some(name) = statement.names.iter().find(|n| **n == name)
                            && !verdict.invalid.iter().any(|(n, _)| n == name)
                        {
                            verdict.invalid.push((name, reason));
                        }
                        continue;
                    }
                    // Every name was checked to be defined above, so this is not reached; were it, the
                    // statement could not run, which the missing names already say.
                    Err(PlaceholderError::Undefined { .. }) => continue,
                }
            };
            if self.checked
                && verdict.no_transaction.is_none()
                && let Some(what) = split::non_transactional(&text)
            {
                verdict.no_transaction = Some((index + 1, what));
            }
        }
        verdict
    }
}

/// One sentence summarising problems for an error message: the first few (up to 5) joined with `"; "`, then
/// `"(and N more)"` when there are more. Empty when there are none.
pub fn summarize(problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, problem) in problems.iter().take(SUMMARY_LIMIT).enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        // Writing to a `String` cannot fail.
        let _ = write!(out, "{problem}");
    }
    if problems.len() > SUMMARY_LIMIT {
        let _ = write!(out, " (and {} more)", problems.len() - SUMMARY_LIMIT);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::enums::Risk;

    fn key(s: &str) -> VersionKey {
        VersionKey::parse(s).unwrap()
    }

    fn keys(list: &[&str]) -> Vec<VersionKey> {
        list.iter().map(|s| key(s)).collect()
    }

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn pinned(up: &str, down: Option<&str>) -> PinnedChecksums {
        PinnedChecksums { up: Checksum::of(up), down: down.map(Checksum::of) }
    }

    // --- content_checksum ---

    /// `printf 'migrate-hub release v1\n001 <up> <down>\n2 <up> -\n' | sha256sum` with the checksums below.
    const TWO_ENTRIES_SHA256: &str = "9b21ba9aa9b541f5e18073f419e519a58c260023d67181a8a17668291fb5a979";

    #[test]
    fn content_checksum_is_the_documented_text() {
        let (k1, k2) = (key("001"), key("2"));
        let (p1, p2) = (pinned("CREATE TABLE a ();", Some("DROP TABLE a;")), pinned("CREATE TABLE b ();", None));
        let text = concat!(
            "migrate-hub release v1\n",
            "001 902f5c947b00294d6b0cdb41666553a31c51672ed6e65af6209e622790dce7b1 ",
            "937ae32e019abfd72940f6b09c76aa98b0a04ffd22f82d38a58c5cc7ba016f48\n",
            "2 82415ef6a49d008d43c44f90c4256a346375c6c3b0c51bbcef6fd15137b3e780 -\n",
        );
        let by_ring = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
        let checksum = content_checksum([(&k1, &p1), (&k2, &p2)]);
        assert_eq!(checksum.digest().as_slice(), by_ring.as_ref());
        assert_eq!(checksum.to_hex(), TWO_ENTRIES_SHA256);
        // The empty release is the header alone.
        let empty = ring::digest::digest(&ring::digest::SHA256, b"migrate-hub release v1\n");
        assert_eq!(content_checksum([]).digest().as_slice(), empty.as_ref());
    }

    #[test]
    fn run_content_covers_the_kind_and_its_parameters() {
        use crate::enums::{ForeignTool, Resolution};
        use crate::model::SeenRow;
        let (k1, k2) = (key("001"), key("002"));
        let (p1, p2) = (pinned("CREATE TABLE a ();", None), pinned("CREATE TABLE b ();", None));
        let entries = || [(&k1, &p1), (&k2, &p2)];
        // A release is exactly the release checksum (runs made before kinds keep theirs).
        assert_eq!(run_content(&RunAction::Release, entries()), content_checksum(entries()));
        let seen = SeenRow {
            status: "failed".into(),
            statements_done: 1,
            statements_total: 3,
            checksum: vec![7; 32],
            error: None,
        };
        let recovery = |resolution, seen: SeenRow| RunAction::Recovery { resolution, seen };
        let actions = [
            RunAction::Release,
            RunAction::Baseline,
            RunAction::Adopt { from: ForeignTool::Goose, table: None },
            RunAction::Adopt { from: ForeignTool::Goose, table: Some("public.goose_db_version".into()) },
            RunAction::Adopt { from: ForeignTool::Flyway, table: None },
            recovery(Resolution::Resume, seen.clone()),
            recovery(Resolution::MarkApplied, seen.clone()),
            recovery(Resolution::Resume, SeenRow { statements_done: 2, ..seen.clone() }),
            recovery(Resolution::Resume, SeenRow { checksum: vec![8; 32], ..seen.clone() }),
        ];
        let sums: Vec<Checksum> = actions.iter().map(|a| run_content(a, entries())).collect();
        for (i, a) in sums.iter().enumerate() {
            for b in &sums[i + 1..] {
                assert_ne!(a, b, "{:?}", actions[i]);
            }
        }
        // The error text is for people; it is not what the decision is about.
        let with_error = SeenRow { error: Some("boom".into()), ..seen.clone() };
        assert_eq!(
            run_content(&recovery(Resolution::Resume, with_error), entries()),
            run_content(&recovery(Resolution::Resume, seen), entries())
        );
        // The documented text of a baseline.
        let text = format!("migrate-hub baseline v1\n001 {} -\n002 {} -\n", p1.up.to_hex(), p2.up.to_hex());
        assert_eq!(run_content(&RunAction::Baseline, entries()), Checksum::of(&text));
    }

    #[test]
    fn content_checksum_changes_with_any_part() {
        let (k1, k2, k3) = (key("001"), key("002"), key("003"));
        let p1 = pinned("CREATE TABLE a ();", Some("DROP TABLE a;"));
        let p2 = pinned("CREATE TABLE b ();", Some("DROP TABLE b;"));
        let base = content_checksum([(&k1, &p1), (&k2, &p2)]);
        assert_eq!(base, content_checksum([(&k1, &p1), (&k2, &p2)]));
        let other_up = pinned("CREATE TABLE b (id int);", Some("DROP TABLE b;"));
        let other_down = pinned("CREATE TABLE b ();", Some("DROP TABLE IF EXISTS b;"));
        let no_down = pinned("CREATE TABLE b ();", None);
        let variants = [
            content_checksum([(&k1, &p1), (&k3, &p2)]),
            content_checksum([(&k1, &p1), (&k2, &other_up)]),
            content_checksum([(&k1, &p1), (&k2, &other_down)]),
            content_checksum([(&k1, &p1), (&k2, &no_down)]),
            content_checksum([(&k2, &p2), (&k1, &p1)]),
            content_checksum([(&k1, &p1)]),
            content_checksum([(&k1, &p1), (&k2, &p2), (&k2, &p2)]),
        ];
        for (i, variant) in variants.iter().enumerate() {
            assert_ne!(*variant, base, "variant {i}");
            assert!(variants[i + 1..].iter().all(|v| v != variant), "variant {i} repeats");
        }
    }

    // --- selection ---

    #[test]
    fn select_up_defaults_to_all_and_stops_at_up_to() {
        let list = keys(&["1", "2", "10", "20"]);
        assert_eq!(select_up(&list, None).unwrap(), [0, 1, 2, 3]);
        assert_eq!(select_up(&list, Some(&key("10"))).unwrap(), [0, 1, 2]);
        assert_eq!(select_up(&list, Some(&key("1"))).unwrap(), [0]);
        assert_eq!(select_up(&list, Some(&key("20"))).unwrap(), [0, 1, 2, 3]);
        let unknown = select_up(&list, Some(&key("3"))).unwrap_err();
        assert_eq!(unknown, SelectError::UnknownVersion { key: "3".to_owned() });
        assert_eq!(unknown.to_string(), "version 3 is not a migration of this project");
        // Leading zeros make a different key.
        assert!(matches!(select_up(&list, Some(&key("010"))), Err(SelectError::UnknownVersion { .. })));
        assert_eq!(select_up(&[], None).unwrap_err(), SelectError::Empty);
        assert!(matches!(select_up(&[], Some(&key("1"))), Err(SelectError::UnknownVersion { .. })));
    }

    #[test]
    fn select_down_reverts_above_down_to_newest_first() {
        let list = keys(&["1", "2", "10", "20"]);
        assert_eq!(select_down(&list, &key("1")).unwrap(), [3, 2, 1]);
        assert_eq!(select_down(&list, &key("2")).unwrap(), [3, 2]);
        assert_eq!(select_down(&list, &key("10")).unwrap(), [3]);
        assert_eq!(select_down(&list, &key("20")).unwrap_err(), SelectError::Empty);
        assert_eq!(select_down(&list, &key("5")).unwrap_err(), SelectError::UnknownVersion { key: "5".to_owned() });
        assert!(matches!(select_down(&[], &key("1")), Err(SelectError::UnknownVersion { .. })));
        assert!(!SelectError::Empty.to_string().is_empty());
    }

    // --- preflight ---

    const NO_LINT: &[ValidationMessage] = &[];

    fn version<'a>(key: &'a VersionKey, up: &'a str) -> PreflightVersion<'a> {
        PreflightVersion {
            version_key: key,
            up_sql: up,
            down_sql: Some("SELECT 1;"),
            transaction_mode: TransactionMode::Transaction,
            lint: NO_LINT,
        }
    }

    fn target<'a>(name: &'a str, engine: Engine, variables: &'a BTreeMap<String, String>) -> PreflightTarget<'a> {
        PreflightTarget { name, engine, variables }
    }

    fn lint(severity: Severity, direction: Direction, code: &str) -> ValidationMessage {
        ValidationMessage::check(severity, code, format!("{code} says no"), direction, None)
    }

    #[test]
    fn a_good_release_has_no_problems() {
        let (k1, k2) = (key("001"), key("002"));
        let warnings =
            [lint(Severity::Warning, Direction::Up, "prefer-bigint"), lint(Severity::Info, Direction::Up, "x")];
        let versions = [
            PreflightVersion { lint: &warnings, ..version(&k1, "CREATE TABLE ${schema}.a (id int);\n") },
            version(
                &k2,
                "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\nCOMMENT ON TABLE a IS 'x';",
            ),
        ];
        let (v1, v2) = (vars(&[("schema", "s1")]), vars(&[("schema", "s2"), ("other", "x")]));
        let targets = [target("pg", Engine::Postgres, &v1), target("my", Engine::Mysql, &v2)];
        assert_eq!(preflight(Direction::Up, &versions, &targets), []);
        assert_eq!(preflight(Direction::Down, &versions, &targets), []);
        assert_eq!(preflight(Direction::Up, &versions, &[]), []);
        assert_eq!(preflight(Direction::Up, &[], &targets), []);
    }

    #[test]
    fn missing_variables_name_version_and_target() {
        let k = key("005");
        let versions = [version(&k, "CREATE TABLE ${schema}.t (id int);\nGRANT SELECT ON ${schema}.t TO ${role};")];
        let (full, partial, none) = (vars(&[("schema", "s"), ("role", "r")]), vars(&[("schema", "s")]), vars(&[]));
        let targets = [
            target("t-01", Engine::Postgres, &full),
            target("t-02", Engine::Mysql, &partial),
            target("t-03", Engine::Postgres, &none),
        ];
        let problems = preflight(Direction::Up, &versions, &targets);
        let missing = |variable: &str, target: &str| Problem::MissingVariable {
            version_key: "005".to_owned(),
            variable: variable.to_owned(),
            target: target.to_owned(),
        };
        assert_eq!(problems, [missing("role", "t-02"), missing("schema", "t-03"), missing("role", "t-03")]);
        assert_eq!(problems[1].code().as_str(), "missing_variable");
        assert_eq!(problems[1].to_string(), "005 uses the placeholder variable `schema`, which target t-03 lacks");
    }

    #[test]
    fn river_templates_need_the_variable_too() {
        let k = key("005");
        let versions = [version(&k, "SELECT to_regclass('/* TEMPLATE: schema */river_migration');")];
        let (set, empty, unset) = (vars(&[("schema", "river")]), vars(&[("schema", "")]), vars(&[]));
        let targets = [
            target("a", Engine::Postgres, &set),
            target("b", Engine::Postgres, &empty),
            target("c", Engine::Postgres, &unset),
        ];
        // The worker refuses an undefined name whatever the syntax; an empty value is a defined one.
        assert_eq!(
            preflight(Direction::Up, &versions, &targets),
            [Problem::MissingVariable { version_key: "005".into(), variable: "schema".into(), target: "c".into() }]
        );
    }

    #[test]
    fn values_that_cannot_be_substituted_are_problems() {
        let k = key("007");
        let versions = [version(&k, "CREATE TABLE /* TEMPLATE: schema */t ();\nSELECT ${limit};")];
        let (good, bad_schema, bad_limit) = (
            vars(&[("schema", "s"), ("limit", "500")]),
            vars(&[("schema", "500"), ("limit", "500")]),
            vars(&[("schema", "s"), ("limit", "1; DROP TABLE users")]),
        );
        let targets = [
            target("good", Engine::Postgres, &good),
            target("bad-schema", Engine::Postgres, &bad_schema),
            target("bad-limit", Engine::Mysql, &bad_limit),
        ];
        let problems = preflight(Direction::Up, &versions, &targets);
        let names: Vec<(&str, &str, &str)> = problems
            .iter()
            .map(|p| match p {
                Problem::InvalidVariable { variable, target, .. } => {
                    (p.code().as_str(), variable.as_str(), target.as_str())
                }
                other => panic!("unexpected {other}"),
            })
            .collect();
        assert_eq!(names, [("invalid_variable", "schema", "bad-schema"), ("invalid_variable", "limit", "bad-limit")]);
        assert!(
            problems[1].to_string().starts_with("007 uses the placeholder variable `limit`, whose value on target")
        );
        assert!(!problems[1].to_string().contains("DROP"), "the value is never repeated");
    }

    #[test]
    fn statements_refused_in_a_postgres_transaction() {
        let k = key("010");
        let sql = "CREATE TABLE t (id int);\nCREATE INDEX CONCURRENTLY t_id ON t (id);\nDROP INDEX CONCURRENTLY x;";
        let tx = [version(&k, sql)];
        let none = [PreflightVersion { transaction_mode: TransactionMode::None, ..version(&k, sql) }];
        let empty = vars(&[]);
        let pg: Vec<_> = (0..3).map(|i| target(["p1", "p2", "p3"][i], Engine::Postgres, &empty)).collect();
        let my = [target("m", Engine::Mysql, &empty)];
        let problems = preflight(Direction::Up, &tx, &pg);
        // The first offending statement, as the worker reports it, once for every Postgres target.
        assert_eq!(
            problems,
            [Problem::NeedsNoTransaction {
                version_key: "010".into(),
                statement: 2,
                what: "CREATE INDEX CONCURRENTLY"
            }]
        );
        assert_eq!(problems[0].code().as_str(), "needs_no_transaction");
        assert_eq!(
            problems[0].to_string(),
            "010 runs in a transaction, but its statement 2 (CREATE INDEX CONCURRENTLY) cannot run inside one on \
             Postgres; set its transaction mode to none"
        );
        assert_eq!(preflight(Direction::Up, &tx, &my), []);
        assert_eq!(preflight(Direction::Up, &none, &pg), []);
    }

    #[test]
    fn the_transaction_check_sees_the_substituted_text() {
        let k = key("011");
        let versions = [version(&k, "${verb} INDEX CONCURRENTLY i ON t (id);")];
        let (create, other) = (vars(&[("verb", "CREATE")]), vars(&[("verb", "ANALYZE")]));
        let targets = [target("a", Engine::Postgres, &other), target("b", Engine::Postgres, &create)];
        let problems = preflight(Direction::Up, &versions, &targets);
        assert_eq!(
            problems,
            [Problem::NeedsNoTransaction {
                version_key: "011".into(),
                statement: 1,
                what: "CREATE INDEX CONCURRENTLY"
            }]
        );
    }

    #[test]
    fn a_down_release_needs_down_scripts() {
        let (k1, k2) = (key("001"), key("002"));
        let versions = [version(&k2, "CREATE TABLE b ();"), PreflightVersion { down_sql: None, ..version(&k1, "x") }];
        let empty = vars(&[]);
        let targets = [target("t", Engine::Postgres, &empty), target("u", Engine::Mysql, &empty)];
        let problems = preflight(Direction::Down, &versions, &targets);
        assert_eq!(problems, [Problem::NoDown { version_key: "001".into() }]);
        assert_eq!(problems[0].code().as_str(), "no_down");
        assert_eq!(problems[0].to_string(), "001 has no down script, so it cannot be reverted");
        assert_eq!(preflight(Direction::Up, &versions, &targets), []);
    }

    #[test]
    fn split_errors_are_reported_once_per_engine() {
        let k = key("003");
        let versions = [version(&k, "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1;")];
        let empty = vars(&[]);
        let targets = [
            target("m1", Engine::Mysql, &empty),
            target("p1", Engine::Postgres, &empty),
            target("p2", Engine::Postgres, &empty),
        ];
        let problems = preflight(Direction::Up, &versions, &targets);
        assert_eq!(problems.len(), 1, "{problems:?}");
        let Problem::Split { version_key, engine, message } = &problems[0] else { panic!("{problems:?}") };
        assert_eq!((version_key.as_str(), *engine), ("003", Engine::Postgres));
        assert!(message.starts_with("line 1, column "), "{message}");
        assert_eq!(problems[0].code().as_str(), "split_error");
        assert!(problems[0].to_string().starts_with("003 cannot be split into statements for postgres: line 1"));
    }

    fn finding(severity: Severity, direction: Direction, code: &str, engine: Option<Engine>) -> ValidationMessage {
        ValidationMessage { line: Some(3), column: Some(1), engine, ..lint(severity, direction, code) }
    }

    #[test]
    fn the_review_keeps_the_findings_of_the_direction_and_engines_less_switched_off_rules() {
        let (k1, k2) = (key("004"), key("005"));
        let first = [
            finding(Severity::Warning, Direction::Up, "ban-drop-column", Some(Engine::Postgres)),
            finding(Severity::Warning, Direction::Up, "prefer-text-field", Some(Engine::Postgres)),
            finding(Severity::Error, Direction::Down, "syntax-error", Some(Engine::Postgres)),
            // A check message, not a finding: never in the review.
            lint(Severity::Warning, Direction::Up, "not_atomic"),
        ];
        let second = [finding(Severity::Warning, Direction::Up, "update-without-where", Some(Engine::Mysql))];
        let versions = [
            PreflightVersion { lint: &first, ..version(&k1, "ALTER TABLE t DROP COLUMN c;") },
            PreflightVersion { lint: &second, ..version(&k2, "UPDATE t SET a = 1;") },
        ];
        let codes = |r: &RunReview| r.findings.iter().map(|f| f.message.code.clone()).collect::<Vec<_>>();
        let pg = review(Direction::Up, &versions, &[Engine::Postgres], &[]);
        assert_eq!(
            (codes(&pg), pg.risk),
            (vec!["ban-drop-column".to_owned(), "prefer-text-field".to_owned()], Risk::High)
        );
        assert_eq!(pg.findings[0].version_key, "004");
        let off = review(Direction::Up, &versions, &[Engine::Postgres], &["ban-drop-column".to_owned()]);
        assert_eq!((codes(&off), off.risk), (vec!["prefer-text-field".to_owned()], Risk::Medium));
        let both = review(Direction::Up, &versions, &[Engine::Postgres, Engine::Mysql], &[]);
        assert_eq!(both.findings.len(), 3);
        let down = review(Direction::Down, &versions, &[Engine::Postgres], &[]);
        assert_eq!((codes(&down), down.risk), (vec!["syntax-error".to_owned()], Risk::High));
        assert_eq!(review(Direction::Down, &versions, &[Engine::Mysql], &[]).risk, Risk::Low);
    }

    #[test]
    fn the_policy_blocks_errors_warnings_or_nothing() {
        let k = key("004");
        let mut ignored = finding(Severity::Info, Direction::Up, "ban-drop-table", None);
        ignored.ignored = true;
        let messages = [
            finding(Severity::Warning, Direction::Up, "prefer-text-field", None),
            finding(Severity::Error, Direction::Up, "syntax-error", None),
            ignored,
        ];
        let versions = [PreflightVersion { lint: &messages, ..version(&k, "CREAT TABLE t ();") }];
        let found = review(Direction::Up, &versions, &[Engine::Postgres], &[]);
        assert_eq!(found.findings.len(), 3);
        let on_error = blocking(&found, LintBlock::Error);
        assert_eq!(on_error.len(), 1, "{on_error:?}");
        assert_eq!(on_error[0].code().as_str(), "lint_error");
        assert_eq!(on_error[0].to_string(), "004 has the SQL review error syntax-error: line 3: syntax-error says no");
        let on_warning = blocking(&found, LintBlock::Warning);
        assert_eq!(on_warning.iter().map(|p| p.code().as_str()).collect::<Vec<_>>(), ["lint_error", "lint_warning"]);
        assert!(blocking(&found, LintBlock::Never).is_empty());
    }

    #[test]
    fn problems_are_ordered_by_version_then_target() {
        let (k1, k2) = (key("1"), key("2"));
        let messages = [lint(Severity::Error, Direction::Up, "rule")];
        let versions = [
            PreflightVersion { lint: &messages, ..version(&k1, "SELECT ${a};\nVACUUM;") },
            version(&k2, "SELECT ${b};"),
        ];
        let (has_a, has_b) = (vars(&[("a", "x")]), vars(&[("b", "y")]));
        let targets = [target("x", Engine::Postgres, &has_b), target("y", Engine::Postgres, &has_a)];
        let codes: Vec<(&str, String)> = preflight(Direction::Up, &versions, &targets)
            .iter()
            .map(|p| {
                let target = match p {
                    Problem::MissingVariable { target, .. } => target.clone(),
                    _ => String::new(),
                };
                (p.code().as_str(), target)
            })
            .collect();
        assert_eq!(
            codes,
            [
                ("missing_variable", "x".to_owned()),
                ("needs_no_transaction", String::new()),
                ("missing_variable", "y".to_owned()),
            ]
        );
    }

    #[test]
    fn thousands_of_targets() {
        let k = key("001");
        let versions =
            [version(&k, "CREATE TABLE /* TEMPLATE: schema */t ();\nCREATE INDEX CONCURRENTLY i ON t (id);")];
        let maps: Vec<BTreeMap<String, String>> =
            (0..5000).map(|i| if i % 1000 == 7 { vars(&[]) } else { vars(&[("schema", "tenant")]) }).collect();
        let targets: Vec<_> = maps.iter().map(|m| target("t", Engine::Postgres, m)).collect();
        let problems = preflight(Direction::Up, &versions, &targets);
        assert_eq!(problems.iter().filter(|p| p.code().as_str() == "missing_variable").count(), 5);
        assert_eq!(problems.iter().filter(|p| p.code().as_str() == "needs_no_transaction").count(), 1);
    }

    // --- summarize ---

    #[test]
    fn summarize_names_the_first_five() {
        let problem = |i: usize| Problem::NoDown { version_key: format!("{i:03}") };
        assert_eq!(summarize(&[]), "");
        assert_eq!(summarize(&[problem(1)]), "001 has no down script, so it cannot be reverted");
        let five: Vec<Problem> = (1..=5).map(problem).collect();
        assert_eq!(summarize(&five).matches("; ").count(), 4);
        assert!(!summarize(&five).contains("more"));
        let eight: Vec<Problem> = (1..=8).map(problem).collect();
        let summary = summarize(&eight);
        assert!(summary.starts_with("001 has no down script, so it cannot be reverted; 002 has"), "{summary}");
        assert!(summary.ends_with("005 has no down script, so it cannot be reverted (and 3 more)"), "{summary}");
        assert!(!summary.contains("006"));
    }
}
