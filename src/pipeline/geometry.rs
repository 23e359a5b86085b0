//! Pure size arithmetic: from the displayed source size and the params to a [`Layout`].
//!
//! Everything here is in *oriented* (displayed) coordinates; the plan maps the crop back to
//! stored pixels with [`Orientation::crop_to_stored`](super::Orientation::crop_to_stored) so
//! that rotation happens on the small output, never on the big source.

use crate::error::{Error, Result};
use crate::params::{Fit, Transform};

/// A rectangle of source pixels, fractional so that crops keep sub-pixel precision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// Where the output's pixels come from, in displayed coordinates: crop `crop`, resize it to
/// `size`, and place it at `offset` on a canvas of `canvas` (equal to `size` except for
/// `fit=pad`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layout {
    pub crop: Rect,
    pub size: (u32, u32),
    pub canvas: (u32, u32),
    pub offset: (u32, u32),
}

impl Layout {
    pub fn output_pixels(&self) -> u64 {
        u64::from(self.canvas.0) * u64::from(self.canvas.1)
    }
}

fn round_px(v: f64) -> u32 {
    // Never 0: a 1-pixel-high thumbnail of a panorama is still an image.
    v.round().clamp(1.0, f64::from(u32::MAX)) as u32
}

/// Lay out the output for a source of `src` (displayed width, height).
///
/// `max_side` bounds the output canvas on each axis; a layout beyond it is a 422.
pub fn layout(src: (u32, u32), params: &Transform, max_side: u32) -> Result<Layout> {
    let (sw, sh) = (f64::from(src.0), f64::from(src.1));
    let full = Rect {
        x: 0.0,
        y: 0.0,
        w: sw,
        h: sh,
    };
    let layout = match params.target_box() {
        (None, None) => Layout {
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
                        Layout {
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
    let (cw, ch) = layout.canvas;
    if cw > max_side || ch > max_side {
        return Err(Error::limit(
            "max_output_side",
            format!("the output would be {cw}x{ch}; each side may be at most {max_side} pixels"),
        ));
    }
    Ok(layout)
}

fn simple(crop: Rect, size: (u32, u32)) -> Layout {
    Layout {
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
        // `auto` is planned as the centre; the render moves the crop once it sees the pixels.
        crate::params::Gravity::Anchor { .. } | crate::params::Gravity::Auto => free * g,
        // A focal point is centred when possible, clamped inside the image.
        crate::params::Gravity::Focal { .. } => (g * full - crop / 2.0).clamp(0.0, free),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(q: &str) -> Transform {
        crate::params::ImageRequest::parse(Some(q))
            .unwrap()
            .transform
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
            let layout = layout(src, &p(q), 8192).unwrap();
            assert_eq!(layout.canvas, canvas, "{src:?} {q}");
        }
    }

    #[test]
    fn cover_crops_by_gravity() {
        let src = (1000, 500);
        let crop = |q| layout(src, &p(q), 8192).unwrap().crop;
        let c = crop("w=100&h=100");
        assert_eq!((c.x, c.y, c.w, c.h), (250.0, 0.0, 500.0, 500.0));
        assert_eq!(crop("w=100&h=100&gravity=left").x, 0.0);
        assert_eq!(crop("w=100&h=100&gravity=right").x, 500.0);
        assert_eq!(crop("w=100&h=100&gravity=0,0").x, 0.0);
        assert_eq!(crop("w=100&h=100&gravity=0.9,0.5").x, 500.0); // clamped
        assert_eq!(crop("w=100&h=100&gravity=0.4,0.5").x, 150.0);
        let tall = layout((500, 1000), &p("w=100&h=100&gravity=bottom"), 8192).unwrap();
        assert_eq!(tall.crop.y, 500.0);
    }

    #[test]
    fn pad_centres_the_image() {
        let pad = layout((1000, 500), &p("w=400&h=400&fit=pad"), 8192).unwrap();
        assert_eq!(pad.size, (400, 200));
        assert_eq!(pad.offset, (0, 100));
    }

    #[test]
    fn tall_sources_fit_by_height() {
        // The height is the binding side here (the cases above bind by width).
        let contain = layout((500, 1000), &p("w=400&h=400&fit=contain"), 8192).unwrap();
        assert_eq!((contain.size, contain.canvas), ((200, 400), (200, 400)));
        let pad = layout((500, 1000), &p("w=400&h=400&fit=pad"), 8192).unwrap();
        assert_eq!(
            (pad.size, pad.canvas, pad.offset),
            ((200, 400), (400, 400), (100, 0))
        );
        assert_eq!(pad.output_pixels(), 160_000);
        let odd = layout((500, 1000), &p("w=301&h=7&fit=fill"), 8192).unwrap();
        assert_eq!(odd.output_pixels(), 2107);
    }

    #[test]
    fn output_side_limit() {
        // Exactly the limit is allowed, on either side.
        assert_eq!(
            layout((100, 100), &p("w=500&h=20&fit=fill"), 500)
                .unwrap()
                .canvas,
            (500, 20)
        );
        assert_eq!(
            layout((100, 100), &p("w=20&h=500&fit=fill"), 500)
                .unwrap()
                .canvas,
            (20, 500)
        );
        assert_eq!(
            layout((100, 100), &p("w=501&h=20&fit=fill"), 500)
                .unwrap_err()
                .status(),
            422
        );
        assert_eq!(
            layout((100, 100), &p("w=20&h=501&fit=fill"), 500)
                .unwrap_err()
                .status(),
            422
        );
        let err = layout((100, 100), &p("w=8192&dpr=2"), 8192).unwrap_err();
        assert_eq!(err.status(), 422);
        let err = layout((1, 20000), &p("w=100"), 8192).unwrap_err();
        assert_eq!(err.status(), 422);
    }
}
