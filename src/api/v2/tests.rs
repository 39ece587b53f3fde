//! The 2.2 and 3.0 compute front-end: routes, bodies, shapes, credentials.

use super::*;
use crate::api::answer::{Body, VpcsView};
use crate::api::command::VlanMode;
use crate::proto::http::parse::test_request;
use serde_json::Value;

fn req(method: &str, path: &str, body: &str, extra: &str) -> Request {
    test_request(method, path, extra, body)
}

const P: &str = "42f9feee-3217-4104-981e-85d5f0a806ec";
const V: &str = "1b29e1b6-8d3a-4a4b-9d2c-5a6f7e8d9c0b";

fn cmd(method: &str, path: &str, body: &str) -> Result<Command, ApiError> {
    decode(&req(method, path, body, ""), None).command
}

#[test]
fn node_routes_name_their_type() {
    let base = format!("/v2/compute/projects/{P}");
    let Ok(Command::Node(r, NodeCommand::Start)) =
        cmd("POST", &format!("{base}/vpcs/nodes/{V}/start"), "")
    else {
        panic!()
    };
    assert_eq!((r.class, r.node.to_string()), (NodeClass::Vpcs, V.into()));
    // Starting a switch does nothing, as in 2.2.
    let c = cmd(
        "POST",
        &format!("{base}/ethernet_switch/nodes/{V}/start"),
        "",
    );
    assert!(
        matches!(c, Ok(Command::Node(_, NodeCommand::Suspend))),
        "{c:?}"
    );
    let c = cmd("POST", &format!("{base}/qemu/nodes/{V}/start"), "");
    assert!(
        matches!(&c, Ok(Command::Node(r, NodeCommand::Start)) if r.class == NodeClass::Qemu),
        "{c:?}"
    );
    let c = cmd("POST", &format!("{base}/docker/nodes/{V}/start"), "");
    assert!(
        matches!(&c, Ok(Command::Node(r, NodeCommand::Start)) if r.class == NodeClass::Docker),
        "{c:?}"
    );
    let e = cmd("POST", &format!("{base}/iou/nodes/{V}/start"), "").unwrap_err();
    assert_eq!(e.status(), 404);
    let c = cmd(
        "POST",
        &format!("{base}/vpcs/nodes/{V}/adapters/0/ports/0/nio"),
        r#"{"type":"nio_udp","lport":20000,"rhost":"127.0.0.1","rport":20001,
           "filters":{"delay":[100,10],"bpf":["icmp\nudp port 53"]},"suspend":false}"#,
    );
    let Ok(Command::Node(_, NodeCommand::AttachNio(at, _, f))) = c else {
        panic!("{c:?}")
    };
    assert_eq!((at.adapter, at.port), (0, 0));
    assert_eq!(f.delay, Some((100, 10)));
    assert_eq!(f.bpf, ["icmp\nudp port 53"]);
    let c = cmd(
        "PUT",
        &format!("{base}/vpcs/nodes/{V}/adapters/0/ports/0/nio"),
        r#"{"type":"nio_udp","lport":20000,"rhost":"127.0.0.1","rport":20001,
           "filters":{"frequency_drop":[-1]},"suspend":true}"#,
    );
    let Ok(Command::Node(_, NodeCommand::SetFilters(_, f))) = c else {
        panic!("{c:?}")
    };
    assert!(f.suspend && f.frequency_drop == Some(-1));
}

