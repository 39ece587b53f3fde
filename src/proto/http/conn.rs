//! One HTTP connection's buffers and its ordered response slots (sans-IO).
//!
//! Requests may be answered out of order (a VM request can wait for a stop
//! while a later `GET /v1/version` is answered at once), but responses must
//! leave in request order. Each parsed request takes a slot at the back of
//! `slots`; an answer fills its slot; only ready slots at the front are
//! serialized into the output buffer.
//!
//! The connection's deadlines are decided here too ([`Conn::deadline`],
//! [`Conn::on_timeout`]): an idle keep-alive connection or one whose client
//! stopped reading is closed, a request still half-sent after
//! [`REQUEST_TIMEOUT`] gets a 408, and a connection waiting for an answer
//! (a VM start, say) has no deadline. The caller passes `now`.

use super::parse::{Request, RequestParser};
use super::response::Response;
use crate::error::ApiError;
use crate::limits::{
    FIRST_BYTE_TIMEOUT, IDLE_TIMEOUT, MAX_CONN_OUTPUT, MAX_PIPELINED, REQUEST_TIMEOUT,
};
use crate::proto::bytes::ByteQueue;
use std::collections::VecDeque;
use std::time::Instant;

/// Identifies one request's place in the answer order of its connection.
pub type SlotId = u64;

#[derive(Debug)]
struct Slot {
    id: SlotId,
    ready: Option<(Response, bool)>,
}

/// What a connection's deadline asks for, once reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Not due yet (or nothing to time out): keep waiting.
    Wait,
    /// Idle too long, or the client stopped reading: close without a word.
    Close,
    /// A request did not arrive in time: a 408 is queued; write it, then close.
    Answer408,
}

/// State of one HTTP connection, without the socket.
#[derive(Debug)]
pub struct Conn {
    input: ByteQueue,
    parser: RequestParser,
    out: ByteQueue,
    slots: VecDeque<Slot>,
    next_id: SlotId,
    /// No more requests are read; the connection closes once output is flushed.
    closing: bool,
    /// The peer has finished sending (FIN): what is buffered is still served.
    eof: bool,
    continue_due: bool,
    /// A chunked answer's head went out: its body is being streamed, and
    /// later answers wait for its end.
    streaming: bool,
    /// Last byte read or written.
    last_activity: Instant,
    /// When the request now arriving began (for the 408).
    request_started: Instant,
    /// Nothing was ever received: a silent connection goes after
    /// [`FIRST_BYTE_TIMEOUT`], not [`IDLE_TIMEOUT`].
    silent: bool,
}

impl Conn {
    /// A new, empty connection accepted at `now`.
    pub fn new(now: Instant) -> Self {
        Conn {
            input: ByteQueue::default(),
            parser: RequestParser::default(),
            out: ByteQueue::default(),
            slots: VecDeque::new(),
            next_id: 0,
            closing: false,
            eof: false,
            continue_due: false,
            streaming: false,
            last_activity: now,
            request_started: now,
            silent: true,
        }
    }

    /// Append bytes read from the socket at `now`.
    pub fn receive(&mut self, now: Instant, data: &[u8]) {
        if self.is_idle() {
            self.request_started = now;
        }
        self.last_activity = now;
        self.silent &= data.is_empty();
        self.input.push(data);
    }

    /// When this connection must be looked at again: idle ones (and ones
    /// whose client does not read its answers) close after [`IDLE_TIMEOUT`],
    /// a half-sent request gets a 408 after [`REQUEST_TIMEOUT`], and a
    /// connection waiting for an answer has no deadline.
    pub fn deadline(&self) -> Option<Instant> {
        if self.silent && self.is_idle() {
            Some(self.last_activity + FIRST_BYTE_TIMEOUT)
        } else if self.is_idle() || !self.output().is_empty() {
            Some(self.last_activity + IDLE_TIMEOUT)
        } else if self.parser.streaming_body() {
            // An upload that stalls: it has the time of a request to go on.
            Some(self.last_activity + REQUEST_TIMEOUT)
        } else if self.awaiting_answers() || self.streaming {
            // Waiting for an answer, or for the next piece of a streamed one
            // (a live capture on a quiet link): not a half-sent request.
            None
        } else {
            Some(self.request_started + REQUEST_TIMEOUT)
        }
    }

