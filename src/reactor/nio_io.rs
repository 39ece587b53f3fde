//! Port I/O on the loop: the one relay function that moves frames between
//! a node and its NIO (UDP tunnel, TAP device, host interface), in either
//! direction. Where a frame goes, and what is counted, is the lab's call;
//! the descriptors themselves are `os::nio`'s.

use super::{Io, NodeIo, Server};
use crate::lab::{Endpoint, NodeKey};
use crate::limits::{DATAGRAMS_PER_WAKEUP, MAX_FRAME};
use crate::os::nb::would_block;
use crate::os::nio::Wire;
use crate::sys::BATCH;
use std::collections::HashMap;
use std::time::Instant;

impl Server {
    /// Frames arrived on `from`: up to [`DATAGRAMS_PER_WAKEUP`], each handed
    /// to the lab, which says where it goes; the rest wait for the next turn.
    ///
    /// A UDP tunnel is read a batch at a time (`recvmmsg`: one system call
    /// for up to [`BATCH`] datagrams, and no waiting for a batch to fill:
    /// whatever is there is taken).
    pub(super) fn relay(&mut self, now: Instant, token: usize, from: Endpoint) {
        let Io { nodes, batch, .. } = &mut self.io;
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
                self.lab.on_frame(now, from, frame, &mut |to, frame| {
                    wire(nodes, to).is_some_and(|s| s.send(frame).is_ok())
                });
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
pub(super) fn send_to(nodes: &HashMap<NodeKey, NodeIo>, to: Endpoint, frame: &[u8]) -> bool {
    wire(nodes, to).is_some_and(|s| s.send(frame).is_ok())
}

fn wire(nodes: &HashMap<NodeKey, NodeIo>, at: Endpoint) -> Option<Wire<'_>> {
    match at {
        Endpoint::Node(k) => Some(Wire::Udp(
            nodes.get(&k)?.proc.as_ref()?.p.internal.as_ref()?,
        )),
        Endpoint::Nio(k, port) => Some(nodes.get(&k)?.nios.get(&port)?.1.wire()),
    }
}
