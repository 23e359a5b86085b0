//! The URL API: the query string parsed once into typed [`Params`].
//!
//! Parse, don't validate: every value is checked and converted here, so the rest of the code
//! never sees a raw string. Unknown, repeated or out-of-range parameters are a 400 naming the
//! parameter and what it accepts. `Params` is `Hash + Eq` with no floats inside (dpr and focal
//! points are fixed-point), so it is the cache key, never the raw query string.

use crate::error::{Error, Result};
use std::fmt;

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
        }
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

/// A parsed, validated transformation request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Params {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub dpr: Option<Dpr>,
    pub fit: Option<Fit>,
    pub gravity: Option<Gravity>,
    pub format: Option<FormatParam>,
    pub quality: Option<u8>,
    pub background: Option<Rgba>,
    /// `download=1`: answer as an attachment named after the key (`Content-Disposition`).
    /// A response option, not a transformation: see [`Params::without_download`].
    pub download: Option<bool>,
}

/// Every parameter the URL API accepts, with what it accepts (used in 400 messages and docs).
pub const ACCEPTED: &[(&str, &str)] = &[
    ("w", "an integer from 1 to 8192"),
    ("h", "an integer from 1 to 8192"),
    ("dpr", "a number from 1 to 4, e.g. 1.5"),
    ("fit", "one of cover, contain, scale-down, fill, pad"),
    (
        "gravity",
        "one of center, top, bottom, left, right, top-left, top-right, bottom-left, \
         bottom-right, or a focal point X,Y with X and Y from 0 to 1",
    ),
    ("fmt", "one of jpeg, jpg, png, webp, avif, gif, auto, json"),
    ("q", "an integer from 1 to 100"),
    ("bg", "a hex colour RRGGBB or RRGGBBAA"),
    (
        "download",
        "1 or 0 (1: sent as an attachment named after the image)",
    ),
];

fn accepts(param: &str) -> &'static str {
    ACCEPTED
        .iter()
        .find(|(name, _)| *name == param)
        .map(|(_, what)| *what)
        .unwrap_or("nothing")
}

fn invalid(param: &str) -> Error {
    Error::invalid_param(param, format!("`{param}` must be {}", accepts(param)))
}

