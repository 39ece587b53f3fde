//! Built-in virtual PCs (`--pc-engine builtin`): the seed session with no
//! vpcs process, a built-in PC and a real vpcs pinging each other, and the
//! command language against real vpcs.

use crate::util::{Console, Server, vm_url};

/// Two VMs on `srv` linked to each other; returns their ids and consoles.
fn linked_pair(srv: &Server, p: &str) -> [(String, u16); 2] {
    let a = srv.vm(p, "VPCS 1");
    let b = srv.vm(p, "VPCS 2");
    let u1 = srv.post(&format!("/v1/projects/{p}/ports/udp"), "{}").json["udp_port"].clone();
    let u2 = srv.post(&format!("/v1/projects/{p}/ports/udp"), "{}").json["udp_port"].clone();
    for ((v, _), (l, r)) in [(&a, (&u1, &u2)), (&b, (&u2, &u1))] {
        let body =
            format!(r#"{{"lport": {l}, "rhost": "127.0.0.1", "rport": {r}, "type": "nio_udp"}}"#);
        let resp = srv.post(&vm_url(p, v, "/adapters/0/ports/0/nio"), &body);
        assert_eq!(resp.status, 201, "{}", resp.text);
    }
    [a, b]
}

/// [`linked_pair`], both started.
fn started_pair(srv: &Server, p: &str) -> [(String, u16); 2] {
    let pair = linked_pair(srv, p);
    for (v, _) in &pair {
        assert_eq!(srv.post(&vm_url(p, v, "/start"), "{}").status, 204);
    }
    pair
}

#[test]
fn the_seed_session_runs_on_built_in_pcs_without_any_vpcs_process() {
    let srv = Server::start(&["--pc-engine", "builtin"]);
    let p = srv.project();
    let [(_, c1), (v2, c2)] = started_pair(&srv, &p);
    assert!(
        crate::util::children(srv.pid()).is_empty(),
        "no process per PC"
    );
    let mut a = Console::open(c1);
    assert!(a.expect("VPCS> ", 5), "{}", a.text());
    assert!(
        a.text()
            .contains("Welcome to Virtual PC Simulator, version 0.5b2")
    );
    a.send("ip 192.168.1.1\r\n");
    assert!(
        a.expect("PC1 : 192.168.1.1 255.255.255.0", 10),
        "{}",
        a.text()
    );
    a.send("disconnect\r\n");
    assert!(a.closed_within(5));
    let mut b = Console::open(c2);
    assert!(b.expect("VPCS> ", 5));
    b.send("ip 192.168.1.2\r\n");
    assert!(
        b.expect("PC1 : 192.168.1.2 255.255.255.0", 10),
        "{}",
        b.text()
    );
    let from = b.seen.len();
    b.send("ping 192.168.1.1\r\n");
    assert!(
        b.expect_after(from, "192.168.1.1 icmp_seq=5 ttl=64 time=", 15),
        "{}",
        b.text()
    );
    // The PC answers on its console as VPCS does (what is typed while a
    // command runs is dropped, so wait for the prompt), and quits like it.
    assert!(
        b.expect_after(from, "ms\r\n\r\n\rVPCS> ", 5),
        "{}",
        b.text()
    );
    b.send("set pcname B\r\n");
    assert!(b.expect("B> ", 5), "{}", b.text());
    b.send("quit\r\n");
    let stopped = crate::util::wait_for(5, || {
        srv.get(&format!("/v2/compute/projects/{p}/vpcs/nodes/{v2}"))
            .json["status"]
            == "stopped"
    });
    assert!(stopped, "quit stops the PC");
}

/// Closing a project stops each running built-in PC once: one "stopped"
/// line per PC in the log, then its deletion.
#[test]
fn closing_a_project_logs_each_built_in_pc_stopped_once() {
    let srv = Server::start(&["--pc-engine", "builtin"]);
    let p = srv.project();
    let [(v1, _), (v2, _)] = started_pair(&srv, &p);
    assert_eq!(
        srv.post(&format!("/v1/projects/{p}/close"), "{}").status,
        204
    );
    let closed = crate::util::wait_for(5, || srv.log().contains(&format!("project {p} closed")));
    assert!(closed, "{}", srv.log());
    let log = srv.log();
    for v in [&v1, &v2] {
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(v.as_str())).collect();
        let stopped = lines.iter().filter(|l| l.contains(": stopped (")).count();
        let deleted = lines.iter().filter(|l| l.ends_with(": deleted")).count();
        assert_eq!((stopped, deleted), (1, 1), "{lines:#?}");
    }
}

