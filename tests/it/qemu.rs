//! QEMU on the host, as the API lists it: the emulators and `qemu-img`
//! found on `PATH` with the versions they print, KVM's answer, and the
//! routes each API version has for them.

use crate::util::Server;
use std::process::Command;

/// What `program flag` says its version is.
fn version(program: &str, flag: &str) -> String {
    let out = Command::new(program)
        .arg(flag)
        .output()
        .unwrap_or_else(|e| panic!("{program} is installed (qemu-system-x86, qemu-utils): {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let word = text
        .split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1);
    let v = word
        .expect("a version")
        .trim_end_matches(|c: char| !c.is_ascii_digit());
    v.to_string()
}

fn which(program: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn the_host_s_qemu_programs_are_listed_with_their_versions() {
    let s = Server::start(&[]);
    let x86 = which("qemu-system-x86_64");
    let img = which("qemu-img");
    assert!(!x86.is_empty() && !img.is_empty(), "QEMU is installed");

    let r = s.get("/v1/qemu/binaries");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("X-Route"), Some("/v1/qemu/binaries"));
    let list = r.json.as_array().unwrap();
    let found = list.iter().find(|b| b["path"] == x86.as_str());
    let found = found.unwrap_or_else(|| panic!("{x86} is not in {list:?}"));
    assert_eq!(found["version"], version(&x86, "-version").as_str());
    for b in list {
        let name = b["path"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        assert!(
            name.starts_with("qemu-system") || name.starts_with("qemu-kvm") || name == "qemu",
            "{name} is not an emulator"
        );
    }

    // 2.2: the same, filtered by architecture; qemu-img apart.
    let c = "/v2/compute/qemu";
    let r = s.req("GET", &format!("{c}/binaries"), r#"{"archs": ["x86_64"]}"#);
    assert_eq!(r.status, 200, "{}", r.text);
    let paths: Vec<_> = r
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["path"].clone())
        .collect();
    assert_eq!(paths, vec![serde_json::json!(x86)]);
    let r = s.get(&format!("{c}/img-binaries"));
    let imgs = r.json.as_array().unwrap();
    assert!(
        imgs.iter()
            .any(|b| b["path"] == img.as_str()
                && b["version"] == version(&img, "--version").as_str()),
        "{imgs:?}"
    );
    s.req("GET", &format!("{c}/binaries"), r#"{"arch": ["x86_64"]}"#)
        .assert_error(400, "arch");

    // KVM: what /dev/kvm answers, on 2.2 and 3.0 alike.
    let kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    for c in ["/v2/compute/qemu", "/v3/compute/qemu"] {
        let r = s.get(&format!("{c}/capabilities"));
        assert_eq!(r.status, 200, "{}", r.text);
        let archs = r.json["kvm"].as_array().unwrap();
        if !kvm {
            assert!(archs.is_empty(), "no /dev/kvm, yet {archs:?}");
        } else {
            assert!(
                archs.is_empty() || archs.contains(&"x86_64".into()),
                "{archs:?}"
            );
        }
    }
    // 3.0 has no such lists.
    s.get("/v3/compute/qemu/binaries")
        .assert_error(404, "GNS3 3.0 lists no QEMU programs");
}
