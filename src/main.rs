//! The `imgfn` command: `serve` (local HTTP server) and `transform` (one file).
// The AWS SDK's deeply nested futures exceed the default layout query depth.
#![recursion_limit = "256"]

use clap::{Parser, Subcommand};
use imgfn::config::{Config, LogFormat};
use imgfn::params::{FormatParam, OutputFormat, Params};
use imgfn::{app::AppState, pipeline, server, source};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "imgfn", version, about = "On-the-fly image resizing service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve images from a folder over HTTP (the local, AWS-free mode).
    Serve(Config),
    /// Run the pipeline on one local file.
    Transform(TransformArgs),
}

#[derive(clap::Args)]
struct TransformArgs {
    /// Input image file.
    input: PathBuf,
    /// Output file.
    #[arg(short, long)]
    output: PathBuf,
    /// Width in CSS pixels (1..=8192).
    #[arg(long)]
    w: Option<String>,
    /// Height in CSS pixels (1..=8192).
    #[arg(long)]
    h: Option<String>,
    /// Device pixel ratio (1..=4).
    #[arg(long)]
    dpr: Option<String>,
    /// cover, contain, scale-down, fill or pad.
    #[arg(long)]
    fit: Option<String>,
    /// Gravity for cover: center, top, ..., or X,Y.
    #[arg(long)]
    gravity: Option<String>,
    /// jpeg, png, webp, avif or gif (default: the input's format).
    #[arg(long)]
    fmt: Option<String>,
    /// Quality 1..=100 for lossy formats.
    #[arg(long)]
    q: Option<String>,
    /// Background colour RRGGBB or RRGGBBAA.
    #[arg(long)]
    bg: Option<String>,
    /// AVIF encoder speed 1..=10.
    #[arg(long, default_value_t = imgfn::config::DEFAULT_AVIF_SPEED)]
    avif_speed: u8,
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("IMGFN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.compact().init(),
    }
}

fn main() -> std::process::ExitCode {
    // Under Lambda the runtime starts us with no arguments: configuration is the environment.
    let result = if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        lambda()
    } else {
        match Cli::parse().command {
            Command::Serve(config) => serve(config),
            Command::Transform(args) => transform(args),
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("imgfn: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}

/// Cold start: config, tracing, the SDK client. Nothing else is done before the first event.
fn lambda() -> Result<(), String> {
    #[derive(Parser)]
    struct FromEnv {
        #[command(flatten)]
        config: Config,
    }
    let mut config = FromEnv::try_parse_from(["imgfn"])
        .map_err(|e| e.to_string())?
        .config;
    // CloudWatch Logs Insights wants JSON unless told otherwise.
    if std::env::var_os("IMGFN_LOG_FORMAT").is_none() {
        config.log_format = LogFormat::Json;
    }
    config.max_response_bytes = Some(config.lambda_response_budget());
    if config.bucket.is_none() {
        return Err("IMGFN_BUCKET must name the bucket of originals under Lambda".into());
    }
    init_tracing(config.log_format);
    runtime()?.block_on(async move {
        let source = source::from_config(&config).await?;
        let mode = config.invoke_mode;
        let state = Arc::new(AppState::new(config, source));
        imgfn::lambda::run(state, mode)
            .await
            .map_err(|e| e.to_string())
    })
}

fn serve(config: Config) -> Result<(), String> {
    init_tracing(config.log_format);
    runtime()?.block_on(async move {
        let source = source::from_config(&config).await?;
        let addr = config.addr;
        let origin = match &config.bucket {
            Some(b) => format!("s3://{b}/{}", config.prefix),
            None => config.root.display().to_string(),
        };
        let state = Arc::new(AppState::new(config, source));
        let (local, serving) = server::bind(state, addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        tracing::info!(addr = %local, origin, "imgfn listening on http://{local}/");
        tokio::select! {
            () = serving => {}
            _ = tokio::signal::ctrl_c() => tracing::info!("shutting down"),
        }
        Ok(())
    })
}

fn transform(a: TransformArgs) -> Result<(), String> {
    let pairs = [
        ("w", a.w),
        ("h", a.h),
        ("dpr", a.dpr),
        ("fit", a.fit),
        ("gravity", a.gravity),
        ("fmt", a.fmt),
        ("q", a.q),
        ("bg", a.bg),
    ];
    // The same parser as URLs: one definition of what is valid.
    let params = Params::from_pairs(
        pairs
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v))),
    )
    .map_err(|e| e.to_string())?;
    let bytes = std::fs::read(&a.input).map_err(|e| format!("{}: {e}", a.input.display()))?;
    let info = pipeline::probe(&bytes).map_err(|e| e.to_string())?;
    let format = match params.format {
        Some(FormatParam::Exact(f)) => f,
        Some(FormatParam::Json) => {
            println!("{}", pipeline::metadata_json(&info, bytes.len()));
            return Ok(());
        }
        Some(FormatParam::Auto) => OutputFormat::Webp,
        None => info.format.output(),
    };
    let settings = pipeline::Settings {
        encode: pipeline::EncodeOptions {
            avif_speed: a.avif_speed.clamp(1, 10),
        },
        ..Config::with_root(".").settings()
    };
    let mut resizer = fast_image_resize::Resizer::new();
    let out = pipeline::render(&bytes, &info, &params, format, &settings, &mut resizer)
        .map_err(|e| e.to_string())?;
    std::fs::write(&a.output, &out.bytes).map_err(|e| format!("{}: {e}", a.output.display()))?;
    eprintln!(
        "{} -> {}x{} {} ({} bytes; decode {:.1} ms, resize {:.1} ms, encode {:.1} ms)",
        a.input.display(),
        out.width,
        out.height,
        out.format.name(),
        out.bytes.len(),
        out.timings.decode.as_secs_f64() * 1e3,
        out.timings.resize.as_secs_f64() * 1e3,
        out.timings.encode.as_secs_f64() * 1e3,
    );
    Ok(())
}
