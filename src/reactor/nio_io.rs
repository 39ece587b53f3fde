//! Port I/O on the loop: the one relay function that moves frames between
//! a node and its NIO (UDP tunnel, TAP device, host interface), in either
//! direction. Where a frame goes, and what is counted, is the lab's call;
//! the descriptors themselves are `os::nio`'s.

use super::{Io, NodeIos, Server};
use crate::lab::Endpoint;
use crate::limits::{DATAGRAMS_PER_WAKEUP, MAX_FRAME};
use crate::os::nb::would_block;
use crate::os::nio::Wire;
use crate::sys::BATCH;
use std::io;
use std::time::Instant;

impl Server {
    /// Frames arrived on `from`: up to [`DATAGRAMS_PER_WAKEUP`], each handed
    /// to the lab, which says where it goes; the rest wait for the next turn.
    ///
    /// A UDP tunnel is read a batch at a time (`recvmmsg`: one system call
    /// for up to [`BATCH`] datagrams, and no waiting for a batch to fill:
    /// whatever is there is taken).
    pub(super) fn relay(&mut self, now: Instant, token: usize, from: Endpoint) {
        let Io {
            nodes,
            batch,
            outbox,
            ..
        } = &mut self.io;
        let mut lens = [0usize; BATCH];
        let mut moved = 0;
        while moved < DATAGRAMS_PER_WAKEUP {
            // The turn's frame budget is spent: the rest waits (a storm
            // degrades the data plane, never the API).
            if !self.lab.frames_left() {
                break;
            }
            let Some(src) = wire(nodes, from) else {
                return;
            };
            let n = match src.recv_batch(batch, MAX_FRAME, &mut lens) {
                Ok(n) => n,
                Err(e) if would_block(&e) => return,
                // ICMP errors from an earlier send (a peer that is not up
                // yet): nothing to read, keep going.
                Err(_) => {
                    moved += 1;
                    continue;
                }
            };
            for (i, &len) in lens.iter().enumerate().take(n) {
                let frame = &batch[i * MAX_FRAME..i * MAX_FRAME + len];
                self.lab
                    .on_frame(now, from, frame, &mut |to, frame| match wire(nodes, to) {
                        Some(Wire::Udp(_)) => {
                            if outbox.full() {
                                outbox.flush(nodes);
                            }
                            outbox.push(to, frame);
                            true
                        }
                        Some(w) => w.send(frame).is_ok(),
                        None => false,
                    });
            }
            outbox.flush(nodes);
            for (to, len) in outbox.failed.drain(..) {
                self.lab.unsent(to, len);
            }
            moved += n.max(1);
        }
        self.io.again.push(token);
    }
}

impl Server {
    /// Send the frames delay filters held back that are now due.
    pub(super) fn release_frames(&mut self, now: Instant) {
        let nodes = &self.io.nodes;
        self.lab.release_frames(now, &mut |to, frame| {
            wire(nodes, to).is_some_and(|s| s.send(frame).is_ok())
        });
    }
}

/// Send `frame` to `to`; whether it went.
pub(super) fn send_to(nodes: &NodeIos, to: Endpoint, frame: &[u8]) -> bool {
    wire(nodes, to).is_some_and(|s| s.send(frame).is_ok())
}

fn wire(nodes: &NodeIos, at: Endpoint) -> Option<Wire<'_>> {
    match at {
        Endpoint::Node(k) => Some(Wire::Udp(
            nodes.get(&k)?.proc.as_ref()?.p.internal.as_ref()?,
        )),
        Endpoint::Nio(k, port) => Some(nodes.get(&k)?.nios.get(&port)?.1.wire()),
    }
}

/// Frames for UDP tunnels, held while one batch of arrivals is routed and
/// then sent a run per destination in one system call each (`sendmmsg`):
/// the loop crosses into the kernel once per run, not once per frame.
/// Nothing waits past the batch that made it.
#[derive(Default)]
pub(super) struct Outbox {
    bytes: Vec<u8>,
    /// Where each frame goes, and where it is in `bytes`.
    frames: Vec<(Endpoint, usize, usize)>,
    /// Frames the kernel refused, with their length: the lab counted them
    /// sent and is told.
    pub(super) failed: Vec<(Endpoint, usize)>,
}