    /// The deadline may have passed: say what to do about it.
    pub fn on_timeout(&mut self, now: Instant) -> Expiry {
        match self.deadline() {
            Some(d) if d <= now && (self.is_idle() || !self.output().is_empty()) => Expiry::Close,
            // A stalled upload's answer is the lab's (the upload failed):
            // the connection just goes.
            Some(d) if d <= now && self.parser.streaming_body() => {
                self.closing = true;
                Expiry::Close
            }
            Some(d) if d <= now => {
                self.fail(&ApiError::Timeout);
                Expiry::Answer408
            }
            _ => Expiry::Wait,
        }
    }

    /// The peer closed its sending side: requests already received are
    /// still answered (`printf ... | nc` does this), nothing more is read.
    pub fn peer_closed(&mut self) {
        self.eof = true;
    }

    /// Next complete request, with the slot its answer must fill.
    ///
    /// A framing error queues its own error answer, stops reading and returns `None`.
    pub fn next_request(&mut self) -> Option<(SlotId, Request)> {
        if self.closing || self.slots.len() >= MAX_PIPELINED {
            return None;
        }
        let parsed = match self.parser.feed(self.input.pending()) {
            Ok(p) => p,
            Err(err) => {
                let err = for_controllers(self.input.pending(), err);
                self.fail(&err);
                return None;
            }
        };
        self.input.consume(parsed.consumed);
        if parsed.send_continue {
            self.continue_due = true;
            self.flush_ready();
        }
        let Some(req) = parsed.request else {
            // Nothing more will come to complete a partial request.
            self.closing |= self.eof;
            return None;
        };
        self.continue_due = false;
        if !req.keep_alive {
            self.closing = true;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.slots.push_back(Slot { id, ready: None });
        Some((id, req))
    }

    /// Hand what arrived of a streamed body (see [`Request::streamed`]) to
    /// `sink`, piece by piece, straight from the input buffer. `None`
    /// while more is to come (or no body is being streamed); then whether
    /// it came whole. A framing error, or the peer closing before the end,
    /// is the body's failure; the connection then closes once the
    /// request's answer is out.
    pub fn drain_body(&mut self, sink: &mut dyn FnMut(&[u8])) -> Option<Result<(), ApiError>> {
        while self.parser.streaming_body() {
            let part = match self.parser.feed_body(self.input.pending()) {
                Ok(p) => p,
                Err(e) => {
                    self.closing = true;
                    self.parser = RequestParser::default();
                    return Some(Err(e));
                }
            };
            if !part.data.is_empty() {
                sink(&self.input.pending()[part.data]);
            }
            self.input.consume(part.consumed);
            if part.end {
                return Some(Ok(()));
            }
            if part.consumed == 0 {
                break;
            }
        }
        if self.parser.streaming_body() && self.eof {
            self.closing = true;
            self.parser = RequestParser::default();
            return Some(Err(ApiError::bad(
                "The connection closed before the whole body was sent",
            )));
        }
        None
    }

    /// Answer with an error and close: used for framing errors and timeouts.
    pub fn fail(&mut self, err: &ApiError) {
        self.closing = true;
        let id = self.next_id;
        self.next_id += 1;
        self.slots.push_back(Slot {
            id,
            ready: Some((Response::error(err), true)),
        });
        self.flush_ready();
    }

    /// Fill the slot `id`. `close` asks for the connection to close after it.
    pub fn complete(&mut self, id: SlotId, resp: Response, close: bool) {
        if let Some(slot) = self.slots.iter_mut().find(|s| s.id == id) {
            slot.ready = Some((resp, close));
        }
        self.flush_ready();
    }

    fn flush_ready(&mut self) {
        while let Some(Slot { ready: Some(_), .. }) = self.slots.front() {
            if self.streaming {
                return;
            }
            let Some(Slot {
                ready: Some((resp, close)),
                ..
            }) = self.slots.pop_front()
            else {
                break;
            };
            // The last answer on a closing connection says so.
            let last = close || (self.closing && self.slots.is_empty());
            resp.write_to(self.out.tail(), last);
            self.streaming = resp.chunked;
            if close {
                self.closing = true;
                self.slots.clear();
            }
        }
        if self.continue_due && self.slots.is_empty() {
            self.continue_due = false;
            self.out.push(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
    }

    /// Whether a chunked answer is being streamed.
    pub fn streaming(&self) -> bool {
        self.streaming
    }

    /// One more piece of the streamed answer.
    pub fn stream_chunk(&mut self, data: &[u8]) {
        if self.streaming && !data.is_empty() {
            let out = self.out.tail();
            out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The streamed answer is complete: later answers may follow.
    pub fn end_stream(&mut self) {
        if self.streaming {
            self.out.push(b"0\r\n\r\n");
            self.streaming = false;
            self.flush_ready();
        }
    }

    /// Bytes waiting to be written.
    pub fn output(&self) -> &[u8] {
        self.out.pending()
    }

    /// `n` bytes of output were written at `now`.
    pub fn consumed_output(&mut self, now: Instant, n: usize) {
        self.last_activity = now;
        self.out.consume(n);
    }

    /// Whether reading more from the socket is useful now. A client that
    /// pipelines without reading its answers is not read from until it does.
    /// A streamed body is read to its end even on a connection that
    /// closes after it (`Connection: close`, or an upload refused early).
    pub fn wants_read(&self) -> bool {
        let more =
            self.parser.streaming_body() || (!self.closing && self.slots.len() < MAX_PIPELINED);
        more && !self.eof && self.output().len() < MAX_CONN_OUTPUT
    }

    /// Whether there are bytes buffered that may hold another request.
    pub fn has_input(&self) -> bool {
        !self.input.is_empty()
    }

    /// Everything answered and written, and the connection is to close.
    pub fn finished(&self) -> bool {
        self.closing
            && self.slots.is_empty()
            && self.output().is_empty()
            && !self.streaming
            && !self.parser.streaming_body()
    }

    /// No request in progress and nothing to send: only the idle timeout applies.
    pub fn is_idle(&self) -> bool {
        self.slots.is_empty()
            && !self.streaming
            && !self.has_input()
            && self.parser.is_idle()
            && self.output().is_empty()
    }

    /// Requests are waiting for an answer (so timeouts must not cut them).
    pub fn awaiting_answers(&self) -> bool {
        !self.slots.is_empty()
    }

    /// Bytes held for the client: requests not yet served and answers not
    /// yet written (for the memory budget: what a client makes the server
    /// keep, not the buffers' spare room).
    pub fn held(&self) -> usize {
        self.input.len() + self.parser.held() + self.out.len()
    }

    /// Memory held by the buffers (for limits and diagnostics).
    pub fn buffered(&self) -> usize {
        self.input.capacity() + self.out.capacity()
    }
}

/// A GNS3 controller (the `/v2` and `/v3` compute APIs) turns any status
/// it does not map into a 500: a request over a size limit there is a 400
/// whose message names the limit, not a 413 or 431.
fn for_controllers(head: &[u8], err: ApiError) -> ApiError {
    let target = head.split(|&b| b == b' ').nth(1).unwrap_or_default();
    let controller = target.starts_with(b"/v2/") || target.starts_with(b"/v3/");
    match err {
        ApiError::PayloadTooLarge { .. } | ApiError::HeadersTooLarge { .. } if controller => {
            ApiError::BadRequest(err.to_string())
        }
        err => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t0() -> Instant {
        Instant::now()
    }

    fn text(c: &Conn) -> String {
        String::from_utf8_lossy(c.output()).into_owned()
    }

    #[test]
    fn an_idle_connection_closes_after_the_idle_timeout() {
        let now = t0();
        let mut c = Conn::new(now);
        // A connection that never says a word goes after the short one.
        assert_eq!(c.deadline(), Some(now + FIRST_BYTE_TIMEOUT));
        assert_eq!(
            c.on_timeout(now + FIRST_BYTE_TIMEOUT - Duration::from_millis(1)),
            Expiry::Wait
        );
        assert_eq!(c.on_timeout(now + FIRST_BYTE_TIMEOUT), Expiry::Close);
        // Activity pushes the deadline back, to the idle time-out.
        let later = now + Duration::from_secs(100);
        c.receive(later, b"GET / HTTP/1.1\r\n\r\n");
        let (id, _) = c.next_request().unwrap();
        c.complete(id, Response::no_content(), false);
        let n = c.output().len();
        c.consumed_output(later, n);
        assert_eq!(c.deadline(), Some(later + IDLE_TIMEOUT));
    }

    #[test]
    fn a_half_sent_request_gets_a_408_then_closes() {
        let now = t0();
        let mut c = Conn::new(now);
        let start = now + Duration::from_secs(5);
        c.receive(
            start,
            b"POST /v1/projects HTTP/1.1\r\nContent-Length: 10\r\n\r\n{",
        );
        assert!(c.next_request().is_none());
        // More bytes of the same request do not move its deadline.
        c.receive(start + Duration::from_secs(9), b"\"");
        assert!(c.next_request().is_none());
        assert_eq!(c.deadline(), Some(start + REQUEST_TIMEOUT));
        assert_eq!(c.on_timeout(start + Duration::from_secs(9)), Expiry::Wait);
        assert_eq!(c.on_timeout(start + REQUEST_TIMEOUT), Expiry::Answer408);
        assert!(text(&c).starts_with("HTTP/1.1 408"));
        assert!(text(&c).contains("Connection: close"));
        let n = c.output().len();
        c.consumed_output(start + REQUEST_TIMEOUT, n);
        assert!(c.finished());
    }

    #[test]
    fn a_request_waiting_for_its_answer_has_no_deadline() {
        let now = t0();
        let mut c = Conn::new(now);
        c.receive(
            now,
            b"POST /v1/projects/p/vpcs/vms/v/start HTTP/1.1\r\n\r\n",
        );
        let (id, _) = c.next_request().unwrap();
        assert_eq!(c.deadline(), None);
        let much_later = now + IDLE_TIMEOUT * 10;
        assert_eq!(c.on_timeout(much_later), Expiry::Wait);
        c.complete(id, Response::no_content(), false);
        assert_eq!(
            c.deadline(),
            Some(now + IDLE_TIMEOUT),
            "unsent output: the idle rule"
        );
    }

    #[test]
    fn a_client_that_stops_reading_is_closed_after_the_idle_timeout() {
        let now = t0();
        let mut c = Conn::new(now);
        c.receive(now, b"GET / HTTP/1.1\r\n\r\n");
        let (id, _) = c.next_request().unwrap();
        c.complete(id, Response::no_content(), false);
        c.consumed_output(now + Duration::from_secs(1), 3);
        assert!(!c.output().is_empty());
        let due = now + Duration::from_secs(1) + IDLE_TIMEOUT;
        assert_eq!(c.on_timeout(due), Expiry::Close);
    }

    #[test]
    fn a_streamed_answer_holds_back_the_next_until_it_ends() {
        let mut c = Conn::new(t0());
        c.receive(
            t0(),
            b"GET /backup HTTP/1.1\r\n\r\nGET /v1/version HTTP/1.1\r\n\r\n",
        );
        let (a, _) = c.next_request().unwrap();
        let (b, _) = c.next_request().unwrap();
        c.complete(a, Response::chunked("application/x-gtar"), false);
        assert!(c.streaming());
        assert!(text(&c).contains("Transfer-Encoding: chunked"));
        assert!(!text(&c).contains("204"), "the next answer waits");
        c.stream_chunk(b"hello");
        assert!(text(&c).ends_with("5\r\nhello\r\n"), "{}", text(&c));
        assert!(!c.is_idle() && c.deadline().is_some());
        let n = c.output().len();
        c.consumed_output(t0(), n);
        assert_eq!(
            c.deadline(),
            None,
            "a quiet stream is not a half-sent request"
        );
        assert_eq!(c.on_timeout(t0() + REQUEST_TIMEOUT * 100), Expiry::Wait);
        c.complete(b, Response::no_content(), false);
        c.end_stream();
        let t = text(&c);
        assert!(t.starts_with("0\r\n\r\nHTTP/1.1 204"), "{t}");
    }

    #[test]
    fn answers_leave_in_request_order() {
        let mut c = Conn::new(t0());
        c.receive(t0(), b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
        let (a, _) = c.next_request().unwrap();
        let (b, _) = c.next_request().unwrap();
        assert!(c.next_request().is_none());
        c.complete(
            b,
            Response::json(200, &serde_json::json!({"n": "b"})),
            false,
        );
        assert!(c.output().is_empty(), "b must wait for a");
        c.complete(
            a,
            Response::json(200, &serde_json::json!({"n": "a"})),
            false,
        );
        let t = text(&c);
        assert!(t.find("\"a\"").unwrap() < t.find("\"b\"").unwrap());
        assert!(!t.contains("Connection: close"));
    }

    #[test]
    fn framing_error_answers_then_closes() {
        let mut c = Conn::new(t0());
        c.receive(t0(), b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n");
        assert!(c.next_request().is_none());
        assert!(text(&c).starts_with("HTTP/1.1 400"));
        assert!(text(&c).contains("Connection: close"));
        let n = c.output().len();
        c.consumed_output(t0(), n);
        assert!(c.finished());
    }

    #[test]
    fn error_after_pending_request_waits_its_turn() {
        let mut c = Conn::new(t0());
        c.receive(t0(), b"GET /a HTTP/1.1\r\n\r\nBROKEN\r\n\r\n");
        let (a, _) = c.next_request().unwrap();
        assert!(c.next_request().is_none());
        assert!(c.output().is_empty());
        c.complete(a, Response::no_content(), false);
        let t = text(&c);
        assert!(t.starts_with("HTTP/1.1 204") && t.contains("HTTP/1.1 400"));
    }

    #[test]
    fn requests_before_a_half_close_are_answered() {
        let mut c = Conn::new(t0());
        c.receive(
            t0(),
            b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTT",
        );
        c.peer_closed();
        assert!(!c.wants_read());
        let (a, _) = c.next_request().unwrap();
        let (b, _) = c.next_request().unwrap();
        assert!(c.next_request().is_none(), "the partial third is dropped");
        assert!(!c.finished(), "answers are still due");
        c.complete(a, Response::no_content(), false);
        c.complete(b, Response::no_content(), false);
        assert_eq!(text(&c).matches("HTTP/1.1 204").count(), 2);
        assert!(
            text(&c).ends_with("Connection: close\r\n\r\n"),
            "the last answer says close"
        );
        let n = c.output().len();
        c.consumed_output(t0(), n);
        assert!(c.finished());
    }

    #[test]
    fn http10_request_closes_after_answer() {
        let mut c = Conn::new(t0());
        c.receive(t0(), b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n");
        let (a, _) = c.next_request().unwrap();
        assert!(
            c.next_request().is_none(),
            "nothing is read after a closing request"
        );
        c.complete(a, Response::no_content(), false);
        assert!(text(&c).contains("Connection: close"));
        let n = c.output().len();
        c.consumed_output(t0(), n);
        assert!(c.finished());
    }

    #[test]
    fn continue_is_sent_only_when_earlier_answers_are_out() {
        let mut c = Conn::new(t0());
        c.receive(t0(), b"GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
        let (a, _) = c.next_request().unwrap();
        assert!(c.next_request().is_none());
        assert!(c.output().is_empty());
        c.complete(a, Response::no_content(), false);
        assert!(text(&c).ends_with("HTTP/1.1 100 Continue\r\n\r\n"));
        c.receive(t0(), b"{}");
        assert_eq!(c.next_request().unwrap().1.body, b"{}");
    }

    #[test]
    fn written_output_does_not_pile_up_behind_a_slow_reader() {
        let mut c = Conn::new(t0());
        for _ in 0..10_000 {
            c.receive(t0(), b"GET / HTTP/1.1\r\n\r\n");
            let (id, _) = c.next_request().unwrap();
            c.complete(
                id,
                Response::json(200, &serde_json::json!({"version": "1.3.13"})),
                false,
            );
            // The socket takes all but the last few bytes every time.
            let n = c.output().len().saturating_sub(10);
            c.consumed_output(t0(), n);
        }
        assert!(
            c.buffered() < 512 * 1024,
            "buffers hold {} bytes",
            c.buffered()
        );
    }

    #[test]
    fn a_client_that_never_reads_is_not_read_from() {
        let mut c = Conn::new(t0());
        let mut pending = Vec::new();
        for _ in 0..MAX_PIPELINED {
            c.receive(t0(), b"GET / HTTP/1.1\r\n\r\n");
            pending.push(c.next_request().unwrap().0);
        }
        assert!(!c.wants_read());
        c.receive(t0(), b"GET / HTTP/1.1\r\n\r\n");
        assert!(c.next_request().is_none());
        let big = Response::json(200, &serde_json::json!({"x": "y".repeat(MAX_CONN_OUTPUT)}));
        c.complete(pending[0], big, false);
        assert!(!c.wants_read(), "output over the limit");
    }

    #[test]
    fn size_limits_are_400s_for_the_controllers_apis() {
        let big = format!(
            "POST /v2/compute/projects HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            crate::limits::MAX_BODY_BYTES + 1
        );
        for (req, status) in [
            (big.clone(), 400),
            (big.replace("/v2/compute", "/v1"), 413),
            (
                format!(
                    "GET /v2/compute/x HTTP/1.1\r\nX: {}\r\n\r\n",
                    "a".repeat(20_000)
                ),
                400,
            ),
            (
                format!("GET /v1/x HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000)),
                431,
            ),
        ] {
            let mut c = Conn::new(t0());
            c.receive(t0(), req.as_bytes());
            assert!(c.next_request().is_none());
            let out = text(&c);
            assert!(out.starts_with(&format!("HTTP/1.1 {status} ")), "{out}");
            assert!(out.contains("limit"), "{out}");
        }
    }

    #[test]
    fn a_streamed_body_goes_to_the_sink_and_a_stall_or_an_early_close_fails_it() {
        let now = t0();
        let mut c = Conn::new(now);
        c.receive(
            now,
            b"POST /v2/compute/qemu/images/a HTTP/1.1\r\nContent-Length: 6\r\n\r\nabc",
        );
        let (slot, req) = c.next_request().expect("the head is a request");
        assert!(req.streamed);
        let mut got = Vec::new();
        assert_eq!(c.drain_body(&mut |p| got.extend_from_slice(p)), None);
        assert_eq!(got, b"abc");
        assert_eq!(c.next_request(), None, "no request while the body streams");
        // Quiet for the request timeout: the connection goes.
        assert_eq!(c.deadline(), Some(now + REQUEST_TIMEOUT));
        c.receive(now, b"def");
        assert_eq!(
            c.drain_body(&mut |p| got.extend_from_slice(p)),
            Some(Ok(()))
        );
        assert_eq!(got, b"abcdef");
        c.complete(slot, Response::no_content(), false);
        assert!(text(&c).starts_with("HTTP/1.1 204"));
        // A second upload whose client goes away half-way.
        c.receive(
            now,
            b"POST /v2/compute/qemu/images/b HTTP/1.1\r\nContent-Length: 9\r\n\r\nab",
        );
        assert!(c.next_request().is_some());
        c.peer_closed();
        let flow = c.drain_body(&mut |_| {});
        assert!(matches!(flow, Some(Err(_))), "{flow:?}");
        let later = now + REQUEST_TIMEOUT + Duration::from_secs(1);
        let mut stalled = Conn::new(now);
        stalled.receive(
            now,
            b"POST /v2/compute/qemu/images/c HTTP/1.1\r\nContent-Length: 9\r\n\r\n",
        );
        assert!(stalled.next_request().is_some());
        assert_eq!(stalled.on_timeout(later), Expiry::Close);
    }

    #[test]
    fn a_closing_upload_is_read_to_its_end_even_when_answered_early() {
        let now = t0();
        let mut c = Conn::new(now);
        c.receive(
            now,
            b"POST /v2/compute/qemu/images/.x HTTP/1.1\r\nConnection: close\r\nContent-Length: 4\r\n\r\nab",
        );
        let (slot, _) = c.next_request().unwrap();
        // Refused at once: the answer may go, the body is still read.
        c.complete(
            slot,
            Response::error(&ApiError::Forbidden("no".into())),
            false,
        );
        let n = c.output().len();
        c.consumed_output(now, n);
        assert!(
            c.wants_read() && !c.finished(),
            "the body's end is still to come"
        );
        assert_eq!(c.drain_body(&mut |_| {}), None);
        c.receive(now, b"cd");
        assert_eq!(c.drain_body(&mut |_| {}), Some(Ok(())));
        assert!(c.finished() && !c.wants_read());
    }
}
