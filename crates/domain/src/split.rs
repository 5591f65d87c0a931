//! Splitting a migration's SQL text into the statements that are sent to the server one at a time.
//!
//! A target runs a migration statement by statement: MySQL has no multi-statement transactions for DDL
//! anyway, and the per-statement journal of SPEC §5 (statements done / total, the failing statement)
//! needs statement boundaries. Those boundaries are where the database's own client would put them:
//! psql for Postgres, the mysql client for MySQL and MariaDB. [`split`] returns them as byte ranges of
//! the original text rather than copies, so every statement can be shown where it is in its file, and
//! [`ranges`] turns them into the `StatementRange`s stored with a migration version.
//!
//! # Why a lexer
//!
//! A `;` ends a statement only outside quotes, comments and procedural bodies, and only a lexer knows
//! which is which. Splitting on `;` with a regular expression, or line by line, is the classic failure:
//! naive splitters cut `$$ … $$` function bodies at their inner semicolons, the class of bug reported
//! in goose (#231), golang-migrate (#590) and Flyway (#1238); and a token-level split of a MySQL
//! procedure with sqlparser finds 4 `;` for 2 statements, while its parser rejects `DELIMITER` and
//! `CREATE PROCEDURE … BEGIN … END` (notes G21). So this module implements the lexical rules of each
//! dialect, in one pass and in linear time, and tracks just enough structure to keep a body whole:
//!
//! * **Postgres**: `--` comments, nested `/* /* */ */` comments, `'…'` strings with `''`, `E'…'`
//!   strings with backslash escapes, `"…"` identifiers, dollar quotes `$$…$$` and `$tag$…$tag$` (but
//!   `$1` is a parameter). Like psql, a `;` inside parentheses does not split (`CREATE RULE … DO (a; b)`),
//!   and in `CREATE [OR REPLACE] FUNCTION|PROCEDURE` the SQL-standard body `BEGIN ATOMIC … END` stays
//!   whole, counting the `END` of each `CASE` expression inside it.
//! * **MySQL / MariaDB**: `-- ` comments (only with a space or control character after `--`, as in
//!   MySQL), `#` comments, `/* */` comments (not nested), `/*! … */` and `/*M! … */` version comments,
//!   which are code and stay whole; `'…'` and `"…"` strings with backslash escapes and doubled quotes;
//!   `` `…` `` identifiers. Client-side `DELIMITER xyz` lines are obeyed as the mysql client does
//!   (they are not statements and are never sent), and with the default `;` the compound body of
//!   `CREATE PROCEDURE|FUNCTION|TRIGGER|EVENT … BEGIN … END` stays whole even without a `DELIMITER`
//!   line, as MariaDB and tools that send files whole accept it. Inside such a body the blocks
//!   `BEGIN … END`, `IF … END IF`, `CASE … END [CASE]`, `LOOP`, `WHILE`, `REPEAT` and MariaDB's `FOR`
//!   are counted; a plain `BEGIN;`, `BEGIN WORK;` or `XA BEGIN …;` stays a statement of its own.
//!
//! Input it cannot split safely is an error with the line and column where the construct began: an
//! unterminated string, identifier, dollar quote, comment or version comment, a `DELIMITER` line with no
//! delimiter, and a body or parenthesis still open at the end of the text. Sending the rest of the file
//! as one statement would fail on the server anyway, later and with a worse message.
//!
//! Deliberate limits: Postgres is lexed with `standard_conforming_strings = on` (the default since 9.1)
//! and MySQL without `NO_BACKSLASH_ESCAPES` or `ANSI_QUOTES`; psql and mysql backslash commands are not
//! supported; a MySQL `DELIMITER` line is recognised only where a statement could begin, so a column
//! named `delimiter` at the start of a line inside a statement is not mistaken for one.
//!
//! # Testing
//!
//! The tests (in `split/tests.rs`) split the real migration sets under `../shared/workloads` and run
//! property tests. The property tests take 2,000 cases each by default; `PROPTEST_CASES` overrides that,
//! and `PROPTEST_CASES=1000000 cargo test --release -p migrate-hub-domain split::` is the one-million-case
//! fuzz run (no panic on any input, and every split of arbitrary text keeps its invariants).

use std::ops::Range;

use crate::enums::Engine;
use crate::model::StatementRange;

#[cfg(test)]
mod tests;

/// The SQL dialect whose lexical rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL, split as psql splits a script.
    Postgres,
    /// MySQL and MariaDB, split as the mysql client splits a script, plus compound bodies without
    /// a `DELIMITER` line.
    Mysql,
}

impl From<Engine> for Dialect {
    fn from(engine: Engine) -> Self {
        match engine {
            Engine::Postgres => Self::Postgres,
            Engine::Mysql => Self::Mysql,
        }
    }
}

/// One statement of a script, as positions in the text it was split from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The bytes of the statement including its terminator (`;` or the current MySQL delimiter), if
    /// it has one; the whitespace and comments before it are not included.
    pub range: Range<usize>,
    /// The text to send to the server: `range` without the terminator and without the whitespace and
    /// comments between the last token and the terminator. Never empty.
    pub text_range: Range<usize>,
    /// The 1-based line of the statement's first byte.
    pub line: u32,
}

impl Statement {
    /// The text to send to the server, taken from `sql`, the text this statement was split from.
    pub fn text<'a>(&self, sql: &'a str) -> &'a str {
        // `get` rather than indexing: given another text, this returns "" instead of panicking.
        sql.get(self.text_range.clone()).unwrap_or_default()
    }
}

