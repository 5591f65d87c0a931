//! Content checksums of migrations.
//!
//! A checksum pins what was reviewed: an approval records the checksums of the migration it
//! approved, and execution refuses content whose checksum differs. The same checksum is written to
//! each target's history table, so a later run can tell "already applied" from "applied, but the
//! file changed since".
//!
//! Text is normalized before hashing so that editor and platform noise (a UTF-8 byte order mark,
//! Windows line endings) does not make identical SQL look changed. Anything else, including a
//! lone `\r`, is content. The algorithm name records this normalization, so it can evolve without
//! old checksums being misread.

use std::borrow::Cow;
use std::fmt;

closed_enum! {
    /// How a [`Checksum`] was computed.
    pub enum ChecksumAlgorithm as "checksum algorithm" {
        /// SHA-256 of the UTF-8 text after [`normalize`]: one leading BOM stripped, CRLF → LF.
        Sha256Normalized = "sha256-lf-nobom",
    }
}

/// A checksum that could not be built from stored parts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChecksumError {
    /// The digest has the wrong number of bytes.
    #[error("a {algorithm} digest must be {expected} bytes long, got {actual}")]
    WrongLength {
        /// The algorithm the digest was given for.
        algorithm: ChecksumAlgorithm,
        /// The length the algorithm produces.
        expected: usize,
        /// The length received.
        actual: usize,
    },
    /// The hex text is not 64 hexadecimal digits.
    #[error("a checksum must be 64 hexadecimal digits (0-9, a-f)")]
    InvalidHex,
}

/// The checksum of a migration's text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(into = "ChecksumWire", try_from = "ChecksumWire")]
pub struct Checksum {
    algorithm: ChecksumAlgorithm,
    digest: [u8; 32],
}

/// Strips one leading byte order mark and turns every `\r\n` into `\n`.
///
/// Borrows when there is nothing to change, which is the common case.
pub fn normalize(text: &str) -> Cow<'_, str> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    if text.contains("\r\n") { Cow::Owned(text.replace("\r\n", "\n")) } else { Cow::Borrowed(text) }
}

impl Checksum {
    const DIGEST_LEN: usize = 32;

    /// The checksum of `text` with the current algorithm.
    pub fn of(text: &str) -> Checksum {
        let normalized = normalize(text);
        let hash = ring::digest::digest(&ring::digest::SHA256, normalized.as_bytes());
        let mut digest = [0u8; Self::DIGEST_LEN];
        // SHA-256 always produces 32 bytes, so the lengths match.
        digest.copy_from_slice(hash.as_ref());
        Checksum { algorithm: ChecksumAlgorithm::Sha256Normalized, digest }
    }

    /// Rebuilds a checksum from stored parts, e.g. a database row.
    pub fn from_parts(algorithm: ChecksumAlgorithm, digest: &[u8]) -> Result<Checksum, ChecksumError> {
        let digest: [u8; Self::DIGEST_LEN] = digest.try_into().map_err(|_| ChecksumError::WrongLength {
            algorithm,
            expected: Self::DIGEST_LEN,
            actual: digest.len(),
        })?;
        Ok(Checksum { algorithm, digest })
    }

    /// Rebuilds a checksum from its hex digest (either case).
    pub fn from_hex(algorithm: ChecksumAlgorithm, hex: &str) -> Result<Checksum, ChecksumError> {
        let bytes = hex.as_bytes();
        if bytes.len() != 2 * Self::DIGEST_LEN {
            return Err(ChecksumError::InvalidHex);
        }
        let mut digest = [0u8; Self::DIGEST_LEN];
        for (out, pair) in digest.iter_mut().zip(bytes.chunks_exact(2)) {
            let (Some(hi), Some(lo)) = (hex_value(pair[0]), hex_value(pair[1])) else {
                return Err(ChecksumError::InvalidHex);
            };
            *out = (hi << 4) | lo;
        }
        Ok(Checksum { algorithm, digest })
    }

    /// How this checksum was computed.
    pub fn algorithm(&self) -> ChecksumAlgorithm {
        self.algorithm
    }

    /// The raw digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The digest as 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(2 * Self::DIGEST_LEN);
        for byte in self.digest {
            out.push(char::from(DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        out
    }

    /// Whether `text` has this checksum.
    ///
    /// No constant-time comparison: checksums are not secrets.
    pub fn verify(&self, text: &str) -> bool {
        match self.algorithm {
            ChecksumAlgorithm::Sha256Normalized => Checksum::of(text) == *self,
        }
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({}:{})", self.algorithm, self.to_hex())
    }
}

impl fmt::Display for Checksum {
    /// `algorithm:hex`, e.g. for log lines and the UI.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.to_hex())
    }
}

/// The serde shape: `{"algorithm": "sha256-lf-nobom", "hex": "…"}`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ChecksumWire {
    algorithm: ChecksumAlgorithm,
    hex: String,
}

