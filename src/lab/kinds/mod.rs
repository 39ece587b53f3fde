//! Node kinds behind one face (sans-IO).
//!
//! The lab holds a [`kind::Kind`] per node, one arm per kind, and reaches
//! every kind through [`kind::Kind::face`]: the one match on kinds in the
//! lab (`each_kind!`). A kind
//! implements [`Behaviour`], whose methods have defaults, and is lent a
//! [`Ctx`] (its own ports, console and name, and the lab's pools, timers,
//! events and host), never the whole lab. A kind asks for the lab's
//! orchestration (answer a parked request, tell listeners, route frames it
//! sent) through what it returns and through [`Ctx::updated`] and
//! [`Ctx::frames`].
//!
//! A PC is one kind with two engines ([`pc::Engine`]): Debian's `vpcs`
//! program or the built-in one. Switches and hubs share the port rules of
//! [`device`].
//!
//! Adding a kind: a file here with its data and its `Behaviour`, an arm in
//! [`kind::Kind`] and in `each_kind!`, and its creation in the lab.

pub mod builtin;
pub mod cloud;
pub mod device;
pub mod docker;
pub mod hub;
pub mod kind;
pub mod pc;
pub mod qemu;
pub mod switch;
pub mod vpcs;

use super::answer::Body;
use super::capture::Sink;
use super::command::{NodeClass, NodeCommand, PortAddr, PortSettings};
use super::console::{Console, PortChoice};
use super::event::Events;
use super::host::Host;
use super::id::{Endpoint, NodeKey};
use super::port::{Port, Wire};
use super::ports::PortPool;
use super::settings::Settings;
use super::timers::{Alarm, Deadline, Timers};
use super::types::PortMapping;
use crate::error::ApiError;
use std::collections::VecDeque;
use std::path::Path;
use std::time::Instant;
use uuid::Uuid;

/// A node's lifecycle state, as clients and invariants see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not running.
    Stopped,
    /// Asked to start, not ready yet.
    Starting,
    /// Running and ready.
    Started,
    /// Asked to stop, not gone yet.
    Stopping,
}

/// What every node has, as a kind's view shows it.
#[derive(Debug, Clone, Copy)]
pub struct Face<'a> {
    /// Its id.
    pub id: Uuid,
    /// Its project.
    pub project: Uuid,
    /// Its name.
    pub name: &'a str,
    /// Its console port, if it has one.
    pub console: Option<u16>,
    /// Its lifecycle state.
    pub state: State,
    /// Its ports.
    pub ports: &'a [Port],
    /// Its declared ports (2.2's `ports_mapping`).
    pub mapping: &'a [PortMapping],
}

/// What a kind is lent for one operation: its node's parts and the lab's
/// shared parts, as disjoint borrows.
pub struct Ctx<'a> {
    /// The time of the operation.
    pub now: Instant,
    /// The node's key.
    pub key: NodeKey,
    /// The node's id.
    pub id: Uuid,
    /// The node's project.
    pub project: Uuid,
    /// The node's name.
    pub name: &'a mut String,
    /// The node's console port.
    pub console_port: &'a mut Option<u16>,
    /// The node's ports.
    pub ports: &'a mut Vec<Port>,
    /// The node's declared ports.
    pub mapping: &'a mut Vec<PortMapping>,
    /// The node's console.
    pub console: &'a mut Console,
    /// The lab's configuration.
    pub settings: &'a Settings,
    /// The UDP port pool.
    pub udp_ports: &'a mut PortPool,
    /// The console port pool.
    pub console_ports: &'a mut PortPool,
    /// The lab's deadlines.
    pub timers: &'a mut Timers<Deadline>,
    /// The lab's events.
    pub events: &'a mut Events,
    /// The last process serial given out.
    pub serials: &'a mut u64,
    /// The calls to the container engine.
    pub engine: &'a mut crate::lab::engine::Engine,
    /// Nodes waiting to be spawned, one per loop turn.
    pub spawns: &'a mut VecDeque<NodeKey>,
    /// The world.
    pub host: &'a mut dyn Host,
    /// Frames the node sent; the lab routes them once the kind is done.
    pub frames: Vec<Vec<u8>>,
    /// The node changed in a way listeners see: the lab tells them.
    pub updated: bool,
}

