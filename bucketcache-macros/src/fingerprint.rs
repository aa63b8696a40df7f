//! Code fingerprints of items and the `deps(...)` that name them.
//!
//! ```text
//! #[bucketcache::fingerprint]                        on a fn, an impl block, a struct, an enum, a const, a static
//! #[bucketcache::fingerprint(deps(helper, file = "data/table.csv"))]
//! #[bucket_cache(deps(helper, crate::model::Config, other::cached_fn, file = "data/table.csv"))]
//! ```
//!
//! Input: `pub fn helper(x: u32) -> u32 { x + 1 }` with `#[bucketcache::fingerprint(deps(leaf))]`.
//! Output: the item unchanged, then a hidden function beside it (a `fn` is an item in a module and in an `impl`
//! alike, so the same expansion serves free functions and methods):
//!
//! ```text
//! #[doc(hidden)] pub fn __add_bucketcache_fingerprint_to_helper(walk: &mut __private::FpWalk) {
//!     static NODE: __private::FpNode = FpNode { name: "helper", own: "<blake3 of the item's tokens>", files: &[..] };
//!     if walk.enter(&NODE) { __add_bucketcache_fingerprint_to_leaf(walk); }
//! }
//! ```
//!
//! `deps(a::b::helper)` calls `a::b::__add_bucketcache_fingerprint_to_helper` (the last segment rewritten, with
//! the user's span): an item without the attribute is rustc's "cannot find function
//! `__add_bucketcache_fingerprint_to_helper`", on that path, and the name says what to do. The runtime
//! (`bucketcache/src/fingerprint.rs`) walks the graph once per call site (a visited set, so cycles end) and hashes
//! the nodes it reached, in a canonical order, into the code version.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::parse::{Parse, ParseStream};
use syn::{Ident, LitStr, Path, Token};

use crate::args::push;
use crate::tokens;

/// The prefix of the hidden fingerprint function of an item: it reads as the fix when rustc cannot find it.
pub const PREFIX: &str = "__add_bucketcache_fingerprint_to_";

/// A `deps(file = "...")` entry: the path as written and the absolute path it resolved to at compile time.
pub struct DepFile {
    pub declared: LitStr,
    pub absolute: String,
}

/// The parsed `deps(...)`: named items and files.
#[derive(Default)]
pub struct Deps {
    pub items: Vec<Path>,
    pub files: Vec<DepFile>,
}

impl Deps {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.files.is_empty()
    }
}

/// Parses the parenthesized list after `deps`. Problems with single entries (a malformed path, a file that does
/// not exist) go to `errors`, each on its token; a list that cannot be read at all is returned as the error.
pub fn parse_deps(input: ParseStream, key: &Ident, errors: &mut Option<syn::Error>) -> syn::Result<Deps> {
    if !input.peek(syn::token::Paren) {
        return Err(syn::Error::new(
            key.span(),
            "`deps` takes a list: write `deps(helper, crate::model::Config, file = \"data/table.csv\")`",
        ));
    }
    let content;
    syn::parenthesized!(content in input);
    let mut deps = Deps::default();
    while !content.is_empty() {
        if content.peek(Ident) && content.peek2(Token![=]) {
            let name: Ident = content.parse()?;
            content.parse::<Token![=]>()?;
            if name != "file" {
                return Err(syn::Error::new(
                    name.span(),
                    format!("unknown `deps` entry `{name} = ...`: a data file is `file = \"data/table.csv\"`"),
                ));
            }
            if !content.peek(LitStr) {
                return Err(syn::Error::new(
                    content.span(),
                    "`file` takes a string, a path relative to the crate's directory: write `file = \"data/table.csv\"`",
                ));
            }
            let lit: LitStr = content.parse()?;
            match resolve_file(&lit) {
                Ok(absolute) => deps.files.push(DepFile {
                    declared: lit,
                    absolute,
                }),
                Err(e) => push(errors, e),
            }
        } else if content.peek(Ident) && content.peek2(syn::token::Paren) {
            let name: Ident = content.parse()?;
            return Err(syn::Error::new(
                name.span(),
                format!("`deps` names items by path (`deps(helper)`), or files as `file = \"...\"`, not `{name}(...)`"),
            ));
        } else {
            let path: Path = content.parse().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "`deps` takes item paths and files: write `deps(helper, crate::model::Config, file = \"data/table.csv\")`",
                )
            })?;
            match check_path(&path) {
                Ok(()) => deps.items.push(path),
                Err(e) => push(errors, e),
            }
        }
        if content.is_empty() {
            break;
        }
        content.parse::<Token![,]>()?;
    }
    if deps.is_empty() && errors.is_none() {
        push(
            errors,
            syn::Error::new(
                key.span(),
                "`deps()` names nothing: write `deps(helper, ...)` or remove it",
            ),
        );
    }
    Ok(deps)
}

