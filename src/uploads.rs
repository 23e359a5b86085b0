//! Uploads: `POST /_/uploads` hands out a short-lived URL that the client PUTs the file to.
//!
//! The file never passes through imgfn on Lambda (no base64, no 6 MB request limit): with S3
//! the URL is a presigned S3 PUT that pins the content type and length; with the local folder
//! it is imgfn's own `PUT /_/uploads/<key>`, authorised by an HMAC over the same terms.
//! The server picks the key; the client only says what it will send. Everything here is
//! pure: the handlers in `routes::uploads` do the I/O. Larger files are uploaded in parts
//! (`multipart`).

use crate::error::{Error, Result};
use crate::key::{encode_key, Key};
use crate::signing::mac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub mod multipart;

type HmacSha256 = hmac::Hmac<Sha256>;

/// The bearer token that unlocks uploads (and the gallery listing). Never printed.
#[derive(Clone)]
pub struct UploadToken(String);

impl std::str::FromStr for UploadToken {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        if s.len() < 16 {
            return Err("the upload token must be at least 16 characters".into());
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the upload token must be printable ASCII without spaces".into());
        }
        Ok(UploadToken(s.to_string()))
    }
}

impl std::fmt::Debug for UploadToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UploadToken(<redacted>)")
    }
}

impl UploadToken {
    /// Check an `Authorization: Bearer <token>` header in constant time (both sides are hashed
    /// first, so not even the length leaks).
    pub fn check(&self, authorization: Option<&str>) -> Result<()> {
        let given = authorization
            .and_then(|h| {
                let (scheme, token) = h.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| {
                Error::Unauthorized("an `Authorization: Bearer` token is required".into())
            })?;
        let same: bool = Sha256::digest(given.as_bytes())
            .ct_eq(&Sha256::digest(self.0.as_bytes()))
            .into();
        if same {
            Ok(())
        } else {
            Err(Error::Unauthorized("the bearer token is not valid".into()))
        }
    }

    /// The key of local upload URLs, derived from the token: restarts keep URLs valid, and
    /// rotating the token revokes them.
    pub fn local_signer(&self) -> LocalSigner {
        let key = mac(self.0.as_bytes(), "imgfn local upload URL v1");
        LocalSigner(key.finalize().into_bytes().into())
    }
}

/// Image types that may be uploaded: exactly the formats this build of imgfn decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageType {
    Jpeg,
    Png,
    Webp,
    Gif,
    Avif,
    Heic,
    Heif,
    Jxl,
    Tiff,
    Bmp,
}

impl ImageType {
    pub const ALL: [ImageType; 10] = [
        ImageType::Jpeg,
        ImageType::Png,
        ImageType::Webp,
        ImageType::Gif,
        ImageType::Avif,
        ImageType::Heic,
        ImageType::Heif,
        ImageType::Jxl,
        ImageType::Tiff,
        ImageType::Bmp,
    ];

    /// Whether this build decodes the type: HEIC and HEIF need the `heic` feature (libheif).
    pub fn decodable(self) -> bool {
        cfg!(feature = "heic") || !matches!(self, ImageType::Heic | ImageType::Heif)
    }

    /// A type this build decodes, from a `content_type`; any other is a 415 that lists them.
    pub fn parse(content_type: &str) -> Result<ImageType> {
        let t = content_type.trim().to_ascii_lowercase();
        let accepted = Self::ALL.into_iter().filter(|i| i.decodable());
        accepted
            .clone()
            .find(|i| i.content_type() == t)
            .ok_or_else(|| {
                let all: Vec<&str> = accepted.map(|i| i.content_type()).collect();
                Error::UnsupportedFormat(format!(
                    "`content_type` must be one of {}",
                    all.join(", ")
                ))
            })
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ImageType::Jpeg => "image/jpeg",
            ImageType::Png => "image/png",
            ImageType::Webp => "image/webp",
            ImageType::Gif => "image/gif",
            ImageType::Avif => "image/avif",
            ImageType::Heic => "image/heic",
            ImageType::Heif => "image/heif",
            ImageType::Jxl => "image/jxl",
            ImageType::Tiff => "image/tiff",
            ImageType::Bmp => "image/bmp",
        }
    }

    /// The extension of the key an upload gets (the gallery lists keys by extension).
    pub fn extension(self) -> &'static str {
        match self {
            ImageType::Jpeg => "jpg",
            ImageType::Png => "png",
            ImageType::Webp => "webp",
            ImageType::Gif => "gif",
            ImageType::Avif => "avif",
            ImageType::Heic => "heic",
            ImageType::Heif => "heif",
            ImageType::Jxl => "jxl",
            ImageType::Tiff => "tif",
            ImageType::Bmp => "bmp",
        }
    }
}

