//! The TLS session (`proto::tls`) against arbitrary bytes, and against a
//! real rustls client whose bytes arrive in arbitrary pieces, one of them
//! possibly flipped: the session never panics, its buffers stay bounded,
//! and what it hands over is exactly what the client sent, or a prefix of
//! it when the wire was tampered with.

use crate::proto::tls::testing;
use crate::proto::tls::{Identity, Progress, Tls};
use rustls::{ClientConfig, ClientConnection};
use std::io::{Read, Write};
use std::sync::{Arc, OnceLock};

/// Plaintext and ciphertext a session may hold at once.
const BOUND: usize = 64 << 10;

fn identity() -> &'static Identity {
    static ID: OnceLock<Identity> = OnceLock::new();
    ID.get_or_init(testing::identity)
}

fn client() -> ClientConnection {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    testing::client_of(CONFIG.get_or_init(testing::client_config))
}

/// Give the session `piece` (as far as its buffer takes it; the rest is
/// returned) and let it advance with `out`; check its bounds.
fn feed<'a>(s: &mut Tls, piece: &'a [u8], out: &[u8]) -> (&'a [u8], usize, Progress) {
    let space = s.space();
    let n = space.len().min(piece.len());
    space[..n].copy_from_slice(&piece[..n]);
    s.filled(n);
    let (taken, p) = s.advance(out);
    assert!(taken <= out.len());
    assert!(
        s.plain().len() <= BOUND,
        "plaintext held: {}",
        s.plain().len()
    );
    assert!(
        s.outgoing().len() <= BOUND,
        "ciphertext held: {}",
        s.outgoing().len()
    );
    (&piece[n..], taken, p)
}

/// Arbitrary bytes: `data[0]` picks raw bytes or a real client, `data[1]`
/// the cut points, bit 7 of `data[0]` a flipped byte.
pub fn tls(data: &[u8]) {
    let [mode, seed, rest @ ..] = data else {
        return;
    };
    if mode & 1 == 0 {
        return raw(*seed, rest);
    }
    client_in_pieces(*mode, *seed, rest);
}

fn raw(seed: u8, data: &[u8]) {
    let mut s = Tls::new(identity());
    let mut start = 0;
    for end in super::cuts(seed, data.len())
        .into_iter()
        .chain([data.len()])
    {
        let mut piece = &data[start..end];
        start = end;
        while !piece.is_empty() {
            let (left, _, p) = feed(&mut s, piece, b"answer");
            if p == Progress::Failed {
                return;
            }
            let k = s.plain().len();
            s.took(k);
            let k = s.outgoing().len();
            s.sent(k);
            if left.len() == piece.len() {
                return; // full and stuck: settle() calls that a failure
            }
            piece = left;
        }
    }
}

fn client_in_pieces(mode: u8, seed: u8, request: &[u8]) {
    // Within what rustls's client buffers of an answer it is not read.
    let request = &request[..request.len().min(8 << 10)];
    let mut c = client();
    let mut s = Tls::new(identity());
    c.writer().write_all(request).unwrap();
    let mut received = Vec::new();
    let mut answered = Vec::new();
    let mut flipped = false;
    // The conversation, a few rounds: whatever the client has for the
    // server goes in pieces; the server echoes what it got.
    for round in 0..6 {
        let mut wire = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut wire).unwrap();
        }
        if mode & 0x80 != 0 && round == (mode as usize >> 1) % 3 && !wire.is_empty() {
            let at = (seed as usize * 31 + request.len()) % wire.len();
            wire[at] ^= 1 << (mode % 8);
            flipped = true;
        }
        let mut start = 0;
        for end in super::cuts(seed, wire.len())
            .into_iter()
            .chain([wire.len()])
        {
            let mut piece = &wire[start..end];
            start = end;
            loop {
                let echo = received[answered.len()..].to_vec();
                let (left, taken, p) = feed(&mut s, piece, &echo);
                answered.extend_from_slice(&echo[..taken]);
                let k = s.plain().len();
                received.extend_from_slice(s.plain());
                s.took(k);
                if p == Progress::Failed {
                    assert!(flipped, "an untouched conversation failed");
                    return check(&received, request);
                }
                let back = s.outgoing().to_vec();
                s.sent(back.len());
                let mut rd = &back[..];
                while !rd.is_empty() {
                    if c.read_tls(&mut rd).is_err() || c.process_new_packets().is_err() {
                        assert!(flipped, "the client refused the server");
                        return check(&received, request);
                    }
                }
                if left.is_empty() {
                    break;
                }
                piece = left;
            }
        }
    }
    check(&received, request);
    if !flipped {
        assert!(
            received == request,
            "the server got {} bytes, not the {} the client sent",
            received.len(),
            request.len()
        );
        let mut echo = Vec::new();
        let _ = c.reader().read_to_end(&mut echo);
        assert!(
            echo == answered,
            "the client got {} bytes, not the {} the server sent",
            echo.len(),
            answered.len()
        );
    }
}

/// TLS never hands over altered plaintext.
fn check(received: &[u8], request: &[u8]) {
    assert!(
        request.starts_with(received),
        "{} bytes received are not a prefix of the {} sent",
        received.len(),
        request.len()
    );
}
