//! [`Plan`]: the whole render, decided from the source's header and the request before any
//! pixel is decoded (source region, decode scale, orientation, sizes, effects, canvas,
//! output), weighed, and run by `render` as decode → [`Plan::steps`] → encode.

use super::geometry::{layout, Rect};
use super::steps::{trim, Flatten, Orient, Pad, Resize, Step, EFFECTS};
use super::timings::{self, Timings};
use super::{attention, encode, Limits, Orientation, Pixels, SourceFormat, SourceInfo};
use crate::error::{Error, Result};
use crate::params::{Dpr, Flip, Gravity, OutputFormat, Rgba, Transform};

/// Everything a render will do.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Size of the stored pixels (before orientation).
    pub stored: (u32, u32),
    /// The region of the stored (not yet oriented) pixels to use.
    pub region: Rect,
    /// DCT scale denominator of the decode (1 unless JPEG).
    pub shrink: u32,
    /// From stored to displayed pixels: the source's EXIF orientation, then the user's.
    pub orientation: Orientation,
    /// The resized size, in stored orientation.
    pub size: (u32, u32),
    /// Resize in linear light (`lin=1`).
    pub linear: bool,
    /// Effects on the resized pixels (blur, sharpen, ...), in order, before they are oriented.
    pub effects: Vec<Step>,
    /// The output size; larger than the oriented `size` only for `fit=pad`, which places the
    /// image at `offset` on `background`.
    pub canvas: (u32, u32),
    pub offset: (u32, u32),
    pub background: Rgba,
    /// The opaque colour transparent pixels are composited over, when the output format has
    /// no alpha and the image may have some.
    pub flatten: Option<Rgba>,
    pub format: OutputFormat,
    pub quality: u8,
    /// Bytes the render allocates at its peak, estimated generously.
    pub memory: u64,
    /// What the plan still has to learn from the decoded pixels (`trim`, `gravity=auto`),
    /// before its steps run: see [`Plan::see`].
    pub look: Option<Box<Look>>,
    /// The frames of an animation, when the output stays animated (GIF or WebP asked for,
    /// no `anim=0`): every frame runs the same steps (`animation::run`).
    pub frames: Option<u32>,
}

/// The part of a plan that depends on the pixels: where the border ends (`trim`) and where
/// the most interesting part is (`gravity=auto`). The plan made from the header is run as far
/// as the decode; [`Plan::see`] then measures the pixels and plans again from what it saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Look {
    pub transform: Transform,
    /// The region `crop` keeps, in stored pixels: what `trim` searches.
    pub base: Rect,
}

/// What [`prepare_from`] takes as known instead of reading it from the transform alone.
#[derive(Debug, Clone, Copy, Default)]
struct Known {
    /// The region of the stored pixels to start from (the trimmed one), instead of `crop`'s.
    base: Option<Rect>,
    /// The scale the source is already decoded at.
    shrink: Option<u32>,
    /// The gravity `auto` turned out to be.
    gravity: Option<Gravity>,
    /// The pixels have been seen: nothing is left to look at.
    seen: bool,
}

/// What the timings call `gravity=auto`'s search.
pub const ATTENTION: &str = "attention";

/// Bytes per output pixel libwebp's animation encoder keeps besides the frame it is given
/// (previous and current canvases, and the candidate sub-frames it encodes to keep the
/// smallest), generously; the GIF encoder's per-frame quantiser needs less.
const ANIMATED_ENCODER_PX_BYTES: u64 = 40;

/// Scratch for `gravity=auto`'s measurement (a small downscale, whatever the image).
const ATTENTION_SCRATCH: u64 = 1 << 20;

/// The rotation then the flips the request asks for, applied after the EXIF orientation.
fn user_orientation(transform: &Transform) -> Orientation {
    let rotation = transform
        .rotation
        .and_then(|r| Orientation::rotate(u32::from(r.degrees())))
        .unwrap_or_else(Orientation::identity);
    let flip = match transform.flip {
        None => Orientation::identity(),
        Some(Flip::H) => Orientation::flip_h(),
        Some(Flip::V) => Orientation::flip_v(),
        Some(Flip::Hv) => Orientation::flip_h().then(Orientation::flip_v()),
    };
    rotation.then(flip)
}

/// The stored pixels `crop` keeps: the region is given in the original as displayed (after
/// its EXIF orientation only, before `rot`/`flip`), clipped to it, and mapped back through
/// the EXIF orientation alone. The whole image without a crop.
fn crop_region(info: &SourceInfo, transform: &Transform) -> Result<Rect> {
    let Some(crop) = transform.crop else {
        return Ok(Rect {
            x: 0.0,
            y: 0.0,
            w: f64::from(info.stored.0),
            h: f64::from(info.stored.1),
        });
    };
    let displayed = info.display_size();
    let Some((x, y, w, h)) = crop.resolve(displayed) else {
        // Only the image's size tells: a 400 naming `crop` all the same (out of range).
        return Err(Error::invalid_param(
            "crop",
            format!(
                "`crop` is entirely outside the image, which is {}x{} as displayed",
                displayed.0, displayed.1
            ),
        ));
    };
    let r = Rect {
        x: f64::from(x),
        y: f64::from(y),
        w: f64::from(w),
        h: f64::from(h),
    };
    Ok(info.orientation.crop_to_stored(r, info.stored))
}

fn pixels((w, h): (u32, u32)) -> u64 {
    u64::from(w) * u64::from(h)
}

