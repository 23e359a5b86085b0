//! Test support: boot the real server on port 0, fetch, decode and compare pixels; the
//! tiers of tools a test may need (`tier`, `crate::needs!`).

use image::{DynamicImage, GenericImageView};
use imgfn::app::AppState;
use imgfn::config::Config;
use imgfn::source::Source;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub mod tier;

/// A turn held across processes: tests that must not overlap (one Lambda emulator, one
/// browser, the timing-bound hostile tests) take an exclusive `flock` on a file under the
/// target directory, so threads of `cargo test` and processes of `cargo nextest` alike wait
/// for each other. Released when dropped (the file closes).
pub struct Turn {
    _file: std::fs::File,
}

pub async fn turn(name: &str) -> Turn {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.turn"));
    tokio::task::spawn_blocking(move || {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // SAFETY: flock(2) on a descriptor this function owns and keeps open in the returned
        // guard; it touches no memory.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {}", path.display());
        Turn { _file: file }
    })
    .await
    .expect("turn")
}

/// The source a config names (its bucket, else its folder), built the way `main` builds it:
/// the one place tests construct a `Source` from settings.
pub async fn open_source(config: &Config) -> Source {
    Source::open(imgfn::state::source_spec(config))
        .await
        .unwrap_or_else(|e| panic!("open the source: {e}"))
}

pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
}

