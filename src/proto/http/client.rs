//! The client side of HTTP/1.1, sans-IO: requests to write and responses
//! parsed as they arrive. nanolab is the client of one server, the Docker
//! engine (its Engine API over a unix socket), so this speaks what that
//! needs: one request at a time on a connection; bodies framed by
//! Content-Length, chunked or read until close; and the `101` that turns
//! an attach request into the container's raw stream.

use super::chunked::{Chunk, chunked_step};

/// Headers a response may have at most.
const MAX_HEADERS: usize = 64;
/// Bytes a response head may have at most.
const MAX_HEAD: usize = 16 * 1024;

/// `method path` with a JSON body if any, for the engine's socket: the
/// connection stays open for the next request.
pub fn request(method: &str, path: &str, json: Option<&[u8]>) -> Vec<u8> {
    with_body(
        format!("{method} {path} HTTP/1.1\r\nHost: docker\r\n"),
        json,
    )
}

/// `POST path` (with a JSON body if any) asking the engine to turn the
/// connection into the container's stream (an attach, an exec's start):
/// it answers `101`.
pub fn upgrade_request(path: &str, json: Option<&[u8]>) -> Vec<u8> {
    let head =
        format!("POST {path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n");
    with_body(head, json)
}

/// A request's head, then its body's headers and the body.
fn with_body(head: String, json: Option<&[u8]>) -> Vec<u8> {
    let mut out = head.into_bytes();
    match json {
        Some(body) => {
            out.extend_from_slice(
                format!(
                    "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            out.extend_from_slice(body);
        }
        None => out.extend_from_slice(b"\r\n"),
    }
    out
}

/// A whole response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Its status code.
    pub status: u16,
    /// Its body, decoded from its framing.
    pub body: Vec<u8>,
    /// The connection may carry the next request.
    pub keep_alive: bool,
}

/// What a response turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A whole response.
    Whole(Response),
    /// `101 Switching Protocols`: from the next byte on, the connection
    /// carries the upgraded stream (an attached container's tty).
    Upgraded,
}

/// Reads one response.
#[derive(Debug)]
pub struct ResponseParser {
    state: State,
    /// Body bytes accepted at most.
    limit: usize,
    /// Past the limit, keep the body's last `limit` bytes rather than fail
    /// (a progress stream, whose end says how it went).
    tail: bool,
}

#[derive(Debug)]
enum State {
    Head,
    Length(Response, usize),
    Chunked(Response, Chunk, u64),
    UntilClose(Response),
    Done,
}

