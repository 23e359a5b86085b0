//! Animations: an animated GIF or WebP stays animated as GIF, WebP or `fmt=auto`, every frame
//! resized with the same plan, delays and loop count kept; each frame is compared with
//! Pillow's composition of the source's frame, resized by its LANCZOS (tests/reference.py
//! `animation`). Frame limits are checked from the header; `anim=0` picks the first frame.

use crate::support::{reference_py, tempdir, testdata, TestApp};
use image::GenericImageView;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Pillow's reading of `bytes` (an animation imgfn made from `source`): format, frames,
/// durations, loop count and each frame's mean difference from the reference.
fn pillow_reads(bytes: &[u8], source: &str) -> Value {
    let dir = tempdir();
    let out = dir.join("out.anim");
    std::fs::write(&out, bytes).unwrap();
    let source = testdata().join(source);
    let text = reference_py(
        "animation",
        &out,
        std::path::Path::new("-"),
        source.to_str().unwrap(),
    );
    let _ = std::fs::remove_dir_all(&dir);
    serde_json::from_slice(&text).expect("reference.py animation JSON")
}

/// The source's own frame durations (ms) as Pillow reads them.
const DISPOSAL_DURATIONS: [u64; 6] = [80, 120, 40, 200, 60, 100];

#[tokio::test]
async fn animations_stay_animated_with_their_delays_loops_and_frames() {
    crate::needs!(Pillow);
    let app = TestApp::spawn().await;
    // (source, query, format Pillow must see, loop count as Pillow reports it, tolerance)
    // animated-disposal.gif: 6 frames with disposal to background over transparency, its
    // NETSCAPE loop count 2 (3 plays); animated.webp: the same frames, looping for ever.
    // GIF's loop count counts repeats, WebP's counts plays: 3 plays is GIF 2, WebP 3.
    let cases = [
        ("animated-disposal.gif", "w=80&fmt=webp", "WEBP", 3, 2.0),
        ("animated-disposal.gif", "w=80&fmt=gif", "GIF", 2, 9.0),
        ("animated-disposal.gif", "w=80", "GIF", 2, 9.0),
        ("animated.webp", "w=100&fmt=gif", "GIF", 0, 9.0),
        (
            "animated.webp",
            "w=100&h=40&fit=fill&fmt=webp",
            "WEBP",
            0,
            2.0,
        ),
        ("animated.webp", "w=120", "WEBP", 0, 2.0),
    ];
    for (file, query, format, looped, tolerance) in cases {
        let reply = app.get(&format!("/{file}?{query}")).await;
        assert_eq!(reply.status, 200, "{file}?{query}");
        let read = pillow_reads(&reply.body, file);
        assert_eq!(read["format"], format, "{file}?{query}: {read}");
        assert_eq!(read["frames"], 6, "{file}?{query}: {read}");
        let durations: Vec<u64> = read["durations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap_or(0))
            .collect();
        assert_eq!(durations, DISPOSAL_DURATIONS, "{file}?{query}");
        assert_eq!(read["loop"], looped, "{file}?{query}: {read}");
        for (k, diff) in read["diffs"].as_array().unwrap().iter().enumerate() {
            let diff = diff.as_f64().unwrap();
            assert!(
                diff <= tolerance,
                "{file}?{query}: frame {k} differs from Pillow's by {diff:.2} on average: {read}"
            );
        }
    }
}

#[tokio::test]
async fn a_photo_gif_becomes_an_animated_webp_for_browsers_that_take_webp() {
    crate::needs!(Pillow);
    let app = TestApp::spawn().await;
    let chrome = [(
        "accept",
        "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
    )];
    let webp = app.get_with("/animated.gif?w=100&fmt=auto", &chrome).await;
    assert_eq!(webp.status, 200);
    assert_eq!(
        webp.content_type(),
        "image/webp",
        "never AVIF for an animation"
    );
    assert_eq!(webp.header("vary"), Some("Accept"));
    let read = pillow_reads(&webp.body, "animated.gif");
    assert_eq!(
        (read["frames"].as_u64(), read["loop"].as_u64()),
        (Some(3), Some(0))
    );
    assert!(
        read["durations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d == 500),
        "{read}"
    );
    for diff in read["diffs"].as_array().unwrap() {
        assert!(diff.as_f64().unwrap() <= 6.0, "{read}");
    }
    let gif = app.get("/animated.gif?w=100&fmt=auto").await;
    assert_eq!(gif.content_type(), "image/gif");
    assert_eq!(pillow_reads(&gif.body, "animated.gif")["frames"], 3);
    // What the animated GIF weighs against the animated WebP of the same frames.
    assert!(
        webp.body.len() < gif.body.len(),
        "{} {}",
        webp.body.len(),
        gif.body.len()
    );
}

#[tokio::test]
async fn stills_of_an_animation_are_its_first_frame() {
    crate::needs!(Pillow);
    let app = TestApp::spawn().await;
    for query in [
        "w=80&anim=0",
        "w=80&anim=0&fmt=webp",
        "w=80&fmt=png",
        "w=80&fmt=jpeg",
    ] {
        let reply = app.get(&format!("/animated-disposal.gif?{query}")).await;
        assert_eq!(reply.status, 200, "{query}");
        let read = pillow_reads(&reply.body, "animated-disposal.gif");
        assert_eq!(read["frames"], 1, "{query}: {read}");
        // JPEG has no alpha (the first frame is flattened on white, the reference on grey).
        if !query.contains("jpeg") {
            let diff = read["diffs"][0].as_f64().unwrap();
            assert!(diff <= 9.0, "{query}: {read}");
        }
    }
    let png = app.get("/animated-disposal.gif?w=80&fmt=png").await.image();
    assert_eq!(png.dimensions(), (80, 60));
}

#[tokio::test]
async fn json_reports_frames_and_duration() {
    let app = TestApp::spawn().await;
    let gif = app.get("/animated-disposal.gif?fmt=json").await.json();
    assert_eq!(
        (gif["frames"].as_u64(), gif["duration_ms"].as_u64()),
        (Some(6), Some(600))
    );
    let webp = app.get("/animated.webp?fmt=json").await.json();
    assert_eq!(
        (webp["frames"].as_u64(), webp["duration_ms"].as_u64()),
        (Some(6), Some(600))
    );
    let still = app.get("/small.jpg?fmt=json").await.json();
    assert_eq!(
        (still["frames"].as_u64(), still["duration_ms"].as_u64()),
        (Some(1), Some(0))
    );
}

/// A GIF of `frames` 1x1 frames on a `w`x`h` canvas: tiny on disk, whatever it claims.
fn gif_of_frames(w: u16, h: u16, frames: usize) -> Vec<u8> {
    let mut v = b"GIF89a".to_vec();
    v.extend_from_slice(&w.to_le_bytes());
    v.extend_from_slice(&h.to_le_bytes());
    // A global palette of two colours.
    v.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
    v.extend_from_slice(b"\x21\xFF\x0BNETSCAPE2.0\x03\x01\0\0\0");
    for _ in 0..frames {
        v.extend_from_slice(&[0x21, 0xF9, 4, 0, 2, 0, 0, 0]);
        v.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0]);
        v.extend_from_slice(&[2, 2, 0x4C, 0x01, 0]);
    }
    v.push(0x3B);
    v
}

