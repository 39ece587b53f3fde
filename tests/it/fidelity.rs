//! Faithful to GNS3 1.3.13 and its GUI (issue 9): what the real server
//! answers and does, checked against the real binary and real vpcs.

use crate::util::{Console, Server, temp_dir, vm_url, vpcs_pid};

/// Reopening a closed project (or one saved, restored or left by a restart)
/// re-creates its VMs with their old ids and no script in the request:
/// 1.3.13 reads `startup.vpc` from each VM's directory, reports it, starts
/// VPCS with it, and never deletes it on a later update.
#[test]
fn closing_and_reopening_a_project_keeps_and_uses_every_startup_script() {
    let srv = Server::start(&[]);
    let p = srv.project();
    let ids = [
        "0b3a6c3e-0000-4000-8000-00000000000a",
        "0b3a6c3e-0000-4000-8000-00000000000b",
    ];
    for (n, id) in ids.iter().enumerate() {
        let body = format!(
            r#"{{"name": "PC{n}", "vm_id": "{id}", "startup_script": "set pcname %h\nip 10.1.1.{}/24\n"}}"#,
            n + 1
        );
        let r = srv.post(&format!("/v1/projects/{p}/vpcs/vms"), &body);
        assert_eq!(r.status, 201, "{}", r.text);
    }
    assert_eq!(srv.post(&format!("/v1/projects/{p}/close"), "").status, 204);
    let r = srv.post(
        "/v1/projects",
        &format!(r#"{{"project_id": "{p}", "name": "test"}}"#),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    for (n, id) in ids.iter().enumerate() {
        let body = format!(r#"{{"name": "PC{n}", "vm_id": "{id}"}}"#);
        let r = srv.post(&format!("/v1/projects/{p}/vpcs/vms"), &body);
        assert_eq!(r.status, 201, "{}", r.text);
        let ip = format!("ip 10.1.1.{}/24", n + 1);
        let script = r.json["startup_script"].as_str().unwrap_or_default();
        assert!(
            script.contains(&ip),
            "the script on disk is reported: {}",
            r.text
        );
        assert_eq!(r.json["startup_script_path"], "startup.vpc");
        // A console move and a rename keep the file (the rename inside it).
        let console = srv.console.0 + 30 + n as u16;
        let put = format!(r#"{{"console": {console}, "name": "Host{n}"}}"#);
        let r = srv.req("PUT", &vm_url(&p, id, ""), &put);
        assert_eq!(r.status, 200, "{}", r.text);
        let file = srv
            .dir
            .join("projects")
            .join(&p)
            .join("project-files/vpcs")
            .join(id)
            .join("startup.vpc");
        let on_disk = std::fs::read_to_string(&file).expect("startup.vpc kept");
        assert!(
            on_disk.contains(&ip) && on_disk.contains(&format!("set pcname Host{n}")),
            "{on_disk}"
        );
        // And VPCS runs it.
        assert_eq!(srv.post(&vm_url(&p, id, "/start"), "").status, 204);
        let mut c = Console::open(console);
        assert!(c.expect("> ", 10), "{}", c.text());
        let mark = c.seen.len();
        c.send("show ip\r\n");
        let shown = format!("10.1.1.{}/24", n + 1);
        assert!(
            c.expect_after(mark, &shown, 10),
            "the script did not run: {}",
            c.text()
        );
    }
    // "" keeps an empty script file, as 1.3.13 does.
    let r = srv.req("PUT", &vm_url(&p, ids[0], ""), r#"{"startup_script": ""}"#);
    assert_eq!(
        (
            r.json["startup_script"].as_str(),
            r.json["startup_script_path"].as_str()
        ),
        (Some(""), Some("startup.vpc"))
    );
}

/// As 1.3.13: a console port outside the console range is a 409 naming the
/// range, at creation and on update.
#[test]
fn a_console_outside_the_range_is_refused() {
    let srv = Server::start(&[]);
    let p = srv.project();
    let range = format!("{}-{}", srv.console.0, srv.console.1);
    srv.post(
        &format!("/v1/projects/{p}/vpcs/vms"),
        r#"{"name": "a", "console": 22}"#,
    )
    .assert_error(409, &format!("port 22 is outside the range {range}"));
    let (v, console) = srv.vm(&p, "b");
    srv.req("PUT", &vm_url(&p, &v, ""), r#"{"console": 22}"#)
        .assert_error(409, "outside the range");
    assert_eq!(srv.get(&vm_url(&p, &v, "")).json["console"], console);
}

/// The GNS3 1.3 GUI refuses a server whose version answer lacks `local`.
#[test]
fn version_always_says_whether_the_server_is_local() {
    let srv = Server::start(&[]);
    let v = srv.get("/v1/version").json;
    assert_eq!(v, serde_json::json!({"local": false, "version": "1.3.13"}));
}

/// What a newcomer with curl gets wrong is answered with what to do.
#[test]
fn wrong_requests_say_what_to_do() {
    let srv = Server::start(&[]);
    let r = srv.req("DELETE", "/v1/version", "");
    r.assert_error(405, "GET, POST");
    assert_eq!(r.header("Allow"), Some("GET, POST"));
    srv.get("/version").assert_error(404, "start with /v1/");
    srv.post("/v1/projects", "name=test")
        .assert_error(400, "form data");
}

/// The GNS3 1.3.13 GUI's "Save as" of a temporary project: it moves the
/// files itself (leaving `.gns3_temporary` behind), then sends the new path
/// with `temporary: false`, then commits. The project is re-pointed, the old
/// temporary directory goes, and the VMs work from the new place.
#[test]
fn a_gui_save_as_of_a_temporary_project_repoints_it() {
    let srv = Server::start(&["--local"]);
    let r = srv.post("/v1/projects", r#"{"name": "unsaved", "temporary": true}"#);
    let p = r.json["project_id"].as_str().unwrap().to_string();
    let old = std::path::PathBuf::from(r.json["path"].as_str().unwrap());
    assert!(old.join(".gns3_temporary").exists());
    let mut vms = Vec::new();
    for n in 1..=2 {
        let body = format!(r#"{{"name": "PC{n}", "startup_script": "ip 10.2.2.{n}/24\n"}}"#);
        let r = srv.post(&format!("/v1/projects/{p}/vpcs/vms"), &body);
        assert_eq!(r.status, 201, "{}", r.text);
        vms.push((
            r.json["vm_id"].as_str().unwrap().to_string(),
            r.json["console"].as_u64().unwrap() as u16,
        ));
    }
    // What the GUI does on disk: make the directory, move the files.
    let saved = temp_dir("saveas");
    let new = saved.join("My Lab");
    std::fs::create_dir_all(&new).unwrap();
    std::fs::rename(old.join("project-files"), new.join("project-files")).unwrap();
    let body = serde_json::json!({"name": "My Lab", "temporary": false, "path": new}).to_string();
    let r = srv.req("PUT", &format!("/v1/projects/{p}"), &body);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["path"], new.display().to_string());
    assert_eq!(r.json["temporary"], false);
    assert_eq!(
        srv.post(&format!("/v1/projects/{p}/commit"), "{}").status,
        204
    );
    assert!(!old.exists(), "the old temporary directory is removed");
    assert!(!new.join(".gns3_temporary").exists());
    for (n, (v, console)) in vms.iter().enumerate() {
        assert_eq!(srv.post(&vm_url(&p, v, "/start"), "").status, 204);
        let pid = vpcs_pid(&srv, v).expect("vpcs runs");
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
        assert!(cwd.starts_with(&new), "VPCS works in {}", cwd.display());
        let mut c = Console::open(*console);
        assert!(c.expect("> ", 10), "{}", c.text());
        let mark = c.seen.len();
        c.send("show ip\r\n");
        let ip = format!("10.2.2.{}/24", n + 1);
        assert!(c.expect_after(mark, &ip, 10), "{}", c.text());
    }
    assert_eq!(srv.post(&format!("/v1/projects/{p}/close"), "").status, 204);
    assert!(
        new.join("project-files").is_dir(),
        "a saved project stays on disk"
    );
}

/// A GNS3 1.2 topology numbers its VMs; 1.3.13 gives such a VM a new UUID
/// and moves its `pc-N` directory (with its script) under that id.
#[test]
fn an_integer_vm_id_is_converted_as_1_3_13_converts_it() {
    let srv = Server::start(&[]);
    let p = srv.project();
    let vpcs = srv.dir.join("projects").join(&p).join("project-files/vpcs");
    std::fs::create_dir_all(vpcs.join("pc-3")).unwrap();
    std::fs::write(vpcs.join("pc-3/startup.vpc"), "ip 10.3.3.3/24\n").unwrap();
    let r = srv.post(
        &format!("/v1/projects/{p}/vpcs/vms"),
        r#"{"name": "PC3", "vm_id": 3}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json["vm_id"].as_str().unwrap();
    assert!(uuid::Uuid::try_parse(id).is_ok(), "a new UUID, not {id}");
    assert_eq!(r.json["startup_script"], "ip 10.3.3.3/24\n");
    assert!(!vpcs.join("pc-3").exists() && vpcs.join(id).join("startup.vpc").exists());
    srv.post(
        &format!("/v1/projects/{p}/vpcs/vms"),
        r#"{"name": "x", "vm_id": 1.5}"#,
    )
    .assert_error(400, "vm_id");
}