impl ResponseParser {
    /// A parser for a response whose body is at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        ResponseParser {
            state: State::Head,
            limit,
            tail: false,
        }
    }

    /// A parser for a response of any length whose body's last `limit`
    /// bytes are kept (an image pull's progress).
    pub fn keeping_tail(limit: usize) -> Self {
        ResponseParser {
            tail: true,
            ..Self::new(limit)
        }
    }

    /// Drop the front of `body` past the limit, in tail mode.
    fn trim(tail: bool, limit: usize, body: &mut Vec<u8>) {
        if tail && body.len() > limit {
            body.drain(..body.len() - limit);
        }
    }

    /// Look at what has arrived: how many bytes were used (the caller
    /// drops them), and the answer once it is whole. An error means the
    /// connection is unusable.
    pub fn feed(&mut self, buf: &[u8]) -> Result<(usize, Option<Answer>), String> {
        let mut used = 0;
        loop {
            let rest = &buf[used..];
            match &mut self.state {
                State::Head => {
                    let Some((n, next)) = self.head(rest)? else {
                        return Ok((used, None));
                    };
                    used += n;
                    match next {
                        Next::Upgraded => {
                            self.state = State::Done;
                            return Ok((used, Some(Answer::Upgraded)));
                        }
                        Next::Body(state) => self.state = state,
                    }
                }
                State::Length(_, 0) => return Ok((used, Some(self.finish()))),
                State::Length(r, left) => {
                    let take = rest.len().min(*left);
                    r.body.extend_from_slice(&rest[..take]);
                    Self::trim(self.tail, self.limit, &mut r.body);
                    *left -= take;
                    used += take;
                    if *left > 0 {
                        return Ok((used, None));
                    }
                }
                State::Chunked(r, step, total) => {
                    let limit = if self.tail {
                        u64::MAX
                    } else {
                        self.limit as u64
                    };
                    let (n, data, done) = chunked_step(step, total, limit, rest)
                        .map_err(|e| format!("the engine's chunked body: {e}"))?;
                    r.body.extend_from_slice(&rest[..data]);
                    Self::trim(self.tail, self.limit, &mut r.body);
                    used += n;
                    if done {
                        return Ok((used, Some(self.finish())));
                    }
                    if n == 0 {
                        return Ok((used, None));
                    }
                }
                State::UntilClose(r) => {
                    if r.body.len() + rest.len() > self.limit && !self.tail {
                        return Err(too_big(self.limit));
                    }
                    r.body.extend_from_slice(rest);
                    Self::trim(self.tail, self.limit, &mut r.body);
                    return Ok((buf.len(), None));
                }
                State::Done => return Err("a response was already read".into()),
            }
        }
    }

    /// The server closed the connection: a body read until close is whole
    /// now; anything else was cut short.
    pub fn closed(&mut self) -> Result<Answer, String> {
        match self.state {
            State::UntilClose(_) => Ok(self.finish()),
            _ => Err("the engine closed the connection in the middle of a response".into()),
        }
    }

    fn finish(&mut self) -> Answer {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Length(r, _) | State::Chunked(r, ..) | State::UntilClose(r) => Answer::Whole(r),
            State::Head | State::Done => unreachable!("finish follows a head"),
        }
    }

    /// The head, once it is whole: its length and what follows it.
    fn head(&self, buf: &[u8]) -> Result<Option<(usize, Next)>, String> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut headers);
        let n = match parsed.parse(buf) {
            Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD => n,
            Ok(_) if buf.len() > MAX_HEAD => {
                return Err("the engine's response head is too long".into());
            }
            Ok(_) => return Ok(None),
            Err(e) => return Err(format!("the engine's response is not HTTP: {e}")),
        };
        let status = parsed.code.unwrap_or(0);
        if status == 101 {
            return Ok(Some((n, Next::Upgraded)));
        }
        let header = |name: &str| {
            parsed
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        };
        let keep_alive =
            !header("connection").iter().any(|v| v == "close") && parsed.version == Some(1);
        let r = Response {
            status,
            body: Vec::new(),
            keep_alive,
        };
        // Interim answers (100 Continue) are not asked for, so not expected.
        let state = if matches!(status, 204 | 304) {
            State::Length(r, 0)
        } else if header("transfer-encoding")
            .iter()
            .any(|v| v.ends_with("chunked"))
        {
            State::Chunked(r, Chunk::Size, 0)
        } else if let Some(len) = header("content-length").first() {
            let len: usize = len
                .parse()
                .map_err(|_| format!("the engine sent a bad Content-Length '{len}'"))?;
            if len > self.limit && !self.tail {
                return Err(too_big(self.limit));
            }
            State::Length(r, len)
        } else {
            State::UntilClose(Response {
                keep_alive: false,
                ..r
            })
        };
        Ok(Some((n, Next::Body(state))))
    }
}

/// What follows a response head.
enum Next {
    Body(State),
    Upgraded,
}

