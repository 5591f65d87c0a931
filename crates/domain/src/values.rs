//! Validated values.
//!
//! Each type here can only hold a valid value: the field is private and `parse` is the only way
//! in, so code below the HTTP edge takes an `Email` or a `VersionKey` and never re-checks a
//! `String` (parse, don't validate). Deserializing goes through `parse` as well, so a value read
//! from JSON is checked exactly like one typed into a form.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A value that failed validation. The message is meant to be shown to the user who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} \"{value_preview}\": {reason}")]
pub struct ValueError {
    /// What was being parsed, e.g. `"email"`.
    pub kind: &'static str,
    /// The start of the rejected input, escaped, so a huge or binary input stays readable.
    pub value_preview: String,
    /// Why it was rejected.
    pub reason: String,
}

/// How many characters of a rejected value an error repeats back.
const PREVIEW_CHARS: usize = 40;

impl ValueError {
    fn new(kind: &'static str, value: &str, reason: impl Into<String>) -> Self {
        let mut value_preview: String = value.chars().take(PREVIEW_CHARS).flat_map(char::escape_debug).collect();
        if value.chars().nth(PREVIEW_CHARS).is_some() {
            value_preview.push('…');
        }
        Self { kind, value_preview, reason: reason.into() }
    }
}

/// Implements the accessors and conversions every value type shares.
macro_rules! value_type {
    ($name:ident) => {
        impl $name {
            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The validated text, by value.
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = ValueError;

            fn from_str(s: &str) -> Result<Self, ValueError> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValueError;

            fn try_from(s: String) -> Result<Self, ValueError> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}

/// Trims `input`, reusing its allocation when there is nothing to trim.
fn trimmed(input: String) -> String {
    let t = input.trim();
    if t.len() == input.len() { input } else { t.to_owned() }
}

/// The shared rules of free text shown in the UI: trimmed, non-empty, bounded, and free of
/// control characters (which would break table layouts, logs and terminals).
fn parse_text(kind: &'static str, input: String, max_chars: usize) -> Result<String, ValueError> {
    let s = trimmed(input);
    if s.is_empty() {
        return Err(ValueError::new(kind, &s, "must not be empty"));
    }
    if s.chars().count() > max_chars {
        return Err(ValueError::new(kind, &s, format!("must be at most {max_chars} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(ValueError::new(kind, &s, "must not contain control characters such as tabs or line breaks"));
    }
    Ok(s)
}

/// An email address, trimmed and lower-cased so it can be compared and used as a unique key.
///
/// The check is deliberately loose (one `@`, a dotted domain, no spaces): the address comes from
/// the OIDC provider or an admin, and the only way to truly validate it is to send mail.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    const KIND: &'static str = "email";
    /// RFC 5321 limits a path to 256 octets, but providers differ; 320 (64 + 1 + 255) is the
    /// common upper bound that accepts every real address.
    const MAX_CHARS: usize = 320;

    /// Parses an email address.
    pub fn parse(input: impl Into<String>) -> Result<Self, ValueError> {
        let original = trimmed(input.into());
        let s = original.to_lowercase();
        let fail = |reason: &str| ValueError::new(Self::KIND, &original, reason);
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(fail("must not contain spaces or control characters"));
        }
        let Some((local, domain)) = s.split_once('@') else {
            return Err(fail("must contain exactly one '@'"));
        };
        if domain.contains('@') {
            return Err(fail("must contain exactly one '@'"));
        }
        if local.is_empty() {
            return Err(fail("must have a name before the '@'"));
        }
        if !domain.contains('.') {
            return Err(fail("the domain after the '@' must contain a dot"));
        }
        if domain.split('.').any(str::is_empty) {
            return Err(fail("the domain after the '@' must not start or end with a dot or have two dots in a row"));
        }
        let len = s.chars().count();
        if !(3..=Self::MAX_CHARS).contains(&len) {
            return Err(fail("must be between 3 and 320 characters"));
        }
        Ok(Self(s))
    }

    /// The part after the `@`, e.g. to match an allowed sign-in domain.
    pub fn domain(&self) -> &str {
        // Parsing guarantees exactly one '@'; the fallback is unreachable but avoids a panic.
        self.0.split_once('@').map_or("", |(_, domain)| domain)
    }
}

value_type!(Email);

/// A slug naming an environment, target, database set or project: `^[a-z0-9][a-z0-9_-]{0,62}$`.
///
/// Slugs appear in URLs, CLI arguments and log lines, so they are kept to characters that need no
/// escaping anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    const KIND: &'static str = "name";
    const MAX_CHARS: usize = 63;

    /// Parses a slug.
    pub fn parse(input: impl Into<String>) -> Result<Self, ValueError> {
        let s: String = input.into();
        let fail = |reason: &str| ValueError::new(Self::KIND, &s, reason);
        let Some(first) = s.chars().next() else {
            return Err(fail("must not be empty"));
        };
        if s.chars().count() > Self::MAX_CHARS {
            return Err(fail("must be at most 63 characters"));
        }
        if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
            return Err(fail("must start with a lower-case letter or a digit"));
        }
        if !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-') {
            return Err(fail("may only contain lower-case letters a-z, digits, '_' and '-'"));
        }
        Ok(Self(s))
    }
}

