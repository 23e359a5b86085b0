//! AVIF and HEIC originals through the real server: decoded pixels against the reference
//! decoders' (libavif's `avifdec`, libheif through pillow-heif), `fmt=json` against the
//! headers (size after `irot`/`imir`, alpha), the output format a browser can show, and
//! hostile versions of each refused with a quick 4xx.
//!
//! The fixtures, references and malformed files in `testdata/inputs/heif/` are made by
//! `testdata/inputs/make_heif_inputs.py` (avifenc/avifdec, pillow-heif).

use crate::support::{json_list, premultiplied_diff, testdata, TestApp};
use std::time::{Duration, Instant};

const DIR: &str = "inputs/heif";

fn manifest(path: &str) -> Vec<serde_json::Value> {
    json_list(&testdata().join(DIR).join(path))
}

#[tokio::test]
async fn avif_and_heic_decode_like_their_reference_decoders() {
    let app = TestApp::spawn().await;
    for case in manifest("manifest.json") {
        let file = case["file"].as_str().unwrap();
        let path = format!("/{DIR}/{file}");
        let format = case["format"].as_str().unwrap();
        let alpha = case["has_alpha"].as_bool().unwrap();

        let meta = app.get(&format!("{path}?fmt=json")).await.json();
        for field in ["width", "height", "format", "has_alpha"] {
            assert_eq!(meta[field], case[field], "{file}: {field} in {meta}");
        }

        if format == "heic" && !cfg!(feature = "heic") {
            // The header is read by imgfn's own parser; the pixels need libheif.
            let r = app.get(&format!("{path}?fmt=png")).await;
            let json = r.assert_error(415, "unsupported_format");
            let message = json["error"]["message"].as_str().unwrap();
            assert!(message.contains("--features heic"), "{message}");
            continue;
        }
        let got = app.get(&format!("{path}?fmt=png")).await.image();
        let want =
            image::open(testdata().join(DIR).join("ref").join(format!("{file}.png"))).unwrap();
        let (mean, max) = premultiplied_diff(&got, &want);
        // Same bitstream decoders' output (dav1d, libde265); the YUV to RGB conversions
        // differ in rounding and in the chroma upsampling filter.
        let (max_mean, max_max) = if format == "avif" {
            (0.6, 4)
        } else {
            (1.5, 12)
        };
        assert!(
            mean <= max_mean && max <= max_max,
            "{file}: mean {mean:.3}, max {max} against the reference decoder"
        );

        // AVIF stays AVIF; browsers cannot show HEIC: JPEG, or PNG with alpha.
        let thumb = app.get(&format!("{path}?w=100")).await;
        let expected = match (format, alpha) {
            ("avif", _) => "image/avif",
            (_, true) => "image/png",
            _ => "image/jpeg",
        };
        assert_eq!(thumb.status, 200, "{file}");
        assert_eq!(thumb.content_type(), expected, "{file}");
    }
}

#[tokio::test]
async fn hostile_avif_and_heic_are_refused_quickly() {
    let app = TestApp::spawn().await;
    for case in manifest("malformed/manifest.json") {
        let file = case["file"].as_str().unwrap();
        for (query, key) in [("fmt=png", "png"), ("fmt=json", "json"), ("w=64", "png")] {
            let start = Instant::now();
            let r = app.get(&format!("/{DIR}/malformed/{file}?{query}")).await;
            let took = start.elapsed();
            let expect: Vec<u64> = case[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            assert!(
                expect.contains(&u64::from(r.status)),
                "{file}?{query}: {} not in {expect:?} ({}): {}",
                r.status,
                case["why"],
                String::from_utf8_lossy(&r.body)
            );
            if r.status >= 400 {
                assert_eq!(r.content_type(), "application/json", "{file}?{query}");
                assert!(r.json()["error"]["code"].is_string(), "{file}?{query}");
            }
            assert!(
                took < Duration::from_secs(2),
                "{file}?{query} took {took:?}"
            );
        }
    }
}
