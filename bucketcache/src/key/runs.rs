//! Runs: the encoding of fixed-width primitive elements of a sequence (key format version 2).
//!
//! Inside a sequence, tuple, tuple struct or tuple variant, consecutive elements of the same primitive kind (`bool`,
//! `i8`..`i128`, `u8`..`u128`, `f32`, `f64`, `char`) are written as a run, never one tagged value each: chunks of
//! `[run tag of the kind] [count: u16 LE, 1..=RUN_BYTES / width] [count little-endian words]`, greedily (full chunks,
//! then the rest). A word is the value's fixed-width little-endian bytes: `bool` is 0 or 1, `char` its scalar value
//! as `u32`, `f32`/`f64` their IEEE bits with every NaN folded to one (so `-0.0` and `0.0` stay distinct).
//!
//! Three producers write the same bytes for the same elements (the tests hold them to it):
//! - the element path ([`super::encoder`]'s `Element`, for tuples and hand-written `serialize_seq`): each element
//!   is one store into the pending run;
//! - the staged path (`collect_seq`: `Vec`, slices, sets, any iterator): elements are probed ([`Probe`]) and stored
//!   into a small stack stage, moved to the run 64 bytes at a time;
//! - the bulk path ([`bulk`]): a `&[P]` or `&Vec<P>` of a primitive `P`, recognized at compile time
//!   (`castaway`, no `unsafe` here), converted chunk by chunk (`u8`: no conversion at all).

use serde::ser::{self, Serialize};

use super::encoder::Sink;

/// Most payload bytes in one chunk of a run (so at most `RUN_BYTES / width` elements).
pub(crate) const RUN_BYTES: usize = 4096;

/// The tag of a run of elements whose single-value tag is `tag` (see `encoder::tag`).
#[inline(always)]
pub(crate) const fn run_tag(tag: u8) -> u8 {
    tag | 0x40
}

/// Writes one chunk: `payload` holds whole words of the kind tagged `tag`, `width` bytes each; nothing when empty.
#[inline]
pub(crate) fn write_chunk<S: Sink>(sink: &mut S, tag: u8, width: usize, payload: &[u8]) {
    if payload.is_empty() {
        return;
    }
    debug_assert!(payload.len() <= RUN_BYTES && payload.len().is_multiple_of(width));
    let [lo, hi] = ((payload.len() / width) as u16).to_le_bytes();
    sink.put(&[run_tag(tag), lo, hi]);
    sink.put(payload);
}

/// A primitive element as a run sees it: its kind's tag, its width and its word (the first `width` bytes).
#[derive(Clone, Copy)]
pub(crate) struct Word {
    pub(crate) tag: u8,
    pub(crate) width: usize,
    pub(crate) bytes: [u8; 16],
}

/// The fixed-width primitives, with their tag and their canonical word.
pub(crate) trait Prim: Copy + 'static {
    /// The single-value tag (`encoder::tag`).
    const TAG: u8;
    /// The word's width in bytes.
    const WIDTH: usize;
    /// The canonical little-endian word.
    type Le: AsRef<[u8]>;
    /// The canonical word (NaNs folded).
    fn le(self) -> Self::Le;
}

macro_rules! prim {
    ($($t:ty => $tag:expr, $w:expr, |$x:ident| $le:expr;)*) => {
        $(
            impl Prim for $t {
                const TAG: u8 = $tag;
                const WIDTH: usize = $w;
                type Le = [u8; $w];
                #[inline(always)]
                fn le(self) -> [u8; $w] {
                    let $x = self;
                    $le
                }
            }
        )*
    };
}

use super::encoder::tag;

prim! {
    bool => tag::BOOL, 1, |x| [x as u8];
    i8 => tag::I8, 1, |x| x.to_le_bytes();
    i16 => tag::I16, 2, |x| x.to_le_bytes();
    i32 => tag::I32, 4, |x| x.to_le_bytes();
    i64 => tag::I64, 8, |x| x.to_le_bytes();
    i128 => tag::I128, 16, |x| x.to_le_bytes();
    u8 => tag::U8, 1, |x| [x];
    u16 => tag::U16, 2, |x| x.to_le_bytes();
    u32 => tag::U32, 4, |x| x.to_le_bytes();
    u64 => tag::U64, 8, |x| x.to_le_bytes();
    u128 => tag::U128, 16, |x| x.to_le_bytes();
    f32 => tag::F32, 4, |x| f32_bits(x).to_le_bytes();
    f64 => tag::F64, 8, |x| f64_bits(x).to_le_bytes();
    char => tag::CHAR, 4, |x| (x as u32).to_le_bytes();
}

