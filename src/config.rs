//! Every setting of the service: its flag, its environment variable and its default.
//!
//! Parsed once at start-up by clap (flags win over environment variables), then turned into
//! the plain values the core uses. The README's configuration table mirrors this file.

use crate::gallery::ViewerToken;
use crate::pipeline::{EncodeOptions, Limits, Settings};
use crate::policy::{Policy, Presets, SizePolicy};
use crate::signing::SigningKeys;
use crate::uploads::UploadToken;
use std::net::SocketAddr;
use std::path::PathBuf;

pub const DEFAULT_ROOT: &str = "testdata";
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_CACHE_MIB: u64 = 256;
pub const DEFAULT_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";
pub const DEFAULT_MAX_SOURCE_BYTES: u64 = 64 << 20;
pub const DEFAULT_MAX_SOURCE_PIXELS: u64 = 100_000_000;
pub const DEFAULT_MAX_OUTPUT_SIDE: u32 = 8192;
pub const DEFAULT_AVIF_SPEED: u8 = 8;
pub const DEFAULT_MAX_OUTPUT_PIXELS: u64 = 25_000_000;
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 32 << 20;
pub const DEFAULT_MEMORY_BUDGET_MIB: u64 = 768;
pub const DEFAULT_MAX_AVIF_PIXELS: u64 = 4_000_000;
pub const DEFAULT_MAX_FRAMES: u32 = 300;
pub const DEFAULT_MAX_ANIMATION_PIXELS: u64 = 100_000_000;
pub const DEFAULT_HEADER_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_BODY_TIMEOUT_MS: u64 = 60_000;
pub const DEFAULT_MAX_CONNECTIONS: u32 = 1024;
pub const DEFAULT_GALLERY_LINK_SECS: u64 = 86_400;
pub const DEFAULT_NOT_FOUND_TTL_SECS: u64 = 10;
pub const DEFAULT_QUEUE_TIMEOUT_MS: u64 = 3000;
pub const DEFAULT_S3_TIMEOUT_MS: u64 = 5000;
pub const DEFAULT_REVALIDATE_SECS: u64 = 10;
pub const DEFAULT_RENDITIONS_PREFIX: &str = "_renditions/";
pub const DEFAULT_UPLOAD_PREFIX: &str = "uploads/";
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 5 << 30;
/// Uploads larger than this go in parts (`uploads::multipart`).
pub const DEFAULT_MULTIPART_THRESHOLD_BYTES: u64 = 16 << 20;
/// The smallest part of an upload in parts (grown for very large files: at most 10,000 parts).
pub const DEFAULT_MULTIPART_PART_BYTES: u64 = 8 << 20;
/// The largest upload body (one PUT or one part) a local folder takes: see
/// [`Config::check_folder_uploads`].
pub const MAX_FOLDER_UPLOAD_BODY: u64 = 64 << 20;
pub const DEFAULT_UPLOAD_EXPIRY_SECS: u64 = 300;
pub const DEFAULT_SECRETS_TTL_SECS: u64 = 300;
/// Lambda's buffered responses are at most 6 MB *after* base64 (4/3) and the JSON envelope.
pub const BUFFERED_RESPONSE_BUDGET: u64 = 4_400_000;
/// Lambda's streamed responses: 20 MiB is the default maximum of a streamed response.
pub const STREAM_RESPONSE_BUDGET: u64 = 20 << 20;

/// How the Function URL returns responses (must match `InvokeMode` in template.yaml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InvokeMode {
    /// Raw bytes streamed after a metadata prelude: no base64, up to 20 MiB by default.
    ResponseStream,
    /// One JSON document with a base64 body (`isBase64Encoded`): at most 6 MB.
    Buffered,
}

/// Per-request metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MetricsFormat {
    /// None.
    None,
    /// CloudWatch Embedded Metric Format lines on stdout (`metrics.rs`).
    Emf,
}

