//! The routes of uploads in parts (`uploads::multipart`): `POST /_/uploads` starts one when
//! the file is over the threshold; then `POST /_/uploads/<id>/parts/<n>` (a part's URL, asked
//! just before the part is sent), `PUT /_/uploads/<id>/parts/<n>` (the folder's stand-in for
//! S3's presigned `UploadPart`), `GET /_/uploads/<id>` (the parts received, to resume),
//! `POST /_/uploads/<id>/complete` and `DELETE /_/uploads/<id>`.
//!
//! Every route but the part PUT needs the upload token; every one opens the id first (its
//! HMAC, its age), so a forged or altered id costs no I/O.

use super::uploads::{bearer, upload_token};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::respond::{header_str, json_response, Trace};
use crate::state::{unix_now, AppState};
use crate::uploads::multipart::{parse_completion, MultipartUpload, PartPlan};
use crate::uploads::{rfc3339, UploadRequest, UploadToken};
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use std::time::Duration;

/// Start an upload in parts for `key` (the token and the request are already checked):
/// the store's upload, and the id that binds it.
pub(crate) async fn start(
    state: &AppState,
    token: &UploadToken,
    upload: &UploadRequest,
    key: Key,
    now: u64,
) -> Result<Response<Bytes>> {
    let plan = PartPlan::new(upload.bytes, state.config.multipart_part_bytes)?;
    let content_type = upload.content_type.content_type();
    let store_id = Box::pin(state.source.start_multipart(&key, content_type)).await?;
    let started = MultipartUpload {
        key,
        content_type: upload.content_type,
        bytes: upload.bytes,
        part_size: plan.part_size,
        store_id,
        created: now,
    };
    let id = token.local_signer().upload_id(&started);
    tracing::info!(key = %started.key, filename = %upload.filename, bytes = upload.bytes,
        parts = plan.part_count, "upload in parts started");
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({
            "key": started.key.as_str(),
            "upload_id": id,
            "bytes": upload.bytes,
            "part_size": plan.part_size,
            "part_count": plan.part_count,
            "expires_at": rfc3339(started.expires()),
        }),
    ))
}

/// The upload token, checked against the request, and the upload `id` binds.
fn open(
    state: &AppState,
    req: &Request<Bytes>,
    id: &str,
) -> Result<(UploadToken, MultipartUpload)> {
    let token = upload_token(state)?;
    token.check(bearer(req))?;
    let upload = token.local_signer().open_upload_id(id, unix_now())?;
    Ok((token, upload))
}

/// `POST /_/uploads/<id>/parts/<n>`: a URL for exactly part `n`'s bytes, valid
/// `IMGFN_UPLOAD_EXPIRY_SECS`.
pub(crate) async fn part_url(
    state: &AppState,
    req: &Request<Bytes>,
    id: &str,
    n: u32,
    trace: &mut Trace,
) -> Result<Response<Bytes>> {
    let (token, upload) = open(state, req, id)?;
    trace.key = Some(upload.key.to_string());
    let len = upload.part_len(n)?;
    let expires = unix_now() + state.config.upload_expiry_secs;
    let (url, headers) = if state.source.takes_uploads() {
        let path = token.local_signer().sign_part(id, n, len, expires);
        (format!("{}{path}", state.public_origin()), Vec::new())
    } else {
        let expiry = Duration::from_secs(state.config.upload_expiry_secs);
        Box::pin(
            state
                .source
                .presign_part(&upload.key, &upload.store_id, n, len, expiry),
        )
        .await?
    };
    let mut header_map = serde_json::Map::new();
    header_map.insert("content-length".into(), len.to_string().into());
    for (name, value) in headers {
        if name != "host" {
            header_map.insert(name, value.into());
        }
    }
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({
            "n": n,
            "upload_url": url,
            "method": "PUT",
            "headers": header_map,
            "bytes": len,
            "expires_at": rfc3339(expires),
        }),
    ))
}

/// The upload and the length of a local part PUT, from its URL and head alone (the route's
/// body limit): the id, the part URL's signature and expiry, and the exact length.
fn local_part_terms<B>(
    state: &AppState,
    req: &Request<B>,
    id: &str,
    n: u32,
    now: u64,
) -> Result<(MultipartUpload, u64)> {
    if !state.source.takes_uploads() {
        // With S3, parts go to S3's presigned URLs, never through imgfn.
        return Err(Error::NotFound);
    }
    let signer = upload_token(state)?.local_signer();
    let upload = signer.open_upload_id(id, now)?;
    let expected = upload.part_len(n)?;
    let content_length = header_str(req, header::CONTENT_LENGTH).and_then(|v| v.parse().ok());
    let len = signer.verify_part(id, n, req.uri().query(), content_length, now)?;
    if len != expected {
        return Err(Error::Forbidden("the part URL is not valid".into()));
    }
    Ok((upload, len))
}

