//! Originals from S3 (or any S3-compatible store), plus presigned GETs and offloaded renditions.
//!
//! The client is built once at cold start. Every call runs under a timeout; S3's answers are
//! normalised: missing key → `NotFound` (S3 says 403 instead of 404 unless the role may
//! `s3:ListBucket`: the SAM template grants it), denied → `Forbidden`, throttling, 5xx and
//! connection failures → `Upstream`, timeouts → `UpstreamTimeout`.

use super::{too_large, Listed, Listing, Stat, UploadedPart};
use crate::error::{Error, Result};
use crate::key::{content_disposition, Key};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use bytes::Bytes;
use std::future::Future;
use std::time::Duration;

/// At most this many `ListObjectsV2` calls make one listing page (see [`S3Source::list`]).
pub const LIST_CALLS_PER_PAGE: usize = 4;

/// How long presigned URLs stay valid.
pub const PRESIGN_EXPIRY: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct S3Settings {
    pub bucket: String,
    /// Prepended to every key (e.g. `originals/`).
    pub prefix: String,
    /// Where oversized outputs are written (e.g. `_renditions/`).
    pub renditions_prefix: String,
    /// Bound on every S3 call, body included.
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct S3Source {
    client: aws_sdk_s3::Client,
    settings: S3Settings,
}

impl S3Source {
    pub fn new(client: aws_sdk_s3::Client, settings: S3Settings) -> S3Source {
        S3Source { client, settings }
    }

    /// Build the client from the standard AWS environment (region, credentials,
    /// `AWS_ENDPOINT_URL_S3`), with imgfn's timeouts and an optional path-style switch.
    pub async fn client_from_env(path_style: bool, timeout: Duration) -> aws_sdk_s3::Client {
        let (retry, timeouts) = call_policy(timeout);
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .timeout_config(timeouts)
            .retry_config(retry)
            .load()
            .await;
        let conf = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(path_style)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    pub fn settings(&self) -> &S3Settings {
        &self.settings
    }

    fn object_key(&self, key: &Key) -> String {
        format!("{}{}", self.settings.prefix, key.as_str())
    }

    /// Run one S3 call under the configured timeout.
    async fn timed<T>(&self, what: &str, call: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(self.settings.timeout, call)
            .await
            .map_err(|_| {
                Error::UpstreamTimeout(format!(
                    "s3 {what}: no answer in {:?}",
                    self.settings.timeout
                ))
            })?
    }

    pub async fn stat(&self, key: &Key) -> Result<Stat> {
        let object = self.object_key(key);
        self.timed("head", async {
            let head = self
                .client
                .head_object()
                .bucket(&self.settings.bucket)
                .key(&object)
                .send()
                .await
                .map_err(|e| classify("head", e))?;
            Ok(Stat {
                version: head.e_tag().unwrap_or_default().to_string(),
                size: head.content_length().unwrap_or(0).max(0) as u64,
            })
        })
        .await
    }

    pub async fn fetch(&self, key: &Key, max_bytes: u64) -> Result<Bytes> {
        let object = self.object_key(key);
        self.timed("get", async {
            let resp = self
                .client
                .get_object()
                .bucket(&self.settings.bucket)
                .key(&object)
                .send()
                .await
                .map_err(|e| classify("get", e))?;
            // Refuse before reading the body.
            let declared = resp.content_length().unwrap_or(0).max(0) as u64;
            if declared > max_bytes {
                return Err(too_large(declared, max_bytes));
            }
            let body = resp
                .body
                .collect()
                .await
                .map_err(|e| Error::Upstream(format!("s3 get body: {e}")))?
                .into_bytes();
            if body.len() as u64 > max_bytes {
                return Err(too_large(body.len() as u64, max_bytes));
            }
            Ok(body)
        })
        .await
    }

    /// A presigned GET (300 s) for an original, optionally as a download named `filename`.
    pub async fn presign_original(&self, key: &Key, filename: Option<&str>) -> Result<String> {
        self.presign_get(&self.object_key(key), filename).await
    }

    async fn presign_get(&self, object: &str, filename: Option<&str>) -> Result<String> {
        let config = PresigningConfig::expires_in(PRESIGN_EXPIRY)
            .map_err(|e| Error::Internal(format!("presign config: {e}")))?;
        let mut req = self
            .client
            .get_object()
            .bucket(&self.settings.bucket)
            .key(object);
        if let Some(name) = filename {
            req = req.response_content_disposition(content_disposition(name));
        }
        let presigned = req
            .presigned(config)
            .await
            .map_err(|e| Error::Internal(format!("presign: {e}")))?;
        Ok(presigned.uri().to_string())
    }

    /// The first `len` bytes of an original (a ranged GET): enough to read its header.
    pub async fn head_bytes(&self, key: &Key, len: u64) -> Result<Bytes> {
        let object = self.object_key(key);
        self.timed("get range", async {
            let resp = self
                .client
                .get_object()
                .bucket(&self.settings.bucket)
                .key(&object)
                .range(format!("bytes=0-{}", len.saturating_sub(1)))
                .send()
                .await;
            let resp = match resp {
                Ok(resp) => resp,
                // 416 to a range starting at byte 0: the object exists and is empty (a
                // missing key is a 404 first). The folder gives empty bytes: so do we.
                Err(e) if is_invalid_range(&e) => return Ok(Bytes::new()),
                Err(e) => return Err(classify("get range", e)),
            };
            let body = resp
                .body
                .collect()
                .await
                .map_err(|e| Error::Upstream(format!("s3 get range body: {e}")))?
                .into_bytes();
            // A server that ignores `Range` sends everything: keep only what was asked for.
            Ok(body.slice(..body.len().min(len as usize)))
        })
        .await
    }

    /// One page of originals under `prefix` (relative to the configured prefix), in key
    /// order. Objects under the renditions prefix and keys imgfn would not serve are skipped.
    ///
    /// Pages are full, as the folder's are: S3 is asked again (from where it stopped) until
    /// `limit` servable keys are found, plus one to know whether another page follows, or
    /// the listing ends. The cursor is the last key returned, relative to the configured
    /// prefix (the next page starts after it: `StartAfter`); no cursor means the end. At
    /// most [`LIST_CALLS_PER_PAGE`] calls are made per page, so a run of hidden keys cannot
    /// hold a request: then the page may be short (even empty), its cursor the last key S3
    /// returned, and the next page resumes from there.
    pub async fn list(&self, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<Listing> {
        let full_prefix = format!("{}{}", self.settings.prefix, prefix);
        let wanted = limit as usize;
        let mut entries: Vec<Listed> = Vec::new();
        // The last object key S3 returned (hidden or not), and S3's token to go on after it.
        let mut last_seen: Option<String> = None;
        let mut token: Option<String> = None;
        for _ in 0..LIST_CALLS_PER_PAGE {
            // One more than the page holds: the extra one says whether a next page exists.
            let ask = (wanted + 1 - entries.len()).min(1000) as i32;
            let mut req = self
                .client
                .list_objects_v2()
                .bucket(&self.settings.bucket)
                .prefix(&full_prefix)
                .max_keys(ask);
            req = match (&token, cursor) {
                (Some(token), _) => req.continuation_token(token),
                (None, Some(after)) => req.start_after(format!("{}{after}", self.settings.prefix)),
                (None, None) => req,
            };
            let resp = self
                .timed("list", async {
                    req.send().await.map_err(|e| classify("list", e))
                })
                .await?;
            for o in resp.contents() {
                let Some(object) = o.key() else { continue };
                last_seen = Some(object.to_string());
                if let Some(listed) = self.listed(object, o) {
                    entries.push(listed);
                }
                if entries.len() > wanted {
                    // A next page exists: it starts after this page's last key.
                    entries.truncate(wanted);
                    let next_cursor = entries.last().map(|e| e.key.to_string());
                    return Ok(Listing {
                        entries,
                        next_cursor,
                    });
                }
            }
            token = resp
                .is_truncated()
                .unwrap_or(false)
                .then(|| resp.next_continuation_token().map(str::to_string))
                .flatten();
            if token.is_none() {
                // The listing ended within this page.
                return Ok(Listing {
                    entries,
                    next_cursor: None,
                });
            }
        }
        // The call bound is hit: a short page, resuming after the last key S3 returned.
        let next_cursor = last_seen
            .as_deref()
            .and_then(|o| o.strip_prefix(&self.settings.prefix))
            .map(str::to_string)
            .or_else(|| cursor.map(str::to_string));
        Ok(Listing {
            entries,
            next_cursor,
        })
    }

    /// A listed object as an original, or `None` for what imgfn does not serve (renditions,
    /// dot-files, keys outside the configured prefix).
    fn listed(&self, object: &str, o: &aws_sdk_s3::types::Object) -> Option<Listed> {
        if object.starts_with(&self.settings.renditions_prefix) {
            return None;
        }
        let key = Key::parse(object.strip_prefix(&self.settings.prefix)?).ok()?;
        Some(Listed {
            key,
            size: o.size().unwrap_or(0).max(0) as u64,
            version: o.e_tag().unwrap_or_default().to_string(),
        })
    }

    /// A presigned PUT for `key` that S3 accepts only with exactly this `Content-Type` and
    /// `Content-Length` (both are signed headers), and only when nothing is stored there
    /// yet (`If-None-Match: *`, signed too). Returns the URL and the headers to send.
    pub async fn presign_put(
        &self,
        key: &Key,
        content_type: &str,
        bytes: u64,
        expires_in: Duration,
    ) -> Result<(String, Vec<(String, String)>)> {
        let config = PresigningConfig::expires_in(expires_in)
            .map_err(|e| Error::Internal(format!("presign config: {e}")))?;
        let presigned = self
            .client
            .put_object()
            .bucket(&self.settings.bucket)
            .key(self.object_key(key))
            .content_type(content_type)
            .content_length(i64::try_from(bytes).unwrap_or(i64::MAX))
            // A signed `If-None-Match: *`: a replayed URL cannot replace what was stored
            // (S3 answers 412). The client must send it: it is in the returned headers.
            .if_none_match("*")
            .presigned(config)
            .await
            .map_err(|e| Error::Internal(format!("presign put: {e}")))?;
        let headers = presigned
            .headers()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        Ok((presigned.uri().to_string(), headers))
    }

    /// Store an oversized output once under the renditions prefix (named by its content
    /// hash, so it is written at most once) and return a presigned GET for it, as a download
    /// named `filename` when one is given.
    pub async fn offload(
        &self,
        name: &str,
        body: Bytes,
        content_type: &str,
        filename: Option<&str>,
    ) -> Result<String> {
        let object = format!("{}{}", self.settings.renditions_prefix, name);
        self.timed("put rendition", async {
            let exists = self
                .client
                .head_object()
                .bucket(&self.settings.bucket)
                .key(&object)
                .send()
                .await;
            match exists {
                Ok(_) => {}
                Err(e) if status_of(&e) == Some(404) => {
                    self.client
                        .put_object()
                        .bucket(&self.settings.bucket)
                        .key(&object)
                        .content_type(content_type)
                        .body(body.into())
                        .send()
                        .await
                        .map_err(|e| classify("put rendition", e))?;
                }
                Err(e) => return Err(classify("head rendition", e)),
            }
            Ok(())
        })
        .await?;
        self.presign_get(&object, filename).await
    }
}

/// Retries and timeouts of every S3 call. A Function URL caller is waiting: one quick retry
/// for a dropped connection or a 5xx, then fail fast (502) rather than back off for seconds.
pub fn call_policy(
    timeout: Duration,
) -> (
    aws_config::retry::RetryConfig,
    aws_config::timeout::TimeoutConfig,
) {
    let retry = aws_config::retry::RetryConfig::standard()
        .with_max_attempts(2)
        .with_initial_backoff(Duration::from_millis(20))
        .with_max_backoff(Duration::from_millis(100));
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2).min(timeout))
        .operation_attempt_timeout(timeout)
        .operation_timeout(timeout)
        .build();
    (retry, timeouts)
}

/// S3's answer to a range that starts past the object's end (`416 InvalidRange`).
fn is_invalid_range<E: ProvideErrorMetadata>(
    e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    status_of(e) == Some(416) || e.code() == Some("InvalidRange")
}

fn status_of<E>(e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// Map an SDK error to imgfn's few upstream errors; the detail is kept for the logs.
fn classify<E>(what: &str, e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = status_of(&e);
    let code = e.code().unwrap_or("").to_string();
    let detail = format!(
        "s3 {what}: {} (status {status:?}, code {code:?})",
        aws_sdk_s3::error::DisplayErrorContext(&e)
    );
    match (&e, status) {
        (SdkError::TimeoutError(_), _) => Error::UpstreamTimeout(detail),
        (SdkError::DispatchFailure(f), _) if f.is_timeout() => Error::UpstreamTimeout(detail),
        (_, Some(404)) => Error::NotFound,
        (_, Some(403)) => Error::Forbidden("access to this image is denied".into()),
        _ if code == "NoSuchKey" || code == "NotFound" => Error::NotFound,
        _ => Error::Upstream(detail),
    }
}

/// Uploads in parts straight to S3: imgfn starts, lists, completes and aborts them; the
/// client PUTs each part to a presigned `UploadPart` URL.
impl S3Source {
    /// `CreateMultipartUpload` for `key`: S3's `UploadId`.
    pub async fn start_multipart(&self, key: &Key, content_type: &str) -> Result<String> {
        let object = self.object_key(key);
        self.timed("create multipart upload", async {
            let resp = self
                .client
                .create_multipart_upload()
                .bucket(&self.settings.bucket)
                .key(&object)
                .content_type(content_type)
                .send()
                .await
                .map_err(|e| classify_multipart("create multipart upload", e))?;
            resp.upload_id()
                .filter(|id| !id.is_empty())
                .map(str::to_string)
                .ok_or_else(|| Error::Upstream("s3 create multipart upload: no UploadId".into()))
        })
        .await
    }

    /// A presigned `UploadPart` for part `n` whose `Content-Length` is signed: S3 itself
    /// refuses a body of any other length. Returns the URL and the headers to send.
    pub async fn presign_part(
        &self,
        key: &Key,
        upload_id: &str,
        n: u32,
        len: u64,
        expires_in: Duration,
    ) -> Result<(String, Vec<(String, String)>)> {
        let config = PresigningConfig::expires_in(expires_in)
            .map_err(|e| Error::Internal(format!("presign config: {e}")))?;
        let presigned = self
            .client
            .upload_part()
            .bucket(&self.settings.bucket)
            .key(self.object_key(key))
            .upload_id(upload_id)
            .part_number(i32::try_from(n).unwrap_or(i32::MAX))
            .content_length(i64::try_from(len).unwrap_or(i64::MAX))
            .presigned(config)
            .await
            .map_err(|e| Error::Internal(format!("presign upload part: {e}")))?;
        let headers = presigned
            .headers()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        Ok((presigned.uri().to_string(), headers))
    }

    /// `ListParts`: the parts S3 holds, in order (at most 10,000: ten pages).
    pub async fn list_parts(&self, key: &Key, upload_id: &str) -> Result<Vec<UploadedPart>> {
        let object = self.object_key(key);
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..10 {
            let mut req = self
                .client
                .list_parts()
                .bucket(&self.settings.bucket)
                .key(&object)
                .upload_id(upload_id);
            if let Some(m) = &marker {
                req = req.part_number_marker(m);
            }
            let resp = self
                .timed("list parts", async {
                    req.send()
                        .await
                        .map_err(|e| classify_multipart("list parts", e))
                })
                .await?;
            for p in resp.parts() {
                let (Some(n), Some(etag)) = (p.part_number(), p.e_tag()) else {
                    continue;
                };
                parts.push(UploadedPart {
                    n: u32::try_from(n).unwrap_or(0),
                    etag: etag.to_string(),
                    bytes: p.size().unwrap_or(0).max(0) as u64,
                });
            }
            marker = resp
                .is_truncated()
                .unwrap_or(false)
                .then(|| resp.next_part_number_marker().map(str::to_string))
                .flatten();
            if marker.is_none() {
                break;
            }
        }
        parts.sort_by_key(|p| p.n);
        Ok(parts)
    }

    /// `CompleteMultipartUpload` with these parts, only if nothing is stored under `key` yet
    /// (`If-None-Match: *`) and only if they add up to `total` bytes. S3 checks every ETag:
    /// a wrong or missing part is the client's 400, not a store failure. Assembling a large
    /// upload can take S3 a while: this call gets ten times the usual bound.
    pub async fn complete_multipart(
        &self,
        key: &Key,
        upload_id: &str,
        parts: &[(u32, String)],
        total: u64,
    ) -> Result<()> {
        use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|(n, etag)| {
                        CompletedPart::builder()
                            .part_number(i32::try_from(*n).unwrap_or(i32::MAX))
                            .e_tag(etag)
                            .build()
                    })
                    .collect(),
            ))
            .build();
        let bound = self.settings.timeout * 10;
        let call = self
            .client
            .complete_multipart_upload()
            .bucket(&self.settings.bucket)
            .key(self.object_key(key))
            .upload_id(upload_id)
            .multipart_upload(completed)
            .mpu_object_size(i64::try_from(total).unwrap_or(i64::MAX))
            .if_none_match("*")
            .customize()
            .config_override(
                aws_sdk_s3::config::Config::builder().timeout_config(
                    aws_config::timeout::TimeoutConfig::builder()
                        .operation_attempt_timeout(bound)
                        .operation_timeout(bound)
                        .build(),
                ),
            )
            .send();
        tokio::time::timeout(bound, call)
            .await
            .map_err(|_| {
                Error::UpstreamTimeout(format!(
                    "s3 complete multipart upload: no answer in {bound:?}"
                ))
            })?
            .map_err(|e| classify_multipart("complete multipart upload", e))?;
        Ok(())
    }

    /// `AbortMultipartUpload`: S3 drops every part (done if the upload is already gone).
    pub async fn abort_multipart(&self, key: &Key, upload_id: &str) -> Result<()> {
        let object = self.object_key(key);
        self.timed("abort multipart upload", async {
            match self
                .client
                .abort_multipart_upload()
                .bucket(&self.settings.bucket)
                .key(&object)
                .upload_id(upload_id)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.code() == Some("NoSuchUpload") || status_of(&e) == Some(404) => Ok(()),
                Err(e) => Err(classify_multipart("abort multipart upload", e)),
            }
        })
        .await
    }
}

/// S3's refusals of a multipart call that are the client's doing, as 4xx with what was wrong;
/// anything else as [`classify`] maps it.
fn classify_multipart<E>(
    what: &str,
    e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let parts = |message: &str| Error::invalid_param("parts", message);
    match (e.code(), status_of(&e)) {
        (Some("NoSuchUpload"), _) | (_, Some(404)) => {
            Error::Conflict("this upload is no longer in progress (completed or aborted)".into())
        }
        (Some("InvalidPart"), _) => {
            parts("a part was never received, or its ETag is not the one the store gave it")
        }
        (Some("InvalidPartOrder"), _) => parts("the parts must be named in ascending order"),
        (Some("EntityTooSmall"), _) => parts("every part but the last must be at least 5 MiB"),
        (Some("PreconditionFailed"), _) | (_, Some(412)) => Error::Conflict(
            "an original already exists under this key and is never overwritten".into(),
        ),
        (code, Some(400)) => {
            tracing::warn!(what, code = ?code, "s3 refused a multipart call");
            parts("the store refused the parts (do they add up to the upload's size?)")
        }
        _ => classify(what, e),
    }
}
