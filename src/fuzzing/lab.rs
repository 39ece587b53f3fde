//! The lab fuzz target: random commands, console output, exits, frames
//! and time against the lab on a fake host, with its invariants checked
//! after every step.

use crate::api::body::{
    CaptureStart, DeviceCreate, DeviceUpdate, ProjectCreate, VmCreate, VmUpdate,
};
use crate::api::{
    Command, DeviceType, LinkFilters, Nio, NioTap, NioUdp, NodeCommand, NodeCreate, NodeRef,
    PortAddr, PortSettings, Ticket, VlanMode,
};
use crate::lab::fake::FakeHost;
use crate::lab::{ClientId, Endpoint, Lab, NodeKey, Settings};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The lab against random sequences of commands, console output, process
/// exits, frames and the passing of time, on a fake host. After every step
/// the lab's own invariants hold (every port and MAC reserved by someone
/// who uses it, each node in one coherent state), no process lives for a
/// node without one, no request is answered twice, and the requests of one
/// node are answered in the order they came. At the end, shutdown answers
/// every request exactly once and leaves nothing behind.
pub fn lab(data: &[u8]) {
    // An odd length runs built-in PCs instead of vpcs processes.
    let engine = if data.len() % 2 == 1 {
        crate::lab::PcEngine::Builtin
    } else {
        crate::lab::PcEngine::Vpcs
    };
    let mut f = LabFuzz::new(engine);
    for op in data.chunks(2) {
        f.step(op[0], op.get(1).copied().unwrap_or(0));
        f.check();
    }
    f.lab.shutdown(f.now, &mut f.host);
    f.check();
    for t in &f.sent {
        assert_eq!(
            f.host.answers_for(t.0),
            1,
            "request {:?} answered {} times",
            t.0,
            f.host.answers_for(t.0)
        );
    }
    assert!(
        f.host.procs.is_empty(),
        "processes left: {:?}",
        f.host.procs
    );
    assert!(
        f.host.consoles.is_empty() && f.host.nios.is_empty() && f.host.aux_consoles.is_empty(),
        "sockets left"
    );
    assert_eq!(f.lab.nodes().count(), 0);
}

struct LabFuzz {
    lab: Lab,
    host: FakeHost,
    now: Instant,
    projects: Vec<Uuid>,
    nodes: Vec<(Uuid, Uuid)>,
    /// Switches and hubs.
    devices: Vec<(Uuid, Uuid)>,
    /// Container nodes.
    dockers: Vec<(Uuid, Uuid)>,
    /// Live capture viewers asked for.
    viewers: Vec<ClientId>,
    /// Every ticket sent, with the node it was for (if any).
    sent: Vec<(Ticket, Option<(Uuid, Uuid)>)>,
    clients: u64,
}

impl LabFuzz {
    fn new(pc_engine: crate::lab::PcEngine) -> Self {
        // Small pools, so that running out is explored too.
        let settings = Settings {
            udp_ports: (10000, 10030),
            console_ports: (2000, 2007),
            pc_engine,
            ..crate::lab::fake::settings()
        };
        LabFuzz {
            lab: Lab::new(settings),
            host: FakeHost::new(),
            now: Instant::now(),
            projects: Vec::new(),
            nodes: Vec::new(),
            devices: Vec::new(),
            dockers: Vec::new(),
            viewers: Vec::new(),
            sent: Vec::new(),
            clients: 0,
        }
    }

    fn send(&mut self, cmd: Command, node: Option<(Uuid, Uuid)>) {
        let t = Ticket {
            conn: 1,
            serial: 1,
            slot: self.sent.len() as u64,
        };
        self.sent.push((t, node));
        self.lab.handle(self.now, t, cmd, &mut self.host);
    }

    fn pick<T: Copy>(list: &[T], arg: u8) -> Option<T> {
        (!list.is_empty()).then(|| list[arg as usize % list.len()])
    }

    fn key(&self, arg: u8) -> Option<NodeKey> {
        Self::pick(&self.nodes, arg).and_then(|(_, n)| self.lab.key_of(n))
    }

    fn step(&mut self, op: u8, arg: u8) {
        Op::of(op).apply(self, arg);
    }

