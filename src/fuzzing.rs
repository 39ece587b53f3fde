//! Entry points shared by the fuzz targets in `fuzz/` and by the unit test
//! that replays their committed corpora on the stable toolchain (no I/O).
//!
//! Each function takes arbitrary bytes, drives one sans-IO component, and
//! panics only when an invariant is broken.

use crate::api::body;
use crate::lab::queue::Queue;
use crate::proto::http::parse::{Request, RequestParser};
use crate::proto::telnet::Session;
use std::collections::VecDeque;

/// Cut points derived from the data itself, so a corpus entry is replayable.
fn cuts(seed: u8, len: usize) -> Vec<usize> {
    let step = 1 + seed as usize % 17;
    (step..len).step_by(step).collect()
}

fn parse_all(data: &[u8], cuts: &[usize]) -> (Vec<Request>, Option<u16>) {
    let mut parser = RequestParser::new();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut start = 0;
    for end in cuts.iter().copied().chain([data.len()]) {
        buf.extend_from_slice(&data[start..end]);
        start = end;
        loop {
            match parser.feed(&buf) {
                Err(e) => return (out, Some(e.status())),
                Ok(p) => {
                    assert!(p.consumed <= buf.len(), "consumed more than given");
                    buf.drain(..p.consumed);
                    match p.request {
                        Some(r) => {
                            assert!(r.body.len() <= crate::limits::MAX_BODY_BYTES);
                            out.push(r);
                        }
                        None => break,
                    }
                }
            }
        }
    }
    (out, None)
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
        body::NioCreate::parse(data).err(),
        body::empty(data).err(),
    ];
    for e in statuses.into_iter().flatten() {
        assert!(matches!(e.status(), 400 | 409), "{e:?}");
        assert!(!e.to_string().is_empty());
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

/// The per-VM queue against a model: each request runs exactly once, in
/// arrival order, one at a time.
pub fn vm_queue(data: &[u8]) {
    let mut q = Queue::new();
    let mut model: VecDeque<u32> = VecDeque::new();
    let mut running: Option<u32> = None;
    let mut next = 0u32;
    let mut ran = Vec::new();
    for &op in data {
        match op % 3 {
            0 => {
                let got = q.submit(next);
                if running.is_none() {
                    assert_eq!(got, Some(next), "an idle queue must run at once");
                    running = Some(next);
                    ran.push(next);
                } else {
                    assert_eq!(got, None);
                    model.push_back(next);
                }
                next += 1;
            }
            1 if running.is_some() => {
                let got = q.finish();
                running = model.pop_front();
                assert_eq!(got, running);
                ran.extend(got);
            }
            2 if op % 7 == 0 => {
                let dropped = q.drain();
                assert_eq!(dropped, model.drain(..).collect::<Vec<_>>());
                running = None;
            }
            _ => {}
        }
        assert_eq!(q.is_busy(), running.is_some());
        assert_eq!(q.waiting(), model.len());
    }
    assert!(ran.windows(2).all(|w| w[0] < w[1]), "out of order: {ran:?}");
}

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
    fn replay_telnet_corpus() {
        replay("telnet", super::telnet);
    }

    #[test]
    fn replay_vm_queue_corpus() {
        replay("vm_queue", super::vm_queue);
    }
}
