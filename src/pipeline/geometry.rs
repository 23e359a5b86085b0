//! Pure size arithmetic: from the displayed source size and the params to a [`Plan`].
//!
//! Everything here is in *oriented* (displayed) coordinates; the pipeline maps the crop back
//! to stored pixels with [`Orientation::crop_to_stored`] so that rotation happens on the
//! small output, never on the big source.

use crate::error::{Error, Result};
use crate::params::{Fit, Params};

/// A rectangle of source pixels, fractional so that crops keep sub-pixel precision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// What to do to the (oriented) source: crop `crop`, resize it to `size`, and place it at
/// `offset` on a canvas of `canvas` (equal to `size` except for `fit=pad`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub crop: Rect,
    pub size: (u32, u32),
    pub canvas: (u32, u32),
    pub offset: (u32, u32),
}

impl Plan {
    pub fn output_pixels(&self) -> u64 {
        u64::from(self.canvas.0) * u64::from(self.canvas.1)
    }
}

fn round_px(v: f64) -> u32 {
    // Never 0: a 1-pixel-high thumbnail of a panorama is still an image.
    v.round().clamp(1.0, f64::from(u32::MAX)) as u32
}

/// Plan the output for a source of `src` (displayed width, height).
///
/// `max_side` bounds the output canvas on each axis; a plan beyond it is a 422.
pub fn plan(src: (u32, u32), params: &Params, max_side: u32) -> Result<Plan> {
    let (sw, sh) = (f64::from(src.0), f64::from(src.1));
    let full = Rect {
        x: 0.0,
        y: 0.0,
        w: sw,
        h: sh,
    };
    let plan = match params.target_box() {
        (None, None) => Plan {
            crop: full,
            size: src,
            canvas: src,
            offset: (0, 0),
        },
        // One side given: the other follows the aspect ratio; every fit then means "scale to".
        (Some(w), None) => {
            let scale = clamp_scale(f64::from(w) / sw, params.fit());
            let size = (round_px(sw * scale), round_px(sh * scale));
            simple(full, size)
        }
        (None, Some(h)) => {
            let scale = clamp_scale(f64::from(h) / sh, params.fit());
            let size = (round_px(sw * scale), round_px(sh * scale));
            simple(full, size)
        }
        (Some(w), Some(h)) => {
            let (bw, bh) = (f64::from(w), f64::from(h));
            match params.fit() {
                Fit::Fill => simple(full, (w, h)),
                Fit::Contain | Fit::ScaleDown | Fit::Pad => {
                    let scale = clamp_scale((bw / sw).min(bh / sh), params.fit());
                    let size = (round_px(sw * scale).min(w), round_px(sh * scale).min(h));
                    if params.fit() == Fit::Pad {
                        Plan {
                            crop: full,
                            size,
                            canvas: (w, h),
                            offset: ((w - size.0) / 2, (h - size.1) / 2),
                        }
                    } else {
                        simple(full, size)
                    }
                }
                Fit::Cover => {
                    let scale = (bw / sw).max(bh / sh);
                    let (cw, ch) = ((bw / scale).min(sw), (bh / scale).min(sh));
                    let (gx, gy) = params.gravity().fractions();
                    let crop = Rect {
                        x: place(sw, cw, gx, params.gravity()),
                        y: place(sh, ch, gy, params.gravity()),
                        w: cw,
                        h: ch,
                    };
                    simple(crop, (w, h))
                }
            }
        }
    };
    let (cw, ch) = plan.canvas;
    if cw > max_side || ch > max_side {
        return Err(Error::limit(
            "max_output_side",
            format!("the output would be {cw}x{ch}; each side may be at most {max_side} pixels"),
        ));
    }
    Ok(plan)
}

fn simple(crop: Rect, size: (u32, u32)) -> Plan {
    Plan {
        crop,
        size,
        canvas: size,
        offset: (0, 0),
    }
}

fn clamp_scale(scale: f64, fit: Fit) -> f64 {
    if fit == Fit::ScaleDown {
        scale.min(1.0)
    } else {
        scale
    }
}

/// Offset of a crop of length `crop` inside `full`, by gravity fraction `g`.
fn place(full: f64, crop: f64, g: f64, gravity: crate::params::Gravity) -> f64 {
    let free = (full - crop).max(0.0);
    match gravity {
        // Anchors divide the free space: left keeps the left edge, right the right one.
        crate::params::Gravity::Anchor { .. } => free * g,
        // A focal point is centred when possible, clamped inside the image.
        crate::params::Gravity::Focal { .. } => (g * full - crop / 2.0).clamp(0.0, free),
    }
}

/// EXIF orientation (1..=8), as the transform from stored to displayed pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Orientation(u8);

impl Default for Orientation {
    fn default() -> Self {
        Orientation::NORMAL
    }
}

impl Orientation {
    pub const NORMAL: Orientation = Orientation(1);

