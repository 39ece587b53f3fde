//! Entry points shared by the fuzz targets in `fuzz/` and by the unit test
//! that replays their committed corpora on the stable toolchain (no I/O).
//!
//! Each function takes arbitrary bytes, drives one sans-IO component, and
//! panics only when an invariant is broken.

use crate::api::body::{self};
use crate::proto::http::parse::{Method, Request, RequestParser};
use crate::proto::telnet::Session;
use crate::proto::websocket::{Decoder, Message};
use std::time::{Duration, Instant};

/// Cut points derived from the data itself, so a corpus entry is replayable.
fn cuts(seed: u8, len: usize) -> Vec<usize> {
    let step = 1 + seed as usize % 17;
    (step..len).step_by(step).collect()
}

/// Feed `data` to a push decoder in the pieces `cuts` makes, as a socket
/// would: `step` looks at what is buffered and says how much it used and
/// what it made, `Ok(None)` when it needs more, or fails with a code.
/// Returns everything made and the failure, if any.
fn in_pieces<T>(
    data: &[u8],
    cuts: &[usize],
    mut step: impl FnMut(&[u8]) -> Result<Option<(usize, Option<T>)>, u16>,
) -> (Vec<T>, Option<u16>) {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut start = 0;
    for end in cuts.iter().copied().chain([data.len()]) {
        buf.extend_from_slice(&data[start..end]);
        start = end;
        loop {
            match step(&buf) {
                Err(code) => return (out, Some(code)),
                Ok(None) => break,
                Ok(Some((used, made))) => {
                    assert!(used <= buf.len(), "used {used} of {}", buf.len());
                    buf.drain(..used);
                    let done = made.is_none() && used == 0;
                    out.extend(made);
                    if done {
                        break;
                    }
                }
            }
        }
    }
    (out, None)
}

/// What the parser hands out: a request, or a piece of a streamed body.
enum Made {
    Request(Request),
    Piece(Vec<u8>),
}

/// Every request, a streamed body gathered into its request's `body`
/// (pieces are cut where the reads were: only their sum must agree).
fn parse_all(data: &[u8], cuts: &[usize]) -> (Vec<Request>, Option<u16>) {
    let mut parser = RequestParser::new();
    let (made, err) = in_pieces(data, cuts, |buf| {
        if parser.streaming_body() {
            let part = parser.feed_body(buf).map_err(|e| e.status())?;
            // The end is news even when empty (no progress otherwise).
            let news = !part.data.is_empty() || part.end;
            let piece = news.then(|| Made::Piece(buf[part.data].to_vec()));
            return Ok(Some((part.consumed, piece)));
        }
        match parser.feed(buf) {
            Err(e) => Err(e.status()),
            Ok(p) => {
                if let Some(r) = &p.request {
                    assert!(r.body.len() <= crate::limits::MAX_UPLOAD_BYTES);
                    assert!(!r.streamed || r.body.is_empty());
                }
                Ok(Some((p.consumed, p.request.map(Made::Request))))
            }
        }
    });
    let mut out: Vec<Request> = Vec::new();
    for m in made {
        match (m, out.last_mut()) {
            (Made::Request(r), _) => out.push(r),
            (Made::Piece(p), Some(r)) if r.streamed => r.body.extend_from_slice(&p),
            (Made::Piece(_), _) => panic!("a body piece with no streamed request before it"),
        }
    }
    (out, err)
}

/// The HTTP parser: the same requests (or error) whether the bytes arrive at
/// once or in pieces.
pub fn http_parser(data: &[u8]) {
    let Some((&seed, rest)) = data.split_first() else {
        return;
    };
    let whole = parse_all(rest, &[]);
    let split = parse_all(rest, &cuts(seed, rest.len()));
    assert_eq!(whole, split, "split reads changed the outcome");
    if let Some(status) = whole.1 {
        assert!(
            matches!(status, 400 | 413 | 431),
            "unexpected status {status}"
        );
    }
}

