//! Console policy (sans-IO): who may attach, what a new client is greeted
//! with, fan-out of a node's output, and the slow-client rule.
//!
//! The reactor owns the sockets and moves bytes; the lab keeps, per node,
//! the recent output ([`History`], replayed to late joiners) and, per
//! client, the telnet session and an [`Outbox`]. A client whose outbox
//! passes [`MAX_CONSOLE_CLIENT_OUTPUT`] is dropped rather than allowed to
//! hold the others back.

use super::event::{Event, Events};
use super::host::Host;
use super::id::ClientId;
use super::id::NodeKey;
use super::ports::PortPool;
use crate::error::ApiError;
use crate::limits::{CONSOLE_HISTORY, MAX_CONSOLE_CLIENT_OUTPUT, MAX_CONSOLE_CLIENTS};
use crate::proto::bytes::ByteQueue;
use crate::proto::telnet::{self, GREETING, Session};
use std::collections::VecDeque;
use uuid::Uuid;

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

    /// A client connected: greet it with the recent output (and, when the
    /// node does not run, a note saying so: `stopped`). `false` when
    /// refused (too many clients).
    pub fn attach(&mut self, id: ClientId, stopped: Option<&str>) -> bool {
        if self.clients.len() >= MAX_CONSOLE_CLIENTS {
            return false;
        }
        let mut outbox = Outbox::default();
        outbox.push_raw(GREETING);
        if let Some(note) = stopped {
            outbox.push_output(note.as_bytes());
        }
        outbox.push_output(&self.history.contents());
        self.clients.push(Client {
            id,
            session: Session::new(),
            outbox,
            closing: false,
        });
        true
    }

    /// A client typed `data`: telnet negotiation is answered (host
    /// commands refused when `filter_shell`); returns what goes to the
    /// node.
    pub fn input(
        &mut self,
        id: ClientId,
        data: &[u8],
        filter_shell: bool,
        host: &mut dyn Host,
    ) -> Vec<u8> {
        let Some(c) = self.client(id) else {
            return Vec::new();
        };
        let input = c.session.feed(data, filter_shell);
        c.outbox.push_raw(&input.to_client);
        c.closing |= input.disconnect;
        if !c.outbox.pending().is_empty() || c.closing {
            host.console_ready(id);
        }
        input.to_vpcs
    }

    /// What to write to a client, and whether to close it once written.
    /// `None`: the client is unknown (close it).
    pub fn pending(&self, id: ClientId) -> Option<(&[u8], bool)> {
        let c = self.clients.iter().find(|c| c.id == id)?;
        Some((c.outbox.pending(), c.closing))
    }

    /// `n` bytes of a client's output were written.
    pub fn written(&mut self, id: ClientId, n: usize) {
        if let Some(c) = self.client(id) {
            c.outbox.consumed(n);
        }
    }

    /// A client went away.
    pub fn detach(&mut self, id: ClientId) {
        self.clients.retain(|c| c.id != id);
    }

    /// Drop every client (2.2's `console/reset`, a console turned off).
    pub fn reset(&mut self, host: &mut dyn Host) {
        for c in self.clients.drain(..) {
            host.console_drop(c.id);
        }
    }

    /// Show `data` to every client of node `node`; one that has fallen too
    /// far behind is dropped so that it cannot hold the others back.
    pub fn broadcast(&mut self, node: Uuid, data: &[u8], host: &mut dyn Host, events: &mut Events) {
        let mut dropped = Vec::new();
        self.clients.retain_mut(|c| {
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
            events.warn(
                Some(node),
                format!("console client {} is not reading: dropped", client.handle),
            );
        }
    }
}

/// What choosing a node's console port needs: the pool, the host that
/// listens, the events, and the node.
pub struct PortChoice<'a> {
    /// The console port pool.
    pub pool: &'a mut PortPool,
    /// The host, which listens.
    pub host: &'a mut dyn Host,
    /// Where warnings go.
    pub events: &'a mut Events,
    /// The node's key.
    pub key: NodeKey,
    /// The node's id.
    pub id: Uuid,
    /// The node's auxiliary console's port, not its console's.
    pub aux: bool,
}

impl PortChoice<'_> {
    /// Listen on `port` for the console chosen.
    fn bind(host: &mut dyn Host, (key, aux): (NodeKey, bool), port: u16) -> Result<(), ApiError> {
        if aux {
            host.bind_aux(key, port)
        } else {
            host.bind_console(key, port)
        }
    }

    /// Reserve and listen on a console port for the node: the one asked
    /// for, or the lowest free one. With `pick` (GNS3 2.2), a port asked
    /// for that is out of range or taken is replaced by a free one, as the
    /// 2.2 compute does, instead of refused.
    pub fn take(&mut self, asked: Option<u16>, pick: bool) -> Result<u16, ApiError> {
        let (key, id) = (self.key, self.id);
        if let Some(port) = asked {
            let (pool, host) = (&mut *self.pool, &mut *self.host);
            let taken = pool
                .check_in_range(port)
                .and_then(|()| free(pool, port))
                .and_then(|()| pool.reserve(port, id))
                .and_then(|()| {
                    Self::bind(host, (key, self.aux), port).inspect_err(|_| {
                        pool.release(port);
                    })
                });
            match taken {
                Ok(()) => return Ok(port),
                Err(e) if !pick => return Err(e),
                Err(e) => self.events.warn(
                    Some(id),
                    format!("console port {port} not available ({e}); picking another"),
                ),
            }
        }
        let (host, aux) = (&mut *self.host, self.aux);
        // Out of descriptors, no port will do: stop trying, and say so.
        let mut limit = None;
        let picked = self.pool.reserve_lowest(id, |p| {
            if limit.is_some() {
                return None;
            }
            match Self::bind(host, (key, aux), p) {
                Ok(()) => Some(()),
                Err(e @ ApiError::Unavailable(_)) => {
                    limit = Some(e);
                    None
                }
                Err(_) => None,
            }
        });
        match (picked, limit) {
            (Ok((port, ())), _) => Ok(port),
            (Err(_), Some(limit)) => Err(limit),
            (Err(e), None) => Err(e),
        }
    }

    /// Listen on `port` instead of `current`; attached clients keep their
    /// sessions.
    pub fn move_to(&mut self, current: &mut Option<u16>, port: u16) -> Result<(), ApiError> {
        self.pool.check_in_range(port)?;
        free(self.pool, port)?;
        self.pool.reserve(port, self.id)?;
        if let Err(e) = Self::bind(self.host, (self.key, self.aux), port) {
            self.pool.release(port);
            return Err(e);
        }
        let old = current.replace(port).unwrap_or(port);
        self.pool.release(old);
        self.events.emit(Event::ConsoleMoved {
            node: self.id,
            from: old,
            to: port,
        });
        Ok(())
    }
}

/// A port no one holds, the node itself included (its other console's
/// port must not be taken, then released, by a failed bind).
fn free(pool: &PortPool, port: u16) -> Result<(), ApiError> {
    match pool.owner(port) {
        Some(_) => Err(ApiError::conflict(format!(
            "Console port {port} is already in use"
        ))),
        None => Ok(()),
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
