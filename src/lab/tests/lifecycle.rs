//! A node's lifecycle on the fake clock: start, stop, reload, delete, crashes, deadlines, spawn failures, creation.

use super::*;

#[test]
fn start_then_stop_then_start() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.vpcs(p);
    let start = r.node(p, n, NodeCommand::Start);
    assert_eq!(r.status(start), None, "parked until the spawn queue runs");
    assert_eq!(r.lab.node(k).unwrap().state(), State::Starting);
    r.turn();
    assert!(r.host.procs.contains_key(&k));
    r.output(k, b"Welcome");
    assert_eq!(r.status(start), None, "no prompt yet");
    r.output(k, b"\r\n\r\nVPCS> ");
    assert_eq!(r.status(start), Some(204));
    assert_eq!(r.lab.node(k).unwrap().state(), State::Started);
    let stop = r.node(p, n, NodeCommand::Stop);
    assert_eq!(r.signals(k), [Signal::Term]);
    assert_eq!(r.lab.node(k).unwrap().state(), State::Stopping);
    r.exit(k, "exit code 0");
    assert_eq!(r.status(stop), Some(204));
    assert_eq!(
        r.lab.nodes.world.udp_ports.reservations().count(),
        0,
        "VPCS ports freed"
    );
    r.started(p, n, k);
    assert_eq!(r.host.procs[&k].pid, 1002, "a second process");
}

#[test]
fn stop_during_start_waits_its_turn() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.vpcs(p);
    let start = r.node(p, n, NodeCommand::Start);
    let stop = r.node(p, n, NodeCommand::Stop);
    r.turn();
    assert!(r.signals(k).is_empty(), "the stop waits for the start");
    r.output(k, PROMPT_OUTPUT);
    assert_eq!(r.status(start), Some(204));
    assert_eq!(r.signals(k), [Signal::Term]);
    assert_eq!(r.status(stop), None);
    r.exit(k, "exit code 0");
    assert_eq!(r.status(stop), Some(204));
}

#[test]
fn reload_of_a_running_and_of_a_stopped_node() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.vpcs(p);
    let reload = r.node(p, n, NodeCommand::Reload);
    r.turn();
    r.output(k, PROMPT_OUTPUT);
    assert_eq!(r.status(reload), Some(204), "a stopped node just starts");
    let reload = r.node(p, n, NodeCommand::Reload);
    assert_eq!(r.signals(k), [Signal::Term]);
    r.exit(k, "exit code 0");
    assert_eq!(r.status(reload), None, "stopped, now starting again");
    r.turn();
    r.output(k, PROMPT_OUTPUT);
    assert_eq!(r.status(reload), Some(204));
    assert!(r.lab.node(k).unwrap().running());
}

#[test]
fn delete_of_a_running_node_answers_what_waited_behind_it() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.vpcs(p);
    r.started(p, n, k);
    let delete = r.node(p, n, NodeCommand::Delete);
    let get = r.node(p, n, NodeCommand::Get);
    let start = r.node(p, n, NodeCommand::Start);
    assert_eq!((r.status(get), r.status(start)), (None, None));
    r.exit(k, "exit code 0");
    assert_eq!(r.status(delete), Some(204));
    for t in [get, start] {
        assert_eq!(r.status(t), Some(404));
        assert!(r.error(t).contains("was deleted"));
    }
    assert!(r.lab.node(k).is_none() && r.lab.key_of(n).is_none());
    assert!(!r.host.consoles.contains_key(&k), "console listener closed");
    assert_eq!(r.lab.nodes.world.console_ports.reservations().count(), 0);
    let later = r.node(p, n, NodeCommand::Get);
    assert_eq!(r.status(later), Some(404));
}

