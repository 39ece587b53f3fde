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
