//! The constant part of an attribute key, reduced to one digest per call site.
//!
//! An attribute key names the function (its path), its code version, its return shape, the serde shape of the stored
//! type (`key/shape.rs`, traced once per type per process) and its type arguments:
//! about a hundred bytes that are the same on every call from one site. Encoding them on every call cost more than
//! the rest of a memory-tier hit, so they are hashed once into a 32-byte site digest, and the key holds the digest.
//! The digest is a pure function of the strings' contents (blake3), so keys are the same in every process; the
//! per-thread cache in front of it is keyed by the strings' addresses, which is sound because every part is a
//! `&'static str`: a given address always holds the same bytes for the life of the process. (Unloading a dynamic
//! library that holds cached functions, then loading another at the same address, would break that assumption;
//! Rust statics do not support unloading in general.)

use std::cell::RefCell;

use tracing::debug;

/// Sites whose type list is longer than this are digested on every call (no cache slot holds them).
const MAX_CACHED_TYPES: usize = 5;
const SLOTS: usize = 64;

/// Addresses and lengths of a site's strings: function, code, mode, then the address of the stored type's shape
/// function, then up to `MAX_CACHED_TYPES` type names.
type SiteId = [(usize, usize); 4 + MAX_CACHED_TYPES];

/// The stored type's shape digest (`key::shape::shape_digest::<Stored>`), called only when a site's digest is
/// computed. Its address tells the instances of a generic site apart even when their type names do not.
pub type ShapeFn = fn() -> Option<[u8; 32]>;

/// A cached site: its id and its digest.
type SiteSlot = Option<(SiteId, [u8; 32])>;

thread_local! {
    static SITES: RefCell<Vec<SiteSlot>> = const { RefCell::new(Vec::new()) };
}

fn id_of(s: &'static str) -> (usize, usize) {
    (s.as_ptr() as usize, s.len())
}

/// The digest of a call site's constant key parts.
pub fn site_digest(
    function: &'static str,
    code: &'static str,
    mode: &'static str,
    shape: ShapeFn,
    types: &[&'static str],
) -> [u8; 32] {
    if types.len() > MAX_CACHED_TYPES {
        return compute(function, code, mode, shape, types);
    }
    let mut id: SiteId = [(0, 0); 4 + MAX_CACHED_TYPES];
    id[0] = id_of(function);
    id[1] = id_of(code);
    id[2] = id_of(mode);
    id[3] = (shape as usize, 0);
    for (slot, t) in id[4..].iter_mut().zip(types) {
        *slot = id_of(t);
    }
    // The function path's address picks the slot (the instances of a generic function share a path, and so a
    // slot, telling each other apart by their type names: a matter of speed, not of correctness).
    let slot = (function.as_ptr() as usize >> 3).wrapping_add(types.len()) % SLOTS;
    let cached = SITES
        .try_with(|s| match s.try_borrow().ok()?.get(slot) {
            Some(Some((sid, digest))) if *sid == id => Some(*digest),
            _ => None,
        })
        .ok()
        .flatten();
    if let Some(d) = cached {
        return d;
    }
    let digest = compute(function, code, mode, shape, types);
    let _ = SITES.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            if s.is_empty() {
                s.resize(SLOTS, None);
            }
            s[slot] = Some((id, digest));
        }
    });
    digest
}

/// The site digest of a site whose code version is `code` (not cached): for the keys a call would have had under
/// another code version (miss reasons, `call/observe.rs`).
pub(crate) fn digest_of(function: &str, code: &str, mode: &str, shape: ShapeFn, types: &[&str]) -> [u8; 32] {
    compute(function, code, mode, shape, types)
}

fn compute(function: &str, code: &str, mode: &str, shape: ShapeFn, types: &[&str]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("bucketcache 2026-11 call site v2");
    // Length-prefixed parts, so no two sites' parts run together into the same bytes.
    for part in [function, code, mode].into_iter().chain(types.iter().copied()) {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.update(&(types.len() as u64).to_le_bytes());
    // The stored type's shape; an untraceable one (see `key/shape.rs`) leaves the key as it was before shapes.
    let shape = shape();
    match &shape {
        Some(d) => {
            h.update(&[1]);
            h.update(d);
        }
        None => {
            h.update(&[0]);
        }
    }
    let digest = *h.finalize().as_bytes();
    debug!(
        target: "bucketcache",
        function,
        code,
        mode,
        ?types,
        shape = %shape.map_or_else(|| "untraced".to_owned(), |d| crate::KeyHash(d).to_string()),
        site = %crate::KeyHash(digest),
        "call site"
    );
    digest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u8_shape() -> Option<[u8; 32]> {
        crate::key::shape::shape_digest::<u8>()
    }

    fn u16_shape() -> Option<[u8; 32]> {
        crate::key::shape::shape_digest::<u16>()
    }

    fn untraced() -> Option<[u8; 32]> {
        None
    }

    #[test]
    fn digests_follow_contents_and_every_part_counts() {
        let s: ShapeFn = u8_shape;
        let a = site_digest("m::f", "sig:body:1", "whole", s, &[]);
        assert_eq!(a, site_digest("m::f", "sig:body:1", "whole", s, &[]));
        assert_eq!(a, compute("m::f", "sig:body:1", "whole", s, &[]));
        assert_ne!(a, site_digest("m::g", "sig:body:1", "whole", s, &[]));
        assert_ne!(a, site_digest("m::f", "sig:body:2", "whole", s, &[]));
        assert_ne!(a, site_digest("m::f", "sig:body:1", "ok", s, &[]));
        assert_ne!(a, site_digest("m::f", "sig:body:1", "whole", s, &["u8"]));
        assert_ne!(a, site_digest("m::f", "sig:body:1", "whole", u16_shape, &[]));
        assert_ne!(a, site_digest("m::f", "sig:body:1", "whole", untraced, &[]));
        assert_ne!(
            site_digest("m::f", "sig:body:1", "whole", s, &["u8", "u16"]),
            site_digest("m::f", "sig:body:1", "whole", s, &["u8u16"])
        );
        let many = ["a", "b", "c", "d", "e", "f", "g"];
        assert_eq!(
            site_digest("m::f", "c", "whole", s, &many),
            compute("m::f", "c", "whole", s, &many)
        );
    }
}