/// The canonical bits of an `f32`: every NaN is one value; `-0.0` is not `0.0`.
#[inline(always)]
pub(crate) fn f32_bits(v: f32) -> u32 {
    if v.is_nan() {
        f32::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

/// The canonical bits of an `f64`: every NaN is one value; `-0.0` is not `0.0`.
#[inline(always)]
pub(crate) fn f64_bits(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

/// The [`Word`] of a primitive.
#[inline(always)]
pub(crate) fn word<P: Prim>(v: P) -> Word {
    let le = v.le();
    let mut bytes = [0u8; 16];
    bytes[..P::WIDTH].copy_from_slice(le.as_ref());
    Word {
        tag: P::TAG,
        width: P::WIDTH,
        bytes,
    }
}

/// Writes a whole sequence of primitives as its runs (no start or end tag): greedy chunks of
/// `RUN_BYTES / P::WIDTH` elements, each converted into a stack stage (a `u8` slice goes to the sink as it is).
pub(crate) fn write_slice<S: Sink, P: Prim>(sink: &mut S, items: &[P]) {
    let per_chunk = RUN_BYTES / P::WIDTH;
    if let Some(bytes) = as_bytes(items) {
        for chunk in bytes.chunks(per_chunk) {
            write_chunk(sink, P::TAG, 1, chunk);
        }
        return;
    }
    let mut stage = [0u8; RUN_BYTES];
    for chunk in items.chunks(per_chunk) {
        let len = chunk.len() * P::WIDTH;
        for (dst, x) in stage[..len].chunks_exact_mut(P::WIDTH).zip(chunk) {
            dst.copy_from_slice(x.le().as_ref());
        }
        write_chunk(sink, P::TAG, P::WIDTH, &stage[..len]);
    }
}

/// `items` as bytes when they are `u8` already (their words are themselves).
#[inline(always)]
fn as_bytes<P: Prim>(items: &[P]) -> Option<&[u8]> {
    castaway::cast!(items, &[u8]).ok()
}

/// What the bulk path hands a recognized primitive slice to.
pub(crate) trait SliceVisitor {
    /// Writes `items`, a whole sequence.
    fn visit<P: Prim>(self, items: &[P]);
}

/// The bulk path: when `value` is a `[P]` or `Vec<P>` of a primitive `P`, hands it to `visitor` and returns `true`;
/// otherwise returns `false`. Decided at compile time: for any other type this is `false` and costs nothing.
#[inline(always)]
pub(crate) fn bulk<T: ?Sized, V: SliceVisitor>(value: &T, visitor: V) -> bool {
    macro_rules! try_prims {
        ($($p:ty),*) => {
            $(
                if let Ok(s) = castaway::cast!(value, &[$p]) {
                    visitor.visit(s);
                    return true;
                }
                if let Ok(v) = castaway::cast!(value, &Vec<$p>) {
                    visitor.visit(v.as_slice());
                    return true;
                }
            )*
        };
    }
    try_prims!(u8, f64, f32, u64, i64, u32, i32, u16, i16, i8, u128, i128, bool, char);
    false
}

/// Answers "is this value a fixed-width primitive, and which word?" without encoding anything.
pub(crate) struct Probe;

/// What [`Probe`] says of anything else.
#[derive(Debug)]
pub(crate) struct NotPrim;

impl std::fmt::Display for NotPrim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a fixed-width primitive")
    }
}

impl std::error::Error for NotPrim {}

impl ser::Error for NotPrim {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        NotPrim
    }
}

macro_rules! probe_accepts {
    ($($method:ident($t:ty);)*) => {
        $(
            #[inline(always)]
            fn $method(self, v: $t) -> Result<Word, NotPrim> {
                Ok(word(v))
            }
        )*
    };
}

macro_rules! probe_rejects {
    ($($method:ident($($arg:ty),*) -> $ret:ty;)*) => {
        $(
            #[inline]
            fn $method(self, $(_: $arg),*) -> $ret {
                Err(NotPrim)
            }
        )*
    };
}

impl ser::Serializer for Probe {
    type Ok = Word;
    type Error = NotPrim;
    type SerializeSeq = ser::Impossible<Word, NotPrim>;
    type SerializeTuple = ser::Impossible<Word, NotPrim>;
    type SerializeTupleStruct = ser::Impossible<Word, NotPrim>;
    type SerializeTupleVariant = ser::Impossible<Word, NotPrim>;
    type SerializeMap = ser::Impossible<Word, NotPrim>;
    type SerializeStruct = ser::Impossible<Word, NotPrim>;
    type SerializeStructVariant = ser::Impossible<Word, NotPrim>;