/// A named dependency is an item path without type arguments on its last segment.
fn check_path(path: &Path) -> syn::Result<()> {
    match path.segments.last() {
        Some(last) if last.arguments.is_empty() => Ok(()),
        Some(last) => Err(syn::Error::new_spanned(
            &last.arguments,
            "name the item without type arguments: a fingerprint covers every instance",
        )),
        None => Err(syn::Error::new_spanned(path, "name an item: `deps(helper)`")),
    }
}

/// The absolute path of a `file = "..."` entry (relative to the crate's `CARGO_MANIFEST_DIR`); it must exist when
/// the crate is compiled (a typo is caught here; a file removed later is a logged error at run time).
fn resolve_file(lit: &LitStr) -> syn::Result<String> {
    let declared = lit.value();
    if declared.is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            "`file` is empty: give a path relative to the crate's directory, such as `file = \"data/table.csv\"`",
        ));
    }
    if std::path::Path::new(&declared).is_absolute() {
        return Err(syn::Error::new(
            lit.span(),
            "`file` must be relative to the crate's directory (CARGO_MANIFEST_DIR), so the key holds no \
             machine-specific path: write it as seen from `Cargo.toml`'s directory, e.g. `file = \"data/table.csv\"`",
        ));
    }
    let Ok(root) = std::env::var("CARGO_MANIFEST_DIR") else {
        return Err(syn::Error::new(
            lit.span(),
            "`deps(file = ...)` resolves paths against CARGO_MANIFEST_DIR, which is not set: build with cargo",
        ));
    };
    let absolute = std::path::Path::new(&root).join(&declared);
    if !absolute.is_file() {
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "`deps(file = \"{declared}\")`: no such file relative to the crate's directory \
                 (CARGO_MANIFEST_DIR); the path is read from the directory holding `Cargo.toml`"
            ),
        ));
    }
    Ok(absolute.to_string_lossy().into_owned())
}

/// `path` with its last segment rewritten to the hidden fingerprint function's name, keeping the user's span.
fn fingerprint_path(path: &Path) -> Path {
    let mut path = path.clone();
    if let Some(last) = path.segments.last_mut() {
        last.ident = fingerprint_ident(&last.ident);
    }
    path
}

/// The hidden fingerprint function's name for an item named `ident`, with `ident`'s span.
pub fn fingerprint_ident(ident: &Ident) -> Ident {
    let name = ident.to_string();
    let name = name.strip_prefix("r#").unwrap_or(&name);
    Ident::new(&format!("{PREFIX}{name}"), ident.span())
}

