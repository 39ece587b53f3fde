//! The lab on a fake host and a made-up clock: every ordering of commands,
//! console output, exits and deadlines, each in microseconds.

use super::fake::FakeHost;
use super::*;
use crate::lab::command::{LinkFilters, Nio, NioTap, NioUdp};
use crate::lab::command::{PortAddr, Ticket};
use crate::lab::spec::{ProjectCreate, VmCreate, VmUpdate};
use crate::limits::{MAX_CONSOLE_CLIENT_OUTPUT, START_TIMEOUT, STOP_GRACE};
use kinds::vpcs::{LOG_FILE, LOG_HEADER};

const PROMPT_OUTPUT: &[u8] = b"Welcome to Virtual PC Simulator\r\n\r\nVPCS> ";

struct Rig {
    lab: Lab,
    host: FakeHost,
    now: Instant,
    slot: u64,
}

impl Rig {
    fn new() -> Rig {
        Rig {
            lab: Lab::new(super::fake::settings()),
            host: FakeHost::new(),
            now: Instant::now(),
            slot: 0,
        }
    }

    fn send(&mut self, cmd: Command) -> Ticket {
        self.slot += 1;
        let t = Ticket {
            conn: 1,
            serial: 1,
            slot: self.slot,
        };
        self.lab.handle(self.now, t, cmd, &mut self.host);
        self.check();
        t
    }

    fn check(&self) {
        self.lab.check_invariants().unwrap();
        for key in self.host.procs.keys() {
            let running = self.lab.node(*key).is_some_and(|n| n.running());
            assert!(running, "a process is left for a node that has none");
        }
    }

    fn project(&mut self) -> Uuid {
        let t = self.send(Command::CreateProject(ProjectCreate::default()));
        match self.reply(t) {
            Ok(Answer::Created(Body::Project(p))) => p.id,
            other => panic!("{other:?}"),
        }
    }

    fn vpcs(&mut self, project: Uuid) -> (Uuid, NodeKey) {
        let b = VmCreate {
            console_pick: false,
            console_telnet: true,
            name: "PC1".into(),
            vm_id: None,
            legacy_id: None,
            console: None,
            startup_script: None,
        };
        let t = self.send(Command::CreateNode(project, NodeCreate::Vpcs(b)));
        let Ok(Answer::Created(Body::Vpcs(v))) = self.reply(t) else {
            panic!("{:?}", self.reply(t))
        };
        (v.id, self.lab.key_of(v.id).unwrap())
    }

    fn node(&mut self, project: Uuid, node: Uuid, c: NodeCommand) -> Ticket {
        self.send(Command::Node(
            NodeRef {
                project,
                node,
                class: crate::lab::command::NodeClass::Vpcs,
            },
            c,
        ))
    }

    /// One loop turn: deadlines due, one spawn.
    fn turn(&mut self) {
        self.lab.poll(self.now, &mut self.host);
        self.check();
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.turn();
    }

    fn output(&mut self, key: NodeKey, data: &[u8]) {
        self.lab.on_output(self.now, key, data, &mut self.host);
        self.check();
    }

    fn exit(&mut self, key: NodeKey, how: &str) {
        assert!(self.host.exit(key).is_some(), "no process to exit");
        self.lab.on_exit(self.now, key, how, &mut self.host);
        self.check();
    }

    /// Start and bring the console up.
    fn started(&mut self, project: Uuid, node: Uuid, key: NodeKey) {
        let t = self.node(project, node, NodeCommand::Start);
        // One spawn per turn: others may be queued ahead.
        while !self.host.procs.contains_key(&key) {
            self.turn();
        }
        self.output(key, PROMPT_OUTPUT);
        assert_eq!(self.status(t), Some(204));
    }

    fn reply(&self, t: Ticket) -> &Reply {
        assert_eq!(self.host.answers_for(t), 1, "answered once");
        self.host.reply_for(t).unwrap()
    }

    fn status(&self, t: Ticket) -> Option<u16> {
        assert!(self.host.answers_for(t) <= 1, "answered twice");
        self.host.reply_for(t).map(|r| match r {
            Ok(Answer::Ok(_)) => 200,
            Ok(Answer::Created(_)) => 201,
            Ok(Answer::NoContent) => 204,
            Err(e) => e.status(),
        })
    }

    fn error(&self, t: Ticket) -> String {
        match self.reply(t) {
            Err(e) => e.to_string(),
            ok => panic!("not an error: {ok:?}"),
        }
    }

