//! Websockets on the loop (GNS3 2.2's compute): an API connection whose
//! request the lab answered with an upgrade becomes one of these. The
//! notification channel gets the lab's events as JSON text frames; a
//! console websocket is one more client of the node's console, its bytes
//! in binary frames. Frames are `proto::websocket`'s; what to send is the
//! lab's and the `v2` front-end's.

use super::{Entry, Io, Server};
use crate::api::Front;
use crate::api::answer::Upgrade;
use crate::lab::{ClientId, NodeKey};
use crate::limits::{READ_BUDGET, STREAM_SEND_BUFFER};
use crate::os::link::Link;
use crate::os::nb::Moved;
use crate::proto::websocket::{Opcode, Session};
use mio::unix::SourceFd;
use std::os::fd::AsRawFd;
use std::time::Instant;

/// What a websocket carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WsKind {
    /// The compute's notifications.
    Notifications,
    /// A node's console, as one of its console clients.
    Console(NodeKey, ClientId),
}

/// One websocket connection: its socket, what it carries, and its
/// protocol state (`proto::websocket::Session`).
pub(super) struct WsConn {
    stream: Link,
    session: Session,
    kind: WsKind,
    /// The serial of the connection it was (for the memory budget).
    serial: u64,
}

impl WsConn {
    /// Its serial and the bytes it holds (read and unsent), for the
    /// memory budget.
    pub(super) fn held(&self) -> (u64, usize) {
        (self.serial, self.session.buffered() + self.stream.held())
    }
}

impl Server {
    /// The upgrade answer went into the connection's output: the
    /// connection is a websocket from now on.
    pub(super) fn upgrade_http(&mut self, token: usize, up: Upgrade, front: Front) {
        let node = match up {
            Upgrade::Notifications => None,
            Upgrade::Console(node) => Some(node),
        };
        let Some(Entry::Http(http)) = self.io.entries.try_remove(token) else {
            return;
        };
        let serial = http.serial();
        let (stream, out, peer) = http.into_parts();
        self.io.connection_gone(peer);
        // Accounted again under the websocket's token, below.
        self.io.budget.set(
            ClientId {
                handle: token,
                serial,
            },
            0,
        );
        let fd = stream.as_raw_fd();
        let _ = crate::sys::cap_send_buffer(fd, STREAM_SEND_BUFFER);
        let ws = WsConn {
            stream,
            session: Session::new(out),
            kind: WsKind::Notifications,
            serial,
        };
        // A slab reuses the slot just freed, so the token (and the poll
        // registration) stay; should it not, register under the new one.
        let at = self.io.entries.insert(Entry::Ws(Box::new(ws)));
        if at != token {
            let interest = mio::Interest::READABLE | mio::Interest::WRITABLE;
            let _ = self
                .io
                .registry
                .reregister(&mut SourceFd(&fd), mio::Token(at), interest);
        }
        let token = at;
        match node {
            None => self.io.notifiers.push((token, front)),
            Some(node) => {
                let id = ClientId {
                    handle: token,
                    serial,
                };
                if let Some(Entry::Ws(ws)) = self.io.entries.get_mut(token) {
                    ws.kind = WsKind::Console(node, id);
                }
                if !self.lab.console_attach(node, id) {
                    log::debug!("websocket {token}: console refused");
                    return self.close_ws(token);
                }
            }
        }
        log::debug!("http[{token}] is now a websocket ({up:?})");
        self.flush_ws(token);
    }

    /// Readable or writable.
    pub(super) fn on_ws(&mut self, now: Instant, token: usize, readable: bool) {
        if readable {
            self.read_ws(now, token);
        }
        self.flush_ws(token);
    }

    fn read_ws(&mut self, now: Instant, token: usize) {
        let mut total = 0;
        loop {
            let Some(Entry::Ws(ws)) = self.io.entries.get_mut(token) else {
                return;
            };
            if total >= READ_BUDGET {
                self.io.again.push(token);
                return;
            }
            match ws.stream.read(&mut self.io.scratch) {
                Moved::Bytes(n) => {
                    total += n;
                    let kind = ws.kind;
                    for message in ws.session.receive(&self.io.scratch[..n]) {
                        self.ws_input(now, kind, &message);
                    }
                }
                Moved::Later => return,
                Moved::Closed => return self.close_ws(token),
            }
        }
    }

    fn ws_input(&mut self, now: Instant, kind: WsKind, data: &[u8]) {
        if let WsKind::Console(node, id) = kind {
            self.lab.console_input(now, node, id, data, &mut self.io);
        }
    }

