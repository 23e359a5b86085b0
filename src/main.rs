//! The `imgfn` command: `serve` (local HTTP server) and `transform` (one file).
// The AWS SDK's deeply nested futures exceed the default layout query depth.
#![recursion_limit = "256"]

use clap::{Parser, Subcommand};
use imgfn::config::{Config, LogFormat};
use imgfn::params::{ImageRequest, Mode, TABLE};
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
    Serve(Box<Config>),
    /// Run the pipeline on one local file.
    Transform(TransformArgs),
    /// Sign a URL path and query with the first key of IMGFN_SIGNING_KEYS; prints the path.
    Sign(SignArgs),
    /// Print the URL parameters as the README's Markdown table (generated from the table).
    Params,
    /// Print the SIMD paths this binary and this CPU use (as the startup log line names them).
    Simd,
}

#[derive(clap::Args)]
struct SignArgs {
    /// Path and query to sign, exactly as the page will use it, e.g. '/photos/cat.jpg?w=400'.
    path_and_query: String,
    /// Add `exp` this many seconds from now.
    #[arg(long)]
    expires_in: Option<u64>,
    /// Add `exp` at this Unix time (seconds).
    #[arg(long, conflicts_with = "expires_in")]
    expires_at: Option<u64>,
    /// Signing keys `id:secret[,...]`; the first one signs.
    #[arg(long, env = "IMGFN_SIGNING_KEYS", hide_env_values = true)]
    signing_keys: imgfn::signing::SigningKeys,
}

#[derive(clap::Args)]
struct TransformArgs {
    /// Input image file.
    input: PathBuf,
    /// Output file.
    #[arg(short, long)]
    output: PathBuf,
    /// The URL parameters: `--query 'w=400&fmt=webp'` and/or one flag per parameter.
    #[command(flatten)]
    params: ParamFlags,
    /// AVIF encoder speed 1..=10.
    #[arg(long, default_value_t = imgfn::config::DEFAULT_AVIF_SPEED)]
    avif_speed: u8,
    /// Benchmark: run the pipeline N times in-process (input already in memory) and print
    /// one JSON line of timings; the last output is written to OUTPUT.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    repeat: Option<u32>,
    /// With --repeat: time only the JPEG decode, at 1/--shrink scale.
    #[arg(long, requires = "repeat")]
    decode_only: bool,
    /// DCT scale denominator for --decode-only (1, 2, 4 or 8).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=8))]
    shrink: u32,
    /// How far a JPEG's shrink-on-load may go, as the server's IMGFN_SHRINK: fast, balanced
    /// or faithful.
    #[arg(long, env = "IMGFN_SHRINK", default_value = "balanced")]
    shrink_on_load: pipeline::decode::Shrink,
}

/// The URL API as command-line flags, generated from the parameter table: `--query` takes a
/// query string, and every parameter is also a flag of its own name (`--w 400`). No second
/// list to keep in step with the URL's.
struct ParamFlags {
    pairs: Vec<(String, String)>,
}

