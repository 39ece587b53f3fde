//! The VPCS VM model: create, update, delete, NIOs, errors. Starts here use
//! programs that fail; the consoles module runs the real vpcs.

use crate::util::{Server, script, temp_dir, vm_url};

#[test]
fn create_get_update_delete() {
    let srv = Server::start(&[]);
    let p = srv.project();
    let r = srv.post(
        &format!("/v1/projects/{p}/vpcs/vms"),
        r#"{"name": "PC1", "startup_script": "set pcname %h\nip 10.0.0.1\n"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        r.header("X-Route"),
        Some("/v1/projects/{project_id}/vpcs/vms")
    );
    let v = r.json["vm_id"].as_str().unwrap().to_string();
    assert_eq!(r.json["console"], srv.console.0);
    assert_eq!(r.json["startup_script"], "set pcname PC1\nip 10.0.0.1\n");
    assert_eq!(r.json["startup_script_path"], "startup.vpc");
    let dir = srv
        .dir
        .join("projects")
        .join(&p)
        .join("project-files/vpcs")
        .join(&v);
    assert_eq!(
        std::fs::read_to_string(dir.join("startup.vpc")).unwrap(),
        "set pcname PC1\nip 10.0.0.1\n"
    );

    let g = srv.get(&vm_url(&p, &v, ""));
    assert_eq!((g.status, g.json["name"].as_str()), (200, Some("PC1")));
    assert_eq!(
        g.header("X-Route"),
        Some("/v1/projects/{project_id}/vpcs/vms/{vm_id}")
    );

    let u = srv.req("PUT", &vm_url(&p, &v, ""), r#"{"name": "Web"}"#);
    assert_eq!(u.json["startup_script"], "set pcname Web\nip 10.0.0.1\n");
    assert_eq!(
        std::fs::read_to_string(dir.join("startup.vpc")).unwrap(),
        "set pcname Web\nip 10.0.0.1\n"
    );
    let free = srv.console.0 + 10;
    let u = srv.req(
        "PUT",
        &vm_url(&p, &v, ""),
        &format!(r#"{{"console": {free}}}"#),
    );
    assert_eq!(u.json["console"], free);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", free)).is_ok(),
        "console listens on the new port"
    );
    // As 1.3.13: "" keeps an empty script file.
    let u = srv.req("PUT", &vm_url(&p, &v, ""), r#"{"startup_script": ""}"#);
    assert_eq!(u.json["startup_script_path"], "startup.vpc");
    assert_eq!(
        std::fs::read_to_string(dir.join("startup.vpc")).unwrap(),
        ""
    );

    // Known vm_id returns the existing VM.
    let again = srv.post(
        &format!("/v1/projects/{p}/vpcs/vms"),
        &format!(r#"{{"name": "x", "vm_id": "{v}"}}"#),
    );
    assert_eq!(
        (again.status, again.json["name"].as_str()),
        (201, Some("Web"))
    );

    assert_eq!(srv.req("DELETE", &vm_url(&p, &v, ""), "").status, 204);
    srv.get(&vm_url(&p, &v, "")).assert_error(404, &v);
    assert!(dir.exists(), "the directory goes at the next commit");
    assert_eq!(
        srv.post(&format!("/v1/projects/{p}/commit"), "").status,
        204
    );
    assert!(!dir.exists());
    // The console port was freed.
    let (_, console) = srv.vm(&p, "next");
    assert_eq!(console, srv.console.0);
}

#[test]
fn console_ports_conflict_and_are_freed_on_close() {
    let srv = Server::start(&[]);
    let p = srv.project();
    let want = srv.console.0 + 5;
    let r = srv.post(
        &format!("/v1/projects/{p}/vpcs/vms"),
        &format!(r#"{{"name": "a", "console": {want}}}"#),
    );
    assert_eq!(r.json["console"], want);
    srv.post(
        &format!("/v1/projects/{p}/vpcs/vms"),
        &format!(r#"{{"name": "b", "console": {want}}}"#),
    )
    .assert_error(409, &want.to_string());
    // A port of the range that another program holds.
    let taken = srv.console.0 + 20;
    let _held = std::net::TcpListener::bind(("127.0.0.1", taken)).unwrap();
    srv.post(
        &format!("/v1/projects/{p}/vpcs/vms"),
        &format!(r#"{{"name": "c", "console": {taken}}}"#),
    )
    .assert_error(409, &taken.to_string());
    assert_eq!(srv.post(&format!("/v1/projects/{p}/close"), "").status, 204);
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", want)).is_ok(),
        "console port released on close"
    );
}

#[test]
fn vm_errors_name_what_is_wrong() {
    let srv = Server::start(&[]);
    let p = srv.project();
    let q = srv.project();
    let (v, _) = srv.vm(&p, "PC");
    srv.post(&format!("/v1/projects/{p}/vpcs/vms"), "{}")
        .assert_error(400, "'name' is required");
    srv.post(
        &format!("/v1/projects/{p}/vpcs/vms"),
        r#"{"name": "a", "console": 0}"#,
    )
    .assert_error(400, "'console'");
    srv.post(
        &format!("/v1/projects/{p}/vpcs/vms"),
        r#"{"name": "a", "ram": 1}"#,
    )
    .assert_error(400, "'ram'");
    srv.get(&vm_url(&p, "nope", "")).assert_error(400, "nope");
    srv.get(&vm_url(&q, &v, "")).assert_error(404, &v);
    srv.req("PUT", &vm_url(&p, &v, ""), r#"{"name": 5}"#)
        .assert_error(400, "'name'");
    srv.post(&format!("{}/start", vm_url(&p, &v, "")), r#"{"x": 1}"#)
        .assert_error(400, "'x'");
    let nio = |a: &str, port: &str, body: &str| {
        srv.post(
            &format!("{}/adapters/{a}/ports/{port}/nio", vm_url(&p, &v, "")),
            body,
        )
    };
    let udp = format!(
        r#"{{"type": "nio_udp", "lport": {}, "rhost": "127.0.0.1", "rport": 9}}"#,
        srv.udp.0 + 50
    );
    // As 1.3.13: a port other than 0 is a 409, a number that is not one
    // matches no route (404).
    nio("0", "3", &udp).assert_error(409, "Port 3 doesn't exist in adapter");
    nio("x", "0", &udp).assert_error(404, "doesn't exist");
    nio("0", "0", r#"{"type": "nio_vde", "control_file": "/x"}"#).assert_error(409, "nio_vde");
    nio("0", "0", r#"{"type": "nio_udp", "lport": 1}"#).assert_error(400, "rhost");
    // The port is reserved by another project.
    let other = srv.post(&format!("/v1/projects/{q}/ports/udp"), "").json["udp_port"]
        .as_u64()
        .unwrap();
    nio(
        "0",
        "0",
        &format!(r#"{{"type": "nio_udp", "lport": {other}, "rhost": "127.0.0.1", "rport": 9}}"#),
    )
    .assert_error(409, &other.to_string());
    // As 1.3.13: the adapter number is not checked (a VPCS has one).
    let r = nio("1", "0", &udp);
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        srv.req(
            "DELETE",
            &format!("{}/adapters/0/ports/0/nio", vm_url(&p, &v, "")),
            ""
        )
        .status,
        204
    );
    // As 1.3.13: deleting a NIO that is not there is a 204.
    let again = srv.req(
        "DELETE",
        &format!("{}/adapters/0/ports/0/nio", vm_url(&p, &v, "")),
        "",
    );
    assert_eq!(again.status, 204, "{}", again.text);
    srv.req(
        "DELETE",
        &format!("{}/adapters/0/ports/3/nio", vm_url(&p, &v, "")),
        "",
    )
    .assert_error(409, "Port 3");
    // X-Route is 1.3.13's template, regex parts included.
    assert_eq!(
        again.header("X-Route"),
        Some(
            r"/v1/projects/{project_id}/vpcs/vms/{vm_id}/adapters/{adapter_number:\d+}/ports/{port_number:\d+}/nio"
        )
    );
}

#[test]
fn mac_offsets_run_out_per_project() {
    let srv = Server::start(&["--console-ports", "5100-5400"]);
    let p = srv.project();
    for i in 0..255 {
        srv.vm(&p, &format!("pc{i}"));
    }
    srv.post(
        &format!("/v1/projects/{p}/vpcs/vms"),
        r#"{"name": "one too many"}"#,
    )
    .assert_error(409, "MAC");
    let other = srv.project();
    srv.vm(&other, "fine");
}

#[test]
fn start_errors_carry_the_cause() {
    let dir = temp_dir("progs");
    let missing = dir.join("no-such-vpcs");
    let srv = Server::start(&["--vpcs", missing.to_str().unwrap()]);
    let p = srv.project();
    let (v, _) = srv.vm(&p, "PC");
    let r = srv.post(&format!("{}/start", vm_url(&p, &v, "")), "");
    r.assert_error(409, "apt-get install vpcs");
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .contains(missing.to_str().unwrap())
    );

    let failing = script(
        &dir,
        "failing-vpcs",
        "#!/bin/sh\necho 'boom: no such adapter' >&2\nexit 3\n",
    );
    let srv = Server::start(&["--vpcs", failing.to_str().unwrap(), "--no-console-sandbox"]);
    let p = srv.project();
    let (v, _) = srv.vm(&p, "PC");
    let r = srv.post(&format!("{}/start", vm_url(&p, &v, "")), "");
    r.assert_error(409, "boom: no such adapter");
    assert!(r.json["message"].as_str().unwrap().contains("exit code 3"));
    assert_eq!(
        srv.post(&format!("{}/stop", vm_url(&p, &v, "")), "").status,
        204,
        "stopping a stopped VM"
    );

    // With the sandbox on, a script cannot run: the error says how to proceed.
    let srv = Server::start(&["--vpcs", failing.to_str().unwrap()]);
    if srv.log().contains("kernel without Landlock") {
        return;
    }
    let p = srv.project();
    let (v, _) = srv.vm(&p, "PC");
    srv.post(&format!("{}/start", vm_url(&p, &v, "")), "")
        .assert_error(409, "--no-console-sandbox");
}