    fn signals(&self, key: NodeKey) -> Vec<Signal> {
        self.host
            .procs
            .get(&key)
            .map(|p| p.signals.clone())
            .unwrap_or_default()
    }
}

fn nio(lport: u16, rport: u16) -> Nio {
    Nio::Udp(NioUdp {
        lport,
        rhost: "127.0.0.1".into(),
        raddr: [127, 0, 0, 1].into(),
        rport,
    })
}

/// The UDP part of a NIO.
fn udp(n: &Nio) -> &NioUdp {
    match n {
        Nio::Udp(u) => u,
        other => panic!("not a tunnel: {other:?}"),
    }
}

const PORT0: PortAddr = PortAddr {
    adapter: 0,
    port: 0,
};

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
        r.lab.udp_ports.reservations().count(),
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
    assert_eq!(r.lab.console_ports.reservations().count(), 0);
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
    assert_eq!(r.lab.udp_ports.reservations().count(), 0);
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
    let (n, k) = r.vpcs(p);
    let add = r.node(p, n, NodeCommand::AddNio(PORT0, nio(10050, 20000)));
    assert_eq!(r.status(add), Some(201));
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
    assert!(r.lab.udp_ports.is_reserved(10050));
    // Another lport: the old one is freed once the new one is open.
    let other = r.node(p, n, NodeCommand::AddNio(PORT0, nio(10060, 20001)));
    assert_eq!(r.status(other), Some(201));
    assert!(!r.lab.udp_ports.is_reserved(10050) && r.lab.udp_ports.is_reserved(10060));
    // A failed new lport leaves both the old tunnel and the pool alone.
    let failed = r.node(p, n, NodeCommand::AddNio(PORT0, nio(10070, 20002)));
    assert_eq!(r.status(failed), Some(409));
    assert!(!r.lab.udp_ports.is_reserved(10070));
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
    let (n, k) = r.vpcs(p);
    let add = r.node(p, n, NodeCommand::AddNio(PORT0, nio(10050, 20000)));
    assert_eq!(r.status(add), Some(201));
    let tap = |d: &str| Nio::Tap(NioTap { device: d.into() });
    r.host.unopenable_taps.insert("tap9".into());
    let bad = r.node(p, n, NodeCommand::AddNio(PORT0, tap("tap9")));
    assert_eq!(r.status(bad), Some(409));
    assert_eq!(udp(&r.host.nios[&(k, 0)]).lport, 10050, "the tunnel stays");
    assert!(r.lab.udp_ports.is_reserved(10050));
    let good = r.node(p, n, NodeCommand::AddNio(PORT0, tap("tap0")));
    assert_eq!(r.reply(good), &Ok(Answer::Created(Body::Nio(tap("tap0")))));
    assert_eq!(r.host.nios[&(k, 0)], tap("tap0"));
    assert!(
        !r.lab.udp_ports.is_reserved(10050),
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
    assert_eq!(r.lab.udp_ports.reservations().count(), 0);
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

#[test]
fn a_switch_forwards_within_a_vlan_and_follows_setting_changes() {
    use crate::lab::command::{NodeClass, PortSettings, VlanMode};
    use crate::lab::spec::DeviceUpdate;
    let mut r = Rig::new();
    let p = r.project();
    let d = switch(&mut r, p);
    let k = r.lab.key_of(d.id).unwrap();
    let dev = |c| {
        Command::Node(
            NodeRef {
                project: p,
                node: d.id,
                class: NodeClass::Device,
            },
            c,
        )
    };
    let access = |vlan| {
        Some(PortSettings {
            port: 0,
            mode: VlanMode::Access,
            vlan,
        })
    };
    for (port, vlan) in [(1, 10), (2, 10), (3, 20)] {
        let t = r.send(dev(NodeCommand::AddDeviceNio(
            port,
            nio(10000 + port as u16, 20000),
            access(vlan),
        )));
        assert_eq!(r.status(t), Some(201));
    }
    let t = r.send(dev(NodeCommand::AddDeviceNio(1, nio(10009, 20000), None)));
    assert!(r.error(t).contains("Port 1 isn't free"));
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&[0, 0x50, 0x79, 0x66, 0x68, 1, 0x08, 0x00]);
    frame.extend_from_slice(&[0; 46]);
    let mut sent = Vec::new();
    r.lab
        .on_frame(r.now, Endpoint::Nio(k, 0), &frame, &mut |to, _| {
            sent.push(to);
            true
        });
    assert_eq!(sent, [Endpoint::Nio(k, 1)], "VLAN 10 only");
    // Port 3 joins VLAN 10: it now gets the broadcast.
    let change = DeviceUpdate {
        mapping: None,
        name: None,
        ports: Some(vec![PortSettings {
            port: 3,
            mode: VlanMode::Access,
            vlan: 10,
        }]),
    };
    let t = r.send(dev(NodeCommand::UpdateDevice(change)));
    let Ok(Answer::Ok(Body::Device(d2))) = r.reply(t).clone() else {
        panic!()
    };
    assert_eq!(
        d2.ports.iter().map(|s| s.vlan).collect::<Vec<_>>(),
        [10, 10, 10]
    );
    let mut sent = Vec::new();
    r.lab
        .on_frame(r.now, Endpoint::Nio(k, 0), &frame, &mut |to, _| {
            sent.push(to);
            true
        });
    assert_eq!(sent, [Endpoint::Nio(k, 1), Endpoint::Nio(k, 2)]);
    assert_eq!(r.lab.node(k).unwrap().ports[0].stats.in_frames, 2);
    // Not reachable by a VPCS route; deleted with its ports.
    let t = r.node(p, d.id, NodeCommand::Get);
    assert_eq!(r.status(t), Some(404));
    let t = r.send(dev(NodeCommand::Delete));
    assert_eq!(r.status(t), Some(204));
    assert!(r.host.nios.is_empty() && r.lab.udp_ports.reservations().count() == 0);
}