impl clap::FromArgMatches for ParamFlags {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut pairs: Vec<(String, String)> = m
            .get_one::<String>("query")
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        for p in TABLE {
            if let Some(v) = m.get_one::<String>(p.name) {
                pairs.push((p.name.to_string(), v.clone()));
            }
        }
        Ok(ParamFlags { pairs })
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Args for ParamFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let query = clap::Arg::new("query")
            .long("query")
            .value_name("QUERY")
            .help("URL parameters as a query string, e.g. 'w=400&fmt=webp' (flags add to it)");
        TABLE.iter().fold(cmd.arg(query), |cmd, p| {
            cmd.arg(
                clap::Arg::new(p.name)
                    .long(p.name)
                    .value_name("VALUE")
                    .help(format!("{} Accepts {}.", p.doc, p.accepts)),
            )
        })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
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
            Command::Serve(config) => serve(*config),
            Command::Transform(args) => transform(args),
            Command::Sign(args) => sign(args),
            Command::Params => {
                print!("{}", imgfn::params::markdown_table());
                Ok(())
            }
            Command::Simd => {
                println!("{}", imgfn::simd::Simd::detect());
                Ok(())
            }
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

/// A build without the Lambda runtime (`--no-default-features`) cannot run under Lambda.
#[cfg(not(feature = "lambda"))]
fn lambda() -> Result<(), String> {
    Err("this imgfn was built without the `lambda` feature".into())
}

/// Cold start: config, tracing, the SDK client. Nothing else is done before the first event.
#[cfg(feature = "lambda")]
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
    // CloudWatch turns EMF lines into metrics without an agent.
    if std::env::var_os("IMGFN_METRICS").is_none() {
        config.metrics = imgfn::config::MetricsFormat::Emf;
    }
    if config.secrets_id.is_some()
        && (config.signing_keys.is_some()
            || config.upload_token.is_some()
            || config.gallery_token.is_some())
    {
        return Err(
            "IMGFN_SECRETS_ID replaces IMGFN_SIGNING_KEYS, IMGFN_UPLOAD_TOKEN and \
             IMGFN_GALLERY_TOKEN: give one source"
                .into(),
        );
    }
    init_tracing(config.log_format);
    imgfn::simd::Simd::detect().log();
    runtime()?.block_on(async move {
        // The secret is read while the S3 client is built, not after it.
        let (source, secrets) = tokio::join!(
            source::Source::open(imgfn::state::source_spec(&config)),
            read_secret(&config)
        );
        let (source, secrets) = (source?, secrets?);
        let mode = config.invoke_mode;
        let state = AppState::new(config, source);
        let state = Arc::new(match secrets {
            Some(secrets) => state.with_secrets(secrets),
            None => state,
        });
        imgfn::lambda::run(state, mode)
            .await
            .map_err(|e| e.to_string())
    })
}

/// Cold start: the secret named by IMGFN_SECRETS_ID, through the secrets extension.
#[cfg(feature = "lambda")]
async fn read_secret(config: &Config) -> Result<Option<imgfn::secrets::Secrets>, String> {
    let Some(id) = config.secrets_id.clone() else {
        return Ok(None);
    };
    let started = std::time::Instant::now();
    let extension = imgfn::secrets::Extension::from_env()?;
    let ttl = std::time::Duration::from_secs(config.secrets_ttl_secs);
    let secrets = imgfn::secrets::Secrets::from_extension(extension, id.clone(), ttl).await?;
    tracing::info!(secret = %id, ms = started.elapsed().as_secs_f64() * 1e3, "secret read");
    Ok(Some(secrets))
}

