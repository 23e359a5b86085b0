//! Optional allow-lists that bound the cache key space, applied to a parsed `ImageRequest` before
//! they become a cache key: a ladder of sizes (snap up to the next rung, or refuse), allowed
//! formats, and a maximum quality. Without them every `w` from 1 to 8192 is a new cache
//! entry and a new render: the cheapest cache-busting attack there is.

//!
//! Under a size ladder the whole key space is bounded, not only `w` and `h`: `dpr` snaps up
//! to [`DPR_LADDER`] and only applies with a box, `q` rounds to a multiple of
//! [`QUALITY_STEP`], focal points to a [`FOCAL_STEPS`] grid, and `bg` must be on the
//! configured list. The number of renditions one original can have is then finite (the
//! README gives it). The output format is checked after `auto` negotiation and the source
//! default, so no allow-list can be walked around by leaving `fmt` out.

use crate::error::{Error, Result};
use crate::params::Crop;
use crate::params::{
    Accepted, Cost, Dpr, Field, Gravity, ImageRequest, Mode, OutputFormat, Rgba, Sigma, Trim, TABLE,
};

/// Device pixel ratios a request may reach under a size ladder (hundredths).
pub const DPR_LADDER: [u16; 5] = [100, 150, 200, 300, 400];
/// `q` is rounded to a multiple of this under a size ladder (at least this).
pub const QUALITY_STEP: u8 = 5;
/// Focal points are rounded to 1/FOCAL_STEPS of the width and height under a size ladder.
pub const FOCAL_STEPS: u16 = 20;
/// `crop` fractions are rounded to 1/REGION_STEPS under a size ladder (pixels are refused).
pub const REGION_STEPS: u16 = 20;
/// Effect strengths (`blur`, `sharpen`; tenths of a pixel) snap up to these under a ladder.
pub const AMOUNT_LADDER: [u16; 11] = [5, 10, 20, 30, 50, 80, 130, 200, 300, 500, 1000];
/// `trim` thresholds are rounded to a multiple of this under a size ladder.
pub const TRIM_STEP: u8 = 16;

/// What to do with a size that is not on the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SizePolicy {
    /// Round up to the next allowed size (a request above the largest is refused).
    #[default]
    Snap,
    /// Refuse any size not on the ladder.
    Refuse,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Allowed `w` and `h` values (CSS pixels), ascending; empty allows all.
    pub sizes: Vec<u32>,
    pub size_policy: SizePolicy,
    /// Allowed `fmt` values (`jpeg`, `png`, `webp`, `avif`, `gif`, `auto`, `json`, `thumbhash`); empty allows all.
    pub formats: Vec<String>,
    /// Highest `q`; a higher one is lowered to it.
    pub max_quality: Option<u8>,
    /// `bg` colours allowed under a size ladder (any colour without a ladder).
    pub backgrounds: Vec<Rgba>,
    /// Named parameter sets that `preset=NAME` expands to.
    pub presets: Presets,
    /// Refuse every transformation but `preset=NAME` (and `download`); originals stay.
    pub only_presets: bool,
}

/// Named parameter sets (`IMGFN_PRESETS`: `name=query[,name=query...]`), each query parsed
/// at startup by the URL's own parser, so a bad preset stops the service from starting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presets(Vec<(String, ImageRequest)>);

impl Presets {
    pub fn get(&self, name: &str) -> Option<&ImageRequest> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, r)| r)
    }

    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn listed(&self) -> String {
        if self.0.is_empty() {
            "none are configured (IMGFN_PRESETS)".to_string()
        } else {
            format!("configured: {}", self.names().join(", "))
        }
    }
}

/// The name of the preset that a comma-separated piece starts (`thumb` of `thumb=w=200`);
/// `None` for a piece that continues the previous query (`gravity=0.5,0.5` holds a comma).
fn starts_preset(piece: &str) -> Option<&str> {
    let (name, _) = piece.split_once('=')?;
    crate::params::request::preset_name(name).ok().map(|_| name)
}

