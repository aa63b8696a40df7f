//! Flat vectors read in bulk: a `Vec` of fixed-width numbers (`f64`, `f32`, `u8`, `i8`; with
//! [`BincodeConfig::fixed_int_encoding`](super::BincodeConfig) also `u16` to `u64` and `i16` to `i64`) stored by
//! [`BincodeBackend`](super::BincodeBackend) is its length (a bincode integer) followed by its elements, each in
//! little-endian bytes. A large entry of such a type is decoded here, block by block, instead of element by element
//! through serde (a few nanoseconds per element, which made a 256 MiB `Vec<f64>` decode slower than its file
//! reads): the vector is allocated once at its final length and each block read from the file is converted into
//! it and then handed to the payload hasher (the same block: no copy). The bytes and the result are exactly
//! serde's; an encoding whose declared length does not match the payload is the same decode error.
//!
//! The entry's checksum is still verified by the caller after the last block: a corrupt entry is a miss.

use std::any::{Any, TypeId};
use std::io::Read;

use bincode::config;

use super::BincodeBackend;
use crate::error::BoxError;
use crate::store::HashingReader;

/// Bytes read per block (the blocks in flight to the hashing helper are a few of these).
const BLOCK: usize = 1 << 20;

/// A fixed-width number bincode writes as its little-endian bytes.
pub(super) trait Elem: bytemuck::Pod + Send + Sync + 'static {
    const SIZE: usize;
    /// Zero (a vector of zeros is allocated zeroed: its pages are touched only when written).
    const ZERO: Self;
    /// Whether bincode writes it raw under the varint configuration too (floats and bytes).
    const RAW_IN_VARINT: bool;
    fn from_le(bytes: &[u8]) -> Self;
}

macro_rules! elem {
    ($($t:ty: $raw:expr),*) => {$(
        impl Elem for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            const ZERO: Self = 0 as $t;
            const RAW_IN_VARINT: bool = $raw;
            #[inline(always)]
            fn from_le(bytes: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(bytes);
                <$t>::from_le_bytes(a)
            }
        }
    )*};
}

elem!(f64: true, f32: true, u8: true, i8: true, u16: false, i16: false, u32: false, i32: false, u64: false, i64: false);

/// `backend` as the bincode backend when it stores `V` as a flat vector this module reads (`None` for any other
/// type or backend).
pub(crate) fn bincode_for<V: 'static, B: 'static>(backend: &B) -> Option<&BincodeBackend> {
    let bincode = (backend as &dyn Any).downcast_ref::<BincodeBackend>()?;
    let fixint = bincode.config().fixed_int_encoding;
    let t = TypeId::of::<V>();
    macro_rules! any_of {
        ($($e:ty),*) => { $( (t == TypeId::of::<Vec<$e>>() && (fixint || <$e as Elem>::RAW_IN_VARINT)) )||* };
    }
    any_of!(f64, f32, u8, i8, u16, i16, u32, i32, u64, i64).then_some(bincode)
}

/// Decodes a `V` for which [`bincode_for`] said yes from the `len`-byte payload `src` reads, every byte read going
/// to `src`'s hash. Returns the value or why the bytes are not one; it reads the whole payload when they are one
/// (on an error the caller drains and hashes the rest), and fails only when `src` does.
pub(crate) fn decode<V: 'static, R: Read>(
    backend: &BincodeBackend,
    src: &mut HashingReader<R>,
    len: u64,
) -> std::io::Result<Result<V, BoxError>> {
    macro_rules! dispatch {
        ($($e:ty),*) => {$(
            if TypeId::of::<V>() == TypeId::of::<Vec<$e>>() {
                return Ok(read_vec::<$e, R>(backend, src, len)?.and_then(into_v::<V, Vec<$e>>));
            }
        )*};
    }
    dispatch!(f64, f32, u8, i8, u16, i16, u32, i32, u64, i64);
    Ok(Err("not a flat vector".into()))
}

