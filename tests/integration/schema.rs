//! The tool schema: every constraint refuses what it must.
//!
//! A migrated database gets one valid row in every table ([`FIXTURE`]); each entry of [`CASES`] then breaks
//! exactly one CHECK, foreign key or unique constraint, in a transaction of its own that is rolled back, and
//! must be refused with that constraint's name. [`every_constraint_has_a_case`] reads the catalogue, so a
//! constraint added without a case fails the suite.
//!
//! Fixture ids are fixed so the SQL reads as plain text: the fourth group names the table, the last the row.
//!
//! | table        | id                                     |
//! |--------------|----------------------------------------|
//! | users        | `00000000-0000-0000-0001-000000000001` |
//! | api_tokens   | `00000000-0000-0000-0002-000000000001` |
//! | environments | `…-0003-000000000001` (`prod`), `…-0003-000000000002` (`staging`) |
//! | db_targets   | `…-0004-000000000001` (`orders`, prod), `…-0004-000000000002` (`orders-staging`, staging) |
//! | db_sets      | `…-0005-000000000001` (`all-orders`, prod) |
//! | projects     | `…-0006-000000000001` |
//! | migrations   | `…-0007-000000000001` |
//! | migration_versions | `…-0008-000000000001` |
//! | runs         | `…-0009-000000000001` (running); `…-0009-000000000002` in cases needing a run not started |
//! | run_migrations | (run `…-0009-000000000001`, position 0) |
//! | approvals    | `…-000a-000000000001` |
//! | workers      | `…-000b-000000000001` |
//! | run_items    | `…-000c-000000000001` |
//! | run_waves, maintenance_windows | (run `…-0009-000000000001`, wave 0); (prod, position 0, Saturday) |
//! | target_schemas | (target `…-0004-000000000001`, drifted) |
//! | webhooks     | `…-000d-000000000001` |
//! | webhook_deliveries | `…-000e-000000000001` |
//! | (no row)     | `00000000-0000-0000-ffff-000000000000` |

use std::collections::BTreeSet;

use migrate_hub_tests::PgDatabase;
use sqlx::PgPool;
use sqlx::postgres::PgDatabaseError;

const CHECK: &str = "23514";
const FOREIGN_KEY: &str = "23503";
const UNIQUE: &str = "23505";
const NOT_NULL: &str = "23502";
/// `restrict_violation`, raised by the triggers that keep versions immutable and the audit log append-only.
const RESTRICT: &str = "23001";

/// One valid row in every table (two environments and two targets, so cross-environment rules can be tried).
const FIXTURE: &[&str] = &[
    "INSERT INTO users (id, email, display_name, oidc_issuer, oidc_subject, password_hash, role) \
     VALUES ('00000000-0000-0000-0001-000000000001', 'ada@example.com', 'Ada Lovelace', \
             'https://idp.example.com', 'ada', 'argon2id-hash', 'admin')",
    "INSERT INTO api_tokens (id, user_id, name, token_prefix, token_hash, scope, created_by, created_at, expires_at) \
     VALUES ('00000000-0000-0000-0002-000000000001', '00000000-0000-0000-0001-000000000001', 'ci', 'mhk_ab12', \
             sha256('token'), 'write', '00000000-0000-0000-0001-000000000001', \
             '2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z')",
    "INSERT INTO sessions (key_hash, user_id, state, expires_at) \
     VALUES (sha256('session key'), '00000000-0000-0000-0001-000000000001', '{\"uid\": \"x\"}', \
             now() + interval '12 hours')",
    "INSERT INTO oidc_logins (state_hash, nonce, pkce_verifier, expires_at) \
     VALUES (sha256('state'), repeat('n', 22), repeat('v', 43), now() + interval '10 minutes')",
    "INSERT INTO environments (id, name, description, approval_required, approvals_required, execute_roles, \
                               lock_timeout_ms, statement_timeout_ms, target_lock_wait_ms, allow_out_of_order) \
     VALUES ('00000000-0000-0000-0003-000000000001', 'prod', 'Production', true, 1, ARRAY['manager', 'admin'], \
             5000, 600000, 60000, false)",
    "INSERT INTO environments (id, name, approval_required, approvals_required, execute_roles) \
     VALUES ('00000000-0000-0000-0003-000000000002', 'staging', false, 0, ARRAY['user', 'manager', 'admin'])",
    "INSERT INTO db_targets (id, environment_id, name, engine, host, port, database_name, schema_name, username, \
                             secret_ciphertext, secret_nonce, secret_key_id, tls_mode, labels, variables) \
     VALUES ('00000000-0000-0000-0004-000000000001', '00000000-0000-0000-0003-000000000001', 'orders', 'postgres', \
             'db.prod.internal', 5432, 'orders', 'public', 'migrator', \
             sha256('sealed'), decode('000102030405060708090a0b', 'hex'), 'key-2026', 'verify-full', \
             '{\"team\": \"payments\"}', '{\"schema\": \"public\"}')",
    "INSERT INTO db_targets (id, environment_id, name, engine, host, port, database_name, username) \
     VALUES ('00000000-0000-0000-0004-000000000002', '00000000-0000-0000-0003-000000000002', 'orders-staging', \
             'mysql', 'db.staging.internal', 3306, 'orders', 'migrator')",
    "INSERT INTO db_sets (id, environment_id, name, description) \
     VALUES ('00000000-0000-0000-0005-000000000001', '00000000-0000-0000-0003-000000000001', 'all-orders', \
             'Every orders database')",
    "INSERT INTO db_set_members (db_set_id, db_target_id, environment_id) \
     VALUES ('00000000-0000-0000-0005-000000000001', '00000000-0000-0000-0004-000000000001', \
             '00000000-0000-0000-0003-000000000001')",
    "INSERT INTO projects (id, name, description, history_table, created_by) \
     VALUES ('00000000-0000-0000-0006-000000000001', 'orders', 'The orders service', 'migrate_hub_history', \
             '00000000-0000-0000-0001-000000000001')",
    "INSERT INTO migrations (id, project_id, version_key, name, source_path, created_by) \
     VALUES ('00000000-0000-0000-0007-000000000001', '00000000-0000-0000-0006-000000000001', '20260101.0001', \
             'create orders', 'migrations/20260101.0001_create_orders.sql', '00000000-0000-0000-0001-000000000001')",
    "INSERT INTO migration_versions (id, migration_id, version_no, up_sql, down_sql, checksum_algorithm, \
                                     up_checksum, down_checksum, transaction_mode, up_statements, down_statements, \
                                     lint_results, source_hash, author_id) \
     VALUES ('00000000-0000-0000-0008-000000000001', '00000000-0000-0000-0007-000000000001', 1, \
             'CREATE TABLE orders (id bigint PRIMARY KEY)', 'DROP TABLE orders', 'sha256-lf-nobom', \
             sha256('CREATE TABLE orders (id bigint PRIMARY KEY)'), sha256('DROP TABLE orders'), 'transaction', \
             '[[0, 43]]', '[[0, 17]]', '[]', sha256('file'), '00000000-0000-0000-0001-000000000001')",
    // The run is made as a release is: requested (here: approved) with its versions, then started. Its versions
    // cannot be added once it has started.
    "INSERT INTO runs (id, project_id, content_checksum, revision, direction, environment_id, db_set_id, status, \
                       failure_policy, concurrency_limit, comment, requested_by, idempotency_key) \
     VALUES ('00000000-0000-0000-0009-000000000001', '00000000-0000-0000-0006-000000000001', \
             sha256(convert_to(E'migrate-hub release v1\\n20260101.0001 ' \
                               || encode(sha256('CREATE TABLE orders (id bigint PRIMARY KEY)'), 'hex') || ' ' \
                               || encode(sha256('DROP TABLE orders'), 'hex') || E'\\n', 'UTF8')), \
             1, 'up', '00000000-0000-0000-0003-000000000001', '00000000-0000-0000-0005-000000000001', 'approved', \
             'stop_on_first_failure', 1, 'release 42', '00000000-0000-0000-0001-000000000001', 'release-42')",
    "INSERT INTO run_migrations (run_id, position, migration_version_id) \
     VALUES ('00000000-0000-0000-0009-000000000001', 0, '00000000-0000-0000-0008-000000000001')",
    "INSERT INTO approvals (id, run_id, run_revision, direction, environment_id, approver_id, decision, comment, \
                            content_checksum) \
     SELECT '00000000-0000-0000-000a-000000000001', id, revision, direction, environment_id, \
            '00000000-0000-0000-0001-000000000001', 'approve', 'looks good', content_checksum \
     FROM runs WHERE id = '00000000-0000-0000-0009-000000000001'",
    "UPDATE runs SET status = 'running', executed_by = '00000000-0000-0000-0001-000000000001', queued_at = now(), \
                     started_at = now() \
     WHERE id = '00000000-0000-0000-0009-000000000001'",
    "INSERT INTO target_schemas (db_target_id, baseline, baseline_at, baseline_run, checked, checked_at, \
                                 differences, drifted_since, next_check_at) \
     VALUES ('00000000-0000-0000-0004-000000000001', '{\"table:orders\": \"ab\"}', now(), \
             '00000000-0000-0000-0009-000000000001', '{}', now(), \
             '[{\"object\": \"table:orders\", \"change\": \"removed\"}]', now(), now())",
    "INSERT INTO webhooks (id, environment_id, url, events, format, secret_ciphertext, secret_nonce, secret_key_id, \
                           created_by) \
     VALUES ('00000000-0000-0000-000d-000000000001', '00000000-0000-0000-0003-000000000001', \
             'https://hooks.example.com/migrate-hub', ARRAY['run.failed', 'run.halted'], 'json', '\\x00', \
             '\\x000000000000000000000000', 'k1', '00000000-0000-0000-0001-000000000001')",
    "INSERT INTO webhook_deliveries (id, webhook_id, event, payload, status, attempts, last_status_code, last_error) \
     VALUES ('00000000-0000-0000-000e-000000000001', '00000000-0000-0000-000d-000000000001', 'run.failed', \
             '{\"event\": \"run.failed\"}', 'pending', 1, 500, 'answered 500')",
    "INSERT INTO maintenance_windows (environment_id, position, spec, weekday, starts, ends, timezone) \
     VALUES ('00000000-0000-0000-0003-000000000001', 0, 'Sat 02:00-05:00 Europe/Berlin', 6, '02:00', '05:00', \
             'Europe/Berlin')",
    "INSERT INTO run_waves (run_id, wave, first_ordinal, end_ordinal, spec, max_failures, started_by) \
     VALUES ('00000000-0000-0000-0009-000000000001', 0, 0, 1, '100%', 0, '00000000-0000-0000-0001-000000000001')",
    "INSERT INTO workers (id, hostname, pid, version, status) \
     VALUES ('00000000-0000-0000-000b-000000000001', 'worker-1', 4242, '0.1.0', 'running')",
    "INSERT INTO run_items (id, run_id, db_target_id, environment_id, ordinal, status, attempts, max_attempts, \
                            lease_owner, lease_expires_at, fencing_token, statements_done, statements_total, \
                            migrations_done, migrations_total, started_at) \
     VALUES ('00000000-0000-0000-000c-000000000001', '00000000-0000-0000-0009-000000000001', \
             '00000000-0000-0000-0004-000000000001', '00000000-0000-0000-0003-000000000001', 0, 'running', 1, 3, \
             '00000000-0000-0000-000b-000000000001', now() + interval '1 minute', 1, 0, 1, 0, 1, now())",
    "INSERT INTO run_item_logs (run_item_id, seq, level, message, version_key, statement_index, duration_ms, \
                                rows_affected) \
     VALUES ('00000000-0000-0000-000c-000000000001', 0, 'info', 'statement 1 applied', '20260101.0001', 1, 12, 0)",
    "INSERT INTO audit_events (actor_kind, actor_user_id, actor_label, action, object_type, object_id, details, \
                               ip, user_agent, prev_hash, hash) \
     VALUES ('user', '00000000-0000-0000-0001-000000000001', 'ada@example.com', 'user.login', 'user', \
             '00000000-0000-0000-0001-000000000001', '{\"method\": \"password\"}', '192.0.2.1', 'Mozilla/5.0', \
             NULL, sha256('genesis'))",
];

/// A statement that must be refused by `constraint`, with SQLSTATE `sqlstate`.
#[derive(Debug, Clone, Copy)]
struct Case {
    constraint: &'static str,
    sqlstate: &'static str,
    sql: &'static str,
}

const fn check(constraint: &'static str, sql: &'static str) -> Case {
    Case { constraint, sqlstate: CHECK, sql }
}

const fn fk(constraint: &'static str, sql: &'static str) -> Case {
    Case { constraint, sqlstate: FOREIGN_KEY, sql }
}

const fn unique(constraint: &'static str, sql: &'static str) -> Case {
    Case { constraint, sqlstate: UNIQUE, sql }
}

