//! A QEMU VM's lifecycle on the fake clock: QMP's greeting and
//! capabilities answer a start, suspend, resume and reload are QMP
//! commands, a stop asks QMP to quit and kills after the grace, a QEMU that
//! dies or never greets is dealt with.

use super::*;
use crate::lab::spec::{QemuConfig, QemuCreate};

const QEMU: &str = "/usr/bin/qemu-system-x86_64";
const GREETING: &[u8] = b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 0, \"major\": 10}}, \"capabilities\": [\"oob\"]}}\r\n";

fn vm(r: &mut Rig, p: Uuid, config: QemuConfig) -> Result<(Uuid, NodeKey), String> {
    r.host.readable.insert(QEMU.into());
    let b = QemuCreate {
        name: "R1".into(),
        vm_id: None,
        console: None,
        config: QemuConfig {
            qemu_path: QEMU.into(),
            ..config
        },
        mac_from_id: false,
        check_images: false,
    };
    let t = r.send(Command::CreateNode(p, NodeCreate::Qemu(Box::new(b))));
    match r.reply(t) {
        Ok(Answer::Created(Body::Qemu(v))) => Ok((v.id, r.lab.key_of(v.id).unwrap())),
        Err(e) => Err(e.to_string()),
        other => panic!("{other:?}"),
    }
}

fn op(r: &mut Rig, p: Uuid, n: Uuid, c: NodeCommand) -> Ticket {
    r.send(Command::Node(
        NodeRef {
            project: p,
            node: n,
            class: crate::lab::command::NodeClass::Qemu,
        },
        c,
    ))
}

fn monitor(r: &mut Rig, k: NodeKey, data: &[u8]) {
    r.lab.on_monitor(r.now, k, data, &mut r.host);
    r.check();
}

/// What the lab wrote to the VM's QMP, and forget it.
fn qmp_sent(r: &mut Rig, k: NodeKey) -> String {
    String::from_utf8(r.host.monitor.remove(&k).unwrap_or_default()).unwrap()
}

fn status(r: &mut Rig, p: Uuid, n: Uuid) -> &'static str {
    let t = op(r, p, n, NodeCommand::Get);
    match r.reply(t) {
        Ok(Answer::Ok(Body::Qemu(v))) => v.status,
        other => panic!("{other:?}"),
    }
}

/// Start it and let QMP come up.
fn started(r: &mut Rig, p: Uuid, n: Uuid, k: NodeKey) {
    let t = op(r, p, n, NodeCommand::Start);
    r.turn();
    monitor(r, k, GREETING);
    monitor(r, k, b"{\"return\": {}, \"id\": 1}\r\n");
    assert_eq!(r.status(t), Some(204));
    qmp_sent(r, k);
}

#[test]
fn a_start_is_answered_once_qmp_took_its_capabilities() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = vm(&mut r, p, QemuConfig::default()).unwrap();
    let start = op(&mut r, p, n, NodeCommand::Start);
    assert_eq!(r.status(start), None, "parked until the spawn queue runs");
    r.turn();
    let args = r.host.last_vm.clone().unwrap().args;
    assert_eq!(args[0], QEMU);
    let line = args.join(" ");
    for part in [
        "-accel tcg",
        "-display none",
        "socket,id=con0,fd=@console@",
        "chardev=qmp0,mode=control",
        "e1000,mac=00:00:ab:",
        "dgram,id=gns3-0,local.type=fd,local.str=@nic0@",
    ] {
        assert!(line.contains(part), "{part} missing from {line}");
    }
    monitor(&mut r, k, GREETING);
    assert_eq!(r.status(start), None, "QMP greeted, not yet ready");
    assert!(qmp_sent(&mut r, k).contains("\"execute\":\"qmp_capabilities\""));
    // A reply in pieces.
    monitor(&mut r, k, b"{\"return\": {},");
    monitor(&mut r, k, b" \"id\": 1}\r\n");
    assert_eq!(r.status(start), Some(204));
    assert_eq!(status(&mut r, p, n), "started");
}

