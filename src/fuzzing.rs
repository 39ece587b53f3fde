//! Entry points shared by the fuzz targets in `fuzz/` and by the unit test
//! that replays their committed corpora on the stable toolchain (no I/O).
//!
//! Each function takes arbitrary bytes, drives one sans-IO component, and
//! panics only when an invariant is broken.

use crate::api::body::{
    self, CaptureStart, DeviceCreate, DeviceUpdate, ProjectCreate, VmCreate, VmUpdate,
};
use crate::api::{
    Command, DeviceType, LinkFilters, Nio, NioTap, NioUdp, NodeCommand, NodeCreate, NodeRef,
    PortAddr, PortSettings, Ticket, VlanMode,
};
use crate::lab::fake::FakeHost;
use crate::lab::{ClientId, Endpoint, Lab, NodeKey, Settings};
use crate::proto::http::parse::{Method, Request, RequestParser};
use crate::proto::telnet::Session;
use crate::proto::websocket::{Decoder, Message};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Cut points derived from the data itself, so a corpus entry is replayable.
fn cuts(seed: u8, len: usize) -> Vec<usize> {
    let step = 1 + seed as usize % 17;
    (step..len).step_by(step).collect()
}

/// Feed `data` to a push decoder in the pieces `cuts` makes, as a socket
/// would: `step` looks at what is buffered and says how much it used and
/// what it made, `Ok(None)` when it needs more, or fails with a code.
/// Returns everything made and the failure, if any.
fn in_pieces<T>(
    data: &[u8],
    cuts: &[usize],
    mut step: impl FnMut(&[u8]) -> Result<Option<(usize, Option<T>)>, u16>,
) -> (Vec<T>, Option<u16>) {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut start = 0;
    for end in cuts.iter().copied().chain([data.len()]) {
        buf.extend_from_slice(&data[start..end]);
        start = end;
        loop {
            match step(&buf) {
                Err(code) => return (out, Some(code)),
                Ok(None) => break,
                Ok(Some((used, made))) => {
                    assert!(used <= buf.len(), "used {used} of {}", buf.len());
                    buf.drain(..used);
                    let done = made.is_none() && used == 0;
                    out.extend(made);
                    if done {
                        break;
                    }
                }
            }
        }
    }
    (out, None)
}

fn parse_all(data: &[u8], cuts: &[usize]) -> (Vec<Request>, Option<u16>) {
    let mut parser = RequestParser::new();
    in_pieces(data, cuts, |buf| match parser.feed(buf) {
        Err(e) => Err(e.status()),
        Ok(p) => {
            if let Some(r) = &p.request {
                assert!(r.body.len() <= crate::limits::MAX_UPLOAD_BYTES);
            }
            Ok(Some((p.consumed, p.request)))
        }
    })
}

/// The HTTP parser: the same requests (or error) whether the bytes arrive at
/// once or in pieces.
pub fn http_parser(data: &[u8]) {
    let Some((&seed, rest)) = data.split_first() else {
        return;
    };
    let whole = parse_all(rest, &[]);
    let split = parse_all(rest, &cuts(seed, rest.len()));
    assert_eq!(whole, split, "split reads changed the outcome");
    if let Some(status) = whole.1 {
        assert!(
            matches!(status, 400 | 413 | 431),
            "unexpected status {status}"
        );
    }
}