impl std::str::FromStr for Presets {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Presets, String> {
        let mut items: Vec<(String, String)> = Vec::new();
        for piece in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match (starts_preset(piece), items.last_mut()) {
                (Some(name), _) => items.push((name.to_string(), piece[name.len() + 1..].into())),
                (None, Some((_, query))) => {
                    query.push(',');
                    query.push_str(piece);
                }
                (None, None) => {
                    return Err(format!(
                        "`{piece}` is not `name=query` with a name of 1 to 32 characters a-z, 0-9, `_` or `-`"
                    ))
                }
            }
        }
        let mut presets = Presets::default();
        for (name, query) in items {
            let req = ImageRequest::parse(Some(&query))
                .map_err(|e| format!("preset `{name}`: {}", e.public_message()))?;
            if req.preset.is_some() {
                return Err(format!(
                    "preset `{name}`: a preset cannot name another preset"
                ));
            }
            if presets.get(&name).is_some() {
                return Err(format!("preset `{name}` is defined twice"));
            }
            presets.0.push((name, req));
        }
        Ok(presets)
    }
}

impl Policy {
    pub fn new(
        mut sizes: Vec<u32>,
        size_policy: SizePolicy,
        formats: Vec<String>,
        max_quality: Option<u8>,
    ) -> Policy {
        sizes.sort_unstable();
        sizes.dedup();
        Policy {
            sizes,
            size_policy,
            formats: formats
                .into_iter()
                .map(|f| f.trim().to_ascii_lowercase())
                .collect(),
            max_quality,
            backgrounds: Vec::new(),
            presets: Presets::default(),
            only_presets: false,
        }
    }

    /// Expand `preset=NAME` to these; with `only`, refuse every other transformation.
    pub fn with_presets(mut self, presets: Presets, only: bool) -> Policy {
        self.presets = presets;
        self.only_presets = only;
        self
    }

    /// `preset=NAME` replaced by the preset's parameters plus those the URL adds (one set by
    /// both is a 400: nothing is overridden silently). The name stays, for the logs; it is
    /// not in the cache key, so a preset and its explicit query share one rendition.
    fn expand(&self, req: ImageRequest) -> Result<ImageRequest> {
        if self.only_presets {
            // Metadata and placeholders render nothing: `fmt=json` and `fmt=thumbhash` stay.
            let answers_data = req.mode != Mode::Pixels;
            let extra = TABLE.iter().find(|p| {
                let data_format = answers_data && matches!(p.cost, Cost::Format);
                !matches!(p.cost, Cost::Preset | Cost::Response)
                    && !data_format
                    && p.value(&req).is_some()
            });
            if let Some(p) = extra {
                return Err(Error::invalid_param(
                    p.name,
                    format!(
                        "only presets are allowed on this server: ask for `preset` alone \
                         (with `download` if wanted), or the original with no parameters; {}",
                        self.presets.listed()
                    ),
                ));
            }
        }
        let Some(name) = req.preset.clone() else {
            return Ok(req);
        };
        let Some(preset) = self.presets.get(&name) else {
            return Err(Error::invalid_param(
                "preset",
                format!("unknown preset `{name}`; {}", self.presets.listed()),
            ));
        };
        let mut pairs = Vec::new();
        for p in TABLE.iter().filter(|p| !matches!(p.cost, Cost::Preset)) {
            match (p.value(preset), p.value(&req)) {
                (Some(v), Some(_)) => {
                    return Err(Error::invalid_param(
                        p.name,
                        format!(
                            "`{}` is already set by preset `{name}` ({}={v}); leave it out",
                            p.name, p.name
                        ),
                    ))
                }
                (from_preset, from_url) => {
                    if let Some(v) = from_preset.or(from_url) {
                        pairs.push((p.name.to_string(), v));
                    }
                }
            }
        }
        let mut expanded = ImageRequest::from_pairs(pairs)?;
        expanded.preset = Some(name);
        Ok(expanded)
    }

    /// Allow these `bg` colours under a size ladder.
    pub fn with_backgrounds(mut self, backgrounds: Vec<Rgba>) -> Policy {
        self.backgrounds = backgrounds;
        self
    }

    /// Whether an allow-list of sizes is in force (and with it the bounded key space).
    pub fn has_ladder(&self) -> bool {
        !self.sizes.is_empty()
    }

    /// Is `format` allowed as an output (after negotiation)?
    pub fn allows(&self, format: OutputFormat) -> bool {
        self.lists(format.name())
    }

    /// Does the allow-list name the `fmt` value `name` (`jpg` naming `jpeg`), or is it empty?
    fn lists(&self, name: &str) -> bool {
        self.formats.is_empty()
            || self
                .formats
                .iter()
                .any(|f| f == name || (f == "jpg" && name == "jpeg"))
    }

