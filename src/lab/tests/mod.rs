//! The lab on a fake host and a made-up clock: every ordering of commands,
//! console output, exits and deadlines, each in microseconds.

use super::fake::FakeHost;
use super::*;
use crate::lab::command::{LinkFilters, Nio, NioTap, NioUdp};
use crate::lab::command::{NodeCommand, PortAddr, Ticket};
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

    /// Two started VPCS whose ports are the two ends of one tunnel (10050
    /// and 10051): frames between them cross in memory.
    fn tunnelled_pair(&mut self, project: Uuid) -> [(Uuid, NodeKey); 2] {
        let pair = [self.vpcs(project), self.vpcs(project)];
        for ((n, _), (l, rp)) in pair.iter().zip([(10050, 10051), (10051, 10050)]) {
            let t = self.node(project, *n, NodeCommand::AddNio(PORT0, nio(l, rp)));
            assert_eq!(self.status(t), Some(201));
        }
        for (n, k) in pair {
            self.started(project, n, k);
        }
        pair
    }

    /// [`Rig::vpcs`] with a tunnel on its port (10050 to 20000).
    fn linked_vpcs(&mut self, project: Uuid) -> (Uuid, NodeKey) {
        let (n, k) = self.vpcs(project);
        let t = self.node(project, n, NodeCommand::AddNio(PORT0, nio(10050, 20000)));
        assert_eq!(self.status(t), Some(201));
        (n, k)
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
        self.lab.begin_turn(self.now, &mut self.host);
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

fn events(r: &mut Rig) -> Vec<Event> {
    std::iter::from_fn(|| r.lab.poll_event()).collect()
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

mod docker;
mod frames;
mod images;
mod lifecycle;
mod qemu;
mod surface;
