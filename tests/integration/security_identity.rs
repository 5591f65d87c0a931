//! Issue 16 regressions for identity: who may mint tokens, token lifetimes bound by their parent, authors not approving their own content, empty OIDC subjects.