    /// What `fmt=auto` may choose from this `Accept`: formats that are not allowed are
    /// treated as not accepted (part of the cache key, so fewer variants too).
    pub fn mask(&self, accepted: Accepted) -> Accepted {
        Accepted {
            avif: accepted.avif && self.allows(OutputFormat::Avif),
            webp: accepted.webp && self.allows(OutputFormat::Webp),
        }
    }

    /// Refuse an output format that the allow-list does not name, however it was reached
    /// (`fmt=auto`'s fallback, or the source's own format when `fmt` is left out).
    pub fn check_output(&self, format: OutputFormat) -> Result<()> {
        if self.allows(format) {
            return Ok(());
        }
        Err(Error::invalid_param(
            "fmt",
            format!(
                "this request would produce {}, which is not an allowed output format; ask for `fmt` = one of: {}",
                format.name(),
                self.formats.join(", ")
            ),
        ))
    }

    /// A size on the ladder: itself, the next rung up (snap), or a 400 (refuse, or above
    /// the largest rung).
    fn size(&self, param: &str, v: u32) -> Result<u32> {
        if self.sizes.is_empty() || self.sizes.contains(&v) {
            return Ok(v);
        }
        let ladder = self
            .sizes
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        match (self.size_policy, self.sizes.iter().find(|&&s| s >= v)) {
            (SizePolicy::Snap, Some(&rung)) => Ok(rung),
            _ => Err(Error::invalid_param(
                param,
                format!("`{param}` must be one of the allowed sizes: {ladder}"),
            )),
        }
    }

    /// An allowed `fmt` value (by name, as configured).
    fn format(&self, value: &str) -> Result<()> {
        if self.lists(value) {
            return Ok(());
        }
        Err(Error::invalid_param(
            "fmt",
            format!(
                "`fmt` must be one of the allowed formats: {}",
                self.formats.join(", ")
            ),
        ))
    }

    fn cap_quality(&self, q: u8) -> u8 {
        self.max_quality.map_or(q, |max| q.min(max))
    }

    /// A ratio on [`DPR_LADDER`] (1x is the same as none).
    fn ratio(d: Dpr) -> Option<Dpr> {
        let rung = DPR_LADDER
            .iter()
            .copied()
            .find(|&r| r >= d.hundredths())
            .unwrap_or(400);
        Dpr::from_hundredths(rung).filter(|&d| d != Dpr::ONE)
    }

    /// `q` rounded to the nearest multiple of [`QUALITY_STEP`] (at least one step).
    fn quality_step(q: u8) -> u8 {
        let step = u16::from(QUALITY_STEP);
        let rounded = (u16::from(q) + step / 2) / step * step;
        rounded.clamp(step, 100) as u8
    }

    /// A focal point on the [`FOCAL_STEPS`] grid; anchors are already few.
    fn position(g: Gravity) -> Gravity {
        match g {
            Gravity::Focal { x, y } => {
                let cell = 10_000 / FOCAL_STEPS;
                let snap = |v: u16| (v + cell / 2) / cell * cell;
                Gravity::Focal {
                    x: snap(x),
                    y: snap(y),
                }
            }
            anchor => anchor,
        }
    }

    /// A crop in fractions on the [`REGION_STEPS`] grid (a side at least one cell); a crop
    /// in pixels would make every pixel offset a rendition, so it is refused.
    fn region(param: &str, c: Crop) -> Result<Crop> {
        match c {
            Crop::Fraction { x, y, w, h } => {
                let cell = 10_000 / REGION_STEPS;
                let snap = |v: u16| (v + cell / 2) / cell * cell;
                Ok(Crop::Fraction {
                    x: snap(x).min(10_000 - cell),
                    y: snap(y).min(10_000 - cell),
                    w: snap(w).max(cell),
                    h: snap(h).max(cell),
                })
            }
            Crop::Pixels { .. } => Err(Error::invalid_param(
                param,
                format!("`{param}` must be given in fractions (e.g. 0.1,0.2,0.5,0.5) when sizes are restricted to a ladder"),
            )),
        }
    }

    /// An effect's strength snapped up to [`AMOUNT_LADDER`] (the largest rung above it).
    fn amount(a: Sigma) -> Sigma {
        let rung = AMOUNT_LADDER
            .iter()
            .copied()
            .find(|&r| r >= a.tenths())
            .unwrap_or(AMOUNT_LADDER[AMOUNT_LADDER.len() - 1]);
        Sigma::from_tenths(rung)
    }

