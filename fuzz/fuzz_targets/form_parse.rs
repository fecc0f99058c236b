//! `FormData::parse` on any bytes: never panics, and what it accepts survives a round trip
//! through `form_urlencoded` (a parsed form has unique keys by construction: duplicates are
//! refused).
#![no_main]

use std::collections::BTreeMap;

use gatehouse::web::forms::FormData;
use libfuzzer_sys::fuzz_target;

fn as_map(f: &FormData) -> BTreeMap<String, String> {
    f.names()
        .map(|k| (k.to_owned(), f.text(k).to_owned()))
        .collect()
}

fuzz_target!(|body: &[u8]| {
    let Ok(form) = FormData::parse(body) else {
        return;
    };
    // Every accepted `%` starts an escape of exactly two hex digits.
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'%' {
            let hex = body.get(i + 1..i + 3);
            assert!(
                hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)),
                "accepted a malformed %-escape at {i}"
            );
            i += 3;
        } else {
            i += 1;
        }
    }
    let map = as_map(&form);
    assert_eq!(
        map.len(),
        form.names().count(),
        "duplicate names in a parsed form"
    );

    let reserialised = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(map.iter())
        .finish();
    let again = FormData::parse(reserialised.as_bytes())
        .unwrap_or_else(|e| panic!("re-serialised form {reserialised:?} refused: {e:?}"));
    assert_eq!(as_map(&again), map, "round trip via {reserialised:?}");
    assert_eq!(again, form);
});