#[test]
fn suspend_resume_and_reload_are_qmp_commands_in_place() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = vm(&mut r, p, QemuConfig::default()).unwrap();
    started(&mut r, p, n, k);
    // The id a command line was sent with.
    let id =
        |line: &str| serde_json::from_str::<serde_json::Value>(line.trim()).unwrap()["id"].clone();
    let t = op(&mut r, p, n, NodeCommand::Suspend);
    assert_eq!(r.status(t), Some(204));
    let stop = qmp_sent(&mut r, k);
    assert!(stop.contains("\"execute\":\"stop\""));
    assert_eq!(status(&mut r, p, n), "suspended");
    let t = op(&mut r, p, n, NodeCommand::Resume);
    assert_eq!(r.status(t), Some(204));
    let cont = qmp_sent(&mut r, k);
    assert!(cont.contains("\"execute\":\"cont\""));
    assert_eq!(status(&mut r, p, n), "started");
    // QEMU works through both commands: the suspend's STOP event, coming
    // after the resume was answered, is old news.
    let event = |name: &str| {
        format!(
            "{{\"timestamp\": {{\"seconds\": 1, \"microseconds\": 0}}, \"event\": \"{name}\"}}\r\n"
        )
    };
    let reply = |line: &str| format!("{{\"return\": {{}}, \"id\": {}}}\r\n", id(line));
    monitor(&mut r, k, event("STOP").as_bytes());
    monitor(&mut r, k, reply(&stop).as_bytes());
    assert_eq!(status(&mut r, p, n), "started");
    monitor(&mut r, k, event("RESUME").as_bytes());
    monitor(&mut r, k, reply(&cont).as_bytes());
    assert_eq!(status(&mut r, p, n), "started");
    // The guest paused by other means is seen too (QMP's events).
    monitor(
        &mut r,
        k,
        b"{\"timestamp\": {\"seconds\": 1, \"microseconds\": 0}, \"event\": \"STOP\"}\r\n",
    );
    assert_eq!(status(&mut r, p, n), "suspended");
    let t = op(&mut r, p, n, NodeCommand::Start);
    assert_eq!(r.status(t), Some(204), "a start of a running VM resumes it");
    assert!(qmp_sent(&mut r, k).contains("\"execute\":\"cont\""));
    let t = op(&mut r, p, n, NodeCommand::Reload);
    assert_eq!(r.status(t), Some(204));
    assert!(qmp_sent(&mut r, k).contains("\"execute\":\"system_reset\""));
    assert!(r.host.procs.contains_key(&k), "the same process");
    assert!(r.signals(k).is_empty());
}

#[test]
fn a_stop_asks_qmp_to_quit_then_kills_after_the_grace() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = vm(&mut r, p, QemuConfig::default()).unwrap();
    started(&mut r, p, n, k);
    let stop = op(&mut r, p, n, NodeCommand::Stop);
    assert!(qmp_sent(&mut r, k).contains("\"execute\":\"quit\""));
    assert!(r.signals(k).is_empty(), "QMP first");
    r.advance(STOP_GRACE);
    assert_eq!(r.signals(k), [Signal::Kill]);
    r.exit(k, "signal 9");
    assert_eq!(r.status(stop), Some(204));
    assert_eq!(status(&mut r, p, n), "stopped");
    // Stopped: suspend, resume and stop have nothing to do.
    for c in [NodeCommand::Suspend, NodeCommand::Resume, NodeCommand::Stop] {
        let t = op(&mut r, p, n, c);
        assert_eq!(r.status(t), Some(204));
    }
    assert!(r.host.monitor.is_empty(), "no QMP without a QEMU");
}

#[test]
fn qemu_dying_or_silent_at_start_fails_the_start() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = vm(&mut r, p, QemuConfig::default()).unwrap();
    let start = op(&mut r, p, n, NodeCommand::Start);
    r.turn();
    r.exit(k, "exit code 1");
    assert!(
        r.error(start)
            .contains("QEMU exited at start (exit code 1)"),
        "{}",
        r.error(start)
    );
    let start = op(&mut r, p, n, NodeCommand::Start);
    r.turn();
    r.advance(START_TIMEOUT);
    assert_eq!(r.signals(k), [Signal::Kill], "QMP never greeted");
    r.exit(k, "signal 9");
    assert_eq!(r.status(start), Some(409));
}

