//! The folder's listing index: every listable key of the tree in key order, kept between
//! listings, so that a page is a binary search to its cursor and a `stat` of its own files
//! rather than a walk and sort of the whole tree.
//!
//! **What is indexed.** Only names: each listed file's key (a `Box<str>`, about 40 bytes plus
//! the key's length, including the allocator's share) and each directory's mtime at its last
//! scan. Sizes and versions are read when a page is answered (one `lstat` per entry), so an
//! original edited in place shows its new version at once, with no index change at all.
//!
//! **How changes are seen.** A directory's mtime changes whenever an entry is created,
//! removed or renamed in it. At most once per `interval` (1 s, the folder's stat window), and
//! only when a listing is asked for, every indexed directory is `stat`ed; a changed one is
//! read again (one `read_dir`, not its subtree), a vanished one dropped with its subtree, a
//! new one walked. That costs one system call per directory per second of listing and nothing
//! while nobody lists; it needs no watcher thread, no new dependency and no inotify watch
//! budget (one watch per directory, 8192 by default on older kernels, queue overflows to
//! handle), and it works on every filesystem that keeps mtimes, network ones included, where
//! inotify sees nothing. Like git's index, a directory whose mtime is within [`RACY`] of the
//! moment it was read is read again at the next check: a change in the same clock tick as the
//! read would otherwise leave its mtime unchanged. Files imgfn writes itself (uploads) are
//! inserted at once ([`FsIndex::insert`]).
//!
//! **Bounds.** Above `max_keys` listable files the index is not kept (a tree that large is
//! most likely a mistake, e.g. serving `/`): each page is then answered by a walk that keeps
//! only the page's candidates (slow, constant memory), and building is tried again after
//! [`RETRY_TOO_BIG`]. One refresh runs at a time, on a blocking thread, holding the refresh
//! lock for its whole duration even when the listing that started it is dropped; listings
//! that find the index stale wait for it. Readers copy a page's keys under a read lock held
//! for microseconds.

use super::{Listed, Listing};
use crate::error::{Error, Result};
use crate::key::Key;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// Listable files above which no index is kept (about 60 MB of keys of 20 characters).
pub const MAX_INDEXED_KEYS: usize = 1_000_000;
/// A directory modified this close to the moment it was read is read again at the next check.
pub const RACY: Duration = Duration::from_secs(2);
/// How long a tree found too big to index is walked per page before indexing is tried again.
pub const RETRY_TOO_BIG: Duration = Duration::from_secs(60);
/// A page that finds this many indexed files gone refreshes the index and starts again.
const MAX_MISSES: usize = 256;

/// The sorted listing index of one folder (see the module documentation).
#[derive(Debug)]
pub struct FsIndex {
    root: PathBuf,
    interval: Duration,
    max_keys: usize,
    state: RwLock<State>,
    /// Held by the one refresh (or insert) that changes the index.
    refresh: Arc<tokio::sync::Mutex<()>>,
    /// Set when the index may be wrong now (a page found a file gone, `invalidate`).
    stale: AtomicBool,
}

#[derive(Debug)]
enum State {
    Unbuilt,
    Built(Tree),
    TooBig { since: Instant },
}

#[derive(Debug, Default)]
struct Tree {
    /// Every listable key, sorted bytewise (as S3 sorts), unique.
    keys: Vec<Box<str>>,
    /// Every listed directory ("" is the root, else its key prefix without the last `/`).
    dirs: HashMap<Box<str>, Dir>,
    /// When the directories were last `stat`ed.
    checked: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Dir {
    mtime: SystemTime,
    /// When it was `stat`ed, just before its entries were read.
    read_at: SystemTime,
}

impl Dir {
    /// Whether a change in the same mtime tick as the read could have gone unseen.
    fn racy(&self) -> bool {
        self.read_at
            .duration_since(self.mtime)
            .map_or(true, |age| age < RACY)
    }
}

/// One directory read: its mtime, the keys of its files, its subdirectories (relative names).
struct Scanned {
    dir: Dir,
    files: Vec<Box<str>>,
    subdirs: Vec<Box<str>>,
}

/// Why a walk stopped.
enum Walk {
    TooBig,
    Failed(Error),
}

impl FsIndex {
    /// The index of `root` (canonical), revalidated at most once per `interval`.
    pub fn new(root: PathBuf, interval: Duration) -> FsIndex {
        FsIndex {
            root,
            interval,
            max_keys: MAX_INDEXED_KEYS,
            state: RwLock::new(State::Unbuilt),
            refresh: Arc::new(tokio::sync::Mutex::new(())),
            stale: AtomicBool::new(false),
        }
    }

