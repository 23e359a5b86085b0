//! The decode path on arbitrary bytes: probe the header, then render a small thumbnail
//! under tight limits, with rotations, flips and effects, or compute its placeholder
//! (`fmt=thumbhash`). Every outcome must be an `Error`, never a panic or an abort.
#![no_main]

use imgfn::params::{ImageRequest, Mode, OutputFormat};
use imgfn::pipeline::{self, Limits, Settings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(info) = pipeline::probe(data) else {
        return;
    };
    // rav1d checks its pixel-buffer borrows at run time under debug assertions (on in fuzz
    // builds): AV1 decodes about 100x slower, a 480x320 frame over libFuzzer's 10 s timeout.
    // AVIF headers are always fuzzed; frames are decoded while they are small.
    if info.format == pipeline::SourceFormat::Avif && info.stored_pixels() > 16_384 {
        return;
    }
    // The DC-only JPEG decoder on its own too (the pipeline takes it only at 1/8 scale),
    // within the same pixel limit the pipeline enforces before decoding.
    if info.stored_pixels() <= 4_000_000 {
        if let Some(p) = pipeline::jpeg_dc::decode(data) {
            assert_eq!(p.buf.len(), p.width as usize * p.height as usize * 3);
        }
    }
    let settings = Settings {
        limits: Limits {
            max_source_pixels: 4_000_000,
            max_output_side: 256,
            max_output_pixels: 65_536,
            max_output_bytes: 1 << 20,
            max_avif_pixels: 65_536,
            max_frames: 32,
            max_animation_pixels: 4_000_000,
            // What the fuzzer's own RSS limit (2 GiB) leaves room for.
            max_render_bytes: 512 << 20,
            ..Limits::default()
        },
        ..Settings::default()
    };
    // The steps of the vocabulary on whatever the decoder made of the bytes: one query per
    // input, chosen by its length so that every query meets every kind of input.
    const QUERIES: [&str; 7] = [
        "w=48&h=32&fit=cover",
        "w=40&rot=90&flip=h&blur=1.5",
        "h=30&rot=270&flip=v&sharpen=0.7&fit=pad&w=31&bg=00000080",
        "w=33&h=20&fit=contain&blur=9&flip=hv",
        "fmt=thumbhash",
        // The plan finished from the pixels: trim's border search, attention's window.
        "w=40&h=12&fit=cover&gravity=auto&rot=90",
        "trim=20&w=30&h=30&fit=cover&gravity=auto&crop=0.1,0.1,0.8,0.9",
    ];
    let query = QUERIES[data.len() % QUERIES.len()];
    let request = ImageRequest::parse(Some(query)).expect("params");
    if request.mode == Mode::Placeholder {
        // The smallest decode, oriented, fitted in 100x100 and hashed: a hash ThumbHash's own
        // decoder reads back, at the displayed aspect.
        if let Ok(p) = imgfn::placeholder::placeholder(data, &info, &settings.limits) {
            let (w, h, rgba) = thumbhash::thumb_hash_to_rgba(&p.thumbhash).expect("a readable hash");
            assert_eq!(rgba.len(), w * h * 4);
            assert_eq!(p.dominant_hex().len(), 7);
        }
        return;
    }
    let params = request.transform;
    let mut resizer = fast_image_resize::Resizer::new();
    // Animations stay animated as WebP or GIF (every frame through the plan, the animated
    // encoders); a third of the stills go to JPEG (a JPEG reduced into a JPEG runs on its
    // YCbCr planes, `pipeline::planar`), the rest to PNG.
    let format = match (info.animation.is_some(), data.len() % 3) {
        (true, 0) => OutputFormat::Webp,
        (true, 1) => OutputFormat::Gif,
        (false, 2) => OutputFormat::Jpeg,
        _ => OutputFormat::Png,
    };
    let _ = pipeline::render(data, &info, &params, format, &settings, &mut resizer);
});