/// Every route's body decoder: a value or a 400/409, never a panic.
pub fn json_bodies(data: &[u8]) {
    let statuses = [
        body::VersionCheck::parse(data).err(),
        body::ProjectCreate::parse(data).err(),
        body::ProjectUpdate::parse(data).err(),
        body::VmCreate::parse(data).err(),
        body::VmUpdate::parse(data).err(),
        crate::api::Nio::parse(data).err(),
        body::empty(data).err(),
        body::qemu::create(data).err(),
        body::qemu::update(data).err(),
    ];
    for e in statuses.into_iter().flatten() {
        assert!(matches!(e.status(), 400 | 409), "{e:?}");
        assert!(!e.to_string().is_empty());
    }
    // The same bytes as a body of every `/v2/compute` route that takes one:
    // only statuses the GNS3 2.2 controller maps.
    const P: &str = "/v2/compute/projects/42f9feee-3217-4104-981e-85d5f0a806ec";
    const N: &str = "nodes/1b29e1b6-8d3a-4a4b-9d2c-5a6f7e8d9c0b";
    let routes = [
        (Method::Post, "/v2/compute/projects".to_string()),
        (Method::Put, P.to_string()),
        (Method::Post, format!("{P}/vpcs/nodes")),
        (Method::Post, format!("{P}/ethernet_switch/nodes")),
        (Method::Post, format!("{P}/ethernet_hub/nodes")),
        (Method::Post, format!("{P}/cloud/nodes")),
        (Method::Post, format!("{P}/qemu/nodes")),
        (Method::Put, format!("{P}/qemu/{N}")),
        (Method::Get, "/v2/compute/qemu/binaries".to_string()),
        (Method::Put, format!("{P}/vpcs/{N}")),
        (Method::Put, format!("{P}/ethernet_switch/{N}")),
        (Method::Post, format!("{P}/vpcs/{N}/duplicate")),
        (Method::Post, format!("{P}/vpcs/{N}/adapters/0/ports/0/nio")),
        (Method::Put, format!("{P}/vpcs/{N}/adapters/0/ports/0/nio")),
        (
            Method::Post,
            format!("{P}/vpcs/{N}/adapters/0/ports/0/start_capture"),
        ),
    ];
    // And of every `/v3/compute` route that takes one (3.0's keys too).
    let v3 = routes.clone().map(|(m, p)| {
        (
            m,
            p.replace("/v2/", "/v3/")
                .replace("start_capture", "capture/start"),
        )
    });
    for (method, path) in routes.into_iter().chain(v3) {
        let v3 = path.starts_with("/v3/");
        let req = Request {
            method,
            path,
            keep_alive: true,
            http10: false,
            authorization: None,
            content_type: None,
            websocket_key: None,
            websocket_version: None,
            body: data.to_vec(),
            streamed: false,
        };
        let decoded = match v3 {
            false => crate::api::v2::decode(&req, None),
            true => crate::api::v2::decode_v3(&req, None),
        };
        if let Err(e) = decoded.command {
            let r = crate::api::v2::render(None, Err(e));
            assert!(matches!(r.status, 400 | 404 | 409), "{}", r.status);
        }
    }
}

