//! API connections on the loop: accept, read, parse, dispatch, write, time out.

use super::{Entry, HttpConn, ReplyTo, Server, TimerKey, would_block};
use crate::error::ApiError;
use crate::http::conn::{Conn, SlotId};
use crate::http::parse::Request;
use crate::http::response::Response;
use crate::limits::{ACCEPT_RETRY, IDLE_TIMEOUT, MAX_CONNECTIONS, READ_BUDGET, REQUEST_TIMEOUT};
use mio::Interest;
use std::io::{Read, Write};
use std::time::Instant;

impl Server {
    /// Accept every pending connection; past the limit, close them at once.
    pub(super) fn accept_http(&mut self) {
        loop {
            let (stream, peer) = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if would_block(&e) => return,
                Err(e) => {
                    // EMFILE and friends. Readiness is edge-triggered: the
                    // connections still queued would wait for a new one to
                    // arrive, so try again shortly instead.
                    log::warn!("accept failed: {e}; retrying in {ACCEPT_RETRY:?}");
                    self.timers
                        .schedule(Instant::now() + ACCEPT_RETRY, TimerKey::Accept);
                    return;
                }
            };
            if self.http_conns >= MAX_CONNECTIONS {
                log::warn!("connection from {peer} refused: {MAX_CONNECTIONS} connections open");
                continue;
            }
            let _ = stream.set_nodelay(true);
            let now = Instant::now();
            self.next_serial += 1;
            let serial = self.next_serial;
            let conn = HttpConn {
                stream,
                conn: Conn::new(),
                serial,
                request_started: None,
                last_activity: now,
                timer_at: None,
                queued: false,
            };
            let token = self.entries.insert(Entry::Http(Box::new(conn)));
            let Some(Entry::Http(c)) = self.entries.get_mut(token) else {
                unreachable!()
            };
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(e) =
                self.poll
                    .registry()
                    .register(&mut c.stream, mio::Token(token), interest)
            {
                log::warn!("cannot register connection from {peer}: {e}");
                self.entries.remove(token);
                continue;
            }
            self.http_conns += 1;
            log::trace!("http[{token}] connected from {peer}");
            self.arm_conn_timer(token, now);
        }
    }

    fn http(&mut self, token: usize) -> Option<&mut HttpConn> {
        match self.entries.get_mut(token) {
            Some(Entry::Http(c)) => Some(c),
            _ => None,
        }
    }

    /// Write what is ready, read what is there, serve complete requests;
    /// repeat while something moves, up to [`READ_BUDGET`] bytes read per
    /// call (then the connection goes on `again`, so others get their turn).
    /// Closes the connection when it is done.
    pub(super) fn pump_http(&mut self, token: usize, readable: bool) {
        if let Some(c) = self.http(token) {
            c.queued = false;
        }
        let mut try_read = readable;
        let mut read_total = 0;
        loop {
            if !self.flush_http(token) {
                return self.close_http(token);
            }
            if try_read {
                read_total += self.read_http(token, READ_BUDGET - read_total);
            }
            let served = self.serve_parsed(token);
            if !self.flush_http(token) {
                return self.close_http(token);
            }
            let Some(c) = self.http(token) else { return };
            if c.conn.finished() {
                return self.close_http(token);
            }
            if read_total >= READ_BUDGET {
                c.queued = true;
                self.again.push(token);
                break;
            }
            // Answers went out: there may be room, and data, to read again.
            if served == 0 || !c.conn.wants_read() {
                break;
            }
            try_read = true;
        }
        self.arm_conn_timer(token, Instant::now());
    }

    /// Hand every complete request in the buffer to the handlers, one at a
    /// time and in order. Answers produced meanwhile are written by the
    /// caller in one go rather than one write per answer.
    fn serve_parsed(&mut self, token: usize) -> usize {
        let mut served = 0;
        self.pumping = Some(token);
        while let Some((serial, slot, req)) = self.next_parsed(token) {
            self.handle_request(
                ReplyTo {
                    token,
                    serial,
                    slot,
                },
                req,
            );
            served += 1;
        }
        self.pumping = None;
        served
    }

    fn next_parsed(&mut self, token: usize) -> Option<(u64, SlotId, Request)> {
        let c = self.http(token)?;
        let (slot, req) = c.conn.next_request()?;
        Some((c.serial, slot, req))
    }

    /// Read until WouldBlock, EOF or `budget` bytes; returns the bytes read.
    fn read_http(&mut self, token: usize, budget: usize) -> usize {
        let Some(Entry::Http(c)) = self.entries.get_mut(token) else {
            return 0;
        };
        let mut total = 0;
        while c.conn.wants_read() && total < budget {
            match c.stream.read(&mut self.scratch[..budget - total]) {
                Ok(0) => {
                    c.conn.peer_closed();
                    break;
                }
                Ok(n) => {
                    let now = Instant::now();
                    if c.conn.is_idle() {
                        c.request_started = Some(now);
                    }
                    c.last_activity = now;
                    c.conn.receive(&self.scratch[..n]);
                    total += n;
                }
                Err(e) if would_block(&e) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    c.conn.peer_closed();
                    break;
                }
            }
        }
        total
    }

    /// Write pending output. Returns false when the connection is broken.
    fn flush_http(&mut self, token: usize) -> bool {
        let Some(c) = self.http(token) else {
            return true;
        };
        while !c.conn.output().is_empty() {
            match c.stream.write(c.conn.output()) {
                Ok(0) => return false,
                Ok(n) => {
                    c.conn.consumed_output(n);
                    c.last_activity = Instant::now();
                }
                Err(e) if would_block(&e) => return true,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }

    pub(super) fn close_http(&mut self, token: usize) {
        if let Some(Entry::Http(mut c)) = self.entries.try_remove(token) {
            let _ = self.poll.registry().deregister(&mut c.stream);
            self.http_conns -= 1;
            log::trace!("http[{token}] closed");
        }
    }

    /// Deliver an answer to its slot; the connection may have gone meanwhile.
    pub(super) fn reply(&mut self, to: ReplyTo, resp: Response) {
        let Some(c) = self.http(to.token) else { return };
        if c.serial != to.serial {
            return;
        }
        c.conn.complete(to.slot, resp, false);
        if self.pumping == Some(to.token) {
            return; // the pump in progress writes it
        }
        // Not pump_http: that could dispatch requests parsed later ahead of
        // ones the caller is still handing out. Write now, parse next turn.
        if !self.flush_http(to.token) {
            return self.close_http(to.token);
        }
        if let Some(c) = self.http(to.token)
            && !c.queued
        {
            c.queued = true;
            self.again.push(to.token);
        }
    }

    /// Keep one timer in the heap per connection, at its earliest deadline.
    fn arm_conn_timer(&mut self, token: usize, now: Instant) {
        let Some(c) = self.http(token) else { return };
        let Some(deadline) = conn_deadline(c, now) else {
            return;
        };
        if c.timer_at.is_some_and(|t| t <= deadline) {
            return;
        }
        c.timer_at = Some(deadline);
        let serial = c.serial;
        self.timers
            .schedule(deadline, TimerKey::Conn(token, serial));
    }

    pub(super) fn on_conn_timer(&mut self, token: usize, serial: u64, now: Instant) {
        let Some(c) = self.http(token) else { return };
        if c.serial != serial {
            return;
        }
        c.timer_at = None;
        match conn_deadline(c, now) {
            Some(d) if d <= now && (c.conn.is_idle() || !c.conn.output().is_empty()) => {
                log::debug!("http[{token}] idle or not reading: closed");
                self.close_http(token)
            }
            Some(d) if d <= now => {
                log::debug!("http[{token}] request not received in time");
                c.conn.fail(&ApiError::Timeout);
                self.pump_http(token, false);
            }
            _ => self.arm_conn_timer(token, now),
        }
    }
}

/// When this connection must be acted on: idle ones close, half-sent requests
/// get a 408, a client that stops reading its answers is dropped;
/// connections waiting for an answer have no deadline.
fn conn_deadline(c: &HttpConn, now: Instant) -> Option<Instant> {
    if c.conn.is_idle() || !c.conn.output().is_empty() {
        Some(c.last_activity + IDLE_TIMEOUT)
    } else if c.conn.awaiting_answers() {
        None
    } else {
        Some(c.request_started.unwrap_or(now) + REQUEST_TIMEOUT)
    }
}