#[test]
fn bodies_follow_2_2_schemas() {
    let base = format!("/v2/compute/projects/{P}");
    let c = cmd(
        "POST",
        &format!("{base}/vpcs/nodes"),
        &format!(r#"{{"name":"PC1","node_id":"{V}","console":5000,"console_type":"telnet"}}"#),
    );
    let Ok(Command::CreateNode(_, NodeCreate::Vpcs(b))) = c else {
        panic!("{c:?}")
    };
    assert!(b.console_pick && b.console_telnet);
    assert_eq!(
        (b.vm_id.unwrap().to_string(), b.console),
        (V.into(), Some(5000))
    );
    let e = cmd(
        "POST",
        &format!("{base}/vpcs/nodes"),
        r#"{"name":"x","vm_id":1}"#,
    );
    assert_eq!(e.unwrap_err().status(), 400);
    let c = cmd(
        "POST",
        &format!("{base}/ethernet_switch/nodes"),
        r#"{"name":"SW1"}"#,
    );
    let Ok(Command::CreateNode(_, NodeCreate::Device(d))) = c else {
        panic!("{c:?}")
    };
    let m = d.mapping.unwrap();
    assert_eq!(m.len(), 8);
    assert_eq!(
        (m[7].name.as_str(), m[7].vlan),
        ("Ethernet7", Some((VlanMode::Access, 1)))
    );
    let e = cmd(
        "POST",
        &format!("{base}/vpcs/nodes/{V}/adapters/0/ports/0/nio"),
        r#"{"type":"nio_udp","lport":1,"rhost":"127.0.0.1","rport":2,"filters":{"x":[1]}}"#,
    );
    assert!(e.unwrap_err().to_string().contains("Unknown filter 'x'"));
    let c = cmd(
        "POST",
        "/v2/compute/projects",
        &format!(r#"{{"name":"lab","project_id":"{P}","variables":[{{"name":"a","value":"1"}}]}}"#),
    );
    let Ok(Command::CreateProject(p)) = c else {
        panic!("{c:?}")
    };
    assert_eq!(
        p.variables.as_deref(),
        Some(r#"[{"name":"a","value":"1"}]"#)
    );
}

#[test]
fn auth_spares_the_console_websocket_and_the_pcap_stream() {
    let creds = Credentials::new("u", "p");
    let d = decode(
        &req("GET", "/v2/compute/capabilities", "", ""),
        Some(&creds),
    );
    assert_eq!(d.command.unwrap_err(), ApiError::Unauthorized);
    let pcap = format!("/v2/compute/projects/{P}/vpcs/nodes/{V}/adapters/0/ports/0/pcap");
    assert!(
        decode(&req("GET", &pcap, "", ""), Some(&creds))
            .command
            .is_ok()
    );
    let ws = format!("/v2/compute/projects/{P}/vpcs/nodes/{V}/console/ws");
    let hs = "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    assert!(
        decode(&req("GET", &ws, "", hs), Some(&creds))
            .command
            .is_ok()
    );
    // A websocket route without the handshake is a 400.
    assert_eq!(
        decode(&req("GET", &ws, "", ""), None)
            .command
            .unwrap_err()
            .status(),
        400
    );
}

#[test]
fn only_statuses_the_controller_maps() {
    let d = decode(&req("DELETE", "/v2/compute/capabilities", "", ""), None);
    assert_eq!(d.command.unwrap_err().status(), 404);
    let r = render(None, Err(ApiError::PayloadTooLarge { limit: 1, size: 2 }));
    assert_eq!(r.status, 400);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert!(v["message"].is_string());
}

#[test]
fn node_objects_have_exactly_2_2_keys() {
    let v = VpcsView {
        id: uuid::Uuid::nil(),
        project: uuid::Uuid::nil(),
        name: "PC1".into(),
        console: 5000,
        startup_script: None,
        startup_script_path: None,
        status: "started",
        console_telnet: true,
        directory: "/p/project-files/vpcs/x".into(),
        command_line: String::new(),
    };
    let j = vpcs_json(&v);
    let mut keys: Vec<&str> = j.as_object().unwrap().keys().map(|k| k.as_str()).collect();
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
    let caps = body_json(Body::Capabilities("2.2.61-nanolab.0.1.0".into()));
    let mut keys: Vec<&str> = caps
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort();
    assert_eq!(keys, ["node_types", "platform", "version"]);
}

fn cmd3(method: &str, path: &str, body: &str) -> Result<Command, ApiError> {
    decode_v3(&req(method, path, body, ""), None).command
}

#[test]
fn v3_capture_routes_live_under_capture() {
    let port = format!("/v3/compute/projects/{P}/vpcs/nodes/{V}/adapters/0/ports/0");
    let body = r#"{"capture_file_name": "a.pcap", "data_link_type": "DLT_EN10MB"}"#;
    assert!(matches!(
        cmd3("POST", &format!("{port}/capture/start"), body),
        Ok(Command::Node(_, NodeCommand::StartCapture(..)))
    ));
    assert!(matches!(
        cmd3("POST", &format!("{port}/capture/stop"), ""),
        Ok(Command::Node(_, NodeCommand::StopCapture(_)))
    ));
    assert!(matches!(
        cmd3("GET", &format!("{port}/capture/stream"), ""),
        Ok(Command::Node(_, NodeCommand::WatchCapture(_)))
    ));
    // 2.2's names are gone in 3.0, and 3.0's are not 2.2's.
    let e = cmd3("POST", &format!("{port}/start_capture"), body).unwrap_err();
    assert!(e.to_string().contains("/v3/compute"), "{e}");
    let v2port = port.replace("/v3/", "/v2/");
    assert!(cmd("POST", &format!("{v2port}/capture/start"), body).is_err());
    assert!(matches!(
        cmd3("GET", "/v3/compute/capabilities", ""),
        Ok(Command::Capabilities3)
    ));
}

#[test]
fn v3_node_bodies_drop_the_keys_a_compute_does_not_use() {
    let body = format!(
        r#"{{"name": "PC1", "node_id": "{V}", "compute_id": "{P}", "builtin": true, "usage": "", "startup_script": "ip 10.0.0.1"}}"#
    );
    let Ok(Command::CreateNode(_, NodeCreate::Vpcs(b))) = cmd3(
        "POST",
        &format!("/v3/compute/projects/{P}/vpcs/nodes"),
        &body,
    ) else {
        panic!("refused");
    };
    assert_eq!(b.name, "PC1");
    assert_eq!(b.startup_script.as_deref(), Some("ip 10.0.0.1"));
    // 2.2 refuses what it does not know; 3.0 still checks what it knows.
    let e = cmd(
        "POST",
        &format!("/v2/compute/projects/{P}/vpcs/nodes"),
        &body,
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("Unknown property"), "{e}");
    let bad = format!(r#"{{"name": 5, "node_id": "{V}", "compute_id": "{P}"}}"#);
    let e = cmd3(
        "POST",
        &format!("/v3/compute/projects/{P}/vpcs/nodes"),
        &bad,
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "Field 'name' must be a string, not a number");
    let sw = r#"{"name": "SW1", "compute_id": "x", "builtin": true, "console_type": "none"}"#;
    assert!(matches!(
        cmd3(
            "POST",
            &format!("/v3/compute/projects/{P}/ethernet_switch/nodes"),
            sw
        ),
        Ok(Command::CreateNode(_, NodeCreate::Device(_)))
    ));
}

#[test]
fn v3_asks_credentials_for_the_capture_stream_not_the_console() {
    let creds = Credentials::new("u", "p");
    let n = format!("/v3/compute/projects/{P}/vpcs/nodes/{V}");
    let stream = format!("{n}/adapters/0/ports/0/capture/stream");
    let d = decode_v3(&req("GET", &stream, "", ""), Some(&creds));
    assert_eq!(d.command.unwrap_err(), ApiError::Unauthorized);
    let ws = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    let d = decode_v3(
        &req("GET", &format!("{n}/console/ws"), "", ws),
        Some(&creds),
    );
    assert!(
        !matches!(d.command, Err(ApiError::Unauthorized)),
        "{:?}",
        d.command
    );
}

#[test]
fn v3_capabilities_and_pings_say_what_3_0_reads() {
    use crate::api::answer::{Load, Machine, Notice};
    let m = Machine {
        cpus: 2,
        memory: 1 << 30,
        disk_size: 1 << 34,
    };
    let caps = body_json(Body::Capabilities3("3.0.6+nanolab.0.1.0".into(), m));
    assert_eq!(caps["version"], "3.0.6+nanolab.0.1.0");
    assert_eq!(
        (caps["cpus"].as_u64(), caps["disk_size"].as_u64()),
        (Some(2), Some(1 << 34))
    );
    let load = Load {
        cpu_usage_percent: 1.0,
        memory_usage_percent: 2.0,
        disk_usage_percent: 3.0,
    };
    let v3: Value = serde_json::from_str(&notification_v3(&Notice::Load(&load)).unwrap()).unwrap();
    assert_eq!(v3["event"]["disk_usage_percent"], 3.0);
    let v2: Value = serde_json::from_str(&notification(&Notice::Load(&load)).unwrap()).unwrap();
    assert!(v2["event"].get("disk_usage_percent").is_none());
}

#[test]
fn every_route_lives_under_its_prefix() {
    assert!(TABLE.iter().all(|r| r.1.starts_with("/v2/compute/")));
    assert!(TABLE_V3.iter().all(|r| r.1.starts_with("/v3/compute/")));
    assert_eq!(TABLE.len(), TABLE_V3.len());
    let node = format!("/v3/compute/projects/{P}/vpcs/nodes/{V}");
    assert!(matches!(
        decode_v3(&req("DELETE", &node, "", ""), None).command,
        Ok(Command::Node(_, NodeCommand::Delete))
    ));
}
