//! Payloads rendered as JSON, for the self-describing backends.
//!
//! JSON payloads parse as they are. MessagePack payloads go through [`AnyValue`], a `Deserialize` that accepts
//! everything MessagePack can hold, which `serde_json::Value` alone does not: binary data becomes an array of
//! byte values, map keys that are not strings become their JSON text, non-finite floats become strings.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// What `show` can say about a payload.
pub enum Rendered {
    /// The value as JSON.
    Value(Value),
    /// Why there is no value to show.
    Unavailable(String),
}

/// Renders the payload an entry's `backend` wrote.
pub fn render(backend: &str, payload: &[u8]) -> Rendered {
    match backend {
        "json" => match serde_json::from_slice::<Value>(payload) {
            Ok(v) => Rendered::Value(v),
            Err(e) => Rendered::Unavailable(format!("the JSON payload does not parse: {e}")),
        },
        "msgpack" => match rmp_serde::from_slice::<AnyValue>(payload) {
            Ok(v) => Rendered::Value(v.0),
            Err(e) => Rendered::Unavailable(format!("the MessagePack payload does not decode: {e}")),
        },
        b if b.starts_with("bincode") => Rendered::Unavailable(format!(
            "the {b} backend is not self-describing: its payload holds the values of the fields in order, without \
             their names or types, so it can only be decoded with the Rust type that wrote it (use \
             `Bucket::get::<T>` in code, or the JSON or MessagePack backend for caches you want to inspect)"
        )),
        other => Rendered::Unavailable(format!(
            "`{other}` is not a backend this tool knows (json, msgpack, bincode2); it can only be decoded by the \
             program that wrote it"
        )),
    }
}

/// Any value a self-describing format holds, as JSON.
pub struct AnyValue(pub Value);

impl<'de> Deserialize<'de> for AnyValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AnyVisitor).map(AnyValue)
    }
}

struct AnyVisitor;

fn float(v: f64) -> Value {
    Number::from_f64(v).map_or_else(|| Value::String(v.to_string()), Value::Number)
}

fn key_text(key: Value) -> String {
    match key {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

impl<'de> Visitor<'de> for AnyVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or_else(|_| Value::String(v.to_string()), |v| Value::Number(v.into())))
    }

    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(u64::try_from(v).map_or_else(|_| Value::String(v.to_string()), |v| Value::Number(v.into())))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Array(v.iter().map(|b| Value::Number((*b).into())).collect()))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(AnyVisitor)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(AnyVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(AnyValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some((AnyValue(k), AnyValue(v))) = map.next_entry()? {
            out.insert(key_text(k), v);
        }
        Ok(Value::Object(out))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        use de::VariantAccess;
        let (AnyValue(name), variant) = data.variant::<AnyValue>()?;
        let AnyValue(inner) = variant.newtype_variant::<AnyValue>()?;
        let mut out = Map::new();
        out.insert(key_text(name), inner);
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgpack<T: serde::Serialize>(v: &T) -> Vec<u8> {
        rmp_serde::to_vec_named(v).expect("encodes")
    }

    fn value(r: Rendered) -> Value {
        match r {
            Rendered::Value(v) => v,
            Rendered::Unavailable(why) => panic!("unavailable: {why}"),
        }
    }

    #[derive(serde::Serialize)]
    struct Report {
        name: String,
        scores: Vec<f64>,
        tag: Option<u8>,
    }

    #[test]
    fn msgpack_structs_render_with_field_names() {
        let r = Report {
            name: "x".into(),
            scores: vec![1.5, f64::NAN],
            tag: None,
        };
        let v = value(render("msgpack", &msgpack(&r)));
        assert_eq!(v, serde_json::json!({"name": "x", "scores": [1.5, "NaN"], "tag": null}));
    }

    #[test]
    fn msgpack_binary_and_integer_keys_render() {
        // {7: bin8 [1, 2]}, written by hand: a fixmap of one entry, a positive fixint key, a `bin 8` value.
        let bytes = [0x81, 0x07, 0xc4, 0x02, 0x01, 0x02];
        assert_eq!(value(render("msgpack", &bytes)), serde_json::json!({"7": [1, 2]}));
    }

    #[test]
    fn json_renders_and_bincode_explains() {
        assert_eq!(value(render("json", b"[1,2]")), serde_json::json!([1, 2]));
        let Rendered::Unavailable(why) = render("bincode2", &[1, 2, 3]) else {
            panic!("bincode rendered")
        };
        assert!(why.contains("not self-describing"), "{why}");
        assert!(matches!(render("json", b"{"), Rendered::Unavailable(_)));
        assert!(matches!(render("mine", b""), Rendered::Unavailable(_)));
    }
}
