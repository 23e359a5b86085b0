//! The URL parameters, each declared once.
//!
//! One [`Param`] per parameter: its name, what it accepts, its one-line doc, its parser, its
//! canonical spelling, whether it is part of the rendition cache key, and its cost class
//! (which allow-list caps it). Parsing ([`ImageRequest::parse`]), the canonical query (logs,
//! cache keys), the policy's caps (`Policy::apply` walks [`TABLE`]), the CLI's flags
//! (`imgfn transform --w 400`) and the README's parameter table ([`markdown_table`], checked
//! by a test) all derive from [`TABLE`]: a new parameter is a field of [`Transform`] and an
//! entry here.

use super::request::{preset_name, ImageRequest, Mode, Output};
use super::values::{
    parse_color, parse_dimension, parse_dpr, parse_fit, parse_flag, parse_flip, parse_format,
    parse_gravity, parse_quality, parse_rotation, parse_sigma, Dpr, Fit, Flip, FormatParam,
    Gravity, OutputFormat, Rgba, Rotation, Sigma,
};
use super::values::{parse_crop, parse_srcset, parse_trim, Crop, Srcset, Trim, MAX_SRCSET};
use crate::error::{Error, Result};

/// What the pixels of a rendition depend on: the cache key (with the resolved output
/// format). Every field is `None` when the URL leaves it out, so equal URLs give equal keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Transform {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub dpr: Option<Dpr>,
    pub fit: Option<Fit>,
    pub gravity: Option<Gravity>,
    pub quality: Option<u8>,
    pub background: Option<Rgba>,
    pub rotation: Option<Rotation>,
    pub flip: Option<Flip>,
    pub blur: Option<Sigma>,
    pub sharpen: Option<Sigma>,
    /// `lin=1`: resize in linear light.
    pub linear: bool,
    pub crop: Option<Crop>,
    pub trim: Option<Trim>,
    /// `anim=0`: an animation's first frame only.
    pub still: bool,
}

/// How a parameter's value is read and written by the policy: one optional field.
#[derive(Clone, Copy)]
pub struct Field<T> {
    pub get: fn(&ImageRequest) -> Option<T>,
    pub set: fn(&mut ImageRequest, Option<T>),
}

/// The cost class of a parameter: what it multiplies in the space of renditions, and so
/// which allow-list bounds it (see `policy.rs`).
#[derive(Clone, Copy)]
pub enum Cost {
    /// A size in CSS pixels: snapped to (or refused off) the size ladder.
    Size(Field<u32>),
    /// A device pixel ratio: snapped to the ratio ladder, dropped without a box.
    Ratio(Field<Dpr>),
    /// An encoder quality: capped, and rounded to steps under a ladder.
    Quality(Field<u8>),
    /// A position inside the image: rounded to a grid under a ladder.
    Position(Field<Gravity>),
    /// A colour: must be on the list of allowed colours under a ladder.
    Colour(Field<Rgba>),
    /// The strength of an effect: snapped up to a short ladder of amounts under a ladder.
    Amount(Field<Sigma>),
    /// A region of the image: fractions rounded to a grid, pixels refused under a ladder.
    Region(Field<Crop>),
    /// A border to trim: the threshold rounded to a few steps, the colour one of the allowed
    /// colours under a ladder.
    Trim(Field<Trim>),
    /// One of a few named choices, each cheap: free.
    Choice,
    /// The output format: must be on the list of allowed formats.
    Format,
    /// Changes how the response is sent, never its bytes: not in the cache key.
    Response,
    /// A name for a configured set of parameters: bounded by the configured list, expanded
    /// by the policy; the expansion is in the cache key, the name is not.
    Preset,
}

