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
    ] {
        assert!(help.contains(flag), "{flag}");
    }
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