impl Plan {
    /// The steps between decode and encode, only those this render needs (the resize always:
    /// it holds the output to the planned size whatever the decoder returned).
    pub fn steps(&self) -> Vec<Step> {
        let mut steps = vec![Step::Resize(Resize {
            region: self.region,
            stored: self.stored,
            shrink: self.shrink,
            size: self.size,
            linear: self.linear,
        })];
        steps.extend(self.effects.iter().cloned());
        if self.orientation != Orientation::identity() {
            steps.push(Step::Orient(Orient {
                orientation: self.orientation,
            }));
        }
        if self.canvas != self.orientation.display_size(self.size) {
            steps.push(Step::Pad(Pad {
                canvas: self.canvas,
                offset: self.offset,
                background: self.background,
            }));
        }
        if let Some(background) = self.flatten {
            steps.push(Step::Flatten(Flatten { background }));
        }
        steps
    }

    pub fn output_pixels(&self) -> u64 {
        pixels(self.canvas)
    }

    /// What the render allocates: the decode, the steps' scratch, the images in flight and
    /// the encoder's working set.
    fn weigh(&self, info: &SourceInfo) -> u64 {
        let out = self.output_pixels();
        // A trimmed region may call for a larger decode than the whole image does (the
        // render then decodes again): weigh the largest one.
        let decode_shrink = match &self.look {
            Some(look) if look.transform.trim.is_some() => 1,
            _ => self.shrink,
        };
        let look = if self.look.is_some() {
            ATTENTION_SCRATCH
        } else {
            0
        };
        // An animation also holds the composed canvases (libwebp's decoder keeps two) beside
        // the frame being decoded, the animated encoder's canvases and candidates, and the
        // encoded frames so far.
        let animation = self.frames.map_or(0, |frames| {
            pixels(self.stored) * 8 + out * ANIMATED_ENCODER_PX_BYTES + u64::from(frames) * out * 2
        });
        info.decode_bytes(decode_shrink)
            + look
            + animation
            + self.steps().iter().map(Step::scratch_bytes).sum::<u64>()
            // The images in flight: the resized one, and one output-sized copy at a time
            // (each step after the resize drops its input as it returns).
            + pixels(self.size) * 4
            + out * 4
            + out * encode::bytes_per_pixel(self.format)
    }
}

/// Plan a render and weigh it: every limit is checked here, before any decoding.
pub fn prepare(
    info: &SourceInfo,
    transform: &Transform,
    format: OutputFormat,
    limits: &Limits,
) -> Result<Plan> {
    prepare_from(info, transform, format, limits, Known::default())
}

fn prepare_from(
    info: &SourceInfo,
    transform: &Transform,
    format: OutputFormat,
    limits: &Limits,
    known: Known,
) -> Result<Plan> {
    limits.check_source(info)?;
    // From here on the crop's region of the stored pixels is the original: the layout starts
    // from it as displayed (EXIF then rot/flip), and its own crop is mapped back into it.
    let base = match known.base {
        Some(base) => base,
        None => crop_region(info, transform)?,
    };
    let base_size = (base.w as u32, base.h as u32);
    let orientation = info.orientation.then(user_orientation(transform));
    let mut placed = transform.clone();
    if let Some(gravity) = known.gravity {
        placed.gravity = Some(gravity);
    }
    // Before `trim` has seen the pixels the output size is not known: the whole image's
    // layout only weighs the decode, and the output limits wait for the trimmed plan.
    let untrimmed = transform.trim.is_some() && !known.seen;
    let side = if untrimmed {
        u32::MAX
    } else {
        limits.max_output_side
    };
    let layout = layout(orientation.display_size(base_size), &placed, side)?;
    if !untrimmed {
        limits.check_layout(&layout)?;
        limits.check_format(&layout, format)?;
    }
    // Work in stored pixels: crop and resize first, orient the small result last.
    let inner = orientation.crop_to_stored(layout.crop, base_size);
    let region = Rect {
        x: base.x + inner.x,
        y: base.y + inner.y,
        ..inner
    };
    let size = orientation.inverse().display_size(layout.size);
    let shrink = match (known.shrink, info.format) {
        (Some(shrink), _) => shrink,
        (None, SourceFormat::Jpeg) => limits.shrink.jpeg_shrink((region.w, region.h), size),
        (None, _) => 1,
    };
    let background = transform.background();
    let padded = layout.canvas != layout.size;
    let may_have_alpha = info.has_alpha || (padded && !background.is_opaque());
    let flatten = (may_have_alpha && !format.supports_alpha()).then_some({
        let mut opaque = background;
        opaque.0[3] = 255;
        opaque
    });
    // What is left to see in the pixels: the border, or where to crop (only where the
    // layout crops at all).
    let crops = (region.w, region.h) != (base.w, base.h);
    let auto = placed.gravity == Some(Gravity::Auto) && crops;
    let look = (!known.seen && (transform.trim.is_some() || auto)).then(|| {
        Box::new(Look {
            transform: transform.clone(),
            base,
        })
    });
    // An animation asked for as GIF or WebP stays animated, within the frame limits.
    let animation = info
        .animation
        .filter(|_| !transform.still && matches!(format, OutputFormat::Gif | OutputFormat::Webp));
    if let Some(animation) = &animation {
        limits.check_animation(animation, info.stored, layout.canvas)?;
    }
    let mut plan = Plan {
        stored: info.stored,
        region,
        shrink,
        orientation,
        size,
        linear: transform.linear,
        effects: EFFECTS
            .iter()
            .filter_map(|plan| plan(transform, size))
            .map(Step::Effect)
            .collect(),
        canvas: layout.canvas,
        offset: layout.offset,
        background,
        flatten,
        format,
        quality: transform.quality_for(format),
        memory: 0,
        look,
        frames: animation.map(|a| a.frames),
    };
    plan.memory = plan.weigh(info);
    if untrimmed {
        // The decode must fit; the rest is weighed (and refused) once trimmed, and a render
        // never needs more than the budget allows one. The trimmed output can be larger than
        // the whole image's (a tall content box under `w` alone): admit the largest the
        // trimmed plan may still pass, so the budget's accounting holds after the trim.
        let decode = info.decode_bytes(1) + ATTENTION_SCRATCH;
        let worst = plan.trimmed_at_most(transform, limits).weigh(info);
        plan.memory = plan
            .memory
            .max(worst)
            .min(limits.max_render_bytes)
            .max(decode);
    }
    if plan.memory > limits.max_render_bytes {
        return Err(Error::limit(
            "max_render_memory",
            format!(
                "this image would need about {} MiB to process; at most {} MiB are allowed",
                plan.memory >> 20,
                limits.max_render_bytes >> 20
            ),
        ));
    }
    Ok(plan)
}