impl Cost {
    /// The class's name, as the README's table shows it.
    pub fn name(&self) -> &'static str {
        match self {
            Cost::Size(_) => "size",
            Cost::Ratio(_) => "ratio",
            Cost::Quality(_) => "quality",
            Cost::Position(_) => "position",
            Cost::Colour(_) => "colour",
            Cost::Amount(_) => "amount",
            Cost::Region(_) => "region",
            Cost::Trim(_) => "trim",
            Cost::Choice => "choice",
            Cost::Format => "format",
            Cost::Response => "response",
            Cost::Preset => "preset",
        }
    }
}

/// One URL parameter.
pub struct Param {
    pub name: &'static str,
    /// What values it accepts (in 400 messages, the CLI's help and the README).
    pub accepts: &'static str,
    /// What it does, in one line.
    pub doc: &'static str,
    pub cost: Cost,
    /// Parse a value into the request (a repeated parameter is refused before this).
    parse: fn(&mut ImageRequest, &str) -> Result<()>,
    /// The canonical spelling of the value, when the request has one.
    show: fn(&ImageRequest) -> Option<String>,
}

impl Param {
    /// Whether the value is part of the rendition cache key.
    pub fn in_key(&self) -> bool {
        !matches!(self.cost, Cost::Response | Cost::Preset)
    }

    /// The canonical value of this parameter in `req`, if it is set.
    pub fn value(&self, req: &ImageRequest) -> Option<String> {
        (self.show)(req)
    }
}

/// `Field` for `req.transform.$field`.
macro_rules! field {
    ($f:ident) => {
        Field {
            get: |r| r.transform.$f,
            set: |r, v| r.transform.$f = v,
        }
    };
}

