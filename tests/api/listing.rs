//! Listing at scale: the folder's sorted index (`source::fs_index`) against a fresh walk of a
//! big folder, following changes made behind imgfn's back within the revalidation window and
//! its own uploads at once, with cursors valid across refreshes; and over S3, a listing's
//! header reads in parallel, one per object version (ETag), counted on the wire.

use crate::probe::{s3_source_via, Proxy, SeenRequest};
use crate::support::{open_source, tempdir, testdata, Reply, S3Env, TestApp};
use bytes::Bytes;
use imgfn::config::Config;
use imgfn::key::Key;
use imgfn::source::{Listing, Source, FS_REVALIDATE};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// Every key of `root` a listing must show, by a walk of its own: regular files, no hidden
/// entries, bytewise key order.
fn fresh_walk(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if name.starts_with('.') {
                continue;
            }
            let key = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let t = entry.file_type().unwrap();
            if t.is_dir() {
                walk(&entry.path(), &key, out);
            } else if t.is_file() {
                out.push(key);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, "", &mut out);
    out.sort();
    out
}

async fn all_keys(source: &Source, prefix: &str, limit: u32) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = source
            .list(prefix, cursor.as_deref(), limit)
            .await
            .expect("list");
        assert!(page.entries.len() <= limit as usize);
        if page.next_cursor.is_some() {
            assert_eq!(
                page.entries.len(),
                limit as usize,
                "a short page mid-listing"
            );
        }
        keys.extend(page.entries.iter().map(|e| e.key.to_string()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return keys,
        }
    }
}

fn keys(page: &Listing) -> Vec<&str> {
    page.entries.iter().map(|e| e.key.as_str()).collect()
}

fn write(root: &Path, key: &str, bytes: &[u8]) {
    let path = root.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Set a directory's mtime (as if it had last changed then).
fn set_mtime(dir: &Path, at: SystemTime) {
    std::fs::File::open(dir)
        .and_then(|d| d.set_modified(at))
        .unwrap_or_else(|e| panic!("set mtime of {}: {e}", dir.display()));
}

/// Every directory of the tree (root included) last changed an hour ago: the index then
/// finds each change by the directory's new mtime, not by the recent-change rule.
fn age_dirs(root: &Path) {
    let old = SystemTime::now() - Duration::from_secs(3600);
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                todo.push(entry.path());
            }
        }
        set_mtime(&dir, old);
    }
}

/// 20,000 files: 10,000 in the root, 100 folders of 100, and hidden ones among them.
fn big_folder() -> std::path::PathBuf {
    let root = tempdir();
    for i in 0..10_000 {
        write(&root, &format!("f{i:05}.png"), b"x");
    }
    for d in 0..100 {
        for i in 0..100 {
            write(&root, &format!("d{d:02}/{i:03} photo.jpg"), b"xy");
        }
        write(&root, &format!("d{d:02}/.part-{d}.jpg"), b"hidden");
    }
    write(&root, ".imgfn-uploads/abc/part-1", b"hidden");
    root
}

async fn outwait_refresh() {
    tokio::time::sleep(FS_REVALIDATE + Duration::from_millis(300)).await;
}

