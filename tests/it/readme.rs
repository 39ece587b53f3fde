//! The README's curl session as a new user pastes it: every `sh` block of
//! "A session with curl", in order, each going on from the ones before,
//! run by bash against a fresh nanolab on port 8000 (in a network
//! namespace of its own, so port 8000 and `tap0` are the test's). Every
//! curl must get a status below 400; what fails is listed with its line.

use crate::tap::Netns;
use crate::util::{Server, temp_dir};
use std::process::Command;

/// The `sh` blocks of the README between two headings.
fn blocks(from: &str, to: &str) -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find(from).expect("the section");
    let end = start + readme[start..].find(to).expect("the next section");
    readme[start..end]
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().to_string())
        .collect()
}

/// curl, as the blocks call it, noting every answer of 400 or more.
const PRELUDE: &str = r#"
curl() {
    local out code
    out=$(command curl -w '\n%{http_code}' "$@")
    code=${out##*$'\n'}
    printf '%s\n' "${out%$'\n'*}"
    if [ "${code:-0}" -ge 400 ] 2>/dev/null; then
        echo "HTTP $code: curl $*" >> "$FAILED"
    fi
}
"#;

#[test]
fn the_readme_session_runs_as_pasted() {
    let blocks = blocks("## A session with curl", "## Use with the GNS3 GUI");
    assert!(
        blocks.len() >= 3,
        "the session, beyond it, /v2: {}",
        blocks.len()
    );
    let work = temp_dir("readme");
    let script = format!("{PRELUDE}\n{}", blocks.join("\n"));
    std::fs::write(work.join("session.sh"), &script).unwrap();
    let ns = Netns::new("readme");
    let work2 = work.to_path_buf();
    let (out, log) = ns.within(move || {
        let s = Server::start(&["--port", "8000"]);
        assert_eq!(s.addr.port(), 8000);
        let out = Command::new("bash")
            .arg(work2.join("session.sh"))
            .current_dir(&work2)
            .env("FAILED", work2.join("failed"))
            .output()
            .unwrap();
        let status = s.get("/status.json").json;
        (out, (s.log(), status))
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let failed = std::fs::read_to_string(work.join("failed")).unwrap_or_default();
    assert!(
        failed.is_empty(),
        "{failed}\nstdout:\n{stdout}\nstderr:\n{}\nlog:\n{}",
        String::from_utf8_lossy(&out.stderr),
        log.0
    );
    // What the blocks built: three PCs and a switch, a /v2 project, all up.
    let projects = log.1["projects"].as_array().unwrap().clone();
    assert_eq!(projects.len(), 2, "{}", log.1);
    let nodes: usize = projects
        .iter()
        .map(|p| p["nodes"].as_array().unwrap().len())
        .sum();
    assert_eq!(nodes, 5, "{}", log.1);
    assert!(
        stdout.contains("Restored 1 project(s)") || stdout.contains("Restored 2 project(s)"),
        "{stdout}"
    );
    assert!(!stdout.contains("unknown file format"), "{stdout}");
}

/// The README's container walkthrough as pasted, against the tests' own
/// Docker engine (`DOCKER_HOST`): the image made from busybox-static, a
/// container and a VPCS linked and started; then the container pings the
/// VPCS on the console the server gave it.
#[test]
fn the_readme_container_walkthrough_runs_as_pasted() {
    let blocks = blocks("## Containers: Docker nodes", "## Built-in virtual PCs");
    assert!(blocks.len() >= 3, "{}", blocks.len());
    let engine = crate::docker::engine();
    let work = temp_dir("readme-docker");
    // The first block installs and starts the engine and the server: the
    // test has its own.
    let script = format!("{PRELUDE}\n{}", blocks[1..3].join("\n"));
    std::fs::write(work.join("walk.sh"), &script).unwrap();
    let ns = Netns::new("readmedk");
    let work2 = work.to_path_buf();
    let host = format!("unix://{}", engine.socket.display());
    ns.within(move || {
        let socket = engine.socket.display().to_string();
        let s = Server::start(&["--port", "8000", "--docker-socket", &socket]);
        let out = Command::new("bash")
            .arg(work2.join("walk.sh"))
            .current_dir(&work2)
            .env("FAILED", work2.join("failed"))
            .env("DOCKER_HOST", &host)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let failed = std::fs::read_to_string(work2.join("failed")).unwrap_or_default();
        assert!(
            failed.is_empty() && out.status.success(),
            "{failed}\nstdout:\n{stdout}\nstderr:\n{}\nlog:\n{}",
            String::from_utf8_lossy(&out.stderr),
            s.log()
        );
        assert!(stdout.contains("lab-busybox:1"), "{stdout}");
        let status = s.get("/status.json").json;
        let node = status["projects"][0]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == "box")
            .cloned()
            .unwrap_or_else(|| panic!("{status}"));
        let p = status["projects"][0]["project_id"]
            .as_str()
            .unwrap()
            .to_string();
        let id = node["node_id"].as_str().unwrap();
        let n = s
            .get(&format!("/v2/compute/projects/{p}/docker/nodes/{id}"))
            .json;
        assert_eq!(n["status"], "started", "{n}");
        let mut c = crate::util::Console::open(n["console"].as_u64().unwrap() as u16);
        c.send("\r\nip addr add 10.0.0.2/24 dev eth0; ping -c 2 -W 2 10.0.0.1\r\n");
        assert!(
            c.expect("2 packets received", 20),
            "the container does not ping PC1: {}",
            c.text()
        );
        s.req("DELETE", &format!("/v2/compute/projects/{p}"), "");
    });
    let _ = engine.docker(&["rmi", "lab-busybox:1"]);
}
