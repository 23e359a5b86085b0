//! `fmt=json&srcset=320,640,1280`: the `<img>` attributes a page needs for one image, in
//! one call: `src`, `srcset`, `sizes`, `width` and `height`, and each candidate's URL and
//! exact output size.
//!
//! Each candidate is the request as an image (the same transformation, `fmt=auto`, no
//! `dpr`: the `w` descriptors do the density's work) with its width, or a configured
//! preset; it goes through the policy as its own request would (snapped to the ladder, or
//! refused with the 400 its URL would get) and is planned from the original's header, so
//! its size is the one the rendition will have. Pure: the route supplies the header, the
//! policy and how to turn a path and query into a URL (signed when signing is on).

use crate::error::{Error, Result};
use crate::params::{ImageRequest, Mode, Output, OutputFormat, SrcsetEntry};
use crate::pipeline::{prepare, Limits, SourceInfo};
use crate::policy::Policy;
use serde::Serialize;

/// One candidate: its URL and the size of the image it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub url: String,
    pub width: u32,
    pub height: u32,
}

/// The `img` member of the `fmt=json` answer: attributes to put on an `<img>` as they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Img {
    /// The fallback: the smallest candidate at least as wide as the request's `w`, else the
    /// widest.
    pub src: String,
    /// `URL 320w, URL 640w, ...`, by width, one candidate per width.
    pub srcset: String,
    /// `(max-width: Wpx) 100vw, Wpx` for a request with `w` (its CSS width), else `100vw`.
    pub sizes: String,
    /// The size of `src`: with the URL's own `width`/`height`, no layout shift.
    pub width: u32,
    pub height: u32,
    pub candidates: Vec<Candidate>,
}

/// The `<img>` attributes for `request`'s `srcset` on the original `info` describes, at
/// `path` (as requested, still percent-encoded); `link` turns a path and query into a URL.
pub fn img(
    info: &SourceInfo,
    request: &ImageRequest,
    path: &str,
    policy: &Policy,
    limits: &Limits,
    link: impl Fn(String) -> String,
) -> Result<Option<Img>> {
    let Some(srcset) = &request.srcset else {
        return Ok(None);
    };
    if request.transform.trim.is_some() {
        return Err(Error::invalid_param(
            "srcset",
            "`srcset` sizes come from the original's header, and `trim`'s depend on its \
             pixels: ask for the trimmed renditions without `srcset`",
        ));
    }
    let mut candidates: Vec<Candidate> = Vec::with_capacity(srcset.0.len());
    for entry in &srcset.0 {
        let (asked, shown_as_preset) = candidate_request(request, entry)?;
        let policed = policy.apply(asked.clone())?;
        let mut plan = prepare(info, &policed.transform, OutputFormat::Webp, limits)?;
        let mut policed = policed;
        // A width wider than the original has to offer would only upscale: such a candidate
        // becomes the widest one that does not (sharp's `withoutEnlargement`), and merges with
        // an equal one below. Presets are the operator's sizes and stay as configured.
        if let (SrcsetEntry::Width(w), Some(scale)) = (entry, upscale(&plan)) {
            let narrower =
                SrcsetEntry::Width(((f64::from(*w) / scale + 1e-6).floor() as u32).max(1));
            let (asked, _) = candidate_request(request, &narrower)?;
            let clamped = policy.apply(asked)?;
            let clamped_plan = prepare(info, &clamped.transform, OutputFormat::Webp, limits)?;
            // Under a ladder the narrower width may snap back up: keep the entry as asked.
            if upscale(&clamped_plan).is_none() {
                (policed, plan) = (clamped, clamped_plan);
            }
        }
        // A preset is linked by its name (its parameters may not be repeated in its URL);
        // a width by the policed query (the ladder's own value, so the URL hits the cache).
        let query = if shown_as_preset {
            asked.to_string()
        } else {
            policed.to_string()
        };
        let (width, height) = plan.canvas;
        // Two entries the ladder turned into one size, or two presets as wide: one candidate
        // per width (a `srcset` with two equal descriptors is invalid).
        if candidates.iter().any(|c| c.width == width) {
            continue;
        }
        candidates.push(Candidate {
            url: link(format!("{path}?{query}")),
            width,
            height,
        });
    }
    candidates.sort_by_key(|c| c.width);
    let css_width = request.transform.width;
    let fallback = css_width
        .and_then(|w| candidates.iter().find(|c| c.width >= w))
        .or(candidates.last())
        .cloned()
        .ok_or_else(|| Error::invalid_param("srcset", "`srcset` lists no candidate"))?;
    Ok(Some(Img {
        src: fallback.url,
        srcset: candidates
            .iter()
            .map(|c| format!("{} {}w", c.url, c.width))
            .collect::<Vec<_>>()
            .join(", "),
        sizes: match css_width {
            Some(w) => format!("(max-width: {w}px) 100vw, {w}px"),
            None => "100vw".to_string(),
        },
        width: fallback.width,
        height: fallback.height,
        candidates,
    }))
}

