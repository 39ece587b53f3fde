//! One memory budget for every client's unsent bytes (plain data, no I/O).
//!
//! Each client buffer (an API connection's input and output, a websocket's
//! buffers, a console client's queue, a live capture viewer's records) has a cap of
//! its own; the budget caps their sum. Whoever holds the buffers reports
//! each one's size after it changes; once the total passes the limit the
//! budget names the client holding the most unsent bytes (the one lagging
//! furthest behind), and the holder drops it, until the total is under the
//! limit again. Dropping the biggest first frees the most for the fewest
//! clients let go, and a client that keeps up never holds much.

use super::id::ClientId;
use std::collections::HashMap;

/// What every client buffer together may hold, and what each holds now.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    total: usize,
    held: HashMap<ClientId, usize>,
    dropped: u64,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Budget {
            limit,
            total: 0,
            held: HashMap::new(),
            dropped: 0,
        }
    }

    /// `who` now holds `bytes` unsent bytes (0 when it has none, or left).
    pub fn set(&mut self, who: ClientId, bytes: usize) {
        let old = if bytes == 0 {
            self.held.remove(&who).unwrap_or(0)
        } else {
            self.held.insert(who, bytes).unwrap_or(0)
        };
        self.total = self.total - old + bytes;
    }

    /// The client to drop now, if the total is past the limit: the one
    /// holding the most. It is forgotten here; the holder closes it.
    pub fn victim(&mut self) -> Option<ClientId> {
        if self.total <= self.limit {
            return None;
        }
        let (&who, _) = self.held.iter().max_by_key(|&(id, n)| (*n, id.serial))?;
        self.set(who, 0);
        self.dropped += 1;
        Some(who)
    }

    /// Bytes held by every client together.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Clients dropped for the budget since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(handle: usize) -> ClientId {
        ClientId {
            handle,
            serial: handle as u64,
        }
    }

    #[test]
    fn the_biggest_holder_goes_first_and_only_while_over() {
        let mut b = Budget::new(100);
        b.set(id(1), 40);
        b.set(id(2), 50);
        assert_eq!(b.victim(), None, "at 90 of 100");
        b.set(id(3), 30);
        assert_eq!(b.total(), 120);
        assert_eq!(b.victim(), Some(id(2)));
        assert_eq!(b.victim(), None, "back to 70");
        // A report replaces the last one; a zero forgets.
        b.set(id(1), 10);
        b.set(id(3), 0);
        assert_eq!(b.total(), 10);
        b.set(id(4), 200);
        assert_eq!(b.victim(), Some(id(4)));
        assert_eq!((b.total(), b.dropped()), (10, 2));
    }

    #[test]
    fn a_thousand_lagging_readers_are_cut_back_to_the_limit() {
        let mut b = Budget::new(64 * 1024 * 1024);
        let mut gone = std::collections::HashSet::new();
        for round in 1..=20 {
            for c in 0..1000 {
                if gone.contains(&c) {
                    continue;
                }
                b.set(id(c), round * 100_000 + c);
                while let Some(v) = b.victim() {
                    gone.insert(v.handle);
                }
                assert!(b.total() <= b.limit());
            }
        }
        // 2 MB each at the end: about 32 of them fit in 64 MiB.
        assert!(gone.len() > 900 && gone.len() < 1000, "{}", gone.len());
    }
}
