//! A byte queue for socket buffers (no I/O): append at the back, consume
//! from the front, and never let the consumed prefix pile up.
//!
//! API connections (input and output) and console clients (output) all
//! buffer this way; a peer that reads slowly but never catches up would
//! otherwise keep everything ever written alive in the vector.

/// Consumed bytes are dropped once they are this many and half the buffer.
const COMPACT_AFTER: usize = 4096;
/// An emptied buffer larger than this gives its memory back.
const SHRINK_ABOVE: usize = 64 * 1024;

/// Bytes waiting to be used, oldest first.
#[derive(Debug, Default)]
pub struct ByteQueue {
    buf: Vec<u8>,
    start: usize,
}

impl ByteQueue {
    /// Append `data`.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The vector to append to in place (serializers that write into a `Vec`).
    pub fn tail(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Bytes not consumed yet.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Number of bytes not consumed yet.
    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Whether every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first `n` pending bytes were used.
    pub fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            if self.buf.capacity() > SHRINK_ABOVE {
                self.buf.shrink_to(COMPACT_AFTER);
            }
        } else if self.start > COMPACT_AFTER && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// Memory held, in bytes.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumed_bytes_do_not_pile_up_behind_a_slow_reader() {
        let mut q = ByteQueue::default();
        for _ in 0..10_000 {
            q.push(&[b'x'; 100]);
            q.consume(q.len() - 1);
        }
        assert_eq!(q.pending(), b"x");
        assert!(q.capacity() < 64 * 1024, "{}", q.capacity());
    }

    #[test]
    fn fifo_order_and_shrink_when_empty() {
        let mut q = ByteQueue::default();
        q.push(b"abc");
        q.tail().extend_from_slice(b"def");
        q.consume(2);
        assert_eq!((q.pending(), q.len()), (&b"cdef"[..], 4));
        q.push(&vec![0; 200_000]);
        q.consume(usize::MAX);
        assert!(q.is_empty() && q.capacity() <= SHRINK_ABOVE);
    }
}