/// The body limit of a local part PUT: its signed length, once its URL is checked.
pub(crate) fn local_part_grant<B>(
    state: &AppState,
    req: &Request<B>,
    id: &str,
    n: u32,
) -> Result<u64> {
    local_part_terms(state, req, id, n, unix_now()).map(|(_, len)| len)
}

/// `PUT /_/uploads/<id>/parts/<n>?<grant>`: store a part of a folder upload. Answers its
/// `ETag` (header and body), as S3 does.
pub(crate) async fn local_part(
    state: &AppState,
    req: &Request<Bytes>,
    id: &str,
    n: u32,
    trace: &mut Trace,
) -> Result<Response<Bytes>> {
    // Expiry was judged on the head (`local_part_grant`), as S3 judges it when a request
    // starts: checked again now, a part whose URL expired while its body was on the way would
    // be refused after all of it was sent. The body took at most the body timeout.
    let head_time = unix_now().saturating_sub(state.config.body_timeout_ms.div_ceil(1000));
    let (upload, len) = local_part_terms(state, req, id, n, head_time)?;
    trace.key = Some(upload.key.to_string());
    if req.body().len() as u64 != len {
        return Err(Error::Forbidden(format!(
            "this part URL is for exactly {len} bytes"
        )));
    }
    let etag = state
        .source
        .write_part(&upload.store_id, n, req.body().clone())
        .await?;
    let mut resp = json_response(
        StatusCode::OK,
        &serde_json::json!({ "n": n, "etag": etag, "bytes": len }),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    Ok(resp)
}

/// `GET /_/uploads/<id>`: the upload's terms and the parts the store holds, so that a client
/// resuming it sends only the others.
pub(crate) async fn status(
    state: &AppState,
    req: &Request<Bytes>,
    id: &str,
    trace: &mut Trace,
) -> Result<Response<Bytes>> {
    let (_, upload) = open(state, req, id)?;
    trace.key = Some(upload.key.to_string());
    let parts = Box::pin(state.source.list_parts(&upload.key, &upload.store_id)).await?;
    let parts: Vec<serde_json::Value> = parts
        .iter()
        .map(|p| serde_json::json!({ "n": p.n, "etag": p.etag, "bytes": p.bytes }))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({
            "key": upload.key.as_str(),
            "bytes": upload.bytes,
            "part_size": upload.part_size,
            "part_count": upload.part_count(),
            "expires_at": rfc3339(upload.expires()),
            "parts": parts,
        }),
    ))
}

/// `POST /_/uploads/<id>/complete` with `{"parts": [{"n", "etag"}, ...]}`: every part, each
/// with the ETag its PUT answered; the original then exists under the upload's key.
pub(crate) async fn complete(
    state: &AppState,
    req: &Request<Bytes>,
    id: &str,
    trace: &mut Trace,
) -> Result<Response<Bytes>> {
    let (_, upload) = open(state, req, id)?;
    trace.key = Some(upload.key.to_string());
    let parts: Vec<(u32, String)> = parse_completion(req.body(), &upload)?
        .into_iter()
        .map(|p| (p.n, p.etag))
        .collect();
    Box::pin(state.source.complete_multipart(
        &upload.key,
        &upload.store_id,
        &parts,
        upload.part_size,
        upload.bytes,
    ))
    .await?;
    tracing::info!(key = %upload.key, bytes = upload.bytes, parts = parts.len(), "upload in parts completed");
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "key": upload.key.as_str(), "bytes": upload.bytes }),
    ))
}

/// `DELETE /_/uploads/<id>`: abort the upload; the store keeps none of its parts.
pub(crate) async fn abort(
    state: &AppState,
    req: &Request<Bytes>,
    id: &str,
    trace: &mut Trace,
) -> Result<Response<Bytes>> {
    let (_, upload) = open(state, req, id)?;
    trace.key = Some(upload.key.to_string());
    Box::pin(state.source.abort_multipart(&upload.key, &upload.store_id)).await?;
    tracing::info!(key = %upload.key, "upload in parts aborted");
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "key": upload.key.as_str(), "aborted": true }),
    ))
}