/// Every parameter of the URL API, in canonical order.
pub static TABLE: &[Param] = &[
    Param {
        name: "preset",
        accepts: "the name of a configured preset (IMGFN_PRESETS)",
        doc: "The preset's parameters; the URL may add parameters the preset leaves out (one it sets is a 400). Under IMGFN_ONLY_PRESETS, the only transformation allowed.",
        cost: Cost::Preset,
        parse: |r, v| {
            r.preset = Some(preset_name(v)?);
            Ok(())
        },
        show: |r| r.preset.clone(),
    },
    Param {
        name: "w",
        accepts: "an integer from 1 to 8192",
        doc: "Width of the target box in CSS pixels; with only `w`, the height follows the aspect ratio.",
        cost: Cost::Size(field!(width)),
        parse: |r, v| {
            r.transform.width = Some(parse_dimension("w", v)?);
            Ok(())
        },
        show: |r| r.transform.width.map(|v| v.to_string()),
    },
    Param {
        name: "h",
        accepts: "an integer from 1 to 8192",
        doc: "Height of the target box in CSS pixels; with only `h`, the width follows the aspect ratio.",
        cost: Cost::Size(field!(height)),
        parse: |r, v| {
            r.transform.height = Some(parse_dimension("h", v)?);
            Ok(())
        },
        show: |r| r.transform.height.map(|v| v.to_string()),
    },
    Param {
        name: "dpr",
        accepts: "a number from 1 to 4, e.g. 1.5",
        doc: "Multiplies `w` and `h` (for `srcset` 2x); rounded to 0.01.",
        cost: Cost::Ratio(field!(dpr)),
        parse: |r, v| {
            r.transform.dpr = Some(parse_dpr(v)?);
            Ok(())
        },
        show: |r| r.transform.dpr.map(Dpr::canonical),
    },
    Param {
        name: "fit",
        accepts: "one of cover, contain, scale-down, fill, pad",
        doc: "cover (default): fill the box exactly, crop the overflow by `gravity`; contain: largest size inside the box, aspect kept; scale-down: like contain but never larger than the original; fill: stretch to exactly w×h; pad: contain, then pad to exactly w×h with `bg`, centred.",
        cost: Cost::Choice,
        parse: |r, v| {
            r.transform.fit = Some(parse_fit(v)?);
            Ok(())
        },
        show: |r| r.transform.fit.map(|f| f.name().to_string()),
    },
    Param {
        name: "gravity",
        accepts: "one of center, top, bottom, left, right, top-left, top-right, bottom-left, \
                  bottom-right, auto, or a focal point X,Y with X and Y from 0 to 1",
        doc: "Where `cover` keeps the image when it crops (default center); a focal point is \
              centred in the crop when possible; `auto` keeps the most interesting part \
              (edges, skin tones and saturation, as libvips' attention).",
        cost: Cost::Position(field!(gravity)),
        parse: |r, v| {
            r.transform.gravity = Some(parse_gravity(v)?);
            Ok(())
        },
        show: |r| r.transform.gravity.map(Gravity::canonical),
    },
    Param {
        name: "fmt",
        accepts: "one of jpeg, jpg, png, webp, avif, gif, auto, json, thumbhash",
        doc: "Output format; default: the original's own. `auto`: AVIF if `Accept` lists \
              `image/avif`, else WebP if it lists `image/webp`, else JPEG (PNG when the image \
              has alpha); for an animation WebP if accepted, else GIF; with `Vary: Accept`. `json`: the original's metadata instead of pixels. \
              `thumbhash`: the original's ThumbHash placeholder alone.",
        cost: Cost::Format,
        parse: |r, v| {
            match parse_format(v)? {
                FormatParam::Exact(f) => r.output = Output::Exact(f),
                FormatParam::Auto => r.output = Output::Auto,
                FormatParam::Json => r.mode = Mode::Metadata,
                FormatParam::Thumbhash => r.mode = Mode::Placeholder,
            }
            Ok(())
        },
        show: |r| r.format_param().map(|f| f.name().to_string()),
    },
    Param {
        name: "q",
        accepts: "an integer from 1 to 100",
        doc: "Quality for lossy formats; defaults: JPEG 80, WebP 80, AVIF 60.",
        cost: Cost::Quality(field!(quality)),
        parse: |r, v| {
            r.transform.quality = Some(parse_quality(v)?);
            Ok(())
        },
        show: |r| r.transform.quality.map(|q| q.to_string()),
    },
    Param {
        name: "bg",
        accepts: "a hex colour RRGGBB or RRGGBBAA",
        doc: "Colour for `pad` and for flattening alpha into JPEG (a leading `#`, sent as \
              `%23`, is allowed); default white.",
        cost: Cost::Colour(field!(background)),
        parse: |r, v| {
            r.transform.background = Some(parse_color(v)?);
            Ok(())
        },
        show: |r| r.transform.background.map(Rgba::hex),
    },
    Param {
        name: "crop",
        accepts: "X,Y,W,H: four integers (pixels) or four numbers with a `.` from 0 to 1 \
                  (fractions of the width and height), e.g. 0.1,0.2,0.5,0.5",
        doc: "Keep only this region of the original as displayed (after its EXIF orientation, \
              before `rot`/`flip`), before the resize: `w`, `h` and `fit` then apply to it; \
              clipped to the image.",
        cost: Cost::Region(field!(crop)),
        parse: |r, v| {
            r.transform.crop = Some(parse_crop(v)?);
            Ok(())
        },
        show: |r| r.transform.crop.map(Crop::canonical),
    },
    Param {
        name: "trim",
        accepts: "a threshold from 0 to 255, optionally followed by `,RRGGBB` or `,RRGGBBAA`",
        doc: "Remove the border of one colour around the image (the given colour, else the \
              top-left pixel's), where no channel differs from it by more than the threshold; \
              after `crop`, before the resize. An image that is all border is kept whole.",
        cost: Cost::Trim(field!(trim)),
        parse: |r, v| {
            r.transform.trim = Some(parse_trim(v)?);
            Ok(())
        },
        show: |r| r.transform.trim.map(Trim::canonical),
    },
    Param {
        name: "rot",
        accepts: "one of 0, 90, 180, 270",
        doc: "Rotate clockwise by this many degrees, after the EXIF orientation; `w` and `h` \
              refer to the rotated image.",
        cost: Cost::Choice,
        parse: |r, v| {
            r.transform.rotation = parse_rotation(v)?;
            Ok(())
        },
        show: |r| r.transform.rotation.map(|v| v.degrees().to_string()),
    },
    Param {
        name: "flip",
        accepts: "one of h, v, hv",
        doc: "Mirror left-right (h), top-bottom (v) or both, after the rotation.",
        cost: Cost::Choice,
        parse: |r, v| {
            r.transform.flip = Some(parse_flip(v)?);
            Ok(())
        },
        show: |r| r.transform.flip.map(|f| f.name().to_string()),
    },
    Param {
        name: "blur",
        accepts: "a number from 0.3 to 100",
        doc: "Gaussian blur of the output, the standard deviation in output pixels \
              (a three-pass box approximation above 3).",
        cost: Cost::Amount(field!(blur)),
        parse: |r, v| {
            r.transform.blur = Some(parse_sigma("blur", v, 3, 1000)?);
            Ok(())
        },
        show: |r| r.transform.blur.map(Sigma::canonical),
    },
    Param {
        name: "sharpen",
        accepts: "a number from 0.3 to 10",
        doc: "Unsharp mask of the output (amount 1), the blur's standard deviation in output \
              pixels: crisper thumbnails after a large reduction.",
        cost: Cost::Amount(field!(sharpen)),
        parse: |r, v| {
            r.transform.sharpen = Some(parse_sigma("sharpen", v, 3, 100)?);
            Ok(())
        },
        show: |r| r.transform.sharpen.map(Sigma::canonical),
    },
    Param {
        name: "lin",
        accepts: "1 or 0",
        doc: "`1`: resize in linear light (16-bit intermediates), so that fine bright detail on \
              dark ground (stars, lit windows, text) keeps its brightness; default off \
              (resized in sRGB like most image services).",
        cost: Cost::Choice,
        parse: |r, v| {
            r.transform.linear = parse_flag("lin", v)?;
            Ok(())
        },
        show: |r| r.transform.linear.then(|| "1".to_string()),
    },
    Param {
        name: "anim",
        accepts: "1 or 0",
        doc: "`0`: an animated GIF or WebP gives its first frame only (also under the frame \
              limits). By default an animation asked for as GIF, WebP or `auto` stays animated, \
              every frame resized alike, delays and loop count kept; AVIF, JPEG and PNG outputs \
              are its first frame.",
        cost: Cost::Choice,
        parse: |r, v| {
            r.transform.still = !parse_flag("anim", v)?;
            Ok(())
        },
        show: |r| r.transform.still.then(|| "0".to_string()),
    },
    Param {
        name: "download",
        accepts: "1 or 0 (1: sent as an attachment named after the image)",
        doc: "`1`: sent with `Content-Disposition: attachment` named after the key (`cat.jpg`; `cat.webp` when transformed to WebP).",
        cost: Cost::Response,
        parse: |r, v| {
            r.download = parse_flag("download", v)?;
            Ok(())
        },
        show: |r| r.download.then(|| "1".to_string()),
    },
    Param {
        name: "srcset",
        accepts: "with `fmt=json`: 1 to 16 widths (integers from 1 to 8192) or preset names, \
                  comma-separated",
        doc: "Adds `img` to the `fmt=json` answer: `src`, `srcset`, `sizes`, `width` and \
              `height` ready for an `<img>`, one candidate per width (the other parameters \
              kept, `fmt=auto`, signed when signing is on) or per preset, each with its exact \
              output size.",
        cost: Cost::Response,
        parse: |r, v| {
            r.srcset = Some(parse_srcset(v)?);
            Ok(())
        },
        show: |r| r.srcset.as_ref().map(Srcset::canonical),
    },
];

