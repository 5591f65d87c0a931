//! The run and run-item state machines.
//!
//! A run is a request to apply (or revert) migrations to a set of targets; each migration on each
//! target is a run item, claimed and executed by a worker. Every status change in the tool database
//! goes through `transition_to` here, so an illegal change (e.g. reviving a finished run) is refused
//! in one place however it is attempted: API, UI, worker, or a retry racing a cancel.

closed_enum! {
    /// Where a run is in its life.
    ///
    /// ```text
    /// awaiting_approval ──> approved ──> queued ──> running ──> succeeded
    ///        │                 │           │        │  ├──────> failed
    ///        ├──> denied       │           │        │  │
    ///        │                 │           │  halted ⇄ │ (a wave over its failure budget; continued)
    ///        └─────────────────┴───────────┴──────┴────┴──────> cancelled
    /// ```
    pub enum RunStatus as "run status" {
        /// Waiting for the approvals its environment requires.
        AwaitingApproval = "awaiting_approval",
        /// Approved (or needing no approval), and may be executed.
        Approved = "approved",
        /// Denied by a reviewer. Terminal.
        Denied = "denied",
        /// Its items are waiting for a worker.
        Queued = "queued",
        /// A worker is executing its items.
        Running = "running",
        /// A wave failed more targets than it allows: nothing more is claimed until a person continues
        /// the run (tolerating those failures) or cancels it. Items already running finish.
        Halted = "halted",
        /// Every item succeeded or was already applied. Terminal.
        Succeeded = "succeeded",
        /// At least one item failed. Terminal.
        Failed = "failed",
        /// Stopped by a person before it finished. Terminal.
        Cancelled = "cancelled",
    }
}

closed_enum! {
    /// Where one migration on one target is in its life.
    pub enum RunItemStatus as "run item status" {
        /// Waiting to be claimed by a worker.
        Pending = "pending",
        /// Claimed by a worker holding a lease.
        Running = "running",
        /// Applied. Terminal.
        Succeeded = "succeeded",
        /// Applying failed. Terminal.
        Failed = "failed",
        /// Already applied with the same checksum, so nothing was done. Terminal.
        Skipped = "skipped",
        /// Cancelled before it finished. Terminal.
        Cancelled = "cancelled",
    }
}

closed_enum! {
    /// Where the hub's runs left a migration on a target: what the newest finished item that ended it did.
    pub enum LeftAs as "state on a target" {
        /// A release applied it (or found it applied with the same checksum).
        Applied = "applied",
        /// A down release reverted it.
        Reverted = "reverted",
        /// A release failed at it.
        Failed = "failed",
        /// A baseline recorded it as applied without running it.
        Recorded = "recorded",
        /// An adoption recorded it as applied from another tool's history.
        Adopted = "adopted",
        /// A recovery marked it rolled back: pending again.
        RolledBack = "rolled_back",
    }
}

/// A status change that the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{machine} cannot go from \"{from}\" to \"{to}\"")]
pub struct IllegalTransition {
    /// Which machine: `"run"` or `"run item"`.
    pub machine: &'static str,
    /// The current status.
    pub from: &'static str,
    /// The requested status.
    pub to: &'static str,
}

impl RunStatus {
    /// The status a new run starts in.
    pub fn initial(approval_required: bool) -> RunStatus {
        if approval_required { RunStatus::AwaitingApproval } else { RunStatus::Approved }
    }

    /// Whether the machine allows going from `self` to `next`.
    pub fn can_transition_to(self, next: RunStatus) -> bool {
        use RunStatus::*;
        // Written out pair by pair, with no wildcard on the left, so adding a status forces a
        // decision here.
        match (self, next) {
            (AwaitingApproval, Approved | Denied | Cancelled) => true,
            (Approved, Queued | Cancelled) => true,
            (Queued, Running | Cancelled) => true,
            (Running, Succeeded | Failed | Cancelled | Halted) => true,
            (Halted, Running | Cancelled) => true,
            (AwaitingApproval | Approved | Queued | Running | Halted, _) => false,
            (Denied | Succeeded | Failed | Cancelled, _) => false,
        }
    }