#[test]
fn crash_during_start_is_a_409_with_the_output() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.vpcs(p);
    let start = r.node(p, n, NodeCommand::Start);
    r.turn();
    let dir = r.lab.node(k).unwrap().face().dir().unwrap().to_path_buf();
    let log = format!("old run\n{LOG_HEADER}[\"vpcs\"]\nbind: Address already in use\n");
    r.host
        .disk
        .files
        .insert(dir.join(LOG_FILE), log.into_bytes());
    r.output(k, b"Welcome to Virtual PC");
    r.exit(k, "exit code 1");
    assert_eq!(r.status(start), Some(409));
    let e = r.error(start);
    assert!(
        e.contains("exit code 1") && e.contains("Address already in use"),
        "{e}"
    );
    assert!(!e.contains("old run"), "only the last run: {e}");
    assert_eq!(r.lab.node(k).unwrap().state(), State::Stopped);
    // Without a log, what the console showed is the cause.
    let start = r.node(p, n, NodeCommand::Start);
    r.host.disk.files.clear();
    r.turn();
    r.output(k, b"cannot open tap");
    r.exit(k, "exit code 2");
    assert!(r.error(start).contains("cannot open tap"));
}

#[test]
fn crash_during_stop_finishes_the_stop() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.vpcs(p);
    r.started(p, n, k);
    let stop = r.node(p, n, NodeCommand::Stop);
    r.exit(k, "signal 11");
    assert_eq!(r.status(stop), Some(204));
    r.advance(STOP_GRACE);
    assert!(r.host.procs.is_empty());
}

#[test]
fn a_crash_while_running_is_told_to_console_clients() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.vpcs(p);
    r.started(p, n, k);
    let c = ClientId {
        handle: 7,
        serial: 1,
    };
    assert!(r.lab.console_attach(k, c));
    r.exit(k, "signal 9");
    let (out, _) = r.lab.console_pending(k, c).unwrap();
    assert!(String::from_utf8_lossy(out).contains("VPCS stopped (signal 9)"));
    let events: Vec<Event> = std::iter::from_fn(|| r.lab.poll_event()).collect();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Warning { text, .. } if text.contains("on its own")))
    );
}

#[test]
fn the_start_timeout_reads_a_waiting_prompt_before_judging() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.vpcs(p);
    let start = r.node(p, n, NodeCommand::Start);
    r.turn();
    // The prompt is in the pty, but the loop has not read it yet.
    r.host.unread.insert(k, PROMPT_OUTPUT.to_vec());
    r.advance(START_TIMEOUT);
    assert_eq!(r.status(start), Some(204));
    assert!(r.signals(k).is_empty(), "a ready console is not killed");
}

#[test]
fn a_silent_console_is_killed_at_the_start_timeout() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.vpcs(p);
    let start = r.node(p, n, NodeCommand::Start);
    r.turn();
    r.advance(START_TIMEOUT - Duration::from_millis(1));
    assert!(r.signals(k).is_empty());
    r.advance(Duration::from_millis(1));
    assert_eq!(r.signals(k), [Signal::Kill]);
    r.exit(k, "signal 9");
    assert_eq!(r.status(start), Some(409));
}

#[test]
fn the_grace_kill_comes_after_three_seconds() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.vpcs(p);
    r.started(p, n, k);
    let stop = r.node(p, n, NodeCommand::Stop);
    r.advance(STOP_GRACE - Duration::from_millis(1));
    assert_eq!(r.signals(k), [Signal::Term]);
    r.advance(Duration::from_millis(1));
    assert_eq!(r.signals(k), [Signal::Term, Signal::Kill]);
    r.exit(k, "signal 9");
    assert_eq!(r.status(stop), Some(204));
}

#[test]
fn closing_a_project_with_running_nodes_leaves_nothing() {
    let mut r = Rig::new();
    let p = r.project();
    let (a, ka) = r.vpcs(p);
    let (b, kb) = r.vpcs(p);
    let (c, kc) = r.vpcs(p);
    r.started(p, a, ka);
    let starting = r.node(p, b, NodeCommand::Start);
    r.started(p, c, kc);
    let stopping = r.node(p, c, NodeCommand::Stop);
    let behind = r.node(p, c, NodeCommand::Get);
    let close = r.send(Command::CloseProject(p));
    assert_eq!(r.status(close), Some(204));
    for t in [starting, stopping] {
        assert_eq!(r.status(t), Some(409));
        assert!(r.error(t).contains("project closed"));
    }
    assert_eq!(r.status(behind), Some(404));
    assert!(r.host.procs.is_empty(), "every process reaped");
    assert!(r.host.consoles.is_empty() && r.host.nios.is_empty());
    assert!(r.lab.node(ka).is_none() && r.lab.node(kb).is_none());
    assert_eq!(r.lab.nodes.world.udp_ports.reservations().count(), 0);
    assert!(
        r.host
            .disk
            .dirs
            .contains(&PathBuf::from(format!("/projects/{p}"))),
        "files kept"
    );
    // The spawn queue still names b: its turn finds nothing to do.
    r.turn();
    assert!(r.host.procs.is_empty());
}

