//! Validate: everything the attribute and the function must agree on, each problem reported on its own token
//! with the fix, all of them at once.

use std::time::Duration;

use quote::ToTokens;
use syn::visit::Visit;
use syn::Type;

use crate::args::push;
use crate::model::{Model, Role};

/// What validation computed for expansion.
pub struct Checked {
    /// The parsed `lifetime`.
    pub lifetime: Option<Duration>,
    /// `cross_process`: `None` when not given (the runtime's default wait limit), `Some(None)` for `false`,
    /// `Some(Some(limit))` for a wait limit.
    pub cross_process: Option<Option<Duration>>,
    /// `shared = false`: the attribute's bucket for this function has no shared tier.
    pub local_only: bool,
    /// The freshness arguments, parsed.
    pub fresh: Fresh,
}

/// The freshness arguments (`stale`, `early_refresh`, `cache_err = "..."`, `cache_none = "..."`), parsed.
#[derive(Default)]
pub struct Fresh {
    pub stale: Option<Duration>,
    pub early_refresh: Option<f64>,
    /// The lifetime of a cached failure (`cache_err = "30s"` or `cache_none = "5m"`).
    pub failure_lifetime: Option<Duration>,
    /// `refresh = "background"`: stale entries are refreshed on a thread of their own.
    pub background: bool,
}

/// Parses a human duration (`"90s"`, `"1h 30m"`, `"2d"`), with the message `valid` reports on the literal.
pub fn parse_lifetime(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err(format!(
            "`lifetime = \"{text}\"` is zero: entries would expire as they are written; give a positive duration \
             or remove `lifetime`"
        )),
        Ok(d) => Ok(d),
        Err(e) => Err(format!(
            "invalid `lifetime = \"{text}\"`: {e}; write a duration such as \"90s\", \"1h 30m\" or \"2d\""
        )),
    }
}

/// Whether a type is spelled `bool` (or `&bool`, `core::primitive::bool`).
fn is_bool(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "bool"),
        Type::Reference(r) => r.mutability.is_none() && is_bool(&r.elem),
        Type::Paren(p) => is_bool(&p.elem),
        Type::Group(g) => is_bool(&g.elem),
        _ => false,
    }
}

/// Finds `impl Trait` anywhere in a type.
struct ImplTraitFinder(bool);

impl<'ast> Visit<'ast> for ImplTraitFinder {
    fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
        self.0 = true;
    }
}

/// The one error context of a check: every problem found, each on its token, reported together.
#[derive(Default)]
struct Ctxt {
    errors: Option<syn::Error>,
}

impl Ctxt {
    fn spanned(&mut self, tokens: impl ToTokens, msg: impl std::fmt::Display) {
        push(&mut self.errors, syn::Error::new_spanned(tokens, msg));
    }

    fn at(&mut self, span: proc_macro2::Span, msg: impl std::fmt::Display) {
        push(&mut self.errors, syn::Error::new(span, msg));
    }
}

/// The parameters' names, and how a message lists them.
fn param_names(m: &Model<'_>) -> (Vec<String>, String) {
    let names: Vec<String> = m.params.iter().filter_map(|p| p.name).map(|n| n.to_string()).collect();
    let list = if names.is_empty() {
        "it has none".to_string()
    } else {
        format!("its parameters are {}", names.join(", "))
    };
    (names, list)
}

/// Every check, each a named function reporting into one [`Ctxt`].
pub fn check(m: &Model<'_>) -> syn::Result<Checked> {
    let mut cx = Ctxt::default();
    check_bucket_choice(m, &mut cx);
    let lifetime = check_lifetime(m, &mut cx);
    check_version(m, &mut cx);
    check_not_const(m, &mut cx);
    check_ignore(m, &mut cx);
    check_nocache(m, &mut cx);
    check_receiver(m, &mut cx);
    check_params(m, &mut cx);
    check_return_type(m, &mut cx);
    check_unit_return(m, &mut cx);
    let cross_process = check_cross_process(m, &mut cx);
    let local_only = check_shared(m, &mut cx);
    check_fingerprint(m, &mut cx);
    let mut fresh = check_freshness(m, &mut cx);
    fresh.background = check_background(m, &mut cx);
    match cx.errors {
        Some(e) => Err(e),
        None => Ok(Checked {
            lifetime,
            cross_process,
            local_only,
            fresh,
        }),
    }
}

