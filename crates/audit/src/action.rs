//! Every action the audit log records: one closed list, so a new event is named here or not at all, and the
//! names stored in the log (and hashed into its chain) stay exactly these strings.

use domain::run::RunStatus;

macro_rules! actions {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// An audited action; [`Action::as_str`] is the dotted name stored in the log.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action {
            $($(#[$doc])* $variant,)*
        }

        impl Action {
            /// Every action, in the order declared.
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            /// The dotted name stored in the log, e.g. `run.approve`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)*
                }
            }
        }
    };
}

actions! {
    /// A user signed in (OIDC or password).
    AuthLogin = "auth.login",
    AuthLogout = "auth.logout",
    EnvironmentCreate = "environment.create",
    EnvironmentUpdate = "environment.update",
    /// An admin replaced an environment's maintenance windows.
    EnvironmentWindows = "environment.windows",
    WebhookCreate = "webhook.create",
    WebhookDelete = "webhook.delete",
    /// An admin queued a test delivery to a webhook.
    WebhookTest = "webhook.test",
    TargetCreate = "target.create",
    TargetUpdate = "target.update",
    TargetSecretSet = "target.secret_set",
    TargetSecretClear = "target.secret_clear",
    TargetDelete = "target.delete",
    TargetTestConnection = "target.test_connection",
    /// A worker found a target's schema differing from what the hub's last apply left.
    TargetDriftDetected = "target.drift_detected",
    /// An admin accepted a target's schema as it is as its new baseline.
    TargetDriftAccepted = "target.drift_accepted",
    /// An admin read a target's history tables (the outcome, never the rows or the password).
    TargetReadHistory = "target.read_history",
    DbSetCreate = "db_set.create",
    DbSetUpdate = "db_set.update",
    DbSetMembers = "db_set.members",
    UserCreated = "user.created",
    UserUpdated = "user.updated",
    /// `create-admin` made an existing user an admin.
    UserPromoted = "user.promoted",
    UserPasswordSet = "user.password_set",
    UserPasswordCleared = "user.password_cleared",
    TokenCreated = "token.created",
    /// A token was asked for by someone or something not allowed to mint it (e.g. another token).
    TokenCreateRefused = "token.create_refused",
    TokenRevoked = "token.revoked",
    ProjectCreate = "project.create",
    ProjectUpdate = "project.update",
    MigrationCreate = "migration.create",
    MigrationVersion = "migration.version",
    MigrationImport = "migration.import",
    RunRequest = "run.request",
    RunApprove = "run.approve",
    RunDeny = "run.deny",
    RunExecute = "run.execute",
    RunRefresh = "run.refresh",
    RunRetry = "run.retry",
    RunCancel = "run.cancel",
    /// A person continued a run's waves: started the next wave, or resumed a halted run (tolerating the
    /// wave's failures so far).
    RunContinue = "run.continue",
    /// A retry carried an approval of the run it retries.
    RunApprovalCarried = "run.approval_carried",
    RunApproveRefused = "run.approve_refused",
    RunDenyRefused = "run.deny_refused",
    RunExecuteRefused = "run.execute_refused",
    RunRefreshRefused = "run.refresh_refused",
    RunRetryRefused = "run.retry_refused",
    RunCancelRefused = "run.cancel_refused",
    RunContinueRefused = "run.continue_refused",
    /// A worker started a queued run.
    RunRunning = "run.running",
    /// A worker halted a run: a wave failed more targets than it allows.
    RunHalted = "run.halted",
    /// A worker started a run's next wave by itself (the previous one ended within its budget).
    RunWaveStarted = "run.wave_started",
    RunSucceeded = "run.succeeded",
    RunFailed = "run.failed",
    RunCancelled = "run.cancelled",
    /// `rotate-key` resealed the target passwords under the newest master key.
    SecretsRotated = "secrets.rotated",
}

impl Action {
    /// The event of a run that ended with `status`; `None` for a status that is not an end a worker records.
    pub fn run_ended(status: RunStatus) -> Option<Action> {
        match status {
            RunStatus::Succeeded => Some(Action::RunSucceeded),
            RunStatus::Failed => Some(Action::RunFailed),
            RunStatus::Cancelled => Some(Action::RunCancelled),
            RunStatus::AwaitingApproval
            | RunStatus::Approved
            | RunStatus::Denied
            | RunStatus::Queued
            | RunStatus::Running
            | RunStatus::Halted => None,
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn names_are_unique_and_dotted() {
        let names: BTreeSet<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names.len(), Action::ALL.len());
        for name in names {
            let (object, verb) = name.split_once('.').unwrap_or_default();
            assert!(!object.is_empty() && !verb.is_empty() && !verb.contains('.'), "{name}");
        }
    }
}