#[test]
fn a_nio_replaced_on_the_same_lport_rolls_back_when_the_new_one_fails() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.linked_vpcs(p);
    let same = r.node(p, n, NodeCommand::AddNio(PORT0, nio(10050, 20001)));
    assert_eq!(r.status(same), Some(201), "replaced in place");
    assert_eq!(udp(&r.host.nios[&(k, 0)]).rport, 20001);
    r.host.unreachable_rports.insert(20002);
    let bad = r.node(p, n, NodeCommand::AddNio(PORT0, nio(10050, 20002)));
    assert_eq!(r.status(bad), Some(409));
    assert_eq!(
        udp(&r.host.nios[&(k, 0)]).rport,
        20001,
        "the old tunnel is back"
    );
    let port = &r.lab.node(k).unwrap().ports[0];
    assert_eq!(port.nio.as_ref().map(|n| udp(n).rport), Some(20001));
    assert!(r.lab.nodes.world.udp_ports.is_reserved(10050));
    // Another lport: the old one is freed once the new one is open.
    let other = r.node(p, n, NodeCommand::AddNio(PORT0, nio(10060, 20001)));
    assert_eq!(r.status(other), Some(201));
    assert!(
        !r.lab.nodes.world.udp_ports.is_reserved(10050)
            && r.lab.nodes.world.udp_ports.is_reserved(10060)
    );
    // A failed new lport leaves both the old tunnel and the pool alone.
    let failed = r.node(p, n, NodeCommand::AddNio(PORT0, nio(10070, 20002)));
    assert_eq!(r.status(failed), Some(409));
    assert!(!r.lab.nodes.world.udp_ports.is_reserved(10070));
    assert_eq!(udp(&r.host.nios[&(k, 0)]).lport, 10060);
    let remove = r.node(p, n, NodeCommand::RemoveNio(PORT0));
    assert_eq!(r.status(remove), Some(204));
    let again = r.node(p, n, NodeCommand::RemoveNio(PORT0));
    assert_eq!(
        r.status(again),
        Some(204),
        "as 1.3.13: nothing to remove is fine"
    );
    let wrong = r.node(
        p,
        n,
        NodeCommand::RemoveNio(PortAddr {
            adapter: 0,
            port: 1,
        }),
    );
    assert_eq!(r.status(wrong), Some(409));
    assert!(r.error(wrong).contains("Port 1 doesn't exist"));
}

#[test]
fn a_tap_nio_takes_no_udp_port_and_a_failed_one_keeps_the_old() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.linked_vpcs(p);
    let tap = |d: &str| Nio::Tap(NioTap { device: d.into() });
    r.host.unopenable_taps.insert("tap9".into());
    let bad = r.node(p, n, NodeCommand::AddNio(PORT0, tap("tap9")));
    assert_eq!(r.status(bad), Some(409));
    assert_eq!(udp(&r.host.nios[&(k, 0)]).lport, 10050, "the tunnel stays");
    assert!(r.lab.nodes.world.udp_ports.is_reserved(10050));
    let good = r.node(p, n, NodeCommand::AddNio(PORT0, tap("tap0")));
    assert_eq!(r.reply(good), &Ok(Answer::Created(Body::Nio(tap("tap0")))));
    assert_eq!(r.host.nios[&(k, 0)], tap("tap0"));
    assert!(
        !r.lab.nodes.world.udp_ports.is_reserved(10050),
        "the tunnel's port is freed"
    );
    let remove = r.node(p, n, NodeCommand::RemoveNio(PORT0));
    assert_eq!(r.status(remove), Some(204));
    assert!(r.host.nios.is_empty());
}

