//! API connections on the loop: accept, read, parse, hand to the front-end
//! and the lab, write, and act on the deadlines `Conn` decides.

use super::Source;
use super::{Entry, Io, IoTimer, Server, accept_one, guarded};
use crate::api::answer::{Answer, Body};
use crate::api::{self, Front, Ticket};
use crate::error::ApiError;
use crate::lab::ClientId;
use crate::lab::Reply;
use crate::limits::{READ_BUDGET, STREAM_PIECE};
use crate::os::backup::TarStream;
use crate::os::link::{Link, Policy};
use crate::os::nb::Moved;
use crate::proto::http::conn::{Conn, Expiry, SlotId};
use crate::proto::http::parse::Request;
use crate::proto::http::response::Response;
use mio::Interest;
use mio::net::TcpStream;
use mio::unix::SourceFd;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::Instant;

/// One API connection: socket, protocol state and timer bookkeeping.
pub(super) struct HttpConn {
    stream: Link,
    conn: Conn,
    /// Distinguishes this connection from a later one that reuses the token.
    serial: u64,
    /// Deadline of the timer currently in the heap for this connection.
    timer_at: Option<Instant>,
    /// Already on `again` (answers completed outside a pump of this connection).
    queued: bool,
    /// Which front-end renders each unanswered request's answer, and the
    /// route it matched (for `X-Route`), by slot: the lab's ticket names
    /// only the connection and the slot.
    fronts: std::collections::HashMap<SlotId, (Front, Option<&'static str>)>,
    /// The last request's `Sec-WebSocket-Key`, for an upgrade answer.
    ws_key: Option<String>,
    /// The lab answered with an upgrade: the connection becomes a websocket
    /// once this pump is over.
    upgrade: Option<(crate::api::answer::Upgrade, Front)>,
    /// The client's address, whose share of the connections this takes.
    peer: std::net::IpAddr,
}

impl HttpConn {
    pub(super) fn serial(&self) -> u64 {
        self.serial
    }

    /// Bytes held for this client: requests not yet served and answers
    /// not yet written (for the memory budget).
    pub(super) fn buffered(&self) -> usize {
        self.conn.held() + self.stream.held()
    }

    /// Put on `again` unless already there: returns whether to push it.
    pub(super) fn mark_queued(&mut self) -> bool {
        !std::mem::replace(&mut self.queued, true)
    }

    /// The socket, the bytes still to write (an upgrade's 101) and the
    /// client's address.
    pub(super) fn into_parts(self) -> (Link, Vec<u8>, std::net::IpAddr) {
        let out = self.conn.output().to_vec();
        (self.stream, out, self.peer)
    }
}

/// Answer a connection the server cannot take with a 503 that says why,
/// as far as one write goes (a fresh socket's buffer takes it), and close.
fn refuse(mut stream: TcpStream, why: &str) {
    let mut out = Vec::new();
    Response::error(&ApiError::Unavailable(why.to_string())).write_to(&mut out, true);
    let _ = stream.write(&out);
}

impl Io {
    /// An API connection from `ip` closed, or became a websocket.
    pub(super) fn connection_gone(&mut self, ip: std::net::IpAddr) {
        self.admission.gone(ip);
    }
}

impl Server {
    /// Accept every pending connection; past the limit, close them at once.
    pub(super) fn accept_http(&mut self, now: Instant) {
        let retry = (now, IoTimer::Accept);
        while let Some((stream, peer)) = accept_one(&self.io.listener, &mut self.io.timers, retry) {
            if let Err(refusal) = self.io.admission.admit(peer.ip()) {
                log::warn!("connection from {peer} refused: {refusal}");
                // Under TLS the 503 would need a handshake: just close.
                if matches!(self.io.link, Policy::Plain) {
                    refuse(stream, &refusal);
                }
                continue;
            }
            let _ = stream.set_nodelay(true);
            self.io.next_serial += 1;
            let conn = HttpConn {
                stream: Link::new(stream, &self.io.link),
                conn: Conn::new(now),
                serial: self.io.next_serial,
                timer_at: None,
                queued: false,
                fronts: std::collections::HashMap::new(),
                ws_key: None,
                upgrade: None,
                peer: peer.ip(),
            };
            let fd = conn.stream.as_raw_fd();
            let interest = Interest::READABLE | Interest::WRITABLE;
            let entry = Entry::Http(Box::new(conn));
            let token = match self.io.register(&mut SourceFd(&fd), interest, entry) {
                Ok(t) => t,
                Err(e) => {
                    log::warn!("cannot register connection from {peer}: {e}");
                    self.io.admission.gone(peer.ip());
                    continue;
                }
            };
            log::trace!("http[{token}] connected from {peer}");
            self.io.arm_conn_timer(token);
        }
    }

