//! GNS3 3.0's compute API (`/v3/compute`) on the real binary: the version
//! rule, capabilities, pings with the disk, node bodies with 3.0's extra
//! keys, the capture routes under `capture/`, and whose credentials each
//! route asks.

use crate::util::{Server, Ws, temp_dir};
use std::io::{Read, Write};

const P: &str = "5f3c1b1e-3c9a-4d6e-9a51-0b7e2b3c4d5e";

fn node_url(kind: &str, id: &str, tail: &str) -> String {
    format!("/v3/compute/projects/{P}/{kind}/nodes/{id}{tail}")
}

#[test]
fn the_version_rule_of_each_controller_is_kept_apart() {
    let s = Server::start(&[]);
    let r = s.get("/v3/compute/capabilities");
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json["version"].as_str().unwrap();
    assert!(v.starts_with("3.0.6+nanolab."), "{v}");
    // What a 3.0 controller compares: the part before '+'.
    assert_eq!(v.split('+').next(), Some("3.0.6"));
    for key in ["cpus", "memory", "disk_size"] {
        assert!(r.json[key].as_u64().unwrap() > 0, "{key}: {}", r.json);
    }
    assert_eq!(s.get("/v3/compute/version").json["version"], "3.0.6");
    // The 2.2 face is unchanged beside it.
    let v2 = s.get("/v2/compute/capabilities").json["version"].clone();
    assert!(v2.as_str().unwrap().starts_with("2.2.61-nanolab."), "{v2}");
    let s = Server::start(&["--gns3-3-version", "3.0.7", "--gns3-version", "2.2.55"]);
    let v = s.get("/v3/compute/capabilities").json["version"].clone();
    assert!(v.as_str().unwrap().starts_with("3.0.7+nanolab."), "{v}");
    let v2 = s.get("/v2/compute/capabilities").json["version"].clone();
    assert!(v2.as_str().unwrap().starts_with("2.2.55-nanolab."), "{v2}");
}

#[test]
fn nodes_made_by_a_3_0_controller_with_their_extra_keys() {
    let s = Server::start(&["--pc-engine", "builtin"]);
    let (status, ws) = Ws::open(s.addr, "/v3/compute/notifications/ws", None);
    assert_eq!(status, 101);
    let mut ws = ws.unwrap();
    // Without disk_usage_percent a 3.0 controller's reader dies.
    let ping = ws.event("ping", 5).expect("a ping at once");
    let disk = ping["event"]["disk_usage_percent"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&disk), "{ping}");
    let r = s.post(
        "/v3/compute/projects",
        &format!(r#"{{"name": "lab", "project_id": "{P}"}}"#),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let pc = uuid::Uuid::new_v4().to_string();
    let body = serde_json::json!({
        "name": "PC1", "node_id": pc, "compute_id": uuid::Uuid::new_v4().to_string(),
        "builtin": true, "usage": "", "console_type": "telnet",
        "startup_script": "set pcname %h\nip 10.3.0.1/24\n",
    });
    let r = s.post(
        &format!("/v3/compute/projects/{P}/vpcs/nodes"),
        &body.to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    for key in ["compute_id", "builtin", "usage"] {
        assert!(r.json.get(key).is_none(), "{key} echoed: {}", r.json);
    }
    assert_eq!(r.json["status"], "stopped");
    // A switch from the builtin template: no ports_mapping, default ports back.
    let sw = uuid::Uuid::new_v4().to_string();
    let body = serde_json::json!({"name": "SW1", "node_id": sw, "builtin": true,
        "compute_id": "c", "console_type": "none"});
    let r = s.post(
        &format!("/v3/compute/projects/{P}/ethernet_switch/nodes"),
        &body.to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["ports_mapping"].as_array().unwrap().len(), 8);
    assert_eq!(r.json["status"], "started");
    // Start: 204, and the status arrives as node.updated.
    let r = s.post(&node_url("vpcs", &pc, "/start"), "");
    assert_eq!(r.status, 204, "{}", r.text);
    let up = ws.event("node.updated", 5).expect("node.updated");
    assert_eq!(up["event"]["status"], "started");
    // Link the switch's port 0 and capture it under capture/.
    let port = node_url("ethernet_switch", &sw, "/adapters/0/ports/0");
    let nio = r#"{"type": "nio_udp", "lport": 10100, "rhost": "127.0.0.1", "rport": 10101, "filters": {}, "suspend": false}"#;
    let r = s.post(&format!("{port}/nio"), nio);
    assert_eq!(r.status, 201, "{}", r.text);
    let r = s.post(
        &format!("{port}/capture/start"),
        r#"{"capture_file_name": "SW1_0.pcap", "data_link_type": "DLT_EN10MB"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.json["pcap_file_path"]
            .as_str()
            .unwrap()
            .ends_with("SW1_0.pcap")
    );
    // The stream starts with the pcap global header.
    let mut c = s.connect();
    let get = format!("GET {port}/capture/stream HTTP/1.1\r\nHost: x\r\n\r\n");
    c.write_all(get.as_bytes()).unwrap();
    let mut got = Vec::new();
    let magic = [0xd4, 0xc3, 0xb2, 0xa1];
    let mut chunk = [0u8; 4096];
    while !got.windows(4).any(|w| w == magic) {
        let n = c.read(&mut chunk).unwrap();
        assert!(n > 0, "stream ended: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200"));
    let r = s.post(&format!("{port}/capture/stop"), "");
    assert_eq!(r.status, 204, "{}", r.text);
    // 2.2's capture names are not 3.0's.
    let r = s.post(&format!("{port}/start_capture"), "{}");
    assert_eq!(r.status, 404, "{}", r.text);
    let r = s.req("DELETE", &format!("/v3/compute/projects/{P}"), "");
    assert_eq!(r.status, 204, "{}", r.text);
}

#[test]
fn the_capture_stream_asks_the_computes_credentials_the_console_none() {
    let dir = temp_dir("pw3");
    let pw = dir.join("pw");
    std::fs::write(&pw, "s3cret\n").unwrap();
    let s = Server::start(&[
        "--auth-user",
        "admin",
        "--auth-password-file",
        pw.to_str().unwrap(),
    ]);
    assert_eq!(s.get("/v3/compute/capabilities").status, 401);
    let id = uuid::Uuid::new_v4().to_string();
    // 3.0 sends the compute's credentials on the capture stream: without
    // them, a 401.
    let stream = node_url("vpcs", &id, "/adapters/0/ports/0/capture/stream");
    assert_eq!(s.get(&stream).status, 401);
    // The console websocket comes with the controller's own credentials,
    // not the compute's: not a 401 (404: no such node).
    let (status, _) = Ws::open(s.addr, &node_url("vpcs", &id, "/console/ws"), None);
    assert_eq!(status, 404);
    let good = "Basic YWRtaW46czNjcmV0"; // admin:s3cret
    let (status, _) = Ws::open(s.addr, "/v3/compute/notifications/ws", Some(good));
    assert_eq!(status, 101);
}
