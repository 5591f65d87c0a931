//! SQL as people read it: numbered lines with keywords, strings and comments marked, the statement split,
//! and the difference between two versions.
//!
//! The highlighter is a small lexer for display only (it never decides anything about the SQL): keywords,
//! quoted strings and identifiers, `--` and `/* */` comments across lines, and numbers. Everything is
//! escaped by maud; the markup is spans with classes.

use domain::model::StatementRange;
use maud::{Markup, html};

/// Words shown as keywords.
const KEYWORDS: &[&str] = &[
    "add",
    "after",
    "all",
    "alter",
    "and",
    "as",
    "asc",
    "begin",
    "between",
    "by",
    "cascade",
    "case",
    "check",
    "collate",
    "column",
    "commit",
    "concurrently",
    "constraint",
    "create",
    "default",
    "delete",
    "desc",
    "distinct",
    "drop",
    "else",
    "end",
    "engine",
    "exists",
    "extension",
    "foreign",
    "from",
    "function",
    "grant",
    "group",
    "having",
    "if",
    "in",
    "index",
    "insert",
    "into",
    "is",
    "join",
    "key",
    "left",
    "like",
    "limit",
    "not",
    "null",
    "on",
    "or",
    "order",
    "primary",
    "procedure",
    "references",
    "rename",
    "replace",
    "restrict",
    "returns",
    "revoke",
    "rollback",
    "schema",
    "select",
    "sequence",
    "set",
    "table",
    "then",
    "to",
    "transaction",
    "trigger",
    "type",
    "unique",
    "update",
    "using",
    "values",
    "view",
    "when",
    "where",
    "with",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Normal,
    BlockComment,
    Quoted(char),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Keyword,
    Str,
    Comment,
    Number,
}

fn class(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Plain => None,
        Kind::Keyword => Some("kw"),
        Kind::Str => Some("str"),
        Kind::Comment => Some("com"),
        Kind::Number => Some("numlit"),
    }
}

/// Splits one line into classified pieces, carrying comment and quote state to the next line.
fn lex_line<'a>(line: &'a str, state: &mut State) -> Vec<(Kind, &'a str)> {
    let mut out = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        match *state {
            State::BlockComment => {
                match line[i..].find("*/") {
                    Some(end) => {
                        i += end + 2;
                        *state = State::Normal;
                    }
                    None => i = bytes.len(),
                }
                out.push((Kind::Comment, &line[start..i]));
            }
            State::Quoted(quote) => {
                while i < bytes.len() {
                    if bytes[i] == quote as u8 {
                        if bytes.get(i + 1) == Some(&(quote as u8)) {
                            i += 2;
                            continue;
                        }
                        i += 1;
                        *state = State::Normal;
                        break;
                    }
                    i += 1;
                }
                let kind = if quote == '\'' { Kind::Str } else { Kind::Plain };
                out.push((kind, &line[start..i]));
            }
            State::Normal => {
                let rest = &line[i..];
                if rest.starts_with("--") || rest.starts_with('#') {
                    out.push((Kind::Comment, rest));
                    i = bytes.len();
                } else if rest.starts_with("/*") {
                    *state = State::BlockComment;
                    i += 2;
                    match line[i..].find("*/") {
                        Some(end) => {
                            i += end + 2;
                            *state = State::Normal;
                        }
                        None => i = bytes.len(),
                    }
                    out.push((Kind::Comment, &line[start..i]));
                } else if matches!(bytes[i], b'\'' | b'"' | b'`') {
                    // The opening quote is consumed by the quoted state on this same pass.
                    *state = State::Quoted(bytes[i] as char);
                    let mut j = i + 1;
                    let quote = bytes[i];
                    while j < bytes.len() {
                        if bytes[j] == quote {
                            if bytes.get(j + 1) == Some(&quote) {
                                j += 2;
                                continue;
                            }
                            j += 1;
                            *state = State::Normal;
                            break;
                        }
                        j += 1;
                    }
                    let kind = if quote == b'\'' { Kind::Str } else { Kind::Plain };
                    out.push((kind, &line[start..j]));
                    i = j;
                } else if bytes[i].is_ascii_alphabetic() || bytes[i] == b'_' {
                    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                        i += 1;
                    }
                    let word = &line[start..i];
                    let keyword = KEYWORDS.binary_search(&word.to_ascii_lowercase().as_str()).is_ok();
                    out.push((if keyword { Kind::Keyword } else { Kind::Plain }, word));
                } else if bytes[i].is_ascii_digit() {
                    while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                        i += 1;
                    }
                    out.push((Kind::Number, &line[start..i]));
                } else {
                    // Anything else up to the next interesting byte, kept whole (UTF-8 safe: we stop only on
                    // ASCII bytes).
                    i += 1;
                    while i < bytes.len()
                        && !bytes[i].is_ascii_alphanumeric()
                        && !matches!(bytes[i], b'_' | b'\'' | b'"' | b'`' | b'-' | b'/' | b'#')
                    {
                        i += 1;
                    }
                    while !line.is_char_boundary(i) {
                        i += 1;
                    }
                    out.push((Kind::Plain, &line[start..i]));
                }
            }
        }
    }
    out
}

