//! The container engine on the loop: each call the lab makes is one
//! connection to the engine's unix socket, written, read through the
//! sans-IO client (`proto::http::client`), and handed back to the lab as
//! `Lab::on_engine`; an attach's connection stays, as the node's console
//! stream (`Lab::on_output`, and `Lab::on_exit` when it ends).

use super::{Entry, Io, IoTimer, Server, guarded};
use crate::error::ApiError;
use crate::lab::NodeKey;
use crate::lab::host::{EngineCall, EngineReply};
use crate::os::nb::{Moved, read_some, would_block};
use crate::proto::http::client::{self, Answer, ResponseParser};
use mio::Interest;
use mio::net::UnixStream;
use std::io::Write;
use std::time::Instant;

use crate::limits::{
    ENGINE_BODY_LIMIT, ENGINE_TIMEOUT, PULL_TAIL, PULL_TIMEOUT, SHUTDOWN_ENGINE_WAIT,
};

/// One call under way.
pub(super) struct EngineConn {
    call: EngineCall,
    stream: UnixStream,
    out: Vec<u8>,
    parser: ResponseParser,
    /// What arrived and the parser has not used yet.
    read: Vec<u8>,
    serial: u64,
}

impl Io {
    /// Connect to the engine and send `call`; refused at once when the
    /// engine is not there.
    pub(super) fn engine_call(&mut self, now: Instant, call: EngineCall) -> Result<(), ApiError> {
        let socket = self.config.docker_socket.clone();
        let mut stream = UnixStream::connect(&socket).map_err(|e| {
            ApiError::conflict(format!(
                "Can't connect to Docker daemon at {} ({e}): start it (dockerd, or \
                 systemctl start docker), or point nanolab at its socket with --docker-socket",
                socket.display()
            ))
        })?;
        let out = if call.attach {
            client::upgrade_request(&call.path, call.body.as_deref())
        } else {
            client::request(call.method, &call.path, call.body.as_deref())
        };
        let long = call.long;
        self.next_serial += 1;
        let serial = self.next_serial;
        let token = self.entries.vacant_entry().key();
        self.registry
            .register(
                &mut stream,
                mio::Token(token),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| ApiError::io("registering the engine connection", &e))?;
        self.entries.insert(Entry::Engine(Box::new(EngineConn {
            call,
            stream,
            out,
            parser: if long {
                ResponseParser::keeping_tail(PULL_TAIL)
            } else {
                ResponseParser::new(ENGINE_BODY_LIMIT)
            },
            read: Vec::new(),
            serial,
        })));
        let timeout = if long { PULL_TIMEOUT } else { ENGINE_TIMEOUT };
        self.timers
            .schedule(now + timeout, IoTimer::Engine(token, serial));
        Ok(())
    }

    /// Whether calls to the engine are under way (shutdown waits for them).
    pub(super) fn engine_busy(&self) -> bool {
        self.entries
            .iter()
            .any(|(_, e)| matches!(e, Entry::Engine(_)))
    }

    /// Drop the node's console stream, if it has one.
    pub(super) fn drop_attach(&mut self, node: NodeKey) {
        self.drop_stream(node, |c| &mut c.attach);
    }

    /// Drop the node's auxiliary console stream, if it has one (its
    /// listener stays).
    pub(super) fn drop_aux_stream(&mut self, node: NodeKey) {
        self.drop_stream(node, |c| &mut c.aux_stream);
    }

    fn drop_stream(
        &mut self,
        node: NodeKey,
        which: fn(&mut super::ContainerIo) -> &mut Option<(usize, UnixStream)>,
    ) {
        let Some(n) = self.nodes.get_mut(&node) else {
            return;
        };
        let taken = n.container.as_deref_mut().and_then(|c| which(c).take());
        n.shrink();
        if let Some((token, mut stream)) = taken {
            self.unregister(&mut stream, token);
        }
    }