    /// The same index keeping at most `max_keys` keys (tests of the fallback use a small one).
    pub fn with_max_keys(mut self, max_keys: usize) -> FsIndex {
        self.max_keys = max_keys;
        self
    }

    /// One page of keys under `prefix` after `cursor` (the last key of the previous page), in
    /// key order, with each file's size and version read now.
    pub async fn list(
        self: &Arc<Self>,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Listing> {
        let (prefix, cursor) = (prefix.to_string(), cursor.map(str::to_string));
        for _ in 0..2 {
            self.ensure_fresh().await?;
            let this = self.clone();
            let (prefix, cursor) = (prefix.clone(), cursor.clone());
            let page = blocking(move || this.page(&prefix, cursor.as_deref(), limit)).await?;
            if let Some(listing) = page {
                return Ok(listing);
            }
            // Too many indexed files were gone: refresh, then answer from the new index.
            self.stale.store(true, Ordering::SeqCst);
        }
        Err(Error::Internal(
            "fs index: the folder changes faster than it can be listed".into(),
        ))
    }

    /// Record an original imgfn has just stored (an upload), so the next listing shows it
    /// without waiting for the next check. Call it after the file has its final name.
    pub async fn insert(&self, key: &Key) {
        // Under the refresh lock: a refresh running now computes its result from the index
        // as it was, and would otherwise drop this key until the next check.
        let _one = self.refresh.lock().await;
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if let State::Built(tree) = &mut *state {
            let k = key.as_str();
            if let Err(at) = tree.keys.binary_search_by(|probe| (**probe).cmp(k)) {
                tree.keys.insert(at, k.into());
            }
        }
    }

    /// Have the next listing check the folder at once (something changed that imgfn knows
    /// of but cannot name, e.g. several files moved in).
    pub fn invalidate(&self) {
        self.stale.store(true, Ordering::SeqCst);
    }

    /// How many keys the index holds (`None` when it is not built or the tree is too big).
    pub fn indexed_keys(&self) -> Option<usize> {
        match &*self.state.read().unwrap_or_else(|e| e.into_inner()) {
            State::Built(tree) => Some(tree.keys.len()),
            _ => None,
        }
    }

    fn is_fresh(&self) -> bool {
        if self.stale.load(Ordering::SeqCst) {
            return false;
        }
        match &*self.state.read().unwrap_or_else(|e| e.into_inner()) {
            State::Unbuilt => false,
            State::Built(tree) => tree.checked.is_some_and(|at| at.elapsed() < self.interval),
            State::TooBig { since } => since.elapsed() < RETRY_TOO_BIG,
        }
    }

    /// Build or revalidate the index unless it was checked within the interval. One at a
    /// time: the others wait here and then use its result.
    async fn ensure_fresh(self: &Arc<Self>) -> Result<()> {
        if self.is_fresh() {
            return Ok(());
        }
        let one = self.refresh.clone().lock_owned().await;
        if self.is_fresh() {
            return Ok(());
        }
        let this = self.clone();
        // The guard goes with the work: a listing dropped meanwhile does not let a second
        // refresh start beside this one.
        blocking(move || {
            let result = this.refresh_now();
            drop(one);
            result
        })
        .await
    }

    /// Revalidate (or build) the index now. Runs on a blocking thread under the refresh lock.
    fn refresh_now(&self) -> Result<()> {
        self.stale.store(false, Ordering::SeqCst);
        let started = Instant::now();
        let next = {
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            match &*state {
                State::Built(tree) => self.revalidated(tree).map(Some),
                State::Unbuilt | State::TooBig { .. } => Ok(None),
            }
        };
        let next = match next {
            Ok(Some(Some(tree))) => State::Built(tree),
            Ok(Some(None)) => {
                // Nothing changed: only the time of the check.
                let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
                if let State::Built(tree) = &mut *state {
                    tree.checked = Some(started);
                }
                return Ok(());
            }
            Ok(None) => self.built(started)?,
            Err(Walk::TooBig) => self.too_big(),
            Err(Walk::Failed(e)) => return Err(e),
        };
        if let State::Built(tree) = &next {
            tracing::debug!(
                keys = tree.keys.len(),
                dirs = tree.dirs.len(),
                ms = started.elapsed().as_millis() as u64,
                "fs index refreshed"
            );
        }
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = next;
        Ok(())
    }

    fn built(&self, started: Instant) -> Result<State> {
        let mut tree = Tree::default();
        match self.walk_into("", &mut tree) {
            Ok(()) => {
                tree.keys.sort_unstable();
                tree.keys.dedup();
                tree.checked = Some(started);
                tracing::info!(
                    root = %self.root.display(),
                    keys = tree.keys.len(),
                    dirs = tree.dirs.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "fs index built"
                );
                Ok(State::Built(tree))
            }
            Err(Walk::TooBig) => Ok(self.too_big()),
            Err(Walk::Failed(e)) => Err(e),
        }
    }

    fn too_big(&self) -> State {
        tracing::warn!(
            root = %self.root.display(),
            max_keys = self.max_keys,
            "fs index: more files than the index keeps; each listing page walks the folder"
        );
        State::TooBig {
            since: Instant::now(),
        }
    }

    /// The tree after this check, or `None` when no directory changed.
    fn revalidated(&self, tree: &Tree) -> std::result::Result<Option<Tree>, Walk> {
        let mut changed: Vec<&str> = Vec::new();
        let mut gone: Vec<&str> = Vec::new();
        for (dir, known) in &tree.dirs {
            match std::fs::symlink_metadata(self.path_of(dir)) {
                Ok(m) if m.is_dir() => {
                    if m.modified().ok() != Some(known.mtime) || known.racy() {
                        changed.push(dir);
                    }
                }
                _ => gone.push(dir),
            }
        }
        if changed.is_empty() && gone.is_empty() {
            return Ok(None);
        }
        // Read the changed directories again; walk the subdirectories new to the index.
        let mut fresh = Tree::default();
        let mut reread: HashSet<&str> = HashSet::new();
        for dir in changed {
            let scanned = match self.scan(dir) {
                Ok(s) => s,
                // Gone between the stat and the read.
                Err(_) => {
                    gone.push(dir);
                    continue;
                }
            };
            let present: HashSet<&str> = scanned.subdirs.iter().map(|s| &**s).collect();
            for sub in &scanned.subdirs {
                if !tree.dirs.contains_key(sub) {
                    self.walk_into(sub, &mut fresh)?;
                }
            }
            // Known subdirectories no longer there (removed, renamed, now a file).
            for known in tree.dirs.keys() {
                if parent_of(known) == Some(dir) && !present.contains(&**known) {
                    gone.push(known);
                }
            }
            fresh.keys.extend(scanned.files);
            fresh.dirs.insert(dir.into(), scanned.dir);
            reread.insert(dir);
        }
        let gone_prefixes: Vec<String> = gone.iter().map(|g| format!("{g}/")).collect();
        let under_gone = |k: &str| gone_prefixes.iter().any(|g| k.starts_with(g.as_str()));
        let mut keys: Vec<Box<str>> = Vec::with_capacity(tree.keys.len() + fresh.keys.len());
        keys.extend(
            tree.keys
                .iter()
                .filter(|k| !reread.contains(parent_of(k).unwrap_or("")) && !under_gone(k))
                .cloned(),
        );
        if keys.len() + fresh.keys.len() > self.max_keys {
            return Err(Walk::TooBig);
        }
        // A folder read again but gone meanwhile from its parent (moved while being read).
        fresh.keys.retain(|k| !under_gone(k));
        // Two sorted runs: the stable sort merges them in linear time.
        fresh.keys.sort_unstable();
        keys.append(&mut fresh.keys);
        keys.sort();
        keys.dedup();
        let mut dirs = fresh.dirs;
        dirs.retain(|dir, _| !gone.contains(&&**dir) && !under_gone(dir));
        for (dir, known) in &tree.dirs {
            let dropped = gone.contains(&&**dir) || under_gone(dir);
            if !dropped && !dirs.contains_key(dir) {
                dirs.insert(dir.clone(), *known);
            }
        }
        Ok(Some(Tree {
            keys,
            dirs,
            checked: Some(Instant::now()),
        }))
    }

    /// Walk the directory `dir` (relative; "" is the root) and everything under it into `tree`.
    fn walk_into(&self, dir: &str, tree: &mut Tree) -> std::result::Result<(), Walk> {
        let mut todo: Vec<Box<str>> = vec![dir.into()];
        while let Some(dir) = todo.pop() {
            let scanned = match self.scan(&dir) {
                Ok(s) => s,
                // The root must be readable; a subdirectory gone meanwhile is simply not listed.
                Err(e) if dir.is_empty() => return Err(Walk::Failed(e)),
                Err(_) => continue,
            };
            if tree.keys.len() + scanned.files.len() > self.max_keys {
                return Err(Walk::TooBig);
            }
            tree.keys.extend(scanned.files);
            todo.extend(scanned.subdirs);
            tree.dirs.insert(dir, scanned.dir);
        }
        Ok(())
    }

    /// Read one directory: its listable files (as keys) and its subdirectories. Hidden
    /// entries (a leading `.`), symlinks, names that are not UTF-8 or not valid keys are left
    /// out, as they always were.
    fn scan(&self, dir: &str) -> Result<Scanned> {
        let io = |e: std::io::Error| Error::Internal(format!("fs list: {e}"));
        let path = self.path_of(dir);
        let read_at = SystemTime::now();
        // The mtime before the entries: a change while reading them shows as a newer mtime.
        let mtime = std::fs::symlink_metadata(&path)
            .and_then(|m| m.modified())
            .map_err(io)?;
        let mut files = Vec::new();
        let mut subdirs = Vec::new();
        for entry in std::fs::read_dir(&path).map_err(io)? {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            let key = if dir.is_empty() {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            };
            // `file_type` comes from the directory entry itself (no `stat`) on Linux.
            match entry.file_type() {
                Ok(t) if t.is_file() && Key::parse(&key).is_ok() => {
                    files.push(key.into_boxed_str())
                }
                Ok(t) if t.is_dir() => subdirs.push(key.into_boxed_str()),
                _ => {}
            }
        }
        Ok(Scanned {
            dir: Dir { mtime, read_at },
            files,
            subdirs,
        })
    }

    fn path_of(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }

    /// A page from the index, or from a walk when the tree is too big to index. `None` when
    /// too many indexed files were gone (the caller refreshes and asks again).
    fn page(&self, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<Option<Listing>> {
        let wanted = limit as usize + 1;
        let mut entries: Vec<Listed> = Vec::with_capacity(wanted);
        let mut after: Option<String> = cursor.map(str::to_string);
        let mut misses = 0;
        let mut parents = Parents::new(&self.root);
        loop {
            // Copy the next candidates out: the read lock is never held across a `stat`.
            let batch = match self.candidates(prefix, after.as_deref(), wanted - entries.len()) {
                Some(batch) => batch,
                None => return self.walked_page(prefix, cursor, limit).map(Some),
            };
            let Some(last) = batch.last() else { break };
            after = Some(last.to_string());
            let exhausted = batch.len() < wanted - entries.len();
            for key in batch {
                match self.listed(&key, &mut parents) {
                    Some(listed) => entries.push(listed),
                    None => misses += 1,
                }
            }
            if entries.len() >= wanted || exhausted {
                break;
            }
            if misses >= MAX_MISSES {
                return Ok(None);
            }
        }
        if misses > 0 {
            // Files the index still names are gone: check the folder at the next listing.
            self.stale.store(true, Ordering::SeqCst);
        }
        Ok(Some(finish(entries, limit)))
    }

    /// Up to `n` indexed keys under `prefix` after `after`; `None` when there is no index.
    fn candidates(&self, prefix: &str, after: Option<&str>, n: usize) -> Option<Vec<Box<str>>> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        let State::Built(tree) = &*state else {
            return None;
        };
        let keys = &tree.keys;
        let mut start = keys.partition_point(|k| **k < *prefix);
        if let Some(after) = after {
            start = start.max(keys.partition_point(|k| **k <= *after));
        }
        Some(
            keys[start..]
                .iter()
                .take_while(|k| k.starts_with(prefix))
                .take(n)
                .cloned()
                .collect(),
        )
    }

    /// A file of the index as listed now: `None` when it is gone or no longer a regular file
    /// inside the root.
    fn listed(&self, key: &str, parents: &mut Parents<'_>) -> Option<Listed> {
        let key = Key::parse(key).ok()?;
        let path = self.root.join(key.as_str());
        let meta = std::fs::symlink_metadata(&path).ok()?;
        if !meta.is_file() || !parents.inside(&path) {
            return None;
        }
        Some(Listed {
            key,
            size: meta.len(),
            version: super::fs::version_of(&meta),
        })
    }

    /// The fallback for a tree too big to index: walk it whole, keeping only the `limit + 1`
    /// smallest keys after the cursor (memory bounded by the page, time by the tree).
    fn walked_page(&self, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<Listing> {
        let wanted = limit as usize + 1;
        let mut best: BinaryHeap<Box<str>> = BinaryHeap::with_capacity(wanted + 1);
        let mut todo: Vec<Box<str>> = vec!["".into()];
        while let Some(dir) = todo.pop() {
            let scanned = match self.scan(&dir) {
                Ok(s) => s,
                Err(e) if dir.is_empty() => return Err(e),
                Err(_) => continue,
            };
            // A subtree whose keys cannot start with the prefix is not walked.
            todo.extend(scanned.subdirs.into_iter().filter(|d| {
                let d = format!("{d}/");
                d.starts_with(prefix) || prefix.starts_with(&d)
            }));
            for key in scanned.files {
                if !key.starts_with(prefix) || cursor.is_some_and(|c| *key <= *c) {
                    continue;
                }
                if best.len() < wanted {
                    best.push(key);
                } else if best.peek().is_some_and(|top| key < *top) {
                    best.pop();
                    best.push(key);
                }
            }
        }
        let mut parents = Parents::new(&self.root);
        let entries: Vec<Listed> = best
            .into_sorted_vec()
            .iter()
            .filter_map(|k| self.listed(k, &mut parents))
            .collect();
        Ok(finish(entries, limit))
    }
}

/// A page of at most `limit` entries out of up to `limit + 1`: the extra one says that a next
/// page exists, which starts after this page's last key.
fn finish(mut entries: Vec<Listed>, limit: u32) -> Listing {
    let more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    let next_cursor = more
        .then(|| entries.last().map(|e| e.key.to_string()))
        .flatten();
    Listing {
        entries,
        next_cursor,
    }
}

/// The directory a key or relative directory is in ("" for the root's), `None` for the root.
fn parent_of(rel: &str) -> Option<&str> {
    if rel.is_empty() {
        return None;
    }
    Some(rel.rsplit_once('/').map_or("", |(parent, _)| parent))
}

/// Whether a file's folder still resolves inside the root (a folder swapped for a symlink
/// since it was indexed must not list what it points to), once per folder and page.
struct Parents<'a> {
    root: &'a Path,
    seen: HashMap<PathBuf, bool>,
}

impl<'a> Parents<'a> {
    fn new(root: &'a Path) -> Parents<'a> {
        Parents {
            root,
            seen: HashMap::new(),
        }
    }

    fn inside(&mut self, file: &Path) -> bool {
        let Some(parent) = file.parent() else {
            return false;
        };
        if parent == self.root {
            return true;
        }
        if let Some(&inside) = self.seen.get(parent) {
            return inside;
        }
        let inside = parent
            .canonicalize()
            .is_ok_and(|p| p.starts_with(self.root));
        self.seen.insert(parent.to_path_buf(), inside);
        inside
    }
}

/// Run blocking filesystem work off the reactor, in one hop.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("fs index task: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(listing: &Listing) -> Vec<&str> {
        listing.entries.iter().map(|e| e.key.as_str()).collect()
    }