/// Text that cannot be split safely, with the 1-based line and column (in characters) where the
/// offending construct began.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct SplitError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
    /// What is wrong, for the author of the file.
    pub message: String,
}

/// Splits `sql` into its statements, in order. Whitespace, comments, empty statements (a lone `;`),
/// MySQL `DELIMITER` lines and a leading byte-order mark yield nothing, so a comment-only file has
/// no statements.
pub fn split(sql: &str, dialect: Dialect) -> Result<Vec<Statement>, SplitError> {
    // Offsets are stored as `u32` (`StatementRange`); refusing larger input keeps every conversion exact.
    if u32::try_from(sql.len()).is_err() {
        return Err(SplitError { line: 1, column: 1, message: "the SQL text is larger than 4 GiB".to_owned() });
    }
    Splitter::new(sql, dialect).run()
}

/// The statements' `text_range`s, as stored with a migration version.
pub fn ranges(statements: &[Statement]) -> Vec<StatementRange> {
    // `split` refuses text longer than `u32::MAX` bytes, so the saturation below never happens for its output.
    let offset = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    statements
        .iter()
        .map(|statement| StatementRange {
            start: offset(statement.text_range.start),
            end: offset(statement.text_range.end),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenKind {
    /// Spaces, tabs and line breaks.
    Space,
    /// A comment: separates tokens, is not code.
    Comment,
    /// `;`, or the delimiter set by the last MySQL `DELIMITER` line.
    Terminator,
    /// A keyword or an unquoted identifier.
    Word,
    /// One ASCII punctuation character (`:=` counts as `=`).
    Punct(u8),
    /// Any other code: a quoted string or identifier, a dollar-quoted body, a number, a parameter,
    /// a MySQL version comment. Its content does not matter for splitting.
    Opaque,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: TokenKind,
    start: usize,
    end: usize,
}

#[derive(Debug)]
struct Lexer<'a> {
    sql: &'a str,
    bytes: &'a [u8],
    pos: usize,
    dialect: Dialect,
    /// The statement terminator: `;`, or what the last MySQL `DELIMITER` line set.
    delimiter: &'a str,
}

/// Whitespace as both servers define it (space, tab, LF, VT, FF, CR).
/// Postgres statements that refuse to run inside a transaction block, by their leading words.
const NON_TRANSACTIONAL: &[(&[&str], &str)] = &[
    (&["create", "index", "concurrently"], "CREATE INDEX CONCURRENTLY"),
    (&["create", "unique", "index", "concurrently"], "CREATE INDEX CONCURRENTLY"),
    (&["drop", "index", "concurrently"], "DROP INDEX CONCURRENTLY"),
    (&["reindex", "*", "concurrently"], "REINDEX CONCURRENTLY"),
    (&["reindex", "(", "*", ")", "*", "concurrently"], "REINDEX CONCURRENTLY"),
    (&["alter", "index", "*", "attach"], ""),
    (&["vacuum"], "VACUUM"),
    (&["alter", "system"], "ALTER SYSTEM"),
    (&["create", "database"], "CREATE DATABASE"),
    (&["drop", "database"], "DROP DATABASE"),
    (&["create", "tablespace"], "CREATE TABLESPACE"),
    (&["drop", "tablespace"], "DROP TABLESPACE"),
    (&["alter", "table", "*", "detach", "partition", "*", "concurrently"], "DETACH PARTITION CONCURRENTLY"),
    // Transaction control would end the runner's own transaction half-way (Ranger's `commit;` lines), so the
    // rest of the file and the history row would no longer be atomic.
    (&["commit"], "COMMIT"),
    (&["end"], "END"),
    (&["rollback"], "ROLLBACK"),
    (&["abort"], "ABORT"),
    (&["begin"], "BEGIN"),
    (&["start", "transaction"], "START TRANSACTION"),
];

/// If this Postgres statement cannot run inside a transaction block (SQLSTATE 25001) or controls the
/// transaction itself (`COMMIT`, `BEGIN`, …), what it is: such a migration must be marked no-transaction, and
/// is refused in `transaction` mode before anything runs.
pub fn non_transactional(statement: &str) -> Option<&'static str> {
    let words = leading_words(statement, 8);
    NON_TRANSACTIONAL.iter().find_map(|(pattern, what)| {
        let matches =
            pattern.len() <= words.len() && pattern.iter().zip(&words).all(|(p, w)| *p == "*" || *p == w.as_str());
        (matches && !what.is_empty()).then_some(*what)
    })
}

/// Whether this Postgres statement, sent alone outside a transaction block, is all or nothing: one
/// command that runs as a transaction of its own. Not one that cannot run in a transaction block (`CREATE
/// INDEX CONCURRENTLY` leaves an invalid index when it fails part-way), controls the transaction itself,
/// or may commit inside (`CALL` of a procedure, a `DO` block), nor several commands in one text (a goose
/// block may hold `COMMIT` lines).
pub fn atomic_alone(statement: &str) -> bool {
    let single = split(statement, Dialect::Postgres).is_ok_and(|parts| parts.len() == 1);
    let first = leading_words(statement, 1);
    single
        && non_transactional(statement).is_none()
        && !matches!(first.first().map(String::as_str), Some("call" | "do"))
}

/// Calls whose name anywhere in a statement (code, string or comment alike) means it may release the
/// session-level locks of the session it runs in: Postgres `pg_advisory_unlock*()`, MySQL `RELEASE_LOCK()`
/// and `RELEASE_ALL_LOCKS()`.
const LOCK_RELEASING: &[(&str, &str)] = &[
    ("advisory_unlock", "pg_advisory_unlock"),
    ("release_lock", "RELEASE_LOCK"),
    ("release_all_locks", "RELEASE_ALL_LOCKS"),
];

/// If this statement may release session-level locks held by the session that runs it, what it names. A
/// runner that holds its target lock in the session running the migration must then hold it in a session
/// of its own instead. The calls are found textually and broadly (a mention in a comment or a string
/// counts): a false alarm costs one more session, a miss could let two runners apply at once. `DISCARD
/// ALL` is a statement of its own (it cannot run inside a transaction, so no function can hide it).
pub fn may_release_session_locks(statement: &str) -> Option<&'static str> {
    let lower = statement.to_ascii_lowercase();
    if let Some((_, what)) = LOCK_RELEASING.iter().find(|(word, _)| lower.contains(word)) {
        return Some(what);
    }
    (leading_words(statement, 1).first().map(String::as_str) == Some("discard")).then_some("DISCARD")
}

