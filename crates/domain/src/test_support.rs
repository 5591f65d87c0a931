//! Test-only helpers for checking the serde shape of domain types, which other crates rely on as a
//! contract (the JSON of the API, the jsonb columns of the tool database).

#![allow(clippy::unwrap_used)]

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Serializes `value` to compact JSON.
pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap()
}

/// Deserializes `T` from a JSON string holding `text`.
pub(crate) fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
}