#[test]
fn what_a_vm_cannot_run_with_is_refused_with_its_name() {
    let mut r = Rig::new();
    let p = r.project();
    let forbidden = QemuConfig {
        options: "-m 64 --drive file=/etc/shadow".into(),
        ..QemuConfig::default()
    };
    let e = vm(&mut r, p, forbidden).unwrap_err();
    assert!(e.contains("Forbidden additional option: --drive"), "{e}");
    let (n, _) = vm(
        &mut r,
        p,
        QemuConfig {
            hda: "router.qcow2".into(),
            ..QemuConfig::default()
        },
    )
    .unwrap();
    let t = op(&mut r, p, n, NodeCommand::Start);
    assert!(
        r.error(t)
            .contains("hda disk image '/images/QEMU/router.qcow2' is not accessible"),
        "{}",
        r.error(t)
    );
    r.host.readable.insert("/images/router.qcow2".into());
    let t = op(&mut r, p, n, NodeCommand::Start);
    assert_eq!(r.status(t), None, "found where 1.3 topologies kept images");
    r.turn();
    let line = r.host.last_vm.clone().unwrap();
    assert_eq!(
        line.overlays[0].0,
        std::path::PathBuf::from("/images/router.qcow2")
    );
    assert!(line.overlays[0].1.ends_with("hda_disk.qcow2"));
}

#[test]
fn closing_the_project_kills_a_running_vm_at_once() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = vm(&mut r, p, QemuConfig::default()).unwrap();
    started(&mut r, p, n, k);
    let t = r.send(Command::CloseProject(p));
    assert_eq!(r.status(t), Some(204));
    assert!(r.host.procs.is_empty(), "no QEMU left");
    assert!(r.host.released.iter().any(|(key, _)| *key == k));
}

/// Start the VM `n` and bring QMP up: the start's ticket.
fn qmp_up(r: &mut Rig, p: Uuid, n: Uuid, k: NodeKey) -> Ticket {
    let t = op(r, p, n, NodeCommand::Start);
    r.turn();
    monitor(r, k, GREETING);
    monitor(r, k, b"{\"return\": {}, \"id\": 1}\r\n");
    t
}

fn accel(r: &Rig) -> (bool, bool) {
    let line = r.host.last_vm.clone().unwrap().args.join(" ");
    (line.contains("-accel kvm"), line.contains("-debugcon"))
}

#[test]
fn kvm_that_hangs_is_found_out_once_and_the_vm_starts_under_tcg() {
    let mut r = Rig::new();
    r.host.qemu_host.kvm = true;
    let p = r.project();
    let (n, k) = vm(&mut r, p, QemuConfig::default()).unwrap();
    let start = qmp_up(&mut r, p, n, k);
    assert_eq!(accel(&r), (true, true), "KVM tried, its firmware watched");
    assert_eq!(r.status(start), None, "not ready before the firmware runs");
    for _ in 0..11 {
        r.advance(Duration::from_millis(250));
    }
    assert!(r.signals(k).is_empty(), "the trial lasts 3 s");
    r.advance(Duration::from_millis(250));
    assert_eq!(r.signals(k), [Signal::Kill], "nothing from the firmware");
    r.exit(k, "signal 9");
    assert_eq!(r.status(start), None, "the start goes on, under TCG");
    assert_eq!(accel(&r), (false, false));
    monitor(&mut r, k, GREETING);
    monitor(&mut r, k, b"{\"return\": {}, \"id\": 1}\r\n");
    assert_eq!(r.status(start), Some(204));
    // The next VM does not try again.
    let (n2, k2) = vm(&mut r, p, QemuConfig::default()).unwrap();
    let t = qmp_up(&mut r, p, n2, k2);
    assert_eq!(accel(&r), (false, false));
    assert_eq!(r.status(t), Some(204));
}