    /// What one of the node's streams (`which`) holds now, up to the read
    /// budget (then it is served again next turn), and whether it ended.
    fn read_stream(
        &mut self,
        node: NodeKey,
        which: fn(&super::NodeIo) -> Option<&(usize, UnixStream)>,
    ) -> (Vec<u8>, bool) {
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        while let Some((token, stream)) = self.nodes.get(&node).and_then(which) {
            match read_some(stream, &mut buf) {
                Moved::Bytes(n) => data.extend_from_slice(&buf[..n]),
                Moved::Later => break,
                Moved::Closed => return (data, true),
            }
            if data.len() >= crate::limits::READ_BUDGET {
                let token = *token;
                self.again.push(token);
                break;
            }
        }
        (data, false)
    }

    /// Type into the node's console stream; `false` when it has none.
    pub(super) fn attach_input(&mut self, node: NodeKey, data: &[u8]) -> bool {
        let container = self.nodes.get_mut(&node).and_then(|n| n.container.as_mut());
        let Some((_, stream)) = container.and_then(|c| c.attach.as_mut()) else {
            return false;
        };
        if let Err(e) = stream.write_all(data) {
            // A full stream drops the input, like a UART.
            log::debug!("console input dropped: {e}");
        }
        true
    }
}

/// What a call's connection came to.
enum Outcome {
    /// Nothing yet.
    Waiting,
    /// Answered (or failed): the connection goes.
    Done(Result<EngineReply, String>),
    /// An attach: the connection is the container's stream from now on,
    /// these bytes its first.
    Attached(Vec<u8>),
}

impl EngineConn {
    /// Write what is left, read what came, parse.
    fn pump(&mut self) -> Outcome {
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if would_block(&e) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Outcome::Done(Err(format!("Docker has returned an error: {e}"))),
            }
        }
        let mut buf = [0u8; 16 * 1024];
        loop {
            match read_some(&self.stream, &mut buf) {
                Moved::Bytes(n) => self.read.extend_from_slice(&buf[..n]),
                Moved::Later => break,
                Moved::Closed => {
                    if let Some(o) = self.parse() {
                        return o;
                    }
                    let closed = self.parser.closed();
                    return Outcome::Done(match closed {
                        Ok(Answer::Whole(r)) => Ok(EngineReply {
                            status: r.status,
                            body: r.body,
                        }),
                        Ok(Answer::Upgraded) => Err("Docker closed the attach".into()),
                        Err(e) => Err(format!("Docker has returned an error: {e}")),
                    });
                }
            }
            if let Some(o) = self.parse() {
                return o;
            }
        }
        Outcome::Waiting
    }

    fn parse(&mut self) -> Option<Outcome> {
        if self.read.is_empty() {
            return None;
        }
        match self.parser.feed(&self.read) {
            Err(e) => Some(Outcome::Done(Err(format!(
                "Docker has returned an error: {e}"
            )))),
            Ok((used, answer)) => {
                self.read.drain(..used);
                match answer {
                    None => None,
                    Some(Answer::Whole(r)) => Some(Outcome::Done(Ok(EngineReply {
                        status: r.status,
                        body: r.body,
                    }))),
                    Some(Answer::Upgraded) => {
                        Some(Outcome::Attached(std::mem::take(&mut self.read)))
                    }
                }
            }
        }
    }
}

