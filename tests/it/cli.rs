//! Command line, config file and the `--record` log.

use crate::util::{Server, temp_dir};
use std::process::Command;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nanolab"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn bad_flags_print_one_line_and_exit_2() {
    let out = run(&["--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    // One line that names the mistake and where help is, not the usage.
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--bogus") && err.contains("see nanolab --help"),
        "{err}"
    );
    assert_eq!(run(&["--port", "many"]).status.code(), Some(2));
}

#[test]
fn version_and_help() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("nanolab "));
    let help = String::from_utf8_lossy(&run(&["--help"]).stdout).into_owned();
    for flag in [
        "--host",
        "--port",
        "--local",
        "--allow-remote-console",
        "--projects-dir",
        "--vpcs",
        "--console-ports",
        "--udp-ports",
        "--config",
        "--debug",
        "--quiet",
        "--log",
        "--record",
        "--auth-user",
        "--auth-password-file",
    ] {
        assert!(help.contains(flag), "{flag}");
    }
    let synopsis = help.split("\n\n").next().unwrap();
    assert!(synopsis.contains("--auth-password-file"), "{synopsis}");
}

#[test]
fn config_errors_name_the_line_without_the_usage() {
    let dir = temp_dir("range");
    let ini = dir.join("range.ini");
    std::fs::write(
        &ini,
        "[Server]\nconsole_start_port_range = 5000\nconsole_end_port_range = 2000\n",
    )
    .unwrap();
    let out = run(&["--config", ini.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 3") && err.contains("console port range"),
        "{err}"
    );
    assert!(
        !err.contains("usage:"),
        "the usage hides the message: {err}"
    );
}

#[test]
fn a_busy_port_is_named_with_the_way_out() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let dir = temp_dir("busy");
    let projects = dir.join("p");
    let out = run(&[
        "--port",
        &port,
        "--projects-dir",
        projects.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("--port"),
        "{err}"
    );
}

#[test]
fn malformed_config_is_a_clear_error_at_start() {
    let dir = temp_dir("badcfg");
    let ini = dir.join("bad.ini");
    std::fs::write(&ini, "[Server]\nport = eighty\n").unwrap();
    let out = run(&["--config", ini.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));
    let out = run(&["--config", "/nonexistent/nanolab.ini"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/nanolab.ini"));
}

#[test]
fn config_file_applies_and_flags_override() {
    let dir = temp_dir("cfg2");
    let ini = dir.join("s.ini");
    std::fs::write(
        &ini,
        "[Server]\nlocal = True\nconsole_start_port_range = 4900\nconsole_end_port_range = 4950\n",
    )
    .unwrap();
    let srv = Server::start(&["--config", ini.to_str().unwrap()]);
    assert_eq!(srv.get("/v1/version").json["local"], true);
    let p = srv.project();
    // Server::start passes --console-ports, which wins over the file's range.
    let (_, console) = srv.vm(&p, "x");
    assert_eq!(console, srv.console.0);
}

#[test]
fn a_record_replays_the_same_lab_on_a_fresh_server() {
    let dir = temp_dir("rec");
    let rec = dir.join("session.sh");
    let first = Server::start(&["--record", rec.to_str().unwrap(), "--pc-engine", "builtin"]);
    // The README's session: a project, two PCs on a tunnel the server's
    // UDP ports make, both started, with ids and ports the server chose.
    let build = |s: &Server| {
        let p = s.post("/v1/projects", r#"{"name": "it's"}"#).json["project_id"]
            .as_str()
            .unwrap()
            .to_string();
        let mut pcs = Vec::new();
        for name in ["PC1", "PC2"] {
            let body = format!(r#"{{"name": "{name}"}}"#);
            pcs.push(
                s.post(&format!("/v1/projects/{p}/vpcs/vms"), &body).json["vm_id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        let a = s.post(&format!("/v1/projects/{p}/ports/udp"), "{}").json["udp_port"]
            .as_u64()
            .unwrap();
        let b = s.post(&format!("/v1/projects/{p}/ports/udp"), "{}").json["udp_port"]
            .as_u64()
            .unwrap();
        for (vm, (l, r)) in pcs.iter().zip([(a, b), (b, a)]) {
            let nio = format!(
                r#"{{"lport": {l}, "rhost": "127.0.0.1", "rport": {r}, "type": "nio_udp"}}"#
            );
            let r = s.post(
                &format!("/v1/projects/{p}/vpcs/vms/{vm}/adapters/0/ports/0/nio"),
                &nio,
            );
            assert_eq!(r.status, 201, "{}", r.text);
            assert_eq!(
                s.post(&format!("/v1/projects/{p}/vpcs/vms/{vm}/start"), "{}")
                    .status,
                204
            );
        }
        s.get("/v1/version");
    };
    build(&first);
    let text = std::fs::read_to_string(&rec).unwrap();
    assert!(text.starts_with(": \"${NANOLAB:=http://"), "{text}");
    assert!(
        text.contains("P1=$(curl") && text.contains("$P1/vpcs/vms/$N2/start"),
        "{text}"
    );
    assert!(text.contains("\"lport\": '\"$U4\"'"), "{text}");
    // Another server, whose UDP ports start elsewhere: the file, as it is.
    let fresh = Server::start(&["--pc-engine", "builtin", "--udp-ports", "31000-31100"]);
    let out = Command::new("sh")
        .arg(&rec)
        .env("NANOLAB", fresh.url(""))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lab = fresh.get("/status.json").json;
    let p = &lab["projects"][0];
    assert_eq!(p["name"], "it's", "{lab}");
    let nodes = p["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{lab}");
    assert!(nodes.iter().all(|n| n["status"] == "started"), "{lab}");
    assert_eq!(
        p["links"].as_array().unwrap().len(),
        1,
        "one tunnel, both ends here: {lab}"
    );
    assert_eq!(
        nodes[0]["ports"][0]["link"]["lport"].as_u64().unwrap() / 100,
        310,
        "{lab}"
    );
}

#[test]
fn a_missing_vpcs_is_said_at_start_and_the_start_suggests_the_built_in_engine() {
    let srv = Server::start(&["--vpcs", "/nonexistent/vpcs"]);
    let said = crate::util::wait_for(5, || srv.log().contains("PCs will not start"));
    assert!(said, "no warning at start: {}", srv.log());
    assert!(srv.log().contains("--pc-engine builtin"), "{}", srv.log());
    let p = srv.project();
    let (vm, _) = srv.vm(&p, "PC1");
    srv.post(&crate::util::vm_url(&p, &vm, "/start"), "{}")
        .assert_error(409, "--pc-engine builtin");
    let builtin = Server::start(&["--pc-engine", "builtin"]);
    assert!(
        crate::util::wait_for(5, || builtin
            .log()
            .contains("PCs run on the built-in engine")),
        "{}",
        builtin.log()
    );
}
