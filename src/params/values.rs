//! The typed values URL parameters parse into, each with its parser and canonical spelling.
//!
//! Parse, don't validate: every value is checked and converted here, so the rest of the code
//! never sees a raw string. No floats inside (dpr and focal points are fixed-point), so every
//! value is `Hash + Eq` and can be part of a cache key.

use crate::error::{Error, Result};

/// Largest `w`/`h` a URL may ask for (CSS pixels, before `dpr`).
pub const MAX_DIMENSION: u32 = 8192;

/// How the image is fitted into the `w`×`h` box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Fit {
    /// Fill the box exactly, cropping the overflow by gravity.
    #[default]
    Cover,
    /// Largest size inside the box, aspect ratio kept.
    Contain,
    /// Like contain, but never larger than the original.
    ScaleDown,
    /// Stretch to exactly the box.
    Fill,
    /// Contain, then pad to exactly the box with `bg`.
    Pad,
}

/// Where `cover` keeps the image when it crops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gravity {
    /// Anchor as fractions of the free space, in 1/2 steps: (0,0) top-left, (1,1) bottom-right.
    /// Stored as halves (0, 1, 2) so the type stays `Eq`.
    Anchor { x_halves: u8, y_halves: u8 },
    /// Focal point in 1/10000 of the width and height; the crop is centred on it.
    Focal { x: u16, y: u16 },
    /// `auto`: the crop keeps the most interesting part, found in the decoded pixels
    /// (edges, skin tones, saturation: see `pipeline::attention`). Planned as the centre.
    Auto,
}

impl Default for Gravity {
    fn default() -> Self {
        Gravity::Anchor {
            x_halves: 1,
            y_halves: 1,
        }
    }
}

impl Gravity {
    /// The focal point or anchor as fractions (x, y) in 0..=1.
    pub fn fractions(self) -> (f64, f64) {
        match self {
            Gravity::Anchor { x_halves, y_halves } => {
                (f64::from(x_halves) / 2.0, f64::from(y_halves) / 2.0)
            }
            Gravity::Focal { x, y } => (f64::from(x) / 10_000.0, f64::from(y) / 10_000.0),
            Gravity::Auto => (0.5, 0.5),
        }
    }
}

/// `trim`: remove the border of one colour around the image (within `threshold`, the largest
/// difference in any channel, 0 to 255), of `colour` or else of the top-left pixel's colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Trim {
    pub threshold: u8,
    pub colour: Option<Rgba>,
}

impl Trim {
    /// The canonical spelling: `THRESHOLD` or `THRESHOLD,RRGGBB[AA]`.
    pub fn canonical(self) -> String {
        match self.colour {
            None => self.threshold.to_string(),
            Some(c) => format!("{},{}", self.threshold, c.hex()),
        }
    }
}

/// One candidate of `srcset`: a width in pixels, or the name of a configured preset.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SrcsetEntry {
    Width(u32),
    Preset(String),
}

/// `srcset`: the candidates `fmt=json` lists `<img>` attributes for (1 to [`MAX_SRCSET`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Srcset(pub Vec<SrcsetEntry>);

/// Most candidates one `srcset` may ask for.
pub const MAX_SRCSET: usize = 16;

impl Srcset {
    /// The canonical spelling: the entries as given, comma-separated.
    pub fn canonical(&self) -> String {
        self.0
            .iter()
            .map(|e| match e {
                SrcsetEntry::Width(w) => w.to_string(),
                SrcsetEntry::Preset(name) => name.clone(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// An encodable output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    Jpeg,
    Png,
    Webp,
    Avif,
    Gif,
}

impl OutputFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Png => "image/png",
            OutputFormat::Webp => "image/webp",
            OutputFormat::Avif => "image/avif",
            OutputFormat::Gif => "image/gif",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
            OutputFormat::Avif => "avif",
            OutputFormat::Gif => "gif",
        }
    }

    /// File extension of a download in this format.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            other => other.name(),
        }
    }

    pub fn supports_alpha(self) -> bool {
        !matches!(self, OutputFormat::Jpeg)
    }

    /// Quality used when the URL has no `q`.
    pub fn default_quality(self) -> u8 {
        match self {
            OutputFormat::Jpeg | OutputFormat::Webp => 80,
            OutputFormat::Avif => 60,
            OutputFormat::Png | OutputFormat::Gif => 100,
        }
    }
}

