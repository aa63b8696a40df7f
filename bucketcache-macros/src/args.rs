//! Parse: the attribute's arguments into [`Args`], keeping every token for error spans.
//!
//! ```text
//! #[bucket_cache(bucket = EXPR | path = "dir", backend = json|msgpack|bincode, lifetime = "1h 30m",
//!                nocache = "flag", ignore(a, b, self), method, on_cached = path, version = "...",
//!                cache_err, cache_none, cross_process = false | "30s")]
//! ```
//!
//! Unknown keys fail with syn's "expected one of ..." on the key; duplicates are collected and reported together.
//! Values are checked against the function later, in `valid.rs`.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, Ident, LitStr, Path, Token};

mod kw {
    syn::custom_keyword!(bucket);
    syn::custom_keyword!(path);
    syn::custom_keyword!(backend);
    syn::custom_keyword!(lifetime);
    syn::custom_keyword!(nocache);
    syn::custom_keyword!(ignore);
    syn::custom_keyword!(method);
    syn::custom_keyword!(on_cached);
    syn::custom_keyword!(version);
    syn::custom_keyword!(cache_err);
    syn::custom_keyword!(cache_none);
    syn::custom_keyword!(cross_process);
    syn::custom_keyword!(json);
    syn::custom_keyword!(msgpack);
    syn::custom_keyword!(bincode);
}

/// A serialization backend named by `backend = ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Bincode,
    Json,
    MessagePack,
}

/// A `key = value` argument: the key's span (for "duplicate" and conflict errors) and the value.
#[derive(Clone)]
pub struct Setting<T> {
    pub key: Span,
    pub value: T,
}

/// The parsed attribute.
#[derive(Default)]
pub struct Args {
    pub bucket: Option<Setting<Expr>>,
    pub path: Option<Setting<LitStr>>,
    pub backend: Option<Setting<(BackendKind, Span)>>,
    pub lifetime: Option<Setting<LitStr>>,
    pub nocache: Option<Setting<LitStr>>,
    /// The names in `ignore(...)`, `self` included (parsed with `parse_any`).
    pub ignore: Option<Setting<Vec<Ident>>>,
    pub method: Option<Span>,
    pub on_cached: Option<Setting<Path>>,
    pub version: Option<Setting<LitStr>>,
    pub cache_err: Option<Span>,
    pub cache_none: Option<Span>,
    /// `cross_process = false` or `cross_process = "wait limit"`.
    pub cross_process: Option<Setting<syn::Lit>>,
}

fn set<T>(slot: &mut Option<T>, value: T, key: Span, name: &str, errors: &mut Option<syn::Error>) {
    if slot.is_some() {
        push(
            errors,
            syn::Error::new(key, format!("duplicate `{name}` argument: give it once")),
        );
    } else {
        *slot = Some(value);
    }
}

