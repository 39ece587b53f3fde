//! Issue 16: a fair loop. A broadcast storm in a switching loop of built-in
//! nodes degrades the data plane, never the API; a big restore is done in
//! slices while others are served.

use crate::util::{Console, Server, request, temp_dir, vm_url};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long `GET /v1/version` takes on a fresh connection.
fn version_latency(srv: &Server) -> Duration {
    let t = Instant::now();
    assert_eq!(request(srv.addr, "GET", "/v1/version", "").status, 200);
    t.elapsed()
}

/// Give port `port` of device `dev` a UDP NIO from `l` to `r` (access, VLAN 1).
fn device_nio(srv: &Server, p: &str, dev: &str, port: u16, (l, r): (u16, u16)) {
    let body = format!(
        r#"{{"nio": {{"type": "nio_udp", "lport": {l}, "rhost": "127.0.0.1", "rport": {r}}}, "port_settings": {{"type": "access", "vlan": 1}}}}"#
    );
    let r = srv.post(
        &format!("/v1/projects/{p}/dynamips/devices/{dev}/ports/{port}/nio"),
        &body,
    );
    assert_eq!(r.status, 201, "{}", r.text);
}

/// Link port `a` of device `d1` to port `b` of `d2` with two UDP ports.
fn link(srv: &Server, p: &str, (d1, a): (&str, u16), (d2, b): (&str, u16), ports: (u16, u16)) {
    device_nio(srv, p, d1, a, ports);
    device_nio(srv, p, d2, b, (ports.1, ports.0));
}

#[test]
fn issue_16_a_switching_loop_of_built_in_nodes_does_not_take_the_api_down() {
    let mut srv = Server::start(&["--pc-engine", "builtin"]);
    let p = srv.project();
    let sw: Vec<String> = (1..=3)
        .map(|i| {
            let body = format!(r#"{{"name": "SW{i}", "device_type": "ethernet_switch"}}"#);
            let r = srv.post(&format!("/v1/projects/{p}/dynamips/devices"), &body);
            r.json["device_id"].as_str().unwrap().to_string()
        })
        .collect();
    let u = srv.udp.0;
    // A ring: SW1 - SW2 - SW3 - SW1.
    link(&srv, &p, (&sw[0], 1), (&sw[1], 1), (u, u + 1));
    link(&srv, &p, (&sw[1], 2), (&sw[2], 1), (u + 2, u + 3));
    link(&srv, &p, (&sw[2], 2), (&sw[0], 2), (u + 4, u + 5));
    // A built-in PC on SW1 port 3, asking for an address nobody has.
    let (pc, console) = srv.vm(&p, "PC1");
    let body = format!(
        r#"{{"lport": {}, "rhost": "127.0.0.1", "rport": {}, "type": "nio_udp"}}"#,
        u + 6,
        u + 7
    );
    assert_eq!(
        srv.post(&vm_url(&p, &pc, "/adapters/0/ports/0/nio"), &body)
            .status,
        201
    );
    device_nio(&srv, &p, &sw[0], 3, (u + 7, u + 6));
    assert_eq!(srv.post(&vm_url(&p, &pc, "/start"), "{}").status, 204);
    let mut c = Console::open(console);
    assert!(c.expect("VPCS> ", 5));
    c.send("ip 10.0.0.1/24\r\n");
    assert!(
        c.expect("10.0.0.1 255.255.255.0", 10),
        "{}\n{}",
        c.text(),
        srv.log()
    );
    c.send("ping 10.0.0.2 -c 3\r\n");
    // The ARP broadcasts loop for ever: the ring has no spanning tree.
    // The status page counts the frames each port moved.
    let frames = |srv: &Server| -> u64 {
        let page = srv.get("/").text;
        page.split(" B out, ")
            .filter_map(|s| s.split(" / ").next()?.trim().parse::<u64>().ok())
            .sum()
    };
    std::thread::sleep(Duration::from_secs(1));
    let before = frames(&srv);
    std::thread::sleep(Duration::from_millis(500));
    let moved = frames(&srv) - before;
    eprintln!("storm: {moved} frames in 0.5 s");
    assert!(moved > 10_000, "no storm: {moved} frames");
    let mut waits: Vec<Duration> = (0..40)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            version_latency(&srv)
        })
        .collect();
    waits.sort();
    let p99 = waits[waits.len() * 99 / 100];
    eprintln!(
        "storm: GET /v1/version median {:?}, p99 {p99:?}",
        waits[waits.len() / 2]
    );
    assert!(p99 < Duration::from_millis(100), "p99 {p99:?}");
    // Breaking the loop answers at once.
    let t = Instant::now();
    let r = srv.req(
        "DELETE",
        &format!("/v1/projects/{p}/dynamips/devices/{}/ports/2/nio", sw[2]),
        "",
    );
    let took = t.elapsed();
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(took < Duration::from_secs(1), "DELETE took {took:?}");
    // Back into a storm, then SIGTERM: the server exits at once.
    device_nio(&srv, &p, &sw[2], 2, (u + 4, u + 5));
    c.send("ping 10.0.0.3 -c 3\r\n");
    std::thread::sleep(Duration::from_secs(1));
    let t = Instant::now();
    let status = srv.terminate();
    let took = t.elapsed();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(took < Duration::from_secs(2), "SIGTERM took {took:?}");
}

#[test]
fn issue_16_a_30000_entry_restore_is_done_in_slices_while_others_are_served() {
    let srv = Server::start(&[]);
    let work = temp_dir("bigtar");
    let stage = work.join("stage");
    for d in 0..300 {
        let dir = stage.join(format!("p/project-files/vpcs/n{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        // Empty files: a header each, as many entries as fit the upload limit.
        for f in 0..99 {
            let body = if f == 98 {
                format!("{d}/{f}\n")
            } else {
                String::new()
            };
            std::fs::write(dir.join(format!("f{f}")), body).unwrap();
        }
    }
    let tar = work.join("big.tar");
    assert!(
        Command::new("tar")
            .current_dir(&stage)
            .args(["-cf", tar.to_str().unwrap(), "p"])
            .status()
            .unwrap()
            .success()
    );
    let form = format!("file=@{}", tar.display());
    let mut upload = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-F",
            "type=PROJECTS",
            "-F",
            &form,
        ])
        .arg(srv.url("/upload"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut waits = Vec::new();
    let started = Instant::now();
    while upload.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(60) {
        let w = version_latency(&srv);
        if w > Duration::from_millis(50) {
            eprintln!("at {:?}: waited {w:?}", started.elapsed());
        }
        waits.push(w);
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = String::from_utf8_lossy(&upload.wait_with_output().unwrap().stdout).into_owned();
    assert_eq!(status, "200");
    let worst = waits.iter().max().copied().unwrap_or_default();
    eprintln!(
        "restore of 30,301 entries: {} GETs meanwhile, the slowest {worst:?}",
        waits.len()
    );
    assert!(waits.len() > 3, "the restore took {:?}", started.elapsed());
    assert!(worst < Duration::from_millis(100), "a GET waited {worst:?}");
    let restored = srv.dir.join("projects/p/project-files/vpcs/n299/f98");
    assert_eq!(std::fs::read_to_string(restored).unwrap(), "299/98\n");
}