    /// Write what is ready, read what is there, serve complete requests;
    /// repeat while something moves, up to [`READ_BUDGET`] bytes read per
    /// call (then the connection goes on `again`, so others get their turn).
    /// Closes the connection when it is done.
    pub(super) fn pump_http(&mut self, now: Instant, token: usize, readable: bool) {
        if let Some(c) = self.io.http(token) {
            c.queued = false;
        }
        let mut try_read = readable;
        let mut read_total = 0;
        loop {
            if !self.io.flush_http(now, token) {
                return self.io.close_http(token);
            }
            if try_read {
                read_total += self.io.read_http(now, token, READ_BUDGET - read_total);
            }
            let served = self.serve_parsed(now, token);
            if let Some((up, front)) = self.io.http(token).and_then(|c| c.upgrade.take()) {
                return self.upgrade_http(token, up, front);
            }
            self.feed_stream(token);
            if !self.io.flush_http(now, token) {
                return self.io.close_http(token);
            }
            let Some(c) = self.io.http(token) else { return };
            // Under TLS the last answer may still be in the record buffer.
            if c.conn.finished() && !c.stream.pending() {
                return self.io.close_http(token);
            }
            if read_total >= READ_BUDGET {
                c.queued = true;
                self.io.again.push(token);
                break;
            }
            // A backup whose last piece went out: more next turn (a live
            // capture is woken by its records instead). Only a streaming
            // connection pays for the lookup.
            let drained = c.conn.streaming() && c.conn.output().is_empty() && !c.queued;
            let read_on = served > 0 && c.conn.wants_read();
            let pulled = matches!(
                self.io.streams.get(&token),
                Some((_, Source::Tar(_) | Source::File(_)))
            );
            if drained && pulled {
                if let Some(c) = self.io.http(token) {
                    c.queued = true;
                }
                self.io.again.push(token);
            }
            // Answers went out: there may be room, and data, to read again.
            if !read_on {
                break;
            }
            try_read = true;
        }
        self.io.arm_conn_timer(token);
        self.account(token);
    }

    /// Hand every complete request in the buffer to the lab, one at a time
    /// and in order. Answers produced meanwhile are written by the caller in
    /// one go rather than one write per answer.
    fn serve_parsed(&mut self, now: Instant, token: usize) -> usize {
        let mut served = 0;
        self.io.pumping = Some(token);
        loop {
            self.drain_body(token);
            let Some((serial, slot, req)) = self.io.next_parsed(token) else {
                break;
            };
            self.handle_request(now, token, serial, slot, req);
            served += 1;
        }
        self.io.pumping = None;
        served
    }

    /// Give what arrived of a streamed body to its upload (or drop it,
    /// when the lab refused the upload); once the body ends, tell the lab.
    fn drain_body(&mut self, token: usize) {
        let Io {
            entries, uploads, ..
        } = &mut self.io;
        let Some(Entry::Http(c)) = entries.get_mut(token) else {
            return;
        };
        let serial = c.serial;
        let mut sink = uploads.get_mut(&token).filter(|(t, _)| t.serial == serial);
        let Some(end) = c.conn.drain_body(&mut |piece| {
            if let Some((_, up)) = sink.as_mut() {
                up.write(piece);
            }
        }) else {
            return;
        };
        let Some((ticket, up)) = uploads.remove(&token) else {
            return;
        };
        let outcome = end.and_then(|()| {
            up.finish()
                .map_err(|e| ApiError::conflict(format!("Could not write the upload: {e}")))
        });
        let (lab, io) = (&mut self.lab, &mut self.io);
        lab.body_received(ticket, outcome, io);
    }

    /// One request: the front-end decodes it, the lab acts on it. A panic
    /// in either is answered with a 500 and the loop carries on.
    fn handle_request(
        &mut self,
        now: Instant,
        conn: usize,
        serial: u64,
        slot: SlotId,
        req: Request,
    ) {
        log::debug!("{} {}", req.method.as_str(), req.path);
        if let Some(c) = self.io.http(conn) {
            c.ws_key.clone_from(&req.websocket_key);
        }
        let ticket = Ticket { conn, serial, slot };
        let (lab, io) = (&mut self.lab, &mut self.io);
        let handled = guarded("a request", || {
            let (front, decoded) = api::decode(&req, io.config.auth.as_ref());
            if let Some(c) = io.http(conn) {
                c.fronts.insert(slot, (front, decoded.route));
            }
            match decoded.command {
                Err(ApiError::Unauthorized) => {
                    log::debug!("{} {}: no valid credentials", req.method.as_str(), req.path);
                    io.answer(ticket, Err(ApiError::Unauthorized));
                }
                Err(e) => {
                    io.record(ticket, &req);
                    io.answer(ticket, Err(e));
                }
                Ok(cmd) => {
                    io.record(ticket, &req);
                    lab.handle(now, ticket, cmd, io);
                }
            }
        });
        if let Err(cause) = handled {
            let e = ApiError::Internal(format!(
                "Internal error while handling the request (a bug: {cause}); the server carries on"
            ));
            self.io.answer(ticket, Err(e));
        }
    }

