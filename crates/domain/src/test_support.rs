//! Test-only helpers: a minimal JSON writer for checking what serde produces.
//!
//! The crate deliberately has no JSON dependency (the wire format belongs to `http`), yet the
//! serde shape of these types is a contract other crates rely on. This writer covers exactly the
//! shapes used here: strings, integers, booleans, options, unit variants, newtypes, sequences and
//! structs. Deserialization is tested through serde's own `value` deserializers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;

use serde::de::value::{Error as DeError, StrDeserializer};
use serde::ser::{self, Impossible, Serialize};

/// Serializes `value` to compact JSON.
pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = String::new();
    value.serialize(Json { out: &mut out }).unwrap();
    out
}

/// Deserializes `T` from a bare string, as serde would from a JSON string.
pub(crate) fn from_str<'de, T: serde::Deserialize<'de>>(text: &'de str) -> Result<T, DeError> {
    T::deserialize(StrDeserializer::<DeError>::new(text))
}

#[derive(Debug)]
struct Json<'a> {
    out: &'a mut String,
}

#[derive(Debug)]
struct Compound<'a> {
    out: &'a mut String,
    first: bool,
    close: char,
}

fn unsupported(what: &str) -> Result<(), DeError> {
    Err(ser::Error::custom(format!("test JSON writer does not support {what}")))
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => write!(out, "\\u{:04x}", u32::from(c)).unwrap(),
            c => out.push(c),
        }
    }
    out.push('"');
}

impl<'a> ser::Serializer for Json<'a> {
    type Ok = ();
    type Error = DeError;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Impossible<(), DeError>;
    type SerializeTupleVariant = Impossible<(), DeError>;
    type SerializeMap = Impossible<(), DeError>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Impossible<(), DeError>;

    fn serialize_bool(self, v: bool) -> Result<(), DeError> {
        self.out.push_str(if v { "true" } else { "false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), DeError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), DeError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), DeError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), DeError> {
        write!(self.out, "{v}").unwrap();
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), DeError> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), DeError> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), DeError> {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), DeError> {
        write!(self.out, "{v}").unwrap();
        Ok(())
    }
    fn serialize_f32(self, _: f32) -> Result<(), DeError> {
        unsupported("floats")
    }
    fn serialize_f64(self, _: f64) -> Result<(), DeError> {
        unsupported("floats")
    }
    fn serialize_char(self, v: char) -> Result<(), DeError> {
        write_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), DeError> {
        write_str(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), DeError> {
        unsupported("bytes")
    }
    fn serialize_none(self) -> Result<(), DeError> {
        self.out.push_str("null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), DeError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), DeError> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), DeError> {
        self.serialize_none()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<(), DeError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<(), DeError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), DeError> {
        unsupported("newtype variants")
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a>, DeError> {
        self.out.push('[');
        Ok(Compound { out: self.out, first: true, close: ']' })
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, DeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, DeError> {
        Err(ser::Error::custom("tuple structs are not supported"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, DeError> {
        Err(ser::Error::custom("tuple variants are not supported"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, DeError> {
        Err(ser::Error::custom("maps are not supported"))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, DeError> {
        self.out.push('{');
        Ok(Compound { out: self.out, first: true, close: '}' })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, DeError> {
        Err(ser::Error::custom("struct variants are not supported"))
    }
}

impl Compound<'_> {
    fn comma(&mut self) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = DeError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), DeError> {
        self.comma();
        value.serialize(Json { out: self.out })
    }
    fn end(self) -> Result<(), DeError> {
        self.out.push(self.close);
        Ok(())
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = DeError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), DeError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<(), DeError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = DeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), DeError> {
        self.comma();
        write_str(self.out, key);
        self.out.push(':');
        value.serialize(Json { out: self.out })
    }
    fn end(self) -> Result<(), DeError> {
        self.out.push(self.close);
        Ok(())
    }
}
