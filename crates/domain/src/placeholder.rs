//! Per-target variables substituted into migration SQL right before it runs.
//!
//! Two syntaxes are understood, each opted into per project:
//! - [`Syntax::DollarBraces`]: Flyway's `${name}`, replaced by the variable's value; an undefined name is an
//!   error (running `${schema}` literally would fail later, or worse, succeed somewhere unintended).
//! - [`Syntax::RiverTemplate`]: River's `/* TEMPLATE: name */` qualifier marker, replaced by `value.` when the
//!   variable is set and by nothing when it is not (the objects then land in the `search_path` schema). The
//!   marker is honoured everywhere, inside string literals too: River's migration 005 calls
//!   `to_regclass('/* TEMPLATE: schema */river_migration')`, which is why it fails in sqlx-cli and psql.
//!
//! - [`Syntax::GoTemplate`]: the Go-template options pop/fizz render, `{{ index .Options "name" }}`, replaced
//!   like `${name}` (an undefined name is an error).
//!
//! Checksums are always taken over the text *before* substitution, so one approval covers every target
//! whatever its variables. To make substitution unable to inject SQL, a substituted value must be a plain
//! identifier (`[A-Za-z_][A-Za-z0-9_]*`, at most 63 characters) or an unsigned integer; anything else is
//! refused before a statement runs.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::values::Identifier;

/// A placeholder syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Syntax {
    /// `${name}`.
    DollarBraces,
    /// `/* TEMPLATE: name */`, a schema qualifier.
    RiverTemplate,
    /// `{{ index .Options "name" }}` (pop/fizz).
    GoTemplate,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceholderError {
    #[error("line {line}: placeholder {name:?} has no value for this target")]
    Undefined { name: String, line: u32 },
    #[error("variable {name:?} cannot be substituted: {reason}")]
    InvalidValue { name: String, reason: &'static str },
}

const RIVER_OPEN: &str = "/* TEMPLATE: ";
const RIVER_CLOSE: &str = " */";

/// Replaces the placeholders of `syntaxes` in `sql` with `variables`. Returns the text unchanged (borrowed)
/// when it has none.
pub fn substitute<'a>(
    sql: &'a str,
    variables: &BTreeMap<String, String>,
    syntaxes: &[Syntax],
) -> Result<Cow<'a, str>, PlaceholderError> {
    let mut out = String::new();
    let mut copied = 0;
    for found in scan(sql, syntaxes) {
        let value = variables.get(found.name);
        let replacement = match (found.syntax, value) {
            (Syntax::DollarBraces | Syntax::GoTemplate, Some(value)) => checked(found.name, value)?.to_owned(),
            (Syntax::DollarBraces | Syntax::GoTemplate, None) => {
                return Err(PlaceholderError::Undefined {
                    name: found.name.to_owned(),
                    line: line_of(sql, found.start),
                });
            }
            (Syntax::RiverTemplate, Some(value)) if !value.is_empty() => {
                Identifier::parse(value.as_str()).map_err(|_| PlaceholderError::InvalidValue {
                    name: found.name.to_owned(),
                    reason: "a schema qualifier must be a plain identifier",
                })?;
                format!("{value}.")
            }
            (Syntax::RiverTemplate, _) => String::new(),
        };
        out.push_str(&sql[copied..found.start]);
        out.push_str(&replacement);
        copied = found.end;
    }
    if copied == 0 {
        return Ok(Cow::Borrowed(sql));
    }
    out.push_str(&sql[copied..]);
    Ok(Cow::Owned(out))
}

/// The variable names `sql` refers to, in order of first use (to tell an importer what a migration needs).
pub fn referenced<'a>(sql: &'a str, syntaxes: &[Syntax]) -> Vec<&'a str> {
    let mut names: Vec<&str> = Vec::new();
    for found in scan(sql, syntaxes) {
        if !names.contains(&found.name) {
            names.push(found.name);
        }
    }
    names
}

fn checked<'v>(name: &str, value: &'v str) -> Result<&'v str, PlaceholderError> {
    let identifier = Identifier::parse(value).is_ok();
    let integer = !value.is_empty() && value.len() <= 20 && value.bytes().all(|b| b.is_ascii_digit());
    if identifier || integer {
        Ok(value)
    } else {
        Err(PlaceholderError::InvalidValue {
            name: name.to_owned(),
            reason: "values must be plain identifiers or unsigned integers, so they can never change the SQL around them",
        })
    }
}

