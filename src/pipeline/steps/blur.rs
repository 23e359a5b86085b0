//! `blur=SIGMA`: a Gaussian blur of the output, SIGMA in output pixels (0.3 to 100).
//!
//! Up to [`EXACT_UP_TO`] the kernel is a true separable Gaussian (radius 3 SIGMA); above it
//! three passes of an "extended box" filter whose variance equals SIGMA² (Gwosdek et al.,
//! as Pillow and libvips' fast paths do): each pass costs the same whatever SIGMA is, so
//! `blur=100` is as cheap as `blur=4`. Colours are blurred premultiplied by alpha, so a
//! transparent neighbour never darkens an edge. Edges repeat the border pixel.

use super::Effect;
use crate::error::{Error, Result};
use crate::params::Transform;
use crate::pipeline::Pixels;

/// The blur step when the transform asks for one, for a resized image of `size`.
pub fn plan(t: &Transform, size: (u32, u32)) -> Option<Effect> {
    let sigma = t.blur?.pixels();
    Some(Effect::new(
        "blur",
        sigma,
        gaussian,
        SCRATCH_BYTES_PER_PIXEL,
        size,
    ))
}

/// Largest sigma blurred with a true Gaussian kernel; above it the box approximation's
/// error is below one level of 255 and its cost does not grow with sigma.
pub const EXACT_UP_TO: f32 = 3.0;

/// Blur `px` by a Gaussian of standard deviation `sigma` (output pixels).
pub fn gaussian(px: Pixels, sigma: f32) -> Result<Pixels> {
    if !(sigma.is_finite() && sigma > 0.0) {
        return Err(Error::Internal(format!("blur sigma {sigma}")));
    }
    let channels = if px.alpha { 4 } else { 3 };
    let (w, h) = (px.width as usize, px.height as usize);
    if px.buf.len() != w * h * channels || w == 0 || h == 0 {
        return Err(Error::Internal(
            "blur: buffer does not match its size".into(),
        ));
    }
    let stride = w * channels;
    let mut plane = to_float(&px, channels);
    let mut other = vec![0.0f32; plane.len()];
    if sigma <= EXACT_UP_TO {
        let kernel = gaussian_kernel(sigma);
        for (row, out) in plane
            .chunks_exact(stride)
            .zip(other.chunks_exact_mut(stride))
        {
            convolve(row, out, channels, &kernel);
        }
        convolve_rows(&other, &mut plane, stride, &kernel);
    } else {
        let r = box_radius(sigma, 3);
        for _ in 0..3 {
            for (row, out) in plane
                .chunks_exact(stride)
                .zip(other.chunks_exact_mut(stride))
            {
                extended_box(row, out, channels, r);
            }
            std::mem::swap(&mut plane, &mut other);
        }
        for _ in 0..3 {
            box_rows(&plane, &mut other, stride, r);
            std::mem::swap(&mut plane, &mut other);
        }
    }
    Ok(from_float(&plane, px, channels))
}

/// Bytes [`gaussian`] holds besides its input and output, per pixel: two float planes
/// (4 bytes per channel each).
pub const SCRATCH_BYTES_PER_PIXEL: u64 = 2 * 4 * 4;

/// The image as floats, colours premultiplied by alpha.
fn to_float(px: &Pixels, channels: usize) -> Vec<f32> {
    let mut out: Vec<f32> = px.buf.iter().map(|&v| f32::from(v)).collect();
    if channels == 4 {
        for p in out.chunks_exact_mut(4) {
            let a = p[3] / 255.0;
            p[0] *= a;
            p[1] *= a;
            p[2] *= a;
        }
    }
    out
}

/// Back to 8 bits (rounded, clamped), un-premultiplied, in `px`'s buffer.
fn from_float(plane: &[f32], mut px: Pixels, channels: usize) -> Pixels {
    for (dst, src) in px
        .buf
        .chunks_exact_mut(channels)
        .zip(plane.chunks_exact(channels))
    {
        let scale = if channels == 4 && src[3] > 0.0 {
            255.0 / src[3]
        } else {
            1.0
        };
        for c in 0..channels {
            let v = if c < 3 { src[c] * scale } else { src[c] };
            dst[c] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    px
}

/// A normalised Gaussian kernel of radius ceil(3 sigma).
fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    let radius = (3.0 * sigma).ceil().max(1.0) as i32;
    let mut k: Vec<f32> = (-radius..=radius)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= sum);
    k
}

