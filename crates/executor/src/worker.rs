//! A worker process's presence in the tool database: it registers (id, host, pid, version), heartbeats
//! while it runs (from the queue loop, `crate::queue`), and marks itself stopped when it shuts down, so
//! operators see which workers are alive.

use domain::ids::WorkerId;
use domain::model::Worker;
use storage::{PgPool, StorageError};

/// Who this worker is.
#[derive(Debug, Clone)]
pub struct Identity {
    pub id: WorkerId,
    pub hostname: String,
    pub pid: u32,
    pub version: String,
}

impl Identity {
    /// A fresh identity for the running process.
    pub fn of_this_process(version: &str) -> Self {
        Self { id: WorkerId::new(), hostname: hostname(), pid: std::process::id(), version: version.to_owned() }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().chars().take(255).collect::<String>())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("tool database error while {action}")]
    Storage {
        action: &'static str,
        #[source]
        source: StorageError,
    },
}

/// A registered worker.
#[derive(Debug)]
pub struct Registration {
    pool: PgPool,
    worker: Worker,
}

impl Registration {
    #[tracing::instrument(skip_all, fields(worker.id = %identity.id, hostname = %identity.hostname))]
    pub async fn register(pool: PgPool, identity: Identity) -> Result<Self, WorkerError> {
        let storage = |source| WorkerError::Storage { action: "registering", source };
        let mut conn = pool.acquire().await.map_err(|e| storage(e.into()))?;
        let worker =
            storage::workers::register(&mut conn, identity.id, &identity.hostname, identity.pid, &identity.version)
                .await
                .map_err(storage)?;
        drop(conn);
        tracing::info!(worker.id = %worker.id, "worker registered");
        Ok(Self { pool, worker })
    }

    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Marks the worker stopped.
    pub async fn stop(self) -> Result<(), WorkerError> {
        let storage = |source| WorkerError::Storage { action: "stopping", source };
        let mut conn = self.pool.acquire().await.map_err(|e| storage(e.into()))?;
        storage::workers::stop(&mut conn, self.worker.id).await.map_err(storage)?;
        tracing::info!(worker.id = %self.worker.id, "worker stopped");
        Ok(())
    }
}