/// An INSERT of a second run (one that has not started) with `columns` = `values` besides the usual ones.
macro_rules! new_run {
    ($columns:literal, $values:literal) => {
        concat!(
            "INSERT INTO runs (id, project_id, content_checksum, direction, environment_id, status, requested_by, ",
            $columns,
            ") VALUES ('00000000-0000-0000-0009-000000000002', '00000000-0000-0000-0006-000000000001', sha256('r'), \
             'up', '00000000-0000-0000-0003-000000000001', 'awaiting_approval', '00000000-0000-0000-0001-000000000001', ",
            $values,
            ")"
        )
    };
}

/// Each statement breaks exactly one constraint of the fixture. Most are UPDATEs of the fixture rows; the
/// tables whose rows cannot be updated (`migration_versions`, `audit_events`) and the keys that other rows
/// reference (an UPDATE there would first trip the referencing side) get INSERTs of an otherwise valid row.
const CASES: &[Case] = &[
    // users
    check("users_email_check", "UPDATE users SET email = 'Ada@example.com'"),
    check("users_email_check", "UPDATE users SET email = 'ada.example.com'"),
    check("users_email_check", "UPDATE users SET email = 'ada lovelace@example.com'"),
    check("users_display_name_check", "UPDATE users SET display_name = ''"),
    check("users_oidc_issuer_check", "UPDATE users SET oidc_issuer = ''"),
    check("users_oidc_subject_check", "UPDATE users SET oidc_subject = repeat('s', 256)"),
    check("users_password_hash_check", "UPDATE users SET password_hash = ''"),
    check("users_role_check", "UPDATE users SET role = 'root'"),
    check("users_oidc_pair", "UPDATE users SET oidc_subject = NULL"),
    unique(
        "users_email_key",
        "INSERT INTO users (id, email, display_name) \
         VALUES ('00000000-0000-0000-0001-000000000002', 'ada@example.com', 'Another Ada')",
    ),
    unique(
        "users_oidc_key",
        "INSERT INTO users (id, email, display_name, oidc_issuer, oidc_subject) \
         VALUES ('00000000-0000-0000-0001-000000000002', 'grace@example.com', 'Grace', \
                 'https://idp.example.com', 'ada')",
    ),
    // api_tokens
    check("api_tokens_name_check", "UPDATE api_tokens SET name = ''"),
    check("api_tokens_token_prefix_check", "UPDATE api_tokens SET token_prefix = 'mhk'"),
    check("api_tokens_token_hash_check", "UPDATE api_tokens SET token_hash = decode('00', 'hex')"),
    check("api_tokens_scope_check", "UPDATE api_tokens SET scope = 'admin'"),
    check("api_tokens_expiry_after_creation", "UPDATE api_tokens SET expires_at = created_at"),
    check(
        "api_tokens_created_by_owner",
        "INSERT INTO users (id, email, display_name) \
         VALUES ('00000000-0000-0000-0001-000000000002', 'grace@example.com', 'Grace'); \
         UPDATE api_tokens SET user_id = '00000000-0000-0000-0001-000000000002'",
    ),
    // Revoked, so that only the foreign key is at fault (a usable token is its creator's own).
    fk(
        "api_tokens_user_id_fkey",
        "UPDATE api_tokens SET user_id = '00000000-0000-0000-ffff-000000000000', revoked_at = now()",
    ),
    fk(
        "api_tokens_created_by_fkey",
        "UPDATE api_tokens SET created_by = '00000000-0000-0000-ffff-000000000000', revoked_at = now()",
    ),
    unique(
        "api_tokens_hash_key",
        "INSERT INTO api_tokens (id, user_id, name, token_prefix, token_hash, created_by) \
         VALUES ('00000000-0000-0000-0002-000000000002', '00000000-0000-0000-0001-000000000001', 'copy', \
                 'mhk_ab12', sha256('token'), '00000000-0000-0000-0001-000000000001')",
    ),
    // sessions
    check("sessions_key_hash_check", "UPDATE sessions SET key_hash = decode('00', 'hex')"),
    check("sessions_state_check", "UPDATE sessions SET state = '[]'"),
    check("sessions_expiry_after_creation", "UPDATE sessions SET expires_at = created_at"),
    fk("sessions_user_id_fkey", "UPDATE sessions SET user_id = '00000000-0000-0000-ffff-000000000000'"),
    // oidc_logins
    check("oidc_logins_state_hash_check", "UPDATE oidc_logins SET state_hash = decode('00', 'hex')"),
    check("oidc_logins_nonce_check", "UPDATE oidc_logins SET nonce = 'short'"),
    check("oidc_logins_pkce_verifier_check", "UPDATE oidc_logins SET pkce_verifier = 'short'"),
    check("oidc_logins_short_lived", "UPDATE oidc_logins SET expires_at = created_at + interval '11 minutes'"),
    // environments
    check("environments_name_check", "UPDATE environments SET name = 'Prod' WHERE name = 'prod'"),
    check("environments_name_check", "UPDATE environments SET name = '-prod' WHERE name = 'prod'"),
    check(
        "environments_description_check",
        "UPDATE environments SET description = repeat('d', 2001) WHERE name = 'prod'",
    ),
    check(
        "environments_approvals_required_check",
        "UPDATE environments SET approvals_required = 11 WHERE name = 'prod'",
    ),
    check(
        "environments_execute_roles_check",
        "UPDATE environments SET execute_roles = ARRAY['root'] WHERE name = 'prod'",
    ),
    check(
        "environments_execute_roles_check",
        "UPDATE environments SET execute_roles = ARRAY[]::text[] WHERE name = 'prod'",
    ),
    check(
        "environments_execute_roles_check",
        "UPDATE environments SET execute_roles = ARRAY['admin', NULL] WHERE name = 'prod'",
    ),
    check("environments_lock_timeout_ms_check", "UPDATE environments SET lock_timeout_ms = 0 WHERE name = 'prod'"),
    check(
        "environments_statement_timeout_ms_check",
        "UPDATE environments SET statement_timeout_ms = 0 WHERE name = 'prod'",
    ),
    check("environments_lock_retries_check", "UPDATE environments SET lock_retries = 11 WHERE name = 'prod'"),
    check("environments_lint_block_check", "UPDATE environments SET lint_block = 'always' WHERE name = 'prod'"),
    check(
        "environments_high_risk_approvals_check",
        "UPDATE environments SET high_risk_approvals = 11 WHERE name = 'prod'",
    ),
    check(
        "environments_lock_retry_max_delay_ms_check",
        "UPDATE environments SET lock_retry_max_delay_ms = 300001 WHERE name = 'prod'",
    ),
    check(
        "environments_target_lock_wait_ms_check",
        "UPDATE environments SET target_lock_wait_ms = -1 WHERE name = 'prod'",
    ),
    check("environments_approval_count", "UPDATE environments SET approvals_required = 0 WHERE name = 'prod'"),
    check("environments_approval_count", "UPDATE environments SET approval_required = false WHERE name = 'prod'"),
    check("environments_approval_count", "UPDATE environments SET approvals_required = 1 WHERE name = 'staging'"),
    unique("environments_name_key", "UPDATE environments SET name = 'prod' WHERE name = 'staging'"),
    // db_targets
    check("db_targets_name_check", "UPDATE db_targets SET name = 'Orders!' WHERE name = 'orders'"),
    check("db_targets_engine_check", "UPDATE db_targets SET engine = 'oracle' WHERE name = 'orders'"),
    check("db_targets_host_check", "UPDATE db_targets SET host = 'db prod' WHERE name = 'orders'"),
    check("db_targets_host_check", "UPDATE db_targets SET host = '' WHERE name = 'orders'"),
    check("db_targets_port_check", "UPDATE db_targets SET port = 0 WHERE name = 'orders'"),
    check("db_targets_port_check", "UPDATE db_targets SET port = 65536 WHERE name = 'orders'"),
    check("db_targets_database_name_check", "UPDATE db_targets SET database_name = '' WHERE name = 'orders'"),
    check("db_targets_schema_name_check", "UPDATE db_targets SET schema_name = '1public' WHERE name = 'orders'"),
    check("db_targets_username_check", "UPDATE db_targets SET username = '' WHERE name = 'orders'"),
    check(
        "db_targets_secret_ciphertext_check",
        "UPDATE db_targets SET secret_ciphertext = decode('00', 'hex') WHERE name = 'orders'",
    ),
    check("db_targets_secret_nonce_check", "UPDATE db_targets SET secret_nonce = sha256('x') WHERE name = 'orders'"),
    check("db_targets_secret_key_id_check", "UPDATE db_targets SET secret_key_id = '' WHERE name = 'orders'"),
    check(
        "db_targets_secret_ref_check",
        "UPDATE db_targets SET secret_ref = 'vault:orders' WHERE name = 'orders-staging'",
    ),
    check(
        "db_targets_secret_ref_check",
        "UPDATE db_targets SET secret_ref = 'file:/' || repeat('s', 1000) WHERE name = 'orders-staging'",
    ),
    check(
        "db_targets_secret_ref_check",
        "UPDATE db_targets SET secret_ref = 'file:/run/my secrets' WHERE name = 'orders-staging'",
    ),
    check("db_targets_tls_mode_check", "UPDATE db_targets SET tls_mode = 'sometimes' WHERE name = 'orders'"),
    check("db_targets_labels_check", "UPDATE db_targets SET labels = '[]' WHERE name = 'orders'"),
    check(
        "db_targets_labels_check",
        "UPDATE db_targets SET labels = jsonb_build_object('k', repeat('x', 16384)) WHERE name = 'orders'",
    ),
    check("db_targets_variables_check", "UPDATE db_targets SET variables = '\"x\"' WHERE name = 'orders'"),
    check("db_targets_sealed_secret_complete", "UPDATE db_targets SET secret_nonce = NULL WHERE name = 'orders'"),
    check(
        "db_targets_one_secret_source",
        "UPDATE db_targets SET secret_ref = 'env:ORDERS_PASSWORD' WHERE name = 'orders'",
    ),
    // The staging target: the prod one is in a set, whose foreign key would refuse the move first.
    fk(
        "db_targets_environment_id_fkey",
        "UPDATE db_targets SET environment_id = '00000000-0000-0000-ffff-000000000000' \
         WHERE name = 'orders-staging'",
    ),
    unique(
        "db_targets_env_name_key",
        "UPDATE db_targets SET name = 'orders', environment_id = '00000000-0000-0000-0003-000000000001' \
         WHERE name = 'orders-staging'",
    ),
    // db_sets
    check("db_sets_name_check", "UPDATE db_sets SET name = 'All orders'"),
    check("db_sets_description_check", "UPDATE db_sets SET description = repeat('d', 2001)"),
    fk(
        "db_sets_environment_id_fkey",
        "INSERT INTO db_sets (id, environment_id, name) \
         VALUES ('00000000-0000-0000-0005-000000000002', '00000000-0000-0000-ffff-000000000000', 'other')",
    ),
    unique(
        "db_sets_env_name_key",
        "INSERT INTO db_sets (id, environment_id, name) \
         VALUES ('00000000-0000-0000-0005-000000000002', '00000000-0000-0000-0003-000000000001', 'all-orders')",
    ),
    // db_set_members
    fk("db_set_members_set_fkey", "UPDATE db_set_members SET db_set_id = '00000000-0000-0000-ffff-000000000000'"),
    // A prod set, a staging target: claiming the staging environment does not help.
    fk(
        "db_set_members_set_fkey",
        "UPDATE db_set_members SET db_target_id = '00000000-0000-0000-0004-000000000002', \
                                   environment_id = '00000000-0000-0000-0003-000000000002'",
    ),
    // A prod set, a staging target, the prod environment.
    fk("db_set_members_target_fkey", "UPDATE db_set_members SET db_target_id = '00000000-0000-0000-0004-000000000002'"),
    // projects
    check("projects_name_check", "UPDATE projects SET name = 'Orders'"),
    check("projects_dialects_check", "UPDATE projects SET dialects = '{oracle}'"),
    check("projects_dialects_check", "UPDATE projects SET dialects = '{}'"),
    check("projects_dialects_check", "UPDATE projects SET dialects = ARRAY['postgres', NULL]"),
    check("projects_lint_rules_off_check", "UPDATE projects SET lint_rules_off = ARRAY[NULL]::text[]"),
    check("projects_description_check", "UPDATE projects SET description = repeat('d', 2001)"),
    check("projects_history_table_check", "UPDATE projects SET history_table = 'migrate-hub-history'"),
    check("projects_history_table_check", "UPDATE projects SET history_table = 'public.history'"),
    fk("projects_created_by_fkey", "UPDATE projects SET created_by = '00000000-0000-0000-ffff-000000000000'"),
    unique(
        "projects_name_key",
        "INSERT INTO projects (id, name, created_by) \
         VALUES ('00000000-0000-0000-0006-000000000002', 'orders', '00000000-0000-0000-0001-000000000001')",
    ),
    // migrations
    check("migrations_version_key_check", "UPDATE migrations SET version_key = '_0001'"),
    check("migrations_version_key_check", "UPDATE migrations SET version_key = '0001 create'"),
    check("migrations_name_check", "UPDATE migrations SET name = ''"),
    check("migrations_source_path_check", "UPDATE migrations SET source_path = ''"),
    fk("migrations_project_id_fkey", "UPDATE migrations SET project_id = '00000000-0000-0000-ffff-000000000000'"),
    fk("migrations_created_by_fkey", "UPDATE migrations SET created_by = '00000000-0000-0000-ffff-000000000000'"),
    unique(
        "migrations_project_version_key",
        "INSERT INTO migrations (id, project_id, version_key, name, created_by) \
         VALUES ('00000000-0000-0000-0007-000000000002', '00000000-0000-0000-0006-000000000001', \
                 '20260101.0001', 'again', '00000000-0000-0000-0001-000000000001')",
    ),
    // migration_versions: no UPDATE gets past the immutability trigger, so each case inserts version 2.
    check(
        "migration_versions_version_no_check",
        "INSERT INTO migration_versions (id, migration_id, version_no, up_sql, checksum_algorithm, up_checksum, \
                                         author_id) \
         VALUES ('00000000-0000-0000-0008-000000000002', '00000000-0000-0000-0007-000000000001', 0, 'SELECT 1', \
                 'sha256-lf-nobom', sha256('SELECT 1'), '00000000-0000-0000-0001-000000000001')",
    ),
    check(
        "migration_versions_up_sql_check",
        "INSERT INTO migration_versions (id, migration_id, version_no, up_sql, checksum_algorithm, up_checksum, \
                                         author_id) \
         VALUES ('00000000-0000-0000-0008-000000000002', '00000000-0000-0000-0007-000000000001', 2, \
                 repeat('x', 16777217), 'sha256-lf-nobom', sha256('x'), '00000000-0000-0000-0001-000000000001')",
    ),
    check(
        "migration_versions_down_sql_check",
        "INSERT INTO migration_versions (id, migration_id, version_no, up_sql, down_sql, checksum_algorithm, \
                                         up_checksum, down_checksum, author_id) \
         VALUES ('00000000-0000-0000-0008-000000000002', '00000000-0000-0000-0007-000000000001', 2, 'SELECT 1', \
                 repeat('x', 16777217), 'sha256-lf-nobom', sha256('SELECT 1'), sha256('x'), \
                 '00000000-0000-0000-0001-000000000001')",
    ),
    check(
        "migration_versions_checksum_algorithm_check",
        "INSERT INTO migration_versions (id, migration_id, version_no, up_sql, checksum_algorithm, up_checksum, \
                                         author_id) \
         VALUES ('00000000-0000-0000-0008-000000000002', '00000000-0000-0000-0007-000000000001', 2, 'SELECT 1', \
                 'sha256', sha256('SELECT 1'), '00000000-0000-0000-0001-000000000001')",
    ),
    check(
        "migration_versions_up_checksum_check",
        "INSERT INTO migration_versions (id, migration_id, version_no, up_sql, checksum_algorithm, up_checksum, \
                                         author_id) \
         VALUES ('00000000-0000-0000-0008-000000000002', '00000000-0000-0000-0007-000000000001', 2, 'SELECT 1', \
                 'sha256-lf-nobom', decode('00', 'hex'), '00000000-0000-0000-0001-000000000001')",
    ),
    check(
        "migration_versions_down_checksum_check",
        "INSERT INTO migration_versions (id, migration_id, version_no, up_sql, down_sql, checksum_algorithm, \
                                         up_checksum, down_checksum, author_id) \
         VALUES ('00000000-0000-0000-0008-000000000002', '00000000-0000-0000-0007-000000000001', 2, 'SELECT 1', \
                 'SELECT 2', 'sha256-lf-nobom', sha256('SELECT 1'), decode('00', 'hex'), \
                 '00000000-0000-0000-0001-000000000001')",
    ),
    check(
        "migration_versions_transaction_mode_check",
        "INSERT INTO migration_versions (id, migration_id, version_no, up_sql, checksum_algorithm, up_checksum, \
                                         transaction_mode, author_id) \
         VALUES ('00000000-0000-0000-0008-000000000002', '00000000-0000-0000-0007-000000000001', 2, 'SELECT 1', \
                 'sha256-lf-nobom', sha256('SELECT 1'), 'auto', '00000000-0000-0000-0001-000000000001')",
    ),
    check(
        "migration_versions_up_statements_check",
        "INSERT INTO migration_versions (id, migration_id, version_no, up_sql, checksum_algorithm, up_checksum, \
                                         up_statements, author_id) \
         VALUES ('00000000-0000-0000-0008-000000000002', '00000000-0000-0000-0007-000000000001', 2, 'SELECT 1', \
                 'sha256-lf-nobom', sha256('SELECT 1'), '{}', '00000000-0000-0000-0001-000000000001')",
    ),
    check(
        "migration_versions_down_statements_check",
        "INSERT INTO migration_versions (id, migration_id, version_no, up_sql, checksum_algorithm, up_checksum, \
                                         down_statements, author_id) \
         VALUES ('00000000-0000-0000-0008-000000000002', '00000000-0000-0000-0007-000000000001', 2, 'SELECT 1', \
                 'sha256-lf-nobom', sha256('SELECT 1'), '{}', '00000000-0000-0000-0001-000000000001')",
    ),
    check(
        "migration_versions_lint_results_check",
        "INSERT INTO migration_versions (id, migration_id, version_no, up_sql, checksum_algorithm, up_checksum, \
                                         lint_results, author_id) \
         VALUES ('00000000-0000-0000-0008-000000000002', '00000000-0000-0000-0007-000000000001', 2, 'SELECT 1', \
                 'sha256-lf-nobom', sha256('SELECT 1'), 'null', '00000000-0000-0000-0001-000000000001')",
    ),
    check(
        "migration_versions_source_hash_check",
        "INSERT INTO migration_versions (id, migration_id, version_no, up_sql, checksum_algorithm, up_checksum, \
                                         source_hash, author_id) \
         VALUES ('00000000-0000-0000-0008-000000000002', '00000000-0000-0000-0007-000000000001', 2, 'SELECT 1', \
                 'sha256-lf-nobom', sha256('SELECT 1'), decode('00', 'hex'), \
                 '00000000-0000-0000-0001-000000000001')",
    ),
    check(
        "migration_versions_down_pair",
        "INSERT INTO migration_versions (id, migration_id, version_no, up_sql, down_sql, checksum_algorithm, \
                                         up_checksum, author_id) \
         VALUES ('00000000-0000-0000-0008-000000000002', '00000000-0000-0000-0007-000000000001', 2, 'SELECT 1', \
                 'SELECT 2', 'sha256-lf-nobom', sha256('SELECT 1'), '00000000-0000-0000-0001-000000000001')",
    ),
    fk(
        "migration_versions_migration_id_fkey",
        "INSERT INTO migration_versions (id, migration_id, version_no, up_sql, checksum_algorithm, up_checksum, \
                                         author_id) \
         VALUES ('00000000-0000-0000-0008-000000000002', '00000000-0000-0000-ffff-000000000000', 1, 'SELECT 1', \
                 'sha256-lf-nobom', sha256('SELECT 1'), '00000000-0000-0000-0001-000000000001')",
    ),
    fk(
        "migration_versions_author_id_fkey",
        "INSERT INTO migration_versions (id, migration_id, version_no, up_sql, checksum_algorithm, up_checksum, \
                                         author_id) \
         VALUES ('00000000-0000-0000-0008-000000000002', '00000000-0000-0000-0007-000000000001', 2, 'SELECT 1', \
                 'sha256-lf-nobom', sha256('SELECT 1'), '00000000-0000-0000-ffff-000000000000')",
    ),
    unique(
        "migration_versions_number_key",
        "INSERT INTO migration_versions (id, migration_id, version_no, up_sql, checksum_algorithm, up_checksum, \
                                         author_id) \
         VALUES ('00000000-0000-0000-0008-000000000002', '00000000-0000-0000-0007-000000000001', 1, 'SELECT 1', \
                 'sha256-lf-nobom', sha256('SELECT 1'), '00000000-0000-0000-0001-000000000001')",
    ),
    // runs
    check("runs_direction_check", "UPDATE runs SET direction = 'sideways'"),
    check("runs_status_check", "UPDATE runs SET status = 'paused'"),
    check("runs_failure_policy_check", "UPDATE runs SET failure_policy = 'retry'"),
    check("runs_concurrency_limit_check", "UPDATE runs SET concurrency_limit = 0"),
    check("runs_concurrency_limit_check", "UPDATE runs SET concurrency_limit = 1001"),
    check("runs_comment_check", "UPDATE runs SET comment = repeat('c', 2001)"),
    check("runs_idempotency_key_check", "UPDATE runs SET idempotency_key = ''"),
    check("runs_executed_when_queued", "UPDATE runs SET executed_by = NULL"),
    check("runs_finished_when_terminal", "UPDATE runs SET finished_at = now()"),
    check("runs_finished_when_terminal", "UPDATE runs SET status = 'succeeded'"),
    fk("runs_executed_by_fkey", "UPDATE runs SET executed_by = '00000000-0000-0000-ffff-000000000000'"),
    check("runs_cancelled_by_when_cancelled", "UPDATE runs SET cancelled_by = '00000000-0000-0000-0001-000000000001'"),
    check("runs_claims_made", "UPDATE runs SET claims_made = -1"),
    check("runs_advance_check", "UPDATE runs SET advance = 'sometimes'"),
    check("runs_current_wave", "UPDATE runs SET current_wave = 1"),
    check("runs_current_wave_check", "UPDATE runs SET current_wave = -1"),
    check("runs_first_label_key_check", "UPDATE runs SET first_label_key = '', first_label_value = 'x'"),
    check(
        "runs_first_label_value_check",
        "UPDATE runs SET first_label_key = 'k', first_label_value = repeat('v', 201)",
    ),
    check("runs_label_pair", "UPDATE runs SET first_label_key = 'k'"),
    check("runs_wave_count_check", "UPDATE runs SET wave_count = 21"),
    check("runs_wave_end_check", "UPDATE runs SET wave_end = 0"),
    check("runs_wave_failed_check", "UPDATE runs SET wave_failed = -1"),
    check("runs_wave_failures_allowed_check", "UPDATE runs SET wave_failures_allowed = -1"),
    check("environments_drift_check_every_check", "UPDATE environments SET drift_check_every = 59"),
    fk(
        "target_schemas_accepted_by_fkey",
        "UPDATE target_schemas SET baseline_run = NULL, accepted_by = '00000000-0000-0000-ffff-000000000000'",
    ),
    check("target_schemas_baseline_check", "UPDATE target_schemas SET baseline = '[]'"),
    fk(
        "target_schemas_baseline_run_fkey",
        "UPDATE target_schemas SET baseline_run = '00000000-0000-0000-ffff-000000000000'",
    ),
    check(
        "target_schemas_baseline_source",
        "UPDATE target_schemas SET accepted_by = '00000000-0000-0000-0001-000000000001'",
    ),
    check("target_schemas_checked_check", "UPDATE target_schemas SET checked = '1'"),
    fk(
        "target_schemas_db_target_id_fkey",
        "UPDATE target_schemas SET db_target_id = '00000000-0000-0000-ffff-000000000000'",
    ),
    check("target_schemas_differences_check", "UPDATE target_schemas SET differences = '{}'"),
    check("target_schemas_drift_listed", "UPDATE target_schemas SET drifted_since = NULL"),
    fk("webhooks_created_by_fkey", "UPDATE webhooks SET created_by = '00000000-0000-0000-ffff-000000000000'"),
    fk("webhooks_environment_id_fkey", "UPDATE webhooks SET environment_id = '00000000-0000-0000-ffff-000000000000'"),
    check("webhooks_events_check", "UPDATE webhooks SET events = ARRAY['run.exploded']"),
    check("webhooks_events_check", "UPDATE webhooks SET events = ARRAY[]::text[]"),
    check("webhooks_format_check", "UPDATE webhooks SET format = 'xml'"),
    check("webhooks_secret_key_id_check", "UPDATE webhooks SET secret_key_id = ''"),
    check("webhooks_secret_nonce_check", "UPDATE webhooks SET secret_nonce = '\\x00'"),
    check("webhooks_url_check", "UPDATE webhooks SET url = 'ftp://hooks.example.com/x'"),
    check("webhook_deliveries_attempts_check", "UPDATE webhook_deliveries SET attempts = -1"),
    check("webhook_deliveries_delivered_when", "UPDATE webhook_deliveries SET status = 'delivered'"),
    check("webhook_deliveries_event_check", "UPDATE webhook_deliveries SET event = ''"),
    check("webhook_deliveries_last_error_check", "UPDATE webhook_deliveries SET last_error = repeat('e', 2001)"),
    check("webhook_deliveries_last_status_code_check", "UPDATE webhook_deliveries SET last_status_code = 99"),
    check("webhook_deliveries_payload_check", "UPDATE webhook_deliveries SET payload = '[]'"),
    check("webhook_deliveries_status_check", "UPDATE webhook_deliveries SET status = 'lost'"),
    fk(
        "webhook_deliveries_webhook_id_fkey",
        "UPDATE webhook_deliveries SET webhook_id = '00000000-0000-0000-ffff-000000000000'",
    ),
    fk(
        "maintenance_windows_environment_id_fkey",
        "UPDATE maintenance_windows SET environment_id = '00000000-0000-0000-ffff-000000000000'",
    ),
    check("maintenance_windows_position_check", "UPDATE maintenance_windows SET position = -1"),
    check("maintenance_windows_spec_check", "UPDATE maintenance_windows SET spec = ''"),
    check("maintenance_windows_weekday_check", "UPDATE maintenance_windows SET weekday = 8"),
    check("maintenance_windows_timezone_check", "UPDATE maintenance_windows SET timezone = ''"),
    check("maintenance_windows_not_empty", "UPDATE maintenance_windows SET ends = '02:00'"),
    check("run_waves_first_ordinal_check", "UPDATE run_waves SET first_ordinal = -1"),
    check("run_waves_max_failures_check", "UPDATE run_waves SET max_failures = -1"),
    check("run_waves_range", "UPDATE run_waves SET end_ordinal = 0"),
    fk("run_waves_run_id_fkey", "UPDATE run_waves SET run_id = '00000000-0000-0000-ffff-000000000000'"),
    check("run_waves_spec_check", "UPDATE run_waves SET spec = ''"),
    fk("run_waves_started_by_fkey", "UPDATE run_waves SET started_by = '00000000-0000-0000-ffff-000000000000'"),
    check("run_waves_tolerated_failures_check", "UPDATE run_waves SET tolerated_failures = -1"),
    check("run_waves_wave_check", "UPDATE run_waves SET wave = -1"),
    fk(
        "runs_cancelled_by_fkey",
        "UPDATE runs SET status = 'cancelled', finished_at = now(), cancelled_by = '00000000-0000-0000-ffff-000000000000'",
    ),
    fk("runs_retry_of_fkey", "UPDATE runs SET retry_of = '00000000-0000-0000-ffff-000000000000'"),
    // The fixture run's key is referenced by its approval, and its content is frozen since it started, so these
    // insert a second run (one that has not started).
    fk(
        "runs_project_id_fkey",
        "INSERT INTO runs (id, project_id, content_checksum, direction, environment_id, db_set_id, status, \
                           requested_by) \
         VALUES ('00000000-0000-0000-0009-000000000002', '00000000-0000-0000-ffff-000000000000', sha256('r'), 'up', \
                 '00000000-0000-0000-0003-000000000001', '00000000-0000-0000-0005-000000000001', \
                 'awaiting_approval', '00000000-0000-0000-0001-000000000001')",
    ),
    check(
        "runs_content_checksum_check",
        "INSERT INTO runs (id, project_id, content_checksum, direction, environment_id, db_set_id, status, \
                           requested_by) \
         VALUES ('00000000-0000-0000-0009-000000000002', '00000000-0000-0000-0006-000000000001', \
                 decode('00', 'hex'), 'up', '00000000-0000-0000-0003-000000000001', \
                 '00000000-0000-0000-0005-000000000001', 'awaiting_approval', '00000000-0000-0000-0001-000000000001')",
    ),
    check(
        "runs_revision_check",
        "INSERT INTO runs (id, project_id, content_checksum, revision, direction, environment_id, db_set_id, status, \
                           requested_by) \
         VALUES ('00000000-0000-0000-0009-000000000002', '00000000-0000-0000-0006-000000000001', sha256('r'), 0, \
                 'up', '00000000-0000-0000-0003-000000000001', '00000000-0000-0000-0005-000000000001', \
                 'awaiting_approval', '00000000-0000-0000-0001-000000000001')",
    ),
    // Also refused by the (db set, environment) key; this one is checked first.
    fk(
        "runs_environment_id_fkey",
        "INSERT INTO runs (id, project_id, content_checksum, direction, environment_id, db_set_id, status, \
                           requested_by) \
         VALUES ('00000000-0000-0000-0009-000000000002', '00000000-0000-0000-0006-000000000001', sha256('r'), 'up', \
                 '00000000-0000-0000-ffff-000000000000', '00000000-0000-0000-0005-000000000001', \
                 'awaiting_approval', '00000000-0000-0000-0001-000000000001')",
    ),
    // A run in staging over a prod set.
    fk(
        "runs_db_set_fkey",
        "INSERT INTO runs (id, project_id, content_checksum, direction, environment_id, db_set_id, status, \
                           requested_by) \
         VALUES ('00000000-0000-0000-0009-000000000002', '00000000-0000-0000-0006-000000000001', sha256('r'), 'up', \
                 '00000000-0000-0000-0003-000000000002', '00000000-0000-0000-0005-000000000001', \
                 'awaiting_approval', '00000000-0000-0000-0001-000000000001')",
    ),
    fk(
        "runs_requested_by_fkey",
        "INSERT INTO runs (id, project_id, content_checksum, direction, environment_id, db_set_id, status, \
                           requested_by) \
         VALUES ('00000000-0000-0000-0009-000000000002', '00000000-0000-0000-0006-000000000001', sha256('r'), 'up', \
                 '00000000-0000-0000-0003-000000000001', '00000000-0000-0000-0005-000000000001', \
                 'awaiting_approval', '00000000-0000-0000-ffff-000000000000')",
    ),
    unique(
        "runs_idempotency_key",
        "INSERT INTO runs (id, project_id, content_checksum, direction, environment_id, db_set_id, status, \
                           requested_by, idempotency_key) \
         VALUES ('00000000-0000-0000-0009-000000000002', '00000000-0000-0000-0006-000000000001', sha256('r'), 'up', \
                 '00000000-0000-0000-0003-000000000001', '00000000-0000-0000-0005-000000000001', \
                 'awaiting_approval', '00000000-0000-0000-0001-000000000001', 'release-42')",
    ),
    // The SQL review a run pins (a second run).
    check(
        "runs_risk_check",
        new_run!("db_set_id, risk, review", "'00000000-0000-0000-0005-000000000001', 'extreme', '[]'"),
    ),
    check(
        "runs_review_check",
        new_run!("db_set_id, risk, review", "'00000000-0000-0000-0005-000000000001', 'low', '{}'"),
    ),
    check("runs_review_with_risk", new_run!("db_set_id, risk", "'00000000-0000-0000-0005-000000000001', 'low'")),
    check(
        "runs_lint_override_check",
        new_run!(
            "db_set_id, lint_override, lint_override_by",
            "'00000000-0000-0000-0005-000000000001', '', '00000000-0000-0000-0001-000000000001'"
        ),
    ),
    check(
        "runs_lint_override_by",
        new_run!("db_set_id, lint_override", "'00000000-0000-0000-0005-000000000001', 'why'"),
    ),
    fk(
        "runs_lint_override_by_fkey",
        new_run!(
            "db_set_id, lint_override, lint_override_by",
            "'00000000-0000-0000-0005-000000000001', 'why', '00000000-0000-0000-ffff-000000000000'"
        ),
    ),
    // Run kinds and scopes (a second run, since what the fixture run does is frozen by a trigger).
    check("runs_kind_check", new_run!("db_set_id, kind", "'00000000-0000-0000-0005-000000000001', 'upgrade'")),
    check(
        "runs_adopt_from_check",
        new_run!("db_set_id, kind, adopt_from", "'00000000-0000-0000-0005-000000000001', 'adopt', 'liquibase'"),
    ),
    check(
        "runs_adopt_table_check",
        new_run!(
            "db_set_id, kind, adopt_from, adopt_table",
            "'00000000-0000-0000-0005-000000000001', 'adopt', 'goose', ''"
        ),
    ),
    check("runs_adopt_from", new_run!("db_set_id, adopt_from", "'00000000-0000-0000-0005-000000000001', 'goose'")),
    check("runs_adopt_table", new_run!("db_set_id, adopt_table", "'00000000-0000-0000-0005-000000000001', 't'")),
    check(
        "runs_recovery_resolution_check",
        new_run!(
            "db_target_id, kind, recovery_resolution, seen_status, seen_statements_done, seen_statements_total, seen_checksum",
            "'00000000-0000-0000-0004-000000000001', 'recovery', 'redo', 'failed', 1, 3, sha256('row')"
        ),
    ),
    check(
        "runs_seen_status_check",
        new_run!(
            "db_target_id, kind, recovery_resolution, seen_status, seen_statements_done, seen_statements_total, seen_checksum",
            "'00000000-0000-0000-0004-000000000001', 'recovery', 'resume', '', 1, 3, sha256('row')"
        ),
    ),
    check(
        "runs_seen_statements_done_check",
        new_run!(
            "db_target_id, kind, recovery_resolution, seen_status, seen_statements_done, seen_statements_total, seen_checksum",
            "'00000000-0000-0000-0004-000000000001', 'recovery', 'resume', 'failed', -1, 3, sha256('row')"
        ),
    ),
    check(
        "runs_seen_statements_total_check",
        new_run!(
            "db_target_id, kind, recovery_resolution, seen_status, seen_statements_done, seen_statements_total, seen_checksum",
            "'00000000-0000-0000-0004-000000000001', 'recovery', 'resume', 'failed', 1, -3, sha256('row')"
        ),
    ),
    check(
        "runs_seen_checksum_check",
        new_run!(
            "db_target_id, kind, recovery_resolution, seen_status, seen_statements_done, seen_statements_total, seen_checksum",
            "'00000000-0000-0000-0004-000000000001', 'recovery', 'resume', 'failed', 1, 3, decode('', 'hex')"
        ),
    ),
    check(
        "runs_seen_error_check",
        new_run!(
            "db_target_id, kind, recovery_resolution, seen_status, seen_statements_done, seen_statements_total, seen_checksum, seen_error",
            "'00000000-0000-0000-0004-000000000001', 'recovery', 'resume', 'failed', 1, 3, sha256('row'), repeat('e', 8001)"
        ),
    ),
    check(
        "runs_recovery_row",
        new_run!(
            "db_target_id, kind, recovery_resolution",
            "'00000000-0000-0000-0004-000000000001', 'baseline', 'resume'"
        ),
    ),
    check(
        "runs_recovery_one_target",
        new_run!(
            "db_set_id, kind, recovery_resolution, seen_status, seen_statements_done, seen_statements_total, seen_checksum",
            "'00000000-0000-0000-0005-000000000001', 'recovery', 'resume', 'failed', 1, 3, sha256('row')"
        ),
    ),
    check(
        "runs_one_scope",
        new_run!(
            "db_set_id, db_target_id",
            "'00000000-0000-0000-0005-000000000001', '00000000-0000-0000-0004-000000000001'"
        ),
    ),
    check(
        "runs_release_is_up_or_down",
        "INSERT INTO runs (id, project_id, content_checksum, direction, environment_id, db_set_id, status, \
                           requested_by, kind) \
         VALUES ('00000000-0000-0000-0009-000000000002', '00000000-0000-0000-0006-000000000001', sha256('r'), 'down', \
                 '00000000-0000-0000-0003-000000000001', '00000000-0000-0000-0005-000000000001', \
                 'awaiting_approval', '00000000-0000-0000-0001-000000000001', 'baseline')",
    ),
    // A run for a target of another environment.
    fk("runs_target_fkey", new_run!("db_target_id", "'00000000-0000-0000-0004-000000000002'")),
    // run_migrations: the fixture run has started, so its versions are frozen (a trigger refuses any change
    // before a constraint is checked); the cases give a second run, not started, its versions.
    check(
        "run_migrations_position_check",
        "INSERT INTO runs (id, project_id, content_checksum, direction, environment_id, db_set_id, status, \
                           requested_by) \
         VALUES ('00000000-0000-0000-0009-000000000002', '00000000-0000-0000-0006-000000000001', sha256('r'), 'up', \
                 '00000000-0000-0000-0003-000000000001', '00000000-0000-0000-0005-000000000001', \
                 'awaiting_approval', '00000000-0000-0000-0001-000000000001'); \
         INSERT INTO run_migrations (run_id, position, migration_version_id) \
         VALUES ('00000000-0000-0000-0009-000000000002', -1, '00000000-0000-0000-0008-000000000001')",
    ),
    fk(
        "run_migrations_run_id_fkey",
        "INSERT INTO run_migrations (run_id, position, migration_version_id) \
         VALUES ('00000000-0000-0000-ffff-000000000000', 0, '00000000-0000-0000-0008-000000000001')",
    ),
    fk(
        "run_migrations_migration_version_id_fkey",
        "INSERT INTO runs (id, project_id, content_checksum, direction, environment_id, db_set_id, status, \
                           requested_by) \
         VALUES ('00000000-0000-0000-0009-000000000002', '00000000-0000-0000-0006-000000000001', sha256('r'), 'up', \
                 '00000000-0000-0000-0003-000000000001', '00000000-0000-0000-0005-000000000001', \
                 'awaiting_approval', '00000000-0000-0000-0001-000000000001'); \
         INSERT INTO run_migrations (run_id, position, migration_version_id) \
         VALUES ('00000000-0000-0000-0009-000000000002', 0, '00000000-0000-0000-ffff-000000000000')",
    ),
    // The same version twice in one release.
    unique(
        "run_migrations_version_key",
        "INSERT INTO runs (id, project_id, content_checksum, direction, environment_id, db_set_id, status, \
                           requested_by) \
         VALUES ('00000000-0000-0000-0009-000000000002', '00000000-0000-0000-0006-000000000001', sha256('r'), 'up', \
                 '00000000-0000-0000-0003-000000000001', '00000000-0000-0000-0005-000000000001', \
                 'awaiting_approval', '00000000-0000-0000-0001-000000000001'); \
         INSERT INTO run_migrations (run_id, position, migration_version_id) \
         VALUES ('00000000-0000-0000-0009-000000000002', 0, '00000000-0000-0000-0008-000000000001'), \
                ('00000000-0000-0000-0009-000000000002', 1, '00000000-0000-0000-0008-000000000001')",
    ),
    // approvals
    check("approvals_direction_check", "UPDATE approvals SET direction = 'sideways'"),
    check("approvals_decision_check", "UPDATE approvals SET decision = 'maybe'"),
    check("approvals_comment_check", "UPDATE approvals SET comment = repeat('c', 2001)"),
    check("approvals_content_checksum_check", "UPDATE approvals SET content_checksum = decode('00', 'hex')"),
    check("approvals_run_revision_check", "UPDATE approvals SET run_revision = 0"),
    // The columns of decisions recorded before releases (one version's checksums) stay checked.
    check("approvals_checksum_algorithm_check", "UPDATE approvals SET checksum_algorithm = 'md5'"),
    check("approvals_up_checksum_check", "UPDATE approvals SET up_checksum = decode('00', 'hex')"),
    check("approvals_down_checksum_check", "UPDATE approvals SET down_checksum = decode('00', 'hex')"),
    fk("approvals_approver_id_fkey", "UPDATE approvals SET approver_id = '00000000-0000-0000-ffff-000000000000'"),
    fk(
        "approvals_migration_version_id_fkey",
        "UPDATE approvals SET migration_version_id = '00000000-0000-0000-ffff-000000000000'",
    ),
    fk("approvals_carried_from_fkey", "UPDATE approvals SET carried_from = '00000000-0000-0000-ffff-000000000000'"),
    // The approval must agree with its run on direction and environment.
    fk("approvals_run_fkey", "UPDATE approvals SET direction = 'down'"),
    fk("approvals_run_fkey", "UPDATE approvals SET environment_id = '00000000-0000-0000-0003-000000000002'"),
    fk("approvals_run_fkey", "UPDATE approvals SET run_id = '00000000-0000-0000-ffff-000000000000'"),
    unique(
        "approvals_one_decision_per_approver",
        "INSERT INTO approvals (id, run_id, run_revision, direction, environment_id, approver_id, decision, \
                                content_checksum) \
         VALUES ('00000000-0000-0000-000a-000000000002', '00000000-0000-0000-0009-000000000001', 1, 'up', \
                 '00000000-0000-0000-0003-000000000001', '00000000-0000-0000-0001-000000000001', 'deny', \
                 sha256('other content'))",
    ),
    // workers
    check("workers_hostname_check", "UPDATE workers SET hostname = ''"),
    check("workers_pid_check", "UPDATE workers SET pid = 0"),
    check("workers_version_check", "UPDATE workers SET version = ''"),
    check("workers_status_check", "UPDATE workers SET status = 'zombie'"),
    check("workers_stopped_at", "UPDATE workers SET status = 'stopped'"),
    check("workers_stopped_at", "UPDATE workers SET stopped_at = now()"),
    // run_items
    check("run_items_ordinal_check", "UPDATE run_items SET ordinal = -1"),
    check(
        "run_items_status_check",
        "UPDATE run_items SET status = 'paused', lease_owner = NULL, lease_expires_at = NULL",
    ),
    check("run_items_attempts_check", "UPDATE run_items SET attempts = -1"),
    check("run_items_max_attempts_check", "UPDATE run_items SET max_attempts = 0"),
    check("run_items_max_attempts_check", "UPDATE run_items SET max_attempts = 101"),
    check("run_items_fencing_token_check", "UPDATE run_items SET fencing_token = -1"),
    check("run_items_statements_done_check", "UPDATE run_items SET statements_done = -1"),
    check("run_items_migrations_done_check", "UPDATE run_items SET migrations_done = -1"),
    // As with statements_total: a negative total breaks run_items_migration_progress first.
    check(
        "run_items_migrations_total_check",
        "ALTER TABLE run_items DROP CONSTRAINT run_items_migration_progress; \
         UPDATE run_items SET migrations_total = -1",
    ),
    check("run_items_migration_progress", "UPDATE run_items SET migrations_total = -1"),
    check("run_items_migration_progress", "UPDATE run_items SET migrations_done = 2"),
    // A negative total also breaks run_items_progress (done >= 0 > total), which is checked first: this
    // constraint is implied by the other two, so the case drops run_items_progress (rolled back) to see it.
    check(
        "run_items_statements_total_check",
        "ALTER TABLE run_items DROP CONSTRAINT run_items_progress; UPDATE run_items SET statements_total = -1",
    ),
    check("run_items_progress", "UPDATE run_items SET statements_total = -1"),
    check("run_items_progress", "UPDATE run_items SET statements_done = 2"),
    check("run_items_duration_ms_check", "UPDATE run_items SET duration_ms = -1"),
    check("run_items_error_code_check", "UPDATE run_items SET error_code = ''"),
    check("run_items_error_message_check", "UPDATE run_items SET error_message = repeat('e', 8001)"),
    check("run_items_lease_when_running", "UPDATE run_items SET lease_owner = NULL"),
    check("run_items_lease_when_running", "UPDATE run_items SET lease_expires_at = NULL"),
    check("run_items_lease_when_running", "UPDATE run_items SET status = 'pending'"),
    check("run_items_finished_when_terminal", "UPDATE run_items SET finished_at = now()"),
    fk("run_items_run_fkey", "UPDATE run_items SET run_id = '00000000-0000-0000-ffff-000000000000'"),
    fk("run_items_target_fkey", "UPDATE run_items SET db_target_id = '00000000-0000-0000-ffff-000000000000'"),
    // A target of another environment (staging) in a prod run.
    fk("run_items_target_fkey", "UPDATE run_items SET db_target_id = '00000000-0000-0000-0004-000000000002'"),
    fk("run_items_lease_owner_fkey", "UPDATE run_items SET lease_owner = '00000000-0000-0000-ffff-000000000000'"),
    unique(
        "run_items_run_target_key",
        "INSERT INTO run_items (id, run_id, db_target_id, environment_id, ordinal) \
         VALUES ('00000000-0000-0000-000c-000000000002', '00000000-0000-0000-0009-000000000001', \
                 '00000000-0000-0000-0004-000000000001', '00000000-0000-0000-0003-000000000001', 1)",
    ),
    unique(
        "run_items_run_ordinal_key",
        "INSERT INTO run_items (id, run_id, db_target_id, environment_id, ordinal) \
         VALUES ('00000000-0000-0000-000c-000000000002', '00000000-0000-0000-0009-000000000001', \
                 '00000000-0000-0000-0004-000000000002', '00000000-0000-0000-0003-000000000001', 0)",
    ),
    // run_item_logs
    check("run_item_logs_seq_check", "UPDATE run_item_logs SET seq = -1"),
    check("run_item_logs_level_check", "UPDATE run_item_logs SET level = 'trace'"),
    check("run_item_logs_message_check", "UPDATE run_item_logs SET message = repeat('m', 8001)"),
    check("run_item_logs_statement_index_check", "UPDATE run_item_logs SET statement_index = -1"),
    check("run_item_logs_version_key_check", "UPDATE run_item_logs SET version_key = ''"),
    check("run_item_logs_version_key_check", "UPDATE run_item_logs SET version_key = repeat('k', 65)"),
    check("run_item_logs_duration_ms_check", "UPDATE run_item_logs SET duration_ms = -1"),
    check("run_item_logs_rows_affected_check", "UPDATE run_item_logs SET rows_affected = -1"),
    unique(
        "run_item_logs_seq_key",
        "INSERT INTO run_item_logs (run_item_id, seq, level, message) \
         VALUES ('00000000-0000-0000-000c-000000000001', 0, 'info', 'again')",
    ),
    // audit_events: append-only, so each case inserts a second link of the chain.
    check(
        "audit_events_actor_kind_check",
        "INSERT INTO audit_events (actor_kind, actor_label, action, object_type, prev_hash, hash) \
         VALUES ('robot', 'hub', 'project.create', 'project', sha256('genesis'), sha256('second'))",
    ),
    check(
        "audit_events_actor_label_check",
        "INSERT INTO audit_events (actor_kind, actor_label, action, object_type, prev_hash, hash) \
         VALUES ('system', '', 'project.create', 'project', sha256('genesis'), sha256('second'))",
    ),
    check(
        "audit_events_action_check",
        "INSERT INTO audit_events (actor_kind, actor_label, action, object_type, prev_hash, hash) \
         VALUES ('system', 'hub', 'create', 'project', sha256('genesis'), sha256('second'))",
    ),
    check(
        "audit_events_action_check",
        "INSERT INTO audit_events (actor_kind, actor_label, action, object_type, prev_hash, hash) \
         VALUES ('system', 'hub', 'Project.Create', 'project', sha256('genesis'), sha256('second'))",
    ),
    check(
        "audit_events_object_type_check",
        "INSERT INTO audit_events (actor_kind, actor_label, action, object_type, prev_hash, hash) \
         VALUES ('system', 'hub', 'project.create', 'Project', sha256('genesis'), sha256('second'))",
    ),
    check(
        "audit_events_object_id_check",
        "INSERT INTO audit_events (actor_kind, actor_label, action, object_type, object_id, prev_hash, hash) \
         VALUES ('system', 'hub', 'project.create', 'project', '', sha256('genesis'), sha256('second'))",
    ),
    check(
        "audit_events_details_check",
        "INSERT INTO audit_events (actor_kind, actor_label, action, object_type, details, prev_hash, hash) \
         VALUES ('system', 'hub', 'project.create', 'project', '[]', sha256('genesis'), sha256('second'))",
    ),
    check(
        "audit_events_details_check",
        "INSERT INTO audit_events (actor_kind, actor_label, action, object_type, details, prev_hash, hash) \
         VALUES ('system', 'hub', 'project.create', 'project', jsonb_build_object('k', repeat('x', 65536)), \
                 sha256('genesis'), sha256('second'))",
    ),
    check(
        "audit_events_user_agent_check",
        "INSERT INTO audit_events (actor_kind, actor_label, action, object_type, user_agent, prev_hash, hash) \
         VALUES ('system', 'hub', 'project.create', 'project', repeat('u', 501), sha256('genesis'), \
                 sha256('second'))",
    ),
    check(
        "audit_events_prev_hash_check",
        "INSERT INTO audit_events (actor_kind, actor_label, action, object_type, prev_hash, hash) \
         VALUES ('system', 'hub', 'project.create', 'project', decode('00', 'hex'), sha256('second'))",
    ),
    check(
        "audit_events_hash_check",
        "INSERT INTO audit_events (actor_kind, actor_label, action, object_type, prev_hash, hash) \
         VALUES ('system', 'hub', 'project.create', 'project', sha256('genesis'), decode('00', 'hex'))",
    ),
    check(
        "audit_events_chain_layout_check",
        "INSERT INTO audit_events (actor_kind, actor_label, action, object_type, prev_hash, hash, chain_layout) \
         VALUES ('system', 'hub', 'project.create', 'project', sha256('genesis'), sha256('second'), 3)",
    ),
    check(
        "audit_events_user_actor",
        "INSERT INTO audit_events (actor_kind, actor_label, action, object_type, prev_hash, hash) \
         VALUES ('token', 'mhk_ab12', 'project.create', 'project', sha256('genesis'), sha256('second'))",
    ),
    fk(
        "audit_events_actor_user_id_fkey",
        "INSERT INTO audit_events (actor_kind, actor_user_id, actor_label, action, object_type, prev_hash, hash) \
         VALUES ('user', '00000000-0000-0000-ffff-000000000000', 'ghost@example.com', 'project.create', \
                 'project', sha256('genesis'), sha256('second'))",
    ),
    unique(
        "audit_events_hash_key",
        "INSERT INTO audit_events (actor_kind, actor_label, action, object_type, prev_hash, hash) \
         VALUES ('system', 'hub', 'project.create', 'project', sha256('genesis'), sha256('genesis'))",
    ),
    // A second first row: NULLS NOT DISTINCT makes the chain's start unique too.
    unique(
        "audit_events_one_successor",
        "INSERT INTO audit_events (actor_kind, actor_label, action, object_type, prev_hash, hash) \
         VALUES ('system', 'hub', 'project.create', 'project', NULL, sha256('second'))",
    ),
    fk(
        "audit_events_prev_fkey",
        "INSERT INTO audit_events (actor_kind, actor_label, action, object_type, prev_hash, hash) \
         VALUES ('system', 'hub', 'project.create', 'project', sha256('nowhere'), sha256('second'))",
    ),
];