/// What `param` accepts, for its 400 message.
pub(crate) fn accepts(param: &str) -> &'static str {
    TABLE
        .iter()
        .find(|p| p.name == param)
        .map(|p| p.accepts)
        .unwrap_or("nothing")
}

/// Parse `(name, value)` pairs (already percent-decoded) by the table.
pub(super) fn parse_pairs(
    pairs: impl IntoIterator<Item = (String, String)>,
) -> Result<ImageRequest> {
    let mut req = ImageRequest::default();
    let mut seen = vec![false; TABLE.len()];
    for (name, value) in pairs {
        let Some(i) = TABLE.iter().position(|p| p.name == name) else {
            let names: Vec<&str> = TABLE.iter().map(|p| p.name).collect();
            return Err(Error::invalid_param(
                &name,
                format!("unknown parameter `{name}`; accepted: {}", names.join(", ")),
            ));
        };
        (TABLE[i].parse)(&mut req, &value)?;
        if std::mem::replace(&mut seen[i], true) {
            return Err(Error::invalid_param(
                &name,
                format!("`{name}` is given more than once"),
            ));
        }
    }
    if req.srcset.is_some() && req.mode != Mode::Metadata {
        return Err(Error::invalid_param(
            "srcset",
            format!(
                "`srcset` lists up to {MAX_SRCSET} candidates in the `fmt=json` answer: add `fmt=json`"
            ),
        ));
    }
    Ok(req)
}