/// The calls visiting each named dependency's fingerprint, with `walk` the visitor and `parent` the `static` node
/// of the item naming them (each call preceded by the edge: the path as written).
fn visit_deps(deps: &Deps, walk: &Ident, parent: &Ident) -> TokenStream {
    let calls = deps.items.iter().map(|path| {
        let callee = fingerprint_path(path);
        let span = path.segments.last().map_or_else(Span::call_site, |s| s.ident.span());
        let written = tokens::canonical(path.to_token_stream());
        quote_spanned!(span=> #walk.via(&#parent, #written); #callee(#walk);)
    });
    quote!(#(#calls)*)
}

/// The `FpNode` literal of a fingerprinted item.
fn node(name: &str, own: &str, deps: &Deps) -> TokenStream {
    let p = quote!(::bucketcache::__private);
    let files = deps.files.iter().map(|f| {
        let declared = f.declared.value();
        let absolute = &f.absolute;
        quote!(#p::DepFile { declared: #declared, path: #absolute })
    });
    quote!(#p::FpNode { name: #name, own: #own, files: &[#(#files),*] })
}

/// The hidden fingerprint function of an item named `name` (`vis` as the item's), whose own tokens hash to `own`.
/// The item's `#[cfg]`s are repeated on it.
pub fn fingerprint_fn(
    attrs: &[syn::Attribute],
    vis: &TokenStream,
    name: &Ident,
    own: &str,
    deps: &Deps,
) -> TokenStream {
    let cfgs = attrs.iter().filter(|a| a.path().is_ident("cfg"));
    let p = quote!(::bucketcache::__private);
    let fn_name = Ident::new(
        &fingerprint_ident(name).to_string(),
        Span::call_site().located_at(name.span()),
    );
    let walk = format_ident!("__bucketcache_walk");
    let label = name.to_string();
    let node = node(label.strip_prefix("r#").unwrap_or(&label), own, deps);
    let visits = visit_deps(deps, &walk, &format_ident!("__BUCKETCACHE_NODE"));
    quote! {
        #(#cfgs)*
        #[doc(hidden)]
        #[allow(non_snake_case, dead_code, clippy::all)]
        #vis fn #fn_name(#walk: &mut #p::FpWalk) {
            static __BUCKETCACHE_NODE: #p::FpNode = #node;
            if #walk.enter(&__BUCKETCACHE_NODE) {
                #visits
            }
        }
    }
}

/// The code version expression of a `#[bucket_cache]` function with `deps`: computed once per process (a
/// `static` per site), `Option<&'static str>`: `None` when a data file cannot be read (the call then runs
/// uncached). Uses `__bucketcache_function`.
pub fn code_expr(function_name: &Ident, base: &str, deps: &Deps) -> TokenStream {
    let p = quote!(::bucketcache::__private);
    let walk = format_ident!("__bucketcache_walk");
    let label = function_name.to_string();
    let root = node(label.strip_prefix("r#").unwrap_or(&label), "", deps);
    let visits = visit_deps(deps, &walk, &format_ident!("__BUCKETCACHE_ROOT"));
    // The walk is a closure, not a nested `fn`: `deps(Self::helper)` in a method must see the method's `Self`.
    quote! {
        {
            static __BUCKETCACHE_ROOT: #p::FpNode = #root;
            static __BUCKETCACHE_CODE: #p::DepsCode = #p::DepsCode::new();
            __BUCKETCACHE_CODE.get(__bucketcache_function, #base, |#walk: &mut #p::FpWalk| {
                if #walk.enter(&__BUCKETCACHE_ROOT) {
                    #visits
                }
            })
        }
    }
}