fn serve(config: Config) -> Result<(), String> {
    if config.secrets_id.is_some() {
        return Err(
            "IMGFN_SECRETS_ID is read through AWS's secrets extension, under Lambda only; \
                    give the local server IMGFN_SIGNING_KEYS and IMGFN_UPLOAD_TOKEN"
                .into(),
        );
    }
    config.check_folder_uploads()?;
    init_tracing(config.log_format);
    imgfn::simd::Simd::detect().log();
    runtime()?.block_on(async move {
        let source = source::Source::open(imgfn::state::source_spec(&config)).await?;
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

fn sign(a: SignArgs) -> Result<(), String> {
    if !a.path_and_query.starts_with('/') {
        return Err("the path must start with `/`".into());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let expires = a.expires_at.or(a.expires_in.map(|s| now + s));
    println!("{}", a.signing_keys.sign(&a.path_and_query, expires));
    Ok(())
}

fn transform(a: TransformArgs) -> Result<(), String> {
    // The same parser as URLs: one definition of what is valid.
    let request = ImageRequest::from_pairs(a.params.pairs).map_err(|e| e.to_string())?;
    if let Some(name) = &request.preset {
        // Presets live in the server's configuration (IMGFN_PRESETS), not in the CLI's.
        return Err(format!(
            "`preset={name}` names a server preset (IMGFN_PRESETS); give transform the \
             parameters themselves"
        ));
    }
    let bytes = std::fs::read(&a.input).map_err(|e| format!("{}: {e}", a.input.display()))?;
    let info = pipeline::probe(&bytes).map_err(|e| e.to_string())?;
    // The server's default settings, with the shrink-on-load mode asked for.
    let defaults = Config::with_root(".").settings();
    let limits = pipeline::Limits {
        shrink: a.shrink_on_load,
        ..defaults.limits
    };
    match request.mode {
        // The server's answers, computed under the server's default limits.
        Mode::Metadata => {
            let mut doc = pipeline::metadata_json(&info, bytes.len());
            let p = imgfn::placeholder::placeholder(&bytes, &info, &limits).ok();
            imgfn::placeholder::add_fields(&mut doc, p.as_ref());
            // `srcset`: candidates linked to the file's name, unsigned, default policy.
            let name = a
                .input
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            let path = format!("/{}", name.unwrap_or_default());
            let policy = imgfn::policy::Policy::default();
            if let Some(img) = imgfn::srcset::img(&info, &request, &path, &policy, &limits, |u| u)
                .map_err(|e| e.to_string())?
            {
                doc["img"] = serde_json::to_value(img).map_err(|e| e.to_string())?;
            }
            println!("{doc}");
            return Ok(());
        }
        Mode::Placeholder => {
            let p = imgfn::placeholder::placeholder(&bytes, &info, &limits)
                .map_err(|e| e.to_string())?;
            println!("{}", p.thumbhash_base64());
            return Ok(());
        }
        Mode::Pixels => {}
    }
    // `fmt=auto` on the command line: as for a browser that accepts WebP.
    let format = request
        .format_choice(Some("image/webp"), |accepted| accepted)
        .resolve(
            info.output(),
            info.has_alpha,
            info.animated(&request.transform),
        );
    let params = request.transform;
    let settings = pipeline::Settings {
        encode: pipeline::EncodeOptions {
            avif_speed: a.avif_speed.clamp(1, 10),
        },
        limits,
        ..defaults
    };
    let mut resizer = fast_image_resize::Resizer::new();
    let mut run = || -> Result<pipeline::Rendered, String> {
        if a.decode_only {
            let info = pipeline::probe(&bytes).map_err(|e| e.to_string())?;
            let px =
                pipeline::decode::decode(&bytes, &info, a.shrink).map_err(|e| e.to_string())?;
            return Ok(pipeline::Rendered {
                bytes: Vec::new(),
                format,
                width: px.width,
                height: px.height,
                timings: pipeline::Timings::default(),
            });
        }
        let info = pipeline::probe(&bytes).map_err(|e| e.to_string())?;
        pipeline::render(&bytes, &info, &params, format, &settings, &mut resizer)
            .map_err(|e| e.to_string())
    };
    if a.decode_only && !matches!(a.shrink, 1 | 2 | 4 | 8) {
        return Err("--shrink must be 1, 2, 4 or 8".into());
    }
    let out = match a.repeat {
        None => run()?,
        Some(n) => {
            // Two untimed runs warm caches and the allocator, as the peers' harness does.
            run()?;
            run()?;
            let mut times = Vec::with_capacity(n as usize);
            let mut last = None;
            for _ in 0..n {
                let t = std::time::Instant::now();
                let out = run()?;
                times.push(t.elapsed().as_secs_f64() * 1e3);
                last = Some(out);
            }
            times.sort_by(f64::total_cmp);
            let out = last.ok_or("no run")?;
            println!(
                "{}",
                serde_json::json!({
                    "runs": n,
                    "median_ms": times[times.len() / 2],
                    "min_ms": times[0],
                    "mean_ms": times.iter().sum::<f64>() / f64::from(n),
                    "bytes": out.bytes.len(),
                    "width": out.width,
                    "height": out.height,
                })
            );
            out
        }
    };
    std::fs::write(&a.output, &out.bytes).map_err(|e| format!("{}: {e}", a.output.display()))?;
    // "resize" is every step between decode and encode; the parentheses name each.
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let t = &out.timings;
    let steps: Vec<String> = t
        .steps()
        .map(|(name, d)| format!("{name} {:.1}", ms(d)))
        .collect();
    eprintln!(
        "{} -> {}x{} {} ({} bytes; decode {:.1} ms, resize {:.1} ms ({}), encode {:.1} ms)",
        a.input.display(),
        out.width,
        out.height,
        out.format.name(),
        out.bytes.len(),
        ms(t.total_of(&[pipeline::timings::DECODE])),
        ms(t.steps_total()),
        steps.join(" + "),
        ms(t.total_of(&[pipeline::timings::ENCODE])),
    );
    Ok(())
}
