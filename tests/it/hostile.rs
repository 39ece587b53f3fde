//! Hostile clients. After each wave the server must answer at once and its
//! memory must come back near where it started.

use crate::util::{Server, read_response, vm_url};
use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// Memory may grow by this much over a wave and stay (allocator caches,
/// slab capacity); anything unbounded would blow far past it.
const RSS_MARGIN_KIB: u64 = 16 * 1024;

fn answers_at_once(srv: &Server) {
    let t = Instant::now();
    assert_eq!(srv.get("/v1/version").status, 200);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "the server was held up"
    );
}

fn baseline(srv: &Server) -> u64 {
    for _ in 0..50 {
        srv.get("/v1/version");
    }
    srv.rss_kib()
}

fn assert_near_baseline(srv: &Server, base: u64, wave: &str) {
    let ok = crate::util::wait_for(5, || srv.rss_kib() < base + RSS_MARGIN_KIB);
    let now = srv.rss_kib();
    eprintln!("{wave}: VmRSS {base} KiB before, {now} KiB after");
    assert!(ok, "{wave}: VmRSS {now} KiB, baseline {base} KiB");
}

#[test]
fn a_thousand_idle_connections() {
    nanolab::sys::raise_nofile_limit().unwrap();
    let srv = Server::start(&[]);
    let base = baseline(&srv);
    let idle: Vec<TcpStream> = (0..1000).map(|_| srv.connect()).collect();
    answers_at_once(&srv);
    assert!(
        crate::util::wait_for(5, || srv.fds() > 1000),
        "the server holds them"
    );
    let peak = srv.rss_kib();
    eprintln!("1000 idle connections: VmRSS {peak} KiB");
    drop(idle);
    assert!(
        crate::util::wait_for(5, || srv.fds() < 100),
        "closed connections are released"
    );
    answers_at_once(&srv);
    assert_near_baseline(&srv, base, "idle connections");
}

#[test]
fn out_of_descriptors_the_server_recovers_on_its_own() {
    // 64 descriptors: a few dozen connections, then accept fails (EMFILE)
    // and the rest wait in the listen queue.
    let srv = Server::start_limited(64);
    let held: Vec<TcpStream> = (0..100).map(|_| srv.connect()).collect();
    assert!(
        crate::util::wait_for(5, || srv.log().contains("accept failed")),
        "{}",
        srv.log()
    );
    let mut waiting = srv.connect();
    waiting
        .write_all(b"GET /v1/version HTTP/1.1\r\n\r\n")
        .unwrap();
    drop(held);
    // No new connection arrives: the queued one is accepted by the retry.
    let r = read_response(&mut BufReader::new(waiting)).expect("served after the retry");
    assert_eq!(r.status, 200);
}

#[test]
fn two_hundred_half_sent_requests_time_out() {
    nanolab::sys::raise_nofile_limit().unwrap();
    let srv = Server::start(&[]);
    let base = baseline(&srv);
    let slow: Vec<TcpStream> = (0..200)
        .map(|i| {
            let mut s = srv.connect();
            let partial: &[u8] = if i % 2 == 0 {
                b"GET /v1/version HTTP/1.1\r\nHo"
            } else {
                b"POST /v1/projects HTTP/1.1\r\nContent-Length: 10\r\n\r\n{"
            };
            s.write_all(partial).unwrap();
            s
        })
        .collect();
    for _ in 0..20 {
        answers_at_once(&srv);
    }
    for s in slow {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let r = read_response(&mut BufReader::new(s)).expect("a 408");
        assert_eq!(r.status, 408);
    }
    answers_at_once(&srv);
    assert_near_baseline(&srv, base, "half-sent requests");
}

