//! What TLS costs per request inside nanolab's session (`proto::tls`),
//! against rustls's own client in memory: allocations and time per
//! request and answer once the handshake is over.
//!
//! `cargo bench --bench tls`

use nanolab::proto::tls::testing::{client, identity};
use nanolab::proto::tls::{Progress, Tls};
use rustls::ClientConnection;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Counts the allocations made while `COUNTING` is set on this thread.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNTING.try_with(|c| {
            if c.get() {
                ALLOCS.with(|a| a.set(a.get() + 1));
            }
        });
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Run `f` as the server side: its allocations and its time are counted.
fn server<T>(spent: &mut Duration, f: impl FnOnce() -> T) -> T {
    COUNTING.with(|c| c.set(true));
    let t = Instant::now();
    let r = f();
    *spent += t.elapsed();
    COUNTING.with(|c| c.set(false));
    r
}

/// Client to server and back until the server took all of `answer`; the
/// client reads what it gets. Returns the plaintext the server received
/// and the client's.
fn exchange(
    c: &mut ClientConnection,
    s: &mut Tls,
    answer: &[u8],
    spent: &mut Duration,
) -> (usize, usize) {
    let mut sink = [0u8; 16 << 10];
    let mut read = 0;
    let mut wire = Vec::new();
    while c.wants_write() {
        c.write_tls(&mut wire).unwrap();
    }
    let mut at = 0;
    let mut taken = 0;
    let mut received = 0;
    loop {
        let n = server(spent, || {
            let space = s.space();
            let n = space.len().min(wire.len() - at);
            space[..n].copy_from_slice(&wire[at..at + n]);
            s.filled(n);
            let (e, p) = s.advance(&answer[taken..]);
            assert_ne!(p, Progress::Failed);
            taken += e;
            received += s.plain().len();
            let k = s.plain().len();
            s.took(k);
            n
        });
        at += n;
        let back = s.outgoing().to_vec();
        server(spent, || s.sent(back.len()));
        let mut rd = &back[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
            c.process_new_packets().unwrap();
            while let Ok(n) = c.reader().read(&mut sink) {
                if n == 0 {
                    break;
                }
                read += n;
            }
        }
        if at == wire.len() && taken == answer.len() {
            return (received, read);
        }
    }
}

fn main() {
    let (mut c, mut s) = (client(), Tls::new(&identity()));
    let mut spent = Duration::ZERO;
    for _ in 0..4 {
        exchange(&mut c, &mut s, &[], &mut spent);
    }
    assert!(!c.is_handshaking());
    let request = b"GET /v3/compute/capabilities HTTP/1.1\r\nHost: 127.0.0.1:3080\r\nAuthorization: Basic Z25zMzpsb2NhbA==\r\n\r\n";
    let answer = vec![b'x'; 420];
    for (label, size) in [
        ("a capabilities answer", 420),
        ("a 64 KiB answer", 64 << 10),
    ] {
        let answer = &answer
            .iter()
            .copied()
            .cycle()
            .take(size)
            .collect::<Vec<_>>();
        let rounds = 20_000u64 * 420 / size as u64 + 100;
        ALLOCS.with(|a| a.set(0));
        spent = Duration::ZERO;
        for _ in 0..rounds {
            c.writer().write_all(request).unwrap();
            let (got, read) = exchange(&mut c, &mut s, answer, &mut spent);
            assert_eq!((got, read), (request.len(), answer.len()));
        }
        let allocs = ALLOCS.with(|a| a.get());
        let records = (size as u64).div_ceil(16 << 10);
        println!(
            "tls: request + {label}: {:.2} allocations per request in the server session \
             ({} answer record(s): rustls decrypts each record and encrypts each record \
             through a buffer of its own); {:.1} µs of server work per request",
            allocs as f64 / rounds as f64,
            records,
            spent.as_secs_f64() * 1e6 / rounds as f64
        );
    }
}
