//! What clients see: consoles, scripts, legacy ids, events, console ports, restores, names and log lines.

use super::*;

#[test]
fn console_clients_are_greeted_fed_and_dropped_when_slow() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.vpcs(p);
    let (fast, slow) = (
        ClientId {
            handle: 1,
            serial: 1,
        },
        ClientId {
            handle: 2,
            serial: 2,
        },
    );
    assert!(r.lab.console_attach(k, fast));
    let (greeting, _) = r.lab.console_pending(k, fast).unwrap();
    assert!(String::from_utf8_lossy(greeting).contains("is not running"));
    let n0 = greeting.len();
    r.lab.console_written(k, fast, n0);
    r.started(p, n, k);
    assert!(r.lab.console_attach(k, slow));
    let (replay, _) = r.lab.console_pending(k, slow).unwrap();
    assert!(
        String::from_utf8_lossy(replay).contains("VPCS> "),
        "history replayed"
    );
    r.lab
        .console_input(r.now, k, fast, b"ip 10.0.0.1\r", &mut r.host);
    assert_eq!(r.host.typed[&k], b"ip 10.0.0.1\r");
    let big = vec![b'x'; MAX_CONSOLE_CLIENT_OUTPUT / 2 + 1];
    for _ in 0..2 {
        let (out, _) = r.lab.console_pending(k, fast).unwrap();
        let len = out.len();
        r.lab.console_written(k, fast, len);
        r.output(k, &big);
    }
    assert!(
        r.host.dropped_clients.contains(&slow),
        "the slow client is dropped"
    );
    assert!(r.lab.console_pending(k, slow).is_none());
    assert!(r.lab.console_pending(k, fast).is_some(), "the reader stays");
    r.lab
        .console_input(r.now, k, fast, b"disconnect\r", &mut r.host);
    assert!(
        r.lab.console_pending(k, fast).unwrap().1,
        "closing after disconnect"
    );
}

#[test]
fn a_script_already_on_disk_is_the_nodes_and_is_never_deleted() {
    let mut r = Rig::new();
    let p = r.project();
    let id = Uuid::new_v4();
    let dir = PathBuf::from(format!("/projects/{p}/project-files/vpcs/{id}"));
    let path = dir.join("startup.vpc");
    r.host
        .disk
        .files
        .insert(path.clone(), b"set pcname PC1\nip 10.0.0.9/24\n".to_vec());
    let create = |name: &str, script: Option<&str>| VmCreate {
        console_pick: false,
        console_telnet: true,
        name: name.into(),
        vm_id: Some(id),
        legacy_id: None,
        console: None,
        startup_script: script.map(String::from),
    };
    let t = r.send(Command::CreateNode(
        p,
        NodeCreate::Vpcs(create("PC1", None)),
    ));
    let Ok(Answer::Created(Body::Vpcs(v))) = r.reply(t).clone() else {
        panic!()
    };
    assert_eq!(
        v.startup_script.as_deref(),
        Some("set pcname PC1\nip 10.0.0.9/24\n")
    );
    assert_eq!(v.startup_script_path.as_deref(), Some("startup.vpc"));
    let k = r.lab.key_of(id).unwrap();
    // Console moves and unrelated updates leave the file alone.
    let put = |r: &mut Rig, b: VmUpdate| r.node(p, id, NodeCommand::Update(b));
    let t = put(
        &mut r,
        VmUpdate {
            console_pick: false,
            console_telnet: None,
            console: Some(2050),
            ..Default::default()
        },
    );
    assert_eq!(r.status(t), Some(200));
    assert_eq!(
        r.host.disk.files[&path],
        b"set pcname PC1\nip 10.0.0.9/24\n"
    );
    // A rename renames inside the script.
    let t = put(
        &mut r,
        VmUpdate {
            console_pick: false,
            console_telnet: None,
            name: Some("Web".into()),
            ..Default::default()
        },
    );
    assert_eq!(r.status(t), Some(200));
    assert_eq!(
        r.host.disk.files[&path],
        b"set pcname Web\nip 10.0.0.9/24\n"
    );
    // The script is passed at start.
    r.started(p, id, k);
    assert!(r.host.last_spawn.as_ref().unwrap().startup_script);
    // "" keeps an empty file.
    let t = put(
        &mut r,
        VmUpdate {
            console_pick: false,
            console_telnet: None,
            startup_script: Some(String::new()),
            ..Default::default()
        },
    );
    let Ok(Answer::Ok(Body::Vpcs(v))) = r.reply(t).clone() else {
        panic!()
    };
    assert_eq!(
        (
            v.startup_script.as_deref(),
            v.startup_script_path.as_deref()
        ),
        (Some(""), Some("startup.vpc"))
    );
    assert_eq!(r.host.disk.files[&path], b"");
    // %h takes the new name when both change at once.
    let both = VmUpdate {
        console_pick: false,
        console_telnet: None,
        name: Some("DB".into()),
        startup_script: Some("set pcname %h".into()),
        ..Default::default()
    };
    let t = put(&mut r, both);
    assert_eq!(r.status(t), Some(200));
    assert_eq!(r.host.disk.files[&path], b"set pcname DB");
    // A node without a script on disk or in the request has none, and no file.
    let other = VmCreate {
        console_pick: false,
        console_telnet: true,
        vm_id: None,
        ..create("X", None)
    };
    let t = r.send(Command::CreateNode(p, NodeCreate::Vpcs(other)));
    let Ok(Answer::Created(Body::Vpcs(v))) = r.reply(t).clone() else {
        panic!()
    };
    assert_eq!((v.startup_script, v.startup_script_path), (None, None));
}