#[test]
fn frames_are_relayed_only_where_they_can_go_and_counted() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.vpcs(p);
    let mut sent = Vec::new();
    let mut send = |to: Endpoint, f: &[u8]| {
        sent.push((to, f.len()));
        true
    };
    r.lab
        .on_frame(r.now, Endpoint::Node(k), &[0; 60], &mut send);
    r.lab
        .on_frame(r.now, Endpoint::Nio(k, 0), &[0; 60], &mut send);
    assert!(sent.is_empty(), "no NIO, not running: both dropped");
    let t = r.node(p, n, NodeCommand::AddNio(PORT0, nio(10050, 20000)));
    assert_eq!(r.status(t), Some(201));
    r.started(p, n, k);
    let mut sent = Vec::new();
    let mut send = |to: Endpoint, f: &[u8]| {
        sent.push((to, f.len()));
        to != Endpoint::Node(k) || f.len() < 1000
    };
    r.lab
        .on_frame(r.now, Endpoint::Node(k), &[0; 60], &mut send);
    r.lab
        .on_frame(r.now, Endpoint::Nio(k, 0), &[0; 100], &mut send);
    r.lab
        .on_frame(r.now, Endpoint::Nio(k, 0), &[0; 1500], &mut send);
    assert_eq!(
        sent,
        [
            (Endpoint::Nio(k, 0), 60),
            (Endpoint::Node(k), 100),
            (Endpoint::Node(k), 1500)
        ]
    );
    let s = r.lab.node(k).unwrap().ports[0].stats;
    assert_eq!(
        (
            s.out_frames,
            s.out_bytes,
            s.in_frames,
            s.in_bytes,
            s.dropped
        ),
        (1, 60, 1, 100, 1)
    );
}

#[test]
fn deadlines_never_act_on_a_node_that_is_gone_or_on_its_slot_reused() {
    let mut r = Rig::new();
    let p = r.project();
    let (a, ka) = r.vpcs(p);
    // A: start pending (start time-out armed), then stop parked (kill armed).
    let start = r.node(p, a, NodeCommand::Start);
    r.turn();
    r.output(ka, PROMPT_OUTPUT);
    assert_eq!(r.status(start), Some(204));
    r.node(p, a, NodeCommand::Stop);
    // The project goes, A with it; a new node takes A's slot.
    r.send(Command::DeleteProject(p));
    assert!(r.lab.node(ka).is_none(), "stale key finds nothing");
    let q = r.project();
    let (b, kb) = r.vpcs(q);
    assert_eq!(kb.index, ka.index, "the slot is reused");
    assert_ne!(kb, ka);
    let start_b = r.node(q, b, NodeCommand::Start);
    r.turn();
    // A's kill (3 s) and start time-out (10 s) come due; B is still booting.
    r.advance(STOP_GRACE);
    assert!(r.signals(kb).is_empty(), "A's kill deadline hit B");
    r.advance(START_TIMEOUT - STOP_GRACE - Duration::from_millis(1));
    assert!(r.signals(kb).is_empty(), "A's start time-out hit B");
    r.output(kb, PROMPT_OUTPUT);
    assert_eq!(r.status(start_b), Some(204));
    // A stale key passed in from outside is harmless too.
    r.lab.on_output(r.now, ka, b"x", &mut r.host);
    r.lab.on_exit(r.now, ka, "exit code 0", &mut r.host);
    assert!(
        r.lab
            .console_pending(
                ka,
                ClientId {
                    handle: 1,
                    serial: 1
                }
            )
            .is_none()
    );
    r.check();
    // B's own deadline, later, finds it ready and leaves it alone.
    r.advance(START_TIMEOUT);
    assert!(r.signals(kb).is_empty());
    // With nothing reused, A's deadlines find nothing at all.
    let mut r = Rig::new();
    let p = r.project();
    let (a, ka) = r.vpcs(p);
    r.started(p, a, ka);
    r.node(p, a, NodeCommand::Stop);
    r.send(Command::CloseProject(p));
    r.advance(START_TIMEOUT);
    assert!(r.host.procs.is_empty() && r.lab.nodes().count() == 0);
}

