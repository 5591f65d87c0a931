//! A slim version of `cargo xtask chaos` (see `migrate_hub_tests::chaos`): a few SIGKILL trials on
//! Postgres and MariaDB targets, one worker SIGSTOPped past its lease, one tool-database crash restart.
//! Every safety property is checked as in the full command; only the number of trials differs.

use std::time::Duration;

use domain::enums::Engine;
use migrate_hub_tests::binary;
use migrate_hub_tests::chaos::{self, Report, Rng, WorkerSetup};

fn setup() -> WorkerSetup {
    WorkerSetup::quick(binary("migrate-hub-worker"))
}

fn assert_clean(what: &str, report: &Report) {
    assert!(report.violations.is_empty(), "{what}: {:#?}", report.violations);
}

#[tokio::test]
async fn sigkilled_workers_never_double_apply_lose_items_or_leave_locks() {
    let mut rng = Rng::new(20261121);
    for engine in [Engine::Postgres, Engine::Mysql] {
        let report = chaos::kill_trials(&setup(), engine, 4, &mut rng).await;
        assert_clean(&format!("sigkill on {engine}"), &report);
        assert_eq!((report.trials, report.kills, report.items), (4, 4, 40), "{report:?}");
    }
}

#[tokio::test]
async fn a_worker_stopped_past_its_lease_cannot_write_after_the_takeover() {
    let report = chaos::stop_trial(&setup()).await;
    assert_clean("sigstop", &report);
    assert_eq!(report.succeeded + report.skipped, 1, "{report:?}");
}

#[tokio::test]
async fn a_tool_database_crash_mid_run_loses_and_duplicates_nothing() {
    let dir = std::env::temp_dir().join(format!("migrate-hub-chaos-{}", std::process::id()));
    // Down for longer than the lease: every check, renewal and ending fails meanwhile, every lease expires.
    let setup = setup();
    let downtime = setup.lease + Duration::from_secs(1);
    let report = chaos::restart_trial(&setup, &dir, 55434, downtime).await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_clean("tool database restart", &report);
    assert_eq!(report.succeeded + report.skipped, 10, "{report:?}");
}
