//! Everything that parses attacker-controlled request text: the query, the key in the path,
//! the Accept header and the signing split. None may panic, and whatever the query parser
//! accepts must round-trip through its canonical form (the cache key).
#![no_main]

use imgfn::params::{Accepted, ImageRequest};
use imgfn::signing::{transformation_query, SigningKeys};
use imgfn::key::Key;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = ImageRequest::parse(Some(text)) {
        let again = ImageRequest::parse(Some(&p.to_string())).expect("canonical form parses");
        assert_eq!(p, again);
    }
    let _ = ImageRequest::parse(transformation_query(Some(text)).as_deref());
    if let Ok(k) = Key::from_uri_path(text) {
        let key = k.as_str();
        assert!(!key.split('/').any(|s| s == ".." || s == "." || s.is_empty()));
        assert!(!key.starts_with('/') && !key.contains('\0'));
    }
    let _ = Accepted::from_header(Some(text)).choose(text.len() % 2 == 0);
    let keys: SigningKeys = "f:fuzzing-secret-0123456789".parse().expect("key");
    let (path, query) = text.split_once('?').unwrap_or((text, ""));
    let _ = keys.verify(path, Some(query), 0);
});
