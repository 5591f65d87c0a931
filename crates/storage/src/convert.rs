//! Conversions from stored columns to domain values. A failure here means a row the schema allowed but the
//! domain rules reject: it is reported as [`StorageError::Corrupt`], naming the column, never the value.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::str::FromStr;

use domain::checksum::{Checksum, ChecksumAlgorithm};
use domain::policy::PinnedChecksums;

use crate::StorageError;

pub(crate) fn parse<T>(column: &'static str, value: &str) -> Result<T, StorageError>
where
    T: FromStr,
    T::Err: Display,
{
    value.parse().map_err(|e| StorageError::Corrupt(format!("{column}: {e}")))
}

pub(crate) fn unsigned<T, S>(column: &'static str, value: S) -> Result<T, StorageError>
where
    T: TryFrom<S>,
{
    T::try_from(value).map_err(|_| StorageError::Corrupt(format!("{column}: out of range")))
}

pub(crate) fn opt_unsigned<T, S>(column: &'static str, value: Option<S>) -> Result<Option<T>, StorageError>
where
    T: TryFrom<S>,
{
    value.map(|v| unsigned(column, v)).transpose()
}

/// A non-negative count for a SQL parameter.
/// A sealed secret from its stored columns; `table` names them in the error when the nonce is not 12 bytes.
pub(crate) fn sealed(
    table: &'static str,
    key_id: String,
    nonce: &[u8],
    ciphertext: Vec<u8>,
) -> Result<domain::model::SealedSecret, StorageError> {
    let nonce = <[u8; 12]>::try_from(nonce)
        .map_err(|_| StorageError::Corrupt(format!("{table}.secret_nonce: not 12 bytes")))?;
    Ok(domain::model::SealedSecret { key_id, nonce, ciphertext })
}

pub(crate) fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn checksum(
    column: &'static str,
    algorithm: ChecksumAlgorithm,
    bytes: &[u8],
) -> Result<Checksum, StorageError> {
    Checksum::from_parts(algorithm, bytes).map_err(|e| StorageError::Corrupt(format!("{column}: {e}")))
}

pub(crate) fn pinned(algorithm: &str, up: &[u8], down: Option<&[u8]>) -> Result<PinnedChecksums, StorageError> {
    let algorithm: ChecksumAlgorithm = parse("checksum_algorithm", algorithm)?;
    Ok(PinnedChecksums {
        up: checksum("up_checksum", algorithm, up)?,
        down: down.map(|d| checksum("down_checksum", algorithm, d)).transpose()?,
    })
}

pub(crate) fn digest32(column: &'static str, bytes: Option<Vec<u8>>) -> Result<Option<[u8; 32]>, StorageError> {
    bytes
        .map(|b| {
            <[u8; 32]>::try_from(b.as_slice()).map_err(|_| StorageError::Corrupt(format!("{column}: not 32 bytes")))
        })
        .transpose()
}

pub(crate) fn string_map(
    column: &'static str,
    value: serde_json::Value,
) -> Result<BTreeMap<String, String>, StorageError> {
    serde_json::from_value(value).map_err(|e| StorageError::Corrupt(format!("{column}: {e}")))
}

pub(crate) fn json<T: serde::de::DeserializeOwned>(
    column: &'static str,
    value: serde_json::Value,
) -> Result<T, StorageError> {
    serde_json::from_value(value).map_err(|e| StorageError::Corrupt(format!("{column}: {e}")))
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, StorageError> {
    serde_json::to_value(value).map_err(|e| StorageError::Corrupt(format!("serializing: {e}")))
}