impl Outbox {
    /// Frames held at most before they go.
    const FRAMES: usize = 4 * BATCH;
    /// Bytes held at most before they go (then one more frame at most):
    /// the outbox keeps its capacity, so it stays small.
    const BYTES: usize = 64 * 1024;

    fn full(&self) -> bool {
        self.frames.len() >= Self::FRAMES || self.bytes.len() >= Self::BYTES
    }

    fn push(&mut self, to: Endpoint, frame: &[u8]) {
        self.frames.push((to, self.bytes.len(), frame.len()));
        self.bytes.extend_from_slice(frame);
    }

    /// Send what is held, in order, each run of frames to one destination
    /// in one call.
    fn flush(&mut self, nodes: &NodeIos) {
        self.flush_with(|to, run| match wire(nodes, to) {
            Some(w) => w.send_batch(run),
            None => Ok(0),
        });
    }

    /// [`Outbox::flush`] through `send`, which sends a run of frames to one
    /// destination and says how many went before the first that could not.
    fn flush_with(&mut self, mut send: impl FnMut(Endpoint, &[&[u8]]) -> io::Result<usize>) {
        let mut at = 0;
        while at < self.frames.len() {
            let to = self.frames[at].0;
            let run = self.frames[at..]
                .iter()
                .take(BATCH)
                .take_while(|f| f.0 == to)
                .count();
            let mut slices = [&[][..]; BATCH];
            for (s, &(_, start, len)) in slices.iter_mut().zip(&self.frames[at..at + run]) {
                *s = &self.bytes[start..start + len];
            }
            // Frame `went` could not go (the first when the call failed):
            // it is dropped, as a single send would have, and the rest of
            // the run is tried again.
            let went = send(to, &slices[..run]).unwrap_or(0);
            if went < run {
                self.failed.push((to, self.frames[at + went].2));
            }
            at += (went + 1).min(run);
        }
        self.frames.clear();
        self.bytes.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::NodeKey;

    fn key(index: usize) -> NodeKey {
        NodeKey::for_tests(index)
    }

    #[test]
    fn an_outbox_sends_runs_per_destination_in_order_and_drops_only_what_failed() {
        let (a, b) = (Endpoint::Node(key(1)), Endpoint::Nio(key(2), 0));
        let mut out = Outbox::default();
        for (to, f) in [(a, 1u8), (a, 2), (b, 3), (a, 4), (a, 5), (a, 6)] {
            out.push(to, &[f; 3]);
        }
        let mut calls = Vec::new();
        out.flush_with(|to, run| {
            let firsts: Vec<u8> = run.iter().map(|f| f[0]).collect();
            calls.push((to, firsts.clone()));
            // Frame 5 is refused (the peer's ICMP error), once.
            Ok(firsts.iter().position(|&f| f == 5).unwrap_or(run.len()))
        });
        assert_eq!(
            calls,
            [
                (a, vec![1, 2]),
                (b, vec![3]),
                (a, vec![4, 5, 6]),
                (a, vec![6]),
            ]
        );
        assert_eq!(out.failed, [(a, 3)]);
        assert!(out.frames.is_empty() && out.bytes.is_empty());
        // A call that fails outright drops its first frame only.
        out.failed.clear();
        for f in 1..=3u8 {
            out.push(b, &[f; 2]);
        }
        let mut left = vec![];
        out.flush_with(|_, run| {
            left.push(run.len());
            if run.len() == 3 {
                Err(io::Error::from(io::ErrorKind::ConnectionRefused))
            } else {
                Ok(run.len())
            }
        });
        assert_eq!(left, [3, 2]);
        assert_eq!(out.failed, [(b, 2)]);
    }

    #[test]
    fn an_outbox_runs_are_at_most_a_batch() {
        let a = Endpoint::Node(key(1));
        let mut out = Outbox::default();
        while !out.full() {
            out.push(a, &[0; 60]);
        }
        let mut runs = vec![];
        out.flush_with(|_, run| {
            runs.push(run.len());
            Ok(run.len())
        });
        assert_eq!(runs, vec![BATCH; Outbox::FRAMES / BATCH]);
        assert!(out.failed.is_empty());
    }
}
