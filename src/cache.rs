//! The warm cache: one `moka` cache, weighed in bytes, holding source bytes, renditions and
//! placeholders.
//!
//! Keys carry the source version, so a replaced original is never served from a stale entry.
//! `get_or_try` runs one computation per key at a time: concurrent identical misses wait for
//! the first and share its result. Errors are returned to every waiter and never cached.

use crate::error::{Error, Result};
use crate::params::{FormatChoice, OutputFormat, Transform};
use crate::pipeline::Timings;
use crate::placeholder::Placeholder;
use bytes::Bytes;
use std::future::Future;
use std::sync::Arc;

/// What an entry is stored under: an original by key and version, or a rendition of one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CacheKey {
    Source {
        key: String,
        version: String,
    },
    Rendition {
        key: String,
        version: String,
        transform: Transform,
        format: FormatChoice,
    },
    Placeholder {
        key: String,
        version: String,
    },
}

/// An original as read from the source.
#[derive(Debug)]
pub struct SourceEntry {
    pub bytes: Bytes,
    /// Strong ETag of the bytes.
    pub etag: String,
}

/// A rendered output.
#[derive(Debug)]
pub struct RenditionEntry {
    pub bytes: Bytes,
    pub format: OutputFormat,
    pub etag: String,
    pub width: u32,
    pub height: u32,
    pub timings: Timings,
    /// Time spent fetching the source for this rendition.
    pub fetch: std::time::Duration,
}

/// An original's placeholder, or why its image has none: a corrupt or oversized image is
/// remembered until its version changes (a failure to fetch it is not: see
/// [`Cache::placeholder`]).
#[derive(Debug)]
pub struct PlaceholderEntry {
    pub placeholder: std::result::Result<Placeholder, Error>,
    /// Time spent fetching the source for it.
    pub fetch: std::time::Duration,
    /// Its decode, downscale and hash.
    pub timings: Timings,
}

#[derive(Debug, Clone)]
enum CacheValue {
    Source(Arc<SourceEntry>),
    Rendition(Arc<RenditionEntry>),
    Placeholder(Arc<PlaceholderEntry>),
}

impl CacheValue {
    fn weight(&self) -> u32 {
        let len = match self {
            CacheValue::Source(s) => s.bytes.len(),
            CacheValue::Rendition(r) => r.bytes.len(),
            CacheValue::Placeholder(p) => p.placeholder.as_ref().map_or(0, |p| {
                p.thumbhash.len() + p.data_url.as_ref().map_or(0, String::len)
            }),
        };
        // Count a fixed overhead per entry so that tiny entries are not free.
        u32::try_from(len.saturating_add(256)).unwrap_or(u32::MAX)
    }
}

/// Strong ETag: a 128-bit content hash.
pub fn etag_of(bytes: &[u8]) -> String {
    format!("\"{:032x}\"", xxhash_rust::xxh3::xxh3_128(bytes))
}

#[derive(Clone)]
pub struct Cache {
    inner: moka::future::Cache<CacheKey, CacheValue>,
}

impl Cache {
    pub fn new(capacity_bytes: u64) -> Cache {
        Cache {
            inner: moka::future::Cache::builder()
                .max_capacity(capacity_bytes)
                .weigher(|_k: &CacheKey, v: &CacheValue| v.weight())
                .build(),
        }
    }

    /// The original `key` at `version`, from the cache or `fetch` (once for all concurrent
    /// callers).
    pub async fn source<F>(&self, key: &str, version: &str, fetch: F) -> Result<Arc<SourceEntry>>
    where
        F: Future<Output = Result<SourceEntry>>,
    {
        let cache_key = CacheKey::Source {
            key: key.to_string(),
            version: version.to_string(),
        };
        let (value, _) = self
            .get_or_try(cache_key, async {
                Ok(CacheValue::Source(Arc::new(fetch.await?)))
            })
            .await?;
        match value {
            CacheValue::Source(s) => Ok(s),
            _ => Err(Error::Internal(
                "cache held another kind of entry under a source key".into(),
            )),
        }
    }

