//! `AppState`: everything built once at start-up and borrowed by every request (source,
//! caches, policy, the render budget and the Resizer pool), with the admission of renders.

use crate::cache::Cache;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::gallery;
use crate::pipeline::Settings;
use crate::policy::Policy;
use crate::secrets::Secrets;
use crate::source::{Source, SourceSpec};
use fast_image_resize::Resizer;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Everything built once at start-up and borrowed by every request.
pub struct AppState {
    pub config: Config,
    pub(crate) source: Source,
    pub(crate) cache: Cache,
    pub(crate) settings: Settings,
    /// Bounds CPU-heavy renders to the number of workers; the rest wait their turn. Its
    /// permits move into the blocking render and are released when the render ends.
    cpu: Arc<Semaphore>,
    /// Resizers keep their scratch buffers between requests.
    resizers: Mutex<Vec<Resizer>>,
    /// Bodies above this many bytes are redirected to a presigned S3 GET (S3 source only).
    response_budget: Option<u64>,
    /// Allow-lists applied to every parsed request.
    pub(crate) policy: Policy,
    /// MiB that renders may hold at once, each weighed before it starts (`pipeline::prepare`);
    /// requests beyond it queue, then get a 503. Owned by the render, like `cpu`.
    memory: Arc<Semaphore>,
    /// Gallery dimensions by key and version (header reads, never pixels).
    pub(crate) dims: gallery::DimsCache,
    /// What gallery thumbnail URLs may ask for under the allow-lists.
    pub(crate) thumbs: gallery::ThumbPolicy,
    /// The local server's bound address (port 0 resolved), for URLs back to ourselves when
    /// `IMGFN_PUBLIC_URL` is not set.
    bound: std::sync::OnceLock<std::net::SocketAddr>,
    /// Signing keys and upload token in force: the configuration's, or (under Lambda) a
    /// secret's, re-read after its TTL. Requests read them here, never from `config`.
    pub secrets: Secrets,
}

/// The permits a render holds while it runs: one worker and its weight in MiB of the memory
/// budget. They belong to the render (moved into its blocking task), not to the request.
pub(crate) struct Admission {
    _cpu: OwnedSemaphorePermit,
    _memory: OwnedSemaphorePermit,
}

impl AppState {
    pub fn new(config: Config, source: Source) -> AppState {
        let policy = config.policy();
        AppState {
            cache: Cache::new(config.cache_mib.saturating_mul(1 << 20)),
            settings: config.settings(),
            cpu: Arc::new(Semaphore::new(config.workers())),
            resizers: Mutex::new(Vec::new()),
            response_budget: config.max_response_bytes,
            thumbs: gallery::ThumbPolicy::from_policy(&policy),
            policy,
            memory: Arc::new(Semaphore::new(
                usize::try_from(config.memory_budget_mib).unwrap_or(usize::MAX),
            )),
            dims: gallery::dims_cache(),
            bound: std::sync::OnceLock::new(),
            secrets: Secrets::fixed(
                config.signing_keys.clone(),
                config.upload_token.clone(),
                config.gallery_token.clone(),
            ),
            source,
            config,
        }
    }

    /// The same state with its secrets read elsewhere (Lambda: Secrets Manager).
    pub fn with_secrets(mut self, secrets: Secrets) -> AppState {
        self.secrets = secrets;
        self
    }

    /// Record the address the local server bound (once).
    pub fn set_bound_addr(&self, addr: std::net::SocketAddr) {
        let _ = self.bound.set(addr);
    }

    /// The origin of URLs this service hands out: `IMGFN_PUBLIC_URL`, else the address the
    /// local server listens on. Never a request's `Host` or `X-Forwarded-*` headers, which
    /// the client chooses.
    pub fn public_origin(&self) -> String {
        match (&self.config.public_url, self.bound.get()) {
            (Some(url), _) => url.trim_end_matches('/').to_string(),
            (None, Some(addr)) => format!("http://{addr}"),
            (None, None) => format!("http://{}", self.config.addr),
        }
    }

    /// The source to redirect the client to when `len` bytes are too many to answer
    /// directly (over `IMGFN_MAX_RESPONSE_BYTES`, and the source can redirect).
    pub(crate) fn offload_target(&self, len: u64) -> Option<&Source> {
        let budget = self.response_budget?;
        (len > budget && self.source.redirects()).then_some(&self.source)
    }

    /// Admit a render weighing `memory_bytes`: its share of the memory budget (waiting at
    /// most `IMGFN_QUEUE_TIMEOUT_MS`, then 503), then a worker.
    pub(crate) async fn admit(&self, memory_bytes: u64) -> Result<Admission> {
        let timeout = Duration::from_millis(self.config.queue_timeout_ms);
        let waiting = std::time::Instant::now();
        // Owned permits: they move into the blocking task and are released when the render
        // ends, not when the request's future is dropped (a client that hangs up frees
        // nothing early).
        let memory = tokio::time::timeout(
            timeout,
            self.memory
                .clone()
                .acquire_many_owned(mebibytes(memory_bytes)),
        )
        .await
        .map_err(|_| {
            Error::Overloaded(format!(
                "too many large images are being processed; waited {} ms",
                self.config.queue_timeout_ms
            ))
        })?
        .map_err(|_| Error::Internal("memory budget closed".into()))?;
        let cpu = self
            .cpu
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("worker pool closed".into()))?;
        crate::metrics::note_admission_wait(waiting.elapsed());
        Ok(Admission {
            _cpu: cpu,
            _memory: memory,
        })
    }

    pub(crate) fn take_resizer(&self) -> Resizer {
        self.resizers
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .unwrap_or_default()
    }

    pub(crate) fn return_resizer(&self, r: Resizer) {
        if let Ok(mut pool) = self.resizers.lock() {
            pool.push(r);
        }
    }
}

/// The source `config` names: its bucket when one is set, else its folder. `main` opens it
/// with `Source::open`; the source module itself knows no configuration.
pub fn source_spec(config: &Config) -> SourceSpec {
    match &config.bucket {
        Some(bucket) => SourceSpec::S3 {
            bucket: bucket.clone(),
            prefix: config.prefix.clone(),
            renditions_prefix: config.renditions_prefix.clone(),
            path_style: config.s3_path_style,
            timeout: Duration::from_millis(config.s3_timeout_ms.max(1)),
            revalidate: Duration::from_secs(config.revalidate_secs),
            not_found_ttl: Duration::from_secs(config.not_found_ttl_secs),
        },
        None => SourceSpec::Folder {
            root: config.root.clone(),
        },
    }
}

/// Bytes in whole MiB, rounded up (the unit of the memory budget).
fn mebibytes(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1 << 20).max(1)).unwrap_or(u32::MAX)
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
