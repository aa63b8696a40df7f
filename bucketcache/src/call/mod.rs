//! Parts of one attribute call beyond hashing, looking up and storing: what it observes ([`observe`]), and the key of a
//! repeated call found by its argument values ([`fast`]).

pub(crate) mod fast;
pub(crate) mod observe;
