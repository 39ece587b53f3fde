//! Built-in PCs at scale: creation, start, consoles, memory, idle CPU,
//! a switch full of PCs pinging.

use super::*;

/// Create `n` PCs in project `p`, pipelined 256 at a time on one
/// connection; their (id, console).
pub(crate) fn create_pcs(
    srv: &Server,
    p: &str,
    n: usize,
    script: impl Fn(usize) -> String,
) -> Vec<(String, u16)> {
    let mut conn = Keepalive::new(srv.addr);
    let mut out = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(256) {
        for &i in chunk {
            let body = serde_json::json!({"name": format!("pc{i}"), "startup_script": script(i)})
                .to_string();
            write!(
                conn.s,
                "POST /v1/projects/{p}/vpcs/vms HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }
        for _ in chunk {
            let (st, vm) = conn.read();
            assert_eq!(st, 201, "{vm}");
            out.push((
                vm["vm_id"].as_str().unwrap().to_string(),
                vm["console"].as_u64().unwrap() as u16,
            ));
        }
    }
    out
}

/// How many of `consoles` show `needle`: connected 1,000 at a time (the
/// server's descriptors stay within its limit), each batch read as its
/// bytes come (10 s at most).
pub(crate) fn consoles_show(consoles: &[u16], needle: &str) -> usize {
    let mut shown = 0;
    for batch in consoles.chunks(1000) {
        let mut conns: Vec<(std::net::TcpStream, Vec<u8>, bool)> = batch
            .iter()
            .filter_map(|c| std::net::TcpStream::connect(("127.0.0.1", *c)).ok())
            .map(|s| {
                s.set_nonblocking(true).unwrap();
                (s, Vec::new(), false)
            })
            .collect();
        let end = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 4096];
        while Instant::now() < end && conns.iter().any(|c| !c.2) {
            for (s, seen, done) in conns.iter_mut().filter(|c| !c.2) {
                while let Ok(k) = s.read(&mut buf) {
                    if k == 0 {
                        break;
                    }
                    seen.extend_from_slice(&buf[..k]);
                }
                *done = String::from_utf8_lossy(seen).contains(needle);
            }
        }
        shown += conns.iter().filter(|c| c.2).count();
    }
    shown
}

/// Start every PC, pipelined on one connection; how many answered 204.
pub(crate) fn start_pcs(srv: &Server, p: &str, pcs: &[(String, u16)]) -> usize {
    let mut conn = Keepalive::new(srv.addr);
    for (id, _) in pcs {
        write!(
            conn.s,
            "POST /v1/projects/{p}/vpcs/vms/{id}/start HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
    }
    (0..pcs.len()).filter(|_| conn.read().0 == 204).count()
}

/// Built-in PCs (`--pc-engine builtin`): 10,000 created and started with
/// every console answering; memory per PC; idle CPU with them running;
/// 1,000 PCs on one switch each pinging one target once.
pub(crate) fn pcs() {
    let srv = Server::start_tmpfs(&[
        "--pc-engine",
        "builtin",
        "--console-ports",
        "20000-39999",
        "--udp-ports",
        "40000-60000",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let t0 = srv.cpu_ticks();
    std::thread::sleep(Duration::from_secs(10));
    let empty_ticks = srv.cpu_ticks() - t0;
    let before = srv.rss_kib();
    let p = srv.call("POST", "/v1/projects", "{}").1["project_id"]
        .as_str()
        .unwrap()
        .to_string();
    let n = 10_000;
    let started = Instant::now();
    let pcs = create_pcs(&srv, &p, n, |_| String::new());
    let created = started.elapsed();
    let ok = start_pcs(&srv, &p, &pcs);
    let answered = started.elapsed();
    let ports: Vec<u16> = pcs.iter().map(|(_, c)| *c).collect();
    let consoles = consoles_show(&ports, "VPCS> ");
    let all = started.elapsed();
    let after = srv.rss_kib();
    println!(
        "pcs: {n} built-in PCs: created in {created:.2?}, {ok} started by {answered:.2?}, {consoles} consoles answered by {all:.2?}"
    );
    println!(
        "pcs: VmRSS {before} -> {after} KiB: {} bytes per started PC (console listener and history included)",
        (after.saturating_sub(before)) * 1024 / n as u64
    );
    let t0 = srv.cpu_ticks();
    std::thread::sleep(Duration::from_secs(10));
    let busy_ticks = srv.cpu_ticks() - t0;
    println!(
        "pcs: server CPU over 10 s: {empty_ticks} ticks empty, {busy_ticks} ticks with {n} started PCs"
    );
    srv.call("DELETE", &format!("/v1/projects/{p}"), "");

    // 1,000 PCs and a target on one switch; every PC pings the target once.
    let p = srv.call("POST", "/v1/projects", "{}").1["project_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, sw) = srv.call(
        "POST",
        &format!("/v1/projects/{p}/dynamips/devices"),
        r#"{"name": "SW", "device_type": "ethernet_switch"}"#,
    );
    let sw = sw["device_id"].as_str().unwrap().to_string();
    let m = 1_000;
    let ip = |i: usize| format!("10.1.{}.{}", (i + 2) / 250, (i + 2) % 250 + 1);
    let mut pcs = create_pcs(&srv, &p, m, |i| format!("ip {}/16\n", ip(i)));
    pcs.extend(create_pcs(&srv, &p, 1, |_| "ip 10.1.0.1/16\n".into()));
    for (port, (id, _)) in pcs.iter().enumerate() {
        let l = srv
            .call("POST", &format!("/v1/projects/{p}/ports/udp"), "")
            .1["udp_port"]
            .as_u64()
            .unwrap();
        let r = srv
            .call("POST", &format!("/v1/projects/{p}/ports/udp"), "")
            .1["udp_port"]
            .as_u64()
            .unwrap();
        let nio =
            format!(r#"{{"type": "nio_udp", "lport": {l}, "rhost": "127.0.0.1", "rport": {r}}}"#);
        srv.call(
            "POST",
            &format!("/v1/projects/{p}/vpcs/vms/{id}/adapters/0/ports/0/nio"),
            &nio,
        );
        let dev = format!(
            r#"{{"nio": {{"type": "nio_udp", "lport": {r}, "rhost": "127.0.0.1", "rport": {l}}}}}"#
        );
        let (st, _) = srv.call(
            "POST",
            &format!("/v1/projects/{p}/dynamips/devices/{sw}/ports/{port}/nio"),
            &dev,
        );
        assert_eq!(st, 201);
    }
    let booted = Instant::now();
    start_pcs(&srv, &p, &pcs);
    // Every startup script's duplicate-address check takes 3 s, in parallel.
    let ports: Vec<u16> = pcs.iter().map(|(_, c)| *c).collect();
    let ready = consoles_show(&ports, "255.255.0.0");
    println!(
        "pcs: {} PCs on one switch, {ready} addressed in {:.2?}",
        m + 1,
        booted.elapsed()
    );
    let mut consoles: Vec<std::net::TcpStream> = pcs[..m]
        .iter()
        .map(|(_, c)| {
            let s = std::net::TcpStream::connect(("127.0.0.1", *c)).unwrap();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    // Drain the greetings first.
    std::thread::sleep(Duration::from_millis(500));
    let mut buf = [0u8; 65536];
    for s in &mut consoles {
        while s.read(&mut buf).is_ok_and(|k| k > 0) {}
    }
    let go = Instant::now();
    for s in &mut consoles {
        s.write_all(b"ping 10.1.0.1 -c 1\r\n").unwrap();
    }
    let mut seen = vec![Vec::new(); m];
    let mut done = vec![false; m];
    let mut last = go.elapsed();
    while go.elapsed() < Duration::from_secs(20) && done.iter().any(|d| !d) {
        for (i, s) in consoles.iter_mut().enumerate() {
            if done[i] {
                continue;
            }
            while let Ok(k) = s.read(&mut buf) {
                if k == 0 {
                    break;
                }
                seen[i].extend_from_slice(&buf[..k]);
            }
            if String::from_utf8_lossy(&seen[i]).contains("icmp_seq=1 ttl=64") {
                done[i] = true;
                last = go.elapsed();
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let replies = done.iter().filter(|d| **d).count();
    println!("pcs: {replies} of {m} PCs got their ping reply; the last after {last:.2?}");
    srv.call("DELETE", &format!("/v1/projects/{p}"), "");
}

/// `requests` on one keep-alive connection, 256 in flight at a time;
/// each answer's status and body.
fn pipelined(srv: &Server, requests: &[String]) -> Vec<(u16, serde_json::Value)> {
    let mut conn = Keepalive::new(srv.addr);
    let mut out = Vec::with_capacity(requests.len());
    for chunk in requests.chunks(256) {
        for r in chunk {
            conn.s.write_all(r.as_bytes()).unwrap();
        }
        out.extend(chunk.iter().map(|_| conn.read()));
    }
    out
}

/// 100,000 built-in PCs in one project over `/v2/compute`, without
/// consoles (a console is a listening socket, and the open-file limit is
/// 20,000 here): time to create them all, then to start them all, and the
/// server's memory per started PC.
pub(crate) fn pcs100k() {
    let srv = Server::start_tmpfs(&["--pc-engine", "builtin"]);
    std::thread::sleep(Duration::from_millis(300));
    let before = srv.rss_kib();
    let p = "a1b2c3d4-0000-4000-8000-000000100000";
    let (st, _) = srv.call(
        "POST",
        "/v2/compute/projects",
        &format!(r#"{{"name": "pcs100k", "project_id": "{p}"}}"#),
    );
    assert_eq!(st, 201);
    let n = 100_000;
    let base = format!("/v2/compute/projects/{p}/vpcs/nodes");
    let creates: Vec<String> = (0..n)
        .map(|i| {
            let body = format!(r#"{{"name": "pc{i}", "console_type": "none"}}"#);
            format!(
                "POST {base} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        })
        .collect();
    let started = Instant::now();
    let made = pipelined(&srv, &creates);
    let created = started.elapsed();
    assert!(made.iter().all(|(st, _)| *st == 201), "{:?}", made.first());
    let starts: Vec<String> = made
        .iter()
        .map(|(_, node)| {
            let id = node["node_id"].as_str().unwrap();
            format!("POST {base}/{id}/start HTTP/1.1\r\nContent-Length: 2\r\n\r\n{{}}")
        })
        .collect();
    let t = Instant::now();
    let ok = pipelined(&srv, &starts)
        .iter()
        .filter(|(st, _)| *st == 200 || *st == 204)
        .count();
    let start_time = t.elapsed();
    let after = srv.rss_kib();
    println!(
        "pcs100k: {n} built-in PCs over /v2/compute, no consoles: created in {created:.2?}, {ok} started in {start_time:.2?} more; VmRSS {before} -> {after} KiB ({} bytes per started PC)",
        (after.saturating_sub(before)) * 1024 / n as u64
    );
    let t = Instant::now();
    let (st, _) = srv.call("DELETE", &format!("/v2/compute/projects/{p}"), "");
    println!("pcs100k: project deleted in {:.2?} ({st})", t.elapsed());
}
