//! Secret references (`env:NAME`, `file:/path`) and the allowlist that says which of them a process may
//! resolve.
//!
//! A target's password may be a reference that the workers resolve from their own environment or file
//! system. Left open, that lets anyone who may edit a target make a worker read *its own* settings (the
//! master keys, `DATABASE_URL`) or `/proc/self/environ` and send them, as a password, to a host of their
//! choosing. So a reference resolves only when it matches a pattern the operator configured
//! (`MIGRATE_HUB_SECRET_REFS=env:TARGET_*,file:/run/secrets/*`; nothing by default), and some never do,
//! whatever the patterns say: the hub's own settings and the kernel's pseudo file systems.
//!
//! The server checks a reference against the same rules when it is set (a clear 422), and the worker
//! checks it again before resolving it (the rules may have changed since, and the database may have been
//! edited directly); for files the worker also checks the canonical path, so a symbolic link cannot lead
//! out of an allowed directory. This module is pure: canonicalizing a path is the worker's job.

use std::fmt;

/// Environment variables that are the hub's own settings, never resolved as a target's password. The
/// `PG*` ones are read by the Postgres driver for the tool database connection.
const HUB_VARIABLE_PREFIXES: &[&str] = &["MIGRATE_HUB_"];
const HUB_VARIABLES: &[&str] = &["DATABASE_URL", "PGPASSWORD", "PGPASSFILE"];
/// Pseudo file systems that expose a process's environment, memory or devices.
const SYSTEM_DIRECTORIES: &[&str] = &["/proc", "/sys", "/dev"];
const MAX_REFERENCE: usize = 1000;
const MAX_ENV_NAME: usize = 128;

/// A parsed secret reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `env:NAME`: an environment variable of the worker.
    Env(String),
    /// `file:/path`: a file on the worker's machine (an absolute path without `.` or `..` components).
    File(String),
}

/// Why a reference or a pattern is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretRefError {
    #[error("expected env:NAME (letters, digits, underscores) or file:/absolute/path")]
    Syntax,
    #[error("a file reference must be an absolute path without `.` or `..` components, empty segments or spaces")]
    Path,
    #[error("secret reference pattern {0:?}: expected env:PATTERN (letters, digits, `_`, `*`) or file:/PATTERN")]
    Pattern(String),
}

/// Why a well-formed reference may not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0} names one of the hub's own settings, which are never resolved as a target's password")]
    HubSetting(String),
    #[error("{0} is under /proc, /sys or /dev, which are never read as a target's password")]
    SystemPath(String),
    #[error("{reference} is not allowed by MIGRATE_HUB_SECRET_REFS ({allowed})")]
    NotAllowed { reference: String, allowed: String },
}

impl SecretRef {
    /// Parses `env:NAME` or `file:/path`.
    pub fn parse(text: &str) -> Result<Self, SecretRefError> {
        if text.len() > MAX_REFERENCE {
            return Err(SecretRefError::Syntax);
        }
        if let Some(name) = text.strip_prefix("env:") {
            let valid = !name.is_empty()
                && name.len() <= MAX_ENV_NAME
                && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            return if valid { Ok(SecretRef::Env(name.to_owned())) } else { Err(SecretRefError::Syntax) };
        }
        if let Some(path) = text.strip_prefix("file:") {
            if !path.starts_with('/') || path.len() < 2 {
                return Err(SecretRefError::Syntax);
            }
            return if clean_path(path) { Ok(SecretRef::File(path.to_owned())) } else { Err(SecretRefError::Path) };
        }
        Err(SecretRefError::Syntax)
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "env:{name}"),
            SecretRef::File(path) => write!(f, "file:{path}"),
        }
    }
}

/// An absolute path with no empty, `.` or `..` segment and no whitespace or control character: what it
/// names is what it says, before any link is followed.
fn clean_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else { return false };
    !path.chars().any(|c| c.is_whitespace() || c.is_control())
        && rest.split('/').all(|segment| !segment.is_empty() && segment != "." && segment != "..")
}

fn is_hub_variable(name: &str) -> bool {
    HUB_VARIABLES.contains(&name) || HUB_VARIABLE_PREFIXES.iter().any(|p| name.starts_with(p))
}