/// How many times larger than its source region `plan` makes the image, when it enlarges it.
fn upscale(plan: &crate::pipeline::Plan) -> Option<f64> {
    let (w, h) = plan.size;
    let scale = (f64::from(w) / plan.region.w).max(f64::from(h) / plan.region.h);
    // Half a pixel of rounding is not an enlargement.
    (f64::from(w) > plan.region.w + 0.5 || f64::from(h) > plan.region.h + 0.5).then_some(scale)
}

/// The image request one entry stands for, and whether it is a preset's.
fn candidate_request(request: &ImageRequest, entry: &SrcsetEntry) -> Result<(ImageRequest, bool)> {
    let image = |transform| ImageRequest {
        transform,
        output: Output::Auto,
        mode: Mode::Pixels,
        download: false,
        preset: None,
        srcset: None,
    };
    match entry {
        SrcsetEntry::Preset(name) => Ok((
            ImageRequest {
                preset: Some(name.clone()),
                output: Output::Original,
                ..image(Default::default())
            },
            true,
        )),
        SrcsetEntry::Width(w) => {
            if request.preset.is_some() {
                return Err(Error::invalid_param(
                    "srcset",
                    "with `preset`, `srcset` must name presets, not widths",
                ));
            }
            let mut t = request.transform.clone();
            // A box keeps its aspect ratio at every width; `h` alone gives way to the width.
            t.height = match (t.width, t.height) {
                (Some(bw), Some(bh)) => {
                    Some(((f64::from(bh) * f64::from(*w) / f64::from(bw)).round() as u32).max(1))
                }
                _ => None,
            };
            t.width = Some(*w);
            t.dpr = None;
            Ok((image(t), false))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{Orientation, SourceFormat};
    use crate::policy::SizePolicy;

    fn info(stored: (u32, u32), exif: u8) -> SourceInfo {
        SourceInfo {
            format: SourceFormat::Jpeg,
            stored,
            orientation: Orientation::from_exif(exif),
            has_alpha: false,
            complete: true,
            decoder_overhead: 0,
            decode_px_bytes: 3,
            animation: None,
        }
    }

    fn img_for(q: &str, policy: &Policy, source: &SourceInfo) -> Result<Img> {
        let request = policy.apply(ImageRequest::parse(Some(q))?)?;
        img(
            source,
            &request,
            "/a%20b.jpg",
            policy,
            &Limits::default(),
            |pq| format!("https://cdn.test{pq}"),
        )
        .map(|img| img.expect("srcset asked"))
    }

    #[test]
    fn widths_keep_the_request_and_get_their_exact_sizes() {
        let source = info((3000, 2000), 1);
        let img = img_for(
            "fmt=json&srcset=640,320,1280&w=400&fit=cover&h=300&q=70&dpr=2",
            &Policy::default(),
            &source,
        )
        .unwrap();
        let sizes: Vec<_> = img.candidates.iter().map(|c| (c.width, c.height)).collect();
        assert_eq!(sizes, [(320, 240), (640, 480), (1280, 960)]);
        assert_eq!(
            img.candidates[0].url,
            "https://cdn.test/a%20b.jpg?w=320&h=240&fit=cover&fmt=auto&q=70"
        );
        assert_eq!(img.src, img.candidates[1].url, "smallest at least 400 wide");
        assert_eq!((img.width, img.height), (640, 480));
        assert_eq!(img.sizes, "(max-width: 400px) 100vw, 400px");
        assert_eq!(
            img.srcset,
            img.candidates
                .iter()
                .map(|c| format!("{} {}w", c.url, c.width))
                .collect::<Vec<_>>()
                .join(", ")
        );
        // Turned by EXIF, only a width: the height follows the displayed aspect ratio.
        let img = img_for(
            "fmt=json&srcset=100,200",
            &Policy::default(),
            &info((300, 200), 6),
        )
        .unwrap();
        let sizes: Vec<_> = img.candidates.iter().map(|c| (c.width, c.height)).collect();
        assert_eq!(sizes, [(100, 150), (200, 300)]);
        assert_eq!(img.sizes, "100vw");
        assert_eq!(img.src, img.candidates[1].url, "no `w`: the widest");
    }

    #[test]
    fn widths_past_the_original_become_the_widest_that_does_not_upscale() {
        // 1000 px wide as displayed (stored 800x1000, turned by EXIF 6).
        let source = info((800, 1000), 6);
        let img = img_for(
            "fmt=json&srcset=320,640,1280,2000",
            &Policy::default(),
            &source,
        )
        .unwrap();
        let sizes: Vec<_> = img.candidates.iter().map(|c| (c.width, c.height)).collect();
        assert_eq!(sizes, [(320, 256), (640, 512), (1000, 800)]);
        assert!(
            img.candidates[2].url.contains("w=1000"),
            "{}",
            img.candidates[2].url
        );
        // A box: the clamp keeps its aspect ratio, and `fit=cover` crops before it enlarges.
        let img = img_for(
            "fmt=json&srcset=300,1200&w=600&h=600&fit=cover",
            &Policy::default(),
            &source,
        )
        .unwrap();
        let sizes: Vec<_> = img.candidates.iter().map(|c| (c.width, c.height)).collect();
        assert_eq!(sizes, [(300, 300), (800, 800)]);
    }

    #[test]
    fn the_ladder_snaps_candidates_and_merges_equal_widths() {
        let policy = Policy {
            sizes: vec![200, 400, 800],
            size_policy: SizePolicy::Snap,
            ..Policy::default()
        };
        let img = img_for(
            "fmt=json&srcset=190,210,390,800",
            &policy,
            &info((3000, 2000), 1),
        )
        .unwrap();
        let widths: Vec<_> = img.candidates.iter().map(|c| c.width).collect();
        assert_eq!(widths, [200, 400, 800]);
        assert!(
            img.candidates[0].url.contains("?w=200&"),
            "{}",
            img.candidates[0].url
        );
        // Refusing instead of snapping: the candidate's own 400.
        let refuse = Policy {
            size_policy: SizePolicy::Refuse,
            ..policy
        };
        let err = img_for("fmt=json&srcset=200,300", &refuse, &info((3000, 2000), 1)).unwrap_err();
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn presets_are_linked_by_name_with_their_own_sizes() {
        let presets = "thumb=w=200&h=200&fit=cover,hero=w=1600&q=70"
            .parse()
            .unwrap();
        let policy = Policy::default().with_presets(presets, true);
        let img = img_for(
            "fmt=json&srcset=hero,thumb",
            &policy,
            &info((3000, 2000), 1),
        )
        .unwrap();
        let got: Vec<_> = img
            .candidates
            .iter()
            .map(|c| (c.url.as_str(), c.width, c.height))
            .collect();
        assert_eq!(
            got,
            [
                ("https://cdn.test/a%20b.jpg?preset=thumb", 200, 200),
                ("https://cdn.test/a%20b.jpg?preset=hero", 1600, 1067),
            ]
        );
        // Only presets: widths are refused, as their URLs would be.
        let err = img_for("fmt=json&srcset=320", &policy, &info((3000, 2000), 1)).unwrap_err();
        assert_eq!(err.status(), 400);
        let err = img_for("fmt=json&srcset=nope", &policy, &info((3000, 2000), 1)).unwrap_err();
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn refused_combinations_are_400s() {
        let source = info((3000, 2000), 1);
        for q in [
            "srcset=320",
            "fmt=webp&srcset=320",
            "fmt=json&srcset=",
            "fmt=json&srcset=0",
            "fmt=json&srcset=320,x y",
            "fmt=json&srcset=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17",
            "fmt=json&srcset=320&trim=10",
        ] {
            let err = img_for(q, &Policy::default(), &source).unwrap_err();
            assert_eq!(err.status(), 400, "{q}");
        }
        // Too large for the limits: the candidate's own 422.
        let err = img_for(
            "fmt=json&srcset=8192&h=8192&w=1",
            &Policy::default(),
            &source,
        );
        assert_eq!(err.unwrap_err().status(), 422);
    }
}