/// `bucket` excludes `path` and `backend`.
fn check_bucket_choice(m: &Model<'_>, cx: &mut Ctxt) {
    let a = m.args;
    if let (Some(_), Some(path)) = (&a.bucket, &a.path) {
        cx.at(
            path.key,
            "`bucket` and `path` both choose the bucket: keep one (`bucket = EXPR` uses your bucket, `path = \"dir\"` \
             opens one in that directory)",
        );
    }
    if let (Some(_), Some(backend)) = (&a.bucket, &a.backend) {
        cx.at(
            backend.key,
            "`backend` applies to a bucket the attribute opens (`path` or the default); with `bucket = EXPR`, set \
             the backend on your bucket's builder and remove `backend`",
        );
    }
}

/// `lifetime` parses as a positive duration.
fn check_lifetime(m: &Model<'_>, cx: &mut Ctxt) -> Option<Duration> {
    match &m.args.lifetime {
        Some(l) => match parse_lifetime(&l.value.value()) {
            Ok(d) => Some(d),
            Err(msg) => {
                cx.spanned(&l.value, msg);
                None
            }
        },
        None => None,
    }
}

/// `version` is not empty.
fn check_version(m: &Model<'_>, cx: &mut Ctxt) {
    if let Some(v) = &m.args.version {
        if v.value.value().is_empty() {
            cx.spanned(
                &v.value,
                "`version` is empty: give a non-empty version such as \"1\", or remove it to key on the body",
            );
        }
    }
}

/// A `const fn` cannot read files.
fn check_not_const(m: &Model<'_>, cx: &mut Ctxt) {
    if let Some(c) = &m.item.sig.constness {
        cx.spanned(
            c,
            "a `const fn` cannot be cached (a cache reads files at run time): remove `const`",
        );
    }
}

/// `ignore(...)` names each parameter (or `self`) once, and not the `nocache` flag.
fn check_ignore(m: &Model<'_>, cx: &mut Ctxt) {
    let (a, fn_name) = (m.args, &m.item.sig.ident);
    let (param_names, list) = param_names(m);
    // ignore(...)
    if let Some(ignore) = &a.ignore {
        let mut seen: Vec<String> = Vec::new();
        for name in &ignore.value {
            let s = name.to_string();
            if seen.contains(&s) {
                cx.spanned(name, format!("`{s}` is already in `ignore(...)`: name it once"));
                continue;
            }
            seen.push(s.clone());
            if s == "self" {
                if m.receiver.is_none() {
                    cx.spanned(
                        name,
                        format!("`ignore(self)`: `{fn_name}` has no `self` receiver; remove `self` from `ignore(...)`"),
                    );
                }
                continue;
            }
            if !param_names.contains(&s) {
                cx.spanned(
                    name,
                    format!(
                        "`ignore({s})`: `{fn_name}` has no parameter `{s}` ({list}); name a parameter or remove it"
                    ),
                );
            } else if a.nocache.as_ref().is_some_and(|n| n.value.value() == s) {
                cx.spanned(
                    name,
                    format!(
                        "`{s}` is the `nocache` flag, which is never part of the key: remove it from `ignore(...)`"
                    ),
                );
            }
        }
    }
}

/// The `nocache` flag names a `bool` parameter.
fn check_nocache(m: &Model<'_>, cx: &mut Ctxt) {
    let (a, fn_name) = (m.args, &m.item.sig.ident);
    let (_, list) = param_names(m);
    // nocache = "flag"
    if let Some(nocache) = &a.nocache {
        let flag = nocache.value.value();
        match m.params.iter().find(|p| p.name.is_some_and(|n| *n == flag)) {
            None => cx.spanned(
                &nocache.value,
                format!(
                    "`nocache = \"{flag}\"`: `{fn_name}` has no parameter `{flag}` ({list}); name a `bool` parameter"
                ),
            ),
            Some(p) if !is_bool(&p.node.ty) => cx.spanned(
                &p.node.ty,
                format!(
                    "the `nocache` flag `{flag}` must be a `bool` (true: skip the cache, run and overwrite), not `{}`",
                    p.node.ty.to_token_stream()
                ),
            ),
            Some(_) => {}
        }
    }
}