    fn check(&self) {
        if let Err(e) = self.lab.check_invariants() {
            panic!("invariant broken: {e}");
        }
        for key in self.host.procs.keys() {
            assert!(
                self.lab.node(*key).is_some_and(|n| n.running()),
                "a process lives for a node that has none"
            );
        }
        let mut last: HashMap<(Uuid, Uuid), u64> = HashMap::new();
        let node_of: HashMap<u64, (Uuid, Uuid)> = self
            .sent
            .iter()
            .filter_map(|(t, n)| n.map(|n| (t.slot, n)))
            .collect();
        let mut seen = HashSet::new();
        for (t, _) in &self.host.replies {
            assert!(seen.insert(t.slot), "request {} answered twice", t.slot);
            if let Some(n) = node_of.get(&t.slot) {
                let prev = last.insert(*n, t.slot);
                assert!(
                    prev.is_none_or(|p| p < t.slot),
                    "node {n:?}: answers out of order"
                );
            }
        }
    }
}

/// One fuzz operation, named; its byte picks it (`op % 20`), its argument
/// byte shapes it. The mapping is fixed, so the corpora replay unchanged,
/// except 17: a second switch-frame slot until container nodes took it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// Open a project (ids 1..4, temporary or not).
    CreateProject,
    /// Create a PC in a project.
    CreatePc,
    /// A PC command; the group picks which of twelve.
    PcCommand(u8),
    /// Turn the loop.
    Poll,
    /// Let time pass, then turn the loop.
    Wait,
    /// A PC's process prints (now, or waiting unread).
    Output,
    /// A PC's process exits.
    Exit,
    /// Close, delete or reserve a UDP port in a project.
    ProjectCommand,
    /// A console client attaches, types, maybe leaves.
    Console,
    /// The host starts failing (spawns, unreachable peers) or stops.
    HostFaults,
    /// A frame at a PC.
    Frame,
    /// Another program takes a port.
    ForeignPorts,
    /// Create a switch or hub.
    CreateDevice,
    /// A switch or hub command.
    DeviceCommand,
    /// Start, stop or watch a capture; a viewer reads or leaves.
    Capture,
    /// GNS3 2.2's node operations, filters included.
    V2Command,
    /// Frames through filters, delayed frames released, listeners.
    FramesAndRelease,
    /// A frame at a switch or hub port.
    SwitchFrame,
    /// A container node: created, commanded, the engine's answers (right,
    /// wrong or failed), its terminal printing or ending.
    Docker,
}

impl Op {
    /// The operation a byte names.
    fn of(byte: u8) -> Op {
        match byte % 20 {
            0 => Op::CreateProject,
            1 => Op::CreatePc,
            n @ 2..=4 => Op::PcCommand(n - 2),
            5 => Op::Poll,
            6 => Op::Wait,
            7 => Op::Output,
            8 => Op::Exit,
            9 => Op::ProjectCommand,
            10 => Op::Console,
            11 => Op::HostFaults,
            12 => Op::Frame,
            13 => Op::ForeignPorts,
            14 => Op::CreateDevice,
            15 => Op::DeviceCommand,
            16 => Op::Capture,
            17 => Op::Docker,
            18 => Op::V2Command,
            19 => Op::FramesAndRelease,
            _ => Op::SwitchFrame,
        }
    }

