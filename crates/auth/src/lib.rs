//! Who may do what: OIDC login, sessions' content, API tokens, RBAC checks and the encryption of target
//! secrets at rest.
//!
//! The rules themselves (roles, separation of duties) are pure functions in `domain::policy`; this crate
//! applies them to authenticated identities. It reaches the tool database only through `storage`, keeps
//! actix types out of its public API where it can, and never logs or returns a secret.

pub mod secrets;