fn is_system_path(path: &str) -> bool {
    SYSTEM_DIRECTORIES.iter().any(|dir| path == *dir || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/')))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Env(String),
    File(String),
}

/// The references a process may resolve: patterns with `*` as a wildcard (any run of characters; in a
/// file pattern it crosses `/`, so `file:/run/secrets/*` is every file below that directory). Empty by
/// default: nothing is allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretRefPolicy {
    patterns: Vec<Pattern>,
}

impl SecretRefPolicy {
    /// Allows nothing.
    pub const fn none() -> Self {
        SecretRefPolicy { patterns: Vec::new() }
    }

    /// Parses comma-separated patterns (`env:TARGET_*,file:/run/secrets/*`); blank entries are skipped.
    pub fn parse(spec: &str) -> Result<Self, SecretRefError> {
        let mut patterns = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = || SecretRefError::Pattern(entry.to_owned());
            let pattern = if let Some(glob) = entry.strip_prefix("env:") {
                let valid = !glob.is_empty()
                    && glob.len() <= MAX_ENV_NAME
                    && glob.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '*');
                if !valid {
                    return Err(bad());
                }
                Pattern::Env(glob.to_owned())
            } else if let Some(glob) = entry.strip_prefix("file:") {
                if glob.len() > MAX_REFERENCE || !clean_path(glob) {
                    return Err(bad());
                }
                Pattern::File(glob.to_owned())
            } else {
                return Err(bad());
            };
            if !patterns.contains(&pattern) {
                patterns.push(pattern);
            }
        }
        Ok(SecretRefPolicy { patterns })
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `reference` may be resolved (for a file, as written; see [`check_path`](Self::check_path)
    /// for the path it leads to).
    pub fn check(&self, reference: &SecretRef) -> Result<(), Refusal> {
        match reference {
            SecretRef::Env(name) => {
                if is_hub_variable(name) {
                    return Err(Refusal::HubSetting(reference.to_string()));
                }
                let allowed = self.patterns.iter().any(|p| matches!(p, Pattern::Env(glob) if wildcard(glob, name)));
                if allowed { Ok(()) } else { Err(self.not_allowed(reference.to_string())) }
            }
            SecretRef::File(path) => self.check_path(path).map_err(|refusal| match refusal {
                Refusal::NotAllowed { allowed, .. } => {
                    Refusal::NotAllowed { reference: reference.to_string(), allowed }
                }
                Refusal::SystemPath(_) => Refusal::SystemPath(reference.to_string()),
                other => other,
            }),
        }
    }

    /// Whether the file at `path` (absolute; the worker passes the canonical path, every link followed)
    /// may be read.
    pub fn check_path(&self, path: &str) -> Result<(), Refusal> {
        if is_system_path(path) {
            return Err(Refusal::SystemPath(format!("file:{path}")));
        }
        let allowed = self.patterns.iter().any(|p| matches!(p, Pattern::File(glob) if wildcard(glob, path)));
        if allowed { Ok(()) } else { Err(self.not_allowed(format!("file:{path}"))) }
    }

    fn not_allowed(&self, reference: String) -> Refusal {
        let allowed = if self.is_empty() { "it allows no reference".to_owned() } else { format!("allowed: {self}") };
        Refusal::NotAllowed { reference, allowed }
    }
}

impl fmt::Display for SecretRefPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, pattern) in self.patterns.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match pattern {
                Pattern::Env(glob) => write!(f, "env:{glob}")?,
                Pattern::File(glob) => write!(f, "file:{glob}")?,
            }
        }
        Ok(())
    }
}

