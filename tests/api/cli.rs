//! The `imgfn` binary itself, run as a user runs it: `serve` (its JSON request log line, flag
//! and environment precedence, its defaults), `transform` and `sign` (the README's worked
//! example is produced by running the command, and the URL it prints is accepted by a server
//! started with the same key and refused by one with another).

use crate::support::{tempdir, testdata, Reply};
use image::GenericImageView;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_imgfn");

/// The binary with none of the test run's `IMGFN_*` variables, and not under Lambda.
fn imgfn() -> Command {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("IMGFN_") {
            cmd.env_remove(&name);
        }
    }
    cmd.env_remove("AWS_LAMBDA_RUNTIME_API");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {BIN}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running `imgfn serve`: its address (read from its own "listening" log line) and every
/// line it wrote to stdout and stderr.
struct Served {
    child: Child,
    addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    client: reqwest::Client,
}

impl Served {
    /// Start `cmd` (already `serve ...`) and wait until it says where it listens.
    fn start(mut cmd: Command) -> Served {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start imgfn serve");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let stdout: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().unwrap());
        let stderr: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().unwrap());
        for stream in [stdout, stderr] {
            let (lines, tx) = (lines.clone(), tx.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        let addr = rest.split('/').next().unwrap_or_default();
                        let _ = tx.send(addr.parse::<SocketAddr>().ok());
                    }
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Some(addr)) => addr,
            _ => {
                let _ = child.kill();
                let status = child.wait();
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "imgfn serve did not report a listening address ({status:?}): {:#?}",
                    lines.lock().unwrap()
                );
            }
        };
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        Served {
            child,
            addr,
            lines,
            client,
        }
    }

    async fn get(&self, path_and_query: &str) -> Reply {
        Reply::send(
            self.client
                .get(format!("http://{}{path_and_query}", self.addr)),
        )
        .await
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The first `n` request log lines (target `imgfn::request`), parsed, once written.
    async fn request_lines(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found: Vec<serde_json::Value> = self
                .lines()
                .iter()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|v| v["target"] == "imgfn::request")
                .collect();
            if found.len() >= n {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "{} request log lines, expected {n}: {:#?}",
                found.len(),
                self.lines()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `imgfn serve` on a free port with these extra arguments.
fn serve(args: &[&str]) -> Command {
    let mut cmd = imgfn();
    cmd.args(["serve", "--addr", "127.0.0.1:0"]).args(args);
    cmd
}

fn testdata_arg() -> String {
    testdata().display().to_string()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn serve_logs_one_json_line_per_request_with_the_documented_fields() {
    let root = testdata_arg();
    let s = Served::start(serve(&["--root", &root, "--log-format", "json"]));
    let miss = s.get("/small.jpg?fmt=webp&w=100").await;
    assert_eq!(miss.status, 200);
    let hit = s.get("/small.jpg?w=100&fmt=webp").await;
    assert_eq!(hit.status, 200);
    s.get("/nope.jpg?w=10").await.assert_error(404, "not_found");
    let lines = s.request_lines(3).await;
    assert_eq!(lines.len(), 3, "one line per request: {lines:#?}");

    // README, Architecture: `key`, `params`, `status`, `cache` (hit/miss) and `fetch_ms`,
    // `decode_ms`, `resize_ms`, `encode_ms`, `total_ms`.
    let (miss_line, hit_line, missing_line) = (&lines[0], &lines[1], &lines[2]);
    assert_eq!(miss_line["key"], "small.jpg", "{miss_line}");
    // The parsed, canonical parameters: what `stats ... by params` groups on.
    assert_eq!(miss_line["params"], "w=100&fmt=webp", "{miss_line}");
    assert_eq!(hit_line["params"], miss_line["params"], "{hit_line}");
    assert_eq!(miss_line["status"], 200, "{miss_line}");
    assert_eq!(miss_line["cache"], "miss", "{miss_line}");
    assert_eq!(hit_line["cache"], "hit", "{hit_line}");
    assert_eq!(miss_line["bytes"], miss.body.len(), "{miss_line}");
    let ms = |line: &serde_json::Value, field: &str| -> f64 {
        line[field]
            .as_f64()
            .filter(|v| *v >= 0.0)
            .unwrap_or_else(|| panic!("`{field}` must be a number of ms: {line}"))
    };
    let stages: f64 = ["decode_ms", "resize_ms", "encode_ms"]
        .iter()
        .map(|f| ms(miss_line, f))
        .sum();
    assert!(ms(miss_line, "decode_ms") > 0.0, "{miss_line}");
    assert!(
        ms(miss_line, "total_ms") >= stages + ms(miss_line, "fetch_ms") - 0.01,
        "the total includes the stages: {miss_line}"
    );
    assert!(ms(hit_line, "total_ms") >= 0.0);
    assert_eq!(missing_line["status"], 404, "{missing_line}");
    assert_eq!(missing_line["key"], "nope.jpg", "{missing_line}");
    assert!(ms(missing_line, "total_ms") >= 0.0);

    // `json`: one object per line, everything the server wrote.
    for line in s.lines().iter().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a line that is not JSON ({e}): {line}"));
        assert!(v.is_object(), "{line}");
    }
}

#[tokio::test]
async fn the_startup_line_names_the_simd_paths_and_the_test_build_has_them_all() {
    let root = testdata_arg();
    let s = Served::start(serve(&["--root", &root, "--log-format", "json"]));
    let lines = s.lines();
    let simd = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["simd"].is_string())
        .unwrap_or_else(|| panic!("no startup line with `simd`: {lines:#?}"));
    let paths = simd["simd"].as_str().unwrap().to_string();
    // `imgfn simd` prints the same line.
    let printed = run(imgfn().arg("simd"));
    assert_eq!(text(&printed.stdout).trim(), paths);
    // scripts/test.sh runs the fast build (nasm installed, `--features nasm`): every SIMD path
    // is on, and the line says so at info level. A libjpeg-turbo left over from a build
    // without nasm (the stale-cache trap) fails here. (A plain `cargo test` builds without
    // the feature: only the line itself is checked then.)
    if cfg!(all(target_arch = "x86_64", feature = "nasm")) {
        for on in ["libjpeg-turbo=on", "rav1e/rav1d-asm=on", "libwebp=sse2"] {
            assert!(paths.contains(on), "{on} missing: {paths}");
        }
        assert!(!paths.contains("fast_image_resize=none"), "{paths}");
        assert_eq!(simd["level"], "INFO", "{simd}");
    }
}

#[tokio::test]
async fn flags_win_over_environment_variables() {
    // Two folders, each holding one image the other lacks.
    let (a, b) = (tempdir(), tempdir());
    let tiny = std::fs::read(testdata().join("tiny.png")).unwrap();
    std::fs::write(a.join("only-a.png"), &tiny).unwrap();
    std::fs::write(b.join("only-b.png"), &tiny).unwrap();
    let a_str = a.display().to_string();
    // An address the environment names but nobody can listen on: it is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();

    // The environment alone is used.
    let mut env_only = imgfn();
    env_only
        .arg("serve")
        .env("IMGFN_ADDR", "127.0.0.1:0")
        .env("IMGFN_ROOT", &a_str)
        .env("IMGFN_CACHE_CONTROL", "public, max-age=11");
    let s = Served::start(env_only);
    let r = s.get("/only-a.png?w=2").await;
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert_eq!(r.header("cache-control"), Some("public, max-age=11"));
    s.get("/only-b.png?w=2")
        .await
        .assert_error(404, "not_found");
    drop(s);

    // Flag and variable both given: the flag wins, for each setting.
    let mut both = imgfn();
    both.env("IMGFN_ADDR", &taken_addr)
        .env("IMGFN_ROOT", &a_str)
        .env("IMGFN_CACHE_CONTROL", "public, max-age=11")
        .args(["serve", "--addr", "127.0.0.1:0", "--root"])
        .arg(&b)
        .args(["--cache-control", "public, max-age=22"]);
    let s = Served::start(both);
    assert_ne!(s.addr.to_string(), taken_addr);
    let r = s.get("/only-b.png?w=2").await;
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert_eq!(r.header("cache-control"), Some("public, max-age=22"));
    s.get("/only-a.png?w=2")
        .await
        .assert_error(404, "not_found");
    drop(s);

    // Neither: the documented defaults (`testdata` under the working directory).
    let s = Served::start(serve(&[]));
    let r = s.get("/small.jpg?fmt=json").await;
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    drop(taken);
}

/// Split a shell command line of plain words and single-quoted strings.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    assert!(!quoted, "unbalanced quote in {line:?}");
    if any {
        words.push(word);
    }
    words
}

