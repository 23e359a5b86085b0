//! The upload routes: `POST /_/uploads` issues an upload URL (presigned S3 PUT, or a
//! locally signed one), or starts an upload in parts above the threshold (`multipart`);
//! `PUT /_/uploads/<key>` receives a local upload.

use crate::error::{Error, Result};
use crate::key::{encode_key, Key};
use crate::respond::{header_str, json_response, Trace};
use crate::state::{unix_now, AppState};
use crate::uploads::{self, LocalGrant, UploadRequest};
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use std::time::Duration;

pub(crate) fn upload_token(state: &AppState) -> Result<uploads::UploadToken> {
    state.secrets.current().upload_token.clone().ok_or_else(|| {
        Error::Forbidden("uploads are not enabled on this server (IMGFN_UPLOAD_TOKEN)".into())
    })
}

/// The bearer credential of a request: `X-Imgfn-Authorization` when present, else
/// `Authorization`. Behind CloudFront's origin access control the distribution signs every
/// request to the Function URL and replaces `Authorization` with its own SigV4 signature, so
/// the gallery page sends the token in the header of our own.
pub(crate) fn bearer<B>(req: &Request<B>) -> Option<&str> {
    header_str(
        req,
        header::HeaderName::from_static("x-imgfn-authorization"),
    )
    .or_else(|| header_str(req, header::AUTHORIZATION))
}

/// `GET /_/uploads`: 200 `{"can_upload": true}` for the upload token; 401 (403 without
/// uploads) otherwise. The page shows its upload form only after this answers 200, so a
/// gallery viewer's token never sees it.
pub(crate) fn check(state: &AppState, req: &Request<Bytes>) -> Result<Response<Bytes>> {
    upload_token(state)?.check(bearer(req))?;
    let mut response = json_response(StatusCode::OK, &serde_json::json!({ "can_upload": true }));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `POST /_/uploads`: check the token, the type and the size, choose the key, sign a PUT.
pub(crate) async fn create_upload(
    state: &AppState,
    req: &Request<Bytes>,
    trace: &mut Trace,
) -> Result<Response<Bytes>> {
    let token = upload_token(state)?;
    token.check(bearer(req))?;
    let upload = UploadRequest::parse(req.body(), state.config.max_upload_bytes)?;
    let now = unix_now();
    let key = uploads::new_key(&state.config.upload_prefix, now, upload.content_type)?;
    trace.key = Some(key.to_string());
    if upload.bytes > state.config.multipart_threshold_bytes {
        return super::multipart::start(state, &token, &upload, key, now).await;
    }
    let expires = now + state.config.upload_expiry_secs;
    let content_type = upload.content_type.content_type();
    let (url, headers) = if state.source.takes_uploads() {
        let grant = LocalGrant {
            key: key.clone(),
            content_type: upload.content_type,
            bytes: upload.bytes,
            expires,
        };
        let url = format!(
            "{}{}",
            state.public_origin(),
            token.local_signer().sign(&grant)
        );
        (url, Vec::new())
    } else {
        let expiry = Duration::from_secs(state.config.upload_expiry_secs);
        Box::pin(
            state
                .source
                .presign_put(&key, content_type, upload.bytes, expiry),
        )
        .await?
    };
    // The client must send exactly these (S3 also lists what it signed).
    let mut header_map = serde_json::Map::new();
    header_map.insert("content-type".into(), content_type.into());
    header_map.insert("content-length".into(), upload.bytes.to_string().into());
    for (name, value) in headers {
        if name != "host" {
            header_map.insert(name, value.into());
        }
    }
    tracing::info!(key = %key, filename = %upload.filename, bytes = upload.bytes, "upload URL issued");
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({
            "key": key.as_str(),
            "upload_url": url,
            "method": "PUT",
            "headers": header_map,
            "expires_at": uploads::rfc3339(expires),
        }),
    ))
}

/// The grant of a `PUT /_/uploads/<key>` request (local folder only), from its URL and
/// headers; `raw_key` is the percent-encoded path after `/_/uploads`.
pub(crate) fn local_grant<B>(
    state: &AppState,
    req: &Request<B>,
    raw_key: &str,
) -> Result<LocalGrant> {
    if !state.source.takes_uploads() {
        // With S3, uploads go to S3's presigned URL, never through imgfn.
        return Err(Error::NotFound);
    }
    let token = upload_token(state)?;
    let key = Key::from_uri_path(raw_key)?;
    let content_length = header_str(req, header::CONTENT_LENGTH).and_then(|v| v.parse().ok());
    token.local_signer().verify(
        key,
        req.uri().query(),
        header_str(req, header::CONTENT_TYPE),
        content_length,
        unix_now(),
    )
}

/// `PUT /_/uploads/<key>`: the local folder's stand-in for a presigned S3 PUT.
pub(crate) async fn local_upload(
    state: &AppState,
    req: &Request<Bytes>,
    raw_key: &str,
    trace: &mut Trace,
) -> Result<Response<Bytes>> {
    let grant = local_grant(state, req, raw_key)?;
    trace.key = Some(grant.key.to_string());
    if req.body().len() as u64 != grant.bytes {
        return Err(Error::Forbidden(format!(
            "this upload URL is for exactly {} bytes",
            grant.bytes
        )));
    }
    state
        .source
        .write_new(&grant.key, req.body().clone())
        .await?;
    let mut resp = json_response(
        StatusCode::CREATED,
        &serde_json::json!({ "key": grant.key.as_str(), "bytes": grant.bytes }),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("/{}", encode_key(&grant.key))) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}
