//! The gallery: `GET /_/gallery.json` lists originals with their dimensions and ready
//! thumbnail URLs; `GET /_/gallery` is a static page built on it (plus the upload form).
//!
//! Dimensions come from a header-only read (the first 64 KiB; the whole file only when its
//! header is longer), cached by key and version. Each image's placeholder (`thumbhash`,
//! `dominant_color`) needs its pixels: the original is fetched and decoded at its smallest
//! size, under the render admission, and the result cached by version like the dimensions, so
//! listing a page again reads nothing but the store's index.

use crate::config::GalleryMode;
use crate::error::{Error, Result};
use crate::key::{encode_key, Key};
use crate::pipeline::{self, SourceFormat};
use crate::placeholder::{self, Placeholder};
use crate::source::Listed;
use crate::uploads::UploadToken;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Thumbnails fit in this box (CSS pixels), never enlarged.
pub const THUMB_BOX: u32 = 240;
/// Bytes read to find an image's dimensions; enough for every header but JPEGs with large
/// embedded previews or ICC profiles, which fall back to a full read.
pub const HEADER_BYTES: u64 = 64 * 1024;
pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

pub const PAGE_HTML: &str = include_str!("gallery/index.html");
pub const PAGE_JS: &str = include_str!("gallery/gallery.js");
/// The page's scripts come only from imgfn; uploads go to the store's origin (`connect-src`).
pub const PAGE_CSP: &str =
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data: blob:; connect-src *; frame-ancestors 'none'; base-uri 'none'";

/// The bearer token that opens a private gallery's listing (`IMGFN_GALLERY_TOKEN`) and
/// nothing else: the upload token's rules (16+ printable ASCII characters, compared in
/// constant time, never printed).
#[derive(Clone)]
pub struct ViewerToken(UploadToken);

impl std::str::FromStr for ViewerToken {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        s.parse::<UploadToken>()
            .map(ViewerToken)
            .map_err(|e| e.replace("upload token", "gallery token"))
    }
}

impl std::fmt::Debug for ViewerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ViewerToken(<redacted>)")
    }
}

impl ViewerToken {
    /// Check an `Authorization: Bearer <token>` header (401 otherwise).
    pub fn check(&self, authorization: Option<&str>) -> Result<()> {
        self.0.check(authorization)
    }
}

/// Whether a request may read the listing of a gallery in `mode`: always when public; when
/// private, with the viewer token or the upload token (401 otherwise, and when neither is
/// configured: nobody may).
pub fn may_list(
    mode: GalleryMode,
    viewer: Option<&ViewerToken>,
    upload: Option<&UploadToken>,
    authorization: Option<&str>,
) -> Result<()> {
    match mode {
        GalleryMode::Public => Ok(()),
        GalleryMode::Off => Err(Error::NotFound),
        GalleryMode::Private => {
            // Both are checked whatever the first says: the time taken says nothing of which
            // token was tried.
            let as_viewer = viewer.map(|t| t.check(authorization).is_ok());
            let as_uploader = upload.map(|t| t.check(authorization).is_ok());
            match (as_viewer, as_uploader) {
                (Some(true), _) | (_, Some(true)) => Ok(()),
                (None, None) => Err(Error::Unauthorized(
                    "this gallery is private and no token is configured to open it".into(),
                )),
                _ => Err(Error::Unauthorized(
                    "this gallery is private: an `Authorization: Bearer` token is required".into(),
                )),
            }
        }
    }
}

/// `prefix`, `cursor`, `limit` and `placeholders` of a listing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GalleryQuery {
    pub prefix: String,
    /// Where the last page stopped (its last key, on both backends), decoded.
    pub cursor: Option<String>,
    pub limit: u32,
    /// `placeholders=0` lists without them: header reads only, no original fetched whole.
    /// Default on.
    pub placeholders: bool,
}

