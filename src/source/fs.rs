//! Originals from a local folder: the embedded default, for trying and testing imgfn.
//!
//! The root is canonicalised once at start-up; every key is resolved (symlinks included) and
//! must still lie under it, so neither `..` nor a symlink can reach outside the folder.

use super::fs_index::FsIndex;
use super::{too_large, Listing, Stat};
use crate::error::{Error, Result};
use crate::key::Key;
use bytes::Bytes;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

#[derive(Debug, Clone)]
pub struct FsSource {
    root: PathBuf,
    /// The sorted listing index (`fs_index`), shared by every clone.
    index: Arc<FsIndex>,
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
        let index = Arc::new(FsIndex::new(root.clone(), super::FS_REVALIDATE));
        Ok(FsSource { root, index })
    }

    /// The listing index, for what imgfn writes itself: after a new original gets its final
    /// name, `index().insert(&key).await` lists it at once.
    pub fn index(&self) -> &FsIndex {
        &self.index
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
            Ok(Stat {
                version: version_of(&meta),
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

impl FsSource {
    /// The first `len` bytes of an original.
    pub async fn head_bytes(&self, key: &Key, len: u64) -> Result<Bytes> {
        let this = self.clone();
        let key = key.clone();
        blocking(move || {
            use std::io::Read;
            let (path, _) = this.resolve(&key)?;
            let mut buf = Vec::new();
            std::fs::File::open(&path)
                .and_then(|f| f.take(len).read_to_end(&mut buf))
                .map_err(|e| Error::Internal(format!("fs read: {e}")))?;
            Ok(Bytes::from(buf))
        })
        .await
    }

    /// One page of the folder's originals under `prefix`, in key order, from the sorted
    /// index (`fs_index`). Hidden files and folders (a leading `.`, e.g. uploads in progress)
    /// and symlinks are not listed. `cursor` is the last key of the previous page.
    pub async fn list(&self, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<Listing> {
        self.index.list(prefix, cursor, limit).await
    }

    /// Store a new original atomically, never replacing one: the bytes go to a hidden
    /// temporary file in the target folder, are synced, then linked to the final name (which
    /// fails if it exists). A failed or partial upload leaves no original behind.
    pub async fn write_new(&self, key: &Key, bytes: Bytes) -> Result<()> {
        let this = self.clone();
        let stored = key.clone();
        let key = key.clone();
        blocking(move || {
            link_new(&this.root, &key, |f| {
                use std::io::Write;
                f.write_all(&bytes)
            })
        })
        .await?;
        // Listed at once, not after the index's next check.
        self.index.insert(&stored).await;
        Ok(())
    }
}

/// Create the original `key` under `root` from what `fill` writes, atomically and never
/// replacing one: `fill` writes a hidden temporary file in the target folder, which is synced
/// and then linked to the final name (failing if it exists, a 409).
pub(super) fn link_new(
    root: &Path,
    key: &Key,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let target = root.join(key.as_str());
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return Err(Error::Internal(format!("no file name in {key}")));
    };
    let io = |what: &str, e: std::io::Error| Error::Internal(format!("fs {what}: {e}"));
    std::fs::create_dir_all(dir).map_err(|e| io("mkdir", e))?;
    let dir = dir.canonicalize().map_err(|e| io("canonicalize", e))?;
    if !dir.starts_with(root) {
        return Err(Error::Forbidden(
            "the upload folder is outside the root".into(),
        ));
    }
    let tmp = dir.join(format!(
        ".{}.{}.part",
        name.to_string_lossy(),
        uuid::Uuid::new_v4()
    ));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| {
            fill(&mut f)?;
            f.sync_all()
        });
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, dir.join(name)));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            // Make the new directory entry durable too.
            let _ = std::fs::File::open(&dir).and_then(|d| d.sync_all());
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(Error::Conflict(format!(
            "{key} already exists and is never overwritten"
        ))),
        Err(e) => Err(io("write", e)),
    }
}

/// The version of a local file: changes when its mtime or size does.
pub(super) fn version_of(meta: &std::fs::Metadata) -> String {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{mtime:x}-{:x}", meta.len())
}

/// Run blocking filesystem work off the reactor, in one hop.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("fs task: {e}")))?
}
