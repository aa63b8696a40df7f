//! The canonical, type-tagged encoding of a key, as a serde `Serializer` writing into a [`Sink`].
//!
//! Rules (format version 2; changing any of them changes every key, so bump [`super::KEY_FORMAT_VERSION`]):
//! - every value starts with a one-byte tag naming its serde data-model type, so `1u8`, `1u64`, `"1"`, `(1,)` and
//!   `[1]` all differ; integers are fixed-width little-endian; floats are their IEEE bits (all NaNs folded to one;
//!   `-0.0` and `0.0` stay distinct); `bool` is one byte, 0 or 1; `char` its scalar value as `u32`;
//! - strings and byte strings are length-prefixed (`u64` LE); type, field and variant names are length-prefixed too;
//! - sequences and tuples (and tuple structs and variants) are bracketed by a start tag and an end tag, so their
//!   length need not be known up front;
//! - inside them, fixed-width primitive elements (`bool`, `i8`..`i128`, `u8`..`u128`, `f32`, `f64`, `char`) are
//!   never written one tagged value each: consecutive elements of one kind form a run, written in chunks of
//!   `[run tag of the kind] [count, u16 LE] [count words]` of at most [`RUN_BYTES`] payload bytes, greedily (full
//!   chunks, then the rest; see `runs.rs`). A `Vec<f64>` of 64 MiB is 64 MiB of words plus 3 bytes per 4 KiB;
//! - a map is hashed entry by entry (each entry's key and value into its own blake3 hash), and the sorted list of those
//!   entry digests is written, so two equal `HashMap`s give one key whatever their iteration order.
//!   A `HashSet` serializes as a sequence, which serde cannot tell apart from a `Vec`: use a `BTreeSet` in keys.
//!
//! Why the encoding is injective (different serde values give different bytes): it can be decoded. Each value
//! starts with a tag that says how to read the rest (a fixed width, a length prefix, or nested values up to an end
//! tag; map digests are a length-prefixed list of 32-byte digests). Inside a sequence the reader sees either the
//! end tag, a run tag (then a count `c` ≥ 1 and `c` words of the kind the tag names: `c` elements), or the tag of
//! one non-primitive element; a primitive element is never written any other way, so the decoded list of elements,
//! with their kinds and words, is the sequence that was encoded. Runs of two kinds never merge (each chunk names
//! its kind), and a run of one kind split in two chunks decodes to the same elements, which is why the chunking
//! rule must be fixed for canonicality, not for injectivity. (Folded NaNs and maps, hashed by digest, are the
//! deliberate exceptions: all NaNs are one key, and maps rely on blake3's collision resistance.)
//!
//! Why it is canonical (the same value always gives the same bytes): a run ends only at an element of another kind,
//! a non-primitive element, the end of the sequence or a full chunk, whichever producer writes it (the element
//! path, the staged `collect_seq` path, the bulk path for primitive slices); the tests compare them byte for byte.

use serde::ser::{self, Serialize};

use super::runs::{self, NotPrim, Prim, Probe, Word, RUN_BYTES};

/// The one-byte tags. A run's tag is [`runs::run_tag`] of its elements' tag.
pub(crate) mod tag {
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

/// The buffer's size: blake3 is fed whole buffers only (multiples of its 1 KiB chunks, at aligned offsets), so it
/// hashes them with its widest SIMD; a 16 KiB buffer flushed at odd lengths ran at 0.6x of one-shot blake3.
const HASH_SINK_BUF: usize = 64 * 1024;

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

    /// The buffer is full: fill it to exactly [`HASH_SINK_BUF`], hash it, and hash the whole buffers' worth of the
    /// rest in place.
    #[cold]
    #[inline(never)]
    fn put_slow(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.buf.is_empty() && bytes.len() >= HASH_SINK_BUF {
                let whole = bytes.len() - bytes.len() % HASH_SINK_BUF;
                self.hasher.update(&bytes[..whole]);
                bytes = &bytes[whole..];
                continue;
            }
            let room = HASH_SINK_BUF - self.buf.len();
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            self.buf.extend_from_slice(now);
            bytes = later;
            if self.buf.len() == HASH_SINK_BUF {
                self.hasher.update(&self.buf);
                self.buf.clear();
            }
        }
    }
}

