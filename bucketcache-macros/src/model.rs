//! Model: the function classified for caching. Every piece keeps its syn node, so `valid.rs` can point at it.
//!
//! - each typed parameter is a key argument, an ignored one, or the `nocache` flag ([`Role`]);
//! - the receiver (if any): how to borrow it, whether it is hashed;
//! - asyncness, the return type, the generic parameters whose names go into the key.

use proc_macro2::Ident;
use syn::visit::Visit;
use syn::{FnArg, GenericParam, ItemFn, Pat, PatType, Receiver, ReturnType, Type};

use crate::args::Args;

/// What a parameter is to the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Hashed into the key.
    Key,
    /// Named in `ignore(...)`.
    Ignored,
    /// The `nocache` flag.
    NoCache,
    /// The `max_age` parameter (never part of the key).
    MaxAge,
}

/// A typed parameter.
pub struct Param<'a> {
    pub node: &'a PatType,
    /// Its name; `None` for a pattern that binds no single name (`(a, b): (u8, u8)`, `_`).
    pub name: Option<&'a Ident>,
    pub role: Role,
}

/// The receiver.
pub struct Recv<'a> {
    pub node: &'a Receiver,
    /// `ignore(self)`.
    pub ignored: bool,
    /// `&self`, `&mut self`, or a typed receiver (`self: Box<Self>`): borrowed as `&*self`; otherwise `&self`.
    pub deref: bool,
    /// `&mut self` (or `self: &mut Self`).
    pub mutable: bool,
}

pub struct Model<'a> {
    pub args: &'a Args,
    pub item: &'a ItemFn,
    pub receiver: Option<Recv<'a>>,
    pub params: Vec<Param<'a>>,
    /// The return type, `None` for `()`.
    pub ret: Option<&'a Type>,
    pub type_params: Vec<&'a Ident>,
    pub const_params: Vec<&'a Ident>,
    /// `Self` appears in the signature: the function is in an `impl`, and `Self`'s name joins the key.
    pub mentions_self: bool,
}

/// Whether a type holds a `&mut` anywhere (`&mut T`, `Pin<&mut Self>`, `(&mut A, B)`, `Vec<&mut T>`).
pub fn has_mut_ref(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_type_reference(&mut self, r: &'ast syn::TypeReference) {
            self.0 |= r.mutability.is_some();
            syn::visit::visit_type_reference(self, r);
        }
    }
    let mut f = Finder(false);
    syn::visit::Visit::visit_type(&mut f, ty);
    f.0
}

impl<'a> Model<'a> {
    pub fn new(args: &'a Args, item: &'a ItemFn) -> Self {
        let ignored = |name: &str| args.ignore.as_ref().is_some_and(|i| i.value.iter().any(|n| n == name));
        let nocache = args.nocache.as_ref().map(|n| n.value.value());
        let max_age = args.max_age.as_ref().map(|n| n.value.value());
        let mut receiver = None;
        let mut params = Vec::new();
        for input in &item.sig.inputs {
            match input {
                FnArg::Receiver(r) => {
                    // `&mut self`, and typed receivers holding a `&mut` (`self: Pin<&mut Self>`).
                    let mutable = has_mut_ref(&r.ty);
                    receiver = Some(Recv {
                        node: r,
                        ignored: ignored("self"),
                        deref: r.reference.is_some() || r.colon_token.is_some(),
                        mutable,
                    });
                }
                FnArg::Typed(t) => {
                    let name = match &*t.pat {
                        Pat::Ident(p) if p.subpat.is_none() => Some(&p.ident),
                        _ => None,
                    };
                    let role = match name {
                        Some(n) if nocache.as_deref() == Some(&*n.to_string()) => Role::NoCache,
                        Some(n) if max_age.as_deref() == Some(&*n.to_string()) => Role::MaxAge,
                        Some(n) if ignored(&n.to_string()) => Role::Ignored,
                        _ => Role::Key,
                    };
                    params.push(Param { node: t, name, role });
                }
            }
        }
        let ret = match &item.sig.output {
            ReturnType::Default => None,
            ReturnType::Type(_, t) => Some(&**t),
        };
        let mut type_params = Vec::new();
        let mut const_params = Vec::new();
        for g in &item.sig.generics.params {
            match g {
                GenericParam::Type(t) => type_params.push(&t.ident),
                GenericParam::Const(c) => const_params.push(&c.ident),
                GenericParam::Lifetime(_) => {}
            }
        }
        let mut finder = SelfFinder(false);
        finder.visit_signature(&item.sig);
        Model {
            args,
            item,
            receiver,
            params,
            ret,
            type_params,
            const_params,
            mentions_self: finder.0,
        }
    }

    /// Whether `self` is part of the key.
    pub fn hashes_self(&self) -> bool {
        self.receiver.as_ref().is_some_and(|r| !r.ignored)
    }

    /// Whether `Self`'s type name joins the key (any receiver, or `Self` in the signature).
    pub fn names_self_type(&self) -> bool {
        self.receiver.is_some() || self.mentions_self
    }
}

/// Finds `Self` in a signature.
struct SelfFinder(bool);

impl<'ast> Visit<'ast> for SelfFinder {
    fn visit_ident(&mut self, i: &'ast Ident) {
        if i == "Self" {
            self.0 = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    #[test]
    fn classifies_parameters() {
        let args: Args = parse_quote!(ignore(c), nocache = "refresh");
        let item: ItemFn = parse_quote!(
            fn f(a: u32, b: String, c: Logger, refresh: bool, (x, y): (u8, u8)) -> Vec<u8> {
                todo!()
            }
        );
        let m = Model::new(&args, &item);
        let roles: Vec<Role> = m.params.iter().map(|p| p.role).collect();
        assert_eq!(roles, [Role::Key, Role::Key, Role::Ignored, Role::NoCache, Role::Key]);
        assert!(m.params[4].name.is_none());
        assert!(m.receiver.is_none() && !m.names_self_type());
    }

    #[test]
    fn receivers() {
        let args: Args = parse_quote!(ignore(self));
        let item: ItemFn = parse_quote!(
            fn f(&mut self) -> u8 {
                1
            }
        );
        let m = Model::new(&args, &item);
        let r = m.receiver.as_ref().expect("receiver");
        assert!(r.ignored && r.mutable && r.deref);
        assert!(!m.hashes_self() && m.names_self_type());

        let args = Args::default();
        let item: ItemFn = parse_quote!(
            fn f(self) -> u8 {
                1
            }
        );
        let m = Model::new(&args, &item);
        let r = m.receiver.as_ref().expect("receiver");
        assert!(!r.ignored && !r.mutable && !r.deref);
        assert!(m.hashes_self());
    }

    #[test]
    fn mutable_references_are_found_anywhere_in_a_type() {
        let t: Type = parse_quote!(core::pin::Pin<&mut Self>);
        assert!(has_mut_ref(&t));
        let t: Type = parse_quote!((u8, Vec<&mut String>));
        assert!(has_mut_ref(&t));
        let t: Type = parse_quote!(&'a [&'b str]);
        assert!(!has_mut_ref(&t));
    }

    #[test]
    fn generics_and_self() {
        let args = Args::default();
        let item: ItemFn = parse_quote!(
            fn f<'a, T: Clone, const N: usize>(x: &'a T) -> Option<Self> {
                None
            }
        );
        let m = Model::new(&args, &item);
        assert_eq!(m.type_params.len(), 1);
        assert_eq!(m.const_params.len(), 1);
        assert!(m.mentions_self && m.names_self_type());
    }
}