#[test]
fn a_capture_records_both_directions_in_batches_and_stops_with_its_nio() {
    use crate::lab::spec::CaptureStart;
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.vpcs(p);
    let start = |name: &str| {
        NodeCommand::StartCapture(
            PORT0,
            CaptureStart {
                capture_file_name: name.into(),
            },
        )
    };
    let t = r.node(p, n, start("a.pcap"));
    assert!(r.error(t).contains("not connected"));
    let t = r.node(p, n, NodeCommand::AddNio(PORT0, nio(10050, 20000)));
    assert_eq!(r.status(t), Some(201));
    r.started(p, n, k);
    let t = r.node(p, n, start("a.pcap"));
    let Ok(Answer::Ok(Body::Capture(path))) = r.reply(t).clone() else {
        panic!("{:?}", r.reply(t))
    };
    assert!(path.ends_with("project-files/captures/a.pcap"));
    assert_eq!(r.host.disk.files[&path].len(), 24, "the header, at once");
    let mut send = |_: Endpoint, _: &[u8]| true;
    r.lab
        .on_frame(r.now, Endpoint::Node(k), &[1; 60], &mut send);
    r.lab
        .on_frame(r.now, Endpoint::Nio(k, 0), &[2; 70], &mut send);
    assert_eq!(
        r.host.disk.files[&path].len(),
        24,
        "written by the loop, not per frame"
    );
    r.turn();
    assert_eq!(r.host.disk.files[&path].len(), 24 + 16 + 60 + 16 + 70);
    let t = r.node(p, n, start("b.pcap"));
    assert!(r.error(t).contains("already has a capture"));
    // The NIO goes: the capture ends, what was buffered is written.
    r.lab
        .on_frame(r.now, Endpoint::Node(k), &[3; 60], &mut send);
    let t = r.node(p, n, NodeCommand::RemoveNio(PORT0));
    assert_eq!(r.status(t), Some(204));
    assert_eq!(
        r.host.disk.files[&path].len(),
        24 + 16 + 60 + 16 + 70 + 16 + 60
    );
    let t = r.node(p, n, NodeCommand::StopCapture(PORT0));
    assert!(r.error(t).contains("No capture"));
}

