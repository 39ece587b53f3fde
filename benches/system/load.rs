//! API load, idle cost and VM scale.

use super::*;

pub(crate) fn idle() {
    let srv = Server::start(&[]);
    std::thread::sleep(Duration::from_millis(300));
    let (rss, ticks) = (srv.rss_kib(), srv.cpu_ticks());
    let pid = srv.child.id();
    let (anon, file) = (status_field(pid, "RssAnon:"), status_field(pid, "RssFile:"));
    // The proportional share: file pages count divided by the processes
    // that map them (libc's are everyone's).
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    let pss: u64 = rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    std::thread::sleep(Duration::from_secs(10));
    let used = srv.cpu_ticks() - ticks;
    println!(
        "idle: VmRSS {rss} KiB after start ({anon} KiB its own: RssAnon; {file} KiB mapped \
         file pages: RssFile, the binary's and the shared libraries'; PSS {pss} KiB); \
         CPU over 10 s idle: {used} ticks ({} ms)",
        used * 10
    );
}

/// Closed-loop load: `conns` keep-alive connections, each with one request in
/// flight, driven from one thread with mio, for `dur` or `limit` answers.
/// Returns (answers, elapsed, latencies).
pub(crate) fn drive(
    addr: SocketAddr,
    conns: usize,
    dur: Duration,
    limit: u64,
    next: impl FnMut(usize) -> Vec<u8>,
) -> (u64, Duration, Vec<Duration>) {
    drive_seen(addr, conns, dur, limit, next, |_| {})
}

/// [`drive`], showing each whole response to `seen`. A connection whose
/// `next` request is empty is done: it stays idle, and the server may close
/// it.
pub(crate) fn drive_seen(
    addr: SocketAddr,
    conns: usize,
    dur: Duration,
    limit: u64,
    mut next: impl FnMut(usize) -> Vec<u8>,
    mut seen: impl FnMut(&[u8]),
) -> (u64, Duration, Vec<Duration>) {
    let mut poll = Poll::new().unwrap();
    let mut streams: Vec<(TcpStream, Vec<u8>, Instant)> = Vec::new();
    let mut done = Vec::with_capacity(conns);
    for i in 0..conns {
        let mut s = TcpStream::from_std({
            let s = std::net::TcpStream::connect(addr).unwrap();
            s.set_nonblocking(true).unwrap();
            s.set_nodelay(true).unwrap();
            s
        });
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE)
            .unwrap();
        let req = next(i);
        done.push(req.is_empty());
        s.write_all(&req).unwrap();
        streams.push((s, Vec::new(), Instant::now()));
    }
    let mut lat = Vec::with_capacity(1 << 20);
    let mut events = Events::with_capacity(1024);
    let started = Instant::now();
    let end = started + dur;
    let mut buf = vec![0u8; 65536];
    while Instant::now() < end && (lat.len() as u64) < limit.min(50_000_000) {
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        for ev in events.iter() {
            let i = ev.token().0;
            loop {
                let (s, acc, sent) = &mut streams[i];
                match s.read(&mut buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Ok(0) | Err(_) if done[i] => {
                        poll.registry().deregister(s).unwrap();
                        break;
                    }
                    Ok(0) => panic!("server closed a load connection"),
                    Ok(n) => {
                        acc.extend_from_slice(&buf[..n]);
                        while let Some(len) = response_len(acc) {
                            seen(&acc[..len]);
                            acc.drain(..len);
                            lat.push(sent.elapsed());
                            *sent = Instant::now();
                            let req = next(i);
                            done[i] = req.is_empty();
                            s.write_all(&req).unwrap();
                        }
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
    }
    (lat.len() as u64, started.elapsed(), lat)
}

/// Length of the first complete response in `buf`, if there is one.
pub(crate) fn response_len(buf: &[u8]) -> Option<usize> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..head_end]).ok()?;
    // Any case: gns3-server 3.0 (uvicorn, h11) writes `content-length`.
    let len: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.trim().parse().unwrap());
    (buf.len() >= head_end + len).then_some(head_end + len)
}

