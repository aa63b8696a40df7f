//! The `#[bucket_cache]` attribute for [`bucketcache`](https://docs.rs/bucketcache).
//!
//! Use it through its re-export, `bucketcache::bucket_cache`, which documents every argument.
//!
//! The work is a pipeline, one file a stage: `args.rs` parses the attribute, `model.rs` classifies the function
//! (parameters, receiver, asyncness, return type), `valid.rs` checks the combination and reports every problem on
//! its token, `expand.rs` writes the cached function (`background.rs`: its decision with `refresh =
//! "background"`). `tokens.rs` renders token streams canonically for the signature and the body fingerprint.
//! `fingerprint.rs` is `#[bucketcache::fingerprint]` and `deps(...)`: the hidden fingerprint function beside an
//! item, and the code version of a cached function with dependencies.

use proc_macro::TokenStream;

mod args;
mod background;
mod expand;
mod fingerprint;
mod model;
mod tokens;
mod valid;

/// Caches a function's results in a `bucketcache::Bucket`. See `bucketcache::bucket_cache`.
#[proc_macro_attribute]
pub fn bucket_cache(args: TokenStream, item: TokenStream) -> TokenStream {
    let original = proc_macro2::TokenStream::from(item.clone());
    match run(args.into(), item.into()) {
        Ok(out) => out.into(),
        Err(e) => {
            // The error and the function unchanged: one error, no cascade of "cannot find function".
            let mut out = e.to_compile_error();
            out.extend(original);
            out.into()
        }
    }
}

/// Gives an item a code fingerprint that `deps(...)` can name. See `bucketcache::fingerprint`.
#[proc_macro_attribute]
pub fn fingerprint(args: TokenStream, item: TokenStream) -> TokenStream {
    let original = proc_macro2::TokenStream::from(item.clone());
    match fingerprint::attribute(args.into(), item.into()) {
        Ok(out) => out.into(),
        Err(e) => {
            let mut out = e.to_compile_error();
            out.extend(original);
            out.into()
        }
    }
}

fn run(args: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> syn::Result<proc_macro2::TokenStream> {
    let item: syn::ItemFn =
        match syn::parse2(item.clone()) {
            Ok(f) => f,
            Err(_) => return Err(syn::Error::new_spanned(
                first_tokens(&item),
                "#[bucket_cache] applies to a function with a body: a free `fn`, a method or an associated function",
            )),
        };
    let args: args::Args = syn::parse2(args)?;
    let model = model::Model::new(&args, &item);
    let checked = valid::check(&model)?;
    Ok(expand::expand(&model, &checked))
}

fn first_tokens(item: &proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    item.clone().into_iter().take(3).collect()
}
