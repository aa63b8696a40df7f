// Input:
//
//     #[bucket_cache(lifetime = "1h", nocache = "refresh", ignore(c), on_cached = log_hit)]
//     pub fn f(a: u32, c: Logger, refresh: bool) -> Vec<u8> { BODY }
//
// Output (paths shortened: `__private` is `::bucketcache::__private`):
//
//     pub fn f(a: u32, c: Logger, refresh: bool) -> Vec<u8> {
//         fn __bucketcache_marker() {}
//         let __bucketcache_function = __private::function_path(type_name_of_val(&__bucketcache_marker));
//         let __bucketcache_shape = { use __private::{ProbeAll as _, ProbeOk as _, ProbeSome as _};
//                                     (&__private::Probe::<Vec<u8>>::new()).shape() };
//         let __bucketcache_bucket = { static __BUCKETCACHE_SITE: SiteBucket<BincodeBackend> = ..;
//                                      __BUCKETCACHE_SITE.default_dir() };   // or, with `bucket = EXPR`:
//         // let __bucketcache_bucket_owner = &(EXPR); let __bucketcache_bucket = user_bucket(__bucketcache_bucket_owner);
//         let __bucketcache_nocache: bool = __private::nocache_flag(refresh);   // read once
//         static __BUCKETCACHE_STATS: FnStats = FnStats::new();
//         // The arguments as the fast key sees them (all `ExactKey`, or `Inexact`: `call/fast.rs`):
//         let __bucketcache_fast = FastArg((&ExactWrap(&a)).__bucketcache_exact(), FastEnd);
//         // A memory hit found by the values alone, before the rest (emitted only without freshness options or
//         // `on_cached`: with this example's `on_cached` it is left out):
//         if let Some(v) = __private::fast_hit::<Vec<u8>, _, _, _>(__bucketcache_bucket, &__BUCKETCACHE_STATS,
//             shape_of(..), __bucketcache_shape, &__bucketcache_fast, __bucketcache_nocache) { v } else {
//         let __bucketcache_key = __private::CallKey { function, code: "<blake3 of the signature>:body:<blake3 of BODY>",
//                                   mode, shape: shape_of(..), types: &[],
//                                   args: Args(Arg { value: (&KeyWrap(&a)).__bucketcache_key(), next: End }) };
//         // The key hash, found by the argument values when they are all `ExactKey`:
//         let __bucketcache_call = __private::Call::new_fast(__bucketcache_bucket, __bucketcache_function, LIFETIME,
//             &__bucketcache_key, &__bucketcache_fast, &__BUCKETCACHE_STATS, CODE);
//         match __bucketcache_call.begin::<Vec<u8>, _>(__bucketcache_shape, __bucketcache_nocache) {
//             Step::Hit(hit) => { log_hit(&__bucketcache_call.info(&hit, args_vec([..]))); hit.value }
//             Step::Run(guard) => {
//                 let value: Vec<u8> = (move || -> Vec<u8> BODY)();   // `async move BODY .await` for async fn
//                 __bucketcache_call.store::<Vec<u8>, _>(__bucketcache_shape, &value);
//                 drop(guard);
//                 value
//             }
//         }
//         }
//     }

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

use crate::args::BackendKind;
use crate::model::{Model, Role};
use crate::tokens;
use crate::valid::Checked;

/// Whether a parameter's type is a `HashSet` (`Some(false)`) or a reference to one (`Some(true)`), spelled with
/// its name (`HashSet<T>`, `std::collections::HashSet<T, S>`, `&HashSet<T>`). Only the top level: a set inside
/// another type is hashed in iteration order (the docs recommend `BTreeSet`).
fn set_arg(ty: &syn::Type) -> Option<bool> {
    match ty {
        syn::Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last()?;
            (last.ident == "HashSet").then_some(false)
        }
        syn::Type::Reference(r) if r.mutability.is_none() => {
            set_arg(&r.elem).and_then(|by_ref| (!by_ref).then_some(true))
        }
        syn::Type::Paren(p) => set_arg(&p.elem),
        syn::Type::Group(g) => set_arg(&g.elem),
        _ => None,
    }
}

