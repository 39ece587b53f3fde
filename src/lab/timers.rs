//! Deadline heap (sans-IO: the caller passes `now`).
//!
//! Timers are never cancelled: the owner of a key re-checks its own state when
//! the key fires, so an outdated deadline costs one pop and nothing else.

use super::id::NodeKey;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// A min-heap of `(deadline, key)`.
#[derive(Debug)]
pub struct Timers<K: Ord> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
}

impl<K: Ord> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
        }
    }
}

impl<K: Ord> Timers<K> {
    /// An empty heap.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fire `key` at `at`.
    pub fn schedule(&mut self, at: Instant, key: K) {
        self.heap.push(Reverse((at, key)));
    }

    /// The next key whose deadline is not after `now`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<K> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse((_, k))| k),
            _ => None,
        }
    }

    /// How long the poll may sleep: `None` means until an event comes.
    pub fn timeout(&self, now: Instant) -> Option<Duration> {
        self.heap
            .peek()
            .map(|Reverse((at, _))| at.saturating_duration_since(now))
    }
}

/// A deadline the lab set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Deadline {
    /// Time for the notification channel's `ping`.
    Heartbeat,
    /// Something a node asked to be told at a time.
    Node(NodeKey, Alarm),
}

/// A node's deadline; those set for a process name it by its serial, so
/// that they never act on a later process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Alarm {
    /// SIGKILL the process if it ignored SIGTERM.
    Kill(u64),
    /// The process's console must have answered by now.
    StartTimeout(u64),
    /// A built-in PC wants to be woken.
    Wake,
    /// See whether a VM tried under KVM runs its guest (process serial).
    KvmCheck(u64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_deadline_order_and_only_when_due() {
        let now = Instant::now();
        let mut t = Timers::new();
        t.schedule(now + Duration::from_secs(3), "kill");
        t.schedule(now + Duration::from_secs(1), "idle");
        assert_eq!(t.timeout(now), Some(Duration::from_secs(1)));
        assert_eq!(t.pop_expired(now), None);
        let later = now + Duration::from_secs(3);
        assert_eq!(t.pop_expired(later), Some("idle"));
        assert_eq!(t.pop_expired(later), Some("kill"));
        assert_eq!(t.pop_expired(later), None);
        assert_eq!(
            t.timeout(later),
            None,
            "an empty heap sleeps until an event"
        );
    }
}
