//! The serde shape of a stored type, traced from its `Deserialize` implementation and reduced to a digest.
//!
//! A non-self-describing backend (bincode, the default) decodes whatever bytes fit: after a struct's fields are
//! reordered, an old entry may decode into the new type as a wrong value. So the attribute folds the shape of the
//! stored type into every key (through the call-site digest, `site.rs`): a changed shape is a new key, a miss, and
//! reverting the type finds the old entries again.
//!
//! The tracer is a `Deserializer` that answers every `deserialize_*` call with a sample value (zero, empty, the
//! first variant; when a `Deserialize` rejects one, the pass is repeated with the next sample at that leaf: `1`
//! for a `NonZeroU32`, an RFC 3339 date, a UUID, an IP address, a URL) and writes down what was asked: struct, tuple struct, newtype and unit struct names; field names
//! in order; enum names and their variants' names and contents; primitive kinds; options, sequences, tuples, maps.
//! Enums are traced variant by variant, one pass of the whole type per newly reached variant. Recursive types are
//! cut where they repeat (an option becomes `None`, a sequence or map empty; a recursive enum takes a variant not
//! already being traced), and a hard depth limit ends anything else.
//!
//! Some shapes cannot be traced: types that ask for `deserialize_any` (untagged and internally tagged enums,
//! `#[serde(flatten)]`, `serde_json::Value`), identifiers or ignored values, or whose `Deserialize` rejects every
//! sample value (a custom impl that parses a string of its own format). For them [`shape_digest`] is `None`,
//! logged once per type at `debug`, and keys are made as before shapes were traced.

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, OnceLock};

use serde::de::value::U32Deserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess};
use serde::de::{VariantAccess, Visitor};
use tracing::debug;

/// Nesting deeper than this (in `deserialize_*` calls) ends the trace: the shape is untraceable.
const MAX_DEPTH: usize = 48;
/// Options, sequences and maps deeper than this are traced empty.
const CUT_DEPTH: usize = 24;
/// At most this many passes (enums are traced one newly reached variant per pass).
const MAX_PASSES: usize = 256;
/// Passes in a row that reach no new variant before the trace ends (unreached variants are written `?`).
const MAX_STALE: usize = 8;
/// At most this many passes repeated with other sample values.
const MAX_RETRIES: usize = 256;
/// A shape description longer than this is untraceable (a type that grows combinatorially).
const MAX_TEXT: usize = 1 << 20;

/// The digest of `T`'s serde shape, or `None` when it cannot be traced (see the module docs). Traced once per type
/// per process; later calls read a map.
pub fn shape_digest<T: DeserializeOwned + 'static>() -> Option<[u8; 32]> {
    static DIGESTS: OnceLock<Mutex<HashMap<TypeId, Option<[u8; 32]>>>> = OnceLock::new();
    let digests = DIGESTS.get_or_init(Default::default);
    if let Some(known) = digests.lock().ok().and_then(|m| m.get(&TypeId::of::<T>()).copied()) {
        return known;
    }
    let traced = shape_text::<T>();
    let digest = traced.as_ref().ok().map(|text| {
        let mut h = blake3::Hasher::new_derive_key("bucketcache 2026-11 type shape v1");
        h.update(text.as_bytes());
        *h.finalize().as_bytes()
    });
    let first = digests
        .lock()
        .map(|mut m| m.insert(TypeId::of::<T>(), digest).is_none())
        .unwrap_or(true);
    if first {
        match &traced {
            Ok(text) => {
                debug!(target: "bucketcache", r#type = std::any::type_name::<T>(), shape = %text, "type shape traced")
            }
            Err(why) => debug!(
                target: "bucketcache",
                r#type = std::any::type_name::<T>(),
                reason = %why,
                "type shape cannot be traced: a change of this type's fields is not noticed by the key (bump `version = ...` after changing it)"
            ),
        }
    }
    digest
}

/// The shape description [`shape_digest`] hashes, or why it cannot be traced.
pub fn shape_text<T: DeserializeOwned>() -> Result<String, String> {
    match catch_unwind(AssertUnwindSafe(trace::<T>)) {
        Ok(r) => r.map_err(|e| e.message),
        Err(_) => Err("its `Deserialize` panicked on a sample value".to_owned()),
    }
}

