//! The audit log: the closed set of things that get recorded, and the hash chain that makes tampering
//! detectable.
//!
//! Every row stores the hash of the row before it, and its own hash covers its content and that previous
//! hash, so changing or deleting any row breaks every hash after it ([`verify`] finds the first). The hash
//! is an HMAC under a key derived from the server secret ([`ChainKey`]), so a chain cannot be recomputed
//! by someone who can only write the tool database; its newest row ([`Head`]) is published so that cutting
//! the tail is detected too ([`check_head`]). Events are written in the caller's transaction: a state
//! change and its audit row commit together or not at all.
//!
//! This crate must never receive a secret: details are built from ids and names, and it knows nothing about
//! HTTP or SQL (rows go through `storage::audit`).

mod action;
mod chain;

pub use action::Action;
pub use chain::{
    AuditError, ChainKey, Event, Head, HeadCheck, HeadSyntax, NO_CHAIN_KEY, Verification, check_head, head, record,
    verify,
};