/// Unique constraints no row can break on its own: they extend the primary key so that composite foreign
/// keys can reference them, and the primary key refuses a duplicate first.
const EXTEND_THE_PRIMARY_KEY: &[&str] =
    &["db_targets_id_env_key", "db_sets_id_env_key", "runs_approval_target_key", "runs_id_env_key"];

/// What the database said when it refused a statement.
#[derive(Debug)]
struct Refusal {
    sqlstate: String,
    constraint: Option<String>,
    column: Option<String>,
    message: String,
}

/// A migrated database holding [`FIXTURE`]; the fixture itself must be accepted.
async fn fixture() -> PgDatabase {
    let db = PgDatabase::migrated().await;
    for sql in FIXTURE {
        if let Err(e) = sqlx::query(*sql).execute(&db.pool).await {
            panic!("the valid fixture was refused: {e}\n{sql}");
        }
    }
    db
}

/// Runs `sql` (one or more statements) in a transaction that is always rolled back, and returns the error
/// the database raised, or `None` if it accepted every statement.
async fn refusal(pool: &PgPool, sql: &'static str) -> Option<Refusal> {
    refusal_after(pool, "", sql.to_owned()).await
}

/// [`refusal`] of `sql` run after `setup` (in the same transaction), which must be accepted.
async fn refusal_after(pool: &PgPool, setup: &str, sql: String) -> Option<Refusal> {
    let mut tx = pool.begin().await.unwrap();
    if !setup.is_empty()
        && let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(setup.to_owned())).execute(&mut *tx).await
    {
        panic!("the setup was refused: {e}\n{setup}");
    }
    let outcome = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone())).execute(&mut *tx).await;
    tx.rollback().await.unwrap();
    let error = outcome.err()?;
    let Some(db_error) = error.as_database_error() else {
        panic!("{sql}\nfailed without a database error: {error}");
    };
    Some(Refusal {
        sqlstate: db_error.code().map(|code| code.into_owned()).unwrap_or_default(),
        constraint: db_error.constraint().map(str::to_owned),
        column: db_error.try_downcast_ref::<PgDatabaseError>().and_then(|e| e.column()).map(str::to_owned),
        message: db_error.message().to_owned(),
    })
}

