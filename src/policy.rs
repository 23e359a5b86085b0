//! Optional allow-lists that bound the cache key space, applied to parsed `Params` before
//! they become a cache key: a ladder of sizes (snap up to the next rung, or refuse), allowed
//! formats, and a maximum quality. Without them every `w` from 1 to 8192 is a new cache
//! entry and a new render: the cheapest cache-busting attack there is.

use crate::error::{Error, Result};
use crate::params::{FormatParam, Params};

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
    /// Allowed `fmt` values (`jpeg`, `png`, `webp`, `avif`, `gif`, `auto`, `json`); empty allows all.
    pub formats: Vec<String>,
    /// Highest `q`; a higher one is lowered to it.
    pub max_quality: Option<u8>,
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
        }
    }

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

    /// Enforce the allow-lists on `p`, snapping or lowering values where configured.
    pub fn apply(&self, mut p: Params) -> Result<Params> {
        if let Some(w) = p.width {
            p.width = Some(self.size("w", w)?);
        }
        if let Some(h) = p.height {
            p.height = Some(self.size("h", h)?);
        }
        if let (Some(fmt), false) = (p.format, self.formats.is_empty()) {
            let name = match fmt {
                FormatParam::Exact(f) => f.name(),
                FormatParam::Auto => "auto",
                FormatParam::Json => "json",
            };
            if !self
                .formats
                .iter()
                .any(|f| f == name || (f == "jpg" && name == "jpeg"))
            {
                return Err(Error::invalid_param(
                    "fmt",
                    format!(
                        "`fmt` must be one of the allowed formats: {}",
                        self.formats.join(", ")
                    ),
                ));
            }
        }
        if let (Some(q), Some(max)) = (p.quality, self.max_quality) {
            p.quality = Some(q.min(max));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Params {
        Params::parse(Some(q)).unwrap()
    }

    #[test]
    fn sizes_snap_up_or_refuse() {
        let snap = Policy::new(vec![256, 64, 128], SizePolicy::Snap, vec![], None);
        assert_eq!(snap.apply(params("w=100&h=64")).unwrap().width, Some(128));
        assert_eq!(snap.apply(params("w=1")).unwrap().width, Some(64));
        assert_eq!(snap.apply(params("h=200")).unwrap().height, Some(256));
        assert_eq!(snap.apply(params("w=257")).unwrap_err().status(), 400);
        let refuse = Policy {
            size_policy: SizePolicy::Refuse,
            ..snap
        };
        assert_eq!(refuse.apply(params("w=128")).unwrap().width, Some(128));
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
        assert_eq!(p.apply(params("q=95")).unwrap().quality, Some(80));
        assert_eq!(p.apply(params("q=50")).unwrap().quality, Some(50));
    }

    #[test]
    fn empty_policy_changes_nothing() {
        let p = params("w=333&h=77&fmt=gif&q=100");
        assert_eq!(Policy::default().apply(p.clone()).unwrap(), p);
    }
}