    /// Do it to the lab under test.
    fn apply(self, f: &mut LabFuzz, arg: u8) {
        match self {
            Op::CreateProject => {
                let id = Uuid::from_u128(1 + (arg % 4) as u128);
                let b = ProjectCreate {
                    project_id: Some(id),
                    temporary: Some(arg & 8 != 0),
                    ..Default::default()
                };
                f.send(Command::CreateProject(b), None);
                if !f.projects.contains(&id) && f.lab.check_invariants().is_ok() {
                    f.projects.push(id);
                }
            }
            Op::CreatePc => {
                let Some(p) = LabFuzz::pick(&f.projects, arg) else {
                    return;
                };
                let id = Uuid::from_u128(100 + (arg % 8) as u128);
                let b = VmCreate {
                    name: format!("PC{arg}"),
                    vm_id: Some(id),
                    legacy_id: None,
                    console: (arg & 16 != 0).then_some(2000 + (arg % 8) as u16),
                    startup_script: (arg & 32 != 0).then(|| "ip 10.0.0.1".into()),
                    console_pick: arg & 64 != 0,
                    console_telnet: arg & 128 == 0,
                };
                f.send(Command::CreateNode(p, NodeCreate::Vpcs(b)), None);
                let created = matches!(f.host.replies.last(), Some((_, Ok(_))));
                if created && !f.nodes.contains(&(p, id)) {
                    f.nodes.push((p, id));
                }
            }
            Op::PcCommand(group) => {
                let Some((p, n)) = LabFuzz::pick(&f.nodes, arg) else {
                    return;
                };
                let at = PortAddr {
                    adapter: (arg >> 6 == 3) as u32,
                    port: 0,
                };
                let lport = 10000 + (arg % 8) as u16 * 3;
                let c = match group * 4 + (arg >> 4) % 4 {
                    0 | 1 => NodeCommand::Start,
                    2 | 3 => NodeCommand::Stop,
                    4 => NodeCommand::Reload,
                    5 => NodeCommand::Delete,
                    6 => NodeCommand::Get,
                    7 => NodeCommand::Update(VmUpdate {
                        name: Some(format!("N{arg}")),
                        console: Some(2000 + (arg % 8) as u16),
                        startup_script: (arg & 1 == 0).then(String::new),
                        console_pick: arg & 2 != 0,
                        console_telnet: (arg & 4 != 0).then_some(arg & 8 != 0),
                    }),
                    8 | 9 => NodeCommand::AddNio(
                        at,
                        Nio::Udp(NioUdp {
                            lport,
                            rhost: "127.0.0.1".into(),
                            raddr: [127, 0, 0, 1].into(),
                            rport: 20000 + (arg % 3) as u16,
                        }),
                    ),
                    10 => NodeCommand::AddNio(
                        at,
                        Nio::Tap(NioTap {
                            device: format!("tap{}", arg % 3),
                        }),
                    ),
                    _ => NodeCommand::RemoveNio(at),
                };
                f.send(
                    Command::Node(
                        NodeRef {
                            project: p,
                            node: n,
                            class: crate::api::NodeClass::Vpcs,
                        },
                        c,
                    ),
                    Some((p, n)),
                );
            }
            Op::Poll => f.lab.poll(f.now, &mut f.host),
            Op::Wait => {
                // A new loop turn: the budget is whole, carried frames go.
                f.now += Duration::from_millis(arg as u64 * 50);
                f.lab.begin_turn(f.now, &mut f.host);
                f.lab.poll(f.now, &mut f.host);
            }
            Op::Output => {
                let Some(k) = f.key(arg) else { return };
                let out: &[u8] = if arg & 1 == 0 {
                    b"VPCS> "
                } else {
                    b"booting
"
                };
                if arg & 2 == 0 {
                    f.lab.on_output(f.now, k, out, &mut f.host);
                } else {
                    f.host.unread.insert(k, out.to_vec());
                }
            }
            Op::Exit => {
                let Some(k) = f.key(arg) else { return };
                if f.host.exit(k).is_some() {
                    f.lab.on_exit(f.now, k, "exit code 1", &mut f.host);
                }
            }
            Op::ProjectCommand => {
                let Some(p) = LabFuzz::pick(&f.projects, arg) else {
                    return;
                };
                let c = match arg % 3 {
                    0 => Command::CloseProject(p),
                    1 => Command::DeleteProject(p),
                    _ => Command::AllocateUdp(p),
                };
                f.send(c, None);
            }
            Op::Console => {
                let Some(k) = f.key(arg) else { return };
                f.clients += 1;
                let id = ClientId {
                    handle: arg as usize,
                    serial: f.clients,
                };
                if f.lab.console_attach(k, id) {
                    f.lab
                        .console_input(f.now, k, id, b"ip 10.0.0.2\r! ls\r", &mut f.host);
                    if arg & 1 == 0 {
                        f.lab.console_detach(k, id);
                    }
                }
            }
            Op::HostFaults => {
                f.host.spawn_error =
                    (arg & 1 == 1).then(|| crate::error::ApiError::conflict("no vpcs"));
                if arg & 2 == 0 {
                    f.host.unreachable_rports.insert(20000 + (arg % 3) as u16);
                } else {
                    f.host.unreachable_rports.clear();
                }
            }
            Op::Frame => {
                let Some(k) = f.key(arg) else { return };
                let from = if arg & 1 == 0 {
                    Endpoint::Node(k)
                } else {
                    Endpoint::Nio(k, 0)
                };
                // Sends the host took and then could not make (a batch
                // the kernel refused in part) are told back.
                let mut took = Vec::new();
                f.lab.on_frame(f.now, from, &[arg; 64], &mut |to, frame| {
                    took.push((to, frame.len()));
                    arg & 2 == 0
                });
                if arg & 2 == 0 && arg & 8 != 0 {
                    for (to, len) in took {
                        f.lab.unsent(to, len);
                    }
                }
            }
            Op::ForeignPorts => {
                let b = if arg & 1 == 0 {
                    10009
                } else {
                    2000 + (arg % 8) as u16
                };
                f.host.foreign_udp.insert(b);
                f.host.foreign_consoles.insert(b);
            }
            Op::CreateDevice => {
                let Some(p) = LabFuzz::pick(&f.projects, arg) else {
                    return;
                };
                let id = Uuid::from_u128(200 + (arg % 4) as u128);
                let b = DeviceCreate {
                    name: format!("D{arg}"),
                    device_type: if arg & 4 == 0 {
                        DeviceType::Switch
                    } else {
                        DeviceType::Hub
                    },
                    device_id: Some(id),
                    mapping: (arg & 8 != 0).then(|| {
                        crate::api::PortMapping::defaults(if arg & 4 == 0 {
                            DeviceType::Switch
                        } else {
                            DeviceType::Hub
                        })
                    }),
                };
                f.send(Command::CreateNode(p, NodeCreate::Device(b)), None);
                let created = matches!(f.host.replies.last(), Some((_, Ok(_))));
                if created && !f.devices.contains(&(p, id)) {
                    f.devices.push((p, id));
                }
            }
            Op::DeviceCommand => {
                let Some((p, d)) = LabFuzz::pick(&f.devices, arg) else {
                    return;
                };
                let port = (arg % 4) as u32;
                let settings = (arg & 8 != 0).then_some(PortSettings {
                    port,
                    mode: [VlanMode::Access, VlanMode::Dot1q, VlanMode::Qinq]
                        [(arg >> 4) as usize % 3],
                    vlan: 1 + (arg % 3) as u16,
                });
                let c = match (arg >> 6) % 4 {
                    0 | 1 => NodeCommand::AddDeviceNio(
                        port,
                        Nio::Udp(NioUdp {
                            lport: 10001 + (arg % 8) as u16 * 3,
                            rhost: "127.0.0.1".into(),
                            raddr: [127, 0, 0, 1].into(),
                            rport: 20000,
                        }),
                        settings,
                    ),
                    2 => NodeCommand::UpdateDevice(DeviceUpdate {
                        name: None,
                        ports: settings.map(|s| vec![s]),
                        mapping: None,
                    }),
                    _ if arg & 1 == 0 => NodeCommand::RemoveNio(PortAddr { adapter: 0, port }),
                    _ => NodeCommand::Delete,
                };
                let r = NodeRef {
                    project: p,
                    node: d,
                    class: crate::api::NodeClass::Device,
                };
                f.send(Command::Node(r, c), Some((p, d)));
            }
            Op::Capture => {
                let device = arg & 1 == 1;
                let list = if device { &f.devices } else { &f.nodes };
                let Some((p, n)) = LabFuzz::pick(list, arg >> 1) else {
                    return;
                };
                let at = PortAddr {
                    adapter: 0,
                    port: if device { (arg % 4) as u32 } else { 0 },
                };
                let c = match (arg >> 3) % 3 {
                    0 => NodeCommand::StartCapture(
                        at,
                        CaptureStart {
                            capture_file_name: format!("c{}.pcap", arg % 2),
                        },
                    ),
                    1 => NodeCommand::StopCapture(at),
                    _ => NodeCommand::WatchCapture(at),
                };
                let class = if device {
                    crate::api::NodeClass::Device
                } else {
                    crate::api::NodeClass::Vpcs
                };
                let slot = f.sent.len() as u64;
                f.send(
                    Command::Node(
                        NodeRef {
                            project: p,
                            node: n,
                            class,
                        },
                        c,
                    ),
                    Some((p, n)),
                );
                f.viewers.push(ClientId {
                    handle: 1,
                    serial: slot,
                });
                f.viewers.push(ClientId {
                    handle: 1,
                    serial: 1,
                });
                if let Some(v) = LabFuzz::pick(&f.viewers, arg) {
                    if arg & 2 == 0 {
                        let _ = f.lab.capture_output(v);
                    } else {
                        f.lab.capture_unwatch(v);
                    }
                }
                let _ = f.lab.take_ready_viewers();
            }
            Op::V2Command => {
                // GNS3 2.2's node operations, filters included.
                let device = arg & 1 == 1;
                let list = if device { &f.devices } else { &f.nodes };
                let Some((p, n)) = LabFuzz::pick(list, arg >> 1) else {
                    return;
                };
                let filters = LinkFilters {
                    frequency_drop: (arg & 2 != 0).then_some(i32::from(arg % 4) - 1),
                    packet_loss: (arg & 4 != 0).then_some(arg % 101),
                    delay: (arg & 8 != 0)
                        .then_some((u32::from(arg % 5) * 20, u32::from(arg % 3) * 10)),
                    corrupt: (arg & 16 != 0).then_some(arg % 101),
                    bpf: if arg & 32 != 0 {
                        vec!["icmp\nbad ((".into()]
                    } else {
                        Vec::new()
                    },
                    suspend: arg & 64 != 0,
                };
                let at = PortAddr {
                    adapter: 0,
                    port: if device { (arg % 4) as u32 } else { 0 },
                };
                let other = LabFuzz::pick(&f.nodes, arg).map_or(n, |(_, o)| o);
                let c = match (arg >> 5) % 6 {
                    0 | 1 => NodeCommand::AttachNio(
                        at,
                        Nio::Udp(NioUdp {
                            lport: 10002 + (arg % 8) as u16 * 3,
                            rhost: "127.0.0.1".into(),
                            raddr: [127, 0, 0, 1].into(),
                            rport: 20000,
                        }),
                        filters,
                    ),
                    2 => NodeCommand::SetFilters(at, filters),
                    3 if !device => NodeCommand::ConsoleReset,
                    4 if !device => NodeCommand::Duplicate(other),
                    5 if !device => NodeCommand::ConsoleSocket,
                    _ => NodeCommand::Suspend,
                };
                let class = if device {
                    crate::api::NodeClass::Device
                } else {
                    crate::api::NodeClass::Vpcs
                };
                let r = NodeRef {
                    project: p,
                    node: n,
                    class,
                };
                f.send(Command::Node(r, c), Some((p, n)));
            }
            Op::FramesAndRelease => {
                // Frames through filters, delayed frames released, listeners.
                if let Some(k) = f.key(arg) {
                    let from = if arg & 1 == 0 {
                        Endpoint::Node(k)
                    } else {
                        Endpoint::Nio(k, 0)
                    };
                    for _ in 0..(arg % 8) {
                        f.lab
                            .on_frame(f.now, from, &[arg; 64], &mut |_, _| arg & 2 == 0);
                    }
                }
                f.now += Duration::from_millis(u64::from(arg % 16) * 10);
                f.lab.release_frames(f.now, &mut |_, _| arg & 4 == 0);
                match arg >> 6 {
                    0 => f.send(Command::Notifications, None),
                    1 => f.lab.unsubscribe(),
                    _ => {}
                }
            }
            Op::SwitchFrame => {
                let Some((_, d)) = LabFuzz::pick(&f.devices, arg) else {
                    return;
                };
                let Some(k) = f.lab.key_of(d) else { return };
                let mut frame = vec![0xff; 6];
                frame.extend_from_slice(&[0, 0x50, 0x79, 0x66, 0x68, arg % 5, 0x08, 0x00]);
                frame.extend_from_slice(&[arg; 46]);
                if arg & 1 == 1 {
                    frame[0] = 0;
                    frame[5] = arg % 5;
                }
                let mut took = Vec::new();
                f.lab.on_frame(
                    f.now,
                    Endpoint::Nio(k, (arg % 4) as usize),
                    &frame,
                    &mut |to, frame| {
                        took.push((to, frame.len()));
                        arg & 2 == 0
                    },
                );
                if arg & 2 == 0 && arg & 8 != 0 {
                    for (to, len) in took.into_iter().step_by(2) {
                        f.lab.unsent(to, len);
                    }
                }
            }
            Op::Docker => docker_op(f, arg),
        }
    }
}