/// The first `n` words of a statement, lower-cased, skipping comments; `(` and `)` count as words.
fn leading_words(sql: &str, n: usize) -> Vec<String> {
    let bytes = sql.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    while i < bytes.len() && words.len() < n {
        let b = bytes[i];
        if is_space(b) {
            i += 1;
        } else if sql[i..].starts_with("--") {
            i = sql[i..].find('\n').map_or(bytes.len(), |e| i + e + 1);
        } else if sql[i..].starts_with("/*") {
            i = sql[i + 2..].find("*/").map_or(bytes.len(), |e| i + 2 + e + 2);
        } else if b == b'(' || b == b')' {
            words.push(char::from(b).to_string());
            i += 1;
        } else if b.is_ascii_alphanumeric() || b == b'_' || b == b'"' {
            let start = i;
            if b == b'"' {
                i = sql[i + 1..].find('"').map_or(bytes.len(), |e| i + 1 + e + 1);
            } else {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.') {
                    i += 1;
                }
            }
            words.push(sql[start..i].to_ascii_lowercase());
        } else {
            // Any other punctuation ends the leading words.
            break;
        }
    }
    words
}

fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// The first character of a Postgres identifier; bytes of multi-byte characters count as letters.
fn is_pg_ident_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_' || byte >= 0x80
}

/// A character of a Postgres dollar-quote tag (an identifier character, but not `$`).
fn is_pg_tag_char(byte: u8) -> bool {
    is_pg_ident_start(byte) || byte.is_ascii_digit()
}

/// A later character of a Postgres identifier: `$` is allowed, so `a$$b` is one identifier, not a
/// dollar quote.
fn is_pg_ident_char(byte: u8) -> bool {
    is_pg_tag_char(byte) || byte == b'$'
}

/// A character of an unquoted MySQL identifier, which may also start with a digit.
fn is_mysql_word_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$' || byte >= 0x80
}

impl<'a> Lexer<'a> {
    /// The byte at `index`, or 0 past the end (0 is never a byte the rules below look for).
    fn at(&self, index: usize) -> u8 {
        self.bytes.get(index).copied().unwrap_or(0)
    }

    fn error(&self, at: usize, message: impl Into<String>) -> SplitError {
        error_at(self.sql, at, message.into())
    }

    fn delimiter_at(&self, index: usize) -> bool {
        self.bytes.get(index..).is_some_and(|rest| rest.starts_with(self.delimiter.as_bytes()))
    }

    /// The index of the first byte at or after `from` for which `stop` holds, or the end.
    fn skip_until(&self, from: usize, stop: impl Fn(u8) -> bool) -> usize {
        self.bytes
            .get(from..)
            .and_then(|rest| rest.iter().position(|&b| stop(b)))
            .map_or(self.bytes.len(), |n| from + n)
    }

    /// The end of the first `needle` at or after `from`, if any.
    fn find_end(&self, from: usize, needle: &str) -> Option<usize> {
        self.sql.get(from..).and_then(|rest| rest.find(needle)).map(|n| from + n + needle.len())
    }

    fn next(&mut self) -> Result<Option<Token>, SplitError> {
        let start = self.pos;
        let Some(&byte) = self.bytes.get(start) else {
            return Ok(None);
        };
        let kind = match self.dialect {
            Dialect::Postgres => self.pg_token(byte, start)?,
            Dialect::Mysql => self.mysql_token(byte, start)?,
        };
        Ok(Some(Token { kind, start, end: self.pos }))
    }