/// `method` needs a receiver that is hashed; `&mut self` must be ignored.
fn check_receiver(m: &Model<'_>, cx: &mut Ctxt) {
    let (a, fn_name) = (m.args, &m.item.sig.ident);
    // method / receiver
    if let Some(method) = a.method {
        match &m.receiver {
            None => cx.at(
                method,
                format!(
                    "`method` hashes `self`, but `{fn_name}` has no `self` receiver: remove `method` (an associated \
                     function is keyed by its arguments)"
                ),
            ),
            Some(r) if r.ignored => cx.at(
                method,
                "`method` hashes `self` and `ignore(self)` leaves it out: keep one",
            ),
            Some(_) => {}
        }
    }
    if let Some(r) = &m.receiver {
        if r.mutable && !r.ignored {
            cx.spanned(
                r.node,
                "`&mut self` cannot be part of the key: a cache hit skips the body and its changes to `self`; add \
                 `ignore(self)` if the result does not depend on `self`'s state, or take `&self`",
            );
        }
    }
}

/// Each parameter has a name; a key argument holds no `&mut`.
fn check_params(m: &Model<'_>, cx: &mut Ctxt) {
    // parameters
    for p in &m.params {
        match p.name {
            None => cx.spanned(
                &p.node.pat,
                "#[bucket_cache] keys arguments by name: bind this parameter to a name (`pair: (u8, u8)`) and \
                 destructure it in the body",
            ),
            // Anywhere in the type: `&mut T`, `(&mut A, B)`, `Vec<&mut T>`.
            Some(name) if p.role == Role::Key && crate::model::has_mut_ref(&p.node.ty) => cx.spanned(
                &p.node.ty,
                format!(
                    "`&mut` argument `{name}` cannot be part of the key: a cache hit skips the body and its changes \
                     to `{name}`; add `ignore({name})` if the result does not depend on it, or pass it by value or \
                     by `&`"
                ),
            ),
            Some(_) => {}
        }
    }
}

/// The return type is owned and nameable: no reference, no `impl Trait`.
fn check_return_type(m: &Model<'_>, cx: &mut Ctxt) {
    // return type
    if let Some(ret) = m.ret {
        if let Type::Reference(_) = ret {
            cx.spanned(
                ret,
                "a cached function cannot return a reference: a cache hit has nothing to borrow from; return an owned \
                 value (`String`, `Vec<T>`, `Arc<T>`)",
            );
        } else {
            let mut finder = ImplTraitFinder(false);
            finder.visit_type(ret);
            if finder.0 {
                cx.spanned(
                    ret,
                    "a cached function cannot return `impl Trait`: the stored value needs a type that can be named \
                     and deserialized; return a concrete type",
                );
            }
        }
    }
}

/// `shared` is `true` or `false`; `false` applies to the buckets the attribute opens (`path =`, the default).
fn check_shared(m: &Model<'_>, cx: &mut Ctxt) -> bool {
    let Some(s) = m.args.shared.as_ref() else {
        return false;
    };
    match &s.value {
        syn::Lit::Bool(b) if !b.value => {
            if m.args.bucket.is_some() {
                cx.spanned(
                    b,
                    "`shared = false` applies to the buckets the attribute opens (`path = ...` or the default); \
                     with `bucket = ...`, build that bucket without `.shared(..)` instead",
                );
            }
            true
        }
        syn::Lit::Bool(_) => false,
        other => {
            cx.spanned(
                other,
                "`shared` takes `false` (keep this function's entries off the shared tier) or `true` (the default)",
            );
            false
        }
    }
}