    fn colour(&self, param: &str, bg: Rgba) -> Result<Rgba> {
        if self.backgrounds.contains(&bg) {
            return Ok(bg);
        }
        Err(Error::invalid_param(
            param,
            if self.backgrounds.is_empty() {
                format!("the colour of `{param}` is not allowed on this server (IMGFN_ALLOWED_BACKGROUNDS)")
            } else {
                format!("the colour of `{param}` must be one of the allowed colours (IMGFN_ALLOWED_BACKGROUNDS)")
            },
        ))
    }

    /// A trim's threshold rounded to [`TRIM_STEP`], its colour (if any) an allowed one.
    fn trim(&self, param: &str, t: Trim) -> Result<Trim> {
        let step = u16::from(TRIM_STEP);
        let threshold = ((u16::from(t.threshold) + step / 2) / step * step).min(255) as u8;
        let colour = match t.colour {
            Some(c) => Some(self.colour(param, c)?),
            None => None,
        };
        Ok(Trim { threshold, colour })
    }

    /// Enforce the allow-lists on `req`, snapping or lowering values where configured. The
    /// caps come from each parameter's cost class in the parameter table: a new parameter
    /// is bounded by declaring its class there.
    pub fn apply(&self, req: ImageRequest) -> Result<ImageRequest> {
        let mut req = self.expand(req)?;
        // Always: sizes on the ladder (if any), allowed formats, the quality cap.
        for p in TABLE {
            match p.cost {
                Cost::Size(f) => update(&mut req, f, |v| self.size(p.name, v))?,
                Cost::Format => {
                    if let Some(value) = p.value(&req) {
                        self.format(&value)?;
                    }
                }
                Cost::Quality(f) => update(&mut req, f, |q| Ok(self.cap_quality(q)))?,
                _ => {}
            }
        }
        if !self.has_ladder() {
            return Ok(req);
        }
        // Under a ladder the whole key space is bounded: every class has its grid.
        let has_box = TABLE
            .iter()
            .any(|p| matches!(p.cost, Cost::Size(f) if (f.get)(&req).is_some()));
        for p in TABLE {
            match p.cost {
                // Without a box, a ratio would re-render the full image at every value.
                Cost::Ratio(f) if !has_box => (f.set)(&mut req, None),
                Cost::Ratio(f) => {
                    let v = (f.get)(&req).and_then(Self::ratio);
                    (f.set)(&mut req, v);
                }
                Cost::Quality(f) => {
                    update(&mut req, f, |q| Ok(self.cap_quality(Self::quality_step(q))))?
                }
                Cost::Position(f) => update(&mut req, f, |g| Ok(Self::position(g)))?,
                Cost::Colour(f) => update(&mut req, f, |c| self.colour(p.name, c))?,
                Cost::Amount(f) => update(&mut req, f, |a| Ok(Self::amount(a)))?,
                Cost::Region(f) => update(&mut req, f, |c| Self::region(p.name, c))?,
                Cost::Trim(f) => update(&mut req, f, |t| self.trim(p.name, t))?,
                Cost::Size(_) | Cost::Choice | Cost::Format | Cost::Response | Cost::Preset => {}
            }
        }
        Ok(req)
    }
}

