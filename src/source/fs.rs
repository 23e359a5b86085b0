//! Originals from a local folder: the embedded default, for trying and testing imgfn.
//!
//! The root is canonicalised once at start-up; every key is resolved (symlinks included) and
//! must still lie under it, so neither `..` nor a symlink can reach outside the folder.

use super::{too_large, Key, Stat};
use crate::error::{Error, Result};
use bytes::Bytes;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

#[derive(Debug, Clone)]
pub struct FsSource {
    root: PathBuf,
}

impl FsSource {
    /// Open a root folder; fails at start-up if it does not exist.
    pub fn new(root: &Path) -> std::io::Result<FsSource> {
        let root = root.canonicalize()?;
        if !root.is_dir() {
            return Err(std::io::Error::new(
                ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(FsSource { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolve `key` to a regular file inside the root.
    fn resolve(&self, key: &Key) -> Result<(PathBuf, std::fs::Metadata)> {
        let not_found = |e: std::io::Error| match e.kind() {
            ErrorKind::NotFound | ErrorKind::NotADirectory | ErrorKind::PermissionDenied => {
                Error::NotFound
            }
            _ => Error::Internal(format!("fs: {e}")),
        };
        let path = self
            .root
            .join(key.as_str())
            .canonicalize()
            .map_err(not_found)?;
        if !path.starts_with(&self.root) {
            return Err(Error::NotFound);
        }
        let meta = std::fs::metadata(&path).map_err(not_found)?;
        if !meta.is_file() {
            return Err(Error::NotFound);
        }
        Ok((path, meta))
    }

    pub async fn stat(&self, key: &Key) -> Result<Stat> {
        let this = self.clone();
        let key = key.clone();
        blocking(move || {
            let (_, meta) = this.resolve(&key)?;
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            Ok(Stat {
                version: format!("{mtime:x}-{:x}", meta.len()),
                size: meta.len(),
            })
        })
        .await
    }

    pub async fn fetch(&self, key: &Key, max_bytes: u64) -> Result<Bytes> {
        let this = self.clone();
        let key = key.clone();
        blocking(move || {
            let (path, meta) = this.resolve(&key)?;
            if meta.len() > max_bytes {
                return Err(too_large(meta.len(), max_bytes));
            }
            let bytes =
                std::fs::read(&path).map_err(|e| Error::Internal(format!("fs read: {e}")))?;
            // The file may have grown since the stat.
            if bytes.len() as u64 > max_bytes {
                return Err(too_large(bytes.len() as u64, max_bytes));
            }
            Ok(Bytes::from(bytes))
        })
        .await
    }
}

/// Run blocking filesystem work off the reactor, in one hop.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("fs task: {e}")))?
}
