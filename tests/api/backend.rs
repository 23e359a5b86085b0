//! The backend contract: one list of behaviours that every source of originals shares, each
//! written once as `async fn behaviour(b: &Backend)` and run over the folder source and the S3
//! source (Garage) alike (`backend::<behaviour>::folder`, `backend::<behaviour>::s3`; the S3
//! leg skips loudly without Garage). Objects are written behind imgfn's back (a file, a
//! `PutObject`), then read through the real `Source`, built by `support::open_source`.

use crate::support::{open_source, tempdir, S3Env};
use bytes::Bytes;
use imgfn::config::Config;
use imgfn::error::Error;
use imgfn::key::Key;
use imgfn::source::Source;
use std::path::PathBuf;
use std::time::Duration;

/// One backend under test: the real `Source`, and a way to change the store behind it.
pub struct Backend {
    pub source: Source,
    store: Store,
    /// How long a known version may be served after the content changed.
    window: Duration,
}

enum Store {
    Folder(PathBuf),
    Bucket(S3Env),
}

impl Backend {
    /// A fresh empty folder, with the folder source's own revalidation interval.
    async fn folder() -> Backend {
        let root = tempdir();
        Backend {
            source: open_source(&Config::with_root(&root)).await,
            store: Store::Folder(root),
            window: imgfn::source::FS_REVALIDATE,
        }
    }

    /// A fresh prefix of the test bucket; versions trusted and misses remembered for 1 s.
    async fn s3(test: &str) -> Backend {
        let s3 = S3Env::new(test).await;
        let mut config = s3.config();
        config.revalidate_secs = 1;
        config.not_found_ttl_secs = 1;
        Backend {
            source: open_source(&config).await,
            store: Store::Bucket(s3),
            window: Duration::from_secs(1),
        }
    }

    /// Store `bytes` under `key` behind imgfn's back, replacing what is there.
    async fn put(&self, key: &str, bytes: &[u8]) {
        match &self.store {
            Store::Folder(root) => {
                let path = root.join(key);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, bytes).unwrap();
            }
            Store::Bucket(s3) => s3.put(key, bytes).await,
        }
    }

    /// Store a new original the way this source takes uploads, never replacing one: through
    /// imgfn (`write_new`) when it `takes_uploads`, else a presigned PUT (`If-None-Match: *`)
    /// that the client sends to the store.
    async fn create(&self, key: &Key, content_type: &str, bytes: &[u8]) -> Result<(), String> {
        if self.source.takes_uploads() {
            return self
                .source
                .write_new(key, Bytes::copy_from_slice(bytes))
                .await
                .map_err(|e| e.to_string());
        }
        let (url, headers) = self
            .source
            .presign_put(
                key,
                content_type,
                bytes.len() as u64,
                Duration::from_secs(60),
            )
            .await
            .map_err(|e| e.to_string())?;
        // Never replacing is asked of the store by a condition the client cannot drop.
        assert!(
            headers.contains(&("if-none-match".into(), "*".into())),
            "{headers:?}"
        );
        assert!(
            url.contains("if-none-match"),
            "If-None-Match is not signed: {url}"
        );
        let mut req = reqwest::Client::new().put(url).body(bytes.to_vec());
        for (name, value) in headers {
            if name != "content-length" {
                req = req.header(name, value);
            }
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        match resp.status().as_u16() {
            200 => Ok(()),
            status => Err(format!("the store answered {status}")),
        }
    }

    /// Wait until a version known before a change may no longer be served.
    async fn outwait_versions(&self) {
        tokio::time::sleep(self.window + Duration::from_millis(200)).await;
    }
}

fn key(k: &str) -> Key {
    Key::parse(k).unwrap_or_else(|e| panic!("{k}: {e}"))
}

/// Every page of a listing under `prefix`, `limit` entries at most each, as key lists.
async fn pages(b: &Backend, prefix: &str, limit: u32) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = b
            .source
            .list(prefix, cursor.as_deref(), limit)
            .await
            .unwrap_or_else(|e| panic!("list {prefix:?} after {cursor:?}: {e}"));
        pages.push(page.entries.iter().map(|e| e.key.to_string()).collect());
        assert!(pages.len() < 100, "the listing of {prefix:?} does not end");
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return pages,
        }
    }
}

/// The pages a listing of `keys` (already in key order) must give.
fn chunks(keys: &[&str], limit: usize) -> Vec<Vec<String>> {
    if keys.is_empty() {
        return vec![vec![]];
    }
    keys.chunks(limit)
        .map(|c| c.iter().map(|k| k.to_string()).collect())
        .collect()
}

