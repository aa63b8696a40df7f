//! [`ArgValue`]: a serde-rendered copy of an argument, so [`CachedCallInfo`](crate::CachedCallInfo) can show and
//! hand out argument values that are only `Serialize` (not `Debug`, not `Clone`, not `'static`).

use std::fmt;

use serde::ser::{self, Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeTupleStruct};

/// An argument's value as its `Serialize` implementation describes it (serde's data model).
///
/// Print it with `{:?}` (Rust-like: `Point { x: 1, y: 2 }`, `Some("a")`, `[1, 2]`), read it with the `as_*`
/// accessors, or turn it back into a typed value through any serde format, since it is `Serialize` itself:
/// `serde_json::from_value::<T>(serde_json::to_value(arg)?)`.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub enum ArgValue {
    /// `()`, a unit struct's or a unit variant's payload.
    Unit,
    /// A `bool`.
    Bool(bool),
    /// A signed integer (any width).
    Int(i128),
    /// An unsigned integer (any width).
    UInt(u128),
    /// A float (`f32` widened).
    Float(f64),
    /// A `char`.
    Char(char),
    /// A string.
    Str(String),
    /// A byte string (`serde_bytes`); a `Vec<u8>` is usually a [`ArgValue::Seq`] of integers.
    Bytes(Vec<u8>),
    /// An `Option`.
    Option(Option<Box<ArgValue>>),
    /// A sequence or tuple.
    Seq(Vec<ArgValue>),
    /// A map, in its iteration order.
    Map(Vec<(ArgValue, ArgValue)>),
    /// A struct: its name and fields.
    Struct {
        /// The struct's name.
        name: &'static str,
        /// Its fields.
        fields: Fields,
    },
    /// An enum variant.
    Variant {
        /// The enum's name.
        name: &'static str,
        /// The variant's index, as serde gives it.
        index: u32,
        /// The variant's name.
        variant: &'static str,
        /// Its fields.
        fields: Fields,
    },
    /// An argument left out of the key with `ignore(...)`: its value is not rendered (it need not be `Serialize`).
    Ignored,
}

/// The fields of a struct or variant.
#[derive(Clone, PartialEq)]
pub enum Fields {
    /// No fields (`struct S;`, `E::A`).
    Unit,
    /// One unnamed field (`struct S(T)`, `E::A(T)`).
    Newtype(Box<ArgValue>),
    /// Unnamed fields.
    Tuple(Vec<ArgValue>),
    /// Named fields, in declaration order.
    Named(Vec<(&'static str, ArgValue)>),
}

impl ArgValue {
    /// Renders any `Serialize` value. A value whose `Serialize` implementation fails renders as the error's
    /// message in a [`ArgValue::Str`].
    pub fn of<T: Serialize + ?Sized>(value: &T) -> ArgValue {
        value
            .serialize(ValueSerializer)
            .unwrap_or_else(|e| ArgValue::Str(format!("<not serializable: {}>", e.0)))
    }

    /// The value as a `u64`, for an unsigned or non-negative signed integer that fits.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            ArgValue::UInt(v) => u64::try_from(v).ok(),
            ArgValue::Int(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as an `i64`, for an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            ArgValue::UInt(v) => i64::try_from(v).ok(),
            ArgValue::Int(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as an `f64`, for a float or an integer.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            ArgValue::Float(v) => Some(v),
            ArgValue::UInt(v) => Some(v as f64),
            ArgValue::Int(v) => Some(v as f64),
            _ => None,
        }
    }

    /// The value as a `bool`.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            ArgValue::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// The value as a string slice, for a string or a `char`-free string-like value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ArgValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The elements of a sequence or tuple.
    pub fn as_slice(&self) -> Option<&[ArgValue]> {
        match self {
            ArgValue::Seq(v) => Some(v),
            _ => None,
        }
    }

    /// A named field of a struct or struct variant.
    pub fn field(&self, name: &str) -> Option<&ArgValue> {
        match self {
            ArgValue::Struct {
                fields: Fields::Named(f),
                ..
            }
            | ArgValue::Variant {
                fields: Fields::Named(f),
                ..
            } => f.iter().find(|(n, _)| *n == name).map(|(_, v)| v),
            _ => None,
        }
    }
}

impl fmt::Debug for ArgValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgValue::Unit => f.write_str("()"),
            ArgValue::Bool(v) => fmt::Debug::fmt(v, f),
            ArgValue::Int(v) => fmt::Debug::fmt(v, f),
            ArgValue::UInt(v) => fmt::Debug::fmt(v, f),
            ArgValue::Float(v) => fmt::Debug::fmt(v, f),
            ArgValue::Char(v) => fmt::Debug::fmt(v, f),
            ArgValue::Str(v) => fmt::Debug::fmt(v, f),
            ArgValue::Bytes(v) => write!(f, "b\"{}\"", v.escape_ascii()),
            ArgValue::Option(None) => f.write_str("None"),
            ArgValue::Option(Some(v)) => f.debug_tuple("Some").field(v).finish(),
            ArgValue::Seq(v) => f.debug_list().entries(v).finish(),
            ArgValue::Map(v) => f.debug_map().entries(v.iter().map(|(k, v)| (k, v))).finish(),
            ArgValue::Struct { name, fields } => fields.fmt_named(name, f),
            ArgValue::Variant { variant, fields, .. } => fields.fmt_named(variant, f),
            ArgValue::Ignored => f.write_str("<ignored>"),
        }
    }
}