#[test]
fn a_pipelining_client_that_never_reads_is_bounded() {
    let srv = Server::start(&[]);
    let base = baseline(&srv);
    let flood = srv.connect();
    flood
        .set_write_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let one = b"GET /v1/version HTTP/1.1\r\nHost: x\r\n\r\n";
    let batch: Vec<u8> = one.repeat(1000);
    let mut sent = 0;
    // The server stops reading once its answers pile up: writes then block
    // once the kernel's socket buffers (tens of MB on loopback) are full.
    for _ in 0..2000 {
        match (&flood).write(&batch) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    eprintln!(
        "flooder got {} requests out before being throttled",
        sent / one.len()
    );
    assert!(
        sent < batch.len() * 2000,
        "the server kept reading a client that never reads"
    );
    answers_at_once(&srv);
    let during = srv.rss_kib();
    assert!(
        during < base + RSS_MARGIN_KIB,
        "memory grew to {during} KiB while flooded (base {base})"
    );
    drop(flood);
    answers_at_once(&srv);
    assert_near_baseline(&srv, base, "pipeline flood");
}

#[test]
fn resets_and_abandoned_requests() {
    let srv = Server::start(&[]);
    let base = baseline(&srv);
    for i in 0..300 {
        let mut s = srv.connect();
        match i % 3 {
            // Half a request, then a normal close.
            0 => {
                s.write_all(b"POST /v1/projects HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"na")
                    .unwrap();
            }
            // A request whose answer is never read: closing with unread data sends RST.
            1 => {
                s.write_all(b"GET /v1/version HTTP/1.1\r\n\r\nGET /v1/version HTTP/1.1\r\n\r\n")
                    .unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
            // Half a head, shut down writing, read the (empty) end.
            _ => {
                s.write_all(b"GET /v1/ver").unwrap();
                s.shutdown(Shutdown::Write).unwrap();
                let mut rest = Vec::new();
                let _ = s.read_to_end(&mut rest);
            }
        }
    }
    answers_at_once(&srv);
    assert!(
        crate::util::wait_for(5, || srv.fds() < 100),
        "connections leaked: {}",
        srv.fds()
    );
    assert_near_baseline(&srv, base, "resets");
}

#[test]
fn hostile_bodies_and_framing() {
    let srv = Server::start(&[]);
    let base = baseline(&srv);
    let nested = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    srv.post("/v1/projects", &nested)
        .assert_error(400, "not valid JSON");
    let deep_obj = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    srv.post("/v1/projects", &deep_obj)
        .assert_error(400, "not valid JSON");
    let mut s = srv.connect();
    s.write_all(
        b"POST /v1/projects HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{}{}XX0\r\n\r\n",
    )
    .unwrap();
    read_response(&mut BufReader::new(s))
        .unwrap()
        .assert_error(400, "CRLF");
    let mut s = srv.connect();
    s.write_all(b"POST /v1/projects HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n")
        .unwrap();
    read_response(&mut BufReader::new(s))
        .unwrap()
        .assert_error(400, "chunk size");
    let big = "x".repeat(2 * 1024 * 1024);
    let mut s = srv.connect();
    let _ = write!(
        s,
        "POST /v1/projects HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}",
        big.len()
    );
    read_response(&mut BufReader::new(s))
        .unwrap()
        .assert_error(413, "1048576");
    answers_at_once(&srv);
    assert_near_baseline(&srv, base, "hostile bodies");
}

/// A small xorshift generator: the mutations are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut m = base.to_vec();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(m.len());
        match rng.below(5) {
            0 => m[at] = rng.next() as u8,
            1 => {
                m.remove(at);
            }
            2 => m.insert(at, b"\r\n:{}\"\x00\xff0-"[rng.below(10)]),
            3 => m.truncate(at),
            _ => {
                let piece = m[at..(at + rng.below(20)).min(m.len())].to_vec();
                m.splice(at..at, piece);
            }
        }
        if m.is_empty() {
            m.push(b'G');
        }
    }
    m
}

#[test]
fn thousands_of_mutated_requests() {
    let srv = Server::start(&[]);
    let p = srv.project();
    let base = baseline(&srv);
    let valid: Vec<Vec<u8>> = vec![
        b"GET /v1/version HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"POST /v1/version HTTP/1.1\r\nContent-Length: 22\r\n\r\n{\"version\": \"1.3.13\"}".to_vec(),
        format!("POST /v1/projects/{p}/ports/udp HTTP/1.1\r\nContent-Length: 2\r\n\r\n{{}}").into_bytes(),
        format!("POST /v1/projects/{p}/vpcs/vms HTTP/1.1\r\nContent-Length: 16\r\n\r\n{{\"name\": \"pc\"}}").into_bytes(),
        b"POST /v1/projects HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"name\": \"test\"}\r\n0\r\n\r\n".to_vec(),
        format!("PUT /v1/projects/{p} HTTP/1.1\r\nContent-Length: 17\r\n\r\n{{\"temporary\": 1}}").into_bytes(),
    ];
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let valid = valid.clone();
            let addr = srv.addr;
            std::thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t + 1));
                let mut statuses = std::collections::BTreeMap::new();
                for _ in 0..750 {
                    let pick = rng.below(valid.len());
                    let m = mutate(&mut rng, &valid[pick]);
                    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect: {e}"));
                    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
                    let _ = s.write_all(&m);
                    let _ = s.shutdown(Shutdown::Write);
                    let mut reader = BufReader::new(s);
                    while let Some(r) = read_response(&mut reader) {
                        if r.status >= 400 {
                            assert!(
                                r.json["message"].is_string(),
                                "error without JSON: {}",
                                r.text
                            );
                        }
                        assert_ne!(
                            r.status,
                            500,
                            "a mutation hit a bug: {:?} -> {}",
                            String::from_utf8_lossy(&m),
                            r.text
                        );
                        *statuses.entry(r.status).or_insert(0) += 1;
                    }
                }
                statuses
            })
        })
        .collect();
    for t in threads {
        eprintln!("statuses: {:?}", t.join().unwrap());
    }
    answers_at_once(&srv);
    assert_near_baseline(&srv, base, "mutations");
}