/// Who may see the gallery (`IMGFN_GALLERY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GalleryMode {
    /// The page and the listing need no token (uploads still need the upload token).
    Public,
    /// The listing needs the viewer token (`IMGFN_GALLERY_TOKEN`) or the upload token; the
    /// page itself (static, no data) loads and asks for one.
    Private,
    /// No gallery routes: `/_/gallery*` is a 404.
    Off,
}

impl std::str::FromStr for GalleryMode {
    type Err = String;

    /// `public`, `private` or `off`; `true` and `false` (the setting's earlier boolean form)
    /// mean `public` and `off`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "public" | "true" => Ok(GalleryMode::Public),
            "private" => Ok(GalleryMode::Private),
            "off" | "false" => Ok(GalleryMode::Off),
            other => Err(format!(
                "`{other}` is not a gallery mode: public, private or off"
            )),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (CloudWatch Logs Insights).
    Json,
}

/// Settings of the HTTP service (local server and Lambda alike).
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Folder of originals served by the local server.
    #[arg(long, env = "IMGFN_ROOT", default_value = DEFAULT_ROOT)]
    pub root: PathBuf,

    /// Address the local server listens on.
    #[arg(long, env = "IMGFN_ADDR", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,

    /// Warm cache capacity in MiB (source bytes and rendered outputs).
    #[arg(long, env = "IMGFN_CACHE_MIB", default_value_t = DEFAULT_CACHE_MIB)]
    pub cache_mib: u64,

    /// `Cache-Control` header of successful image responses.
    #[arg(long, env = "IMGFN_CACHE_CONTROL", default_value = DEFAULT_CACHE_CONTROL)]
    pub cache_control: String,

    /// Largest original in bytes; larger ones are refused before they are read.
    #[arg(long, env = "IMGFN_MAX_SOURCE_BYTES", default_value_t = DEFAULT_MAX_SOURCE_BYTES)]
    pub max_source_bytes: u64,

    /// Largest original in pixels, read from the header before decoding.
    #[arg(long, env = "IMGFN_MAX_SOURCE_PIXELS", default_value_t = DEFAULT_MAX_SOURCE_PIXELS)]
    pub max_source_pixels: u64,

    /// Largest output width or height in pixels (after `dpr`).
    #[arg(long, env = "IMGFN_MAX_OUTPUT_SIDE", default_value_t = DEFAULT_MAX_OUTPUT_SIDE,
          value_parser = clap::value_parser!(u32).range(1..=16383))]
    pub max_output_side: u32,

    /// Largest output in pixels (width x height, after `dpr`), checked before decoding.
    #[arg(long, env = "IMGFN_MAX_OUTPUT_PIXELS", default_value_t = DEFAULT_MAX_OUTPUT_PIXELS)]
    pub max_output_pixels: u64,

    /// Largest encoded output in bytes.
    #[arg(long, env = "IMGFN_MAX_OUTPUT_BYTES", default_value_t = DEFAULT_MAX_OUTPUT_BYTES)]
    pub max_output_bytes: u64,

    /// Memory (MiB) that renders may hold at once, each weighed from its header and plan
    /// before it starts (decode, resize, encode); the excess waits, then gets a 503. A single
    /// render that needs more is refused with a 422.
    #[arg(long, env = "IMGFN_MEMORY_BUDGET_MIB", default_value_t = DEFAULT_MEMORY_BUDGET_MIB,
          value_parser = clap::value_parser!(u64).range(16..=1_048_576))]
    pub memory_budget_mib: u64,

    /// Largest AVIF output in pixels (AVIF encoding costs about 1 us per pixel).
    #[arg(long, env = "IMGFN_MAX_AVIF_PIXELS", default_value_t = DEFAULT_MAX_AVIF_PIXELS)]
    pub max_avif_pixels: u64,

    /// Most frames of an animation that stays animated; more is a 422 (or its first frame
    /// with `anim=0`). Checked from the header, before decoding.
    #[arg(long, env = "IMGFN_MAX_FRAMES", default_value_t = DEFAULT_MAX_FRAMES)]
    pub max_frames: u32,

    /// Most pixels an animation may compose or encode over all its frames (frames x canvas,
    /// frames x output); more is a 422 (or its first frame with `anim=0`).
    #[arg(long, env = "IMGFN_MAX_ANIMATION_PIXELS", default_value_t = DEFAULT_MAX_ANIMATION_PIXELS)]
    pub max_animation_pixels: u64,

    /// How long a request may wait for the pixel budget before a 503 with Retry-After.
    #[arg(long, env = "IMGFN_QUEUE_TIMEOUT_MS", default_value_t = DEFAULT_QUEUE_TIMEOUT_MS)]
    pub queue_timeout_ms: u64,

    /// Signing keys `id:secret[,id:secret...]`: when set, every request needs a valid `sig`.
    #[arg(long, env = "IMGFN_SIGNING_KEYS", hide_env_values = true)]
    pub signing_keys: Option<SigningKeys>,

    /// Allowed `w`/`h` values, e.g. `64,128,256,512,1024,2048`; empty allows all.
    #[arg(long, env = "IMGFN_ALLOWED_SIZES", value_delimiter = ',')]
    pub allowed_sizes: Vec<u32>,

    /// What a size off the ladder gets: `snap` (up to the next rung) or `refuse`.
    #[arg(long, env = "IMGFN_SIZE_POLICY", value_enum, default_value_t = SizePolicy::Snap)]
    pub size_policy: SizePolicy,

    /// Allowed `fmt` values, e.g. `webp,avif,jpeg,auto`; empty allows all.
    #[arg(long, env = "IMGFN_ALLOWED_FORMATS", value_delimiter = ',')]
    pub allowed_formats: Vec<String>,

    /// `bg` colours allowed under a size ladder (`RRGGBB[AA]`, comma-separated); with a
    /// ladder and no list, `bg` is refused.
    #[arg(long, env = "IMGFN_ALLOWED_BACKGROUNDS", value_delimiter = ',')]
    pub allowed_backgrounds: Vec<crate::params::Rgba>,

    /// Highest `q`; higher requests are lowered to it.
    #[arg(long, env = "IMGFN_MAX_QUALITY", value_parser = clap::value_parser!(u8).range(1..=100))]
    pub max_quality: Option<u8>,

    /// Named parameter sets `name=query[,name=query...]`, e.g.
    /// `thumb=w=200&h=200&fit=cover&fmt=auto,hero=w=1600&q=70`; `?preset=thumb` asks for one.
    /// Each query is checked at startup by the URL's parser (a bad one stops the start).
    #[arg(long, env = "IMGFN_PRESETS")]
    pub presets: Option<Presets>,

    /// Refuse every transformation but `preset=NAME` (with `download`); originals stay.
    #[arg(long, env = "IMGFN_ONLY_PRESETS", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub only_presets: bool,

    /// Images processed at once (CPU-bound work); default: the number of CPUs.
    #[arg(long, env = "IMGFN_WORKERS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,

    /// How far a JPEG's shrink-on-load (DCT-scaled decode) may go before the Lanczos3 resize:
    /// `fast` (the smallest scale that covers the output), `balanced` (sharp's rule: 1/d when
    /// the reduction is at least d + 1) or `faithful` (1.5x left to Lanczos3: slower, closest
    /// to a full-resolution resize).
    #[arg(long, env = "IMGFN_SHRINK", default_value = "balanced")]
    pub shrink: crate::pipeline::decode::Shrink,

    /// AVIF encoder speed, 1 (smallest files) to 10 (fastest).
    #[arg(long, env = "IMGFN_AVIF_SPEED", default_value_t = DEFAULT_AVIF_SPEED,
          value_parser = clap::value_parser!(u8).range(1..=10))]
    pub avif_speed: u8,

    /// S3 bucket of originals; when set, originals come from S3 instead of `--root`.
    #[arg(long, env = "IMGFN_BUCKET")]
    pub bucket: Option<String>,

    /// Key prefix of originals in the bucket (e.g. `originals/`).
    #[arg(long, env = "IMGFN_PREFIX", default_value = "")]
    pub prefix: String,

    /// Key prefix where outputs above the response budget are stored for a redirect.
    #[arg(long, env = "IMGFN_RENDITIONS_PREFIX", default_value = DEFAULT_RENDITIONS_PREFIX)]
    pub renditions_prefix: String,

    /// Use path-style S3 URLs (`http://host/bucket/key`), for S3-compatible servers.
    #[arg(long, env = "IMGFN_S3_PATH_STYLE", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub s3_path_style: bool,

    /// Timeout of every S3 call, body included, in milliseconds.
    #[arg(long, env = "IMGFN_S3_TIMEOUT_MS", default_value_t = DEFAULT_S3_TIMEOUT_MS)]
    pub s3_timeout_ms: u64,

    /// How long a known S3 object version (ETag) is trusted before it is checked again.
    #[arg(long, env = "IMGFN_REVALIDATE_SECS", default_value_t = DEFAULT_REVALIDATE_SECS)]
    pub revalidate_secs: u64,

    /// Public origin of this service (`https://img.example.com`), used for the URLs it hands
    /// out (local upload URLs). Never taken from request headers. Default: the listen
    /// address, `http://<addr>`.
    #[arg(long, env = "IMGFN_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// How long a gallery listing's signed thumbnail URLs stay valid, in seconds (rounded
    /// so that listings within half that time hand out the same URLs).
    #[arg(long, env = "IMGFN_GALLERY_LINK_SECS", default_value_t = DEFAULT_GALLERY_LINK_SECS,
          value_parser = clap::value_parser!(u64).range(60..=31_536_000))]
    pub gallery_link_secs: u64,

    /// How long a missing original is remembered as missing (seconds; 0: not at all), so a
    /// flood of requests for absent keys does not cost one store call each.
    #[arg(long, env = "IMGFN_NOT_FOUND_TTL_SECS", default_value_t = DEFAULT_NOT_FOUND_TTL_SECS)]
    pub not_found_ttl_secs: u64,

    /// Local server: time a client has to send a request's head (slowloris), in ms. It also
    /// bounds an idle keep-alive connection: the clock starts as soon as the connection
    /// waits for its next request.
    #[arg(long, env = "IMGFN_HEADER_TIMEOUT_MS", default_value_t = DEFAULT_HEADER_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(100..))]
    pub header_timeout_ms: u64,

    /// Local server: time a client has to send a request's body, in ms.
    #[arg(long, env = "IMGFN_BODY_TIMEOUT_MS", default_value_t = DEFAULT_BODY_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(100..))]
    pub body_timeout_ms: u64,

    /// Local server: connections open at once (lowered to fit the process's descriptor
    /// limit); further clients wait in the listen backlog.
    #[arg(long, env = "IMGFN_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Bearer token for `POST /_/uploads`; uploads are off without it. It also opens a
    /// private gallery.
    #[arg(long, env = "IMGFN_UPLOAD_TOKEN", hide_env_values = true)]
    pub upload_token: Option<UploadToken>,

    /// Bearer token that opens a private gallery's listing (`IMGFN_GALLERY=private`) without
    /// allowing uploads; same rules as the upload token (16+ printable characters).
    #[arg(long, env = "IMGFN_GALLERY_TOKEN", hide_env_values = true)]
    pub gallery_token: Option<ViewerToken>,

    /// Lambda only: the Secrets Manager secret (ARN or name) holding the signing keys and the
    /// upload token, read through AWS's Parameters and Secrets extension (`secrets.rs`), in
    /// place of IMGFN_SIGNING_KEYS and IMGFN_UPLOAD_TOKEN.
    #[arg(long, env = "IMGFN_SECRETS_ID")]
    pub secrets_id: Option<String>,

    /// How long the secret's values are used before it is read again (a rotated key reaches
    /// a warm instance within this time), in seconds.
    #[arg(long, env = "IMGFN_SECRETS_TTL_SECS", default_value_t = DEFAULT_SECRETS_TTL_SECS,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub secrets_ttl_secs: u64,

    /// Key prefix under which uploads are stored (`<prefix>YYYY/MM/<uuid>.<ext>`).
    #[arg(long, env = "IMGFN_UPLOAD_PREFIX", default_value = DEFAULT_UPLOAD_PREFIX)]
    pub upload_prefix: String,

    /// Largest upload in bytes (at most S3's 5 TiB); larger requests get a 413 before any
    /// URL is signed.
    #[arg(long, env = "IMGFN_MAX_UPLOAD_BYTES", default_value_t = DEFAULT_MAX_UPLOAD_BYTES,
          value_parser = clap::value_parser!(u64).range(1..=(5_u64 << 40)))]
    pub max_upload_bytes: u64,

    /// Uploads larger than this many bytes go in parts (at most S3's 5 GiB for one PUT).
    #[arg(long, env = "IMGFN_MULTIPART_THRESHOLD_BYTES",
          default_value_t = DEFAULT_MULTIPART_THRESHOLD_BYTES,
          value_parser = clap::value_parser!(u64).range(1..=(5_u64 << 30)))]
    pub multipart_threshold_bytes: u64,

    /// The smallest part of an upload in parts, in bytes (S3: at least 5 MiB, at most
    /// 5 GiB); grown for very large files so that there are at most 10,000 parts.
    #[arg(long, env = "IMGFN_MULTIPART_PART_BYTES", default_value_t = DEFAULT_MULTIPART_PART_BYTES,
          value_parser = clap::value_parser!(u64).range((5_u64 << 20)..=(5_u64 << 30)))]
    pub multipart_part_bytes: u64,

    /// How long an upload URL stays valid, in seconds.
    #[arg(long, env = "IMGFN_UPLOAD_EXPIRY_SECS", default_value_t = DEFAULT_UPLOAD_EXPIRY_SECS,
          value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub upload_expiry_secs: u64,

    /// Who may see the gallery (`/_/gallery`, `/_/gallery.json`): `public` (no token),
    /// `private` (the listing needs IMGFN_GALLERY_TOKEN or IMGFN_UPLOAD_TOKEN) or `off`
    /// (`true` and `false` are accepted for `public` and `off`). Default: public for a local
    /// folder, off for a bucket (listing a bucket is opt-in).
    #[arg(long, env = "IMGFN_GALLERY", num_args = 0..=1, default_missing_value = "public")]
    pub gallery: Option<GalleryMode>,

    /// Function URL invoke mode (Lambda only).
    #[arg(long, env = "IMGFN_INVOKE_MODE", value_enum, default_value_t = InvokeMode::ResponseStream)]
    pub invoke_mode: InvokeMode,

    /// Largest response body sent directly; a larger one is answered with a 302 to a presigned
    /// S3 GET (S3 source only). Default: none locally; under Lambda, what the invoke mode allows.
    #[arg(long, env = "IMGFN_MAX_RESPONSE_BYTES")]
    pub max_response_bytes: Option<u64>,

    /// Log format: text or json.
    #[arg(long, env = "IMGFN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Per-request metrics: none, or emf (CloudWatch Embedded Metric Format on stdout; the
    /// default under Lambda).
    #[arg(long, env = "IMGFN_METRICS", value_enum, default_value_t = MetricsFormat::None)]
    pub metrics: MetricsFormat,
}

