//! The canonical, type-tagged encoding of a key, as a serde `Serializer` writing into a [`Sink`].
//!
//! Rules (format version 1; changing any of them changes every key, so bump [`super::KEY_FORMAT_VERSION`]):
//! - every value starts with a one-byte tag naming its serde data-model type, so `1u8`, `1u64`, `"1"`, `(1,)` and
//!   `[1]` all differ; integers are fixed-width little-endian; floats are their IEEE bits (all NaNs folded to one);
//! - strings and byte strings are length-prefixed (`u64` LE); type, field and variant names are length-prefixed too;
//! - sequences and tuples are bracketed by a start tag and an end tag, so their length need not be known up front;
//!   consecutive `u8` elements (a `Vec<u8>` or `[u8; N]`) are packed into chunks of up to [`RUN_CHUNK`] bytes, greedily,
//!   so hashing a large byte vector costs one buffer copy per byte rather than a tagged write;
//! - a map is hashed entry by entry (each entry's key and value into its own blake3 hash), and the sorted list of those
//!   entry digests is written, so two equal `HashMap`s give one key whatever their iteration order.
//!   A `HashSet` serializes as a sequence, which serde cannot tell apart from a `Vec`: use a `BTreeSet` in keys.

use serde::ser::{self, Serialize};

/// Longest run of `u8` sequence elements written as one chunk.
pub(crate) const RUN_CHUNK: usize = 4096;

mod tag {
    pub const UNIT: u8 = 0x01;
    pub const BOOL: u8 = 0x02;
    pub const I8: u8 = 0x03;
    pub const I16: u8 = 0x04;
    pub const I32: u8 = 0x05;
    pub const I64: u8 = 0x06;
    pub const I128: u8 = 0x07;
    pub const U8: u8 = 0x08;
    pub const U16: u8 = 0x09;
    pub const U32: u8 = 0x0A;
    pub const U64: u8 = 0x0B;
    pub const U128: u8 = 0x0C;
    pub const F32: u8 = 0x0D;
    pub const F64: u8 = 0x0E;
    pub const CHAR: u8 = 0x0F;
    pub const STR: u8 = 0x10;
    pub const BYTES: u8 = 0x11;
    pub const NONE: u8 = 0x12;
    pub const SOME: u8 = 0x13;
    pub const UNIT_STRUCT: u8 = 0x14;
    pub const UNIT_VARIANT: u8 = 0x15;
    pub const NEWTYPE_STRUCT: u8 = 0x16;
    pub const NEWTYPE_VARIANT: u8 = 0x17;
    pub const SEQ: u8 = 0x18;
    pub const TUPLE: u8 = 0x19;
    pub const TUPLE_STRUCT: u8 = 0x1A;
    pub const TUPLE_VARIANT: u8 = 0x1B;
    pub const MAP: u8 = 0x1C;
    pub const STRUCT: u8 = 0x1D;
    pub const STRUCT_VARIANT: u8 = 0x1E;
    pub const END: u8 = 0x1F;
    pub const U8_RUN: u8 = 0x20;
    pub const SKIPPED_FIELD: u8 = 0x21;
}

/// Where the canonical bytes go: a buffer (to log them) or a hasher (constant memory).
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);

    /// A tag byte then an eight-byte word (the shape of every `u64`/`f64`): one call, and the word goes from a
    /// register to the buffer (a nine-byte array built on the stack and copied made each element of a `Vec<f64>`
    /// wait on a failed store-to-load forward).
    #[inline]
    fn put_tagged(&mut self, tag: u8, word: [u8; 8]) {
        self.put(&[tag]);
        self.put(&word);
    }
}

impl Sink for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    #[inline]
    fn put_tagged(&mut self, tag: u8, word: [u8; 8]) {
        self.push(tag);
        self.extend_from_slice(&word);
    }
}

/// A blake3 hasher behind a small buffer, so the many tiny writes of an encoding become few large updates.
pub(crate) struct HashSink {
    hasher: blake3::Hasher,
    buf: Vec<u8>,
}

const HASH_SINK_BUF: usize = 16 * 1024;

