//! Saliency crop (`gravity=auto`): where a cover crop's window keeps the most interesting
//! part of an image, after libvips' "attention" strategy (`vips_smartcrop`).
//!
//! As libvips does, the area is brought down to a [`THUMB`] x [`THUMB`] thumbnail (whatever
//! its aspect ratio: the window is then placed to a 32nd of the area on each axis): a box
//! average onto twice that size (at most [`SAMPLES`]² samples a cell, so a 20 MP decode costs
//! what a small one does), then a Lanczos-3 halving. Each thumbnail pixel is scored as
//! libvips scores it: edges (the Laplacian of luminance, times 5), skin tones (how close the
//! direction of its XYZ colour is to a skin direction) and red-green saturation (CIELAB a*),
//! the last two only where the luminance is above 5 % (dark is not interesting). Alpha is
//! premultiplied first, as libvips does, so transparent pixels are dark and score nothing.
//! The scores are blurred in proportion to the window (a tenth of its diagonal on the
//! thumbnail), and the window is centred on the maximum, then clamped into the area.
//!
//! Why the maximum and not the window with the largest sum (a summed-area table): against
//! libvips on real photos (tests/api/attention.rs) the largest-sum window is off by a fifth
//! of the free range on average, the centred maximum by a twentieth.
//!
//! Everything is arithmetic on the small grids: scratch memory is a few of them, the
//! function never panics, and any degenerate input (empty or non-finite area, a window as
//! large as the area) gets the area's top-left.

use super::{Pixels, Rect};

/// Pixels on each side of the thumbnail that is scored (libvips': 32).
const THUMB: usize = 32;
/// Samples along each axis of a box-average cell, at most (strata centres).
const SAMPLES: usize = 8;
/// The direction of skin tones in XYZ (libvips takes it from smartcrop.js).
const SKIN: [f32; 3] = [0.78, 0.57, 0.44];
/// CIE D65 white in XYZ, Y = 100.
const WHITE: [f32; 3] = [95.047, 100.0, 108.883];

/// The top-left `(x, y)` of a `window`-sized crop inside `area` (both in `px`'s
/// coordinates) that keeps the most interesting part of `px`. Always inside `area`: the
/// window may move only where it is smaller than the area.
pub fn attention(px: &Pixels, area: Rect, window: (f64, f64)) -> (f64, f64) {
    let origin = (finite_or_zero(area.x), finite_or_zero(area.y));
    let sizes = [area.w, area.h, window.0, window.1];
    if !sizes.iter().all(|v| v.is_finite() && *v >= 0.0) || origin != (area.x, area.y) {
        return origin;
    }
    let free = (area.w - window.0, area.h - window.1);
    // `!(a > 0)` also catches NaN.
    if !(free.0 > 0.0 || free.1 > 0.0) {
        return origin;
    }
    let free = (free.0.max(0.0), free.1.max(0.0));
    let Some(grid) = Grid::sample(px, area) else {
        return origin;
    };
    let grid = grid.shrink(THUMB);
    let sigma = blur_sigma(area, window, grid.w, grid.h);
    let map = blur(&grid.saliency(), grid.w, grid.h, sigma);
    let (i, j) = peak(&map, grid.w, grid.h);
    // Back to pixels: centre the window on the peak's cell, clamped to the free range.
    let cx = (i as f64 + 0.5) / grid.w as f64 * area.w;
    let cy = (j as f64 + 0.5) / grid.h as f64 * area.h;
    let left = (cx - window.0 / 2.0).clamp(0.0, free.0);
    let top = (cy - window.1 / 2.0).clamp(0.0, free.1);
    (origin.0 + left, origin.1 + top)
}

