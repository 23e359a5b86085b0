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
use bytes::Bytes;

/// The name of an original: the percent-decoded request path without its leading `/`.
///
/// Only keys that are safe on every backend exist: no `..` or `.` segments, no empty
/// segments, no NUL or backslash, not absolute. Anything else is reported as not found, so
/// probing for files outside the root learns nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key(String);

impl Key {
    /// Parse the raw (percent-encoded) path of a request URI.
    pub fn from_uri_path(path: &str) -> Result<Key> {
        let raw = path.strip_prefix('/').unwrap_or(path);
        let decoded = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| Error::NotFound)?;
        Key::parse(&decoded)
    }

    /// Validate an already-decoded key.
    pub fn parse(key: &str) -> Result<Key> {
        let unsafe_key = key.is_empty()
            || key.len() > 1024
            || key.starts_with('/')
            || key.contains(['\0', '\\'])
            || key.chars().any(char::is_control)
            // Dot-segments and dot-files (`.env`, `.git/...`, `.hidden.jpg`): never served.
            || key
                .split('/')
                .any(|seg| seg.is_empty() || seg.starts_with('.'));
        if unsafe_key {
            return Err(Error::NotFound);
        }
        Ok(Key(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

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

/// How a download is named, in a presigned S3 GET's override or in imgfn's own response:
/// `attachment; filename="..."` with a safe ASCII fallback and the UTF-8 form (RFC 6266).
pub fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The 422 for an original over the byte limit (shared by every backend).
pub fn too_large(size: u64, max_bytes: u64) -> Error {
    Error::limit(
        "max_source_bytes",
        format!("the source is {size} bytes; at most {max_bytes} bytes are allowed"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_is_safe() {
        assert_eq!(
            content_disposition("cat.jpg"),
            "attachment; filename=\"cat.jpg\"; filename*=UTF-8''cat%2Ejpg"
        );
        let d = content_disposition("a\"b\r\nc ü.jpg");
        assert!(
            d.starts_with("attachment; filename=\"a_b__c _.jpg\""),
            "{d}"
        );
        assert!(!d.contains('\n'));
    }

    #[test]
    fn keys() {
        let ok = [
            "cat.jpg",
            "photos/cat.jpg",
            "a b/ü.png",
            "x..y/z",
            "a.b/c.d.jpg",
        ];
        for k in ok {
            assert_eq!(Key::parse(k).unwrap().as_str(), k);
        }
        let bad = [
            "",
            "..foo.jpg",
            ".hidden.jpg",
            "photos/.git/config",
            "/etc/passwd",
            "..",
            "../x",
            "a/../b",
            "a/./b",
            "a//b",
            "a/",
            "a\0b",
            "a\\..\\b",
            "a\nb",
        ];
        for k in bad {
            assert_eq!(Key::parse(k).unwrap_err().status(), 404, "{k:?}");
        }
    }

    #[test]
    fn key_length_and_display() {
        let longest = "a".repeat(1024);
        assert_eq!(Key::parse(&longest).unwrap().as_str(), longest);
        assert_eq!(Key::parse(&"a".repeat(1025)).unwrap_err().status(), 404);
        // Each condition alone refuses a key that passes all the others.
        for k in ["a\u{7f}b", "a\u{85}b", "/a", "a\\b"] {
            assert_eq!(Key::parse(k).unwrap_err().status(), 404, "{k:?}");
        }
        let k = Key::parse("photos/my cat.jpg").unwrap();
        assert_eq!(k.to_string(), "photos/my cat.jpg");
        assert_eq!(format!("<{k}>"), "<photos/my cat.jpg>");
    }

    #[test]
    fn uri_paths_are_decoded_before_checking() {
        assert_eq!(
            Key::from_uri_path("/photos/my%20cat.jpg").unwrap().as_str(),
            "photos/my cat.jpg"
        );
        for p in [
            "/%2e%2e/secret",
            "/a/%2E%2E/b",
            "/%2Fetc%2Fpasswd",
            "/a%00b",
            "/%ff",
            "/",
        ] {
            assert!(Key::from_uri_path(p).is_err(), "{p}");
        }
    }
}