/// A built-in PC fed random console bytes, frames (random, and well-formed
/// ARP and ICMP aimed at it) and time: it never panics, and what it holds
/// stays within its bounds.
pub fn pc(data: &[u8]) {
    use crate::lab::sim::{self as pc, Pc, net};
    use std::net::Ipv4Addr;
    let mac = [0x00, 0x50, 0x79, 0x67, 0x00, 0x01];
    let peer = [0x00, 0x50, 0x79, 0x67, 0x00, 0x02];
    let mut now = Instant::now();
    let mut p = Pc::new(
        mac,
        1,
        crate::lab::settings::Stamp(crate::lab::fake::fake_stamp),
    );
    let _ = p.boot(now, Some("set pcname F\nip 10.0.0.1/24 10.0.0.254\n"));
    let (me, other) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    for chunk in data.chunks(16) {
        let Some((&op, rest)) = chunk.split_first() else {
            continue;
        };
        let out = match op % 8 {
            0..=2 => p.input(now, rest),
            3 => p.frame(now, rest),
            4 => p.frame(now, &net::arp(op & 8 == 0, peer, other, (mac, me))),
            5 => {
                let seq = rest.first().copied().unwrap_or(1) as u16;
                let reply = op & 8 == 0;
                p.frame(
                    now,
                    &net::echo(reply, (peer, mac), (other, me), 64, 1, seq, rest),
                )
            }
            _ => {
                now += Duration::from_millis(u64::from(rest.first().copied().unwrap_or(0)) * 40);
                p.timer(now)
            }
        };
        assert!(
            out.frames.len() <= 64,
            "{} frames at once",
            out.frames.len()
        );
        assert!(
            out.console.len() <= 64 * 1024,
            "{} bytes at once",
            out.console.len()
        );
        let (line, hist, script, arp, files) = p.sizes();
        assert!(line <= pc::MAX_LINE && hist <= pc::HISTORY && script <= pc::MAX_SCRIPT);
        assert!(arp <= pc::ARP_SIZE && files <= pc::MAX_FILES);
        if out.quit {
            return;
        }
    }
}

/// The Docker engine's answers, as the client reads them: arbitrary bytes
/// in arbitrary pieces never panic, a body never exceeds the limit, and
/// splitting the input never changes the outcome (the answer, or that it
/// failed).
pub fn engine_answer(data: &[u8]) {
    use crate::proto::http::client::{Answer, ResponseParser};
    let Some((&seed, rest)) = data.split_first() else {
        return;
    };
    let limit = 1 + usize::from(seed) * 8;
    let read = |cuts: &[usize], tail: bool| -> Result<Option<(Answer, usize)>, String> {
        let mut p = if tail {
            ResponseParser::keeping_tail(limit)
        } else {
            ResponseParser::new(limit)
        };
        let (mut held, mut eaten, mut start) = (Vec::new(), 0, 0);
        for end in cuts.iter().copied().chain([rest.len()]) {
            held.extend_from_slice(&rest[start..end]);
            start = end;
            let (used, answer) = p.feed(&held)?;
            assert!(used <= held.len(), "used more than it was given");
            held.drain(..used);
            eaten += used;
            if let Some(a) = answer {
                return Ok(Some((a, eaten)));
            }
        }
        match p.closed() {
            Ok(a) => Ok(Some((a, eaten + held.len()))),
            Err(e) => Err(e),
        }
    };
    // Bounded, and the same answer however the bytes come; a progress
    // stream (tail mode) keeps at most the limit, the end of what a body
    // without a limit would be.
    for tail in [false, true] {
        let whole = read(&[], tail);
        if let Ok(Some((Answer::Whole(r), _))) = &whole {
            assert!(r.body.len() <= limit, "a body past the limit");
        }
        let split = read(&cuts(seed, rest.len()), tail);
        assert_eq!(
            whole.as_ref().map_err(|_| ()),
            split.as_ref().map_err(|_| ()),
            "split reads changed the answer"
        );
        if tail
            && let Ok(Some((Answer::Whole(r), _))) = &whole
            && let Ok(Some((Answer::Whole(all), _))) = read_unbounded(rest)
        {
            assert!(
                all.body.ends_with(&r.body),
                "the tail is not the body's end"
            );
        }
    }
}

/// A response read whole with no practical limit (for the tail check).
fn read_unbounded(
    rest: &[u8],
) -> Result<Option<(crate::proto::http::client::Answer, usize)>, String> {
    let mut p = crate::proto::http::client::ResponseParser::new(1 << 30);
    let (used, answer) = p.feed(rest)?;
    match answer {
        Some(a) => Ok(Some((a, used))),
        None => p.closed().map(|a| Some((a, rest.len()))),
    }
}