impl Server {
    /// A call's connection is ready: go on with it; hand the lab its
    /// answer once there is one.
    pub(super) fn on_engine(&mut self, now: Instant, token: usize) {
        let Some(Entry::Engine(conn)) = self.io.entries.get_mut(token) else {
            return;
        };
        let outcome = conn.pump();
        let node = conn.call.node;
        let (call, answer) = match outcome {
            Outcome::Waiting => return,
            Outcome::Done(answer) => {
                let Some(Entry::Engine(conn)) = self.io.entries.try_remove(token) else {
                    return;
                };
                let mut conn = *conn;
                let _ = self.io.registry.deregister(&mut conn.stream);
                (conn.call, answer)
            }
            Outcome::Attached(first) => {
                let Some(key) = node else { return };
                let aux = conn.call.aux;
                if aux {
                    self.io.drop_aux_stream(key);
                } else {
                    self.io.drop_attach(key);
                }
                let Some(entry) = self.io.entries.get_mut(token) else {
                    return;
                };
                let next = if aux {
                    Entry::AuxAttach(key)
                } else {
                    Entry::Attach(key)
                };
                let Entry::Engine(conn) = std::mem::replace(entry, next) else {
                    return;
                };
                let EngineConn {
                    call, mut stream, ..
                } = *conn;
                let _ =
                    self.io
                        .registry
                        .reregister(&mut stream, mio::Token(token), Interest::READABLE);
                let c = self.io.nodes.slot(key).container();
                if aux {
                    c.aux_stream = Some((token, stream));
                } else {
                    c.attach = Some((token, stream));
                }
                let (lab, io) = (&mut self.lab, &mut self.io);
                let reply = Ok(EngineReply {
                    status: 101,
                    body: Vec::new(),
                });
                let _ = guarded("an engine answer", || lab.on_engine(now, &call, reply, io));
                if aux {
                    if !first.is_empty() {
                        let (lab, io) = (&mut self.lab, &mut self.io);
                        let _ = guarded("console output", || lab.on_aux_output(key, &first, io));
                    }
                    self.on_aux_attach(key);
                    return;
                }
                if !first.is_empty() {
                    let (lab, io) = (&mut self.lab, &mut self.io);
                    let _ = guarded("console output", || lab.on_output(now, key, &first, io));
                }
                // What came with the answer may be all there is for now.
                self.on_attach(now, key);
                return;
            }
        };
        let (lab, io) = (&mut self.lab, &mut self.io);
        let _ = guarded("an engine answer", || lab.on_engine(now, &call, answer, io));
    }

    /// A call took too long: it fails.
    pub(super) fn on_engine_timer(&mut self, now: Instant, token: usize, serial: u64) {
        match self.io.entries.get(token) {
            Some(Entry::Engine(c)) if c.serial == serial => {}
            _ => return,
        }
        let Some(Entry::Engine(mut conn)) = self.io.entries.try_remove(token) else {
            return;
        };
        let _ = self.io.registry.deregister(&mut conn.stream);
        let call = conn.call;
        let e = format!("Docker timeout {} {}", call.method, call.path);
        let (lab, io) = (&mut self.lab, &mut self.io);
        let _ = guarded("an engine answer", || lab.on_engine(now, &call, Err(e), io));
    }

    /// The node's console stream is readable: what the container printed
    /// goes to the lab; its end is the container's.
    pub(super) fn on_attach(&mut self, now: Instant, node: NodeKey) {
        let (data, closed) = self
            .io
            .read_stream(node, |n| n.container.as_ref()?.attach.as_ref());
        if !data.is_empty() {
            let (lab, io) = (&mut self.lab, &mut self.io);
            let _ = guarded("console output", || lab.on_output(now, node, &data, io));
        }
        if closed {
            self.io.drop_attach(node);
            let (lab, io) = (&mut self.lab, &mut self.io);
            let _ = guarded("a container's end", || {
                lab.on_exit(now, node, "its terminal closed", io)
            });
        }
    }

    /// The node's auxiliary console stream is readable: what its shell
    /// printed goes to the lab; its end only closes it.
    pub(super) fn on_aux_attach(&mut self, node: NodeKey) {
        let (data, closed) = self
            .io
            .read_stream(node, |n| n.container.as_ref()?.aux_stream.as_ref());
        if !data.is_empty() {
            let (lab, io) = (&mut self.lab, &mut self.io);
            let _ = guarded("console output", || lab.on_aux_output(node, &data, io));
        }
        if closed {
            self.io.drop_aux_stream(node);
        }
    }

    /// Shutdown: let the engine answer the calls under way (the removal
    /// of every container), for a few seconds at most.
    pub(super) fn drain_engine(&mut self) {
        let deadline = Instant::now() + SHUTDOWN_ENGINE_WAIT;
        let mut events = mio::Events::with_capacity(64);
        while self.io.engine_busy() {
            let now = Instant::now();
            if now >= deadline {
                log::warn!("the Docker engine did not answer every call before shutdown");
                break;
            }
            if self.poll.poll(&mut events, Some(deadline - now)).is_err() {
                break;
            }
            let tokens: Vec<usize> = events.iter().map(|e| e.token().0).collect();
            for token in tokens {
                if matches!(self.io.entries.get(token), Some(Entry::Engine(_))) {
                    self.on_engine(Instant::now(), token);
                }
            }
        }
    }
}
