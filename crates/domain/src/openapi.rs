//! JSON schemas of the ids and closed sets, for the server's OpenAPI document (feature `openapi`).
//!
//! Only descriptions of the wire format live here: the same strings the serde impls read and write.

use utoipa::openapi::schema::{KnownFormat, Schema, SchemaFormat, Type};
use utoipa::openapi::{ObjectBuilder, RefOr};

/// A UUID string.
pub(crate) fn uuid() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))).into()
}

/// A string that is exactly one of `names`.
pub(crate) fn one_of(names: &'static [&'static str]) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(names.iter().copied())).into()
}
