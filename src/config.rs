//! Every setting of the service: its flag, its environment variable and its default.
//!
//! Parsed once at start-up by clap (flags win over environment variables), then turned into
//! the plain values the core uses. The README's configuration table mirrors this file.

use crate::pipeline::{EncodeOptions, Limits, Settings};
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

    /// Images processed at once (CPU-bound work); default: the number of CPUs.
    #[arg(long, env = "IMGFN_WORKERS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,

    /// AVIF encoder speed, 1 (smallest files) to 10 (fastest).
    #[arg(long, env = "IMGFN_AVIF_SPEED", default_value_t = DEFAULT_AVIF_SPEED,
          value_parser = clap::value_parser!(u8).range(1..=10))]
    pub avif_speed: u8,

    /// Log format: text or json.
    #[arg(long, env = "IMGFN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
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
            workers: None,
            avif_speed: DEFAULT_AVIF_SPEED,
            log_format: LogFormat::Text,
        }
    }

    /// What the synchronous pipeline needs.
    pub fn settings(&self) -> Settings {
        Settings {
            limits: Limits {
                max_source_pixels: self.max_source_pixels,
                max_output_side: self.max_output_side,
            },
            encode: EncodeOptions {
                avif_speed: self.avif_speed,
            },
        }
    }

    pub fn workers(&self) -> usize {
        self.workers.map(usize::from).unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        })
    }
}
