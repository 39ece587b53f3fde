//! The seed's sample session, with real curl and the real vpcs.

use crate::util::{Console, Server};
use serde_json::Value;
use std::process::Command;

fn curl(args: &[&str]) -> Value {
    let out = Command::new("curl")
        .arg("-s")
        .args(args)
        .output()
        .expect("curl is installed");
    assert!(out.status.success(), "curl {args:?} failed");
    if out.stdout.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&out.stdout)))
}

/// `curl -X POST URL -d BODY`, as the seed types it.
fn curl_post(url: &str, body: &str) -> Value {
    curl(&["-X", "POST", url, "-d", body])
}

#[test]
fn seed_first_commands_with_curl() {
    let srv = Server::start(&[]);
    assert_eq!(
        curl(&[&srv.url("/v1/version")]),
        serde_json::json!({"local": false, "version": "1.3.13"})
    );
    let p = curl_post(&srv.url("/v1/projects"), r#"{"name": "test"}"#);
    assert_eq!(
        (p["name"].as_str(), p["temporary"].as_bool()),
        (Some("test"), Some(false))
    );
    let pid = p["project_id"].as_str().unwrap();
    let ports = srv.url(&format!("/v1/projects/{pid}/ports/udp"));
    assert_eq!(
        curl_post(&ports, "{}"),
        serde_json::json!({"udp_port": srv.udp.0})
    );
    assert_eq!(
        curl_post(&ports, "{}"),
        serde_json::json!({"udp_port": srv.udp.0 + 1})
    );
}

/// The whole sample session: two VMs, two tunnels, consoles, and a ping.
#[test]
fn seed_session_pings_across_the_tunnel() {
    let srv = Server::start(&[]);
    let p = curl_post(&srv.url("/v1/projects"), r#"{"name": "test"}"#);
    let pid = p["project_id"].as_str().unwrap().to_string();
    let vms = srv.url(&format!("/v1/projects/{pid}/vpcs/vms"));
    let v1 = curl_post(&vms, r#"{"name": "VPCS 1"}"#);
    let v2 = curl_post(&vms, r#"{"name": "VPCS 2"}"#);
    assert_eq!(
        (v1["console"].as_u64(), v2["console"].as_u64()),
        (Some(srv.console.0 as u64), Some(srv.console.0 as u64 + 1))
    );
    assert_eq!(v1["name"], "VPCS 1");
    assert_eq!(v1["project_id"].as_str(), Some(pid.as_str()));
    let ports = srv.url(&format!("/v1/projects/{pid}/ports/udp"));
    let l1 = curl_post(&ports, "{}")["udp_port"].as_u64().unwrap();
    let l2 = curl_post(&ports, "{}")["udp_port"].as_u64().unwrap();
    let nio = |vm: &Value, l: u64, r: u64| {
        let url = format!(
            "{vms}/{}/adapters/0/ports/0/nio",
            vm["vm_id"].as_str().unwrap()
        );
        let body =
            format!(r#"{{"lport": {l}, "rhost": "127.0.0.1", "rport": {r}, "type": "nio_udp"}}"#);
        let echoed = curl_post(&url, &body);
        assert_eq!(
            echoed,
            serde_json::json!({"lport": l, "rhost": "127.0.0.1", "rport": r, "type": "nio_udp"})
        );
    };
    nio(&v1, l1, l2);
    nio(&v2, l2, l1);
    for vm in [&v1, &v2] {
        let url = format!("{vms}/{}/start", vm["vm_id"].as_str().unwrap());
        assert_eq!(curl_post(&url, "{}"), Value::Null, "start answers 204");
    }
    let mut c1 = Console::open(v1["console"].as_u64().unwrap() as u16);
    assert!(c1.expect("VPCS>", 5), "banner and prompt: {}", c1.text());
    c1.send("ip 192.168.1.1\r\n");
    assert!(c1.expect("192.168.1.1 255.255.255.0", 10), "{}", c1.text());
    let mut c2 = Console::open(v2["console"].as_u64().unwrap() as u16);
    assert!(
        c2.expect("Virtual PC Simulator", 5),
        "a new client sees recent output: {}",
        c2.text()
    );
    c2.send("ip 192.168.1.2\r\n");
    assert!(c2.expect("192.168.1.2 255.255.255.0", 10), "{}", c2.text());
    let mark = c2.seen.len();
    c2.send("ping 192.168.1.1\r\n");
    // vpcs 0.5b2 prints "192.168.1.1 icmp_seq=1 ttl=64 time=0.3 ms" per reply.
    assert!(
        c2.expect_after(mark, "icmp_seq=2 ttl=64", 15),
        "{}",
        c2.text()
    );
    // And the other way.
    let back = c1.seen.len();
    c1.send("ping 192.168.1.2\r\n");
    assert!(
        c1.expect_after(back, "icmp_seq=2 ttl=64", 15),
        "{}",
        c1.text()
    );
    c2.send("disconnect\r\n");
    assert!(c2.expect_after(mark, "Good-bye", 10));
    assert!(c2.closed_within(5));
}
