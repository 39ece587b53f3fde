//! Console fan-out state (sans-IO): recent output kept for late joiners, and
//! per-client output buffers with the slow-client rule.
//!
//! The reactor owns the sockets. It hands VPCS output to [`History::push`]
//! and to every client's [`Outbox`]; a client whose outbox passes
//! [`MAX_CONSOLE_CLIENT_OUTPUT`](crate::limits::MAX_CONSOLE_CLIENT_OUTPUT) is
//! dropped rather than allowed to hold the others back.

pub mod telnet;

use crate::bytes::ByteQueue;
use crate::limits::{CONSOLE_HISTORY, MAX_CONSOLE_CLIENT_OUTPUT};
use std::collections::VecDeque;

/// The last [`CONSOLE_HISTORY`] bytes VPCS printed.
#[derive(Debug, Default)]
pub struct History {
    buf: VecDeque<u8>,
}

impl History {
    /// Remember `data`, forgetting the oldest bytes past the limit.
    pub fn push(&mut self, data: &[u8]) {
        let data = &data[data.len().saturating_sub(CONSOLE_HISTORY)..];
        let overflow = (self.buf.len() + data.len()).saturating_sub(CONSOLE_HISTORY);
        self.buf.drain(..overflow);
        self.buf.extend(data);
    }

    /// Everything remembered, oldest first.
    pub fn contents(&self) -> Vec<u8> {
        self.buf.iter().copied().collect()
    }

    /// Forget everything.
    pub fn clear(&mut self) {
        self.buf.clear();
    }
}

/// Bytes waiting to be written to one client.
#[derive(Debug, Default)]
pub struct Outbox {
    queue: ByteQueue,
}

impl Outbox {
    /// Queue raw bytes (already telnet-escaped). Returns false when the client
    /// is too far behind and must be dropped.
    pub fn push_raw(&mut self, data: &[u8]) -> bool {
        self.queue.push(data);
        self.queue.len() <= MAX_CONSOLE_CLIENT_OUTPUT
    }

    /// Queue console output, escaping it for telnet.
    pub fn push_output(&mut self, data: &[u8]) -> bool {
        telnet::escape_into(data, self.queue.tail());
        self.queue.len() <= MAX_CONSOLE_CLIENT_OUTPUT
    }

    /// Bytes not yet written.
    pub fn pending(&self) -> &[u8] {
        self.queue.pending()
    }

    /// `n` bytes were written.
    pub fn consumed(&mut self, n: usize) {
        self.queue.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_only_the_tail() {
        let mut h = History::default();
        h.push(b"hello ");
        h.push(&vec![b'x'; CONSOLE_HISTORY]);
        h.push(b"VPCS> ");
        let c = h.contents();
        assert_eq!(c.len(), CONSOLE_HISTORY);
        assert!(c.ends_with(b"xVPCS> "));
        h.push(&vec![b'y'; CONSOLE_HISTORY * 2]);
        assert!(h.contents().iter().all(|&b| b == b'y'));
    }

    #[test]
    fn a_slow_reader_does_not_pile_up_written_bytes() {
        let mut o = Outbox::default();
        for _ in 0..10_000 {
            assert!(o.push_output(&[b'x'; 100]));
            o.consumed(o.pending().len() - 1);
        }
        assert!(o.queue.capacity() < 64 * 1024, "{}", o.queue.capacity());
    }

    #[test]
    fn slow_client_is_detected() {
        let mut o = Outbox::default();
        assert!(o.push_output(b"abc"));
        o.consumed(2);
        assert_eq!(o.pending(), b"c");
        assert!(!o.push_output(&vec![0u8; MAX_CONSOLE_CLIENT_OUTPUT]));
    }
}
