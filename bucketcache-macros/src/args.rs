//! Parse: the attribute's arguments into [`Args`], keeping every token for error spans.
//!
//! ```text
//! #[bucket_cache(bucket = EXPR | path = "dir", backend = json|msgpack|bincode, lifetime = "1h 30m",
//!                nocache = flag, ignore(a, b, self), method, on_cached = path, version = "...",
//!                cache_err, cache_none, allow_unit, cross_process = false | "30s", shared = false,
//!                fingerprint = false,
//!                stale = "10m", stale_if_error, early_refresh = 1.5, max_age = param,
//!                refresh = "background" | "caller", deps(helper, crate::model::Config, file = "data/table.csv"))]
//! ```
//!
//! One loop reads `name`, then the value its kind takes (`= value`, `(list)` or nothing). An unknown name says
//! "unknown argument" and suggests the closest known one (`ttl` → `lifetime`, `dir` → `path`); a value of the
//! wrong kind says what the value looks like (`lifetime = 3600` → `lifetime = "3600s"`); names are accepted bare
//! or quoted (`backend = json`, `backend = "json"`, `nocache = refresh`, `nocache = "refresh"`). Duplicates are
//! collected and reported together. Values are checked against the function later, in `valid.rs`.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, Ident, Lit, LitStr, Path, Token};

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
    /// The flag's name, quoted or not (a bare name is kept as a string literal with its span).
    pub nocache: Option<Setting<LitStr>>,
    /// The names in `ignore(...)`, `self` included (parsed with `parse_any`).
    pub ignore: Option<Setting<Vec<Ident>>>,
    pub method: Option<Span>,
    pub on_cached: Option<Setting<Path>>,
    pub version: Option<Setting<LitStr>>,
    pub cache_err: Option<Span>,
    pub cache_none: Option<Span>,
    /// Caching a function that returns `()` (its side effects then run once per key).
    pub allow_unit: Option<Span>,
    /// `cross_process = false` or `cross_process = "wait limit"`.
    pub cross_process: Option<Setting<syn::Lit>>,
    /// `shared = false`: keep this function off the shared tier that `BUCKETCACHE_REDIS_URL` attaches.
    pub shared: Option<Setting<syn::Lit>>,
    /// `fingerprint = false`: no hidden fingerprint item beside the function (required in a trait impl, where an
    /// extra item does not compile).
    pub fingerprint: Option<Setting<syn::Lit>>,
    /// `stale = "10m"`: serve an expired entry for this long while one caller refreshes it.
    pub stale: Option<Setting<LitStr>>,
    /// `stale_if_error`: a failed refresh returns the stale value.
    pub stale_if_error: Option<Span>,
    /// `early_refresh` (β 1) or `early_refresh = 1.5`.
    pub early_refresh: Option<Setting<Option<syn::LitFloat>>>,
    /// `max_age = "param"`: a `Duration` / `Option<Duration>` parameter, never part of the key.
    pub max_age: Option<Setting<LitStr>>,
    /// `cache_err = "30s"`: the lifetime of a cached `Err` (the bare `cache_err` sets `cache_err` only).
    pub cache_err_lifetime: Option<Setting<LitStr>>,
    /// `cache_none = "5m"`: the lifetime of a cached `None`.
    pub cache_none_lifetime: Option<Setting<LitStr>>,
    /// `deps(helper, crate::model::Config, file = "data/table.csv")`: fingerprints joining the code version
    /// (`fingerprint.rs`).
    pub deps: Option<Setting<crate::fingerprint::Deps>>,
    /// `refresh = "background"` (or `"caller"`, the default): who recomputes a stale or early-refreshed entry.
    pub refresh: Option<Setting<(RefreshMode, Span)>>,
}

/// Who recomputes a stale (or early-refreshed) entry: `refresh = "caller"` (the default) or `"background"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshMode {
    /// The first caller after expiry recomputes; the others get the stale value at once.
    Caller,
    /// Every caller gets the stale value at once; a thread of its own recomputes.
    Background,
}

