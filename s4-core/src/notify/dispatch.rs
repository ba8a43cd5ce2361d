//! The dispatcher task: S4's own changes and the watcher's, coalesced per
//! `(bucket, key)`, turned into events and handed to the endpoint queues.
//!
//! Coalescing (§14.5): a key's changes within the window (200 ms) are merged;
//! after a window of quiet the key's *current state* decides the one event. For
//! S4's own changes that state is the last change published (no extra request per
//! event on S3); when the watcher saw the key, the file on disk decides.
//!
//! S4's own writes to a watched directory (the local backend's, or an engine's
//! under `BUCKET_DATA_PATH`) are seen twice: published by s4-core, and by the
//! watcher. Both usually land in the same window and merge; a watcher report
//! that arrives later is dropped when it shows the state S4 itself reported for
//! that key within the last [`OWN_ECHO_WINDOW`].

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::delivery::{payload, uuid_v4, Deliverer, Delivery};
use super::matching::{OBJECT_CREATED_PUT, OBJECT_REMOVED_DELETE};
use super::watcher::FsChange;
use super::Shared;
use crate::events::{ChangeKind, ObjectChange};

/// How long S4's own report of a key absorbs the watcher's echo of it.
pub(crate) const OWN_ECHO_WINDOW: Duration = Duration::from_secs(5);

type Key = (String, String);

/// The state an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Present(u64),
    Absent,
}

#[derive(Debug)]
struct Pending {
    deadline: Instant,
    own: Option<State>,
    seen_on_disk: bool,
}

pub(crate) struct Dispatcher {
    shared: Arc<Shared>,
    window: Duration,
    pending: HashMap<Key, Pending>,
    /// Deadlines in arrival order (the window is constant, so they are sorted);
    /// an entry is stale when the key's pending deadline moved on.
    order: VecDeque<(Instant, Key)>,
    /// S4's own recent reports: state, the file's modification time (local
    /// backend), when.
    recent_own: HashMap<Key, (State, Option<SystemTime>, Instant)>,
    recent_order: VecDeque<(Instant, Key)>,
    /// Directories that appeared on disk, to scan again when due: (due, bucket
    /// and directory key, when it appeared).
    rescans: VecDeque<(Instant, Key, Instant)>,
    /// When each key was last settled (reported or found unchanged), for
    /// [`OWN_ECHO_WINDOW`]: a rescan does not report a key settled since its
    /// directory appeared.
    settled: HashMap<Key, Instant>,
    settled_order: VecDeque<(Instant, Key)>,
    deliverer: Deliverer,
}