/// Read a whole answer (the server closes after it), with a bound.
fn read_all(s: &mut TcpStream, secs: u64) -> (String, Duration) {
    let t = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    (String::from_utf8_lossy(&out).into_owned(), t.elapsed())
}

#[test]
fn issue_16_a_connection_that_never_speaks_is_closed_after_ten_seconds() {
    let srv = Server::start(&[]);
    let mut silent = srv.connect();
    // One that spoke once is kept (the idle time-out is longer).
    let mut talker = srv.connect();
    talker
        .write_all(b"GET /v1/version HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (text, waited) = read_all(&mut silent, 20);
    assert!(text.is_empty(), "{text}");
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(15),
        "closed after {waited:?}"
    );
    talker
        .write_all(b"GET /v1/version HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut r = BufReader::new(talker);
    assert_eq!(read_response(&mut r).unwrap().status, 200);
    assert_eq!(read_response(&mut r).unwrap().status, 200);
}

#[test]
fn issue_16_at_the_connection_cap_a_new_client_gets_a_503_that_says_why() {
    // Listening on every address: 127.0.0.1 and ::1 are two clients.
    let srv = Server::start(&["--host", "::", "--max-connections", "4"]);
    let port = srv.addr.port();
    let v4 = || TcpStream::connect(("127.0.0.1", port)).unwrap();
    let v6 = || TcpStream::connect(("::1", port)).unwrap();
    // One address may hold three quarters of the slots.
    let held: Vec<TcpStream> = (0..3).map(|_| v4()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let (text, _) = read_all(&mut v4(), 5);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("holds 3 connections"), "{text}");
    // Another address takes the last slot; then the server is full.
    let last = v6();
    std::thread::sleep(Duration::from_millis(200));
    let (text, _) = read_all(&mut v6(), 5);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("--max-connections"), "{text}");
    drop(held);
    drop(last);
    assert!(crate::util::wait_for(5, || {
        crate::util::request(srv.addr, "GET", "/v1/version", "").status == 200
    }));
}

#[test]
fn issue_16_smaller_deviations_handshakes_and_credentials() {
    let srv = Server::start(&[]);
    let ws = "/v2/compute/notifications/ws";
    for (version, key, status) in [
        ("8", "dGhlIHNhbXBsZSBub25jZQ==", "426"),
        ("13", "", "400"),
        ("13", "c2hvcnQ=", "400"),
        ("13", "dGhlIHNhbXBsZSBub25jZQ==", "101"),
    ] {
        let mut s = srv.connect();
        write!(
            s,
            "GET {ws} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {version}\r\n\r\n"
        )
        .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).unwrap();
        let head = String::from_utf8_lossy(&head);
        assert!(
            head.ends_with(status),
            "version {version}, key {key:?}: {head}"
        );
    }
    // Credentials that are not text are wrong credentials.
    let dir = crate::util::temp_dir("auth");
    let pw = crate::util::script(&dir, "pw", "secret\n");
    let srv = Server::start(&[
        "--auth-user",
        "admin",
        "--auth-password-file",
        pw.to_str().unwrap(),
    ]);
    let mut s = srv.connect();
    s.write_all(b"GET /v1/version HTTP/1.1\r\nHost: x\r\nAuthorization: Basic \xff\xfe\r\n\r\n")
        .unwrap();
    let mut r = BufReader::new(s);
    assert_eq!(read_response(&mut r).unwrap().status, 401);
}