    /// The rendition of original `key` at `version` by `transform` in `format`, from the
    /// cache or `render` (once for all concurrent callers); and whether it was a hit.
    pub async fn rendition<F>(
        &self,
        key: &str,
        version: &str,
        transform: &Transform,
        format: FormatChoice,
        render: F,
    ) -> Result<(Arc<RenditionEntry>, bool)>
    where
        F: Future<Output = Result<RenditionEntry>>,
    {
        let cache_key = CacheKey::Rendition {
            key: key.to_string(),
            version: version.to_string(),
            transform: transform.clone(),
            format,
        };
        let (value, hit) = self
            .get_or_try(cache_key, async {
                Ok(CacheValue::Rendition(Arc::new(render.await?)))
            })
            .await?;
        match value {
            CacheValue::Rendition(r) => Ok((r, hit)),
            _ => Err(Error::Internal(
                "cache held another kind of entry under a rendition key".into(),
            )),
        }
    }

    /// The placeholder of original `key` at `version`, from the cache or `compute` (once for
    /// all concurrent callers); and whether it was a hit. `compute` answers `Ok` with the
    /// image's own failure inside (kept: the same bytes fail the same way) and `Err` for a
    /// failure to get there (store down, overloaded: not kept, the next caller tries again).
    pub async fn placeholder<F>(
        &self,
        key: &str,
        version: &str,
        compute: F,
    ) -> Result<(Arc<PlaceholderEntry>, bool)>
    where
        F: Future<Output = Result<PlaceholderEntry>>,
    {
        let cache_key = CacheKey::Placeholder {
            key: key.to_string(),
            version: version.to_string(),
        };
        let (value, hit) = self
            .get_or_try(cache_key, async {
                Ok(CacheValue::Placeholder(Arc::new(compute.await?)))
            })
            .await?;
        match value {
            CacheValue::Placeholder(p) => Ok((p, hit)),
            _ => Err(Error::Internal(
                "cache held another kind of entry under a placeholder key".into(),
            )),
        }
    }

    /// The cached value for `key`, or the result of `init`, computed once for all concurrent
    /// callers. Returns whether the value came from the cache.
    async fn get_or_try<F>(&self, key: CacheKey, init: F) -> Result<(CacheValue, bool)>
    where
        F: Future<Output = Result<CacheValue>>,
    {
        if let Some(v) = self.inner.get(&key).await {
            return Ok((v, true));
        }
        let entry = self
            .inner
            .entry(key)
            .or_try_insert_with(init)
            .await
            .map_err(|e: Arc<Error>| (*e).clone())?;
        let fresh = entry.is_fresh();
        Ok((entry.into_value(), !fresh))
    }