impl HashSink {
    pub(crate) fn new(hasher: blake3::Hasher) -> Self {
        HashSink {
            hasher,
            buf: Vec::with_capacity(256),
        }
    }

    pub(crate) fn finalize(mut self) -> [u8; 32] {
        self.hasher.update(&self.buf);
        *self.hasher.finalize().as_bytes()
    }
}

impl Sink for HashSink {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        if self.buf.len() + bytes.len() <= HASH_SINK_BUF {
            self.buf.extend_from_slice(bytes);
            return;
        }
        if !self.buf.is_empty() {
            self.hasher.update(&self.buf);
            self.buf.clear();
        }
        if bytes.len() >= HASH_SINK_BUF {
            // Large slices go straight to blake3, which hashes them with SIMD.
            self.hasher.update(bytes);
        } else {
            self.buf.extend_from_slice(bytes);
        }
    }
}

/// The error a key's `Serialize` implementation can raise.
#[derive(Debug)]
pub(crate) struct KeyEncodeError(pub(crate) String);

impl std::fmt::Display for KeyEncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyEncodeError {}

impl ser::Error for KeyEncodeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        KeyEncodeError(msg.to_string())
    }
}

type Res = Result<(), KeyEncodeError>;

/// The canonical encoder. `run` holds pending `u8` sequence elements (at most one sequence level has a run pending
/// at a time, because a non-`u8` element flushes the run before it is encoded).
pub(crate) struct Encoder<S: Sink> {
    pub(crate) sink: S,
    run: Vec<u8>,
}

impl<S: Sink> Encoder<S> {
    pub(crate) fn new(sink: S) -> Self {
        Encoder { sink, run: Vec::new() }
    }

    pub(crate) fn into_sink(self) -> S {
        self.sink
    }

    #[inline]
    fn tag(&mut self, t: u8) {
        self.sink.put(&[t]);
    }

    #[inline]
    fn len(&mut self, n: usize) {
        self.sink.put(&(n as u64).to_le_bytes());
    }

    #[inline]
    fn name(&mut self, s: &str) {
        self.len(s.len());
        self.sink.put(s.as_bytes());
    }

    #[inline]
    fn flush_run(&mut self) {
        if !self.run.is_empty() {
            self.write_pending_run();
        }
    }

    #[cold]
    fn write_pending_run(&mut self) {
        write_run(&mut self.sink, &self.run);
        self.run.clear();
    }

    #[inline(always)]
    fn push_run(&mut self, b: u8) {
        // The buffer is reserved once at RUN_CHUNK and flushed when full, so the push never reallocates.
        if self.run.len() == self.run.capacity() {
            self.grow_or_flush_run();
        }
        self.run.push(b);
    }

    #[cold]
    fn grow_or_flush_run(&mut self) {
        if self.run.capacity() < RUN_CHUNK {
            self.run.reserve_exact(RUN_CHUNK - self.run.len());
        }
        if self.run.len() >= RUN_CHUNK {
            self.flush_run();
        }
    }

    #[inline]
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        value.serialize(Element(self))
    }

    fn end(&mut self) -> Res {
        self.flush_run();
        self.tag(tag::END);
        Ok(())
    }
}

/// An encoder into the hasher of one map entry.
fn entry_encoder() -> Encoder<HashSink> {
    Encoder::new(HashSink::new(blake3::Hasher::new_keyed(super::map_entry_key())))
}

/// Hashes one map entry (key then value) into its own digest, with the same encoding rules.
fn entry_digest<K: Serialize + ?Sized, V: Serialize + ?Sized>(key: &K, value: &V) -> Result<[u8; 32], KeyEncodeError> {
    let mut enc = entry_encoder();
    key.serialize(&mut enc)?;
    value.serialize(&mut enc)?;
    Ok(enc.into_sink().finalize())
}

/// Writes a run of `u8` elements (at most [`RUN_CHUNK`]) as one chunk; nothing for an empty run.
fn write_run<S: Sink>(sink: &mut S, run: &[u8]) {
    if run.is_empty() {
        return;
    }
    let [lo, hi] = (run.len() as u16).to_le_bytes();
    sink.put(&[tag::U8_RUN, lo, hi]);
    sink.put(run);
}