/// For a `#[bucket_cache]` function whose code version without dependencies is `base`: the code version
/// expression (a `&'static str`), the statements after the bucket is chosen (a data file that cannot be read
/// leaves the call without a bucket: it runs uncached), and the function's own fingerprint function.
///
/// Without `deps`, the code version is `base` as a literal, the same string as before `deps` existed (so
/// upgrading invalidates nothing). The fingerprint function is emitted for functions that cannot be in a trait
/// impl (no receiver, no `Self` in the signature): an extra item in a trait impl would not compile. A function
/// that is in a trait impl all the same says `fingerprint = false`.
pub fn code_of(m: &crate::model::Model<'_>, base: &str) -> (TokenStream, TokenStream, TokenStream) {
    let empty = Deps::default();
    let deps = m.args.deps.as_ref().map_or(&empty, |d| &d.value);
    let sig = &m.item.sig;
    let switched_off = matches!(
        m.args.fingerprint.as_ref().map(|s| &s.value),
        Some(syn::Lit::Bool(b)) if !b.value
    );
    let fingerprint_fn = if m.names_self_type() || switched_off {
        TokenStream::new()
    } else {
        fingerprint_fn(&m.item.attrs, &m.item.vis.to_token_stream(), &sig.ident, base, deps)
    };
    if deps.is_empty() {
        return (quote!(#base), TokenStream::new(), fingerprint_fn);
    }
    let expr = code_expr(&sig.ident, base, deps);
    let setup = quote! {
        let (__bucketcache_bucket, __bucketcache_code): (_, &'static str) = match #expr {
            ::core::option::Option::Some(__bucketcache_code) => (__bucketcache_bucket, __bucketcache_code),
            ::core::option::Option::None => (::core::option::Option::None, #base),
        };
    };
    (quote!(__bucketcache_code), setup, fingerprint_fn)
}

/// The own fingerprint of an item: 128 bits of the blake3 hash of its canonical tokens, doc comments left out.
fn own_of(item: &syn::Item) -> String {
    let mut item = item.clone();
    strip_docs(&mut item);
    tokens::digest(item.into_token_stream(), 16)
}

fn strip_docs(item: &mut syn::Item) {
    fn keep(attrs: &mut Vec<syn::Attribute>) {
        attrs.retain(|a| !a.path().is_ident("doc"));
    }
    match item {
        syn::Item::Fn(f) => keep(&mut f.attrs),
        syn::Item::Struct(s) => {
            keep(&mut s.attrs);
            for f in s.fields.iter_mut() {
                keep(&mut f.attrs);
            }
        }
        syn::Item::Enum(e) => {
            keep(&mut e.attrs);
            for v in &mut e.variants {
                keep(&mut v.attrs);
                for f in v.fields.iter_mut() {
                    keep(&mut f.attrs);
                }
            }
        }
        syn::Item::Impl(i) => {
            keep(&mut i.attrs);
            for it in &mut i.items {
                match it {
                    syn::ImplItem::Fn(f) => keep(&mut f.attrs),
                    syn::ImplItem::Const(c) => keep(&mut c.attrs),
                    syn::ImplItem::Type(t) => keep(&mut t.attrs),
                    _ => {}
                }
            }
        }
        syn::Item::Const(c) => keep(&mut c.attrs),
        syn::Item::Static(s) => keep(&mut s.attrs),
        _ => {}
    }
}

/// The arguments of `#[bucketcache::fingerprint(...)]`: nothing, or `deps(...)`.
#[derive(Default)]
pub struct FpArgs {
    pub deps: Deps,
}

impl Parse for FpArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = FpArgs::default();
        let mut errors = None;
        let mut seen = false;
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            if key != "deps" {
                return Err(syn::Error::new(
                    key.span(),
                    format!("unknown argument `{key}`: `#[bucketcache::fingerprint]` takes only `deps(...)`"),
                ));
            }
            let deps = parse_deps(input, &key, &mut errors)?;
            if seen {
                push(
                    &mut errors,
                    syn::Error::new(key.span(), "duplicate `deps` argument: give it once"),
                );
            }
            seen = true;
            args.deps = deps;
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        match errors {
            Some(e) => Err(e),
            None => Ok(args),
        }
    }
}

/// The name of an impl block's fingerprint: `impl_<Type>`, or `impl_<Trait>_for_<Type>` (last path segments).
fn impl_name(item: &syn::ItemImpl) -> syn::Result<Ident> {
    let ty = type_ident(&item.self_ty).ok_or_else(|| {
        syn::Error::new_spanned(
            &item.self_ty,
            "#[bucketcache::fingerprint] on an impl block needs a named self type (a path such as `Config`)",
        )
    })?;
    let span = item.impl_token.span;
    Ok(match &item.trait_ {
        None => Ident::new(&format!("impl_{ty}"), span),
        Some((_, path, _)) => {
            let tr = path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
            Ident::new(&format!("impl_{tr}_for_{ty}"), span)
        }
    })
}

fn type_ident(ty: &syn::Type) -> Option<String> {
    match ty {
        syn::Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| {
            let s = s.ident.to_string();
            s.strip_prefix("r#").map(str::to_owned).unwrap_or(s)
        }),
        syn::Type::Paren(p) => type_ident(&p.elem),
        syn::Type::Group(g) => type_ident(&g.elem),
        _ => None,
    }
}