impl Params {
    /// Parse a raw (still percent-encoded) query string. `None` or `""` gives no parameters.
    pub fn parse(query: Option<&str>) -> Result<Params> {
        Self::from_pairs(
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned())),
        )
    }

    /// Parse already-decoded `(name, value)` pairs (the CLI uses this too).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Params> {
        let mut p = Params::default();
        for (name, value) in pairs {
            p.set(&name, &value)?;
        }
        Ok(p)
    }

    fn set(&mut self, name: &str, value: &str) -> Result<()> {
        fn once<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<()> {
            if slot.is_some() {
                return Err(Error::invalid_param(
                    name,
                    format!("`{name}` is given more than once"),
                ));
            }
            *slot = Some(value);
            Ok(())
        }
        match name {
            "w" => once(&mut self.width, name, parse_dimension(name, value)?),
            "h" => once(&mut self.height, name, parse_dimension(name, value)?),
            "dpr" => once(&mut self.dpr, name, parse_dpr(value)?),
            "fit" => once(&mut self.fit, name, parse_fit(value)?),
            "gravity" => once(&mut self.gravity, name, parse_gravity(value)?),
            "fmt" => once(&mut self.format, name, parse_format(value)?),
            "q" => once(&mut self.quality, name, parse_quality(value)?),
            "bg" => once(&mut self.background, name, parse_color(value)?),
            "download" => once(&mut self.download, name, parse_flag(name, value)?),
            other => {
                let names: Vec<&str> = ACCEPTED.iter().map(|(n, _)| *n).collect();
                Err(Error::invalid_param(
                    other,
                    format!(
                        "unknown parameter `{other}`; accepted: {}",
                        names.join(", ")
                    ),
                ))
            }
        }
    }

    /// True when the URL asked for no transformation: the original bytes are served untouched.
    /// (`download` only changes how they are sent.)
    pub fn is_empty(&self) -> bool {
        self.without_download().0 == Params::default()
    }

    /// Split off `download`, so that it never reaches the cache key: the same bytes are
    /// cached once, whether they are sent inline or as an attachment.
    pub fn without_download(&self) -> (Params, bool) {
        let mut p = self.clone();
        let download = p.download.take().unwrap_or(false);
        (p, download)
    }

    pub fn fit(&self) -> Fit {
        self.fit.unwrap_or_default()
    }

    pub fn gravity(&self) -> Gravity {
        self.gravity.unwrap_or_default()
    }

    pub fn background(&self) -> Rgba {
        self.background.unwrap_or(Rgba::WHITE)
    }

    /// Target box in device pixels (`w`/`h` times `dpr`).
    pub fn target_box(&self) -> (Option<u32>, Option<u32>) {
        let dpr = self.dpr.unwrap_or(Dpr::ONE);
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

/// Canonical query form (fixed order, normalised values): used in logs and signatures.
impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(w) = self.width {
            parts.push(format!("w={w}"));
        }
        if let Some(h) = self.height {
            parts.push(format!("h={h}"));
        }
        if let Some(Dpr(d)) = self.dpr {
            parts.push(format!("dpr={}", format_hundredths(d)));
        }
        if let Some(fit) = self.fit {
            let name = match fit {
                Fit::Cover => "cover",
                Fit::Contain => "contain",
                Fit::ScaleDown => "scale-down",
                Fit::Fill => "fill",
                Fit::Pad => "pad",
            };
            parts.push(format!("fit={name}"));
        }
        if let Some(g) = self.gravity {
            let value = match g {
                Gravity::Focal { x, y } => {
                    format!("{},{}", format_fraction(x), format_fraction(y))
                }
                Gravity::Anchor { x_halves, y_halves } => GRAVITY_NAMES
                    .iter()
                    .find(|(_, xh, yh)| (*xh, *yh) == (x_halves, y_halves))
                    .map(|(n, _, _)| (*n).to_string())
                    .unwrap_or_default(),
            };
            parts.push(format!("gravity={value}"));
        }
        if let Some(fmt_param) = self.format {
            let name = match fmt_param {
                FormatParam::Exact(o) => o.name(),
                FormatParam::Auto => "auto",
                FormatParam::Json => "json",
            };
            parts.push(format!("fmt={name}"));
        }
        if let Some(q) = self.quality {
            parts.push(format!("q={q}"));
        }
        if let Some(Rgba([r, g, b, a])) = self.background {
            parts.push(format!("bg={r:02x}{g:02x}{b:02x}{a:02x}"));
        }
        if let Some(d) = self.download {
            parts.push(format!("download={}", u8::from(d)));
        }
        f.write_str(&parts.join("&"))
    }
}