/// A parsed `POST /_/uploads` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRequest {
    pub filename: String,
    pub content_type: ImageType,
    pub bytes: u64,
}

impl UploadRequest {
    /// Parse `{"filename", "content_type", "bytes"}`; the size is refused (413) here, before
    /// anything is signed.
    pub fn parse(body: &[u8], max_bytes: u64) -> Result<UploadRequest> {
        let json: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
            Error::BadRequest(format!(
                "the body must be JSON {{\"filename\", \"content_type\", \"bytes\"}}: {e}"
            ))
        })?;
        let obj = json
            .as_object()
            .ok_or_else(|| Error::BadRequest("the body must be a JSON object".into()))?;
        if let Some(unknown) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "filename" | "content_type" | "bytes"))
        {
            return Err(Error::invalid_param(
                unknown.as_str(),
                format!("unknown field `{unknown}`; accepted: filename, content_type, bytes"),
            ));
        }
        let text = |name: &str| -> Result<&str> {
            obj.get(name)
                .and_then(|v| v.as_str())
                .ok_or_else(|| Error::invalid_param(name, format!("`{name}` must be a string")))
        };
        let filename = text("filename")?;
        if filename.is_empty()
            || filename.len() > 255
            || filename
                .chars()
                .any(|c| c.is_control() || c == '/' || c == '\\')
        {
            return Err(Error::invalid_param(
                "filename",
                "`filename` must be 1 to 255 characters, without slashes or control characters",
            ));
        }
        let content_type = ImageType::parse(text("content_type")?)?;
        let bytes = obj
            .get("bytes")
            .and_then(|v| v.as_u64())
            .filter(|&b| b > 0)
            .ok_or_else(|| Error::invalid_param("bytes", "`bytes` must be a positive integer"))?;
        if bytes > max_bytes {
            return Err(Error::PayloadTooLarge(format!(
                "the upload is {bytes} bytes; at most {max_bytes} bytes are allowed"
            )));
        }
        Ok(UploadRequest {
            filename: filename.to_string(),
            content_type,
            bytes,
        })
    }
}

/// The key of a new upload: `<prefix>YYYY/MM/<uuid>.<ext>`, chosen by the server.
pub fn new_key(prefix: &str, now: u64, kind: ImageType) -> Result<Key> {
    let date = rfc3339(now);
    // "YYYY-MM-DDThh:mm:ssZ"
    let (year, month) = (&date[0..4], &date[5..7]);
    Key::parse(&format!(
        "{prefix}{year}/{month}/{}.{}",
        uuid::Uuid::new_v4(),
        kind.extension()
    ))
    .map_err(|_| Error::Internal(format!("upload prefix {prefix:?} gives invalid keys")))
}

/// Unix seconds as `2026-11-21T10:05:00Z`.
pub fn rfc3339(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

/// The fields `names` of a signed URL's query (a local upload's or a part's grant), each
/// exactly once and nothing else beside them: anything else is `forged()`.
pub(crate) fn grant_fields<const N: usize>(
    query: Option<&str>,
    names: [&str; N],
    forged: impl Fn() -> Error,
) -> Result<[String; N]> {
    let mut slots: [Option<String>; N] = std::array::from_fn(|_| None);
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let i = names.iter().position(|n| *n == k).ok_or_else(&forged)?;
        if slots[i].replace(v.into_owned()).is_some() {
            return Err(forged());
        }
    }
    let mut fields: [String; N] = std::array::from_fn(|_| String::new());
    for (field, slot) in fields.iter_mut().zip(slots) {
        *field = slot.ok_or_else(&forged)?;
    }
    Ok(fields)
}

