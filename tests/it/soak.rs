//! A bounded soak: a minute of mixed API calls, console sessions and tunnel
//! traffic, then a check that nothing leaked.

use crate::util::{Console, Server, children, read_response, wait_for};
use std::io::{BufReader, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SOAK: Duration = Duration::from_secs(60);
const MAX_ROUNDS: usize = 200;
/// Memory that may stay after the soak (allocator caches, grown tables).
const RSS_MARGIN_KIB: u64 = 16 * 1024;

fn lab_round(srv: &Server, round: usize) {
    let p = srv.project();
    let (v1, c1) = srv.vm(&p, "A");
    let (v2, c2) = srv.vm(&p, "B");
    let udp = |s: &Server| {
        s.post(&format!("/v1/projects/{p}/ports/udp"), "").json["udp_port"]
            .as_u64()
            .unwrap()
    };
    let (l1, l2) = (udp(srv), udp(srv));
    for (v, l, r) in [(&v1, l1, l2), (&v2, l2, l1)] {
        let nio =
            format!(r#"{{"type": "nio_udp", "lport": {l}, "rhost": "127.0.0.1", "rport": {r}}}"#);
        assert_eq!(
            srv.post(
                &format!("/v1/projects/{p}/vpcs/vms/{v}/adapters/0/ports/0/nio"),
                &nio
            )
            .status,
            201
        );
        assert_eq!(
            srv.post(&format!("/v1/projects/{p}/vpcs/vms/{v}/start"), "")
                .status,
            204
        );
    }
    let mut a = Console::open(c1);
    a.send("ip 10.7.0.1/24\r\n");
    assert!(
        a.expect("10.7.0.1 255.255.255.0", 10),
        "round {round}: {}",
        a.text()
    );
    let mut b = Console::open(c2);
    let mut b2 = Console::open(c2);
    b.send("ip 10.7.0.2/24\r\n");
    assert!(b.expect("10.7.0.2 255.255.255.0", 10));
    let mark = b.seen.len();
    b.send("ping 10.7.0.1 -c 2\r\n");
    assert!(
        b.expect_after(mark, "ttl=64", 10),
        "round {round}: {}",
        b.text()
    );
    assert!(b2.expect("ttl=64", 10), "the second client sees the ping");
    b.send("disconnect\r\n");
    assert!(b.closed_within(5));
    match round % 3 {
        0 => assert_eq!(
            srv.post(&format!("/v1/projects/{p}/vpcs/vms/{v1}/stop"), "")
                .status,
            204
        ),
        1 => assert_eq!(
            srv.req("DELETE", &format!("/v1/projects/{p}/vpcs/vms/{v2}"), "")
                .status,
            204
        ),
        _ => assert_eq!(
            srv.post(&format!("/v1/projects/{p}/vpcs/vms/{v1}/reload"), "")
                .status,
            204
        ),
    }
    let status = if round.is_multiple_of(2) {
        srv.post(&format!("/v1/projects/{p}/close"), "").status
    } else {
        srv.req("DELETE", &format!("/v1/projects/{p}"), "").status
    };
    assert_eq!(status, 204);
}

/// Keep-alive API traffic on another connection for the whole soak.
fn api_chatter(
    srv: &Server,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    let s = srv.connect();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(s.try_clone().unwrap());
        let mut n = 0u64;
        let mut project = String::new();
        while !stop.load(Ordering::Relaxed) && n < 2_000_000 {
            let req = match n % 4 {
                0 => "GET /v1/version HTTP/1.1\r\n\r\n".to_string(),
                1 => {
                    "POST /v1/projects HTTP/1.1\r\nContent-Length: 19\r\n\r\n{\"temporary\": true}"
                        .to_string()
                }
                2 => "GET /v1/projects/not-a-uuid HTTP/1.1\r\n\r\n".to_string(),
                _ => format!("DELETE /v1/projects/{project} HTTP/1.1\r\n\r\n"),
            };
            (&s).write_all(req.as_bytes()).unwrap();
            let r = read_response(&mut reader).expect("answer");
            assert!(r.status < 500, "{}", r.text);
            if let Some(id) = r.json["project_id"].as_str() {
                project = id.to_string();
            }
            n += 1;
        }
        count.store(n, Ordering::Relaxed);
    })
}

#[test]
fn a_minute_of_mixed_load_leaks_nothing() {
    let srv = Server::start(&["--quiet"]);
    for _ in 0..50 {
        srv.get("/v1/version");
    }
    let (fds0, rss0) = (srv.fds(), srv.rss_kib());
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let chatter = api_chatter(&srv, stop.clone(), count.clone());
    let started = Instant::now();
    let mut rounds = 0;
    while started.elapsed() < SOAK && rounds < MAX_ROUNDS {
        lab_round(&srv, rounds);
        rounds += 1;
    }
    stop.store(true, Ordering::Relaxed);
    chatter.join().unwrap();
    eprintln!(
        "soak: {rounds} lab rounds and {} API requests in {:?}",
        count.load(Ordering::Relaxed),
        started.elapsed()
    );
    assert!(
        wait_for(5, || children(srv.pid()).is_empty()),
        "processes left: {:?}",
        children(srv.pid())
    );
    assert!(
        wait_for(5, || srv.fds() <= fds0 + 1),
        "fds: {} at start, {} now",
        fds0,
        srv.fds()
    );
    for port in srv.udp.0..=srv.udp.1 {
        assert!(
            std::net::UdpSocket::bind(("0.0.0.0", port)).is_ok(),
            "UDP port {port} still bound"
        );
    }
    for port in srv.console.0..=srv.console.1 {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "console port {port} still bound"
        );
    }
    let rss = srv.rss_kib();
    eprintln!("soak: VmRSS {rss0} KiB at start, {rss} KiB at the end");
    assert!(
        rss < rss0 + RSS_MARGIN_KIB,
        "VmRSS grew from {rss0} to {rss} KiB"
    );
}