    probe_accepts! {
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

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<Word, NotPrim> {
        Err(NotPrim)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, _: &T) -> Result<Word, NotPrim> {
        Err(NotPrim)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Word, NotPrim> {
        Err(NotPrim)
    }
    probe_rejects! {
        serialize_str(&str) -> Result<Word, NotPrim>;
        serialize_bytes(&[u8]) -> Result<Word, NotPrim>;
        serialize_none() -> Result<Word, NotPrim>;
        serialize_unit() -> Result<Word, NotPrim>;
        serialize_unit_struct(&'static str) -> Result<Word, NotPrim>;
        serialize_unit_variant(&'static str, u32, &'static str) -> Result<Word, NotPrim>;
        serialize_seq(Option<usize>) -> Result<Self::SerializeSeq, NotPrim>;
        serialize_tuple(usize) -> Result<Self::SerializeTuple, NotPrim>;
        serialize_tuple_struct(&'static str, usize) -> Result<Self::SerializeTupleStruct, NotPrim>;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Result<Self::SerializeTupleVariant, NotPrim>;
        serialize_map(Option<usize>) -> Result<Self::SerializeMap, NotPrim>;
        serialize_struct(&'static str, usize) -> Result<Self::SerializeStruct, NotPrim>;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Result<Self::SerializeStructVariant, NotPrim>;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::encoder::Encoder;
    use serde::ser::SerializeSeq;

    /// The value's own `Serialize` on the encoder: a `Vec` or slice takes the staged `collect_seq` path.
    fn staged<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
        let mut enc = Encoder::new(Vec::new());
        v.serialize(&mut enc).expect("encodes");
        enc.into_sink()
    }

    /// What the key makers write: a primitive slice or `Vec` takes the bulk path.
    fn encoded<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
        let mut enc = Encoder::new(Vec::new());
        enc.encode(v).expect("encodes");
        enc.into_sink()
    }

    /// The elements through `serialize_seq` + `serialize_element`: the element path.
    struct ElementWise<'a, T>(&'a [T]);

    impl<T: Serialize> Serialize for ElementWise<'_, T> {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(None)?;
            for item in self.0 {
                seq.serialize_element(item)?;
            }
            seq.end()
        }
    }

    /// The elements through `collect_seq` of an iterator that is not a slice: the staged path, never the bulk one.
    struct Iter<'a, T>(&'a [T]);

