//! The status page in a real browser (headless Chromium through
//! WebDriver, as `webui.rs` drives it): a lab of three built-in PCs, a
//! switch with access ports and a trunk, a hub, a capture and a filter,
//! pings flowing; every node and link must be drawn with its labels, a
//! rate must go above zero while the pings flow, and the page must update
//! in place (not reload). The screenshot is left under
//! `target/status-page/`. Also `status.json`, and a project's own page.

use crate::util::{Console, Server};
use crate::webui::selenium;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

const P: &str = "7ab0f1e2-0d3c-4c5b-9e1f-2a3b4c5d6e7f";

struct Lab {
    s: Server,
    pcs: Vec<(String, u16)>,
}

fn url(kind: &str, node: &str, tail: &str) -> String {
    format!("/v2/compute/projects/{P}/{kind}/nodes/{node}{tail}")
}

/// PC1 and PC2 on access ports of SW1 (VLAN 10), SW1's trunk (native
/// VLAN 10) to HUB1, PC3 on the hub; a delay filter on PC1's link, a
/// capture on SW1's port 1.
fn lab() -> Lab {
    let s = Server::start(&["--pc-engine", "builtin"]);
    let r = s.post(
        "/v2/compute/projects",
        &json!({"name": "drawn", "project_id": P}).to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let node = |kind: &str, body: Value| {
        let r = s.post(
            &format!("/v2/compute/projects/{P}/{kind}/nodes"),
            &body.to_string(),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        (
            r.json["node_id"].as_str().unwrap().to_string(),
            r.json["console"].as_u64().unwrap_or(0) as u16,
        )
    };
    let mut pcs = Vec::new();
    for (i, name) in ["PC1", "PC2", "PC3"].into_iter().enumerate() {
        let script = format!("ip 10.0.0.{}/24\n", i + 1);
        let (id, console) = node("vpcs", json!({"name": name, "startup_script": script}));
        pcs.push((id, console));
    }
    let mapping = json!([
        {"name": "Ethernet0", "port_number": 0, "type": "access", "vlan": 10},
        {"name": "Ethernet1", "port_number": 1, "type": "access", "vlan": 10},
        {"name": "Ethernet2", "port_number": 2, "type": "dot1q", "vlan": 10},
    ]);
    let (sw, _) = node(
        "ethernet_switch",
        json!({"name": "SW1", "ports_mapping": mapping}),
    );
    let (hub, _) = node("ethernet_hub", json!({"name": "HUB1"}));
    let udp = || {
        s.post(&format!("/v2/compute/projects/{P}/ports/udp"), "")
            .json["udp_port"]
            .as_u64()
            .unwrap()
    };
    let join = |(ka, a, pa): (&str, &str, u64), (kb, b, pb): (&str, &str, u64), filters: Value| {
        let (l, r) = (udp(), udp());
        for (kind, n, port, lport, rport, f) in
            [(ka, a, pa, l, r, &filters), (kb, b, pb, r, l, &json!({}))]
        {
            let nio = json!({"type": "nio_udp", "lport": lport, "rhost": "127.0.0.1", "rport": rport,
                             "filters": f, "suspend": false});
            let at = url(kind, n, &format!("/adapters/0/ports/{port}/nio"));
            let r = s.post(&at, &nio.to_string());
            assert_eq!(r.status, 201, "{at}: {}", r.text);
        }
    };
    join(
        ("vpcs", &pcs[0].0, 0),
        ("ethernet_switch", &sw, 0),
        json!({"delay": [1, 0]}),
    );
    join(
        ("vpcs", &pcs[1].0, 0),
        ("ethernet_switch", &sw, 1),
        json!({}),
    );
    join(
        ("ethernet_switch", &sw, 2),
        ("ethernet_hub", &hub, 0),
        json!({}),
    );
    join(("vpcs", &pcs[2].0, 0), ("ethernet_hub", &hub, 1), json!({}));
    let capture = json!({"capture_file_name": "sw1-port1.pcap", "data_link_type": "DLT_EN10MB"});
    let r = s.post(
        &url("ethernet_switch", &sw, "/adapters/0/ports/1/start_capture"),
        &capture.to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    for (id, _) in &pcs {
        let r = s.post(&url("vpcs", id, "/start"), "");
        assert!(r.status < 300, "{}", r.text);
    }
    Lab { s, pcs }
}

#[test]
fn the_status_page_draws_the_lab_and_its_traffic_in_a_real_browser() {
    for program in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            Path::new(program).exists(),
            "{program} is missing (apt-get install chromium chromium-driver)"
        );
    }
    let python = selenium();
    let lab = lab();
    // Pings through the switch, the trunk and the hub, for the rates.
    let mut c = Console::open(lab.pcs[0].1);
    assert!(c.expect("> ", 5), "{}", c.text());
    c.send("ping 10.0.0.3 -c 30\r\n");
    assert!(
        c.expect("icmp_seq=2", 15),
        "PC1 does not reach PC3: {}",
        c.text()
    );
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("status-page");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let look = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/it/status/look.py"
        ))
        .arg(lab.s.url("/"))
        .arg(&out)
        .output()
        .expect("python");
    assert!(
        look.status.success(),
        "look.py: {}",
        String::from_utf8_lossy(&look.stderr)
    );
    let seen: Value = serde_json::from_slice(&look.stdout).expect("look.py's JSON");
    let texts: Vec<String> = serde_json::from_value(seen["texts"].clone()).unwrap();
    let has = |needle: &str| texts.iter().any(|t| t.contains(needle));
    for needle in [
        "PC1",
        "PC2",
        "PC3",
        "SW1",
        "HUB1",
        "VPCS started",
        "switch started",
        "hub started",
        "port 2 trunk 802.1Q, native VLAN 10",
        "port 0 access VLAN 10",
        "capture",
        "filters",
    ] {
        assert!(has(needle), "{needle} is not drawn: {texts:?}");
    }
    let rates: Vec<String> = serde_json::from_value(seen["rate_labels"].clone()).unwrap();
    assert_eq!(rates.len(), 4, "four links, each drawn once: {rates:?}");
    let moving = rates
        .iter()
        .filter(|r| !r.contains("\u{2192} 0 f/s") && r.contains("f/s"))
        .count();
    assert!(
        moving >= 1,
        "no rate above zero while pings flow: {rates:?}"
    );
    assert_eq!(
        seen["kept"], "yes",
        "the page reloaded instead of updating in place"
    );
    assert!(seen["sparklines"].as_u64().unwrap() >= 4, "graphs: {seen}");
    let tables = seen["tables"].as_str().unwrap();
    assert!(
        tables.contains("Addresses SW1 learnt"),
        "MAC table: {tables}"
    );
    assert!(out.join("status.png").exists());
}

