//! Issue 16: files stay beneath the projects directory whatever links a
//! client plants (the kernel resolves every path beneath a directory
//! handle), one server owns a projects directory, and `--local` project
//! paths cannot take what nanolab did not make.

use crate::util::*;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

fn upload(srv: &Server, tar: &Path) -> String {
    let form = format!("file=@{}", tar.display());
    let out = Command::new("curl")
        .args([
            "-s",
            "-w",
            "\n%{http_code}",
            "-F",
            "type=PROJECTS",
            "-F",
            &form,
        ])
        .arg(srv.url("/upload"))
        .output()
        .expect("curl is installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Everything under `dir`, for an assertion message.
fn contents(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            out.push(e.path().display().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    out
}

#[test]
fn issue_16_an_upload_with_a_chain_of_links_is_refused_and_writes_nothing() {
    let srv = Server::start(&[]);
    let work = temp_dir("chain");
    let outside = work.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    // The issue's archive: a deep link back to the projects directory, and
    // a second link that climbs out through it.
    let stage = work.join("stage");
    std::fs::create_dir_all(stage.join("P/a/b/c/d/e/f/g/h")).unwrap();
    std::fs::write(stage.join("P/ok"), "x").unwrap();
    symlink(
        "../../../../../../../../../.",
        stage.join("P/a/b/c/d/e/f/g/h/r"),
    )
    .unwrap();
    let climb = format!(
        "a/b/c/d/e/f/g/h/r/{}{}",
        "../".repeat(10),
        outside.join("planted").display()
    );
    symlink(&climb, stage.join("P/notes.tmp")).unwrap();
    let tar = work.join("chain.tar");
    let made = Command::new("tar")
        .current_dir(&stage)
        .args(["-cf", tar.to_str().unwrap(), "P"])
        .status()
        .unwrap();
    assert!(made.success());
    let answer = upload(&srv, &tar);
    assert!(
        answer.ends_with("400") && answer.contains("is a link"),
        "{answer}"
    );
    let projects = srv.dir.join("projects");
    assert!(!projects.join("P").exists(), "{:?}", contents(&projects));
    assert!(contents(&outside).is_empty());
}

#[test]
fn issue_16_links_planted_in_a_project_carry_no_write_outside() {
    let srv = Server::start(&[]);
    let work = temp_dir("planted");
    let outside = work.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let p = "a1b2c3d4-0000-4000-8000-000000000016";
    let n = "a1b2c3d4-0000-4000-8000-000000000017";
    let r = srv.post(
        "/v2/compute/projects",
        &format!(r#"{{"name": "p", "project_id": "{p}"}}"#),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let dir = srv.dir.join("projects").join(p);
    let node_dir = dir.join("project-files/vpcs").join(n);
    std::fs::create_dir_all(&node_dir).unwrap();
    // Every temporary name a write could use, and the capture directory,
    // planted as links to the outside (as a restore of an older version
    // could leave them).
    for (at, to) in [
        (dir.join("notes.tmp"), outside.join("a")),
        (dir.join(".notes.txt.nanolab-tmp"), outside.join("b")),
        (node_dir.join("startup.tmp"), outside.join("c")),
        (node_dir.join(".startup.vpc.nanolab-tmp"), outside.join("d")),
        (dir.join("project-files/captures"), outside.clone()),
        (dir.join("sub"), outside.clone()),
    ] {
        symlink(to, at).unwrap();
    }
    let files = format!("/v2/compute/projects/{p}/files");
    let r = srv.post(&format!("{files}/notes.txt"), "pwned");
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
        "pwned"
    );
    // Through a planted directory link: refused, and no directory made.
    let r = srv.post(&format!("{files}/sub/deeper/x.txt"), "pwned");
    r.assert_error(403, "outside");
    let r = srv.get(&format!("{files}/sub/../notes.txt"));
    assert_ne!(r.status, 200, "{}", r.text);
    // A node with a startup script, then a capture on its port.
    let body =
        format!(r#"{{"name": "PC1", "node_id": "{n}", "startup_script": "ip 10.0.0.1/24"}}"#);
    let r = srv.post(&format!("/v2/compute/projects/{p}/vpcs/nodes"), &body);
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(
        std::fs::read_to_string(node_dir.join("startup.vpc"))
            .unwrap()
            .contains("ip 10.0.0.1/24")
    );
    let node = format!("/v2/compute/projects/{p}/vpcs/nodes/{n}");
    let (a, b) = (srv.udp.0, srv.udp.0 + 1);
    let nio = format!(r#"{{"type": "nio_udp", "lport": {a}, "rhost": "127.0.0.1", "rport": {b}}}"#);
    let r = srv.post(&format!("{node}/adapters/0/ports/0/nio"), &nio);
    assert_eq!(r.status, 201, "{}", r.text);
    let r = srv.post(
        &format!("{node}/adapters/0/ports/0/start_capture"),
        r#"{"capture_file_name": "pc1.pcap", "data_link_type": "DLT_EN10MB"}"#,
    );
    assert!(r.status >= 400, "{} {}", r.status, r.text);
    assert!(contents(&outside).is_empty(), "{:?}", contents(&outside));
}

#[test]
fn issue_16_a_second_server_on_the_same_projects_directory_refuses_to_start() {
    let first = Server::start(&[]);
    let projects = first.dir.join("projects");
    // A live temporary project of the first server.
    let r = first.post("/v1/projects", r#"{"name": "t", "temporary": true}"#);
    let p = r.json["project_id"].as_str().unwrap().to_string();
    let (vm, _) = first.vm(&p, "PC1");
    assert!(projects.join(&p).exists());
    // Bounded: a server that does start is stopped after 10 s.
    let out = Command::new("timeout")
        .args([
            "10",
            env!("CARGO_BIN_EXE_nanolab"),
            "--port",
            "0",
            "--projects-dir",
        ])
        .arg(&projects)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&projects.display().to_string())
            && err.contains(&format!("pid {}", first.pid()))
            && err.contains(&first.addr.to_string()),
        "{err}"
    );
    assert!(
        projects
            .join(&p)
            .join("project-files/vpcs")
            .join(vm)
            .exists()
    );
    assert_eq!(first.get("/v1/version").status, 200);
}

#[test]
fn issue_16_half_written_files_left_by_a_crash_are_removed_at_start() {
    let work = temp_dir("stale");
    let node = work.join("projects/p/project-files/vpcs/n");
    std::fs::create_dir_all(&node).unwrap();
    std::fs::write(node.join("startup.tmp"), "half").unwrap();
    std::fs::write(node.join(".startup.vpc.nanolab-tmp"), "half").unwrap();
    std::fs::write(node.join("startup.vpc"), "ip 10.0.0.1\n").unwrap();
    let srv = Server::start_in(&work.join("projects"), &[]);
    assert!(!node.join("startup.tmp").exists());
    assert!(!node.join(".startup.vpc.nanolab-tmp").exists());
    assert!(node.join("startup.vpc").exists());
    assert!(srv.log().contains("half-written"), "{}", srv.log());
}

#[test]
fn issue_16_local_paths_are_absolute_and_deleting_keeps_what_nanolab_did_not_make() {
    let srv = Server::start(&["--local"]);
    let projects = srv.dir.join("projects");
    for bad in ["/", "relative/dir", "/tmp/../etc"] {
        let r = srv.post("/v1/projects", &format!(r#"{{"path": "{bad}"}}"#));
        r.assert_error(400, "Project path");
    }
    let parent = projects.parent().unwrap().display().to_string();
    let r = srv.post("/v1/projects", &format!(r#"{{"path": "{parent}"}}"#));
    r.assert_error(400, "projects directory");
    // A directory with the user's own files in it.
    let work = temp_dir("local");
    let mine = work.join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("thesis.txt"), "years of work").unwrap();
    let r = srv.post(
        "/v1/projects",
        &format!(r#"{{"path": "{}", "temporary": true}}"#, mine.display()),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let p = r.json["project_id"].as_str().unwrap().to_string();
    let (vm, _) = srv.vm(&p, "PC1");
    let vm_dir = mine.join("project-files/vpcs").join(&vm);
    assert!(vm_dir.exists());
    let r = srv.req("DELETE", &format!("/v1/projects/{p}"), "");
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        std::fs::read_to_string(mine.join("thesis.txt")).unwrap(),
        "years of work"
    );
    assert!(!vm_dir.exists());
    // A directory nanolab made itself goes whole.
    let fresh = work.join("fresh");
    let r = srv.post(
        "/v1/projects",
        &format!(r#"{{"path": "{}"}}"#, fresh.display()),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let p = r.json["project_id"].as_str().unwrap().to_string();
    assert!(fresh.exists());
    srv.req("DELETE", &format!("/v1/projects/{p}"), "");
    assert!(!fresh.exists());
}
