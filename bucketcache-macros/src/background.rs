//! Expand, `refresh = "background"`: the decision of a function whose stale (or early-refreshed) entries are
//! refreshed on a thread of their own (`bucketcache/src/call/background.rs`). `valid.rs` has checked that the
//! function is sync, has no receiver, takes no borrowed parameter and names a bucket that lives for the program.
//!
//! ```text
//! { use ViaMovable, ViaNotMovable; (&MoveCheck::of(&a)).__bucketcache_movable(); ... }   // each parameter
//! let __bucketcache_fresh = FreshOpts::new(..);
//! let __bucketcache_step = __bucketcache_call.begin_background::<R, _>(shape, nocache, &__bucketcache_fresh);
//! if let Some(hit) = __bucketcache_step.served() { on_cached(..) }
//! if __bucketcache_step.runs() { __bucketcache_call.run_begins(&__bucketcache_key); }
//! let __bucketcache_body = move || -> R BODY;          // the body once; it owns the arguments
//! match __bucketcache_step {
//!     Hit(hit) => hit.value,
//!     Spawn(refresh, hit) => { __bucketcache_call.refresh_in_background(refresh, move |call| { run, store });
//!                              hit.value }
//!     Run(guard) => { run, store, drop(guard), value }  // a miss: as any call
//! }
//! ```

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use crate::expand::{fresh_opts, FreshParts};
use crate::model::Model;
use crate::valid::Checked;

pub(crate) fn decision(m: &Model<'_>, checked: &Checked, parts: &FreshParts<'_>) -> TokenStream {
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
    let fresh_opts = fresh_opts(m, checked);
    // Every parameter moves into the body, which may run on the refresh thread: each is checked, on its name.
    let checks = m.params.iter().filter_map(|prm| prm.name).map(|name| {
        quote_spanned!(name.span()=> (&::bucketcache::__private::MoveCheck::of(&#name)).__bucketcache_movable();)
    });
    let begin = quote_spanned!(ret_span=>
        __bucketcache_call.begin_background::<#ret, _>(__bucketcache_shape, #nocache, &__bucketcache_fresh)
    );
    // On the refresh thread, a failure with `stale_if_error` keeps the entry (nothing stored).
    let store_refreshed = if m.args.stale_if_error.is_some() {
        quote! {
            if (#failed)(&__bucketcache_value) {
                __bucketcache_call.serving_stale_after_error("error");
            } else {
                #store;
            }
        }
    } else {
        quote!(#store;)
    };
    quote! {
        {
            #[allow(unused_imports)]
            use #p::{ViaMovable as _, ViaNotMovable as _};
            #(#checks)*
        }
        #fresh_opts
        let __bucketcache_step = #begin;
        if let ::core::option::Option::Some(__bucketcache_hit) = __bucketcache_step.served() {
            #on_hit
        }
        if __bucketcache_step.runs() {
            __bucketcache_call.run_begins(&__bucketcache_key);
        }
        let __bucketcache_body = move || -> #ret #block;
        match __bucketcache_step {
            #p::BackgroundStep::Hit(__bucketcache_hit) => __bucketcache_hit.value,
            #p::BackgroundStep::Spawn(__bucketcache_refresh, __bucketcache_hit) => {
                __bucketcache_call.refresh_in_background(__bucketcache_refresh, move |__bucketcache_call| {
                    let __bucketcache_started = ::std::time::Instant::now();
                    let __bucketcache_value: #ret = __bucketcache_body();
                    #store_refreshed
                });
                __bucketcache_hit.value
            }
            #p::BackgroundStep::Run(__bucketcache_guard) => {
                let __bucketcache_started = ::std::time::Instant::now();
                let __bucketcache_value: #ret = __bucketcache_body();
                #store;
                ::core::mem::drop(__bucketcache_guard);
                __bucketcache_value
            }
        }
    }
}