impl Ctx<'_> {
    /// A warning about this node.
    pub fn warn(&mut self, text: String) {
        self.events.warn(Some(self.id), text);
    }

    /// Send `call` to the container engine (see
    /// [`crate::lab::engine::Engine::send`]).
    pub fn ask_engine(&mut self, call: crate::lab::host::EngineCall) -> Result<(), ApiError> {
        self.engine.send(&mut *self.host, call)
    }

    /// A fresh process serial.
    pub fn next_serial(&mut self) -> u64 {
        *self.serials += 1;
        *self.serials
    }

    /// Ask to be told `alarm` at `at`.
    pub fn schedule(&mut self, at: Instant, alarm: Alarm) {
        self.timers.schedule(at, Deadline::Node(self.key, alarm));
    }

    /// What choosing this node's console port needs.
    pub fn console_choice(&mut self) -> PortChoice<'_> {
        PortChoice {
            pool: &mut *self.console_ports,
            host: &mut *self.host,
            events: &mut *self.events,
            key: self.key,
            id: self.id,
            aux: false,
        }
    }

    /// What choosing this node's auxiliary console's port needs.
    pub fn aux_choice(&mut self) -> PortChoice<'_> {
        PortChoice {
            aux: true,
            ..self.console_choice()
        }
    }

    /// Show `data` to every console client (see [`Console::broadcast`]).
    pub fn broadcast(&mut self, data: &[u8]) {
        self.console
            .broadcast(self.id, data, &mut *self.host, &mut *self.events);
    }
}

/// What a kind is lent for one frame: its ports and the data plane's
/// shared parts. No host: a frame's effects other than sending wait for
/// the next poll.
pub struct FrameCx<'a> {
    /// The time of the frame.
    pub now: Instant,
    /// The node's key.
    pub key: NodeKey,
    /// The node's ports.
    pub ports: &'a mut [Port],
    /// Captures with records to write.
    pub sink: &'a mut Sink,
    /// Filter randomness and delayed frames.
    pub wire: &'a mut Wire,
}

/// What a kind did with a frame besides sending it on.
#[derive(Debug, Default)]
pub struct Echo {
    /// Frames the node sent in answer (routed as if from the node).
    pub frames: Vec<Vec<u8>>,
    /// The node has work for the next poll ([`Behaviour::flush`]).
    pub flush: bool,
}

/// [`Behaviour::charged`] for a bridge whose side channels are numbered
/// from `side`: a frame to side channel `side + i` came in on port `i`.
pub fn bridge_charged(to: Endpoint, side: usize) -> (usize, bool) {
    match to {
        Endpoint::Nio(_, i) if i >= side => (i - side, false),
        Endpoint::Nio(_, i) => (i, true),
        Endpoint::Node(_) => (0, false),
    }
}