fn line_of(sql: &str, offset: usize) -> u32 {
    u32::try_from(sql[..offset].bytes().filter(|b| *b == b'\n').count() + 1).unwrap_or(u32::MAX)
}

#[derive(Debug)]
struct Found<'a> {
    syntax: Syntax,
    name: &'a str,
    start: usize,
    end: usize,
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Every placeholder in text order. Text that only looks like the start of one (`${` without a valid name
/// and `}`) is left alone.
fn scan<'a>(sql: &'a str, syntaxes: &[Syntax]) -> Vec<Found<'a>> {
    let dollar = syntaxes.contains(&Syntax::DollarBraces);
    let river = syntaxes.contains(&Syntax::RiverTemplate);
    let go = syntaxes.contains(&Syntax::GoTemplate);
    let mut found = Vec::new();
    let mut at = 0;
    while at < sql.len() {
        let rest = &sql[at..];
        if go
            && rest.starts_with("{{")
            && let Some((name, end)) = go_option(rest)
        {
            found.push(Found { syntax: Syntax::GoTemplate, name, start: at, end: at + end });
            at += end;
            continue;
        }
        if dollar
            && rest.starts_with("${")
            && let Some(close) = rest[2..].find('}')
            && is_name(&rest[2..2 + close])
        {
            found.push(Found {
                syntax: Syntax::DollarBraces,
                name: &rest[2..2 + close],
                start: at,
                end: at + close + 3,
            });
            at += close + 3;
            continue;
        }
        if river
            && rest.starts_with(RIVER_OPEN)
            && let Some(close) = rest[RIVER_OPEN.len()..].find(RIVER_CLOSE)
            && is_name(&rest[RIVER_OPEN.len()..RIVER_OPEN.len() + close])
        {
            let end = RIVER_OPEN.len() + close + RIVER_CLOSE.len();
            found.push(Found {
                syntax: Syntax::RiverTemplate,
                name: &rest[RIVER_OPEN.len()..RIVER_OPEN.len() + close],
                start: at,
                end: at + end,
            });
            at += end;
            continue;
        }
        at += rest.chars().next().map_or(1, char::len_utf8);
    }
    found
}