/// What `fmt` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FormatParam {
    Exact(OutputFormat),
    /// Negotiated from the `Accept` header.
    Auto,
    /// Metadata as JSON instead of pixels.
    Json,
    /// The image's ThumbHash placeholder alone.
    Thumbhash,
}

/// An sRGB colour with alpha.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rgba(pub [u8; 4]);

impl Rgba {
    pub const WHITE: Rgba = Rgba([255, 255, 255, 255]);

    pub fn is_opaque(self) -> bool {
        self.0[3] == 255
    }
}

/// Device pixel ratio in hundredths (100 = 1x, 400 = 4x).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dpr(u16);

impl Dpr {
    pub const ONE: Dpr = Dpr(100);

    /// The ratio in hundredths (150 is 1.5x).
    pub fn hundredths(self) -> u16 {
        self.0
    }

    /// A ratio in hundredths, as the parser accepts them (100 to 400).
    pub fn from_hundredths(h: u16) -> Option<Dpr> {
        (100..=400).contains(&h).then_some(Dpr(h))
    }

    /// Scale a CSS length to device pixels, rounding to the nearest pixel.
    pub fn apply(self, css: u32) -> u32 {
        ((u64::from(css) * u64::from(self.0) + 50) / 100) as u32
    }
}

/// The 400 for a value of `param` that is not what its table entry accepts.
pub(crate) fn invalid(param: &str) -> Error {
    Error::invalid_param(
        param,
        format!("`{param}` must be {}", super::table::accepts(param)),
    )
}

pub(crate) fn format_hundredths(v: u16) -> String {
    let s = format!("{}.{:02}", v / 100, v % 100);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

pub(crate) fn format_fraction(v: u16) -> String {
    let s = format!("{}.{:04}", v / 10_000, v % 10_000);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

pub(crate) const GRAVITY_NAMES: &[(&str, u8, u8)] = &[
    ("center", 1, 1),
    ("top", 1, 0),
    ("bottom", 1, 2),
    ("left", 0, 1),
    ("right", 2, 1),
    ("top-left", 0, 0),
    ("top-right", 2, 0),
    ("bottom-left", 0, 2),
    ("bottom-right", 2, 2),
];

pub(crate) fn parse_dimension(name: &str, value: &str) -> Result<u32> {
    if !is_plain_integer(value) {
        return Err(invalid(name));
    }
    match value.parse::<u32>() {
        Ok(v) if (1..=MAX_DIMENSION).contains(&v) => Ok(v),
        _ => Err(invalid(name)),
    }
}

pub(crate) fn parse_quality(value: &str) -> Result<u8> {
    if !is_plain_integer(value) {
        return Err(invalid("q"));
    }
    match value.parse::<u8>() {
        Ok(v) if (1..=100).contains(&v) => Ok(v),
        _ => Err(invalid("q")),
    }
}

pub(crate) fn parse_flag(name: &str, value: &str) -> Result<bool> {
    match value {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(invalid(name)),
    }
}

pub(crate) fn is_plain_integer(s: &str) -> bool {
    !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit())
}

/// A decimal number in 0..=limit with at most `decimals` fraction digits beyond which it is
/// rounded, returned scaled by 10^decimals. Rejects signs, exponents, NaN and infinities.
pub(crate) fn parse_fixed(s: &str, decimals: u32) -> Option<u64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if int.len() > 6 || frac.len() > 12 {
        return None;
    }
    let int_v: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let scale = 10u64.pow(decimals);
    // Round the fraction to `decimals` digits.
    let mut frac_digits: Vec<u64> = frac.bytes().map(|b| u64::from(b - b'0')).collect();
    frac_digits.resize(decimals as usize + 1, 0);
    let mut frac_v = frac_digits[..decimals as usize]
        .iter()
        .fold(0u64, |acc, d| acc * 10 + d);
    if frac_digits[decimals as usize] >= 5 {
        frac_v += 1;
    }
    Some(int_v * scale + frac_v)
}

