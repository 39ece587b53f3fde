//! Console policy (sans-IO): who may attach, what a new client is greeted
//! with, fan-out of a node's output, and the slow-client rule.
//!
//! The reactor owns the sockets and moves bytes; the lab keeps, per node,
//! the recent output ([`History`], replayed to late joiners) and, per
//! client, the telnet session and an [`Outbox`]. A client whose outbox
//! passes [`MAX_CONSOLE_CLIENT_OUTPUT`] is dropped rather than allowed to
//! hold the others back.

use super::host::Host;
use super::id::ClientId;
use super::id::NodeKey;
use super::{Event, Lab};
use crate::limits::{CONSOLE_HISTORY, MAX_CONSOLE_CLIENT_OUTPUT, MAX_CONSOLE_CLIENTS};
use crate::proto::bytes::ByteQueue;
use crate::proto::telnet::{self, GREETING, Session};
use std::collections::VecDeque;
use std::time::Instant;

/// One attached console client.
#[derive(Debug)]
pub struct Client {
    /// Its id, chosen by the host.
    pub id: ClientId,
    session: Session,
    outbox: Outbox,
    /// Close once the outbox is written (the client typed `disconnect`).
    closing: bool,
}

/// A node's console: recent output and attached clients.
#[derive(Debug, Default)]
pub struct Console {
    /// The last output, for clients that attach later.
    pub history: History,
    /// Attached clients.
    pub clients: Vec<Client>,
}

impl Console {
    fn client(&mut self, id: ClientId) -> Option<&mut Client> {
        self.clients.iter_mut().find(|c| c.id == id)
    }
}

impl Lab {
    /// A client connected to `node`'s console: greet it with the recent
    /// output. `false` when refused (node gone, too many clients).
    pub fn console_attach(&mut self, key: NodeKey, id: ClientId) -> bool {
        let Some(node) = self.node_mut(key) else {
            return false;
        };
        if node.console.clients.len() >= MAX_CONSOLE_CLIENTS {
            let node = Some(node.id);
            self.emit(Event::Warning {
                node,
                text: format!("console client refused: {MAX_CONSOLE_CLIENTS} attached"),
            });
            return false;
        }
        let mut outbox = Outbox::default();
        outbox.push_raw(GREETING);
        if !node.running() {
            let note = format!(
                "VPCS {} is not running; the console will show it once it starts.\r\n",
                node.name
            );
            outbox.push_output(note.as_bytes());
        }
        outbox.push_output(&node.console.history.contents());
        node.console.clients.push(Client {
            id,
            session: Session::new(),
            outbox,
            closing: false,
        });
        true
    }

    /// A client typed `data`: telnet negotiation is answered, the rest goes
    /// to the node (host commands refused when no sandbox holds them).
    pub fn console_input(
        &mut self,
        now: Instant,
        key: NodeKey,
        id: ClientId,
        data: &[u8],
        host: &mut dyn Host,
    ) {
        let filter = self.filters_shell(key);
        let Some(node) = self.node_mut(key) else {
            return;
        };
        let running = node.running();
        let Some(c) = node.console.client(id) else {
            return;
        };
        let input = c.session.feed(data, filter);
        c.outbox.push_raw(&input.to_client);
        c.closing |= input.disconnect;
        let to_pc = (!input.to_vpcs.is_empty() && running).then_some(input.to_vpcs);
        if !c.outbox.pending().is_empty() || c.closing {
            host.console_ready(id);
        }
        let Some(data) = to_pc else { return };
        if node.vpcs().is_some_and(|v| v.builtin.is_some()) {
            self.builtin_input(now, key, &data, host);
        } else {
            host.console_input(key, &data);
        }
    }

    /// What to write to a client, and whether to close it once written.
    /// `None`: the client is unknown (close it).
    pub fn console_pending(&self, key: NodeKey, id: ClientId) -> Option<(&[u8], bool)> {
        let c = self
            .node(key)?
            .console
            .clients
            .iter()
            .find(|c| c.id == id)?;
        Some((c.outbox.pending(), c.closing))
    }

