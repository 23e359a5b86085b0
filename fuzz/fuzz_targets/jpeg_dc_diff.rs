//! Differential: the DC-only 1/8 JPEG decoder (`jpeg_dc`) against libjpeg-turbo's own 1/8
//! decode, which the pipeline uses whenever jpeg_dc declines. jpeg_dc may decline anything;
//! what it does decode, libjpeg must decode too, to the same size and the same pixels, up to
//! the two places where they differ by design:
//!
//! What libjpeg-turbo does at scale 1/8 (jdmaster.c, jdsample.c of the mozjpeg-sys copy):
//!   - a component whose downsampling ratio `hmax/h` and `vmax/v` are both even (the chroma
//!     of 4:2:0) gets a larger IDCT (2×2 for 4:2:0) instead of being upsampled: its pixels use
//!     AC coefficients, which jpeg_dc skips. Every other component gets the 1×1 IDCT, which is
//!     exactly jpeg_dc's `DC * q0 / 8 + 128`;
//!   - upsampling is plain replication ("fancy" upsampling needs `min_DCT_scaled_size > 1`).
//!
//! jpeg_dc replicates too, except chroma at ratio 2×2 and 2×1, which it interpolates
//! (triangle filter). Both convert YCbCr to RGB with the same JFIF fixed-point arithmetic.
//!
//! Hence the checks, per component, from strict to loose:
//!   1. same width and height, always;
//!   2. every component exact in both (grey, 4:4:4, 4:4:0): every channel of every pixel
//!      within 1 (RGB rounding; 0 expected);
//!   3. otherwise luma, when it is exact in both, recomputed from RGB (BT.601 weights undo
//!      the JFIF conversion, whatever the chroma) within 1.5 per pixel — where a channel
//!      saturated, only the bound that saturation still implies;
//!   4. chroma, recovered from RGB where nothing saturated: libjpeg's average over the pixels
//!      of one chroma block is that block's DC value (replication, or an IDCT whose mean is the
//!      DC term), so jpeg_dc's interpolation of those averages must match jpeg_dc's chroma
//!      within 3.5 (recovery and rounding of both decoders; a wrong block is off by tens).
//!
//! Progressive files (SOF2) are decoded by jpeg_dc from their DC scans alone; their AC scans
//! are stepped over, not decoded. So where libjpeg (warnings fatal, as imgfn runs it) refuses
//! a progressive file jpeg_dc decoded, the file must still decode with libjpeg's warnings
//! ignored and block smoothing off (corrupt AC data then leaves every DC as the DC scans set
//! it), and that decode is the reference: luma and the DC-exact components as above, chroma
//! that libjpeg builds with a larger IDCT from (possibly garbage) AC coefficients unchecked.
//!
//! Set IMGFN_DIFF_STATS=1 to print the largest differences of each input (tuning; corpus runs
//! with -runs=0).
#![no_main]

use imgfn::pipeline::{self, decode::decode_jpeg_libjpeg, jpeg_dc, Pixels};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// Per channel, components jpeg_dc and libjpeg both decode from the DC alone.
const EXACT_TOLERANCE: i32 = 1;
/// Luma recomputed from RGB: each side is within 0.5 of its integer luma.
const LUMA_TOLERANCE: f64 = 1.5;
/// Chroma recovered from RGB (within 0.72 each), libjpeg's IDCT rounding (1), jpeg_dc's (0.5).
const CHROMA_TOLERANCE: f64 = 3.5;

