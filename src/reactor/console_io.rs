//! Console sockets on the loop: each node's public telnet listener and its
//! clients. What a client is greeted with, what reaches the node and who
//! gets dropped is the lab's business; this file moves the bytes.

use super::{Entry, Io, IoTimer, Server, accept_one};
use crate::lab::{ClientId, NodeKey};
use crate::limits::{READ_BUDGET, STREAM_SEND_BUFFER};
use crate::os::nb::{Moved, read_some, write_some};
use mio::Interest;
use mio::net::TcpStream;
use mio::unix::SourceFd;
use std::os::fd::AsRawFd;
use std::time::Instant;

/// One telnet client of a node's console.
pub(super) struct Client {
    stream: TcpStream,
    pub(super) node: NodeKey,
    pub(super) id: ClientId,
}

impl Server {
    pub(super) fn accept_console(&mut self, now: Instant, node: NodeKey) {
        let retry = (now, IoTimer::ConsoleAccept(node));
        loop {
            let Some((_, listener)) = self.io.nodes.get(&node).and_then(|n| n.console.as_ref())
            else {
                return;
            };
            let Some((stream, peer)) = accept_one(listener, &mut self.io.timers, retry) else {
                return;
            };
            self.attach(node, stream, peer, false);
        }
    }

    /// The same for a node's auxiliary console.
    pub(super) fn accept_aux(&mut self, now: Instant, node: NodeKey) {
        let retry = (now, IoTimer::AuxAccept(node));
        loop {
            let container = self.io.nodes.get(&node).and_then(|n| n.container.as_ref());
            let Some((_, listener)) = container.and_then(|c| c.aux_listener.as_ref()) else {
                return;
            };
            let Some((stream, peer)) = accept_one(listener, &mut self.io.timers, retry) else {
                return;
            };
            self.attach(node, stream, peer, true);
        }
    }

    fn attach(&mut self, node: NodeKey, stream: TcpStream, peer: std::net::SocketAddr, aux: bool) {
        let _ = stream.set_nodelay(true);
        let _ = crate::sys::cap_send_buffer(stream.as_raw_fd(), STREAM_SEND_BUFFER);
        self.io.next_serial += 1;
        let token = self.io.entries.vacant_key();
        let id = ClientId {
            handle: token,
            serial: self.io.next_serial,
        };
        let attached = if aux {
            self.lab.console_attach_aux(node, id)
        } else {
            self.lab.console_attach(node, id)
        };
        if !attached {
            log::debug!("console client {peer} refused");
            return;
        }
        let fd = stream.as_raw_fd();
        let client = Entry::ConsoleClient(Box::new(Client { stream, node, id }));
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self.io.register(&mut SourceFd(&fd), interest, client) {
            log::warn!("cannot register console client {peer}: {e}");
            self.lab.console_detach(node, id);
            return;
        }
        log::debug!("console client {token} attached from {peer}");
        self.flush_console_client(token);
    }

    pub(super) fn on_console_client(
        &mut self,
        now: Instant,
        token: usize,
        readable: bool,
        writable: bool,
    ) {
        if writable {
            self.flush_console_client(token);
        }
        if readable {
            self.read_console_client(now, token);
        }
    }

    fn read_console_client(&mut self, now: Instant, token: usize) {
        let mut buf = [0u8; 4096];
        let mut total = 0;
        while total < READ_BUDGET {
            let Some(c) = self.io.client(token) else {
                return;
            };
            let (node, id) = (c.node, c.id);
            match read_some(&c.stream, &mut buf) {
                Moved::Bytes(n) => {
                    total += n;
                    self.lab
                        .console_input(now, node, id, &buf[..n], &mut self.io);
                    self.flush_console_client(token);
                }
                Moved::Later => return,
                Moved::Closed => return self.close_console_client(token),
            }
        }
        self.io.again.push(token);
    }

    /// Write what the lab holds for the client; close it once it asked to
    /// leave and everything is written, or when the lab forgot it.
    pub(super) fn flush_console_client(&mut self, token: usize) {
        self.write_console_client(token);
        self.account(token);
    }

    fn write_console_client(&mut self, token: usize) {
        let Some(c) = self.io.client(token) else {
            return;
        };
        let (node, id) = (c.node, c.id);
        loop {
            let pending = match self.lab.console_pending(node, id) {
                None | Some(([], true)) => return self.close_console_client(token),
                Some(([], false)) => return,
                Some((pending, _)) => pending,
            };
            let Some(c) = self.io.client(token) else {
                return;
            };
            match write_some(&c.stream, pending) {
                Moved::Bytes(n) => self.lab.console_written(node, id, n),
                Moved::Later => return,
                Moved::Closed => return self.close_console_client(token),
            }
        }
    }

    pub(super) fn close_console_client(&mut self, token: usize) {
        if let Some((node, id)) = self.io.drop_client(token) {
            self.lab.console_detach(node, id);
        }
    }
}

impl Io {
    fn client(&mut self, token: usize) -> Option<&mut Client> {
        match self.entries.get_mut(token) {
            Some(Entry::ConsoleClient(c)) => Some(c),
            _ => None,
        }
    }

    /// Close a client's socket; returns who it was.
    pub(super) fn drop_client(&mut self, token: usize) -> Option<(NodeKey, ClientId)> {
        let (node, id, fd) = self
            .client(token)
            .map(|c| (c.node, c.id, c.stream.as_raw_fd()))?;
        self.unregister(&mut SourceFd(&fd), token);
        self.budget.set(id, 0);
        log::debug!("console client {token} detached");
        Some((node, id))
    }

    /// The client `id`, if its token still holds it.
    pub(super) fn client_token(&mut self, id: ClientId) -> Option<usize> {
        self.client(id.handle)
            .filter(|c| c.id == id)
            .map(|_| id.handle)
    }
}
