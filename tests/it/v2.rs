//! The GNS3 2.2 compute API (`/v2/compute`) on the real binary, with real
//! vpcs: shapes, the notification websocket, the console websocket, link
//! filters in the relay, files, auth exemptions.

use crate::util::{Console, Server, Ws, temp_dir, wait_for};

const P: &str = "42f9feee-3217-4104-981e-85d5f0a806ec";

fn node_url(kind: &str, id: &str, tail: &str) -> String {
    format!("/v2/compute/projects/{P}/{kind}/nodes/{id}{tail}")
}

/// Create the project and a VPCS; returns (node id, console port).
fn vpcs(s: &Server, name: &str, script: &str) -> (String, u16) {
    let r = s.post(
        "/v2/compute/projects",
        &format!(r#"{{"name":"lab","project_id":"{P}"}}"#),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let id = uuid::Uuid::new_v4().to_string();
    let body = serde_json::json!({"name": name, "node_id": id, "startup_script": script});
    let r = s.post(
        &format!("/v2/compute/projects/{P}/vpcs/nodes"),
        &body.to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    (id, r.json["console"].as_u64().unwrap() as u16)
}

#[test]
fn capabilities_name_the_version_the_controller_checks() {
    let s = Server::start(&[]);
    let r = s.get("/v2/compute/capabilities");
    assert_eq!(r.status, 200);
    let v = r.json["version"].as_str().unwrap();
    assert!(v.starts_with("2.2.61-nanolab."), "{v}");
    let mut keys: Vec<&String> = r.json.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["node_types", "platform", "version"]);
    let s = Server::start(&["--gns3-version", "2.2.55"]);
    let v = s.get("/v2/compute/capabilities").json["version"].clone();
    assert!(v.as_str().unwrap().starts_with("2.2.55-nanolab."), "{v}");
    // Statistics, ports and interfaces answer with real figures.
    let st = s.get("/v2/compute/statistics").json;
    assert!(st["memory_total"].as_u64().unwrap() > 0, "{st}");
    assert!(st["memory_usage_percent"].as_i64().unwrap() <= 100, "{st}");
    assert_eq!(st["load_average_percent"].as_array().unwrap().len(), 3);
    let ifs = s.get("/v2/compute/network/interfaces").json;
    let lo = ifs
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "lo")
        .expect("lo is listed");
    assert_eq!(
        (lo["ip_address"].as_str(), lo["netmask"].as_str()),
        (Some("127.0.0.1"), Some("255.0.0.0"))
    );
    let ports = s.get("/v2/compute/network/ports").json;
    assert_eq!(ports["console_port_range"][0], s.console.0);
}

#[test]
fn a_vpcs_node_in_2_2_shapes_with_node_updated_on_every_change() {
    let s = Server::start(&[]);
    let (status, ws) = Ws::open(s.addr, "/v2/compute/notifications/ws", None);
    assert_eq!(status, 101);
    let mut ws = ws.unwrap();
    // A ping at once, with real percentages.
    let ping = ws.event("ping", 5).expect("a ping at once");
    let cpu = ping["event"]["cpu_usage_percent"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&cpu));
    // A taken console is replaced, not refused.
    let (a, console_a) = vpcs(&s, "PC1", "set pcname %h\n");
    let body = format!(r#"{{"name":"PC2","console":{console_a}}}"#);
    let r = s.post(&format!("/v2/compute/projects/{P}/vpcs/nodes"), &body);
    assert_eq!(r.status, 201, "{}", r.text);
    assert_ne!(r.json["console"].as_u64(), Some(u64::from(console_a)));
    let r = s.get(&node_url("vpcs", &a, ""));
    let mut keys: Vec<&String> = r.json.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "command_line",
            "console",
            "console_type",
            "name",
            "node_directory",
            "node_id",
            "project_id",
            "status"
        ]
    );
    assert_eq!(r.json["status"], "stopped");
    // %h became the name in the script on disk.
    let script = s.get(&format!(
        "/v2/compute/projects/{P}/files/project-files/vpcs/{a}/startup.vpc"
    ));
    assert_eq!(script.text, "set pcname PC1\n");
    let r = s.post(&node_url("vpcs", &a, "/start"), "");
    assert!(r.status == 200 || r.status == 204, "{}", r.text);
    let up = ws
        .event("node.updated", 10)
        .expect("node.updated after start");
    assert_eq!(up["project_id"], P);
    assert_eq!(up["event"]["status"], "started");
    assert!(
        up["event"]["command_line"]
            .as_str()
            .unwrap()
            .contains("vpcs")
    );
    // A rename is told too.
    let r = s.req(
        "PUT",
        &node_url("vpcs", &a, ""),
        r#"{"name":"PC1b","console_type":"telnet"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let up = ws.event("node.updated", 5).unwrap();
    assert_eq!(up["event"]["name"], "PC1b");
    // The console websocket carries the console both ways, without auth.
    let (status, cws) = Ws::open(s.addr, &node_url("vpcs", &a, "/console/ws"), None);
    assert_eq!(status, 101);
    let mut cws = cws.unwrap();
    cws.send(2, b"echo over-the-websocket\n");
    let mut seen = Vec::new();
    assert!(
        wait_for(10, || {
            if let Some((_, p)) = cws.recv(1) {
                seen.extend_from_slice(&p);
            }
            String::from_utf8_lossy(&seen).contains("over-the-websocket")
        }),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    // A VPCS that dies is told: stopped, and a log.error.
    let pid = crate::util::vpcs_pid(&s, &a).expect("the vpcs process");
    crate::util::unsafe_kill(pid, "KILL");
    let up = ws
        .event("node.updated", 10)
        .expect("node.updated after death");
    assert_eq!(up["event"]["status"], "stopped");
    let log = ws.event("log.error", 5).expect("log.error after death");
    assert!(log["event"]["message"].as_str().unwrap().contains("PC1b"));
    // The console websocket of a stopped node is a 409 before the upgrade.
    let (status, _) = Ws::open(s.addr, &node_url("vpcs", &a, "/console/ws"), None);
    assert_eq!(status, 409);
}

#[test]
fn auth_guards_everything_but_the_console_websocket_and_the_pcap_stream() {
    let dir = temp_dir("pw");
    let pw = dir.join("pw");
    std::fs::write(&pw, "s3cret\n").unwrap();
    let s = Server::start(&[
        "--auth-user",
        "admin",
        "--auth-password-file",
        pw.to_str().unwrap(),
    ]);
    assert_eq!(s.get("/v2/compute/capabilities").status, 401);
    let (status, _) = Ws::open(s.addr, "/v2/compute/notifications/ws", None);
    assert_eq!(status, 401);
    let good = "Basic YWRtaW46czNjcmV0"; // admin:s3cret
    let (status, _) = Ws::open(s.addr, "/v2/compute/notifications/ws", Some(good));
    assert_eq!(status, 101);
    // No credentials on the pcap stream: not a 401 (404: no such node).
    let id = uuid::Uuid::new_v4();
    let r = s.get(&node_url(
        "vpcs",
        &id.to_string(),
        "/adapters/0/ports/0/pcap",
    ));
    assert_eq!(r.status, 404, "{}", r.text);
    let (status, _) = Ws::open(
        s.addr,
        &node_url("vpcs", &id.to_string(), "/console/ws"),
        None,
    );
    assert_eq!(status, 404);
}

#[test]
fn files_stay_inside_the_project() {
    let s = Server::start(&[]);
    let (a, _) = vpcs(&s, "PC1", "ip 10.0.0.1/24\n");
    let r = s.post(
        &format!("/v2/compute/projects/{P}/files/notes/a.txt"),
        "hello",
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let r = s.get(&format!("/v2/compute/projects/{P}/files/notes/a.txt"));
    assert_eq!((r.status, r.text.as_str()), (200, "hello"));
    let list = s.get(&format!("/v2/compute/projects/{P}/files")).json;
    let paths: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"notes/a.txt"), "{paths:?}");
    let md5 = list
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "notes/a.txt")
        .unwrap();
    assert_eq!(md5["md5sum"], "5d41402abc4b2a76b9719d911017c592");
    assert!(
        paths
            .iter()
            .any(|p| p.ends_with(&format!("{a}/startup.vpc")))
    );
    for bad in ["notes/../../x", "..%2Fx/../../y"] {
        let r = s.get(&format!("/v2/compute/projects/{P}/files/{bad}"));
        assert!(r.status == 403 || r.status == 404, "{bad}: {}", r.text);
        assert!(r.json["message"].is_string());
    }
    let r = s.get(&format!("/v2/compute/projects/{P}/files/no/such"));
    r.assert_error(404, "doesn't exist");
}