impl Plan {
    /// This untrimmed plan with the largest output its trimmed plan could still have: the
    /// `w`×`h` box when both are given, else the output pixel limit (a side not given follows
    /// the content box, whatever its shape).
    fn trimmed_at_most(&self, transform: &Transform, limits: &Limits) -> Plan {
        let dpr = transform.dpr.unwrap_or(Dpr::ONE);
        let limit = limits.max_output_pixels.max(1);
        // The free side of a `w` or `h` alone: up to the side limit, within the pixel limit.
        let free = |given: u32| {
            let given = u64::from(given.max(1));
            (limit / given)
                .min(u64::from(limits.max_output_side))
                .max(1) as u32
        };
        let size = match (
            transform.width.map(|w| dpr.apply(w)),
            transform.height.map(|h| dpr.apply(h)),
        ) {
            // No size asked: the trimmed output is the content box, inside the whole image.
            (None, None) => return self.clone(),
            (Some(w), Some(h)) if u64::from(w) * u64::from(h) <= limit => (w.max(1), h.max(1)),
            (Some(w), None) => (w.max(1), free(w)),
            (None, Some(h)) => (free(h), h.max(1)),
            _ => {
                let side = (limit as f64).sqrt().ceil() as u32;
                (side, side)
            }
        };
        Plan {
            size,
            canvas: size,
            effects: EFFECTS
                .iter()
                .filter_map(|plan| plan(transform, size))
                .map(Step::Effect)
                .collect(),
            ..self.clone()
        }
    }

    /// The plan with what the decoded pixels `px` show (the trimmed border, the interesting
    /// part), and the pixels its steps run on. `decode` decodes the source again at another
    /// scale: when the trimmed region is small, the whole image's scale is too coarse for it.
    /// A plan with nothing to look at is returned as it is.
    pub fn see(
        &self,
        info: &SourceInfo,
        mut px: Pixels,
        limits: &Limits,
        timings: &mut Timings,
        mut decode: impl FnMut(u32) -> Result<Pixels>,
    ) -> Result<(Plan, Pixels)> {
        let Some(look) = &self.look else {
            return Ok((self.clone(), px));
        };
        let t = &look.transform;
        let again = |known: Known| prepare_from(info, t, self.format, limits, known);
        let mut known = Known {
            shrink: Some(self.shrink),
            seen: true,
            ..Known::default()
        };
        if let Some(spec) = t.trim {
            let find = |px: &Pixels| content_in_stored(px, look.base, self.stored, spec);
            let mut base = timings.time(trim::NAME, || find(&px));
            // The scale the trimmed region calls for: decode again if it is finer.
            let ideal = again(Known {
                base,
                shrink: None,
                ..known
            })?;
            if ideal.shrink < self.shrink {
                drop(px);
                px = timings.time(timings::DECODE, || decode(ideal.shrink))?;
                base = timings.time(trim::NAME, || find(&px));
                known.shrink = Some(ideal.shrink);
            }
            known.base = base;
        }
        let plan = again(known)?;
        let base = known.base.unwrap_or(look.base);
        let crops = (plan.region.w, plan.region.h) != (base.w, base.h);
        if t.gravity != Some(Gravity::Auto) || !crops {
            return Ok((plan, px));
        }
        let orientation = info.orientation.then(user_orientation(t));
        known.gravity = Some(timings.time(ATTENTION, || focus(&px, &plan, base, orientation)));
        Ok((again(known)?, px))
    }
}

/// The content box of `base` (in stored pixels) in the decoded `px`, back in stored pixels,
/// rounded outwards; `None` (the whole base) when it is all border.
fn content_in_stored(
    px: &Pixels,
    base: Rect,
    stored: (u32, u32),
    spec: crate::params::Trim,
) -> Option<Rect> {
    let (sx, sy) = scale(px, stored);
    let area = Rect {
        x: base.x * sx,
        y: base.y * sy,
        w: base.w * sx,
        h: base.h * sy,
    };
    let found = trim::content_box(px, area, spec)?;
    let x0 = (found.x / sx).floor().max(base.x);
    let y0 = (found.y / sy).floor().max(base.y);
    let x1 = ((found.x + found.w) / sx).ceil().min(base.x + base.w);
    let y1 = ((found.y + found.h) / sy).ceil().min(base.y + base.h);
    (x1 - x0 >= 1.0 && y1 - y0 >= 1.0).then_some(Rect {
        x: x0,
        y: y0,
        w: x1 - x0,
        h: y1 - y0,
    })
}

/// From stored to decoded pixels (the decoder may have shrunk the image).
fn scale(px: &Pixels, stored: (u32, u32)) -> (f64, f64) {
    (
        f64::from(px.width) / f64::from(stored.0.max(1)),
        f64::from(px.height) / f64::from(stored.1.max(1)),
    )
}