/// `fingerprint` is `false` (no fingerprint item: a function in a trait impl) or `true` (the default), and a
/// function whose signature names `Self` has none to switch on (it is fingerprinted through its `impl` block).
fn check_fingerprint(m: &Model<'_>, cx: &mut Ctxt) {
    // `#[bucketcache::fingerprint]` below `#[bucket_cache]` would emit a second hidden fingerprint item of the
    // same name beside a function that has one (rustc's "defined multiple times"); above it, `fingerprint.rs`
    // reports it. A method (no item of its own) or `fingerprint = false` keeps the combination.
    let switched_off = matches!(
        m.args.fingerprint.as_ref().map(|s| &s.value),
        Some(syn::Lit::Bool(b)) if !b.value
    );
    if !m.names_self_type() && !switched_off {
        for a in &m.item.attrs {
            let segs: Vec<String> = a.path().segments.iter().map(|s| s.ident.to_string()).collect();
            if segs == ["bucketcache", "fingerprint"] {
                cx.spanned(a, crate::fingerprint::CACHED_HAS_ONE);
            }
        }
    }
    let Some(s) = m.args.fingerprint.as_ref() else {
        return;
    };
    match &s.value {
        syn::Lit::Bool(b) if b.value && m.names_self_type() => cx.spanned(
            b,
            "a function with a receiver or `Self` in its signature has no fingerprint of its own (it may be in a \
             trait impl); put `#[bucketcache::fingerprint]` on its `impl` block and name that in `deps(...)`",
        ),
        syn::Lit::Bool(_) => {}
        other => cx.spanned(
            other,
            "`fingerprint` takes `false` (no fingerprint item beside this function: required for a function in a \
             trait impl) or `true` (the default)",
        ),
    }
}

/// `cross_process` is `false` or a wait limit.
fn check_cross_process(m: &Model<'_>, cx: &mut Ctxt) -> Option<Option<Duration>> {
    m.args.cross_process.as_ref().and_then(|c| match &c.value {
        syn::Lit::Bool(b) if !b.value => Some(None),
        syn::Lit::Bool(_) => None,
        syn::Lit::Str(s) => match humantime::parse_duration(&s.value()) {
            Ok(d) => Some(Some(d)),
            Err(e) => {
                cx.spanned(s,
                    format!(
                        "invalid `cross_process = \"{}\"`: {e}; write how long to wait for another process, such as \"30s\" or \"5m\"",
                        s.value()
                    ),
                );
                None
            }
        },
        other => {
            cx.spanned(other,
                "`cross_process` takes `false` (no coordination with other processes) or a wait limit such as \"30s\"",
            );
            None
        }
    })
}

/// Whether a function's return type is `()` (written or not).
pub fn returns_unit(m: &Model<'_>) -> bool {
    match m.ret {
        None => true,
        Some(Type::Tuple(t)) => t.elems.is_empty(),
        Some(Type::Paren(p)) => matches!(&*p.elem, Type::Tuple(t) if t.elems.is_empty()),
        _ => false,
    }
}

/// A function returning `()` has nothing to cache: only with `allow_unit`, and `allow_unit` only on one.
fn check_unit_return(m: &Model<'_>, cx: &mut Ctxt) {
    let fn_name = &m.item.sig.ident;
    match (returns_unit(m), m.args.allow_unit) {
        (true, None) => cx.spanned(
            fn_name,
            format!(
                "`{fn_name}` returns `()`: there is nothing to cache, and a hit would only skip the body's side \
                 effects; return the value to cache, or add `allow_unit` to run the body once per key (its side \
                 effects then happen once per key, across runs, until the entry expires)"
            ),
        ),
        (false, Some(span)) => cx.at(
            span,
            "`allow_unit` is for functions returning `()`: this one returns a value; remove `allow_unit`",
        ),
        _ => {}
    }
}

/// A positive duration for a freshness argument, or an error on its literal.
fn duration_arg(cx: &mut Ctxt, name: &str, lit: &syn::LitStr) -> Option<Duration> {
    match humantime::parse_duration(&lit.value()) {
        Ok(d) if d.is_zero() => {
            cx.spanned(
                lit,
                format!("`{name} = \"{}\"` is zero: give a positive duration", lit.value()),
            );
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            cx.spanned(
                lit,
                format!(
                    "invalid `{name} = \"{}\"`: {e}; write a duration such as \"90s\", \"10m\" or \"1h\"",
                    lit.value()
                ),
            );
            None
        }
    }
}

