//! Incremental HTTP/1.x request parser on top of `httparse` (sans-IO: no
//! socket, no clock, no logging).
//!
//! The connection owns the bytes; [`RequestParser::feed`] looks at what has
//! arrived so far and either says how many bytes it consumed and whether a
//! whole request is ready, or returns an error after which the connection
//! must answer and close. "Need more bytes" is the normal `request: None`.

use super::chunked::{Chunk, chunked_step};
use crate::error::ApiError;
#[cfg(test)]
use crate::limits::MAX_BODY_BYTES;
use crate::limits::{MAX_HEAD_BYTES, MAX_HEADERS, MAX_IMAGE_BYTES, body_limit, streams_body};

/// Request methods the API knows; anything else is kept for the 405 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// Any other token.
    Other(String),
}

impl Method {
    fn from_token(s: &str) -> Self {
        match s {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            other => Method::Other(other.to_string()),
        }
    }

    /// The method as it appears on the request line.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Other(s) => s,
        }
    }
}

/// A request parsed from `METHOD path`, extra header lines and a body (tests).
#[cfg(test)]
pub fn test_request(method: &str, path: &str, headers: &str, body: &str) -> Request {
    let raw = format!(
        "{method} {path} HTTP/1.1\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    RequestParser::new()
        .feed(raw.as_bytes())
        .expect("a valid request")
        .request
        .expect("a whole request")
}

/// One complete request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Request method.
    pub method: Method,
    /// Path part of the target, without the query string.
    pub path: String,
    /// Whether the connection stays open after the answer.
    pub keep_alive: bool,
    /// Whether the request came as HTTP/1.0.
    pub http10: bool,
    /// Value of the `Authorization` header, if any.
    pub authorization: Option<String>,
    /// Value of the `Content-Type` header, if any (multipart uploads).
    pub content_type: Option<String>,
    /// `Sec-WebSocket-Key`, when the request asks to upgrade to a websocket
    /// (`Upgrade: websocket`): the handshake answers it.
    pub websocket_key: Option<String>,
    /// `Sec-WebSocket-Version`, when sent (RFC 6455 requires 13).
    pub websocket_version: Option<String>,
    /// The body, de-chunked (empty when it is streamed).
    pub body: Vec<u8>,
    /// The body is not held here: it follows in pieces through
    /// [`RequestParser::feed_body`] (an image upload, see
    /// [`streams_body`]).
    pub streamed: bool,
}

/// A piece of a streamed body found by [`RequestParser::feed_body`].
#[derive(Debug, PartialEq, Eq)]
pub struct BodyPart {
    /// Bytes of the input that were used; the caller drops them.
    pub consumed: usize,
    /// Where in the input the piece is (empty when only framing was read).
    pub data: std::ops::Range<usize>,
    /// The body is complete: the next bytes are the next request's.
    pub end: bool,
}

/// What one call to [`RequestParser::feed`] found.
#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    /// Bytes of the input that were used; the caller drops them.
    pub consumed: usize,
    /// A whole request, when one completed.
    pub request: Option<Request>,
    /// The client sent `Expect: 100-continue` and waits for the go-ahead.
    pub send_continue: bool,
}

#[derive(Debug)]
enum State {
    /// Waiting for a complete head; `scanned` bytes are known to hold no end of head.
    Head { scanned: usize },
    /// Reading `remaining` bytes of a Content-Length body.
    Body { req: Request, remaining: usize },
    /// Reading a chunked body; `total` bytes of data so far.
    Chunked {
        req: Request,
        step: Chunk,
        total: u64,
    },
    /// Handing out a streamed body as it arrives.
    Streaming(Left),
}

/// What is left of a streamed body.
#[derive(Debug)]
enum Left {
    /// So many bytes (Content-Length).
    Length(u64),
    /// Chunks until the last; `total` bytes of data so far.
    Chunked { step: Chunk, total: u64 },
}

/// Push parser for a stream of pipelined requests.
#[derive(Debug)]
pub struct RequestParser {
    state: State,
}