#[tokio::test]
async fn pages_of_a_big_folder_match_a_fresh_walk_and_answer_without_a_walk() {
    let root = big_folder();
    let source = open_source(&Config::with_root(&root)).await;
    let expected = fresh_walk(&root);
    assert_eq!(expected.len(), 20_000);

    let started = Instant::now();
    let first = source.list("", None, 100).await.expect("first page");
    let build = started.elapsed();
    assert_eq!(keys(&first), expected[..100]);
    for limit in [1000, 777] {
        assert_eq!(
            all_keys(&source, "", limit).await,
            expected,
            "limit {limit}"
        );
    }
    let d42: Vec<String> = expected
        .iter()
        .filter(|k| k.starts_with("d42/"))
        .cloned()
        .collect();
    assert_eq!(all_keys(&source, "d42/", 30).await, d42);
    assert_eq!(all_keys(&source, "f0999", 3).await.len(), 10);

    // A page deep in the folder (the fiftieth of 100) costs its own entries, not a walk of
    // the tree: far less than the listing that built the index.
    let cursor = expected[49 * 100 - 1].clone();
    let mut deep = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let page = source
            .list("", Some(&cursor), 100)
            .await
            .expect("deep page");
        deep.push(started.elapsed());
        assert_eq!(keys(&page), expected[4900..5000]);
        assert_eq!(page.next_cursor.as_deref(), Some(expected[4999].as_str()));
    }
    deep.sort();
    eprintln!(
        "20,000 files: first listing {build:?}, page 50 (median of 5) {:?}",
        deep[2]
    );
    assert!(
        deep[2] * 5 < build,
        "page 50 took {:?}, the first listing {build:?}: pages walk the folder",
        deep[2]
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[tokio::test]
async fn concurrent_first_listings_agree() {
    let root = big_folder();
    let source = std::sync::Arc::new(open_source(&Config::with_root(&root)).await);
    let expected = fresh_walk(&root);
    let pages: Vec<_> = (0..8)
        .map(|i| {
            let source = source.clone();
            let cursor = expected[i * 2000].clone();
            tokio::spawn(async move { source.list("", Some(&cursor), 50).await })
        })
        .collect();
    for (i, page) in pages.into_iter().enumerate() {
        let page = page.await.unwrap().expect("list");
        assert_eq!(
            keys(&page),
            expected[i * 2000 + 1..i * 2000 + 51],
            "page {i}"
        );
    }
    std::fs::remove_dir_all(&root).unwrap();
}

#[tokio::test]
async fn the_index_follows_changes_made_behind_its_back() {
    let root = tempdir();
    for k in [
        "a.jpg",
        "b.jpg",
        "c.jpg",
        "sub/d.jpg",
        "sub/e.jpg",
        "gone/f.jpg",
    ] {
        write(&root, k, k.as_bytes());
    }
    age_dirs(&root);
    let source = open_source(&Config::with_root(&root)).await;
    assert_eq!(all_keys(&source, "", 2).await, fresh_walk(&root));

    // Added, removed, renamed (in place and across folders), a folder removed, a folder
    // moved in, a hidden file and a symlink added: all behind imgfn's back.
    write(&root, "new.jpg", b"new");
    std::fs::remove_file(root.join("b.jpg")).unwrap();
    std::fs::rename(root.join("c.jpg"), root.join("c2.jpg")).unwrap();
    std::fs::rename(root.join("sub/d.jpg"), root.join("d-moved.jpg")).unwrap();
    std::fs::remove_dir_all(root.join("gone")).unwrap();
    let outside = tempdir();
    write(&outside, "deep/g.jpg", b"g");
    std::fs::rename(outside.join("deep"), root.join("deep")).unwrap();
    write(&root, "sub/.upload.part", b"hidden");
    std::os::unix::fs::symlink(root.join("a.jpg"), root.join("link.jpg")).unwrap();
    outwait_refresh().await;
    let expected = [
        "a.jpg",
        "c2.jpg",
        "d-moved.jpg",
        "deep/g.jpg",
        "new.jpg",
        "sub/e.jpg",
    ];
    assert_eq!(all_keys(&source, "", 2).await, expected);
    assert_eq!(fresh_walk(&root), expected);
    // And in a folder last changed long ago, a file renamed within it.
    age_dirs(&root);
    outwait_refresh().await;
    assert_eq!(all_keys(&source, "", 100).await, expected);
    std::fs::rename(root.join("sub/e.jpg"), root.join("sub/e2.jpg")).unwrap();
    outwait_refresh().await;
    assert_eq!(all_keys(&source, "sub/", 100).await, ["sub/e2.jpg"]);
    std::fs::remove_dir_all(&root).unwrap();
}

/// A change in the same mtime tick as the folder's read leaves its mtime as the index saw it
/// (modelled by setting it back): the folder was read too recently to trust that, and is
/// read again at the next check.
#[tokio::test]
async fn a_change_in_the_same_clock_tick_is_not_missed() {
    let root = tempdir();
    write(&root, "a.jpg", b"a");
    let tick = SystemTime::now() - Duration::from_millis(500);
    set_mtime(&root, tick);
    let source = open_source(&Config::with_root(&root)).await;
    assert_eq!(all_keys(&source, "", 10).await, ["a.jpg"]);
    write(&root, "b.jpg", b"b");
    set_mtime(&root, tick);
    outwait_refresh().await;
    assert_eq!(all_keys(&source, "", 10).await, ["a.jpg", "b.jpg"]);
    std::fs::remove_dir_all(&root).unwrap();
}

/// What the index cannot know before its next check is still listed right: a file edited in
/// place shows its new size and version at once (both read per page), and files gone since
/// are skipped with the page still full.
#[tokio::test]
async fn pages_read_sizes_now_and_stay_full_when_files_are_gone() {
    let root = tempdir();
    for i in 0..30 {
        write(&root, &format!("{i:02}.jpg"), b"12345");
    }
    let source = open_source(&Config::with_root(&root)).await;
    let before = source.list("", None, 10).await.expect("list");
    assert_eq!(before.entries[0].size, 5);
    write(&root, "00.jpg", b"1234567");
    for i in 1..8 {
        std::fs::remove_file(root.join(format!("{i:02}.jpg"))).unwrap();
    }
    // Within the window: no check of the folder yet.
    let page = source.list("", None, 10).await.expect("list");
    let expected: Vec<String> = [0]
        .into_iter()
        .chain(8..17)
        .map(|i| format!("{i:02}.jpg"))
        .collect();
    assert_eq!(keys(&page), expected);
    assert_eq!(page.next_cursor.as_deref(), Some("16.jpg"));
    assert_eq!(page.entries[0].size, 7);
    assert_ne!(page.entries[0].version, before.entries[0].version);
    let meta = std::fs::metadata(root.join("00.jpg")).unwrap();
    let stat = imgfn::source::fs::FsSource::new(&root)
        .unwrap()
        .stat(&Key::parse("00.jpg").unwrap())
        .await
        .unwrap();
    assert_eq!(page.entries[0].version, stat.version);
    assert_eq!(stat.size, meta.len());
    std::fs::remove_dir_all(&root).unwrap();
}

/// A cursor is a key, not a position: it stays valid when the folder changes between pages,
/// even when its own key is gone.
#[tokio::test]
async fn cursors_stay_valid_across_refreshes() {
    let root = tempdir();
    for i in (0..40).step_by(2) {
        write(&root, &format!("{i:02}.jpg"), b"x");
    }
    let source = open_source(&Config::with_root(&root)).await;
    let first = source.list("", None, 5).await.expect("list");
    assert_eq!(
        keys(&first),
        ["00.jpg", "02.jpg", "04.jpg", "06.jpg", "08.jpg"]
    );
    let cursor = first.next_cursor.expect("more pages");
    std::fs::remove_file(root.join("08.jpg")).unwrap();
    for new in ["01.jpg", "09.jpg", "11.jpg"] {
        write(&root, new, b"x");
    }
    outwait_refresh().await;
    let next = source.list("", Some(&cursor), 5).await.expect("list");
    assert_eq!(
        keys(&next),
        ["09.jpg", "10.jpg", "11.jpg", "12.jpg", "14.jpg"]
    );
    std::fs::remove_dir_all(&root).unwrap();
}

/// What imgfn stores itself is listed at once, without waiting for the next check.
#[tokio::test]
async fn uploads_are_listed_at_once() {
    let root = tempdir();
    write(&root, "a.jpg", b"a");
    age_dirs(&root);
    let source = open_source(&Config::with_root(&root)).await;
    assert_eq!(all_keys(&source, "", 10).await, ["a.jpg"]);
    let started = Instant::now();
    for key in ["b.jpg", "new/folder/c.jpg"] {
        source
            .write_new(&Key::parse(key).unwrap(), Bytes::from_static(b"upload"))
            .await
            .expect("write_new");
    }
    let listed = all_keys(&source, "", 10).await;
    assert!(
        started.elapsed() < FS_REVALIDATE,
        "too slow to tell the index from its check"
    );
    assert_eq!(listed, ["a.jpg", "b.jpg", "new/folder/c.jpg"]);
    // The next check finds the same files (the new folder walked once, not listed twice).
    outwait_refresh().await;
    assert_eq!(all_keys(&source, "", 10).await, listed);
    std::fs::remove_dir_all(&root).unwrap();
}

/// The requests for objects (not listings) the proxy saw, by object path.
fn object_gets(proxy: &Proxy, s3: &S3Env) -> Vec<(String, Option<String>)> {
    let bucket = format!("/{}/{}", s3.bucket, s3.prefix);
    proxy
        .requests()
        .into_iter()
        .filter(|r: &SeenRequest| r.method == "GET" && !r.target.contains("list-type="))
        .filter_map(|r| {
            let path = r
                .target
                .split('?')
                .next()?
                .strip_prefix(&bucket)?
                .to_string();
            Some((path, r.header("range").map(str::to_string)))
        })
        .collect()
}

#[tokio::test]
async fn s3_header_reads_run_in_parallel_once_per_etag() {
    crate::needs!(Garage);
    let s3 = S3Env::new("listing-etag").await;
    let photo = std::fs::read(testdata().join("small.jpg")).unwrap();
    let names: Vec<String> = (0..12).map(|i| format!("p{i:02}.jpg")).collect();
    for name in &names {
        s3.put(name, &photo).await;
    }
    let mut config = s3.config();
    config.gallery = Some(imgfn::config::GalleryMode::Public);
    let proxy = Proxy::before_s3().await;
    let source = s3_source_via(&proxy.endpoint(), &s3, &config, 10_000);
    let app = TestApp::spawn_source(config, source).await;
    let list = || async {
        let page = Reply::send(
            app.client
                .get(app.url("/_/gallery.json?placeholders=0&limit=100")),
        )
        .await;
        assert_eq!(page.status, 200, "{}", String::from_utf8_lossy(&page.body));
        page.json()["items"].as_array().unwrap().clone()
    };

    let items = list().await;
    assert_eq!(items.len(), 12);
    let first = object_gets(&proxy, &s3);
    let mut read: Vec<&str> = first.iter().map(|(k, _)| k.as_str()).collect();
    read.sort();
    assert_eq!(read, names, "one ranged read per object");
    assert!(first
        .iter()
        .all(|(_, range)| range.as_deref() == Some("bytes=0-65535")));
    // In parallel: the reads needed connections of their own.
    let connections = proxy.connections();
    assert!(
        connections >= 4,
        "{connections} connections for 12 header reads: they ran one after another"
    );

    // Listed again, unchanged: nothing read.
    assert_eq!(list().await, items);
    assert_eq!(
        object_gets(&proxy, &s3).len(),
        first.len(),
        "unchanged objects read again"
    );

    // One object replaced (a new ETag): that one alone is read again, its new size listed.
    let png = std::fs::read(testdata().join("alpha-small.png")).unwrap();
    s3.put("p05.jpg", &png).await;
    let items = list().await;
    // The proxy groups requests by connection: compare the reads of each key, not positions.
    let mut again: Vec<String> = object_gets(&proxy, &s3)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for (before, _) in &first {
        let at = again
            .iter()
            .position(|k| k == before)
            .expect("a read vanished");
        again.remove(at);
    }
    assert_eq!(again, ["p05.jpg"], "reads after one object changed");
    let p05 = items.iter().find(|i| i["key"] == "p05.jpg").unwrap();
    assert_eq!(
        (p05["width"].as_u64(), p05["format"].as_str()),
        (Some(400), Some("png"))
    );
}