impl GalleryQuery {
    pub fn parse(query: Option<&str>) -> Result<GalleryQuery> {
        let mut q = GalleryQuery {
            prefix: String::new(),
            cursor: None,
            limit: DEFAULT_LIMIT,
            placeholders: true,
        };
        let mut seen: Vec<String> = Vec::new();
        for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if seen.iter().any(|s| *s == name) {
                return Err(Error::invalid_param(
                    name.as_ref(),
                    format!("`{name}` is given more than once"),
                ));
            }
            seen.push(name.to_string());
            match name.as_ref() {
                "prefix" => {
                    if value.len() > 1024
                        || value.chars().any(char::is_control)
                        || value.split('/').any(|s| s == "..")
                    {
                        return Err(Error::invalid_param(
                            "prefix",
                            "`prefix` is not a valid key prefix",
                        ));
                    }
                    q.prefix = value.into_owned();
                }
                "cursor" => {
                    let bad = || {
                        Error::invalid_param(
                            "cursor",
                            "`cursor` must be a `next_cursor` from a previous page",
                        )
                    };
                    let raw = URL_SAFE_NO_PAD
                        .decode(value.as_bytes())
                        .map_err(|_| bad())?;
                    let cursor = String::from_utf8(raw).map_err(|_| bad())?;
                    if cursor.is_empty() || cursor.len() > 2048 {
                        return Err(bad());
                    }
                    q.cursor = Some(cursor);
                }
                "limit" => {
                    q.limit = value
                        .parse::<u32>()
                        .ok()
                        .filter(|l| (1..=MAX_LIMIT).contains(l))
                        .ok_or_else(|| {
                            Error::invalid_param(
                                "limit",
                                format!("`limit` must be an integer from 1 to {MAX_LIMIT}"),
                            )
                        })?;
                }
                "placeholders" => {
                    q.placeholders = match value.as_ref() {
                        "1" => true,
                        "0" => false,
                        _ => {
                            return Err(Error::invalid_param(
                                "placeholders",
                                "`placeholders` must be 1 or 0",
                            ))
                        }
                    };
                }
                other => {
                    return Err(Error::invalid_param(
                        other,
                        format!(
                            "unknown parameter `{other}`; accepted: prefix, cursor, limit, \
                             placeholders"
                        ),
                    ))
                }
            }
        }
        Ok(q)
    }
}

/// The opaque form of a store cursor in `next_cursor`.
/// The `exp` of gallery links issued at `now` that live about `secs`: the end of the next
/// half-lifetime window, so every listing within one window signs identical URLs, and each
/// lives between half and the whole of `secs`.
pub fn link_expiry(now: u64, secs: u64) -> u64 {
    let step = (secs / 2).max(1);
    (now / step + 2) * step
}

/// Whether a listed key names an image this build decodes, by its extension (uploads always
/// carry one): HEIC and HEIF only with the `heic` feature.
pub fn looks_like_image(key: &Key) -> bool {
    let name = key.as_str().rsplit('/').next().unwrap_or("");
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    matches!(
        ext.as_deref(),
        Some(
            "jpg"
                | "jpeg"
                | "jpe"
                | "png"
                | "gif"
                | "webp"
                | "avif"
                | "jxl"
                | "tif"
                | "tiff"
                | "bmp"
        )
    ) || (cfg!(feature = "heic") && matches!(ext.as_deref(), Some("heic" | "heif")))
}

pub fn encode_cursor(cursor: &str) -> String {
    URL_SAFE_NO_PAD.encode(cursor.as_bytes())
}

/// What the listing shows of an image, as displayed (EXIF orientation applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    pub width: u32,
    pub height: u32,
    pub format: SourceFormat,
}