    /// Lexes one Postgres token starting at `start` and moves `pos` past it.
    fn pg_token(&mut self, byte: u8, start: usize) -> Result<TokenKind, SplitError> {
        let kind = match byte {
            b';' => {
                self.pos = start + 1;
                TokenKind::Terminator
            }
            _ if is_space(byte) => {
                self.pos = self.skip_until(start, |b| !is_space(b));
                TokenKind::Space
            }
            // Postgres ends a `--` comment at either line-break character.
            b'-' if self.at(start + 1) == b'-' => {
                self.pos = self.skip_until(start, |b| b == b'\n' || b == b'\r');
                TokenKind::Comment
            }
            b'/' if self.at(start + 1) == b'*' => {
                self.pos = self.pg_block_comment_end(start)?;
                TokenKind::Comment
            }
            b'\'' => {
                self.pos = self.quoted_end(start, start, false, "string")?;
                TokenKind::Opaque
            }
            b'"' => {
                self.pos = self.quoted_end(start, start, false, "quoted identifier")?;
                TokenKind::Opaque
            }
            b'$' => match self.dollar_tag_end(start) {
                Some(tag_end) => {
                    self.pos = self.dollar_body_end(start, tag_end)?;
                    TokenKind::Opaque
                }
                None if self.at(start + 1).is_ascii_digit() => {
                    self.pos = self.skip_until(start + 1, |b| !b.is_ascii_digit());
                    TokenKind::Opaque
                }
                None => {
                    self.pos = start + 1;
                    TokenKind::Punct(b'$')
                }
            },
            _ if is_pg_ident_start(byte) => {
                let end = self.skip_until(start + 1, |b| !is_pg_ident_char(b));
                // `E'…'` (any case) is a string with backslash escapes, but only when the E stands
                // alone: in `somee'x'` the quote starts an ordinary string after an identifier.
                if end == start + 1 && matches!(byte, b'e' | b'E') && self.at(end) == b'\'' {
                    self.pos = self.quoted_end(end, start, true, "E'' string")?;
                    TokenKind::Opaque
                } else {
                    self.pos = end;
                    TokenKind::Word
                }
            }
            // A number; letters after digits are Postgres's "trailing junk" and just stay with it.
            _ if byte.is_ascii_digit() => {
                self.pos = self.skip_until(start + 1, |b| !is_pg_tag_char(b));
                TokenKind::Opaque
            }
            // Everything else is one ASCII byte: bytes >= 0x80 start identifiers above.
            _ => {
                self.pos = start + 1;
                TokenKind::Punct(byte)
            }
        };
        Ok(kind)
    }

    /// Lexes one MySQL token starting at `start` and moves `pos` past it.
    fn mysql_token(&mut self, byte: u8, start: usize) -> Result<TokenKind, SplitError> {
        // The mysql client looks for the delimiter before anything else outside strings and
        // comments, so a delimiter such as `$$` ends a statement even right after an identifier.
        if self.delimiter_at(start) {
            self.pos = start + self.delimiter.len();
            return Ok(TokenKind::Terminator);
        }
        let kind = match byte {
            _ if is_space(byte) => {
                self.pos = self.skip_until(start, |b| !is_space(b));
                TokenKind::Space
            }
            // MySQL needs a space or control character after `--` (`1--1` is two minus signs); the
            // end of the text counts as one.
            b'-' if self.at(start + 1) == b'-' && (self.at(start + 2) <= b' ' || self.at(start + 2) == 0x7f) => {
                self.pos = self.skip_until(start, |b| b == b'\n');
                TokenKind::Comment
            }
            b'#' => {
                self.pos = self.skip_until(start, |b| b == b'\n');
                TokenKind::Comment
            }
            b'/' if self.at(start + 1) == b'*' => {
                let hint = self.at(start + 2) == b'!' || (self.at(start + 2) == b'M' && self.at(start + 3) == b'!');
                // A version comment is code the server runs; it ends at the first `*/` and is kept
                // whole. Ordinary comments do not nest in MySQL.
                let (from, what) =
                    if hint { (start + 3, "version comment /*! */") } else { (start + 2, "block comment") };
                self.pos =
                    self.find_end(from, "*/").ok_or_else(|| self.error(start, format!("unterminated {what}")))?;
                if hint { TokenKind::Opaque } else { TokenKind::Comment }
            }
            b'\'' => {
                self.pos = self.quoted_end(start, start, true, "string")?;
                TokenKind::Opaque
            }
            b'"' => {
                self.pos = self.quoted_end(start, start, true, "double-quoted string")?;
                TokenKind::Opaque
            }
            b'`' => {
                self.pos = self.quoted_end(start, start, false, "backtick-quoted identifier")?;
                TokenKind::Opaque
            }
            _ if is_mysql_word_char(byte) => {
                let mut end = start + 1;
                while end < self.bytes.len() && is_mysql_word_char(self.at(end)) && !self.delimiter_at(end) {
                    end += 1;
                }
                self.pos = end;
                TokenKind::Word
            }
            // `:=` is an assignment; a lone `:` ends a label, which the body tracking cares about.
            b':' if self.at(start + 1) == b'=' && !self.delimiter_at(start + 1) => {
                self.pos = start + 2;
                TokenKind::Punct(b'=')
            }
            _ => {
                self.pos = start + 1;
                TokenKind::Punct(byte)
            }
        };
        Ok(kind)
    }

    /// The end of a quoted string or identifier whose opening quote is at `open`. A doubled quote
    /// stands for itself; with `backslash`, a backslash escapes the next byte. Errors point at
    /// `reported_at`, where the construct began (the `E` of `E'…'`).
    fn quoted_end(&self, open: usize, reported_at: usize, backslash: bool, what: &str) -> Result<usize, SplitError> {
        let quote = self.at(open);
        let mut index = open + 1;
        while let Some(&byte) = self.bytes.get(index) {
            if backslash && byte == b'\\' {
                // Skipping one byte is enough even before a multi-byte character: its continuation
                // bytes are never a quote.
                index += 2;
            } else if byte == quote {
                if self.at(index + 1) == quote {
                    index += 2;
                } else {
                    return Ok(index + 1);
                }
            } else {
                index += 1;
            }
        }
        Err(self.error(reported_at, format!("unterminated {what}")))
    }