value_type!(Name);

/// A human-readable label (e.g. "Production EU"), 1 to 200 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DisplayName(String);

impl DisplayName {
    /// Parses a display name.
    pub fn parse(input: impl Into<String>) -> Result<Self, ValueError> {
        parse_text("display name", input.into(), 200).map(Self)
    }
}

value_type!(DisplayName);

/// The descriptive name of a migration (e.g. "add orders.status index"), 1 to 200 characters
/// after trimming.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MigrationName(String);

impl MigrationName {
    /// Parses a migration name.
    pub fn parse(input: impl Into<String>) -> Result<Self, ValueError> {
        parse_text("migration name", input.into(), 200).map(Self)
    }
}

value_type!(MigrationName);

/// A SQL identifier that both Postgres and MySQL accept unquoted: `^[A-Za-z_][A-Za-z0-9_]{0,62}$`.
///
/// Used for history table and schema names and for placeholder values in identifier position,
/// which are spliced into SQL text: this pattern is what makes that splicing safe. 63 is
/// Postgres's identifier limit (MySQL allows 64).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Identifier(String);

impl Identifier {
    const KIND: &'static str = "identifier";
    const MAX_CHARS: usize = 63;

    /// Parses an identifier.
    pub fn parse(input: impl Into<String>) -> Result<Self, ValueError> {
        let s: String = input.into();
        let fail = |reason: &str| ValueError::new(Self::KIND, &s, reason);
        let Some(first) = s.chars().next() else {
            return Err(fail("must not be empty"));
        };
        if s.chars().count() > Self::MAX_CHARS {
            return Err(fail("must be at most 63 characters"));
        }
        if !(first.is_ascii_alphabetic() || first == '_') {
            return Err(fail("must start with a letter A-Z or a-z, or '_'"));
        }
        if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(fail("may only contain letters A-Z and a-z, digits and '_'"));
        }
        Ok(Self(s))
    }
}

value_type!(Identifier);

/// The version of a migration, which orders migrations within a project:
/// `^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$`, e.g. `20250121_0001`, `0005`, `1.2.3`.
///
/// Ordering is natural, so teams need not zero-pad: digit runs compare as numbers (`2 < 10`,
/// `1.2 < 1.10`), other runs as text. Keys that differ only in leading zeros (`01`, `1`) are
/// different keys and are ordered by their plain text, so `Ord` agrees with `Eq`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VersionKey(String);

impl VersionKey {
    const KIND: &'static str = "version key";
    const MAX_CHARS: usize = 64;

    /// Parses a version key.
    pub fn parse(input: impl Into<String>) -> Result<Self, ValueError> {
        let s: String = input.into();
        let fail = |reason: &str| ValueError::new(Self::KIND, &s, reason);
        let Some(first) = s.chars().next() else {
            return Err(fail("must not be empty"));
        };
        if s.chars().count() > Self::MAX_CHARS {
            return Err(fail("must be at most 64 characters"));
        }
        if !first.is_ascii_alphanumeric() {
            return Err(fail("must start with a letter or a digit"));
        }
        if !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            return Err(fail("may only contain letters, digits, '.', '_' and '-'"));
        }
        Ok(Self(s))
    }
}

