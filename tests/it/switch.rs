//! Ethernet switches and hubs (the 1.3 "Dynamips devices" routes), with
//! real VPCS attached through UDP tunnels, pinging across them.

use crate::util::{Console, Server, vm_url};
use std::process::Command;

/// What `tcpdump -enr` reads in a capture file.
fn tcpdump(file: &str) -> String {
    let out = Command::new("tcpdump")
        .args(["-enr", file])
        .output()
        .expect("tcpdump is installed");
    assert!(
        out.status.success(),
        "tcpdump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
use serde_json::{Value, json};

struct Lab<'a> {
    srv: &'a Server,
    p: String,
}

impl<'a> Lab<'a> {
    fn new(srv: &'a Server) -> Self {
        Lab {
            p: srv.project(),
            srv,
        }
    }

    fn udp(&self) -> u64 {
        self.srv
            .post(&format!("/v1/projects/{}/ports/udp", self.p), "{}")
            .json["udp_port"]
            .as_u64()
            .unwrap()
    }

    fn device(&self, kind: &str) -> String {
        let body = json!({"name": kind, "device_type": kind}).to_string();
        let r = self
            .srv
            .post(&format!("/v1/projects/{}/dynamips/devices", self.p), &body);
        assert_eq!(r.status, 201, "{}", r.text);
        r.json["device_id"].as_str().unwrap().to_string()
    }

    fn dev_url(&self, d: &str, tail: &str) -> String {
        format!("/v1/projects/{}/dynamips/devices/{d}{tail}", self.p)
    }

    /// A started VPCS with `ip` set by its startup script, its console open.
    fn pc(&self, name: &str, ip: &str) -> (String, Console) {
        let body = json!({"name": name, "startup_script": format!("ip {ip}/24\n")}).to_string();
        let r = self
            .srv
            .post(&format!("/v1/projects/{}/vpcs/vms", self.p), &body);
        let v = r.json["vm_id"].as_str().unwrap().to_string();
        let c = Console::open(r.json["console"].as_u64().unwrap() as u16);
        (v, c)
    }

    fn start(&self, v: &str) {
        assert_eq!(self.srv.post(&vm_url(&self.p, v, "/start"), "").status, 204);
    }

    /// A tunnel from a VPCS to port `port` of device `d`.
    fn link_pc(&self, v: &str, d: &str, port: u32, settings: Option<Value>) {
        let (a, b) = (self.udp(), self.udp());
        let nio = json!({"type": "nio_udp", "lport": a, "rhost": "127.0.0.1", "rport": b});
        let r = self.srv.post(
            &vm_url(&self.p, v, "/adapters/0/ports/0/nio"),
            &nio.to_string(),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        self.link_port(d, port, b, a, settings);
    }

    fn link_port(&self, d: &str, port: u32, lport: u64, rport: u64, settings: Option<Value>) {
        let mut body = json!({"nio": {"type": "nio_udp", "lport": lport, "rhost": "127.0.0.1", "rport": rport}});
        if let Some(s) = settings {
            body["port_settings"] = s;
        }
        let r = self.srv.post(
            &self.dev_url(d, &format!("/ports/{port}/nio")),
            &body.to_string(),
        );
        assert_eq!(r.status, 201, "{}", r.text);
    }
}

fn access(vlan: u16) -> Option<Value> {
    Some(json!({"type": "access", "vlan": vlan}))
}

/// Ping `ip` twice from a console: whether a reply came back.
fn ping(c: &mut Console, ip: &str) -> bool {
    assert!(c.expect("> ", 10), "{}", c.text());
    let mark = c.seen.len();
    c.send(&format!("ping {ip} -c 2\r\n"));
    let reply = format!("{ip} icmp_seq=");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let answered = loop {
        if c.expect_after(mark, &reply, 1) {
            break true;
        }
        let seen = String::from_utf8_lossy(&c.seen[mark..]).into_owned();
        if seen.contains("not reachable") || seen.contains("timeout") {
            break false;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
    };
    // Let the ping finish: VPCS drops what is typed meanwhile.
    let end = c.seen.len();
    let _ = c.expect_after(end, "> ", 10);
    answered
}

#[test]
fn four_pcs_on_one_switch_two_vlans_and_a_vlan_change_while_running() {
    let srv = Server::start(&[]);
    let lab = Lab::new(&srv);
    let sw = lab.device("ethernet_switch");
    let mut pcs: Vec<(String, Console)> = (1..=4)
        .map(|n| lab.pc(&format!("PC{n}"), &format!("10.10.0.{n}")))
        .collect();
    for (i, (v, _)) in pcs.iter().enumerate() {
        let vlan = if i < 2 { 10 } else { 20 };
        lab.link_pc(v, &sw, i as u32 + 1, access(vlan));
        lab.start(v);
    }
    let r = srv.get(&lab.dev_url(&sw, ""));
    assert_eq!(
        r.json["ports"].as_array().map(|a| a.len()),
        Some(4),
        "{}",
        r.text
    );
    assert!(
        ping(&mut pcs[0].1, "10.10.0.2"),
        "inside VLAN 10: {}",
        pcs[0].1.text()
    );
    assert!(
        ping(&mut pcs[2].1, "10.10.0.4"),
        "inside VLAN 20: {}",
        pcs[2].1.text()
    );
    assert!(
        !ping(&mut pcs[0].1, "10.10.0.3"),
        "across VLANs: {}",
        pcs[0].1.text()
    );
    // PC3 moves to VLAN 10 while everything runs.
    let put = json!({"ports": [{"port": 3, "type": "access", "vlan": 10}]}).to_string();
    let r = srv.req("PUT", &lab.dev_url(&sw, ""), &put);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        ping(&mut pcs[0].1, "10.10.0.3"),
        "after the change: {}",
        pcs[0].1.text()
    );
    // The status page shows the switch's MAC table and its ports' counters.
    let page = srv.get("/").text;
    assert!(
        page.contains("Ethernet switch")
            && page.contains("learnt")
            && page.contains("<tr><td>10</td><td>00:50:79:66:68:00</td><td>1</td></tr>"),
        "{page}"
    );
    // A port that is taken, and one that is not there.
    let r = srv.post(
        &lab.dev_url(&sw, "/ports/1/nio"),
        &json!({"nio": {"type": "nio_udp", "lport": srv.udp.1, "rhost": "127.0.0.1", "rport": 9}})
            .to_string(),
    );
    r.assert_error(409, "Port 1 isn't free");
    srv.req("DELETE", &lab.dev_url(&sw, "/ports/7/nio"), "")
        .assert_error(409, "Port 7 is not allocated");
}

#[test]
fn two_switches_joined_by_a_dot1q_trunk_carry_both_vlans() {
    let srv = Server::start(&[]);
    let lab = Lab::new(&srv);
    let (sw1, sw2) = (lab.device("ethernet_switch"), lab.device("ethernet_switch"));
    let (a, b) = (lab.udp(), lab.udp());
    let trunk = Some(json!({"type": "dot1q", "vlan": 1}));
    lab.link_port(&sw1, 9, a, b, trunk.clone());
    lab.link_port(&sw2, 9, b, a, trunk);
    let mut pcs = Vec::new();
    for (name, ip, sw, port, vlan) in [
        ("PC1", "10.10.0.1", &sw1, 1, 10),
        ("PC2", "10.20.0.2", &sw1, 2, 20),
        ("PC3", "10.10.0.3", &sw2, 1, 10),
        ("PC4", "10.20.0.4", &sw2, 2, 20),
    ] {
        let (v, c) = lab.pc(name, ip);
        lab.link_pc(&v, sw, port, access(vlan));
        lab.start(&v);
        pcs.push(c);
    }
    assert!(
        ping(&mut pcs[0], "10.10.0.3"),
        "VLAN 10 across the trunk: {}",
        pcs[0].text()
    );
    assert!(
        ping(&mut pcs[1], "10.20.0.4"),
        "VLAN 20 across the trunk: {}",
        pcs[1].text()
    );
}

#[test]
fn a_hub_repeats_to_every_port() {
    let srv = Server::start(&[]);
    let lab = Lab::new(&srv);
    let hub = lab.device("ethernet_hub");
    let mut pcs = Vec::new();
    let mut ids = Vec::new();
    for n in 1..=3 {
        let (v, c) = lab.pc(&format!("PC{n}"), &format!("10.30.0.{n}"));
        lab.link_pc(&v, &hub, n, None);
        lab.start(&v);
        pcs.push(c);
        ids.push(v);
    }
    let cap = vm_url(&lab.p, &ids[2], "/adapters/0/ports/0/start_capture");
    let r = srv.post(&cap, r#"{"capture_file_name": "pc3.pcap"}"#);
    assert_eq!(r.status, 200, "{}", r.text);
    let file = r.json["pcap_file_path"].as_str().unwrap().to_string();
    // The same capture, followed live: curl into tcpdump, as a person would.
    let live = srv.url(&vm_url(&lab.p, &ids[2], "/adapters/0/ports/0/pcap"));
    let watcher = Command::new("sh")
        .args([
            "-c",
            &format!("curl -sN --max-time 30 '{live}' | tcpdump -nr - 2>/dev/null"),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        srv.get(&lab.dev_url(&hub, "")).json.get("ports"),
        None,
        "a hub has no port settings"
    );
    assert!(ping(&mut pcs[0], "10.30.0.2"), "{}", pcs[0].text());
    let stop = vm_url(&lab.p, &ids[2], "/adapters/0/ports/0/stop_capture");
    assert_eq!(srv.post(&stop, "").status, 204);
    // The stop ends the live stream, so curl and tcpdump finish.
    let out = watcher.wait_with_output().unwrap();
    let streamed = String::from_utf8_lossy(&out.stdout);
    assert!(
        streamed.contains("10.30.0.1 > 10.30.0.2: ICMP echo request"),
        "live: {streamed}"
    );
    let seen = tcpdump(&file);
    assert!(
        seen.contains("10.30.0.1 > 10.30.0.2: ICMP echo request"),
        "the third PC sees the others' ICMP: {seen}"
    );
    // The third port saw the others' frames: its counters say so.
    let page = srv.get("/").text;
    assert!(page.contains("Ethernet hub"), "{page}");
}

/// Host links on switch ports: a veth end through a packet socket
/// (`nio_generic_ethernet`) and a TAP device, each reaching an address
/// configured inside a network namespace the test makes (never the host's
/// own interfaces).
#[test]
fn switch_ports_reach_a_namespace_through_a_veth_and_a_tap() {
    let ns = crate::tap::Netns::new("sw");
    ns.ip(&[
        "link", "add", "nlv0", "type", "veth", "peer", "name", "nlv1",
    ]);
    ns.ip(&["addr", "add", "10.88.0.1/24", "dev", "nlv1"]);
    ns.ip(&["link", "set", "nlv0", "up"]);
    ns.ip(&["link", "set", "nlv1", "up"]);
    ns.ip(&["tuntap", "add", "dev", "nltap1", "mode", "tap"]);
    ns.ip(&["addr", "add", "10.89.0.1/24", "dev", "nltap1"]);
    ns.ip(&["link", "set", "nltap1", "up"]);
    ns.within(|| {
        let srv = Server::start(&[]);
        let lab = Lab::new(&srv);
        let sw = lab.device("ethernet_switch");
        let link = |port: u32, nio: Value, vlan: u16| {
            let body = json!({"nio": nio, "port_settings": {"type": "access", "vlan": vlan}});
            let r = srv.post(
                &lab.dev_url(&sw, &format!("/ports/{port}/nio")),
                &body.to_string(),
            );
            assert_eq!(r.status, 201, "{}", r.text);
            r.json
        };
        let echoed = link(
            1,
            json!({"type": "nio_generic_ethernet", "ethernet_device": "nlv0"}),
            1,
        );
        assert_eq!(
            echoed,
            json!({"type": "nio_generic_ethernet", "ethernet_device": "nlv0"})
        );
        link(3, json!({"type": "nio_tap", "tap_device": "nltap1"}), 2);
        let (v1, mut c1) = lab.pc("PC1", "10.88.0.2");
        lab.link_pc(&v1, &sw, 2, access(1));
        lab.start(&v1);
        let (v2, mut c2) = lab.pc("PC2", "10.89.0.2");
        lab.link_pc(&v2, &sw, 4, access(2));
        lab.start(&v2);
        assert!(
            ping(&mut c1, "10.88.0.1"),
            "through the veth: {}",
            c1.text()
        );
        assert!(ping(&mut c2, "10.89.0.1"), "through the TAP: {}", c2.text());
        // An interface that does not exist: 409 naming it.
        let body = json!({"nio": {"type": "nio_linux_ethernet", "ethernet_device": "nlnope"}});
        srv.post(&lab.dev_url(&sw, "/ports/5/nio"), &body.to_string())
            .assert_error(409, "nlnope");
    });
}
