//! Parts of one attribute call beyond hashing, looking up and storing: what it observes ([`observe`]).

pub(crate) mod observe;