/// `value` as a `V` (they are one type: checked by the caller).
pub(super) fn into_v<V: 'static, T: 'static>(value: T) -> Result<V, BoxError> {
    (Box::new(value) as Box<dyn Any>)
        .downcast::<V>()
        .map(|v| *v)
        .map_err(|_| "flat vector: type mismatch".into())
}

/// The bytes of a flat payload's length prefix, from its first byte (bincode's integer encoding).
pub(super) fn prefix_len(fixint: bool, first: u8) -> usize {
    match (fixint, first) {
        (true, _) => 8,
        (false, 0..=250) => 1,
        (false, 251) => 3,
        (false, 252) => 5,
        (false, 253) => 9,
        (false, _) => 17,
    }
}

/// The element count a flat payload's length prefix (all of it) declares.
pub(super) fn declared_count(fixint: bool, prefix: &[u8]) -> Result<u64, BoxError> {
    let count = if fixint {
        bincode::decode_from_slice::<u64, _>(prefix, config::standard().with_fixed_int_encoding())
    } else {
        bincode::decode_from_slice::<u64, _>(prefix, config::standard())
    };
    count.map(|(n, _)| n).map_err(Into::into)
}

/// Reads the length prefix, then the elements, block by block.
fn read_vec<T: Elem, R: Read>(
    backend: &BincodeBackend,
    src: &mut HashingReader<R>,
    len: u64,
) -> std::io::Result<Result<Vec<T>, BoxError>> {
    let fixint = backend.config().fixed_int_encoding;
    // The prefix: eight bytes with fixed-width integers; else a first byte that says how many follow.
    let mut prefix = [0u8; 17];
    if src.read_block(1, |b| prefix[..b.len()].copy_from_slice(b))? == 0 {
        return Ok(Err("the payload is empty".into()));
    }
    let prefix_len = prefix_len(fixint, prefix[0]);
    if prefix_len > 1 {
        let got = src.read_block(prefix_len - 1, |b| prefix[1..1 + b.len()].copy_from_slice(b))?;
        if got + 1 < prefix_len {
            return Ok(Err("the payload ends inside its length".into()));
        }
    }
    let count = match declared_count(fixint, &prefix[..prefix_len]) {
        Ok(n) => n,
        Err(e) => return Ok(Err(e)),
    };
    let body = len.saturating_sub(prefix_len as u64);
    // The declared length must be exactly what the payload holds (serde would read past the end, or leave
    // trailing bytes): checked before allocating, so a crafted length allocates nothing.
    let want = count.checked_mul(T::SIZE as u64);
    if want != Some(body) {
        return Ok(Err(match want {
            Some(w) if w < body => format!("{} trailing bytes after the value", body - w).into(),
            _ => format!("the payload ends before its {count} elements").into(),
        }));
    }
    let Ok(count) = usize::try_from(count) else {
        return Ok(Err("a vector too long for this platform".into()));
    };
    // `try_reserve_exact`: a length over what this platform can allocate (a 32-bit target, a huge file) is a
    // decode error, not a capacity-overflow panic or an abort.
    let mut out: Vec<T> = Vec::new();
    if out.try_reserve_exact(count).is_err() {
        return Ok(Err("a vector too large to allocate here".into()));
    }
    let block = BLOCK - BLOCK % T::SIZE;
    while out.len() < count {
        let n = src.read_block(block, |b| out.extend(b.chunks_exact(T::SIZE).map(T::from_le)))?;
        if n == 0 || n % T::SIZE != 0 {
            return Ok(Err(format!("the payload ends before its {count} elements").into()));
        }
    }
    Ok(Ok(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Backend, BincodeConfig};

    fn roundtrip<T>(backend: BincodeBackend, value: Vec<T>)
    where
        T: serde::Serialize + serde::de::DeserializeOwned + 'static,
    {
        assert!(
            bincode_for::<Vec<T>, _>(&backend).is_some(),
            "{}",
            std::any::type_name::<T>()
        );
        let mut bytes = Vec::new();
        backend.encode(&value, &mut bytes).expect("encodes");
        for flags in [crate::entry::FLAG_XXH3, 0] {
            let mut src = HashingReader::new(&bytes[..], flags);
            let got: Vec<T> = decode::<Vec<T>, _>(&backend, &mut src, bytes.len() as u64)
                .expect("reads")
                .expect("decodes");
            // Bit for bit (NaN payloads too): the decoded value encodes to the same bytes.
            let mut again = Vec::new();
            backend.encode(&got, &mut again).expect("encodes");
            assert!(
                again == bytes && got.len() == value.len(),
                "{}",
                std::any::type_name::<T>()
            );
            let (count, sum, err) = src.finish();
            assert_eq!(count, bytes.len() as u64, "every byte read");
            assert_eq!(
                sum,
                Some(crate::entry::payload_checksum(flags, &bytes)),
                "every byte checksummed, in order (flags {flags})"
            );
            assert_eq!(err, None);
        }
    }

    #[test]
    fn flat_vectors_decode_as_serde_does() {
        let plain = BincodeBackend::new();
        let fixint = BincodeBackend::with_config(BincodeConfig::new().fixed_int_encoding(true));
        // Lengths that take each prefix size (1 and 3 bytes with varints) and blocks that end mid-value.
        for n in [0usize, 1, 250, 251, 70_000, 700_001] {
            let floats: Vec<f64> = (0..n).map(|i| i as f64 * 0.5 - 3.25).collect();
            roundtrip(plain, floats.clone());
            roundtrip(fixint, floats);
            roundtrip(plain, (0..n).map(|i| i as f32 * 1.5).collect::<Vec<f32>>());
            roundtrip(plain, (0..n).map(|i| (i * 7) as u8).collect::<Vec<u8>>());
            roundtrip(plain, (0..n).map(|i| (i * 7) as i8).collect::<Vec<i8>>());
            roundtrip(fixint, (0..n as u64).map(|i| i * 0x0101_0101).collect::<Vec<u64>>());
            roundtrip(fixint, (0..n as i32).map(|i| -i).collect::<Vec<i32>>());
        }
        roundtrip(plain, vec![f64::NAN, f64::INFINITY, -0.0, f64::MIN_POSITIVE]);
    }

    #[test]
    fn only_flat_vectors_of_bincode_apply() {
        let plain = BincodeBackend::new();
        assert!(bincode_for::<Vec<f64>, _>(&plain).is_some());
        assert!(
            bincode_for::<Vec<u64>, _>(&plain).is_none(),
            "varint integers are not flat"
        );
        assert!(bincode_for::<Vec<(f64, f64)>, _>(&plain).is_none());
        assert!(bincode_for::<[f64; 4], _>(&plain).is_none());
        assert!(bincode_for::<Vec<f64>, _>(&"not a backend").is_none());
    }

    #[test]
    fn a_length_that_does_not_match_the_payload_is_an_error() {
        let backend = BincodeBackend::new();
        let mut bytes = Vec::new();
        backend.encode(&vec![1.5f64; 1000], &mut bytes).expect("encodes");
        // Declared longer than the payload, then shorter (trailing bytes), then an empty payload.
        for (cut, extra) in [(8usize, 0usize), (0, 8), (bytes.len(), 0)] {
            let mut b = bytes[..bytes.len() - cut].to_vec();
            b.extend(std::iter::repeat_n(0u8, extra));
            let mut src = HashingReader::new(&b[..], crate::entry::FLAG_XXH3);
            let r = decode::<Vec<f64>, _>(&backend, &mut src, b.len() as u64).expect("reads");
            assert!(r.is_err(), "cut {cut}, extra {extra}");
        }
        // A declared length far beyond the payload allocates nothing and fails.
        let mut b = Vec::new();
        backend.encode(&u64::MAX, &mut b).expect("encodes");
        let mut src = HashingReader::new(&b[..], crate::entry::FLAG_XXH3);
        let r = decode::<Vec<f64>, _>(&backend, &mut src, b.len() as u64).expect("reads");
        assert!(r.is_err());
    }
}