    /// Bytes currently held (after pending maintenance).
    pub async fn weighted_size(&self) -> u64 {
        self.inner.run_pending_tasks().await;
        self.inner.weighted_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn src_key(k: &str) -> CacheKey {
        CacheKey::Source {
            key: k.into(),
            version: "1".into(),
        }
    }

    fn entry(len: usize) -> CacheValue {
        CacheValue::Source(Arc::new(SourceEntry {
            bytes: Bytes::from(vec![0u8; len]),
            etag: etag_of(b""),
        }))
    }

    #[tokio::test]
    async fn concurrent_misses_compute_once() {
        let cache = Cache::new(1 << 20);
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let cache = cache.clone();
            let calls = calls.clone();
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_try(src_key("a"), async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        Ok(entry(10))
                    })
                    .await
                    .map(|(_, hit)| hit)
            }));
        }
        let mut misses = 0;
        for t in tasks {
            if !t.await.unwrap().unwrap() {
                misses += 1;
            }
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(misses, 1);
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let cache = Cache::new(1 << 20);
        let err = cache
            .get_or_try(src_key("b"), async { Err(Error::NotFound) })
            .await
            .unwrap_err();
        assert_eq!(err.status(), 404);
        let (_, hit) = cache
            .get_or_try(src_key("b"), async { Ok(entry(1)) })
            .await
            .unwrap();
        assert!(!hit);
    }

    #[tokio::test]
    async fn hits_are_served_without_recomputing() {
        let cache = Cache::new(1 << 20);
        let (_, hit) = cache
            .get_or_try(src_key("c"), async { Ok(entry(3)) })
            .await
            .unwrap();
        assert!(!hit, "a first lookup is a miss");
        let (v, hit) = cache
            .get_or_try(src_key("c"), async { panic!("a hit must not recompute") })
            .await
            .unwrap();
        assert!(hit, "a second lookup is a hit");
        let CacheValue::Source(s) = v else {
            panic!("expected the source entry")
        };
        assert_eq!(s.bytes.len(), 3, "the stored value, not a new one");
    }

    #[tokio::test]
    async fn capacity_is_in_bytes() {
        // One entry weighs its bytes plus the fixed 256-byte overhead: exactly, so that a
        // weigher that counts entries (or nothing) fails here.
        let cache = Cache::new(10_000);
        cache
            .get_or_try(src_key("one"), async { Ok(entry(1000)) })
            .await
            .unwrap();
        assert_eq!(cache.weighted_size().await, 1256);
        let rendition = CacheValue::Rendition(Arc::new(RenditionEntry {
            bytes: Bytes::from(vec![0u8; 4000]),
            format: OutputFormat::Png,
            etag: etag_of(b""),
            width: 1,
            height: 1,
            timings: Timings::default(),
            fetch: std::time::Duration::ZERO,
        }));
        assert_eq!(rendition.weight(), 4256);
        // Filling past the capacity evicts down to it, and what stays is weighed in bytes.
        for i in 0..20 {
            cache
                .get_or_try(src_key(&i.to_string()), async { Ok(entry(1000)) })
                .await
                .unwrap();
        }
        let held = cache.weighted_size().await;
        let entries = cache.inner.entry_count();
        assert!(held <= 10_000, "{held} bytes held in a 10000-byte cache");
        assert!(entries >= 1, "the cache kept nothing");
        assert_eq!(held, entries * 1256, "{entries} entries weigh {held} bytes");
    }

    fn placeholder_entry(
        result: std::result::Result<Placeholder, Error>,
    ) -> Result<PlaceholderEntry> {
        Ok(PlaceholderEntry {
            placeholder: result,
            fetch: std::time::Duration::ZERO,
            timings: Timings::default(),
        })
    }

    #[tokio::test]
    async fn placeholders_are_kept_by_version_with_the_image_faults() {
        let cache = Cache::new(1 << 20);
        let hash = |b: u8| Placeholder {
            thumbhash: vec![b; 21],
            dominant: [b; 3],
            data_url: None,
        };
        let (p, hit) = cache
            .placeholder("a.jpg", "v1", async { placeholder_entry(Ok(hash(1))) })
            .await
            .unwrap();
        assert!(!hit);
        assert_eq!(p.placeholder.as_ref().unwrap(), &hash(1));
        let (p, hit) = cache
            .placeholder("a.jpg", "v1", async { panic!("a hit must not recompute") })
            .await
            .unwrap();
        assert!(hit && p.placeholder.as_ref().unwrap() == &hash(1));
        // A new version is a new entry, and the same version of another key too.
        for (key, version) in [("a.jpg", "v2"), ("b.jpg", "v1")] {
            let (p, hit) = cache
                .placeholder(key, version, async { placeholder_entry(Ok(hash(2))) })
                .await
                .unwrap();
            assert!(
                !hit && p.placeholder.as_ref().unwrap() == &hash(2),
                "{key} {version}"
            );
        }
        // The image's own fault is kept; a failure to compute is not.
        let corrupt = || placeholder_entry(Err(Error::corrupt("eof")));
        cache
            .placeholder("c.jpg", "v1", async { corrupt() })
            .await
            .unwrap();
        let (p, hit) = cache
            .placeholder("c.jpg", "v1", async { panic!("kept") })
            .await
            .unwrap();
        assert!(hit && p.placeholder.as_ref().unwrap_err().status() == 422);
        let err = cache
            .placeholder("d.jpg", "v1", async {
                Err(Error::Overloaded("busy".into()))
            })
            .await
            .unwrap_err();
        assert_eq!(err.status(), 503);
        let (_, hit) = cache
            .placeholder("d.jpg", "v1", async { placeholder_entry(Ok(hash(3))) })
            .await
            .unwrap();
        assert!(!hit, "a failure to compute is not kept");
        // Sources and renditions never collide with placeholders of the same key and version.
        let source = cache
            .source("a.jpg", "v1", async {
                Ok(SourceEntry {
                    bytes: Bytes::from_static(b"x"),
                    etag: etag_of(b"x"),
                })
            })
            .await
            .unwrap();
        assert_eq!(&source.bytes[..], b"x");
    }

    #[test]
    fn etags_are_quoted_content_hashes() {
        let a = etag_of(b"abc");
        assert_eq!(a.len(), 34, "{a}");
        assert!(a.starts_with('"') && a.ends_with('"'), "{a}");
        assert!(a[1..33].bytes().all(|b| b.is_ascii_hexdigit()), "{a}");
        assert_eq!(a, etag_of(b"abc"));
        assert_ne!(a, etag_of(b"abd"));
    }
}
