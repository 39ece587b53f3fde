//! The API over TLS: `GET /v3/compute/capabilities` on keep-alive https
//! connections beside the same over plain HTTP (one server, both on its
//! port), and full handshakes per second.

use super::*;
use load::{report, response_len};
use rustls::ClientConnection;

const CERT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/proto/tls/test-cert.pem");
const KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/proto/tls/test-key.pem");

use nanolab::proto::tls::testing::{client_config as config, client_of as connect};

/// Write what the client has encrypted, as far as the socket takes it.
fn send(s: &mut TcpStream, c: &mut ClientConnection) {
    while c.wants_write() {
        match c.write_tls(s) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
}

/// [`load::drive`] over TLS: `conns` keep-alive https connections, one
/// request in flight on each, from one thread.
fn drive_tls(
    addr: SocketAddr,
    conns: usize,
    dur: Duration,
    req: &[u8],
) -> (u64, Duration, Vec<Duration>) {
    let config = config();
    let mut poll = Poll::new().unwrap();
    let mut streams = Vec::new();
    for i in 0..conns {
        let mut s = TcpStream::from_std({
            let s = std::net::TcpStream::connect(addr).unwrap();
            s.set_nonblocking(true).unwrap();
            s.set_nodelay(true).unwrap();
            s
        });
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)
            .unwrap();
        let mut c = connect(&config);
        c.writer().write_all(req).unwrap();
        send(&mut s, &mut c);
        streams.push((s, c, Vec::new(), Instant::now()));
    }
    let mut lat = Vec::with_capacity(1 << 20);
    let mut events = Events::with_capacity(1024);
    let started = Instant::now();
    let end = started + dur;
    let mut buf = vec![0u8; 65536];
    while Instant::now() < end {
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        for ev in events.iter() {
            let (s, c, acc, sent) = &mut streams[ev.token().0];
            loop {
                match c.read_tls(s) {
                    Ok(0) => panic!("server closed a TLS load connection"),
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
                c.process_new_packets().unwrap();
                while let Ok(n) = c.reader().read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    acc.extend_from_slice(&buf[..n]);
                }
                while let Some(len) = response_len(acc) {
                    acc.drain(..len);
                    lat.push(sent.elapsed());
                    *sent = Instant::now();
                    c.writer().write_all(req).unwrap();
                }
            }
            send(s, c);
        }
    }
    (lat.len() as u64, started.elapsed(), lat)
}

/// Connect, handshake, one request, close: as many as fit in `dur`.
fn handshakes(addr: SocketAddr, dur: Duration, req: &[u8]) -> (u64, Duration) {
    let config = config();
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < dur && n < 100_000 {
        let sock = std::net::TcpStream::connect(addr).unwrap();
        sock.set_nodelay(true).unwrap();
        let mut tls = rustls::StreamOwned::new(connect(&config), sock);
        tls.write_all(req).unwrap();
        let mut acc = Vec::new();
        let mut buf = [0u8; 4096];
        while response_len(&acc).is_none() {
            let k = tls.read(&mut buf).unwrap();
            assert!(k > 0, "closed before the answer");
            acc.extend_from_slice(&buf[..k]);
        }
        n += 1;
    }
    (n, started.elapsed())
}

pub(crate) fn tls() {
    let srv = Server::start(&["--tls-cert", CERT, "--tls-key", KEY]);
    let dur = Duration::from_secs(5);
    let plain = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes();
    let v2 = plain("/v2/compute/capabilities");
    let v3 = plain("/v3/compute/capabilities");
    report(
        "v2 caps http",
        64,
        drive(srv.addr, 64, dur, u64::MAX, |_| v2.clone()),
    );
    report(
        "v3 caps http",
        64,
        drive(srv.addr, 64, dur, u64::MAX, |_| v3.clone()),
    );
    report("v3 caps https", 64, drive_tls(srv.addr, 64, dur, &v3));
    report(
        "v3 caps http",
        1,
        drive(srv.addr, 1, dur, u64::MAX, |_| v3.clone()),
    );
    report("v3 caps https", 1, drive_tls(srv.addr, 1, dur, &v3));
    let (n, took) = handshakes(srv.addr, Duration::from_secs(3), &v3);
    println!(
        "load: https handshake + request + close, one client: {:.0} per second",
        n as f64 / took.as_secs_f64()
    );
    println!(
        "load: server VmRSS after the TLS runs: {} KiB",
        srv.rss_kib()
    );
}