fuzz_target!(|data: &[u8]| {
    let Ok(info) = pipeline::probe(data) else {
        return;
    };
    // The pipeline's preconditions for either decoder: the pixel limit, and a JPEG whose EOI
    // follows its scans (a truncated file is refused before any decoding).
    if u64::from(info.stored.0) * u64::from(info.stored.1) > 4_000_000 || !info.complete {
        return;
    }
    let Some(fast) = jpeg_dc::decode(data) else {
        return;
    };
    assert_eq!(
        fast.buf.len(),
        fast.width as usize * fast.height as usize * 3,
        "jpeg_dc: buffer length"
    );
    let frame = Frame::parse(data).expect("jpeg_dc decoded a file without SOF0/SOF1/SOF2");
    let (reference, strict) = match decode_jpeg_libjpeg(data, 8) {
        Ok(p) => (p, true),
        Err(e) if frame.progressive => match lenient_eighth(data) {
            Some(p) => (p, false),
            None => panic!(
                "jpeg_dc decoded progressive {}x{} but libjpeg fails even ignoring warnings ({e:?})",
                fast.width, fast.height
            ),
        },
        Err(e) => panic!(
            "jpeg_dc decoded {}x{} but libjpeg at 1/8 fails: {e:?}",
            fast.width, fast.height
        ),
    };
    assert!(!reference.alpha && reference.buf.len() == reference.width as usize * reference.height as usize * 3);
    assert_eq!(
        (fast.width, fast.height),
        (reference.width, reference.height),
        "jpeg_dc and libjpeg disagree on the 1/8 size"
    );
    let stats = compare(&frame, &fast, &reference, strict);
    if *STATS.get_or_init(|| std::env::var_os("IMGFN_DIFF_STATS").is_some()) {
        eprintln!(
            "jpeg_dc_diff {}{}x{} sampling {:?}: {} max channel {} mean {:.3}; luma max {:.2} ({} px); chroma max {:.2} ({} px)",
            match (frame.progressive, strict) {
                (false, _) => "",
                (true, true) => "progressive ",
                (true, false) => "progressive (lenient reference) ",
            },
            fast.width,
            fast.height,
            frame.sampling,
            if stats.all_exact { "exact" } else { "interpolated" },
            stats.max_channel,
            stats.mean_channel,
            stats.luma_max,
            stats.luma_checked,
            stats.chroma_max,
            stats.chroma_checked
        );
    }
});

static STATS: OnceLock<bool> = OnceLock::new();

/// libjpeg's 1/8 decode with its warnings ignored (the mozjpeg crate's default error
/// manager) and without block smoothing; `None` when it fails all the same.
fn lenient_eighth(data: &[u8]) -> Option<Pixels> {
    std::panic::catch_unwind(|| {
        let mut d = mozjpeg::Decompress::builder().from_mem(data).ok()?;
        d.scale(1);
        d.do_block_smoothing(false);
        let mut s = d.rgb().ok()?;
        let (w, h) = (s.width(), s.height());
        let buf: Vec<u8> = s.read_scanlines().ok()?;
        let _ = s.finish();
        Some(Pixels { buf, width: w as u32, height: h as u32, alpha: false })
    })
    .ok()
    .flatten()
}

/// The frame header, read independently of imgfn's marker walker (it decoded the file, so
/// this parse succeeds).
struct Frame {
    width: usize,
    height: usize,
    /// (h, v) per component, in SOF order (which is also the colour conversion's order).
    sampling: Vec<(usize, usize)>,
    progressive: bool,
}

impl Frame {
    fn parse(b: &[u8]) -> Option<Frame> {
        let be16 = |i: usize| Some(usize::from(*b.get(i)?) << 8 | usize::from(*b.get(i + 1)?));
        let mut i = 2;
        loop {
            // Fill bytes before a marker; markers without a length (RSTn, TEM) are skipped,
            // as libjpeg does.
            while *b.get(i)? == 0xFF && *b.get(i + 1)? == 0xFF {
                i += 1;
            }
            let marker = *b.get(i + 1)?;
            if matches!(marker, 0x01 | 0xD0..=0xD7) {
                i += 2;
                continue;
            }
            let len = be16(i + 2)?;
            if matches!(marker, 0xC0 | 0xC1 | 0xC2) {
                let seg = b.get(i + 4..i + 2 + len)?;
                let n = usize::from(*seg.get(5)?);
                let mut sampling = Vec::with_capacity(n);
                for c in 0..n {
                    let s = *seg.get(7 + 3 * c)?;
                    sampling.push((usize::from(s >> 4), usize::from(s & 15)));
                }
                return Some(Frame {
                    height: be16(i + 5)?,
                    width: be16(i + 7)?,
                    sampling,
                    progressive: marker == 0xC2,
                });
            }
            if marker == 0xDA {
                return None;
            }
            i += 2 + len;
        }
    }
}

/// How one component reaches the 1/8 image in each decoder.
#[derive(Clone, Copy, PartialEq, Debug)]
struct Layout {
    /// Output pixels per component block (the downsampling ratio).
    fx: usize,
    fy: usize,
    /// libjpeg uses an IDCT larger than 1×1 (the pixels of a block are not all the DC).
    libjpeg_idct: bool,
    /// jpeg_dc interpolates (triangle filter) instead of replicating.
    jpeg_dc_triangle: bool,
}

impl Layout {
    fn of(frame: &Frame, ci: usize) -> Layout {
        let hmax = frame.sampling.iter().map(|s| s.0).max().unwrap_or(1);
        let vmax = frame.sampling.iter().map(|s| s.1).max().unwrap_or(1);
        let (h, v) = frame.sampling[ci];
        let (fx, fy) = if frame.sampling.len() == 1 {
            (1, 1)
        } else {
            (hmax / h, vmax / v)
        };
        Layout {
            fx,
            fy,
            libjpeg_idct: fx % 2 == 0 && fy % 2 == 0,
            jpeg_dc_triangle: ci > 0 && matches!((fx, fy), (2, 2) | (2, 1)),
        }
    }