impl Config {
    /// The defaults, serving `root` (what tests and embedders start from).
    pub fn with_root(root: impl Into<PathBuf>) -> Config {
        Config {
            root: root.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            cache_mib: DEFAULT_CACHE_MIB,
            cache_control: DEFAULT_CACHE_CONTROL.into(),
            max_source_bytes: DEFAULT_MAX_SOURCE_BYTES,
            max_source_pixels: DEFAULT_MAX_SOURCE_PIXELS,
            max_output_side: DEFAULT_MAX_OUTPUT_SIDE,
            max_output_pixels: DEFAULT_MAX_OUTPUT_PIXELS,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            memory_budget_mib: DEFAULT_MEMORY_BUDGET_MIB,
            max_avif_pixels: DEFAULT_MAX_AVIF_PIXELS,
            max_frames: DEFAULT_MAX_FRAMES,
            max_animation_pixels: DEFAULT_MAX_ANIMATION_PIXELS,
            shrink: crate::pipeline::decode::Shrink::default(),
            allowed_backgrounds: Vec::new(),
            public_url: None,
            gallery_link_secs: DEFAULT_GALLERY_LINK_SECS,
            not_found_ttl_secs: DEFAULT_NOT_FOUND_TTL_SECS,
            header_timeout_ms: DEFAULT_HEADER_TIMEOUT_MS,
            body_timeout_ms: DEFAULT_BODY_TIMEOUT_MS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            queue_timeout_ms: DEFAULT_QUEUE_TIMEOUT_MS,
            signing_keys: None,
            allowed_sizes: Vec::new(),
            size_policy: SizePolicy::Snap,
            allowed_formats: Vec::new(),
            max_quality: None,
            presets: None,
            only_presets: false,
            workers: None,
            avif_speed: DEFAULT_AVIF_SPEED,
            bucket: None,
            prefix: String::new(),
            renditions_prefix: DEFAULT_RENDITIONS_PREFIX.into(),
            s3_path_style: false,
            s3_timeout_ms: DEFAULT_S3_TIMEOUT_MS,
            revalidate_secs: DEFAULT_REVALIDATE_SECS,
            upload_token: None,
            gallery_token: None,
            secrets_id: None,
            secrets_ttl_secs: DEFAULT_SECRETS_TTL_SECS,
            upload_prefix: DEFAULT_UPLOAD_PREFIX.into(),
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            multipart_threshold_bytes: DEFAULT_MULTIPART_THRESHOLD_BYTES,
            multipart_part_bytes: DEFAULT_MULTIPART_PART_BYTES,
            upload_expiry_secs: DEFAULT_UPLOAD_EXPIRY_SECS,
            gallery: None,
            invoke_mode: InvokeMode::ResponseStream,
            max_response_bytes: None,
            log_format: LogFormat::Text,
            metrics: MetricsFormat::None,
        }
    }