/// Replace the value of field `f` in `req`, when set, by `change(value)`.
fn update<T>(
    req: &mut ImageRequest,
    f: Field<T>,
    change: impl FnOnce(T) -> Result<T>,
) -> Result<()> {
    if let Some(v) = (f.get)(req) {
        (f.set)(req, Some(change(v)?));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> ImageRequest {
        ImageRequest::parse(Some(q)).unwrap()
    }

    fn with_presets(only: bool) -> Policy {
        let presets = "thumb=w=200&h=200&fit=cover&fmt=auto,hero=w=1600&q=70".parse();
        Policy::default().with_presets(presets.unwrap(), only)
    }

    fn param_of(e: Error) -> String {
        match e {
            Error::InvalidParam { param, .. } => param,
            other => panic!("not a parameter error: {other}"),
        }
    }

    #[test]
    fn a_preset_expands_to_its_parameters() {
        let p = with_presets(false);
        let got = p.apply(params("preset=thumb")).unwrap();
        let explicit = p.apply(params("w=200&h=200&fit=cover&fmt=auto")).unwrap();
        assert_eq!(got.preset.as_deref(), Some("thumb"));
        // The same rendition: everything but the name (which is not in the key) is equal.
        assert_eq!(
            ImageRequest {
                preset: None,
                ..got.clone()
            },
            explicit
        );
        assert_eq!(got.transform, explicit.transform);
        assert_eq!(
            got.to_string(),
            "preset=thumb&w=200&h=200&fit=cover&fmt=auto"
        );
        // The URL may add what the preset leaves out.
        let more = p.apply(params("preset=hero&fmt=webp&download=1")).unwrap();
        assert_eq!(
            more,
            ImageRequest {
                preset: Some("hero".into()),
                ..params("w=1600&q=70&fmt=webp&download=1")
            }
        );
        // The caps apply to the expansion.
        let capped = Policy::new(vec![100, 2000], SizePolicy::Snap, vec![], Some(50))
            .with_presets(p.presets.clone(), false);
        let hero = capped.apply(params("preset=hero")).unwrap();
        assert_eq!(
            (hero.transform.width, hero.transform.quality),
            (Some(2000), Some(50))
        );
        let refuse = Policy {
            size_policy: SizePolicy::Refuse,
            ..capped
        };
        assert_eq!(
            refuse.apply(params("preset=thumb")).unwrap_err().status(),
            400
        );
    }

    #[test]
    fn a_preset_is_never_overridden_and_must_exist() {
        let p = with_presets(false);
        let err = p.apply(params("preset=thumb&w=300")).unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.public_message().contains("preset `thumb`"), "{err}");
        assert_eq!(param_of(err), "w");
        let err = p.apply(params("preset=hero&q=70")).unwrap_err();
        assert_eq!(param_of(err), "q", "even with the same value");
        let err = p.apply(params("preset=nope")).unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(
            err.public_message().contains("configured: thumb, hero"),
            "{err}"
        );
        assert_eq!(param_of(err), "preset");
        let err = Policy::default().apply(params("preset=thumb")).unwrap_err();
        assert!(
            err.public_message().contains("none are configured"),
            "{err}"
        );
    }

    #[test]
    fn only_presets_refuses_everything_else() {
        let p = with_presets(true);
        assert_eq!(
            p.apply(params("preset=thumb")).unwrap().transform.width,
            Some(200)
        );
        assert!(p.apply(params("preset=thumb&download=1")).unwrap().download);
        // The original is one rendition: allowed, as an attachment too.
        assert!(p.apply(params("")).unwrap().is_original());
        assert!(p.apply(params("download=1")).unwrap().is_original());
        // Metadata and placeholders render nothing: allowed (`srcset` names presets).
        for q in ["fmt=json", "fmt=thumbhash", "fmt=json&srcset=thumb,hero"] {
            let ok = p.apply(params(q)).unwrap();
            assert_eq!(ok.transform, crate::params::Transform::default(), "{q}");
        }
        for (q, named) in [
            ("w=100", "w"),
            ("fmt=json&w=100", "w"),
            ("fmt=webp", "fmt"),
            ("preset=thumb&q=10", "q"),
            ("preset=hero&fmt=webp", "fmt"),
        ] {
            let err = p.apply(params(q)).unwrap_err();
            assert_eq!(err.status(), 400, "{q}");
            assert!(
                err.public_message().contains("only presets are allowed"),
                "{q}: {err}"
            );
            assert_eq!(param_of(err), named, "{q}");
        }
    }

    #[test]
    fn sizes_snap_up_or_refuse() {
        let snap = Policy::new(vec![256, 64, 128], SizePolicy::Snap, vec![], None);
        assert_eq!(
            snap.apply(params("w=100&h=64")).unwrap().transform.width,
            Some(128)
        );
        assert_eq!(snap.apply(params("w=1")).unwrap().transform.width, Some(64));
        assert_eq!(
            snap.apply(params("h=200")).unwrap().transform.height,
            Some(256)
        );
        assert_eq!(snap.apply(params("w=257")).unwrap_err().status(), 400);
        let refuse = Policy {
            size_policy: SizePolicy::Refuse,
            ..snap
        };
        assert_eq!(
            refuse.apply(params("w=128")).unwrap().transform.width,
            Some(128)
        );
        assert_eq!(refuse.apply(params("w=100")).unwrap_err().status(), 400);
    }

    #[test]
    fn formats_and_quality() {
        let p = Policy::new(
            vec![],
            SizePolicy::Snap,
            vec!["webp".into(), "AVIF".into(), "jpg".into()],
            Some(80),
        );
        assert!(p.apply(params("fmt=webp")).is_ok());
        assert!(p.apply(params("fmt=avif")).is_ok());
        assert!(p.apply(params("fmt=jpeg")).is_ok());
        assert!(p.apply(params("w=10")).is_ok(), "no fmt: the source format");
        assert_eq!(p.apply(params("fmt=png")).unwrap_err().status(), 400);
        assert_eq!(p.apply(params("q=95")).unwrap().transform.quality, Some(80));
        assert_eq!(p.apply(params("q=50")).unwrap().transform.quality, Some(50));
    }

    #[test]
    fn the_resolved_format_must_be_allowed() {
        let p = Policy::new(
            vec![],
            SizePolicy::Snap,
            vec!["webp".into(), "jpeg".into()],
            None,
        );
        assert!(p.allows(OutputFormat::Webp) && p.allows(OutputFormat::Jpeg));
        assert!(!p.allows(OutputFormat::Avif) && !p.allows(OutputFormat::Png));
        let chrome = Accepted {
            avif: true,
            webp: true,
        };
        assert_eq!(p.mask(chrome).choose(false, false), OutputFormat::Webp);
        assert_eq!(p.check_output(OutputFormat::Png).unwrap_err().status(), 400);
        assert!(p.check_output(OutputFormat::Jpeg).is_ok());
        assert!(Policy::default().check_output(OutputFormat::Gif).is_ok());
    }

    #[test]
    fn a_ladder_bounds_every_parameter() {
        let p = Policy::new(vec![100, 200], SizePolicy::Snap, vec![], None)
            .with_backgrounds(vec![Rgba([0, 0, 0, 255])]);
        let got = p
            .apply(params("w=100&dpr=1.01&q=77&gravity=0.123,0.987"))
            .unwrap();
        assert_eq!(got.transform.dpr.map(Dpr::hundredths), Some(150));
        assert_eq!(got.transform.quality, Some(75));
        assert_eq!(
            got.transform.gravity,
            Some(Gravity::Focal { x: 1000, y: 10_000 })
        );
        // dpr 1.0x is the same as none; dpr without a box is dropped.
        assert_eq!(p.apply(params("w=100&dpr=1")).unwrap().transform.dpr, None);
        assert_eq!(p.apply(params("dpr=2")).unwrap().transform.dpr, None);
        assert_eq!(
            p.apply(params("w=100&dpr=3.5"))
                .unwrap()
                .transform
                .dpr
                .map(Dpr::hundredths),
            Some(400)
        );
        assert_eq!(
            p.apply(params("w=100&q=1")).unwrap().transform.quality,
            Some(5)
        );
        assert!(p.apply(params("w=100&bg=000000")).is_ok());
        assert_eq!(
            p.apply(params("w=100&bg=010101")).unwrap_err().status(),
            400
        );
        // Distinct requests collapse onto few keys.
        let mut keys = std::collections::HashSet::new();
        for d in 100..=400 {
            let q = format!("w=100&dpr={}.{:02}", d / 100, d % 100);
            keys.insert(p.apply(params(&q)).unwrap());
        }
        assert_eq!(keys.len(), DPR_LADDER.len());
        // Without a ladder nothing is rounded.
        let free = Policy::default().apply(params("dpr=1.01&q=77")).unwrap();
        assert_eq!(
            (
                free.transform.dpr.map(Dpr::hundredths),
                free.transform.quality
            ),
            (Some(101), Some(77))
        );
    }

    #[test]
    fn empty_policy_changes_nothing() {
        let p = params("w=333&h=77&fmt=gif&q=100");
        assert_eq!(Policy::default().apply(p.clone()).unwrap(), p);
    }

    #[test]
    fn jpg_and_jpeg_name_only_jpeg() {
        let only = |f: &str| Policy::new(vec![], SizePolicy::Snap, vec![f.into()], None);
        let webp = only("webp");
        assert!(!webp.allows(OutputFormat::Jpeg));
        assert_eq!(webp.apply(params("fmt=jpeg")).unwrap_err().status(), 400);
        assert!(webp.apply(params("fmt=webp")).is_ok());
        let jpg = only("jpg");
        assert!(jpg.allows(OutputFormat::Jpeg));
        assert!(!jpg.allows(OutputFormat::Png) && !jpg.allows(OutputFormat::Webp));
        assert!(jpg.apply(params("fmt=jpeg")).is_ok());
        assert_eq!(jpg.apply(params("fmt=png")).unwrap_err().status(), 400);
        let jpeg = only("jpeg");
        assert!(jpeg.allows(OutputFormat::Jpeg) && !jpeg.allows(OutputFormat::Gif));
        assert!(jpeg.apply(params("fmt=jpg")).is_ok());
    }

    #[test]
    fn mask_never_adds_a_format() {
        let all = Policy::default();
        for (avif, webp) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = Accepted { avif, webp };
            assert_eq!(all.mask(a), a);
        }
        let webp_only = Policy::new(vec![], SizePolicy::Snap, vec!["webp".into()], None);
        let none = Accepted::default();
        assert_eq!(webp_only.mask(none), none);
        let avif = Accepted {
            avif: true,
            webp: false,
        };
        assert_eq!(webp_only.mask(avif), none);
    }

    #[test]
    fn ladder_snaps_effect_strengths_up() {
        let p = Policy::new(vec![100], SizePolicy::Snap, vec![], None);
        let amount = |q: &str| {
            let t = p.apply(params(q)).unwrap().transform;
            (t.blur.map(Sigma::tenths), t.sharpen.map(Sigma::tenths))
        };
        assert_eq!(amount("w=100&blur=0.3&sharpen=0.3"), (Some(5), Some(5)));
        assert_eq!(amount("w=100&blur=2.1&sharpen=1"), (Some(30), Some(10)));
        assert_eq!(amount("w=100&blur=99.9"), (Some(1000), None));
        // Every strength lands on the ladder: a bounded number of renditions.
        let mut seen = std::collections::HashSet::new();
        for t in 3..=1000u16 {
            let q = format!("w=100&blur={}.{}", t / 10, t % 10);
            seen.insert(amount(&q).0);
        }
        assert_eq!(seen.len(), AMOUNT_LADDER.len());
        // Without a ladder nothing is rounded.
        let free = Policy::default().apply(params("blur=2.1")).unwrap();
        assert_eq!(free.transform.blur.map(Sigma::tenths), Some(21));
    }

    #[test]
    fn ladder_rounds_trim_thresholds_and_checks_its_colour() {
        let p = Policy::new(vec![100], SizePolicy::Snap, vec![], None)
            .with_backgrounds(vec![Rgba::WHITE]);
        let trim = |q: &str| p.apply(params(q)).map(|r| r.transform.trim);
        let t = |threshold, colour| Some(Trim { threshold, colour });
        assert_eq!(trim("w=100&trim=0").unwrap(), t(0, None));
        assert_eq!(trim("w=100&trim=7").unwrap(), t(0, None));
        assert_eq!(trim("w=100&trim=8").unwrap(), t(16, None));
        assert_eq!(trim("w=100&trim=255").unwrap(), t(255, None));
        assert_eq!(
            trim("w=100&trim=10,ffffff").unwrap(),
            t(16, Some(Rgba::WHITE))
        );
        // Every threshold lands on a short list: a bounded number of renditions.
        let seen: std::collections::HashSet<_> = (0..=255)
            .map(|v| trim(&format!("w=100&trim={v}")).unwrap())
            .collect();
        assert_eq!(seen.len(), 17);
        // A colour off the list is the 400 a `bg` off the list is, naming `trim`.
        let err = trim("w=100&trim=10,000000").unwrap_err();
        assert!(
            matches!(err, Error::InvalidParam { ref param, .. } if param == "trim"),
            "{err:?}"
        );
        // Without a ladder nothing is rounded, any colour goes.
        let free = Policy::default().apply(params("trim=10,000000")).unwrap();
        assert_eq!(free.transform.trim, t(10, Some(Rgba([0, 0, 0, 255]))));
    }

    #[test]
    fn ladder_quality_rounds_to_the_nearest_step() {
        let p = Policy::new(vec![100], SizePolicy::Snap, vec![], None);
        for (q, want) in [
            (1, 5),
            (3, 5),
            (7, 5),
            (8, 10),
            (12, 10),
            (13, 15),
            (98, 100),
            (100, 100),
        ] {
            let got = p
                .apply(params(&format!("w=100&q={q}")))
                .unwrap()
                .transform
                .quality;
            assert_eq!(got, Some(want), "q={q}");
        }
    }
}
