//! Criterion benches of each pipeline stage and of whole renders, on the photos in
//! `testdata/`. Fixtures are loaded and decoded once, outside the timed loops.
//!
//! `cargo bench` runs them all (`--features nasm,heic` adds the HEIC decode); `cargo bench --
//! decode/` the decoders of every input format, `-- resize/` only the resize core, `-- step/` the
//! steps after it, `-- attention` `gravity=auto`'s search, `-- placeholder` the ThumbHash and
//! dominant colour of an original. Ids are stable (`stage/what/input->output`) so results can be compared
//! across commits.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use fast_image_resize::Resizer;
use imgfn::params::{ImageRequest, Output, OutputFormat};
use imgfn::params::{Rgba, Trim};
use imgfn::pipeline::steps::{trim, Context, Flatten, Orient, Pad, Step};
use imgfn::pipeline::{
    self, decode, encode, resize, EncodeOptions, Orientation, Pixels, Rect, Settings,
};
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

struct Fixture {
    id: &'static str,
    bytes: Vec<u8>,
}

fn load(id: &'static str, file: &str) -> Fixture {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Fixture { id, bytes }
}

fn decoded(f: &Fixture) -> Pixels {
    let info = pipeline::probe(&f.bytes).expect("probe");
    decode::decode(&f.bytes, &info, 1).expect("decode")
}

fn full(p: &Pixels) -> Rect {
    Rect {
        x: 0.0,
        y: 0.0,
        w: f64::from(p.width),
        h: f64::from(p.height),
    }
}

fn target(p: &Pixels, width: u32) -> (u32, u32) {
    let h = (f64::from(p.height) * f64::from(width) / f64::from(p.width)).round() as u32;
    (width, h.max(1))
}

fn bench_decode(c: &mut Criterion) {
    let large = load("20mp", "large.jpg");
    let info = pipeline::probe(&large.bytes).expect("probe");
    let mut g = c.benchmark_group("decode");
    g.measurement_time(Duration::from_secs(8)).sample_size(20);
    for shrink in [1u32, 2, 4, 8] {
        g.bench_function(
            BenchmarkId::new(format!("jpeg/{}", large.id), format!("1/{shrink}")),
            |b| b.iter(|| decode::decode(black_box(&large.bytes), &info, shrink).expect("decode")),
        );
    }
    // The same 1/8 decode by libjpeg-turbo alone: `1/8` above is the DC-only decoder
    // (`jpeg_dc`), and the README's comparison of the two is these two ids.
    g.bench_function(
        BenchmarkId::new(format!("jpeg/{}", large.id), "1/8-libjpeg"),
        |b| {
            b.iter(|| {
                decode::decode_with(black_box(&large.bytes), &info, 8, false).expect("decode")
            })
        },
    );
    let png = load("2.3mp-rgba", "alpha.png");
    let png_info = pipeline::probe(&png.bytes).expect("probe");
    g.bench_function(format!("png/{}", png.id), |b| {
        b.iter(|| decode::decode(black_box(&png.bytes), &png_info, 1).expect("decode"))
    });
    // The same 2.5 MP photo (1920x1280) in every input format, decoded whole (colour
    // conversion included): medium.jpg, and testdata/bench/ made from it by avifenc, cjxl
    // and pillow-heif (see testdata/SOURCES.md); the TIFF is written here by the `image` crate
    // (uncompressed 8-bit RGB).
    let jpeg = load("2.5mp", "medium.jpg");
    let mut tiff = Vec::new();
    decode_image(&jpeg.bytes)
        .write_to(
            &mut std::io::Cursor::new(&mut tiff),
            image::ImageFormat::Tiff,
        )
        .expect("tiff");
    let mut photos = vec![
        ("jpeg", jpeg.bytes.clone()),
        ("avif", load("2.5mp", "bench/medium.avif").bytes),
        ("jxl", load("2.5mp", "bench/medium.jxl").bytes),
        ("tiff", tiff),
    ];
    if cfg!(feature = "heic") {
        photos.push(("heic", load("2.5mp", "bench/medium.heic").bytes));
    }
    for (format, bytes) in &photos {
        let info = pipeline::probe(bytes).expect("probe");
        g.bench_function(BenchmarkId::new(format!("{format}/2.5mp"), "1/1"), |b| {
            b.iter(|| decode::decode(black_box(bytes), &info, 1).expect("decode"))
        });
    }
    g.finish();
}

/// A JPEG decoded by the `image` crate (for writing other formats from it).
fn decode_image(bytes: &[u8]) -> image::DynamicImage {
    image::load_from_memory(bytes).expect("decode")
}