fn format_hundredths(v: u16) -> String {
    let s = format!("{}.{:02}", v / 100, v % 100);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn format_fraction(v: u16) -> String {
    let s = format!("{}.{:04}", v / 10_000, v % 10_000);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

const GRAVITY_NAMES: &[(&str, u8, u8)] = &[
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

fn parse_dimension(name: &str, value: &str) -> Result<u32> {
    if !is_plain_integer(value) {
        return Err(invalid(name));
    }
    match value.parse::<u32>() {
        Ok(v) if (1..=MAX_DIMENSION).contains(&v) => Ok(v),
        _ => Err(invalid(name)),
    }
}

fn parse_quality(value: &str) -> Result<u8> {
    if !is_plain_integer(value) {
        return Err(invalid("q"));
    }
    match value.parse::<u8>() {
        Ok(v) if (1..=100).contains(&v) => Ok(v),
        _ => Err(invalid("q")),
    }
}

fn parse_flag(name: &str, value: &str) -> Result<bool> {
    match value {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(invalid(name)),
    }
}

fn is_plain_integer(s: &str) -> bool {
    !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit())
}

/// A decimal number in 0..=limit with at most `decimals` fraction digits beyond which it is
/// rounded, returned scaled by 10^decimals. Rejects signs, exponents, NaN and infinities.
fn parse_fixed(s: &str, decimals: u32) -> Option<u64> {
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

fn parse_dpr(value: &str) -> Result<Dpr> {
    match parse_fixed(value, 2) {
        Some(v) if (100..=400).contains(&v) => Ok(Dpr(v as u16)),
        _ => Err(invalid("dpr")),
    }
}

fn parse_fit(value: &str) -> Result<Fit> {
    Ok(match value {
        "cover" => Fit::Cover,
        "contain" => Fit::Contain,
        "scale-down" => Fit::ScaleDown,
        "fill" => Fit::Fill,
        "pad" => Fit::Pad,
        _ => return Err(invalid("fit")),
    })
}

fn parse_gravity(value: &str) -> Result<Gravity> {
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

fn parse_format(value: &str) -> Result<FormatParam> {
    Ok(match value {
        "jpeg" | "jpg" => FormatParam::Exact(OutputFormat::Jpeg),
        "png" => FormatParam::Exact(OutputFormat::Png),
        "webp" => FormatParam::Exact(OutputFormat::Webp),
        "avif" => FormatParam::Exact(OutputFormat::Avif),
        "gif" => FormatParam::Exact(OutputFormat::Gif),
        "auto" => FormatParam::Auto,
        "json" => FormatParam::Json,
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

fn parse_color(value: &str) -> Result<Rgba> {
    let hex = value.strip_prefix('#').unwrap_or(value);
    if !(hex.len() == 6 || hex.len() == 8) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("bg"));
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| invalid("bg"));
    let alpha = if hex.len() == 8 { byte(6)? } else { 255 };
    Ok(Rgba([byte(0)?, byte(2)?, byte(4)?, alpha]))
}

/// Which modern formats an `Accept` header lists: all that `fmt=auto` depends on, so it is
/// part of the cache key instead of the raw header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Accepted {
    pub avif: bool,
    pub webp: bool,
}

impl Accepted {
    /// A media range with `q=0` counts as refused; wildcards do not count as support
    /// (browsers send `*/*` without being able to show AVIF).
    pub fn from_header(accept: Option<&str>) -> Accepted {
        let lists = |mime: &str| {
            accept.is_some_and(|header| {
                header.split(',').any(|range| {
                    let mut parts = range.split(';');
                    let media = parts.next().unwrap_or("").trim();
                    let refused = parts.any(|p| {
                        p.trim()
                            .strip_prefix("q=")
                            .and_then(|q| q.trim().parse::<f32>().ok())
                            .is_some_and(|q| q <= 0.0)
                    });
                    media.eq_ignore_ascii_case(mime) && !refused
                })
            })
        };
        Accepted {
            avif: lists("image/avif"),
            webp: lists("image/webp"),
        }
    }

    /// `fmt=auto`: AVIF if accepted, else WebP, else PNG for images with alpha, else JPEG.
    pub fn choose(self, has_alpha: bool) -> OutputFormat {
        if self.avif {
            OutputFormat::Avif
        } else if self.webp {
            OutputFormat::Webp
        } else if has_alpha {
            OutputFormat::Png
        } else {
            OutputFormat::Jpeg
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<Params> {
        Params::parse(Some(q))
    }

    fn param_of(err: Error) -> String {
        match err {
            Error::InvalidParam { param, .. } => param,
            other => panic!("expected InvalidParam, got {other:?}"),
        }
    }

    #[test]
    fn empty_query_is_empty() {
        assert!(Params::parse(None).unwrap().is_empty());
        assert!(parse("").unwrap().is_empty());
        assert!(!parse("w=1").unwrap().is_empty());
    }

    #[test]
    fn accepts_valid_values() {
        let p =
            parse("w=400&h=300&dpr=1.5&fit=pad&gravity=top-left&fmt=jpg&q=75&bg=ff000080").unwrap();
        assert_eq!(p.width, Some(400));
        assert_eq!(p.height, Some(300));
        assert_eq!(p.target_box(), (Some(600), Some(450)));
        assert_eq!(p.fit(), Fit::Pad);
        assert_eq!(p.gravity().fractions(), (0.0, 0.0));
        assert_eq!(p.format, Some(FormatParam::Exact(OutputFormat::Jpeg)));
        assert_eq!(p.quality, Some(75));
        assert_eq!(p.background, Some(Rgba([255, 0, 0, 128])));
    }

    #[test]
    fn rejects_bad_values_naming_the_parameter() {
        let cases = [
            ("w=0", "w"),
            ("w=8193", "w"),
            ("w=-1", "w"),
            ("w=1.5", "w"),
            ("w=", "w"),
            ("w=%2B5", "w"),
            ("h=abc", "h"),
            ("dpr=0.5", "dpr"),
            ("dpr=4.01", "dpr"),
            ("dpr=NaN", "dpr"),
            ("dpr=1e0", "dpr"),
            ("dpr=inf", "dpr"),
            ("fit=stretch", "fit"),
            ("gravity=north", "gravity"),
            ("gravity=1.1,0.5", "gravity"),
            ("gravity=0.5", "gravity"),
            ("gravity=-0.1,0.5", "gravity"),
            ("fmt=bmp", "fmt"),
            ("q=0", "q"),
            ("q=101", "q"),
            ("bg=red", "bg"),
            ("bg=fff", "bg"),
            ("width=100", "width"),
            ("w=1&w=2", "w"),
            ("fmt=png&fmt=png", "fmt"),
        ];
        for (q, param) in cases {
            let err = parse(q).expect_err(q);
            assert_eq!(err.status(), 400);
            assert_eq!(param_of(err), param, "{q}");
        }
    }

    #[test]
    fn error_message_says_what_is_accepted() {
        let err = parse("q=500").unwrap_err();
        assert!(err.to_string().contains("from 1 to 100"), "{err}");
        let err = parse("foo=1").unwrap_err();
        assert!(err.to_string().contains("unknown parameter"), "{err}");
    }

    #[test]
    fn equivalent_queries_give_equal_params() {
        // Same meaning, different spelling and order: same cache key.
        let a = parse("w=400&fmt=jpeg&dpr=2").unwrap();
        let b = parse("dpr=2.0&fmt=jpg&w=400").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), b.to_string());
        let c = parse("gravity=0.50,0.25").unwrap();
        let d = parse("gravity=.5,.25").unwrap();
        assert_eq!(c, d);
        assert_eq!(c.to_string(), "gravity=0.5,0.25");
    }

    #[test]
    fn canonical_form_round_trips() {
        let p = parse(
            "bg=00ff00&q=50&fmt=auto&gravity=bottom-right&fit=contain&dpr=1.25&h=7&w=9&download=1",
        )
        .unwrap();
        let again = parse(&p.to_string()).unwrap();
        assert_eq!(p, again);
    }

    #[test]
    fn download_is_a_response_option_not_a_transformation() {
        let p = parse("download=1").unwrap();
        assert!(p.is_empty());
        assert_eq!(p.without_download(), (Params::default(), true));
        let (q, d) = parse("w=10&download=0").unwrap().without_download();
        assert_eq!((q, d), (parse("w=10").unwrap(), false));
        assert_eq!(param_of(parse("download=yes").unwrap_err()), "download");
        assert_eq!(
            param_of(parse("download=1&download=1").unwrap_err()),
            "download"
        );
    }

    #[test]
    fn dpr_rounds_to_device_pixels() {
        let p = parse("w=333&dpr=1.5").unwrap();
        assert_eq!(p.target_box().0, Some(500)); // 499.5 rounds up
    }

    #[test]
    fn negotiation_follows_accept() {
        let negotiate = |h: Option<&str>, alpha| Accepted::from_header(h).choose(alpha);
        let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
        let safari_old = "image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5";
        assert_eq!(negotiate(Some(chrome), false), OutputFormat::Avif);
        assert_eq!(negotiate(Some(safari_old), false), OutputFormat::Webp);
        assert_eq!(negotiate(Some("*/*"), false), OutputFormat::Jpeg);
        assert_eq!(negotiate(Some("*/*"), true), OutputFormat::Png);
        assert_eq!(negotiate(None, false), OutputFormat::Jpeg);
        assert_eq!(
            negotiate(Some("image/avif;q=0, image/webp"), false),
            OutputFormat::Webp
        );
        assert_eq!(negotiate(Some("IMAGE/AVIF"), false), OutputFormat::Avif);
    }

    #[test]
    fn output_formats_describe_themselves() {
        // (format, content type, name, extension, alpha, default quality)
        let table = [
            (OutputFormat::Jpeg, "image/jpeg", "jpeg", "jpg", false, 80),
            (OutputFormat::Png, "image/png", "png", "png", true, 100),
            (OutputFormat::Webp, "image/webp", "webp", "webp", true, 80),
            (OutputFormat::Avif, "image/avif", "avif", "avif", true, 60),
            (OutputFormat::Gif, "image/gif", "gif", "gif", true, 100),
        ];
        for (f, ct, name, ext, alpha, q) in table {
            assert_eq!(f.content_type(), ct, "{f:?}");
            assert_eq!(f.name(), name, "{f:?}");
            assert_eq!(f.extension(), ext, "{f:?}");
            assert_eq!(f.supports_alpha(), alpha, "{f:?}");
            assert_eq!(f.default_quality(), q, "{f:?}");
            assert_eq!(Params::default().quality_for(f), q, "{f:?}");
            assert_eq!(parse("q=7").unwrap().quality_for(f), 7, "{f:?}");
        }
    }

    #[test]
    fn gravity_fractions_and_colours() {
        let focal = parse("gravity=0.25,0.75").unwrap().gravity();
        assert_eq!(focal.fractions(), (0.25, 0.75));
        assert_eq!(Gravity::default().fractions(), (0.5, 0.5));
        assert_eq!(
            parse("gravity=bottom-right").unwrap().gravity().fractions(),
            (1.0, 1.0)
        );
        assert!(Rgba::WHITE.is_opaque());
        assert!(!Rgba([0, 0, 0, 254]).is_opaque());
        assert_eq!(Params::default().background(), Rgba::WHITE);
    }

    #[test]
    fn fixed_point_numbers_have_bounded_digits() {
        // At most 6 integer and 12 fraction digits, all of them ASCII digits.
        assert_eq!(parse("dpr=000001").unwrap().dpr, Some(Dpr(100)));
        assert_eq!(parse("dpr=1.500000000000").unwrap().dpr, Some(Dpr(150)));
        assert_eq!(
            parse("gravity=000000.5,1.000000000000").unwrap().gravity,
            Some(Gravity::Focal { x: 5000, y: 10_000 })
        );
        for (q, param) in [
            ("dpr=0000001", "dpr"),
            ("dpr=1.5000000000000", "dpr"),
            ("dpr=1.0:", "dpr"),
            ("dpr=%2B1.5", "dpr"),
            ("dpr=.", "dpr"),
            ("gravity=0.5:,0", "gravity"),
            ("gravity=1000000000000000000,0", "gravity"),
            ("gravity=0,0.0000000000001", "gravity"),
        ] {
            assert_eq!(param_of(parse(q).expect_err(q)), param, "{q}");
        }
    }

    use proptest::prelude::*;
    use proptest::strategy::ValueTree;

    /// One `name=value` pair, spelled in one of the ways the parser accepts, and the `Params`
    /// with only that field set: what the parser must produce for it.
    type Pair = (String, Params);

    /// Values in `lo..=hi`, with each end drawn as often as the whole range between: the
    /// limits are where off-by-one parsers fail.
    fn edgy<T>(lo: T, hi: T) -> impl Strategy<Value = T>
    where
        T: Copy + std::fmt::Debug + 'static,
        std::ops::RangeInclusive<T>: Strategy<Value = T>,
    {
        prop_oneof![Just(lo), Just(hi), lo..=hi]
    }

    fn dimension(name: &'static str) -> impl Strategy<Value = Pair> {
        (edgy(1u32, MAX_DIMENSION), 0usize..3).prop_map(move |(v, zeros)| {
            let mut p = Params::default();
            if name == "w" {
                p.width = Some(v);
            } else {
                p.height = Some(v);
            }
            (format!("{name}={}{v}", "0".repeat(zeros)), p)
        })
    }

    fn dpr() -> impl Strategy<Value = Pair> {
        (edgy(100u16, 400), 0u8..4, 0u16..10).prop_map(|(h, style, k)| {
            let (int, frac) = (h / 100, h % 100);
            let text = match style {
                0 => format!("{int}.{frac:02}"),
                1 => format!("{int}.{frac:02}000"),
                2 if frac == 0 => format!("{int}"),
                2 if frac % 10 == 0 => format!("{int}.{}", frac / 10),
                2 => format!("{int}.{frac:02}"),
                // Three decimals that round (half up) to `h` hundredths: h*10-5 ..= h*10+4.
                _ => {
                    let t = u32::from(h) * 10 - 5 + u32::from(k);
                    format!("{}.{:03}", t / 1000, t % 1000)
                }
            };
            let p = Params {
                dpr: Some(Dpr(h)),
                ..Params::default()
            };
            (format!("dpr={text}"), p)
        })
    }

    fn fit() -> impl Strategy<Value = Pair> {
        prop::sample::select(vec![
            ("cover", Fit::Cover),
            ("contain", Fit::Contain),
            ("scale-down", Fit::ScaleDown),
            ("fill", Fit::Fill),
            ("pad", Fit::Pad),
        ])
        .prop_map(|(name, fit)| {
            let p = Params {
                fit: Some(fit),
                ..Params::default()
            };
            (format!("fit={name}"), p)
        })
    }

    fn fraction(v: u16, style: u8) -> String {
        let (int, frac) = (v / 10_000, v % 10_000);
        match style {
            0 => format!("{int}.{frac:04}"),
            1 if int == 0 => format!(".{frac:04}"),
            1 => format!("{int}"),
            _ => format!("{int}.{frac:04}0"),
        }
    }

    fn gravity() -> impl Strategy<Value = Pair> {
        let anchor = prop::sample::select(GRAVITY_NAMES.to_vec()).prop_map(|(n, x, y)| {
            let g = Gravity::Anchor {
                x_halves: x,
                y_halves: y,
            };
            (n.to_string(), g)
        });
        let focal =
            (edgy(0u16, 10_000), edgy(0u16, 10_000), 0u8..3, 0u8..3).prop_map(|(x, y, sx, sy)| {
                let sx = if x % 10_000 == 0 && sx == 1 { 0 } else { sx };
                let sy = if y % 10_000 == 0 && sy == 1 { 0 } else { sy };
                let text = format!("{},{}", fraction(x, sx), fraction(y, sy));
                (text, Gravity::Focal { x, y })
            });
        prop_oneof![anchor, focal].prop_map(|(text, g)| {
            let p = Params {
                gravity: Some(g),
                ..Params::default()
            };
            (format!("gravity={text}"), p)
        })
    }

    fn format() -> impl Strategy<Value = Pair> {
        prop::sample::select(vec![
            ("jpeg", FormatParam::Exact(OutputFormat::Jpeg)),
            ("jpg", FormatParam::Exact(OutputFormat::Jpeg)),
            ("png", FormatParam::Exact(OutputFormat::Png)),
            ("webp", FormatParam::Exact(OutputFormat::Webp)),
            ("avif", FormatParam::Exact(OutputFormat::Avif)),
            ("gif", FormatParam::Exact(OutputFormat::Gif)),
            ("auto", FormatParam::Auto),
            ("json", FormatParam::Json),
        ])
        .prop_map(|(name, f)| {
            let p = Params {
                format: Some(f),
                ..Params::default()
            };
            (format!("fmt={name}"), p)
        })
    }

    fn quality() -> impl Strategy<Value = Pair> {
        edgy(1u8, 100).prop_map(|q| {
            let p = Params {
                quality: Some(q),
                ..Params::default()
            };
            (format!("q={q}"), p)
        })
    }

    fn background() -> impl Strategy<Value = Pair> {
        (
            any::<[u8; 4]>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|([r, g, b, a], short, upper, hash)| {
                let mut hex = format!("{r:02x}{g:02x}{b:02x}");
                if !(short && a == 255) {
                    hex.push_str(&format!("{a:02x}"));
                }
                if upper {
                    hex = hex.to_uppercase();
                }
                let prefix = if hash { "%23" } else { "" };
                let p = Params {
                    background: Some(Rgba([r, g, b, a])),
                    ..Params::default()
                };
                (format!("bg={prefix}{hex}"), p)
            })
    }

    fn download() -> impl Strategy<Value = Pair> {
        prop::sample::select(vec![
            ("1", true),
            ("true", true),
            ("0", false),
            ("false", false),
        ])
        .prop_map(|(text, d)| {
            let p = Params {
                download: Some(d),
                ..Params::default()
            };
            (format!("download={text}"), p)
        })
    }

    /// A wrong pair and the parameter its 400 must name.
    fn wrong_pair() -> impl Strategy<Value = (String, &'static str)> {
        prop::sample::select(vec![
            ("w=0", "w"),
            ("w=8193", "w"),
            ("h=1.5", "h"),
            ("h=-4", "h"),
            ("dpr=0.99", "dpr"),
            ("dpr=4.005", "dpr"),
            ("fit=stretch", "fit"),
            ("gravity=1.0001,0", "gravity"),
            ("gravity=0.5", "gravity"),
            ("fmt=bmp", "fmt"),
            ("q=101", "q"),
            ("bg=fff", "bg"),
            ("download=2", "download"),
            ("width=10", "width"),
        ])
        .prop_map(|(pair, name)| (pair.to_string(), name))
    }

    fn merge(into: &mut Params, p: Params) {
        into.width = into.width.or(p.width);
        into.height = into.height.or(p.height);
        into.dpr = into.dpr.or(p.dpr);
        into.fit = into.fit.or(p.fit);
        into.gravity = into.gravity.or(p.gravity);
        into.format = into.format.or(p.format);
        into.quality = into.quality.or(p.quality);
        into.background = into.background.or(p.background);
        into.download = into.download.or(p.download);
    }

    /// A query of some of the parameters, each spelled in one of its accepted ways, in any
    /// order; with probability 1/5 one wrong pair (out of range, unknown, or a repeat) is
    /// inserted. Returns the query and what parsing it must give: the `Params`, or the name
    /// of the parameter the 400 names.
    fn query() -> impl Strategy<Value = (String, std::result::Result<Params, String>)> {
        let fields = (
            prop::option::weighted(0.5, dimension("w")),
            prop::option::weighted(0.5, dimension("h")),
            prop::option::weighted(0.4, dpr()),
            prop::option::weighted(0.4, fit()),
            prop::option::weighted(0.4, gravity()),
            prop::option::weighted(0.5, format()),
            prop::option::weighted(0.4, quality()),
            prop::option::weighted(0.3, background()),
            prop::option::weighted(0.2, download()),
        );
        let pairs = fields
            .prop_map(|(w, h, d, f, g, fm, q, bg, dl)| {
                [w, h, d, f, g, fm, q, bg, dl]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<Pair>>()
            })
            .prop_shuffle();
        let wrong = prop::option::weighted(0.2, (wrong_pair(), any::<bool>()));
        (pairs, wrong, any::<prop::sample::Index>()).prop_map(|(pairs, wrong, at)| {
            let mut expected = Params::default();
            let mut texts: Vec<String> = Vec::new();
            for (text, p) in pairs {
                merge(&mut expected, p);
                texts.push(text);
            }
            let outcome = match wrong {
                None => Ok(expected),
                // A repeat of a pair already in the query.
                Some((_, true)) if !texts.is_empty() => {
                    let dup = texts[at.index(texts.len())].clone();
                    let name = dup.split('=').next().unwrap_or("").to_string();
                    texts.insert(at.index(texts.len() + 1), dup);
                    Err(name)
                }
                Some(((pair, name), _)) => {
                    texts.insert(at.index(texts.len() + 1), pair);
                    Err(name.to_string())
                }
            };
            (texts.join("&"), outcome)
        })
    }

    #[test]
    fn generated_queries_are_mostly_accepted() {
        // The property below is only worth its cases if most of them parse.
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = query();
        let n = 500;
        let accepted = (0..n)
            .filter(|_| {
                let (q, expected) = strategy.new_tree(&mut runner).unwrap().current();
                let ok = parse(&q).is_ok();
                assert_eq!(ok, expected.is_ok(), "{q}");
                ok
            })
            .count();
        assert!(accepted * 10 >= n * 7, "only {accepted} of {n} accepted");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Every spelling of every accepted value parses to the right typed value; the
        /// canonical form parses back to the same `Params`, is a fixed point, lists each
        /// parameter once in the documented order; wrong pairs are a 400 naming the parameter.
        #[test]
        fn parsing_and_canonical_form((q, expected) in query()) {
            match expected {
                Ok(expected) => {
                    let p = parse(&q).map_err(|e| TestCaseError::fail(format!("{q}: {e}")))?;
                    prop_assert_eq!(&p, &expected, "{}", q);
                    let canonical = p.to_string();
                    let again = parse(&canonical)
                        .map_err(|e| TestCaseError::fail(format!("{canonical}: {e}")))?;
                    prop_assert_eq!(&again, &p, "{} -> {}", q, canonical);
                    prop_assert_eq!(again.to_string(), canonical.clone());
                    let order: Vec<usize> = canonical
                        .split('&')
                        .filter(|s| !s.is_empty())
                        .map(|pair| {
                            let name = pair.split('=').next().unwrap_or("");
                            ACCEPTED.iter().position(|(n, _)| *n == name).unwrap_or(usize::MAX)
                        })
                        .collect();
                    prop_assert!(order.windows(2).all(|w| w[0] < w[1]), "{}", canonical);
                    prop_assert_eq!(order.len(), q.split('&').filter(|s| !s.is_empty()).count());
                    prop_assert_eq!(p.is_empty(), p.without_download().0 == Params::default());
                }
                Err(name) => {
                    let err = parse(&q).expect_err(&q);
                    prop_assert_eq!(err.status(), 400);
                    prop_assert_eq!(param_of(err), name, "{}", q);
                }
            }
        }
    }
}
