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
        let claim = self.claim_dir(id);
        let this = self.clone();
        let stored = key.clone();
        let key = key.clone();
        let parts = parts.to_vec();
        blocking(move || {
            // Claim the upload first: a second completion, a late part PUT or an abort now
            // finds no upload (409), and the parts checked below are the parts copied.
            claim_upload(&dir, &claim)?;
            let done = assemble(&this, &key, &claim, &parts, part_size, total);
            match &done {
                Ok(()) => {
                    let _ = std::fs::remove_dir_all(&claim);
                }
                // Refused (a wrong ETag, a missing part): the upload goes on as it was.
                Err(_) => {
                    let _ = std::fs::rename(&claim, &dir);
                }
            }
            done
        })
        .await?;
        // Listed at once, not after the index's next check.
        self.index().insert(&stored).await;
        Ok(())
    }

    /// Where upload `id` is while a completion holds it.
    fn claim_dir(&self, id: &str) -> PathBuf {
        self.uploads_dir().join(format!(".completing-{id}"))
    }
}

/// Take upload folder `dir` for one completion, by renaming it to `claim` (atomic): `gone`
/// when another completion (or an abort) took it first.
fn claim_upload(dir: &Path, claim: &Path) -> Result<()> {
    std::fs::rename(dir, claim).map_err(|e| match e.kind() {
        ErrorKind::NotFound => gone(),
        _ => io("claim upload", e),
    })
}

/// Check every named part of the claimed upload in `dir` against what was received, then
/// assemble them in order as `key`, synced and linked without replacing anything.
fn assemble(
    this: &FsSource,
    key: &Key,
    dir: &Path,
    parts: &[(u32, String)],
    part_size: u64,
    total: u64,
) -> Result<()> {
    let received = parts_in(dir)?;
    let mut files = Vec::with_capacity(parts.len());
    for (n, etag) in parts {
        let Some((path, part)) = received.iter().find(|(_, p)| p.n == *n) else {
            return Err(Error::invalid_param(
                "parts",
                format!("part {n} was never received"),
            ));
        };
        // Quoted or not, as S3 takes them.
        if part.etag.trim_matches('"') != etag.trim_matches('"') {
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
    link_new(this.root(), key, |out| {
        for path in &files {
            let mut part = std::fs::File::open(path)?;
            std::io::copy(&mut part, out)?;
        }
        Ok(())
    })
}

impl FsSource {
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

    /// A completion claims the upload before it checks a part: while one holds it, another
    /// completion, a part PUT and a listing find no upload (409, never a 500 or a mixed file);
    /// a refused completion hands the upload back, quoted ETags or not.
    #[tokio::test]
    async fn a_completion_claims_the_upload_and_a_refused_one_gives_it_back() {
        let root = std::env::temp_dir().join(format!("imgfn-claim-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&root).unwrap();
        let fs = FsSource::new(&root).unwrap();
        let key = Key::parse("uploads/a.bin").unwrap();
        let id = fs.start_multipart().await.unwrap();
        let etag = fs
            .write_part(&id, 1, Bytes::from_static(b"abc"))
            .await
            .unwrap();
        // Refused (wrong ETag): the upload is still there, and completes with the right one,
        // given without its quotes.
        let wrong = vec![(1, "\"00000000000000000000000000000000\"".to_string())];
        assert!(fs
            .complete_multipart(&key, &id, &wrong, 3, 3)
            .await
            .is_err());
        assert_eq!(fs.list_parts(&id).await.unwrap().len(), 1);
        // Held by a completion: everything else finds no upload in progress.
        claim_upload(&fs.upload_dir(&id).unwrap(), &fs.claim_dir(&id)).unwrap();
        let status = |r: Result<()>| r.map_err(|e| e.status().as_u16());
        let right = vec![(1, etag.trim_matches('"').to_string())];
        assert_eq!(
            status(fs.complete_multipart(&key, &id, &right, 3, 3).await),
            Err(409)
        );
        assert_eq!(
            status(
                fs.write_part(&id, 1, Bytes::from_static(b"xyz"))
                    .await
                    .map(|_| ())
            ),
            Err(409)
        );
        assert_eq!(status(fs.list_parts(&id).await.map(|_| ())), Err(409));
        // Handed back, it completes once; a second completion is a 409.
        std::fs::rename(fs.claim_dir(&id), fs.upload_dir(&id).unwrap()).unwrap();
        fs.complete_multipart(&key, &id, &right, 3, 3)
            .await
            .unwrap();
        assert_eq!(std::fs::read(root.join("uploads/a.bin")).unwrap(), b"abc");
        assert_eq!(
            status(fs.complete_multipart(&key, &id, &right, 3, 3).await),
            Err(409)
        );
        assert!(!fs.claim_dir(&id).exists() && !fs.upload_dir(&id).unwrap().exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

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