#[tokio::test]
async fn frame_limits_are_checked_from_the_header() {
    let dir = tempdir();
    std::fs::write(dir.join("many.gif"), gif_of_frames(16, 16, 2000)).unwrap();
    // 40 frames of a 4000x4000 canvas: 640 megapixels to compose, 9 KB on disk.
    std::fs::write(dir.join("vast.gif"), gif_of_frames(4000, 4000, 40)).unwrap();
    let app = TestApp::spawn_with(imgfn::config::Config::with_root(&dir)).await;
    for (file, query, code) in [
        ("many.gif", "w=8&fmt=webp", "max_frames"),
        ("many.gif", "w=8", "max_frames"),
        ("vast.gif", "w=100&fmt=gif", "max_animation_pixels"),
    ] {
        let t = Instant::now();
        let reply = app.get(&format!("/{file}?{query}")).await;
        let took = t.elapsed();
        let body = reply.assert_error(422, "limit_exceeded");
        assert_eq!(body["error"]["limit"], code, "{file}?{query}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains("anim=0"), "{file}?{query}: {body}");
        assert!(
            took < Duration::from_secs(1),
            "{file}?{query} took {took:?}"
        );
    }
    // The first frame alone is fine.
    let still = app.get("/many.gif?w=8&anim=0").await;
    assert_eq!(still.status, 200);
    assert_eq!(still.content_type(), "image/gif");
    let json = app.get("/many.gif?fmt=json").await.json();
    assert_eq!(
        (json["frames"].as_u64(), json["duration_ms"].as_u64()),
        (Some(2000), Some(40_000))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_animated_webp_with_a_profile_is_converted_like_its_still() {
    crate::needs!(Pillow, IccProfiles);
    // Six flat frames of one mid green, labelled Adobe RGB (1998): every frame must come out
    // converted to sRGB as the still path converts it (checked against LittleCMS in
    // tests/api/colour.rs), not with the stored numbers read as sRGB.
    let dir = tempdir();
    let src = dir.join("adobe.webp");
    let script = format!(
        "from PIL import Image\n\
         icc = open('/usr/share/color/icc/colord/AdobeRGB1998.icc', 'rb').read()\n\
         f = [Image.new('RGB', (32, 24), (60, 170, 90 + 10 * k)) for k in range(6)]\n\
         f[0].save({:?}, save_all=True, append_images=f[1:], duration=50, loop=0, \
         lossless=True, icc_profile=icc)\n",
        src.to_str().unwrap()
    );
    let status = std::process::Command::new(crate::support::python())
        .args(["-c", &script])
        .status()
        .expect("python");
    assert!(status.success());
    let app = TestApp::spawn_with(imgfn::config::Config::with_root(&dir)).await;
    let still = app
        .get("/adobe.webp?anim=0&fmt=png")
        .await
        .image()
        .to_rgb8();
    let animated = app.get("/adobe.webp?fmt=webp&q=100").await;
    assert_eq!(animated.status, 200);
    let first = image::load_from_memory(&animated.body).unwrap().to_rgb8();
    let (s, a) = (still.get_pixel(16, 12).0, first.get_pixel(16, 12).0);
    let off = |x: [u8; 3], y: [u8; 3]| (0..3).map(|i| x[i].abs_diff(y[i])).max().unwrap_or(0);
    assert!(off(s, [60, 170, 90]) > 10, "the still is converted: {s:?}");
    assert!(off(s, a) <= 3, "animated frame {a:?} vs still {s:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
