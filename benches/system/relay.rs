//! The tunnel relay against a bare forwarder, and frames through a
//! switch and a hub.

use super::*;

/// Stand-in for VPCS in the relay bench: prints a prompt on its tty, then
/// sends every frame it receives on `-s PORT` back to `-t IP` `-c PORT`.
pub(crate) fn echo_vpcs() {
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
pub(crate) fn blast(
    sock: &UdpSocket,
    to: SocketAddr,
    size: usize,
    dur: Duration,
) -> (f64, Duration) {
    blast_frame(sock, to, &vec![0x5au8; size], dur)
}

/// [`blast`] with a given frame.
pub(crate) fn blast_frame(
    sock: &UdpSocket,
    to: SocketAddr,
    frame: &[u8],
    dur: Duration,
) -> (f64, Duration) {
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
pub(crate) fn switch() {
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
/// and the echo, one thread per direction. Returns the threads' ids.
pub(crate) fn bare_forwarder(front: UdpSocket, back: UdpSocket, client: SocketAddr) -> [u32; 2] {
    let (f2, b2) = (front.try_clone().unwrap(), back.try_clone().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        tx.send(this_thread()).unwrap();
        let mut buf = [0u8; 2048];
        loop {
            // Errors (ICMP port unreachable) are not the end of the link.
            if let Ok(n) = f2.recv(&mut buf) {
                let _ = b2.send(&buf[..n]);
            }
        }
    });
    std::thread::spawn(move || {
        tx2.send(this_thread()).unwrap();
        let mut buf = [0u8; 2048];
        loop {
            if let Ok(n) = back.recv(&mut buf) {
                let _ = front.send_to(&buf[..n], client);
            }
        }
    });
    [rx.recv().unwrap(), rx.recv().unwrap()]
}

/// The calling thread's id.
fn this_thread() -> u32 {
    let link = std::fs::read_link("/proc/thread-self").unwrap();
    link.file_name().unwrap().to_str().unwrap().parse().unwrap()
}

/// CPU time of this process's threads `ids`, in clock ticks (10 ms).
fn thread_ticks(ids: [u32; 2]) -> u64 {
    ids.iter()
        .map(|id| {
            let stat = std::fs::read_to_string(format!("/proc/self/task/{id}/stat")).unwrap();
            let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
                .split_whitespace()
                .collect();
            fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
        })
        .sum()
}

/// Pin process or thread `id` to `cpu`.
fn pin(id: u32, cpu: usize) {
    let ok = Command::new("taskset")
        .args(["-cp", &cpu.to_string(), &id.to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "taskset could not pin {id} to CPU {cpu}");
}

/// CPU time per round trip, in µs, from `ticks` (10 ms) spent over a blast
/// of `dur` at `rate` round trips per second (and its 2,000 timed ones).
fn per_trip(ticks: u64, rate: f64, dur: Duration) -> f64 {
    (ticks * 10_000) as f64 / (rate * dur.as_secs_f64() + 2000.0)
}

pub(crate) fn relay() {
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
    let bare = bare_forwarder(
        front.try_clone().unwrap(),
        back,
        client2.local_addr().unwrap(),
    );
    let front_addr = front.local_addr().unwrap();

    // First as the scheduler places everyone; then each forwarder alone on
    // CPU 0 (nanolab's one thread, or the bare forwarder's two) with the
    // load client and the echo on CPU 1: forwarding per core, without the
    // wakeups of the client and echo preempting it.
    let dur = Duration::from_secs(5);
    for pinned in [false, true] {
        if pinned {
            if super::cores() < 2 {
                break;
            }
            for id in [srv.child.id(), bare[0], bare[1]] {
                pin(id, 0);
            }
            pin(echo.id(), 1);
            pin(this_thread(), 1);
        }
        let how = if pinned { "pinned" } else { "shared" };
        for size in [64, 1500] {
            let t = thread_ticks(bare);
            let (theirs, their_rtt) = blast(&client2, front_addr, size, dur);
            let their_cpu = per_trip(thread_ticks(bare) - t, theirs, dur);
            let t = srv.cpu_ticks();
            let (ours, our_rtt) = blast(&client, to, size, dur);
            let our_cpu = per_trip(srv.cpu_ticks() - t, ours, dur);
            println!(
                "relay: {how}, {size:>4}-byte frames: nanolab {ours:>8.0} frames/s (RTT {our_rtt:.1?}, \
                 CPU {our_cpu:.2} µs per round trip), bare forwarder {theirs:>8.0} frames/s \
                 (RTT {their_rtt:.1?}, CPU {their_cpu:.2} µs): ratio {:.2}",
                ours / theirs.max(1.0)
            );
        }
    }
    // Unpinned again, for what follows (and the benches after this one).
    let all = format!("0-{}", super::cores().max(1) - 1);
    for id in [srv.child.id(), echo.id(), this_thread()] {
        let _ = Command::new("taskset")
            .args(["-cp", &all, &id.to_string()])
            .stdout(Stdio::null())
            .status();
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