async fn stat_finds_existing_keys_and_not_missing_ones(b: &Backend) {
    b.put("a.jpg", b"0123456789").await;
    b.put("dir/b.jpg", b"xyz").await;
    let stat = b.source.stat(&key("a.jpg")).await.expect("stat a.jpg");
    assert_eq!(stat.size, 10);
    assert!(!stat.version.is_empty());
    assert_eq!(
        b.source.stat(&key("dir/b.jpg")).await.expect("stat").size,
        3
    );
    // A missing key, a "folder" (a prefix of other keys) and a key under a file: not found.
    for missing in ["missing.jpg", "dir", "a.jpg/b.jpg", "A.JPG"] {
        let k = key(missing);
        assert!(
            matches!(b.source.stat(&k).await, Err(Error::NotFound)),
            "stat {missing}"
        );
        assert!(
            matches!(b.source.fetch(&k, 1 << 20).await, Err(Error::NotFound)),
            "fetch {missing}"
        );
        assert!(
            matches!(b.source.head_bytes(&k, 16).await, Err(Error::NotFound)),
            "head_bytes {missing}"
        );
    }
}

async fn a_key_created_after_a_miss_is_found(b: &Backend) {
    let k = key("later.jpg");
    assert!(matches!(b.source.stat(&k).await, Err(Error::NotFound)));
    b.put("later.jpg", b"now here").await;
    b.outwait_versions().await;
    assert_eq!(
        b.source.stat(&k).await.expect("stat after creation").size,
        8
    );
}

async fn version_changes_when_content_changes(b: &Backend) {
    let k = key("v.jpg");
    b.put("v.jpg", b"first content").await;
    let first = b.source.stat(&k).await.expect("stat");
    // The same again, unchanged: the same version.
    assert_eq!(b.source.stat(&k).await.expect("stat"), first);
    // Same length, other bytes: only the version can tell.
    b.put("v.jpg", b"other content").await;
    b.outwait_versions().await;
    let second = b.source.stat(&k).await.expect("stat");
    assert_eq!(second.size, first.size);
    assert_ne!(second.version, first.version, "same version after a change");
    assert_eq!(
        b.source.fetch(&k, 1 << 20).await.expect("fetch").as_ref(),
        b"other content"
    );
    // A listing reports the version `stat` gives.
    let listed = b.source.list("v", None, 10).await.expect("list");
    assert_eq!(listed.entries.len(), 1);
    assert_eq!(listed.entries[0].version, second.version);
    assert_eq!(listed.entries[0].size, second.size);
}

async fn fetch_refuses_bodies_over_max_bytes(b: &Backend) {
    let body: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    b.put("big.bin", &body).await;
    let k = key("big.bin");
    assert_eq!(
        b.source.fetch(&k, 1000).await.expect("fetch").as_ref(),
        body
    );
    assert_eq!(
        b.source.fetch(&k, u64::MAX).await.expect("fetch").as_ref(),
        body
    );
    for max in [999, 1, 0] {
        let err = b.source.fetch(&k, max).await.expect_err("over max_bytes");
        assert!(matches!(err, Error::LimitExceeded { .. }), "{err:?}");
        // The same error, word for word, whatever the backend.
        assert_eq!(
            err.to_string(),
            imgfn::source::too_large(1000, max).to_string()
        );
    }
}

async fn head_bytes_reads_the_start(b: &Backend) {
    let body: Vec<u8> = (0..100u8).collect();
    b.put("h.bin", &body).await;
    let k = key("h.bin");
    for (len, expected) in [
        (16, &body[..16]),
        (1, &body[..1]),
        (100, &body[..]),
        (5000, &body[..]),
    ] {
        assert_eq!(
            b.source
                .head_bytes(&k, len)
                .await
                .expect("head_bytes")
                .as_ref(),
            expected,
            "head_bytes({len})"
        );
    }
}

async fn head_bytes_of_an_empty_original_is_empty(b: &Backend) {
    b.put("empty.jpg", b"").await;
    let k = key("empty.jpg");
    assert_eq!(b.source.stat(&k).await.expect("stat").size, 0);
    assert_eq!(b.source.fetch(&k, 10).await.expect("fetch").len(), 0);
    let head = b.source.head_bytes(&k, 16).await;
    assert!(
        head.as_ref().is_ok_and(|h| h.is_empty()),
        "head_bytes of an empty original: {head:?}"
    );
}

/// The keys of the listing behaviours, in key order (bytewise UTF-8, as S3 sorts).
const LISTED: [&str; 8] = [
    "a.jpg",
    "b/c.jpg",
    "b/d e.jpg",
    "b/sub/f.png",
    "bb.jpg",
    "my cat.jpg",
    "z.webp",
    "ü/猫 1.jpg",
];