/// Signs and checks imgfn's own upload URLs (local folder source).
#[derive(Clone)]
pub struct LocalSigner([u8; 32]);

/// What a local upload URL allows: one PUT of exactly this type and length, until `expires`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalGrant {
    pub key: Key,
    pub content_type: ImageType,
    pub bytes: u64,
    pub expires: u64,
}

impl LocalSigner {
    fn tag(&self, g: &LocalGrant) -> HmacSha256 {
        mac(
            &self.0,
            &format!(
                "PUT\n{}\n{}\n{}\n{}",
                g.key,
                g.content_type.content_type(),
                g.bytes,
                g.expires
            ),
        )
    }

    /// `/_/uploads/<key>?ct=..&len=..&exp=..&sig=..` (path and query, percent-encoded).
    pub fn sign(&self, g: &LocalGrant) -> String {
        let sig = URL_SAFE_NO_PAD.encode(self.tag(g).finalize().into_bytes());
        let ct: String =
            form_urlencoded::byte_serialize(g.content_type.content_type().as_bytes()).collect();
        format!(
            "/_/uploads/{}?ct={ct}&len={}&exp={}&sig={sig}",
            encode_key(&g.key),
            g.bytes,
            g.expires
        )
    }

    /// Check a `PUT /_/uploads/<key>` request: the signature over the URL's terms (constant
    /// time), the expiry, and that the request sends exactly the signed type and length.
    pub fn verify(
        &self,
        key: Key,
        query: Option<&str>,
        content_type: Option<&str>,
        content_length: Option<u64>,
        now: u64,
    ) -> Result<LocalGrant> {
        let forged = || Error::Forbidden("the upload URL is not valid".into());
        let [ct, len, exp, sig] = grant_fields(query, ["ct", "len", "exp", "sig"], forged)?;
        let grant = LocalGrant {
            key,
            content_type: ImageType::parse(&ct).map_err(|_| forged())?,
            bytes: len.parse().map_err(|_| forged())?,
            expires: exp.parse().map_err(|_| forged())?,
        };
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| forged())?;
        self.tag(&grant).verify_slice(&sig).map_err(|_| forged())?;
        if now > grant.expires {
            return Err(Error::Forbidden("the upload URL has expired".into()));
        }
        if content_type
            .map(|t| t.trim().to_ascii_lowercase())
            .as_deref()
            != Some(grant.content_type.content_type())
        {
            return Err(Error::Forbidden(format!(
                "this upload URL is for Content-Type {}",
                grant.content_type.content_type()
            )));
        }
        if content_length != Some(grant.bytes) {
            return Err(Error::Forbidden(format!(
                "this upload URL is for Content-Length {}",
                grant.bytes
            )));
        }
        Ok(grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> UploadToken {
        "0123456789abcdef-token".parse().unwrap()
    }

    #[test]
    fn bearer_tokens() {
        let t = token();
        assert!(t.check(Some("Bearer 0123456789abcdef-token")).is_ok());
        assert!(t.check(Some("bearer  0123456789abcdef-token ")).is_ok());
        for bad in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer x"),
            Some("Basic 0123456789abcdef-token"),
        ] {
            assert_eq!(t.check(bad).unwrap_err().status(), 401, "{bad:?}");
        }
        assert!("short".parse::<UploadToken>().is_err());
        assert!(!format!("{:?}", t).contains("0123"));
    }

