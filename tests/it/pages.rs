//! The pages outside /v1: the status page, the projects backup (streamed)
//! and the restore through /upload, driven with curl and GNU tar as a
//! person would.

use crate::util::{Server, temp_dir, vm_url};
use std::process::Command;

fn curl(args: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args(args)
        .output()
        .expect("curl is installed")
}

#[test]
fn the_status_page_shows_nodes_states_consoles_and_links() {
    let srv = Server::start(&[]);
    let p = srv.project();
    let (v, console) = srv.vm(&p, "Web<1>");
    let nio = format!(
        r#"{{"type": "nio_udp", "lport": {}, "rhost": "127.0.0.1", "rport": 9}}"#,
        srv.udp.0 + 7
    );
    assert_eq!(
        srv.post(&vm_url(&p, &v, "/adapters/0/ports/0/nio"), &nio)
            .status,
        201
    );
    let r = srv.get("/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
    for needle in [
        "Web&lt;1&gt;",
        "stopped",
        &console.to_string(),
        &format!("UDP {}", srv.udp.0 + 7),
        "refresh",
    ] {
        assert!(r.text.contains(needle), "{needle} missing from the page");
    }
}

#[test]
fn projects_are_backed_up_as_a_tar_stream_and_restored_through_upload() {
    let srv = Server::start(&[]);
    let p = srv.project();
    let body = r#"{"name": "PC1", "startup_script": "ip 10.4.4.4/24\n"}"#;
    let r = srv.post(&format!("/v1/projects/{p}/vpcs/vms"), body);
    let v = r.json["vm_id"].as_str().unwrap().to_string();
    let work = temp_dir("backup");
    let tar = work.join("projects.tar");
    let url = srv.url("/backup/projects.tar");
    let out = curl(&["-s", "-D", "-", "-o", tar.to_str().unwrap(), &url]);
    let head = String::from_utf8_lossy(&out.stdout);
    assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
    let list = Command::new("tar").arg("-tf").arg(&tar).output().unwrap();
    let names = String::from_utf8_lossy(&list.stdout);
    let script = format!("{p}/project-files/vpcs/{v}/startup.vpc");
    assert!(names.contains(&script), "{names}");
    // Restore it into a second server's empty projects directory.
    let other = Server::start(&[]);
    let form = format!("file=@{}", tar.display());
    let out = curl(&[
        "-s",
        "-w",
        "\n%{http_code}",
        "-F",
        "type=PROJECTS",
        "-F",
        &form,
        &other.url("/upload"),
    ]);
    let answer = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(answer.ends_with("\n200"), "{answer}");
    // It says what it wrote: one project, its files and their bytes.
    let files = Command::new("tar").arg("-tvf").arg(&tar).output().unwrap();
    let listing = String::from_utf8_lossy(&files.stdout).into_owned();
    let regular: Vec<&str> = listing.lines().filter(|l| l.starts_with('-')).collect();
    let bytes: u64 = regular
        .iter()
        .map(|l| l.split_whitespace().nth(2).unwrap().parse::<u64>().unwrap())
        .sum();
    let said = format!(
        "Restored 1 project(s): {} file(s), {bytes} bytes.",
        regular.len()
    );
    assert!(answer.contains(&said), "{said} not in {answer}");
    // Each file keeps its time: not 1970, not the tar crate's 2006.
    assert!(
        !listing.contains("1970-01-01") && !listing.contains("2006-07-24"),
        "{listing}"
    );
    let restored = other.dir.join("projects").join(&script);
    assert_eq!(
        std::fs::read_to_string(restored).unwrap(),
        "ip 10.4.4.4/24\n"
    );
    // An archive with an entry climbing out is refused whole.
    std::fs::create_dir_all(work.join("a")).unwrap();
    std::fs::write(work.join("a/ok"), "x").unwrap();
    std::fs::write(work.join("outside"), "x").unwrap();
    let evil = work.join("evil.tar");
    let made = Command::new("tar")
        .current_dir(work.join("a"))
        .args(["-cPf", evil.to_str().unwrap(), "ok", "../outside"])
        .status()
        .unwrap();
    assert!(made.success());
    let form = format!("file=@{}", evil.display());
    let out = curl(&[
        "-s",
        "-F",
        "type=PROJECTS",
        "-F",
        &form,
        &other.url("/upload"),
    ]);
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(
        answer.contains("nothing was written") && answer.contains("400"),
        "{answer}"
    );
    assert!(!other.dir.join("projects/ok").exists() && !other.dir.join("outside").exists());
    // Other kinds of upload are 1.3.13's, not ours.
    let out = curl(&["-s", "-F", "type=IOU", "-F", &form, &other.url("/upload")]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("403"));
    // The form is there for a browser.
    assert!(other.get("/upload").text.contains("multipart/form-data"));
}
