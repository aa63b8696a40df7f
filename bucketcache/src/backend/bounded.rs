//! A deserializer wrapper that bounds what a crafted payload can make a decoder do.
//!
//! A payload has passed its entry's checksum, but anyone with write access to the cache directory can forge a
//! valid one. Two attacks survive a byte-claim limit:
//!
//! - **Depth.** A recursive type (`struct Tree(Vec<Tree>)`) decoded from a payload that nests 5,000 levels in
//!   5 KB overflows the stack, which aborts the process (no panic to catch). Nesting is limited to [`MAX_DEPTH`]
//!   levels (sequences, maps, enums, options and newtypes each count one), as serde_json limits JSON to 128.
//! - **Preallocation.** serde preallocates a sequence from its declared length (capped at 1 MiB per sequence), so
//!   each nested level of a crafted payload costs a megabyte for a few bytes of file. The declared lengths of all
//!   the sequences and maps in one payload are capped, together, at the payload's size: the elements of a real
//!   payload take at least a byte each, so a genuine length is never cut.
//!
//! Used by the bincode and MessagePack backends; serde_json has its own recursion limit and no length prefixes.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};

/// Deepest nesting a payload may have (each sequence, map, enum, `Some` and newtype is one level).
pub const MAX_DEPTH: u32 = 256;

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    static HINT_CAP: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Deserializes a `T` through the bounds: decode a `Bounded<T>` inside [`with_payload_len`].
pub(crate) struct Bounded<T>(pub T);

impl<'de, T: de::Deserialize<'de>> de::Deserialize<'de> for Bounded<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(Wrap(d)).map(Bounded)
    }
}

/// Restores the previous bounds when a decode ends, even by a panic in a user's `Deserialize`.
struct Scope {
    cap: usize,
    depth: u32,
}

impl Drop for Scope {
    fn drop(&mut self) {
        HINT_CAP.with(|c| c.set(self.cap));
        DEPTH.with(|d| d.set(self.depth));
    }
}

/// Runs a decode of a `payload_len`-byte payload with fresh bounds (a length budget of `payload_len`, depth 0).
pub(crate) fn with_payload_len<R>(payload_len: usize, f: impl FnOnce() -> R) -> R {
    let _scope = Scope {
        cap: HINT_CAP.with(|c| c.replace(payload_len)),
        depth: DEPTH.with(|d| d.replace(0)),
    };
    f()
}

/// One level of nesting, released on drop.
struct Level;

impl Level {
    fn enter<E: de::Error>() -> Result<Level, E> {
        DEPTH.with(|d| {
            let n = d.get() + 1;
            if n > MAX_DEPTH {
                return Err(E::custom(format_args!("payload nests deeper than {MAX_DEPTH} levels")));
            }
            d.set(n);
            Ok(Level)
        })
    }
}

impl Drop for Level {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Caps a declared length at what is left of the payload's budget, and spends it: every element of a real payload
/// takes at least a byte, so all the sequences and maps of one payload together never need more than its length.
fn cap_hint(hint: Option<usize>) -> Option<usize> {
    hint.map(|n| {
        HINT_CAP.with(|budget| {
            let granted = n.min(budget.get());
            budget.set(budget.get() - granted);
            granted
        })
    })
}

struct Wrap<D>(D);
struct WrapVisitor<V>(V);
struct WrapSeed<S>(S);
struct WrapSeq<A>(A);
struct WrapMap<A>(A);
struct WrapEnum<A>(A);
struct WrapVariant<A>(A);

macro_rules! forward_deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
                self.0.$method($($arg,)* WrapVisitor(visitor))
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Wrap<D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty);)*) => {
        $(
            fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
                self.0.$method(v)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for WrapVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    forward_visit! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_str(&str);
        visit_borrowed_str(&'de str);
        visit_string(String);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let _level = Level::enter()?;
        self.0.visit_some(Wrap(d))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let _level = Level::enter()?;
        self.0.visit_newtype_struct(Wrap(d))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let _level = Level::enter()?;
        self.0.visit_seq(WrapSeq(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let _level = Level::enter()?;
        self.0.visit_map(WrapMap(map))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        let _level = Level::enter()?;
        self.0.visit_enum(WrapEnum(data))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for WrapSeed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(Wrap(d))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for WrapSeq<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(WrapSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        cap_hint(self.0.size_hint())
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for WrapMap<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(WrapSeed(seed))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.0.next_value_seed(WrapSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        cap_hint(self.0.size_hint())
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for WrapEnum<A> {
    type Error = A::Error;
    type Variant = WrapVariant<A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant), A::Error> {
        self.0
            .variant_seed(WrapSeed(seed))
            .map(|(value, variant)| (value, WrapVariant(variant)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for WrapVariant<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(WrapSeed(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, WrapVisitor(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(fields, WrapVisitor(visitor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Tree(Vec<Tree>);

    fn json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, serde_json::Error> {
        with_payload_len(s.len(), || serde_json::from_str::<Bounded<T>>(s).map(|b| b.0))
    }

    #[test]
    fn values_pass_through_unchanged() {
        type V = (Vec<u32>, Option<String>, std::collections::BTreeMap<String, bool>);
        let v: V = json(r#"[[1,2,3],"x",{"a":true}]"#).expect("decodes");
        assert_eq!(v.0, [1, 2, 3]);
        assert_eq!(v.1.as_deref(), Some("x"));
        assert_eq!(v.2.get("a"), Some(&true));
    }

    #[test]
    fn the_bounds_are_restored_after_a_decode() {
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(json::<Tree>(&deep).is_ok());
        assert!(json::<Tree>("[[[").is_err());
        assert_eq!(DEPTH.with(Cell::get), 0);
        assert_eq!(HINT_CAP.with(Cell::get), usize::MAX);
    }
}