/// SQL with numbered, highlighted lines.
pub(crate) fn code(sql: &str, label: &str) -> Markup {
    let mut state = State::Normal;
    html! {
        pre.code role="region" aria-label=(label) {
            code {
                @for line in sql.lines() {
                    span.line {
                        @for (kind, text) in lex_line(line, &mut state) {
                            @match class(kind) {
                                Some(class) => span class=(class) { (text) },
                                None => (text),
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The statements of `sql`, numbered as the engine numbers them in logs and errors.
pub(crate) fn statements(sql: &str, ranges: &[StatementRange]) -> Markup {
    html! {
        @if ranges.is_empty() {
            p.empty { "No statements." }
        } @else {
            ol.statements {
                @for range in ranges {
                    li {
                        pre { (sql.get(range.start as usize..range.end as usize).unwrap_or_default().trim()) }
                    }
                }
            }
        }
    }
}

/// A line diff from `old` to `new`.
pub(crate) fn diff(old: &str, new: &str) -> Markup {
    use similar::{ChangeTag, TextDiff};
    let diff = TextDiff::from_lines(old, new);
    let changed = diff.ops().iter().any(|op| !matches!(op.tag(), similar::DiffTag::Equal));
    html! {
        @if !changed {
            p.empty { "No difference." }
        } @else {
            pre.diff {
                code {
                    @for change in diff.iter_all_changes() {
                        @let text = change.value().trim_end_matches('\n');
                        @match change.tag() {
                            ChangeTag::Insert => span.add { "+ " (text) },
                            ChangeTag::Delete => span.del { "- " (text) },
                            ChangeTag::Equal => span.ctx { "  " (text) },
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(line: &str, state: &mut State) -> Vec<(Kind, String)> {
        lex_line(line, state).into_iter().map(|(k, t)| (k, t.to_owned())).collect()
    }

    #[test]
    fn keywords_are_sorted_for_the_binary_search() {
        let mut sorted = KEYWORDS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, KEYWORDS);
    }

    #[test]
    fn lines_are_split_into_their_kinds_and_rejoin_to_the_same_text() {
        let mut state = State::Normal;
        let line = "CREATE TABLE \"Ünïcode\" (id int DEFAULT 42, s text DEFAULT 'it''s') -- done";
        let pieces = kinds(line, &mut state);
        assert_eq!(pieces.iter().map(|(_, t)| t.as_str()).collect::<String>(), line);
        assert_eq!(pieces[0], (Kind::Keyword, "CREATE".to_owned()));
        assert!(pieces.contains(&(Kind::Str, "'it''s'".to_owned())));
        assert!(pieces.contains(&(Kind::Number, "42".to_owned())));
        assert_eq!(pieces.last().map(|p| p.0), Some(Kind::Comment));
        assert_eq!(state, State::Normal);
    }

    #[test]
    fn comments_and_strings_carry_over_lines() {
        let mut state = State::Normal;
        kinds("SELECT 1; /* a", &mut state);
        assert_eq!(state, State::BlockComment);
        let next = kinds("b */ SELECT 'x", &mut state);
        assert_eq!(next[0], (Kind::Comment, "b */".to_owned()));
        assert_eq!(state, State::Quoted('\''));
        let last = kinds("y' AS t", &mut state);
        assert_eq!(last[0], (Kind::Str, "y'".to_owned()));
        assert_eq!(state, State::Normal);
    }
}