/// A frame across a port whose node is a bridge between its link (NIO
/// `i`) and a side channel of its own (NIO `side + i`: a cloud's host
/// interface, a VM's adapter): in from the link and out to the side, or in
/// from the side and out of the link, through port `i`'s pipeline either
/// way. `open`: the side takes frames now.
pub fn bridge(
    fx: &mut FrameCx,
    index: usize,
    side: usize,
    open: bool,
    frame: &[u8],
    send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
) -> Echo {
    use super::port::{Pass, Tap};
    let (key, from_side) = (fx.key, index >= side);
    let i = if from_side { index - side } else { index };
    let Some(port) = fx.ports.get_mut(i) else {
        return Echo::default();
    };
    let mut t = Tap {
        wire: fx.wire,
        sink: fx.sink,
        at: (key, i),
        now: fx.now,
    };
    if from_side {
        let to = Endpoint::Nio(key, i);
        match port.egress(&mut t, frame, None) {
            Pass::Now(f) => {
                let ok = send(to, &f);
                port.sent(&mut t, ok, &f);
            }
            Pass::Later(due, f) => t.hold(port, to, true, due, &f),
            Pass::Dropped => {}
        }
    } else {
        let to = Endpoint::Nio(key, side + i);
        match port.ingress(&mut t, frame, open) {
            Pass::Now(f) => {
                let ok = send(to, &f);
                port.delivered(ok, f.len());
            }
            Pass::Later(due, f) => t.hold(port, to, false, due, &f),
            Pass::Dropped => {}
        }
    }
    Echo::default()
}

/// What a start did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// Running now.
    Now,
    /// Under way: a later event finishes it.
    Later,
}

/// What a stop did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopping {
    /// Nothing runs any more.
    Gone,
    /// Asked to stop: its exit finishes it.
    Later,
}

/// What the node was doing when its process exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Was {
    /// Starting.
    Starting,
    /// Stopping.
    Stopping,
    /// Running.
    Running,
}

/// How an exit ends what the node was doing.
#[derive(Debug)]
pub enum Gone {
    /// As asked (a stop).
    Stopped,
    /// On purpose, and started again: a parked start goes on waiting.
    Restarted,
    /// The start fails with this.
    StartFailed(ApiError),
    /// On its own: a line for the log, one for the project's users, one
    /// for its console.
    Died {
        /// For the server's log.
        warning: String,
        /// For the project's users (2.2's `log.error`).
        log: String,
        /// For the console clients.
        note: String,
    },
}

/// The node a duplicate copies from, as its kind shows it.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its kind's routes.
    pub class: NodeClass,
    /// Its startup script, if it has one.
    pub script: Option<&'a str>,
    /// Its directory, if it has one.
    pub dir: Option<&'a Path>,
}

/// What an answer of the container engine finished.
#[derive(Debug)]
pub enum Heard {
    /// Nothing the lab waits for.
    Nothing,
    /// The node's creation (parked) is done.
    Created,
    /// The node's creation failed: it goes, and the create is answered with this.
    CreateFailed(ApiError),
    /// A parked start is done: the node runs.
    Ready,
    /// What the node ran is gone (a stop done, a start failed).
    Gone(Gone),
}

/// The MAC `i` after `base` (`02:42:..:00` plus 1 is `..:01`); `None`
/// when `base` is not a MAC.
pub fn mac_plus(base: &str, i: usize) -> Option<String> {
    let parts: Vec<&str> = base.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let n = parts.iter().try_fold(0u64, |n, p| {
        (p.len() == 2)
            .then(|| u8::from_str_radix(p, 16).ok())
            .flatten()
            .map(|b| n << 8 | u64::from(b))
    })?;
    let b = ((n + i as u64) & 0xffff_ffff_ffff).to_be_bytes();
    Some(format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[2], b[3], b[4], b[5], b[6], b[7]
    ))
}

/// The port of adapter `at.adapter` for a kind whose adapters have one
/// port each, port 0 (a VM's, a container's); else the API's 409 naming
/// what the node has.
pub fn adapter_port(ports: &[Port], at: PortAddr, what: &str) -> Result<usize, ApiError> {
    ports
        .iter()
        .position(|p| p.adapter == at.adapter && p.number == at.port)
        .ok_or_else(|| {
            ApiError::conflict(format!(
                "Adapter {} does not exist on this {what} (it has {}, each with port 0)",
                at.adapter,
                ports.len()
            ))
        })
}

/// The API's word for a node's state, with its guest paused or not.
pub fn status_word(state: State, paused: bool) -> &'static str {
    match state {
        State::Started if paused => "suspended",
        State::Started | State::Stopping => "started",
        State::Stopped | State::Starting => "stopped",
    }
}