/// `{{ index .Options "name" }}` at the start of `text` (spaces inside the braces optional): the name and
/// the length of the whole action.
fn go_option(text: &str) -> Option<(&str, usize)> {
    let inner = text.strip_prefix("{{")?;
    let close = inner.find("}}")?;
    let action = inner[..close].trim();
    let rest = action.strip_prefix("index")?;
    let rest = rest.strip_prefix(char::is_whitespace)?.trim_start();
    let rest = rest.strip_prefix(".Options")?;
    let name = rest.strip_prefix(char::is_whitespace)?.trim().strip_prefix('"')?.strip_suffix('"')?;
    is_name(name).then_some((name, 2 + close + 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::Checksum;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    const BOTH: &[Syntax] = &[Syntax::DollarBraces, Syntax::RiverTemplate];

    #[test]
    fn dollar_braces_are_replaced_and_must_be_defined() {
        let sql = "CREATE TABLE ${schema}.t (id int);\nGRANT SELECT ON ${schema}.t TO ${role};";
        let out = substitute(sql, &vars(&[("schema", "tenant_7"), ("role", "reader")]), BOTH).unwrap();
        assert_eq!(out, "CREATE TABLE tenant_7.t (id int);\nGRANT SELECT ON tenant_7.t TO reader;");
        let missing = substitute(sql, &vars(&[("schema", "tenant_7")]), BOTH).unwrap_err();
        assert_eq!(missing, PlaceholderError::Undefined { name: "role".into(), line: 2 });
    }

    #[test]
    fn river_templates_qualify_or_vanish() {
        let sql = "IF (SELECT to_regclass('/* TEMPLATE: schema */river_migration') IS NOT NULL) THEN";
        assert_eq!(
            substitute(sql, &vars(&[("schema", "river")]), BOTH).unwrap(),
            "IF (SELECT to_regclass('river.river_migration') IS NOT NULL) THEN"
        );
        assert_eq!(
            substitute(sql, &vars(&[]), BOTH).unwrap(),
            "IF (SELECT to_regclass('river_migration') IS NOT NULL) THEN"
        );
    }

    #[test]
    fn values_cannot_inject_sql() {
        for bad in ["x; DROP TABLE users", "a b", "'quoted'", "x--", "9x"] {
            let err = substitute("SELECT ${v}", &vars(&[("v", bad)]), BOTH).unwrap_err();
            assert!(matches!(err, PlaceholderError::InvalidValue { .. }), "{bad}: {err}");
        }
        assert_eq!(substitute("LIMIT ${n}", &vars(&[("n", "500")]), BOTH).unwrap(), "LIMIT 500");
        let err = substitute("/* TEMPLATE: schema */t", &vars(&[("schema", "a.b")]), BOTH).unwrap_err();
        assert!(matches!(err, PlaceholderError::InvalidValue { .. }));
    }

    #[test]
    fn only_the_chosen_syntaxes_and_only_well_formed_placeholders() {
        let sql = "SELECT '${not_a_placeholder' , '${}', '${1x}', /* TEMPLATE: schema */t";
        assert_eq!(substitute(sql, &vars(&[]), &[Syntax::DollarBraces]).unwrap(), sql);
        assert!(matches!(substitute(sql, &vars(&[]), &[Syntax::DollarBraces]).unwrap(), Cow::Borrowed(_)));
        assert_eq!(referenced("${a} ${b} ${a} /* TEMPLATE: s */x", BOTH), ["a", "b", "s"]);
        assert_eq!(referenced("${a}", &[]), Vec::<&str>::new());
    }

    #[test]
    fn one_template_gives_each_target_its_own_text() {
        let sql = "CREATE TABLE ${schema}.t ();";
        let a = substitute(sql, &vars(&[("schema", "a")]), BOTH).unwrap();
        let b = substitute(sql, &vars(&[("schema", "b")]), BOTH).unwrap();
        assert_eq!((a.as_ref(), b.as_ref()), ("CREATE TABLE a.t ();", "CREATE TABLE b.t ();"));
        // Approvals pin the checksum of the template, which no target's text equals.
        assert_ne!(Checksum::of(&a), Checksum::of(sql));
    }

    #[test]
    fn go_template_options_are_replaced_and_must_be_defined() {
        let go = &[Syntax::GoTemplate];
        let sql =
            "CREATE TABLE {{ index .Options \"Namespace\" }}.t ();\nGRANT ALL ON t TO {{index .Options \"Role\"}};";
        let out = substitute(sql, &vars(&[("Namespace", "kratos"), ("Role", "app")]), go).unwrap();
        assert_eq!(out, "CREATE TABLE kratos.t ();\nGRANT ALL ON t TO app;");
        let missing = substitute(sql, &vars(&[("Namespace", "kratos")]), go).unwrap_err();
        assert_eq!(missing, PlaceholderError::Undefined { name: "Role".into(), line: 2 });
        assert_eq!(referenced(sql, go), ["Namespace", "Role"]);
        // Other actions and malformed ones are left alone.
        for other in ["{{ .Name }}", "{{ index .Options Namespace }}", "{{ index .Options \"a b\" }}", "{{"] {
            assert_eq!(substitute(other, &vars(&[]), go).unwrap(), other);
        }
        let err = substitute("{{ index .Options \"n\" }}", &vars(&[("n", "x; DROP")]), go).unwrap_err();
        assert!(matches!(err, PlaceholderError::InvalidValue { .. }));
    }

    #[test]
    fn multibyte_text_is_walked_safely() {
        let sql = "SELECT 'é€😀' || '${x}'";
        assert_eq!(substitute(sql, &vars(&[("x", "y")]), BOTH).unwrap(), "SELECT 'é€😀' || 'y'");
    }

    #[test]
    fn river_workload_substitutes_cleanly() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/workloads/river/riverdriver/riverpgxv5/migration/main"
        );
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("workload {dir} missing: {e}"));
        let mut markers = 0;
        for entry in entries {
            let sql = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            markers += referenced(&sql, &[Syntax::RiverTemplate]).len().min(1);
            let out = substitute(&sql, &vars(&[("schema", "river")]), &[Syntax::RiverTemplate]).unwrap();
            assert!(!out.contains("TEMPLATE"));
        }
        assert!(markers >= 10, "river files with markers: {markers}");
    }
}