/// `stale`, `early_refresh`, `stale_if_error`, `max_age` and the failure lifetimes: values and combinations.
fn check_freshness(m: &Model<'_>, cx: &mut Ctxt) -> Fresh {
    let a = m.args;
    let mut fresh = Fresh::default();
    if let Some(stale) = &a.stale {
        fresh.stale = duration_arg(cx, "stale", &stale.value);
        if a.lifetime.is_none() {
            cx.at(
                stale.key,
                "`stale` serves an entry for a while after it expires, but without `lifetime` entries never expire: \
                 add `lifetime = \"...\"` or remove `stale`",
            );
        }
    }
    if let Some(early) = &a.early_refresh {
        let beta = match &early.value {
            None => Some(1.0),
            Some(lit) => match lit.base10_parse::<f64>() {
                Ok(b) if b.is_finite() && b > 0.0 => Some(b),
                _ => {
                    cx.spanned(
                        lit,
                        "`early_refresh` takes a positive β (1.0 is the usual choice; larger refreshes earlier)",
                    );
                    None
                }
            },
        };
        fresh.early_refresh = beta;
        if a.lifetime.is_none() {
            cx.at(
                early.key,
                "`early_refresh` recomputes an entry shortly before it expires, but without `lifetime` entries \
                 never expire: add `lifetime = \"...\"` or remove `early_refresh`",
            );
        }
    }
    if let Some(span) = a.stale_if_error {
        if a.stale.is_none() {
            cx.at(
                span,
                "`stale_if_error` returns the expired value when its recompute fails, within the stale window: add \
                 `stale = \"...\"` (and `lifetime`)",
            );
        }
    }
    if let Some(max_age) = &a.max_age {
        let name = max_age.value.value();
        let (_, list) = param_names(m);
        let fn_name = &m.item.sig.ident;
        if a.nocache.as_ref().is_some_and(|n| n.value.value() == name) {
            cx.spanned(
                &max_age.value,
                format!("`{name}` is the `nocache` flag: `max_age` names a `Duration` parameter of its own"),
            );
        } else if !m.params.iter().any(|p| p.name.is_some_and(|n| *n == name)) {
            cx.spanned(
                &max_age.value,
                format!(
                    "`max_age = \"{name}\"`: `{fn_name}` has no parameter `{name}` ({list}); name a parameter of \
                     type `Duration` or `Option<Duration>`"
                ),
            );
        }
    }
    if let Some(l) = &a.cache_err_lifetime {
        fresh.failure_lifetime = duration_arg(cx, "cache_err", &l.value);
    }
    if let Some(l) = &a.cache_none_lifetime {
        fresh.failure_lifetime = duration_arg(cx, "cache_none", &l.value);
    }
    fresh
}

/// Whether a type is a reference other than `&'static T`: it borrows from the caller.
fn borrows(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) => r.lifetime.as_ref().is_none_or(|l| l.ident != "static"),
        Type::Paren(p) => borrows(&p.elem),
        Type::Group(g) => borrows(&g.elem),
        _ => false,
    }
}