/// Where `gravity=auto` puts `plan`'s crop: the most interesting window of its size inside
/// `base`, found in the decoded pixels, as the focal point of the base as displayed.
fn focus(px: &Pixels, plan: &Plan, base: Rect, orientation: Orientation) -> Gravity {
    let (sx, sy) = scale(px, plan.stored);
    let area = Rect {
        x: base.x * sx,
        y: base.y * sy,
        w: base.w * sx,
        h: base.h * sy,
    };
    let window = (plan.region.w * sx, plan.region.h * sy);
    let (x, y) = attention::attention(px, area, window);
    // The window back in stored pixels, relative to the base, then as displayed.
    let stored = Rect {
        x: (x / sx - base.x).clamp(0.0, (base.w - plan.region.w).max(0.0)),
        y: (y / sy - base.y).clamp(0.0, (base.h - plan.region.h).max(0.0)),
        w: plan.region.w,
        h: plan.region.h,
    };
    let base_size = (base.w as u32, base.h as u32);
    let displayed_size = orientation.display_size(base_size);
    let shown = orientation.inverse().crop_to_stored(stored, displayed_size);
    let fraction = |centre: f64, len: u32| {
        (centre / f64::from(len.max(1)) * 10_000.0)
            .round()
            .clamp(0.0, 10_000.0) as u16
    };
    Gravity::Focal {
        x: fraction(shown.x + shown.w / 2.0, displayed_size.0),
        y: fraction(shown.y + shown.h / 2.0, displayed_size.1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ImageRequest;

    fn transform(q: &str) -> Transform {
        ImageRequest::parse(Some(q)).expect("query").transform
    }

    fn source(format: SourceFormat, stored: (u32, u32), exif: u8, alpha: bool) -> SourceInfo {
        SourceInfo {
            format,
            stored,
            orientation: Orientation::from_exif(exif),
            has_alpha: alpha,
            complete: true,
            decoder_overhead: u64::from(stored.0) * 3,
            decode_px_bytes: if alpha { 4 } else { 3 },
            animation: None,
        }
    }

    const FORMATS: [OutputFormat; 5] = [
        OutputFormat::Jpeg,
        OutputFormat::Png,
        OutputFormat::Gif,
        OutputFormat::Webp,
        OutputFormat::Avif,
    ];

    /// The weight as `prepare` computed it before renders were plans of steps, term for term.
    fn weight_before(info: &SourceInfo, t: &Transform, format: OutputFormat) -> u64 {
        let plan = layout(info.display_size(), t, u32::MAX).unwrap();
        let o = info.orientation;
        let crop = o.crop_to_stored(plan.crop, info.stored);
        let size = if o.swaps_axes() {
            (plan.size.1, plan.size.0)
        } else {
            plan.size
        };
        let shrink = match info.format {
            SourceFormat::Jpeg => Limits::default().shrink.jpeg_shrink((crop.w, crop.h), size),
            _ => 1,
        };
        let px = |(w, h): (u32, u32)| u64::from(w) * u64::from(h);
        let out = px(plan.canvas);
        let crop_h = (crop.h / f64::from(shrink)).ceil() as u64 + 1;
        let decoded_crop = Rect {
            x: 0.0,
            y: 0.0,
            w: crop.w / f64::from(shrink),
            h: crop.h / f64::from(shrink),
        };
        let scratch = match crate::pipeline::resize::preshrink(decoded_crop, size) {
            Some(mid) => px(mid) * 4 + u64::from(mid.0) * crop_h * 4,
            None => u64::from(size.0) * crop_h * 4,
        };
        info.decode_bytes(shrink)
            + scratch
            + px(size) * 4
            + out * 4
            + out * encode::bytes_per_pixel(format)
    }

    #[test]
    fn weight_is_what_it_was_for_every_plan_of_today() {
        let sources = [
            source(SourceFormat::Jpeg, (6000, 4000), 1, false),
            source(SourceFormat::Jpeg, (6000, 4000), 6, false),
            source(SourceFormat::Jpeg, (640, 481), 8, false),
            source(SourceFormat::Jpeg, (333, 2000), 3, false),
            source(SourceFormat::Png, (1000, 500), 1, true),
            source(SourceFormat::Png, (1000, 500), 5, false),
            source(SourceFormat::Webp, (300, 301), 7, true),
            source(SourceFormat::Gif, (37, 1000), 1, true),
        ];
        let queries = [
            "",
            "w=400",
            "h=100",
            "w=400&h=400",
            "w=400&h=300&gravity=left",
            "w=90&h=700&gravity=0.2,0.9",
            "w=400&h=400&fit=contain",
            "w=400&h=400&fit=pad",
            "w=400&h=100&fit=pad&bg=ff000080",
            "w=4000&h=4000&fit=scale-down",
            "w=301&h=7&fit=fill",
            "w=120&dpr=2.5",
            "w=2000&h=2000&fit=pad",
        ];
        let mut compared = 0;
        for info in &sources {
            for q in queries {
                for format in FORMATS {
                    let t = transform(q);
                    let limits = Limits {
                        max_output_side: u32::MAX,
                        max_output_pixels: u64::MAX,
                        max_avif_pixels: u64::MAX,
                        max_render_bytes: u64::MAX,
                        ..Limits::default()
                    };
                    let plan = prepare(info, &t, format, &limits).expect("plan");
                    assert_eq!(
                        plan.memory,
                        weight_before(info, &t, format),
                        "{info:?} {q} {format:?}"
                    );
                    compared += 1;
                }
            }
        }
        assert_eq!(compared, 8 * 13 * 5);
    }

    fn names(info: &SourceInfo, q: &str, format: OutputFormat) -> Vec<&'static str> {
        let plan = prepare(info, &transform(q), format, &Limits::default()).expect("plan");
        plan.steps().iter().map(Step::name).collect()
    }

    #[test]
    fn only_the_steps_a_render_needs() {
        let jpeg = source(SourceFormat::Jpeg, (400, 300), 1, false);
        let turned = source(SourceFormat::Jpeg, (400, 300), 6, false);
        let alpha = source(SourceFormat::Png, (400, 300), 1, true);
        let (j, p, w) = (OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::Webp);
        assert_eq!(names(&jpeg, "", j), ["resize"]);
        assert_eq!(names(&jpeg, "w=100", p), ["resize"]);
        assert_eq!(names(&turned, "w=100", j), ["resize", "orient"]);
        assert_eq!(names(&jpeg, "w=100&h=100&fit=pad", j), ["resize", "pad"]);
        // A canvas the image fills needs no pad, whatever `fit` says.
        assert_eq!(names(&jpeg, "w=400&h=300&fit=pad", j), ["resize"]);
        assert_eq!(
            names(&turned, "w=100&h=100&fit=pad", p),
            ["resize", "orient", "pad"]
        );
        // Turned, the resized image fills the canvas it was padded to: no pad.
        assert_eq!(
            names(&turned, "w=300&h=400&fit=pad", p),
            ["resize", "orient"]
        );
        // Flatten only where alpha meets a format without it.
        assert_eq!(names(&alpha, "w=100", j), ["resize", "flatten"]);
        assert_eq!(names(&alpha, "w=100", w), ["resize"]);
        assert_eq!(
            names(&jpeg, "w=100&h=100&fit=pad&bg=00ff0080", j),
            ["resize", "pad", "flatten"]
        );
        assert_eq!(
            names(&jpeg, "w=100&h=100&fit=pad&bg=00ff0080", p),
            ["resize", "pad"]
        );
        assert_eq!(
            names(&jpeg, "w=100&h=100&fit=pad&bg=00ff00", j),
            ["resize", "pad"]
        );
    }

    #[test]
    fn plan_is_in_stored_pixels_and_carries_the_output() {
        // Displayed 300x400 (stored 400x300, turned 90°), covered by a 100x200 box: the
        // displayed crop is 200x400 in the middle, stored as 400x200 rows 50..250.
        let turned = source(SourceFormat::Png, (400, 300), 6, false);
        let plan = prepare(
            &turned,
            &transform("w=100&h=200&q=55&bg=336699"),
            OutputFormat::Webp,
            &Limits::default(),
        )
        .expect("plan");
        assert_eq!(plan.orientation, Orientation::rotate(90).unwrap());
        assert_eq!(
            plan.region,
            Rect {
                x: 0.0,
                y: 50.0,
                w: 400.0,
                h: 200.0
            }
        );
        assert_eq!(
            (plan.size, plan.canvas, plan.offset),
            ((200, 100), (100, 200), (0, 0))
        );
        assert_eq!((plan.format, plan.quality), (OutputFormat::Webp, 55));
        assert_eq!(plan.background, Rgba([0x33, 0x66, 0x99, 255]));
        assert_eq!((plan.shrink, plan.flatten), (1, None));
        assert!(plan.effects.is_empty());
        let translucent = prepare(
            &turned,
            &transform("w=100&h=100&fit=pad&bg=33669980"),
            OutputFormat::Jpeg,
            &Limits::default(),
        )
        .expect("plan");
        assert_eq!(translucent.flatten, Some(Rgba([0x33, 0x66, 0x99, 255])));
    }

    #[test]
    fn over_budget_is_refused_before_any_work() {
        let big = source(SourceFormat::Png, (8000, 8000), 1, true);
        let limits = Limits {
            max_render_bytes: 64 << 20,
            ..Limits::default()
        };
        let err = prepare(&big, &transform("w=100"), OutputFormat::Png, &limits).unwrap_err();
        assert_eq!(err.status(), 422);
        assert!(prepare(
            &big,
            &transform("w=100"),
            OutputFormat::Png,
            &Limits::default()
        )
        .is_ok());
    }

    #[test]
    fn animations_are_planned_animated_only_as_gif_or_webp_within_the_frame_limits() {
        let mut anim = source(SourceFormat::Gif, (400, 300), 1, true);
        anim.animation = Some(crate::pipeline::Animation {
            frames: 120,
            duration_ms: 1200,
            plays: None,
        });
        let limits = Limits::default();
        let plan = |q: &str, f| prepare(&anim, &transform(q), f, &limits);
        let webp = plan("w=100", OutputFormat::Webp).expect("animated");
        assert_eq!(webp.frames, Some(120));
        let still = plan("w=100", OutputFormat::Png).expect("still");
        assert_eq!(still.frames, None);
        // The canvases, the encoder and the encoded frames are weighed.
        assert!(webp.memory > still.memory + 120 * 100 * 75 * 2, "{webp:?}");
        assert_eq!(
            plan("w=100&anim=0", OutputFormat::Gif).unwrap().frames,
            None
        );
        for (max_frames, max_animation_pixels, limit) in [
            (119, u64::MAX, "max_frames"),
            (300, 120 * 400 * 300 - 1, "max_animation_pixels"),
        ] {
            let tight = Limits {
                max_frames,
                max_animation_pixels,
                ..Limits::default()
            };
            let err = prepare(&anim, &transform("w=100"), OutputFormat::Gif, &tight).unwrap_err();
            assert_eq!(err.status(), 422);
            assert!(err.to_string().contains(limit), "{err}");
            // A still of the same animation is within them.
            assert!(prepare(&anim, &transform("w=100&anim=0"), OutputFormat::Gif, &tight).is_ok());
            assert!(prepare(&anim, &transform("w=100"), OutputFormat::Avif, &tight).is_ok());
        }
        // Encoding counts too: 120 frames upscaled to 1600x1200 are 230 MP of output.
        let err = plan("w=1600", OutputFormat::Webp).unwrap_err();
        assert!(err.to_string().contains("max_animation_pixels"), "{err}");
    }

    /// `crop` × every EXIF orientation × rotation × fit: the canvas is what the box makes of
    /// the clipped crop (turned by `rot`), and the region is the crop's stored pixels.
    #[test]
    fn crop_dimensions_for_every_orientation_rotation_and_fit() {
        let stored = (640u32, 480u32);
        // (query, displayed region (x, y, w, h) for a landscape and a portrait display).
        let crops = [
            ("10,20,300,200", (10, 20, 300, 200), (10, 20, 300, 200)),
            ("0.25,0.1,0.5,0.5", (160, 48, 320, 240), (120, 64, 240, 320)),
            (
                "400,300,1000,1000",
                (400, 300, 240, 180),
                (400, 300, 80, 340),
            ),
        ];
        let boxes = [(None, None), (Some(200), None), (Some(200), Some(90))];
        let mut checked = 0;
        for exif in 1..=8u8 {
            let info = source(SourceFormat::Jpeg, stored, exif, false);
            for (crop, landscape, portrait) in crops {
                let (_, _, cw, ch) = if exif >= 5 { portrait } else { landscape };
                for rot in [0u32, 90, 180, 270] {
                    for (w, h) in boxes {
                        for fit in ["cover", "contain", "scale-down", "fill", "pad"] {
                            let mut q = vec![
                                format!("crop={crop}"),
                                format!("rot={rot}"),
                                format!("fit={fit}"),
                            ];
                            q.extend(w.map(|w| format!("w={w}")));
                            q.extend(h.map(|h| format!("h={h}")));
                            let q = q.join("&");
                            let plan = prepare(
                                &info,
                                &transform(&q),
                                OutputFormat::Png,
                                &Limits::default(),
                            )
                            .unwrap_or_else(|e| panic!("{exif} {q}: {e}"));
                            let (dw, dh) = if rot % 180 == 90 { (ch, cw) } else { (cw, ch) };
                            let (dw, dh) = (f64::from(dw), f64::from(dh));
                            let down = |s: f64| if fit == "scale-down" { s.min(1.0) } else { s };
                            let expected = match (w.map(f64::from), h.map(f64::from)) {
                                (None, None) => (dw, dh),
                                (Some(bw), None) => {
                                    let s = down(bw / dw);
                                    ((dw * s).round(), (dh * s).round())
                                }
                                (None, Some(_)) => unreachable!(),
                                (Some(bw), Some(bh)) => match fit {
                                    "cover" | "fill" | "pad" => (bw, bh),
                                    _ => {
                                        let s = down((bw / dw).min(bh / dh));
                                        ((dw * s).round().min(bw), (dh * s).round().min(bh))
                                    }
                                },
                            };
                            assert_eq!(
                                plan.canvas,
                                (expected.0 as u32, expected.1 as u32),
                                "exif {exif}, {q}"
                            );
                            let r = plan.region;
                            assert!(
                                r.x >= -1e-9
                                    && r.y >= -1e-9
                                    && r.x + r.w <= f64::from(stored.0) + 1e-6
                                    && r.y + r.h <= f64::from(stored.1) + 1e-6,
                                "exif {exif}, {q}: region {r:?} outside the stored pixels"
                            );
                            if w.is_none() || fit != "cover" {
                                // Nothing cut by the box: the region is the whole crop, stored.
                                let want = if exif >= 5 { (ch, cw) } else { (cw, ch) };
                                assert_eq!(
                                    (r.w, r.h),
                                    (f64::from(want.0), f64::from(want.1)),
                                    "exif {exif}, {q}"
                                );
                            }
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 8 * 3 * 4 * 3 * 5);
        // The DCT shrink is chosen from the cropped region: a 100x100 crop to 50 wide is
        // a 2x shrink, where the whole 6000x4000 image would allow 8x.
        let big = source(SourceFormat::Jpeg, (6000, 4000), 1, false);
        let whole = prepare(
            &big,
            &transform("w=50"),
            OutputFormat::Png,
            &Limits::default(),
        )
        .unwrap();
        let cropped = prepare(
            &big,
            &transform("crop=100,100,100,100&w=50"),
            OutputFormat::Png,
            &Limits::default(),
        )
        .unwrap();
        assert!(
            whole.shrink > cropped.shrink,
            "{} {}",
            whole.shrink,
            cropped.shrink
        );
        assert_eq!(
            (cropped.region.x, cropped.region.y, cropped.region.w),
            (100.0, 100.0, 100.0)
        );
        // Entirely outside the image: known only from its size, a 400 naming `crop`.
        let err = prepare(
            &big,
            &transform("crop=6000,0,10,10"),
            OutputFormat::Png,
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(
            matches!(err, Error::InvalidParam { ref param, .. } if param == "crop"),
            "{err:?}"
        );
    }

    /// One query of the dimension tests: its parameters and its text.
    struct Combination {
        rot: u32,
        w: Option<u32>,
        h: Option<u32>,
        fit: &'static str,
        ratio: f64,
        gravity: &'static str,
        query: String,
    }

    /// Every rotation x flip x box x fit x dpr x gravity, as a query.
    fn combinations(
        boxes: &[(Option<u32>, Option<u32>)],
        gravities: &[&'static str],
    ) -> Vec<Combination> {
        let mut all = Vec::new();
        for rot in [0u32, 90, 180, 270] {
            for flip in ["", "h", "v", "hv"] {
                for &(w, h) in boxes {
                    for fit in ["cover", "contain", "scale-down", "fill", "pad"] {
                        for (dpr, ratio) in [("1", 1.0), ("1.5", 1.5)] {
                            for &gravity in gravities {
                                let mut q = vec![
                                    format!("rot={rot}"),
                                    format!("fit={fit}"),
                                    format!("dpr={dpr}"),
                                    format!("gravity={gravity}"),
                                ];
                                if !flip.is_empty() {
                                    q.push(format!("flip={flip}"));
                                }
                                q.extend(w.map(|w| format!("w={w}")));
                                q.extend(h.map(|h| format!("h={h}")));
                                all.push(Combination {
                                    rot,
                                    w,
                                    h,
                                    fit,
                                    ratio,
                                    gravity,
                                    query: q.join("&"),
                                });
                            }
                        }
                    }
                }
            }
        }
        all
    }

    /// Every combination of EXIF orientation, rotation, flip, fit, box, dpr and gravity gives
    /// the canvas an independent computation expects, a region inside the stored pixels, and
    /// steps that turn the resized pixels into exactly that canvas.
    #[test]
    fn dimensions_for_every_orientation_rotation_and_fit() {
        let stored = (640u32, 480u32);
        let boxes = [
            (None, None),
            (Some(200), None),
            (None, Some(90)),
            (Some(200), Some(90)),
            (Some(90), Some(200)),
            (Some(1000), Some(300)),
        ];
        let combinations = combinations(&boxes, &["center", "top-left", "0.9,0.1"]);
        let mut checked = 0;
        for exif in 1..=8u8 {
            let info = source(SourceFormat::Png, stored, exif, false);
            for c in &combinations {
                let q = &c.query;
                let t = transform(q);
                let plan = prepare(&info, &t, OutputFormat::Png, &Limits::default())
                    .unwrap_or_else(|e| panic!("{exif} {q}: {e}"));
                // Displayed: EXIF 5..8 and quarter turns swap the axes.
                let swaps = (exif >= 5) != (c.rot % 180 == 90);
                let (dw, dh) = if swaps {
                    (f64::from(stored.1), f64::from(stored.0))
                } else {
                    (f64::from(stored.0), f64::from(stored.1))
                };
                let expected = expected_canvas((dw, dh), (c.w, c.h), c.fit, c.ratio);
                assert_eq!(plan.canvas, expected, "exif {exif}, {q}");
                let r = plan.region;
                assert!(
                    r.x >= -1e-9
                        && r.y >= -1e-9
                        && r.x + r.w <= f64::from(stored.0) + 1e-6
                        && r.y + r.h <= f64::from(stored.1) + 1e-6,
                    "exif {exif}, {q}: region {r:?} outside the stored pixels"
                );
                // The oriented resized image fits the canvas (pad places it).
                let shown = plan.orientation.display_size(plan.size);
                assert!(
                    shown.0 <= plan.canvas.0 && shown.1 <= plan.canvas.1,
                    "exif {exif}, {q}: {shown:?} on {:?}",
                    plan.canvas
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 8 * 4 * 4 * 6 * 5 * 2 * 3);
    }

    /// The canvas a box gives an image displayed at `(dw, dh)`, computed independently of
    /// `geometry::layout` (as the tests above do, inline).
    fn expected_canvas(
        (dw, dh): (f64, f64),
        (w, h): (Option<u32>, Option<u32>),
        fit: &str,
        ratio: f64,
    ) -> (u32, u32) {
        let bw = w.map(|v| (f64::from(v) * ratio).round());
        let bh = h.map(|v| (f64::from(v) * ratio).round());
        let down = |s: f64| if fit == "scale-down" { s.min(1.0) } else { s };
        let (x, y) = match (bw, bh) {
            (None, None) => (dw, dh),
            (Some(bw), None) => {
                let s = down(bw / dw);
                ((dw * s).round(), (dh * s).round())
            }
            (None, Some(bh)) => {
                let s = down(bh / dh);
                ((dw * s).round(), (dh * s).round())
            }
            (Some(bw), Some(bh)) => match fit {
                "cover" | "fill" | "pad" => (bw, bh),
                _ => {
                    let s = down((bw / dw).min(bh / dh));
                    ((dw * s).round().min(bw), (dh * s).round().min(bh))
                }
            },
        };
        (x as u32, y as u32)
    }

    /// Stored pixels of `size`: white, with a textured (high-contrast, saturated) patch at
    /// `patch` (x, y, w, h).
    fn framed((w, h): (u32, u32), patch: (u32, u32, u32, u32)) -> Pixels {
        let (px, py, pw, ph) = patch;
        Pixels::rgb_from_fn(w, h, |x, y| {
            let inside = x >= px && x < px + pw && y >= py && y < py + ph;
            if !inside {
                [255, 255, 255]
            } else if (x / 8 + y / 8) % 2 == 0 {
                [200, 30, 40]
            } else {
                [20, 120, 30]
            }
        })
    }

    /// Plan, decode (the given pixels, or them shrunk as a JPEG decode would be) and see.
    fn seen(info: &SourceInfo, q: &str, px: &Pixels) -> Plan {
        let t = transform(q);
        let plan = prepare(info, &t, OutputFormat::Png, &Limits::default())
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        let mut timings = Timings::default();
        let (seen, _) = plan
            .see(info, px.clone(), &Limits::default(), &mut timings, |_| {
                Ok(px.clone())
            })
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        assert!(seen.look.is_none(), "{q}: nothing left to look at");
        seen
    }

    /// `trim`: every combination of EXIF orientation, rotation, flip, fit, box, dpr and
    /// gravity (`auto` included) plans the canvas of the *content box* as displayed, with a
    /// region inside it; and `gravity=auto` alone keeps the interesting patch in the crop.
    #[test]
    fn trim_and_auto_gravity_dimensions_for_every_orientation_rotation_and_fit() {
        let stored = (320u32, 240u32);
        // Smaller than the narrowest cover window (108 of 320, 144 of 240), off-centre.
        let patch = (30, 20, 60, 45);
        let px = framed(stored, patch);
        let boxes = [
            (None, None),
            (Some(200), None),
            (None, Some(90)),
            (Some(200), Some(90)),
            (Some(90), Some(200)),
        ];
        let combinations = combinations(&boxes, &["center", "0.9,0.1", "auto"]);
        let (x0, y0) = (f64::from(patch.0), f64::from(patch.1));
        let (x1, y1) = (x0 + f64::from(patch.2), y0 + f64::from(patch.3));
        let mut checked = 0;
        for exif in 1..=8u8 {
            let info = source(SourceFormat::Png, stored, exif, false);
            for c in &combinations {
                let untrimmed = &c.query;
                let q = format!("{untrimmed}&trim=10");
                let plan = seen(&info, &q, &px);
                // Displayed: EXIF 5..8 and quarter turns swap the axes.
                let swaps = (exif >= 5) != (c.rot % 180 == 90);
                let displayed = |(a, b): (u32, u32)| {
                    let (a, b) = (f64::from(a), f64::from(b));
                    if swaps {
                        (b, a)
                    } else {
                        (a, b)
                    }
                };
                let content = displayed((patch.2, patch.3));
                let want = expected_canvas(content, (c.w, c.h), c.fit, c.ratio);
                assert_eq!(plan.canvas, want, "exif {exif}, {q}");
                let r = plan.region;
                assert!(
                    r.x >= x0 - 1e-6
                        && r.y >= y0 - 1e-6
                        && r.x + r.w <= x1 + 1e-6
                        && r.y + r.h <= y1 + 1e-6,
                    "exif {exif}, {q}: region {r:?} outside the content"
                );
                let shown = plan.orientation.display_size(plan.size);
                assert!(shown.0 <= plan.canvas.0 && shown.1 <= plan.canvas.1);
                // Without trim: the whole image's canvas, and `auto` keeps the patch's
                // centre inside a cover crop.
                let plan = seen(&info, untrimmed, &px);
                let want = expected_canvas(displayed(stored), (c.w, c.h), c.fit, c.ratio);
                assert_eq!(plan.canvas, want, "exif {exif}, {untrimmed}");
                let r = plan.region;
                let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
                if c.gravity == "auto" {
                    assert!(
                        r.x <= cx && cx <= r.x + r.w && r.y <= cy && cy <= r.y + r.h,
                        "exif {exif}, {untrimmed}: region {r:?} misses the patch"
                    );
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 8 * 4 * 4 * 5 * 5 * 2 * 3);
    }

    /// The render is admitted on the untrimmed plan's weight: it must cover what the trimmed
    /// plan then needs, even when the content box is far taller than the whole image (its
    /// output under `w` alone is then many times the untrimmed output).
    #[test]
    fn the_admitted_weight_covers_the_trimmed_plan() {
        let stored = (2000u32, 300u32);
        let info = source(SourceFormat::Png, stored, 1, false);
        // A 60x300 strip: under w=1200 the trimmed output is 1200x6000, the whole image's
        // 1200x180.
        let px = framed(stored, (970, 0, 60, 300));
        for q in [
            "w=1200&trim=10",
            "w=1200&trim=10&sharpen=1",
            "h=3000&trim=10",
            "w=600&h=2400&fit=fill&trim=10&dpr=2",
            "trim=10",
        ] {
            let untrimmed = prepare(&info, &transform(q), OutputFormat::Png, &Limits::default())
                .unwrap_or_else(|e| panic!("{q}: {e}"));
            let trimmed = seen(&info, q, &px);
            assert!(
                untrimmed.memory >= trimmed.memory,
                "{q}: admitted {} < needed {} ({:?})",
                untrimmed.memory,
                trimmed.memory,
                trimmed.canvas
            );
        }
    }

    /// A trimmed region much smaller than the image needs a finer JPEG scale than the whole
    /// image: the render decodes again at it, and plans the resize from that decode.
    #[test]
    fn trim_decodes_again_when_the_content_needs_a_finer_scale() {
        let stored = (4000u32, 3000u32);
        let info = source(SourceFormat::Jpeg, stored, 1, false);
        let t = transform("w=200&trim=10");
        let plan = prepare(&info, &t, OutputFormat::Jpeg, &Limits::default()).unwrap();
        assert_eq!(plan.shrink, 8);
        // Weighed for the largest decode the trimmed region may call for.
        assert!(plan.memory >= info.decode_bytes(1), "{}", plan.memory);
        // Content: 800x600 at (1600, 1200) stored; at 1/8 that is 100x75 at (200, 150).
        let eighth = framed((500, 375), (200, 150, 100, 75));
        let mut asked = Vec::new();
        let mut timings = Timings::default();
        let (seen, px) = plan
            .see(&info, eighth, &Limits::default(), &mut timings, |shrink| {
                asked.push(shrink);
                let s = stored.0 / shrink;
                Ok(framed(
                    (s, s * 3 / 4),
                    (1600 / shrink, 1200 / shrink, 800 / shrink, 600 / shrink),
                ))
            })
            .unwrap();
        // 800 wide to 200 wants 1/2 (4x is under the 5x that 1/4 needs), where the whole
        // image took 1/8.
        assert_eq!(asked, [2]);
        assert_eq!((seen.shrink, px.width), (2, 2000));
        assert_eq!(
            seen.region,
            Rect {
                x: 1600.0,
                y: 1200.0,
                w: 800.0,
                h: 600.0
            }
        );
        assert_eq!(seen.canvas, (200, 150));
        let names: Vec<_> = timings.iter().map(|(n, _)| n).collect();
        assert_eq!(names, [trim::NAME, timings::DECODE, trim::NAME]);
        // All border: the image is kept whole.
        let blank = framed((500, 375), (0, 0, 0, 0));
        let (seen, _) = plan
            .see(
                &info,
                blank.clone(),
                &Limits::default(),
                &mut Timings::default(),
                |_| Ok(blank.clone()),
            )
            .unwrap();
        assert_eq!((seen.canvas, seen.shrink), ((200, 150), 8));
        assert_eq!(
            seen.region,
            Rect {
                x: 0.0,
                y: 0.0,
                w: 4000.0,
                h: 3000.0
            }
        );
    }
}