/// Answers "is this value a `u8`?" without encoding anything.
struct U8Probe;

/// What [`U8Probe`] says of anything but a `u8`.
#[derive(Debug)]
struct NotU8;

impl std::fmt::Display for NotU8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a u8")
    }
}

impl std::error::Error for NotU8 {}

impl ser::Error for NotU8 {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        NotU8
    }
}

macro_rules! probe_rejects {
    ($($method:ident($($arg:ty),*) -> $ret:ty;)*) => {
        $(
            #[inline]
            fn $method(self, $(_: $arg),*) -> $ret {
                Err(NotU8)
            }
        )*
    };
}

impl ser::Serializer for U8Probe {
    type Ok = u8;
    type Error = NotU8;
    type SerializeSeq = ser::Impossible<u8, NotU8>;
    type SerializeTuple = ser::Impossible<u8, NotU8>;
    type SerializeTupleStruct = ser::Impossible<u8, NotU8>;
    type SerializeTupleVariant = ser::Impossible<u8, NotU8>;
    type SerializeMap = ser::Impossible<u8, NotU8>;
    type SerializeStruct = ser::Impossible<u8, NotU8>;
    type SerializeStructVariant = ser::Impossible<u8, NotU8>;

    #[inline]
    fn serialize_u8(self, v: u8) -> Result<u8, NotU8> {
        Ok(v)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<u8, NotU8> {
        Err(NotU8)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, _: &T) -> Result<u8, NotU8> {
        Err(NotU8)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<u8, NotU8> {
        Err(NotU8)
    }
    probe_rejects! {
        serialize_bool(bool) -> Result<u8, NotU8>;
        serialize_i8(i8) -> Result<u8, NotU8>;
        serialize_i16(i16) -> Result<u8, NotU8>;
        serialize_i32(i32) -> Result<u8, NotU8>;
        serialize_i64(i64) -> Result<u8, NotU8>;
        serialize_i128(i128) -> Result<u8, NotU8>;
        serialize_u16(u16) -> Result<u8, NotU8>;
        serialize_u32(u32) -> Result<u8, NotU8>;
        serialize_u64(u64) -> Result<u8, NotU8>;
        serialize_u128(u128) -> Result<u8, NotU8>;
        serialize_f32(f32) -> Result<u8, NotU8>;
        serialize_f64(f64) -> Result<u8, NotU8>;
        serialize_char(char) -> Result<u8, NotU8>;
        serialize_str(&str) -> Result<u8, NotU8>;
        serialize_bytes(&[u8]) -> Result<u8, NotU8>;
        serialize_none() -> Result<u8, NotU8>;
        serialize_unit() -> Result<u8, NotU8>;
        serialize_unit_struct(&'static str) -> Result<u8, NotU8>;
        serialize_unit_variant(&'static str, u32, &'static str) -> Result<u8, NotU8>;
        serialize_seq(Option<usize>) -> Result<Self::SerializeSeq, NotU8>;
        serialize_tuple(usize) -> Result<Self::SerializeTuple, NotU8>;
        serialize_tuple_struct(&'static str, usize) -> Result<Self::SerializeTupleStruct, NotU8>;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Result<Self::SerializeTupleVariant, NotU8>;
        serialize_map(Option<usize>) -> Result<Self::SerializeMap, NotU8>;
        serialize_struct(&'static str, usize) -> Result<Self::SerializeStruct, NotU8>;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Result<Self::SerializeStructVariant, NotU8>;
    }
}

/// A sequence element: `u8` joins the pending run, anything else flushes it first.
struct Element<'a, S: Sink>(&'a mut Encoder<S>);

macro_rules! forward_flushing {
    ($($method:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        $(
            #[inline]
            fn $method(self, $($arg: $ty),*) -> $ret {
                self.0.flush_run();
                self.0.$method($($arg),*)
            }
        )*
    };
}

impl<'a, S: Sink> ser::Serializer for Element<'a, S> {
    type Ok = ();
    type Error = KeyEncodeError;
    type SerializeSeq = &'a mut Encoder<S>;
    type SerializeTuple = &'a mut Encoder<S>;
    type SerializeTupleStruct = &'a mut Encoder<S>;
    type SerializeTupleVariant = &'a mut Encoder<S>;
    type SerializeMap = MapEncoder<'a, S>;
    type SerializeStruct = &'a mut Encoder<S>;
    type SerializeStructVariant = &'a mut Encoder<S>;

    #[inline]
    fn serialize_u8(self, v: u8) -> Res {
        self.0.push_run(v);
        Ok(())
    }

    fn collect_seq<I>(self, iter: I) -> Res
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        self.0.flush_run();
        self.0.collect_seq(iter)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Res {
        self.0.flush_run();
        self.0.serialize_some(value)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, value: &T) -> Res {
        self.0.flush_run();
        self.0.serialize_newtype_struct(name, value)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        idx: u32,
        variant: &'static str,
        value: &T,
    ) -> Res {
        self.0.flush_run();
        self.0.serialize_newtype_variant(name, idx, variant, value)
    }

    forward_flushing! {
        serialize_bool(v: bool) -> Res;
        serialize_i8(v: i8) -> Res;
        serialize_i16(v: i16) -> Res;
        serialize_i32(v: i32) -> Res;
        serialize_i64(v: i64) -> Res;
        serialize_i128(v: i128) -> Res;
        serialize_u16(v: u16) -> Res;
        serialize_u32(v: u32) -> Res;
        serialize_u64(v: u64) -> Res;
        serialize_u128(v: u128) -> Res;
        serialize_f32(v: f32) -> Res;
        serialize_f64(v: f64) -> Res;
        serialize_char(v: char) -> Res;
        serialize_str(v: &str) -> Res;
        serialize_bytes(v: &[u8]) -> Res;
        serialize_none() -> Res;
        serialize_unit() -> Res;
        serialize_unit_struct(name: &'static str) -> Res;
        serialize_unit_variant(name: &'static str, idx: u32, variant: &'static str) -> Res;
        serialize_seq(len: Option<usize>) -> Result<Self::SerializeSeq, KeyEncodeError>;
        serialize_tuple(len: usize) -> Result<Self::SerializeTuple, KeyEncodeError>;
        serialize_tuple_struct(name: &'static str, len: usize) -> Result<Self::SerializeTupleStruct, KeyEncodeError>;
        serialize_tuple_variant(name: &'static str, idx: u32, variant: &'static str, len: usize) -> Result<Self::SerializeTupleVariant, KeyEncodeError>;
        serialize_map(len: Option<usize>) -> Result<Self::SerializeMap, KeyEncodeError>;
        serialize_struct(name: &'static str, len: usize) -> Result<Self::SerializeStruct, KeyEncodeError>;
        serialize_struct_variant(name: &'static str, idx: u32, variant: &'static str, len: usize) -> Result<Self::SerializeStructVariant, KeyEncodeError>;
    }
}

impl<'a, S: Sink> ser::Serializer for &'a mut Encoder<S> {
    type Ok = ();
    type Error = KeyEncodeError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = MapEncoder<'a, S>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn serialize_bool(self, v: bool) -> Res {
        self.sink.put(&[tag::BOOL, v as u8]);
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Res {
        self.sink.put(&[tag::I8, v as u8]);
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Res {
        self.tag(tag::I16);
        self.sink.put(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Res {
        self.tag(tag::I32);
        self.sink.put(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Res {
        self.sink.put_tagged(tag::I64, v.to_le_bytes());
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Res {
        self.tag(tag::I128);
        self.sink.put(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Res {
        self.sink.put(&[tag::U8, v]);
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Res {
        self.tag(tag::U16);
        self.sink.put(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Res {
        self.tag(tag::U32);
        self.sink.put(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Res {
        self.sink.put_tagged(tag::U64, v.to_le_bytes());
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Res {
        self.tag(tag::U128);
        self.sink.put(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Res {
        let bits = if v.is_nan() { f32::NAN.to_bits() } else { v.to_bits() };
        self.tag(tag::F32);
        self.sink.put(&bits.to_le_bytes());
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Res {
        let bits = if v.is_nan() { f64::NAN.to_bits() } else { v.to_bits() };
        self.sink.put_tagged(tag::F64, bits.to_le_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Res {
        self.tag(tag::CHAR);
        self.sink.put(&(v as u32).to_le_bytes());
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Res {
        self.tag(tag::STR);
        self.name(v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Res {
        self.tag(tag::BYTES);
        self.len(v.len());
        self.sink.put(v);
        Ok(())
    }
    fn serialize_none(self) -> Res {
        self.tag(tag::NONE);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Res {
        self.tag(tag::SOME);
        value.serialize(self)
    }
    fn serialize_unit(self) -> Res {
        self.tag(tag::UNIT);
        Ok(())
    }
    fn serialize_unit_struct(self, name: &'static str) -> Res {
        self.tag(tag::UNIT_STRUCT);
        self.name(name);
        Ok(())
    }
    fn serialize_unit_variant(self, name: &'static str, _idx: u32, variant: &'static str) -> Res {
        self.tag(tag::UNIT_VARIANT);
        self.name(name);
        self.name(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, value: &T) -> Res {
        self.tag(tag::NEWTYPE_STRUCT);
        self.name(name);
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _idx: u32,
        variant: &'static str,
        value: &T,
    ) -> Res {
        self.tag(tag::NEWTYPE_VARIANT);
        self.name(name);
        self.name(variant);
        value.serialize(self)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self, KeyEncodeError> {
        self.tag(tag::SEQ);
        Ok(self)
    }
    /// The fast path for sequences (`Vec`, slices, sets): the same bytes as `serialize_seq` + `serialize_element`,
    /// but `u8` elements gather in a local buffer, so a byte vector costs a probe and a push per byte.
    fn collect_seq<I>(self, iter: I) -> Res
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        self.flush_run();
        self.tag(tag::SEQ);
        // Reserved on demand: a sequence without `u8` elements never allocates here.
        let mut run = std::mem::take(&mut self.run);
        // Bytes gather first in a small stack array indexed by a local (kept in a register), then move to `run`
        // 64 at a time: a per-byte push into the Vec would make every byte wait on the stored length.
        const STAGE: usize = 64;
        const _: () = assert!(RUN_CHUNK.is_multiple_of(STAGE));
        let mut stage = [0u8; STAGE];
        let mut n = 0usize;
        let mut result = Ok(());
        let mut iter = iter.into_iter();
        loop {
            // Fill the stage (from `n`: a byte may already be there) while the elements are bytes; stop at the end or
            // at the first other element.
            let mut other = None;
            let mut ended = false;
            for slot in stage[n..].iter_mut() {
                match iter.next() {
                    Some(item) => match item.serialize(U8Probe) {
                        Ok(b) => {
                            *slot = b;
                            n += 1;
                        }
                        Err(NotU8) => {
                            other = Some(item);
                            break;
                        }
                    },
                    None => {
                        ended = true;
                        break;
                    }
                }
            }
            if n == STAGE {
                // A full stage: `run` holds a multiple of STAGE bytes, so it reaches RUN_CHUNK exactly.
                if run.capacity() < RUN_CHUNK {
                    run.reserve_exact(RUN_CHUNK - run.len());
                }
                run.extend_from_slice(&stage);
                n = 0;
                if run.len() == RUN_CHUNK {
                    write_run(&mut self.sink, &run);
                    run.clear();
                }
            }
            if let Some(item) = other {
                run.extend_from_slice(&stage[..n]);
                n = 0;
                write_run(&mut self.sink, &run);
                run.clear();
                result = item.serialize(&mut *self);
                if result.is_err() {
                    break;
                }
                // A sequence of other elements (floats, integers, strings) mostly stays one: encode them straight
                // on, back to staging at the next byte.
                let mut back_to_bytes = false;
                for item in iter.by_ref() {
                    match item.serialize(U8Probe) {
                        Ok(b) => {
                            stage[0] = b;
                            n = 1;
                            back_to_bytes = true;
                            break;
                        }
                        Err(NotU8) => {
                            result = item.serialize(&mut *self);
                            if result.is_err() {
                                break;
                            }
                        }
                    }
                }
                if !back_to_bytes {
                    break;
                }
            } else if ended {
                break;
            }
        }
        run.extend_from_slice(&stage[..n]);
        write_run(&mut self.sink, &run);
        run.clear();
        if run.capacity() <= RUN_CHUNK {
            self.run = run;
        }
        result?;
        self.tag(tag::END);
        Ok(())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self, KeyEncodeError> {
        self.tag(tag::TUPLE);
        Ok(self)
    }
    fn serialize_tuple_struct(self, name: &'static str, _len: usize) -> Result<Self, KeyEncodeError> {
        self.tag(tag::TUPLE_STRUCT);
        self.name(name);
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _idx: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self, KeyEncodeError> {
        self.tag(tag::TUPLE_VARIANT);
        self.name(name);
        self.name(variant);
        Ok(self)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapEncoder<'a, S>, KeyEncodeError> {
        Ok(MapEncoder {
            enc: self,
            digests: Vec::with_capacity(len.unwrap_or(0).min(4096)),
            pending_key: None,
        })
    }
    fn serialize_struct(self, name: &'static str, _len: usize) -> Result<Self, KeyEncodeError> {
        self.tag(tag::STRUCT);
        self.name(name);
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        _idx: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self, KeyEncodeError> {
        self.tag(tag::STRUCT_VARIANT);
        self.name(name);
        self.name(variant);
        Ok(self)
    }
}

macro_rules! seq_like {
    ($trait:ident, $method:ident) => {
        impl<S: Sink> ser::$trait for &mut Encoder<S> {
            type Ok = ();
            type Error = KeyEncodeError;
            #[inline]
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
                self.element(value)
            }
            fn end(self) -> Res {
                Encoder::end(self)
            }
        }
    };
}

seq_like!(SerializeSeq, serialize_element);
seq_like!(SerializeTuple, serialize_element);
seq_like!(SerializeTupleStruct, serialize_field);
seq_like!(SerializeTupleVariant, serialize_field);

macro_rules! struct_like {
    ($trait:ident) => {
        impl<S: Sink> ser::$trait for &mut Encoder<S> {
            type Ok = ();
            type Error = KeyEncodeError;
            fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Res {
                self.name(key);
                value.serialize(&mut **self)
            }
            fn skip_field(&mut self, key: &'static str) -> Res {
                self.tag(tag::SKIPPED_FIELD);
                self.name(key);
                Ok(())
            }
            fn end(self) -> Res {
                Encoder::end(self)
            }
        }
    };
}

struct_like!(SerializeStruct);
struct_like!(SerializeStructVariant);

/// Collects one digest per entry, then writes them sorted.
pub(crate) struct MapEncoder<'a, S: Sink> {
    enc: &'a mut Encoder<S>,
    digests: Vec<[u8; 32]>,
    /// A key given through `serialize_key`, waiting for its value (encoded, so the borrow can end).
    pending_key: Option<Vec<u8>>,
}

impl<S: Sink> ser::SerializeMap for MapEncoder<'_, S> {
    type Ok = ();
    type Error = KeyEncodeError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Res {
        let mut enc = Encoder::new(Vec::new());
        key.serialize(&mut enc)?;
        self.pending_key = Some(enc.into_sink());
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        let key = self
            .pending_key
            .take()
            .ok_or_else(|| KeyEncodeError("serialize_value called before serialize_key".into()))?;
        let mut enc = entry_encoder();
        enc.sink.put(&key);
        value.serialize(&mut enc)?;
        self.digests.push(enc.into_sink().finalize());
        Ok(())
    }

    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(&mut self, key: &K, value: &V) -> Res {
        self.digests.push(entry_digest(key, value)?);
        Ok(())
    }

    fn end(mut self) -> Res {
        self.digests.sort_unstable();
        self.enc.tag(tag::MAP);
        self.enc.len(self.digests.len());
        for d in &self.digests {
            self.enc.sink.put(d);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
        let mut enc = Encoder::new(Vec::new());
        v.serialize(&mut enc).expect("encodes");
        enc.into_sink()
    }

    #[test]
    fn types_are_tagged_apart() {
        assert_ne!(bytes(&(1u32, 2u32)), bytes(&vec![1u32, 2u32]));
        assert_ne!(bytes(&vec![1u32, 2u32]), bytes("[1, 2]"));
        assert_ne!(bytes(&1u8), bytes(&1u64));
        assert_ne!(bytes(&Some(1u8)), bytes(&1u8));
        assert_ne!(bytes(&serde_bytes_like()), bytes(&vec![1u8, 2, 3]));
    }

    fn serde_bytes_like() -> &'static str {
        "\u{1}\u{2}\u{3}"
    }

    #[test]
    fn u8_runs_are_chunked_and_split_around_other_elements() {
        let v: Vec<u8> = (0..RUN_CHUNK as u32 + 10).map(|i| i as u8).collect();
        let b = bytes(&v);
        // SEQ, RUN(4096), RUN(10), END
        assert_eq!(b.len(), 1 + (3 + RUN_CHUNK) + (3 + 10) + 1);
        assert_eq!(b[0], tag::SEQ);
        assert_eq!(b[1], tag::U8_RUN);
        assert_eq!(*b.last().expect("non-empty"), tag::END);
        // Nested: a sequence of byte vectors keeps the runs of each apart.
        assert_ne!(bytes(&vec![vec![1u8], vec![2u8]]), bytes(&vec![vec![1u8, 2u8]]));
    }

    /// An element that is a byte or not, as its value says.
    #[derive(Clone, Copy)]
    enum Item {
        Byte(u8),
        Wide(u16),
    }

    impl Serialize for Item {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match *self {
                Item::Byte(b) => s.serialize_u8(b),
                Item::Wide(w) => s.serialize_u16(w),
            }
        }
    }

    /// The same elements through `serialize_seq` + `serialize_element` (the slow path).
    struct ElementWise<'a>(&'a [Item]);

    impl Serialize for ElementWise<'_> {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use ser::SerializeSeq;
            let mut seq = s.serialize_seq(None)?;
            for item in self.0 {
                seq.serialize_element(item)?;
            }
            seq.end()
        }
    }

    #[test]
    fn both_sequence_paths_give_the_same_bytes() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in [0usize, 1, 63, 64, 65, 127, 128, 4095, 4096, 4097, 9000] {
            for wide_every in [0u64, 1, 7, 64, 500, 5000] {
                let items: Vec<Item> = (0..len)
                    .map(|i| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        if wide_every > 0 && x.is_multiple_of(wide_every) {
                            Item::Wide(i as u16)
                        } else {
                            Item::Byte(x as u8)
                        }
                    })
                    .collect();
                assert_eq!(
                    bytes(&items),
                    bytes(&ElementWise(&items)),
                    "len {len}, wide every {wide_every}"
                );
            }
        }
    }

    #[test]
    fn maps_are_order_independent() {
        let mut a = std::collections::HashMap::new();
        let mut b = std::collections::HashMap::new();
        for i in 0..100u32 {
            a.insert(i, i.to_string());
        }
        for i in (0..100u32).rev() {
            b.insert(i, i.to_string());
        }
        let ordered: std::collections::BTreeMap<u32, String> = a.clone().into_iter().collect();
        assert_eq!(bytes(&a), bytes(&b));
        assert_eq!(bytes(&a), bytes(&ordered));
    }

    #[test]
    fn nan_is_canonical_and_signed_zero_is_not_folded() {
        assert_eq!(bytes(&f64::NAN), bytes(&-f64::NAN));
        assert_ne!(bytes(&0.0f64), bytes(&-0.0f64));
    }

    #[test]
    fn hash_sink_matches_one_shot_hash_across_buffer_boundaries() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        for split in [1usize, 100, HASH_SINK_BUF - 1, HASH_SINK_BUF, HASH_SINK_BUF + 1] {
            let mut s = HashSink::new(blake3::Hasher::new());
            for chunk in data.chunks(split) {
                s.put(chunk);
            }
            assert_eq!(s.finalize(), *blake3::hash(&data).as_bytes(), "split {split}");
        }
    }
}
