//! Tunnels whose two ends are both this server's: a frame sent into one
//! is handed to the other in memory instead of crossing two UDP sockets.
//! A lab of built-in PCs, switches and hubs on one host then moves frames
//! at memory speed; what is counted, filtered and captured is the same.
//!
//! Two NIOs are local peers when each is a UDP tunnel to a loopback
//! address whose remote port is the other's local port. Deliveries per
//! frame are bounded: past [`LOCAL_HOPS`] (a broadcast storm in a looped
//! topology), frames take the sockets again and so wait for the next loop
//! turn, as they always did.

use super::Lab;
use super::node::{Endpoint, Nio, NodeKey};
use crate::limits::LOCAL_HOPS;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// Which NIO ports talk to which, when both are ours.
#[derive(Debug, Default)]
pub struct Links {
    /// A UDP NIO by its local port.
    by_lport: HashMap<u16, (NodeKey, usize)>,
    /// Local peers, both ways.
    peers: HashMap<Endpoint, Endpoint>,
}

fn tunnel(nio: &Nio) -> Option<(u16, u16)> {
    match nio {
        Nio::Udp(u) if u.raddr.is_loopback() => Some((u.lport, u.rport)),
        _ => None,
    }
}

impl Links {
    /// Port `at` now has `nio`: pair it with its peer if the peer is ours.
    pub fn added(
        &mut self,
        at: (NodeKey, usize),
        nio: &Nio,
        peer_nio: impl Fn(NodeKey, usize) -> Option<Nio>,
    ) {
        self.removed(at);
        let Nio::Udp(u) = nio else { return };
        self.by_lport.insert(u.lport, at);
        let Some((lport, rport)) = tunnel(nio) else {
            return;
        };
        let Some(&peer) = self.by_lport.get(&rport) else {
            return;
        };
        let paired = peer != at
            && peer_nio(peer.0, peer.1)
                .as_ref()
                .and_then(tunnel)
                .is_some_and(|(pl, pr)| pl == rport && pr == lport);
        if paired {
            let (a, b) = (Endpoint::Nio(at.0, at.1), Endpoint::Nio(peer.0, peer.1));
            self.peers.insert(a, b);
            self.peers.insert(b, a);
        }
    }

    /// Port `at` lost its NIO.
    pub fn removed(&mut self, at: (NodeKey, usize)) {
        self.by_lport.retain(|_, v| *v != at);
        let me = Endpoint::Nio(at.0, at.1);
        if let Some(peer) = self.peers.remove(&me) {
            self.peers.remove(&peer);
        }
    }

    /// The local peer of a NIO endpoint.
    pub fn peer(&self, at: &Endpoint) -> Option<Endpoint> {
        self.peers.get(at).copied()
    }

    /// Whether any tunnel is local.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
}

impl Lab {
    /// Route a frame (see [`Lab::on_frame`]), handing frames for a local
    /// peer straight to it, breadth first, up to [`LOCAL_HOPS`] per call.
    pub(crate) fn route_local(
        &mut self,
        now: Instant,
        from: Endpoint,
        frame: &[u8],
        send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
    ) {
        let links = std::mem::take(&mut self.links);
        let queue: RefCell<VecDeque<(Endpoint, Vec<u8>)>> = RefCell::new(VecDeque::new());
        // In-memory hand-offs count against the turn's frame budget too.
        let mut left = self.frames_left.min(LOCAL_HOPS);
        let before = left;
        {
            let mut via = |to: Endpoint, f: &[u8]| match links.peer(&to) {
                Some(peer) if left > 0 => {
                    left -= 1;
                    queue.borrow_mut().push_back((peer, f.to_vec()));
                    true
                }
                _ => send(to, f),
            };
            self.route_frame(now, from, frame, &mut via);
            loop {
                let next = queue.borrow_mut().pop_front();
                let Some((at, f)) = next else { break };
                self.route_frame(now, at, &f, &mut via);
            }
        }
        // Routing a frame changes no NIO, so nothing was added meanwhile.
        self.links = links;
        self.frames_left = self.frames_left.saturating_sub(before - left);
    }
}
