//! JSON Canonicalization Scheme (RFC 8785), the input to every hash and signature over JSON.
//!
//! The canonical form sorts object members by the UTF-16 code units of their names, writes
//! numbers as ECMAScript `Number.prototype.toString` does (every number is an IEEE-754 double),
//! escapes only what JSON requires, and has no insignificant whitespace. The work is done by
//! [`serde_jcs`]; this module adds a nesting limit (so hostile input cannot exhaust the stack)
//! and the crate's error type.
//!
//! RFC 8785 requires I-JSON input (RFC 7493), whose numbers are IEEE-754 doubles. An integer
//! that a double cannot hold exactly (such as `9007199254740993`, beyond 2^53) is refused: as
//! a double it would be rounded, so two different integers would share one canonical form and
//! a signature over one would verify over the other, while the application reads the exact
//! integer. Floating-point values are canonicalised as they are held, which is what the
//! application reads.
use serde::Serialize;
use serde_json::Value;

use crate::CoreError;

/// The deepest nesting of arrays and objects that is canonicalised. It matches the recursion
/// limit of `serde_json`'s parser, so every `Value` parsed from text is accepted.
pub const MAX_DEPTH: usize = 128;

/// The nesting depth of `value`: 0 for a scalar, 1 for an array or object of scalars, and so on.
///
/// Computed without recursion, so it is safe on any value.
pub fn depth(value: &Value) -> usize {
    let mut max = 0;
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Array(items) => {
                max = max.max(d + 1);
                stack.extend(items.iter().map(|i| (i, d + 1)));
            }
            Value::Object(members) => {
                max = max.max(d + 1);
                stack.extend(members.values().map(|i| (i, d + 1)));
            }
            _ => {}
        }
    }
    max
}

/// Fails with [`CoreError::JcsTooDeep`] when `value` nests deeper than [`MAX_DEPTH`].
pub fn check_depth(value: &Value) -> Result<(), CoreError> {
    if depth(value) > MAX_DEPTH {
        return Err(CoreError::JcsTooDeep { max: MAX_DEPTH });
    }
    Ok(())
}

/// The RFC 8785 canonical UTF-8 bytes of `value`.
///
/// A `serde_json::Value` cannot hold NaN or infinities, so the failures are a value nested
/// deeper than [`MAX_DEPTH`] ([`CoreError::JcsTooDeep`]) and an integer that is not exactly
/// an IEEE-754 double ([`CoreError::JcsSerialize`]).
pub fn canonicalize(value: &Value) -> Result<Vec<u8>, CoreError> {
    check_value(value)?;
    serde_jcs::to_vec(value).map_err(|e| CoreError::JcsSerialize(e.to_string()))
}

/// Fails unless [`canonicalize`] can represent `value` exactly: [`CoreError::JcsTooDeep`]
/// beyond [`MAX_DEPTH`], [`CoreError::JcsSerialize`] for an integer that is not exactly an
/// IEEE-754 double.
pub fn check_value(value: &Value) -> Result<(), CoreError> {
    check_depth(value)?;
    value.serialize(numbers::NumberCheck).map_err(|e| CoreError::JcsSerialize(e.0))
}

/// The RFC 8785 canonical form of `value` as a string.
pub fn to_canonical_string(value: &Value) -> Result<String, CoreError> {
    let bytes = canonicalize(value)?;
    String::from_utf8(bytes).map_err(|e| CoreError::JcsSerialize(e.to_string()))
}

/// The RFC 8785 canonical bytes of any serialisable value.
///
/// Fails with [`CoreError::JcsSerialize`] when the value has no exact JSON form under
/// RFC 8785: a non-finite float anywhere in it (`serde_json` would silently write `null`), an
/// integer that is not exactly an IEEE-754 double (it would be rounded), a map whose keys are not
/// strings, or a failing `Serialize` impl. Serialisation recurses as deeply as the value's type
/// does; for an untrusted `serde_json::Value` use [`canonicalize`], which enforces
/// [`MAX_DEPTH`].
pub fn canonicalize_serializable<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CoreError> {
    value.serialize(numbers::NumberCheck).map_err(|e| CoreError::JcsSerialize(e.0))?;
    serde_jcs::to_vec(value).map_err(|e| CoreError::JcsSerialize(e.to_string()))
}

/// A serializer that only walks a value and fails on the first number that RFC 8785 cannot
/// represent exactly: a non-finite float, or an integer that no IEEE-754 double equals.
mod numbers {
    use serde::ser::{self, Serialize};
    use std::fmt;

    #[derive(Debug)]
    pub(super) struct Error(pub(super) String);

    impl fmt::Display for Error {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl std::error::Error for Error {}

