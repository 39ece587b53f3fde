//! System benchmarks against the real server: API load, VM scale, tunnel
//! relay, idle cost. Run with `cargo bench --bench system` (all sections) or
//! `cargo bench --bench system -- load|scale|relay|switch|idle`.
//!
//! Figures are printed; nothing is asserted. Every loop is bounded in time and
//! count, and all traffic stays on loopback.

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// When the bench binary is started as a stand-in for VPCS (relay section),
/// it answers the console with a prompt and echoes every frame it gets.
const ECHO_ENV: &str = "NANOLAB_BENCH_ECHO";

fn main() {
    if std::env::var_os(ECHO_ENV).is_some() {
        return echo_vpcs();
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |s: &str| args.is_empty() || args.iter().any(|a| a == s);
    let _ = nanolab::sys::raise_nofile_limit();
    println!("machine: {} cores, {}", cores(), cpu_model());
    if want("idle") {
        idle();
    }
    if want("load") {
        load();
    }
    if args.iter().any(|a| a == "create") {
        let srv = Server::start_tmpfs(&["--console-ports", "40000-60000"]);
        println!("create: server pid {}", srv.child.id());
        std::thread::sleep(Duration::from_secs(2));
        load_on(&srv, false);
    }
    if want("scale") {
        scale();
    }
    if want("relay") {
        relay();
    }
    if want("switch") {
        switch();
    }
    if want("pcs") {
        pcs();
    }
}

/// Create `n` PCs in project `p`, pipelined 256 at a time on one
/// connection; their (id, console).
fn create_pcs(
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
fn consoles_show(consoles: &[u16], needle: &str) -> usize {
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
fn start_pcs(srv: &Server, p: &str, pcs: &[(String, u16)]) -> usize {
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
fn pcs() {
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

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

// ---- the server under test ---------------------------------------------------

struct Server {
    child: Child,
    addr: SocketAddr,
    dir: std::path::PathBuf,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        Self::start_at(&std::env::temp_dir(), extra)
    }

    /// Projects on tmpfs: separates nanolab's own cost from the file
    /// system's (mkdir on a busy ext4 costs hundreds of microseconds).
    fn start_tmpfs(extra: &[&str]) -> Server {
        let shm = std::path::Path::new("/dev/shm");
        Self::start_at(
            if shm.is_dir() {
                shm
            } else {
                std::path::Path::new("/tmp")
            },
            extra,
        )
    }

    fn start_at(base: &std::path::Path, extra: &[&str]) -> Server {
        let dir = base.join(format!(
            "nanolab-bench-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_nanolab"))
            .args(["--port", "0", "--quiet", "--projects-dir"])
            .arg(dir.join("projects"))
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start nanolab");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .rsplit("http://")
            .next()
            .unwrap()
            .parse()
            .unwrap();
        Server { child, addr, dir }
    }

    fn rss_kib(&self) -> u64 {
        status_field(self.child.id(), "VmRSS:")
    }

    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
            .split_whitespace()
            .collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// One request on a fresh connection; returns (status, body).
    fn call(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let mut s = std::net::TcpStream::connect(self.addr).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let status = text[9..12].parse().unwrap();
        let json = text
            .split("\r\n\r\n")
            .nth(1)
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or_default();
        (status, json)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn status_field(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with(field))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

// ---- idle cost -----------------------------------------------------------------

fn idle() {
    let srv = Server::start(&[]);
    std::thread::sleep(Duration::from_millis(300));
    let (rss, ticks) = (srv.rss_kib(), srv.cpu_ticks());
    std::thread::sleep(Duration::from_secs(10));
    let used = srv.cpu_ticks() - ticks;
    println!(
        "idle: VmRSS {rss} KiB after start; CPU over 10 s idle: {used} ticks ({} ms)",
        used * 10
    );
}

// ---- API load --------------------------------------------------------------------

/// Closed-loop load: `conns` keep-alive connections, each with one request in
/// flight, driven from one thread with mio, for `dur` or `limit` answers.
/// Returns (answers, elapsed, latencies).
fn drive(
    addr: SocketAddr,
    conns: usize,
    dur: Duration,
    limit: u64,
    mut next: impl FnMut(usize) -> Vec<u8>,
) -> (u64, Duration, Vec<Duration>) {
    let mut poll = Poll::new().unwrap();
    let mut streams: Vec<(TcpStream, Vec<u8>, Instant)> = Vec::new();
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
                    Ok(0) => panic!("server closed a load connection"),
                    Ok(n) => {
                        acc.extend_from_slice(&buf[..n]);
                        while let Some(len) = response_len(acc) {
                            acc.drain(..len);
                            lat.push(sent.elapsed());
                            *sent = Instant::now();
                            let req = next(i);
                            s.write_all(&req).unwrap();
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
        }
    }
    (lat.len() as u64, started.elapsed(), lat)
}

/// Length of the first complete response in `buf`, if there is one.
fn response_len(buf: &[u8]) -> Option<usize> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..head_end]).ok()?;
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map_or(0, |v| v.trim().parse().unwrap());
    (buf.len() >= head_end + len).then_some(head_end + len)
}

fn report(name: &str, conns: usize, (n, dur, mut lat): (u64, Duration, Vec<Duration>)) {
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

fn load() {
    let srv = Server::start(&["--console-ports", "40000-60000"]);
    load_on(&srv, true);
    drop(srv);
    let srv = Server::start_tmpfs(&["--console-ports", "40000-60000"]);
    println!("load: (projects on tmpfs from here)");
    load_on(&srv, false);
}

fn load_on(srv: &Server, reads: bool) {
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
        report(
            "GET version",
            conns,
            drive(srv.addr, conns, dur, u64::MAX, |_| version.clone()),
        );
        report(
            "GET vm",
            conns,
            drive(srv.addr, conns, dur, u64::MAX, |_| get_vm.clone()),
        );
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

fn which(prog: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {prog}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

// ---- scale -----------------------------------------------------------------------

fn scale() {
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

fn children(pid: u32) -> usize {
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

/// A blocking keep-alive client for sequential calls.
struct Keepalive {
    s: std::net::TcpStream,
    r: BufReader<std::net::TcpStream>,
}

impl Keepalive {
    fn new(addr: SocketAddr) -> Self {
        let s = std::net::TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        let r = BufReader::new(s.try_clone().unwrap());
        Keepalive { s, r }
    }

    fn call(&mut self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        write!(
            self.s,
            "{method} {path} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        self.read()
    }

    fn read(&mut self) -> (u16, serde_json::Value) {
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        let status = line[9..12].parse().unwrap();
        let mut len = 0;
        loop {
            let mut h = String::new();
            self.r.read_line(&mut h).unwrap();
            if h == "\r\n" {
                break;
            }
            if let Some(v) = h.strip_prefix("Content-Length: ") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        self.r.read_exact(&mut body).unwrap();
        (status, serde_json::from_slice(&body).unwrap_or_default())
    }
}

// ---- relay -----------------------------------------------------------------------

/// Stand-in for VPCS in the relay bench: prints a prompt on its tty, then
/// sends every frame it receives on `-s PORT` back to `-t IP` `-c PORT`.
fn echo_vpcs() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .map(|i| args[i + 1].clone())
            .unwrap()
    };
    let sock = UdpSocket::bind(("0.0.0.0", arg("-s").parse::<u16>().unwrap())).unwrap();
    sock.connect((arg("-t").as_str(), arg("-c").parse::<u16>().unwrap()))
        .unwrap();
    print!("bench echo\r\nVPCS> ");
    std::io::stdout().flush().unwrap();
    let mut buf = [0u8; 2048];
    loop {
        if let Ok(n) = sock.recv(&mut buf) {
            let _ = sock.send(&buf[..n]);
        }
    }
}

/// Blast `size`-byte frames at `to` for `dur` from one socket and count what
/// comes back on the same socket. Returns (frames/s received, median RTT at low rate).
fn blast(sock: &UdpSocket, to: SocketAddr, size: usize, dur: Duration) -> (f64, Duration) {
    blast_frame(sock, to, &vec![0x5au8; size], dur)
}

/// [`blast`] with a given frame.
fn blast_frame(sock: &UdpSocket, to: SocketAddr, frame: &[u8], dur: Duration) -> (f64, Duration) {
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let frame = frame.to_vec();
    // Latency first: one frame at a time.
    let mut rtts = Vec::new();
    let mut buf = [0u8; 2048];
    for _ in 0..2000 {
        let t = Instant::now();
        sock.send_to(&frame, to).unwrap();
        if sock.recv(&mut buf).is_ok() {
            rtts.push(t.elapsed());
        }
    }
    rtts.sort_unstable();
    let rtt = rtts.get(rtts.len() / 2).copied().unwrap_or_default();
    // Throughput: keep a window of frames in flight; when nothing comes
    // back for a while, count the window as lost and open it again.
    sock.set_nonblocking(true).unwrap();
    let (mut sent, mut got, mut lost, mut dry) = (0u64, 0u64, 0u64, 0u32);
    let end = Instant::now() + dur;
    while Instant::now() < end {
        while sent - got - lost < 256 && sock.send_to(&frame, to).is_ok() {
            sent += 1;
        }
        let before = got;
        while sock.recv(&mut buf).is_ok() {
            got += 1;
        }
        if got == before {
            dry += 1;
            if dry > 1000 {
                lost = sent - got;
                dry = 0;
            }
            std::hint::spin_loop();
        } else {
            dry = 0;
        }
    }
    sock.set_nonblocking(false).unwrap();
    while sock.recv(&mut buf).is_ok() {}
    let _ = lost;
    (got as f64 / dur.as_secs_f64(), rtt)
}

/// An Ethernet switch (and a hub) between the load client on port 1 and a
/// reflector on port 2 that sends every frame back with its addresses
/// swapped: each frame crosses the device twice, learnt unicast both ways.
fn switch() {
    let srv = Server::start(&["--udp-ports", "15200-15300"]);
    let p = srv.call("POST", "/v1/projects", "{}").1["project_id"]
        .as_str()
        .unwrap()
        .to_string();
    let udp = |srv: &Server| {
        srv.call("POST", &format!("/v1/projects/{p}/ports/udp"), "")
            .1["udp_port"]
            .as_u64()
            .unwrap()
    };
    for kind in ["ethernet_switch", "ethernet_hub"] {
        let body = format!(r#"{{"name": "d", "device_type": "{kind}"}}"#);
        let d = srv
            .call("POST", &format!("/v1/projects/{p}/dynamips/devices"), &body)
            .1["device_id"]
            .as_str()
            .unwrap()
            .to_string();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let reflector = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (a, b) = (udp(&srv), udp(&srv));
        for (port, lport, peer) in [(1, a, &client), (2, b, &reflector)] {
            let nio = format!(
                r#"{{"nio": {{"type": "nio_udp", "lport": {lport}, "rhost": "127.0.0.1", "rport": {}}}}}"#,
                peer.local_addr().unwrap().port()
            );
            let url = format!("/v1/projects/{p}/dynamips/devices/{d}/ports/{port}/nio");
            assert_eq!(srv.call("POST", &url, &nio).0, 201);
        }
        reflector.connect(("127.0.0.1", b as u16)).unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            loop {
                if let Ok(n) = reflector.recv(&mut buf) {
                    if n >= 12 {
                        let (dst, src) = buf.split_at_mut(6);
                        dst.swap_with_slice(&mut src[..6]);
                    }
                    let _ = reflector.send(&buf[..n]);
                }
            }
        });
        let to: SocketAddr = format!("127.0.0.1:{a}").parse().unwrap();
        for size in [64, 1500] {
            let mut frame = vec![0u8; size];
            frame[..6].copy_from_slice(&[0x00, 0x50, 0x79, 0x66, 0x68, 0x02]);
            frame[6..12].copy_from_slice(&[0x00, 0x50, 0x79, 0x66, 0x68, 0x01]);
            frame[12..14].copy_from_slice(&[0x08, 0x00]);
            let (rate, rtt) = blast_frame(&client, to, &frame, Duration::from_secs(5));
            println!(
                "switch: {kind:>15}, {size:>4}-byte frames: {rate:>8.0} frames/s round trip (RTT {rtt:.1?})"
            );
        }
    }
}

/// The baseline: a bare blocking forwarder between a client-facing socket
/// and the echo, one thread per direction.
fn bare_forwarder(front: UdpSocket, back: UdpSocket, client: SocketAddr) {
    let (f2, b2) = (front.try_clone().unwrap(), back.try_clone().unwrap());
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        loop {
            // Errors (ICMP port unreachable) are not the end of the link.
            if let Ok(n) = f2.recv(&mut buf) {
                let _ = b2.send(&buf[..n]);
            }
        }
    });
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        loop {
            if let Ok(n) = back.recv(&mut buf) {
                let _ = front.send_to(&buf[..n], client);
            }
        }
    });
}

fn relay() {
    let me = std::env::current_exe().unwrap();
    let dir = std::env::temp_dir().join(format!("nanolab-bench-echo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wrapper = dir.join("echo-vpcs");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\n{ECHO_ENV}=1 exec {} \"$@\"\n", me.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();

    let srv = Server::start(&[
        "--vpcs",
        wrapper.to_str().unwrap(),
        "--no-console-sandbox",
        "--udp-ports",
        "15000-15100",
    ]);
    let p = srv.call("POST", "/v1/projects", "{}").1["project_id"]
        .as_str()
        .unwrap()
        .to_string();
    let vm = srv
        .call(
            "POST",
            &format!("/v1/projects/{p}/vpcs/vms"),
            r#"{"name": "echo"}"#,
        )
        .1;
    let id = vm["vm_id"].as_str().unwrap().to_string();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let lport = srv
        .call("POST", &format!("/v1/projects/{p}/ports/udp"), "")
        .1["udp_port"]
        .as_u64()
        .unwrap() as u16;
    let nio = format!(
        r#"{{"type": "nio_udp", "lport": {lport}, "rhost": "127.0.0.1", "rport": {}}}"#,
        client.local_addr().unwrap().port()
    );
    assert_eq!(
        srv.call(
            "POST",
            &format!("/v1/projects/{p}/vpcs/vms/{id}/adapters/0/ports/0/nio"),
            &nio
        )
        .0,
        201
    );
    assert_eq!(
        srv.call("POST", &format!("/v1/projects/{p}/vpcs/vms/{id}/start"), "")
            .0,
        204
    );
    let to: SocketAddr = format!("127.0.0.1:{lport}").parse().unwrap();

    // The same echo program behind a bare forwarder.
    let back = UdpSocket::bind("127.0.0.1:0").unwrap();
    let echo_port = 16000;
    let mut echo = Command::new(&me)
        .env(ECHO_ENV, "1")
        .args([
            "-s",
            &echo_port.to_string(),
            "-c",
            &back.local_addr().unwrap().port().to_string(),
            "-t",
            "127.0.0.1",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    back.connect(("127.0.0.1", echo_port)).unwrap();
    std::thread::sleep(Duration::from_millis(300)); // let the echo bind
    let front = UdpSocket::bind("127.0.0.1:0").unwrap();
    let client2 = UdpSocket::bind("127.0.0.1:0").unwrap();
    bare_forwarder(
        front.try_clone().unwrap(),
        back,
        client2.local_addr().unwrap(),
    );
    let front_addr = front.local_addr().unwrap();

    let dur = Duration::from_secs(5);
    for size in [64, 1500] {
        let (bare, bare_rtt) = blast(&client2, front_addr, size, dur);
        let (ours, our_rtt) = blast(&client, to, size, dur);
        println!(
            "relay: {size:>4}-byte frames: nanolab {ours:>8.0} frames/s (RTT {our_rtt:.1?}), bare forwarder {bare:>8.0} frames/s (RTT {bare_rtt:.1?}): ratio {:.2}",
            ours / bare.max(1.0)
        );
    }
    // API latency while the relay is saturated.
    let sat = client.try_clone().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let flood = std::thread::spawn(move || {
        sat.set_nonblocking(true).unwrap();
        let frame = [0u8; 64];
        let mut buf = [0u8; 2048];
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            for _ in 0..64 {
                let _ = sat.send_to(&frame, to);
            }
            while sat.recv(&mut buf).is_ok() {}
        }
    });
    let version = b"GET /v1/version HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    let run = drive(srv.addr, 1, Duration::from_secs(5), u64::MAX, |_| {
        version.clone()
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flood.join().unwrap();
    report("GET version, relay saturated", 1, run);
    let _ = echo.kill();
    let _ = echo.wait();
    let _ = std::fs::remove_dir_all(dir);
}