/// Every route's body decoder: a value or a 400/409, never a panic.
pub fn json_bodies(data: &[u8]) {
    let statuses = [
        body::VersionCheck::parse(data).err(),
        body::ProjectCreate::parse(data).err(),
        body::ProjectUpdate::parse(data).err(),
        body::VmCreate::parse(data).err(),
        body::VmUpdate::parse(data).err(),
        crate::api::Nio::parse(data).err(),
        body::empty(data).err(),
    ];
    for e in statuses.into_iter().flatten() {
        assert!(matches!(e.status(), 400 | 409), "{e:?}");
        assert!(!e.to_string().is_empty());
    }
    // The same bytes as a body of every `/v2/compute` route that takes one:
    // only statuses the GNS3 2.2 controller maps.
    const P: &str = "/v2/compute/projects/42f9feee-3217-4104-981e-85d5f0a806ec";
    const N: &str = "nodes/1b29e1b6-8d3a-4a4b-9d2c-5a6f7e8d9c0b";
    let routes = [
        (Method::Post, "/v2/compute/projects".to_string()),
        (Method::Put, P.to_string()),
        (Method::Post, format!("{P}/vpcs/nodes")),
        (Method::Post, format!("{P}/ethernet_switch/nodes")),
        (Method::Post, format!("{P}/ethernet_hub/nodes")),
        (Method::Put, format!("{P}/vpcs/{N}")),
        (Method::Put, format!("{P}/ethernet_switch/{N}")),
        (Method::Post, format!("{P}/vpcs/{N}/duplicate")),
        (Method::Post, format!("{P}/vpcs/{N}/adapters/0/ports/0/nio")),
        (Method::Put, format!("{P}/vpcs/{N}/adapters/0/ports/0/nio")),
        (
            Method::Post,
            format!("{P}/vpcs/{N}/adapters/0/ports/0/start_capture"),
        ),
    ];
    for (method, path) in routes {
        let req = Request {
            method,
            path,
            keep_alive: true,
            http10: false,
            authorization: None,
            content_type: None,
            websocket_key: None,
            websocket_version: None,
            body: data.to_vec(),
        };
        if let Err(e) = crate::api::v2::decode(&req, None).command {
            let r = crate::api::v2::render(None, Err(e));
            assert!(matches!(r.status, 400 | 404 | 409), "{}", r.status);
        }
    }
}

/// A built-in PC fed random console bytes, frames (random, and well-formed
/// ARP and ICMP aimed at it) and time: it never panics, and what it holds
/// stays within its bounds.
pub fn pc(data: &[u8]) {
    use crate::lab::nodes::pc::{self, Pc, net};
    use std::net::Ipv4Addr;
    let mac = [0x00, 0x50, 0x79, 0x67, 0x00, 0x01];
    let peer = [0x00, 0x50, 0x79, 0x67, 0x00, 0x02];
    let mut now = Instant::now();
    let mut p = Pc::new(mac, 1);
    let _ = p.boot(now, Some("set pcname F\nip 10.0.0.1/24 10.0.0.254\n"));
    let (me, other) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    for chunk in data.chunks(16) {
        let Some((&op, rest)) = chunk.split_first() else {
            continue;
        };
        let out = match op % 8 {
            0..=2 => p.input(now, rest),
            3 => p.frame(now, rest),
            4 => p.frame(now, &net::arp(op & 8 == 0, peer, other, (mac, me))),
            5 => {
                let seq = rest.first().copied().unwrap_or(1) as u16;
                let reply = op & 8 == 0;
                p.frame(
                    now,
                    &net::echo(reply, (peer, mac), (other, me), 64, 1, seq, rest),
                )
            }
            _ => {
                now += Duration::from_millis(u64::from(rest.first().copied().unwrap_or(0)) * 40);
                p.timer(now)
            }
        };
        assert!(
            out.frames.len() <= 64,
            "{} frames at once",
            out.frames.len()
        );
        assert!(
            out.console.len() <= 64 * 1024,
            "{} bytes at once",
            out.console.len()
        );
        let (line, hist, script, arp, files) = p.sizes();
        assert!(line <= pc::MAX_LINE && hist <= pc::HISTORY && script <= pc::MAX_SCRIPT);
        assert!(arp <= pc::ARP_SIZE && files <= pc::MAX_FILES);
        if out.quit {
            return;
        }
    }
}

/// The telnet filter: splitting the input never changes what reaches VPCS.
pub fn telnet(data: &[u8]) {
    let Some((&seed, rest)) = data.split_first() else {
        return;
    };
    let block = seed & 1 == 1;
    let whole = Session::new().feed(rest, block);
    let mut s = Session::new();
    let mut split = Vec::new();
    let mut start = 0;
    for end in cuts(seed, rest.len()).into_iter().chain([rest.len()]) {
        let i = s.feed(&rest[start..end], block);
        split.extend(i.to_vpcs);
        start = end;
        if i.disconnect {
            break;
        }
    }
    assert_eq!(whole.to_vpcs, split, "split reads changed what VPCS gets");
}

fn ws_decode_all(data: &[u8], cuts: &[usize]) -> (Vec<Message>, Option<u16>) {
    let mut d = Decoder::new();
    in_pieces(data, cuts, |buf| {
        let step = d.feed(buf).map_err(|e| e.code())?;
        assert!(
            step.as_ref().is_none_or(|(used, _)| *used > 0),
            "a frame of 0 bytes"
        );
        Ok(step)
    })
}

