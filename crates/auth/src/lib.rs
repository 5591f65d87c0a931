//! Who may do what: OIDC login, account rules at login, passwords, API tokens, the server's derived keys
//! and the encryption of target secrets at rest.
//!
//! The rules themselves (roles, separation of duties) are pure functions in `domain::policy`; this crate
//! applies them to authenticated identities. It reaches the tool database only through `storage`, keeps
//! actix types out of its public API, and never logs or returns a secret.

pub mod keys;
pub mod login;
pub mod oidc;
pub mod password;
pub mod secrets;
pub mod tokens;

/// `error: cause: cause…` on one line (the HTTP layer logs causes with it too).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
