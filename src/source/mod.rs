//! Where originals come from: a validated [`Key`] in, bytes and a version out.
//!
//! Every backend normalises its failures to the same few errors (`NotFound`, `LimitExceeded`
//! for size, `Upstream`/`UpstreamTimeout`), so the rest of imgfn never sees a backend's own
//! error types.

pub mod fs;
pub mod fs_index;
pub mod fs_multipart;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(not(feature = "s3"))]
#[path = "s3_off.rs"]
pub mod s3;

use crate::error::{Error, Result};
/// The name every backend is asked for (its home is `crate::key`).
pub use crate::key::Key;
use bytes::Bytes;
use std::path::PathBuf;
use std::time::Duration;

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

/// A part of an upload in progress, as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedPart {
    /// 1-based.
    pub n: u32,
    /// In quotes, as S3 gives it (the folder's: see `fs_multipart`).
    pub etag: String,
    pub bytes: u64,
}

/// How long a local file's version (mtime and size) is trusted.
pub const FS_REVALIDATE: std::time::Duration = std::time::Duration::from_secs(1);

/// Which store serves the originals, and how: what `main` builds from the configuration
/// (`state::source_spec`), so that this module knows no configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// A local folder (re-checked at most once per [`FS_REVALIDATE`]).
    Folder { root: PathBuf },
    /// An S3 bucket; the client comes from the standard AWS environment (region,
    /// credentials, `AWS_ENDPOINT_URL_S3`).
    S3 {
        bucket: String,
        /// Prepended to every key.
        prefix: String,
        /// Where oversized outputs are written.
        renditions_prefix: String,
        /// Path-style addressing (S3-compatible stores on one host).
        path_style: bool,
        /// Bound on every S3 call, body included.
        timeout: Duration,
        /// How long an object's version (ETag) is trusted.
        revalidate: Duration,
        /// How long a missing key is remembered as missing.
        not_found_ttl: Duration,
    },
}

/// A storage backend. An enum rather than a trait object: there are few backends and the
/// handler stays free of boxing. Private: callers ask `Source` for capabilities instead.
#[derive(Debug)]
enum Backend {
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
    /// Open the store `spec` names: the folder must exist; the S3 client is built once here.
    pub async fn open(spec: SourceSpec) -> std::result::Result<Source, String> {
        match spec {
            SourceSpec::Folder { root } => fs::FsSource::new(&root)
                .map(Source::fs)
                .map_err(|e| format!("cannot serve {}: {e}", root.display())),
            #[cfg(not(feature = "s3"))]
            SourceSpec::S3 { .. } => {
                Err("this imgfn was built without the `s3` feature: no bucket can be served".into())
            }
            #[cfg(feature = "s3")]
            SourceSpec::S3 {
                bucket,
                prefix,
                renditions_prefix,
                path_style,
                timeout,
                revalidate,
                not_found_ttl,
            } => {
                let client = Box::pin(s3::S3Source::client_from_env(path_style, timeout)).await;
                let settings = s3::S3Settings {
                    bucket,
                    prefix,
                    renditions_prefix,
                    timeout,
                };
                Ok(Source::s3(s3::S3Source::new(client, settings), revalidate)
                    .with_not_found_ttl(not_found_ttl))
            }
        }
    }

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
}

/// Capabilities: what a backend can do beyond reading, asked of the `Source` rather than by
/// matching on the backend. A backend that cannot answers `NotFound` (the route does not
/// exist there).
impl Source {
    /// Whether a client can be sent to the store itself (a presigned GET of an original, an
    /// offloaded rendition) instead of receiving the bytes from imgfn: S3 only.
    pub fn redirects(&self) -> bool {
        matches!(self.backend, Backend::S3(_))
    }

    /// A presigned GET for an original, optionally as a download named `filename`.
    pub async fn presign_original(&self, key: &Key, filename: Option<&str>) -> Result<String> {
        match &self.backend {
            Backend::S3(s) => Box::pin(s.presign_original(key, filename)).await,
            Backend::Fs(_) => Err(Error::NotFound),
        }
    }