/// The telnet filter: splitting the input never changes what reaches VPCS.
pub fn telnet(data: &[u8]) {
    let Some((&seed, rest)) = data.split_first() else {
        return;
    };
    let block = seed & 1 == 1;
    let whole = Session::new().feed(rest, block);
    let mut s = Session::new();
    let mut split = Vec::new();
    let mut start = 0;
    for end in cuts(seed, rest.len()).into_iter().chain([rest.len()]) {
        let i = s.feed(&rest[start..end], block);
        split.extend(i.to_vpcs);
        start = end;
        if i.disconnect {
            break;
        }
    }
    assert_eq!(whole.to_vpcs, split, "split reads changed what VPCS gets");
}

fn ws_decode_all(data: &[u8], cuts: &[usize]) -> (Vec<Message>, Option<u16>) {
    let mut d = Decoder::new();
    in_pieces(data, cuts, |buf| {
        let step = d.feed(buf).map_err(|e| e.code())?;
        assert!(
            step.as_ref().is_none_or(|(used, _)| *used > 0),
            "a frame of 0 bytes"
        );
        Ok(step)
    })
}

/// The websocket decoder: the same messages (or close code) whether the
/// bytes arrive at once or in pieces, never a message over the limit.
pub fn websocket(data: &[u8]) {
    let Some((&seed, rest)) = data.split_first() else {
        return;
    };
    let whole = ws_decode_all(rest, &[]);
    let split = ws_decode_all(rest, &cuts(seed, rest.len()));
    assert_eq!(whole, split, "split reads changed the outcome");
    for m in &whole.0 {
        let len = match m {
            Message::Text(t) => t.len(),
            Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b.len(),
            Message::Close(_, r) => r.len(),
        };
        assert!(len <= crate::proto::websocket::MAX_MESSAGE);
    }
    if let Some(code) = whole.1 {
        assert!(matches!(code, 1002 | 1007 | 1009), "close code {code}");
    }
    // The session the reactor runs: fed in the same pieces, it hands out
    // the same data messages, whole or split.
    let session = |cuts: &[usize]| {
        let mut s = crate::proto::websocket::Session::new(Vec::new());
        let mut out = Vec::new();
        let mut at = 0;
        for &c in cuts.iter().chain(std::iter::once(&rest.len())) {
            out.extend(s.receive(&rest[at..c.max(at)]));
            at = c.max(at);
        }
        out
    };
    // Up to a close, after which a session reads nothing more.
    let data: Vec<Vec<u8>> = whole
        .0
        .iter()
        .take_while(|m| !matches!(m, Message::Close(..)))
        .filter_map(|m| match m {
            Message::Text(t) => Some(t.as_bytes().to_vec()),
            Message::Binary(b) => Some(b.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(session(&[]), session(&cuts(seed, rest.len())));
    if whole.1.is_none() {
        assert_eq!(
            session(&[]),
            data,
            "the session hands out every data message"
        );
    }
}

mod archive;
mod lab;
mod tls;

pub use archive::archive;
pub use lab::lab;
pub use tls::tls;

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn replay(target: &str, f: fn(&[u8])) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .collect();
        assert!(!entries.is_empty(), "empty corpus for {target}");
        for entry in entries {
            let path = entry.unwrap().path();
            f(&std::fs::read(&path).unwrap());
        }
    }

    #[test]
    fn replay_http_parser_corpus() {
        replay("http_parser", super::http_parser);
    }

    #[test]
    fn replay_json_bodies_corpus() {
        replay("json_bodies", super::json_bodies);
    }

    #[test]
    fn replay_engine_answer_corpus() {
        replay("engine_answer", super::engine_answer);
    }

    #[test]
    fn replay_telnet_corpus() {
        replay("telnet", super::telnet);
    }

    #[test]
    fn replay_websocket_corpus() {
        replay("websocket", super::websocket);
    }

    #[test]
    fn replay_pc_corpus() {
        replay("pc", super::pc);
    }

    #[test]
    fn replay_archive_corpus() {
        replay("archive", super::archive);
    }

    #[test]
    fn replay_lab_corpus() {
        replay("lab", super::lab);
    }

    #[test]
    fn replay_tls_corpus() {
        replay("tls", super::tls);
    }
}