    /// From the EXIF tag value; anything outside 1..=8 is treated as 1, as browsers do.
    pub fn from_exif(v: u8) -> Orientation {
        if (1..=8).contains(&v) {
            Orientation(v)
        } else {
            Orientation(1)
        }
    }

    pub fn exif(self) -> u8 {
        self.0
    }

    /// Orientations 5..=8 swap width and height.
    pub fn swaps_axes(self) -> bool {
        self.0 >= 5
    }

    /// Displayed size of a stored image of `stored` size.
    pub fn display_size(self, stored: (u32, u32)) -> (u32, u32) {
        if self.swaps_axes() {
            (stored.1, stored.0)
        } else {
            stored
        }
    }

    /// Map a rectangle in displayed coordinates to the stored image of `stored` size.
    pub fn crop_to_stored(self, r: Rect, stored: (u32, u32)) -> Rect {
        let (w, h) = (f64::from(stored.0), f64::from(stored.1));
        let flip_x = |x: f64, len: f64| w - x - len;
        let flip_y = |y: f64, len: f64| h - y - len;
        match self.0 {
            2 => Rect {
                x: flip_x(r.x, r.w),
                ..r
            },
            3 => Rect {
                x: flip_x(r.x, r.w),
                y: flip_y(r.y, r.h),
                ..r
            },
            4 => Rect {
                y: flip_y(r.y, r.h),
                ..r
            },
            // Transposed family: displayed x runs along stored y and vice versa.
            5 => Rect {
                x: r.y,
                y: r.x,
                w: r.h,
                h: r.w,
            },
            6 => Rect {
                x: r.y,
                y: flip_y(r.x, r.w),
                w: r.h,
                h: r.w,
            },
            7 => Rect {
                x: flip_x(r.y, r.h),
                y: flip_y(r.x, r.w),
                w: r.h,
                h: r.w,
            },
            8 => Rect {
                x: flip_x(r.y, r.h),
                y: r.x,
                w: r.h,
                h: r.w,
            },
            _ => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(q: &str) -> Params {
        Params::parse(Some(q)).unwrap()
    }

    #[test]
    fn output_sizes_per_fit() {
        // (source, query, expected canvas)
        let cases = [
            ((1000, 500), "w=400", (400, 200)),
            ((1000, 500), "h=100", (200, 100)),
            ((1000, 500), "w=400&h=400", (400, 400)), // cover
            ((1000, 500), "w=400&h=400&fit=contain", (400, 200)),
            ((1000, 500), "w=400&h=400&fit=fill", (400, 400)),
            ((1000, 500), "w=400&h=400&fit=pad", (400, 400)),
            ((1000, 500), "w=4000&h=4000&fit=scale-down", (1000, 500)),
            ((1000, 500), "w=4000&fit=scale-down", (1000, 500)),
            ((1000, 500), "w=4000&h=4000&fit=contain", (4000, 2000)),
            ((1000, 500), "w=400&dpr=2", (800, 400)),
            ((1000, 500), "w=400&h=300&dpr=1.5", (600, 450)),
            ((1000, 500), "fmt=png", (1000, 500)),
            ((20000, 1), "w=100", (100, 1)),
            ((1, 1), "w=10&h=20", (10, 20)),
        ];
        for (src, q, canvas) in cases {
            let plan = plan(src, &p(q), 8192).unwrap();
            assert_eq!(plan.canvas, canvas, "{src:?} {q}");
        }
    }

    #[test]
    fn cover_crops_by_gravity() {
        let src = (1000, 500);
        let crop = |q| plan(src, &p(q), 8192).unwrap().crop;
        let c = crop("w=100&h=100");
        assert_eq!((c.x, c.y, c.w, c.h), (250.0, 0.0, 500.0, 500.0));
        assert_eq!(crop("w=100&h=100&gravity=left").x, 0.0);
        assert_eq!(crop("w=100&h=100&gravity=right").x, 500.0);
        assert_eq!(crop("w=100&h=100&gravity=0,0").x, 0.0);
        assert_eq!(crop("w=100&h=100&gravity=0.9,0.5").x, 500.0); // clamped
        assert_eq!(crop("w=100&h=100&gravity=0.4,0.5").x, 150.0);
        let tall = plan((500, 1000), &p("w=100&h=100&gravity=bottom"), 8192).unwrap();
        assert_eq!(tall.crop.y, 500.0);
    }

    #[test]
    fn pad_centres_the_image() {
        let plan = plan((1000, 500), &p("w=400&h=400&fit=pad"), 8192).unwrap();
        assert_eq!(plan.size, (400, 200));
        assert_eq!(plan.offset, (0, 100));
    }

    #[test]
    fn tall_sources_fit_by_height() {
        // The height is the binding side here (the cases above bind by width).
        let contain = plan((500, 1000), &p("w=400&h=400&fit=contain"), 8192).unwrap();
        assert_eq!((contain.size, contain.canvas), ((200, 400), (200, 400)));
        let pad = plan((500, 1000), &p("w=400&h=400&fit=pad"), 8192).unwrap();
        assert_eq!(
            (pad.size, pad.canvas, pad.offset),
            ((200, 400), (400, 400), (100, 0))
        );
        assert_eq!(pad.output_pixels(), 160_000);
        let odd = plan((500, 1000), &p("w=301&h=7&fit=fill"), 8192).unwrap();
        assert_eq!(odd.output_pixels(), 2107);
    }

    #[test]
    fn output_side_limit() {
        // Exactly the limit is allowed, on either side.
        assert_eq!(
            plan((100, 100), &p("w=500&h=20&fit=fill"), 500)
                .unwrap()
                .canvas,
            (500, 20)
        );
        assert_eq!(
            plan((100, 100), &p("w=20&h=500&fit=fill"), 500)
                .unwrap()
                .canvas,
            (20, 500)
        );
        assert_eq!(
            plan((100, 100), &p("w=501&h=20&fit=fill"), 500)
                .unwrap_err()
                .status(),
            422
        );
        assert_eq!(
            plan((100, 100), &p("w=20&h=501&fit=fill"), 500)
                .unwrap_err()
                .status(),
            422
        );
        let err = plan((100, 100), &p("w=8192&dpr=2"), 8192).unwrap_err();
        assert_eq!(err.status(), 422);
        let err = plan((1, 20000), &p("w=100"), 8192).unwrap_err();
        assert_eq!(err.status(), 422);
    }

    #[test]
    fn crop_maps_back_to_stored_pixels() {
        // A stored 40x20 image, displayed 20x40 under orientation 6 (rotated 90° clockwise).
        let stored = (40, 20);
        let o6 = Orientation::from_exif(6);
        assert_eq!(o6.display_size(stored), (20, 40));
        // The displayed top strip (rows 0..10) comes from the stored left columns 0..10.
        let r = Rect {
            x: 0.0,
            y: 0.0,
            w: 20.0,
            h: 10.0,
        };
        assert_eq!(
            o6.crop_to_stored(r, stored),
            Rect {
                x: 0.0,
                y: 0.0,
                w: 10.0,
                h: 20.0
            }
        );
        // Displayed left half (x 0..10) comes from the stored bottom rows (y 10..20).
        let left = Rect {
            x: 0.0,
            y: 0.0,
            w: 10.0,
            h: 40.0,
        };
        assert_eq!(o6.crop_to_stored(left, stored).y, 10.0);
        // Orientation 8: displayed top comes from the stored right columns.
        let o8 = Orientation::from_exif(8);
        assert_eq!(o8.crop_to_stored(r, stored).x, 30.0);
        // Identity and out-of-range tags.
        assert_eq!(Orientation::from_exif(0).crop_to_stored(r, stored), r);
        assert_eq!(Orientation::from_exif(9), Orientation::NORMAL);
    }

    #[test]
    fn crop_to_stored_agrees_with_the_image_crate() {
        // Every displayed rectangle of a 5x3 image of distinct pixels, under each of the 8
        // orientations (as the image crate applies them), must hold exactly the pixels of
        // the stored rectangle that `crop_to_stored` names.
        let (sw, sh) = (5u32, 3u32);
        let stored = image::GrayImage::from_fn(sw, sh, |x, y| image::Luma([(y * sw + x) as u8]));
        let pixels = |img: &image::GrayImage, r: Rect| {
            let mut v = Vec::new();
            for y in r.y as u32..(r.y + r.h) as u32 {
                for x in r.x as u32..(r.x + r.w) as u32 {
                    v.push(img.get_pixel(x, y).0[0]);
                }
            }
            v.sort_unstable();
            v
        };
        for exif in 1..=8u8 {
            let o = Orientation::from_exif(exif);
            assert_eq!(o.exif(), exif);
            let mut shown = image::DynamicImage::ImageLuma8(stored.clone());
            shown.apply_orientation(image::metadata::Orientation::from_exif(exif).unwrap());
            let shown = shown.to_luma8();
            let (dw, dh) = o.display_size((sw, sh));
            assert_eq!(
                (shown.width(), shown.height()),
                (dw, dh),
                "orientation {exif}"
            );
            assert_eq!(o.swaps_axes(), dw != sw, "orientation {exif}");
            for (x, y) in (0..dw).flat_map(|x| (0..dh).map(move |y| (x, y))) {
                for (w, h) in (1..=dw - x).flat_map(|w| (1..=dh - y).map(move |h| (w, h))) {
                    let r = Rect {
                        x: f64::from(x),
                        y: f64::from(y),
                        w: f64::from(w),
                        h: f64::from(h),
                    };
                    let s = o.crop_to_stored(r, (sw, sh));
                    assert!(
                        s.x >= 0.0 && s.y >= 0.0 && s.x + s.w <= 5.0 && s.y + s.h <= 3.0,
                        "orientation {exif}: {r:?} -> {s:?}"
                    );
                    assert_eq!(
                        pixels(&shown, r),
                        pixels(&stored, s),
                        "orientation {exif}: {r:?} -> {s:?}"
                    );
                }
            }
        }
    }
}
