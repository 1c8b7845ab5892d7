//! The transform-spec grammar. Any UTF-8 string is tried as a path spec
//! (`w_300,h_200`) and as a query string (`w=300&h=200`, split on `&` and `=` without
//! URL-decoding). Whatever parses must have a canonical form that parses back to the
//! same spec and is a fixed point: the variant cache is keyed by it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use progimage::imaging::Spec;

fn check_canonical(spec: &Spec, input: &str) {
    let canonical = spec.canonical();
    // `charset` may only come from the query string, so the canonical path form of a
    // spec with a charset is re-parsed with the charset given as a pair, as the server
    // would see it.
    let (reparsed, path_part) = match &spec.charset {
        None => (Spec::parse_path(&canonical), canonical.clone()),
        Some(charset) => {
            let without = Spec {
                charset: None,
                ..spec.clone()
            };
            let path = without.canonical();
            (
                Spec::parse_path(&path).and_then(|s| s.merge([("charset", charset.as_str())])),
                path,
            )
        }
    };
    let reparsed = match reparsed {
        Ok(s) => s,
        Err(e) => panic!(
            "canonical form {path_part:?} of {input:?} does not parse: {e} (spec {spec:?})"
        ),
    };
    assert_eq!(&reparsed, spec, "canonical {canonical:?} of {input:?} re-parses differently");
    assert_eq!(reparsed.canonical(), canonical, "canonical form of {input:?} is not a fixed point");
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = Spec::parse_path(input) {
        check_canonical(&spec, input);
    }
    let pairs = input
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")));
    if let Ok(spec) = Spec::parse_pairs(pairs) {
        check_canonical(&spec, input);
    }
});
