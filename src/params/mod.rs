//! The URL API: the query string parsed once into a typed [`ImageRequest`].
//!
//! - [`table`]: every parameter declared once ([`TABLE`]): parser, canonical form, cache-key
//!   membership, cost class and doc. Parsing, the canonical query, the policy's caps, the
//!   CLI's flags and the README's table all derive from it.
//! - [`values`]: the typed values parameters parse into (`Fit`, `Gravity`, `Dpr`, `Rgba`,
//!   `OutputFormat`), each with its parser and canonical spelling.
//! - [`request`]: [`ImageRequest`] (transform, output, mode, download) and format
//!   negotiation ([`FormatChoice`], [`Accepted`]).
//!
//! Unknown, repeated or out-of-range parameters are a 400 naming the parameter and what it
//! accepts. [`Transform`] is `Hash + Eq` with no floats inside, so it is the cache key (with
//! the resolved format), never the raw query string.

pub mod request;
pub mod table;
pub mod values;

pub use request::{Accepted, FormatChoice, ImageRequest, Mode, Output};
pub use table::{markdown_table, Cost, Field, Param, Transform, TABLE};
pub use values::{
    Crop, Dpr, Fit, Flip, FormatParam, Gravity, OutputFormat, Rgba, Rotation, Sigma, Srcset,
    SrcsetEntry, Trim, MAX_DIMENSION, MAX_SRCSET,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, Result};
    use values::GRAVITY_NAMES;

    fn parse(q: &str) -> Result<ImageRequest> {
        ImageRequest::parse(Some(q))
    }

    fn param_of(err: Error) -> String {
        match err {
            Error::InvalidParam { param, .. } => param,
            other => panic!("expected InvalidParam, got {other:?}"),
        }
    }

    #[test]
    fn empty_query_is_empty() {
        assert!(ImageRequest::parse(None).unwrap().is_original());
        assert!(parse("").unwrap().is_original());
        assert!(!parse("w=1").unwrap().is_original());
        assert!(!parse("fmt=png").unwrap().is_original());
        assert!(!parse("fmt=json").unwrap().is_original());
    }

    #[test]
    fn crop_in_pixels_or_fractions_with_its_canonical_spelling() {
        let crop = |q: &str| parse(q).unwrap().transform.crop.unwrap();
        assert_eq!(
            crop("crop=10,020,300,4"),
            Crop::Pixels {
                x: 10,
                y: 20,
                w: 300,
                h: 4
            }
        );
        assert_eq!(
            crop("crop=0.1,.2,0.5,1.0"),
            Crop::Fraction {
                x: 1000,
                y: 2000,
                w: 5000,
                h: 10_000
            }
        );
        for (q, canonical) in [
            ("crop=010,20,300,4", "crop=10,20,300,4"),
            ("crop=0.10,.2,0.50000,1.", "crop=0.1,0.2,0.5,1.0"),
            (
                "crop=0.0,0.0,0.00005,0.123456",
                "crop=0.0,0.0,0.0001,0.1235",
            ),
        ] {
            assert_eq!(parse(q).unwrap().to_string(), canonical, "{q}");
            // The canonical spelling parses back to the same crop.
            assert_eq!(crop(canonical), crop(q), "{q}");
        }
        for bad in [
            "crop=1,2,3",
            "crop=1,2,3,4,5",
            "crop=1,2,3,",
            "crop=1,2,3,-4",
            "crop=0.1,2,3,4",
            "crop=1,2,3,0.5",
            "crop=0.1,0.2,1.5,0.5",
            "crop=a,b,c,d",
            "crop=1,2,0,4",
            "crop=1,2,4,0",
            "crop=0.1,0.2,0.0,0.5",
            "crop=0.1,0.2,0.5,0.00004",
            "crop=1.0,0.2,0.5,0.5",
            "crop=99999999999,0,1,1",
        ] {
            assert_eq!(param_of(parse(bad).unwrap_err()), "crop", "{bad}");
        }
        // Resolved against a displayed size: clipped, a fraction keeps at least one pixel.
        let px = |x, y, w, h| Crop::Pixels { x, y, w, h };
        assert_eq!(
            px(10, 20, 30, 40).resolve((100, 50)),
            Some((10, 20, 30, 30))
        );
        assert_eq!(px(100, 0, 5, 5).resolve((100, 50)), None);
        assert_eq!(
            px(0, 0, u32::MAX, 1).resolve((100, 50)),
            Some((0, 0, 100, 1))
        );
        let fr = |x, y, w, h| Crop::Fraction { x, y, w, h };
        assert_eq!(
            fr(1000, 2000, 5000, 10_000).resolve((200, 100)),
            Some((20, 20, 100, 80))
        );
        assert_eq!(fr(9999, 0, 1, 1).resolve((10, 10)), Some((9, 0, 1, 1)));
    }

    #[test]
    fn accepts_valid_values() {
        let p =
            parse("w=400&h=300&dpr=1.5&fit=pad&gravity=top-left&fmt=jpg&q=75&bg=ff000080").unwrap();
        let t = &p.transform;
        assert_eq!(t.width, Some(400));
        assert_eq!(t.height, Some(300));
        assert_eq!(t.target_box(), (Some(600), Some(450)));
        assert_eq!(t.fit(), Fit::Pad);
        assert_eq!(t.gravity().fractions(), (0.0, 0.0));
        assert_eq!(p.output, Output::Exact(OutputFormat::Jpeg));
        assert_eq!(p.mode, Mode::Pixels);
        assert_eq!(t.quality, Some(75));
        assert_eq!(t.background, Some(Rgba([255, 0, 0, 128])));
        let j = parse("fmt=json").unwrap();
        assert_eq!((j.mode, j.output), (Mode::Metadata, Output::Original));
        assert_eq!(parse("fmt=auto").unwrap().output, Output::Auto);
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
        assert!(p.is_original());
        assert!(p.download);
        assert_eq!(p.transform, Transform::default());
        let q = parse("w=10&download=0").unwrap();
        assert!(!q.download);
        assert_eq!(q, parse("w=10").unwrap());
        assert!(TABLE
            .iter()
            .all(|p| p.in_key() == !matches!(p.name, "download" | "preset" | "srcset")));
        assert_eq!(param_of(parse("download=yes").unwrap_err()), "download");
        assert_eq!(
            param_of(parse("download=1&download=1").unwrap_err()),
            "download"
        );
    }

    #[test]
    fn rotation_flip_and_sigmas() {
        let p = parse("rot=270&flip=vh&blur=2.25&sharpen=0.3").unwrap();
        let t = &p.transform;
        assert_eq!(t.rotation, Some(Rotation::Cw270));
        assert_eq!(t.flip, Some(Flip::Hv));
        assert_eq!(t.blur.map(Sigma::tenths), Some(23), "rounded to a tenth");
        assert_eq!(t.sharpen.map(Sigma::tenths), Some(3));
        assert_eq!(p.to_string(), "rot=270&flip=hv&blur=2.3&sharpen=0.3");
        // rot=0 is no rotation: the same request (and cache key) as none.
        assert_eq!(parse("rot=0&w=5").unwrap(), parse("w=5").unwrap());
        assert_eq!(param_of(parse("rot=0&rot=90").unwrap_err()), "rot");
        assert_eq!(
            parse("blur=100").unwrap().transform.blur.map(Sigma::tenths),
            Some(1000)
        );
    }

    #[test]
    fn dpr_rounds_to_device_pixels() {
        let p = parse("w=333&dpr=1.5").unwrap();
        assert_eq!(p.transform.target_box().0, Some(500)); // 499.5 rounds up
    }

    #[test]
    fn negotiation_follows_accept() {
        let negotiate = |h: Option<&str>, alpha| Accepted::from_header(h).choose(alpha, false);
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
        // An animation keeps its motion: never AVIF (no animated AVIF encoder), else GIF.
        let animated = |h: Option<&str>| Accepted::from_header(h).choose(true, true);
        assert_eq!(animated(Some(chrome)), OutputFormat::Webp);
        assert_eq!(animated(Some("image/avif")), OutputFormat::Gif);
        assert_eq!(animated(None), OutputFormat::Gif);
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
            assert_eq!(Transform::default().quality_for(f), q, "{f:?}");
            assert_eq!(parse("q=7").unwrap().transform.quality_for(f), 7, "{f:?}");
        }
    }

    #[test]
    fn gravity_fractions_and_colours() {
        let focal = parse("gravity=0.25,0.75").unwrap().transform.gravity();
        assert_eq!(focal.fractions(), (0.25, 0.75));
        assert_eq!(Gravity::default().fractions(), (0.5, 0.5));
        assert_eq!(
            parse("gravity=bottom-right")
                .unwrap()
                .transform
                .gravity()
                .fractions(),
            (1.0, 1.0)
        );
        assert!(Rgba::WHITE.is_opaque());
        assert!(!Rgba([0, 0, 0, 254]).is_opaque());
        assert_eq!(Transform::default().background(), Rgba::WHITE);
    }

    #[test]
    fn fixed_point_numbers_have_bounded_digits() {
        // At most 6 integer and 12 fraction digits, all of them ASCII digits.
        assert_eq!(
            parse("dpr=000001").unwrap().transform.dpr,
            Dpr::from_hundredths(100)
        );
        assert_eq!(
            parse("dpr=1.500000000000").unwrap().transform.dpr,
            Dpr::from_hundredths(150)
        );
        assert_eq!(
            parse("gravity=000000.5,1.000000000000")
                .unwrap()
                .transform
                .gravity,
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

    /// One `name=value` pair, spelled in one of the ways the parser accepts, and the request
    /// with only that field set: what the parser must produce for it.
    type Pair = (String, ImageRequest);

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
            let mut p = ImageRequest::default();
            if name == "w" {
                p.transform.width = Some(v);
            } else {
                p.transform.height = Some(v);
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
            let mut p = ImageRequest::default();
            p.transform.dpr = Dpr::from_hundredths(h);
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
            let mut p = ImageRequest::default();
            p.transform.fit = Some(fit);
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
            let mut p = ImageRequest::default();
            p.transform.gravity = Some(g);
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
            ("thumbhash", FormatParam::Thumbhash),
        ])
        .prop_map(|(name, f)| {
            let mut p = ImageRequest::default();
            match f {
                FormatParam::Exact(o) => p.output = Output::Exact(o),
                FormatParam::Auto => p.output = Output::Auto,
                FormatParam::Json => p.mode = Mode::Metadata,
                FormatParam::Thumbhash => p.mode = Mode::Placeholder,
            }
            (format!("fmt={name}"), p)
        })
    }

    fn quality() -> impl Strategy<Value = Pair> {
        edgy(1u8, 100).prop_map(|q| {
            let mut p = ImageRequest::default();
            p.transform.quality = Some(q);
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
                let mut p = ImageRequest::default();
                p.transform.background = Some(Rgba([r, g, b, a]));
                (format!("bg={prefix}{hex}"), p)
            })
    }

    fn lin() -> impl Strategy<Value = Pair> {
        prop::sample::select(vec![
            ("1", true),
            ("true", true),
            ("0", false),
            ("false", false),
        ])
        .prop_map(|(text, linear)| {
            let mut p = ImageRequest::default();
            p.transform.linear = linear;
            (format!("lin={text}"), p)
        })
    }

    fn anim() -> impl Strategy<Value = Pair> {
        prop::sample::select(vec![
            ("1", false),
            ("true", false),
            ("0", true),
            ("false", true),
        ])
        .prop_map(|(text, still)| {
            let mut p = ImageRequest::default();
            p.transform.still = still;
            (format!("anim={text}"), p)
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
            let p = ImageRequest {
                download: d,
                ..ImageRequest::default()
            };
            (format!("download={text}"), p)
        })
    }

    fn rotation() -> impl Strategy<Value = Pair> {
        prop::sample::select(vec![
            ("90", Rotation::Cw90),
            ("180", Rotation::Cw180),
            ("270", Rotation::Cw270),
        ])
        .prop_map(|(text, r)| {
            let mut p = ImageRequest::default();
            p.transform.rotation = Some(r);
            (format!("rot={text}"), p)
        })
    }

    fn flip() -> impl Strategy<Value = Pair> {
        prop::sample::select(vec![
            ("h", Flip::H),
            ("v", Flip::V),
            ("hv", Flip::Hv),
            ("vh", Flip::Hv),
        ])
        .prop_map(|(text, f)| {
            let mut p = ImageRequest::default();
            p.transform.flip = Some(f);
            (format!("flip={text}"), p)
        })
    }

    /// `name=` a sigma of `lo..=hi` tenths, spelled with or without its fraction.
    fn sigma(name: &'static str, lo: u16, hi: u16) -> impl Strategy<Value = Pair> {
        (edgy(lo, hi), any::<bool>()).prop_map(move |(t, long)| {
            let text = if long || t % 10 != 0 {
                format!("{}.{}", t / 10, t % 10)
            } else {
                format!("{}", t / 10)
            };
            let mut p = ImageRequest::default();
            let v = Some(Sigma::from_tenths(t));
            if name == "blur" {
                p.transform.blur = v;
            } else {
                p.transform.sharpen = v;
            }
            (format!("{name}={text}"), p)
        })
    }

    /// `crop` in pixels (with leading zeros) or in fractions (each with a `.`).
    fn crop() -> impl Strategy<Value = Pair> {
        let pixels = (
            [edgy(0u32, 100_000), edgy(0u32, 100_000)],
            [edgy(1u32, 100_000), edgy(1u32, 100_000)],
            0usize..2,
        )
            .prop_map(|([x, y], [w, h], zeros)| {
                let z = "0".repeat(zeros);
                (
                    format!("{z}{x},{y},{w},{z}{h}"),
                    Crop::Pixels { x, y, w, h },
                )
            });
        let fractions = (
            [edgy(0u16, 9_999), edgy(0u16, 9_999)],
            [edgy(1u16, 10_000), edgy(1u16, 10_000)],
            [0u8..3, 0u8..3, 0u8..3, 0u8..3],
        )
            .prop_map(|([x, y], [w, h], styles)| {
                // Style 1 of a whole number has no `.`: it would be pixels.
                let text = [x, y, w, h]
                    .iter()
                    .zip(styles)
                    .map(|(&v, s)| fraction(v, if v % 10_000 == 0 && s == 1 { 0 } else { s }))
                    .collect::<Vec<_>>()
                    .join(",");
                (text, Crop::Fraction { x, y, w, h })
            });
        prop_oneof![pixels, fractions].prop_map(|(text, c)| {
            let mut p = ImageRequest::default();
            p.transform.crop = Some(c);
            (format!("crop={text}"), p)
        })
    }

    /// A wrong pair and the parameter its 400 must name.
    fn wrong_pair() -> impl Strategy<Value = (String, &'static str)> {
        prop::sample::select(vec![
            ("w=0", "w"),
            ("w=8193", "w"),
            ("crop=1,2,0,4", "crop"),
            ("crop=0.1,0.2,0.5,5", "crop"),
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
            ("anim=2", "anim"),
            ("lin=yes", "lin"),
            ("rot=45", "rot"),
            ("rot=-90", "rot"),
            ("flip=x", "flip"),
            ("blur=0.2", "blur"),
            ("blur=100.1", "blur"),
            ("sharpen=10.1", "sharpen"),
            ("width=10", "width"),
        ])
        .prop_map(|(pair, name)| (pair.to_string(), name))
    }

    fn merge(into: &mut ImageRequest, p: ImageRequest) {
        let (t, u) = (&mut into.transform, p.transform);
        t.width = t.width.or(u.width);
        t.height = t.height.or(u.height);
        t.dpr = t.dpr.or(u.dpr);
        t.fit = t.fit.or(u.fit);
        t.gravity = t.gravity.or(u.gravity);
        t.quality = t.quality.or(u.quality);
        t.background = t.background.or(u.background);
        t.rotation = t.rotation.or(u.rotation);
        t.flip = t.flip.or(u.flip);
        t.blur = t.blur.or(u.blur);
        t.sharpen = t.sharpen.or(u.sharpen);
        t.crop = t.crop.or(u.crop);
        t.still |= u.still;
        t.linear |= u.linear;
        if into.output == Output::Original {
            into.output = p.output;
        }
        if into.mode == Mode::Pixels {
            into.mode = p.mode;
        }
        into.download |= p.download;
    }

    /// A query of some of the parameters, each spelled in one of its accepted ways, in any
    /// order; with probability 1/5 one wrong pair (out of range, unknown, or a repeat) is
    /// inserted. Returns the query and what parsing it must give: the request, or the name
    /// of the parameter the 400 names.
    fn query() -> impl Strategy<Value = (String, std::result::Result<ImageRequest, String>)> {
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
        let effects = (
            prop::option::weighted(0.2, rotation()),
            prop::option::weighted(0.2, flip()),
            prop::option::weighted(0.2, sigma("blur", 3, 1000)),
            prop::option::weighted(0.2, sigma("sharpen", 3, 100)),
            prop::option::weighted(0.2, crop()),
            prop::option::weighted(0.2, anim()),
            prop::option::weighted(0.2, lin()),
        );
        let pairs = (fields, effects)
            .prop_map(
                |((w, h, d, f, g, fm, q, bg, dl), (rot, fl, bl, sh, cr, an, li))| {
                    [w, h, d, f, g, fm, q, bg, dl, rot, fl, bl, sh, cr, an, li]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<Pair>>()
                },
            )
            .prop_shuffle();
        let wrong = prop::option::weighted(0.2, (wrong_pair(), any::<bool>()));
        (pairs, wrong, any::<prop::sample::Index>()).prop_map(|(pairs, wrong, at)| {
            let mut expected = ImageRequest::default();
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
        /// canonical form parses back to the same request, is a fixed point, lists each
        /// parameter that changes anything once, in the table's order; wrong pairs are a 400 naming the parameter.
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
                            TABLE.iter().position(|p| p.name == name).unwrap_or(usize::MAX)
                        })
                        .collect();
                    prop_assert!(order.windows(2).all(|w| w[0] < w[1]), "{}", canonical);
                    // `download=0` and `anim=1` are the defaults: the canonical form leaves
                    // them out.
                    let defaults = [
                        "download=0",
                        "download=false",
                        "anim=1",
                        "anim=true",
                        "lin=0",
                        "lin=false",
                    ];
                    let changing = q
                        .split('&')
                        .filter(|s| !s.is_empty() && !defaults.contains(s))
                        .count();
                    prop_assert_eq!(order.len(), changing);
                    let untouched = ImageRequest { download: false, ..p.clone() };
                    prop_assert_eq!(p.is_original(), untouched == ImageRequest::default());
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