/// The radius (integer part and fractional edge weight) of an extended box filter that,
/// applied `passes` times, has the variance of a Gaussian of `sigma` (Gwosdek et al. 2011).
fn box_radius(sigma: f32, passes: u32) -> f32 {
    let s2 = f64::from(sigma) * f64::from(sigma) / f64::from(passes);
    let l = ((12.0 * s2 + 1.0).sqrt() - 1.0) / 2.0;
    let l = l.floor();
    let a = (2.0 * l + 1.0) * (l * (l + 1.0) - 3.0 * s2) / (6.0 * (s2 - (l + 1.0) * (l + 1.0)));
    (l + a) as f32
}

/// One line convolved with a symmetric kernel; edges repeat the border pixel.
fn convolve(line: &[f32], out: &mut [f32], channels: usize, kernel: &[f32]) {
    let n = line.len() / channels;
    let radius = kernel.len() / 2;
    let clamped = |i: usize, k: usize| (i + k).saturating_sub(radius).min(n - 1);
    for i in 0..n {
        let mut acc = [0.0f32; 4];
        if i >= radius && i + radius < n {
            // Inside: no clamping, a straight run of taps.
            let window = &line[(i - radius) * channels..(i + radius + 1) * channels];
            for (weight, px) in kernel.iter().zip(window.chunks_exact(channels)) {
                for c in 0..channels {
                    acc[c] += weight * px[c];
                }
            }
        } else {
            for (k, weight) in kernel.iter().enumerate() {
                let j = clamped(i, k) * channels;
                for c in 0..channels {
                    acc[c] += weight * line[j + c];
                }
            }
        }
        out[i * channels..(i + 1) * channels].copy_from_slice(&acc[..channels]);
    }
}

/// The vertical pass: each output row a weighted sum of whole input rows (contiguous, so
/// the compiler vectorises it); edges repeat the border row.
fn convolve_rows(src: &[f32], dst: &mut [f32], stride: usize, kernel: &[f32]) {
    let h = src.len() / stride;
    let radius = kernel.len() / 2;
    for (y, out) in dst.chunks_exact_mut(stride).enumerate() {
        out.fill(0.0);
        for (k, &weight) in kernel.iter().enumerate() {
            let j = (y + k).saturating_sub(radius).min(h - 1);
            let row = &src[j * stride..(j + 1) * stride];
            for (o, v) in out.iter_mut().zip(row) {
                *o += weight * v;
            }
        }
    }
}

/// One line through an extended box of radius `r` (integer part `l`, edge weight `r - l`):
/// a running sum, so the cost does not depend on `r`. Edges repeat the border pixel.
fn extended_box(line: &[f32], out: &mut [f32], channels: usize, r: f32) {
    let n = (line.len() / channels) as isize;
    let l = r.floor() as isize;
    let a = r - l as f32;
    let norm = 1.0 / (2.0 * r + 1.0);
    let at = |j: isize| j.clamp(0, n - 1) as usize * channels;
    let mut sum = [0.0f32; 4];
    for j in -l..=l {
        let p = at(j);
        for c in 0..channels {
            sum[c] += line[p + c];
        }
    }
    for i in 0..n {
        let (before, after) = (at(i - l - 1), at(i + l + 1));
        let (leaving, o) = (at(i - l), i as usize * channels);
        for c in 0..channels {
            out[o + c] = (sum[c] + a * (line[before + c] + line[after + c])) * norm;
            sum[c] += line[after + c] - line[leaving + c];
        }
    }
}

