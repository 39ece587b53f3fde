//! QEMU VMs: time from `start` to the guest's prompt on nanolab's console
//! (TCG, and KVM when asked through the options), and the server's memory
//! per QEMU node. The guest is the test suite's (`tests/it/testvm`).

use super::*;

/// The test guest, built once under the target directory.
fn test_vm() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("testvm");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/testvm/build.sh");
    let ok = Command::new("bash")
        .arg(script)
        .arg(&dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "building the test VM");
    dir
}

/// Read the console on `port` until `needle` shows or `limit` passes.
fn until(port: u16, needle: &str, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        if let Ok(n) = s.read(&mut buf) {
            seen.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&seen).contains(needle) {
                return Some(start.elapsed());
            }
        }
    }
    None
}

pub(crate) fn qemu() {
    if !which("qemu-system-x86_64") {
        println!("qemu: qemu-system-x86_64 is not installed, skipped");
        return;
    }
    let vm = test_vm();
    let images = std::env::temp_dir().join(format!("nanolab-bench-images-{}", std::process::id()));
    std::fs::create_dir_all(images.join("QEMU")).unwrap();
    for f in ["vmlinuz", "initrd.img", "disk.qcow2"] {
        std::fs::copy(vm.join(f), images.join("QEMU").join(f)).unwrap();
    }
    let images_arg = images.display().to_string();
    let srv = Server::start_tmpfs(&["--images-dir", &images_arg]);
    let (_, p) = srv.call("POST", "/v1/projects", r#"{"name": "qemu"}"#);
    let p = p["project_id"].as_str().unwrap().to_string();
    for (accel, options, limit) in [
        ("TCG", "", 120),
        ("TCG", "", 120),
        ("TCG", "", 120),
        ("KVM", "-accel kvm", 30),
    ] {
        let body = format!(
            r#"{{"name": "B", "qemu_path": "qemu-system-x86_64", "ram": 128, "hda_disk_image": "disk.qcow2",
                "kernel_image": "vmlinuz", "initrd": "initrd.img", "options": "{options}",
                "kernel_command_line": "console=ttyS0 quiet ip=10.0.0.3/24 vmname=bench"}}"#
        );
        let (_, v) = srv.call("POST", &format!("/v1/projects/{p}/qemu/vms"), &body);
        let id = v["vm_id"].as_str().unwrap().to_string();
        let port = v["console"].as_u64().unwrap() as u16;
        let t = Instant::now();
        let (code, _) = srv.call("POST", &format!("/v1/projects/{p}/qemu/vms/{id}/start"), "");
        let started = t.elapsed();
        let prompt = until(port, "bench# ", Duration::from_secs(limit)).map(|d| d + started);
        match (code, prompt) {
            (204, Some(d)) => println!(
                "qemu: {accel}: start answered in {started:.2?}, guest prompt {d:.2?} after start"
            ),
            (204, None) => println!(
                "qemu: {accel}: start answered in {started:.2?}, no prompt within {limit} s (KVM hangs on nested hosts)"
            ),
            (c, _) => println!("qemu: {accel}: start answered {c}"),
        }
        srv.call("POST", &format!("/v1/projects/{p}/qemu/vms/{id}/stop"), "");
        srv.call("DELETE", &format!("/v1/projects/{p}/qemu/vms/{id}"), "");
    }
    // Memory per node (created, not started): 1,000 in ten projects.
    let before = srv.rss_kib();
    let mut projects = Vec::new();
    for _ in 0..10 {
        let (_, p) = srv.call("POST", "/v1/projects", "{}");
        let p = p["project_id"].as_str().unwrap().to_string();
        for i in 0..100 {
            let body = format!(
                r#"{{"name": "R{i}", "qemu_path": "qemu-system-x86_64", "hda_disk_image": "disk.qcow2", "adapters": 4}}"#
            );
            let (code, _) = srv.call("POST", &format!("/v1/projects/{p}/qemu/vms"), &body);
            assert_eq!(code, 201);
        }
        projects.push(p);
    }
    let after = srv.rss_kib();
    println!(
        "qemu: server memory per QEMU node (4 adapters, not started): {} bytes",
        (after.saturating_sub(before)) * 1024 / 1000
    );
    for p in projects {
        srv.call("DELETE", &format!("/v1/projects/{p}"), "");
    }
    let _ = std::fs::remove_dir_all(&images);
}