fn trace<T: DeserializeOwned>() -> Result<String, TraceError> {
    let mut t = Tracer::default();
    let (mut passes, mut stale, mut retries) = (0, 0, 0);
    loop {
        t.start_pass(passes);
        match T::deserialize(&mut t) {
            Ok(_) => {}
            // A sample value rejected (a date parsed from "", a `NonZeroU32` from 0): the same pass again, with the
            // next sample at the leaf that was rejected.
            Err(e) if e.rejected && retries < MAX_RETRIES && t.next_sample() => {
                retries += 1;
                continue;
            }
            Err(e) => return Err(e),
        }
        passes += 1;
        let complete = t.enums.iter().all(|e| e.contents.iter().all(Option::is_some));
        stale = if t.explored_new { 0 } else { stale + 1 };
        // Variants are taken in turns once all of an enum's are known: a few passes without news end the trace.
        if complete || passes >= MAX_PASSES || stale > MAX_STALE {
            break;
        }
    }
    let mut text = std::mem::take(&mut t.out);
    for (i, e) in t.enums.iter().enumerate() {
        let _ = write!(text, "\nenum#{i} ");
        name(&mut text, e.name);
        for (v, contents) in e.variants.iter().zip(&e.contents) {
            text.push_str("\n  ");
            name(&mut text, v);
            text.push_str(contents.as_deref().unwrap_or("?"));
        }
    }
    Ok(text)
}

/// Writes a name length-prefixed, so no two shapes run together into the same text.
fn name(out: &mut String, n: &str) {
    let _ = write!(out, "{}:{n}", n.len());
}

/// Why a shape cannot be traced.
#[derive(Debug)]
struct TraceError {
    message: String,
    /// A `Deserialize` rejected a sample value (another sample may pass).
    rejected: bool,
}

impl TraceError {
    fn new(message: String) -> Self {
        TraceError {
            message,
            rejected: false,
        }
    }
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TraceError {}

impl de::Error for TraceError {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        TraceError {
            message: format!("its `Deserialize` rejected every sample value tried: {msg}"),
            rejected: true,
        }
    }
}

fn unsupported(what: &str) -> TraceError {
    TraceError::new(format!(
        "it asks for `{what}` (a self-describing shape: untagged or internally tagged enum, `flatten`, or a custom \
         `Deserialize`)"
    ))
}

/// An enum met while tracing: its variants' contents as they were first traced.
struct EnumEntry {
    key: &'static str,
    name: &'static str,
    variants: &'static [&'static str],
    contents: Vec<Option<String>>,
}

#[derive(Default)]
struct Tracer {
    out: String,
    enums: Vec<EnumEntry>,
    /// The named containers being traced (by Rust type name), and whether each repeats an outer one.
    stack: Vec<(&'static str, bool)>,
    /// How many entries of `stack` repeat an outer one: while any do, options, sequences and maps are cut.
    repeats: usize,
    depth: usize,
    /// The (enum, variant) pairs being traced.
    busy: Vec<(usize, usize)>,
    pass: usize,
    explored_new: bool,
    /// Which sample each primitive leaf gets, by pass and position in the pass (default: the first).
    picks: HashMap<(usize, usize), usize>,
    /// The position of the next primitive leaf in this pass.
    leaf: usize,
    /// The last leaf given a sample: its position and how many samples its kind has.
    last: Option<(usize, usize)>,
}

impl Tracer {
    /// Clears what a pass (or a failed attempt at one) left.
    fn start_pass(&mut self, pass: usize) {
        self.out.clear();
        self.stack.clear();
        self.busy.clear();
        self.repeats = 0;
        self.depth = 0;
        self.leaf = 0;
        self.last = None;
        self.pass = pass;
        self.explored_new = false;
    }

    /// Moves the last leaf to its next sample; `false` when it has tried them all.
    fn next_sample(&mut self) -> bool {
        let Some((leaf, count)) = self.last else {
            return false;
        };
        let pick = self.picks.entry((self.pass, leaf)).or_insert(0);
        if *pick + 1 >= count {
            return false;
        }
        *pick += 1;
        true
    }

    /// The sample for the next primitive leaf.
    fn sample<S: Copy>(&mut self, samples: &[S]) -> Option<S> {
        let leaf = self.leaf;
        self.leaf += 1;
        self.last = Some((leaf, samples.len()));
        let pick = self.picks.get(&(self.pass, leaf)).copied().unwrap_or(0);
        samples.get(pick).or(samples.first()).copied()
    }