pub(crate) fn parse_dpr(value: &str) -> Result<Dpr> {
    match parse_fixed(value, 2) {
        Some(v) if (100..=400).contains(&v) => Ok(Dpr(v as u16)),
        _ => Err(invalid("dpr")),
    }
}

/// Widths (integers 1 to [`MAX_DIMENSION`]) and preset names, comma-separated, at most
/// [`MAX_SRCSET`] of them.
pub(crate) fn parse_srcset(value: &str) -> Result<Srcset> {
    let entries: Vec<&str> = value.split(',').collect();
    if entries.len() > MAX_SRCSET {
        return Err(invalid("srcset"));
    }
    entries
        .into_iter()
        .map(|e| {
            if is_plain_integer(e) {
                parse_dimension("srcset", e).map(SrcsetEntry::Width)
            } else {
                super::request::preset_name(e)
                    .map(SrcsetEntry::Preset)
                    .map_err(|_| invalid("srcset"))
            }
        })
        .collect::<Result<Vec<_>>>()
        .map(Srcset)
}

/// `THRESHOLD` (an integer 0 to 255) or `THRESHOLD,COLOUR` (`RRGGBB` or `RRGGBBAA`).
pub(crate) fn parse_trim(value: &str) -> Result<Trim> {
    let (threshold, colour) = match value.split_once(',') {
        Some((t, c)) => (t, Some(c)),
        None => (value, None),
    };
    let threshold = match threshold.parse::<u8>() {
        Ok(t) if is_plain_integer(threshold) => t,
        _ => return Err(invalid("trim")),
    };
    let colour = match colour {
        Some(c) => Some(parse_color(c).map_err(|_| invalid("trim"))?),
        None => None,
    };
    Ok(Trim { threshold, colour })
}

pub(crate) fn parse_fit(value: &str) -> Result<Fit> {
    Ok(match value {
        "cover" => Fit::Cover,
        "contain" => Fit::Contain,
        "scale-down" => Fit::ScaleDown,
        "fill" => Fit::Fill,
        "pad" => Fit::Pad,
        _ => return Err(invalid("fit")),
    })
}

pub(crate) fn parse_gravity(value: &str) -> Result<Gravity> {
    if value == "auto" {
        return Ok(Gravity::Auto);
    }
    if let Some((_, xh, yh)) = GRAVITY_NAMES.iter().find(|(n, _, _)| *n == value) {
        return Ok(Gravity::Anchor {
            x_halves: *xh,
            y_halves: *yh,
        });
    }
    let (x, y) = value.split_once(',').ok_or_else(|| invalid("gravity"))?;
    let coord = |s: &str| match parse_fixed(s.trim(), 4) {
        Some(v) if v <= 10_000 => Ok(v as u16),
        _ => Err(invalid("gravity")),
    };
    Ok(Gravity::Focal {
        x: coord(x)?,
        y: coord(y)?,
    })
}

pub(crate) fn parse_format(value: &str) -> Result<FormatParam> {
    Ok(match value {
        "jpeg" | "jpg" => FormatParam::Exact(OutputFormat::Jpeg),
        "png" => FormatParam::Exact(OutputFormat::Png),
        "webp" => FormatParam::Exact(OutputFormat::Webp),
        "avif" => FormatParam::Exact(OutputFormat::Avif),
        "gif" => FormatParam::Exact(OutputFormat::Gif),
        "auto" => FormatParam::Auto,
        "json" => FormatParam::Json,
        "thumbhash" => FormatParam::Thumbhash,
        _ => return Err(invalid("fmt")),
    })
}

impl std::str::FromStr for Rgba {
    type Err = String;

    /// `RRGGBB` or `RRGGBBAA`, as `bg` takes it (for the allow-list of backgrounds).
    fn from_str(s: &str) -> std::result::Result<Rgba, String> {
        parse_color(s.trim()).map_err(|e| e.to_string())
    }
}

pub(crate) fn parse_color(value: &str) -> Result<Rgba> {
    let hex = value.strip_prefix('#').unwrap_or(value);
    if !(hex.len() == 6 || hex.len() == 8) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("bg"));
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| invalid("bg"));
    let alpha = if hex.len() == 8 { byte(6)? } else { 255 };
    Ok(Rgba([byte(0)?, byte(2)?, byte(4)?, alpha]))
}