/// The canonical query of `req`: the table's order, each value in its canonical spelling.
pub(super) fn canonical(req: &ImageRequest) -> String {
    TABLE
        .iter()
        .filter_map(|p| p.value(req).map(|v| format!("{}={v}", p.name)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The README's parameter table, generated from [`TABLE`] (a test keeps the README equal).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| Parameter | Accepts | What it does | Cost class | In the cache key |\n\
         |---|---|---|---|---|\n",
    );
    for p in TABLE {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            p.name,
            p.accepts,
            p.doc,
            p.cost.name(),
            if p.in_key() { "yes" } else { "no" }
        ));
    }
    out
}

impl Transform {
    pub fn fit(&self) -> Fit {
        self.fit.unwrap_or_default()
    }

    pub fn gravity(&self) -> Gravity {
        self.gravity.unwrap_or_default()
    }

    pub fn background(&self) -> Rgba {
        self.background.unwrap_or_default()
    }

    /// Target box in device pixels (`w`/`h` times `dpr`).
    pub fn target_box(&self) -> (Option<u32>, Option<u32>) {
        let dpr = self.dpr.unwrap_or_default();
        (
            self.width.map(|w| dpr.apply(w)),
            self.height.map(|h| dpr.apply(h)),
        )
    }

    /// Quality for `format`: the URL's `q`, or the format's default.
    pub fn quality_for(&self, format: OutputFormat) -> u8 {
        self.quality.unwrap_or(format.default_quality())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's parameter table is the generated one, byte for byte: regenerate it with
    /// `cargo run -- params` and paste it between the markers.
    #[test]
    fn readme_table_is_generated_from_the_table() {
        let readme = include_str!("../../README.md");
        let start = "<!-- params-table:start -->\n";
        let end = "<!-- params-table:end -->";
        let from = readme.find(start).expect("README has the start marker") + start.len();
        let to = readme[from..].find(end).expect("README has the end marker") + from;
        assert_eq!(
            &readme[from..to],
            markdown_table(),
            "README's parameter table is stale: run `cargo run -- params` and paste it"
        );
    }

    #[test]
    fn names_are_unique_and_docs_one_line() {
        for (i, p) in TABLE.iter().enumerate() {
            assert!(TABLE[..i].iter().all(|q| q.name != p.name), "{}", p.name);
            assert!(
                !p.doc.contains('\n') && !p.accepts.contains('\n'),
                "{}",
                p.name
            );
            assert!(
                !p.doc.contains('|') && !p.accepts.contains('|'),
                "{}",
                p.name
            );
        }
    }
}