impl RequestParser {
    /// Body bytes of the request being read, held until it is whole.
    pub fn held(&self) -> usize {
        match &self.state {
            State::Head { .. } | State::Streaming(_) => 0,
            State::Body { req, .. } | State::Chunked { req, .. } => req.body.len(),
        }
    }

    /// A streamed body is being received: its pieces come from
    /// [`RequestParser::feed_body`], and no request is parsed until it ends.
    pub fn streaming_body(&self) -> bool {
        matches!(self.state, State::Streaming(_))
    }
}

impl Default for RequestParser {
    fn default() -> Self {
        RequestParser {
            state: State::Head { scanned: 0 },
        }
    }
}

/// How the body of a request is framed.
enum Framing {
    Length(u64),
    Chunked,
}

impl RequestParser {
    /// A parser waiting for the first request.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when no part of a request has been consumed yet.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Head { scanned: 0 })
    }

    /// Parse as much of `input` as possible. Errors are fatal for the connection.
    pub fn feed(&mut self, input: &[u8]) -> Result<Parsed, ApiError> {
        let mut consumed = 0;
        let mut send_continue = false;
        loop {
            let rest = &input[consumed..];
            match &mut self.state {
                State::Head { scanned } => {
                    let Some(head_len) = find_head_end(rest, scanned)? else {
                        return Ok(Parsed {
                            consumed,
                            request: None,
                            send_continue,
                        });
                    };
                    let (req, framing, expect) = parse_head(&rest[..head_len])?;
                    consumed += head_len;
                    let has_body = !matches!(framing, Framing::Length(0));
                    let body_here = consumed < input.len();
                    send_continue = expect && has_body && !body_here;
                    if req.streamed {
                        // The head goes out now; the body follows in pieces.
                        self.state = State::Streaming(match framing {
                            Framing::Length(n) => Left::Length(n),
                            Framing::Chunked => Left::Chunked {
                                step: Chunk::Size,
                                total: 0,
                            },
                        });
                        return Ok(Parsed {
                            consumed,
                            request: Some(req),
                            send_continue,
                        });
                    }
                    self.state = match framing {
                        Framing::Length(0) => {
                            self.state = State::Head { scanned: 0 };
                            return Ok(Parsed {
                                consumed,
                                request: Some(req),
                                send_continue,
                            });
                        }
                        Framing::Length(n) => State::Body {
                            req,
                            // Within the body limit (checked with the head), so it fits.
                            remaining: usize::try_from(n).unwrap_or(usize::MAX),
                        },
                        Framing::Chunked => State::Chunked {
                            req,
                            step: Chunk::Size,
                            total: 0,
                        },
                    };
                }
                State::Body { req, remaining } => {
                    let take = rest.len().min(*remaining);
                    req.body.extend_from_slice(&rest[..take]);
                    consumed += take;
                    *remaining -= take;
                    if *remaining > 0 {
                        return Ok(Parsed {
                            consumed,
                            request: None,
                            send_continue,
                        });
                    }
                    return Ok(Parsed {
                        consumed,
                        request: Some(self.finish()),
                        send_continue,
                    });
                }
                State::Chunked { req, step, total } => {
                    let limit = body_limit(&req.path) as u64;
                    let (used, data, done) = chunked_step(step, total, limit, rest)?;
                    req.body.extend_from_slice(&rest[..data]);
                    consumed += used;
                    if done {
                        return Ok(Parsed {
                            consumed,
                            request: Some(self.finish()),
                            send_continue,
                        });
                    }
                    if used == 0 {
                        return Ok(Parsed {
                            consumed,
                            request: None,
                            send_continue,
                        });
                    }
                }
                // The body's pieces are taken with `feed_body`.
                State::Streaming(_) => {
                    return Ok(Parsed {
                        consumed,
                        request: None,
                        send_continue,
                    });
                }
            }
        }
    }

    /// The next piece of a streamed body in `input`: framing (chunk sizes)
    /// is skipped, data is pointed at, never copied. Errors are fatal for
    /// the connection. Not streaming: an empty, ended part.
    pub fn feed_body(&mut self, input: &[u8]) -> Result<BodyPart, ApiError> {
        let mut at = 0;
        loop {
            let rest = &input[at..];
            let State::Streaming(left) = &mut self.state else {
                return Ok(BodyPart {
                    consumed: at,
                    data: at..at,
                    end: true,
                });
            };
            let (used, data, end) = match left {
                Left::Length(n) => {
                    let take = usize::try_from(*n).map_or(rest.len(), |n| n.min(rest.len()));
                    *n -= take as u64;
                    (take, take, *n == 0)
                }
                Left::Chunked { step, total } => chunked_step(step, total, MAX_IMAGE_BYTES, rest)?,
            };
            if end {
                self.state = State::Head { scanned: 0 };
            }
            if end || data > 0 || used == 0 {
                return Ok(BodyPart {
                    consumed: at + used,
                    data: at..at + data,
                    end,
                });
            }
            at += used;
        }
    }

    fn finish(&mut self) -> Request {
        match std::mem::replace(&mut self.state, State::Head { scanned: 0 }) {
            State::Body { req, .. } | State::Chunked { req, .. } => req,
            State::Head { .. } | State::Streaming(_) => {
                unreachable!("finish is only called with a buffered request in progress")
            }
        }
    }
}

