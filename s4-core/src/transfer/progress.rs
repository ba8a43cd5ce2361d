//! Fan-out of job state to any number of listeners (§15.4, §21).
//!
//! The copy only replaces the value of a `watch` channel (never waits for anyone).
//! A listener wakes, reads the job's *current* snapshot, and decides whether to emit
//! it: status changes and the terminal state at once, other changes at most once
//! per [`THROTTLE`]. A slow listener therefore skips intermediate states but always
//! sees the latest and the terminal one.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Job, JobEntry, JobStatus};

/// Minimum interval between two progress events of one job for one listener.
pub const THROTTLE: Duration = Duration::from_secs(1);

/// The events of one job for one listener; see [`super::Transfers::subscribe`].
/// Ends after the event carrying a terminal status. Dropping it stops all work
/// tied to it (it never cancels the job).
pub struct JobEvents {
    inner: BoxStream<'static, Job>,
}

impl std::fmt::Debug for JobEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobEvents").finish_non_exhaustive()
    }
}

struct Listener {
    entry: Arc<JobEntry>,
    rx: watch::Receiver<()>,
    last_status: Option<JobStatus>,
    last_sent: Option<Instant>,
    done: bool,
}

impl Listener {
    fn emit(&mut self) -> Job {
        self.rx.borrow_and_update();
        let job = self.entry.snapshot();
        self.last_status = Some(job.status);
        self.last_sent = Some(Instant::now());
        self.done = job.status.is_terminal();
        job
    }

    fn status_changed(&self) -> bool {
        let status = self.entry.lock().job.status;
        Some(status) != self.last_status || status.is_terminal()
    }

    async fn next(&mut self) -> Option<Job> {
        if self.done {
            return None;
        }
        if self.last_sent.is_none() {
            return Some(self.emit());
        }
        // Wait for a change.
        if self.rx.changed().await.is_err() {
            // The job was dropped (purged): report its last state and end.
            let job = self.entry.snapshot();
            self.done = true;
            return Some(job);
        }
        if self.status_changed() {
            return Some(self.emit());
        }
        // A progress change: wait for the throttle window, waking early only for a
        // status change.
        let due = self.last_sent.map_or_else(Instant::now, |t| t + THROTTLE);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(due) => return Some(self.emit()),
                changed = self.rx.changed() => {
                    if changed.is_err() || self.status_changed() {
                        return Some(self.emit());
                    }
                }
            }
        }
    }
}

impl JobEvents {
    pub(crate) fn new(entry: Arc<JobEntry>) -> Self {
        let rx = entry.changed.subscribe();
        let listener = Listener {
            entry,
            rx,
            last_status: None,
            last_sent: None,
            done: false,
        };
        let inner = futures::stream::unfold(listener, |mut l| async move {
            l.next().await.map(|job| (job, l))
        })
        .boxed();
        JobEvents { inner }
    }
}

impl Stream for JobEvents {
    type Item = Job;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Job>> {
        self.inner.poll_next_unpin(cx)
    }
}