impl Sink for HashSink {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        if self.buf.len() + bytes.len() < HASH_SINK_BUF {
            self.buf.extend_from_slice(bytes);
            return;
        }
        self.put_slow(bytes);
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

/// The canonical encoder. `run` holds the pending primitive elements of the innermost sequence (their words; all
/// of kind `run_tag`, `run_width` bytes each): at most one sequence level has a run pending at a time, because any
/// other element flushes the run before it is encoded.
pub(crate) struct Encoder<S: Sink> {
    pub(crate) sink: S,
    run: Vec<u8>,
    run_tag: u8,
    run_width: usize,
}

impl<S: Sink> Encoder<S> {
    pub(crate) fn new(sink: S) -> Self {
        Encoder {
            sink,
            run: Vec::new(),
            run_tag: 0,
            run_width: 1,
        }
    }

    pub(crate) fn into_sink(self) -> S {
        self.sink
    }

    /// Encodes a whole value (the key, or a map entry's key or value): a slice or `Vec` of primitives in bulk,
    /// anything else through its `Serialize`.
    #[inline]
    pub(crate) fn encode<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        if runs::bulk(value, SeqWriter(self)) {
            return Ok(());
        }
        value.serialize(self)
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
        runs::write_chunk(&mut self.sink, self.run_tag, self.run_width, &self.run);
        self.run.clear();
    }

    /// A primitive sequence element: one store into the pending run (a new chunk when the kind changes or the
    /// chunk is full).
    #[inline(always)]
    fn push_word(&mut self, w: Word) {
        if w.tag != self.run_tag || self.run.len() + w.width > RUN_BYTES {
            self.run_boundary(w);
        }
        self.run.extend_from_slice(&w.bytes[..w.width]);
    }

    #[cold]
    #[inline(never)]
    fn run_boundary(&mut self, w: Word) {
        self.flush_run();
        self.run_tag = w.tag;
        self.run_width = w.width;
        if self.run.capacity() < RUN_BYTES {
            self.run.reserve_exact(RUN_BYTES);
        }
    }

    /// Returns a run buffer taken by `collect_seq`, emptied (kept only while small).
    fn put_back_run(&mut self, mut run: Vec<u8>) {
        run.clear();
        if run.capacity() <= RUN_BYTES {
            self.run = run;
            self.run_tag = 0;
        }
    }

    /// A sequence element: a primitive slice in bulk, anything else through [`Element`].
    #[inline]
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        if runs::bulk(value, SeqWriter(self)) {
            return Ok(());
        }
        value.serialize(Element(self))
    }

    fn end(&mut self) -> Res {
        self.flush_run();
        self.tag(tag::END);
        Ok(())
    }
}

/// Writes a primitive slice found by [`runs::bulk`] as a whole sequence: what `collect_seq` writes for it.
struct SeqWriter<'a, S: Sink>(&'a mut Encoder<S>);

impl<S: Sink> runs::SliceVisitor for SeqWriter<'_, S> {
    #[inline]
    fn visit<P: Prim>(self, items: &[P]) {
        self.0.flush_run();
        self.0.tag(tag::SEQ);
        runs::write_slice(&mut self.0.sink, items);
        self.0.tag(tag::END);
    }
}

/// An encoder into the hasher of one map entry.
fn entry_encoder() -> Encoder<HashSink> {
    Encoder::new(HashSink::new(blake3::Hasher::new_keyed(super::map_entry_key())))
}

/// Hashes one map entry (key then value) into its own digest, with the same encoding rules.
fn entry_digest<K: Serialize + ?Sized, V: Serialize + ?Sized>(key: &K, value: &V) -> Result<[u8; 32], KeyEncodeError> {
    let mut enc = entry_encoder();
    enc.encode(key)?;
    enc.encode(value)?;
    Ok(enc.into_sink().finalize())
}

/// A sequence element: a primitive joins the pending run, anything else flushes it first.
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