    /// What the synchronous pipeline needs.
    pub fn settings(&self) -> Settings {
        Settings {
            limits: Limits {
                max_source_pixels: self.max_source_pixels,
                max_output_side: self.max_output_side,
                max_output_pixels: self.max_output_pixels,
                max_output_bytes: self.max_output_bytes,
                max_avif_pixels: self.max_avif_pixels,
                max_frames: self.max_frames,
                max_animation_pixels: self.max_animation_pixels,
                max_render_bytes: self.memory_budget_mib << 20,
                shrink: self.shrink,
            },
            encode: EncodeOptions {
                avif_speed: self.avif_speed,
            },
            force_libjpeg: false,
            force_rgb: false,
        }
    }

    /// The allow-lists, as the pure policy the handler applies.
    pub fn policy(&self) -> Policy {
        Policy::new(
            self.allowed_sizes.clone(),
            self.size_policy,
            self.allowed_formats.clone(),
            self.max_quality,
        )
        .with_backgrounds(self.allowed_backgrounds.clone())
        .with_presets(self.presets.clone().unwrap_or_default(), self.only_presets)
    }

    /// The response budget under Lambda: the explicit setting, or what the invoke mode allows.
    pub fn lambda_response_budget(&self) -> u64 {
        self.max_response_bytes.unwrap_or(match self.invoke_mode {
            InvokeMode::ResponseStream => STREAM_RESPONSE_BUDGET,
            InvokeMode::Buffered => BUFFERED_RESPONSE_BUDGET,
        })
    }