/// `None` when `sql` is refused by `constraint` with `sqlstate`; otherwise what happened instead.
async fn mismatch(pool: &PgPool, sql: &'static str, constraint: &str, sqlstate: &str) -> Option<String> {
    match refusal(pool, sql).await {
        None => Some(format!("{constraint}: accepted\n    {sql}")),
        Some(r) if r.sqlstate == sqlstate && r.constraint.as_deref() == Some(constraint) => None,
        Some(r) => Some(format!(
            "{constraint}: expected {sqlstate}, got {} from {:?}: {}\n    {sql}",
            r.sqlstate, r.constraint, r.message
        )),
    }
}

/// Asserts that `sql` is refused by `constraint` with `sqlstate`.
async fn expect_refusal(pool: &PgPool, sql: &'static str, constraint: &str, sqlstate: &str) {
    if let Some(problem) = mismatch(pool, sql, constraint, sqlstate).await {
        panic!("{problem}");
    }
}

#[tokio::test]
async fn the_fixture_fills_every_table() {
    let db = fixture().await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename <> '_sqlx_migrations' \
         ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(tables.len() >= 15, "the schema's tables: {tables:?}");
    let mut empty = Vec::new();
    for table in &tables {
        let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(r#"SELECT count(*) FROM "{table}""#)))
            .fetch_one(&db.pool)
            .await
            .unwrap();
        if rows == 0 {
            empty.push(table.as_str());
        }
    }
    assert!(empty.is_empty(), "the fixture has no row in: {empty:?}");
}

#[tokio::test]
async fn every_case_is_refused_by_its_constraint() {
    let db = fixture().await;
    let mut problems = Vec::new();
    for case in CASES {
        if let Some(problem) = mismatch(&db.pool, case.sql, case.constraint, case.sqlstate).await {
            problems.push(problem);
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} cases were not refused as expected:\n{}",
        problems.len(),
        CASES.len(),
        problems.join("\n")
    );
}

#[tokio::test]
async fn every_constraint_has_a_case() {
    let db = PgDatabase::migrated().await;
    // CHECK, FOREIGN KEY and UNIQUE constraints, and unique indexes that are not constraints.
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.conname::text, c.contype::text \
         FROM pg_constraint c \
         JOIN pg_class t ON t.oid = c.conrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = 'public' AND t.relname <> '_sqlx_migrations' AND c.contype IN ('c', 'f', 'u') \
         UNION ALL \
         SELECT i.relname::text, 'i' \
         FROM pg_index x \
         JOIN pg_class i ON i.oid = x.indexrelid \
         JOIN pg_class t ON t.oid = x.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = 'public' AND t.relname <> '_sqlx_migrations' AND x.indisunique AND NOT x.indisprimary \
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let count = |kind: &str| rows.iter().filter(|(_, contype)| contype == kind).count();
    // Guards against a query that finds nothing and so passes.
    assert!(count("c") >= 100 && count("f") >= 20 && count("u") >= 15, "too few constraints found: {rows:?}");

    let in_schema: BTreeSet<&str> = rows.iter().map(|(name, _)| name.as_str()).collect();
    let covered: BTreeSet<&str> =
        CASES.iter().map(|case| case.constraint).chain(EXTEND_THE_PRIMARY_KEY.iter().copied()).collect();
    let missing: Vec<&str> = in_schema.difference(&covered).copied().collect();
    assert!(missing.is_empty(), "constraints without a case in CASES: {missing:?}");
    let stale: Vec<&str> = covered.difference(&in_schema).copied().collect();
    assert!(stale.is_empty(), "cases for constraints the schema does not have: {stale:?}");

    // The exemptions are exactly the unique constraints that contain their table's primary key.
    let extending: BTreeSet<String> = sqlx::query_scalar(
        "SELECT u.conname::text \
         FROM pg_constraint u \
         JOIN pg_constraint p ON p.conrelid = u.conrelid AND p.contype = 'p' \
         WHERE u.connamespace = 'public'::regnamespace AND u.contype = 'u' AND u.conkey @> p.conkey",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert_eq!(
        extending.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        BTreeSet::from_iter(EXTEND_THE_PRIMARY_KEY.iter().copied())
    );
}

#[tokio::test]
async fn migration_versions_are_immutable() {
    let db = fixture().await;
    for sql in [
        "UPDATE migration_versions SET up_sql = 'DROP TABLE orders'",
        "UPDATE migration_versions SET up_checksum = up_checksum",
        "DELETE FROM migration_versions",
    ] {
        let r = refusal(&db.pool, sql).await.unwrap_or_else(|| panic!("accepted: {sql}"));
        assert_eq!(r.sqlstate, RESTRICT, "{sql}: {}", r.message);
        assert!(r.message.contains("immutable"), "{sql}: {}", r.message);
    }
}

#[tokio::test]
async fn audit_events_are_append_only() {
    let db = fixture().await;
    for (sql, operation) in [
        ("UPDATE audit_events SET actor_label = 'mallory'", "UPDATE"),
        ("DELETE FROM audit_events", "DELETE"),
        ("TRUNCATE audit_events", "TRUNCATE"),
    ] {
        let r = refusal(&db.pool, sql).await.unwrap_or_else(|| panic!("accepted: {sql}"));
        assert_eq!(r.sqlstate, RESTRICT, "{sql}: {}", r.message);
        assert!(r.message.contains("append-only"), "{sql}: {}", r.message);
        assert!(r.message.contains(operation), "{sql}: {}", r.message);
    }
    // Appending is what the table is for.
    sqlx::query(
        "INSERT INTO audit_events (actor_kind, actor_label, action, object_type, prev_hash, hash) \
         VALUES ('system', 'hub', 'project.create', 'project', sha256('genesis'), sha256('second'))",
    )
    .execute(&db.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn required_columns_refuse_null() {
    let db = fixture().await;
    for (sql, column) in [
        ("UPDATE users SET email = NULL", "email"),
        ("UPDATE db_set_members SET environment_id = NULL", "environment_id"),
        ("UPDATE runs SET requested_by = NULL", "requested_by"),
        ("UPDATE runs SET project_id = NULL", "project_id"),
        (
            "INSERT INTO runs (id, project_id, direction, environment_id, db_set_id, status, requested_by) \
             VALUES ('00000000-0000-0000-0009-000000000002', '00000000-0000-0000-0006-000000000001', 'up', \
                     '00000000-0000-0000-0003-000000000001', '00000000-0000-0000-0005-000000000001', \
                     'awaiting_approval', '00000000-0000-0000-0001-000000000001')",
            "content_checksum",
        ),
        ("UPDATE approvals SET content_checksum = NULL", "content_checksum"),
        ("UPDATE approvals SET run_revision = NULL", "run_revision"),
        ("UPDATE run_items SET fencing_token = NULL", "fencing_token"),
        (
            "INSERT INTO audit_events (actor_kind, actor_label, action, object_type, prev_hash) \
             VALUES ('system', 'hub', 'project.create', 'project', sha256('genesis'))",
            "hash",
        ),
    ] {
        let r = refusal(&db.pool, sql).await.unwrap_or_else(|| panic!("accepted: {sql}"));
        assert_eq!((r.sqlstate.as_str(), r.column.as_deref()), (NOT_NULL, Some(column)), "{sql}: {}", r.message);
    }
}

// The rules the product leans on, spelled out one by one (they are in `CASES` too).

#[tokio::test]
async fn an_approver_decides_once_per_revision_of_a_run() {
    let db = fixture().await;
    // A second decision on the same revision, whatever content it names.
    expect_refusal(
        &db.pool,
        "INSERT INTO approvals (id, run_id, run_revision, direction, environment_id, approver_id, decision, \
                                content_checksum) \
         SELECT '00000000-0000-0000-000a-000000000002', id, revision, direction, environment_id, \
                '00000000-0000-0000-0001-000000000001', 'approve', content_checksum \
         FROM runs WHERE id = '00000000-0000-0000-0009-000000000001'",
        "approvals_one_decision_per_approver",
        UNIQUE,
    )
    .await;
    // A refresh makes a new revision, which the same approver decides again.
    sqlx::query(
        "INSERT INTO approvals (id, run_id, run_revision, direction, environment_id, approver_id, decision, \
                                content_checksum) \
         VALUES ('00000000-0000-0000-000a-000000000002', '00000000-0000-0000-0009-000000000001', 2, 'up', \
                 '00000000-0000-0000-0003-000000000001', '00000000-0000-0000-0001-000000000001', 'approve', \
                 sha256('newer content'))",
    )
    .execute(&db.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_version_key_is_unique_within_its_project_only() {
    let db = fixture().await;
    expect_refusal(
        &db.pool,
        "INSERT INTO migrations (id, project_id, version_key, name, created_by) \
         VALUES ('00000000-0000-0000-0007-000000000002', '00000000-0000-0000-0006-000000000001', \
                 '20260101.0001', 'create orders again', '00000000-0000-0000-0001-000000000001')",
        "migrations_project_version_key",
        UNIQUE,
    )
    .await;
    // The same key in another project is fine.
    sqlx::raw_sql(
        "INSERT INTO projects (id, name, created_by) \
         VALUES ('00000000-0000-0000-0006-000000000002', 'billing', '00000000-0000-0000-0001-000000000001'); \
         INSERT INTO migrations (id, project_id, version_key, name, created_by) \
         VALUES ('00000000-0000-0000-0007-000000000002', '00000000-0000-0000-0006-000000000002', \
                 '20260101.0001', 'create invoices', '00000000-0000-0000-0001-000000000001')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn an_email_belongs_to_one_user() {
    let db = fixture().await;
    expect_refusal(
        &db.pool,
        "INSERT INTO users (id, email, display_name) \
         VALUES ('00000000-0000-0000-0001-000000000002', 'ada@example.com', 'Impostor')",
        "users_email_key",
        UNIQUE,
    )
    .await;
}

#[tokio::test]
async fn a_db_set_holds_targets_of_its_own_environment_only() {
    let db = fixture().await;
    // The staging target into the prod set, under the prod environment: no such (target, environment).
    expect_refusal(
        &db.pool,
        "INSERT INTO db_set_members (db_set_id, db_target_id, environment_id) \
         VALUES ('00000000-0000-0000-0005-000000000001', '00000000-0000-0000-0004-000000000002', \
                 '00000000-0000-0000-0003-000000000001')",
        "db_set_members_target_fkey",
        FOREIGN_KEY,
    )
    .await;
    // …and under the staging environment: no such (set, environment).
    expect_refusal(
        &db.pool,
        "INSERT INTO db_set_members (db_set_id, db_target_id, environment_id) \
         VALUES ('00000000-0000-0000-0005-000000000001', '00000000-0000-0000-0004-000000000002', \
                 '00000000-0000-0000-0003-000000000002')",
        "db_set_members_set_fkey",
        FOREIGN_KEY,
    )
    .await;
}

#[tokio::test]
async fn an_approval_must_agree_with_its_run() {
    let db = fixture().await;
    sqlx::query(
        "INSERT INTO users (id, email, display_name, role) \
         VALUES ('00000000-0000-0000-0001-000000000002', 'grace@example.com', 'Grace Hopper', 'manager')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    // The run applies its release `up` in prod: an approval of `down` or of staging points at no run, one naming
    // a version (as decisions made before releases do) that does not exist at no version, and one carried over
    // from a decision that does not exist at no decision.
    for (sql, constraint) in [
        (
            "INSERT INTO approvals (id, run_id, run_revision, direction, environment_id, approver_id, decision, \
                                    content_checksum) \
             VALUES ('00000000-0000-0000-000a-000000000002', '00000000-0000-0000-0009-000000000001', 1, 'down', \
                     '00000000-0000-0000-0003-000000000001', '00000000-0000-0000-0001-000000000002', 'approve', \
                     sha256('x'))",
            "approvals_run_fkey",
        ),
        (
            "INSERT INTO approvals (id, run_id, run_revision, direction, environment_id, approver_id, decision, \
                                    content_checksum) \
             VALUES ('00000000-0000-0000-000a-000000000002', '00000000-0000-0000-0009-000000000001', 1, 'up', \
                     '00000000-0000-0000-0003-000000000002', '00000000-0000-0000-0001-000000000002', 'approve', \
                     sha256('x'))",
            "approvals_run_fkey",
        ),
        (
            "INSERT INTO approvals (id, run_id, run_revision, direction, environment_id, approver_id, decision, \
                                    content_checksum, migration_version_id, checksum_algorithm, up_checksum) \
             VALUES ('00000000-0000-0000-000a-000000000002', '00000000-0000-0000-0009-000000000001', 1, 'up', \
                     '00000000-0000-0000-0003-000000000001', '00000000-0000-0000-0001-000000000002', 'approve', \
                     sha256('x'), '00000000-0000-0000-ffff-000000000000', 'sha256-lf-nobom', sha256('x'))",
            "approvals_migration_version_id_fkey",
        ),
        (
            "INSERT INTO approvals (id, run_id, run_revision, direction, environment_id, approver_id, decision, \
                                    content_checksum, carried_from) \
             VALUES ('00000000-0000-0000-000a-000000000002', '00000000-0000-0000-0009-000000000001', 1, 'up', \
                     '00000000-0000-0000-0003-000000000001', '00000000-0000-0000-0001-000000000002', 'approve', \
                     sha256('x'), '00000000-0000-0000-ffff-000000000000')",
            "approvals_carried_from_fkey",
        ),
    ] {
        expect_refusal(&db.pool, sql, constraint, FOREIGN_KEY).await;
    }
    // The same approval of what the run does is accepted, carried over from the first decision or not.
    sqlx::query(
        "INSERT INTO approvals (id, run_id, run_revision, direction, environment_id, approver_id, decision, \
                                content_checksum, carried_from) \
         VALUES ('00000000-0000-0000-000a-000000000002', '00000000-0000-0000-0009-000000000001', 1, 'up', \
                 '00000000-0000-0000-0003-000000000001', '00000000-0000-0000-0001-000000000002', 'approve', \
                 sha256('x'), '00000000-0000-0000-000a-000000000001')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn the_audit_chain_is_a_line() {
    let db = fixture().await;
    expect_refusal(
        &db.pool,
        "INSERT INTO audit_events (actor_kind, actor_label, action, object_type, prev_hash, hash) \
         VALUES ('system', 'hub', 'user.login', 'user', NULL, sha256('another genesis'))",
        "audit_events_one_successor",
        UNIQUE,
    )
    .await;
    sqlx::query(
        "INSERT INTO audit_events (actor_kind, actor_label, action, object_type, prev_hash, hash) \
         VALUES ('system', 'hub', 'user.login', 'user', sha256('genesis'), sha256('second'))",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    // A fork: a second successor of the first row.
    expect_refusal(
        &db.pool,
        "INSERT INTO audit_events (actor_kind, actor_label, action, object_type, prev_hash, hash) \
         VALUES ('system', 'hub', 'user.login', 'user', sha256('genesis'), sha256('fork'))",
        "audit_events_one_successor",
        UNIQUE,
    )
    .await;
    // A link to nothing.
    expect_refusal(
        &db.pool,
        "INSERT INTO audit_events (actor_kind, actor_label, action, object_type, prev_hash, hash) \
         VALUES ('system', 'hub', 'user.login', 'user', sha256('missing'), sha256('third'))",
        "audit_events_prev_fkey",
        FOREIGN_KEY,
    )
    .await;
}

#[tokio::test]
async fn a_target_may_name_its_secret_by_reference() {
    let db = fixture().await;
    for sql in [
        "UPDATE db_targets SET secret_ref = 'env:ORDERS_PASSWORD' WHERE name = 'orders-staging'",
        "UPDATE db_targets SET secret_ref = 'file:/run/secrets/orders' WHERE name = 'orders-staging'",
    ] {
        if let Some(r) = refusal(&db.pool, sql).await {
            panic!("a valid secret reference was refused ({}): {}\n    {sql}", r.sqlstate, r.message);
        }
    }
}

/// A second version of the fixture migration, a second project, and a second run of the fixture's release
/// (its versions pinned while it awaited approval) whose status is then `status`.
fn second_run(status: &str) -> String {
    let finished = if ["denied", "succeeded", "failed", "cancelled"].contains(&status) { "now()" } else { "NULL" };
    format!(
        "INSERT INTO migration_versions (id, migration_id, version_no, up_sql, checksum_algorithm, up_checksum, \
                                         author_id) \
         VALUES ('00000000-0000-0000-0008-000000000002', '00000000-0000-0000-0007-000000000001', 2, \
                 'CREATE TABLE orders (id uuid PRIMARY KEY)', 'sha256-lf-nobom', \
                 sha256('CREATE TABLE orders (id uuid PRIMARY KEY)'), '00000000-0000-0000-0001-000000000001'); \
         INSERT INTO projects (id, name, created_by) \
         VALUES ('00000000-0000-0000-0006-000000000002', 'billing', '00000000-0000-0000-0001-000000000001'); \
         INSERT INTO runs (id, project_id, content_checksum, direction, environment_id, db_set_id, status, \
                           requested_by) \
         SELECT '00000000-0000-0000-0009-000000000002', project_id, content_checksum, direction, environment_id, \
                db_set_id, 'awaiting_approval', requested_by \
         FROM runs WHERE id = '00000000-0000-0000-0009-000000000001'; \
         INSERT INTO run_migrations (run_id, position, migration_version_id) \
         VALUES ('00000000-0000-0000-0009-000000000002', 0, '00000000-0000-0000-0008-000000000001'); \
         UPDATE runs SET status = '{status}', executed_by = requested_by, finished_at = {finished} \
         WHERE id = '00000000-0000-0000-0009-000000000002'"
    )
}

/// Every change to what run `run` applies: its content checksum, revision and project, and its versions.
fn content_changes(run: &str) -> Vec<String> {
    vec![
        format!("UPDATE runs SET content_checksum = sha256('newer content') WHERE id = '{run}'"),
        format!("UPDATE runs SET revision = revision + 1 WHERE id = '{run}'"),
        format!("UPDATE runs SET project_id = '00000000-0000-0000-0006-000000000002' WHERE id = '{run}'"),
        format!(
            "INSERT INTO run_migrations (run_id, position, migration_version_id) \
             VALUES ('{run}', 1, '00000000-0000-0000-0008-000000000002')"
        ),
        format!(
            "UPDATE run_migrations SET migration_version_id = '00000000-0000-0000-0008-000000000002' \
             WHERE run_id = '{run}'"
        ),
        format!("UPDATE run_migrations SET position = 1 WHERE run_id = '{run}'"),
        format!("DELETE FROM run_migrations WHERE run_id = '{run}'"),
    ]
}

#[tokio::test]
async fn a_runs_content_is_frozen_once_it_has_started() {
    let db = fixture().await;
    const RUNNING: &str = "00000000-0000-0000-0009-000000000001";
    const SECOND: &str = "00000000-0000-0000-0009-000000000002";
    // The fixture run is running.
    let setup = second_run("awaiting_approval");
    for sql in content_changes(RUNNING) {
        let r = refusal_after(&db.pool, &setup, sql.clone()).await.unwrap_or_else(|| panic!("accepted: {sql}"));
        assert_eq!(r.sqlstate, RESTRICT, "{sql}: {}", r.message);
        assert!(r.message.contains("frozen once it has started"), "{sql}: {}", r.message);
        assert!(r.message.contains(RUNNING) && r.message.contains("running"), "{sql}: {}", r.message);
    }
    // What a started run may still change: its status and progress, and the rest of its row.
    for sql in [
        "UPDATE runs SET status = 'succeeded', finished_at = now(), claims_made = 1",
        "UPDATE runs SET comment = 'applied', updated_at = now()",
        "UPDATE runs SET content_checksum = content_checksum, revision = revision, project_id = project_id",
    ] {
        if let Some(r) = refusal(&db.pool, sql).await {
            panic!("refused ({}): {}\n    {sql}", r.sqlstate, r.message);
        }
    }
    // The review it pinned changes only with a refresh, before it starts.
    for sql in [
        "UPDATE runs SET risk = 'low', review = '[]'",
        "UPDATE runs SET lint_override = 'why', lint_override_by = requested_by",
    ] {
        let sql = format!("{sql} WHERE id = '{RUNNING}'");
        let r = refusal_after(&db.pool, "", sql.clone()).await.unwrap_or_else(|| panic!("accepted: {sql}"));
        assert_eq!(r.sqlstate, RESTRICT, "{sql}: {}", r.message);
        assert!(r.message.contains("changes only by a refresh before it starts"), "{sql}: {}", r.message);
        let second = format!("{} WHERE id = '{SECOND}'", sql.split(" WHERE").next().unwrap());
        assert!(refusal_after(&db.pool, &second_run("approved"), second.clone()).await.is_none(), "{second}");
    }
    // What a run does (its kind, scope and their parameters) never changes, started or not.
    for sql in [
        "UPDATE runs SET kind = 'baseline'",
        "UPDATE runs SET db_set_id = NULL, db_target_id = '00000000-0000-0000-0004-000000000001'",
        "UPDATE runs SET seen_error = 'x'",
    ] {
        for (run, setup) in [(RUNNING, String::new()), (SECOND, second_run("awaiting_approval"))] {
            let sql = format!("{sql} WHERE id = '{run}'");
            let r = refusal_after(&db.pool, &setup, sql.clone()).await.unwrap_or_else(|| panic!("accepted: {sql}"));
            assert_eq!(r.sqlstate, RESTRICT, "{sql}: {}", r.message);
            assert!(r.message.contains("set at request and never changes"), "{sql}: {}", r.message);
        }
    }
    // A run that has not started may be refreshed (new content, a new revision, other versions); any other may
    // not. The trigger looks at the status the run had, whatever the statement sets.
    let statuses = ["awaiting_approval", "approved", "denied", "queued", "running", "succeeded", "failed", "cancelled"];
    for status in statuses {
        let setup = second_run(status);
        let refreshable = status == "awaiting_approval" || status == "approved";
        for sql in content_changes(SECOND) {
            match refusal_after(&db.pool, &setup, sql.clone()).await {
                None => assert!(refreshable, "{status}: accepted: {sql}"),
                Some(r) => {
                    assert!(!refreshable, "{status}: refused ({}): {}\n    {sql}", r.sqlstate, r.message);
                    assert_eq!(r.sqlstate, RESTRICT, "{status}: {sql}: {}", r.message);
                    assert!(r.message.contains(&format!("(status {status})")), "{status}: {sql}: {}", r.message);
                }
            }
        }
    }
    // A refresh as the hub makes it, in one transaction: accepted before the start…
    let refresh = format!(
        "UPDATE runs SET content_checksum = sha256('newer content'), revision = revision + 1, \
                         status = 'awaiting_approval' WHERE id = '{SECOND}'; \
         DELETE FROM run_migrations WHERE run_id = '{SECOND}'; \
         INSERT INTO run_migrations (run_id, position, migration_version_id) \
         VALUES ('{SECOND}', 0, '00000000-0000-0000-0008-000000000002')"
    );
    assert!(refusal_after(&db.pool, &second_run("approved"), refresh.clone()).await.is_none());
    // …and refused once queued, even together with a status change back.
    let r = refusal_after(&db.pool, &second_run("queued"), refresh).await.expect("a queued run was refreshed");
    assert_eq!(r.sqlstate, RESTRICT, "{}", r.message);
}

/// The tool database as the release before releases left it: a run pinned to one migration version, and
/// approvals naming the version (and its checksums) they were given for.
///
/// Run `…-0009-…01` applies version 2 of migration `20260101.0001`, which it was moved onto after an edit;
/// Ada approved version 1 before the edit and Grace version 2. Run `…-0009-…02` applied the only version of
/// `20260102.0001`, which has no down script, with Grace's approval.
const BEFORE_RELEASES: &str = "
    INSERT INTO users (id, email, display_name, role) VALUES
        ('00000000-0000-0000-0001-000000000001', 'dev@example.com', 'Dev', 'user'),
        ('00000000-0000-0000-0001-000000000002', 'ada@example.com', 'Ada', 'manager'),
        ('00000000-0000-0000-0001-000000000003', 'grace@example.com', 'Grace', 'manager');
    INSERT INTO environments (id, name, approval_required, approvals_required, execute_roles)
    VALUES ('00000000-0000-0000-0003-000000000001', 'prod', true, 1, ARRAY['manager', 'admin']);
    INSERT INTO db_targets (id, environment_id, name, engine, host, port, database_name, username)
    VALUES ('00000000-0000-0000-0004-000000000001', '00000000-0000-0000-0003-000000000001', 'orders', 'postgres',
            'db.internal', 5432, 'orders', 'migrator');
    INSERT INTO db_sets (id, environment_id, name)
    VALUES ('00000000-0000-0000-0005-000000000001', '00000000-0000-0000-0003-000000000001', 'all');
    INSERT INTO db_set_members (db_set_id, db_target_id, environment_id)
    VALUES ('00000000-0000-0000-0005-000000000001', '00000000-0000-0000-0004-000000000001',
            '00000000-0000-0000-0003-000000000001');
    INSERT INTO projects (id, name, history_table, created_by)
    VALUES ('00000000-0000-0000-0006-000000000001', 'orders', 'migrate_hub_history',
            '00000000-0000-0000-0001-000000000001');
    INSERT INTO migrations (id, project_id, version_key, name, created_by) VALUES
        ('00000000-0000-0000-0007-000000000001', '00000000-0000-0000-0006-000000000001', '20260101.0001',
         'create orders', '00000000-0000-0000-0001-000000000001'),
        ('00000000-0000-0000-0007-000000000002', '00000000-0000-0000-0006-000000000001', '20260102.0001',
         'index orders', '00000000-0000-0000-0001-000000000001');
    INSERT INTO migration_versions (id, migration_id, version_no, up_sql, down_sql, checksum_algorithm,
                                    up_checksum, down_checksum, author_id) VALUES
        ('00000000-0000-0000-0008-000000000001', '00000000-0000-0000-0007-000000000001', 1,
         'CREATE TABLE orders (id int PRIMARY KEY);', 'DROP TABLE orders;', 'sha256-lf-nobom',
         sha256('CREATE TABLE orders (id int PRIMARY KEY);'), sha256('DROP TABLE orders;'),
         '00000000-0000-0000-0001-000000000001'),
        ('00000000-0000-0000-0008-000000000002', '00000000-0000-0000-0007-000000000001', 2,
         'CREATE TABLE orders (id bigint PRIMARY KEY);', 'DROP TABLE orders;', 'sha256-lf-nobom',
         sha256('CREATE TABLE orders (id bigint PRIMARY KEY);'), sha256('DROP TABLE orders;'),
         '00000000-0000-0000-0001-000000000001'),
        ('00000000-0000-0000-0008-000000000003', '00000000-0000-0000-0007-000000000002', 1,
         'CREATE INDEX orders_id ON orders (id);', NULL, 'sha256-lf-nobom',
         sha256('CREATE INDEX orders_id ON orders (id);'), NULL, '00000000-0000-0000-0001-000000000001');
    INSERT INTO runs (id, migration_version_id, direction, environment_id, db_set_id, status, requested_by,
                      executed_by, queued_at, started_at, finished_at) VALUES
        ('00000000-0000-0000-0009-000000000001', '00000000-0000-0000-0008-000000000002', 'up',
         '00000000-0000-0000-0003-000000000001', '00000000-0000-0000-0005-000000000001', 'approved',
         '00000000-0000-0000-0001-000000000001', NULL, NULL, NULL, NULL),
        ('00000000-0000-0000-0009-000000000002', '00000000-0000-0000-0008-000000000003', 'up',
         '00000000-0000-0000-0003-000000000001', '00000000-0000-0000-0005-000000000001', 'succeeded',
         '00000000-0000-0000-0001-000000000001', '00000000-0000-0000-0001-000000000002', now(), now(), now());
    INSERT INTO approvals (id, run_id, migration_version_id, direction, environment_id, approver_id, decision,
                           checksum_algorithm, up_checksum, down_checksum) VALUES
        ('00000000-0000-0000-000a-000000000001', '00000000-0000-0000-0009-000000000001',
         '00000000-0000-0000-0008-000000000001', 'up', '00000000-0000-0000-0003-000000000001',
         '00000000-0000-0000-0001-000000000002', 'approve', 'sha256-lf-nobom',
         sha256('CREATE TABLE orders (id int PRIMARY KEY);'), sha256('DROP TABLE orders;')),
        ('00000000-0000-0000-000a-000000000002', '00000000-0000-0000-0009-000000000001',
         '00000000-0000-0000-0008-000000000002', 'up', '00000000-0000-0000-0003-000000000001',
         '00000000-0000-0000-0001-000000000003', 'approve', 'sha256-lf-nobom',
         sha256('CREATE TABLE orders (id bigint PRIMARY KEY);'), sha256('DROP TABLE orders;')),
        ('00000000-0000-0000-000a-000000000003', '00000000-0000-0000-0009-000000000002',
         '00000000-0000-0000-0008-000000000003', 'up', '00000000-0000-0000-0003-000000000001',
         '00000000-0000-0000-0001-000000000003', 'approve', 'sha256-lf-nobom',
         sha256('CREATE INDEX orders_id ON orders (id);'), NULL);
    INSERT INTO run_items (id, run_id, db_target_id, environment_id, ordinal, status, attempts, statements_done,
                           statements_total, started_at, finished_at) VALUES
        ('00000000-0000-0000-000c-000000000001', '00000000-0000-0000-0009-000000000001',
         '00000000-0000-0000-0004-000000000001', '00000000-0000-0000-0003-000000000001', 0, 'pending', 0, 0, NULL,
         NULL, NULL),
        ('00000000-0000-0000-000c-000000000002', '00000000-0000-0000-0009-000000000002',
         '00000000-0000-0000-0004-000000000001', '00000000-0000-0000-0003-000000000001', 0, 'succeeded', 1, 1, 1,
         now(), now());
    INSERT INTO run_item_logs (run_item_id, seq, level, message, statement_index)
    VALUES ('00000000-0000-0000-000c-000000000002', 0, 'info', 'statement 0 applied', 0);
";

#[tokio::test]
async fn the_releases_migration_makes_each_run_a_one_migration_release() {
    use domain::checksum::Checksum;
    use domain::enums::ApprovalDecision;
    use domain::ids::{ProjectId, RunId, UserId, VersionId};
    use domain::policy::{self, ApprovalState, EnvironmentPolicy, PinnedChecksums};
    use domain::run::RunStatus;
    use domain::values::VersionKey;

    let db = PgDatabase::fresh().await;
    let initial = storage::schema::MIGRATOR.iter().next().unwrap();
    assert_eq!(initial.description, "initial");
    sqlx::migrate::Migrator::with_migrations(vec![initial.clone()]).run(&db.pool).await.unwrap();
    assert!(!db.has_table("run_migrations").await);
    sqlx::raw_sql(BEFORE_RELEASES).execute(&db.pool).await.unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    assert!(!storage::schema::status(&mut conn).await.unwrap().is_current());
    // The upgrade, as `migrate-hub-server migrate` makes it.
    storage::schema::migrate(&db.pool).await.unwrap();
    assert!(storage::schema::status(&mut conn).await.unwrap().is_current());

    let id = |s: &str| uuid::Uuid::parse_str(s).unwrap();
    let release = |key: &str, up: &str, down: Option<&str>| {
        let key = VersionKey::parse(key).unwrap();
        let pinned = PinnedChecksums { up: Checksum::of(up), down: down.map(Checksum::of) };
        domain::release::content_checksum([(&key, &pinned)])
    };
    let (ada, grace) = (
        UserId::from_uuid(id("00000000-0000-0000-0001-000000000002")),
        UserId::from_uuid(id("00000000-0000-0000-0001-000000000003")),
    );
    let policy =
        |approvals: u8| EnvironmentPolicy { approvals_required: approvals, ..EnvironmentPolicy::production_default() };

    // The run that awaited execution: a release of version 2, at revision 2 (its version number).
    let edited =
        storage::runs::get(&mut conn, RunId::from_uuid(id("00000000-0000-0000-0009-000000000001"))).await.unwrap();
    let content = release("20260101.0001", "CREATE TABLE orders (id bigint PRIMARY KEY);", Some("DROP TABLE orders;"));
    assert_eq!(edited.content, content);
    assert_eq!(edited.project_id, ProjectId::from_uuid(id("00000000-0000-0000-0006-000000000001")));
    assert_eq!((edited.revision, edited.retry_of, edited.status), (2, None, RunStatus::Approved));
    let versions = storage::versions::of_run(&mut conn, edited.id).await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].position, 0);
    assert_eq!(versions[0].version_key.as_str(), "20260101.0001");
    assert_eq!(versions[0].version.id, VersionId::from_uuid(id("00000000-0000-0000-0008-000000000002")));
    // What the worker recomputes from the stored versions is what the migration pinned.
    let recomputed: Vec<_> = versions.iter().map(|v| (&v.version_key, v.version.checksums_of_text())).collect();
    let recomputed = domain::release::content_checksum(recomputed.iter().map(|(k, c)| (*k, c)));
    assert_eq!(recomputed, edited.content);

    // Grace's approval of version 2 still counts; Ada's, of version 1 before the edit, still does not.
    let approvals = storage::approvals::list_for_run(&mut conn, edited.id).await.unwrap();
    let of = |who: UserId| approvals.iter().find(|a| a.approver == who).unwrap();
    assert_eq!(approvals.len(), 2);
    assert_eq!((of(grace).revision, of(grace).pinned, of(grace).carried_from), (2, content, None));
    assert_eq!(of(grace).decision, ApprovalDecision::Approve);
    let before_edit = release("20260101.0001", "CREATE TABLE orders (id int PRIMARY KEY);", Some("DROP TABLE orders;"));
    assert_eq!((of(ada).revision, of(ada).pinned), (1, before_edit));
    let decisions: Vec<_> = approvals.iter().map(|a| a.facts()).collect();
    let facts = edited.facts();
    assert_eq!(policy::approval_state(&policy(1), &facts, &decisions), ApprovalState::Approved);
    assert_eq!(policy::approval_state(&policy(2), &facts, &decisions), ApprovalState::Pending { have: 1, need: 2 });
    assert_eq!(policy::may_apply(&policy(1), &facts, &decisions, &recomputed), Ok(()));
    // Ada decided on revision 1; she may decide on the current one.
    let ada_actor = policy::Actor { user_id: ada, role: domain::enums::Role::Manager };
    let awaiting = policy::RunFacts { status: RunStatus::AwaitingApproval, ..facts };
    assert_eq!(policy::may_approve(&ada_actor, &awaiting, &[], &decisions), Ok(()));
    let grace_actor = policy::Actor { user_id: grace, ..ada_actor };
    assert_eq!(policy::may_approve(&grace_actor, &awaiting, &[], &decisions), Err(policy::Denial::AlreadyDecided));

    // The finished run, of a version without a down script: `-` in the content text.
    let done =
        storage::runs::get(&mut conn, RunId::from_uuid(id("00000000-0000-0000-0009-000000000002"))).await.unwrap();
    let content = release("20260102.0001", "CREATE INDEX orders_id ON orders (id);", None);
    assert_eq!((done.content, done.revision, done.status), (content, 1, RunStatus::Succeeded));
    let versions = storage::versions::of_run(&mut conn, done.id).await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version.id).collect::<Vec<_>>(),
        [VersionId::from_uuid(id("00000000-0000-0000-0008-000000000003"))]
    );
    let approvals = storage::approvals::list_for_run(&mut conn, done.id).await.unwrap();
    assert_eq!(approvals.iter().map(|a| (a.revision, a.pinned)).collect::<Vec<_>>(), [(1, content)]);
    let decisions: Vec<_> = approvals.iter().map(|a| a.facts()).collect();
    assert_eq!(policy::approval_state(&policy(1), &done.facts(), &decisions), ApprovalState::Approved);

    // Items and log lines made before releases still read.
    let items =
        storage::run_items::list_for_run(&mut conn, done.id, None, &storage::PageRequest::first(10)).await.unwrap();
    assert_eq!(items.items.len(), 1);
    assert_eq!((items.items[0].migrations_done, items.items[0].migrations_total), (0, None));
    let lines = storage::logs::list(&mut conn, items.items[0].id, &storage::PageRequest::first(10)).await.unwrap();
    assert_eq!(
        lines.items.iter().map(|l| (l.version_key.clone(), l.statement_index)).collect::<Vec<_>>(),
        [(None, Some(0))]
    );

    // The migrated database holds only what the new schema allows: the started run is frozen.
    drop(conn);
    let r = refusal(
        &db.pool,
        "UPDATE runs SET content_checksum = sha256('x') WHERE id = '00000000-0000-0000-0009-000000000002'",
    )
    .await
    .expect("a finished run's content was changed");
    assert_eq!(r.sqlstate, RESTRICT, "{}", r.message);
}
