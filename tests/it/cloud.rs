//! Cloud nodes (`cloud` on `/v2/compute` and `/v3/compute`): a port that
//! reaches a TAP device, inside a network namespace the test makes. A PC
//! linked to the cloud pings the host side of the TAP through nanolab's
//! relay; the capture on the cloud port sees it.

use crate::tap::Netns;
use crate::util::{Console, Server};

const P: &str = "6a1d2c3b-4e5f-4a6b-9c7d-8e9f0a1b2c3d";

fn nio(lport: u64, rport: u64) -> String {
    format!(
        r#"{{"type": "nio_udp", "lport": {lport}, "rhost": "127.0.0.1", "rport": {rport}, "filters": {{}}, "suspend": false}}"#
    )
}

#[test]
fn a_pc_reaches_the_host_through_a_cloud_on_a_tap() {
    let ns = Netns::new("cloud");
    ns.ip(&["tuntap", "add", "dev", "nlctap0", "mode", "tap"]);
    ns.ip(&["addr", "add", "10.78.0.2/24", "dev", "nlctap0"]);
    ns.ip(&["link", "set", "nlctap0", "up"]);
    ns.within(|| {
        let s = Server::start(&[]);
        let c = "/v3/compute/projects";
        let r = s.post(c, &format!(r#"{{"name": "lab", "project_id": "{P}"}}"#));
        assert_eq!(r.status, 201, "{}", r.text);
        // 3.0's cloud body, extra keys and all; ports renumbered in order.
        let body = r#"{"name": "Cloud1", "builtin": true, "compute_id": "x",
            "remote_console_type": "none", "interfaces": [],
            "ports_mapping": [{"name": "nlctap0", "port_number": 7, "type": "tap", "interface": "nlctap0"}]}"#;
        let r = s.post(&format!("{c}/{P}/cloud/nodes"), body);
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.json["status"], "started");
        let ports = &r.json["ports_mapping"];
        assert_eq!(ports[0]["port_number"], 0, "{ports}");
        assert_eq!(ports[0]["type"], "tap");
        assert!(r.json.get("builtin").is_none());
        // The host's interfaces, for the web UI's port editor.
        let ifs = r.json["interfaces"].as_array().unwrap();
        let tap = ifs.iter().find(|i| i["name"] == "nlctap0");
        let tap = tap.unwrap_or_else(|| panic!("the tap is not among {ifs:?}"));
        assert_eq!(tap["special"], false);
        let lo = ifs.iter().find(|i| i["name"] == "lo").expect("lo");
        assert_eq!(lo["special"], true);
        let cloud = r.json["node_id"].as_str().unwrap().to_string();
        let body = r#"{"name": "PC1", "startup_script": "ip 10.78.0.1/24\n"}"#;
        let r = s.post(&format!("{c}/{P}/vpcs/nodes"), body);
        assert_eq!(r.status, 201, "{}", r.text);
        let (pc, console) = (
            r.json["node_id"].as_str().unwrap().to_string(),
            r.json["console"].as_u64().unwrap() as u16,
        );
        // Link them as a controller does: a UDP port on each side.
        let udp = |_| s.post(&format!("{c}/{P}/ports/udp"), "").json["udp_port"]
            .as_u64()
            .unwrap();
        let (a, b) = (udp(0), udp(1));
        let pc_port = format!("{c}/{P}/vpcs/nodes/{pc}/adapters/0/ports/0");
        let cl_port = format!("{c}/{P}/cloud/nodes/{cloud}/adapters/0/ports/0");
        assert_eq!(s.post(&format!("{pc_port}/nio"), &nio(a, b)).status, 201);
        let r = s.post(&format!("{cl_port}/nio"), &nio(b, a));
        assert_eq!(r.status, 201, "{}", r.text);
        let r = s.post(
            &format!("{cl_port}/capture/start"),
            r#"{"capture_file_name": "cloud.pcap", "data_link_type": "DLT_EN10MB"}"#,
        );
        assert_eq!(r.status, 200, "{}", r.text);
        let pcap = r.json["pcap_file_path"].as_str().unwrap().to_string();
        assert_eq!(s.post(&format!("{c}/{P}/vpcs/nodes/{pc}/start"), "").status, 204);
        let mut con = Console::open(console);
        assert!(con.expect("VPCS>", 10), "{}", con.text());
        con.send("ping 10.78.0.2 -c 3\n");
        assert!(
            con.expect("icmp_seq=3", 15),
            "no reply from the host side of the TAP: {}",
            con.text()
        );
        assert!(con.text().contains("10.78.0.2 icmp_seq=1 ttl="), "{}", con.text());
        assert_eq!(s.post(&format!("{cl_port}/capture/stop"), "").status, 204);
        let dump = std::process::Command::new("tcpdump")
            .args(["-nr", &pcap])
            .output()
            .unwrap();
        let dump = String::from_utf8_lossy(&dump.stdout);
        assert!(dump.contains("ICMP echo reply"), "{dump}");
        // A cloud is always started; deleting it closes its host sides.
        // New ports only while none is linked (as GNS3): refused, then
        // taken once the link is gone; the old host side closes, the new
        // TAP devices are made.
        let two = r#"{"ports_mapping": [
            {"name": "a", "port_number": 0, "type": "tap", "interface": "nlctap1"},
            {"name": "b", "port_number": 5, "type": "tap", "interface": "nlctap2"}]}"#;
        let node = format!("{c}/{P}/cloud/nodes/{cloud}");
        s.req("PUT", &node, two).assert_error(409, "delete its links first");
        assert_eq!(s.req("DELETE", &format!("{cl_port}/nio"), "").status, 204);
        let r = s.req("PUT", &node, two);
        assert_eq!(r.status, 200, "{}", r.text);
        let ports = &r.json["ports_mapping"];
        assert_eq!((ports[0]["name"].as_str(), ports[1]["port_number"].as_u64()), (Some("a"), Some(1)), "{ports}");
        let link_up = |dev: &str| {
            std::process::Command::new("ip")
                .args(["link", "show", dev])
                .output()
                .unwrap()
                .status
                .success()
        };
        assert!(link_up("nlctap1") && link_up("nlctap2"), "the new TAP devices exist");
        let r = s.req("PUT", &node, r#"{"ports_mapping": []}"#);
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(
            crate::util::wait_for(5, || !link_up("nlctap1")),
            "a TAP device nanolab made goes with its port"
        );
        let r = s.req("DELETE", &format!("{c}/{P}/cloud/nodes/{cloud}"), "");
        assert_eq!(r.status, 204, "{}", r.text);
        assert_eq!(
            s.get(&format!("{c}/{P}/cloud/nodes/{cloud}")).status,
            404
        );
        // A port type nanolab does not serve is refused, saying so.
        let body = r#"{"name": "C2", "ports_mapping": [{"name": "u", "port_number": 0, "type": "udp", "lport": 1, "rhost": "h", "rport": 2}]}"#;
        let r = s.post(&format!("{c}/{P}/cloud/nodes"), body);
        assert!(r.status == 400 || r.status == 409, "{} {}", r.status, r.text);
    });
}