#[test]
fn status_json_and_a_project_page_say_the_same() {
    let lab = lab();
    let mut c = Console::open(lab.pcs[1].1);
    assert!(c.expect("> ", 5), "{}", c.text());
    c.send("ping 10.0.0.1 -c 2\r\n");
    assert!(c.expect("icmp_seq=2", 15), "{}", c.text());
    let v = lab.s.get("/status.json");
    assert_eq!(v.status, 200, "{}", v.text);
    assert_eq!(v.json["pc_engine"], "builtin");
    let p = &v.json["projects"][0];
    assert_eq!(p["name"], "drawn");
    let names: Vec<&str> = p["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["HUB1", "PC1", "PC2", "PC3", "SW1"]);
    assert_eq!(p["links"].as_array().unwrap().len(), 4, "{}", p["links"]);
    let sw = &p["nodes"][4];
    assert_eq!(sw["ports"][2]["mode"], "trunk 802.1Q, native VLAN 10");
    assert_eq!(sw["ports"][1]["capturing"], true);
    assert!(!sw["mac_table"].as_array().unwrap().is_empty(), "{sw}");
    assert!(
        p["nodes"][1]["ports"][0]["counters"]["out_frames"]
            .as_u64()
            .unwrap()
            > 0
    );
    let page = lab.s.get(&format!("/projects/{P}"));
    assert_eq!(page.status, 200);
    assert!(page.text.contains("HUB1") && page.text.contains("<svg class=\"topology\""));
    lab.s
        .get(&format!("/projects/{}", uuid::Uuid::new_v4()))
        .assert_error(404, "doesn't exist");
    lab.s
        .get("/projects/nope")
        .assert_error(404, "not a project id");
}

#[test]
fn projects_on_disk_are_listed_and_opened_from_the_page() {
    let s = Server::start(&[]);
    let body = json!({"name": "kept", "project_id": P}).to_string();
    assert_eq!(s.post("/v2/compute/projects", &body).status, 201);
    let list = s.get("/v2/compute/projects");
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.json[0]["project_id"], P);
    assert_eq!(list.json[0]["name"], "kept");
    assert_eq!(
        s.post(&format!("/v2/compute/projects/{P}/close"), "")
            .status,
        204
    );
    assert_eq!(s.get("/v2/compute/projects").json, json!([]));
    let page = s.get("/");
    let form = format!("action=\"/projects/{P}/open\"");
    assert!(
        page.text.contains("On disk, not open") && page.text.contains(&form),
        "{}",
        page.text
    );
    assert_eq!(s.get("/status.json").json["closed_projects"], json!([P]));
    let opened = s.post(&format!("/projects/{P}/open"), "");
    assert_eq!(opened.status, 302, "{}", opened.text);
    assert_eq!(
        opened.header("Location"),
        Some(format!("/projects/{P}").as_str())
    );
    assert_eq!(s.get("/v2/compute/projects").json[0]["project_id"], P);
    assert!(!s.get("/").text.contains("On disk, not open"));
}