value_type!(VersionKey);

impl Ord for VersionKey {
    fn cmp(&self, other: &Self) -> Ordering {
        natural_cmp(&self.0, &other.0).then_with(|| self.0.cmp(&other.0))
    }
}

impl VersionKey {
    /// Whether this is a repeatable migration (Flyway's `R__name.sql`, key `R__name`): applied after the
    /// versioned ones, again whenever its content changes, never reverted.
    pub fn is_repeatable(&self) -> bool {
        self.0.starts_with("R__")
    }

    /// Whether another tool's record of a version names this one: equal but for leading zeros in its
    /// numbers (goose records `00001_x.sql` as `1`), with `_` read as `.` (Flyway records `V1_1` as `1.1`).
    pub fn same_as(&self, recorded: &str) -> bool {
        let recorded = recorded.trim().replace('_', ".");
        let own = self.0.replace('_', ".");
        natural_cmp(&own, &recorded) == Ordering::Equal
    }
}

impl PartialOrd for VersionKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Splits ASCII text into maximal runs of digits and of non-digits.
fn chunks(s: &str) -> impl Iterator<Item = &[u8]> {
    let bytes = s.as_bytes();
    let mut start = 0;
    std::iter::from_fn(move || {
        let first = bytes.get(start)?;
        let digit = first.is_ascii_digit();
        let len = bytes[start..].iter().take_while(|b| b.is_ascii_digit() == digit).count();
        let chunk = &bytes[start..start + len];
        start += len;
        Some(chunk)
    })
}

/// Compares run by run. Numbers compare by value without parsing (strip leading zeros, then the
/// longer is larger, then byte order), so any length works. A digit run against a non-digit run
/// compares by bytes, which is decided by their first bytes and so stays a consistent order.
/// Returns `Equal` for keys that differ only in leading zeros; the caller breaks that tie.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let mut a = chunks(a);
    let mut b = chunks(b);
    loop {
        let (x, y) = match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => (x, y),
        };
        let both_digits = x.first().is_some_and(u8::is_ascii_digit) && y.first().is_some_and(u8::is_ascii_digit);
        let order = if both_digits {
            let x = strip_zeros(x);
            let y = strip_zeros(y);
            x.len().cmp(&y.len()).then_with(|| x.cmp(y))
        } else {
            x.cmp(y)
        };
        if order != Ordering::Equal {
            return order;
        }
    }
}

