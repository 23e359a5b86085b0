//! Uploads in parts to a local folder: the folder's stand-in for S3's multipart uploads.
//!
//! An upload in progress is a hidden folder `<root>/.imgfn-uploads/<id>/` (never listed, never
//! served: keys have no dot-segments). Each part is written to a hidden temporary file, synced,
//! and renamed to `<n>-<etag>`, so a part is either whole or absent and its ETag is known
//! without reading it again. Completion checks every part's ETag and length, assembles them in
//! order into a hidden temporary file beside the target, syncs it and links it to its final
//! name (which fails if the name exists: an original is never replaced), then removes the
//! upload's folder. Folders untouched for a day are removed when an upload is started.

use super::fs::{blocking, link_new, FsSource};
use super::UploadedPart;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::uploads::multipart::{local_etag, part_hasher, UPLOAD_LIFETIME_SECS};
use bytes::Bytes;
use sha2::Digest;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The hidden folder of uploads in progress, under the root.
pub const UPLOADS_DIR: &str = ".imgfn-uploads";

fn io(what: &str, e: std::io::Error) -> Error {
    Error::Internal(format!("fs {what}: {e}"))
}

fn gone() -> Error {
    Error::Conflict("this upload is no longer in progress (completed or aborted)".into())
}

/// A part file's name, `<n>-<etag hex>`, and back.
fn part_name(n: u32, etag: &str) -> String {
    format!("{n}-{}", etag.trim_matches('"'))
}

fn parse_part_name(name: &str) -> Option<(u32, String)> {
    let (n, hex) = name.split_once('-')?;
    let n = n.parse().ok()?;
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| (n, format!("\"{hex}\"")))
}

impl FsSource {
    fn uploads_dir(&self) -> PathBuf {
        self.root().join(UPLOADS_DIR)
    }