    fn exact(self) -> bool {
        !self.libjpeg_idct && !self.jpeg_dc_triangle
    }
}

#[derive(Default)]
struct Stats {
    all_exact: bool,
    max_channel: i32,
    mean_channel: f64,
    luma_max: f64,
    luma_checked: usize,
    chroma_max: f64,
    chroma_checked: usize,
}

/// Luma and chroma recomputed from 8-bit RGB (exact inverse of the JFIF conversion, up to
/// the conversion's rounding), and whether a channel is at 0 or 255 (possibly saturated).
#[derive(Clone, Copy)]
struct Ycc {
    y: f64,
    cb: f64,
    cr: f64,
    low: bool,
    high: bool,
}

fn ycc(px: &[u8]) -> Ycc {
    let (r, g, b) = (f64::from(px[0]), f64::from(px[1]), f64::from(px[2]));
    let y = 0.299 * r + 0.587 * g + 0.114 * b;
    Ycc {
        y,
        cb: 128.0 + (b - y) / 1.772,
        cr: 128.0 + (r - y) / 1.402,
        low: px.contains(&0),
        high: px.contains(&255),
    }
}

impl Ycc {
    fn clean(self) -> bool {
        !self.low && !self.high
    }

    /// Bounds on the decoder's luma implied by this pixel. A channel at 255 may have been
    /// larger before clamping, so luma is at least what is seen; at 0 at most.
    fn luma_bounds(self) -> (f64, f64) {
        match (self.low, self.high) {
            (false, false) => (self.y - 0.5, self.y + 0.5),
            (false, true) => (self.y - 0.5, 255.0),
            (true, false) => (0.0, self.y + 0.5),
            (true, true) => (0.0, 255.0),
        }
    }
}

/// `strict`: the reference is libjpeg as imgfn runs it; otherwise its lenient decode of a
/// progressive file, whose chroma from larger IDCTs is not checked.
fn compare(frame: &Frame, fast: &Pixels, reference: &Pixels, strict: bool) -> Stats {
    let (w, h) = (fast.width as usize, fast.height as usize);
    let layouts: Vec<Layout> = (0..frame.sampling.len()).map(|ci| Layout::of(frame, ci)).collect();
    let mut stats = Stats {
        all_exact: layouts.iter().all(|l| l.exact()),
        ..Stats::default()
    };
    let mut sum = 0u64;
    for (i, (&a, &b)) in fast.buf.iter().zip(&reference.buf).enumerate() {
        let d = (i32::from(a) - i32::from(b)).abs();
        sum += d as u64;
        if d > stats.max_channel {
            stats.max_channel = d;
        }
        if stats.all_exact && d > EXACT_TOLERANCE {
            let p = i / 3;
            panic!(
                "pixel ({}, {}) of {w}x{h}, sampling {:?}: jpeg_dc {:?} libjpeg {:?} \
                 (every component is DC-exact here)",
                p % w,
                p / w,
                frame.sampling,
                &fast.buf[p * 3..p * 3 + 3],
                &reference.buf[p * 3..p * 3 + 3]
            );
        }
    }
    stats.mean_channel = sum as f64 / fast.buf.len().max(1) as f64;
    if stats.all_exact {
        return stats;
    }
    let a: Vec<Ycc> = fast.buf.chunks_exact(3).map(ycc).collect();
    let b: Vec<Ycc> = reference.buf.chunks_exact(3).map(ycc).collect();

    // Luma.
    if layouts[0].exact() {
        for (p, (pa, pb)) in a.iter().zip(&b).enumerate() {
            let (alo, ahi) = pa.luma_bounds();
            let (blo, bhi) = pb.luma_bounds();
            let slack = LUMA_TOLERANCE - 1.0;
            if alo > bhi + slack || blo > ahi + slack {
                panic!(
                    "luma at ({}, {}) of {w}x{h}, sampling {:?}: jpeg_dc {:?} (luma {:.1}) \
                     libjpeg {:?} (luma {:.1})",
                    p % w,
                    p / w,
                    frame.sampling,
                    &fast.buf[p * 3..p * 3 + 3],
                    pa.y,
                    &reference.buf[p * 3..p * 3 + 3],
                    pb.y
                );
            }
            if pa.clean() && pb.clean() {
                stats.luma_max = stats.luma_max.max((pa.y - pb.y).abs());
                stats.luma_checked += 1;
            }
        }
    }

    // Chroma: Cb (component 1) and Cr (component 2).
    if layouts.len() == 3 {
        for (ci, l) in layouts.iter().enumerate().skip(1) {
            if !strict && l.libjpeg_idct {
                continue;
            }
            let pick = |c: &Ycc| if ci == 1 { c.cb } else { c.cr };
            let dc = chroma_dc(frame, *l, &b, w, h, pick);
            for y in 0..h {
                for x in 0..w {
                    let pa = a[y * w + x];
                    if !pa.clean() {
                        continue;
                    }
                    let Some(expect) = dc.interpolate(*l, x, y) else {
                        continue;
                    };
                    let got = pick(&pa);
                    let d = (got - expect).abs();
                    stats.chroma_max = stats.chroma_max.max(d);
                    stats.chroma_checked += 1;
                    if d > CHROMA_TOLERANCE {
                        panic!(
                            "{} at ({x}, {y}) of {w}x{h}, sampling {:?}: jpeg_dc {got:.1} \
                             (RGB {:?}), expected {expect:.1} from libjpeg's block averages",
                            if ci == 1 { "Cb" } else { "Cr" },
                            frame.sampling,
                            &fast.buf[(y * w + x) * 3..(y * w + x) * 3 + 3],
                        );
                    }
                }
            }
        }
    }
    stats
}

