//! Issue 16 regressions for secrets and the audit trail: secret reference allowlists, seals bound to their connection, the tool database refused as a target, a keyed and anchored audit chain.