impl Fit {
    /// The canonical spelling, as the URL takes it.
    pub fn name(self) -> &'static str {
        match self {
            Fit::Cover => "cover",
            Fit::Contain => "contain",
            Fit::ScaleDown => "scale-down",
            Fit::Fill => "fill",
            Fit::Pad => "pad",
        }
    }
}

impl Gravity {
    /// The canonical spelling: an anchor's name, or the focal point `X,Y` in shortest form.
    pub fn canonical(self) -> String {
        match self {
            Gravity::Focal { x, y } => format!("{},{}", format_fraction(x), format_fraction(y)),
            Gravity::Auto => "auto".to_string(),
            Gravity::Anchor { x_halves, y_halves } => GRAVITY_NAMES
                .iter()
                .find(|(_, xh, yh)| (*xh, *yh) == (x_halves, y_halves))
                .map(|(n, _, _)| (*n).to_string())
                .unwrap_or_default(),
        }
    }
}

impl Dpr {
    /// The canonical spelling: `1.5`, `2`.
    pub fn canonical(self) -> String {
        format_hundredths(self.0)
    }
}

impl Rgba {
    /// The canonical spelling: `rrggbbaa` in lower case.
    pub fn hex(self) -> String {
        let [r, g, b, a] = self.0;
        format!("{r:02x}{g:02x}{b:02x}{a:02x}")
    }
}

impl FormatParam {
    /// The canonical spelling of `fmt`.
    pub fn name(self) -> &'static str {
        match self {
            FormatParam::Exact(o) => o.name(),
            FormatParam::Auto => "auto",
            FormatParam::Json => "json",
            FormatParam::Thumbhash => "thumbhash",
        }
    }
}

/// The default background: opaque white.
impl Default for Rgba {
    fn default() -> Rgba {
        Rgba::WHITE
    }
}

/// The default ratio: 1.
impl Default for Dpr {
    fn default() -> Dpr {
        Dpr::ONE
    }
}

/// A clockwise rotation by a quarter turn or more (`rot`); 0 is no rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rotation {
    Cw90,
    Cw180,
    Cw270,
}

impl Rotation {
    /// Degrees clockwise.
    pub fn degrees(self) -> u16 {
        match self {
            Rotation::Cw90 => 90,
            Rotation::Cw180 => 180,
            Rotation::Cw270 => 270,
        }
    }
}

/// `rot`: 0, 90, 180 or 270 (0 leaves the value unset, so it is the same key as no `rot`).
pub(crate) fn parse_rotation(value: &str) -> Result<Option<Rotation>> {
    Ok(match value {
        "0" => None,
        "90" => Some(Rotation::Cw90),
        "180" => Some(Rotation::Cw180),
        "270" => Some(Rotation::Cw270),
        _ => return Err(invalid("rot")),
    })
}

/// A mirror image (`flip`): left-right, top-bottom, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flip {
    H,
    V,
    Hv,
}

impl Flip {
    pub fn name(self) -> &'static str {
        match self {
            Flip::H => "h",
            Flip::V => "v",
            Flip::Hv => "hv",
        }
    }
}

pub(crate) fn parse_flip(value: &str) -> Result<Flip> {
    Ok(match value {
        "h" => Flip::H,
        "v" => Flip::V,
        "hv" | "vh" => Flip::Hv,
        _ => return Err(invalid("flip")),
    })
}

/// A standard deviation in tenths of an output pixel (`blur`, `sharpen`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sigma(u16);

impl Sigma {
    /// Sigma in pixels.
    pub fn pixels(self) -> f32 {
        f32::from(self.0) / 10.0
    }

    pub fn tenths(self) -> u16 {
        self.0
    }

    pub fn from_tenths(t: u16) -> Sigma {
        Sigma(t)
    }