    #[test]
    fn upload_requests() {
        let ok = UploadRequest::parse(
            br#"{"filename":"cat.jpg","content_type":"image/jpeg","bytes":1000}"#,
            1000,
        )
        .unwrap();
        assert_eq!(ok.content_type, ImageType::Jpeg);
        let status = |body: &str| {
            UploadRequest::parse(body.as_bytes(), 1000)
                .unwrap_err()
                .status()
                .as_u16()
        };
        assert_eq!(
            status(r#"{"filename":"a","content_type":"image/jpeg","bytes":1001}"#),
            413
        );
        assert_eq!(
            status(r#"{"filename":"a","content_type":"text/html","bytes":10}"#),
            415
        );
        assert_eq!(
            status(r#"{"filename":"a","content_type":"image/svg+xml","bytes":10}"#),
            415
        );
        assert_eq!(
            status(r#"{"filename":"a","content_type":"image/png","bytes":0}"#),
            400
        );
        assert_eq!(
            status(r#"{"filename":"a","content_type":"image/png","bytes":-1}"#),
            400
        );
        assert_eq!(
            status(r#"{"filename":"../a","content_type":"image/png","bytes":1}"#),
            400
        );
        assert_eq!(status(r#"{"content_type":"image/png","bytes":1}"#), 400);
        assert_eq!(
            status(r#"{"filename":"a","content_type":"image/png","bytes":1,"key":"x"}"#),
            400
        );
        assert_eq!(status("not json"), 400);
    }

    #[test]
    fn every_decodable_type_is_accepted_and_keeps_its_extension() {
        for (ct, ext) in [
            ("image/avif", "avif"),
            ("image/jxl", "jxl"),
            ("image/tiff", "tif"),
            ("IMAGE/BMP", "bmp"),
        ] {
            let t = ImageType::parse(ct).unwrap();
            assert_eq!(t.extension(), ext);
            let key = new_key("uploads/", 1_790_000_000, t).unwrap();
            assert!(crate::gallery::looks_like_image(&key), "{key}");
        }
        // HEIC/HEIF only where libheif is built in; the refusal lists what is accepted.
        for ct in ["image/heic", "image/heif"] {
            let parsed = ImageType::parse(ct);
            assert_eq!(parsed.is_ok(), cfg!(feature = "heic"), "{ct}");
            if let Err(e) = parsed {
                assert_eq!(e.status(), 415);
                assert!(e.to_string().contains("image/jxl"), "{e}");
            }
        }
    }

    #[test]
    fn keys_are_chosen_by_the_server() {
        // 2026-11-21T00:00:00Z
        let k = new_key("uploads/", 1_795_219_200, ImageType::Png).unwrap();
        assert!(k.as_str().starts_with("uploads/2026/11/"), "{k}");
        assert!(k.as_str().ends_with(".png"));
        assert_ne!(
            k,
            new_key("uploads/", 1_795_219_200, ImageType::Png).unwrap()
        );
        assert_eq!(rfc3339(1_795_219_200), "2026-11-21T00:00:00Z");
    }

    #[test]
    fn local_upload_urls() {
        let signer = token().local_signer();
        let grant = LocalGrant {
            key: Key::parse("uploads/a b.jpg").unwrap(),
            content_type: ImageType::Jpeg,
            bytes: 42,
            expires: 1000,
        };
        let url = signer.sign(&grant);
        let (path, query) = url.split_once('?').unwrap();
        assert_eq!(path, "/_/uploads/uploads/a%20b.jpg");
        let key = || grant.key.clone();
        let verify = |q: &str, ct: &str, len: u64, now: u64| {
            signer.verify(key(), Some(q), Some(ct), Some(len), now)
        };
        assert_eq!(verify(query, "image/jpeg", 42, 999).unwrap(), grant);
        let status = |r: Result<LocalGrant>| r.unwrap_err().status().as_u16();
        assert_eq!(
            status(verify(query, "image/jpeg", 42, 1001)),
            403,
            "expired"
        );
        assert_eq!(
            status(verify(query, "image/png", 42, 999)),
            403,
            "other type"
        );
        assert_eq!(
            status(verify(query, "image/jpeg", 43, 999)),
            403,
            "other length"
        );
        let longer = query.replace("len=42", "len=4200");
        assert_eq!(
            status(verify(&longer, "image/jpeg", 4200, 999)),
            403,
            "forged length"
        );
        let later = query.replace("exp=1000", "exp=9999");
        assert_eq!(
            status(verify(&later, "image/jpeg", 42, 999)),
            403,
            "forged expiry"
        );
        let other_key = signer.verify(
            Key::parse("x.jpg").unwrap(),
            Some(query),
            Some("image/jpeg"),
            Some(42),
            999,
        );
        assert_eq!(status(other_key), 403, "other key");
        let other_signer = "another-token-0123456789"
            .parse::<UploadToken>()
            .unwrap()
            .local_signer();
        let foreign = other_signer.sign(&grant);
        assert_eq!(
            status(verify(
                foreign.split_once('?').unwrap().1,
                "image/jpeg",
                42,
                999
            )),
            403
        );
    }
}