fn too_big(limit: usize) -> String {
    format!("the engine's answer is larger than {limit} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `input` cut at `cut`, as a socket would deliver it (unused
    /// bytes stay in front of what comes next); then tell of the close.
    fn read(input: &[u8], cut: usize, limit: usize) -> Result<(Answer, usize), String> {
        let mut p = ResponseParser::new(limit);
        let mut held = Vec::new();
        let mut eaten = 0;
        for piece in [&input[..cut], &input[cut..]] {
            held.extend_from_slice(piece);
            let (used, answer) = p.feed(&held)?;
            held.drain(..used);
            eaten += used;
            if let Some(a) = answer {
                return Ok((a, eaten));
            }
        }
        Ok((p.closed()?, eaten))
    }

    fn whole(input: &[u8]) -> Response {
        let mut first = None;
        for cut in 0..=input.len() {
            let (a, _) = read(input, cut, 1 << 20).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
            let Answer::Whole(r) = a else { panic!("{a:?}") };
            assert_eq!(first.get_or_insert(r.clone()), &r, "cut {cut}");
        }
        first.unwrap()
    }

    #[test]
    fn a_progress_stream_keeps_its_last_bytes_whatever_its_length() {
        let mut body = Vec::new();
        for i in 0..1000 {
            body.extend_from_slice(format!("{{\"status\":\"step {i}\"}}\r\n").as_bytes());
        }
        let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for piece in body.chunks(700) {
            chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            chunked.extend_from_slice(piece);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let mut framed =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        framed.extend_from_slice(&body);
        for input in [&chunked, &framed] {
            for cut in [0, 10, input.len() / 2, input.len()] {
                let mut p = ResponseParser::keeping_tail(64);
                let mut held = Vec::new();
                let mut got = None;
                for piece in [&input[..cut], &input[cut..]] {
                    if got.is_some() {
                        break;
                    }
                    held.extend_from_slice(piece);
                    let (used, a) = p.feed(&held).unwrap();
                    held.drain(..used);
                    got = a;
                }
                let Some(Answer::Whole(r)) = got else {
                    panic!("cut {cut}")
                };
                assert_eq!(r.body, &body[body.len() - 64..], "cut {cut}");
            }
        }
        assert!(
            read(&framed, 0, 64).is_err(),
            "without tail mode: too large"
        );
    }

    #[test]
    fn a_request_is_written_with_its_length() {
        assert_eq!(
            request("POST", "/v1.41/containers/create?name=a", Some(b"{}")),
            b"POST /v1.41/containers/create?name=a HTTP/1.1\r\nHost: docker\r\n\
              Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
                .to_vec()
        );
        assert_eq!(
            request("GET", "/version", None),
            b"GET /version HTTP/1.1\r\nHost: docker\r\n\r\n".to_vec()
        );
    }

    #[test]
    fn bodies_by_length_chunks_and_close_read_the_same_at_every_split() {
        let r = whole(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"Id\":\"ab\"}");
        assert_eq!(
            (r.status, r.body.as_slice(), r.keep_alive),
            (200, &b"{\"Id\":\"ab\"}"[..], true)
        );
        let r = whole(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n[{\"a\r\n3;x=y\r\n\":1\r\n2\r\n}]\r\n0\r\nX-T: 1\r\n\r\n");
        assert_eq!(r.body, b"[{\"a\":1}]");
        let r = whole(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nlog line\n");
        assert_eq!(
            (r.body.as_slice(), r.keep_alive),
            (&b"log line\n"[..], false)
        );
        let r = whole(b"HTTP/1.1 204 No Content\r\nServer: Docker\r\n\r\n");
        assert_eq!((r.status, r.body.len(), r.keep_alive), (204, 0, true));
        let r = whole(b"HTTP/1.1 304 Not Modified\r\n\r\n");
        assert_eq!(r.status, 304);
        let r = whole(b"HTTP/1.1 404 Not Found\r\nContent-Length: 29\r\nConnection: close\r\n\r\n{\"message\":\"No such image\"}\n\n");
        assert_eq!((r.status, r.keep_alive), (404, false));
    }

    #[test]
    fn an_upgrade_leaves_the_stream_that_follows() {
        let input = b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n/ # ";
        for cut in 0..=input.len() {
            let (a, eaten) = read(input, cut, 1024).unwrap();
            assert_eq!(a, Answer::Upgraded);
            assert_eq!(&input[eaten..], b"/ # ", "cut {cut}");
        }
    }

    #[test]
    fn what_is_not_a_whole_bounded_response_is_an_error() {
        let limit = 16;
        for bad in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\n\r\n01234567890123456",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc",
        ] {
            let e = read(bad, bad.len(), limit).unwrap_err();
            assert!(e.contains("engine"), "{e}");
        }
        let mut long = b"HTTP/1.1 200 OK\r\n".to_vec();
        long.resize(MAX_HEAD + 10, b'a');
        assert!(ResponseParser::new(limit).feed(&long).is_err());
        // A second response on the same parser is a caller's mistake.
        let mut p = ResponseParser::new(limit);
        let ok = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert!(matches!(p.feed(ok), Ok((n, Some(_))) if n == ok.len()));
        assert!(p.feed(ok).is_err());
    }
}