/// What the engine answers to `call` when all goes well.
fn engine_happy(call: &crate::lab::host::EngineCall) -> (u16, &'static str) {
    let p = call.path.as_str();
    match call.method {
        "GET" if p.starts_with("/images/") => (200, r#"{"Config": {"Cmd": ["/bin/sh"]}}"#),
        "GET" => (200, r#"{"State": {"Pid": 77, "Running": true}}"#),
        _ if p.starts_with("/images/create") => (200, r#"{"status": "Downloaded"}"#),
        _ if p.starts_with("/containers/create") => (
            201,
            r#"{"Id": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}"#,
        ),
        _ if call.attach => (101, ""),
        _ => (204, ""),
    }
}

/// A container node operation (see [`Op::Docker`]).
fn docker_op(f: &mut LabFuzz, arg: u8) {
    use crate::lab::host::EngineReply;
    match arg % 8 {
        0 => {
            let Some(p) = LabFuzz::pick(&f.projects, arg) else {
                return;
            };
            let id = Uuid::from_u128(300 + (arg % 4) as u128);
            let b = crate::lab::spec::DockerCreate {
                name: format!("C{arg}"),
                node_id: Some(id),
                console: None,
                aux: (arg & 32 != 0).then_some(2000 + (arg % 8) as u16),
                config: crate::lab::spec::DockerConfig {
                    image: "busybox:latest".into(),
                    adapters: u32::from(arg >> 6),
                    aux_type: if arg & 16 != 0 { "telnet" } else { "none" }.into(),
                    ..Default::default()
                },
            };
            f.send(
                Command::CreateNode(p, NodeCreate::Docker(Box::new(b))),
                None,
            );
            if !f.dockers.contains(&(p, id)) {
                f.dockers.push((p, id));
            }
        }
        1 | 7 => {
            // The oldest call answered: as it should be, or otherwise.
            if f.host.engine_calls.is_empty() {
                return;
            }
            let call = f.host.engine_calls.remove(0);
            let (status, body) = match (arg % 8, arg >> 5) {
                (7, _) | (_, 0..=3) => engine_happy(&call),
                (_, 4) => (404, r#"{"message": "No such container"}"#),
                (_, 5) => (500, "not json"),
                (_, 6) => (200, r#"{"State": {"Pid": 0, "Running": false}}"#),
                _ => (201, r#"{"Id": "short"}"#),
            };
            let reply = Ok(EngineReply {
                status,
                body: body.as_bytes().to_vec(),
            });
            f.lab.on_engine(f.now, &call, reply, &mut f.host);
        }
        2 => {
            if f.host.engine_calls.is_empty() {
                return;
            }
            let call = f
                .host
                .engine_calls
                .remove(arg as usize % f.host.engine_calls.len());
            let e = Err("Docker timeout".to_string());
            f.lab.on_engine(f.now, &call, e, &mut f.host);
        }
        3 | 4 => {
            let Some((p, n)) = LabFuzz::pick(&f.dockers, arg >> 3) else {
                return;
            };
            let other = LabFuzz::pick(&f.dockers, arg).map_or(n, |(_, o)| o);
            let c = match (arg >> 4) % 10 {
                0 => NodeCommand::Start,
                1 => NodeCommand::Stop,
                2 => NodeCommand::Suspend,
                3 => NodeCommand::Resume,
                4 => NodeCommand::Reload,
                5 => NodeCommand::Delete,
                6 => NodeCommand::UpdateDocker(Box::new(crate::lab::spec::DockerPatch {
                    name: Some(format!("D{arg}")),
                    environment: (arg & 1 == 1).then(|| "A=1".into()),
                    adapters: (arg & 2 == 2).then_some(u32::from(arg % 3)),
                    ..Default::default()
                })),
                7 => NodeCommand::AttachNio(
                    PortAddr {
                        adapter: u32::from(arg % 2),
                        port: 0,
                    },
                    Nio::Udp(NioUdp {
                        lport: 10002 + (arg % 8) as u16 * 3,
                        rhost: "127.0.0.1".into(),
                        raddr: [127, 0, 0, 1].into(),
                        rport: 20000,
                    }),
                    LinkFilters::default(),
                ),
                8 => NodeCommand::Duplicate(other),
                _ => NodeCommand::Get,
            };
            let r = NodeRef {
                project: p,
                node: n,
                class: crate::api::NodeClass::Docker,
            };
            f.send(Command::Node(r, c), Some((p, n)));
        }
        5 => {
            let Some((_, n)) = LabFuzz::pick(&f.dockers, arg >> 3) else {
                return;
            };
            let Some(k) = f.lab.key_of(n) else { return };
            if arg & 64 == 0 {
                f.lab.on_output(f.now, k, b"/ # ", &mut f.host);
            } else {
                f.lab.on_exit(f.now, k, "its terminal closed", &mut f.host);
            }
        }
        _ => f.host.engine_down = !f.host.engine_down,
    }
}