/// Whether `text` matches `glob`, where `*` stands for any run of characters (possibly empty) and every
/// other character for itself. Linear in practice: the classic backtracking to the last star.
fn wildcard(glob: &str, text: &str) -> bool {
    let (g, t): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    let (mut gi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if gi < g.len() && g[gi] == '*' {
            star = Some((gi, ti));
            gi += 1;
        } else if gi < g.len() && g[gi] == t[ti] {
            gi += 1;
            ti += 1;
        } else if let Some((star_g, star_t)) = star {
            gi = star_g + 1;
            ti = star_t + 1;
            star = Some((star_g, star_t + 1));
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn policy(spec: &str) -> SecretRefPolicy {
        SecretRefPolicy::parse(spec).unwrap()
    }

    fn check(policy: &SecretRefPolicy, reference: &str) -> Result<(), Refusal> {
        policy.check(&SecretRef::parse(reference).unwrap())
    }

    #[test]
    fn references_parse_strictly() {
        assert_eq!(SecretRef::parse("env:ORDERS_PW").unwrap(), SecretRef::Env("ORDERS_PW".into()));
        assert_eq!(SecretRef::parse("file:/run/secrets/pw").unwrap(), SecretRef::File("/run/secrets/pw".into()));
        for bad in ["", "env:", "env:1X", "env:A-B", "vault:x", "file:", "file:relative", "file:/"] {
            assert_eq!(SecretRef::parse(bad), Err(SecretRefError::Syntax), "{bad}");
        }
        for bad in ["file:/run/../proc/self/environ", "file:/run/./x", "file:/run//x", "file:/run/x/", "file:/a b"] {
            assert_eq!(SecretRef::parse(bad), Err(SecretRefError::Path), "{bad}");
        }
        assert_eq!(SecretRef::parse("env:X").unwrap().to_string(), "env:X");
    }

    #[test]
    fn nothing_is_allowed_by_default() {
        let none = SecretRefPolicy::none();
        assert!(matches!(check(&none, "env:TARGET_PW"), Err(Refusal::NotAllowed { .. })));
        assert!(matches!(check(&none, "file:/run/secrets/pw"), Err(Refusal::NotAllowed { .. })));
        assert_eq!(policy(" , "), none);
        let message = check(&none, "env:TARGET_PW").unwrap_err().to_string();
        assert!(message.contains("allows no reference"), "{message}");
    }

    #[test]
    fn patterns_allow_what_they_match_and_nothing_else() {
        let p = policy("env:TARGET_*, file:/run/secrets/*, env:EXACT");
        assert_eq!(p.to_string(), "env:TARGET_*,file:/run/secrets/*,env:EXACT");
        assert_eq!(check(&p, "env:TARGET_ORDERS"), Ok(()));
        assert_eq!(check(&p, "env:TARGET_"), Ok(()));
        assert_eq!(check(&p, "env:EXACT"), Ok(()));
        assert!(check(&p, "env:EXACTLY").is_err());
        assert!(check(&p, "env:HOME").is_err());
        assert!(check(&p, "env:MY_TARGET_X").is_err());
        assert_eq!(check(&p, "file:/run/secrets/orders"), Ok(()));
        assert_eq!(check(&p, "file:/run/secrets/db/..2026_01_01/password"), Ok(()));
        assert!(check(&p, "file:/run/secretsX").is_err());
        assert!(check(&p, "file:/etc/shadow").is_err());
        assert_eq!(p.check_path("/run/secrets/x"), Ok(()));
        assert!(p.check_path("/etc/passwd").is_err());
    }

    #[test]
    fn the_hubs_own_settings_and_system_paths_are_never_allowed() {
        let p = policy("env:*,file:/*");
        assert_eq!(check(&p, "env:ANYTHING"), Ok(()));
        for name in ["MIGRATE_HUB_MASTER_KEYS", "MIGRATE_HUB_SERVER_SECRET", "DATABASE_URL", "PGPASSWORD"] {
            assert_eq!(check(&p, &format!("env:{name}")), Err(Refusal::HubSetting(format!("env:{name}"))), "{name}");
        }
        for path in ["/proc/self/environ", "/proc/1/environ", "/sys/kernel/x", "/dev/stdin"] {
            assert_eq!(check(&p, &format!("file:{path}")), Err(Refusal::SystemPath(format!("file:{path}"))));
            assert!(p.check_path(path).is_err());
        }
        assert_eq!(check(&p, "file:/procfs/x"), Ok(()));
        assert!(p.check_path("/proc").is_err());
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in ["TARGET_*", "env:", "env:A-B", "file:relative/*", "file:/run/../proc/*", "vault:*"] {
            assert!(SecretRefPolicy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wildcards_match_like_globs() {
        assert!(wildcard("*", ""));
        assert!(wildcard("a*b*c", "aXXbYYc"));
        assert!(wildcard("a*b*c", "abc"));
        assert!(!wildcard("a*b*c", "abca"));
        assert!(wildcard("**", "x"));
        assert!(!wildcard("", "x"));
        assert!(wildcard("a*", "aaaa"));
        assert!(!wildcard("*a", "b"));
    }
}