    /// Give a streamed answer its next piece once most of the last is out:
    /// the next part of a backup, or what a live capture recorded.
    fn feed_stream(&mut self, token: usize) {
        let Io {
            entries, streams, ..
        } = &mut self.io;
        let Some(Entry::Http(c)) = entries.get_mut(token) else {
            return;
        };
        if !c.conn.streaming() || c.conn.output().len() >= STREAM_PIECE {
            return;
        }
        let source = streams.get_mut(&token).filter(|(s, _)| *s == c.serial);
        let more = match source {
            // The source is gone: end what was sent rather than hang.
            None => false,
            Some((_, Source::Tar(stream))) => {
                let mut piece = Vec::with_capacity(STREAM_PIECE);
                let more = stream.fill(&mut piece, STREAM_PIECE);
                c.conn.stream_chunk(&piece);
                more
            }
            Some((_, Source::File(file))) => {
                let mut piece = vec![0; STREAM_PIECE];
                match std::io::Read::read(file, &mut piece) {
                    Ok(n) if n > 0 => {
                        c.conn.stream_chunk(&piece[..n]);
                        true
                    }
                    // The end, or a read error: end what was sent.
                    _ => false,
                }
            }
            Some((_, Source::Capture(viewer))) => match self.lab.capture_output(*viewer) {
                Some(records) => {
                    c.conn.stream_chunk(&records);
                    true
                }
                None => false,
            },
        };
        if !more {
            c.conn.end_stream();
            streams.remove(&token);
        }
    }

    pub(super) fn on_conn_timer(&mut self, now: Instant, token: usize, serial: u64) {
        let Some(c) = self.io.http(token).filter(|c| c.serial == serial) else {
            return;
        };
        c.timer_at = None;
        match c.conn.on_timeout(now) {
            Expiry::Close => {
                log::debug!("http[{token}] idle or not reading: closed");
                self.io.close_http(token)
            }
            Expiry::Answer408 => {
                log::debug!("http[{token}] request not received in time");
                self.pump_http(now, token, false);
            }
            Expiry::Wait => self.io.arm_conn_timer(token),
        }
    }
}

impl Io {
    fn http(&mut self, token: usize) -> Option<&mut HttpConn> {
        match self.entries.get_mut(token) {
            Some(Entry::Http(c)) => Some(c),
            _ => None,
        }
    }

    fn next_parsed(&mut self, token: usize) -> Option<(u64, SlotId, Request)> {
        let c = self.http(token)?;
        let (slot, req) = c.conn.next_request()?;
        Some((c.serial, slot, req))
    }

    /// Read until WouldBlock, EOF or `budget` bytes; returns the bytes read.
    fn read_http(&mut self, now: Instant, token: usize, budget: usize) -> usize {
        let Some(Entry::Http(c)) = self.entries.get_mut(token) else {
            return 0;
        };
        let mut total = 0;
        while c.conn.wants_read() && total < budget {
            match c.stream.read(&mut self.scratch[..budget - total]) {
                Moved::Bytes(n) => {
                    c.conn.receive(now, &self.scratch[..n]);
                    total += n;
                }
                Moved::Later => break,
                Moved::Closed => c.conn.peer_closed(),
            }
        }
        total
    }

    /// Write pending output. Returns false when the connection is broken.
    fn flush_http(&mut self, now: Instant, token: usize) -> bool {
        let Some(c) = self.http(token) else {
            return true;
        };
        if let Moved::Closed = c.stream.flush() {
            return false;
        }
        while !c.conn.output().is_empty() {
            match c.stream.write(c.conn.output()) {
                Moved::Bytes(n) => c.conn.consumed_output(now, n),
                Moved::Later => return true,
                Moved::Closed => return false,
            }
        }
        true
    }

    /// Close an API connection at once.
    pub(super) fn close_http_now(&mut self, token: usize) {
        self.close_http(token);
    }

