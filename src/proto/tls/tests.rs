//! The session against rustls's own client, bytes shuttled by hand.

use super::testing::{self, CERT, KEY, client};
use super::*;
use rustls::ClientConnection;

fn server() -> Tls {
    Tls::new(&testing::identity())
}

/// Move what the client has to send into the server's buffer (as far as
/// it takes it), let the server advance with `out`, and hand what it
/// sends back. Returns how much of `out` the server encrypted.
fn shuttle(c: &mut ClientConnection, s: &mut Tls, out: &[u8]) -> (usize, Progress) {
    let mut wire = Vec::new();
    while c.wants_write() {
        c.write_tls(&mut wire).unwrap();
    }
    let mut at = 0;
    let mut taken = 0;
    loop {
        let space = s.space();
        let n = space.len().min(wire.len() - at);
        space[..n].copy_from_slice(&wire[at..n + at]);
        s.filled(n);
        at += n;
        let (e, p) = s.advance(&out[taken..]);
        assert!(e <= RECORD, "one record at most per call: {e}");
        taken += e;
        let back = s.outgoing().to_vec();
        s.sent(back.len());
        let mut rd = &back[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
            c.process_new_packets().unwrap();
        }
        if p != Progress::Open || at == wire.len() {
            return (taken, p);
        }
    }
}

fn handshake() -> (ClientConnection, Tls) {
    let (mut c, mut s) = (client(), server());
    for _ in 0..4 {
        shuttle(&mut c, &mut s, &[]);
    }
    assert!(!c.is_handshaking(), "the handshake completes");
    (c, s)
}

fn client_reads(c: &mut ClientConnection) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = std::io::Read::read_to_end(&mut c.reader(), &mut got);
    got
}

#[test]
fn a_request_and_a_long_answer_cross_intact() {
    let (mut c, mut s) = handshake();
    let request = b"GET /v3/compute/capabilities HTTP/1.1\r\nHost: x\r\n\r\n";
    std::io::Write::write_all(&mut c.writer(), request).unwrap();
    shuttle(&mut c, &mut s, &[]);
    assert_eq!(s.plain(), request);
    s.took(10);
    assert_eq!(s.plain(), &request[10..]);
    s.took(request.len());
    assert!(s.plain().is_empty());
    // A small exchange keeps the small buffers.
    assert_eq!((s.incoming.len(), s.outgoing.len()), (SMALL, SMALL));

    // Longer than several records: taken one record at a time.
    let answer: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let (mut sent, mut got) = (0, Vec::new());
    while sent < answer.len() {
        let (n, p) = shuttle(&mut c, &mut s, &answer[sent..]);
        assert_eq!(p, Progress::Open);
        assert!(n > 0, "the session takes more");
        sent += n;
        got.extend(client_reads(&mut c));
    }
    assert_eq!(got, answer);
    assert_eq!(s.outgoing.len(), OUTGOING, "grown once to a whole record");
}

#[test]
fn a_reader_that_does_not_take_leaves_the_rest_as_ciphertext() {
    let (mut c, mut s) = handshake();
    let big = vec![7u8; 3 * RECORD];
    std::io::Write::write_all(&mut c.writer(), &big).unwrap();
    let mut wire = Vec::new();
    while c.wants_write() {
        c.write_tls(&mut wire).unwrap();
    }
    let mut at = 0;
    let mut got = Vec::new();
    while got.len() < big.len() {
        let space = s.space();
        let n = space.len().min(wire.len() - at);
        space[..n].copy_from_slice(&wire[at..at + n]);
        s.filled(n);
        at += n;
        assert_eq!(s.advance(&[]).1, Progress::Open);
        assert!(s.plain().len() <= 2 * RECORD, "plaintext stays bounded");
        got.extend_from_slice(s.plain());
        let k = s.plain().len();
        s.took(k);
    }
    assert_eq!(got, big);
    assert_eq!(s.incoming.len(), INCOMING, "grown once to a whole record");
}

#[test]
fn what_is_not_tls_fails_the_session() {
    let mut s = server();
    let req = b"GET /v1/version HTTP/1.1\r\nHost: x\r\n\r\n";
    s.space()[..req.len()].copy_from_slice(req);
    s.filled(req.len());
    assert_eq!(s.advance(&[]).1, Progress::Failed);

    let mut s = server();
    s.space()[..4].copy_from_slice(&[0x16, 3, 1, 0xff]);
    s.filled(4);
    s.space()[..8].copy_from_slice(&[0xff; 8]);
    s.filled(8);
    assert_eq!(s.advance(&[]).1, Progress::Failed, "not a TLS hello");
}

#[test]
fn the_client_closing_is_seen() {
    let (mut c, mut s) = handshake();
    std::io::Write::write_all(&mut c.writer(), b"last words").unwrap();
    c.send_close_notify();
    let (_, p) = shuttle(&mut c, &mut s, &[]);
    assert_eq!(s.plain(), b"last words", "data before the close is kept");
    assert_eq!(p, Progress::PeerClosed);
    assert!(s.peer_closed());
}

#[test]
fn an_identity_refuses_what_is_not_one() {
    let e = Identity::from_pem(b"nothing", KEY).unwrap_err();
    assert!(e.contains("no CERTIFICATE"), "{e}");
    let e = Identity::from_pem(CERT, b"nothing").unwrap_err();
    assert!(e.contains("no private key"), "{e}");
    let e = Identity::from_pem(CERT, CERT).unwrap_err();
    assert!(e.contains("no private key"), "{e}");
}