/// The face every node kind shows the lab. Defaults fit a kind that runs
/// inside the lab and has no process, console or files.
pub trait Behaviour {
    /// What it is, as a person reads it ("VPCS", "Ethernet switch").
    fn name(&self) -> &'static str;

    /// What it is in a log line ("vpcs", "switch").
    fn word(&self) -> &'static str;

    /// Whether it handles frames (a process or engine runs; a switch or
    /// hub always).
    fn running(&self) -> bool {
        true
    }

    /// The family of routes that address it (`/vpcs/vms`, `/dynamips/devices`).
    fn class(&self) -> NodeClass;

    /// Whether it takes this request at all.
    fn accepts(&self, cmd: &NodeCommand) -> bool;

    /// The node as the API shows it.
    fn view(&self, node: &Face) -> Body;

    /// The index of the port a request names, or the API's error.
    fn port_index(&self, ports: &[Port], at: PortAddr) -> Result<usize, ApiError>;

    /// A port as the API numbers it, in a log line.
    fn port_label(&self, port: &Port) -> String {
        format!("{}/{}", port.adapter, port.number)
    }

    /// The port a new NIO goes on (made ready for it).
    fn nio_port(
        &mut self,
        cx: &mut Ctx,
        at: PortAddr,
        settings: Option<PortSettings>,
    ) -> Result<usize, ApiError> {
        let _ = settings;
        self.port_index(cx.ports, at)
    }

    /// Port `index` got a NIO (`linked`) or lost it (or failed to get it).
    fn nio_changed(&mut self, ports: &mut [Port], index: usize, linked: bool) {
        let _ = (ports, index, linked);
    }

    /// Port `index`'s link came up (a NIO) or went down: a kind whose
    /// guest can see its carrier tells it.
    fn link_state(&mut self, cx: &mut Ctx, index: usize, up: bool) {
        let _ = (cx, index, up);
    }

    /// A request only this kind has (an update).
    fn command(&mut self, cx: &mut Ctx, cmd: NodeCommand) -> Result<(), ApiError>;

    /// Start it.
    fn start(&mut self, cx: &mut Ctx) -> Result<Started, ApiError> {
        let _ = cx;
        Ok(Started::Now)
    }

    /// Its turn on the spawn queue came.
    fn spawn(&mut self, cx: &mut Ctx) -> Result<(), ApiError> {
        let _ = cx;
        Ok(())
    }

    /// Stop it.
    fn stop(&mut self, cx: &mut Ctx) -> Stopping {
        let _ = cx;
        Stopping::Gone
    }

    /// Whether a delete may skip the stop: removing it ends what it runs
    /// at once (a container, removed by force), where a stop would wait.
    fn removal_stops(&self) -> bool {
        false
    }

    /// Stop it at once and wait (project close, shutdown).
    fn kill(&mut self, cx: &mut Ctx) {
        let _ = cx;
    }

    /// A console client typed `data`.
    fn on_input(&mut self, cx: &mut Ctx, data: &[u8]) {
        let _ = (cx, data);
    }

    /// Its auxiliary console (a container's second shell), if it has one.
    fn aux(&self) -> Option<&Console> {
        None
    }

    /// Mutable [`Behaviour::aux`].
    fn aux_mut(&mut self) -> Option<&mut Console> {
        None
    }

    /// A client of its auxiliary console typed `data`.
    fn on_aux_input(&mut self, cx: &mut Ctx, data: &[u8]) {
        let _ = (cx, data);
    }

    /// Whether it does this suspend, resume or reload itself, in place
    /// (a running VM), rather than as the lab does for every node.
    fn in_place(&self, cmd: &NodeCommand) -> bool {
        let _ = cmd;
        false
    }

    /// Make what the node needs outside the lab before it exists (a
    /// container): `true` when that goes on after the create's answer is
    /// due, which then waits for [`Heard::Created`].
    fn provision(&mut self, cx: &mut Ctx) -> Result<bool, ApiError> {
        let _ = cx;
        Ok(false)
    }