    /// Move the console's output into frames, then write what is queued.
    pub(super) fn flush_ws(&mut self, token: usize) {
        self.write_ws(token);
        self.account(token);
    }

    /// Drop a websocket for the memory budget: a close 1008 that says why,
    /// as far as the socket takes it, then the connection goes.
    pub(super) fn drop_ws_for_budget(&mut self, token: usize) {
        if let Some(Entry::Ws(ws)) = self.io.entries.get_mut(token) {
            let mut close = Vec::new();
            crate::proto::websocket::encode_close(&mut close, 1008, "memory budget exceeded");
            let _ = ws.stream.write(&close);
        }
        self.close_ws(token);
    }

    fn write_ws(&mut self, token: usize) {
        if let Some(Entry::Ws(ws)) = self.io.entries.get(token)
            && let WsKind::Console(node, id) = ws.kind
        {
            match self.lab.console_pending(node, id) {
                // The lab let the client go (it typed `disconnect`).
                None | Some(([], true)) => return self.close_ws(token),
                Some((pending, _)) if !pending.is_empty() => {
                    let n = pending.len();
                    if let Some(Entry::Ws(ws)) = self.io.entries.get_mut(token) {
                        ws.session.send(Opcode::Binary, pending);
                    }
                    self.lab.console_written(node, id, n);
                }
                Some(_) => {}
            }
        }
        let Some(Entry::Ws(ws)) = self.io.entries.get_mut(token) else {
            return;
        };
        if let Moved::Closed = ws.stream.flush() {
            return self.close_ws(token);
        }
        while !ws.session.output().is_empty() {
            match ws.stream.write(ws.session.output()) {
                Moved::Bytes(n) => ws.session.consumed(n),
                Moved::Later => break,
                Moved::Closed => return self.close_ws(token),
            }
        }
        if ws.session.stalled() {
            log::warn!("websocket {token} does not read: dropped");
            return self.close_ws(token);
        }
        if ws.session.finished() && !ws.stream.pending() {
            self.close_ws(token);
        }
    }

    /// Send a lab notice to every notification channel, rendered by the
    /// front-end each subscribed through (once per front-end).
    pub(super) fn notify(&mut self, notice: &crate::api::answer::Notice<'_>) {
        let mut rendered: Vec<(Front, Option<String>)> = Vec::new();
        for (token, front) in self.io.notifiers.clone() {
            let text = match rendered.iter().find(|(f, _)| *f == front) {
                Some((_, t)) => t.clone(),
                None => {
                    let t = crate::api::notice(front, notice);
                    rendered.push((front, t.clone()));
                    t
                }
            };
            if let Some(text) = text
                && let Some(Entry::Ws(ws)) = self.io.entries.get_mut(token)
                && ws.session.send(Opcode::Text, text.as_bytes())
            {
                self.flush_ws(token);
            }
        }
    }

    /// Close a websocket and tell the lab its client is gone.
    pub(super) fn close_ws(&mut self, token: usize) {
        let Some(Entry::Ws(ws)) = self.io.entries.try_remove(token) else {
            return;
        };
        let _ = self
            .io
            .registry
            .deregister(&mut SourceFd(&ws.stream.as_raw_fd()));
        self.io.budget.set(
            ClientId {
                handle: token,
                serial: ws.serial,
            },
            0,
        );
        match ws.kind {
            WsKind::Notifications => {
                self.io.notifiers.retain(|(t, _)| *t != token);
                self.lab.unsubscribe();
            }
            WsKind::Console(node, id) => self.lab.console_detach(node, id),
        }
        log::debug!("websocket {token} closed");
    }
}

impl Io {
    /// A console websocket client, by id (for output the lab gave it).
    pub(super) fn ws_client_token(&self, id: ClientId) -> Option<usize> {
        match self.entries.get(id.handle) {
            Some(Entry::Ws(ws)) if matches!(ws.kind, WsKind::Console(_, c) if c == id) => {
                Some(id.handle)
            }
            _ => None,
        }
    }

    /// Drop a console websocket the lab let go (console reset): close it.
    pub(super) fn drop_ws_client(&mut self, id: ClientId) -> bool {
        let Some(token) = self.ws_client_token(id) else {
            return false;
        };
        if let Some(Entry::Ws(ws)) = self.entries.try_remove(token) {
            let _ = self
                .registry
                .deregister(&mut SourceFd(&ws.stream.as_raw_fd()));
            self.budget.set(id, 0);
        }
        true
    }
}