#[test]
fn kvm_that_runs_the_firmware_is_kept() {
    let mut r = Rig::new();
    r.host.qemu_host.kvm = true;
    let p = r.project();
    let (n, k) = vm(&mut r, p, QemuConfig::default()).unwrap();
    let start = qmp_up(&mut r, p, n, k);
    let dir = r.host.last_vm.clone().unwrap().dir;
    r.host
        .disk
        .files
        .insert(dir.join("debugcon.log"), b"SeaBIOS (version 1.16)".to_vec());
    r.advance(Duration::from_millis(250));
    assert_eq!(r.status(start), Some(204));
    assert!(r.signals(k).is_empty());
    let (n2, k2) = vm(&mut r, p, QemuConfig::default()).unwrap();
    let t = qmp_up(&mut r, p, n2, k2);
    assert_eq!(accel(&r), (true, false), "KVM straight away");
    assert_eq!(r.status(t), Some(204));
    // A VM's own -accel wins.
    let own = QemuConfig {
        options: "-accel tcg".into(),
        ..QemuConfig::default()
    };
    let (n3, k3) = vm(&mut r, p, own).unwrap();
    qmp_up(&mut r, p, n3, k3);
    assert_eq!(accel(&r), (false, false));
}

#[test]
fn kvm_that_cannot_give_the_guest_its_cpu_is_left_at_once() {
    let mut r = Rig::new();
    r.host.qemu_host.kvm = true;
    let p = r.project();
    let (n, k) = vm(&mut r, p, QemuConfig::default()).unwrap();
    let start = qmp_up(&mut r, p, n, k);
    let dir = r.host.last_vm.clone().unwrap().dir;
    let warning = b"qemu-system-x86_64: warning: host doesn't support requested feature: CPUID.01H:ECX.pni [bit 0]\n";
    r.host
        .disk
        .files
        .insert(dir.join("qemu.log"), warning.to_vec());
    r.host
        .disk
        .files
        .insert(dir.join("debugcon.log"), b"SeaBIOS".to_vec());
    r.advance(Duration::from_millis(250));
    assert_eq!(
        r.signals(k),
        [Signal::Kill],
        "the firmware runs, the guest would not"
    );
    r.exit(k, "signal 9");
    assert_eq!(accel(&r), (false, false));
    monitor(&mut r, k, GREETING);
    monitor(&mut r, k, b"{\"return\": {}, \"id\": 1}\r\n");
    assert_eq!(r.status(start), Some(204));
    let warned = events(&mut r)
        .iter()
        .any(|e| format!("{e:?}").contains("CPUID.01H:ECX.pni"));
    assert!(warned, "the reason is told");
}

#[test]
fn the_guest_sees_its_links_come_and_go() {
    let mut r = Rig::new();
    let p = r.project();
    let two = QemuConfig {
        adapters: 2,
        ..QemuConfig::default()
    };
    let (n, k) = vm(&mut r, p, two).unwrap();
    let t = op(&mut r, p, n, NodeCommand::AddNio(PORT0, nio(10000, 10001)));
    assert_eq!(r.status(t), Some(201));
    let start = qmp_up(&mut r, p, n, k);
    assert_eq!(r.status(start), Some(204));
    let sent = qmp_sent(&mut r, k);
    assert!(
        sent.contains(r#""execute":"set_link""#) && sent.contains(r#""name":"gns3-1","up":false"#),
        "adapter 1 has no link: {sent}"
    );
    assert!(!sent.contains("gns3-0"), "adapter 0 has one: {sent}");
    let one = PortAddr {
        adapter: 1,
        port: 0,
    };
    let t = op(&mut r, p, n, NodeCommand::AddNio(one, nio(10002, 10003)));
    assert_eq!(r.status(t), Some(201));
    assert!(qmp_sent(&mut r, k).contains(r#""name":"gns3-1","up":true"#));
    let t = op(&mut r, p, n, NodeCommand::RemoveNio(PORT0));
    assert_eq!(r.status(t), Some(204));
    assert!(qmp_sent(&mut r, k).contains(r#""name":"gns3-0","up":false"#));
}