/// One chroma component's DC values as seen through libjpeg's output, on jpeg_dc's block
/// grid (which includes the blocks of partial MCUs beyond the image).
struct DcGrid {
    bw: usize,
    bh: usize,
    dc: Vec<Option<f64>>,
}

fn chroma_dc(frame: &Frame, l: Layout, px: &[Ycc], w: usize, h: usize, pick: impl Fn(&Ycc) -> f64) -> DcGrid {
    let hmax = frame.sampling.iter().map(|s| s.0).max().unwrap_or(1);
    let vmax = frame.sampling.iter().map(|s| s.1).max().unwrap_or(1);
    // jpeg_dc's plane: whole MCUs (interleaved scan), `hmax / fx` blocks across per MCU.
    let (mcux, mcuy) = (frame.width.div_ceil(8 * hmax), frame.height.div_ceil(8 * vmax));
    let (bw, bh) = (mcux * hmax / l.fx, mcuy * vmax / l.fy);
    let mut dc = vec![None; bw * bh];
    for by in 0..bh {
        for bx in 0..bw {
            let (x0, y0) = (bx * l.fx, by * l.fy);
            let (x1, y1) = ((x0 + l.fx).min(w), (y0 + l.fy).min(h));
            // An IDCT block's mean is its DC only over the whole block; a replicated block
            // is its DC in every visible pixel.
            let visible = if l.libjpeg_idct {
                x0 + l.fx <= w && y0 + l.fy <= h
            } else {
                x0 < w && y0 < h
            };
            if !visible {
                continue;
            }
            let mut sum = 0.0;
            let mut ok = true;
            for y in y0..y1 {
                for x in x0..x1 {
                    let p = px[y * w + x];
                    let c = pick(&p);
                    // A saturated channel, or a sample libjpeg's IDCT may have clamped.
                    if !p.clean() || !(1.0..=254.0).contains(&c) {
                        ok = false;
                    }
                    sum += c;
                }
            }
            if ok {
                dc[by * bw + bx] = Some(sum / ((x1 - x0) * (y1 - y0)) as f64);
            }
        }
    }
    DcGrid { bw, bh, dc }
}

impl DcGrid {
    /// jpeg_dc's value at output pixel (x, y) from these DCs, if all it reads is known.
    fn interpolate(&self, l: Layout, x: usize, y: usize) -> Option<f64> {
        let at = |bx: isize, by: isize| -> Option<f64> {
            let bx = bx.clamp(0, self.bw as isize - 1) as usize;
            let by = by.clamp(0, self.bh as isize - 1) as usize;
            self.dc[by * self.bw + bx]
        };
        let (sx, sy) = ((x / l.fx) as isize, (y / l.fy) as isize);
        if !l.jpeg_dc_triangle {
            return at(sx, sy);
        }
        let nx = if x % 2 == 0 { sx - 1 } else { sx + 1 };
        if l.fy == 2 {
            let ny = if y % 2 == 0 { sy - 1 } else { sy + 1 };
            Some((9.0 * at(sx, sy)? + 3.0 * at(nx, sy)? + 3.0 * at(sx, ny)? + at(nx, ny)?) / 16.0)
        } else {
            Some((3.0 * at(sx, sy)? + at(nx, sy)?) / 4.0)
        }
    }
}