pub(crate) fn report(name: &str, conns: usize, (n, dur, mut lat): (u64, Duration, Vec<Duration>)) {
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "load: {name:<14} conns {conns:>2}: {:>8.0} req/s  p50 {:>7.1?}  p99 {:>7.1?}  p99.9 {:>7.1?}",
        n as f64 / dur.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        pct(0.999)
    );
}

/// [`report`] a run, then the server's CPU time per answer over it (user
/// and system, from `/proc`, in 10 ms ticks: runs last seconds).
pub(crate) fn with_cpu(
    srv: &Server,
    name: &str,
    conns: usize,
    run: impl FnOnce() -> (u64, Duration, Vec<Duration>),
) {
    let ticks = srv.cpu_ticks();
    let (n, dur, lat) = run();
    let used = srv.cpu_ticks() - ticks;
    report(name, conns, (n, dur, lat));
    println!(
        "load: {name:<14} conns {conns:>2}: server CPU {:.2} µs per answer",
        (used * 10_000) as f64 / n.max(1) as f64
    );
}

pub(crate) fn load() {
    let srv = Server::start(&["--console-ports", "40000-60000"]);
    load_on(&srv, true);
    drop(srv);
    let srv = Server::start_tmpfs(&["--console-ports", "40000-60000"]);
    println!("load: (projects on tmpfs from here)");
    load_on(&srv, false);
}

