//! Port I/O on the loop: NIO descriptors (UDP tunnel sockets, TAP devices)
//! and the one relay function that moves frames between a node and its
//! NIO, in either direction. Where a frame goes, and what is counted, is
//! the lab's call.

use super::{Io, NodeIo, Server};
use crate::lab::{Endpoint, NodeKey};
use crate::limits::DATAGRAMS_PER_WAKEUP;
use crate::os::nb::would_block;
use mio::net::UdpSocket;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

/// A port's descriptor.
pub(super) enum NioIo {
    /// A UDP tunnel, connected to its peer.
    Udp(UdpSocket),
    /// A TAP device or a packet socket on a host interface: one frame per
    /// read or write.
    Tap(File),
}

impl NioIo {
    pub(super) fn fd(&self) -> RawFd {
        match self {
            NioIo::Udp(s) => s.as_raw_fd(),
            NioIo::Tap(f) => f.as_raw_fd(),
        }
    }
}

/// Where frames are read from and written to.
enum Wire<'a> {
    Udp(&'a UdpSocket),
    Tap(&'a File),
}

impl Wire<'_> {
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Wire::Udp(s) => s.recv(buf),
            Wire::Tap(f) => {
                let mut f: &File = f;
                f.read(buf)
            }
        }
    }

    fn send(&self, frame: &[u8]) -> io::Result<usize> {
        match self {
            Wire::Udp(s) => s.send(frame),
            Wire::Tap(f) => {
                let mut f: &File = f;
                f.write(frame)
            }
        }
    }
}

impl Server {
    /// Frames arrived on `from`: up to [`DATAGRAMS_PER_WAKEUP`], each handed
    /// to the lab, which says where it goes; the rest wait for the next turn.
    pub(super) fn relay(&mut self, now: Instant, token: usize, from: Endpoint) {
        let Io { nodes, scratch, .. } = &mut self.io;
        for _ in 0..DATAGRAMS_PER_WAKEUP {
            let Some(src) = wire(nodes, from) else {
                return;
            };
            let n = match src.recv(scratch) {
                Ok(n) => n,
                Err(e) if would_block(&e) => return,
                // ICMP errors from an earlier send (a peer that is not up
                // yet): nothing to read, keep going.
                Err(_) => continue,
            };
            self.lab
                .on_frame(now, from, &scratch[..n], &mut |to, frame| {
                    wire(nodes, to).is_some_and(|s| s.send(frame).is_ok())
                });
        }
        self.io.again.push(token);
    }
}

fn wire(nodes: &HashMap<NodeKey, NodeIo>, at: Endpoint) -> Option<Wire<'_>> {
    match at {
        Endpoint::Node(k) => Some(Wire::Udp(&nodes.get(&k)?.proc.as_ref()?.p.internal)),
        Endpoint::Nio(k, port) => match &nodes.get(&k)?.nios.get(&port)?.1 {
            NioIo::Udp(s) => Some(Wire::Udp(s)),
            NioIo::Tap(f) => Some(Wire::Tap(f)),
        },
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