    impl<T: Serialize> Serialize for Iter<'_, T> {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.iter())
        }
    }

    /// Every producer of a sequence of `items`, alone and as the second element of a tuple (after a pending run of
    /// one `u8`), gives `want`.
    fn all_paths<P: Prim + Serialize>(items: &[P], want: &[u8]) {
        let v = items.to_vec();
        assert_eq!(staged(&v), want, "staged");
        assert_eq!(encoded(&v), want, "bulk, Vec");
        assert_eq!(encoded(items), want, "bulk, slice");
        assert_eq!(staged(&ElementWise(items)), want, "element path");
        assert_eq!(staged(&Iter(items)), want, "iterator");
        let nested = |second: Vec<u8>| {
            let mut b = vec![tag::TUPLE, run_tag(tag::U8), 1, 0, 9];
            b.extend_from_slice(&second);
            b.push(tag::END);
            b
        };
        assert_eq!(encoded(&(9u8, &v)), nested(want.to_vec()), "bulk, nested");
        assert_eq!(encoded(&(9u8, Iter(items))), nested(want.to_vec()), "staged, nested");
        assert_eq!(
            encoded(&(9u8, ElementWise(items))),
            nested(want.to_vec()),
            "element path, nested"
        );
    }

    // One pinned example per run kind: the exact canonical bytes (a change here is a key format change).

    #[test]
    fn run_of_bool() {
        all_paths(&[true, false, true], &[0x18, 0x42, 3, 0, 1, 0, 1, 0x1F]);
    }

    #[test]
    fn run_of_i8() {
        all_paths(&[-1i8, 2], &[0x18, 0x43, 2, 0, 0xFF, 0x02, 0x1F]);
    }

    #[test]
    fn run_of_i16() {
        all_paths(&[-2i16, 0x0102], &[0x18, 0x44, 2, 0, 0xFE, 0xFF, 0x02, 0x01, 0x1F]);
    }

    #[test]
    fn run_of_i32() {
        all_paths(
            &[-3i32, 1],
            &[0x18, 0x45, 2, 0, 0xFD, 0xFF, 0xFF, 0xFF, 1, 0, 0, 0, 0x1F],
        );
    }

    #[test]
    fn run_of_i64() {
        all_paths(
            &[-4i64],
            &[0x18, 0x46, 1, 0, 0xFC, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F],
        );
    }

    #[test]
    fn run_of_i128() {
        let mut want = vec![0x18, 0x47, 1, 0, 0xFB];
        want.extend_from_slice(&[0xFF; 15]);
        want.push(0x1F);
        all_paths(&[-5i128], &want);
    }

    #[test]
    fn run_of_u8() {
        all_paths(&[1u8, 2, 3], &[0x18, 0x48, 3, 0, 1, 2, 3, 0x1F]);
    }

    #[test]
    fn run_of_u16() {
        all_paths(&[0x0102u16], &[0x18, 0x49, 1, 0, 0x02, 0x01, 0x1F]);
    }

    #[test]
    fn run_of_u32() {
        all_paths(&[0x0102_0304u32], &[0x18, 0x4A, 1, 0, 4, 3, 2, 1, 0x1F]);
    }

    #[test]
    fn run_of_u64() {
        all_paths(
            &[1u64, 2],
            &[0x18, 0x4B, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0x1F],
        );
    }

    #[test]
    fn run_of_u128() {
        all_paths(
            &[(1u128 << 64) | 7],
            &[0x18, 0x4C, 1, 0, 7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x1F],
        );
    }

    #[test]
    fn run_of_f32_folds_nan() {
        let want = [
            0x18, 0x4D, 3, 0, 0, 0, 0x80, 0x3F, 0, 0, 0xC0, 0x7F, 0, 0, 0, 0x80, 0x1F,
        ];
        all_paths(&[1.0f32, f32::NAN, -0.0], &want);
        all_paths(&[1.0f32, -f32::from_bits(0x7f80_0001), -0.0], &want);
    }

    #[test]
    fn run_of_f64_folds_nan_and_keeps_signed_zero() {
        let want = [
            0x18, 0x4E, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F, 0, 0, 0, 0, 0, 0, 0xF8, 0x7F,
            0x1F,
        ];
        all_paths(&[-0.0f64, 1.0, f64::NAN], &want);
        all_paths(&[-0.0f64, 1.0, -f64::NAN], &want);
        assert_ne!(encoded(&vec![0.0f64]), encoded(&vec![-0.0f64]));
    }

    #[test]
    fn run_of_char() {
        all_paths(&['A', 'é'], &[0x18, 0x4F, 2, 0, 0x41, 0, 0, 0, 0xE9, 0, 0, 0, 0x1F]);
    }

    #[test]
    fn arrays_are_tuples_with_runs() {
        assert_eq!(encoded(&[1u8, 2, 3]), [0x19, 0x48, 3, 0, 1, 2, 3, 0x1F]);
        assert_eq!(encoded(&[1u16, 2]), [0x19, 0x49, 2, 0, 1, 0, 2, 0, 0x1F]);
        assert_eq!(encoded(&Vec::<u8>::new()), [0x18, 0x1F]);
        assert_eq!(staged(&Vec::<f64>::new()), [0x18, 0x1F]);
        assert_eq!(staged(&ElementWise::<u32>(&[])), [0x18, 0x1F]);
    }

    /// Chunks: full ones of `RUN_BYTES / width` elements, then the rest, for every width, at every path.
    #[test]
    fn runs_are_chunked_greedily() {
        fn check<P: Prim + Serialize>(make: impl Fn(usize) -> P) {
            let per = RUN_BYTES / P::WIDTH;
            for len in [per - 1, per, per + 1, 2 * per, 2 * per + 3] {
                let items: Vec<P> = (0..len).map(&make).collect();
                let mut want = vec![tag::SEQ];
                for chunk in items.chunks(per) {
                    want.push(run_tag(P::TAG));
                    want.extend_from_slice(&(chunk.len() as u16).to_le_bytes());
                    for x in chunk {
                        want.extend_from_slice(x.le().as_ref());
                    }
                }
                want.push(tag::END);
                all_paths(&items, &want);
            }
        }
        check(|i| i as u8);
        check(|i| i as i8);
        check(|i| i % 3 == 0);
        check(|i| i as u16);
        check(|i| i as i16);
        check(|i| i as u32);
        check(|i| i as i32);
        check(|i| i as f32);
        check(|i| char::from_u32(0x41 + (i as u32 % 26)).unwrap_or('a'));
        check(|i| i as u64);
        check(|i| i as i64);
        check(|i| i as f64 * -0.5);
        check(|i| i as u128);
        check(|i| i as i128);
    }

    /// An element of any kind, as its value says.
    #[derive(Clone, Debug)]
    enum Item {
        B(bool),
        I8(i8),
        I16(i16),
        I32(i32),
        I64(i64),
        I128(i128),
        U8(u8),
        U16(u16),
        U32(u32),
        U64(u64),
        U128(u128),
        F32(f32),
        F64(f64),
        C(char),
        S(String),
        O(Option<u8>),
        V(Vec<u16>),
    }

    impl Serialize for Item {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self {
                Item::B(v) => s.serialize_bool(*v),
                Item::I8(v) => s.serialize_i8(*v),
                Item::I16(v) => s.serialize_i16(*v),
                Item::I32(v) => s.serialize_i32(*v),
                Item::I64(v) => s.serialize_i64(*v),
                Item::I128(v) => s.serialize_i128(*v),
                Item::U8(v) => s.serialize_u8(*v),
                Item::U16(v) => s.serialize_u16(*v),
                Item::U32(v) => s.serialize_u32(*v),
                Item::U64(v) => s.serialize_u64(*v),
                Item::U128(v) => s.serialize_u128(*v),
                Item::F32(v) => s.serialize_f32(*v),
                Item::F64(v) => s.serialize_f64(*v),
                Item::C(v) => s.serialize_char(*v),
                Item::S(v) => s.serialize_str(v),
                Item::O(v) => v.serialize(s),
                Item::V(v) => v.serialize(s),
            }
        }
    }

    #[test]
    fn mixed_pinned() {
        let items = [
            Item::U8(1),
            Item::U8(2),
            Item::U16(3),
            Item::O(Some(4)),
            Item::O(None),
            Item::U8(5),
            Item::V(vec![6]),
            Item::F64(f64::NAN),
        ];
        let mut want = vec![tag::SEQ, 0x48, 2, 0, 1, 2, 0x49, 1, 0, 3, 0];
        want.extend_from_slice(&[tag::SOME, tag::U8, 4, tag::NONE, 0x48, 1, 0, 5]);
        want.extend_from_slice(&[tag::SEQ, 0x49, 1, 0, 6, 0, tag::END]);
        want.extend_from_slice(&[0x4E, 1, 0, 0, 0, 0, 0, 0, 0, 0xF8, 0x7F, tag::END]);
        assert_eq!(staged(&items[..]), want);
        assert_eq!(staged(&ElementWise(&items)), want);
        assert_eq!(staged(&Iter(&items)), want);
        // Sequences of options are never runs: each element keeps its tags.
        assert_eq!(
            encoded(&vec![Some(1u8), None]),
            [tag::SEQ, tag::SOME, tag::U8, 1, tag::NONE, tag::END]
        );
    }

    /// Random mixes of kinds (runs of every length, switching kind, broken by other elements): the staged and the
    /// element paths agree.
    #[test]
    fn staged_and_element_paths_agree_on_mixes() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..300 {
            let len = [0usize, 1, 5, 63, 64, 65, 300, 4095, 4097, 9000][round % 10];
            let switch_every = [1u64, 3, 50, 700, 5000, u64::MAX][round % 6];
            let mut kind = next() % 17;
            let items: Vec<Item> = (0..len)
                .map(|_| {
                    let r = next();
                    if r % switch_every == 0 {
                        kind = next() % 17;
                    }
                    match kind {
                        0 => Item::B(r & 1 == 1),
                        1 => Item::I8(r as i8),
                        2 => Item::I16(r as i16),
                        3 => Item::I32(r as i32),
                        4 => Item::I64(r as i64),
                        5 => Item::I128(r as i128 * -3),
                        6 => Item::U8(r as u8),
                        7 => Item::U16(r as u16),
                        8 => Item::U32(r as u32),
                        9 => Item::U64(r),
                        10 => Item::U128(u128::from(r) << 3),
                        11 => Item::F32(f32::from_bits(r as u32)),
                        12 => Item::F64(f64::from_bits(r)),
                        13 => Item::C(char::from_u32(r as u32 % 0xD000).unwrap_or('x')),
                        14 => Item::S(format!("{}", r % 100)),
                        15 => Item::O((r % 3 > 0).then_some(r as u8)),
                        _ => Item::V((0..r % 5).map(|i| i as u16).collect()),
                    }
                })
                .collect();
            let a = staged(&items);
            assert_eq!(a, staged(&ElementWise(&items)), "round {round}");
            assert_eq!(a, staged(&Iter(&items)), "round {round}");
        }
    }
}