#[test]
fn issue_16_a_thousand_notification_clients_that_never_read_stay_within_the_budget() {
    nanolab::sys::raise_nofile_limit().unwrap();
    let srv = Server::start(&[]);
    let base = baseline(&srv);
    let listeners: Vec<_> = (0..1000)
        .map(|_| {
            let (status, ws) =
                crate::util::Ws::open(srv.addr, "/v2/compute/notifications/ws", None);
            assert_eq!(status, 101);
            ws.unwrap()
        })
        .collect();
    let p = "a1b2c3d4-0000-4000-8000-0000000000b0";
    let r = srv.post(
        "/v2/compute/projects",
        &format!(r#"{{"name": "p", "project_id": "{p}"}}"#),
    );
    assert_eq!(r.status, 201);
    let r = srv.post(
        &format!("/v2/compute/projects/{p}/vpcs/nodes"),
        r#"{"name": "PC"}"#,
    );
    let node = format!(
        "/v2/compute/projects/{p}/vpcs/nodes/{}",
        r.json["node_id"].as_str().unwrap()
    );
    // Each rename is a node.updated to every listener (~1 KiB each with a
    // long name): about 3.5 GB of notifications that nobody reads.
    let pad = "n".repeat(600);
    let mut conn = BufReader::new(srv.connect());
    let mut peak = 0;
    let started = Instant::now();
    for i in 0..3500 {
        let body = format!(r#"{{"name": "{pad}{i}"}}"#);
        // One write: a request in pieces would wait for delayed ACKs.
        let req = format!(
            "PUT {node} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        conn.get_mut().write_all(req.as_bytes()).unwrap();
        assert_eq!(read_response(&mut conn).unwrap().status, 200);
        if i % 250 == 0 {
            eprintln!("{i}: {:?} {} KiB", started.elapsed(), srv.rss_kib());
            peak = peak.max(srv.rss_kib());
            answers_at_once(&srv);
        }
        assert!(started.elapsed() < Duration::from_secs(120), "bounded");
    }
    peak = peak.max(srv.rss_kib());
    eprintln!(
        "1,000 non-reading listeners, 3,500 events: VmRSS {base} KiB at rest, peak {peak} KiB"
    );
    assert!(peak < 256 * 1024, "VmRSS {peak} KiB");
    answers_at_once(&srv);
    assert!(srv.log().contains("memory budget"), "nobody was dropped");
    drop(listeners);
}

#[test]
fn issue_16_names_and_counts_gns3_would_never_reach_are_400s() {
    let srv = Server::start(&[]);
    let long = "x".repeat(1025);
    let r = srv.post("/v1/projects", &format!(r#"{{"name": "{long}"}}"#));
    r.assert_error(400, "limit of 1024");
    let p = srv.project();
    let r = srv.post(
        &format!("/v1/projects/{p}/vpcs/vms"),
        &format!(r#"{{"name": "{long}"}}"#),
    );
    r.assert_error(400, "limit of 1024");
    let r = srv.post(
        &format!("/v1/projects/{p}/dynamips/devices"),
        &format!(r#"{{"name": "{long}", "device_type": "ethernet_hub"}}"#),
    );
    r.assert_error(400, "limit of 1024");
    let (vm, _) = srv.vm(&p, "PC1");
    let r = srv.req(
        "PUT",
        &crate::util::vm_url(&p, &vm, ""),
        &format!(r#"{{"name": "{long}"}}"#),
    );
    r.assert_error(400, "limit of 1024");
    assert!(!srv.get("/").text.contains(&long));
}

#[test]
fn issue_16_half_sent_bodies_count_against_the_memory_budget_too() {
    let srv = Server::start(&["--memory-budget", "8"]);
    let body = vec![b'x'; 900_000];
    let conns: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = srv.connect();
            s.write_all(
                b"POST /v1/projects HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n",
            )
            .unwrap();
            s.write_all(&body).unwrap();
            s
        })
        .collect();
    // 18 MB held for clients that never finish: past 8 MiB, the biggest
    // holders are let go until the rest fits (about 9 of 20 stay).
    let dropped = || srv.log().matches("memory budget").count();
    assert!(
        crate::util::wait_for(10, || dropped() >= 11),
        "{} dropped",
        dropped()
    );
    answers_at_once(&srv);
    assert!(dropped() <= 12, "{} dropped", dropped());
    drop(conns);
}

/// Out of descriptors, a node's console cannot be bound on any port: the
/// create says so at once (a 503 naming the open-file limit, or a 409 for
/// the node's directory), instead of trying every port of the range and
/// calling them taken; once nodes go, creates work again.
#[test]
fn consoles_past_the_open_file_limit_are_refused_with_the_reason() {
    // Fewer descriptors than the 40 console ports of a test server.
    let srv = Server::start_limited(36);
    let p = srv.project();
    let mut made = Vec::new();
    let refused = loop {
        let r = srv.post(
            &format!("/v1/projects/{p}/vpcs/vms"),
            &format!(r#"{{"name": "PC{}"}}"#, made.len()),
        );
        if r.status != 201 {
            break r;
        }
        made.push(r.json["vm_id"].as_str().unwrap().to_string());
        assert!(
            made.len() < 64,
            "64 descriptors cannot hold {} consoles",
            made.len()
        );
    };
    // The console's bind (503) or the node's directory (409) meets the
    // limit first; either way the answer names it, not a port "in use".
    let msg = refused.json["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("open-file limit") || msg.contains("Too many open files"),
        "{}",
        refused.text
    );
    assert!(!msg.contains("No free console port"), "{msg}");
    for vm in made.iter().take(5) {
        assert_eq!(srv.req("DELETE", &vm_url(&p, vm, ""), "").status, 204);
    }
    let again = srv.post(
        &format!("/v1/projects/{p}/vpcs/vms"),
        r#"{"name": "again"}"#,
    );
    assert_eq!(again.status, 201, "{}", again.text);
}
