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

/// The tiny guest `testvm/build.sh` makes (Debian's kernel, busybox), built
/// once per target directory.
pub fn test_vm() -> std::path::PathBuf {
    static VM: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    VM.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("testvm");
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/testvm/build.sh");
        let out = Command::new("bash").arg(script).arg(&dir).output().unwrap();
        assert!(
            out.status.success(),
            "building the test VM: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
    .clone()
}

fn nio(lport: u64, rport: u64) -> String {
    format!(r#"{{"type": "nio_udp", "lport": {lport}, "rhost": "127.0.0.1", "rport": {rport}}}"#)
}

/// An images directory holding the test VM's files under `QEMU/`.
pub fn images() -> crate::util::TempDir {
    let vm = test_vm();
    let images = crate::util::temp_dir("images");
    std::fs::create_dir_all(images.join("QEMU")).unwrap();
    for f in ["vmlinuz", "initrd.img", "disk.qcow2"] {
        std::fs::copy(vm.join(f), images.join("QEMU").join(f)).unwrap();
    }
    images
}

/// QEMU processes among `pid`'s children.
pub fn qemu_children(pid: u32) -> usize {
    crate::util::children(pid)
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.starts_with("qemu"))
        })
        .count()
}

#[test]
fn a_qemu_vm_boots_pings_and_obeys_suspend_resume_reload_and_stop() {
    let images = images();
    let images_arg = images.display().to_string();
    let s = Server::start(&["--images-dir", &images_arg]);
    let p = s.project();
    let vms = format!("/v1/projects/{p}/qemu/vms");
    let body = r#"{"name": "R1", "qemu_path": "qemu-system-x86_64", "ram": 128,
        "hda_disk_image": "disk.qcow2", "kernel_image": "vmlinuz", "initrd": "initrd.img",
        "kernel_command_line": "console=ttyS0 quiet ip=10.0.0.3/24 vmname=r1"}"#;
    let r = s.post(&vms, body);
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        r.json.as_object().unwrap().len(),
        19,
        "1.3.13's 19 keys: {}",
        r.text
    );
    assert_eq!(r.json["qemu_path"], which("qemu-system-x86_64").as_str());
    assert_eq!(r.json["adapters"], 1);
    let id = r.json["vm_id"].as_str().unwrap().to_string();
    let console_port = r.json["console"].as_u64().unwrap() as u16;
    let v = format!("{vms}/{id}");

    // On a built-in switch with a real VPCS beside it, and a built-in PC
    // on a second nanolab (--pc-engine builtin) by a tunnel between them.
    let udp = |srv: &Server, p: &str| {
        srv.post(&format!("/v1/projects/{p}/ports/udp"), "").json["udp_port"]
            .as_u64()
            .unwrap()
    };
    let r = s.post(
        &format!("/v1/projects/{p}/dynamips/devices"),
        r#"{"name": "SW1", "device_type": "ethernet_switch"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let sw = r.json["device_id"].as_str().unwrap().to_string();
    let sw_port = |port: u32, lport: u64, rport: u64| {
        let body = format!(
            r#"{{"nio": {}, "port_settings": {{"type": "access", "vlan": 1}}}}"#,
            nio(lport, rport)
        );
        let r = s.post(
            &format!("/v1/projects/{p}/dynamips/devices/{sw}/ports/{port}/nio"),
            &body,
        );
        assert_eq!(r.status, 201, "{}", r.text);
    };
    let (pc, pc_console) = s.vm(&p, "PC1");
    let (a, b) = (udp(&s, &p), udp(&s, &p));
    let pc_nio = format!("/v1/projects/{p}/vpcs/vms/{pc}/adapters/0/ports/0/nio");
    assert_eq!(s.post(&pc_nio, &nio(a, b)).status, 201);
    sw_port(1, b, a);
    let (c, d) = (udp(&s, &p), udp(&s, &p));
    let vm_nio = format!("{v}/adapters/0/ports/0/nio");
    let r = s.post(&vm_nio, &nio(c, d));
    assert_eq!(r.status, 201, "{}", r.text);
    sw_port(2, d, c);
    let r = s.post(&format!("{v}/adapters/3/ports/0/nio"), &nio(c + 100, d));
    r.assert_error(409, "Adapter 3 does not exist");
    let b2 = Server::start(&["--pc-engine", "builtin"]);
    let p2 = b2.project();
    let (pc2, pc2_console) = b2.vm(&p2, "PC2");
    let (e, f) = (udp(&b2, &p2), udp(&s, &p));
    let r = b2.post(
        &format!("/v1/projects/{p2}/vpcs/vms/{pc2}/adapters/0/ports/0/nio"),
        &nio(e, f),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    sw_port(3, f, e);

    let r = s.post(&format!("{v}/start"), "");
    assert_eq!(r.status, 204, "{}\n{}", r.text, s.log());
    let mut c1 = crate::util::Console::open(console_port);
    let mut c2 = crate::util::Console::open(console_port);
    assert!(
        c1.expect("r1# ", 90),
        "no prompt on the serial console: {}",
        c1.text()
    );
    assert!(
        c2.expect("TESTVM-READY name=r1", 10),
        "a second client sees it too: {}",
        c2.text()
    );
    assert!(
        c1.text().contains("mac=00:00:ab:"),
        "1.3.13's MAC: {}",
        c1.text()
    );

    let r = s.post(&format!("/v1/projects/{p}/vpcs/vms/{pc}/start"), "");
    assert_eq!(r.status, 204, "{}", r.text);
    let mut pcc = crate::util::Console::open(pc_console);
    assert!(pcc.expect("VPCS>", 10));
    pcc.send("ip 10.0.0.1/24\n");
    let r = b2.post(&format!("/v1/projects/{p2}/vpcs/vms/{pc2}/start"), "");
    assert_eq!(r.status, 204, "{}", r.text);
    let mut pc2c = crate::util::Console::open(pc2_console);
    assert!(pc2c.expect("VPCS>", 10));
    pc2c.send("ip 10.0.0.2/24\n");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let r = s.post(
        &format!("{v}/adapters/0/ports/0/start_capture"),
        r#"{"capture_file_name": "r1.pcap"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let pcap = r.json["pcap_file_path"].as_str().unwrap().to_string();
    assert!(
        crate::gns3::ping(&mut pcc, "10.0.0.3", 3).is_some(),
        "the VPCS does not ping the VM: {}",
        pcc.text()
    );
    assert_eq!(
        s.post(&format!("{v}/adapters/0/ports/0/stop_capture"), "")
            .status,
        204
    );
    let dump = Command::new("tcpdump")
        .args(["-nr", &pcap])
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.contains("ICMP echo reply"), "{dump}");
    assert!(
        crate::gns3::ping(&mut pc2c, "10.0.0.3", 2).is_some(),
        "the built-in PC does not ping the VM: {}",
        pc2c.text()
    );

    // Suspended, the guest answers nothing; resumed, it does again. The
    // 204 leaves once QMP has the `stop`, not once QEMU has acted on it.
    assert_eq!(s.post(&format!("{v}/suspend"), "").status, 204);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        crate::gns3::ping(&mut pcc, "10.0.0.3", 1).is_none(),
        "{}",
        pcc.text()
    );
    assert_eq!(s.post(&format!("{v}/resume"), "").status, 204);
    assert!(
        crate::gns3::ping(&mut pcc, "10.0.0.3", 2).is_some(),
        "{}",
        pcc.text()
    );

    // Reload resets the guest: it boots again, on the same console.
    let from = c1.seen.len();
    assert_eq!(s.post(&format!("{v}/reload"), "").status, 204);
    assert!(
        c1.expect_after(from, "TESTVM-READY", 90),
        "no reboot after reload: {}",
        c1.text()
    );

    let qemu_pids = || qemu_children(s.pid());
    assert_eq!(qemu_pids(), 1);
    assert_eq!(s.post(&format!("{v}/stop"), "").status, 204);
    assert_eq!(qemu_pids(), 0, "QEMU is gone once stop answers");
    // The linked clone lives in the VM's directory, which goes with the
    // node at the project's next commit (1.3.13).
    let dir = s
        .dir
        .join("projects")
        .join(&p)
        .join("project-files/qemu")
        .join(&id);
    assert!(
        dir.join("hda_disk.qcow2").exists(),
        "no linked clone in {}",
        dir.display()
    );
    let r = s.req("DELETE", &v, "");
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(s.get(&v).status, 404);
    assert_eq!(s.post(&format!("/v1/projects/{p}/commit"), "").status, 204);
    assert!(!dir.exists(), "the VM's directory outlived the commit");
}