impl Fields {
    fn fmt_named(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fields::Unit => f.write_str(name),
            Fields::Newtype(v) => f.debug_tuple(name).field(v).finish(),
            Fields::Tuple(v) => {
                let mut t = f.debug_tuple(name);
                for x in v {
                    t.field(x);
                }
                t.finish()
            }
            Fields::Named(v) => {
                let mut s = f.debug_struct(name);
                for (n, x) in v {
                    s.field(n, x);
                }
                s.finish()
            }
        }
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_named("", f)
    }
}

// ---- back to serde: an ArgValue serializes as the value it was rendered from ----

impl Serialize for ArgValue {
    fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ArgValue::Unit | ArgValue::Ignored => s.serialize_unit(),
            ArgValue::Bool(v) => s.serialize_bool(*v),
            ArgValue::Int(v) => match i64::try_from(*v) {
                Ok(v) => s.serialize_i64(v),
                Err(_) => s.serialize_i128(*v),
            },
            ArgValue::UInt(v) => match u64::try_from(*v) {
                Ok(v) => s.serialize_u64(v),
                Err(_) => s.serialize_u128(*v),
            },
            ArgValue::Float(v) => s.serialize_f64(*v),
            ArgValue::Char(v) => s.serialize_char(*v),
            ArgValue::Str(v) => s.serialize_str(v),
            ArgValue::Bytes(v) => s.serialize_bytes(v),
            ArgValue::Option(None) => s.serialize_none(),
            ArgValue::Option(Some(v)) => s.serialize_some(v),
            ArgValue::Seq(v) => {
                let mut seq = s.serialize_seq(Some(v.len()))?;
                for x in v {
                    seq.serialize_element(x)?;
                }
                seq.end()
            }
            ArgValue::Map(v) => {
                let mut map = s.serialize_map(Some(v.len()))?;
                for (k, x) in v {
                    map.serialize_entry(k, x)?;
                }
                map.end()
            }
            ArgValue::Struct { name, fields } => match fields {
                Fields::Unit => s.serialize_unit_struct(name),
                Fields::Newtype(v) => s.serialize_newtype_struct(name, v),
                Fields::Tuple(v) => {
                    let mut t = s.serialize_tuple_struct(name, v.len())?;
                    for x in v {
                        t.serialize_field(x)?;
                    }
                    t.end()
                }
                Fields::Named(v) => {
                    let mut st = s.serialize_struct(name, v.len())?;
                    for (n, x) in v {
                        st.serialize_field(n, x)?;
                    }
                    st.end()
                }
            },
            ArgValue::Variant {
                name,
                index,
                variant,
                fields,
            } => match fields {
                Fields::Unit => s.serialize_unit_variant(name, *index, variant),
                Fields::Newtype(v) => s.serialize_newtype_variant(name, *index, variant, v),
                Fields::Tuple(v) => {
                    use ser::SerializeTupleVariant;
                    let mut t = s.serialize_tuple_variant(name, *index, variant, v.len())?;
                    for x in v {
                        t.serialize_field(x)?;
                    }
                    t.end()
                }
                Fields::Named(v) => {
                    use ser::SerializeStructVariant;
                    let mut st = s.serialize_struct_variant(name, *index, variant, v.len())?;
                    for (n, x) in v {
                        st.serialize_field(n, x)?;
                    }
                    st.end()
                }
            },
        }
    }
}

// ---- the serializer that renders a value ----

#[derive(Debug)]
struct RenderError(String);

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RenderError {}

impl ser::Error for RenderError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        RenderError(msg.to_string())
    }
}

struct ValueSerializer;

