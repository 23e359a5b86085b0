//! Large uploads in parts, the pure half: how a file is cut into parts, the opaque upload id
//! that binds an upload's terms, the local folder's part URLs, and the completion body.
//!
//! Above `IMGFN_MULTIPART_THRESHOLD_BYTES`, `POST /_/uploads` starts a multipart upload (S3
//! `CreateMultipartUpload`, or a hidden temporary folder) and answers an `upload_id`. The id is
//! the upload's terms (key, the store's own upload id, size, part size, type, creation time)
//! under an HMAC keyed from the upload token (the same derived key as local upload URLs), so a
//! client can neither forge one nor change what it binds, and the server keeps no state of its
//! own between the calls. The handlers in `routes::multipart` do the I/O.

use super::{ImageType, LocalSigner};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::signing::mac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;
use sha2::{Digest, Sha256};

/// S3's smallest part (every part but the last): the lowest part size that can be configured.
pub const MIN_PART_BYTES: u64 = 5 << 20;
/// S3's largest part.
pub const MAX_PART_BYTES: u64 = 5 << 30;
/// S3's most parts in one upload.
pub const MAX_PARTS: u64 = 10_000;
/// S3's largest object: the highest `IMGFN_MAX_UPLOAD_BYTES` can be.
pub const MAX_OBJECT_BYTES: u64 = 5 << 40;
/// How long an upload may stay open: the bucket's lifecycle rule aborts incomplete multipart
/// uploads a day after they start, and the folder removes temporary folders a day old.
pub const UPLOAD_LIFETIME_SECS: u64 = 86_400;
/// The longest upload id accepted, checked before decoding it.
const MAX_ID_LEN: usize = 4096;

/// How an upload of `bytes` is cut: `part_size` bytes per part (the last one holds the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartPlan {
    pub part_size: u64,
    pub part_count: u32,
}

impl PartPlan {
    /// Parts of at least `min_part` bytes, grown (by whole MiB) so that there are at most
    /// 10,000, and at most 5 GiB each (S3's limits).
    pub fn new(bytes: u64, min_part: u64) -> Result<PartPlan> {
        let min_part = min_part.clamp(MIN_PART_BYTES, MAX_PART_BYTES);
        let needed = bytes.div_ceil(MAX_PARTS).div_ceil(1 << 20) << 20;
        let part_size = min_part.max(needed);
        if bytes == 0 || bytes > MAX_OBJECT_BYTES || part_size > MAX_PART_BYTES {
            return Err(Error::PayloadTooLarge(format!(
                "an upload in parts is 1 byte to {MAX_OBJECT_BYTES} bytes; this one is {bytes}"
            )));
        }
        let part_count = u32::try_from(bytes.div_ceil(part_size))
            .map_err(|_| Error::Internal("part count overflow".into()))?;
        Ok(PartPlan {
            part_size,
            part_count,
        })
    }
}

/// What an upload id binds: everything the later calls need, signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartUpload {
    pub key: Key,
    pub content_type: ImageType,
    pub bytes: u64,
    pub part_size: u64,
    /// The store's own id: S3's `UploadId`, or the local temporary folder's name.
    pub store_id: String,
    /// Unix seconds at which it was started.
    pub created: u64,
}

impl MultipartUpload {
    pub fn part_count(&self) -> u32 {
        u32::try_from(self.bytes.div_ceil(self.part_size.max(1))).unwrap_or(u32::MAX)
    }

    /// The exact length of part `n` (1-based): `part_size`, the remainder for the last; a 400
    /// naming the range for any other number.
    pub fn part_len(&self, n: u32) -> Result<u64> {
        let count = self.part_count();
        if n == 0 || n > count {
            return Err(Error::invalid_param(
                "part",
                format!("part {n} is out of range: this upload has parts 1 to {count}"),
            ));
        }
        let start = u64::from(n - 1) * self.part_size;
        Ok(self.part_size.min(self.bytes - start))
    }

    /// When the upload stops being accepted (and its leftovers are removed).
    pub fn expires(&self) -> u64 {
        self.created + UPLOAD_LIFETIME_SECS
    }
}

/// A part named in `POST /_/uploads/{id}/complete`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    pub n: u32,
    pub etag: String,
}