/// Adds an error to a combined error.
pub fn push(errors: &mut Option<syn::Error>, e: syn::Error) {
    match errors {
        Some(all) => all.combine(e),
        None => *errors = Some(e),
    }
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = Args::default();
        let mut errors = None;
        while !input.is_empty() {
            let la = input.lookahead1();
            if la.peek(kw::bucket) {
                let k: kw::bucket = input.parse()?;
                input.parse::<Token![=]>()?;
                let value: Expr = input.parse()?;
                set(
                    &mut args.bucket,
                    Setting { key: k.span, value },
                    k.span,
                    "bucket",
                    &mut errors,
                );
            } else if la.peek(kw::path) {
                let k: kw::path = input.parse()?;
                input.parse::<Token![=]>()?;
                let value: LitStr = input.parse()?;
                set(
                    &mut args.path,
                    Setting { key: k.span, value },
                    k.span,
                    "path",
                    &mut errors,
                );
            } else if la.peek(kw::backend) {
                let k: kw::backend = input.parse()?;
                input.parse::<Token![=]>()?;
                let la = input.lookahead1();
                let value = if la.peek(kw::json) {
                    (BackendKind::Json, input.parse::<kw::json>()?.span)
                } else if la.peek(kw::msgpack) {
                    (BackendKind::MessagePack, input.parse::<kw::msgpack>()?.span)
                } else if la.peek(kw::bincode) {
                    (BackendKind::Bincode, input.parse::<kw::bincode>()?.span)
                } else {
                    return Err(la.error());
                };
                set(
                    &mut args.backend,
                    Setting { key: k.span, value },
                    k.span,
                    "backend",
                    &mut errors,
                );
            } else if la.peek(kw::lifetime) {
                let k: kw::lifetime = input.parse()?;
                input.parse::<Token![=]>()?;
                let value: LitStr = input.parse()?;
                set(
                    &mut args.lifetime,
                    Setting { key: k.span, value },
                    k.span,
                    "lifetime",
                    &mut errors,
                );
            } else if la.peek(kw::nocache) {
                let k: kw::nocache = input.parse()?;
                input.parse::<Token![=]>()?;
                let value: LitStr = input.parse()?;
                set(
                    &mut args.nocache,
                    Setting { key: k.span, value },
                    k.span,
                    "nocache",
                    &mut errors,
                );
            } else if la.peek(kw::ignore) {
                let k: kw::ignore = input.parse()?;
                let content;
                syn::parenthesized!(content in input);
                let names = content.parse_terminated(Ident::parse_any, Token![,])?;
                let value: Vec<Ident> = names.into_iter().collect();
                if value.is_empty() {
                    push(
                        &mut errors,
                        syn::Error::new(
                            k.span,
                            "`ignore()` names no parameter: write `ignore(name, ...)` or remove it",
                        ),
                    );
                }
                set(
                    &mut args.ignore,
                    Setting { key: k.span, value },
                    k.span,
                    "ignore",
                    &mut errors,
                );
            } else if la.peek(kw::method) {
                let k: kw::method = input.parse()?;
                set(&mut args.method, k.span, k.span, "method", &mut errors);
            } else if la.peek(kw::on_cached) {
                let k: kw::on_cached = input.parse()?;
                input.parse::<Token![=]>()?;
                let value: Path = input.parse()?;
                set(
                    &mut args.on_cached,
                    Setting { key: k.span, value },
                    k.span,
                    "on_cached",
                    &mut errors,
                );
            } else if la.peek(kw::version) {
                let k: kw::version = input.parse()?;
                input.parse::<Token![=]>()?;
                let value: LitStr = input.parse()?;
                set(
                    &mut args.version,
                    Setting { key: k.span, value },
                    k.span,
                    "version",
                    &mut errors,
                );
            } else if la.peek(kw::cache_err) {
                let k: kw::cache_err = input.parse()?;
                set(&mut args.cache_err, k.span, k.span, "cache_err", &mut errors);
            } else if la.peek(kw::cache_none) {
                let k: kw::cache_none = input.parse()?;
                set(&mut args.cache_none, k.span, k.span, "cache_none", &mut errors);
            } else if la.peek(kw::cross_process) {
                let k: kw::cross_process = input.parse()?;
                input.parse::<Token![=]>()?;
                let value: syn::Lit = input.parse()?;
                set(
                    &mut args.cross_process,
                    Setting { key: k.span, value },
                    k.span,
                    "cross_process",
                    &mut errors,
                );
            } else {
                return Err(la.error());
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn parse(tokens: proc_macro2::TokenStream) -> syn::Result<Args> {
        syn::parse2(tokens)
    }

    #[test]
    fn parses_every_argument() {
        let a: Args = parse_quote!(
            path = "dir",
            backend = json,
            lifetime = "1h 30m",
            nocache = "refresh",
            ignore(c, self),
            method,
            on_cached = crate::log_hit,
            version = "2",
            cache_err,
            cache_none,
        );
        assert_eq!(a.path.map(|p| p.value.value()).as_deref(), Some("dir"));
        assert_eq!(a.backend.map(|b| b.value.0), Some(BackendKind::Json));
        assert_eq!(a.lifetime.map(|l| l.value.value()).as_deref(), Some("1h 30m"));
        assert_eq!(a.nocache.map(|n| n.value.value()).as_deref(), Some("refresh"));
        let ignore: Vec<String> = a
            .ignore
            .map(|i| i.value)
            .unwrap_or_default()
            .iter()
            .map(|i| i.to_string())
            .collect();
        assert_eq!(ignore, ["c", "self"]);
        assert!(a.method.is_some() && a.cache_err.is_some() && a.cache_none.is_some());
        assert!(a.on_cached.is_some());
        assert_eq!(a.version.map(|v| v.value.value()).as_deref(), Some("2"));
    }

    #[test]
    fn bucket_takes_any_expression() {
        let a: Args = parse_quote!(bucket = self.buckets[0]);
        assert!(a.bucket.is_some());
        let a: Args = parse_quote!(bucket = SHARED, backend = msgpack);
        assert!(a.bucket.is_some());
        assert_eq!(a.backend.map(|b| b.value.0), Some(BackendKind::MessagePack));
    }

    #[test]
    fn empty_is_fine() {
        let a = parse(quote::quote!()).expect("empty");
        assert!(a.bucket.is_none() && a.path.is_none());
    }

    #[test]
    fn unknown_key_lists_the_known_ones() {
        let e = parse(quote::quote!(lifetme = "1h"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.starts_with("expected one of"), "{e}");
        assert!(e.contains("`lifetime`"), "{e}");
    }

    #[test]
    fn duplicates_are_all_reported() {
        let e = parse(quote::quote!(method, method, version = "1", version = "2")).err();
        let msgs: Vec<String> = e
            .into_iter()
            .flat_map(|e| e.into_iter().map(|e| e.to_string()))
            .collect();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(msgs[0].contains("duplicate `method`"));
        assert!(msgs[1].contains("duplicate `version`"));
    }

    #[test]
    fn unknown_backend() {
        let e = parse(quote::quote!(backend = yaml))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("`json`") && e.contains("`bincode`"), "{e}");
    }
}
