//! Per-node request queue (sans-IO).
//!
//! The seed's concurrency rule: a node serves one request at a time, in arrival
//! order, while other nodes and endpoints carry on. A request either runs at once
//! (the queue was idle) or waits; when the running one finishes, possibly after
//! waiting for a process, the next one is handed back to the caller to run.

use std::collections::VecDeque;

/// Requests for one node: at most one running, the rest waiting in order.
#[derive(Debug)]
pub struct Queue<T> {
    busy: bool,
    waiting: VecDeque<T>,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            busy: false,
            waiting: VecDeque::new(),
        }
    }
}

impl<T> Queue<T> {
    /// An idle queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Offer a request. Returns it back when it may run now (the queue becomes
    /// busy); otherwise it waits its turn.
    #[must_use]
    pub fn submit(&mut self, item: T) -> Option<T> {
        if self.busy {
            self.waiting.push_back(item);
            None
        } else {
            self.busy = true;
            Some(item)
        }
    }

    /// The running request finished. Returns the next one to run, if any (the
    /// queue stays busy with it), else the queue goes idle.
    #[must_use]
    pub fn finish(&mut self) -> Option<T> {
        let next = self.waiting.pop_front();
        self.busy = next.is_some();
        next
    }

    /// Whether a request is running.
    pub fn is_busy(&self) -> bool {
        self.busy
    }

    /// Requests waiting behind the running one.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Take every waiting request (the node is going away); the queue goes idle.
    pub fn drain(&mut self) -> Vec<T> {
        self.busy = false;
        self.waiting.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_one_at_a_time_in_order() {
        let mut q = Queue::new();
        assert_eq!(q.submit(1), Some(1));
        assert_eq!(q.submit(2), None);
        assert_eq!(q.submit(3), None);
        assert!(q.is_busy());
        assert_eq!(q.finish(), Some(2));
        assert_eq!(q.finish(), Some(3));
        assert_eq!(q.finish(), None);
        assert!(!q.is_busy());
        assert_eq!(q.submit(4), Some(4), "an idle queue runs at once");
    }

    #[test]
    fn drain_returns_waiting_and_goes_idle() {
        let mut q = Queue::new();
        let _ = q.submit('a');
        let _ = q.submit('b');
        assert_eq!(q.drain(), vec!['b']);
        assert!(!q.is_busy() && q.waiting() == 0);
    }
}
