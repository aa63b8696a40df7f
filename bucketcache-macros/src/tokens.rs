//! Canonical text of a token stream, for the key's signature and the body fingerprint.
//!
//! Written token by token (idents, punctuation with its spacing, literals as written, groups with their delimiters),
//! so it depends only on the tokens: not on whitespace, comments or the compiler's pretty-printer.

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};

/// The canonical text of `tokens`.
pub fn canonical(tokens: TokenStream) -> String {
    let mut out = String::new();
    write(&mut out, tokens);
    out
}

fn write(out: &mut String, tokens: TokenStream) {
    for tt in tokens {
        match tt {
            TokenTree::Ident(i) => {
                sep(out);
                out.push_str(&i.to_string());
            }
            TokenTree::Literal(l) => {
                sep(out);
                out.push_str(&l.to_string());
            }
            TokenTree::Punct(p) => {
                sep(out);
                out.push(p.as_char());
                if p.spacing() == Spacing::Joint {
                    // Glue `::`, `->`, `=>` together, as the source wrote them.
                    out.push('\u{1}');
                }
            }
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::None => ("", ""),
                };
                sep(out);
                out.push_str(open);
                write(out, g.stream());
                out.push_str(close);
            }
        }
    }
}

/// A space between tokens, none after an opening delimiter or a joint punctuation mark.
fn sep(out: &mut String) {
    match out.chars().last() {
        None | Some('(' | '{' | '[') => {}
        Some('\u{1}') => {
            out.pop();
        }
        Some(_) => out.push(' '),
    }
}

/// The first `bytes` bytes of the blake3 hash of the canonical text of `tokens`, in hex.
pub fn digest(tokens: TokenStream, bytes: usize) -> String {
    let hash = blake3::hash(canonical(tokens).as_bytes());
    hash.as_bytes()[..bytes.min(32)]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The fingerprint of a function body: `body:` and the first 64 bits of the blake3 hash of its canonical text.
pub fn body_fingerprint(block: TokenStream) -> String {
    format!("body:{}", digest(block, 8))
}

/// The key's code version: a hash of the signature (48 bits), then the body fingerprint or `version:<version>`.
pub fn code_version(signature: TokenStream, body: TokenStream, version: Option<&str>) -> String {
    let sig = digest(signature, 6);
    match version {
        Some(v) => format!("{sig}:version:{v}"),
        None => format!("{sig}:{}", body_fingerprint(body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn whitespace_and_comments_do_not_count() {
        let a: TokenStream = "{ let x = a + 1; // one\n x * 2 }".parse().expect("tokens");
        let b: TokenStream = "{\n    let x = a+1;\n    /* two */ x*2\n}".parse().expect("tokens");
        assert_eq!(canonical(a.clone()), canonical(b.clone()));
        assert_eq!(body_fingerprint(a), body_fingerprint(b));
    }

    #[test]
    fn any_token_change_counts() {
        let a = body_fingerprint(quote!({ a + 1 }));
        assert_ne!(a, body_fingerprint(quote!({ a + 2 })));
        assert_ne!(a, body_fingerprint(quote!({ a - 1 })));
        assert_ne!(a, body_fingerprint(quote!({ (a + 1) })));
        assert_ne!(body_fingerprint(quote!({ "a" })), body_fingerprint(quote!({ "b" })));
        assert!(a.starts_with("body:") && a.len() == 5 + 16);
    }

    #[test]
    fn code_version_covers_signature_and_body() {
        let body = quote!({ x });
        let a = code_version(quote!(fn f(x: u8) -> u8), body.clone(), None);
        assert_ne!(a, code_version(quote!(fn f(x: u16) -> u16), body.clone(), None));
        assert_ne!(a, code_version(quote!(fn f(x: u8) -> u8), quote!({ x + 0 }), None));
        let v = code_version(quote!(fn f(x: u8) -> u8), body.clone(), Some("3"));
        assert!(v.ends_with(":version:3"), "{v}");
        assert_eq!(v, code_version(quote!(fn f(x: u8) -> u8), quote!({ x * 2 }), Some("3")));
        assert_ne!(v, code_version(quote!(fn f(y: u8) -> u8), body, Some("3")));
    }

    #[test]
    fn readable_signature() {
        let sig = quote!(pub fn f<T: Clone>(a: u32, b: &str) -> Vec<u8>);
        assert_eq!(
            canonical(sig),
            "pub fn f < T : Clone > (a : u32 , b : & str) -> Vec < u8 >"
        );
        assert_eq!(canonical(quote!(a::b)), "a :: b");
    }
}