/// Parse `{"parts": [{"n": 1, "etag": "\"...\""}, ...]}`: every part of the upload exactly
/// once (in any order; returned in order), or a 400 that says what is wrong.
pub fn parse_completion(body: &[u8], upload: &MultipartUpload) -> Result<Vec<CompletedPart>> {
    let shape = "the body must be JSON {\"parts\": [{\"n\": 1, \"etag\": \"...\"}, ...]}";
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| Error::BadRequest(format!("{shape}: {e}")))?;
    let list = json
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.get("parts"))
        .and_then(|p| p.as_array())
        .ok_or_else(|| Error::BadRequest(shape.into()))?;
    let count = upload.part_count();
    if list.len() > count as usize {
        return Err(Error::invalid_param(
            "parts",
            format!("{} parts named; this upload has {count}", list.len()),
        ));
    }
    let mut parts = Vec::with_capacity(list.len());
    for item in list {
        let n = item
            .get("n")
            .and_then(|n| n.as_u64())
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| Error::invalid_param("parts", "every part needs a number `n`"))?;
        upload.part_len(n)?;
        let etag = item
            .get("etag")
            .and_then(|e| e.as_str())
            .filter(|e| !e.is_empty() && e.len() <= 256 && e.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                Error::invalid_param("parts", format!("part {n} needs its `etag` (a string)"))
            })?;
        parts.push(CompletedPart {
            n,
            etag: etag.to_string(),
        });
    }
    parts.sort_by_key(|p| p.n);
    if let Some(w) = parts.windows(2).find(|w| w[0].n == w[1].n) {
        return Err(Error::invalid_param(
            "parts",
            format!("part {} is named twice", w[0].n),
        ));
    }
    let missing: Vec<String> = (1..=count)
        .filter(|n| parts.binary_search_by_key(n, |p| p.n).is_err())
        .take(10)
        .map(|n| n.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Error::invalid_param(
            "parts",
            format!(
                "every part is needed to complete the upload; missing: {}{}",
                missing.join(", "),
                if count as usize - parts.len() > missing.len() {
                    ", ..."
                } else {
                    ""
                }
            ),
        ));
    }
    Ok(parts)
}