/// `refresh = "background"`: a sync function, without `self`, whose arguments move to a thread (no borrowed
/// parameter), whose bucket lives as long as the program, with something to refresh (`stale` or
/// `early_refresh`). Argument types that are not `Send + 'static` are reported by the expansion's `MoveCheck`.
fn check_background(m: &Model<'_>, cx: &mut Ctxt) -> bool {
    let a = m.args;
    let Some(refresh) = &a.refresh else {
        return false;
    };
    if refresh.value.0 != crate::args::RefreshMode::Background {
        return false;
    }
    if a.stale.is_none() && a.early_refresh.is_none() {
        cx.at(
            refresh.key,
            "`refresh = \"background\"` refreshes a stale (or early-refreshed) entry on a thread of its own, but this \
             function serves no stale entry: add `stale = \"...\"` (and `lifetime`) or `early_refresh`, or remove \
             `refresh`",
        );
    }
    if let Some(asyncness) = &m.item.sig.asyncness {
        cx.spanned(
            asyncness,
            "`refresh = \"background\"` runs the refresh on a thread of its own, which cannot drive an `async fn`'s \
             future (that needs your executor): remove `refresh` (the first caller after expiry then refreshes while \
             the others get the stale value at once), or cache a sync function",
        );
    }
    if let Some(r) = &m.receiver {
        cx.spanned(
            r.node,
            "`refresh = \"background\"` moves the arguments to the thread that refreshes the entry, and `self` is \
             borrowed: cache a free (or associated) function that takes the state it needs as owned arguments, or \
             remove `refresh`",
        );
    }
    for p in &m.params {
        if let (Some(name), true) = (p.name, borrows(&p.node.ty)) {
            cx.spanned(
                &p.node.ty,
                format!(
                    "`refresh = \"background\"` moves `{name}` to the thread that refreshes the entry, but this \
                     reference borrows from the caller: take an owned value (`String` for `&str`, `Vec<T>` for \
                     `&[T]`, `Arc<T>` for shared state), or remove `refresh`"
                ),
            );
        }
    }
    if let Some(bucket) = &a.bucket {
        if !matches!(bucket.value, syn::Expr::Path(_)) {
            cx.spanned(
                &bucket.value,
                "`refresh = \"background\"` stores from a thread that may outlive this call, so the bucket must live \
                 as long as the program: name a `static` (`bucket = CACHE` with `static CACHE: LazyLock<Bucket>`), or \
                 use `path = \"...\"` or the default bucket",
            );
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Args;
    use syn::{parse_quote, ItemFn};

    fn errors(args: Args, item: ItemFn) -> Vec<String> {
        let m = Model::new(&args, &item);
        match check(&m) {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_lifetime("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_lifetime("2d"), Ok(Duration::from_secs(2 * 86400)));
        assert_eq!(parse_lifetime("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_lifetime("1 fortnight").is_err());
        assert!(parse_lifetime("").is_err());
        assert!(parse_lifetime("0s").expect_err("zero").contains("zero"));
    }

    #[test]
    fn a_valid_function_passes() {
        let e = errors(
            parse_quote!(lifetime = "1h", nocache = "refresh", ignore(c)),
            parse_quote!(
                fn f(a: u32, c: &mut Vec<u8>, refresh: bool) -> Vec<u8> {
                    vec![]
                }
            ),
        );
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn every_problem_is_reported() {
        let e = errors(
            parse_quote!(
                lifetime = "soon",
                nocache = "n",
                ignore(zz, self),
                method,
                path = "p",
                bucket = B
            ),
            parse_quote!(
                fn f(a: &mut u8, n: u8) -> &str {
                    ""
                }
            ),
        );
        let all = e.join("\n");
        for needle in [
            "`bucket` and `path`",
            "invalid `lifetime",
            "no parameter `zz`",
            "no `self` receiver; remove `self`",
            "must be a `bool`",
            "`method` hashes `self`",
            "`&mut` argument `a`",
            "cannot return a reference",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in\n{all}");
        }
    }

    #[test]
    fn a_fingerprint_attribute_on_a_cached_function_says_it_has_one() {
        let f: syn::ItemFn = parse_quote!(
            #[bucketcache::fingerprint(deps(helper))]
            fn f(a: u32) -> u32 {
                a
            }
        );
        let e = errors(parse_quote!(), f.clone());
        assert!(e.iter().any(|m| m.contains("has a fingerprint of its own")), "{e:?}");
        assert!(errors(parse_quote!(fingerprint = false), f).is_empty());
        let method: syn::ItemFn = parse_quote!(
            #[bucketcache::fingerprint]
            fn f(&self, a: u32) -> u32 {
                a
            }
        );
        assert!(errors(parse_quote!(ignore(self)), method).is_empty());
    }

    #[test]
    fn fingerprint_takes_a_bool_and_true_needs_a_free_function() {
        let f: syn::ItemFn = parse_quote!(
            fn f(a: u32) -> u32 {
                a
            }
        );
        assert!(errors(parse_quote!(fingerprint = false), f.clone()).is_empty());
        assert!(errors(parse_quote!(fingerprint = true), f.clone()).is_empty());
        let e = errors(parse_quote!(fingerprint = "no"), f);
        assert!(e.iter().any(|m| m.contains("`fingerprint` takes `false`")), "{e:?}");
        let m: syn::ItemFn = parse_quote!(
            fn f(&self, a: u32) -> u32 {
                a
            }
        );
        let e = errors(parse_quote!(fingerprint = true, ignore(self)), m);
        assert!(e.iter().any(|m| m.contains("has no fingerprint of its own")), "{e:?}");
    }

    #[test]
    fn shared_false_is_for_the_attributes_own_buckets() {
        let f: syn::ItemFn = parse_quote!(
            fn f(a: u32) -> u32 {
                a
            }
        );
        assert!(errors(parse_quote!(shared = false), f.clone()).is_empty());
        assert!(errors(parse_quote!(shared = true, path = "p"), f.clone()).is_empty());
        let e = errors(parse_quote!(shared = false, bucket = B), f.clone());
        assert!(
            e.iter().any(|m| m.contains("build that bucket without `.shared(..)`")),
            "{e:?}"
        );
        let e = errors(parse_quote!(shared = "no"), f);
        assert!(e.iter().any(|m| m.contains("`shared` takes `false`")), "{e:?}");
    }

    #[test]
    fn background_refresh_needs_a_sync_function_of_owned_arguments_and_something_to_refresh() {
        let ok: ItemFn = parse_quote!(
            fn f(a: String, b: &'static str) -> u32 {
                1
            }
        );
        let bg = |args: proc_macro2::TokenStream, item: ItemFn| errors(syn::parse2(args).expect("args"), item);
        assert!(bg(
            quote::quote!(lifetime = "1m", stale = "1m", refresh = "background"),
            ok.clone()
        )
        .is_empty());
        assert!(bg(
            quote::quote!(lifetime = "1m", early_refresh, refresh = background),
            ok.clone()
        )
        .is_empty());
        assert!(bg(quote::quote!(lifetime = "1m", refresh = "caller"), ok.clone()).is_empty());
        let e = bg(quote::quote!(lifetime = "1m", refresh = "background"), ok.clone());
        assert!(e.len() == 1 && e[0].contains("serves no stale entry"), "{e:?}");
        let e = bg(
            quote::quote!(lifetime = "1m", stale = "1m", refresh = "background", bucket = make()),
            ok,
        );
        assert!(
            e.len() == 1 && e[0].contains("must live as long as the program"),
            "{e:?}"
        );
        let e = bg(
            quote::quote!(lifetime = "1m", stale = "1m", refresh = "background", ignore(c)),
            parse_quote!(
                async fn f(&self, a: &str, b: &[u8], c: &'static str) -> u32 {
                    1
                }
            ),
        );
        let all = e.join("\n");
        assert_eq!(e.len(), 4, "{all}");
        for needle in ["`async fn`", "`self` is borrowed", "moves `a`", "moves `b`"] {
            assert!(all.contains(needle), "missing {needle:?} in\n{all}");
        }
    }

    #[test]
    fn unit_returns_need_allow_unit() {
        let unit: ItemFn = parse_quote!(
            fn f(x: u32) {
                let _ = x;
            }
        );
        let e = errors(Args::default(), unit.clone());
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("nothing to cache") && e[0].contains("allow_unit"),
            "{e:?}"
        );
        assert!(errors(parse_quote!(allow_unit), unit).is_empty());
        let e = errors(
            parse_quote!(allow_unit),
            parse_quote!(
                fn f() -> () {}
            ),
        );
        assert!(e.is_empty(), "{e:?}");
        let e = errors(
            parse_quote!(allow_unit),
            parse_quote!(
                fn f() -> u8 {
                    1
                }
            ),
        );
        assert!(e[0].contains("remove `allow_unit`"), "{e:?}");
    }

    #[test]
    fn nocache_cannot_be_ignored() {
        let e = errors(
            parse_quote!(nocache = "n", ignore(n)),
            parse_quote!(
                fn f(n: bool) -> u8 {
                    1
                }
            ),
        );
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("never part of the key"), "{e:?}");
    }

    #[test]
    fn mut_self_and_impl_trait() {
        let e = errors(
            Args::default(),
            parse_quote!(
                fn f(&mut self) -> impl Clone {
                    1
                }
            ),
        );
        assert_eq!(e.len(), 2, "{e:?}");
        let e = errors(
            parse_quote!(ignore(self)),
            parse_quote!(
                fn f(&mut self) -> u8 {
                    1
                }
            ),
        );
        assert!(e.is_empty(), "{e:?}");
    }
}