#[test]
fn a_live_capture_viewer_gets_the_header_then_records_and_is_let_go_when_slow() {
    use crate::lab::spec::CaptureStart;
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.vpcs(p);
    let t = r.node(p, n, NodeCommand::AddNio(PORT0, nio(10050, 20000)));
    assert_eq!(r.status(t), Some(201));
    let t = r.node(p, n, NodeCommand::WatchCapture(PORT0));
    assert!(r.error(t).contains("No capture"));
    let start = CaptureStart {
        capture_file_name: "live.pcap".into(),
    };
    r.node(p, n, NodeCommand::StartCapture(PORT0, start));
    let t = r.node(p, n, NodeCommand::WatchCapture(PORT0));
    assert_eq!(r.reply(t), &Ok(Answer::Ok(Body::LiveCapture)));
    let viewer = ClientId {
        handle: t.conn,
        serial: t.serial,
    };
    assert_eq!(
        r.lab.capture_output(viewer).unwrap().len(),
        24,
        "the pcap header first"
    );
    let mut send = |_: Endpoint, _: &[u8]| true;
    r.lab
        .on_frame(r.now, Endpoint::Nio(k, 0), &[7; 100], &mut send);
    assert_eq!(r.lab.take_ready_viewers(), [viewer]);
    assert_eq!(r.lab.capture_output(viewer).unwrap().len(), 116);
    // A viewer that never reads is let go; the file capture goes on.
    for _ in 0..20_000 {
        r.lab
            .on_frame(r.now, Endpoint::Nio(k, 0), &[7; 100], &mut send);
    }
    assert_eq!(r.lab.capture_output(viewer), None);
    r.turn();
    assert!(r.lab.node(k).unwrap().ports[0].capture.is_some());
}

#[test]
fn a_capture_that_cannot_be_written_stops_but_the_frames_go_on() {
    use crate::lab::spec::CaptureStart;
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.vpcs(p);
    let t = r.node(p, n, NodeCommand::AddNio(PORT0, nio(10050, 20000)));
    assert_eq!(r.status(t), Some(201));
    let start = CaptureStart {
        capture_file_name: "full.pcap".into(),
    };
    let t = r.node(p, n, NodeCommand::StartCapture(PORT0, start));
    let Ok(Answer::Ok(Body::Capture(path))) = r.reply(t).clone() else {
        panic!()
    };
    // The disk "fills": the fake refuses to append to a file that is gone.
    r.host.disk.files.remove(&path);
    let mut sent = 0;
    r.lab
        .on_frame(r.now, Endpoint::Nio(k, 0), &[1; 60], &mut |_, _| true);
    r.turn();
    assert!(
        r.lab.node(k).unwrap().ports[0].capture.is_none(),
        "the capture stopped"
    );
    let events: Vec<Event> = std::iter::from_fn(|| r.lab.poll_event()).collect();
    assert!(
        events
            .iter()
            .any(|e| e.to_string().contains("capture into") && e.to_string().contains("stopped"))
    );
    r.started(p, n, k);
    r.lab
        .on_frame(r.now, Endpoint::Nio(k, 0), &[1; 60], &mut |_, _| {
            sent += 1;
            true
        });
    assert_eq!(sent, 1, "the relay carries on");
}

/// Events the lab queued, drained.
fn events(r: &mut Rig) -> Vec<Event> {
    std::iter::from_fn(|| r.lab.poll_event()).collect()
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
fn a_delay_filter_holds_frames_on_the_lab_clock_and_keeps_their_order() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.vpcs(p);
    let delay = LinkFilters {
        delay: Some((100, 0)),
        bpf: vec!["udp port 53\nnot ( a valid".into()],
        ..Default::default()
    };
    let t = r.node(
        p,
        n,
        NodeCommand::AttachNio(PORT0, nio(10050, 20000), delay),
    );
    assert_eq!(r.status(t), Some(201));
    let warned = events(&mut r).into_iter().any(|e| {
        matches!(e, Event::ProjectLog { level: LogLevel::Warning, ref text, .. } if text.contains("not ( a valid"))
    });
    assert!(warned, "a BPF line that does not compile is a log.warning");
    r.started(p, n, k);
    let mut sent = Vec::new();
    for i in 0..5u8 {
        r.lab
            .on_frame(r.now, Endpoint::Node(k), &[i; 60], &mut |to, f| {
                sent.push((to, f[0]));
                true
            });
    }
    assert!(sent.is_empty(), "held back");
    assert_eq!(r.lab.timeout(r.now), Some(Duration::from_millis(100)));
    r.now += Duration::from_millis(99);
    r.lab.release_frames(r.now, &mut |to, f| {
        sent.push((to, f[0]));
        true
    });
    assert!(sent.is_empty(), "not yet");
    r.now += Duration::from_millis(1);
    r.lab.release_frames(r.now, &mut |to, f| {
        sent.push((to, f[0]));
        true
    });
    let order: Vec<u8> = sent.iter().map(|(_, b)| *b).collect();
    assert_eq!(order, [0, 1, 2, 3, 4]);
    assert!(sent.iter().all(|(to, _)| *to == Endpoint::Nio(k, 0)));
    assert_eq!(r.lab.node(k).unwrap().ports[0].stats.out_frames, 5);
    // Suspended: dropped and counted as filtered; resumed: straight through.
    let suspend = LinkFilters {
        suspend: true,
        ..Default::default()
    };
    let t = r.node(p, n, NodeCommand::SetFilters(PORT0, suspend));
    assert_eq!(r.status(t), Some(201));
    let mut n_sent = 0;
    r.lab
        .on_frame(r.now, Endpoint::Nio(k, 0), &[9; 60], &mut |_, _| {
            n_sent += 1;
            true
        });
    assert_eq!(n_sent, 0);
    assert_eq!(r.lab.node(k).unwrap().ports[0].stats.dropped_filtered, 1);
    let t = r.node(p, n, NodeCommand::SetFilters(PORT0, LinkFilters::default()));
    assert_eq!(r.status(t), Some(201));
    r.lab
        .on_frame(r.now, Endpoint::Nio(k, 0), &[9; 60], &mut |_, _| {
            n_sent += 1;
            true
        });
    assert_eq!(n_sent, 1);
    // A port without a NIO has no filters to set.
    let t = r.node(p, n, NodeCommand::RemoveNio(PORT0));
    assert_eq!(r.status(t), Some(204));
    let t = r.node(p, n, NodeCommand::SetFilters(PORT0, LinkFilters::default()));
    assert_eq!(r.status(t), Some(409));
}

