//! Tunnels whose two ends are both this server's: a frame sent into one
//! is handed to the other in memory instead of crossing two UDP sockets.
//! A lab of built-in PCs, switches and hubs on one host then moves frames
//! at memory speed; what is counted, filtered and captured is the same.
//!
//! Two NIOs are local peers when each is a UDP tunnel to a loopback
//! address whose remote port is the other's local port. Deliveries per
//! frame are bounded: past [`crate::limits::LOCAL_HOPS`] (a broadcast storm in a looped
//! topology), frames take the sockets again and so wait for the next loop
//! turn, as they always did.

use super::id::{Endpoint, NodeKey};
use super::types::Nio;
use std::collections::HashMap;

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

    /// The port whose UDP NIO has local port `lport`.
    pub fn at_lport(&self, lport: u16) -> Option<(NodeKey, usize)> {
        self.by_lport.get(&lport).copied()
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