/// Every argument name, in the order the docs list them.
pub const KNOWN: &[&str] = &[
    "bucket",
    "path",
    "backend",
    "lifetime",
    "nocache",
    "ignore",
    "method",
    "on_cached",
    "version",
    "cache_err",
    "cache_none",
    "allow_unit",
    "cross_process",
    "shared",
    "fingerprint",
    "stale",
    "stale_if_error",
    "early_refresh",
    "max_age",
    "deps",
    "refresh",
];

/// Names people reach for, and the argument that does it.
const ALIASES: &[(&str, &str)] = &[
    ("ttl", "lifetime"),
    ("expire", "lifetime"),
    ("expires", "lifetime"),
    ("expiry", "lifetime"),
    ("duration", "lifetime"),
    ("dir", "path"),
    ("directory", "path"),
    ("cache_dir", "path"),
    ("folder", "path"),
    ("format", "backend"),
    ("serializer", "backend"),
    ("codec", "backend"),
    ("skip", "ignore"),
    ("exclude", "ignore"),
    ("stale_while_revalidate", "stale"),
    ("swr", "stale"),
    ("xfetch", "early_refresh"),
    ("no_cache", "nocache"),
    ("force", "nocache"),
    ("on_hit", "on_cached"),
    ("callback", "on_cached"),
    ("key_version", "version"),
    ("depends", "deps"),
    ("depends_on", "deps"),
    ("dependencies", "deps"),
];