    fn touch(root: &Path, key: &str) {
        let path = root.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, key.as_bytes()).unwrap();
    }

    fn temp() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("imgfn-fs-index-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.canonicalize().unwrap()
    }

    #[test]
    fn parents() {
        assert_eq!(parent_of(""), None);
        assert_eq!(parent_of("a.jpg"), Some(""));
        assert_eq!(parent_of("a/b/c.jpg"), Some("a/b"));
    }

    #[test]
    fn racy_directories_are_read_again() {
        let now = SystemTime::now();
        let dir = |age: u64| Dir {
            mtime: now - Duration::from_secs(age),
            read_at: now,
        };
        assert!(dir(0).racy() && dir(1).racy());
        assert!(!dir(3).racy());
        // An mtime in the future (clock skew): racy.
        assert!(Dir {
            mtime: now + Duration::from_secs(5),
            read_at: now
        }
        .racy());
    }

    /// With a zero interval every listing checks: the index follows creations, removals,
    /// renames and removed folders, hidden entries stay hidden.
    #[tokio::test]
    async fn follows_changes_made_behind_its_back() {
        let root = temp();
        for k in [
            "b.jpg",
            "a/x.jpg",
            "a/y.jpg",
            "c/d/e.jpg",
            ".hidden.jpg",
            "a/.tmp/z.jpg",
        ] {
            touch(&root, k);
        }
        let index = Arc::new(FsIndex::new(root.clone(), Duration::ZERO));
        let all = index.list("", None, 100).await.unwrap();
        assert_eq!(keys(&all), ["a/x.jpg", "a/y.jpg", "b.jpg", "c/d/e.jpg"]);
        touch(&root, "a/new.jpg");
        std::fs::remove_file(root.join("b.jpg")).unwrap();
        std::fs::rename(root.join("a/x.jpg"), root.join("a/renamed.jpg")).unwrap();
        std::fs::remove_dir_all(root.join("c")).unwrap();
        touch(&root, "f/g/h.jpg");
        std::fs::rename(root.join("f"), root.join("moved")).unwrap();
        let all = index.list("", None, 100).await.unwrap();
        assert_eq!(
            keys(&all),
            ["a/new.jpg", "a/renamed.jpg", "a/y.jpg", "moved/g/h.jpg"]
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// Too many files for the index: pages come from a walk, the same pages.
    #[tokio::test]
    async fn a_tree_too_big_to_index_is_walked_per_page() {
        let root = temp();
        let mut expected: Vec<String> = (0..50).map(|i| format!("d{}/{i:03}.jpg", i % 3)).collect();
        for k in &expected {
            touch(&root, k);
        }
        expected.sort();
        let index = Arc::new(FsIndex::new(root.clone(), Duration::from_secs(60)).with_max_keys(10));
        let mut got = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = index.list("", cursor.as_deref(), 7).await.unwrap();
            got.extend(keys(&page).iter().map(|k| k.to_string()));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(got, expected);
        assert_eq!(
            index.indexed_keys(),
            None,
            "a tree over the cap is not indexed"
        );
        let d1 = index.list("d1/", None, 100).await.unwrap();
        assert_eq!(d1.entries.len(), 17);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