/// Collects the elements of a sequence, tuple, or the fields of a struct or variant.
struct Collect {
    kind: Kind,
    items: Vec<ArgValue>,
    named: Vec<(&'static str, ArgValue)>,
    map: Vec<(ArgValue, ArgValue)>,
    pending_key: Option<ArgValue>,
}

enum Kind {
    Seq,
    TupleStruct(&'static str),
    Struct(&'static str),
    Variant(&'static str, u32, &'static str),
    Map,
}

impl Collect {
    fn new(kind: Kind, len: Option<usize>) -> Self {
        let n = len.unwrap_or(0).min(1024);
        Collect {
            kind,
            items: Vec::with_capacity(n),
            named: Vec::new(),
            map: Vec::new(),
            pending_key: None,
        }
    }

    fn finish(self) -> ArgValue {
        let fields = if self.named.is_empty() && !self.items.is_empty() {
            Fields::Tuple(self.items)
        } else if !self.named.is_empty() {
            Fields::Named(self.named)
        } else {
            Fields::Unit
        };
        match self.kind {
            Kind::Seq => match fields {
                Fields::Tuple(v) => ArgValue::Seq(v),
                _ => ArgValue::Seq(Vec::new()),
            },
            Kind::Map => ArgValue::Map(self.map),
            Kind::TupleStruct(name) | Kind::Struct(name) => ArgValue::Struct { name, fields },
            Kind::Variant(name, index, variant) => ArgValue::Variant {
                name,
                index,
                variant,
                fields,
            },
        }
    }
}

type R = Result<ArgValue, RenderError>;

impl ser::Serializer for ValueSerializer {
    type Ok = ArgValue;
    type Error = RenderError;
    type SerializeSeq = Collect;
    type SerializeTuple = Collect;
    type SerializeTupleStruct = Collect;
    type SerializeTupleVariant = Collect;
    type SerializeMap = Collect;
    type SerializeStruct = Collect;
    type SerializeStructVariant = Collect;

    fn serialize_bool(self, v: bool) -> R {
        Ok(ArgValue::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> R {
        Ok(ArgValue::Int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> R {
        Ok(ArgValue::Int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> R {
        Ok(ArgValue::Int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> R {
        Ok(ArgValue::Int(v.into()))
    }
    fn serialize_i128(self, v: i128) -> R {
        Ok(ArgValue::Int(v))
    }
    fn serialize_u8(self, v: u8) -> R {
        Ok(ArgValue::UInt(v.into()))
    }
    fn serialize_u16(self, v: u16) -> R {
        Ok(ArgValue::UInt(v.into()))
    }
    fn serialize_u32(self, v: u32) -> R {
        Ok(ArgValue::UInt(v.into()))
    }
    fn serialize_u64(self, v: u64) -> R {
        Ok(ArgValue::UInt(v.into()))
    }
    fn serialize_u128(self, v: u128) -> R {
        Ok(ArgValue::UInt(v))
    }
    fn serialize_f32(self, v: f32) -> R {
        Ok(ArgValue::Float(v.into()))
    }
    fn serialize_f64(self, v: f64) -> R {
        Ok(ArgValue::Float(v))
    }
    fn serialize_char(self, v: char) -> R {
        Ok(ArgValue::Char(v))
    }
    fn serialize_str(self, v: &str) -> R {
        Ok(ArgValue::Str(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> R {
        Ok(ArgValue::Bytes(v.to_vec()))
    }
    fn serialize_none(self) -> R {
        Ok(ArgValue::Option(None))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> R {
        Ok(ArgValue::Option(Some(Box::new(value.serialize(ValueSerializer)?))))
    }
    fn serialize_unit(self) -> R {
        Ok(ArgValue::Unit)
    }
    fn serialize_unit_struct(self, name: &'static str) -> R {
        Ok(ArgValue::Struct {
            name,
            fields: Fields::Unit,
        })
    }
    fn serialize_unit_variant(self, name: &'static str, index: u32, variant: &'static str) -> R {
        Ok(ArgValue::Variant {
            name,
            index,
            variant,
            fields: Fields::Unit,
        })
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, value: &T) -> R {
        Ok(ArgValue::Struct {
            name,
            fields: Fields::Newtype(Box::new(value.serialize(ValueSerializer)?)),
        })
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> R {
        Ok(ArgValue::Variant {
            name,
            index,
            variant,
            fields: Fields::Newtype(Box::new(value.serialize(ValueSerializer)?)),
        })
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Collect, RenderError> {
        Ok(Collect::new(Kind::Seq, len))
    }
    fn serialize_tuple(self, len: usize) -> Result<Collect, RenderError> {
        Ok(Collect::new(Kind::Seq, Some(len)))
    }
    fn serialize_tuple_struct(self, name: &'static str, len: usize) -> Result<Collect, RenderError> {
        Ok(Collect::new(Kind::TupleStruct(name), Some(len)))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Collect, RenderError> {
        Ok(Collect::new(Kind::Variant(name, index, variant), Some(len)))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Collect, RenderError> {
        Ok(Collect::new(Kind::Map, len))
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Collect, RenderError> {
        Ok(Collect::new(Kind::Struct(name), Some(len)))
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Collect, RenderError> {
        Ok(Collect::new(Kind::Variant(name, index, variant), Some(len)))
    }
}

impl SerializeSeq for Collect {
    type Ok = ArgValue;
    type Error = RenderError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), RenderError> {
        self.items.push(value.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> R {
        Ok(self.finish())
    }
}

impl ser::SerializeTuple for Collect {
    type Ok = ArgValue;
    type Error = RenderError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), RenderError> {
        SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> R {
        Ok(self.finish())
    }
}

impl SerializeTupleStruct for Collect {
    type Ok = ArgValue;
    type Error = RenderError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), RenderError> {
        SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> R {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleVariant for Collect {
    type Ok = ArgValue;
    type Error = RenderError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), RenderError> {
        SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> R {
        Ok(self.finish())
    }
}

impl SerializeMap for Collect {
    type Ok = ArgValue;
    type Error = RenderError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), RenderError> {
        self.pending_key = Some(key.serialize(ValueSerializer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), RenderError> {
        let key = self.pending_key.take().unwrap_or(ArgValue::Unit);
        self.map.push((key, value.serialize(ValueSerializer)?));
        Ok(())
    }
    fn end(self) -> R {
        Ok(self.finish())
    }
}

impl SerializeStruct for Collect {
    type Ok = ArgValue;
    type Error = RenderError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), RenderError> {
        self.named.push((key, value.serialize(ValueSerializer)?));
        Ok(())
    }
    fn end(self) -> R {
        Ok(self.finish())
    }
}

impl ser::SerializeStructVariant for Collect {
    type Ok = ArgValue;
    type Error = RenderError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), RenderError> {
        SerializeStruct::serialize_field(self, key, value)
    }
    fn end(self) -> R {
        Ok(self.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use std::collections::BTreeMap;

    #[derive(Serialize)]
    struct Point {
        x: i32,
        y: Option<String>,
    }

    #[derive(Serialize)]
    enum Shape {
        Dot,
        Circle(u8),
        Rect { w: u16, h: u16 },
    }

    #[test]
    fn renders_like_debug() {
        let p = Point {
            x: -3,
            y: Some("a".into()),
        };
        assert_eq!(format!("{:?}", ArgValue::of(&p)), r#"Point { x: -3, y: Some("a") }"#);
        assert_eq!(format!("{:?}", ArgValue::of(&Shape::Dot)), "Dot");
        assert_eq!(format!("{:?}", ArgValue::of(&Shape::Circle(2))), "Circle(2)");
        assert_eq!(
            format!("{:?}", ArgValue::of(&Shape::Rect { w: 1, h: 2 })),
            "Rect { w: 1, h: 2 }"
        );
        assert_eq!(format!("{:?}", ArgValue::of(&(1u8, "x"))), r#"[1, "x"]"#);
        let m: BTreeMap<&str, u32> = [("k", 1)].into_iter().collect();
        assert_eq!(format!("{:?}", ArgValue::of(&m)), r#"{"k": 1}"#);
    }

    #[test]
    fn accessors() {
        let p = Point { x: 7, y: None };
        let v = ArgValue::of(&p);
        assert_eq!(v.field("x").and_then(ArgValue::as_i64), Some(7));
        assert_eq!(v.field("y"), Some(&ArgValue::Option(None)));
        assert_eq!(ArgValue::of("s").as_str(), Some("s"));
        assert_eq!(ArgValue::of(&5u64).as_u64(), Some(5));
        assert_eq!(ArgValue::of(&true).as_bool(), Some(true));
        assert_eq!(ArgValue::of(&[1u8, 2]).as_slice().map(<[_]>::len), Some(2));
    }

    #[test]
    fn serializes_back_to_the_same_json() {
        let p = Point {
            x: 1,
            y: Some("z".into()),
        };
        let direct = serde_json::to_string(&p).expect("json");
        let via = serde_json::to_string(&ArgValue::of(&p)).expect("json");
        assert_eq!(direct, via);
        let s = Shape::Rect { w: 3, h: 4 };
        assert_eq!(
            serde_json::to_string(&s).expect("json"),
            serde_json::to_string(&ArgValue::of(&s)).expect("json")
        );
    }
}
