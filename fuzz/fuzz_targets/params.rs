//! Everything that parses attacker-controlled request text: the query, the key in the path,
//! the Accept header and the signing split. None may panic, and whatever the query parser
//! accepts must round-trip through its canonical form (the cache key).
#![no_main]

use imgfn::params::{Accepted, ImageRequest};
use imgfn::pipeline::{Limits, Orientation, SourceFormat, SourceInfo};
use imgfn::policy::Policy;
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
        // The policy (a ladder, presets) and `srcset`'s candidates, planned on a header:
        // errors are fine, panics are not.
        let policy = Policy {
            sizes: vec![100, 200, 400, 800],
            ..Policy::default()
        }
        .with_presets(
            "thumb=w=200&h=200&fit=cover,hero=w=1600&trim=10".parse().expect("presets"),
            text.len() % 3 == 0,
        );
        if let Ok(policed) = policy.apply(p) {
            let info = SourceInfo {
                format: SourceFormat::Jpeg,
                stored: (3000 + text.len() as u32, 2000),
                orientation: Orientation::from_exif((text.len() % 9) as u8),
                has_alpha: false,
                complete: true,
                decoder_overhead: 0,
                decode_px_bytes: 3,
                animation: None,
            };
            let _ = imgfn::srcset::img(&info, &policed, "/a.jpg", &policy, &Limits::default(), |u| u);
        }
    }
    let _ = ImageRequest::parse(transformation_query(Some(text)).as_deref());
    if let Ok(k) = Key::from_uri_path(text) {
        let key = k.as_str();
        assert!(!key.split('/').any(|s| s == ".." || s == "." || s.is_empty()));
        assert!(!key.starts_with('/') && !key.contains('\0'));
    }
    let _ = Accepted::from_header(Some(text)).choose(text.len() % 2 == 0, text.len() % 3 == 0);
    let keys: SigningKeys = "f:fuzzing-secret-0123456789".parse().expect("key");
    let (path, query) = text.split_once('?').unwrap_or((text, ""));
    let _ = keys.verify(path, Some(query), 0);
});