    /// The end of a Postgres block comment at `start`; they nest.
    fn pg_block_comment_end(&self, start: usize) -> Result<usize, SplitError> {
        let mut depth = 1_usize;
        let mut index = start + 2;
        while let Some(&byte) = self.bytes.get(index) {
            if byte == b'*' && self.at(index + 1) == b'/' {
                depth -= 1;
                index += 2;
                if depth == 0 {
                    return Ok(index);
                }
            } else if byte == b'/' && self.at(index + 1) == b'*' {
                depth += 1;
                index += 2;
            } else {
                index += 1;
            }
        }
        Err(self.error(start, "unterminated block comment"))
    }

    /// If a dollar-quote delimiter (`$$` or `$tag$`) starts at `start`, the index just past it.
    fn dollar_tag_end(&self, start: usize) -> Option<usize> {
        let first = start + 1;
        if self.at(first) == b'$' {
            return Some(first + 1);
        }
        // A tag is an identifier without `$`, so it cannot start with a digit: `$1` is a parameter.
        if first >= self.bytes.len() || !is_pg_ident_start(self.at(first)) {
            return None;
        }
        let end = self.skip_until(first, |b| !is_pg_tag_char(b));
        (self.at(end) == b'$' && end < self.bytes.len()).then_some(end + 1)
    }

    /// The end of a dollar-quoted body opened by `sql[start..tag_end]`: the body ends at the first
    /// occurrence of the same delimiter, which is also what the Postgres lexer finds.
    fn dollar_body_end(&self, start: usize, tag_end: usize) -> Result<usize, SplitError> {
        let tag = self.sql.get(start..tag_end).unwrap_or("$$");
        self.find_end(tag_end, tag).ok_or_else(|| self.error(start, format!("unterminated dollar-quoted string {tag}")))
    }
}

/// A byte-order mark, skipped at the start of the text.
const BOM: char = '\u{FEFF}';

/// The error for `message` at byte offset `at` of `sql`, with its line and column.
fn error_at(sql: &str, at: usize, message: String) -> SplitError {
    let before = sql.get(..at).unwrap_or(sql);
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    // Editors do not show a byte-order mark, so it takes no column.
    let column = before.get(line_start..).map_or(0, |s| s.trim_start_matches(BOM).chars().count()) + 1;
    SplitError { line: to_u32(line), column: to_u32(column), message }
}

fn to_u32(n: usize) -> u32 {
    // Only reachable with text over 4 GiB, which `split` refuses.
    u32::try_from(n).unwrap_or(u32::MAX)
}

// ---------------------------------------------------------------------------------------------------
// Statement structure
// ---------------------------------------------------------------------------------------------------

/// The words that matter for finding where a statement ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    Aggregate,
    Atomic,
    Begin,
    Case,
    Create,
    CurrentRole,
    CurrentUser,
    Data,
    Definer,
    Deterministic,
    Do,
    Else,
    End,
    Event,
    For,
    Function,
    If,
    Invoker,
    Loop,
    Or,
    Procedure,
    Repeat,
    Replace,
    Row,
    Sql,
    Then,
    Trigger,
    Until,
    While,
    /// Any other word.
    Other,
}

impl Keyword {
    const TABLE: &[(&str, Keyword)] = &[
        ("AGGREGATE", Self::Aggregate),
        ("ATOMIC", Self::Atomic),
        ("BEGIN", Self::Begin),
        ("CASE", Self::Case),
        ("CREATE", Self::Create),
        ("CURRENT_ROLE", Self::CurrentRole),
        ("CURRENT_USER", Self::CurrentUser),
        ("DATA", Self::Data),
        ("DEFINER", Self::Definer),
        ("DETERMINISTIC", Self::Deterministic),
        ("DO", Self::Do),
        ("ELSE", Self::Else),
        ("END", Self::End),
        ("EVENT", Self::Event),
        ("FOR", Self::For),
        ("FUNCTION", Self::Function),
        ("IF", Self::If),
        ("INVOKER", Self::Invoker),
        ("LOOP", Self::Loop),
        ("OR", Self::Or),
        ("PROCEDURE", Self::Procedure),
        ("REPEAT", Self::Repeat),
        ("REPLACE", Self::Replace),
        ("ROW", Self::Row),
        ("SQL", Self::Sql),
        ("THEN", Self::Then),
        ("TRIGGER", Self::Trigger),
        ("UNTIL", Self::Until),
        ("WHILE", Self::While),
    ];

    /// Case-insensitive, whole words only (the lexer hands over whole words, so `begin_at` is Other).
    fn of(word: &[u8]) -> Self {
        if word.len() > 13 {
            return Self::Other;
        }
        Self::TABLE.iter().find(|(text, _)| text.as_bytes().eq_ignore_ascii_case(word)).map_or(Self::Other, |&(_, k)| k)
    }
}

/// The last code token of the statement so far, which decides what a keyword means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prev {
    Nothing,
    /// A `;` inside a body.
    Semi,
    /// The `:` after a MySQL label.
    Colon,
    OpenParen,
    CloseParen,
    Dot,
    Comma,
    Equals,
    At,
    Word(Keyword),
    Other,
}