    /// `next` if the machine allows it, else an error naming both statuses.
    pub fn transition_to(self, next: RunStatus) -> Result<RunStatus, IllegalTransition> {
        if self.can_transition_to(next) {
            Ok(next)
        } else {
            Err(IllegalTransition { machine: "run", from: self.as_str(), to: next.as_str() })
        }
    }

    /// Whether nothing can happen to the run any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, RunStatus::Denied | RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled)
    }

    /// Whether the run is in the hands of the workers (queued or running).
    pub fn is_active(self) -> bool {
        matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

impl RunItemStatus {
    /// Whether the machine allows going from `self` to `next`.
    pub fn can_transition_to(self, next: RunItemStatus) -> bool {
        use RunItemStatus::*;
        match (self, next) {
            (Pending, Running | Cancelled) => true,
            // Back to pending: the worker's lease expired, it released the item on shutdown, or
            // it will retry after a connection or lock-timeout error.
            (Running, Succeeded | Failed | Skipped | Cancelled | Pending) => true,
            (Pending | Running, _) => false,
            (Succeeded | Failed | Skipped | Cancelled, _) => false,
        }
    }

    /// `next` if the machine allows it, else an error naming both statuses.
    pub fn transition_to(self, next: RunItemStatus) -> Result<RunItemStatus, IllegalTransition> {
        if self.can_transition_to(next) {
            Ok(next)
        } else {
            Err(IllegalTransition { machine: "run item", from: self.as_str(), to: next.as_str() })
        }
    }

    /// Whether nothing can happen to the item any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunItemStatus::Succeeded | RunItemStatus::Failed | RunItemStatus::Skipped | RunItemStatus::Cancelled
        )
    }
}