async fn list_pages_in_key_order(b: &Backend) {
    for k in LISTED.iter().rev() {
        b.put(k, k.as_bytes()).await;
    }
    for limit in [1, 2, 3, 8, 1000] {
        assert_eq!(
            pages(b, "", limit).await,
            chunks(&LISTED, limit as usize),
            "limit {limit}"
        );
    }
    // A prefix is a string prefix, not a folder: "b" holds "bb.jpg" too.
    assert_eq!(pages(b, "b/", 2).await, chunks(&LISTED[1..4], 2));
    assert_eq!(pages(b, "b", 10).await, chunks(&LISTED[1..5], 10));
    assert_eq!(pages(b, "ü/", 10).await, chunks(&LISTED[7..], 10));
    assert_eq!(pages(b, "nothing", 10).await, chunks(&[], 10));
    // Each entry has the size `stat` gives.
    let all = b.source.list("", None, 1000).await.expect("list");
    for e in &all.entries {
        assert_eq!(e.size, e.key.as_str().len() as u64, "{}", e.key);
        assert_eq!(b.source.stat(&e.key).await.expect("stat").size, e.size);
    }
}

async fn hidden_keys_are_never_listed_and_pages_stay_full(b: &Backend) {
    for k in LISTED {
        b.put(k, k.as_bytes()).await;
    }
    // Names imgfn never serves (uploads in progress, dot-files) sit among the originals.
    for hidden in [
        ".a.jpg.part",
        "b/.hidden.jpg",
        ".git/config",
        "b/.tmp/x.jpg",
    ] {
        b.put(hidden, b"hidden").await;
    }
    for limit in [1, 2, 3] {
        assert_eq!(
            pages(b, "", limit).await,
            chunks(&LISTED, limit as usize),
            "limit {limit}"
        );
    }
}

async fn keys_with_spaces_and_unicode(b: &Backend) {
    let names = [
        "my cat.jpg",
        "ünï/çødé 猫.jpg",
        "a+b=c&d.jpg",
        "100%.jpg",
        "tab\u{a0}nbsp.jpg",
    ];
    for name in names {
        b.put(name, name.as_bytes()).await;
    }
    for name in names {
        let k = key(name);
        assert_eq!(b.source.stat(&k).await.expect(name).size, name.len() as u64);
        assert_eq!(
            b.source.fetch(&k, 1 << 20).await.expect(name).as_ref(),
            name.as_bytes()
        );
        assert_eq!(
            b.source.head_bytes(&k, 3).await.expect(name).as_ref(),
            &name.as_bytes()[..3]
        );
    }
    let mut sorted = names.to_vec();
    sorted.sort();
    assert_eq!(pages(b, "", 2).await, chunks(&sorted, 2));
}

async fn create_stores_new_originals_and_never_replaces(b: &Backend) {
    let k = key("up/new photo.jpg");
    b.create(&k, "image/jpeg", b"first upload")
        .await
        .expect("create");
    assert_eq!(
        b.source.fetch(&k, 1 << 20).await.expect("fetch").as_ref(),
        b"first upload"
    );
    assert_eq!(pages(b, "up/", 10).await, chunks(&["up/new photo.jpg"], 10));
    match (&b.store, b.create(&k, "image/jpeg", b"second").await) {
        (_, Err(_)) => {}
        // The grant's `If-None-Match: *` is signed (checked in `create`): AWS S3 answers
        // 412. Garage 2.5, the test store, ignores it on PutObject and stores the object
        // again, so on Garage this half of the contract is the store's to keep, not imgfn's.
        (Store::Bucket(_), Ok(())) => {
            eprintln!("NOTE: Garage replaced an object under a signed If-None-Match: *");
            return;
        }
        (Store::Folder(_), Ok(())) => panic!("an existing original was replaced"),
    }
    b.outwait_versions().await;
    assert_eq!(
        b.source.fetch(&k, 1 << 20).await.expect("fetch").as_ref(),
        b"first upload"
    );
}

/// Run a behaviour over both backends: `backend::<behaviour>::{folder, s3}`. A behaviour on
/// which S3 disagrees with the folder is written `behaviour => s3 #[ignore = "FINDING: ..."]`:
/// its S3 leg is reported, not hidden (`cargo test -- --ignored backend` shows it failing).
macro_rules! contract {
    ($($behaviour:ident $(=> s3 #[$s3:meta])?),+ $(,)?) => {$(
        mod $behaviour {
            #[tokio::test]
            async fn folder() {
                super::$behaviour(&super::Backend::folder().await).await;
            }

            #[tokio::test]
            $(#[$s3])?
            async fn s3() {
                crate::needs!(Garage);
                let test = stringify!($behaviour).replace('_', "-");
                super::$behaviour(&super::Backend::s3(&test).await).await;
            }
        }
    )+};
}

contract!(
    stat_finds_existing_keys_and_not_missing_ones,
    a_key_created_after_a_miss_is_found,
    version_changes_when_content_changes,
    fetch_refuses_bodies_over_max_bytes,
    head_bytes_reads_the_start,
    head_bytes_of_an_empty_original_is_empty,
    list_pages_in_key_order,
    hidden_keys_are_never_listed_and_pages_stay_full,
    keys_with_spaces_and_unicode,
    create_stores_new_originals_and_never_replaces,
);
