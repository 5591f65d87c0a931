//! Users and API tokens (moved here from the HTTP layer).