impl TestApp {
    /// The real server over `testdata/` with default settings.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(Config::with_root(testdata())).await
    }

    pub async fn spawn_with(config: Config) -> TestApp {
        let source = open_source(&config).await;
        Self::spawn_source(config, source).await
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }

    pub async fn get(&self, path_and_query: &str) -> Reply {
        self.get_with(path_and_query, &[]).await
    }

    pub async fn get_with(&self, path_and_query: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = self.client.get(self.url(path_and_query));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Reply::from(req.send().await.expect("request")).await
    }

    pub async fn request(&self, method: reqwest::Method, path: &str) -> Reply {
        let resp = self
            .client
            .request(method, self.url(path))
            .send()
            .await
            .expect("request");
        Reply::from(resp).await
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// Send any request (other methods, bodies, absolute URLs elsewhere) and read the reply.
    pub async fn send(req: reqwest::RequestBuilder) -> Reply {
        Reply::from(req.send().await.expect("request")).await
    }

    /// Read the reply of a request already sent.
    pub async fn send_done(resp: reqwest::Response) -> Reply {
        Reply::from(resp).await
    }

    async fn from(resp: reqwest::Response) -> Reply {
        Reply {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: resp.bytes().await.expect("body").to_vec(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    /// Decode the body as an image (AVIF through `avifdec`), asserting success.
    pub fn image(&self) -> DynamicImage {
        assert_eq!(
            self.status,
            200,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        decode_any(&self.body)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// Assert a JSON error with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) -> serde_json::Value {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.content_type(), "application/json");
        assert_eq!(self.header("cache-control"), Some("no-store"));
        let json = self.json();
        assert_eq!(json["error"]["code"], code, "{json}");
        assert!(json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        json
    }
}

/// The tests' Python (`IMGFN_TEST_PYTHON`, which scripts/test.sh points at target/venv, else
/// `python3`): what runs `tests/reference.py` and what the tiers probe.
pub fn python() -> String {
    std::env::var("IMGFN_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// `tests/reference.py OP IN OUT ARG` (the independent references): what it printed. OUT is
/// a path the op writes, or `-` for ops that print their answer.
pub fn reference_py(op: &str, input: &Path, output: &Path, arg: &str) -> Vec<u8> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference.py");
    let out = std::process::Command::new(python())
        .arg(script)
        .arg(op)
        .arg(input)
        .arg(output)
        .arg(arg)
        .output()
        .expect("run tests/reference.py");
    assert!(
        out.status.success(),
        "reference.py {op} {arg}: {} (the references need `pip install -r \
         scripts/test-requirements.txt`, which scripts/test.sh does)",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The source `bytes` (called `name` in messages) rendered by imgfn's own pipeline with
/// `query`, as PNG, decoded.
pub fn render_png(bytes: &[u8], name: &str, query: &str) -> DynamicImage {
    let info = imgfn::pipeline::probe(bytes).expect("probe");
    let transform = imgfn::params::ImageRequest::parse(Some(query))
        .expect(query)
        .transform;
    let out = imgfn::pipeline::render(
        bytes,
        &info,
        &transform,
        imgfn::params::OutputFormat::Png,
        &imgfn::pipeline::Settings::default(),
        &mut fast_image_resize::Resizer::new(),
    )
    .unwrap_or_else(|e| panic!("{name}?{query}: {e}"));
    image::load_from_memory(&out.bytes).expect("our PNG")
}

pub fn decode_any(bytes: &[u8]) -> DynamicImage {
    if bytes.len() > 12 && &bytes[4..12] == b"ftypavif" {
        return decode_avif(bytes);
    }
    image::load_from_memory(bytes).expect("decodable image")
}

/// AVIF has no pure-Rust decoder in our dependency tree; libavif's `avifdec` (Debian package
/// libavif-bin, installed by scripts/test.sh) decodes it independently of our encoder.
fn decode_avif(bytes: &[u8]) -> DynamicImage {
    let dir = tempdir();
    let input = dir.join("in.avif");
    let output = dir.join("out.png");
    std::fs::write(&input, bytes).unwrap();
    let status = std::process::Command::new("avifdec")
        .arg(&input)
        .arg(&output)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("avifdec must be installed (apt-get install libavif-bin; scripts/test.sh does it)");
    assert!(status.success(), "avifdec failed to decode our AVIF");
    let img = image::open(&output).expect("avifdec output");
    let _ = std::fs::remove_dir_all(&dir);
    img
}

pub fn tempdir() -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "imgfn-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Peak signal-to-noise ratio of two same-sized RGB renderings, in dB.
pub fn psnr(a: &DynamicImage, b: &DynamicImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions(), "compare images of one size");
    let (a, b) = (over_white(a), over_white(b));
    let mse: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.as_raw().len() as f64;
    if mse == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (255.0f64 * 255.0 / mse).log10()
}

/// What a viewer sees: RGBA composited over white (colour under transparency is meaningless).
fn over_white(img: &DynamicImage) -> image::RgbImage {
    let rgba = img.to_rgba8();
    image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = f64::from(p[3]) / 255.0;
        let c = |v: u8| (f64::from(v) * a + 255.0 * (1.0 - a)).round() as u8;
        image::Rgb([c(p[0]), c(p[1]), c(p[2])])
    })
}

/// An independent reference: decode with the `image` crate, orient, Lanczos3 resize.
pub fn reference(file: &str, width: u32, height: u32) -> DynamicImage {
    use image::ImageDecoder;
    let bytes = std::fs::read(testdata().join(file)).unwrap();
    let mut decoder = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .unwrap()
        .into_decoder()
        .unwrap();
    let orientation = decoder.orientation().unwrap();
    let mut img = DynamicImage::from_decoder(decoder).unwrap();
    img.apply_orientation(orientation);
    img.resize_exact(width, height, image::imageops::FilterType::Lanczos3)
}

impl TestApp {
    /// The real server over an explicit source.
    pub async fn spawn_source(config: Config, source: Source) -> TestApp {
        let state = Arc::new(AppState::new(config, source));
        let (addr, serving) = imgfn::server::bind(state, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("bind");
        tokio::spawn(serving);
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        TestApp { addr, client }
    }
}

/// The S3-compatible test server started by scripts/test.sh (Garage on 127.0.0.1), and a
/// key prefix of this test's own.
pub struct S3Env {
    pub bucket: String,
    pub prefix: String,
    pub client: aws_sdk_s3::Client,
}

pub fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: the S3 tests need the Garage server that scripts/test.sh starts \
             (or run `eval \"$(scripts/garage.sh start)\"` first)"
        )
    })
}

impl S3Env {
    /// The imgfn binary as a Lambda function serving this prefix, polling the Runtime API at
    /// `runtime_api`, with `env` on top and none of this process's own `IMGFN_*` variables.
    pub fn lambda_function(
        &self,
        runtime_api: &str,
        env: &[(&str, &str)],
    ) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_imgfn"));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("IMGFN_") {
                cmd.env_remove(&k);
            }
        }
        cmd.env("AWS_LAMBDA_RUNTIME_API", runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", "imgfn")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "test")
            .env("IMGFN_BUCKET", &self.bucket)
            .env("IMGFN_PREFIX", &self.prefix)
            .env(
                "IMGFN_RENDITIONS_PREFIX",
                format!("{}_renditions/", self.prefix),
            )
            .env("IMGFN_S3_PATH_STYLE", "true");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// A fresh prefix for one test.
    pub async fn new(test: &str) -> S3Env {
        Self::with_prefix(&format!("t-{test}-{}-{}/", std::process::id(), unique())).await
    }

    pub async fn with_prefix(prefix: &str) -> S3Env {
        let bucket = required_env("IMGFN_TEST_BUCKET");
        required_env("AWS_ENDPOINT_URL_S3");
        let client =
            imgfn::source::s3::S3Source::client_from_env(true, std::time::Duration::from_secs(10))
                .await;
        S3Env {
            bucket,
            prefix: prefix.to_string(),
            client,
        }
    }

    pub async fn put(&self, key: &str, bytes: &[u8]) {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(format!("{}{key}", self.prefix))
            .body(bytes.to_vec().into())
            .send()
            .await
            .expect("upload to the test S3 server");
    }

    /// Let pages on any origin PUT to presigned URLs of the test bucket (CORS), as a gallery
    /// deployment's bucket must (template.yaml sets the same rule).
    pub async fn allow_browser_uploads(&self) {
        use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
        let rule = CorsRule::builder()
            .allowed_origins("*")
            .allowed_methods("PUT")
            .allowed_methods("GET")
            .allowed_headers("*")
            .expose_headers("ETag")
            .max_age_seconds(300)
            .build()
            .unwrap();
        self.client
            .put_bucket_cors()
            .bucket(&self.bucket)
            .cors_configuration(
                CorsConfiguration::builder()
                    .cors_rules(rule)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("set CORS on the test bucket");
    }

    /// An object of this test's prefix, or `None` when it does not exist.
    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let resp = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(format!("{}{key}", self.prefix))
            .send()
            .await
            .ok()?;
        Some(resp.body.collect().await.ok()?.into_bytes().to_vec())
    }

    pub async fn put_fixture(&self, file: &str) {
        self.put(file, &std::fs::read(testdata().join(file)).unwrap())
            .await;
    }

    /// Server config reading this test's prefix of the bucket.
    pub fn config(&self) -> Config {
        let mut config = Config::with_root(testdata());
        config.bucket = Some(self.bucket.clone());
        config.prefix = self.prefix.clone();
        config.s3_path_style = true;
        config.renditions_prefix = format!("{}_renditions/", self.prefix);
        config
    }

    fn settings(bucket: &str, timeout_ms: u64) -> imgfn::source::s3::S3Settings {
        imgfn::source::s3::S3Settings {
            bucket: bucket.to_string(),
            prefix: String::new(),
            renditions_prefix: "_renditions/".into(),
            timeout: std::time::Duration::from_millis(timeout_ms),
        }
    }

    /// A source for an S3 endpoint other than the test server (dead, stalled).
    pub async fn source_at(endpoint: &str, bucket: &str, timeout_ms: u64) -> Source {
        let client = s3_client(endpoint, "GK1", "s", timeout_ms);
        let s3 = imgfn::source::s3::S3Source::new(client, Self::settings(bucket, timeout_ms));
        Source::s3(s3, std::time::Duration::ZERO)
    }

    /// A source for the test server with other credentials.
    pub fn source_with_credentials(&self, key: &str, secret: String, timeout_ms: u64) -> Source {
        let conf = self
            .client
            .config()
            .to_builder()
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                key, secret, None, None, "test",
            ))
            .build();
        let mut settings = Self::settings(&self.bucket, timeout_ms);
        settings.prefix = self.prefix.clone();
        Source::s3(
            imgfn::source::s3::S3Source::new(aws_sdk_s3::Client::from_conf(conf), settings),
            std::time::Duration::ZERO,
        )
    }
}