    /// Store an oversized output once (named by content hash) and return a presigned GET.
    pub async fn offload(
        &self,
        name: &str,
        bytes: Bytes,
        content_type: &str,
        filename: Option<&str>,
    ) -> Result<String> {
        match &self.backend {
            Backend::S3(s) => Box::pin(s.offload(name, bytes, content_type, filename)).await,
            Backend::Fs(_) => Err(Error::NotFound),
        }
    }

    /// Whether uploads come through imgfn itself (`PUT /_/uploads/<key>`, written with
    /// [`Source::write_new`]) rather than straight to the store ([`Source::presign_put`]).
    pub fn takes_uploads(&self) -> bool {
        matches!(self.backend, Backend::Fs(_))
    }

    /// A presigned PUT that the store accepts only with exactly this type and length, and
    /// only when nothing is stored under `key` yet: the URL and the headers to send.
    pub async fn presign_put(
        &self,
        key: &Key,
        content_type: &str,
        bytes: u64,
        expires_in: Duration,
    ) -> Result<(String, Vec<(String, String)>)> {
        match &self.backend {
            Backend::S3(s) => Box::pin(s.presign_put(key, content_type, bytes, expires_in)).await,
            Backend::Fs(_) => Err(Error::NotFound),
        }
    }

    /// Store a new original under `key`, never replacing one (a local upload).
    pub async fn write_new(&self, key: &Key, bytes: Bytes) -> Result<()> {
        match &self.backend {
            Backend::Fs(s) => s.write_new(key, bytes).await,
            Backend::S3(_) => Err(Error::NotFound),
        }
    }
}

/// Uploads in parts (`uploads::multipart`): S3's multipart uploads, or the folder's stand-in
/// (`fs_multipart`). `store_id` is S3's `UploadId` or the folder's own id.
impl Source {
    /// Start an upload in parts for `key`; returns the store's id of it.
    pub async fn start_multipart(&self, key: &Key, content_type: &str) -> Result<String> {
        match &self.backend {
            Backend::S3(s) => Box::pin(s.start_multipart(key, content_type)).await,
            Backend::Fs(s) => s.start_multipart().await,
        }
    }

    /// A presigned PUT of part `n`, exactly `len` bytes (S3 only: the folder's part URLs
    /// are imgfn's own, `uploads::multipart`).
    pub async fn presign_part(
        &self,
        key: &Key,
        store_id: &str,
        n: u32,
        len: u64,
        expires_in: Duration,
    ) -> Result<(String, Vec<(String, String)>)> {
        match &self.backend {
            Backend::S3(s) => Box::pin(s.presign_part(key, store_id, n, len, expires_in)).await,
            Backend::Fs(_) => Err(Error::NotFound),
        }
    }

    /// Store part `n` of a folder upload; its ETag (S3: the client PUTs parts to S3 itself).
    pub async fn write_part(&self, store_id: &str, n: u32, bytes: Bytes) -> Result<String> {
        match &self.backend {
            Backend::Fs(s) => s.write_part(store_id, n, bytes).await,
            Backend::S3(_) => Err(Error::NotFound),
        }
    }

    /// The parts received so far, in order.
    pub async fn list_parts(&self, key: &Key, store_id: &str) -> Result<Vec<UploadedPart>> {
        match &self.backend {
            Backend::S3(s) => Box::pin(s.list_parts(key, store_id)).await,
            Backend::Fs(s) => s.list_parts(store_id).await,
        }
    }

    /// Make the upload the original `key` from `parts` (number and ETag, in order, every
    /// part of `total` bytes cut in `part_size`), never replacing an original.
    pub async fn complete_multipart(
        &self,
        key: &Key,
        store_id: &str,
        parts: &[(u32, String)],
        part_size: u64,
        total: u64,
    ) -> Result<()> {
        match &self.backend {
            Backend::S3(s) => Box::pin(s.complete_multipart(key, store_id, parts, total)).await,
            Backend::Fs(s) => {
                s.complete_multipart(key, store_id, parts, part_size, total)
                    .await
            }
        }
    }

    /// Drop the upload and every part of it (done if it is already gone).
    pub async fn abort_multipart(&self, key: &Key, store_id: &str) -> Result<()> {
        match &self.backend {
            Backend::S3(s) => Box::pin(s.abort_multipart(key, store_id)).await,
            Backend::Fs(s) => s.abort_multipart(store_id).await,
        }
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