    /// The folder of upload `id`; ids are the server's own UUIDs (and come signed), so
    /// anything else is refused rather than joined to a path.
    fn upload_dir(&self, id: &str) -> Result<PathBuf> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Err(Error::Forbidden("the upload id is not valid".into()));
        }
        Ok(self.uploads_dir().join(id))
    }

    /// Start an upload: a new hidden folder; its name is the store's id. Leftovers of
    /// uploads untouched for a day are removed first.
    pub async fn start_multipart(&self) -> Result<String> {
        let this = self.clone();
        blocking(move || {
            this.remove_stale(SystemTime::now());
            let id = uuid::Uuid::new_v4().simple().to_string();
            let dir = this.upload_dir(&id)?;
            std::fs::create_dir_all(&dir).map_err(|e| io("mkdir", e))?;
            Ok(id)
        })
        .await
    }

    /// Remove upload folders last changed more than a day before `now` (best effort).
    fn remove_stale(&self, now: SystemTime) {
        let Ok(entries) = std::fs::read_dir(self.uploads_dir()) else {
            return;
        };
        let cutoff = now - Duration::from_secs(UPLOAD_LIFETIME_SECS);
        for entry in entries.flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < cutoff);
            if stale {
                tracing::info!(upload = ?entry.file_name(), "removing an upload abandoned a day ago");
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }

    /// Store part `n` of upload `id` (replacing an earlier copy of it); returns its ETag.
    pub async fn write_part(&self, id: &str, n: u32, bytes: Bytes) -> Result<String> {
        let dir = self.upload_dir(id)?;
        blocking(move || {
            if !dir.is_dir() {
                return Err(gone());
            }
            let etag = local_etag(&part_hasher().chain_update(&bytes).finalize());
            let tmp = dir.join(format!(".{n}.{}.tmp", uuid::Uuid::new_v4().simple()));
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .and_then(|mut f| {
                    f.write_all(&bytes)?;
                    f.sync_all()
                });
            if let Err(e) = written {
                let _ = std::fs::remove_file(&tmp);
                return Err(if dir.is_dir() {
                    io("write part", e)
                } else {
                    gone()
                });
            }
            // An earlier copy of this part (a retry) gives way to the new one.
            for (old, _) in parts_in(&dir)?.into_iter().filter(|(_, p)| p.n == n) {
                let _ = std::fs::remove_file(old);
            }
            let renamed = std::fs::rename(&tmp, dir.join(part_name(n, &etag)));
            if renamed.is_err() {
                let _ = std::fs::remove_file(&tmp);
                return Err(gone());
            }
            Ok(etag)
        })
        .await
    }

    /// The parts of upload `id` received so far, in order.
    pub async fn list_parts(&self, id: &str) -> Result<Vec<UploadedPart>> {
        let dir = self.upload_dir(id)?;
        blocking(move || Ok(parts_in(&dir)?.into_iter().map(|(_, p)| p).collect())).await
    }

    /// Complete upload `id` as `key`: every part named with the ETag it was stored with and
    /// its expected length (`part_size`, the rest of `total` for the last), assembled in
    /// order, synced and linked into place without replacing anything; then the upload's
    /// folder is removed.
    pub async fn complete_multipart(
        &self,
        key: &Key,
        id: &str,
        parts: &[(u32, String)],
        part_size: u64,
        total: u64,
    ) -> Result<()> {
        let dir = self.upload_dir(id)?;
        let this = self.clone();
        let stored = key.clone();
        let key = key.clone();
        let parts = parts.to_vec();
        blocking(move || {
            let received = parts_in(&dir)?;
            let mut files = Vec::with_capacity(parts.len());
            for (n, etag) in &parts {
                let Some((path, part)) = received.iter().find(|(_, p)| p.n == *n) else {
                    return Err(Error::invalid_param(
                        "parts",
                        format!("part {n} was never received"),
                    ));
                };
                if part.etag != *etag {
                    return Err(Error::invalid_param(
                        "parts",
                        format!("part {n}'s ETag is not the one of the part received"),
                    ));
                }
                let start = u64::from(n.saturating_sub(1)) * part_size;
                let expected = part_size.min(total.saturating_sub(start));
                if part.bytes != expected {
                    return Err(Error::invalid_param(
                        "parts",
                        format!("part {n} is {} bytes; {expected} were expected", part.bytes),
                    ));
                }
                files.push(path.clone());
            }
            link_new(this.root(), &key, |out| {
                for path in &files {
                    let mut part = std::fs::File::open(path)?;
                    std::io::copy(&mut part, out)?;
                }
                Ok(())
            })?;
            let _ = std::fs::remove_dir_all(&dir);
            Ok(())
        })
        .await?;
        // Listed at once, not after the index's next check.
        self.index().insert(&stored).await;
        Ok(())
    }

    /// Abort upload `id`: its folder and every part in it are removed (done if already gone).
    pub async fn abort_multipart(&self, id: &str) -> Result<()> {
        let dir = self.upload_dir(id)?;
        blocking(move || match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove upload", e)),
        })
        .await
    }
}

/// The parts in an upload's folder (temporary files skipped), in order; `gone` when the
/// folder does not exist.
fn parts_in(dir: &Path) -> Result<Vec<(PathBuf, UploadedPart)>> {
    let entries = std::fs::read_dir(dir).map_err(|e| match e.kind() {
        ErrorKind::NotFound => gone(),
        _ => io("read upload", e),
    })?;
    let mut parts = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some((n, etag)) = name.to_str().and_then(parse_part_name) else {
            continue;
        };
        let Ok(meta) = entry.metadata() else { continue };
        parts.push((
            entry.path(),
            UploadedPart {
                n,
                etag,
                bytes: meta.len(),
            },
        ));
    }
    parts.sort_by_key(|(_, p)| p.n);
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_names_round_trip() {
        let etag = "\"0123456789abcdef0123456789abcdef\"";
        let name = part_name(12, etag);
        assert_eq!(name, "12-0123456789abcdef0123456789abcdef");
        assert_eq!(parse_part_name(&name), Some((12, etag.to_string())));
        for junk in [
            ".3.abc.tmp",
            "x-0123",
            "3-zz23456789abcdef0123456789abcdef",
            "3",
        ] {
            assert_eq!(parse_part_name(junk), None, "{junk}");
        }
    }
}
