//! Names for ids: lists store who and where by id, and people read names. Each lookup is one query for
//! the whole list, whatever its length.

use std::collections::HashMap;

use domain::ids::{RunId, TargetId, UserId};

use crate::error::db;
use crate::{AppResult, Hub};

pub use storage::runs::RunLabel;

/// How a person is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    pub email: String,
}

/// The names of `ids` (deleted targets are missing from the map).
pub async fn target_names(hub: &Hub, ids: &[TargetId]) -> AppResult<HashMap<TargetId, String>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    let names = storage::targets::names(&mut conn, ids).await?;
    Ok(names.into_iter().map(|(id, name)| (id, name.as_str().to_owned())).collect())
}

/// The people `ids` name.
pub async fn people(hub: &Hub, ids: &[UserId]) -> AppResult<HashMap<UserId, Person>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    let rows = storage::users::names(&mut conn, ids).await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, email)| (id, Person { name: name.as_str().to_owned(), email: email.as_str().to_owned() }))
        .collect())
}

/// What lists show about each of `runs`.
pub async fn run_labels(hub: &Hub, runs: &[RunId]) -> AppResult<HashMap<RunId, RunLabel>> {
    if runs.is_empty() {
        return Ok(HashMap::new());
    }
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::runs::labels(&mut conn, runs).await?.into_iter().collect())
}
