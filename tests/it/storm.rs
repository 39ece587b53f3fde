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

/// Link port `a` of device `d1` to port `b` of `d2` with two UDP ports.
fn link(srv: &Server, p: &str, (d1, a): (&str, u16), (d2, b): (&str, u16), ports: (u16, u16)) {
    for (d, port, (l, r)) in [(d1, a, ports), (d2, b, (ports.1, ports.0))] {
        let body = format!(
            r#"{{"nio": {{"type": "nio_udp", "lport": {l}, "rhost": "127.0.0.1", "rport": {r}}}, "port_settings": {{"type": "access", "vlan": 1}}}}"#
        );
        let r = srv.post(
            &format!("/v1/projects/{p}/dynamips/devices/{d}/ports/{port}/nio"),
            &body,
        );
        assert_eq!(r.status, 201, "{}", r.text);
    }
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
    let body = format!(
        r#"{{"nio": {{"type": "nio_udp", "lport": {}, "rhost": "127.0.0.1", "rport": {}}}, "port_settings": {{"type": "access", "vlan": 1}}}}"#,
        u + 7,
        u + 6
    );
    let r = srv.post(
        &format!("/v1/projects/{p}/dynamips/devices/{}/ports/3/nio", sw[0]),
        &body,
    );
    assert_eq!(r.status, 201, "{}", r.text);
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
    let body = format!(
        r#"{{"nio": {{"type": "nio_udp", "lport": {}, "rhost": "127.0.0.1", "rport": {}}}, "port_settings": {{"type": "access", "vlan": 1}}}}"#,
        u + 4,
        u + 5
    );
    let r = srv.post(
        &format!("/v1/projects/{p}/dynamips/devices/{}/ports/2/nio", sw[2]),
        &body,
    );
    assert_eq!(r.status, 201, "{}", r.text);
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
    let upload = Command::new("curl")
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
        .spawn_output();
    let mut waits = Vec::new();
    let started = Instant::now();
    while !upload.done() && started.elapsed() < Duration::from_secs(60) {
        let w = version_latency(&srv);
        if w > Duration::from_millis(50) {
            eprintln!("at {:?}: waited {w:?}", started.elapsed());
        }
        waits.push(w);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(upload.wait(), "302");
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

/// A command running in the background, its output read when it ends.
struct Running(
    std::sync::mpsc::Receiver<String>,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
);

trait SpawnOutput {
    fn spawn_output(&mut self) -> Running;
}

impl SpawnOutput for Command {
    fn spawn_output(&mut self) -> Running {
        let child = self.stdout(std::process::Stdio::piped()).spawn().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = done.clone();
        std::thread::spawn(move || {
            let out = child.wait_with_output().unwrap();
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = tx.send(String::from_utf8_lossy(&out.stdout).into_owned());
        });
        Running(rx, done)
    }
}

impl Running {
    fn done(&self) -> bool {
        self.1.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn wait(self) -> String {
        self.0.recv_timeout(Duration::from_secs(60)).unwrap()
    }
}
