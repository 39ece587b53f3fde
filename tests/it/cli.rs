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
fn bad_flags_print_usage_and_exit_2() {
    let out = run(&["--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--bogus") && err.contains("usage: nanolab"),
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
fn record_appends_replayable_curl_commands() {
    let dir = temp_dir("rec");
    let rec = dir.join("session.sh");
    let srv = Server::start(&["--record", rec.to_str().unwrap()]);
    srv.post("/v1/projects", r#"{"name": "it's"}"#);
    srv.get("/v1/version");
    let text = std::fs::read_to_string(&rec).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("curl -X POST \"http://") && lines[0].contains("/v1/projects"));
    // Replaying the line with a shell creates the project again.
    let out = Command::new("sh").arg("-c").arg(lines[0]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], "it's");
}