impl Dims {
    /// Read from the first bytes of a file; `Ok(None)` when they do not reach the end of
    /// the header (read more and try again).
    pub fn probe(head: &[u8], complete: bool) -> Result<Option<Dims>> {
        match pipeline::probe(head) {
            Ok(info) => {
                let (width, height) = info.display_size();
                Ok(Some(Dims {
                    width,
                    height,
                    format: info.format,
                }))
            }
            Err(Error::CorruptImage { .. }) if !complete => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Dimensions by key and version; errors (a corrupt upload) are remembered too.
pub type DimsCache = moka::future::Cache<(Key, String), std::result::Result<Dims, Error>>;

pub fn dims_cache() -> DimsCache {
    moka::future::Cache::builder().max_capacity(100_000).build()
}

/// Size of the thumbnail in CSS pixels: inside `THUMB_BOX`, aspect ratio kept, never enlarged.
pub fn thumbnail_size(width: u32, height: u32) -> (u32, u32) {
    let (w, h) = (f64::from(width.max(1)), f64::from(height.max(1)));
    let scale = (f64::from(THUMB_BOX) / w)
        .min(f64::from(THUMB_BOX) / h)
        .min(1.0);
    let side = |v: f64| ((v * scale).round() as u32).max(1);
    (side(w), side(h))
}

/// What the deployment's allow-lists let thumbnail URLs ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThumbPolicy {
    /// The size ladder (`IMGFN_ALLOWED_SIZES`), ascending; empty: any size.
    pub ladder: Vec<u32>,
    /// Whether `fmt=auto` is allowed.
    pub auto: bool,
}

impl ThumbPolicy {
    pub fn from_policy(p: &crate::policy::Policy) -> ThumbPolicy {
        ThumbPolicy {
            ladder: p.sizes.clone(),
            auto: p.formats.is_empty() || p.formats.iter().any(|f| f == "auto"),
        }
    }

    /// The thumbnail's query and its CSS size, for an image of `width`×`height`.
    /// Without a ladder: `w`×`h` with `fit=fill` at the image's own aspect ratio, so the 1x
    /// and 2x candidates are exactly that size times the density. With a ladder, `w` alone
    /// at the rung that fits (a `h` snapped on its own would distort the image).
    fn query(&self, width: u32, height: u32) -> (String, u32, u32) {
        let fmt = if self.auto { "&fmt=auto" } else { "" };
        let (tw, th) = thumbnail_size(width, height);
        match self.ladder.as_slice() {
            [] => (format!("w={tw}&h={th}&fit=fill{fmt}"), tw, th),
            ladder => {
                let rung = ladder
                    .iter()
                    .copied()
                    .find(|&r| r >= tw)
                    .or_else(|| ladder.last().copied())
                    .unwrap_or(tw);
                let h = (f64::from(rung) * f64::from(height) / f64::from(width.max(1)))
                    .round()
                    .max(1.0) as u32;
                (format!("w={rung}{fmt}"), rung, h)
            }
        }
    }
}

/// Widths (CSS or device pixels alike: `w` descriptors) of the viewer's candidates when no
/// size ladder is configured: from a phone to a 4K screen.
pub const VIEWER_WIDTHS: [u32; 4] = [640, 1280, 1920, 2560];

/// The viewer's candidates for an image `width`×`height` wide as displayed: `(w, h)` per
/// width, never wider than the image itself (its own width stands in for the larger ones);
/// under a ladder, its rungs up to the image's width (at least the smallest).
pub fn viewer_widths(width: u32, height: u32, ladder: &[u32]) -> Vec<(u32, u32)> {
    let width = width.max(1);
    let wanted: Vec<u32> = match ladder {
        [] => VIEWER_WIDTHS.iter().map(|&w| w.min(width)).collect(),
        rungs => {
            let mut fit: Vec<u32> = rungs.iter().copied().filter(|&r| r <= width).collect();
            if fit.is_empty() {
                fit.extend(rungs.first().copied());
            }
            fit
        }
    };
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(wanted.len());
    for w in wanted {
        if out.iter().any(|&(seen, _)| seen == w) {
            continue;
        }
        let h = (f64::from(w) * f64::from(height) / f64::from(width))
            .round()
            .max(1.0) as u32;
        out.push((w, h));
    }
    out
}

/// One listing entry as JSON. `link` turns a path and query into a URL (signing it when
/// signing is on); `placeholder` is `None` when the image has none (it does not decode, or it
/// could not be computed now): its fields are then `null`.
pub fn item_json(
    listed: &Listed,
    dims: &std::result::Result<Dims, Error>,
    placeholder: Option<&Placeholder>,
    thumbs: &ThumbPolicy,
    link: impl Fn(String) -> String,
) -> serde_json::Value {
    let path = format!("/{}", encode_key(&listed.key));
    let mut item = serde_json::json!({
        "key": listed.key.as_str(),
        "bytes": listed.size,
        "url": link(path.clone()),
    });
    match dims {
        Ok(d) => {
            let (query, tw, th) = thumbs.query(d.width, d.height);
            let base = format!("{path}?{query}");
            let src = link(base.clone());
            let src2 = link(format!("{base}&dpr=2"));
            item["width"] = d.width.into();
            item["height"] = d.height.into();
            item["format"] = d.format.name().into();
            item["thumbnail"] = serde_json::json!({
                "width": tw,
                "height": th,
                "src": src,
                "srcset": format!("{src} 1x, {src2} 2x"),
            });
            // The viewer's image at the viewport's size: `w` descriptors, the page's `sizes`.
            let fmt = if thumbs.auto { "&fmt=auto" } else { "" };
            let candidates: Vec<(String, u32, u32)> =
                viewer_widths(d.width, d.height, &thumbs.ladder)
                    .into_iter()
                    .map(|(w, h)| (link(format!("{path}?w={w}{fmt}")), w, h))
                    .collect();
            let srcset: Vec<String> = candidates
                .iter()
                .map(|(url, w, _)| format!("{url} {w}w"))
                .collect();
            if let Some((src, w, h)) = candidates.last() {
                item["viewer"] = serde_json::json!({
                    "src": src,
                    "width": w,
                    "height": h,
                    "srcset": srcset.join(", "),
                });
            }
            item["download"] = link(format!("{path}?download=1")).into();
        }
        Err(e) => {
            item["width"] = serde_json::Value::Null;
            item["height"] = serde_json::Value::Null;
            item["format"] = serde_json::Value::Null;
            item["thumbnail"] = serde_json::Value::Null;
            item["viewer"] = serde_json::Value::Null;
            item["download"] = link(format!("{path}?download=1")).into();
            item["error"] = e.to_json()["error"].clone();
        }
    }
    placeholder::add_fields(&mut item, placeholder);
    item["placeholder"] = placeholder.and_then(|p| p.data_url.clone()).into();
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_expiry_is_rounded_and_bounded() {
        let secs = 86_400;
        for now in [1_000_000u64, 1_043_199, 1_043_200, 2_000_000_123] {
            let exp = link_expiry(now, secs);
            assert!(
                exp > now + secs / 2 - 1 && exp <= now + secs,
                "{now} -> {exp}"
            );
            assert_eq!(exp % (secs / 2), 0);
        }
        // The same URL for every listing within a window.
        assert_eq!(link_expiry(1_000_000, secs), link_expiry(1_000_001, secs));
    }

    #[test]
    fn who_may_list() {
        let viewer: ViewerToken = "a-viewer-token-0123".parse().unwrap();
        let upload: UploadToken = "an-upload-token-0123".parse().unwrap();
        let (v, u) = (
            Some("Bearer a-viewer-token-0123"),
            Some("Bearer an-upload-token-0123"),
        );
        let wrong = Some("Bearer a-viewer-token-0124");
        use GalleryMode::*;
        let status = |r: Result<()>| r.map_or_else(|e| e.status().as_u16(), |()| 200);
        for (mode, viewer, upload, auth, expected) in [
            (Public, None, None, None, 200),
            (Public, Some(&viewer), Some(&upload), None, 200),
            (Public, None, Some(&upload), wrong, 200),
            (Private, Some(&viewer), Some(&upload), v, 200),
            (Private, Some(&viewer), Some(&upload), u, 200),
            (Private, None, Some(&upload), u, 200),
            (Private, Some(&viewer), None, v, 200),
            (Private, Some(&viewer), Some(&upload), None, 401),
            (Private, Some(&viewer), Some(&upload), wrong, 401),
            (Private, None, Some(&upload), v, 401),
            (Private, Some(&viewer), None, u, 401),
            (Private, None, None, v, 401),
            (Off, Some(&viewer), Some(&upload), v, 404),
        ] {
            assert_eq!(
                status(may_list(mode, viewer, upload, auth)),
                expected,
                "{mode:?} viewer {} upload {} {auth:?}",
                viewer.is_some(),
                upload.is_some()
            );
        }
        assert!(!format!("{viewer:?}").contains("a-viewer"));
        let short = "short".parse::<ViewerToken>().unwrap_err();
        assert!(short.contains("gallery token"), "{short}");
    }

    #[test]
    fn only_images_are_listed() {
        let k = |s: &str| Key::parse(s).unwrap();
        assert!(looks_like_image(&k("a/b.JPG")) && looks_like_image(&k("x.webp")));
        for new in ["a.avif", "a.jxl", "scan.TIF", "scan.tiff", "a.bmp"] {
            assert!(looks_like_image(&k(new)), "{new}");
        }
        assert_eq!(looks_like_image(&k("iphone.HEIC")), cfg!(feature = "heic"));
        assert!(!looks_like_image(&k("notes.txt")) && !looks_like_image(&k("a.jpg/README")));
    }

    #[test]
    fn queries() {
        let q = GalleryQuery::parse(Some("prefix=uploads%2F&limit=5")).unwrap();
        assert_eq!(
            (q.prefix.as_str(), q.limit, q.cursor, q.placeholders),
            ("uploads/", 5, None, true)
        );
        assert!(
            !GalleryQuery::parse(Some("placeholders=0"))
                .unwrap()
                .placeholders
        );
        assert!(
            GalleryQuery::parse(Some("placeholders=1"))
                .unwrap()
                .placeholders
        );
        let c = encode_cursor("photos/b.jpg");
        let q = GalleryQuery::parse(Some(&format!("cursor={c}"))).unwrap();
        assert_eq!(q.cursor.as_deref(), Some("photos/b.jpg"));
        for (bad, param) in [
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=x", "limit"),
            ("cursor=%%%", "cursor"),
            ("cursor=", "cursor"),
            ("prefix=a/../b", "prefix"),
            ("prefix=a&prefix=b", "prefix"),
            ("w=10", "w"),
            ("placeholders=yes", "placeholders"),
        ] {
            match GalleryQuery::parse(Some(bad)) {
                Err(Error::InvalidParam { param: p, .. }) => assert_eq!(p, param, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn viewer_candidates_never_upscale() {
        assert_eq!(
            viewer_widths(6028, 3391, &[]),
            [(640, 360), (1280, 720), (1920, 1080), (2560, 1440)]
        );
        // Narrower than the largest: its own width stands in for them, once.
        assert_eq!(viewer_widths(1000, 500, &[]), [(640, 320), (1000, 500)]);
        assert_eq!(viewer_widths(400, 300, &[]), [(400, 300)]);
        // A ladder: its rungs up to the image's width, at least the smallest.
        assert_eq!(
            viewer_widths(1920, 1280, &[128, 256, 512, 1024, 2048]),
            [(128, 85), (256, 171), (512, 341), (1024, 683)]
        );
        assert_eq!(viewer_widths(100, 100, &[256, 512]), [(256, 256)]);
    }

    #[test]
    fn thumbnails_fit_the_box_and_never_grow() {
        assert_eq!(thumbnail_size(6028, 3391), (240, 135));
        assert_eq!(thumbnail_size(3391, 6028), (135, 240));
        assert_eq!(thumbnail_size(100, 50), (100, 50));
        assert_eq!(thumbnail_size(20000, 1), (240, 1));
        assert_eq!(thumbnail_size(1, 1), (1, 1));
    }

    #[test]
    fn items_link_thumbnails_at_1x_and_2x() {
        let listed = Listed {
            key: Key::parse("photos/my cat.jpg").unwrap(),
            size: 1234,
            version: "v".into(),
        };
        let dims = Ok(Dims {
            width: 480,
            height: 320,
            format: SourceFormat::Jpeg,
        });
        let hash = Placeholder {
            thumbhash: vec![0xDC, 0xE7, 0x11],
            dominant: [0x20, 0x40, 0xff],
            data_url: None,
        };
        let item = item_json(
            &listed,
            &dims,
            Some(&hash),
            &ThumbPolicy {
                ladder: vec![],
                auto: true,
            },
            |p| p,
        );
        assert_eq!(item["url"], "/photos/my%20cat.jpg");
        assert_eq!(item["thumbhash"], "3OcR");
        // Three bytes are no ThumbHash: no ready placeholder (real ones: the next test).
        assert!(item["placeholder"].is_null());
        assert_eq!(item["download"], "/photos/my%20cat.jpg?download=1");
        assert_eq!(
            item["viewer"],
            serde_json::json!({
                "src": "/photos/my%20cat.jpg?w=480&fmt=auto",
                "width": 480,
                "height": 320,
                "srcset": "/photos/my%20cat.jpg?w=480&fmt=auto 480w",
            })
        );
        assert_eq!(item["dominant_color"], "#2040ff");
        assert_eq!(item["thumbnail"]["width"], 240);
        assert_eq!(item["thumbnail"]["height"], 160);
        assert_eq!(
            item["thumbnail"]["srcset"],
            "/photos/my%20cat.jpg?w=240&h=160&fit=fill&fmt=auto 1x, \
             /photos/my%20cat.jpg?w=240&h=160&fit=fill&fmt=auto&dpr=2 2x"
        );
        let ladder = ThumbPolicy {
            ladder: vec![128, 256, 512],
            auto: false,
        };
        let snapped = item_json(&listed, &dims, None, &ladder, |p| p);
        assert!(snapped["thumbhash"].is_null() && snapped["dominant_color"].is_null());
        assert!(snapped["placeholder"].is_null());
        assert_eq!(
            snapped["viewer"]["srcset"],
            "/photos/my%20cat.jpg?w=128 128w, /photos/my%20cat.jpg?w=256 256w"
        );
        assert_eq!(snapped["thumbnail"]["src"], "/photos/my%20cat.jpg?w=256");
        assert_eq!(snapped["thumbnail"]["height"], 171); // 256 * 320 / 480
        let broken = item_json(&listed, &Err(Error::corrupt("eof")), None, &ladder, |p| p);
        assert_eq!(broken["error"]["code"], "corrupt_image");
        assert!(broken["thumbnail"].is_null());
    }
}