fn unique() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

impl TestApp {
    /// Send a request line exactly as given (HTTP clients normalise `..` and `%2e%2e` away,
    /// which would hide traversal attempts). Returns the status and the body.
    pub async fn raw_get(&self, target: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut sock = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let req = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        sock.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        sock.read_to_end(&mut buf).await.unwrap();
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"));
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }
}

/// An S3 client for a Garage endpoint with the production retry and timeout policy.
pub fn s3_client(endpoint: &str, key: &str, secret: &str, timeout_ms: u64) -> aws_sdk_s3::Client {
    let (retry, timeouts) =
        imgfn::source::s3::call_policy(std::time::Duration::from_millis(timeout_ms));
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("garage"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            key, secret, None, None, "test",
        ))
        .retry_config(retry)
        .timeout_config(timeouts)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Mean and largest absolute difference of two images' channels, colour premultiplied by
/// alpha (the colour of a transparent pixel is not part of the image).
pub fn premultiplied_diff(got: &DynamicImage, want: &DynamicImage) -> (f64, u8) {
    assert_eq!(got.dimensions(), want.dimensions());
    let (a, b) = (got.to_rgba8(), want.to_rgba8());
    let (mut sum, mut max, mut n) = (0u64, 0u8, 0u64);
    for (p, q) in a.pixels().zip(b.pixels()) {
        for c in 0..4 {
            let pre = |px: &image::Rgba<u8>| {
                if c == 3 {
                    px[3]
                } else {
                    ((u16::from(px[c]) * u16::from(px[3]) + 127) / 255) as u8
                }
            };
            let d = pre(p).abs_diff(pre(q));
            sum += u64::from(d);
            max = max.max(d);
            n += 1;
        }
    }
    (sum as f64 / n as f64, max)
}

/// A fixture manifest: a JSON list (of the cases a reference test walks).
pub fn json_list(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