#[test]
fn tunnels_between_two_of_our_ports_carry_frames_in_memory() {
    let mut r = Rig::new();
    let p = r.project();
    let (a, ka) = r.vpcs(p);
    let (b, kb) = r.vpcs(p);
    for (n, (l, rp)) in [(a, (10050, 10051)), (b, (10051, 10050))] {
        let t = r.node(p, n, NodeCommand::AddNio(PORT0, nio(l, rp)));
        assert_eq!(r.status(t), Some(201));
    }
    r.started(p, a, ka);
    r.started(p, b, kb);
    let mut sent = Vec::new();
    r.lab
        .on_frame(r.now, Endpoint::Node(ka), &[1; 60], &mut |to, _| {
            sent.push(to);
            true
        });
    // Out of A's NIO, into B's, and to B itself: no socket in between.
    assert_eq!(sent, [Endpoint::Node(kb)]);
    let sa = r.lab.node(ka).unwrap().ports[0].stats;
    let sb = r.lab.node(kb).unwrap().ports[0].stats;
    assert_eq!((sa.out_frames, sb.in_frames), (1, 1));
    // Removing one end makes the other use its socket again.
    let t = r.node(p, b, NodeCommand::RemoveNio(PORT0));
    assert_eq!(r.status(t), Some(204));
    let mut sent = Vec::new();
    r.lab
        .on_frame(r.now, Endpoint::Node(ka), &[1; 60], &mut |to, _| {
            sent.push(to);
            true
        });
    assert_eq!(sent, [Endpoint::Nio(ka, 0)]);
}

#[test]
fn frames_a_delay_holds_go_with_their_nio() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.vpcs(p);
    let delay = LinkFilters {
        delay: Some((100, 0)),
        ..Default::default()
    };
    let t = r.node(
        p,
        n,
        NodeCommand::AttachNio(PORT0, nio(10050, 20000), delay),
    );
    assert_eq!(r.status(t), Some(201));
    r.started(p, n, k);
    r.lab
        .on_frame(r.now, Endpoint::Node(k), &[1; 60], &mut |_, _| true);
    assert!(r.lab.timeout(r.now).is_some(), "one frame held");
    let t = r.node(p, n, NodeCommand::RemoveNio(PORT0));
    assert_eq!(r.status(t), Some(204));
    r.now += Duration::from_secs(1);
    let mut sent = 0;
    r.lab.release_frames(r.now, &mut |_, _| {
        sent += 1;
        true
    });
    assert_eq!(sent, 0, "nothing left behind for a NIO that is gone");
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
    assert!(matches!(r.reply(t), Ok(Answer::Created(Body::Restored(1)))));
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

/// A switch named SW1 in project `p`.
fn switch(r: &mut Rig, p: Uuid) -> crate::lab::answer::DeviceView {
    let b = crate::lab::spec::DeviceCreate {
        mapping: None,
        name: "SW1".into(),
        device_type: crate::lab::types::DeviceType::Switch,
        device_id: None,
    };
    let t = r.send(Command::CreateNode(p, NodeCreate::Device(b)));
    let Ok(Answer::Created(Body::Device(d))) = r.reply(t).clone() else {
        panic!("{:?}", r.reply(t))
    };
    d
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