/// What the start of the statement says about its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    /// After `CREATE` and modifiers such as `OR REPLACE` or a MySQL `DEFINER = …`.
    AfterCreate,
    /// A routine (Postgres: function or procedure; MySQL: also trigger and event) whose body is tracked.
    Routine,
    /// Anything else: a `;` outside quotes and parentheses ends it.
    Plain,
}

/// An open block of a MySQL compound statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Begin,
    If,
    /// `expression`: a CASE expression, which ends with `END` and holds no statements; a CASE
    /// statement ends with `END CASE` and holds statements.
    Case {
        expression: bool,
    },
    Loop,
    While,
    /// `until`: its `UNTIL` condition has begun, so the next `END` closes it (it follows the
    /// condition, not a `;`).
    Repeat {
        until: bool,
    },
    For,
}

impl BlockKind {
    fn unclosed_message(self) -> &'static str {
        match self {
            Self::Begin => "BEGIN has no matching END",
            Self::If => "IF has no matching END IF",
            Self::Case { .. } => "CASE has no matching END",
            Self::Loop => "LOOP has no matching END LOOP",
            Self::While => "WHILE has no matching END WHILE",
            Self::Repeat { .. } => "REPEAT has no matching END REPEAT",
            Self::For => "FOR has no matching END FOR",
        }
    }
}

/// The statement being read.
#[derive(Debug)]
struct Pending {
    /// The first byte of its first code token, once there is one.
    start: Option<usize>,
    /// The end of its last code token so far.
    code_end: usize,
    prev: Prev,
    /// Where `prev` starts (for errors about a `BEGIN` found one token late).
    prev_start: usize,
    header: Header,
    paren_depth: usize,
    /// The outermost open parenthesis.
    paren_open_at: usize,
    /// Postgres: open `BEGIN ATOMIC` blocks plus the `CASE` expressions inside them.
    atomic_depth: usize,
    atomic_open_at: usize,
    /// MySQL: the open blocks of a compound body, with where each began.
    blocks: Vec<(BlockKind, usize)>,
    /// MySQL: the last word closed a block, so `IF`, `CASE`, `LOOP`… next is its suffix (`END IF`).
    after_end: bool,
}

impl Pending {
    fn new() -> Self {
        Self {
            start: None,
            code_end: 0,
            prev: Prev::Nothing,
            prev_start: 0,
            header: Header::Plain,
            paren_depth: 0,
            paren_open_at: 0,
            atomic_depth: 0,
            atomic_open_at: 0,
            blocks: Vec::new(),
            after_end: false,
        }
    }
}

/// The longest delimiter the mysql client accepts (its buffer holds 16 bytes with the NUL).
const MAX_DELIMITER_LEN: usize = 15;

/// Counts lines up to increasing offsets, so numbering all statements stays linear.
#[derive(Debug)]
struct LineCursor<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: usize,
}

impl LineCursor<'_> {
    fn line_of(&mut self, offset: usize) -> u32 {
        if offset < self.offset {
            // Statements come in order, so this does not happen; recount rather than be wrong.
            self.offset = 0;
            self.line = 1;
        }
        let newlines = self.bytes.get(self.offset..offset).map_or(0, |s| s.iter().filter(|&&b| b == b'\n').count());
        self.line += newlines;
        self.offset = offset;
        to_u32(self.line)
    }
}

#[derive(Debug)]
struct Splitter<'a> {
    lexer: Lexer<'a>,
    lines: LineCursor<'a>,
    statements: Vec<Statement>,
    pending: Pending,
}

impl<'a> Splitter<'a> {
    fn new(sql: &'a str, dialect: Dialect) -> Self {
        let bytes = sql.as_bytes();
        // A byte-order mark is not SQL (checksums ignore it too); the servers would reject it as the
        // start of the first statement.
        let pos = if sql.starts_with(BOM) { BOM.len_utf8() } else { 0 };
        Self {
            lexer: Lexer { sql, bytes, pos, dialect, delimiter: ";" },
            lines: LineCursor { bytes, offset: 0, line: 1 },
            statements: Vec::new(),
            pending: Pending::new(),
        }
    }

    fn dialect(&self) -> Dialect {
        self.lexer.dialect
    }

    fn run(mut self) -> Result<Vec<Statement>, SplitError> {
        while let Some(token) = self.lexer.next()? {
            match token.kind {
                TokenKind::Space | TokenKind::Comment => {}
                TokenKind::Terminator if self.inside_body() => self.code(token),
                TokenKind::Terminator => self.finish(Some(token.end)),
                TokenKind::Word if self.is_delimiter_command(token) => self.delimiter_command(token)?,
                TokenKind::Word | TokenKind::Punct(_) | TokenKind::Opaque => self.code(token),
            }
        }
        if let Some((at, message)) = self.unclosed() {
            return Err(self.lexer.error(at, message));
        }
        self.finish(None);
        Ok(self.statements)
    }

    /// Whether a terminator now belongs to the statement instead of ending it.
    fn inside_body(&self) -> bool {
        match self.dialect() {
            // psql does not split inside parentheses either.
            Dialect::Postgres => self.pending.paren_depth > 0 || self.pending.atomic_depth > 0,
            Dialect::Mysql => !self.pending.blocks.is_empty(),
        }
    }