    /// The container engine answered its call `id`.
    fn on_engine(
        &mut self,
        cx: &mut Ctx,
        id: u64,
        answer: Result<crate::lab::host::EngineReply, String>,
    ) -> Heard {
        let _ = (cx, id, answer);
        Heard::Nothing
    }

    /// Its machine monitor said `data`; `true` when it just became ready.
    fn on_monitor(&mut self, cx: &mut Ctx, data: &[u8]) -> bool {
        let _ = (cx, data);
        false
    }

    /// Its process printed `data`; `true` when it just became ready.
    fn on_output(&mut self, cx: &mut Ctx, data: &[u8]) -> bool {
        let _ = (cx, data);
        false
    }

    /// Its process exited; `None` when it had none.
    fn on_exit(&mut self, cx: &mut Ctx, how: &str, was: Was) -> Option<Gone> {
        let _ = (cx, how, was);
        None
    }

    /// A deadline it set came due; `true` when it just became ready.
    fn on_alarm(&mut self, cx: &mut Ctx, alarm: Alarm) -> bool {
        let _ = (cx, alarm);
        false
    }

    /// Work a frame left for the next poll (see [`Echo::flush`]).
    fn flush(&mut self, cx: &mut Ctx) {
        let _ = cx;
    }

    /// A frame crossed port `index`, in from its NIO or (`outbound`) out
    /// from the node itself; `send` takes what leaves.
    fn on_frame(
        &mut self,
        fx: &mut FrameCx,
        index: usize,
        outbound: bool,
        frame: &[u8],
        send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
    ) -> Echo;

    /// The port a frame sent to `to` was counted on, and whether it was
    /// counted going out of the port (to its NIO) or into the node: a frame
    /// to NIO `i` left port `i`; one to the node itself came in on port 0.
    /// Kinds with side channels (`bridge`) say theirs.
    fn charged(&self, to: Endpoint) -> (usize, bool) {
        match to {
            Endpoint::Nio(_, i) => (i, true),
            Endpoint::Node(_) => (0, false),
        }
    }

    /// A frame for the node itself that a delay held back; `None` when
    /// the host delivers it (to a process).
    fn take_frame(&mut self, now: Instant, frame: &[u8]) -> Option<Echo> {
        let _ = (now, frame);
        None
    }

    /// Whether its console proxy must refuse host commands.
    fn filters_shell(&self) -> bool {
        false
    }

    /// Its working directory, if it has one.
    fn dir(&self) -> Option<&Path> {
        None
    }

    /// Its project (node `id`) moved to `project_dir`.
    fn moved(&mut self, project_dir: &Path, id: Uuid) {
        let _ = (project_dir, id);
    }

    /// The MAC offset it took from its project, if any.
    fn project_mac(&self) -> Option<u8> {
        None
    }

    /// UDP ports reserved in its own name.
    fn udp_ports(&self) -> Vec<u16> {
        Vec::new()
    }

    /// Its own invariants, given whether a start or stop is parked.
    fn check(&self, starting: bool) -> Result<(), String> {
        let _ = starting;
        Ok(())
    }

    /// Learnt addresses: (VLAN, MAC, port index).
    fn mac_table(&self, now: Instant) -> Vec<(u16, [u8; 6], usize)> {
        let _ = now;
        Vec::new()
    }

    /// Its startup script, for a duplicate.
    fn script(&self) -> Option<&str> {
        None
    }

    /// Take what a node of its kind duplicates from `origin` (2.2's
    /// `duplicate`: a PC's startup script, a container's volumes).
    fn copy_from(&mut self, cx: &mut Ctx, origin: &Origin) -> Result<(), ApiError> {
        let _ = (cx, origin);
        Err(ApiError::NotFound(
            "This node type cannot be duplicated".into(),
        ))
    }
}