#[test]
fn a_built_in_pc_and_a_real_vpcs_ping_each_other() {
    // Two servers: one builds PCs in, the other runs vpcs.
    let builtin = Server::start(&["--pc-engine", "builtin"]);
    let real = Server::start(&[]);
    let (pb, pr) = (builtin.project(), real.project());
    let (vb, cb) = builtin.vm(&pb, "B");
    let (vr, cr) = real.vm(&pr, "R");
    let ub = builtin
        .post(&format!("/v1/projects/{pb}/ports/udp"), "{}")
        .json["udp_port"]
        .clone();
    let ur = real
        .post(&format!("/v1/projects/{pr}/ports/udp"), "{}")
        .json["udp_port"]
        .clone();
    let nio = |l: &serde_json::Value, r: &serde_json::Value| {
        format!(r#"{{"lport": {l}, "rhost": "127.0.0.1", "rport": {r}, "type": "nio_udp"}}"#)
    };
    assert_eq!(
        builtin
            .post(&vm_url(&pb, &vb, "/adapters/0/ports/0/nio"), &nio(&ub, &ur))
            .status,
        201
    );
    assert_eq!(
        real.post(&vm_url(&pr, &vr, "/adapters/0/ports/0/nio"), &nio(&ur, &ub))
            .status,
        201
    );
    assert_eq!(builtin.post(&vm_url(&pb, &vb, "/start"), "{}").status, 204);
    assert_eq!(real.post(&vm_url(&pr, &vr, "/start"), "{}").status, 204);
    let mut b = Console::open(cb);
    let mut r = Console::open(cr);
    assert!(b.expect("VPCS> ", 5) && r.expect("VPCS> ", 10));
    b.send("ip 10.9.0.1/24\r\n");
    r.send("ip 10.9.0.2/24\r\n");
    assert!(b.expect("PC1 : 10.9.0.1", 10), "{}", b.text());
    assert!(r.expect("PC1 : 10.9.0.2", 10), "{}", r.text());
    let from = b.seen.len();
    b.send("ping 10.9.0.2 -c 2\r\n");
    assert!(
        b.expect_after(from, "10.9.0.2 icmp_seq=2 ttl=64 time=", 15),
        "built-in to vpcs: {}",
        b.text()
    );
    let from = r.seen.len();
    r.send("ping 10.9.0.1 -c 2\r\n");
    assert!(
        r.expect_after(from, "10.9.0.1 icmp_seq=2 ttl=64 time=", 15),
        "vpcs to built-in: {}",
        r.text()
    );
}

/// Built-in PCs on the built-in switch get their addresses from a real
/// DHCP server: dnsmasq in a namespace of the test's own, on the host side
/// of a TAP device the switch's port 0 is attached to.
#[test]
fn built_in_pcs_on_the_switch_get_addresses_from_dnsmasq() {
    let ns = crate::tap::Netns::new("dhcp");
    ns.ip(&["tuntap", "add", "dev", "nldhcp0", "mode", "tap"]);
    ns.ip(&["addr", "add", "10.88.0.1/24", "dev", "nldhcp0"]);
    ns.ip(&["link", "set", "nldhcp0", "up"]);
    ns.within(|| {
        let srv = Server::start(&["--pc-engine", "builtin"]);
        let p = srv.project();
        let sw = srv.post(
            &format!("/v1/projects/{p}/dynamips/devices"),
            r#"{"name": "SW", "device_type": "ethernet_switch"}"#,
        );
        let sw = sw.json["device_id"].as_str().unwrap().to_string();
        let dev = |port: u32, nio: &str| {
            let r = srv.post(
                &format!("/v1/projects/{p}/dynamips/devices/{sw}/ports/{port}/nio"),
                &format!(r#"{{"nio": {nio}}}"#),
            );
            assert_eq!(r.status, 201, "{}", r.text);
        };
        dev(0, r#"{"type": "nio_tap", "tap_device": "nldhcp0"}"#);
        let mut consoles = Vec::new();
        for port in 1..=2u32 {
            let (v, c) = srv.vm(&p, &format!("PC{port}"));
            let l = srv.post(&format!("/v1/projects/{p}/ports/udp"), "{}").json["udp_port"].clone();
            let r = srv.post(&format!("/v1/projects/{p}/ports/udp"), "{}").json["udp_port"].clone();
            let nio = format!(
                r#"{{"lport": {l}, "rhost": "127.0.0.1", "rport": {r}, "type": "nio_udp"}}"#
            );
            assert_eq!(
                srv.post(&vm_url(&p, &v, "/adapters/0/ports/0/nio"), &nio)
                    .status,
                201
            );
            dev(
                port,
                &format!(
                    r#"{{"type": "nio_udp", "lport": {r}, "rhost": "127.0.0.1", "rport": {l}}}"#
                ),
            );
            assert_eq!(srv.post(&vm_url(&p, &v, "/start"), "{}").status, 204);
            consoles.push(c);
        }
        let dir = crate::util::temp_dir("dnsmasq");
        let dnsmasq = std::process::Command::new("dnsmasq")
            .args([
                "--no-daemon",
                "--conf-file=/dev/null",
                "--interface=nldhcp0",
                "--bind-interfaces",
                "--port=0",
                "--dhcp-range=10.88.0.50,10.88.0.99,255.255.255.0,1h",
                "--dhcp-option=3,10.88.0.1",
            ])
            .arg(format!("--dhcp-leasefile={}", dir.join("leases").display()))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("dnsmasq is installed (dnsmasq-base)");
        // Killed however the test ends.
        let _dnsmasq = KillOnDrop(dnsmasq);
        std::thread::sleep(std::time::Duration::from_millis(500));
        let mut leases = Vec::new();
        for c in consoles {
            let mut con = Console::open(c);
            assert!(con.expect("VPCS> ", 5), "{}", con.text());
            con.send("ip dhcp\r\n");
            assert!(con.expect(" GW 10.88.0.1", 20), "{}", con.text());
            let text = con.text();
            assert!(text.contains("DORA IP 10.88.0."), "{text}");
            let ip = text
                .split("DORA IP ")
                .nth(1)
                .unwrap()
                .split('/')
                .next()
                .unwrap()
                .to_string();
            // The address works: the host side of the TAP answers.
            let from = con.seen.len();
            con.send("ping 10.88.0.1 -c 2\r\n");
            assert!(
                con.expect_after(from, "10.88.0.1 icmp_seq=2 ttl=64", 15),
                "{}",
                con.text()
            );
            leases.push(ip);
        }
        assert_ne!(leases[0], leases[1], "two PCs, two leases");
    });
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Issue 21: the built-in PC used to print `time=0.000 ms` for every
/// reply through in-memory links (it read the loop turn's clock, which
/// does not move while a frame crosses them). Through a switch, each
/// reply's time is now above zero and below the ping's own interval.
#[test]
fn built_in_ping_times_through_a_switch_are_real() {
    let srv = Server::start(&["--pc-engine", "builtin"]);
    let p = srv.project();
    let sw = srv.post(
        &format!("/v1/projects/{p}/dynamips/devices"),
        r#"{"name": "SW1", "device_type": "ethernet_switch"}"#,
    );
    let sw = sw.json["device_id"].as_str().unwrap().to_string();
    let mut consoles = Vec::new();
    for (i, name) in ["PC1", "PC2"].into_iter().enumerate() {
        let body = serde_json::json!({"name": name, "startup_script": format!("ip 10.21.0.{}/24\n", i + 1)});
        let r = srv.post(&format!("/v1/projects/{p}/vpcs/vms"), &body.to_string());
        let (vm, console) = (
            r.json["vm_id"].as_str().unwrap().to_string(),
            r.json["console"].as_u64().unwrap() as u16,
        );
        let port = |s: &Server| {
            s.post(&format!("/v1/projects/{p}/ports/udp"), "{}").json["udp_port"]
                .as_u64()
                .unwrap()
        };
        let (a, b) = (port(&srv), port(&srv));
        let nio =
            format!(r#"{{"lport": {a}, "rhost": "127.0.0.1", "rport": {b}, "type": "nio_udp"}}"#);
        assert_eq!(
            srv.post(&vm_url(&p, &vm, "/adapters/0/ports/0/nio"), &nio)
                .status,
            201
        );
        let nio = format!(
            r#"{{"nio": {{"type": "nio_udp", "lport": {b}, "rhost": "127.0.0.1", "rport": {a}}}}}"#
        );
        let r = srv.post(
            &format!("/v1/projects/{p}/dynamips/devices/{sw}/ports/{}/nio", i + 1),
            &nio,
        );
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(srv.post(&vm_url(&p, &vm, "/start"), "{}").status, 204);
        consoles.push(console);
    }
    let mut c = Console::open(consoles[0]);
    assert!(c.expect("> ", 10), "{}", c.text());
    let from = c.seen.len();
    c.send("ping 10.21.0.2 -c 3\r\n");
    assert!(c.expect_after(from, "icmp_seq=3", 15), "{}", c.text());
    let text = String::from_utf8_lossy(&c.seen[from..]).into_owned();
    let times: Vec<f64> = text
        .split("time=")
        .skip(1)
        .filter_map(|t| t.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(times.len(), 3, "{text}");
    for t in times {
        assert!(t > 0.0 && t < 1000.0, "time={t} ms: {text}");
    }
}
