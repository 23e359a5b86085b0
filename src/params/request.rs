//! The typed image request: what the URL asked for, split by what it affects.
//!
//! [`ImageRequest`] is the parsed query: the [`Transform`] (the pixels, and with the resolved
//! format the cache key), the [`Output`] format, the response [`Mode`] and `download`. Format
//! negotiation happens here and nowhere else: [`ImageRequest::format_choice`] reduces the
//! `Accept` header to the [`FormatChoice`] that keys the cache, and [`FormatChoice::resolve`]
//! picks the format once the source's header is known.

use super::table::{self, Transform};
use super::values::{FormatParam, OutputFormat, Srcset};
use crate::error::Result;
use std::fmt;

/// The output format the URL asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Output {
    /// No `fmt`: the original's own format (PNG for sources that cannot be encoded back).
    #[default]
    Original,
    Exact(OutputFormat),
    /// `fmt=auto`: negotiated from the `Accept` header.
    Auto,
}

/// What kind of answer the URL asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// An image.
    #[default]
    Pixels,
    /// `fmt=json`: the original's metadata, read from its header.
    Metadata,
    /// `fmt=thumbhash`: the original's placeholder alone.
    Placeholder,
}

/// A parsed, validated request for an image.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ImageRequest {
    pub transform: Transform,
    pub output: Output,
    pub mode: Mode,
    /// `download=1`: answer as an attachment named after the key. Never in the cache key:
    /// the same bytes are cached once, whether sent inline or as an attachment.
    pub download: bool,
    /// `preset=NAME`: expanded by the policy into the other fields. Never in the cache key:
    /// a preset and the explicit query it stands for share one rendition.
    pub preset: Option<String>,
    /// `srcset=320,640,thumb` with `fmt=json`: the `<img>` attributes for these candidates.
    /// Never in the cache key (the metadata answer is not a rendition).
    pub srcset: Option<Srcset>,
}

impl ImageRequest {
    /// Parse a raw (still percent-encoded) query string. `None` or `""` asks for the original.
    pub fn parse(query: Option<&str>) -> Result<ImageRequest> {
        Self::from_pairs(
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned())),
        )
    }

    /// Parse already-decoded `(name, value)` pairs (the CLI's flags use this too).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Result<ImageRequest> {
        table::parse_pairs(pairs)
    }

    /// True when the URL asked for the original bytes, untouched (`download` only changes how
    /// they are sent).
    pub fn is_original(&self) -> bool {
        self.transform == Transform::default()
            && self.output == Output::Original
            && self.mode == Mode::Pixels
    }

    /// What `fmt` said, as one value (for its canonical spelling and the allow-list).
    pub fn format_param(&self) -> Option<FormatParam> {
        match (self.mode, self.output) {
            (Mode::Metadata, _) => Some(FormatParam::Json),
            (Mode::Placeholder, _) => Some(FormatParam::Thumbhash),
            (Mode::Pixels, Output::Original) => None,
            (Mode::Pixels, Output::Exact(f)) => Some(FormatParam::Exact(f)),
            (Mode::Pixels, Output::Auto) => Some(FormatParam::Auto),
        }
    }

    /// The output choice as a cache key: `fmt=auto` reduced to the formats `accept` lists,
    /// after `allowed` removed those the allow-list does not name.
    pub fn format_choice(
        &self,
        accept: Option<&str>,
        allowed: impl FnOnce(Accepted) -> Accepted,
    ) -> FormatChoice {
        match self.output {
            Output::Original => FormatChoice::Source,
            Output::Exact(f) => FormatChoice::Exact(f),
            Output::Auto => FormatChoice::Auto(allowed(Accepted::from_header(accept))),
        }
    }
}

/// A preset name, `[a-z0-9_-]{1,32}` (the URL's `preset` and `IMGFN_PRESETS` alike).
pub fn preset_name(v: &str) -> Result<String> {
    let ok = (1..=32).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(v.to_string())
    } else {
        Err(crate::error::Error::invalid_param(
            "preset",
            "`preset` must be a name of 1 to 32 characters a-z, 0-9, `_` or `-`",
        ))
    }
}

/// Canonical query form (the table's order, normalised values): logs and signatures.
impl fmt::Display for ImageRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&table::canonical(self))
    }
}

/// How the output format was asked for, resolved far enough to be a cache key before the
/// source is even read: `fmt=auto` depends only on which formats the `Accept` header lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FormatChoice {
    /// No `fmt`: the source's own format.
    Source,
    Exact(OutputFormat),
    Auto(Accepted),
}

impl FormatChoice {
    /// The output format, once the source's header says what it is (`source` is the format
    /// it is re-encoded in), whether it has alpha and whether it stays animated.
    pub fn resolve(self, source: OutputFormat, has_alpha: bool, animated: bool) -> OutputFormat {
        match self {
            FormatChoice::Source => source,
            FormatChoice::Exact(f) => f,
            FormatChoice::Auto(accepted) => accepted.choose(has_alpha, animated),
        }
    }

    /// Whether the response depends on `Accept` (and must say `Vary: Accept`).
    pub fn varies_by_accept(self) -> bool {
        matches!(self, FormatChoice::Auto(_))
    }
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

    /// `fmt=auto`: AVIF if accepted, else WebP, else PNG for images with alpha, else JPEG;
    /// an animation keeps its motion: WebP if accepted, else GIF.
    pub fn choose(self, has_alpha: bool, animated: bool) -> OutputFormat {
        if animated {
            if self.webp {
                OutputFormat::Webp
            } else {
                OutputFormat::Gif
            }
        } else if self.avif {
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
