//! Tunnels on the loop: NIO sockets and the one relay function that moves
//! frames between a node's internal socket and its NIO, in either
//! direction. Where a frame goes, and what is counted, is the lab's call.

use super::{Io, NodeIo, Server};
use crate::lab::{Endpoint, NodeKey};
use crate::limits::DATAGRAMS_PER_WAKEUP;
use crate::os::nb::would_block;
use mio::net::UdpSocket;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

impl Server {
    /// Datagrams arrived on `from`'s socket: up to [`DATAGRAMS_PER_WAKEUP`],
    /// each handed to the lab, which says where it goes; the rest wait for
    /// the next turn.
    pub(super) fn relay(&mut self, token: usize, from: Endpoint) {
        let Io { nodes, scratch, .. } = &mut self.io;
        for _ in 0..DATAGRAMS_PER_WAKEUP {
            let Some(src) = socket(nodes, from) else {
                return;
            };
            let n = match src.recv(scratch) {
                Ok(n) => n,
                Err(e) if would_block(&e) => return,
                // ICMP errors from an earlier send (a peer that is not up
                // yet): nothing to read, keep going.
                Err(_) => continue,
            };
            self.lab.on_frame(from, &scratch[..n], &mut |to, frame| {
                socket(nodes, to).is_some_and(|s| s.send(frame).is_ok())
            });
        }
        self.io.again.push(token);
    }
}

fn socket(nodes: &HashMap<NodeKey, NodeIo>, at: Endpoint) -> Option<&UdpSocket> {
    match at {
        Endpoint::Node(k) => nodes.get(&k)?.proc.as_ref().map(|p| &p.p.internal),
        Endpoint::Nio(k, port) => nodes.get(&k)?.nios.get(&port).map(|(_, s)| s),
    }
}

/// The NIO socket binds every address of the peer's family: a LAN peer can
/// reach it as well as a loopback one, and since the socket is connected to
/// `rhost:rport`, datagrams from anyone else are discarded by the kernel.
pub(super) fn bind_addr(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::from([0u16; 8]),
    }
}
