//! The global FIFO limit on files being copied (API §21), changeable at runtime.
//!
//! A tokio `Semaphore` cannot shrink without waiting for permits, nor grow into a
//! limit lowered earlier, so the limit is a small queue under a std `Mutex` (held
//! for a few instructions, never across an `.await`). Waiters are served strictly
//! in the order they were queued ([`Limiter::enqueue`] is synchronous, so a job's
//! files keep their order and jobs keep theirs).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

/// Default of `MAX_CONCURRENT_TRANSFERS`.
pub const DEFAULT_MAX_CONCURRENT: usize = crate::settings::DEFAULT_MAX_CONCURRENT_TRANSFERS;

#[derive(Debug)]
struct State {
    limit: usize,
    running: usize,
    waiters: VecDeque<oneshot::Sender<Slot>>,
}

/// The limiter. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Limiter {
    state: Arc<Mutex<State>>,
}

/// One running copy; the slot is released on drop.
#[derive(Debug)]
pub(crate) struct Slot {
    state: Arc<Mutex<State>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let grants = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.running = state.running.saturating_sub(1);
            grants(&mut state)
        };
        send(&self.state, grants);
    }
}

/// Pops the waiters that may start now, counting them as running. The slots are
/// sent after the lock is released: a send to a waiter that went away hands the slot
/// back, whose drop takes the lock again.
fn grants(state: &mut State) -> Vec<oneshot::Sender<Slot>> {
    let mut out = Vec::new();
    while state.running < state.limit {
        let Some(waiter) = state.waiters.pop_front() else {
            break;
        };
        if waiter.is_closed() {
            continue;
        }
        state.running += 1;
        out.push(waiter);
    }
    out
}

fn send(state: &Arc<Mutex<State>>, grants: Vec<oneshot::Sender<Slot>>) {
    for waiter in grants {
        // A waiter gone meanwhile returns the slot, which releases it on drop.
        let _ = waiter.send(Slot {
            state: Arc::clone(state),
        });
    }
}

/// A place in the queue: resolves to a [`Slot`] when the file may start. Dropping
/// it leaves the queue (a slot granted meanwhile is released).
pub(crate) type Ticket = oneshot::Receiver<Slot>;

impl Limiter {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                limit: limit.max(1),
                running: 0,
                waiters: VecDeque::new(),
            })),
        }
    }

    /// Joins the queue now (FIFO position fixed at this call).
    pub(crate) fn enqueue(&self) -> Ticket {
        let (tx, rx) = oneshot::channel();
        let grants = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.waiters.push_back(tx);
            grants(&mut state)
        };
        send(&self.state, grants);
        rx
    }

    /// Changes the limit (at least 1). Raising it starts waiting files at once;
    /// lowering it never interrupts running copies.
    pub(crate) fn set_limit(&self, limit: usize) {
        let grants = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.limit = limit.max(1);
            grants(&mut state)
        };
        send(&self.state, grants);
    }

    pub(crate) fn limit(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .limit
    }

    /// Copies running now.
    pub(crate) fn running(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fifo_and_runtime_limit() {
        let limiter = Limiter::new(1);
        let a = limiter.enqueue();
        let mut b = limiter.enqueue();
        let mut c = limiter.enqueue();
        let slot_a = a.await.expect("first slot");
        assert!(b.try_recv().is_err(), "limit 1: second waits");
        assert_eq!(limiter.running(), 1);
        limiter.set_limit(2);
        let slot_b = b.await.expect("raised limit starts the next");
        assert!(c.try_recv().is_err());
        limiter.set_limit(1);
        drop(slot_a);
        assert!(c.try_recv().is_err(), "lowered: still one running");
        drop(slot_b);
        let _slot_c = c.await.expect("third after both finish");
        assert_eq!(limiter.running(), 1);
    }

    #[tokio::test]
    async fn abandoned_waiters_release_their_place() {
        let limiter = Limiter::new(1);
        let first = limiter.enqueue().await.expect("slot");
        let gone = limiter.enqueue();
        let next = limiter.enqueue();
        drop(gone);
        drop(first);
        let _slot = next.await.expect("skips the abandoned waiter");
        assert_eq!(limiter.running(), 1);
        assert_eq!(limiter.limit(), 1);
    }
}