#[test]
fn an_integer_vm_id_from_gns3_1_2_is_converted_as_1_3_13_does() {
    let mut r = Rig::new();
    let p = r.project();
    let base = PathBuf::from(format!("/projects/{p}"));
    let old = base.join("project-files/vpcs/pc-3/startup.vpc");
    r.host
        .disk
        .files
        .insert(old.clone(), b"ip 10.3.3.3/24".to_vec());
    let b = VmCreate {
        console_pick: false,
        console_telnet: true,
        name: "PC3".into(),
        vm_id: None,
        legacy_id: Some(3),
        console: None,
        startup_script: None,
    };
    let t = r.send(Command::CreateNode(p, NodeCreate::Vpcs(b)));
    let Ok(Answer::Created(Body::Vpcs(v))) = r.reply(t).clone() else {
        panic!("{:?}", r.reply(t))
    };
    assert_eq!(
        v.startup_script.as_deref(),
        Some("ip 10.3.3.3/24"),
        "the old directory is the VM's"
    );
    let new = base.join(format!("project-files/vpcs/{}/startup.vpc", v.id));
    assert!(r.host.disk.files.contains_key(&new) && !r.host.disk.files.contains_key(&old));
}

fn statuses(events: &[Event]) -> Vec<&'static str> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::NodeUpdated {
                node: Body::Vpcs(v),
                ..
            } => Some(v.status),
            _ => None,
        })
        .collect()
}

#[test]
fn node_updated_is_told_before_the_start_answer_and_on_every_change() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.vpcs(p);
    events(&mut r);
    let t = r.node(p, n, NodeCommand::Start);
    r.turn();
    assert!(statuses(&events(&mut r)).is_empty(), "not yet started");
    r.output(k, PROMPT_OUTPUT);
    assert_eq!(r.status(t), Some(204));
    assert_eq!(statuses(&events(&mut r)), ["started"]);
    let rename = VmUpdate {
        name: Some("PC9".into()),
        ..Default::default()
    };
    r.node(p, n, NodeCommand::Update(rename));
    assert_eq!(statuses(&events(&mut r)), ["started"]);
    // Death: stopped, and a log.error naming the node.
    r.exit(k, "killed by signal 9");
    let ev = events(&mut r);
    assert_eq!(statuses(&ev), ["stopped"]);
    assert!(ev.iter().any(|e| matches!(e,
        Event::ProjectLog { level: LogLevel::Error, text, .. } if text.contains("PC9"))));
    // A stop is told once the process is gone.
    r.started(p, n, k);
    events(&mut r);
    let t = r.node(p, n, NodeCommand::Stop);
    assert!(statuses(&events(&mut r)).is_empty());
    r.exit(k, "exit code 0");
    assert_eq!(r.status(t), Some(204));
    assert_eq!(statuses(&events(&mut r)), ["stopped"]);
}