/// Whether a parameter's type is a shared reference (`&T`, maybe parenthesized).
fn shared_ref(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Reference(r) => r.mutability.is_none(),
        syn::Type::Paren(p) => shared_ref(&p.elem),
        syn::Type::Group(g) => shared_ref(&g.elem),
        _ => false,
    }
}

/// `tokens` with every span set to `span` (delimiters included).
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut t| {
            if let proc_macro2::TokenTree::Group(g) = &t {
                let mut inner = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                inner.set_span(span);
                return proc_macro2::TokenTree::Group(inner);
            }
            t.set_span(span);
            t
        })
        .collect()
}

pub fn expand(m: &Model<'_>, checked: &Checked) -> TokenStream {
    let p = quote!(::bucketcache::__private);
    let item = m.item;
    let sig = &item.sig;
    let is_async = sig.asyncness.is_some();

    let ret: TokenStream = match m.ret {
        Some(t) => t.to_token_stream(),
        None => quote!(()),
    };
    let ret_span = m.ret.map_or_else(|| sig.ident.span(), |t| t.span());

    // The return shape: `Result` stores `Ok`, `Option` stores `Some`, unless switched off.
    let probe_ok = (m.args.cache_err.is_none()).then(|| quote!(ProbeOk as _,));
    let probe_some = (m.args.cache_none.is_none()).then(|| quote!(ProbeSome as _,));
    // Checked (`ShapeCheck`): a return type that cannot be cached is one error in our words, on it.
    let shape = quote_spanned! {ret_span=>
        {
            #[allow(unused_imports)]
            use ::bucketcache::__private::{ProbeAll as _, #probe_ok #probe_some ViaShape as _, ViaNoShape as _};
            let __bucketcache_shape = (&::bucketcache::__private::Probe::<#ret>::new()).shape();
            (&::bucketcache::__private::ShapeCheck::<#ret, _>::new(__bucketcache_shape)).__bucketcache_checked()
        }
    };
    // `cache_none` / `cache_err` on a return type that is not an `Option` / a `Result`: an error on the argument.
    // (The return type is re-spanned to the argument, so the error points at `cache_none`, not at the type.)
    let mut applies = TokenStream::new();
    if let Some(span) = m.args.cache_none {
        let ret = respan(ret.clone(), span);
        applies.extend(quote_spanned!(span=> ::bucketcache::__private::cache_none_applies::<#ret>();));
    }
    if let Some(span) = m.args.cache_err {
        let ret = respan(ret.clone(), span);
        applies.extend(quote_spanned!(span=> ::bucketcache::__private::cache_err_applies::<#ret>();));
    }

    // The bucket.
    let bucket = if let Some(b) = &m.args.bucket {
        let e = &b.value;
        // Bound by a `let` of its own first, so a temporary (`bucket = shared()` returning an `Arc<Bucket>`) lives
        // to the end of the function body.
        quote_spanned!(e.span()=>
            let __bucketcache_bucket_owner = &(#e);
            let __bucketcache_bucket = #p::user_bucket(__bucketcache_bucket_owner);
        )
    } else {
        let backend = match m.args.backend.as_ref().map(|b| b.value.0) {
            None | Some(BackendKind::Bincode) => quote!(#p::BincodeBackend),
            Some(BackendKind::Json) => quote!(#p::JsonBackend),
            Some(BackendKind::MessagePack) => quote!(#p::MessagePackBackend),
        };
        let open = match &m.args.path {
            Some(path) => {
                let lit = &path.value;
                quote!(at(#lit))
            }
            None => quote!(default_dir()),
        };
        // `shared = false`: a bucket on the same directory without the shared tier.
        let site = if checked.local_only {
            quote!(#p::SiteBucket::local())
        } else {
            quote!(#p::SiteBucket::new())
        };
        quote! {
            let __bucketcache_bucket = {
                static __BUCKETCACHE_SITE: #p::SiteBucket<#backend> = #site;
                __BUCKETCACHE_SITE.#open
            };
        }
    };

    let cross_process = match checked.cross_process {
        Some(Some(d)) => {
            let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
            quote!(.cross_process(::core::option::Option::Some(::core::time::Duration::new(#secs, #nanos))))
        }
        Some(None) => quote!(.cross_process(::core::option::Option::None)),
        None => quote!(),
    };
    let lifetime = match checked.lifetime {
        Some(d) => {
            let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
            quote!(::core::option::Option::Some(::core::time::Duration::new(#secs, #nanos)))
        }
        None => quote!(::core::option::Option::None),
    };

    // The key: code version (signature and body, or `version`), type names, named argument values.
    let version = m.args.version.as_ref().map(|v| v.value.value());
    let base = tokens::code_version(sig.to_token_stream(), item.block.to_token_stream(), version.as_deref());
    // With `deps(...)`: the code version is computed once per process (`fingerprint.rs`); without, it is `base`,
    // a literal, as before `deps` existed.
    let (code, deps_setup, fingerprint_fn) = crate::fingerprint::code_of(m, &base);
    let mut types: Vec<TokenStream> = Vec::new();
    if m.names_self_type() {
        types.push(quote!(::core::any::type_name::<Self>()));
    }
    for t in &m.type_params {
        types.push(quote!(::core::any::type_name::<#t>()));
    }

    // The value expression of each hashed argument, in order: self, const generics, parameters. (Their names are in
    // the signature, hashed into `code`.)
    let self_ref = m.receiver.as_ref().map(|r| {
        let self_token = &r.node.self_token;
        if r.deref {
            quote_spanned!(self_token.span()=> &*#self_token)
        } else {
            quote_spanned!(self_token.span()=> &#self_token)
        }
    });
    // Each goes through `KeyWrap` (or `SelfWrap`): a value that is not `Serialize` is one error, on its type.
    // Every token of such an expression carries the user's span (`#p` too): an expression mixing spans is
    // reported at the attribute instead of at the argument.
    let mut hashed: Vec<TokenStream> = Vec::new();
    let mut sets: Vec<TokenStream> = Vec::new();
    if m.hashes_self() {
        if let Some(s) = &self_ref {
            let span = m
                .receiver
                .as_ref()
                .map_or_else(Span::call_site, |r| r.node.self_token.span);
            let s = respan(s.clone(), span);
            hashed.push(quote_spanned!(span=> (&::bucketcache::__private::SelfWrap(#s)).__bucketcache_key()));
        }
    }
    for c in &m.const_params {
        hashed.push(quote_spanned!(c.span()=> (&::bucketcache::__private::KeyWrap(&#c)).__bucketcache_key()));
    }
    for prm in &m.params {
        if let (Role::Key, Some(name)) = (prm.role, prm.name) {
            let ty = &prm.node.ty;
            // A top-level `HashSet` is hashed in a canonical order (`SetKey`).
            let span = name.span();
            // A set's `SetKey` is bound to a local first: the key outlives its statement (`run_begins`).
            let set_local = quote::format_ident!("__bucketcache_set_{}", sets.len(), span = span);
            let value = match set_arg(ty) {
                Some(true) => {
                    sets.push(quote_spanned!(span=> let #set_local = ::bucketcache::__private::set_key(#name);));
                    quote_spanned!(span=> &#set_local)
                }
                Some(false) => {
                    sets.push(quote_spanned!(span=> let #set_local = ::bucketcache::__private::set_key(&#name);));
                    quote_spanned!(span=> &#set_local)
                }
                // A shared reference is passed as it is (`&[u8]`, not `&&[u8]`): the key sees the referent's type,
                // so the encoder's bulk path recognizes a `[P]` of primitives (the bytes are the same either way).
                None if shared_ref(ty) => quote_spanned!(span=> #name),
                None => quote_spanned!(span=> &#name),
            };
            hashed.push(quote_spanned!(span=> (&::bucketcache::__private::KeyWrap(#value)).__bucketcache_key()));
        }
    }
    // The fast key (`call/fast.rs`): the same arguments, compared by value when each is an `ExactKey` (autoref
    // specialization, never an error). Off when the key names types: the function's `static` would then be shared
    // by its instances.
    let fast = if types.is_empty() {
        fast_key(m)
    } else {
        quote!(#p::FastOff)
    };
    let mut arg_list = quote!(#p::End);
    for value in hashed.iter().rev() {
        let span = value.span();
        arg_list = quote_spanned! {span=>
            #p::Arg { value: #value, next: #arg_list }
        };
    }

    // The `nocache` flag, read once into a local (the fast hit and the decision both use it; `nocache_flag` takes
    // its argument by value).
    let nocache_flag = m
        .params
        .iter()
        .find(|prm| prm.role == Role::NoCache)
        .and_then(|prm| prm.name)
        .map_or_else(|| quote!(false), |n| quote_spanned!(n.span()=> #p::nocache_flag(#n)));
    let nocache = quote!(__bucketcache_nocache);

    // The callback, on hits only.
    let on_hit = m.args.on_cached.as_ref().map(|cb| {
        let cb = &cb.value;
        let mut infos: Vec<TokenStream> = Vec::new();
        if m.hashes_self() {
            if let Some(s) = &self_ref {
                infos.push(quote!(#p::arg("self", #s)));
            }
        }
        for prm in &m.params {
            let Some(name) = prm.name else { continue };
            let n = name.to_string();
            infos.push(match prm.role {
                Role::Key | Role::NoCache | Role::MaxAge => quote!(#p::arg(#n, &#name)),
                Role::Ignored => quote!(#p::ignored_arg(#n)),
            });
        }
        let info = quote! {
            &__bucketcache_call.info(&__bucketcache_hit, #p::args_vec([#(#infos),*]))
        };
        // Through `OnCached` / `OnCachedMethod`: a callback of the wrong type is one error naming the signature.
        let call = match &self_ref {
            Some(s) => quote_spanned!(cb.span()=> #p::on_cached_method::<_, #ret, _>(#cb, #s, #info)),
            None => quote_spanned!(cb.span()=> #p::on_cached::<#ret, _>(#cb, #info)),
        };
        quote!(#call;)
    });

    let block = &item.block;
    // Every use of the shape carries the return type's span: an uncacheable return type is one error, on it.
    let (begin, run) = if is_async {
        (
            quote_spanned!(ret_span=> __bucketcache_call.begin_async::<#ret, _>(__bucketcache_shape, #nocache).await),
            quote!(#p::typed_future::<#ret, _>(async move #block).await),
        )
    } else {
        (
            quote_spanned!(ret_span=> __bucketcache_call.begin::<#ret, _>(__bucketcache_shape, #nocache)),
            quote!((move || -> #ret #block)()),
        )
    };
    let mode = quote_spanned!(ret_span=> #p::mode_of::<#ret, _>(&__bucketcache_shape));
    let type_shape = quote_spanned!(ret_span=> #p::shape_of::<#ret, _>(&__bucketcache_shape));
    // The body's wall time is recorded as the entry's cost; a failure (`cache_err = "30s"`) gets its own lifetime.
    let failed = quote! {
        {
            #[allow(unused_imports)]
            use #p::{FailErr as _, FailResult as _, FailOption as _};
            (&#p::Probe::<#ret>::new()).failed_fn()
        }
    };
    let store_lifetime = match checked.fresh.failure_lifetime {
        Some(d) => {
            let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
            quote! {
                if (#failed)(&__bucketcache_value) {
                    ::core::option::Option::Some(::core::time::Duration::new(#secs, #nanos))
                } else {
                    ::core::option::Option::None
                }
            }
        }
        None => quote!(::core::option::Option::None),
    };
    let store = quote_spanned!(ret_span=>
        __bucketcache_call.store_costed::<#ret, _>(__bucketcache_shape, &__bucketcache_value, __bucketcache_started, #store_lifetime)
    );

    let fresh_used = m.args.stale.is_some()
        || m.args.early_refresh.is_some()
        || m.args.max_age.is_some()
        || m.args.stale_if_error.is_some();
    let parts = FreshParts {
        ret: &ret,
        ret_span,
        nocache: &nocache,
        on_hit: &on_hit,
        store: &store,
        failed: &failed,
    };
    let decide = if checked.fresh.background {
        crate::background::decision(m, checked, &parts)
    } else if fresh_used {
        fresh_decision(m, checked, &parts)
    } else {
        quote! {
            match #begin {
                #p::Step::Hit(__bucketcache_hit) => {
                    #on_hit
                    __bucketcache_hit.value
                }
                #p::Step::Run(__bucketcache_guard) => {
                    __bucketcache_call.run_begins(&__bucketcache_key);
                    let __bucketcache_started = ::std::time::Instant::now();
                    let __bucketcache_value: #ret = #run;
                    #store;
                    ::core::mem::drop(__bucketcache_guard);
                    __bucketcache_value
                }
            }
        }
    };

    // A memory hit found by the argument values alone (`__private::fast_hit`), before the key and the call are
    // built; only for the plain decision without a callback (the others need the call's hit and dates).
    let fast_hit = if !checked.fresh.background && !fresh_used && on_hit.is_none() {
        quote_spanned! {ret_span=>
            if let ::core::option::Option::Some(__bucketcache_value) = #p::fast_hit::<#ret, _, _, _>(
                __bucketcache_bucket,
                &__BUCKETCACHE_STATS,
                #type_shape,
                __bucketcache_shape,
                &__bucketcache_fast,
                #nocache,
            ) {
                __bucketcache_value
            } else
        }
    } else {
        quote!()
    };

    // An `async fn`'s body is an `async` block: its marker's path ends in `{{closure}}::__bucketcache_marker`.
    let function_path = if is_async {
        quote!(async_function_path)
    } else {
        quote!(function_path)
    };
    let body = quote! {
        {
            fn __bucketcache_marker() {}
            let __bucketcache_function = #p::#function_path(::core::any::type_name_of_val(&__bucketcache_marker));
            #applies
            let __bucketcache_shape = #shape;
            #bucket
            #deps_setup
            #[allow(unused_imports)]
            use #p::{ViaSerialize as _, ViaNotSerialize as _, ViaSelfNotSerialize as _};
            #(#sets)*
            let __bucketcache_nocache: bool = #nocache_flag;
            // The function's counters; their address also names the site for the fast key.
            static __BUCKETCACHE_STATS: #p::FnStats = #p::FnStats::new();
            let __bucketcache_fast = {
                #[allow(unused_imports)]
                use #p::{ViaExact as _, ViaInexact as _};
                #fast
            };
            #fast_hit {
                let __bucketcache_key = #p::CallKey {
                    function: __bucketcache_function,
                    code: #code,
                    mode: #mode,
                    shape: #type_shape,
                    types: &[#(#types),*],
                    args: #p::Args(#arg_list),
                };
                let __bucketcache_call = #p::Call::new_fast(
                    __bucketcache_bucket,
                    __bucketcache_function,
                    #lifetime,
                    &__bucketcache_key,
                    &__bucketcache_fast,
                    &__BUCKETCACHE_STATS,
                    #code,
                )#cross_process;
                #decide
            }
        }
    };

    let attrs = &item.attrs;
    let vis = &item.vis;
    quote!(#(#attrs)* #vis #sig #body #fingerprint_fn)
}

/// The fast-key list of a function whose key names no type: each hashed argument through `ExactWrap` (a
/// reference parameter `&T` as `T`, so `&str` and `&[T]` qualify), a top-level `HashSet` as `Inexact`.
fn fast_key(m: &Model<'_>) -> TokenStream {
    let p = quote!(::bucketcache::__private);
    let mut items: Vec<TokenStream> = Vec::new();
    if m.hashes_self() {
        // Not reached today (a receiver names `Self` in the key); kept off for safety.
        return quote!(#p::FastOff);
    }
    for c in &m.const_params {
        items.push(quote_spanned!(c.span()=> (&::bucketcache::__private::ExactWrap(&#c)).__bucketcache_exact()));
    }
    for prm in &m.params {
        if let (Role::Key, Some(name)) = (prm.role, prm.name) {
            let ty = &prm.node.ty;
            let span = name.span();
            items.push(match (set_arg(ty), ty.as_ref()) {
                (Some(_), _) => quote!(#p::Inexact),
                (None, syn::Type::Reference(r)) if r.mutability.is_none() => {
                    quote_spanned!(span=> (&::bucketcache::__private::ExactWrap(#name)).__bucketcache_exact())
                }
                _ => quote_spanned!(span=> (&::bucketcache::__private::ExactWrap(&#name)).__bucketcache_exact()),
            });
        }
    }
    let mut list = quote!(#p::FastEnd);
    for item in items.iter().rev() {
        list = quote!(#p::FastArg(#item, #list));
    }
    list
}

/// What [`fresh_decision`] (and `background::decision`) take from [`expand`].
pub(crate) struct FreshParts<'a> {
    pub(crate) ret: &'a TokenStream,
    pub(crate) ret_span: Span,
    pub(crate) nocache: &'a TokenStream,
    pub(crate) on_hit: &'a Option<TokenStream>,
    pub(crate) store: &'a TokenStream,
    pub(crate) failed: &'a TokenStream,
}

/// `let __bucketcache_fresh = FreshOpts::new(stale, β, stale_if_error).max_age(..);`: a function's freshness
/// options, with this call's `max_age`.
pub(crate) fn fresh_opts(m: &Model<'_>, checked: &Checked) -> TokenStream {
    let p = quote!(::bucketcache::__private);
    let duration = |d: Option<std::time::Duration>| match d {
        Some(d) => {
            let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
            quote!(::core::option::Option::Some(::core::time::Duration::new(#secs, #nanos)))
        }
        None => quote!(::core::option::Option::None),
    };
    let stale = duration(checked.fresh.stale);
    let beta = match checked.fresh.early_refresh {
        Some(b) => quote!(::core::option::Option::Some(#b)),
        None => quote!(::core::option::Option::None),
    };
    let stale_if_error = m.args.stale_if_error.is_some();
    let max_age = m
        .params
        .iter()
        .find(|prm| prm.role == Role::MaxAge)
        .and_then(|prm| prm.name)
        .map(|n| quote_spanned!(n.span()=> .max_age(#p::max_age(&#n))));
    quote!(let __bucketcache_fresh = #p::FreshOpts::new(#stale, #beta, #stale_if_error)#max_age;)
}

/// The decision of a function with freshness arguments (`stale`, `early_refresh`, `max_age`, `stale_if_error`):
/// `Call::begin_fresh`, then the body (a refresh, or a miss) with its failure caught for `stale_if_error`.
fn fresh_decision(m: &Model<'_>, checked: &Checked, parts: &FreshParts<'_>) -> TokenStream {
    let p = quote!(::bucketcache::__private);
    let FreshParts {
        ret,
        ret_span,
        nocache,
        on_hit,
        store,
        failed,
    } = parts;
    let ret_span = *ret_span;
    let block = &m.item.block;
    let is_async = m.item.sig.asyncness.is_some();
    let stale_if_error = m.args.stale_if_error.is_some();
    let fresh_opts = fresh_opts(m, checked);
    let begin = if is_async {
        quote_spanned!(ret_span=> __bucketcache_call.begin_fresh_async::<#ret, _>(__bucketcache_shape, #nocache, &__bucketcache_fresh).await)
    } else {
        quote_spanned!(ret_span=> __bucketcache_call.begin_fresh::<#ret, _>(__bucketcache_shape, #nocache, &__bucketcache_fresh))
    };
    let run = if stale_if_error {
        let caught = if is_async {
            quote!(#p::CatchUnwind(::std::boxed::Box::pin(#p::typed_future::<#ret, _>(async move #block))).await)
        } else {
            quote!(#p::catch(move || -> #ret #block))
        };
        quote! {
            match #caught {
                ::core::result::Result::Ok(__bucketcache_value)
                    if !(__bucketcache_stale.is_some() && (#failed)(&__bucketcache_value)) =>
                {
                    #store;
                    __bucketcache_value
                }
                ::core::result::Result::Ok(__bucketcache_value) => match __bucketcache_stale {
                    ::core::option::Option::Some(__bucketcache_stale) => {
                        __bucketcache_call.serving_stale_after_error("error");
                        __bucketcache_stale.value
                    }
                    ::core::option::Option::None => __bucketcache_value,
                },
                ::core::result::Result::Err(__bucketcache_panic) => match __bucketcache_stale {
                    ::core::option::Option::Some(__bucketcache_stale) => {
                        __bucketcache_call.serving_stale_after_error("panic");
                        __bucketcache_stale.value
                    }
                    ::core::option::Option::None => ::std::panic::resume_unwind(__bucketcache_panic),
                },
            }
        }
    } else {
        let body = if is_async {
            quote!(#p::typed_future::<#ret, _>(async move #block).await)
        } else {
            quote!((move || -> #ret #block)())
        };
        quote! {
            {
                let _ = &__bucketcache_stale;
                let __bucketcache_value: #ret = #body;
                #store;
                __bucketcache_value
            }
        }
    };
    quote! {
        #fresh_opts
        match #begin.split() {
            ::core::result::Result::Ok(__bucketcache_hit) => {
                #on_hit
                __bucketcache_hit.value
            }
            ::core::result::Result::Err((__bucketcache_guard, __bucketcache_stale)) => {
                __bucketcache_call.run_begins(&__bucketcache_key);
                let __bucketcache_started = ::std::time::Instant::now();
                let __bucketcache_value: #ret = #run;
                ::core::mem::drop(__bucketcache_guard);
                __bucketcache_value
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Args;
    use syn::{parse_quote, ItemFn};

    fn expanded(args: Args, item: ItemFn) -> String {
        let m = Model::new(&args, &item);
        let checked = crate::valid::check(&m).expect("valid");
        expand(&m, &checked).to_string()
    }

    fn fingerprint_in(out: &str) -> String {
        let at = out.find("code :").expect("code field");
        let code = out[at..].split('"').nth(1).unwrap_or_default();
        code.split_once(':').map(|(_, f)| f.to_owned()).unwrap_or_default()
    }

    #[test]
    fn the_fingerprint_follows_the_body_tokens() {
        let a = expanded(
            Args::default(),
            parse_quote!(
                fn f(x: u8) -> u8 {
                    x + 1
                }
            ),
        );
        let b = expanded(
            Args::default(),
            parse_quote!(
                fn f(x: u8) -> u8 {
                    x + 2
                }
            ),
        );
        let a2 = expanded(
            Args::default(),
            parse_quote!(
                fn f(x: u8) -> u8 {
                    x + 1
                }
            ),
        );
        assert!(fingerprint_in(&a).starts_with("body:"));
        assert_ne!(fingerprint_in(&a), fingerprint_in(&b), "an edit starts fresh entries");
        assert_eq!(fingerprint_in(&a), fingerprint_in(&a2), "reverting finds the old ones");
    }

    #[test]
    fn version_pins_the_fingerprint() {
        let a = expanded(
            parse_quote!(version = "7"),
            parse_quote!(
                fn f(x: u8) -> u8 {
                    x + 1
                }
            ),
        );
        let b = expanded(
            parse_quote!(version = "7"),
            parse_quote!(
                fn f(x: u8) -> u8 {
                    x + 2
                }
            ),
        );
        assert_eq!(fingerprint_in(&a), "version:7");
        assert_eq!(fingerprint_in(&b), "version:7");
    }

    #[test]
    fn generated_code_uses_absolute_paths() {
        let out = expanded(
            parse_quote!(nocache = "n", on_cached = cb),
            parse_quote!(
                fn f(x: u8, n: bool) -> Result<u8, ()> {
                    Ok(x)
                }
            ),
        );
        // The user's `Ok` stays; the expansion's own names are all absolute.
        for name in ["Some", "None", "Box", "vec", "format", "panic", "Option", "Duration"] {
            let needle = format!(" {name} ");
            for (at, _) in out.match_indices(&needle) {
                assert!(out[..at].ends_with("::"), "bare `{name}` in {out}");
            }
        }
        assert!(out.contains(":: bucketcache :: __private :: Call :: new"));
    }

    #[test]
    fn the_key_holds_the_stored_types_shape_and_async_paths_lose_the_closure() {
        let sync = expanded(
            Args::default(),
            parse_quote!(
                fn f(x: u8) -> u8 {
                    x
                }
            ),
        );
        assert!(
            sync.contains("shape : :: bucketcache :: __private :: shape_of :: < u8 , _ >"),
            "{sync}"
        );
        assert!(sync.contains("__private :: function_path ("), "{sync}");
        let asynchronous = expanded(
            Args::default(),
            parse_quote!(
                async fn f(x: u8) -> u8 {
                    x
                }
            ),
        );
        assert!(
            asynchronous.contains("__private :: async_function_path ("),
            "{asynchronous}"
        );
    }

    #[test]
    fn the_freshness_path_is_generated_only_when_asked() {
        let plain = expanded(
            parse_quote!(lifetime = "1m"),
            parse_quote!(
                fn f(x: u8) -> u8 {
                    x
                }
            ),
        );
        assert!(plain.contains("__bucketcache_call . begin ::"), "{plain}");
        assert!(!plain.contains("fresh") && !plain.contains("catch"), "{plain}");
        for args in [
            quote::quote!(lifetime = "1m", stale = "10m"),
            quote::quote!(lifetime = "1m", early_refresh),
            quote::quote!(max_age = "m"),
        ] {
            let fresh = expanded(
                syn::parse2(args).expect("args"),
                parse_quote!(
                    fn f(x: u8, m: Option<std::time::Duration>) -> u8 {
                        x
                    }
                ),
            );
            assert!(fresh.contains("begin_fresh ::"), "{fresh}");
            assert!(
                !fresh.contains("catch"),
                "no panic catching without stale_if_error: {fresh}"
            );
        }
    }

    #[test]
    fn hash_set_arguments_are_hashed_as_sets() {
        let out = expanded(
            Args::default(),
            parse_quote!(
                fn f(a: HashSet<u8>, b: &std::collections::HashSet<String, S>, c: Vec<HashSet<u8>>) -> u8 {
                    0
                }
            ),
        );
        assert!(out.contains("set_key (& a)"), "{out}");
        assert!(out.contains("set_key (b)"), "{out}");
        assert!(!out.contains("set_key (& c)") && !out.contains("set_key (c)"), "{out}");
    }
}
