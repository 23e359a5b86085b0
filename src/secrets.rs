//! The secrets a request is checked against: the signing keys and the upload token.
//!
//! Either given at start-up (`IMGFN_SIGNING_KEYS`, `IMGFN_UPLOAD_TOKEN`: the local server), or
//! read from AWS Secrets Manager under Lambda (`IMGFN_SECRETS_ID`) through AWS's Parameters and
//! Secrets Lambda extension: a plain HTTP GET on localhost (port 2773 unless
//! `PARAMETERS_SECRETS_EXTENSION_HTTP_PORT` says otherwise) authenticated by the function's
//! session token, so no Secrets Manager SDK client is built at cold start. The secret is read
//! once at cold start and again once it is older than its TTL, so a rotated signing key (the
//! new one first, the old one kept until its URLs expire) reaches every warm instance without
//! a redeploy. A failed re-read keeps the last values and is retried after `RETRY_AFTER`.
//!
//! The secret's `SecretString` is either the signing keys (`id:secret[,id:secret...]`) or a
//! JSON object `{"signing_keys": "...", "upload_token": "...", "gallery_token": "..."}` (any
//! may be absent or empty; `gallery_token` opens a private gallery, `IMGFN_GALLERY_TOKEN`).

use crate::gallery::ViewerToken;
use crate::signing::SigningKeys;
use crate::uploads::UploadToken;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The extension's port when `PARAMETERS_SECRETS_EXTENSION_HTTP_PORT` is not set.
pub const EXTENSION_PORT: u16 = 2773;
/// How long one read through the extension may take (a cache miss there is a Secrets Manager
/// call).
const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// After a failed re-read, the last values are kept this long before the next attempt.
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// The values in force: what requests are checked against.
#[derive(Clone, Default)]
pub struct Current {
    pub signing_keys: Option<SigningKeys>,
    pub upload_token: Option<UploadToken>,
    /// The viewer token of a private gallery.
    pub gallery_token: Option<ViewerToken>,
}

impl std::fmt::Debug for Current {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SigningKeys prints its ids only; the token not at all.
        f.debug_struct("Current")
            .field("signing_keys", &self.signing_keys)
            .field("upload_token", &self.upload_token.as_ref().map(|_| "<set>"))
            .field(
                "gallery_token",
                &self.gallery_token.as_ref().map(|_| "<set>"),
            )
            .finish()
    }
}

impl Current {
    /// Parse a `SecretString`: signing keys, or the JSON object described above.
    pub fn parse(secret: &str) -> Result<Current, String> {
        let secret = secret.trim();
        if !secret.starts_with('{') {
            return Ok(Current {
                signing_keys: Some(secret.parse()?),
                upload_token: None,
                gallery_token: None,
            });
        }
        let json: serde_json::Value =
            serde_json::from_str(secret).map_err(|e| format!("the secret is not JSON: {e}"))?;
        let obj = json.as_object().ok_or("the secret must be a JSON object")?;
        if let Some(unknown) = obj.keys().find(|k| {
            !matches!(
                k.as_str(),
                "signing_keys" | "upload_token" | "gallery_token"
            )
        }) {
            return Err(format!(
                "the secret has an unknown field `{unknown}` (signing_keys, upload_token, \
                 gallery_token)"
            ));
        }
        let field = |name: &str| -> Result<Option<&str>, String> {
            match obj.get(name) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(format!("the secret's `{name}` must be a string")),
            }
        };
        Ok(Current {
            signing_keys: field("signing_keys")?
                .map(str::parse)
                .transpose()
                .map_err(|e| format!("the secret's signing_keys: {e}"))?,
            upload_token: field("upload_token")?
                .map(str::parse)
                .transpose()
                .map_err(|e| format!("the secret's upload_token: {e}"))?,
            gallery_token: field("gallery_token")?
                .map(str::parse)
                .transpose()
                .map_err(|e| format!("the secret's gallery_token: {e}"))?,
        })
    }
}

/// Where the extension is and who we are to it.
#[derive(Clone)]
pub struct Extension {
    pub port: u16,
    /// `AWS_SESSION_TOKEN` of the function: the extension's proof that the caller runs in
    /// this execution environment.
    pub session_token: String,
}

impl Extension {
    /// From the Lambda environment.
    pub fn from_env() -> Result<Extension, String> {
        let port = match std::env::var("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT") {
            Ok(p) => p
                .parse()
                .map_err(|_| format!("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT={p} is not a port"))?,
            Err(_) => EXTENSION_PORT,
        };
        let session_token = std::env::var("AWS_SESSION_TOKEN")
            .map_err(|_| "AWS_SESSION_TOKEN is not set: cannot ask the secrets extension")?;
        Ok(Extension {
            port,
            session_token,
        })
    }

    /// `GetSecretValue` through the extension: the secret's `SecretString`.
    pub async fn get(&self, secret_id: &str) -> Result<String, String> {
        tokio::time::timeout(READ_TIMEOUT, self.get_once(secret_id))
            .await
            .map_err(|_| format!("the secrets extension did not answer in {READ_TIMEOUT:?}"))?
    }