macro_rules! element_runs {
    ($($method:ident($t:ty);)*) => {
        $(
            #[inline(always)]
            fn $method(self, v: $t) -> Res {
                self.0.push_word(runs::word(v));
                Ok(())
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

    element_runs! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_i128(i128);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_u128(u128);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
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
        self.encode(value)
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
        self.encode(value)
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
        self.encode(value)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self, KeyEncodeError> {
        self.tag(tag::SEQ);
        Ok(self)
    }
    /// The fast path for sequences (`Vec`, slices, sets, iterators): the same bytes as `serialize_seq` +
    /// `serialize_element`, but primitive elements are probed and stored into a small stack stage (indexed by a
    /// local, kept in a register), moved to the run 64 bytes at a time: per element a probe, a compare and a store.
    fn collect_seq<I>(self, iter: I) -> Res
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        self.flush_run();
        self.tag(tag::SEQ);
        // Reserved on demand: a sequence without primitive elements never allocates here.
        let mut run = std::mem::take(&mut self.run);
        run.clear();
        // The kind of the words in `run` and `stage` (0: none yet, width 0, so the first primitive starts a run).
        let mut kind = 0u8;
        let mut width = 0usize;
        const STAGE: usize = 64;
        const _: () = assert!(RUN_BYTES.is_multiple_of(STAGE) && STAGE.is_multiple_of(16));
        let mut stage = [0u8; STAGE];
        let mut n = 0usize;
        let mut iter = iter.into_iter();
        /// Why the inner loop stopped.
        enum Stop<T> {
            /// The stage has no room for another word of its kind.
            Full,
            /// A primitive of another kind (or the first one).
            Kind(Word),
            /// An element that is not a primitive.
            Other(T),
            /// The end of the sequence.
            End,
        }
        loop {
            // The hot loop: no calls, so the iterator and the stage index stay in registers. For a concrete element
            // type the probe folds to a constant kind and width: a compare and one store of `width` bytes each.
            let stop = loop {
                if n + width > STAGE {
                    break Stop::Full;
                }
                let Some(item) = iter.next() else {
                    break Stop::End;
                };
                match item.serialize(Probe) {
                    Ok(w) if w.tag == kind => {
                        if let (Some(slot), Some(word)) = (stage.get_mut(n..n + w.width), w.bytes.get(..w.width)) {
                            slot.copy_from_slice(word);
                        }
                        n += w.width;
                    }
                    Ok(w) => break Stop::Kind(w),
                    Err(NotPrim) => break Stop::Other(item),
                }
            };
            match stop {
                Stop::Full => {
                    // `run` grows by whole stages, so it reaches RUN_BYTES exactly.
                    run.extend_from_slice(&stage[..n]);
                    n = 0;
                    if run.len() >= RUN_BYTES {
                        runs::write_chunk(&mut self.sink, kind, width, &run);
                        run.clear();
                    }
                }
                Stop::Kind(w) => {
                    run.extend_from_slice(&stage[..n]);
                    runs::write_chunk(&mut self.sink, kind, width, &run);
                    run.clear();
                    if run.capacity() < RUN_BYTES {
                        run.reserve_exact(RUN_BYTES);
                    }
                    kind = w.tag;
                    width = w.width;
                    stage[..w.width].copy_from_slice(&w.bytes[..w.width]);
                    n = w.width;
                }
                Stop::Other(item) => {
                    run.extend_from_slice(&stage[..n]);
                    n = 0;
                    runs::write_chunk(&mut self.sink, kind, width, &run);
                    run.clear();
                    kind = 0;
                    width = 0;
                    if let Err(e) = item.serialize(&mut *self) {
                        self.put_back_run(run);
                        return Err(e);
                    }
                }
                Stop::End => break,
            }
        }
        run.extend_from_slice(&stage[..n]);
        runs::write_chunk(&mut self.sink, kind, width, &run);
        self.put_back_run(run);
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
                (**self).encode(value)
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
        enc.encode(key)?;
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
        enc.encode(value)?;
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
        assert_eq!(bytes(&f32::NAN), bytes(&f32::from_bits(0x7fc0_0001)));
        assert_ne!(bytes(&0.0f32), bytes(&-0.0f32));
    }

    #[test]
    fn scalars_outside_sequences_keep_their_tags() {
        assert_eq!(bytes(&7u8), [tag::U8, 7]);
        assert_eq!(bytes(&true), [tag::BOOL, 1]);
        assert_eq!(bytes(&'A'), [tag::CHAR, 0x41, 0, 0, 0]);
        assert_eq!(bytes(&Some(1u16)), [tag::SOME, tag::U16, 1, 0]);
        let mut f = vec![tag::F64];
        f.extend_from_slice(&1.5f64.to_bits().to_le_bytes());
        assert_eq!(bytes(&1.5f64), f);
    }

    #[test]
    fn hash_sink_matches_one_shot_hash_across_buffer_boundaries() {
        let data: Vec<u8> = (0..400_000u32).map(|i| (i * 7) as u8).collect();
        for split in [
            1usize,
            100,
            4099,
            HASH_SINK_BUF - 1,
            HASH_SINK_BUF,
            HASH_SINK_BUF + 1,
            3 * HASH_SINK_BUF + 5,
        ] {
            let mut s = HashSink::new(blake3::Hasher::new());
            for chunk in data.chunks(split) {
                s.put(chunk);
            }
            assert_eq!(s.finalize(), *blake3::hash(&data).as_bytes(), "split {split}");
        }
    }
}
