//! Where originals come from: a validated [`Key`] in, bytes and a version out.
//!
//! Every backend normalises its failures to the same few errors (`NotFound`, `LimitExceeded`
//! for size, `Upstream`/`UpstreamTimeout`), so the rest of imgfn never sees a backend's own
//! error types.

pub mod fs;

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
            || key
                .split('/')
                .any(|seg| seg.is_empty() || seg == "." || seg == "..");
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

/// The configured backend. An enum rather than a trait object: there are few backends and
/// the handler stays free of boxing.
#[derive(Debug)]
pub enum Source {
    Fs(fs::FsSource),
}

impl Source {
    /// Cheap existence and version check (no body is read).
    pub async fn stat(&self, key: &Key) -> Result<Stat> {
        match self {
            Source::Fs(s) => s.stat(key).await,
        }
    }

    /// Read the whole original; refuses bodies over `max_bytes` before reading them.
    pub async fn fetch(&self, key: &Key, max_bytes: u64) -> Result<Bytes> {
        match self {
            Source::Fs(s) => s.fetch(key, max_bytes).await,
        }
    }
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
    fn keys() {
        let ok = [
            "cat.jpg",
            "photos/cat.jpg",
            "a b/ü.png",
            "..foo.jpg",
            "x..y/z",
        ];
        for k in ok {
            assert_eq!(Key::parse(k).unwrap().as_str(), k);
        }
        let bad = [
            "",
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
