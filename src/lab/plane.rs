//! The data plane (sans-IO): a frame arrives at an endpoint, the node it
//! names decides through its kind's face, and what leaves goes to `send`
//! or, when the far end of a tunnel is ours too (`Links`), straight to
//! that peer in memory, breadth first and bounded. Frames a delay filter
//! held back are released here too.
//!
//! The plane is lent the parts of the lab it needs (nodes, capture sink,
//! the wire) for one call, so that the links are read while nodes change.

use super::capture::Sink;
use super::id::{Endpoint, NodeKey};
use super::kinds::{Echo, FrameCx};
use super::links::Links;
use super::port::{Wire, count};
use super::registry::Registry;
use crate::limits::{LOCAL_HOPS, MAX_CARRIED_BYTES, MAX_CARRIED_FRAMES};
use std::collections::VecDeque;
use std::time::Instant;

/// What a frame may touch.
pub struct Plane<'a> {
    /// The nodes.
    pub registry: &'a mut Registry,
    /// Captures with records to write.
    pub sink: &'a mut Sink,
    /// Filter randomness and delayed frames.
    pub wire: &'a mut Wire,
    /// Nodes with work for the next poll.
    pub later: &'a mut Vec<NodeKey>,
    /// Tunnels whose both ends are ours.
    pub links: &'a Links,
    /// In-memory hand-offs left this loop turn.
    pub budget: &'a mut usize,
    /// Hand-offs past the budget, for the next turn.
    pub carry: &'a mut Carry,
}

/// Frames for the next loop turn, in order: in-memory hand-offs past a
/// turn's budget, and frames nodes sent once it was spent. They go first
/// next turn instead of taking a socket, where a burst (a thousand PCs'
/// ARP requests flooded to a thousand ports) overflows receive buffers and
/// is lost. Bounded; past the bound, frames take the socket as before.
#[derive(Debug, Default)]
pub struct Carry {
    frames: VecDeque<(Endpoint, Vec<u8>)>,
    bytes: usize,
}

impl Carry {
    /// Whether a frame of `len` bytes may wait here.
    pub fn has_room(&self, len: usize) -> bool {
        self.frames.len() < MAX_CARRIED_FRAMES && self.bytes + len <= MAX_CARRIED_BYTES
    }

    /// `frame` waits to be handled at `at` next turn.
    pub fn push(&mut self, at: Endpoint, frame: Vec<u8>) {
        self.bytes += frame.len();
        self.frames.push_back((at, frame));
    }