/// The final status of a run whose items are in `items`, or `None` while it is not finished.
///
/// A failure outweighs a cancellation, which outweighs success: a run where something failed must
/// be looked at even if the rest was cancelled afterwards (as `stop_on_first_failure` does). An
/// empty run has no outcome, as it never had anything to do; callers refuse to create one.
pub fn run_outcome(items: &[RunItemStatus]) -> Option<RunStatus> {
    if items.is_empty() || items.iter().any(|s| !s.is_terminal()) {
        return None;
    }
    let any = |wanted: RunItemStatus| items.contains(&wanted);
    Some(if any(RunItemStatus::Failed) {
        RunStatus::Failed
    } else if any(RunItemStatus::Cancelled) {
        RunStatus::Cancelled
    } else {
        RunStatus::Succeeded
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::test_support::{from_str, to_json};

    const X: bool = true;
    const O: bool = false;

    /// Row and column order of `RUN_TABLE`, written out rather than taken from `ALL`.
    const RUN_ORDER: [RunStatus; 9] = [
        RunStatus::AwaitingApproval,
        RunStatus::Approved,
        RunStatus::Denied,
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Halted,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];

    /// `RUN_TABLE[from][to]`: whether the transition is legal.
    #[rustfmt::skip]
    const RUN_TABLE: [[bool; 9]; 9] = [
        //                     to: AwAp Appr Deny Queu Runn Halt Succ Fail Canc
        /* awaiting_approval */   [O,   X,   X,   O,   O,   O,   O,   O,   X],
        /* approved          */   [O,   O,   O,   X,   O,   O,   O,   O,   X],
        /* denied            */   [O,   O,   O,   O,   O,   O,   O,   O,   O],
        /* queued            */   [O,   O,   O,   O,   X,   O,   O,   O,   X],
        /* running           */   [O,   O,   O,   O,   O,   X,   X,   X,   X],
        /* halted            */   [O,   O,   O,   O,   X,   O,   O,   O,   X],
        /* succeeded         */   [O,   O,   O,   O,   O,   O,   O,   O,   O],
        /* failed            */   [O,   O,   O,   O,   O,   O,   O,   O,   O],
        /* cancelled         */   [O,   O,   O,   O,   O,   O,   O,   O,   O],
    ];

    const ITEM_ORDER: [RunItemStatus; 6] = [
        RunItemStatus::Pending,
        RunItemStatus::Running,
        RunItemStatus::Succeeded,
        RunItemStatus::Failed,
        RunItemStatus::Skipped,
        RunItemStatus::Cancelled,
    ];

    /// `ITEM_TABLE[from][to]`: whether the transition is legal.
    #[rustfmt::skip]
    const ITEM_TABLE: [[bool; 6]; 6] = [
        //             to: Pend Runn Succ Fail Skip Canc
        /* pending   */   [O,   X,   O,   O,   O,   X],
        /* running   */   [X,   O,   X,   X,   X,   X],
        /* succeeded */   [O,   O,   O,   O,   O,   O],
        /* failed    */   [O,   O,   O,   O,   O,   O],
        /* skipped   */   [O,   O,   O,   O,   O,   O],
        /* cancelled */   [O,   O,   O,   O,   O,   O],
    ];

    #[test]
    fn run_order_covers_every_status() {
        assert_eq!(RunStatus::ALL, RUN_ORDER.as_slice());
        assert_eq!(RunItemStatus::ALL, ITEM_ORDER.as_slice());
    }

    #[test]
    fn run_transitions_match_the_table_for_every_pair() {
        let mut legal = 0;
        for (i, &from) in RUN_ORDER.iter().enumerate() {
            for (j, &to) in RUN_ORDER.iter().enumerate() {
                let expected = RUN_TABLE[i][j];
                assert_eq!(from.can_transition_to(to), expected, "{from} -> {to}");
                match from.transition_to(to) {
                    Ok(next) => {
                        assert!(expected, "{from} -> {to} should be illegal");
                        assert_eq!(next, to);
                        legal += 1;
                    }
                    Err(err) => {
                        assert!(!expected, "{from} -> {to} should be legal");
                        assert_eq!(err, IllegalTransition { machine: "run", from: from.as_str(), to: to.as_str() });
                    }
                }
            }
        }
        assert_eq!(legal, 13);
    }

    #[test]
    fn item_transitions_match_the_table_for_every_pair() {
        let mut legal = 0;
        for (i, &from) in ITEM_ORDER.iter().enumerate() {
            for (j, &to) in ITEM_ORDER.iter().enumerate() {
                let expected = ITEM_TABLE[i][j];
                assert_eq!(from.can_transition_to(to), expected, "{from} -> {to}");
                match from.transition_to(to) {
                    Ok(next) => {
                        assert!(expected, "{from} -> {to} should be illegal");
                        assert_eq!(next, to);
                        legal += 1;
                    }
                    Err(err) => {
                        assert!(!expected, "{from} -> {to} should be legal");
                        assert_eq!(
                            err,
                            IllegalTransition { machine: "run item", from: from.as_str(), to: to.as_str() }
                        );
                    }
                }
            }
        }
        assert_eq!(legal, 7);
    }

    #[test]
    fn terminal_statuses_are_exactly_those_without_exits() {
        let run_terminal = [RunStatus::Denied, RunStatus::Succeeded, RunStatus::Failed, RunStatus::Cancelled];
        for (i, &status) in RUN_ORDER.iter().enumerate() {
            assert_eq!(status.is_terminal(), run_terminal.contains(&status), "{status}");
            assert_eq!(status.is_terminal(), RUN_TABLE[i].iter().all(|&b| !b), "{status}");
        }
        let item_terminal =
            [RunItemStatus::Succeeded, RunItemStatus::Failed, RunItemStatus::Skipped, RunItemStatus::Cancelled];
        for (i, &status) in ITEM_ORDER.iter().enumerate() {
            assert_eq!(status.is_terminal(), item_terminal.contains(&status), "{status}");
            assert_eq!(status.is_terminal(), ITEM_TABLE[i].iter().all(|&b| !b), "{status}");
        }
    }

    #[test]
    fn active_means_queued_or_running() {
        for status in RUN_ORDER {
            let expected = matches!(status, RunStatus::Queued | RunStatus::Running);
            assert_eq!(status.is_active(), expected, "{status}");
        }
    }

    #[test]
    fn initial_status_depends_on_approval() {
        assert_eq!(RunStatus::initial(true), RunStatus::AwaitingApproval);
        assert_eq!(RunStatus::initial(false), RunStatus::Approved);
    }

    #[test]
    fn illegal_transition_message() {
        let err = RunStatus::Succeeded.transition_to(RunStatus::Running).unwrap_err();
        assert_eq!(err.to_string(), r#"run cannot go from "succeeded" to "running""#);
        let err = RunItemStatus::Skipped.transition_to(RunItemStatus::Pending).unwrap_err();
        assert_eq!(err.to_string(), r#"run item cannot go from "skipped" to "pending""#);
    }

    #[test]
    fn status_strings() {
        let run = [
            (RunStatus::AwaitingApproval, "awaiting_approval"),
            (RunStatus::Approved, "approved"),
            (RunStatus::Denied, "denied"),
            (RunStatus::Queued, "queued"),
            (RunStatus::Running, "running"),
            (RunStatus::Halted, "halted"),
            (RunStatus::Succeeded, "succeeded"),
            (RunStatus::Failed, "failed"),
            (RunStatus::Cancelled, "cancelled"),
        ];
        for (status, text) in run {
            assert_eq!(status.as_str(), text);
            assert_eq!(text.parse::<RunStatus>().unwrap(), status);
            assert_eq!(to_json(&status), format!("\"{text}\""));
            assert_eq!(from_str::<RunStatus>(text).unwrap(), status);
        }
        let item = [
            (RunItemStatus::Pending, "pending"),
            (RunItemStatus::Running, "running"),
            (RunItemStatus::Succeeded, "succeeded"),
            (RunItemStatus::Failed, "failed"),
            (RunItemStatus::Skipped, "skipped"),
            (RunItemStatus::Cancelled, "cancelled"),
        ];
        for (status, text) in item {
            assert_eq!(status.as_str(), text);
            assert_eq!(text.parse::<RunItemStatus>().unwrap(), status);
            assert_eq!(to_json(&status), format!("\"{text}\""));
            assert_eq!(from_str::<RunItemStatus>(text).unwrap(), status);
        }
        assert_eq!(
            "done".parse::<RunStatus>().unwrap_err().to_string(),
            "unknown run status \"done\"; expected one of: awaiting_approval, approved, denied, \
             queued, running, halted, succeeded, failed, cancelled"
        );
    }

    #[test]
    fn run_outcome_cases() {
        use RunItemStatus::*;
        let cases: &[(&[RunItemStatus], Option<RunStatus>)] = &[
            (&[], None),
            (&[Pending], None),
            (&[Running], None),
            (&[Succeeded, Pending], None),
            (&[Failed, Running], None),
            (&[Cancelled, Pending, Failed], None),
            (&[Succeeded], Some(RunStatus::Succeeded)),
            (&[Skipped], Some(RunStatus::Succeeded)),
            (&[Succeeded, Skipped, Succeeded], Some(RunStatus::Succeeded)),
            (&[Failed], Some(RunStatus::Failed)),
            (&[Succeeded, Failed, Skipped], Some(RunStatus::Failed)),
            (&[Failed, Cancelled], Some(RunStatus::Failed)),
            (&[Cancelled, Succeeded, Failed], Some(RunStatus::Failed)),
            (&[Cancelled], Some(RunStatus::Cancelled)),
            (&[Succeeded, Cancelled, Skipped], Some(RunStatus::Cancelled)),
        ];
        for (items, expected) in cases {
            assert_eq!(run_outcome(items), *expected, "{items:?}");
        }
    }

    #[test]
    fn every_run_outcome_is_reachable_from_running() {
        for outcome in [RunStatus::Succeeded, RunStatus::Failed, RunStatus::Cancelled] {
            assert!(RunStatus::Running.can_transition_to(outcome));
        }
    }
}