    /// `n` bytes of a client's output were written.
    pub fn console_written(&mut self, key: NodeKey, id: ClientId, n: usize) {
        if let Some(c) = self.node_mut(key).and_then(|node| node.console.client(id)) {
            c.outbox.consumed(n);
        }
    }

    /// A client went away.
    pub fn console_detach(&mut self, key: NodeKey, id: ClientId) {
        if let Some(node) = self.node_mut(key) {
            node.console.clients.retain(|c| c.id != id);
        }
    }

    /// Show `data` to every client of the node; one that has fallen too far
    /// behind is dropped so that it cannot hold the others back.
    pub(crate) fn broadcast(&mut self, key: NodeKey, data: &[u8], host: &mut dyn Host) {
        let Some(node) = self.node_mut(key) else {
            return;
        };
        let id = node.id;
        let mut dropped = Vec::new();
        node.console.clients.retain_mut(|c| {
            if c.outbox.push_output(data) {
                host.console_ready(c.id);
                true
            } else {
                dropped.push(c.id);
                false
            }
        });
        for client in dropped {
            host.console_drop(client);
            self.emit(Event::Warning {
                node: Some(id),
                text: format!("console client {} is not reading: dropped", client.handle),
            });
        }
    }
}

/// The last [`CONSOLE_HISTORY`] bytes VPCS printed.
#[derive(Debug, Default)]
pub struct History {
    buf: VecDeque<u8>,
}

impl History {
    /// Remember `data`, forgetting the oldest bytes past the limit.
    pub fn push(&mut self, data: &[u8]) {
        let data = &data[data.len().saturating_sub(CONSOLE_HISTORY)..];
        let overflow = (self.buf.len() + data.len()).saturating_sub(CONSOLE_HISTORY);
        self.buf.drain(..overflow);
        self.buf.extend(data);
    }

    /// Everything remembered, oldest first.
    pub fn contents(&self) -> Vec<u8> {
        self.buf.iter().copied().collect()
    }

    /// Forget everything.
    pub fn clear(&mut self) {
        self.buf.clear();
    }
}

/// Bytes waiting to be written to one client.
#[derive(Debug, Default)]
pub struct Outbox {
    queue: ByteQueue,
}

impl Outbox {
    /// Queue raw bytes (already telnet-escaped). Returns false when the client
    /// is too far behind and must be dropped.
    pub fn push_raw(&mut self, data: &[u8]) -> bool {
        self.queue.push(data);
        self.queue.len() <= MAX_CONSOLE_CLIENT_OUTPUT
    }

    /// Queue console output, escaping it for telnet.
    pub fn push_output(&mut self, data: &[u8]) -> bool {
        telnet::escape_into(data, self.queue.tail());
        self.queue.len() <= MAX_CONSOLE_CLIENT_OUTPUT
    }

    /// Bytes not yet written.
    pub fn pending(&self) -> &[u8] {
        self.queue.pending()
    }

    /// `n` bytes were written.
    pub fn consumed(&mut self, n: usize) {
        self.queue.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_only_the_tail() {
        let mut h = History::default();
        h.push(b"hello ");
        h.push(&vec![b'x'; CONSOLE_HISTORY]);
        h.push(b"VPCS> ");
        let c = h.contents();
        assert_eq!(c.len(), CONSOLE_HISTORY);
        assert!(c.ends_with(b"xVPCS> "));
        h.push(&vec![b'y'; CONSOLE_HISTORY * 2]);
        assert!(h.contents().iter().all(|&b| b == b'y'));
    }

    #[test]
    fn a_slow_reader_does_not_pile_up_written_bytes() {
        let mut o = Outbox::default();
        for _ in 0..10_000 {
            assert!(o.push_output(&[b'x'; 100]));
            o.consumed(o.pending().len() - 1);
        }
        assert!(o.queue.capacity() < 64 * 1024, "{}", o.queue.capacity());
    }

    #[test]
    fn slow_client_is_detected() {
        let mut o = Outbox::default();
        assert!(o.push_output(b"abc"));
        o.consumed(2);
        assert_eq!(o.pending(), b"c");
        assert!(!o.push_output(&vec![0u8; MAX_CONSOLE_CLIENT_OUTPUT]));
    }
}