pub(crate) fn load_on(srv: &Server, reads: bool) {
    let (_, p) = srv.call("POST", "/v1/projects", r#"{"name": "load"}"#);
    let pid = p["project_id"].as_str().unwrap().to_string();
    let (_, vm) = srv.call(
        "POST",
        &format!("/v1/projects/{pid}/vpcs/vms"),
        r#"{"name": "PC"}"#,
    );
    let vid = vm["vm_id"].as_str().unwrap().to_string();
    let dur = Duration::from_secs(5);
    let version = b"GET /v1/version HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    let get_vm =
        format!("GET /v1/projects/{pid}/vpcs/vms/{vid} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes();
    for conns in [1, 64].into_iter().filter(|_| reads) {
        with_cpu(srv, "GET version", conns, || {
            drive(srv.addr, conns, dur, u64::MAX, |_| version.clone())
        });
        with_cpu(srv, "GET vm", conns, || {
            drive(srv.addr, conns, dur, u64::MAX, |_| get_vm.clone())
        });
    }
    // What a 2.2 and a 3.0 controller ask first, side by side.
    for (name, path) in [
        ("GET v2 caps", "/v2/compute/capabilities"),
        ("GET v3 caps", "/v3/compute/capabilities"),
    ] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes();
        if reads {
            with_cpu(srv, name, 64, || {
                drive(srv.addr, 64, dur, u64::MAX, |_| req.clone())
            });
        }
    }
    // VM creation: bounded by console ports and MAC offsets (255 per project),
    // so each connection fills projects of its own, up to 10,000 VMs in all.
    for conns in [1, 64] {
        let per_conn = 10_000 / conns as u64;
        let mut made = vec![0u64; conns];
        let projects: Vec<Vec<String>> = (0..conns)
            .map(|_| {
                (0..per_conn.div_ceil(250))
                    .map(|_| {
                        srv.call("POST", "/v1/projects", "{}").1["project_id"]
                            .as_str()
                            .unwrap()
                            .to_string()
                    })
                    .collect()
            })
            .collect();
        let total = per_conn * conns as u64;
        let run = drive(srv.addr, conns, Duration::from_secs(60), total, |i| {
            let k = made[i].min(per_conn - 1);
            made[i] += 1;
            let p = &projects[i][(k / 250) as usize];
            let body = format!(r#"{{"name": "pc{k}"}}"#);
            format!(
                "POST /v1/projects/{p}/vpcs/vms HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        });
        println!(
            "load: create vm conns {conns:>2}: {} VMs in {:.2?}",
            run.0, run.1
        );
        report("create vm", conns, run);
        for ps in projects {
            for p in ps {
                srv.call("DELETE", &format!("/v1/projects/{p}"), "");
            }
        }
    }
    if which("wrk") {
        let out = Command::new("wrk")
            .args([
                "-t2",
                "-c64",
                "-d5s",
                "--latency",
                &format!("http://{}/v1/version", srv.addr),
            ])
            .output()
            .unwrap();
        println!(
            "load: wrk GET /v1/version, 64 connections:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

pub(crate) fn scale() {
    let srv = Server::start_tmpfs(&[
        "--console-ports",
        "40000-60000",
        "--udp-ports",
        "10000-20000",
    ]);
    std::thread::sleep(Duration::from_millis(200));
    let before = srv.rss_kib();
    let started = Instant::now();
    let mut conn = Keepalive::new(srv.addr);
    let mut n = 0;
    let mut projects = Vec::new();
    while n < 10_000 {
        let p = conn.call("POST", "/v1/projects", "{}").1["project_id"]
            .as_str()
            .unwrap()
            .to_string();
        for _ in 0..250 {
            if n == 10_000 {
                break;
            }
            let (st, _) = conn.call(
                "POST",
                &format!("/v1/projects/{p}/vpcs/vms"),
                &format!(r#"{{"name": "pc{n}"}}"#),
            );
            assert_eq!(st, 201);
            n += 1;
        }
        projects.push(p);
    }
    let t = started.elapsed();
    let after = srv.rss_kib();
    println!(
        "scale: created {n} VMs in {t:.2?} ({:.0}/s); VmRSS {before} -> {after} KiB ({} bytes per VM)",
        n as f64 / t.as_secs_f64(),
        (after.saturating_sub(before)) * 1024 / n as u64
    );
    for p in projects {
        conn.call("DELETE", &format!("/v1/projects/{p}"), "");
    }
    drop(conn);

    // 200 real VPCS processes with NIOs: time until every console answers.
    let p = srv.call("POST", "/v1/projects", "{}").1["project_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut vms = Vec::new();
    for i in 0..200 {
        let (_, vm) = srv.call(
            "POST",
            &format!("/v1/projects/{p}/vpcs/vms"),
            &format!(r#"{{"name": "pc{i}"}}"#),
        );
        let id = vm["vm_id"].as_str().unwrap().to_string();
        let l = srv
            .call("POST", &format!("/v1/projects/{p}/ports/udp"), "")
            .1["udp_port"]
            .as_u64()
            .unwrap();
        let nio = format!(
            r#"{{"type": "nio_udp", "lport": {l}, "rhost": "127.0.0.1", "rport": {}}}"#,
            l + 1
        );
        srv.call(
            "POST",
            &format!("/v1/projects/{p}/vpcs/vms/{id}/adapters/0/ports/0/nio"),
            &nio,
        );
        vms.push((id, vm["console"].as_u64().unwrap() as u16));
    }
    // All starts pipelined on one connection: each parks on its own VM, so
    // they run concurrently and the answers come back in order.
    let started = Instant::now();
    let mut conn = Keepalive::new(srv.addr);
    for (id, _) in &vms {
        write!(
            conn.s,
            "POST /v1/projects/{p}/vpcs/vms/{id}/start HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
    }
    let ok = (0..vms.len()).filter(|_| conn.read().0 == 204).count();
    let answered = started.elapsed();
    let mut prompts = 0;
    for (_, console) in &vms {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", *console)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("VPCS>") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => seen.extend_from_slice(&buf[..k]),
            }
        }
        prompts += String::from_utf8_lossy(&seen).contains("VPCS>") as usize;
    }
    let running = children(srv.child.id());
    println!(
        "scale: 200 VPCS with NIOs: {ok} starts answered 204 in {answered:.2?}; {prompts} consoles show a prompt; {running} vpcs running"
    );
    let started = Instant::now();
    srv.call("POST", &format!("/v1/projects/{p}/close"), "");
    println!(
        "scale: project closed in {:.2?}; {} vpcs left",
        started.elapsed(),
        children(srv.child.id())
    );
}

pub(crate) fn children(pid: u32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .map(|s| {
                    s[s.rfind(')').unwrap() + 2..].split_whitespace().nth(1)
                        == Some(&pid.to_string())
                })
                .unwrap_or(false)
        })
        .count()
}