    /// The earliest construct still open at the end of the text, if any.
    fn unclosed(&self) -> Option<(usize, &'static str)> {
        let pending = &self.pending;
        let mut open = Vec::new();
        if pending.paren_depth > 0 && self.dialect() == Dialect::Postgres {
            open.push((pending.paren_open_at, "this parenthesis is never closed"));
        }
        if pending.atomic_depth > 0 {
            open.push((pending.atomic_open_at, "BEGIN ATOMIC has no matching END"));
        }
        if let Some(&(kind, at)) = pending.blocks.first() {
            open.push((at, kind.unclosed_message()));
        }
        open.into_iter().min_by_key(|&(at, _)| at)
    }

    /// Ends the pending statement, if it has any code; `terminator_end` is where its terminator ends.
    fn finish(&mut self, terminator_end: Option<usize>) {
        let pending = std::mem::replace(&mut self.pending, Pending::new());
        if let Some(start) = pending.start {
            let line = self.lines.line_of(start);
            self.statements.push(Statement {
                range: start..terminator_end.unwrap_or(pending.code_end),
                text_range: start..pending.code_end,
                line,
            });
        }
    }

    fn word(&self, token: Token) -> &'a [u8] {
        self.lexer.bytes.get(token.start..token.end).unwrap_or_default()
    }

    /// A MySQL `DELIMITER` command: the word, where a statement could begin, followed by whitespace or
    /// the end of the text. Inside a statement the word is an identifier.
    fn is_delimiter_command(&self, token: Token) -> bool {
        self.dialect() == Dialect::Mysql
            && self.pending.start.is_none()
            && self.word(token).eq_ignore_ascii_case(b"delimiter")
            && self.lexer.bytes.get(token.end).is_none_or(|&b| is_space(b))
    }

    /// Obeys a `DELIMITER` line: its first argument becomes the terminator, and the rest of the line
    /// is ignored, as by the mysql client.
    fn delimiter_command(&mut self, token: Token) -> Result<(), SplitError> {
        let lexer = &self.lexer;
        let start = lexer.skip_until(token.end, |b| !matches!(b, b' ' | b'\t' | 0x0b | 0x0c));
        let end = lexer.skip_until(start, is_space);
        let mut delimiter = lexer.sql.get(start..end).unwrap_or_default();
        // The mysql client also accepts the delimiter in quotes: DELIMITER '$$'.
        for quote in ['\'', '"', '`'] {
            if delimiter.len() > 2 && delimiter.starts_with(quote) && delimiter.ends_with(quote) {
                delimiter = delimiter.get(1..delimiter.len() - 1).unwrap_or(delimiter);
            }
        }
        if delimiter.is_empty() {
            return Err(lexer.error(token.start, "DELIMITER needs a delimiter on the same line, e.g. DELIMITER $$"));
        }
        if delimiter.contains('\\') {
            return Err(lexer.error(token.start, "a DELIMITER cannot contain a backslash"));
        }
        // The mysql client keeps at most 15 bytes of a delimiter; a longer one is an error here rather
        // than silently truncated (and it keeps the delimiter check at every token cheap).
        if delimiter.len() > MAX_DELIMITER_LEN {
            return Err(lexer.error(token.start, format!("a DELIMITER is at most {MAX_DELIMITER_LEN} bytes long")));
        }
        let line_end = lexer.skip_until(end, |b| b == b'\n');
        self.lexer.delimiter = delimiter;
        self.lexer.pos = line_end;
        Ok(())
    }

    /// Adds a code token to the pending statement.
    fn code(&mut self, token: Token) {
        let dialect = self.dialect();
        let keyword = match token.kind {
            TokenKind::Word => Some(Keyword::of(self.word(token))),
            _ => None,
        };
        let pending = &mut self.pending;
        if pending.start.is_none() {
            pending.start = Some(token.start);
            // With a custom MySQL delimiter the body needs no tracking: only the delimiter ends it.
            let tracked = dialect == Dialect::Postgres || self.lexer.delimiter == ";";
            pending.header =
                if keyword == Some(Keyword::Create) && tracked { Header::AfterCreate } else { Header::Plain };
        } else if let Some(keyword) = keyword {
            self.keyword(keyword, token.start);
        }
        let pending = &mut self.pending;
        pending.code_end = token.end;
        if token.kind != TokenKind::Word {
            // Only the very next word can be the suffix of `END IF`, `END LOOP`…
            pending.after_end = false;
        }
        let prev = match token.kind {
            TokenKind::Terminator => Prev::Semi,
            TokenKind::Word => Prev::Word(keyword.unwrap_or(Keyword::Other)),
            TokenKind::Punct(b'(') => {
                if pending.paren_depth == 0 {
                    pending.paren_open_at = token.start;
                }
                pending.paren_depth += 1;
                Prev::OpenParen
            }
            TokenKind::Punct(b')') => {
                // A stray `)` is the server's problem; psql ignores it too.
                pending.paren_depth = pending.paren_depth.saturating_sub(1);
                Prev::CloseParen
            }
            TokenKind::Punct(b':') => Prev::Colon,
            TokenKind::Punct(b'.') => Prev::Dot,
            TokenKind::Punct(b',') => Prev::Comma,
            TokenKind::Punct(b'=') => Prev::Equals,
            TokenKind::Punct(b'@') => Prev::At,
            TokenKind::Punct(_) | TokenKind::Opaque | TokenKind::Space | TokenKind::Comment => Prev::Other,
        };
        pending.prev = prev;
        pending.prev_start = token.start;
    }

    /// Updates the statement's structure for a keyword that is not its first word.
    fn keyword(&mut self, keyword: Keyword, at: usize) {
        // Like psql, only words outside parentheses shape the body; inside them they are expressions.
        if self.pending.paren_depth > 0 {
            return;
        }
        match self.pending.header {
            Header::AfterCreate => self.routine_header(keyword),
            Header::Routine => match self.dialect() {
                Dialect::Postgres => self.pg_atomic_body(keyword),
                Dialect::Mysql => self.mysql_compound_body(keyword, at),
            },
            Header::Plain => {}
        }
    }

    /// Decides, word by word after `CREATE`, whether the statement is a routine with a tracked body.
    fn routine_header(&mut self, keyword: Keyword) {
        use Keyword as K;
        let pending = &mut self.pending;
        pending.header = match (self.lexer.dialect, keyword) {
            (_, K::Or | K::Replace) => Header::AfterCreate,
            (Dialect::Postgres, K::Function | K::Procedure) => Header::Routine,
            (Dialect::Mysql, K::Function | K::Procedure | K::Trigger | K::Event) => Header::Routine,
            // `CREATE [AGGREGATE] FUNCTION`, `CREATE DEFINER = user@host | CURRENT_USER[()] PROCEDURE`:
            // the user's parts follow `=`, `@` or `.`.
            (Dialect::Mysql, K::Aggregate | K::Definer | K::CurrentUser | K::CurrentRole) => Header::AfterCreate,
            (Dialect::Mysql, _) if matches!(pending.prev, Prev::Equals | Prev::At | Prev::Dot) => Header::AfterCreate,
            _ => Header::Plain,
        };
    }

    /// Postgres: `BEGIN ATOMIC … END` in a function or procedure, with the `END` of each `CASE`
    /// expression inside it (psql's heuristic, which the server's grammar makes exact: `END` and
    /// `CASE` are reserved words).
    fn pg_atomic_body(&mut self, keyword: Keyword) {
        let pending = &mut self.pending;
        match keyword {
            Keyword::Atomic if pending.prev == Prev::Word(Keyword::Begin) => {
                if pending.atomic_depth == 0 {
                    pending.atomic_open_at = pending.prev_start;
                }
                pending.atomic_depth += 1;
            }
            Keyword::Case if pending.atomic_depth > 0 => pending.atomic_depth += 1,
            Keyword::End if pending.atomic_depth > 0 => pending.atomic_depth -= 1,
            _ => {}
        }
    }

    /// Whether the current word begins a statement inside a MySQL compound body (or the body itself):
    /// that is where `IF` and `REPEAT` are statements rather than the functions `IF()` and `REPEAT()`,
    /// and where `CASE` is a statement rather than an expression.
    fn mysql_statement_start(&self) -> bool {
        use Keyword as K;
        let pending = &self.pending;
        let in_case_expression = matches!(pending.blocks.last(), Some((BlockKind::Case { expression: true }, _)));
        match pending.prev {
            Prev::Semi | Prev::Colon => true,
            Prev::Word(K::Begin | K::Atomic | K::Loop | K::Repeat | K::Do) => true,
            Prev::Word(K::Then | K::Else) => !in_case_expression,
            // The body of a routine without BEGIN: after the parameters, `FOR EACH ROW` or a characteristic.
            Prev::Word(K::Row | K::Deterministic | K::Sql | K::Data | K::Invoker | K::Definer) | Prev::CloseParen => {
                pending.blocks.is_empty()
            }
            _ => false,
        }
    }

    /// MySQL: the blocks of a compound body. A block's `END` follows a `;` (or its `BEGIN`, when
    /// empty), except after a CASE expression or a REPEAT's UNTIL condition; elsewhere `end` is an
    /// identifier, which MySQL allows.
    fn mysql_compound_body(&mut self, keyword: Keyword, at: usize) {
        use Keyword as K;
        if std::mem::take(&mut self.pending.after_end)
            && matches!(keyword, K::If | K::Case | K::Loop | K::While | K::Repeat | K::For)
        {
            return;
        }
        let statement_start = self.mysql_statement_start();
        let pending = &mut self.pending;
        let opened = match keyword {
            K::Begin => Some(BlockKind::Begin),
            // Reserved words that only ever open a loop (or follow END, handled above).
            K::Loop => Some(BlockKind::Loop),
            K::While => Some(BlockKind::While),
            K::If if statement_start => Some(BlockKind::If),
            K::Repeat if statement_start => Some(BlockKind::Repeat { until: false }),
            K::For if statement_start => Some(BlockKind::For),
            K::Case => Some(BlockKind::Case { expression: !statement_start }),
            K::Until => {
                if let Some((BlockKind::Repeat { until }, _)) = pending.blocks.last_mut() {
                    *until = true;
                }
                None
            }
            K::End => {
                let closes = match pending.blocks.last() {
                    None => false,
                    Some((BlockKind::Case { expression: true } | BlockKind::Repeat { until: true }, _)) => {
                        !matches!(pending.prev, Prev::Dot | Prev::Comma | Prev::OpenParen)
                    }
                    Some(_) => matches!(pending.prev, Prev::Semi | Prev::Word(K::Begin | K::Atomic)),
                };
                if closes {
                    pending.blocks.pop();
                    pending.after_end = true;
                }
                None
            }
            _ => None,
        };
        if let Some(kind) = opened {
            pending.blocks.push((kind, at));
        }
    }
}