fn strip_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&b| b == b'0').count();
    &digits[zeros..]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use proptest::prelude::*;

    use super::*;
    use crate::test_support::{from_str, to_json};

    // --- ValueError ---

    #[test]
    fn error_message_format() {
        let err = Email::parse("x").unwrap_err();
        assert_eq!(err.kind, "email");
        assert_eq!(err.to_string(), r#"invalid email "x": must contain exactly one '@'"#);
    }

    #[test]
    fn error_preview_is_truncated_and_escaped() {
        let long = "A".repeat(100);
        let err = Name::parse(long).unwrap_err();
        assert_eq!(err.value_preview, format!("{}…", "A".repeat(40)));
        let err = DisplayName::parse("a\u{7}\"b").unwrap_err();
        assert_eq!(err.value_preview, r#"a\u{7}\"b"#);
        let exactly_40 = "Ä".repeat(40);
        let err = Name::parse(exactly_40.clone()).unwrap_err();
        assert_eq!(err.value_preview, exactly_40);
    }

    // --- Email ---

    #[test]
    fn email_is_trimmed_and_lowercased() {
        let email = Email::parse("  Alice.Smith@Example.COM \n").unwrap();
        assert_eq!(email.as_str(), "alice.smith@example.com");
        assert_eq!(email.domain(), "example.com");
        assert_eq!(email.to_string(), "alice.smith@example.com");
        assert_eq!(email.as_ref(), "alice.smith@example.com");
    }

    #[test]
    fn email_accepts_common_forms() {
        for ok in ["a@b.c", "first.last+tag@sub.example.org", "o'brien@example.ie"] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn email_rejections_say_why() {
        let cases = [
            ("", "must contain exactly one '@'"),
            ("alice", "must contain exactly one '@'"),
            ("a@b@c.d", "must contain exactly one '@'"),
            ("@example.com", "must have a name before the '@'"),
            ("alice@localhost", "the domain after the '@' must contain a dot"),
            ("alice@", "the domain after the '@' must contain a dot"),
            ("alice@.example.com", "must not start or end with a dot"),
            ("alice@example.com.", "must not start or end with a dot"),
            ("alice@example..com", "two dots in a row"),
            ("al ice@example.com", "must not contain spaces"),
            ("alice@exa\u{0}mple.com", "control characters"),
        ];
        for (input, reason) in cases {
            let err = Email::parse(input).unwrap_err();
            assert!(err.reason.contains(reason), "{input:?}: {err}");
        }
    }

    #[test]
    fn email_length_bounds() {
        let local = "a".repeat(64);
        let domain_320 = format!("{}.com", "d".repeat(320 - 64 - 1 - 4));
        let at_limit = format!("{local}@{domain_320}");
        assert_eq!(at_limit.chars().count(), 320);
        assert!(Email::parse(at_limit).is_ok());
        let over = format!("{local}@d{domain_320}");
        let err = Email::parse(over).unwrap_err();
        assert_eq!(err.reason, "must be between 3 and 320 characters");
    }

    #[test]
    fn email_serde_goes_through_parse() {
        let email = Email::parse("bob@example.com").unwrap();
        assert_eq!(to_json(&email), "\"bob@example.com\"");
        assert_eq!(from_str::<Email>(" BOB@example.com").unwrap(), email);
        let err = from_str::<Email>("bob").unwrap_err();
        assert!(err.to_string().contains("exactly one '@'"), "{err}");
    }

    // --- Name ---

    #[test]
    fn name_accepts_slugs() {
        for ok in ["a", "0", "prod", "eu-west-1", "db_set_2", &"a".repeat(63)] {
            assert_eq!(Name::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn name_rejects_non_slugs() {
        for bad in ["", "-prod", "_prod", "Prod", "prod env", "prod.eu", "prød", " prod", &"a".repeat(64)] {
            assert!(Name::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Name::parse("Prod").unwrap_err().to_string(),
            r#"invalid name "Prod": must start with a lower-case letter or a digit"#
        );
    }

    // --- DisplayName / MigrationName ---

    #[test]
    fn display_name_rules() {
        assert_eq!(DisplayName::parse("  Production EU ").unwrap().as_str(), "Production EU");
        assert_eq!(DisplayName::parse("Ünïcödé ✓").unwrap().as_str(), "Ünïcödé ✓");
        assert!(DisplayName::parse("").is_err());
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse("a\tb").is_err());
        assert!(DisplayName::parse("a\nb").is_err());
        assert!(DisplayName::parse("é".repeat(200)).is_ok());
        assert!(DisplayName::parse("é".repeat(201)).is_err());
    }

    #[test]
    fn migration_name_rules() {
        let name = MigrationName::parse(" add orders.status index ").unwrap();
        assert_eq!(name.as_str(), "add orders.status index");
        assert_eq!(
            MigrationName::parse(" ").unwrap_err().to_string(),
            r#"invalid migration name "": must not be empty"#
        );
        assert!(MigrationName::parse("x\u{1b}[31m").is_err());
        assert!(MigrationName::parse("m".repeat(200)).is_ok());
        assert!(MigrationName::parse("m".repeat(201)).is_err());
    }

    // --- Identifier ---

    #[test]
    fn identifier_rules() {
        for ok in ["a", "_", "schema_migrations", "Public", "t1", &"x".repeat(63)] {
            assert!(Identifier::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1table", "my-table", "my table", "t;drop", "t\"", "tåble", "a.b", &"x".repeat(64)] {
            assert!(Identifier::parse(bad).is_err(), "{bad:?}");
        }
    }

    // --- VersionKey ---

    fn key(s: &str) -> VersionKey {
        VersionKey::parse(s).unwrap()
    }

    #[test]
    fn version_key_syntax() {
        for ok in ["20250121_0001", "0005", "1.2.3", "V1", "a", &"9".repeat(64)] {
            assert!(VersionKey::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".1", "_1", "-1", "1 2", "1/2", "1+2", &"9".repeat(65)] {
            assert!(VersionKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn version_key_natural_order() {
        let pairs = [
            ("2", "10"),
            ("9", "10"),
            ("1.2", "1.10"),
            ("1.2.3", "1.2.10"),
            ("1.9.9", "1.10.0"),
            ("20250121_0001", "20250121_0002"),
            ("20250121_0002", "20250122_0001"),
            ("0005", "0010"),
            ("0005", "6"),
            ("1", "1.1"),
            ("v2", "v10"),
            ("a", "b"),
            ("1", "a"),
            // Longer than any integer type: compared without parsing.
            ("99999999999999999999999999999999999999999", "100000000000000000000000000000000000000000"),
        ];
        for (lo, hi) in pairs {
            assert!(key(lo) < key(hi), "{lo} < {hi}");
            assert!(key(hi) > key(lo), "{hi} > {lo}");
        }
    }

    #[test]
    fn version_keys_differing_in_leading_zeros_are_distinct_and_ordered() {
        let (a, b) = (key("01"), key("1"));
        assert_ne!(a, b);
        assert_ne!(a.cmp(&b), Ordering::Equal);
        // The tie is broken by plain text: "01" < "1".
        assert!(a < b);
        assert_eq!(a.cmp(&a.clone()), Ordering::Equal);
    }

    #[test]
    fn version_keys_sort_naturally() {
        let mut keys: Vec<VersionKey> = ["10", "1.10", "2", "1.2", "1", "01", "0010"].into_iter().map(key).collect();
        keys.sort();
        let sorted: Vec<&str> = keys.iter().map(VersionKey::as_str).collect();
        assert_eq!(sorted, ["01", "1", "1.2", "1.10", "2", "0010", "10"]);
    }

    #[test]
    fn version_key_serde() {
        assert_eq!(to_json(&key("1.2.3")), "\"1.2.3\"");
        assert_eq!(from_str::<VersionKey>("0005").unwrap(), key("0005"));
        assert!(from_str::<VersionKey>("../etc").is_err());
    }

    fn version_key_strategy() -> impl Strategy<Value = VersionKey> {
        // A small alphabet makes equal chunks, leading zeros and digit/non-digit clashes common.
        "[0-9a][0-9a._-]{0,8}".prop_map(|s| VersionKey::parse(s).unwrap())
    }

    proptest! {
        #[test]
        fn version_key_ord_is_a_total_order(
            a in version_key_strategy(),
            b in version_key_strategy(),
            c in version_key_strategy(),
        ) {
            // Consistent with Eq.
            prop_assert_eq!(a.cmp(&b) == Ordering::Equal, a == b);
            // Antisymmetric.
            prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
            // Transitive.
            if a <= b && b <= c {
                prop_assert!(a <= c);
            }
        }

        #[test]
        fn version_key_numbers_order_like_integers(x in 0u128..u128::MAX, y in 0u128..u128::MAX) {
            prop_assert_eq!(key(&x.to_string()).cmp(&key(&y.to_string())), x.cmp(&y));
            let dotted = |n: u128| key(&format!("1.{n}.0"));
            prop_assert_eq!(dotted(x).cmp(&dotted(y)), x.cmp(&y));
        }

        #[test]
        fn parsed_values_round_trip(s in "[a-z0-9][a-z0-9_-]{0,62}") {
            let name = Name::parse(s.clone()).unwrap();
            prop_assert_eq!(name.as_str(), s.as_str());
            prop_assert_eq!(String::from(name.clone()).parse::<Name>().unwrap(), name);
        }

        #[test]
        fn identifiers_never_contain_sql_metacharacters(s in "\\PC{0,70}") {
            if let Ok(id) = Identifier::parse(s) {
                prop_assert!(id.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
            }
        }
    }
}