/// `#[bucketcache::fingerprint(...)]`: the item unchanged, and its hidden fingerprint function.
pub fn attribute(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args: FpArgs = syn::parse2(args)?;
    let parsed: syn::Item = syn::parse2(item.clone())?;
    let own = own_of(&parsed);
    let (attrs, vis, name) = match &parsed {
        syn::Item::Fn(f) => (&f.attrs, f.vis.to_token_stream(), f.sig.ident.clone()),
        syn::Item::Struct(s) => (&s.attrs, s.vis.to_token_stream(), s.ident.clone()),
        syn::Item::Enum(e) => (&e.attrs, e.vis.to_token_stream(), e.ident.clone()),
        syn::Item::Const(c) => (&c.attrs, c.vis.to_token_stream(), c.ident.clone()),
        syn::Item::Static(s) => (&s.attrs, s.vis.to_token_stream(), s.ident.clone()),
        // An impl block has no visibility; its fingerprint is visible in the crate.
        syn::Item::Impl(i) => (&i.attrs, quote!(pub(crate)), impl_name(i)?),
        other => return Err(syn::Error::new_spanned(
            first_tokens(other.to_token_stream()),
            "#[bucketcache::fingerprint] applies to a function, an `impl` block, a struct, an enum, a `const` or a \
                 `static`; put it on the items this one is made of and name them in `deps(...)`",
        )),
    };
    if let syn::Item::Fn(f) = &parsed {
        if let Some(cached) = emits_its_own(f) {
            return Err(syn::Error::new_spanned(cached, CACHED_HAS_ONE));
        }
    }
    let fp = fingerprint_fn(attrs, &vis, &name, &own, &args.deps);
    Ok(quote!(#item #fp))
}

/// The error for `#[bucketcache::fingerprint]` on a `#[bucket_cache]` function that has a fingerprint item.
pub const CACHED_HAS_ONE: &str = "a #[bucket_cache] function has a fingerprint of its own (other items can name it in \
     `deps`): remove #[bucketcache::fingerprint], and put its `deps(...)` in #[bucket_cache(...)]";

/// The `#[bucket_cache]` attribute of `f` when that attribute emits a fingerprint item beside `f` (no receiver,
/// no `Self` in the signature, no `fingerprint = false`): a second one from `#[bucketcache::fingerprint]` would
/// not compile.
fn emits_its_own(f: &syn::ItemFn) -> Option<&syn::Attribute> {
    fn names_self(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|t| match t {
            proc_macro2::TokenTree::Ident(i) => i == "Self",
            proc_macro2::TokenTree::Group(g) => names_self(g.stream()),
            _ => false,
        })
    }
    if f.sig.receiver().is_some() || names_self(f.sig.to_token_stream()) {
        return None;
    }
    let cached = f
        .attrs
        .iter()
        .find(|a| a.path().segments.last().is_some_and(|s| s.ident == "bucket_cache"))?;
    let args: String = cached
        .meta
        .to_token_stream()
        .to_string()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    (!args.contains("fingerprint=false")).then_some(cached)
}

/// An item's header (its tokens before the first `{...}`, at most six), to point an error at it.
pub fn first_tokens(item: TokenStream) -> TokenStream {
    item.into_iter()
        .take_while(
            |t| !matches!(t, proc_macro2::TokenTree::Group(g) if g.delimiter() == proc_macro2::Delimiter::Brace),
        )
        .take(6)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn own(item: syn::Item) -> String {
        own_of(&item)
    }

    #[test]
    fn own_fingerprints_follow_tokens_not_docs() {
        let a = own(parse_quote!(
            /// one
            fn helper(x: u32) -> u32 {
                x + 1
            }
        ));
        let b = own(parse_quote!(
            /// two, reworded
            fn helper(x: u32) -> u32 {
                x + 1
            }
        ));
        let c = own(parse_quote!(
            fn helper(x: u32) -> u32 {
                x + 2
            }
        ));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 32);
        let s1 = own(parse_quote!(
            struct Config {
                #[serde(rename = "a")]
                a: u32,
            }
        ));
        let s2 = own(parse_quote!(
            struct Config {
                a: u32,
            }
        ));
        assert_ne!(s1, s2, "other attributes count");
    }

    #[test]
    fn a_cached_function_is_not_fingerprinted_twice() {
        let e = attribute(
            TokenStream::new(),
            quote!(
                #[bucket_cache(bucket = B)]
                fn f(x: u32) -> u32 {
                    x
                }
            ),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("has a fingerprint of its own"), "{e}");
        // A method, or `fingerprint = false`: no item of its own, so the attribute gives it one.
        for item in [
            quote!(
                #[bucket_cache(bucket = B)]
                fn f(&self, x: u32) -> u32 {
                    x
                }
            ),
            quote!(
                #[bucket_cache(bucket = B)]
                fn f(x: u32) -> Self {
                    x
                }
            ),
            quote!(
                #[bucket_cache(bucket = B, fingerprint = false)]
                fn f(x: u32) -> u32 {
                    x
                }
            ),
        ] {
            assert!(attribute(TokenStream::new(), item).is_ok());
        }
    }

    #[test]
    fn deps_paths_are_rewritten_on_their_last_segment() {
        let p: Path = parse_quote!(crate::model::Config);
        let r = fingerprint_path(&p);
        assert_eq!(
            r.to_token_stream().to_string(),
            "crate :: model :: __add_bucketcache_fingerprint_to_Config"
        );
        let p: Path = parse_quote!(Self::r#type);
        assert_eq!(
            fingerprint_path(&p).to_token_stream().to_string(),
            "Self :: __add_bucketcache_fingerprint_to_type"
        );
    }

    #[test]
    fn impl_blocks_are_named_after_their_types() {
        let i: syn::ItemImpl = parse_quote!(
            impl<T> model::Wrapper<T> {
                fn f() {}
            }
        );
        assert_eq!(
            impl_name(&i).map(|n| n.to_string()).ok().as_deref(),
            Some("impl_Wrapper")
        );
        let i: syn::ItemImpl = parse_quote!(impl std::fmt::Display for Config { });
        assert_eq!(
            impl_name(&i).map(|n| n.to_string()).ok().as_deref(),
            Some("impl_Display_for_Config")
        );
    }

    fn deps_error(tokens: TokenStream) -> String {
        struct D;
        impl Parse for D {
            fn parse(input: ParseStream) -> syn::Result<Self> {
                let key: Ident = input.parse()?;
                let mut errors = None;
                parse_deps(input, &key, &mut errors)?;
                match errors {
                    Some(e) => Err(e),
                    None => Ok(D),
                }
            }
        }
        syn::parse2::<D>(tokens)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn malformed_deps_say_what_they_look_like() {
        assert!(deps_error(quote!(deps)).contains("takes a list"));
        assert!(deps_error(quote!(deps())).contains("names nothing"));
        assert!(deps_error(quote!(deps(file = 3))).contains("takes a string"));
        assert!(deps_error(quote!(deps(path = "x"))).contains("unknown `deps` entry"));
        assert!(deps_error(quote!(deps(file = ""))).contains("is empty"));
        assert!(deps_error(quote!(deps(file = "/etc/passwd"))).contains("must be relative"));
        assert!(deps_error(quote!(deps(file = "no/such/file.csv"))).contains("no such file"));
        assert!(deps_error(quote!(deps(f::<u8>))).contains("without type arguments"));
        assert!(deps_error(quote!(deps(3))).contains("takes item paths and files"));
        assert_eq!(deps_error(quote!(deps(a, b::c, file = "Cargo.toml"))), "");
    }
}