/// The known argument closest to `name`: an alias, or one within a small edit distance.
pub fn suggest(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    if let Some((_, to)) = ALIASES.iter().find(|(from, _)| *from == lower) {
        return Some(to);
    }
    KNOWN
        .iter()
        .map(|k| (edit_distance(&lower, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Adds an error to a combined error.
pub fn push(errors: &mut Option<syn::Error>, e: syn::Error) {
    match errors {
        Some(all) => all.combine(e),
        None => *errors = Some(e),
    }
}

/// Reads `= `, with an error naming the argument.
fn eq(input: ParseStream, key: &Ident, looks_like: &str) -> syn::Result<()> {
    if input.peek(Token![=]) {
        input.parse::<Token![=]>().map(drop)
    } else {
        Err(syn::Error::new(
            key.span(),
            format!("`{key}` takes a value: write `{looks_like}`"),
        ))
    }
}

/// A string literal value, or an error on the value saying what it looks like.
fn str_value(input: ParseStream, key: &Ident, looks_like: &str) -> syn::Result<LitStr> {
    eq(input, key, looks_like)?;
    if input.peek(LitStr) {
        return input.parse();
    }
    let at = input.span();
    let hint = match input.parse::<Lit>() {
        Ok(Lit::Int(n)) if key == "lifetime" || key == "cross_process" || key == "stale" => format!(
            "`{key} = {n}`: a duration is a string with a unit, such as `{key} = \"{n}s\"` (also \"90m\", \"1h 30m\", \
             \"2d\")"
        ),
        _ => format!("`{key}` takes a string: write `{looks_like}`"),
    };
    Err(syn::Error::new(at, hint))
}

/// A name value, bare or quoted (`json`, `"json"`), as a string literal with the name's span.
fn name_value(input: ParseStream, key: &Ident, looks_like: &str) -> syn::Result<LitStr> {
    eq(input, key, looks_like)?;
    if input.peek(LitStr) {
        return input.parse();
    }
    if input.peek(Ident::peek_any) {
        let name = Ident::parse_any(input)?;
        return Ok(LitStr::new(&name.to_string(), name.span()));
    }
    Err(syn::Error::new(
        input.span(),
        format!("`{key}` takes a name: write `{looks_like}`"),
    ))
}

fn put<T>(slot: &mut Option<T>, value: T, key: &Ident, errors: &mut Option<syn::Error>) {
    if slot.is_some() {
        push(
            errors,
            syn::Error::new(key.span(), format!("duplicate `{key}` argument: give it once")),
        );
    } else {
        *slot = Some(value);
    }
}

impl Args {
    /// Reads one argument named `key` from `input` into `self`.
    fn one(&mut self, key: &Ident, input: ParseStream, errors: &mut Option<syn::Error>) -> syn::Result<()> {
        let span = key.span();
        let name = key.to_string();
        match name.as_str() {
            "bucket" => {
                eq(input, key, "bucket = CACHE")?;
                let value: Expr = input.parse()?;
                put(&mut self.bucket, Setting { key: span, value }, key, errors);
            }
            "path" => {
                let value = str_value(input, key, "path = \"cache/dir\"")?;
                put(&mut self.path, Setting { key: span, value }, key, errors);
            }
            "backend" => {
                let lit = name_value(input, key, "backend = json")?;
                let kind = match lit.value().as_str() {
                    "json" => BackendKind::Json,
                    "msgpack" => BackendKind::MessagePack,
                    "bincode" => BackendKind::Bincode,
                    other => {
                        return Err(syn::Error::new(
                            lit.span(),
                            format!("unknown backend `{other}`: expected one of `json`, `msgpack`, `bincode`"),
                        ))
                    }
                };
                let value = (kind, lit.span());
                put(&mut self.backend, Setting { key: span, value }, key, errors);
            }
            "lifetime" => {
                let value = str_value(input, key, "lifetime = \"1h 30m\"")?;
                put(&mut self.lifetime, Setting { key: span, value }, key, errors);
            }
            "nocache" => {
                let value = name_value(input, key, "nocache = refresh")?;
                put(&mut self.nocache, Setting { key: span, value }, key, errors);
            }
            "ignore" => {
                if !input.peek(syn::token::Paren) {
                    return Err(syn::Error::new(span, "`ignore` takes a list: write `ignore(a, b)`"));
                }
                let content;
                syn::parenthesized!(content in input);
                let names = content.parse_terminated(Ident::parse_any, Token![,])?;
                let value: Vec<Ident> = names.into_iter().collect();
                if value.is_empty() {
                    push(
                        errors,
                        syn::Error::new(
                            span,
                            "`ignore()` names no parameter: write `ignore(name, ...)` or remove it",
                        ),
                    );
                }
                put(&mut self.ignore, Setting { key: span, value }, key, errors);
            }
            "on_cached" => {
                eq(input, key, "on_cached = log_hit")?;
                let value: Path = input.parse()?;
                put(&mut self.on_cached, Setting { key: span, value }, key, errors);
            }
            "version" => {
                let value = str_value(input, key, "version = \"2\"")?;
                put(&mut self.version, Setting { key: span, value }, key, errors);
            }
            "cross_process" => {
                eq(input, key, "cross_process = \"30s\"")?;
                let value: Lit = input.parse()?;
                put(&mut self.cross_process, Setting { key: span, value }, key, errors);
            }
            "shared" => {
                eq(input, key, "shared = false")?;
                let value: Lit = input.parse()?;
                put(&mut self.shared, Setting { key: span, value }, key, errors);
            }
            "fingerprint" => {
                eq(input, key, "fingerprint = false")?;
                let value: Lit = input.parse()?;
                put(&mut self.fingerprint, Setting { key: span, value }, key, errors);
            }
            "deps" => {
                let value = crate::fingerprint::parse_deps(input, key, errors)?;
                put(&mut self.deps, Setting { key: span, value }, key, errors);
            }
            "stale" => {
                let value = str_value(input, key, "stale = \"10m\"")?;
                put(&mut self.stale, Setting { key: span, value }, key, errors);
            }
            "max_age" => {
                let value = name_value(input, key, "max_age = \"max_age\"")?;
                put(&mut self.max_age, Setting { key: span, value }, key, errors);
            }
            "refresh" => {
                let lit = name_value(input, key, "refresh = \"background\"")?;
                let mode = match lit.value().as_str() {
                    "background" => RefreshMode::Background,
                    "caller" => RefreshMode::Caller,
                    other => {
                        return Err(syn::Error::new(
                            lit.span(),
                            format!(
                                "unknown refresh mode `{other}`: expected `\"background\"` (a thread of its own \
                                 recomputes a stale entry) or `\"caller\"` (the default: the first caller after \
                                 expiry does); to skip the cache on a call, use `nocache = \"{other}\"`"
                            ),
                        ))
                    }
                };
                let value = (mode, lit.span());
                put(&mut self.refresh, Setting { key: span, value }, key, errors);
            }
            "early_refresh" => {
                let value = if input.peek(Token![=]) {
                    input.parse::<Token![=]>()?;
                    match input.parse::<Lit>()? {
                        Lit::Float(f) => Some(f),
                        Lit::Int(i) => Some(syn::LitFloat::new(&format!("{}.0", i.base10_digits()), i.span())),
                        other => {
                            return Err(syn::Error::new(
                                other.span(),
                                "`early_refresh` takes a number, the β of XFetch: write `early_refresh = 1.5`, or \
                                 `early_refresh` alone for β = 1",
                            ))
                        }
                    }
                } else {
                    None
                };
                put(&mut self.early_refresh, Setting { key: span, value }, key, errors);
            }
            "stale_if_error" => {
                if input.peek(Token![=]) || input.peek(syn::token::Paren) {
                    return Err(syn::Error::new(
                        span,
                        "`stale_if_error` takes no value: write `stale_if_error` alone",
                    ));
                }
                put(&mut self.stale_if_error, span, key, errors);
            }
            "cache_err" | "cache_none" if input.peek(Token![=]) => {
                let value = str_value(input, key, &format!("{key} = \"30s\""))?;
                let (flag, slot) = if name == "cache_err" {
                    (&mut self.cache_err, &mut self.cache_err_lifetime)
                } else {
                    (&mut self.cache_none, &mut self.cache_none_lifetime)
                };
                put(flag, span, key, errors);
                *slot = Some(Setting { key: span, value });
            }
            "method" | "cache_err" | "cache_none" | "allow_unit" => {
                if input.peek(Token![=]) || input.peek(syn::token::Paren) {
                    return Err(syn::Error::new(
                        span,
                        format!("`{key}` takes no value: write `{key}` alone"),
                    ));
                }
                let slot = match name.as_str() {
                    "method" => &mut self.method,
                    "cache_err" => &mut self.cache_err,
                    "cache_none" => &mut self.cache_none,
                    _ => &mut self.allow_unit,
                };
                put(slot, span, key, errors);
            }
            _ => {
                let hint = match suggest(&name) {
                    Some(k) => format!("; did you mean `{k}`?"),
                    None => format!("; the arguments are {}", KNOWN.join(", ")),
                };
                return Err(syn::Error::new(span, format!("unknown argument `{name}`{hint}")));
            }
        }
        Ok(())
    }
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = Args::default();
        let mut errors = None;
        while !input.is_empty() {
            let key = Ident::parse_any(input)?;
            args.one(&key, input, &mut errors)?;
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
            allow_unit,
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
        assert!(a.method.is_some() && a.cache_err.is_some() && a.cache_none.is_some() && a.allow_unit.is_some());
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

    fn error_of(tokens: proc_macro2::TokenStream) -> String {
        parse(tokens).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn unknown_keys_suggest_the_closest() {
        assert_eq!(
            error_of(quote::quote!(lifetme = "1h")),
            "unknown argument `lifetme`; did you mean `lifetime`?"
        );
        assert!(error_of(quote::quote!(ttl = "1h")).contains("did you mean `lifetime`?"));
        assert!(error_of(quote::quote!(dir = "x")).contains("did you mean `path`?"));
        assert!(error_of(quote::quote!(on_cache = f)).contains("did you mean `on_cached`?"));
        let far = error_of(quote::quote!(zebra = 1));
        assert!(
            far.starts_with("unknown argument `zebra`; the arguments are bucket, path"),
            "{far}"
        );
    }

    #[test]
    fn names_may_be_bare_or_quoted() {
        let a: Args = parse_quote!(backend = "json", nocache = refresh);
        assert_eq!(a.backend.map(|b| b.value.0), Some(BackendKind::Json));
        assert_eq!(a.nocache.map(|n| n.value.value()).as_deref(), Some("refresh"));
        let a: Args = parse_quote!(backend = msgpack, nocache = "r");
        assert_eq!(a.backend.map(|b| b.value.0), Some(BackendKind::MessagePack));
        assert_eq!(a.nocache.map(|n| n.value.value()).as_deref(), Some("r"));
    }

    #[test]
    fn values_of_the_wrong_kind_say_what_they_look_like() {
        let e = error_of(quote::quote!(lifetime = 3600));
        assert!(e.contains("`lifetime = \"3600s\"`"), "{e}");
        assert!(error_of(quote::quote!(path = dir)).contains("`path = \"cache/dir\"`"));
        assert!(error_of(quote::quote!(method = true)).contains("takes no value"));
        assert!(error_of(quote::quote!(version)).contains("takes a value"));
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
    fn parses_the_freshness_arguments() {
        let a: Args = parse_quote!(
            lifetime = "1m",
            stale = "10m",
            stale_if_error,
            early_refresh = 1.5,
            max_age = limit,
            cache_err = "30s"
        );
        assert_eq!(a.stale.map(|s| s.value.value()).as_deref(), Some("10m"));
        assert!(a.stale_if_error.is_some());
        let beta = a
            .early_refresh
            .and_then(|e| e.value)
            .map(|f| f.base10_digits().to_owned());
        assert_eq!(beta.as_deref(), Some("1.5"));
        assert_eq!(a.max_age.map(|m| m.value.value()).as_deref(), Some("limit"));
        assert!(a.cache_err.is_some(), "`cache_err = \"30s\"` also caches errors");
        assert_eq!(a.cache_err_lifetime.map(|l| l.value.value()).as_deref(), Some("30s"));
        let a: Args = parse_quote!(early_refresh, cache_none);
        assert!(a.early_refresh.is_some_and(|e| e.value.is_none()), "bare: β = 1");
        assert!(a.cache_none.is_some() && a.cache_none_lifetime.is_none());
        let a: Args = parse_quote!(early_refresh = 2);
        let beta = a
            .early_refresh
            .and_then(|e| e.value)
            .map(|f| f.base10_digits().to_owned());
        assert_eq!(beta.as_deref(), Some("2.0"));
        assert!(error_of(quote::quote!(stale = 600)).contains("`stale = \"600s\"`"));
        assert!(error_of(quote::quote!(early_refresh = "fast")).contains("takes a number"));
        assert!(error_of(quote::quote!(stale_if_error = true)).contains("takes no value"));
    }

    #[test]
    fn parses_refresh() {
        let a: Args = parse_quote!(refresh = "background");
        assert_eq!(a.refresh.map(|r| r.value.0), Some(RefreshMode::Background));
        let a: Args = parse_quote!(refresh = caller);
        assert_eq!(a.refresh.map(|r| r.value.0), Some(RefreshMode::Caller));
        let e = error_of(quote::quote!(refresh = "force"));
        assert!(
            e.contains("unknown refresh mode `force`") && e.contains("nocache = \"force\""),
            "{e}"
        );
        assert!(error_of(quote::quote!(refresh)).contains("`refresh = \"background\"`"));
    }

    #[test]
    fn unknown_backend() {
        let e = error_of(quote::quote!(backend = yaml));
        assert!(
            e.contains("unknown backend `yaml`") && e.contains("`json`") && e.contains("`bincode`"),
            "{e}"
        );
    }
}