/// Length of the head (through the blank line) if it is all in `buf`.
fn find_head_end(buf: &[u8], scanned: &mut usize) -> Result<Option<usize>, ApiError> {
    // Leading blank lines between pipelined requests are allowed (RFC 9112 2.2).
    let from = scanned.saturating_sub(3);
    let found = buf[from..]
        .windows(2)
        .enumerate()
        .find_map(|(i, w)| match w {
            b"\n\n" => Some(from + i + 2),
            [b'\n', b'\r'] if buf.get(from + i + 2) == Some(&b'\n') => Some(from + i + 3),
            _ => None,
        });
    match found {
        Some(end) if end > MAX_HEAD_BYTES => Err(ApiError::HeadersTooLarge {
            limit: MAX_HEAD_BYTES,
        }),
        Some(end) => Ok(Some(end)),
        None if buf.len() > MAX_HEAD_BYTES => Err(ApiError::HeadersTooLarge {
            limit: MAX_HEAD_BYTES,
        }),
        None => {
            *scanned = buf.len();
            early_error(buf)?;
            Ok(None)
        }
    }
}

/// A head not yet whole whose first line is already no HTTP (someone
/// typing at the port with telnet): the error now, not after the request
/// timeout.
fn early_error(buf: &[u8]) -> Result<(), ApiError> {
    let start = buf
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(buf.len());
    let line = &buf[start..];
    if !line.contains(&b'\n') {
        return Ok(());
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::Request::new(&mut headers).parse(line) {
        Err(httparse::Error::TooManyHeaders) | Ok(_) => Ok(()),
        Err(e) => Err(ApiError::bad(format!(
            "Malformed HTTP request: {e}. This port speaks HTTP: try curl http://HOST:PORT/v1/version"
        ))),
    }
}

fn parse_head(head: &[u8]) -> Result<(Request, Framing, bool), ApiError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(ApiError::bad("Malformed HTTP request head")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ApiError::HeadersTooLarge {
                limit: MAX_HEAD_BYTES,
            });
        }
        Err(e) => return Err(ApiError::bad(format!("Malformed HTTP request: {e}"))),
    }
    let http10 = parsed.version == Some(0);
    let target = parsed.path.unwrap_or("/");
    let path = target.split(['?', '#']).next().unwrap_or("/").to_string();
    let mut req = Request {
        method: Method::from_token(parsed.method.unwrap_or("")),
        path,
        keep_alive: !http10,
        http10,
        authorization: None,
        content_type: None,
        websocket_key: None,
        websocket_version: None,
        body: Vec::new(),
        streamed: false,
    };
    req.streamed = streams_body(req.method.as_str(), &req.path);
    let mut upgrade = false;
    let mut ws_key = None;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut expect = false;
    for h in parsed.headers.iter() {
        if h.name.eq_ignore_ascii_case("authorization") {
            // Credentials that are not text are wrong credentials (a 401
            // where authentication is on), not a malformed request.
            req.authorization = Some(String::from_utf8_lossy(h.value).trim().to_string());
            continue;
        }
        let value = std::str::from_utf8(h.value)
            .map_err(|_| ApiError::bad(format!("Header {} is not valid UTF-8", h.name)))?
            .trim();
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = parse_content_length(value)?;
            if length.is_some_and(|old| old != n) {
                return Err(ApiError::bad("Conflicting Content-Length headers"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or("").trim();
            if !last.eq_ignore_ascii_case("chunked") {
                return Err(ApiError::bad(format!(
                    "Transfer-Encoding '{value}' is not supported"
                )));
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    req.keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") && http10 {
                    req.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            if !value.eq_ignore_ascii_case("100-continue") {
                return Err(ApiError::bad(format!("Expect '{value}' is not supported")));
            }
            expect = !http10;
        } else if name.eq_ignore_ascii_case("content-type") {
            req.content_type = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade = value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("websocket"));
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            ws_key = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            req.websocket_version = Some(value.to_string());
        }
    }
    if upgrade {
        req.websocket_key = ws_key;
    }
    let framing = match (chunked, length) {
        (true, Some(_)) => {
            return Err(ApiError::bad(
                "Both Content-Length and Transfer-Encoding were sent",
            ));
        }
        (true, None) => Framing::Chunked,
        (false, Some(n)) if n > limit(&req) => {
            return Err(ApiError::PayloadTooLarge {
                limit: limit(&req),
                size: n,
            });
        }
        (false, n) => Framing::Length(n.unwrap_or(0)),
    };
    Ok((req, framing, expect))
}

/// The most body bytes `req` may carry: an image upload's, or the
/// buffered limit of its path.
fn limit(req: &Request) -> u64 {
    if req.streamed {
        MAX_IMAGE_BYTES
    } else {
        body_limit(&req.path) as u64
    }
}

fn parse_content_length(value: &str) -> Result<u64, ApiError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad(format!("Invalid Content-Length '{value}'")));
    }
    // Too many digits to fit is still a well-formed, too-large length.
    Ok(value.parse::<u64>().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `input` in pieces cut at `cuts`, collecting requests (and the first error).
    fn feed_split(input: &[u8], cuts: &[usize]) -> Result<Vec<Request>, ApiError> {
        let mut parser = RequestParser::new();
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let mut bounds: Vec<usize> = cuts.to_vec();
        bounds.push(input.len());
        let mut start = 0;
        for end in bounds {
            buf.extend_from_slice(&input[start..end]);
            start = end;
            loop {
                let p = parser.feed(&buf)?;
                buf.drain(..p.consumed);
                match p.request {
                    Some(r) => out.push(r),
                    None => break,
                }
            }
        }
        Ok(out)
    }

    fn one(input: &[u8]) -> Result<Request, ApiError> {
        let mut v = feed_split(input, &[])?;
        assert_eq!(v.len(), 1, "expected exactly one request");
        Ok(v.remove(0))
    }

    static GET: &[u8] = b"GET /v1/version HTTP/1.1\r\nHost: x\r\n\r\n";
    static POST: &[u8] =
        b"POST /v1/projects?x=1 HTTP/1.1\r\nContent-Length: 16\r\n\r\n{\"name\": \"test\"}";
    static CHUNKED: &[u8] =
        b"POST /v1/projects HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\n{\"nam\r\nB\r\ne\": \"test\"}\r\n0\r\nX-T: 1\r\n\r\n";

    #[test]
    fn simple_get() {
        let r = one(GET).unwrap();
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.path, "/v1/version");
        assert!(r.keep_alive && !r.http10 && r.body.is_empty());
    }

    #[test]
    fn post_with_length_and_query() {
        let r = one(POST).unwrap();
        assert_eq!(r.path, "/v1/projects");
        assert_eq!(r.body, b"{\"name\": \"test\"}");
    }

    #[test]
    fn chunked_body_with_extension_and_trailer() {
        let r = one(CHUNKED).unwrap();
        assert_eq!(r.body, b"{\"name\": \"test\"}");
    }

    #[test]
    fn every_split_point_gives_the_same_requests() {
        for input in [GET, POST, CHUNKED] {
            let whole = feed_split(input, &[]).unwrap();
            for cut in 0..=input.len() {
                assert_eq!(feed_split(input, &[cut]).unwrap(), whole, "cut at {cut}");
            }
            let every: Vec<usize> = (1..input.len()).collect();
            assert_eq!(feed_split(input, &every).unwrap(), whole, "byte by byte");
        }
    }

    #[test]
    fn pipelined_requests_come_out_in_order() {
        let mut input = Vec::new();
        for _ in 0..3 {
            input.extend_from_slice(GET);
            input.extend_from_slice(POST);
            input.extend_from_slice(CHUNKED);
        }
        let reqs = feed_split(&input, &[]).unwrap();
        assert_eq!(reqs.len(), 9);
        assert_eq!(reqs[1].path, "/v1/projects");
        assert_eq!(reqs[2].body, b"{\"name\": \"test\"}");
        for cut in (0..input.len()).step_by(7) {
            assert_eq!(feed_split(&input, &[cut]).unwrap(), reqs);
        }
    }

    #[test]
    fn http10_closes_unless_keep_alive() {
        assert!(!one(b"GET / HTTP/1.0\r\n\r\n").unwrap().keep_alive);
        assert!(
            one(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                .unwrap()
                .keep_alive
        );
        assert!(
            !one(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
                .unwrap()
                .keep_alive
        );
    }

    #[test]
    fn expect_continue_is_signalled_once_when_body_is_missing() {
        let mut p = RequestParser::new();
        let head =
            b"POST /v1/projects HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
        let r = p.feed(head).unwrap();
        assert!(r.send_continue && r.request.is_none());
        let r = p.feed(b"{}").unwrap();
        assert!(!r.send_continue);
        assert_eq!(r.request.unwrap().body, b"{}");
        // Body already there: no 100 Continue needed.
        let mut all = head.to_vec();
        all.extend_from_slice(b"{}");
        let r = RequestParser::new().feed(&all).unwrap();
        assert!(!r.send_continue && r.request.is_some());
    }

    #[test]
    fn a_websocket_key_counts_only_with_upgrade_websocket() {
        let head = "GET /ws HTTP/1.1\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        let up = format!("{head}Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
        let r = one(up.as_bytes()).unwrap();
        assert_eq!(r.websocket_key.as_deref(), Some("dGhlIHNhbXBsZSBub25jZQ=="));
        let plain = format!("{head}\r\n");
        assert_eq!(one(plain.as_bytes()).unwrap().websocket_key, None);
    }

    #[test]
    fn authorization_header_is_kept() {
        let r = one(b"GET / HTTP/1.1\r\nAuthorization: Basic YTpi\r\n\r\n").unwrap();
        assert_eq!(r.authorization.as_deref(), Some("Basic YTpi"));
    }

    fn status(input: &[u8]) -> u16 {
        feed_split(input, &[]).unwrap_err().status()
    }

    #[test]
    fn limits_are_enforced() {
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD_BYTES + 10, b'a');
        assert_eq!(status(&big), 431, "endless head");
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(status(&big), 431, "complete but too large head");
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("H{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(status(&many), 431, "too many headers");
        let huge = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY_BYTES + 1
        );
        assert_eq!(status(huge.as_bytes()), 413, "413 from the head alone");
        let enormous = b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n";
        assert_eq!(status(enormous), 413);
        let chunk = format!(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            MAX_BODY_BYTES + 1
        );
        assert_eq!(
            status(chunk.as_bytes()),
            413,
            "chunk larger than the body limit"
        );
    }

    #[test]
    fn malformed_requests_are_400() {
        let cases: &[&[u8]] = &[
            b"GARBAGE\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"GET / HTTP/1.1\r\nExpect: teapot\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffffffff\r\n",
            b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        ];
        for case in cases {
            let s = status(case);
            assert!(
                s == 400 || s == 413,
                "{:?} gave {s}",
                String::from_utf8_lossy(case)
            );
        }
    }

    #[test]
    fn equal_duplicate_content_length_is_accepted() {
        let r =
            one(b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}").unwrap();
        assert_eq!(r.body, b"{}");
    }

    /// Feed `input` cut at every `step` bytes; the requests, each with its
    /// streamed body gathered from `feed_body`.
    fn stream_split(input: &[u8], step: usize) -> Vec<(Request, Vec<u8>)> {
        let mut parser = RequestParser::new();
        let (mut buf, mut out) = (Vec::new(), Vec::<(Request, Vec<u8>)>::new());
        for piece in input.chunks(step) {
            buf.extend_from_slice(piece);
            loop {
                if parser.streaming_body() {
                    let part = parser.feed_body(&buf).unwrap();
                    let last = out.last_mut().expect("a streamed request first");
                    last.1.extend_from_slice(&buf[part.data]);
                    buf.drain(..part.consumed);
                    if part.consumed == 0 && !part.end {
                        break;
                    }
                    continue;
                }
                let p = parser.feed(&buf).unwrap();
                buf.drain(..p.consumed);
                match p.request {
                    Some(r) => out.push((r, Vec::new())),
                    None => break,
                }
            }
        }
        out
    }

    #[test]
    fn an_image_upload_streams_its_body_in_pieces_at_every_split() {
        let image: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
        let mut chunked = Vec::new();
        for c in image.chunks(1000) {
            chunked.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            chunked.extend_from_slice(c);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        for (framing, body) in [
            (format!("Content-Length: {}", image.len()), image.clone()),
            ("Transfer-Encoding: chunked".to_string(), chunked),
        ] {
            let mut input =
                format!("POST /v2/compute/qemu/images/a.qcow2 HTTP/1.1\r\n{framing}\r\n\r\n")
                    .into_bytes();
            input.extend_from_slice(&body);
            input.extend_from_slice(GET);
            for step in [1, 2, 7, 1000, input.len()] {
                let got = stream_split(&input, step);
                assert_eq!(got.len(), 2, "{framing}, step {step}");
                assert!(got[0].0.streamed && got[0].0.body.is_empty());
                assert_eq!(got[0].1, image, "{framing}, step {step}");
                assert_eq!(got[1].0.path, "/v1/version", "the next request after it");
            }
        }
    }

    #[test]
    fn only_image_uploads_stream_and_their_limit_is_the_image_limit() {
        let up = format!(
            "POST /v3/compute/qemu/images/x HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY_BYTES * 64
        );
        let r = RequestParser::new().feed(up.as_bytes()).unwrap();
        assert!(r.request.is_some_and(|r| r.streamed), "a big image is fine");
        let too_big = format!(
            "POST /v3/compute/qemu/images/x HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_IMAGE_BYTES + 1
        );
        assert_eq!(status(too_big.as_bytes()), 413);
        let get = one(b"GET /v2/compute/qemu/images/x HTTP/1.1\r\n\r\n").unwrap();
        assert!(!get.streamed, "a download has no body to stream");
        let mut p = RequestParser::new();
        p.feed(b"POST /v2/compute/qemu/images/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        assert!(p.feed_body(b"zz\r\n").is_err(), "bad chunk size");
    }

    #[test]
    fn a_line_that_is_no_http_is_an_error_before_the_head_ends() {
        let mut p = RequestParser::new();
        let e = p.feed(b"hello\r\n").unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains("This port speaks HTTP"), "{e}");
        // A valid start waits for the rest, blank lines before it too.
        let mut p = RequestParser::new();
        assert!(
            p.feed(b"\r\nGET / HTTP/1.1\r\nHost: x\r\n")
                .unwrap()
                .request
                .is_none()
        );
    }

    #[test]
    fn incomplete_is_not_an_error() {
        let mut p = RequestParser::new();
        let r = p.feed(b"GET / HTTP/1.1\r\nHost").unwrap();
        assert_eq!((r.consumed, r.request.is_none()), (0, true));
        assert!(!p.is_idle(), "a partial head is work in progress");
    }
}