    impl ser::Error for Error {
        fn custom<T: fmt::Display>(msg: T) -> Self {
            Error(msg.to_string())
        }
    }

    #[derive(Clone, Copy)]
    pub(super) struct NumberCheck;

    fn float(v: f64) -> Result<(), Error> {
        if v.is_finite() {
            Ok(())
        } else {
            Err(Error(format!("RFC 8785 has no representation for {v}")))
        }
    }

    fn integer(v: i128) -> Result<(), Error> {
        // `as f64` rounds to the nearest double, exactly as the canonical form would; the
        // integer survives only if that double converts back to it.
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        let exact = (v as f64) as i128 == v;
        if exact {
            Ok(())
        } else {
            Err(Error(format!(
                "the integer {v} is not exactly an IEEE-754 double and has no exact RFC 8785 form"
            )))
        }
    }

    macro_rules! accept {
        ($($name:ident($ty:ty)),* $(,)?) => {
            $(fn $name(self, _v: $ty) -> Result<(), Error> { Ok(()) })*
        };
    }

    impl ser::Serializer for NumberCheck {
        type Ok = ();
        type Error = Error;
        type SerializeSeq = Self;
        type SerializeTuple = Self;
        type SerializeTupleStruct = Self;
        type SerializeTupleVariant = Self;
        type SerializeMap = Self;
        type SerializeStruct = Self;
        type SerializeStructVariant = Self;

        accept!(
            serialize_bool(bool),
            serialize_i8(i8),
            serialize_i16(i16),
            serialize_i32(i32),
            serialize_u8(u8),
            serialize_u16(u16),
            serialize_u32(u32),
            serialize_char(char),
            serialize_str(&str),
            serialize_bytes(&[u8]),
            serialize_unit_struct(&'static str),
        );

        fn serialize_i64(self, v: i64) -> Result<(), Error> {
            integer(i128::from(v))
        }
        fn serialize_i128(self, v: i128) -> Result<(), Error> {
            integer(v)
        }
        fn serialize_u64(self, v: u64) -> Result<(), Error> {
            integer(i128::from(v))
        }
        fn serialize_u128(self, v: u128) -> Result<(), Error> {
            integer(i128::try_from(v).unwrap_or(i128::MAX))
        }
        fn serialize_f32(self, v: f32) -> Result<(), Error> {
            float(f64::from(v))
        }
        fn serialize_f64(self, v: f64) -> Result<(), Error> {
            float(v)
        }
        fn serialize_none(self) -> Result<(), Error> {
            Ok(())
        }
        fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Error> {
            v.serialize(self)
        }
        fn serialize_unit(self) -> Result<(), Error> {
            Ok(())
        }
        fn serialize_unit_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
        ) -> Result<(), Error> {
            Ok(())
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            v: &T,
        ) -> Result<(), Error> {
            v.serialize(self)
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            v: &T,
        ) -> Result<(), Error> {
            v.serialize(self)
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self, Error> {
            Ok(self)
        }
        fn serialize_tuple(self, _: usize) -> Result<Self, Error> {
            Ok(self)
        }
        fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, Error> {
            Ok(self)
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self, Error> {
            Ok(self)
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self, Error> {
            Ok(self)
        }
        fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Error> {
            Ok(self)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self, Error> {
            Ok(self)
        }
    }

    macro_rules! compound {
        ($($tr:ident :: $method:ident),* $(,)?) => {
            $(impl ser::$tr for NumberCheck {
                type Ok = ();
                type Error = Error;
                fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
                    v.serialize(*self)
                }
                fn end(self) -> Result<(), Error> {
                    Ok(())
                }
            })*
        };
    }

    /// The same, for compounds whose fields have static names.
    macro_rules! named_compound {
        ($($tr:ident),* $(,)?) => {
            $(impl ser::$tr for NumberCheck {
                type Ok = ();
                type Error = Error;
                fn serialize_field<T: Serialize + ?Sized>(
                    &mut self,
                    _: &'static str,
                    v: &T,
                ) -> Result<(), Error> {
                    v.serialize(*self)
                }
                fn end(self) -> Result<(), Error> {
                    Ok(())
                }
            })*
        };
    }

    compound!(
        SerializeSeq::serialize_element,
        SerializeTuple::serialize_element,
        SerializeTupleStruct::serialize_field,
        SerializeTupleVariant::serialize_field,
    );
    named_compound!(SerializeStruct, SerializeStructVariant);

    impl ser::SerializeMap for NumberCheck {
        type Ok = ();
        type Error = Error;
        fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), Error> {
            k.serialize(*self)
        }
        fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
            v.serialize(*self)
        }
        fn end(self) -> Result<(), Error> {
            Ok(())
        }
    }
}