/// The ETag the folder gives a part: the first 128 bits of its SHA-256, hex, in quotes (the
/// shape of S3's MD5 ETags; clients treat both as opaque).
pub fn local_etag(digest: &[u8]) -> String {
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// SHA-256 as a streaming hasher, for [`local_etag`].
pub fn part_hasher() -> Sha256 {
    Sha256::new()
}

/// The id's payload, as JSON (then base64url); short field names keep URLs short.
#[derive(serde::Serialize, serde::Deserialize)]
struct Payload {
    k: String,
    t: String,
    b: u64,
    p: u64,
    s: String,
    c: u64,
}

impl LocalSigner {
    fn id_tag(&self, payload: &str) -> hmac::Hmac<Sha256> {
        mac(&self.0, &format!("imgfn multipart upload id v1\n{payload}"))
    }

    /// The opaque id of `upload`: `<base64url(terms)>.<base64url(hmac)>`.
    pub fn upload_id(&self, upload: &MultipartUpload) -> String {
        let payload = Payload {
            k: upload.key.to_string(),
            t: upload.content_type.content_type().into(),
            b: upload.bytes,
            p: upload.part_size,
            s: upload.store_id.clone(),
            c: upload.created,
        };
        let json = serde_json::to_vec(&payload).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(json);
        let sig = URL_SAFE_NO_PAD.encode(self.id_tag(&payload).finalize().into_bytes());
        format!("{payload}.{sig}")
    }

    /// The upload an id binds, checked: its signature (constant time, before anything in it
    /// is parsed), its terms, and its age. A forged or altered id is a 403; an id older than a
    /// day is a 409 (the store has let the upload go).
    pub fn open_upload_id(&self, id: &str, now: u64) -> Result<MultipartUpload> {
        let forged = || Error::Forbidden("the upload id is not valid".into());
        if id.len() > MAX_ID_LEN {
            return Err(forged());
        }
        let (payload, sig) = id.split_once('.').ok_or_else(forged)?;
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| forged())?;
        self.id_tag(payload)
            .verify_slice(&sig)
            .map_err(|_| forged())?;
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| forged())?;
        let p: Payload = serde_json::from_slice(&json).map_err(|_| forged())?;
        let upload = MultipartUpload {
            key: Key::parse(&p.k).map_err(|_| forged())?,
            content_type: ImageType::parse(&p.t).map_err(|_| forged())?,
            bytes: p.b,
            part_size: p.p,
            store_id: p.s,
            created: p.c,
        };
        if upload.part_size == 0 || u64::from(upload.part_count()) > MAX_PARTS {
            return Err(forged());
        }
        if now > upload.expires() {
            return Err(Error::Conflict(
                "this upload was started more than a day ago and is no longer accepted".into(),
            ));
        }
        Ok(upload)
    }

    fn part_tag(&self, id: &str, n: u32, len: u64, expires: u64) -> hmac::Hmac<Sha256> {
        mac(&self.0, &format!("PART\n{id}\n{n}\n{len}\n{expires}"))
    }

    /// `/_/uploads/<id>/parts/<n>?len=..&exp=..&sig=..`: one PUT of exactly `len` bytes.
    pub fn sign_part(&self, id: &str, n: u32, len: u64, expires: u64) -> String {
        let sig =
            URL_SAFE_NO_PAD.encode(self.part_tag(id, n, len, expires).finalize().into_bytes());
        format!("/_/uploads/{id}/parts/{n}?len={len}&exp={expires}&sig={sig}")
    }

    /// Check a local part PUT's URL (constant time), its expiry, and that the request sends
    /// exactly the signed length. Returns that length.
    pub fn verify_part(
        &self,
        id: &str,
        n: u32,
        query: Option<&str>,
        content_length: Option<u64>,
        now: u64,
    ) -> Result<u64> {
        let forged = || Error::Forbidden("the part URL is not valid".into());
        let [len, exp, sig] = super::grant_fields(query, ["len", "exp", "sig"], forged)?;
        let len: u64 = len.parse().map_err(|_| forged())?;
        let expires: u64 = exp.parse().map_err(|_| forged())?;
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| forged())?;
        self.part_tag(id, n, len, expires)
            .verify_slice(&sig)
            .map_err(|_| forged())?;
        if now > expires {
            return Err(Error::Forbidden("the part URL has expired".into()));
        }
        if content_length != Some(len) {
            return Err(Error::Forbidden(format!(
                "this part URL is for Content-Length {len}"
            )));
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn signer() -> LocalSigner {
        "0123456789abcdef-token"
            .parse::<super::super::UploadToken>()
            .unwrap()
            .local_signer()
    }

    fn upload(bytes: u64, part_size: u64) -> MultipartUpload {
        MultipartUpload {
            key: Key::parse("uploads/2026/11/a.jpg").unwrap(),
            content_type: ImageType::Jpeg,
            bytes,
            part_size,
            store_id: "s3-upload-id~with/odd+chars=".into(),
            created: 1000,
        }
    }

    #[test]
    fn part_plans() {
        for (bytes, min, size, count) in [
            (40 * MIB, 8 * MIB, 8 * MIB, 5),
            (40 * MIB + 1, 8 * MIB, 8 * MIB, 6),
            (17 * MIB, 8 * MIB, 8 * MIB, 3),
            (1, 8 * MIB, 8 * MIB, 1),
            (12 * MIB, MIB, 5 * MIB, 3), // never below S3's 5 MiB
            (5 << 30, 8 * MIB, 8 * MIB, 640),
            (80_000 * MIB, 8 * MIB, 8 * MIB, 10_000),
            (80_000 * MIB + 1, 8 * MIB, 9 * MIB, 8_889),
            (MAX_OBJECT_BYTES, 8 * MIB, 525 * MIB, 9_987),
        ] {
            let plan = PartPlan::new(bytes, min).unwrap();
            assert_eq!((plan.part_size, plan.part_count), (size, count), "{bytes}");
            assert!(u64::from(plan.part_count) <= MAX_PARTS);
            assert!(plan.part_size * u64::from(plan.part_count) >= bytes);
        }
        assert_eq!(
            PartPlan::new(MAX_OBJECT_BYTES + 1, 8 * MIB)
                .unwrap_err()
                .status(),
            413
        );
        assert_eq!(PartPlan::new(0, 8 * MIB).unwrap_err().status(), 413);
    }

    #[test]
    fn part_lengths() {
        let u = upload(17 * MIB + 3, 8 * MIB);
        assert_eq!(u.part_count(), 3);
        assert_eq!(u.part_len(1).unwrap(), 8 * MIB);
        assert_eq!(u.part_len(2).unwrap(), 8 * MIB);
        assert_eq!(u.part_len(3).unwrap(), MIB + 3);
        for n in [0, 4, u32::MAX] {
            let e = u.part_len(n).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.public_message().contains("parts 1 to 3"), "{e}");
        }
    }

    #[test]
    fn upload_ids_are_opaque_and_unforgeable() {
        let s = signer();
        let u = upload(17 * MIB, 8 * MIB);
        let id = s.upload_id(&u);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "{id}"
        );
        assert_eq!(s.open_upload_id(&id, 2000).unwrap(), u);
        let status = |id: &str| s.open_upload_id(id, 2000).unwrap_err().status().as_u16();
        // A changed term, under the old signature.
        let (payload, sig) = id.split_once('.').unwrap();
        let mut bigger = u.clone();
        bigger.bytes += 1;
        let other = s.upload_id(&bigger);
        let other_payload = other.split_once('.').unwrap().0;
        assert_eq!(status(&format!("{other_payload}.{sig}")), 403);
        // A flipped character anywhere, a truncated id, garbage, another token's id.
        for i in [0, payload.len() / 2, id.len() - 1] {
            let mut bytes = id.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            assert_eq!(status(&String::from_utf8(bytes).unwrap()), 403, "{i}");
        }
        assert_eq!(status(&id[..id.len() - 2]), 403);
        assert_eq!(status(payload), 403);
        assert_eq!(status(""), 403);
        assert_eq!(status(&"A".repeat(MAX_ID_LEN + 1)), 403);
        let foreign = "another-token-0123456789"
            .parse::<super::super::UploadToken>()
            .unwrap()
            .local_signer()
            .upload_id(&u);
        assert_eq!(status(&foreign), 403);
        // A day later the upload is no longer accepted.
        let late = s.open_upload_id(&id, 1000 + UPLOAD_LIFETIME_SECS + 1);
        assert_eq!(late.unwrap_err().status(), 409);
    }

    #[test]
    fn local_part_urls() {
        let s = signer();
        let id = s.upload_id(&upload(17 * MIB, 8 * MIB));
        let url = s.sign_part(&id, 2, 8 * MIB, 500);
        let (path, query) = url.split_once('?').unwrap();
        assert_eq!(path, format!("/_/uploads/{id}/parts/2"));
        let verify = |id: &str, n: u32, q: &str, len: u64, now: u64| {
            s.verify_part(id, n, Some(q), Some(len), now)
        };
        assert_eq!(verify(&id, 2, query, 8 * MIB, 500).unwrap(), 8 * MIB);
        let status = |r: Result<u64>| r.unwrap_err().status().as_u16();
        assert_eq!(status(verify(&id, 2, query, 8 * MIB, 501)), 403, "expired");
        assert_eq!(
            status(verify(&id, 2, query, 8 * MIB - 1, 500)),
            403,
            "length"
        );
        assert_eq!(
            status(verify(&id, 3, query, 8 * MIB, 500)),
            403,
            "other part"
        );
        let other = s.upload_id(&upload(18 * MIB, 8 * MIB));
        assert_eq!(
            status(verify(&other, 2, query, 8 * MIB, 500)),
            403,
            "other id"
        );
        let longer = query.replace(&format!("len={}", 8 * MIB), "len=9000000");
        assert_eq!(
            status(verify(&id, 2, &longer, 9_000_000, 500)),
            403,
            "forged len"
        );
        let later = query.replace("exp=500", "exp=9999");
        assert_eq!(
            status(verify(&id, 2, &later, 8 * MIB, 500)),
            403,
            "forged exp"
        );
        let extra = format!("{query}&x=1");
        assert_eq!(status(verify(&id, 2, &extra, 8 * MIB, 500)), 403, "extra");
    }

    #[test]
    fn completion_bodies() {
        let u = upload(17 * MIB, 8 * MIB);
        let ok = parse_completion(
            br#"{"parts":[{"n":3,"etag":"\"c\""},{"n":1,"etag":"\"a\""},{"n":2,"etag":"\"b\""}]}"#,
            &u,
        )
        .unwrap();
        assert_eq!(ok.iter().map(|p| p.n).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(ok[0].etag, "\"a\"");
        for (body, says) in [
            (
                r#"{"parts":[{"n":1,"etag":"a"},{"n":3,"etag":"c"}]}"#,
                "missing: 2",
            ),
            (r#"{"parts":[]}"#, "missing: 1, 2, 3"),
            (
                r#"{"parts":[{"n":1,"etag":"a"},{"n":1,"etag":"a"},{"n":2,"etag":"b"}]}"#,
                "twice",
            ),
            (r#"{"parts":[{"n":4,"etag":"a"}]}"#, "out of range"),
            (r#"{"parts":[{"n":0,"etag":"a"}]}"#, "out of range"),
            (r#"{"parts":[{"n":1}]}"#, "etag"),
            (r#"{"parts":[{"n":"1","etag":"a"}]}"#, "number"),
            (r#"{"parts":{}}"#, "must be JSON"),
            (r#"{"parts":[],"x":1}"#, "must be JSON"),
            ("nope", "must be JSON"),
        ] {
            let e = parse_completion(body.as_bytes(), &u).unwrap_err();
            assert_eq!(e.status(), 400, "{body}");
            assert!(e.public_message().contains(says), "{body}: {e}");
        }
    }

    #[test]
    fn local_etags_have_s3s_shape() {
        let digest = Sha256::digest(b"part");
        let etag = local_etag(&digest);
        assert_eq!(etag.len(), 34);
        assert!(etag.starts_with('"') && etag.ends_with('"'));
    }
}