/// The vertical extended box pass over whole rows: a running sum row, vectorised.
fn box_rows(src: &[f32], dst: &mut [f32], stride: usize, r: f32) {
    let h = (src.len() / stride) as isize;
    let l = r.floor() as isize;
    let a = r - l as f32;
    let norm = 1.0 / (2.0 * r + 1.0);
    let row = |j: isize| {
        let j = j.clamp(0, h - 1) as usize;
        &src[j * stride..(j + 1) * stride]
    };
    let mut sum = vec![0.0f32; stride];
    for j in -l..=l {
        for (s, v) in sum.iter_mut().zip(row(j)) {
            *s += v;
        }
    }
    for (y, out) in dst.chunks_exact_mut(stride).enumerate() {
        let y = y as isize;
        let (before, after, leaving) = (row(y - l - 1), row(y + l + 1), row(y - l));
        for i in 0..stride {
            out[i] = (sum[i] + a * (before[i] + after[i])) * norm;
            sum[i] += after[i] - leaving[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(w: u32, h: u32, alpha: bool, f: impl Fn(u32, u32) -> [u8; 4]) -> Pixels {
        let mut buf = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let p = f(x, y);
                buf.extend_from_slice(if alpha { &p[..] } else { &p[..3] });
            }
        }
        Pixels {
            buf,
            width: w,
            height: h,
            alpha,
        }
    }

    #[test]
    fn a_flat_image_stays_flat() {
        for sigma in [0.3, 1.0, 3.0, 3.5, 20.0, 100.0] {
            let px = image(17, 9, false, |_, _| [90, 140, 200, 255]);
            let out = gaussian(px.clone(), sigma).unwrap();
            assert_eq!(out, px, "sigma {sigma}");
        }
    }

    #[test]
    fn box_passes_have_the_gaussian_variance() {
        // Variance of one extended box of radius r = l + a: the discrete box's plus the edges'.
        for sigma in [3.5f32, 5.0, 10.0, 37.0, 100.0] {
            let r = box_radius(sigma, 3);
            let l = r.floor();
            let a = r - l;
            let inner: f32 = (1..=l as i32).map(|i| 2.0 * (i * i) as f32).sum();
            let var = (inner + 2.0 * a * (l + 1.0) * (l + 1.0)) / (2.0 * r + 1.0);
            assert!(
                (3.0 * var - sigma * sigma).abs() < 1e-2 * sigma * sigma,
                "sigma {sigma}: 3 x {var}"
            );
        }
    }

    #[test]
    fn an_impulse_spreads_as_a_gaussian() {
        // A white dot on black: its blurred profile has the asked sigma, both ways of blurring.
        for sigma in [1.0f32, 2.5, 6.0] {
            let n = 81u32;
            let px = image(n, 1, false, |x, _| {
                if x == n / 2 {
                    [255, 255, 255, 255]
                } else {
                    [0, 0, 0, 255]
                }
            });
            let plane = to_float(&px, 3);
            let mut out = vec![0.0; plane.len()];
            if sigma <= EXACT_UP_TO {
                convolve(&plane, &mut out, 3, &gaussian_kernel(sigma));
            } else {
                let r = box_radius(sigma, 3);
                let mut tmp = plane.clone();
                for _ in 0..3 {
                    extended_box(&tmp, &mut out, 3, r);
                    tmp.copy_from_slice(&out);
                }
            }
            let values: Vec<f32> = out.chunks_exact(3).map(|p| p[0]).collect();
            let total: f32 = values.iter().sum();
            assert!((total - 255.0).abs() < 0.5, "mass kept: {total}");
            let mid = (n / 2) as f32;
            let var: f32 = values
                .iter()
                .enumerate()
                .map(|(i, v)| v / total * (i as f32 - mid).powi(2))
                .sum();
            assert!(
                (var.sqrt() - sigma).abs() < 0.05 * sigma,
                "sigma {sigma}: measured {}",
                var.sqrt()
            );
        }
    }

    #[test]
    fn transparent_neighbours_do_not_darken() {
        // Opaque red beside fully transparent black: blurred, the red stays red (only its
        // alpha fades), as premultiplied blurring gives.
        let px = image(8, 4, true, |x, _| {
            if x < 4 {
                [255, 0, 0, 255]
            } else {
                [0, 0, 0, 0]
            }
        });
        let out = gaussian(px, 1.5).unwrap();
        for p in out.buf.chunks_exact(4).filter(|p| p[3] > 8) {
            assert!(p[0] >= 250 && p[1] == 0 && p[2] == 0, "{p:?}");
        }
    }
}