    /// The canonical spelling: `2`, `0.5`.
    pub fn canonical(self) -> String {
        let s = format!("{}.{}", self.0 / 10, self.0 % 10);
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A sigma from `min` to `max` tenths, rounded to a tenth.
pub(crate) fn parse_sigma(name: &str, value: &str, min: u16, max: u16) -> Result<Sigma> {
    match parse_fixed(value, 1) {
        Some(v) if (u64::from(min)..=u64::from(max)).contains(&v) => Ok(Sigma(v as u16)),
        _ => Err(invalid(name)),
    }
}

/// `crop`: a region of the displayed original (after its EXIF orientation, before `rot` and
/// `flip`), applied before the resize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Crop {
    /// In displayed pixels.
    Pixels { x: u32, y: u32, w: u32, h: u32 },
    /// In 1/10000 of the displayed width and height (`x`, `y` below 10000; `w`, `h` above 0).
    Fraction { x: u16, y: u16, w: u16, h: u16 },
}

impl Crop {
    /// The canonical spelling: four integers, or four fractions each with a `.`.
    pub fn canonical(self) -> String {
        match self {
            Crop::Pixels { x, y, w, h } => format!("{x},{y},{w},{h}"),
            Crop::Fraction { x, y, w, h } => [x, y, w, h]
                .map(|v| {
                    let s = format_fraction(v);
                    if s.contains('.') {
                        s
                    } else {
                        format!("{s}.0")
                    }
                })
                .join(","),
        }
    }

    /// The region in whole pixels of a displayed image of `size`, clipped to it: `(x, y, w,
    /// h)`, or `None` when nothing of it is inside. A fraction keeps at least one pixel.
    pub fn resolve(self, (dw, dh): (u32, u32)) -> Option<(u32, u32, u32, u32)> {
        let (x0, y0, x1, y1) = match self {
            Crop::Pixels { x, y, w, h } => (x, y, x.saturating_add(w), y.saturating_add(h)),
            Crop::Fraction { x, y, w, h } => {
                let at = |f: u16, len: u32| {
                    ((u64::from(f.min(10_000)) * u64::from(len) + 5_000) / 10_000) as u32
                };
                // x and y are below 1: never past the last pixel.
                let (x0, y0) = (
                    at(x, dw).min(dw.saturating_sub(1)),
                    at(y, dh).min(dh.saturating_sub(1)),
                );
                let x1 = at(x.saturating_add(w), dw).max(x0 + 1);
                let y1 = at(y.saturating_add(h), dh).max(y0 + 1);
                (x0, y0, x1, y1)
            }
        };
        let (x1, y1) = (x1.min(dw), y1.min(dh));
        (x0 < x1 && y0 < y1).then(|| (x0, y0, x1 - x0, y1 - y0))
    }
}

pub(crate) fn parse_crop(value: &str) -> Result<Crop> {
    let parts: Vec<&str> = value.split(',').collect();
    let [x, y, w, h] = parts[..] else {
        return Err(invalid("crop"));
    };
    let zero = || Error::invalid_param("crop", "`crop` has a zero width or height");
    let dots = [x, y, w, h].iter().filter(|s| s.contains('.')).count();
    match dots {
        0 => {
            let int = |s: &str| {
                if is_plain_integer(s) {
                    s.parse::<u32>().map_err(|_| invalid("crop"))
                } else {
                    Err(invalid("crop"))
                }
            };
            let (x, y, w, h) = (int(x)?, int(y)?, int(w)?, int(h)?);
            if w == 0 || h == 0 {
                return Err(zero());
            }
            Ok(Crop::Pixels { x, y, w, h })
        }
        4 => {
            let frac = |s: &str| match parse_fixed(s, 4) {
                Some(v) if v <= 10_000 => Ok(v as u16),
                _ => Err(invalid("crop")),
            };
            let (x, y, w, h) = (frac(x)?, frac(y)?, frac(w)?, frac(h)?);
            if w == 0 || h == 0 {
                return Err(zero());
            }
            if x == 10_000 || y == 10_000 {
                return Err(Error::invalid_param(
                    "crop",
                    "`crop` starts at the right or bottom edge: nothing of the image is in it",
                ));
            }
            Ok(Crop::Fraction { x, y, w, h })
        }
        // Mixed pixels and fractions.
        _ => Err(invalid("crop")),
    }
}