    /// Refuse upload settings a folder cannot take: its uploads pass through imgfn, whose
    /// local server holds a request's body whole before answering, so one PUT (up to the
    /// multipart threshold) and one part (the part size, grown for 10,000 parts of the
    /// largest upload) must each stay under [`MAX_FOLDER_UPLOAD_BODY`]. A bucket takes
    /// uploads straight from the client.
    pub fn check_folder_uploads(&self) -> std::result::Result<(), String> {
        if self.bucket.is_some() {
            return Ok(());
        }
        let largest_part = self
            .multipart_part_bytes
            .max(self.max_upload_bytes.div_ceil(10_000).div_ceil(1 << 20) << 20);
        let mib = MAX_FOLDER_UPLOAD_BODY >> 20;
        if self.multipart_threshold_bytes > MAX_FOLDER_UPLOAD_BODY {
            return Err(format!(
                "IMGFN_MULTIPART_THRESHOLD_BYTES: a folder takes uploads in bodies of at most \
                 {mib} MiB (the local server holds each whole); use a lower threshold"
            ));
        }
        if largest_part > MAX_FOLDER_UPLOAD_BODY {
            return Err(format!(
                "IMGFN_MULTIPART_PART_BYTES / IMGFN_MAX_UPLOAD_BYTES: parts of up to {} MiB, \
                 over the {mib} MiB a folder takes in one body (at most 10,000 parts of \
                 {mib} MiB: IMGFN_MAX_UPLOAD_BYTES up to {} GiB)",
                largest_part >> 20,
                (10_000 * MAX_FOLDER_UPLOAD_BODY) >> 30
            ));
        }
        Ok(())
    }