#[test]
fn qemu_vm_requests_that_cannot_work_say_why() {
    let s = Server::start(&["--images-dir", "/nonexistent-images"]);
    let p = s.project();
    let vms = format!("/v1/projects/{p}/qemu/vms");
    s.post(&vms, r#"{"name": "R1"}"#)
        .assert_error(400, "qemu_path");
    s.post(&vms, r#"{"name": "R1", "qemu_path": "qemu-system-nope"}"#)
        .assert_error(409, "QEMU binary path is not set or not found in the path");
    s.post(
        &vms,
        r#"{"name": "R1", "qemu_path": "qemu-system-x86_64", "colour": 1}"#,
    )
    .assert_error(400, "colour");
    s.post(
        &vms,
        r#"{"name": "R1", "qemu_path": "qemu-system-x86_64", "adapters": 33}"#,
    )
    .assert_error(400, "adapters");
    s.post(&vms, r#"{"name": "R1", "qemu_path": "qemu-system-x86_64", "options": "-drive file=/etc/shadow"}"#)
        .assert_error(409, "Forbidden additional option: -drive");
    let r = s.post(
        &vms,
        r#"{"name": "R1", "qemu_path": "qemu-system-x86_64", "hda_disk_image": "missing.qcow2"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json["vm_id"].as_str().unwrap();
    s.post(&format!("{vms}/{id}/start"), "").assert_error(
        409,
        "hda disk image '/nonexistent-images/QEMU/missing.qcow2' is not accessible",
    );
    let r = s.req(
        "PUT",
        &format!("{vms}/{id}"),
        r#"{"ram": 64, "options": "-nographic"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.json["ram"].as_u64(), r.json["options"].as_str()),
        (Some(64), Some("-nographic"))
    );
    // Suspend, resume and stop of a VM that does not run: nothing to do.
    for op in ["suspend", "resume", "stop"] {
        assert_eq!(s.post(&format!("{vms}/{id}/{op}"), "").status, 204, "{op}");
    }
}

#[test]
fn qemu_nodes_on_v2_and_v3_take_their_controller_s_bodies() {
    let images = images();
    let images_arg = images.display().to_string();
    let s = Server::start(&["--images-dir", &images_arg]);
    for (c, n, extra) in [
        ("/v2/compute", "5d176242-567e-4b2d-9a6f-0a1b2c3d4e5f", ""),
        (
            "/v3/compute",
            "7e28a1c4-1111-4b2d-9a6f-0a1b2c3d4e5f",
            r#", "compute_id": "local", "aux_type": "none""#,
        ),
    ] {
        let p = uuid::Uuid::new_v4();
        let r = s.post(
            &format!("{c}/projects"),
            &format!(r#"{{"name": "q", "project_id": "{p}"}}"#),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        let body = format!(
            r#"{{"node_id": "{n}", "name": "R1", "platform": "x86_64", "qemu_path": "", "ram": 128,
                "kernel_image": "vmlinuz", "initrd": "initrd.img", "hda_disk_image": "disk.qcow2",
                "kernel_command_line": "console=ttyS0 quiet", "mac_address": "", "linked_clone": true,
                "hda_disk_interface": "none", "tpm": false, "uefi": false, "usage": ""{extra}}}"#
        );
        let nodes = format!("{c}/projects/{p}/qemu/nodes");
        let r = s.post(&nodes, &body);
        assert_eq!(r.status, 201, "{c}: {}", r.text);
        assert_eq!(r.json["qemu_path"], which("qemu-system-x86_64").as_str());
        assert_eq!(r.json["status"], "stopped");
        // 2.2's MAC: 0c, the node id's hex digits 2 to 7, 00:00.
        assert_eq!(
            r.json["mac_address"],
            format!("0c:{}:{}:{}:00:00", &n[2..4], &n[4..6], &n[6..8])
        );
        let node = format!("{nodes}/{n}");
        assert_eq!(s.post(&format!("{node}/start"), "").status, 204);
        assert_eq!(s.get(&node).json["status"], "started");
        assert_eq!(s.post(&format!("{node}/suspend"), "").status, 204);
        assert_eq!(s.get(&node).json["status"], "suspended");
        assert_eq!(s.post(&format!("{node}/resume"), "").status, 204);
        assert_eq!(s.get(&node).json["status"], "started");
        assert!(
            s.get(&node).json["command_line"]
                .as_str()
                .unwrap()
                .contains("mac=0c:")
        );
        assert_eq!(s.post(&format!("{node}/stop"), "").status, 204);
        assert_eq!(s.get(&node).json["status"], "stopped");
        s.post(&nodes, r#"{"name": "R2", "console_type": "vnc"}"#)
            .assert_error(409, "Console type vnc is not supported yet");
        s.post(&nodes, r#"{"name": "R2", "linked_clone": false}"#)
            .assert_error(409, "linked_clone false");
        assert_eq!(s.req("DELETE", &node, "").status, 204);
    }
    // /v2 refuses what 2.2's schema does not know; /v3 ignores it.
    let p = uuid::Uuid::new_v4();
    s.post(
        "/v2/compute/projects",
        &format!(r#"{{"name": "q", "project_id": "{p}"}}"#),
    );
    s.post(
        &format!("/v2/compute/projects/{p}/qemu/nodes"),
        r#"{"name": "R3", "compute_id": "x"}"#,
    )
    .assert_error(400, "compute_id");
    assert_eq!(qemu_children(s.pid()), 0);
}

#[test]
fn a_qemu_vm_cannot_write_outside_its_directory() {
    let images = images();
    let images_arg = images.display().to_string();
    let s = Server::start(&["--images-dir", &images_arg]);
    let p = s.project();
    let vms = format!("/v1/projects/{p}/qemu/vms");
    let outside = crate::util::temp_dir("outside");
    let target = outside.join("written-by-qemu");
    // QEMU writes its pid file itself: beneath its directory only.
    let body = format!(
        r#"{{"name": "R1", "qemu_path": "qemu-system-x86_64", "kernel_image": "vmlinuz",
            "options": "-pidfile {}"}}"#,
        target.display()
    );
    let r = s.post(&vms, &body);
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json["vm_id"].as_str().unwrap();
    let r = s.post(&format!("{vms}/{id}/start"), "");
    r.assert_error(409, "QEMU exited at start");
    assert!(!target.exists(), "QEMU wrote outside its directory");
    assert_eq!(qemu_children(s.pid()), 0);
}

/// GNS3 1.3.13's own QEMU handler tests (`tests/handlers/api/test_qemu.py`
/// at `v1.3.13`), over HTTP, where they test what nanolab serves: a real
/// QEMU with no disk stands in for their mocks of start, stop and the rest.
#[test]
fn gns3_1_3_13_qemu_handler_tests() {
    let s = Server::start(&[]);
    let p = s.project();
    let qemu = which("qemu-system-x86_64");
    let vms = format!("/v1/projects/{p}/qemu/vms");
    let create = |extra: &str| {
        s.post(
            &vms,
            &format!(r#"{{"name": "PC TEST 1", "qemu_path": "{qemu}"{extra}}}"#),
        )
    };
    // test_qemu_create
    let r = create("");
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        r.header("X-Route"),
        Some("/v1/projects/{project_id}/qemu/vms")
    );
    assert_eq!(
        (r.json["name"].as_str(), r.json["project_id"].as_str()),
        (Some("PC TEST 1"), Some(p.as_str()))
    );
    // test_qemu_create_with_params
    let r = create(r#", "ram": 1024, "hda_disk_image": "/tmp/hda""#);
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        (r.json["ram"].as_u64(), r.json["hda_disk_image"].as_str()),
        (Some(1024), Some("/tmp/hda"))
    );
    // test_qemu_get
    let vm = create("").json["vm_id"].as_str().unwrap().to_string();
    let v = format!("{vms}/{vm}");
    let r = s.get(&v);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("X-Route"),
        Some("/v1/projects/{project_id}/qemu/vms/{vm_id}")
    );
    assert_eq!(r.json["name"], "PC TEST 1");
    // test_qemu_start, _suspend, _resume, _reload, _stop
    for op in ["start", "suspend", "resume", "reload", "stop"] {
        let r = s.post(&format!("{v}/{op}"), "");
        assert_eq!(r.status, 204, "{op}: {}", r.text);
    }
    // test_qemu_update
    let console = r#"{"name": "test", "ram": 1024, "hdb_disk_image": "/tmp/hdb"}"#;
    let r = s.req("PUT", &v, console);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (
            r.json["name"].as_str(),
            r.json["ram"].as_u64(),
            r.json["hdb_disk_image"].as_str()
        ),
        (Some("test"), Some(1024), Some("/tmp/hdb"))
    );
    let free = r.json["console"].as_u64().unwrap() + 10;
    let r = s.req("PUT", &v, &format!(r#"{{"console": {free}}}"#));
    assert_eq!(r.json["console"].as_u64(), Some(free), "{}", r.text);
    // test_qemu_nio_create_udp
    assert_eq!(s.req("PUT", &v, r#"{"adapters": 2}"#).status, 200);
    let nio = format!("{v}/adapters/1/ports/0/nio");
    let udp = r#"{"type": "nio_udp", "lport": 4242, "rport": 4343, "rhost": "127.0.0.1"}"#;
    let r = s.post(&nio, udp);
    assert_eq!(r.status, 201, "{}", r.text);
    let route = r"/v1/projects/{project_id}/qemu/vms/{vm_id}/adapters/{adapter_number:\d+}/ports/{port_number:\d+}/nio";
    assert_eq!(r.header("X-Route"), Some(route));
    assert_eq!(r.json["type"], "nio_udp");
    // test_qemu_nio_create_ethernet
    let eth = r#"{"type": "nio_generic_ethernet", "ethernet_device": "eth0"}"#;
    s.post(&nio, eth).assert_error(409, "not supported by QEMU");
    // test_qemu_delete_nio
    let r = s.req("DELETE", &nio, "");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("X-Route"), Some(route));
    // test_qemu_list_binaries
    let r = s.get("/v1/qemu/binaries");
    assert_eq!(r.status, 200);
    assert!(
        r.json
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["path"].is_string() && b["version"].is_string())
    );
    // test_qemu_delete
    assert_eq!(s.req("DELETE", &v, "").status, 204);
    assert_eq!(qemu_children(s.pid()), 0);
}
