//! A fault test against a real S3-compatible server of its own: stopped mid-run, then
//! restarted. Requests during the outage fail fast with 502/504; afterwards they succeed, and
//! nothing wrong was cached.

use crate::support::{testdata, TestApp};
use std::process::Command;
use std::time::{Duration, Instant};

fn garage(cmd: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("scripts/garage.sh"))
        .arg(cmd)
        // Its own instance (free ports, fresh keys), whichever other suite runs beside it.
        .env(
            "GARAGE_DIR",
            root.join(format!("target/garage-fault-{}", std::process::id())),
        )
        .env_remove("GARAGE_S3_PORT")
        .output()
        .expect("scripts/garage.sh");
    assert!(
        out.status.success(),
        "garage.sh {cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stops the server even when an assertion fails.
struct Stopper;
impl Drop for Stopper {
    fn drop(&mut self) {
        garage("stop");
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let _ = std::fs::remove_dir_all(
            root.join(format!("target/garage-fault-{}", std::process::id())),
        );
    }
}

#[tokio::test]
async fn store_outage_fails_fast_and_recovers() {
    crate::needs!(Garage);
    let env = garage("start");
    let _stop = Stopper;
    let var = |name: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .unwrap_or_else(|| panic!("{name} in {env}"))
            .to_string()
    };
    let client = crate::support::s3_client(
        &var("AWS_ENDPOINT_URL_S3"),
        &var("AWS_ACCESS_KEY_ID"),
        &var("AWS_SECRET_ACCESS_KEY"),
        1000,
    );
    let bucket = var("IMGFN_TEST_BUCKET");
    for f in ["small.jpg", "medium.jpg"] {
        client
            .put_object()
            .bucket(&bucket)
            .key(f)
            .body(std::fs::read(testdata().join(f)).unwrap().into())
            .send()
            .await
            .expect("upload");
    }
    let settings = imgfn::source::s3::S3Settings {
        bucket: bucket.clone(),
        prefix: String::new(),
        renditions_prefix: "_renditions/".into(),
        timeout: Duration::from_millis(1000),
    };
    // Revalidate every request, so the outage is seen even for cached renditions; missing
    // keys are remembered as a deployment does (an outage must not be remembered as one).
    let config = imgfn::config::Config::with_root(testdata());
    let source = imgfn::source::Source::s3(
        imgfn::source::s3::S3Source::new(client, settings),
        Duration::ZERO,
    )
    .with_not_found_ttl(Duration::from_secs(config.not_found_ttl_secs));
    let app = TestApp::spawn_source(config, source).await;

    let before = app.get("/small.jpg?w=100&fmt=webp").await;
    assert_eq!(before.status, 200);

    garage("stop");
    for path in [
        "/small.jpg?w=100&fmt=webp",
        "/small.jpg?w=120",
        "/medium.jpg?w=50",
        "/small.jpg",
    ] {
        let started = Instant::now();
        let r = app.get(path).await;
        assert!(
            matches!(r.status, 502 | 504),
            "{path} during the outage: {}",
            r.status
        );
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{path} took {:?}",
            started.elapsed()
        );
    }

    garage("restart");
    // The same app, with whatever its caches kept from the outage: every request that
    // failed now gets the right answer.
    let after = app.get("/small.jpg?w=100&fmt=webp").await;
    assert_eq!(after.status, 200);
    assert_eq!(after.body, before.body, "same bytes after the outage");
    for (path, file, size) in [
        ("/small.jpg?w=120", "small.jpg", (120, 80)),
        ("/medium.jpg?w=50", "medium.jpg", (50, 33)),
    ] {
        let r = app.get(path).await;
        assert_eq!(
            r.status,
            200,
            "{path} after the outage: {}",
            String::from_utf8_lossy(&r.body)
        );
        let img = r.image();
        assert_eq!((img.width(), img.height()), size, "{path}");
        let db = crate::support::psnr(&img, &crate::support::reference(file, size.0, size.1));
        assert!(db > 25.0, "{path}: PSNR {db:.1} dB");
    }
    assert_eq!(
        app.get("/small.jpg").await.body,
        std::fs::read(testdata().join("small.jpg")).unwrap(),
        "the original after the outage"
    );
}