    /// Who may see the gallery: the setting, else public for a local folder and off for a
    /// bucket.
    pub fn gallery_mode(&self) -> GalleryMode {
        self.gallery.unwrap_or(match self.bucket {
            None => GalleryMode::Public,
            Some(_) => GalleryMode::Off,
        })
    }

    /// Whether the gallery routes are served (see `gallery`).
    pub fn gallery_enabled(&self) -> bool {
        self.gallery_mode() != GalleryMode::Off
    }

    pub fn workers(&self) -> usize {
        self.workers.map(usize::from).unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    fn presets(value: &str) -> std::result::Result<Policy, String> {
        Cli::try_parse_from(["imgfn", "--presets", value])
            .map(|cli| cli.config.policy())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn presets_parse_at_startup() {
        let p = presets("thumb=w=200&h=200&fit=cover&fmt=auto, hero=w=1600&q=70").unwrap();
        assert_eq!(p.presets.names(), ["thumb", "hero"]);
        let thumb = p.presets.get("thumb").unwrap();
        assert_eq!(thumb.to_string(), "w=200&h=200&fit=cover&fmt=auto");
        // A comma inside a value continues the query it belongs to.
        let p = presets("focus=w=100&gravity=0.25,0.75,b=h=5").unwrap();
        assert_eq!(p.presets.names(), ["focus", "b"]);
        assert_eq!(
            p.presets.get("focus").unwrap().to_string(),
            "w=100&gravity=0.25,0.75"
        );
        assert!(!p.only_presets);
        let only = Cli::try_parse_from(["imgfn", "--only-presets"]).unwrap();
        assert!(only.config.policy().only_presets);
    }

    #[test]
    fn a_folder_refuses_upload_bodies_it_would_hold_whole_over_64_mib() {
        let check = |args: &[&str]| {
            Cli::try_parse_from([&["imgfn"][..], args].concat())
                .unwrap()
                .config
                .check_folder_uploads()
        };
        assert_eq!(check(&[]), Ok(()), "the defaults");
        assert_eq!(check(&["--multipart-threshold-bytes", "67108864"]), Ok(()));
        let err = check(&["--multipart-threshold-bytes", "67108865"]).unwrap_err();
        assert!(err.contains("IMGFN_MULTIPART_THRESHOLD_BYTES"), "{err}");
        assert!(check(&["--multipart-part-bytes", "134217728"]).is_err());
        // 5 TiB in 10,000 parts is 525 MiB a part; 625 GiB is the most a folder takes.
        let err = check(&["--max-upload-bytes", "5497558138880"]).unwrap_err();
        assert!(err.contains("525 MiB"), "{err}");
        assert_eq!(check(&["--max-upload-bytes", "671088640000"]), Ok(()));
        // A bucket takes uploads straight from the client: anything S3 allows.
        let bucket = ["--bucket", "b", "--max-upload-bytes", "5497558138880"];
        assert_eq!(check(&bucket), Ok(()));
    }

    #[test]
    fn gallery_modes_and_their_defaults() {
        let mode = |args: &[&str]| {
            Cli::try_parse_from([&["imgfn"][..], args].concat())
                .map(|cli| cli.config.gallery_mode())
                .map_err(|e| e.to_string())
        };
        use GalleryMode::*;
        for (args, expected) in [
            (&[][..], Public),
            (&["--bucket", "b"][..], Off),
            (&["--gallery", "public"][..], Public),
            (&["--gallery", "PRIVATE"][..], Private),
            (&["--gallery", "off"][..], Off),
            // The earlier boolean form, kept as aliases.
            (&["--gallery", "true"][..], Public),
            (&["--gallery", "false"][..], Off),
            (&["--gallery"][..], Public),
            (&["--bucket", "b", "--gallery", "private"][..], Private),
            (&["--bucket", "b", "--gallery=true"][..], Public),
        ] {
            assert_eq!(mode(args), Ok(expected), "{args:?}");
        }
        let err = mode(&["--gallery", "yes"]).unwrap_err();
        assert!(err.contains("public, private or off"), "{err}");
        // Off serves no gallery routes; the others do.
        let mut config = Config::with_root("x");
        for (m, on) in [(Public, true), (Private, true), (Off, false)] {
            config.gallery = Some(m);
            assert_eq!(config.gallery_enabled(), on, "{m:?}");
        }
    }

    #[test]
    fn the_viewer_token_is_checked_and_never_shown() {
        let cli = Cli::try_parse_from(["imgfn", "--gallery-token", "a-viewer-token-0123"]).unwrap();
        let shown = format!("{:?}", cli.config);
        assert!(!shown.contains("a-viewer-token"), "{shown}");
        let token = cli.config.gallery_token.unwrap();
        assert!(token.check(Some("Bearer a-viewer-token-0123")).is_ok());
        assert_eq!(
            token
                .check(Some("Bearer a-viewer-token-0124"))
                .unwrap_err()
                .status(),
            401
        );
        let err = Cli::try_parse_from(["imgfn", "--gallery-token", "short"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("gallery token must be at least 16"), "{err}");
    }

    #[test]
    fn a_bad_preset_fails_naming_it() {
        for (value, named) in [
            ("thumb=w=200,hero=w=0", "preset `hero`"),
            ("thumb=w=200,hero=zoom=2", "preset `hero`"),
            ("thumb=w=1,thumb=w=2", "preset `thumb` is defined twice"),
            ("a=preset=b", "preset `a`"),
            ("Big=w=1", "`Big=w=1` is not `name=query`"),
        ] {
            let err = presets(value).unwrap_err();
            assert!(err.contains(named), "{value}: {err}");
        }
    }
}