fn finite_or_zero(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// The area averaged onto `w` x `h` cells: premultiplied sRGB, 0–255.
struct Grid {
    w: usize,
    h: usize,
    rgb: Vec<[f32; 3]>,
}

impl Grid {
    /// `None` when the area holds no pixel of `px` or `px` is inconsistent.
    fn sample(px: &Pixels, area: Rect) -> Option<Grid> {
        let (width, height) = (px.width as usize, px.height as usize);
        let channels = if px.alpha { 4 } else { 3 };
        let row = width.checked_mul(channels)?;
        if px.buf.len() < row.checked_mul(height)? {
            return None;
        }
        let x0 = pixel_floor(area.x, width);
        let x1 = pixel_ceil(area.x + area.w, width);
        let y0 = pixel_floor(area.y, height);
        let y1 = pixel_ceil(area.y + area.h, height);
        if x1 <= x0 || y1 <= y0 {
            return None;
        }
        let (aw, ah) = (x1 - x0, y1 - y0);
        // Twice the thumbnail, as libvips' resize box-shrinks before its Lanczos reduction.
        let (gw, gh) = (aw.min(2 * THUMB), ah.min(2 * THUMB));
        let xs = strata(x0, aw, gw);
        let ys = strata(y0, ah, gh);
        let mut rgb = vec![[0f32; 3]; gw * gh];
        for (j, rows) in ys.iter().enumerate() {
            for (i, cols) in xs.iter().enumerate() {
                let mut sum = [0u32; 3];
                for &y in rows {
                    let line = px.buf.get(y * row..(y + 1) * row)?;
                    for &x in cols {
                        let p = line.get(x * channels..(x + 1) * channels)?;
                        let a = if px.alpha { u32::from(p[3]) } else { 255 };
                        for c in 0..3 {
                            sum[c] += u32::from(p[c]) * a;
                        }
                    }
                }
                let n = (rows.len() * cols.len()) as f32 * 255.0;
                rgb[j * gw + i] = sum.map(|s| s as f32 / n);
            }
        }
        Some(Grid { w: gw, h: gh, rgb })
    }

    /// Lanczos-3 down to at most `size` x `size` (never up).
    fn shrink(self, size: usize) -> Grid {
        let (w, h) = (self.w.min(size), self.h.min(size));
        let horizontal = lanczos(self.w, w);
        let mut tmp = Vec::with_capacity(w * self.h);
        for j in 0..self.h {
            for taps in &horizontal {
                tmp.push(weigh(taps, |i| self.rgb[j * self.w + i]));
            }
        }
        let vertical = lanczos(self.h, h);
        let mut rgb = Vec::with_capacity(w * h);
        for taps in &vertical {
            for i in 0..w {
                rgb.push(weigh(taps, |j| tmp[j * w + i]));
            }
        }
        Grid { w, h, rgb }
    }

    /// libvips' per-pixel score: edges + skin + saturation.
    fn saliency(&self) -> Vec<f32> {
        let xyz: Vec<[f32; 3]> = self.rgb.iter().map(|&c| to_xyz(c)).collect();
        let luma = |i: usize, j: usize| xyz[j * self.w + i][1];
        let mut map = Vec::with_capacity(xyz.len());
        for j in 0..self.h {
            for i in 0..self.w {
                let y = luma(i, j);
                // Borders repeat the edge cell (libvips extends by copying).
                let laplacian = 4.0 * y
                    - luma(i.saturating_sub(1), j)
                    - luma((i + 1).min(self.w - 1), j)
                    - luma(i, j.saturating_sub(1))
                    - luma(i, (j + 1).min(self.h - 1));
                let mut score = (5.0 * laplacian).abs();
                if y > 5.0 {
                    let c = xyz[j * self.w + i];
                    score += skin(c) + lab_a(c);
                }
                map.push(score);
            }
        }
        map
    }
}

/// The first pixel index at or after `v`, within `0..=len`.
fn pixel_floor(v: f64, len: usize) -> usize {
    if v.is_nan() {
        return 0;
    }
    v.floor().clamp(0.0, len as f64) as usize
}

/// The pixel index just past `v`, within `0..=len`.
fn pixel_ceil(v: f64, len: usize) -> usize {
    if v.is_nan() {
        return 0;
    }
    v.ceil().clamp(0.0, len as f64) as usize
}

/// For each of `cells` equal strata of `start..start + len`, the centres of at most
/// [`SAMPLES`] equal sub-strata (never empty: `cells <= len`).
fn strata(start: usize, len: usize, cells: usize) -> Vec<Vec<usize>> {
    (0..cells)
        .map(|c| {
            let a = c * len / cells;
            let b = ((c + 1) * len / cells).max(a + 1);
            let n = (b - a).min(SAMPLES);
            (0..n)
                .map(|k| start + a + ((2 * k + 1) * (b - a)) / (2 * n))
                .collect()
        })
        .collect()
}

/// sRGB 0–255 to CIE XYZ with Y = 100 for white (D65).
fn to_xyz(c: [f32; 3]) -> [f32; 3] {
    let [r, g, b] = c.map(|v| {
        let v = v / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    });
    [
        100.0 * (0.4124 * r + 0.3576 * g + 0.1805 * b),
        100.0 * (0.2126 * r + 0.7152 * g + 0.0722 * b),
        100.0 * (0.0193 * r + 0.1192 * g + 0.9505 * b),
    ]
}

/// 100 where the colour's direction is skin's, falling by 100 per unit of distance.
fn skin(c: [f32; 3]) -> f32 {
    let norm = (c[0] * c[0] + c[1] * c[1] + c[2] * c[2]).sqrt();
    if norm <= 0.0 {
        return 0.0;
    }
    let d: f32 = (0..3).map(|k| (c[k] / norm - SKIN[k]).powi(2)).sum();
    100.0 - 100.0 * d.sqrt()
}

/// CIELAB a* (red positive, green negative) of an XYZ colour.
fn lab_a(c: [f32; 3]) -> f32 {
    let f = |t: f32| {
        if t > 216.0 / 24389.0 {
            t.cbrt()
        } else {
            (24389.0 / 27.0 * t + 16.0) / 116.0
        }
    };
    500.0 * (f(c[0] / WHITE[0]) - f(c[1] / WHITE[1]))
}

/// The blur libvips applies (in cells of this grid, per axis): a tenth of the window's
/// diagonal on a 32x32 thumbnail, at least one thumbnail pixel.
fn blur_sigma(area: Rect, window: (f64, f64), gw: usize, gh: usize) -> (f32, f32) {
    let (u, v) = (32.0 * window.0 / area.w, 32.0 * window.1 / area.h);
    let sigma = ((u * u + v * v).sqrt() / 10.0).max(1.0);
    (
        (sigma * gw as f64 / 32.0) as f32,
        (sigma * gh as f64 / 32.0) as f32,
    )
}

/// A separable Gaussian blur with the borders extended by copying.
fn blur(map: &[f32], w: usize, h: usize, (sx, sy): (f32, f32)) -> Vec<f32> {
    let kx = kernel(sx, w);
    let ky = kernel(sy, h);
    let mut tmp = vec![0f32; map.len()];
    for j in 0..h {
        for i in 0..w {
            tmp[j * w + i] = tap(&kx, i, w, |k| map[j * w + k]);
        }
    }
    let mut out = vec![0f32; map.len()];
    for j in 0..h {
        for i in 0..w {
            out[j * w + i] = tap(&ky, j, h, |k| tmp[k * w + i]);
        }
    }
    out
}

/// Normalised Gaussian weights for offsets `-r..=r`, r at most the axis length.
fn kernel(sigma: f32, len: usize) -> Vec<f32> {
    if sigma.is_nan() || sigma <= 0.0 {
        return vec![1.0];
    }
    let r = ((3.0 * sigma).ceil() as usize).min(len);
    let w: Vec<f32> = (0..=2 * r)
        .map(|k| {
            let d = k as f32 - r as f32;
            (-d * d / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    let sum: f32 = w.iter().sum();
    w.into_iter().map(|v| v / sum).collect()
}

fn tap(kernel: &[f32], at: usize, len: usize, get: impl Fn(usize) -> f32) -> f32 {
    let r = kernel.len() / 2;
    kernel
        .iter()
        .enumerate()
        .map(|(k, &wt)| {
            let i = (at + k).saturating_sub(r).min(len - 1);
            wt * get(i)
        })
        .sum()
}

/// The cell with the largest value; ties go to the one nearest the grid's centre (a flat
/// image keeps the centred window).
fn peak(map: &[f32], w: usize, h: usize) -> (usize, usize) {
    let centre = (w as f32 / 2.0 - 0.5, h as f32 / 2.0 - 0.5);
    let mut best = (f32::NEG_INFINITY, f32::INFINITY, (0, 0));
    for j in 0..h {
        for i in 0..w {
            let v = map[j * w + i];
            let off = (i as f32 - centre.0).abs() + (j as f32 - centre.1).abs();
            if v > best.0 || (v == best.0 && off < best.1) {
                best = (v, off, (i, j));
            }
        }
    }
    best.2
}

/// For each of `to` outputs over `from` inputs (`to <= from`), the Lanczos-3 taps
/// `(input, weight)`, weights summing to one, borders extended by copying.
fn lanczos(from: usize, to: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = from as f64 / to.max(1) as f64;
    let support = 3.0 * scale;
    (0..to)
        .map(|k| {
            let centre = (k as f64 + 0.5) * scale;
            let lo = (centre - support).floor() as i64;
            let hi = (centre + support).ceil() as i64;
            let mut taps: Vec<(usize, f32)> = (lo..=hi)
                .filter_map(|i| {
                    let wt = lanczos3((i as f64 + 0.5 - centre) / scale);
                    let at = i.clamp(0, from as i64 - 1) as usize;
                    (wt != 0.0).then_some((at, wt as f32))
                })
                .collect();
            let sum: f32 = taps.iter().map(|t| t.1).sum();
            if sum.abs() > f32::EPSILON {
                taps.iter_mut().for_each(|t| t.1 /= sum);
            } else {
                taps = vec![(((centre as usize).min(from.saturating_sub(1))), 1.0)];
            }
            taps
        })
        .collect()
}

fn lanczos3(x: f64) -> f64 {
    if x == 0.0 {
        return 1.0;
    }
    if x.abs() >= 3.0 {
        return 0.0;
    }
    let px = std::f64::consts::PI * x;
    3.0 * px.sin() * (px / 3.0).sin() / (px * px)
}

fn weigh(taps: &[(usize, f32)], get: impl Fn(usize) -> [f32; 3]) -> [f32; 3] {
    let mut out = [0f32; 3];
    for &(i, wt) in taps {
        let v = get(i);
        for c in 0..3 {
            out[c] += wt * v[c];
        }
    }
    // Lanczos rings are kept (not clipped to 0–255): on large.jpg clipping them moves the
    // peak to where libvips does not put it.
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rect(x: f64, y: f64, w: f64, h: f64) -> Rect {
        Rect { x, y, w, h }
    }

    /// A flat grey image with a bright, textured (checkered) patch at `patch`.
    fn patch_image(w: u32, h: u32, patch: (u32, u32, u32, u32)) -> Pixels {
        Pixels::rgb_from_fn(w, h, |x, y| {
            let inside =
                x >= patch.0 && x < patch.0 + patch.2 && y >= patch.1 && y < patch.1 + patch.3;
            if !inside {
                [90, 90, 90]
            } else if (x / 4 + y / 4) % 2 == 0 {
                [250, 200, 40]
            } else {
                [20, 60, 200]
            }
        })
    }

    fn contains(outer: (f64, f64, f64, f64), inner: (u32, u32, u32, u32)) -> bool {
        let (x, y, w, h) = outer;
        let (ix, iy, iw, ih) = (
            inner.0 as f64,
            inner.1 as f64,
            inner.2 as f64,
            inner.3 as f64,
        );
        x <= ix && y <= iy && ix + iw <= x + w && iy + ih <= y + h
    }

    #[test]
    fn a_textured_patch_on_a_flat_background_is_kept() {
        // (image, patch, window): the patch near each side, tall and wide windows.
        let cases = [
            ((600, 300), (40, 100, 80, 80), (200.0, 300.0)),
            ((600, 300), (480, 120, 80, 80), (200.0, 300.0)),
            ((300, 600), (100, 30, 80, 80), (300.0, 200.0)),
            ((300, 600), (110, 500, 80, 80), (300.0, 200.0)),
            ((800, 800), (600, 620, 100, 100), (300.0, 300.0)),
        ];
        for ((w, h), patch, window) in cases {
            let px = patch_image(w, h, patch);
            let area = rect(0.0, 0.0, w as f64, h as f64);
            let (x, y) = attention(&px, area, window);
            assert!(
                contains((x, y, window.0, window.1), patch),
                "{w}x{h} patch {patch:?} window {window:?}: got ({x}, {y})"
            );
        }
    }

    #[test]
    fn the_patch_is_found_inside_a_sub_area() {
        // The area excludes the image's left half; the patch is at its right end.
        let px = patch_image(1000, 300, (850, 100, 80, 80));
        let area = rect(500.0, 0.0, 500.0, 300.0);
        let (x, y) = attention(&px, area, (200.0, 300.0));
        assert!(
            contains((x, y, 200.0, 300.0), (850, 100, 80, 80)),
            "({x}, {y})"
        );
        assert!((500.0..=800.0).contains(&x) && y == 0.0, "({x}, {y})");
    }

    #[test]
    fn transparent_pixels_are_not_interesting() {
        // A large busy checkerboard, fully transparent, on the left; an opaque black
        // background (premultiplied transparent is black too: no edge between them) with a
        // small opaque checkered patch at the right. Only the patch is visible.
        let (w, h) = (600u32, 200u32);
        let mut buf = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let on = (x / 16 + y / 16) % 2 == 0;
                let checker = if on { [255, 230, 0] } else { [0, 0, 255] };
                let patch = (480..560).contains(&x) && (60..140).contains(&y);
                let (v, a) = match x {
                    0..200 => (checker, 0),
                    _ if patch => (checker, 255),
                    _ => ([0, 0, 0], 255),
                };
                buf.extend_from_slice(&[v[0], v[1], v[2], a]);
            }
        }
        let px = Pixels {
            buf,
            width: w,
            height: h,
            alpha: true,
        };
        let (x, _) = attention(&px, rect(0.0, 0.0, 600.0, 200.0), (200.0, 200.0));
        assert!((360.0..=400.0).contains(&x), "{x}");
    }

    #[test]
    fn a_window_as_large_as_the_area_gets_its_top_left() {
        let px = patch_image(300, 200, (200, 100, 50, 50));
        for area in [rect(0.0, 0.0, 300.0, 200.0), rect(10.5, 20.0, 100.0, 80.0)] {
            assert_eq!(attention(&px, area, (area.w, area.h)), (area.x, area.y));
            assert_eq!(
                attention(&px, area, (area.w + 5.0, area.h)),
                (area.x, area.y)
            );
        }
    }

    #[test]
    fn degenerate_inputs_get_the_area_top_left() {
        let one = Pixels {
            buf: vec![1, 2, 3],
            width: 1,
            height: 1,
            alpha: false,
        };
        assert_eq!(attention(&one, rect(0.0, 0.0, 1.0, 1.0), (0.5, 1.0)).1, 0.0);
        let (x, _) = attention(&one, rect(0.0, 0.0, 1.0, 1.0), (0.5, 1.0));
        assert!((0.0..=0.5).contains(&x));
        assert_eq!(
            attention(&one, rect(0.0, 0.0, 0.0, 0.0), (0.0, 0.0)),
            (0.0, 0.0)
        );
        let empty = Pixels {
            buf: Vec::new(),
            width: 0,
            height: 0,
            alpha: false,
        };
        assert_eq!(
            attention(&empty, rect(3.0, 4.0, 10.0, 10.0), (5.0, 5.0)),
            (3.0, 4.0)
        );
        // A buffer shorter than its dimensions, non-finite numbers: no panic, top-left.
        let short = Pixels {
            buf: vec![0; 10],
            width: 100,
            height: 100,
            alpha: true,
        };
        assert_eq!(
            attention(&short, rect(0.0, 0.0, 100.0, 100.0), (50.0, 100.0)),
            (0.0, 0.0)
        );
        let px = patch_image(50, 50, (0, 0, 10, 10));
        assert_eq!(
            attention(&px, rect(f64::NAN, 0.0, 50.0, 50.0), (10.0, 10.0)).0,
            0.0
        );
        assert_eq!(
            attention(&px, rect(0.0, 0.0, 50.0, 50.0), (f64::NAN, f64::NAN)),
            (0.0, 0.0)
        );
        let (x, y) = attention(&px, rect(0.0, 0.0, f64::INFINITY, 50.0), (10.0, 10.0));
        assert!(x.is_finite() && y.is_finite());
    }

    #[test]
    fn a_flat_image_gets_the_centred_window() {
        let px = patch_image(400, 200, (0, 0, 0, 0));
        let (x, y) = attention(&px, rect(0.0, 0.0, 400.0, 200.0), (200.0, 200.0));
        assert!((x - 100.0).abs() <= 400.0 / THUMB as f64, "{x}");
        assert_eq!(y, 0.0);
    }

    proptest! {
        #[test]
        fn the_window_stays_inside_the_area(
            (w, h) in (1u32..300, 1u32..300),
            alpha in any::<bool>(),
            seed in any::<u64>(),
            (ax, ay, aw, ah) in (0.0..1.0f64, 0.0..1.0f64, 0.0..1.0f64, 0.0..1.0f64),
            (fw, fh) in (0.0..=1.0f64, 0.0..=1.0f64),
        ) {
            let channels = if alpha { 4 } else { 3 };
            let mut state = seed | 1;
            let buf = (0..(w * h) as usize * channels)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 24) as u8
                })
                .collect();
            let px = Pixels { buf, width: w, height: h, alpha };
            let area = rect(
                ax * w as f64,
                ay * h as f64,
                aw * (1.0 - ax) * w as f64,
                ah * (1.0 - ay) * h as f64,
            );
            let window = (fw * area.w, fh * area.h);
            let (x, y) = attention(&px, area, window);
            prop_assert!(x.is_finite() && y.is_finite());
            prop_assert!(x >= area.x && x + window.0 <= area.x + area.w + 1e-9, "x {x} {area:?} {window:?}");
            prop_assert!(y >= area.y && y + window.1 <= area.y + area.h + 1e-9, "y {y} {area:?} {window:?}");
        }
    }
}