/// The README's `imgfn sign` example: the command line (environment assignments and
/// arguments) and the line it shows as the output.
fn readme_sign_example() -> (Vec<(String, String)>, Vec<String>, String) {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut lines = readme.lines();
    let command = lines
        .find(|l| l.starts_with("$ ") && l.contains(" imgfn sign "))
        .expect("README.md shows `$ ... imgfn sign ...`");
    let output = lines.next().expect("the output line").trim().to_string();
    let words = shell_words(command.trim_start_matches("$ "));
    let at = words
        .iter()
        .position(|w| w == "imgfn")
        .expect("the command runs imgfn");
    let env = words[..at]
        .iter()
        .map(|w| {
            let (k, v) = w.split_once('=').expect("NAME=value before the command");
            (k.to_string(), v.to_string())
        })
        .collect();
    (env, words[at + 1..].to_vec(), output)
}

fn sign(keys: &str, args: &[&str]) -> String {
    let out = run(imgfn()
        .env("IMGFN_SIGNING_KEYS", keys)
        .arg("sign")
        .args(args));
    assert!(out.status.success(), "imgfn sign: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn sign_prints_the_readme_example_and_servers_check_it() {
    let (env, args, shown) = readme_sign_example();
    assert_eq!(args.first().map(String::as_str), Some("sign"), "{args:?}");
    let mut cmd = imgfn();
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let out = run(cmd.args(&args));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        shown,
        "README.md shows what `imgfn sign` prints"
    );
    let (_, keys) = env
        .iter()
        .find(|(k, _)| k == "IMGFN_SIGNING_KEYS")
        .expect("the example sets IMGFN_SIGNING_KEYS");
    let path = args[1].as_str();

    // `--signing-keys` wins over the environment here too.
    let out = run(imgfn()
        .env("IMGFN_SIGNING_KEYS", "k1:some-other-secret-entirely")
        .args(&args)
        .args(["--signing-keys", keys]));
    assert_eq!(text(&out.stdout).trim(), shown);

    // The signed URL against real servers: the example's key accepts it, another refuses it.
    let root = tempdir();
    let file = path.trim_start_matches('/').split('?').next().unwrap();
    std::fs::create_dir_all(root.join(file).parent().unwrap()).unwrap();
    std::fs::copy(testdata().join("small.jpg"), root.join(file)).unwrap();
    let root_arg = root.display().to_string();
    let same = Served::start(serve(&["--root", &root_arg, "--signing-keys", keys]));
    let other = Served::start(serve(&[
        "--root",
        &root_arg,
        "--signing-keys",
        "k1:a-different-secret-2026",
    ]));

    let fresh = sign(keys, &[path, "--expires-in", "600"]);
    let exp: u64 = fresh
        .split("&exp=")
        .nth(1)
        .and_then(|e| e.split('&').next())
        .and_then(|e| e.parse().ok())
        .unwrap_or_else(|| panic!("no exp in {fresh}"));
    assert!(
        exp.abs_diff(unix_now() + 600) <= 5,
        "--expires-in 600 gave {exp}"
    );
    let r = same.get(&fresh).await;
    assert_eq!(r.content_type(), "image/webp");
    assert_eq!(r.image().width(), 400);
    other.get(&fresh).await.assert_error(403, "forbidden");
    same.get(path).await.assert_error(403, "forbidden");
    let no_expiry = sign(keys, &["/photos/cat.jpg?w=64"]);
    assert!(!no_expiry.contains("exp="), "{no_expiry}");
    assert_eq!(same.get(&no_expiry).await.image().width(), 64);
    other.get(&no_expiry).await.assert_error(403, "forbidden");

    // The README's own URL, exactly as printed (it expires at 1800000000).
    let readme_exp: u64 = shown
        .split("&exp=")
        .nth(1)
        .and_then(|e| e.split('&').next())
        .and_then(|e| e.parse().ok())
        .unwrap();
    let r = same.get(&shown).await;
    if unix_now() < readme_exp {
        assert_eq!(r.image().width(), 400);
    } else {
        r.assert_error(403, "forbidden");
    }
    other.get(&shown).await.assert_error(403, "forbidden");

    // A path without its leading `/` is refused, and nothing is printed.
    let out = run(imgfn()
        .env("IMGFN_SIGNING_KEYS", keys)
        .args(["sign", "photos/cat.jpg"]));
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn transform_writes_what_the_server_serves() {
    let dir = tempdir();
    let out_png = dir.join("out.png");
    let input = testdata().join("small.jpg");
    let out = run(imgfn()
        .arg("transform")
        .arg(&input)
        .args([
            "--w", "100", "--h", "80", "--fit", "cover", "--fmt", "png", "-o",
        ])
        .arg(&out_png));
    assert!(out.status.success(), "{}", text(&out.stderr));
    // README: "prints the time spent in each stage".
    let report = text(&out.stderr);
    for stage in ["decode", "resize", "encode"] {
        assert!(
            report.contains(&format!("{stage} ")) && report.contains(" ms"),
            "{report}"
        );
    }
    assert!(report.contains("100x80"), "{report}");
    let written = std::fs::read(&out_png).unwrap();
    assert_eq!(
        image::load_from_memory(&written).unwrap().dimensions(),
        (100, 80)
    );

    // The same pipeline as the server: the same bytes for the same parameters.
    let root = testdata_arg();
    let s = Served::start(serve(&["--root", &root]));
    let served = s.get("/small.jpg?w=100&h=80&fit=cover&fmt=png").await;
    assert_eq!(served.status, 200);
    assert!(
        served.body == written,
        "transform and serve disagree ({} vs {} bytes)",
        written.len(),
        served.body.len()
    );
    let out = run(imgfn()
        .arg("transform")
        .arg(testdata().join("orient-6.jpg"))
        .args(["--fmt", "json", "-o"])
        .arg(dir.join("unused")));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json, s.get("/orient-6.jpg?fmt=json").await.json());

    // Invalid parameters are refused with the URL parser's message; nothing is written.
    let bad = dir.join("bad.png");
    let out = run(imgfn()
        .arg("transform")
        .arg(&input)
        .args(["--w", "0", "-o"])
        .arg(&bad));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("`w`"), "{}", text(&out.stderr));
    assert!(!bad.exists());
}