    fn close_http(&mut self, token: usize) {
        if let Some((_, Source::Capture(viewer))) = self.streams.remove(&token) {
            self.gone_viewers.push(viewer);
        }
        // Dropping the upload removes its half-written file.
        if let Some((ticket, _)) = self.uploads.remove(&token) {
            self.gone_uploads.push(ticket);
        }
        if let Some(Entry::Http(c)) = self.entries.try_remove(token) {
            let _ = self
                .registry
                .deregister(&mut SourceFd(&c.stream.as_raw_fd()));
            self.connection_gone(c.peer);
            let who = ClientId {
                handle: token,
                serial: c.serial,
            };
            self.budget.set(who, 0);
            log::trace!("http[{token}] closed");
        }
    }

    /// Deliver an answer to its slot; the connection may have gone meanwhile.
    pub(super) fn answer(&mut self, ticket: Ticket, mut reply: Reply) {
        match &reply {
            Ok(Answer::Ok(Body::Backup(dir))) => match TarStream::new(dir) {
                Ok(s) => {
                    self.streams
                        .insert(ticket.conn, (ticket.serial, Source::Tar(s)));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    reply = Err(ApiError::NotFound(format!(
                        "{} does not exist",
                        dir.display()
                    )))
                }
                Err(e) => reply = Err(ApiError::io(&format!("reading {}", dir.display()), &e)),
            },
            Ok(Answer::Ok(Body::FileStream(path))) => match std::fs::File::open(path) {
                Ok(f) => {
                    self.streams
                        .insert(ticket.conn, (ticket.serial, Source::File(f)));
                }
                Err(e) => reply = Err(ApiError::io(&format!("reading {}", path.display()), &e)),
            },
            Ok(Answer::Ok(Body::LiveCapture)) => {
                let viewer = ClientId {
                    handle: ticket.conn,
                    serial: ticket.serial,
                };
                self.streams
                    .insert(ticket.conn, (ticket.serial, Source::Capture(viewer)));
            }
            _ => {}
        }
        if let Err(e) = &reply
            && e.status() >= 500
        {
            log::error!("{e}");
        }
        let upgrade = api::upgrade(&reply);
        let Some(c) = self.http(ticket.conn).filter(|c| c.serial == ticket.serial) else {
            self.record_answer(ticket, 0, &[]);
            return;
        };
        // A request whose decoding panicked has no entry: /v1 renders it.
        let (front, route) = c.fronts.remove(&ticket.slot).unwrap_or((Front::V1, None));
        let resp = api::render(front, route, reply);
        self.record_answer(ticket, resp.status, &resp.body);
        let Some(c) = self.http(ticket.conn) else {
            return;
        };
        let resp = match (upgrade, c.ws_key.take()) {
            (Some(up), Some(key)) => {
                c.upgrade = Some((up, front));
                Response::switching(&key)
            }
            _ => resp,
        };
        c.conn.complete(ticket.slot, resp, false);
        if self.pumping == Some(ticket.conn) {
            return; // the pump in progress writes it
        }
        // Not pump_http now: that could dispatch requests parsed later ahead
        // of ones the lab is still handing out. The next turn (at once: it
        // is on `again`) writes it and reads on.
        if let Some(c) = self.http(ticket.conn)
            && !c.queued
        {
            c.queued = true;
            self.again.push(ticket.conn);
        }
    }

    /// Keep one timer in the heap per connection, at its earliest deadline.
    fn arm_conn_timer(&mut self, token: usize) {
        let Some(c) = self.http(token) else { return };
        let Some(deadline) = c.conn.deadline() else {
            return;
        };
        if c.timer_at.is_some_and(|t| t <= deadline) {
            return;
        }
        c.timer_at = Some(deadline);
        let serial = c.serial;
        self.timers.schedule(deadline, IoTimer::Conn(token, serial));
    }

    /// Remember the request for the record file (`--record`): its line is
    /// written once it is answered, in request order.
    fn record(&mut self, ticket: Ticket, req: &Request) {
        if let Some((_, recorder)) = &mut self.record {
            recorder.request(ticket, req);
        }
    }

    /// Its answer: write the lines now ready (an id the answer brings is
    /// captured in a shell variable).
    fn record_answer(&mut self, ticket: Ticket, status: u16, body: &[u8]) {
        let Some((file, recorder)) = &mut self.record else {
            return;
        };
        let lines = recorder.answered(ticket, status, body);
        if !lines.is_empty()
            && let Err(e) = file.write_all(lines.as_bytes())
        {
            log::warn!("cannot write to the record file: {e}");
        }
    }
}