#[test]
fn the_heartbeat_beats_every_second_while_someone_listens() {
    let mut r = Rig::new();
    let loads = |ev: Vec<Event>| ev.iter().filter(|e| matches!(e, Event::Load(_))).count();
    assert_eq!(r.lab.timeout(r.now), None, "idle: no wakeup");
    let t = r.send(Command::Notifications);
    assert!(matches!(
        r.reply(t),
        Ok(Answer::Ok(Body::Upgrade(
            crate::lab::answer::Upgrade::Notifications
        )))
    ));
    assert_eq!(loads(events(&mut r)), 1, "one at once");
    for _ in 0..3 {
        r.advance(crate::limits::NOTIFICATION_PING);
        assert_eq!(loads(events(&mut r)), 1);
    }
    r.lab.unsubscribe();
    r.advance(crate::limits::NOTIFICATION_PING);
    assert_eq!(loads(events(&mut r)), 0);
    assert_eq!(r.lab.timeout(r.now), None, "the beat stopped");
}

#[test]
fn a_console_port_taken_is_replaced_in_2_2_and_refused_in_1_3() {
    let mut r = Rig::new();
    let p = r.project();
    let (_, k) = r.vpcs(p);
    let taken = r.lab.node(k).unwrap().console_port.unwrap();
    let create = |pick: bool| VmCreate {
        console_pick: pick,
        console_telnet: true,
        name: "PC2".into(),
        vm_id: None,
        legacy_id: None,
        console: Some(taken),
        startup_script: None,
    };
    let t = r.send(Command::CreateNode(p, NodeCreate::Vpcs(create(false))));
    assert_eq!(r.status(t), Some(409));
    let t = r.send(Command::CreateNode(p, NodeCreate::Vpcs(create(true))));
    let Ok(Answer::Created(Body::Vpcs(v))) = r.reply(t) else {
        panic!()
    };
    assert_ne!(v.console, taken);
    // Out of range too; and console_type none means no console at all.
    let mut far = create(true);
    far.console = Some(60000);
    let t = r.send(Command::CreateNode(p, NodeCreate::Vpcs(far)));
    assert_eq!(r.status(t), Some(201));
    let mut none = create(true);
    none.console_telnet = false;
    let t = r.send(Command::CreateNode(p, NodeCreate::Vpcs(none)));
    let Ok(Answer::Created(Body::Vpcs(v))) = r.reply(t) else {
        panic!()
    };
    assert!(!v.console_telnet);
    assert!(
        r.lab
            .key_of(v.id)
            .and_then(|k| r.lab.node(k)?.console_port)
            .is_none()
    );
}

#[test]
fn a_restore_is_answered_when_done_and_one_runs_at_a_time() {
    let mut r = Rig::new();
    let t = r.send(Command::RestoreProjects(b"archive".to_vec()));
    assert!(r.host.reply_for(t).is_none(), "answered before it was done");
    assert_eq!(
        r.lab.timeout(r.now),
        Some(Duration::ZERO),
        "the loop must not sleep"
    );
    let second = r.send(Command::RestoreProjects(b"other".to_vec()));
    assert_eq!(r.reply(second).as_ref().unwrap_err().status(), 409);
    r.lab.poll(r.now, &mut r.host);
    assert!(matches!(r.reply(t), Ok(Answer::Created(Body::Restored(r))) if r.files == 1));
    assert_eq!(r.lab.timeout(r.now), None);
}

