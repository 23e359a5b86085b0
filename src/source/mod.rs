//! Where originals come from: a validated [`Key`] in, bytes and a version out.
//!
//! Every backend normalises its failures to the same few errors (`NotFound`, `LimitExceeded`
//! for size, `Upstream`/`UpstreamTimeout`), so the rest of imgfn never sees a backend's own
//! error types.

pub mod fs;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(not(feature = "s3"))]
#[path = "s3_off.rs"]
pub mod s3;

use crate::error::{Error, Result};
/// The name every backend is asked for (its home is `crate::key`).
pub use crate::key::Key;
use bytes::Bytes;

/// What a backend knows about an original without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// Changes whenever the content may have changed (mtime+size, S3 ETag).
    pub version: String,
    pub size: u64,
}

/// One original in a listing: no body read, only what the store's index says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: Key,
    pub size: u64,
    /// The same version string `stat` gives (mtime+size, S3 ETag).
    pub version: String,
}

/// One page of a listing; `next_cursor` continues it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub entries: Vec<Listed>,
    pub next_cursor: Option<String>,
}

/// How long a local file's version (mtime and size) is trusted.
pub const FS_REVALIDATE: std::time::Duration = std::time::Duration::from_secs(1);

/// A storage backend. An enum rather than a trait object: there are few backends and the
/// handler stays free of boxing.
#[derive(Debug)]
pub enum Backend {
    Fs(fs::FsSource),
    S3(s3::S3Source),
}

/// The configured backend, with its versions remembered for the revalidation interval.
pub struct Source {
    backend: Backend,
    /// Known versions, trusted for the revalidation interval.
    stats: Option<moka::future::Cache<Key, Stat>>,
    /// Keys recently found missing (S3 only; see `with_not_found_ttl`).
    missing: Option<moka::future::Cache<Key, ()>>,
}

impl Source {
    /// A local folder, re-checked at most once per `FS_REVALIDATE`: a warm-cache hit then
    /// costs no filesystem call, and an edited file shows within that second.
    pub fn fs(fs: fs::FsSource) -> Source {
        Self::with_revalidation(Backend::Fs(fs), FS_REVALIDATE)
    }

    /// An S3 bucket whose object versions (ETags) are trusted for `revalidate`; a replaced
    /// original is served from the warm cache at most that long.
    pub fn s3(s3: s3::S3Source, revalidate: std::time::Duration) -> Source {
        Self::with_revalidation(Backend::S3(s3), revalidate)
    }

    fn with_revalidation(backend: Backend, revalidate: std::time::Duration) -> Source {
        let stats = (!revalidate.is_zero()).then(|| {
            moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(revalidate)
                .build()
        });
        Source {
            backend,
            stats,
            missing: None,
        }
    }

    /// Remember a missing key as missing for `ttl` (S3 only: a folder's stat is a cheap
    /// system call, and local uploads must show at once), so a flood of requests for absent
    /// keys costs one store call per key and `ttl`, not one each.
    pub fn with_not_found_ttl(mut self, ttl: std::time::Duration) -> Source {
        self.missing = (matches!(self.backend, Backend::S3(_)) && !ttl.is_zero()).then(|| {
            moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build()
        });
        self
    }

    /// The S3 backend, when that is what serves the originals.
    pub fn as_s3(&self) -> Option<&s3::S3Source> {
        match &self.backend {
            Backend::S3(s) => Some(s),
            Backend::Fs(_) => None,
        }
    }

    /// Existence, size and version, without reading the body.
    pub async fn stat(&self, key: &Key) -> Result<Stat> {
        if let Some(missing) = &self.missing {
            if missing.contains_key(key) {
                return Err(Error::NotFound);
            }
        }
        let result = self.stat_fresh(key).await;
        if let (Some(missing), Err(Error::NotFound)) = (&self.missing, &result) {
            missing.insert(key.clone(), ()).await;
        }
        result
    }

    async fn stat_fresh(&self, key: &Key) -> Result<Stat> {
        // S3 futures are large (tens of KB); boxing keeps them off the task's stack.
        let fresh = async {
            match &self.backend {
                Backend::Fs(s) => s.stat(key).await,
                Backend::S3(s) => Box::pin(s.stat(key)).await,
            }
        };
        match &self.stats {
            None => fresh.await,
            Some(stats) => stats
                .try_get_with(key.clone(), fresh)
                .await
                .map_err(|e: std::sync::Arc<Error>| (*e).clone()),
        }
    }

    /// Read the whole original; refuses bodies over `max_bytes` before reading them.
    pub async fn fetch(&self, key: &Key, max_bytes: u64) -> Result<Bytes> {
        match &self.backend {
            Backend::Fs(s) => s.fetch(key, max_bytes).await,
            Backend::S3(s) => Box::pin(s.fetch(key, max_bytes)).await,
        }
    }
}

impl Source {
    /// The first `len` bytes of an original (its header), without reading the rest.
    pub async fn head_bytes(&self, key: &Key, len: u64) -> Result<Bytes> {
        match &self.backend {
            Backend::Fs(s) => s.head_bytes(key, len).await,
            Backend::S3(s) => Box::pin(s.head_bytes(key, len)).await,
        }
    }

    /// One page of originals whose keys start with `prefix`, in key order.
    pub async fn list(&self, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<Listing> {
        match &self.backend {
            Backend::Fs(s) => s.list(prefix, cursor, limit).await,
            Backend::S3(s) => Box::pin(s.list(prefix, cursor, limit)).await,
        }
    }

    /// The local folder, when that is what serves the originals.
    pub fn as_fs(&self) -> Option<&fs::FsSource> {
        match &self.backend {
            Backend::Fs(s) => Some(s),
            Backend::S3(_) => None,
        }
    }
}

/// Build the configured source: S3 when a bucket is set, else the local folder.
pub async fn from_config(config: &crate::config::Config) -> std::result::Result<Source, String> {
    match &config.bucket {
        #[cfg(not(feature = "s3"))]
        Some(_) => {
            Err("this imgfn was built without the `s3` feature: no bucket can be served".into())
        }
        #[cfg(feature = "s3")]
        Some(bucket) => {
            let timeout = std::time::Duration::from_millis(config.s3_timeout_ms.max(1));
            let client =
                Box::pin(s3::S3Source::client_from_env(config.s3_path_style, timeout)).await;
            let settings = s3::S3Settings {
                bucket: bucket.clone(),
                prefix: config.prefix.clone(),
                renditions_prefix: config.renditions_prefix.clone(),
                timeout,
            };
            Ok(Source::s3(
                s3::S3Source::new(client, settings),
                std::time::Duration::from_secs(config.revalidate_secs),
            )
            .with_not_found_ttl(std::time::Duration::from_secs(config.not_found_ttl_secs)))
        }
        None => fs::FsSource::new(&config.root)
            .map(Source::fs)
            .map_err(|e| format!("cannot serve {}: {e}", config.root.display())),
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("backend", &self.backend)
            .finish()
    }
}

/// The 422 for an original over the byte limit (shared by every backend).
pub fn too_large(size: u64, max_bytes: u64) -> Error {
    Error::limit(
        "max_source_bytes",
        format!("the source is {size} bytes; at most {max_bytes} bytes are allowed"),
    )
}