impl From<Checksum> for ChecksumWire {
    fn from(checksum: Checksum) -> Self {
        ChecksumWire { algorithm: checksum.algorithm, hex: checksum.to_hex() }
    }
}

impl TryFrom<ChecksumWire> for Checksum {
    type Error = ChecksumError;

    fn try_from(wire: ChecksumWire) -> Result<Self, ChecksumError> {
        Checksum::from_hex(wire.algorithm, &wire.hex)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use proptest::prelude::*;
    use serde::Deserialize;
    use serde::de::value::{Error as DeError, MapDeserializer};

    use super::*;
    use crate::test_support::to_json;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn known_vectors() {
        assert_eq!(Checksum::of("").to_hex(), EMPTY_SHA256);
        // Normalization leaves nothing of a lone BOM.
        assert_eq!(Checksum::of("\u{FEFF}").to_hex(), EMPTY_SHA256);
        assert_eq!(Checksum::of("abc").to_hex(), ABC_SHA256);
        assert_eq!(Checksum::of("").algorithm(), ChecksumAlgorithm::Sha256Normalized);
    }

    #[test]
    fn algorithm_string() {
        assert_eq!(ChecksumAlgorithm::Sha256Normalized.as_str(), "sha256-lf-nobom");
        assert_eq!("sha256-lf-nobom".parse::<ChecksumAlgorithm>().unwrap(), ChecksumAlgorithm::Sha256Normalized);
        assert_eq!(
            "sha256".parse::<ChecksumAlgorithm>().unwrap_err().to_string(),
            r#"unknown checksum algorithm "sha256"; expected one of: sha256-lf-nobom"#
        );
    }

    #[test]
    fn crlf_and_lf_are_equal() {
        let lf = "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n";
        let crlf = "CREATE TABLE t (id int);\r\nINSERT INTO t VALUES (1);\r\n";
        assert_eq!(Checksum::of(lf), Checksum::of(crlf));
        assert!(Checksum::of(lf).verify(crlf));
    }

    #[test]
    fn bom_and_no_bom_are_equal() {
        assert_eq!(Checksum::of("\u{FEFF}SELECT 1;"), Checksum::of("SELECT 1;"));
        // Only one BOM is stripped, and only at the start.
        assert_ne!(Checksum::of("\u{FEFF}\u{FEFF}SELECT 1;"), Checksum::of("SELECT 1;"));
        assert_ne!(Checksum::of("SELECT\u{FEFF} 1;"), Checksum::of("SELECT 1;"));
    }

    #[test]
    fn lone_cr_is_content() {
        assert_ne!(Checksum::of("a\rb"), Checksum::of("a\nb"));
        assert_ne!(Checksum::of("a\rb"), Checksum::of("ab"));
        assert_eq!(normalize("a\r\r\nb"), "a\r\nb");
    }

    #[test]
    fn any_content_change_is_detected() {
        assert_ne!(Checksum::of("SELECT 1;"), Checksum::of("SELECT 2;"));
        assert_ne!(Checksum::of("SELECT 1;"), Checksum::of("SELECT 1; "));
        assert!(!Checksum::of("SELECT 1;").verify("SELECT 2;"));
    }

    #[test]
    fn normalize_borrows_when_unchanged() {
        assert!(matches!(normalize("a\nb"), Cow::Borrowed("a\nb")));
        assert!(matches!(normalize("\u{FEFF}a"), Cow::Borrowed("a")));
        assert!(matches!(normalize("a\r\nb"), Cow::Owned(s) if s == "a\nb"));
    }

    #[test]
    fn parts_and_hex_round_trip() {
        let checksum = Checksum::of("SELECT 1;");
        let again = Checksum::from_parts(checksum.algorithm(), checksum.digest().as_slice()).unwrap();
        assert_eq!(again, checksum);
        let from_hex = Checksum::from_hex(checksum.algorithm(), &checksum.to_hex()).unwrap();
        assert_eq!(from_hex, checksum);
        let upper = checksum.to_hex().to_uppercase();
        assert_eq!(Checksum::from_hex(checksum.algorithm(), &upper).unwrap(), checksum);
    }

    #[test]
    fn from_parts_checks_length() {
        let err = Checksum::from_parts(ChecksumAlgorithm::Sha256Normalized, &[0; 31]).unwrap_err();
        assert_eq!(
            err,
            ChecksumError::WrongLength { algorithm: ChecksumAlgorithm::Sha256Normalized, expected: 32, actual: 31 }
        );
        assert_eq!(err.to_string(), "a sha256-lf-nobom digest must be 32 bytes long, got 31");
        assert!(Checksum::from_parts(ChecksumAlgorithm::Sha256Normalized, &[0; 33]).is_err());
        assert!(Checksum::from_parts(ChecksumAlgorithm::Sha256Normalized, &[]).is_err());
    }

    #[test]
    fn from_hex_rejects_bad_text() {
        let alg = ChecksumAlgorithm::Sha256Normalized;
        assert_eq!(Checksum::from_hex(alg, "abc"), Err(ChecksumError::InvalidHex));
        let bad = format!("{}g", &EMPTY_SHA256[1..]);
        assert_eq!(Checksum::from_hex(alg, &bad), Err(ChecksumError::InvalidHex));
        let multibyte = format!("é{}", &EMPTY_SHA256[2..]);
        assert_eq!(Checksum::from_hex(alg, &multibyte), Err(ChecksumError::InvalidHex));
    }

    #[test]
    fn debug_and_display_show_hex() {
        let checksum = Checksum::of("");
        assert_eq!(format!("{checksum:?}"), format!("Checksum(sha256-lf-nobom:{EMPTY_SHA256})"));
        assert_eq!(checksum.to_string(), format!("sha256-lf-nobom:{EMPTY_SHA256}"));
    }

    fn from_map(pairs: &[(&'static str, &'static str)]) -> Result<Checksum, DeError> {
        Checksum::deserialize(MapDeserializer::<_, DeError>::new(pairs.iter().copied()))
    }

    #[test]
    fn serde_shape() {
        assert_eq!(to_json(&Checksum::of("")), format!(r#"{{"algorithm":"sha256-lf-nobom","hex":"{EMPTY_SHA256}"}}"#));
        let back = from_map(&[("algorithm", "sha256-lf-nobom"), ("hex", EMPTY_SHA256)]).unwrap();
        assert_eq!(back, Checksum::of(""));
        assert!(from_map(&[("algorithm", "md5"), ("hex", EMPTY_SHA256)]).is_err());
        assert!(from_map(&[("algorithm", "sha256-lf-nobom"), ("hex", "00")]).is_err());
    }

    /// Text from a small alphabet rich in the characters normalization cares about.
    fn text() -> impl Strategy<Value = String> {
        "[a\r\n\u{FEFF}é ;]{0,40}"
    }

    proptest! {
        #[test]
        fn line_endings_do_not_matter(s in text()) {
            // Adding a '\r' before each '\n' is undone by normalization only where the '\n' was
            // not already preceded by a '\r' ("\r\n" would become "\r\r\n", which keeps one '\r').
            // So the property is stated on text without CRLF, which is what an LF file is.
            let lf = s.replace("\r\n", "\rx\n");
            let crlf = lf.replace('\n', "\r\n");
            prop_assert_eq!(Checksum::of(&lf), Checksum::of(&crlf));
        }

        #[test]
        fn a_leading_bom_does_not_matter(s in text()) {
            prop_assume!(!s.starts_with('\u{FEFF}'));
            prop_assert_eq!(Checksum::of(&s), Checksum::of(&format!("\u{FEFF}{s}")));
        }

        #[test]
        fn a_leading_bom_does_not_matter_for_any_text(s in any::<String>()) {
            prop_assume!(!s.starts_with('\u{FEFF}'));
            prop_assert_eq!(Checksum::of(&s), Checksum::of(&format!("\u{FEFF}{s}")));
        }

        #[test]
        fn line_endings_do_not_matter_for_any_text(s in any::<String>()) {
            let lf = s.replace("\r\n", "\rx\n");
            let crlf = lf.replace('\n', "\r\n");
            prop_assert_eq!(Checksum::of(&lf), Checksum::of(&crlf));
        }

        #[test]
        fn normalize_is_idempotent_once_crlf_free(s in text()) {
            let once = normalize(&s).into_owned();
            // A second pass can only differ where "\r\r\n" left a new "\r\n", or a second BOM
            // was uncovered, both of which are content by design.
            if !once.contains("\r\n") && !once.starts_with('\u{FEFF}') {
                prop_assert_eq!(normalize(&once), once.as_str());
            }
        }

        #[test]
        fn hex_round_trips(bytes in proptest::array::uniform32(any::<u8>())) {
            let checksum = Checksum::from_parts(ChecksumAlgorithm::Sha256Normalized, &bytes).unwrap();
            let hex = checksum.to_hex();
            prop_assert_eq!(hex.len(), 64);
            prop_assert!(hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            prop_assert_eq!(Checksum::from_hex(checksum.algorithm(), &hex).unwrap(), checksum);
        }
    }
}