    fn enter(&mut self) -> Result<(), TraceError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH || self.out.len() > MAX_TEXT {
            return Err(TraceError::new(format!(
                "it nests deeper than {MAX_DEPTH} levels or is too large to describe"
            )));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn push_named(&mut self, key: &'static str) {
        let repeat = self.stack.iter().any(|(k, _)| *k == key);
        self.repeats += usize::from(repeat);
        self.stack.push((key, repeat));
    }

    fn pop_named(&mut self) {
        if let Some((_, true)) = self.stack.pop() {
            self.repeats = self.repeats.saturating_sub(1);
        }
    }

    /// Whether an option, sequence or map is traced with an element (else it is cut: `None`, empty).
    fn expands(&self) -> bool {
        self.repeats == 0 && self.depth < CUT_DEPTH
    }

    /// Which variant of enum `idx` to trace now.
    fn choose(&self, idx: usize, reentrant: bool) -> usize {
        let contents = &self.enums[idx].contents;
        let free = |v: &usize| !self.busy.contains(&(idx, *v));
        if let Some(v) = (0..contents.len()).filter(free).find(|v| contents[*v].is_none()) {
            return v;
        }
        if !reentrant {
            // Every variant known: take turns, so enums inside each variant are reached too.
            return self.pass % contents.len().max(1);
        }
        // Inside itself: the variant with the shortest description, most likely one that ends the recursion.
        (0..contents.len())
            .filter(free)
            .min_by_key(|v| contents[*v].as_ref().map_or(usize::MAX, String::len))
            .unwrap_or(0)
    }

    fn named<V, F>(&mut self, kind: &str, n: &str, f: F) -> Result<V, TraceError>
    where
        F: FnOnce(&mut Self) -> Result<V, TraceError>,
    {
        self.out.push_str(kind);
        name(&mut self.out, n);
        self.push_named(std::any::type_name::<V>());
        self.enter()?;
        let r = f(self);
        self.leave();
        self.pop_named();
        r
    }
}

/// Strings that common `Deserialize` impls parse: anything (`String`), RFC 3339 dates and times, a UUID, a
/// number, an IP address, a URL.
const STRS: &[&str] = &[
    "",
    "1970-01-01T00:00:00Z",
    "1970-01-01",
    "00:00:00",
    "1970-01-01T00:00:00",
    "00000000-0000-0000-0000-000000000000",
    "0",
    "0.0.0.0",
    "0.0.0.0:0",
    "http://localhost/",
    "a",
];
const BYTES: &[&[u8]] = &[&[], &[0; 16], &[0; 4], &[0; 32]];

macro_rules! primitive {
    ($($method:ident $visit:ident [$($sample:expr),+];)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
            self.out.push_str(concat!(stringify!($method), ";"));
            match self.sample(&[$($sample),+]) {
                Some(v) => visitor.$visit(v),
                None => Err(TraceError::new("no sample".to_owned())),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for &mut Tracer {
    type Error = TraceError;

    primitive! {
        deserialize_bool visit_bool [false, true];
        deserialize_i8 visit_i8 [0, 1];
        deserialize_i16 visit_i16 [0, 1];
        deserialize_i32 visit_i32 [0, 1];
        deserialize_i64 visit_i64 [0, 1];
        deserialize_i128 visit_i128 [0, 1];
        deserialize_u8 visit_u8 [0, 1];
        deserialize_u16 visit_u16 [0, 1];
        deserialize_u32 visit_u32 [0, 1];
        deserialize_u64 visit_u64 [0, 1];
        deserialize_u128 visit_u128 [0, 1];
        deserialize_f32 visit_f32 [0.0, 1.0];
        deserialize_f64 visit_f64 [0.0, 1.0];
        deserialize_char visit_char ['\0', 'a'];
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.out.push_str("deserialize_str;");
        visitor.visit_str(self.sample(STRS).unwrap_or_default())
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.out.push_str("deserialize_string;");
        visitor.visit_string(self.sample(STRS).unwrap_or_default().to_owned())
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.out.push_str("deserialize_bytes;");
        visitor.visit_bytes(self.sample(BYTES).unwrap_or_default())
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.out.push_str("deserialize_byte_buf;");
        visitor.visit_byte_buf(self.sample(BYTES).unwrap_or_default().to_vec())
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.out.push_str("unit;");
        visitor.visit_unit()
    }

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, TraceError> {
        Err(unsupported("deserialize_any"))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, _: V) -> Result<V::Value, TraceError> {
        Err(unsupported("deserialize_identifier"))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, TraceError> {
        Err(unsupported("deserialize_ignored_any"))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.out.push_str("option(");
        let r = if self.expands() {
            self.enter()?;
            let r = visitor.visit_some(&mut *self);
            self.leave();
            r
        } else {
            self.out.push('~');
            visitor.visit_none()
        };
        self.out.push(')');
        r
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, n: &'static str, visitor: V) -> Result<V::Value, TraceError> {
        self.out.push_str("unit_struct ");
        name(&mut self.out, n);
        self.out.push(';');
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, n: &'static str, visitor: V) -> Result<V::Value, TraceError> {
        let r = self.named::<V::Value, _>("newtype ", n, |t| {
            t.out.push('(');
            visitor.visit_newtype_struct(&mut *t)
        });
        self.out.push(')');
        r
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.out.push_str("seq(");
        let len = usize::from(self.expands());
        if len == 0 {
            self.out.push('~');
        }
        let r = visitor.visit_seq(Elements {
            t: &mut *self,
            left: len,
            names: None,
        });
        self.out.push(')');
        r
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, TraceError> {
        let _ = write!(self.out, "tuple{len}(");
        let r = visitor.visit_seq(Elements {
            t: &mut *self,
            left: len,
            names: None,
        });
        self.out.push(')');
        r
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        n: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let r = self.named::<V::Value, _>("tuple_struct ", n, |t| {
            let _ = write!(t.out, "{len}(");
            visitor.visit_seq(Elements {
                t: &mut *t,
                left: len,
                names: None,
            })
        });
        self.out.push(')');
        r
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.out.push_str("map(");
        let len = usize::from(self.expands());
        if len == 0 {
            self.out.push('~');
        }
        let r = visitor.visit_map(Entries {
            t: &mut *self,
            left: len,
        });
        self.out.push(')');
        r
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        n: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let r = self.named::<V::Value, _>("struct ", n, |t| {
            t.out.push('{');
            visitor.visit_seq(Elements {
                t: &mut *t,
                left: fields.len(),
                names: Some(fields),
            })
        });
        self.out.push('}');
        r
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        n: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        if variants.is_empty() {
            return Err(TraceError::new(format!("enum `{n}` has no variants")));
        }
        let key = std::any::type_name::<V::Value>();
        let idx = match self.enums.iter().position(|e| e.key == key) {
            Some(i) => i,
            None => {
                self.enums.push(EnumEntry {
                    key,
                    name: n,
                    variants,
                    contents: vec![None; variants.len()],
                });
                self.enums.len() - 1
            }
        };
        let _ = write!(self.out, "enum#{idx};");
        let reentrant = self.stack.iter().any(|(k, _)| *k == key);
        let variant = self.choose(idx, reentrant);
        let index = u32::try_from(variant).map_err(|_| TraceError::new(format!("enum `{n}` has too many variants")))?;
        self.busy.push((idx, variant));
        self.push_named(key);
        self.enter()?;
        let outer = std::mem::take(&mut self.out);
        let r = visitor.visit_enum(Variant { t: &mut *self, index });
        let contents = std::mem::replace(&mut self.out, outer);
        self.leave();
        self.pop_named();
        self.busy.pop();
        let value = r?;
        if let Some(slot @ None) = self.enums[idx].contents.get_mut(variant) {
            *slot = Some(contents);
            self.explored_new = true;
        }
        Ok(value)
    }

    fn is_human_readable(&self) -> bool {
        true
    }
}

/// The elements of a sequence, tuple or struct (with its field names).
struct Elements<'a> {
    t: &'a mut Tracer,
    left: usize,
    names: Option<&'static [&'static str]>,
}

impl<'de> SeqAccess<'de> for Elements<'_> {
    type Error = TraceError;

    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>, TraceError> {
        if self.left == 0 {
            return Ok(None);
        }
        if let Some(field) = self.names.and_then(|n| n.get(n.len() - self.left)) {
            name(&mut self.t.out, field);
            self.t.out.push('=');
        }
        self.left -= 1;
        self.t.enter()?;
        let v = seed.deserialize(&mut *self.t);
        self.t.leave();
        self.t.out.push(',');
        v.map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// The entries of a map (one, or none where cut).
struct Entries<'a> {
    t: &'a mut Tracer,
    left: usize,
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = TraceError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, TraceError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        self.t.enter()?;
        self.t.out.push_str("key=");
        let k = seed.deserialize(&mut *self.t);
        self.t.leave();
        k.map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, TraceError> {
        self.t.enter()?;
        self.t.out.push_str(",value=");
        let v = seed.deserialize(&mut *self.t);
        self.t.leave();
        v
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// One variant of an enum, by index.
struct Variant<'a> {
    t: &'a mut Tracer,
    index: u32,
}

impl<'de, 'a> EnumAccess<'de> for Variant<'a> {
    type Error = TraceError;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), TraceError> {
        let v = seed.deserialize(U32Deserializer::<TraceError>::new(self.index))?;
        Ok((v, self))
    }
}

impl<'de> VariantAccess<'de> for Variant<'_> {
    type Error = TraceError;

    fn unit_variant(self) -> Result<(), TraceError> {
        self.t.out.push_str("unit");
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, TraceError> {
        self.t.out.push_str("newtype(");
        let v = seed.deserialize(&mut *self.t);
        self.t.out.push(')');
        v
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, TraceError> {
        let _ = write!(self.t.out, "tuple{len}(");
        let v = visitor.visit_seq(Elements {
            t: &mut *self.t,
            left: len,
            names: None,
        });
        self.t.out.push(')');
        v
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        self.t.out.push('{');
        let v = visitor.visit_seq(Elements {
            t: &mut *self.t,
            left: fields.len(),
            names: Some(fields),
        });
        self.t.out.push('}');
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[allow(dead_code)]
    #[derive(Deserialize)]
    enum List {
        Cons(u32, Box<List>),
        Nil,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Tree {
        label: String,
        children: Vec<Tree>,
        parent: Option<Box<Tree>>,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    enum Outer {
        A(Inner),
        B { inner: Option<Inner>, n: u8 },
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    enum Inner {
        X,
        Y(i64),
        Z(Box<Outer>),
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Impossible(Box<Impossible>);

    #[test]
    fn recursive_types_are_traced_and_end() {
        let list = shape_text::<List>().expect("list");
        assert!(list.contains("4:Cons") && list.contains("3:Nil"), "{list}");
        assert!(!list.contains('?'), "{list}");
        let tree = shape_text::<Tree>().expect("tree");
        assert!(tree.contains("8:children"), "{tree}");
        let outer = shape_text::<Outer>().expect("outer");
        assert!(
            !outer.contains('?'),
            "every variant of nested enums is reached: {outer}"
        );
        assert!(
            outer.contains("5:inner") && outer.contains("deserialize_i64"),
            "{outer}"
        );
        assert!(shape_text::<Impossible>().is_err());
    }

    #[test]
    fn digests_are_computed_once_and_stable() {
        assert_eq!(shape_digest::<List>(), shape_digest::<List>());
        assert!(shape_digest::<List>().is_some());
        assert_ne!(shape_digest::<List>(), shape_digest::<Tree>());
        assert_ne!(shape_digest::<u32>(), shape_digest::<u64>());
        assert!(shape_digest::<serde_json::Value>().is_none());
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Dated {
        at: chrono::DateTime<chrono::Utc>,
        day: chrono::NaiveDate,
        count: std::num::NonZeroU32,
        addr: std::net::IpAddr,
        name: String,
    }

    #[allow(dead_code)]
    struct Never;

    impl<'de> Deserialize<'de> for Never {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let _ = String::deserialize(d)?;
            Err(serde::de::Error::custom("never"))
        }
    }

    #[test]
    fn rejected_samples_are_retried_with_others() {
        let text = shape_text::<Dated>().expect("dates, non-zero numbers and addresses are traced");
        assert!(
            text.contains("2:at") && text.contains("5:count") && text.contains("4:name"),
            "{text}"
        );
        assert!(shape_digest::<std::num::NonZeroU32>().is_some());
        let never = shape_text::<Never>().expect_err("rejects every sample");
        assert!(never.contains("rejected every sample"), "{never}");
    }
}