    async fn get_once(&self, secret_id: &str) -> Result<String, String> {
        let stream = tokio::net::TcpStream::connect(("localhost", self.port))
            .await
            .map_err(|e| format!("secrets extension on localhost:{}: {e}", self.port))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| format!("secrets extension: {e}"))?;
        let conn = tokio::spawn(conn);
        let id: String = form_urlencoded::byte_serialize(secret_id.as_bytes()).collect();
        let req = http::Request::get(format!("/secretsmanager/get?secretId={id}"))
            .header(http::header::HOST, format!("localhost:{}", self.port))
            .header("X-Aws-Parameters-Secrets-Token", &self.session_token)
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("secrets extension request: {e}"))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("secrets extension: {e}"))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("secrets extension body: {e}"))?
            .to_bytes();
        conn.abort();
        if !status.is_success() {
            // The extension's message names the problem (no such secret, access denied); it
            // never contains the secret.
            return Err(format!(
                "secrets extension answered {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            ));
        }
        let json: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| format!("secrets extension: the answer is not JSON: {e}"))?;
        json["SecretString"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| "the secret has no SecretString (binary secrets are not read)".into())
    }
}

/// A secret read through the extension, and when to read it again.
struct Remote {
    extension: Extension,
    secret_id: String,
    ttl: Duration,
    /// When the values in force were read (or a failed read was last tried).
    read_at: RwLock<Instant>,
    /// One re-read at a time.
    reading: tokio::sync::Mutex<()>,
}

/// The secrets in force, and (under Lambda) where they come from. Built once at start-up;
/// requests take a cheap snapshot with [`Secrets::current`].
pub struct Secrets {
    current: RwLock<Arc<Current>>,
    remote: Option<Remote>,
}

impl Secrets {
    /// Values given at start-up, never re-read.
    pub fn fixed(
        signing_keys: Option<SigningKeys>,
        upload_token: Option<UploadToken>,
        gallery_token: Option<ViewerToken>,
    ) -> Secrets {
        Secrets {
            current: RwLock::new(Arc::new(Current {
                signing_keys,
                upload_token,
                gallery_token,
            })),
            remote: None,
        }
    }

    /// Read `secret_id` through the extension now (cold start: a failure stops the start),
    /// and again whenever the values are older than `ttl`.
    pub async fn from_extension(
        extension: Extension,
        secret_id: String,
        ttl: Duration,
    ) -> Result<Secrets, String> {
        let current = Current::parse(&extension.get(&secret_id).await?)
            .map_err(|e| format!("secret {secret_id}: {e}"))?;
        Ok(Secrets {
            current: RwLock::new(Arc::new(current)),
            remote: Some(Remote {
                extension,
                secret_id,
                ttl,
                read_at: RwLock::new(Instant::now()),
                reading: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The values a request is checked against.
    pub fn current(&self) -> Arc<Current> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Read the secret again if it is older than its TTL (before an event is handled). A
    /// failure is logged and the last values stay in force.
    pub async fn refresh_if_stale(&self) {
        let Some(remote) = &self.remote else { return };
        let stale = |r: &Remote| {
            r.read_at
                .read()
                .map(|t| t.elapsed() >= r.ttl)
                .unwrap_or(true)
        };
        if !stale(remote) {
            return;
        }
        let _one = remote.reading.lock().await;
        if !stale(remote) {
            return;
        }
        let read = remote.extension.get(&remote.secret_id).await;
        let now = Instant::now();
        match read.and_then(|s| Current::parse(&s)) {
            Ok(fresh) => {
                if let Ok(mut c) = self.current.write() {
                    *c = Arc::new(fresh);
                }
                if let Ok(mut t) = remote.read_at.write() {
                    *t = now;
                }
                tracing::debug!(secret = %remote.secret_id, "secret re-read");
            }
            Err(e) => {
                tracing::error!(secret = %remote.secret_id, error = %e,
                    "re-reading the secret failed; the last values stay in force");
                // Try again soon, not on every event.
                if let Ok(mut t) = remote.read_at.write() {
                    *t = now
                        .checked_sub(remote.ttl.saturating_sub(RETRY_AFTER))
                        .unwrap_or(now);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_strings() {
        let c = Current::parse("k2:new-signing-secret-0001,k1:old-signing-secret-0001").unwrap();
        assert!(c.signing_keys.is_some() && c.upload_token.is_none());
        let c = Current::parse(
            r#"{"signing_keys": "k1:my-signing-secret-2026", "upload_token": "an-upload-token-0123"}"#,
        )
        .unwrap();
        assert!(c.signing_keys.is_some() && c.upload_token.is_some());
        // Empty or absent fields turn that feature off.
        let c = Current::parse(r#"{"signing_keys": "", "upload_token": "an-upload-token-0123"}"#)
            .unwrap();
        assert!(c.signing_keys.is_none() && c.upload_token.is_some());
        assert!(Current::parse("{}").unwrap().signing_keys.is_none());
        let c = Current::parse(r#"{"gallery_token": "a-viewer-token-0123"}"#).unwrap();
        assert!(c.gallery_token.is_some() && c.upload_token.is_none());
        for (bad, why) in [
            ("k1:short", "at least 16"),
            (r#"{"signing_keys": 5}"#, "must be a string"),
            (
                r#"{"signing_key": "k1:my-signing-secret-2026"}"#,
                "unknown field",
            ),
            (r#"{"upload_token": "short"}"#, "upload_token"),
            (r#"{"gallery_token": "short"}"#, "gallery_token"),
            ("{not json", "not JSON"),
        ] {
            let err = Current::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let c = Current::parse(
            r#"{"signing_keys": "k1:my-signing-secret-2026", "upload_token": "an-upload-token-0123",
                "gallery_token": "a-viewer-token-0123"}"#,
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("my-signing-secret") && !shown.contains("an-upload-token"));
        assert!(!shown.contains("a-viewer-token"), "{shown}");
    }
}