    /// The oldest frame waiting.
    pub fn pop(&mut self) -> Option<(Endpoint, Vec<u8>)> {
        let (at, frame) = self.frames.pop_front()?;
        self.bytes -= frame.len();
        Some((at, frame))
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

impl Plane<'_> {
    /// Route a frame from `from`, local peers included, spending at most
    /// the budget's in-memory hand-offs.
    #[inline]
    pub fn route(
        &mut self,
        now: Instant,
        from: Endpoint,
        frame: &[u8],
        send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
    ) {
        if self.links.is_empty() {
            let echo = self.step(now, from, frame, send);
            if !echo.frames.is_empty() {
                self.answers(now, from, echo, send);
            }
            return;
        }
        self.route_local(now, from, frame, send);
    }

    /// [`Plane::route`] when some tunnels are local: hand-offs to a local
    /// peer are queued, breadth first, up to [`LOCAL_HOPS`].
    fn route_local(
        &mut self,
        now: Instant,
        from: Endpoint,
        frame: &[u8],
        send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
    ) {
        let links = self.links;
        let mut carry = std::mem::take(self.carry);
        let mut queue: VecDeque<(Endpoint, Vec<u8>)> = VecDeque::new();
        let mut left = (*self.budget).min(LOCAL_HOPS);
        let before = left;
        let mut via =
            |to: Endpoint, f: &[u8], q: &mut VecDeque<(Endpoint, Vec<u8>)>| match links.peer(&to) {
                Some(peer) if left > 0 => {
                    left -= 1;
                    q.push_back((peer, f.to_vec()));
                    true
                }
                // The turn's budget is spent: the rest of the cascade goes
                // first next turn (past the carry's bound, a storm takes
                // the socket).
                Some(peer) if carry.has_room(f.len()) => {
                    carry.push(peer, f.to_vec());
                    true
                }
                _ => send(to, f),
            };
        let mut out: VecDeque<(Endpoint, Vec<u8>)> = VecDeque::new();
        let mut hop = |plane: &mut Self, at: Endpoint, f: &[u8], out: &mut VecDeque<_>| {
            let echo = plane.step(now, at, f, &mut |to, f| via(to, f, out));
            if let Some(key) = node_of(at) {
                out.extend(echo.frames.into_iter().map(|f| (Endpoint::Node(key), f)));
            }
        };
        hop(self, from, frame, &mut out);
        queue.append(&mut out);
        while let Some((at, f)) = queue.pop_front() {
            hop(self, at, &f, &mut out);
            queue.append(&mut out);
        }
        *self.budget = self.budget.saturating_sub(before - left);
        *self.carry = carry;
    }

    /// One frame at one node: its kind decides.
    #[inline]
    fn step(
        &mut self,
        now: Instant,
        from: Endpoint,
        frame: &[u8],
        send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
    ) -> Echo {
        let (key, index, outbound) = match from {
            Endpoint::Node(key) => (key, 0, true),
            Endpoint::Nio(key, index) => (key, index, false),
        };
        let Some(node) = self.registry.get_mut(key) else {
            return Echo::default();
        };
        let mut fx = FrameCx {
            now,
            key,
            ports: &mut node.ports,
            sink: self.sink,
            wire: self.wire,
        };
        let echo = node.kind.on_frame(&mut fx, index, outbound, frame, send);
        if echo.flush {
            self.later.push(key);
        }
        echo
    }

    /// Frames a node sent in answer to one (a built-in PC's replies): out
    /// of its port, as if it had sent them itself.
    #[cold]
    fn answers(
        &mut self,
        now: Instant,
        from: Endpoint,
        echo: Echo,
        send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
    ) {
        let Some(key) = node_of(from) else { return };
        for f in echo.frames {
            let more = self.step(now, Endpoint::Node(key), &f, send);
            if !more.frames.is_empty() {
                self.answers(now, Endpoint::Node(key), more, send);
            }
        }
    }

    /// Send the frames delay filters held back that are due by `now`.
    pub fn release(&mut self, now: Instant, send: &mut dyn FnMut(Endpoint, &[u8]) -> bool) {
        while let Some(d) = self.wire.delayed.pop_due(now) {
            let (key, index) = d.to.port;
            let to_node = match d.to.to {
                Endpoint::Node(k) => self
                    .registry
                    .get_mut(k)
                    .and_then(|n| n.kind.face_mut().take_frame(now, &d.frame)),
                Endpoint::Nio(..) => None,
            };
            let sent = match (to_node, self.links.peer(&d.to.to)) {
                (Some(echo), _) => {
                    if echo.flush {
                        self.later.push(key);
                    }
                    if !echo.frames.is_empty() {
                        self.answers(now, Endpoint::Node(key), echo, send);
                    }
                    true
                }
                (None, Some(peer)) => {
                    self.route(now, peer, &d.frame, send);
                    true
                }
                (None, None) => send(d.to.to, &d.frame),
            };
            if let Some(port) = self
                .registry
                .get_mut(key)
                .and_then(|n| n.ports.get_mut(index))
            {
                count(&mut port.stats, sent, d.to.outbound, d.frame.len());
            }
        }
    }
}

fn node_of(at: Endpoint) -> Option<NodeKey> {
    match at {
        Endpoint::Node(key) | Endpoint::Nio(key, _) => Some(key),
    }
}
