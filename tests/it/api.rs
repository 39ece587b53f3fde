//! Version, projects, UDP ports, interfaces, config reload and shutdown.

use crate::util::{Server, temp_dir, wait_for};
use std::path::PathBuf;

#[test]
fn version_get_and_check() {
    let srv = Server::start(&[]);
    let r = srv.get("/v1/version");
    assert_eq!(
        r.json,
        serde_json::json!({"local": false, "version": "1.3.13"})
    );
    // 1.3.13's own test_version_input expects exactly this.
    let r = srv.post("/v1/version", r#"{"version": "1.3.13"}"#);
    assert_eq!(
        (r.status, &r.json),
        (200, &serde_json::json!({"version": "1.3.13"}))
    );
    srv.post("/v1/version", r#"{"version": "1.2.0"}"#)
        .assert_error(
            409,
            "Client version 1.2.0 differs with server version 1.3.13",
        );
    srv.post("/v1/version", r#"{}"#)
        .assert_error(400, "'version' is required");
    srv.post("/v1/version", r#"{"version": 1}"#)
        .assert_error(400, "must be a string");
    let local = Server::start(&["--local"]);
    assert_eq!(local.get("/v1/version").json["local"], true);
}

#[test]
fn project_lifecycle_on_disk() {
    let srv = Server::start(&[]);
    let r = srv.post("/v1/projects", r#"{"name": "test"}"#);
    assert_eq!(r.status, 201);
    assert_eq!(r.header("X-Route"), Some("/v1/projects"));
    let id = r.json["project_id"].as_str().unwrap().to_string();
    let path = PathBuf::from(r.json["path"].as_str().unwrap());
    assert_eq!(r.json["temporary"], false);
    assert_eq!(r.json["name"], "test");
    assert_eq!(
        PathBuf::from(r.json["location"].as_str().unwrap()),
        srv.dir.join("projects")
    );
    assert_eq!(path, srv.dir.join("projects").join(&id));
    assert!(path.is_dir());

    let g = srv.get(&format!("/v1/projects/{id}"));
    assert_eq!(
        (g.status, g.json["project_id"].as_str()),
        (200, Some(id.as_str()))
    );
    assert_eq!(g.header("X-Route"), Some("/v1/projects/{project_id}"));

    let u = srv.req(
        "PUT",
        &format!("/v1/projects/{id}"),
        r#"{"name": "renamed", "temporary": true}"#,
    );
    assert_eq!(
        (
            u.status,
            u.json["name"].as_str(),
            u.json["temporary"].as_bool()
        ),
        (200, Some("renamed"), Some(true))
    );
    assert!(path.join(".gns3_temporary").exists());
    let u = srv.req(
        "PUT",
        &format!("/v1/projects/{id}"),
        r#"{"temporary": false}"#,
    );
    assert_eq!(u.json["temporary"], false);
    assert!(!path.join(".gns3_temporary").exists());

    assert_eq!(
        srv.post(&format!("/v1/projects/{id}/commit"), "{}").status,
        204
    );
    assert_eq!(
        srv.post(&format!("/v1/projects/{id}/close"), "{}").status,
        204
    );
    assert!(path.is_dir(), "a closed project stays on disk");
    srv.get(&format!("/v1/projects/{id}"))
        .assert_error(404, &id);

    // Same id again: reopened; a known id returns the existing project.
    let again = srv.post(
        "/v1/projects",
        &format!(r#"{{"project_id": "{id}", "name": "back"}}"#),
    );
    assert_eq!(
        (again.status, again.json["project_id"].as_str()),
        (201, Some(id.as_str()))
    );
    let same = srv.post(
        "/v1/projects",
        &format!(r#"{{"project_id": "{id}", "name": "other"}}"#),
    );
    assert_eq!(same.json["name"], "back");
    assert_eq!(
        srv.req("DELETE", &format!("/v1/projects/{id}"), "").status,
        204
    );
    assert!(!path.exists(), "delete removes the directory");
}

#[test]
fn temporary_project_directory_goes_on_close() {
    let srv = Server::start(&[]);
    let r = srv.post("/v1/projects", r#"{"name": "tmp", "temporary": true}"#);
    let path = PathBuf::from(r.json["path"].as_str().unwrap());
    assert!(path.join(".gns3_temporary").exists());
    let id = r.json["project_id"].as_str().unwrap();
    assert_eq!(
        srv.post(&format!("/v1/projects/{id}/close"), "").status,
        204
    );
    assert!(!path.exists());
}

#[test]
fn project_errors() {
    let srv = Server::start(&[]);
    srv.get("/v1/projects/not-a-uuid")
        .assert_error(400, "not-a-uuid");
    srv.get("/v1/projects/42f9feee-3217-4104-981e-85d5f0a806ec")
        .assert_error(404, "42f9feee-3217-4104-981e-85d5f0a806ec");
    srv.post("/v1/projects", "{nope")
        .assert_error(400, "not valid JSON");
    srv.post("/v1/projects", "[]")
        .assert_error(400, "JSON object");
    srv.post("/v1/projects", r#"{"name": "x", "colour": "red"}"#)
        .assert_error(400, "'colour'");
    srv.post("/v1/projects", r#"{"temporary": 3}"#)
        .assert_error(400, "'temporary' must be a boolean");
    srv.post("/v1/projects", r#"{"project_id": "123"}"#)
        .assert_error(400, "not a valid UUID");
    srv.post("/v1/projects", r#"{"path": "/tmp/elsewhere"}"#)
        .assert_error(403, "--local");
    let id = srv.project();
    srv.req(
        "PUT",
        &format!("/v1/projects/{id}"),
        r#"{"path": "/tmp/elsewhere"}"#,
    )
    .assert_error(403, "--local");
    srv.post(&format!("/v1/projects/{id}/commit"), r#"{"x": 1}"#)
        .assert_error(400, "'x'");
    srv.post(
        "/v1/projects/42f9feee-3217-4104-981e-85d5f0a806ec/close",
        "",
    )
    .assert_error(404, "doesn't exist");
}

/// A path change re-points the project (the GUI has copied the files); a
/// project that was not temporary keeps its old directory.
#[test]
fn local_server_repoints_a_project() {
    let srv = Server::start(&["--local"]);
    let id = srv.project();
    let old = srv.dir.join("projects").join(&id);
    std::fs::write(old.join("keep.txt"), b"data").unwrap();
    let moved = temp_dir("moved");
    let new = moved.join("p");
    let r = srv.req(
        "PUT",
        &format!("/v1/projects/{id}"),
        &format!(r#"{{"path": "{}"}}"#, new.display()),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(PathBuf::from(r.json["path"].as_str().unwrap()), new);
    assert!(
        old.join("keep.txt").exists(),
        "not temporary: the old directory stays"
    );
    assert!(
        new.is_dir() && !new.join("keep.txt").exists(),
        "nothing is moved"
    );
    let chosen = temp_dir("chosen");
    let r = srv.post(
        "/v1/projects",
        &format!(r#"{{"path": "{}"}}"#, chosen.join("c").display()),
    );
    assert_eq!(r.status, 201);
    assert!(chosen.join("c").is_dir());
}

#[test]
fn udp_ports_are_lowest_free_and_released_on_close() {
    let srv = Server::start(&[]);
    let (lo, hi) = srv.udp;
    let a = srv.project();
    let b = srv.project();
    let port = |p: &str| {
        srv.post(&format!("/v1/projects/{p}/ports/udp"), "{}").json["udp_port"]
            .as_u64()
            .unwrap() as u16
    };
    assert_eq!(port(&a), lo);
    assert_eq!(port(&a), lo + 1);
    // A port bound by someone else is skipped.
    let _held = std::net::UdpSocket::bind(("0.0.0.0", lo + 2)).unwrap();
    assert_eq!(port(&b), lo + 3);
    let r = srv.post(&format!("/v1/projects/{b}/ports/udp"), "{}");
    assert_eq!(
        (r.status, r.header("X-Route")),
        (201, Some("/v1/projects/{project_id}/ports/udp"))
    );
    srv.post(&format!("/v1/projects/{a}/close"), "");
    assert_eq!(port(&b), lo, "closing a frees its ports");
    assert_eq!(port(&b), lo + 1);
    while srv
        .post(&format!("/v1/projects/{b}/ports/udp"), "{}")
        .status
        == 201
    {}
    srv.post(&format!("/v1/projects/{b}/ports/udp"), "{}")
        .assert_error(409, &format!("{lo}-{hi}"));
    srv.post(&format!("/v1/projects/{b}/ports/udp"), r#"{"a": 1}"#)
        .assert_error(400, "'a'");
}

#[test]
fn interfaces_come_from_the_system() {
    let srv = Server::start(&[]);
    let r = srv.get("/v1/interfaces");
    assert_eq!(r.status, 200);
    let list = r.json.as_array().unwrap();
    assert!(
        list.iter().any(|i| i["id"] == "lo" && i["name"] == "lo"),
        "{}",
        r.text
    );
    let sys: Vec<_> = std::fs::read_dir("/sys/class/net").unwrap().collect();
    assert_eq!(list.len(), sys.len());
}

#[test]
fn reload_and_shutdown_need_local() {
    let srv = Server::start(&[]);
    srv.post("/v1/config/reload", "")
        .assert_error(403, "--local");
    srv.post("/v1/server/shutdown", "")
        .assert_error(403, "--local");
    let dir = temp_dir("cfg");
    let ini = dir.join("nanolab.ini");
    std::fs::write(&ini, "[VPCS]\nvpcs_path = /nonexistent/first\n").unwrap();
    let mut local = Server::start(&["--local", "--config", ini.to_str().unwrap()]);
    let p = local.project();
    let (v, _) = local.vm(&p, "PC");
    let start = format!("/v1/projects/{p}/vpcs/vms/{v}/start");
    local
        .post(&start, "")
        .assert_error(409, "/nonexistent/first");
    std::fs::write(&ini, "[VPCS]\nvpcs_path = /nonexistent/second\n").unwrap();
    assert_eq!(local.post("/v1/config/reload", "").status, 201);
    local
        .post(&start, "")
        .assert_error(409, "/nonexistent/second");
    assert_eq!(local.post("/v1/server/shutdown", "").status, 201);
    assert!(
        wait_for(10, || matches!(local.child.try_wait(), Ok(Some(_)))),
        "server must exit"
    );
    assert!(local.child.wait().unwrap().success());
}

#[test]
fn stale_temporary_projects_are_removed_at_start() {
    let dir = temp_dir("stale");
    let projects = dir.join("projects");
    let stale = projects.join("5a2c0f7e-0000-4000-8000-000000000001");
    let kept = projects.join("5a2c0f7e-0000-4000-8000-000000000002");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::create_dir_all(&kept).unwrap();
    std::fs::write(stale.join(".gns3_temporary"), b"").unwrap();
    let _srv = Server::start_in(&projects, &[]);
    assert!(!stale.exists() && kept.exists());
}

#[test]
fn a_panicking_handler_is_a_500_and_the_server_lives_on() {
    let srv = Server::start_env(&[], &[("NANOLAB_TEST_PANIC_PATH", "/v1/interfaces")]);
    let r = srv.get("/v1/interfaces");
    r.assert_error(500, "injected panic");
    assert_eq!(srv.get("/v1/version").status, 200);
    let p = srv.project();
    assert_eq!(srv.get(&format!("/v1/projects/{p}")).status, 200);
}