fn bench_resize(c: &mut Criterion) {
    let large = load("20mp", "large.jpg");
    let src = decoded(&large);
    let alpha = decoded(&load("2.3mp-rgba", "alpha.png"));
    let mut g = c.benchmark_group("resize");
    g.sample_size(20);
    let mut resizer = Resizer::new();
    for width in [400u32, 1200] {
        g.throughput(Throughput::Elements(
            u64::from(src.width) * u64::from(src.height),
        ));
        g.bench_function(format!("lanczos3/{}->{width}", large.id), |b| {
            // The 60 MB source copy is made in the untimed setup; only the resize is timed.
            b.iter_batched(
                || src.clone(),
                |s| {
                    resize::resize(&mut resizer, black_box(s), full(&src), target(&src, width))
                        .expect("resize")
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.bench_function("lanczos3/2.3mp-rgba->400", |b| {
        b.iter_batched(
            || alpha.clone(),
            |a| {
                resize::resize(
                    &mut resizer,
                    black_box(a),
                    full(&alpha),
                    target(&alpha, 400),
                )
                .expect("resize")
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// Each step after the resize on a 400x300 thumbnail, run as a render runs it (`Step::run`).
/// The effect step a query plans for a 400x300 thumbnail (blur, sharpen, ...).
fn effect(query: &str) -> Step {
    let t = ImageRequest::parse(Some(query)).expect("query").transform;
    imgfn::pipeline::steps::EFFECTS
        .iter()
        .find_map(|plan| plan(&t, (400, 300)))
        .map(Step::Effect)
        .expect("an effect")
}

fn bench_steps(c: &mut Criterion) {
    let photo = decoded(&load("2.5mp", "medium.jpg"));
    let mut resizer = Resizer::new();
    let whole = full(&photo);
    let rgb = resize::resize(&mut resizer, photo, whole, (400, 300)).expect("resize");
    let alpha = decoded(&load("2.3mp-rgba", "alpha.png"));
    let rgba =
        resize::resize(&mut resizer, alpha.clone(), full(&alpha), (400, 300)).expect("resize");
    let translucent = Rgba([255, 255, 255, 0]);
    let cases = [
        (
            "orient/400x300",
            Step::Orient(Orient {
                orientation: Orientation::rotate(90).expect("90"),
            }),
            &rgb,
        ),
        (
            "pad/400x300->400x400",
            Step::Pad(Pad {
                canvas: (400, 400),
                offset: (0, 50),
                background: translucent,
            }),
            &rgb,
        ),
        (
            "flatten/400x300-rgba",
            Step::Flatten(Flatten {
                background: Rgba([255, 255, 255, 255]),
            }),
            &rgba,
        ),
        ("blur/400x300-sigma2", effect("blur=2"), &rgb),
        ("blur/400x300-sigma20", effect("blur=20"), &rgb),
        ("sharpen/400x300-sigma1", effect("sharpen=1"), &rgb),
    ];
    let mut g = c.benchmark_group("step");
    g.sample_size(50);
    for (id, step, input) in cases {
        g.bench_function(id, |b| {
            b.iter_batched(
                || input.clone(),
                |px| {
                    let mut cx = Context {
                        resizer: &mut resizer,
                    };
                    step.run(black_box(px), &mut cx).expect("step")
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

/// `trim`'s border search (`steps::trim::content_box`) on the decodes a render gives it:
/// medium.jpg whole in a 64-pixel white frame (the search reads the frame's rows and
/// columns and stops at the first content), and the same with no frame (the cheapest: one
/// pixel of each side).
fn bench_trim(c: &mut Criterion) {
    let photo = decoded(&load("2.5mp", "medium.jpg"));
    let frame = 64u32;
    let (w, h) = (photo.width + 2 * frame, photo.height + 2 * frame);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    for y in 0..photo.height {
        let from = (y * photo.width * 3) as usize;
        let to = (((y + frame) * w + frame) * 3) as usize;
        let len = (photo.width * 3) as usize;
        buf[to..to + len].copy_from_slice(&photo.buf[from..from + len]);
    }
    let framed = Pixels {
        buf,
        width: w,
        height: h,
        alpha: false,
    };
    let white = Trim {
        threshold: 10,
        colour: None,
    };
    let mut g = c.benchmark_group("trim");
    g.sample_size(50);
    for (id, px) in [
        ("2.5mp-framed/2048x1408", &framed),
        ("2.5mp-unframed/1920x1280", &photo),
    ] {
        let area = full(px);
        g.bench_function(id, |b| {
            b.iter(|| trim::content_box(black_box(px), area, white))
        });
    }
    g.finish();
}

/// `gravity=auto`'s search (`attention`) on the decodes a render gives it: large.jpg at 1/8
/// (what a thumbnail of it decodes), medium.jpg whole, and large.jpg whole (20 MP, the worst
/// case: the sampling keeps it as cheap as the small ones).
fn bench_attention(c: &mut Criterion) {
    let large = load("20mp", "large.jpg");
    let info = pipeline::probe(&large.bytes).expect("probe");
    let eighth = decode::decode(&large.bytes, &info, 8).expect("decode");
    let medium = decoded(&load("2.5mp", "medium.jpg"));
    let whole = decoded(&large);
    // (id, pixels, window as a fraction of the width and height)
    let cases = [
        ("20mp-1of8/754x424->424x424", &eighth, (424.0 / 754.0, 1.0)),
        ("20mp-1of8/754x424->239x424", &eighth, (239.0 / 754.0, 1.0)),
        ("2.5mp/1920x1280->853x1280", &medium, (853.0 / 1920.0, 1.0)),
        ("2.5mp/1920x1280->1920x640", &medium, (1.0, 0.5)),
        ("20mp/6028x3391->3391x3391", &whole, (3391.0 / 6028.0, 1.0)),
    ];
    let mut g = c.benchmark_group("attention");
    g.sample_size(50);
    for (id, px, (fw, fh)) in cases {
        let area = full(px);
        let window = (area.w * fw, area.h * fh);
        g.bench_function(id, |b| {
            b.iter(|| pipeline::attention::attention(black_box(px), area, window))
        });
    }
    g.finish();
}

/// A placeholder (`fmt=thumbhash`, `fmt=json`, the gallery listing): the smallest decode,
/// the downscale to 100 px as displayed, the hash and the dominant colour, from the bytes.
fn bench_placeholder(c: &mut Criterion) {
    let limits = pipeline::Limits::default();
    let mut g = c.benchmark_group("placeholder");
    g.measurement_time(Duration::from_secs(6)).sample_size(20);
    for (format, f) in [
        ("jpeg", load("20mp", "large.jpg")),
        ("png", load("1800x1280-rgba", "alpha.png")),
        ("png", load("400x267-rgb16", "deep.png")),
    ] {
        let info = pipeline::probe(&f.bytes).expect("probe");
        g.bench_function(format!("{format}/{}", f.id), |b| {
            b.iter(|| {
                imgfn::placeholder::placeholder(black_box(&f.bytes), &info, &limits)
                    .expect("placeholder")
            })
        });
    }
    // The hash alone, on the 100x56 image the 20 MP photo is fitted to.
    let large = load("20mp", "large.jpg");
    let info = pipeline::probe(&large.bytes).expect("probe");
    let thumb = imgfn::placeholder::sample(&large.bytes, &info, &limits)
        .expect("sample")
        .thumb;
    g.bench_function("thumbhash/100x56", |b| {
        b.iter(|| imgfn::placeholder::encode(black_box(&thumb)))
    });
    g.finish();
}

fn bench_encode(c: &mut Criterion) {
    let src = decoded(&load("20mp", "large.jpg"));
    let mut resizer = Resizer::new();
    let thumb =
        resize::resize(&mut resizer, src.clone(), full(&src), target(&src, 400)).expect("resize");
    let mut g = c.benchmark_group("encode");
    g.sample_size(20);
    for (fmt, q) in [
        (OutputFormat::Jpeg, 80),
        (OutputFormat::Webp, 80),
        (OutputFormat::Avif, 60),
        (OutputFormat::Png, 100),
    ] {
        g.bench_function(format!("{}/400px-q{q}", fmt.name()), |b| {
            b.iter(|| {
                encode::encode(black_box(&thumb), fmt, q, EncodeOptions::default()).expect("encode")
            })
        });
    }
    g.finish();
}

/// The conversion to sRGB of a decoded image with an embedded profile (the transform built
/// and cached before the timed loop, as after a service's first request): at a thumbnail's
/// size and at the 1/8 decode of the 20 MP photo.
fn bench_colour(c: &mut Criterion) {
    use imgfn::pipeline::colour::{to_srgb, Profile};
    let large = load("20mp", "large.jpg");
    let info = pipeline::probe(&large.bytes).expect("probe");
    let eighth = decode::decode(&large.bytes, &info, 8).expect("decode");
    let mut resizer = Resizer::new();
    let thumb = resize::resize(
        &mut resizer,
        eighth.clone(),
        full(&eighth),
        target(&eighth, 400),
    )
    .expect("resize");
    let adobe = Profile::Icc(
        moxcms::ColorProfile::new_adobe_rgb()
            .encode()
            .expect("profile"),
    );
    let p3 = Profile::Cicp {
        primaries: 12,
        transfer: 13,
    };
    let mut g = c.benchmark_group("colour");
    for (name, profile) in [("adobe-rgb", &adobe), ("display-p3", &p3)] {
        for (size, px) in [("400px", &thumb), ("20mp-1/8", &eighth)] {
            to_srgb(&mut px.clone(), Some(profile));
            let id = format!("{name}/{size}-{}x{}", px.width, px.height);
            g.bench_function(id, |b| {
                b.iter_batched_ref(
                    || px.clone(),
                    |p| to_srgb(black_box(p), Some(profile)),
                    BatchSize::SmallInput,
                )
            });
        }
    }
    g.finish();
}

/// large.jpg made progressive by `jpegtran -progressive` (libjpeg's script: DC with successive
/// approximation, then AC bands; the same coefficients), written once under target/ rather
/// than committed (4 MB more). `None`, said loudly, without jpegtran (Debian: libjpeg-turbo-progs).
fn progressive_large() -> Option<Fixture> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("target/bench-large-progressive.jpg");
    if !out.exists() {
        let partial = out.with_extension("partial");
        let made = std::process::Command::new("jpegtran")
            .arg("-progressive")
            .arg("-outfile")
            .arg(&partial)
            .arg(root.join("testdata/large.jpg"))
            .status();
        if !matches!(made, Ok(s) if s.success()) || std::fs::rename(&partial, &out).is_err() {
            eprintln!("jpegtran failed or is missing ({made:?}): no render/20mp-progressive bench");
            return None;
        }
    }
    let bytes = std::fs::read(&out).expect("progressive fixture");
    Some(Fixture {
        id: "20mp-progressive",
        bytes,
    })
}

fn bench_end_to_end(c: &mut Criterion) {
    let cases = [
        (
            load("20mp", "large.jpg"),
            "w=400&fmt=jpeg&q=80",
            "20mp->400/jpeg",
        ),
        (
            load("20mp", "large.jpg"),
            "w=400&fmt=jpeg&q=80&lin=1",
            "20mp->400/jpeg-lin",
        ),
        (
            load("2.5mp", "medium.jpg"),
            "w=400&fmt=jpeg&q=80",
            "2.5mp->400/jpeg",
        ),
        (
            load("2.5mp", "medium.jpg"),
            "w=400&fmt=jpeg&q=80&lin=1",
            "2.5mp->400/jpeg-lin",
        ),
        (
            load("20mp", "large.jpg"),
            "w=400&fmt=webp&q=80",
            "20mp->400/webp",
        ),
        (
            load("20mp", "large.jpg"),
            "w=400&fmt=avif",
            "20mp->400/avif",
        ),
        (
            load("2.5mp", "medium.jpg"),
            "w=1200&fmt=jpeg&q=80",
            "2.5mp->1200/jpeg",
        ),
        (
            load("2.3mp-rgba", "alpha.png"),
            "w=400&fmt=webp",
            "2.3mp-rgba->400/webp",
        ),
        // Animations rendered animated: every frame decoded, resized and encoded.
        (
            load("anim-gif", "animated.gif"),
            "w=100&fmt=webp",
            "anim-gif-3f->100/webp",
        ),
        (
            load("anim-gif", "animated.gif"),
            "w=100&fmt=gif",
            "anim-gif-3f->100/gif",
        ),
        (
            load("anim-gif-alpha", "animated-disposal.gif"),
            "w=80&fmt=webp",
            "anim-gif-6f-alpha->80/webp",
        ),
    ];
    let mut cases = Vec::from(cases);
    // The first case again with libjpeg-turbo doing the 1/8 decode, beside the DC-only path;
    // so is the same photo made progressive (jpeg_dc reads its DC scans only).
    let mut with_libjpeg = vec![0];
    if let Some(progressive) = progressive_large() {
        cases.push((
            progressive,
            "w=400&fmt=jpeg&q=80",
            "20mp-progressive->400/jpeg",
        ));
        with_libjpeg.push(cases.len() - 1);
    }
    let settings = Settings::default();
    let libjpeg = Settings {
        force_libjpeg: true,
        ..Settings::default()
    };
    let mut resizer = Resizer::new();
    let mut g = c.benchmark_group("render");
    g.measurement_time(Duration::from_secs(8)).sample_size(20);
    let cases = cases
        .iter()
        .map(|c| (c, &settings))
        .chain(with_libjpeg.iter().map(|&i| (&cases[i], &libjpeg)));
    for ((fixture, query, id), settings) in cases {
        let request = ImageRequest::parse(Some(query)).expect("params");
        let Output::Exact(format) = request.output else {
            unreachable!("bench queries name a format")
        };
        let params = request.transform;
        let id = if settings.force_libjpeg {
            format!("{id}-libjpeg")
        } else {
            id.to_string()
        };
        g.bench_function(id, |b| {
            b.iter(|| {
                let info = pipeline::probe(black_box(&fixture.bytes)).expect("probe");
                pipeline::render(
                    &fixture.bytes,
                    &info,
                    &params,
                    format,
                    settings,
                    &mut resizer,
                )
                .expect("render")
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_resize,
    bench_decode,
    bench_steps,
    bench_trim,
    bench_attention,
    bench_placeholder,
    bench_encode,
    bench_colour,
    bench_end_to_end
);
criterion_main!(benches);