#[test]
fn names_projects_and_nodes_have_limits_that_say_so() {
    let mut r = Rig::new();
    let long = "x".repeat(crate::limits::MAX_NAME_BYTES + 1);
    let t = r.send(Command::CreateProject(ProjectCreate {
        name: Some(long.clone()),
        ..Default::default()
    }));
    let e = r.reply(t).as_ref().unwrap_err();
    assert_eq!(e.status(), 400);
    assert!(e.to_string().contains("limit of 1024"), "{e}");
    let p = r.project();
    let b = VmCreate {
        console_pick: false,
        console_telnet: false,
        name: long,
        vm_id: None,
        legacy_id: None,
        console: None,
        startup_script: None,
    };
    let t = r.send(Command::CreateNode(p, NodeCreate::Vpcs(b)));
    assert_eq!(r.reply(t).as_ref().unwrap_err().status(), 400);
}

#[test]
fn log_lines_name_the_kind_and_the_port_as_the_api_numbers_it() {
    use crate::lab::command::NodeClass;
    let mut r = Rig::new();
    let p = r.project();
    let d = switch(&mut r, p);
    let node = NodeRef {
        project: p,
        node: d.id,
        class: NodeClass::Device,
    };
    let t = r.send(Command::Node(
        node,
        NodeCommand::AddDeviceNio(9, nio(10009, 20000), None),
    ));
    assert_eq!(r.status(t), Some(201));
    let at = PortAddr {
        adapter: 0,
        port: 9,
    };
    let t = r.send(Command::Node(node, NodeCommand::RemoveNio(at)));
    assert_eq!(r.status(t), Some(204));
    let lines: Vec<String> = events(&mut r).iter().map(|e| e.to_string()).collect();
    let text = lines.join("\n");
    assert!(
        text.contains(&format!("switch {}: SW1 created", d.id)),
        "{text}"
    );
    assert!(
        text.contains(&format!("switch {}: port 9: NIO udp 10009", d.id)),
        "{text}"
    );
    assert!(
        text.contains("removed after 0 frames (0 bytes) out"),
        "{text}"
    );
    assert!(
        !text.contains("vm ") && !text.contains("PortStats"),
        "{text}"
    );
}

#[test]
fn a_local_port_another_port_holds_is_refused_with_its_holder_named() {
    let mut r = Rig::new();
    let p = r.project();
    let (a, _) = r.vpcs(p);
    let (b, kb) = r.vpcs(p);
    let t = r.node(p, a, NodeCommand::AddNio(PORT0, nio(10000, 10001)));
    assert_eq!(r.status(t), Some(201));
    let t = r.node(p, b, NodeCommand::AddNio(PORT0, nio(10000, 10002)));
    let e = r.error(t);
    assert!(
        e.contains("UDP port 10000 is already used by vpcs") && e.contains("ports/udp"),
        "{e}"
    );
    // A node's own relay port is named as such.
    r.started(p, b, kb);
    let port = r.host.procs[&kb].udp_port;
    let t = r.node(p, a, NodeCommand::AddNio(PORT0, nio(port, 10003)));
    let e = r.error(t);
    assert!(e.contains("itself"), "{e}");
}

#[test]
fn out_of_descriptors_a_console_is_refused_at_the_first_port_not_the_whole_range() {
    let mut r = Rig::new();
    let p = r.project();
    r.host.out_of_descriptors = true;
    let b = VmCreate {
        name: "PC1".into(),
        vm_id: None,
        legacy_id: None,
        console: None,
        startup_script: None,
        console_pick: false,
        console_telnet: true,
    };
    let t = r.send(Command::CreateNode(p, NodeCreate::Vpcs(b.clone())));
    assert_eq!(r.status(t), Some(503));
    assert!(r.error(t).contains("open-file limit"), "{}", r.error(t));
    assert_eq!(
        r.host.console_binds, 1,
        "one try, not one per port of the range"
    );
    // Descriptors back: the ports passed over are tried again.
    r.host.out_of_descriptors = false;
    let t = r.send(Command::CreateNode(p, NodeCreate::Vpcs(b)));
    assert_eq!(r.status(t), Some(201));
}