impl Dispatcher {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let deliverer = Deliverer::new(shared.options.delivery.clone(), Arc::clone(&shared.client));
        Dispatcher {
            window: shared.options.coalesce_window,
            shared,
            pending: HashMap::new(),
            order: VecDeque::new(),
            recent_own: HashMap::new(),
            recent_order: VecDeque::new(),
            rescans: VecDeque::new(),
            settled: HashMap::new(),
            settled_order: VecDeque::new(),
            deliverer,
        }
    }

    pub(crate) async fn run(mut self, fs: Arc<tokio::sync::Mutex<mpsc::Receiver<FsChange>>>) {
        let mut fs = fs.lock_owned().await;
        let shared = Arc::clone(&self.shared);
        loop {
            for change in shared.intake.drain() {
                self.on_own(change);
            }
            let deadline = match (self.order.front(), self.rescans.front()) {
                (Some((a, _)), Some((b, _, _))) => Some((*a).min(*b)),
                (a, b) => a.map(|(d, _)| *d).or(b.map(|(d, _, _)| *d)),
            };
            tokio::select! {
                () = shared.intake.wait() => {}
                Some(change) = fs.recv() => self.on_disk(change),
                () = sleep_until(deadline), if deadline.is_some() => self.flush_due().await,
            }
        }
    }

    fn wanted(&self, bucket: &str, key: &str) -> bool {
        !key.starts_with('.') && self.shared.store.cached().buckets.contains_key(bucket)
    }

    fn touch(&mut self, key: Key) -> &mut Pending {
        let deadline = Instant::now() + self.window;
        self.order.push_back((deadline, key.clone()));
        let entry = self.pending.entry(key).or_insert(Pending {
            deadline,
            own: None,
            seen_on_disk: false,
        });
        entry.deadline = deadline;
        entry
    }

    fn on_own(&mut self, change: ObjectChange) {
        let (bucket, key) = (change.bucket.as_str(), change.key.as_str());
        if !self.wanted(bucket, key) {
            return;
        }
        let state = match change.kind {
            ChangeKind::Created { size } => State::Present(size),
            ChangeKind::Removed => State::Absent,
        };
        // Coalesced with what the watcher sees on disk, which names files by path
        // text (a file name need not be a valid key), so pending keys are text.
        self.touch((bucket.to_string(), key.to_string())).own = Some(state);
    }

    fn on_disk(&mut self, change: FsChange) {
        if !self.wanted(&change.bucket, &change.key) {
            return;
        }
        if change.dir {
            // Half a window later the kernel watch on the new directory is in
            // place, and the files its first scan found are still pending (so a
            // second sighting coalesces with them instead of reporting twice).
            let now = Instant::now();
            self.rescans
                .push_back((now + self.window / 2, (change.bucket, change.key), now));
            return;
        }
        self.touch((change.bucket, change.key)).seen_on_disk = true;
    }

    /// Scans the directories that appeared and are due, reporting the files the
    /// first scan and the watcher both missed.
    async fn rescan_due(&mut self, now: Instant) {
        while self.rescans.front().is_some_and(|(due, _, _)| *due <= now) {
            let Some((_, (bucket, dir), appeared)) = self.rescans.pop_front() else {
                break;
            };
            let Some(root) = self.shared.bucket_root.clone() else {
                continue;
            };
            let mut path = root.join(&bucket);
            for segment in dir.split('/') {
                path.push(segment);
            }
            let found = tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                super::watcher::scan_dir(&root, &path, &mut out);
                out
            })
            .await
            .unwrap_or_default();
            for change in found {
                let key = (change.bucket.clone(), change.key.clone());
                let reported = self.settled.get(&key).is_some_and(|at| *at >= appeared);
                if self.pending.contains_key(&key) || !reported {
                    self.on_disk(change);
                }
            }
        }
    }

    async fn flush_due(&mut self) {
        let now = Instant::now();
        self.rescan_due(now).await;
        while let Some((deadline, _)) = self.order.front() {
            if *deadline > now {
                break;
            }
            let Some((deadline, key)) = self.order.pop_front() else {
                break;
            };
            let current = self.pending.get(&key).map(|p| p.deadline);
            if current != Some(deadline) {
                continue; // A later change moved this key's deadline.
            }
            if let Some(pending) = self.pending.remove(&key) {
                self.settled.insert(key.clone(), now);
                self.settled_order.push_back((now, key.clone()));
                self.settle(key, pending).await;
            }
        }
        self.prune_recent(now);
    }

    async fn settle(&mut self, key: Key, pending: Pending) {
        let on_disk = if pending.seen_on_disk || self.shared.bucket_root.is_some() {
            self.disk_state(&key).await
        } else {
            None
        };
        let state = match (pending.seen_on_disk, on_disk, pending.own) {
            (true, Some((state, _)), _) => state,
            (true, None, _) => return, // A directory, or not inspectable.
            (false, _, Some(state)) => state,
            (false, _, None) => return,
        };
        // The modification time tells S4's own write from a later one of the
        // same size by another program.
        let modified = on_disk.and_then(|(s, m)| (s == state).then_some(m).flatten());
        if pending.own.is_some() {
            let now = Instant::now();
            self.recent_own.insert(key.clone(), (state, modified, now));
            self.recent_order.push_back((now, key.clone()));
        } else {
            if let Some((own_state, own_modified, at)) = self.recent_own.get(&key) {
                if *own_state == state
                    && *own_modified == modified
                    && at.elapsed() < OWN_ECHO_WINDOW
                {
                    return; // The watcher's echo of S4's own write.
                }
            }
            // Another program changed the key: S4's report no longer describes it.
            self.recent_own.remove(&key);
        }
        self.emit(&key.0, &key.1, state);
    }

    /// The file's current state and modification time; `None` when the path is
    /// not a file (a directory) or cannot be inspected.
    async fn disk_state(&self, key: &Key) -> Option<(State, Option<SystemTime>)> {
        let root = self.shared.bucket_root.as_ref()?;
        let mut path = root.join(&key.0);
        for segment in key.1.split('/') {
            path.push(segment);
        }
        match tokio::fs::symlink_metadata(&path).await {
            Ok(meta) if meta.is_file() => Some((State::Present(meta.len()), meta.modified().ok())),
            Ok(_) => None,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some((State::Absent, None)),
            Err(e) => {
                tracing::warn!(bucket = %key.0, key = %key.1, error = %e, "cannot inspect changed file; no event");
                None
            }
        }
    }

    fn prune_recent(&mut self, now: Instant) {
        while let Some((at, _)) = self.settled_order.front() {
            if now.duration_since(*at) < OWN_ECHO_WINDOW {
                break;
            }
            if let Some((at, key)) = self.settled_order.pop_front() {
                if self.settled.get(&key).is_some_and(|t| *t <= at) {
                    self.settled.remove(&key);
                }
            }
        }
        while let Some((at, _)) = self.recent_order.front() {
            if now.duration_since(*at) < OWN_ECHO_WINDOW {
                break;
            }
            if let Some((at, key)) = self.recent_order.pop_front() {
                if self.recent_own.get(&key).is_some_and(|(_, _, t)| *t <= at) {
                    self.recent_own.remove(&key);
                }
            }
        }
    }

    fn emit(&mut self, bucket: &str, key: &str, state: State) {
        let (event, size) = match state {
            State::Present(size) => (OBJECT_CREATED_PUT, size),
            State::Absent => (OBJECT_REMOVED_DELETE, 0),
        };
        let config = self.shared.store.cached();
        let Some(entries) = config.buckets.get(bucket) else {
            return;
        };
        let mut body = None;
        for entry in entries.iter().filter(|e| e.matches(event, key)) {
            let body = body
                .get_or_insert_with(|| payload(event, bucket, key, size))
                .clone();
            self.deliverer.enqueue(Delivery {
                event_id: uuid_v4(),
                endpoint: entry.endpoint.clone(),
                secret: entry.secret.clone(),
                body,
                summary: format!("{event} {bucket}/{key}"),
            });
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