/// The websocket decoder: the same messages (or close code) whether the
/// bytes arrive at once or in pieces, never a message over the limit.
pub fn websocket(data: &[u8]) {
    let Some((&seed, rest)) = data.split_first() else {
        return;
    };
    let whole = ws_decode_all(rest, &[]);
    let split = ws_decode_all(rest, &cuts(seed, rest.len()));
    assert_eq!(whole, split, "split reads changed the outcome");
    for m in &whole.0 {
        let len = match m {
            Message::Text(t) => t.len(),
            Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b.len(),
            Message::Close(_, r) => r.len(),
        };
        assert!(len <= crate::proto::websocket::MAX_MESSAGE);
    }
    if let Some(code) = whole.1 {
        assert!(matches!(code, 1002 | 1007 | 1009), "close code {code}");
    }
    // The session the reactor runs: fed in the same pieces, it hands out
    // the same data messages, whole or split.
    let session = |cuts: &[usize]| {
        let mut s = crate::proto::websocket::Session::new(Vec::new());
        let mut out = Vec::new();
        let mut at = 0;
        for &c in cuts.iter().chain(std::iter::once(&rest.len())) {
            out.extend(s.receive(&rest[at..c.max(at)]));
            at = c.max(at);
        }
        out
    };
    // Up to a close, after which a session reads nothing more.
    let data: Vec<Vec<u8>> = whole
        .0
        .iter()
        .take_while(|m| !matches!(m, Message::Close(..)))
        .filter_map(|m| match m {
            Message::Text(t) => Some(t.as_bytes().to_vec()),
            Message::Binary(b) => Some(b.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(session(&[]), session(&cuts(seed, rest.len())));
    if whole.1.is_none() {
        assert_eq!(
            session(&[]),
            data,
            "the session hands out every data message"
        );
    }
}

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
    f.lab.shutdown(&mut f.host);
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
        f.host.consoles.is_empty() && f.host.nios.is_empty(),
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
        match op % 20 {
            0 => {
                let id = Uuid::from_u128(1 + (arg % 4) as u128);
                let b = ProjectCreate {
                    project_id: Some(id),
                    temporary: Some(arg & 8 != 0),
                    ..Default::default()
                };
                self.send(Command::CreateProject(b), None);
                if !self.projects.contains(&id) && self.lab.check_invariants().is_ok() {
                    self.projects.push(id);
                }
            }
            1 => {
                let Some(p) = Self::pick(&self.projects, arg) else {
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
                self.send(Command::CreateNode(p, NodeCreate::Vpcs(b)), None);
                let created = matches!(self.host.replies.last(), Some((_, Ok(_))));
                if created && !self.nodes.contains(&(p, id)) {
                    self.nodes.push((p, id));
                }
            }
            2..=4 => {
                let Some((p, n)) = Self::pick(&self.nodes, arg) else {
                    return;
                };
                let at = PortAddr {
                    adapter: (arg >> 6 == 3) as u32,
                    port: 0,
                };
                let lport = 10000 + (arg % 8) as u16 * 3;
                let c = match (op % 20 - 2) * 4 + (arg >> 4) % 4 {
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
                self.send(
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
            5 => self.lab.poll(self.now, &mut self.host),
            6 => {
                self.now += Duration::from_millis(arg as u64 * 50);
                self.lab.poll(self.now, &mut self.host);
            }
            7 => {
                let Some(k) = self.key(arg) else { return };
                let out: &[u8] = if arg & 1 == 0 {
                    b"VPCS> "
                } else {
                    b"booting
"
                };
                if arg & 2 == 0 {
                    self.lab.on_output(self.now, k, out, &mut self.host);
                } else {
                    self.host.unread.insert(k, out.to_vec());
                }
            }
            8 => {
                let Some(k) = self.key(arg) else { return };
                if self.host.exit(k).is_some() {
                    self.lab.on_exit(self.now, k, "exit code 1", &mut self.host);
                }
            }
            9 => {
                let Some(p) = Self::pick(&self.projects, arg) else {
                    return;
                };
                let c = match arg % 3 {
                    0 => Command::CloseProject(p),
                    1 => Command::DeleteProject(p),
                    _ => Command::AllocateUdp(p),
                };
                self.send(c, None);
            }
            10 => {
                let Some(k) = self.key(arg) else { return };
                self.clients += 1;
                let id = ClientId {
                    handle: arg as usize,
                    serial: self.clients,
                };
                if self.lab.console_attach(k, id) {
                    self.lab
                        .console_input(self.now, k, id, b"ip 10.0.0.2\r! ls\r", &mut self.host);
                    if arg & 1 == 0 {
                        self.lab.console_detach(k, id);
                    }
                }
            }
            11 => {
                self.host.spawn_error =
                    (arg & 1 == 1).then(|| crate::error::ApiError::conflict("no vpcs"));
                if arg & 2 == 0 {
                    self.host
                        .unreachable_rports
                        .insert(20000 + (arg % 3) as u16);
                } else {
                    self.host.unreachable_rports.clear();
                }
            }
            12 => {
                let Some(k) = self.key(arg) else { return };
                let from = if arg & 1 == 0 {
                    Endpoint::Node(k)
                } else {
                    Endpoint::Nio(k, 0)
                };
                self.lab
                    .on_frame(self.now, from, &[arg; 64], &mut |_, _| arg & 2 == 0);
            }
            13 => {
                let b = if arg & 1 == 0 {
                    10009
                } else {
                    2000 + (arg % 8) as u16
                };
                self.host.foreign_udp.insert(b);
                self.host.foreign_consoles.insert(b);
            }
            14 => {
                let Some(p) = Self::pick(&self.projects, arg) else {
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
                self.send(Command::CreateNode(p, NodeCreate::Device(b)), None);
                let created = matches!(self.host.replies.last(), Some((_, Ok(_))));
                if created && !self.devices.contains(&(p, id)) {
                    self.devices.push((p, id));
                }
            }
            15 => {
                let Some((p, d)) = Self::pick(&self.devices, arg) else {
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
                self.send(Command::Node(r, c), Some((p, d)));
            }
            16 => {
                let device = arg & 1 == 1;
                let list = if device { &self.devices } else { &self.nodes };
                let Some((p, n)) = Self::pick(list, arg >> 1) else {
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
                let slot = self.sent.len() as u64;
                self.send(
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
                self.viewers.push(ClientId {
                    handle: 1,
                    serial: slot,
                });
                self.viewers.push(ClientId {
                    handle: 1,
                    serial: 1,
                });
                if let Some(v) = Self::pick(&self.viewers, arg) {
                    if arg & 2 == 0 {
                        let _ = self.lab.capture_output(v);
                    } else {
                        self.lab.capture_unwatch(v);
                    }
                }
                let _ = self.lab.take_ready_viewers();
            }
            18 => {
                // GNS3 2.2's node operations, filters included.
                let device = arg & 1 == 1;
                let list = if device { &self.devices } else { &self.nodes };
                let Some((p, n)) = Self::pick(list, arg >> 1) else {
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
                let other = Self::pick(&self.nodes, arg).map_or(n, |(_, o)| o);
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
                self.send(Command::Node(r, c), Some((p, n)));
            }
            19 => {
                // Frames through filters, delayed frames released, listeners.
                if let Some(k) = self.key(arg) {
                    let from = if arg & 1 == 0 {
                        Endpoint::Node(k)
                    } else {
                        Endpoint::Nio(k, 0)
                    };
                    for _ in 0..(arg % 8) {
                        self.lab
                            .on_frame(self.now, from, &[arg; 64], &mut |_, _| arg & 2 == 0);
                    }
                }
                self.now += Duration::from_millis(u64::from(arg % 16) * 10);
                self.lab.release_frames(self.now, &mut |_, _| arg & 4 == 0);
                match arg >> 6 {
                    0 => self.send(Command::Notifications, None),
                    1 => self.lab.unsubscribe(),
                    _ => {}
                }
            }
            _ => {
                let Some((_, d)) = Self::pick(&self.devices, arg) else {
                    return;
                };
                let Some(k) = self.lab.key_of(d) else { return };
                let mut frame = vec![0xff; 6];
                frame.extend_from_slice(&[0, 0x50, 0x79, 0x66, 0x68, arg % 5, 0x08, 0x00]);
                frame.extend_from_slice(&[arg; 46]);
                if arg & 1 == 1 {
                    frame[0] = 0;
                    frame[5] = arg % 5;
                }
                self.lab.on_frame(
                    self.now,
                    Endpoint::Nio(k, (arg % 4) as usize),
                    &frame,
                    &mut |_, _| arg & 2 == 0,
                );
            }
        }
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

/// Restore an archive made of entries the data chooses (files,
/// directories, links of both kinds; names with `..`, absolute names,
/// links climbing out) into a fresh temporary root, after planting, when
/// the data says so, links on disk that point outside; then write files
/// beneath it as the lab would. Nothing may land beside the root. (This
/// target touches the disk: a temporary directory, removed at the end.)
pub fn archive(data: &[u8]) {
    use crate::lab::Files;
    use tar::{EntryType, Header};
    const NAMES: [&str; 10] = [
        "p",
        "a/b",
        "..",
        "/tmp",
        ".",
        "r",
        "notes.tmp",
        "x/../..",
        "startup.vpc",
        "c",
    ];
    let t = std::env::temp_dir().join(format!("nanolab-fuzz-{}", Uuid::new_v4().simple()));
    let (root, outside) = (t.join("root"), t.join("outside"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let name = |b: &[u8]| -> String {
        b.iter()
            .map(|&i| NAMES[i as usize % NAMES.len()])
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut builder = tar::Builder::new(Vec::new());
    let mut written = Vec::new();
    for chunk in data.chunks(4) {
        let (kind, path, target) = (
            chunk[0],
            name(chunk.get(1..3).unwrap_or_default()),
            name(chunk.get(3..).unwrap_or_default()),
        );
        written.push(path.clone());
        let mut h = Header::new_gnu();
        h.set_size(0);
        h.set_entry_type(match kind % 5 {
            0 => EntryType::Regular,
            1 => EntryType::Directory,
            2 => EntryType::Symlink,
            3 => EntryType::Link,
            _ => EntryType::Fifo,
        });
        if kind % 7 == 6 {
            // A link already on disk, as an older restore could leave
            // (planted inside the root: the harness must not escape itself).
            if path.split('/').any(|c| c == "..") {
                continue;
            }
            let at = root.join(path.trim_start_matches('/'));
            // Nor through a link it planted before (std follows links).
            let through_link =
                at.ancestors().take_while(|a| *a != root).skip(1).any(|a| {
                    std::fs::symlink_metadata(a).is_ok_and(|m| m.file_type().is_symlink())
                });
            if through_link {
                continue;
            }
            let _ = std::fs::create_dir_all(at.parent().unwrap_or(&root));
            let _ = std::os::unix::fs::symlink(&outside, at);
            continue;
        }
        let gnu = h.as_gnu_mut().unwrap();
        let n = path.len().min(99);
        gnu.name[..n].copy_from_slice(&path.as_bytes()[..n]);
        let n = target.len().min(99);
        gnu.linkname[..n].copy_from_slice(&target.as_bytes()[..n]);
        h.set_cksum();
        let _ = builder.append(&h, std::io::empty());
    }
    let tar = builder.into_inner().unwrap_or_default();
    let mut disk = crate::os::fs::Disk::new(&root);
    if disk.restore_begin(&root, tar).is_ok() {
        // Slices of 3 entries: a restore resumed between turns.
        while disk.restore_step(3).is_none() {}
    }
    // Later writes, as the files API, a startup script and a capture make.
    for path in written {
        let at = root.join(path.trim_start_matches('/'));
        let _ = disk.write_confined(&root, &at, b"x");
        let _ = disk.create_dir(&at);
        let _ = disk.write_file(&at.join("startup.vpc"), b"x");
        let _ = disk.append_file(&at, b"x");
    }
    let beside: Vec<_> = std::fs::read_dir(&t).unwrap().flatten().collect();
    let landed = std::fs::read_dir(&outside).unwrap().count();
    let _ = std::fs::remove_dir_all(&t);
    assert_eq!(beside.len(), 2, "something landed beside the root");
    assert_eq!(landed, 0, "something landed outside through a link");
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn replay(target: &str, f: fn(&[u8])) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .collect();
        assert!(!entries.is_empty(), "empty corpus for {target}");
        for entry in entries {
            let path = entry.unwrap().path();
            f(&std::fs::read(&path).unwrap());
        }
    }

    #[test]
    fn replay_http_parser_corpus() {
        replay("http_parser", super::http_parser);
    }

    #[test]
    fn replay_json_bodies_corpus() {
        replay("json_bodies", super::json_bodies);
    }

    #[test]
    fn replay_telnet_corpus() {
        replay("telnet", super::telnet);
    }

    #[test]
    fn replay_websocket_corpus() {
        replay("websocket", super::websocket);
    }

    #[test]
    fn replay_pc_corpus() {
        replay("pc", super::pc);
    }

    #[test]
    fn replay_archive_corpus() {
        replay("archive", super::archive);
    }

    #[test]
    fn replay_lab_corpus() {
        replay("lab", super::lab);
    }
}