#[test]
fn a_failed_spawn_is_a_409_and_frees_its_ports() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.vpcs(p);
    r.host.spawn_error = Some(ApiError::conflict("VPCS program vpcs is missing"));
    let start = r.node(p, n, NodeCommand::Start);
    let get = r.node(p, n, NodeCommand::Get);
    r.turn();
    assert!(r.error(start).contains("missing"));
    assert_eq!(r.status(get), Some(200), "the queue moves on");
    assert_eq!(r.lab.nodes.world.udp_ports.reservations().count(), 0);
    assert_eq!(r.lab.node(k).unwrap().state(), State::Stopped);
    let spawn = r.host.last_spawn.clone().unwrap();
    assert_eq!(
        kinds::vpcs::relay_port(spawn.vpcs_port),
        Some(spawn.vpcs_port + 9)
    );
}

#[test]
fn vpcs_ports_skip_what_other_programs_hold() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.vpcs(p);
    // 10000 is free but its relay port 10009 is not.
    r.host.foreign_udp.insert(10009);
    r.started(p, n, k);
    let port = r.lab.node(k).unwrap().face().udp_ports()[0];
    assert_eq!(port, 10001);
}

#[test]
fn requests_for_one_node_are_answered_in_order_while_others_go_on() {
    let mut r = Rig::new();
    let p = r.project();
    let (a, ka) = r.vpcs(p);
    let (b, _) = r.vpcs(p);
    let start = r.node(p, a, NodeCommand::Start);
    let gets: Vec<Ticket> = (0..3).map(|_| r.node(p, a, NodeCommand::Get)).collect();
    let other = r.node(p, b, NodeCommand::Get);
    assert_eq!(r.status(other), Some(200), "another node is not held up");
    assert!(gets.iter().all(|t| r.status(*t).is_none()));
    r.turn();
    r.output(ka, PROMPT_OUTPUT);
    let order: Vec<u64> = r.host.replies.iter().map(|(t, _)| t.slot).collect();
    let pos = |t: Ticket| order.iter().position(|s| *s == t.slot).unwrap();
    assert!(
        pos(start) < pos(gets[0]) && pos(gets[0]) < pos(gets[1]) && pos(gets[1]) < pos(gets[2])
    );
}

#[test]
fn creation_is_all_or_nothing() {
    let mut r = Rig::new();
    let p = r.project();
    r.host.foreign_consoles.insert(2000);
    let (_, k) = r.vpcs(p);
    assert_eq!(
        r.host.consoles[&k], 2001,
        "a console port held elsewhere is skipped"
    );
    // An explicit console port that is taken: nothing is left reserved.
    let b = VmCreate {
        console_pick: false,
        console_telnet: true,
        name: "X".into(),
        vm_id: None,
        legacy_id: None,
        console: Some(2001),
        startup_script: None,
    };
    let t = r.send(Command::CreateNode(p, NodeCreate::Vpcs(b)));
    assert_eq!(r.status(t), Some(409));
    assert_eq!(r.lab.nodes().count(), 1);
    // Unknown project: 404, nothing reserved.
    let b = VmCreate {
        console_pick: false,
        console_telnet: true,
        name: "Y".into(),
        vm_id: None,
        legacy_id: None,
        console: None,
        startup_script: Some("ip 10.0.0.1\nset pcname %h\n".into()),
    };
    let t = r.send(Command::CreateNode(
        Uuid::new_v4(),
        NodeCreate::Vpcs(b.clone()),
    ));
    assert_eq!(r.status(t), Some(404));
    let t = r.send(Command::CreateNode(p, NodeCreate::Vpcs(b)));
    let Ok(Answer::Created(Body::Vpcs(v))) = r.reply(t) else {
        panic!()
    };
    let dir = r
        .lab
        .node(r.lab.key_of(v.id).unwrap())
        .unwrap()
        .face()
        .dir()
        .unwrap()
        .to_path_buf();
    assert_eq!(
        r.host.disk.files[&dir.join("startup.vpc")],
        b"ip 10.0.0.1\nset pcname Y\n"
    );
}