/// Two VPCS linked through a switch by 2.2's routes; a delay filter on one
/// NIO raises the ping time, suspend stops the replies, and the capture
/// shows the frames that crossed.
#[test]
fn filters_on_a_link_delay_and_suspend_the_traffic() {
    let s = Server::start(&[]);
    let (a, ca) = vpcs(&s, "PC1", "ip 10.0.0.1/24\n");
    let (b, _) = vpcs(&s, "PC2", "ip 10.0.0.2/24\n");
    let r = s.post(
        &format!("/v2/compute/projects/{P}/ethernet_switch/nodes"),
        r#"{"name":"SW1"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let sw = r.json["node_id"].as_str().unwrap().to_string();
    let udp = |s: &Server| {
        s.post(&format!("/v2/compute/projects/{P}/ports/udp"), "")
            .json["udp_port"]
            .as_u64()
            .unwrap()
    };
    let nio = |l: u64, r: u64, filters: &str| {
        format!(
            r#"{{"type":"nio_udp","lport":{l},"rhost":"127.0.0.1","rport":{r},"filters":{filters},"suspend":false}}"#
        )
    };
    let mut links = Vec::new();
    for (i, node) in [&a, &b].into_iter().enumerate() {
        let (p1, p2) = (udp(&s), udp(&s));
        let r = s.post(
            &node_url("vpcs", node, "/adapters/0/ports/0/nio"),
            &nio(p1, p2, "{}"),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        let r = s.post(
            &node_url(
                "ethernet_switch",
                &sw,
                &format!("/adapters/0/ports/{i}/nio"),
            ),
            &nio(p2, p1, "{}"),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        links.push((p1, p2));
    }
    for n in [&a, &b] {
        let r = s.post(&node_url("vpcs", n, "/start"), "");
        assert!(r.status < 300, "{}", r.text);
    }
    let mut c = Console::open(ca);
    let rtt = |c: &mut Console| -> Option<f64> {
        let from = c.seen.len();
        c.send("ping 10.0.0.2 -c 3\n");
        if !c.expect_after(from, "icmp_seq=3", 15) {
            return None;
        }
        let text = String::from_utf8_lossy(&c.seen[from..]).into_owned();
        let times: Vec<f64> = text
            .split("time=")
            .skip(1)
            .filter_map(|t| t.split_whitespace().next()?.parse().ok())
            .collect();
        (!times.is_empty()).then(|| times.iter().sum::<f64>() / times.len() as f64)
    };
    let base = rtt(&mut c).expect("ping across the switch");
    let (p1, p2) = links[0];
    let r = s.req(
        "PUT",
        &node_url("vpcs", &a, "/adapters/0/ports/0/nio"),
        &nio(p1, p2, r#"{"delay":[150,0]}"#),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let slow = rtt(&mut c).expect("ping with a delay");
    // Both directions cross the delayed NIO.
    assert!(slow - base >= 290.0, "base {base} ms, delayed {slow} ms");
    let r = s.req(
        "PUT",
        &node_url("vpcs", &a, "/adapters/0/ports/0/nio"),
        &format!(r#"{{"type":"nio_udp","lport":{p1},"rhost":"127.0.0.1","rport":{p2},"filters":{{"frequency_drop":[-1]}},"suspend":true}}"#),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let from = c.seen.len();
    c.send("ping 10.0.0.2 -c 2\n");
    assert!(c.expect_after(from, "timeout", 15), "{}", c.text());
    assert!(!String::from_utf8_lossy(&c.seen[from..]).contains("bytes from"));
}
