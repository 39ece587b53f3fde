//! The application, sans-IO: projects, nodes, ports, links, reservations,
//! per-node request queues, pending operations with their deadlines, and
//! the events that notifications are made of.
//!
//! The lab decides everything and does nothing itself: it is driven by calls
//! that take `now` ([`Lab::handle`] for a client's command,
//! [`Lab::on_output`], [`Lab::on_exit`], [`Lab::on_frame`] for what the
//! world did, [`Lab::poll`] when the loop turns) and asks for effects through
//! the [`Host`] trait. No socket, no process, no clock, no logging: the
//! tests drive it with `fake::FakeHost` and a made-up `now`.

pub mod admission;
pub mod answer;
pub mod budget;
pub mod capture;
pub mod command;
mod compute;
pub mod console;
pub mod event;
#[cfg(any(test, fuzzing, feature = "fake"))]
#[doc(hidden)]
pub mod fake;
pub mod filters;
pub mod host;
pub mod id;
mod links;
pub mod node;
pub mod nodes;
pub mod ports;
pub mod project;
pub mod queue;
pub mod registry;
pub mod spec;
#[cfg(test)]
mod tests;
pub mod timers;
pub mod types;

pub use crate::lab::answer::{Answer, Body, LogLevel, Notice, ProjectView, Reply, VpcsView};
pub use event::Event;
pub(crate) use event::{port_label, what};
pub use host::{ClientId, Files, Host, Signal, Spawn, Spawned};
pub use node::{Endpoint, Nio, NioTap, NioUdp, Node, NodeKey, PortStats, State};

use crate::error::ApiError;
use crate::lab::command::{Command, NodeClass, NodeCommand, NodeCreate, NodeRef, Ticket};
use crate::limits::{
    MAX_EVENTS, MAX_NAME_BYTES, MAX_NODES_PER_PROJECT, MAX_PROJECTS, RESTORE_SLICE,
};
use node::{Job, Pending};
use ports::PortPool;
use project::{Project, TEMPORARY_MARKER};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use timers::Timers;
use uuid::Uuid;

/// What the lab needs to know of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The server runs beside its only user (GNS3's `local`).
    pub local: bool,
    /// Where projects live by default.
    pub projects_dir: PathBuf,
    /// The VPCS program, or `None` for `vpcs` on `PATH`.
    pub vpcs: Option<PathBuf>,
    /// Confine VPCS so that `!` cannot run host commands.
    pub console_sandbox: bool,
    /// UDP ports for tunnels (and VPCS's own).
    pub udp_ports: (u16, u16),
    /// TCP ports for consoles.
    pub console_ports: (u16, u16),
    /// The version string `/v2/compute` reports: the GNS3 controller's
    /// version, which it must equal, then `-nanolab.<ours>`.
    pub gns3_version: String,
    /// What runs new virtual PCs.
    pub pc_engine: PcEngine,
}

/// What runs a virtual PC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PcEngine {
    /// Debian's `vpcs` program, one process per PC.
    #[default]
    Vpcs,
    /// The built-in engine: no process, the PC lives in the lab.
    Builtin,
}

/// A deadline the lab set; each names the process it was set for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Deadline {
    /// SIGKILL the process if it ignored SIGTERM.
    Kill(NodeKey, u64),
    /// The process's console must have answered by now.
    StartTimeout(NodeKey, u64),
    /// Time for the notification channel's `ping`.
    Heartbeat,
    /// A built-in PC wants to be woken.
    Pc(NodeKey),
}

/// The outcome of running a command: an answer now, or later.
#[derive(Debug)]
pub enum Step {
    /// Answered.
    Done(Reply),
    /// Parked on the node; a later event answers it (or it was answered
    /// already and the node is gone).
    Parked,
}

/// The whole application state.
#[derive(Debug)]
pub struct Lab {
    settings: Settings,
    projects: HashMap<Uuid, Project>,
    registry: registry::Registry,
    udp_ports: PortPool,
    console_ports: PortPool,
    timers: Timers<Deadline>,
    /// Nodes waiting to be spawned, one per loop turn.
    spawns: VecDeque<NodeKey>,
    next_proc_serial: u64,
    events: VecDeque<Event>,
    shutdown: bool,
    /// Captures with records to write, live viewers to wake.
    sink: capture::Sink,
    /// Live capture viewers: where their capture is.
    viewers: HashMap<ClientId, (NodeKey, usize)>,
    /// Randomness for link filters and the frames they hold back.
    wire: Wire,
    /// Notification channel subscribers (GNS3 2.2's compute websocket).
    subscribers: usize,
    /// Built-in PC MACs handed out.
    builtin_macs: u32,
    /// Built-in PC output produced where no host was at hand (frames).
    pc_later: Vec<(NodeKey, nodes::pc::Out)>,
    /// Tunnels whose both ends are ours.
    links: links::Links,
    /// The upload whose archive is being restored, a slice per turn.
    restoring: Option<Ticket>,
    /// Frames the data plane may still handle this loop turn.
    frames_left: usize,
}

/// What link filters need across ports: a seeded generator (fixed, as
/// uBridge never seeds `random()`: runs repeat) and the delay queue.
#[derive(Debug)]
pub struct Wire {
    rng: filters::Rng,
    delayed: filters::DelayQueue<Held>,
}

impl Default for Wire {
    fn default() -> Self {
        Wire {
            rng: filters::Rng::new(0x9E37_79B9_7F4A_7C15),
            delayed: Default::default(),
        }
    }
}

/// A delayed frame's destination and the port that counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Held {
    to: Endpoint,
    port: (NodeKey, usize),
    outbound: bool,
}

fn no_project(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("Project ID {id} doesn't exist"))
}

impl Lab {
    /// An empty lab.
    pub fn new(settings: Settings) -> Self {
        Lab {
            udp_ports: PortPool::new("UDP", settings.udp_ports),
            console_ports: PortPool::new("console", settings.console_ports),
            settings,
            projects: HashMap::new(),
            registry: registry::Registry::default(),
            timers: Timers::new(),
            spawns: VecDeque::new(),
            next_proc_serial: 0,
            events: VecDeque::new(),
            shutdown: false,
            sink: capture::Sink::default(),
            viewers: HashMap::new(),
            wire: Wire::default(),
            subscribers: 0,
            builtin_macs: 0,
            pc_later: Vec::new(),
            links: links::Links::default(),
            restoring: None,
            frames_left: crate::limits::FRAMES_PER_TURN,
        }
    }

    // ---- entry points ------------------------------------------------------

    /// A client's command. The answer goes to `host.reply(ticket, ..)`, now
    /// or, for an operation that waits, later.
    pub fn handle(&mut self, now: Instant, ticket: Ticket, cmd: Command, host: &mut dyn Host) {
        let reply = match cmd {
            Command::Node(r, c) => return self.submit(now, ticket, r, c, host),
            Command::Version => Ok(Answer::Ok(Body::Version {
                local: self.settings.local,
            })),
            Command::CheckVersion(v) => self.check_version(&v),
            Command::Interfaces => host.interfaces().map(|n| Answer::Ok(Body::Interfaces(n))),
            Command::ReloadConfig => self.reload(host),
            Command::Shutdown => self.request_shutdown(),
            Command::CreateProject(b) => self.create_project(b, host),
            Command::GetProject(id) => self.project_view(id).map(Answer::Ok),
            Command::UpdateProject(id, b) => self.update_project(id, b, host),
            Command::CommitProject(id) => self.commit_project(id, host),
            Command::CloseProject(id) => self.forget_project(id, false, host),
            Command::DeleteProject(id) => self.forget_project(id, true, host),
            Command::AllocateUdp(id) => self.allocate_udp(id, host),
            Command::CreateNode(p, NodeCreate::Vpcs(b)) => self.create_vpcs(p, b, host),
            Command::CreateNode(p, NodeCreate::Device(b)) => self.create_device(p, b),
            Command::Status => Ok(Answer::Ok(Body::Status(self.status(now)))),
            Command::UploadForm => Ok(Answer::Ok(Body::Empty)),
            Command::RestoreProjects(archive) => match self.restore_begin(ticket, archive, host) {
                Ok(()) => return,
                Err(e) => Err(e),
            },
            Command::BackupProjects => {
                Ok(Answer::Ok(Body::Backup(self.settings.projects_dir.clone())))
            }
            Command::Capabilities => Ok(Answer::Ok(Body::Capabilities(
                self.settings.gns3_version.clone(),
            ))),
            Command::Statistics => self.statistics(host),
            Command::PortUse => self.port_use(),
            Command::InterfaceDetails => host
                .interface_details()
                .map(|i| Answer::Ok(Body::InterfaceDetails(i))),
            Command::Notifications => self.subscribe(now, host),
            Command::ListFiles(id) => self.list_files(id, host),
            Command::ReadFile(id, rel) => self.read_project_file(id, &rel, host),
            Command::WriteFile(id, rel, data) => self.write_project_file(id, &rel, &data, host),
        };
        host.reply(ticket, reply);
    }

    /// The loop turned: fire the deadlines that are due, then start one
    /// queued spawn (spawning blocks for a moment, so one per turn).
    pub fn poll(&mut self, now: Instant, host: &mut dyn Host) {
        self.restore_step(host);
        self.flush_builtin(now, host);
        while let Some(d) = self.timers.pop_expired(now) {
            self.on_deadline(now, d, host);
        }
        self.spawn_next(now, host);
        self.flush_captures(host);
    }

    /// A new loop turn: the data plane's frame budget is whole again.
    pub fn begin_turn(&mut self) {
        self.frames_left = crate::limits::FRAMES_PER_TURN;
    }

    /// Whether the data plane may handle more frames this turn.
    pub fn frames_left(&self) -> bool {
        self.frames_left > 0
    }

    /// How long the loop may sleep before [`Lab::poll`] has work.
    pub fn timeout(&self, now: Instant) -> Option<Duration> {
        if !self.spawns.is_empty() || self.restoring.is_some() {
            return Some(Duration::ZERO);
        }
        let held = self
            .wire
            .delayed
            .next_due()
            .map(|t| t.saturating_duration_since(now));
        match (self.timers.timeout(now), held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Send the frames delay filters held back that are due by `now`.
    pub fn release_frames(&mut self, now: Instant, send: &mut dyn FnMut(Endpoint, &[u8]) -> bool) {
        while let Some(d) = self.wire.delayed.pop_due(now) {
            if let Endpoint::Node(key) = d.to.to
                && self.builtin_frame(now, key, &d.frame, send)
            {
                continue;
            }
            let sent = match self.links.peer(&d.to.to) {
                Some(peer) => {
                    self.on_frame(now, peer, &d.frame, send);
                    true
                }
                None => send(d.to.to, &d.frame),
            };
            let (key, index) = d.to.port;
            let Some(port) = self
                .registry
                .get_mut(key)
                .and_then(|n| n.ports.get_mut(index))
            else {
                continue;
            };
            count(&mut port.stats, sent, d.to.outbound, d.frame.len());
        }
    }

    /// A frame arrived from `from`; `send` delivers it and says whether it
    /// could. A VPCS relays between its process and its NIO; a switch
    /// decides by its MAC table and port modes; a hub repeats. Counted per
    /// port; a frame with nowhere to go is dropped, as on a wire.
    pub fn on_frame(
        &mut self,
        now: Instant,
        from: Endpoint,
        frame: &[u8],
        send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
    ) {
        self.frames_left = self.frames_left.saturating_sub(1);
        if self.links.is_empty() {
            self.route_frame(now, from, frame, send);
        } else {
            self.route_local(now, from, frame, send);
        }
    }

    /// [`Lab::on_frame`] for one frame, local tunnels aside.
    #[inline]
    pub(crate) fn route_frame(
        &mut self,
        now: Instant,
        from: Endpoint,
        frame: &[u8],
        send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
    ) {
        let (key, index, outbound) = match from {
            Endpoint::Node(key) => (key, 0, true),
            Endpoint::Nio(key, index) => (key, index, false),
        };
        let Some(node) = self.registry.get_mut(key) else {
            return;
        };
        let dirty = &mut self.sink;
        let wire = &mut self.wire;
        if !matches!(node.kind, node::Kind::Vpcs(_)) {
            return nodes::device::switch_frame(node, dirty, wire, now, index, frame, send);
        }
        let running = node.running();
        let builtin = node.vpcs().is_some_and(|v| v.builtin.is_some());
        let Some(port) = node.ports.get_mut(index) else {
            return;
        };
        let to = match (outbound, port.nio.is_some()) {
            (true, true) => Some(Endpoint::Nio(key, index)),
            (false, _) if running => Some(Endpoint::Node(key)),
            _ => None,
        };
        let at = (key, index);
        if builtin {
            return self.builtin_port_frame(now, at, (outbound, to), frame, send);
        }
        if port.filters.is_some() {
            return filtered_frame(wire, dirty, at, port, now, (outbound, to), frame, send);
        }
        plain_frame(dirty, at, port, now, (outbound, to), frame, send);
    }

    /// A frame through the port of a built-in PC: what goes to the PC is
    /// handed to it once the port is let go. Apart from the plain path,
    /// which it would otherwise slow down.
    #[cold]
    #[inline(never)]
    fn builtin_port_frame(
        &mut self,
        now: Instant,
        at: (NodeKey, usize),
        (outbound, to): (bool, Option<Endpoint>),
        frame: &[u8],
        send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
    ) {
        let key = at.0;
        let (wire, dirty) = (&mut self.wire, &mut self.sink);
        let Some(port) = self
            .registry
            .get_mut(key)
            .and_then(|n| n.ports.get_mut(at.1))
        else {
            return;
        };
        let mut to_pc: Vec<Vec<u8>> = Vec::new();
        let mut deliver = |to: Endpoint, f: &[u8]| {
            if to == Endpoint::Node(key) {
                to_pc.push(f.to_vec());
                true
            } else {
                send(to, f)
            }
        };
        if port.filters.is_some() {
            filtered_frame(
                wire,
                dirty,
                at,
                port,
                now,
                (outbound, to),
                frame,
                &mut deliver,
            );
        } else {
            plain_frame(dirty, at, port, now, (outbound, to), frame, &mut deliver);
        }
        for f in to_pc {
            self.builtin_frame(now, key, &f, send);
        }
    }

    /// Stop everything: kill every process, close every project (temporary
    /// ones are deleted). Nothing is left running.
    pub fn shutdown(&mut self, host: &mut dyn Host) {
        let keys: Vec<NodeKey> = self.registry.iter().map(|n| n.key).collect();
        // Kill them all first so that they die in parallel.
        for &key in &keys {
            if self.node(key).is_some_and(|n| n.running()) {
                host.signal(key, Signal::Kill);
            }
        }
        let ids: Vec<Uuid> = self.projects.keys().copied().collect();
        for id in ids {
            if let Err(e) = self.forget_project(id, false, host) {
                self.emit(Event::Warning {
                    node: None,
                    text: format!("closing project {id}: {e}"),
                });
            }
        }
        self.shutdown = true;
    }

    /// Whether a client asked the server to stop.
    pub fn shutdown_requested(&self) -> bool {
        self.shutdown
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ---- nodes -------------------------------------------------------------

    /// The node under `key`, if it is still the node the key was made for.
    /// Every lookup by key goes through here (or [`Lab::node_mut`]).
    pub fn node(&self, key: NodeKey) -> Option<&Node> {
        self.registry.get(key)
    }

    /// Mutable [`Lab::node`].
    pub fn node_mut(&mut self, key: NodeKey) -> Option<&mut Node> {
        self.registry.get_mut(key)
    }

    /// [`Lab::node`] for an operation already under way on the node: its
    /// absence is a bug, answered as one.
    fn live(&self, key: NodeKey) -> Result<&Node, ApiError> {
        self.node(key)
            .ok_or_else(|| ApiError::Internal("the node went away during its own operation".into()))
    }

    /// Mutable [`Lab::live`].
    fn live_mut(&mut self, key: NodeKey) -> Result<&mut Node, ApiError> {
        self.node_mut(key)
            .ok_or_else(|| ApiError::Internal("the node went away during its own operation".into()))
    }

    /// The key of node `id`.
    pub fn key_of(&self, id: Uuid) -> Option<NodeKey> {
        self.registry.key_of(id)
    }

    /// Every node, in no particular order.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.registry.iter()
    }

    /// The key the next inserted node will have.
    fn vacant_key(&self) -> NodeKey {
        self.registry.vacant_key()
    }

    fn insert_node(&mut self, node: Node) {
        self.registry.insert(node);
    }

    fn take_node(&mut self, key: NodeKey) -> Option<Node> {
        self.registry.take(key)
    }

    fn find_node(&self, r: &NodeRef) -> Result<NodeKey, ApiError> {
        self.project(r.project)?;
        let is_device = |n: &Node| !matches!(n.kind, node::Kind::Vpcs(_));
        match self.registry.key_of(r.node) {
            Some(key)
                if self.node(key).is_some_and(|n| {
                    n.project == r.project && is_device(n) == (r.class == NodeClass::Device)
                }) =>
            {
                Ok(key)
            }
            _ => Err(ApiError::NotFound(match r.class {
                NodeClass::Vpcs => {
                    format!(
                        "VPCS VM ID {} doesn't exist in project {}",
                        r.node, r.project
                    )
                }
                NodeClass::Device => {
                    format!(
                        "Device ID {} doesn't exist in project {}",
                        r.node, r.project
                    )
                }
            })),
        }
    }

    /// Queue a node command; it runs at once if the node is idle.
    fn submit(
        &mut self,
        now: Instant,
        ticket: Ticket,
        r: NodeRef,
        command: NodeCommand,
        host: &mut dyn Host,
    ) {
        let key = match self.find_node(&r) {
            Ok(k) => k,
            Err(e) => return host.reply(ticket, Err(e)),
        };
        let Some(node) = self.node_mut(key) else {
            return;
        };
        if let Some(job) = node.queue.submit(Job { ticket, command }) {
            self.run_jobs(now, key, job, host);
        }
    }

    /// Run `job` and whatever waits behind it, until one parks.
    fn run_jobs(&mut self, now: Instant, key: NodeKey, job: Job, host: &mut dyn Host) {
        let mut next = Some(job);
        while let Some(job) = next.take() {
            match self.exec_node(now, key, job.ticket, job.command, host) {
                Step::Parked => return,
                Step::Done(reply) => {
                    host.reply(job.ticket, reply);
                    next = self.node_mut(key).and_then(|n| n.queue.finish());
                }
            }
        }
    }

    /// A parked operation finished: answer it and serve the node's next request.
    fn finish_parked(
        &mut self,
        now: Instant,
        key: NodeKey,
        ticket: Ticket,
        reply: Reply,
        host: &mut dyn Host,
    ) {
        host.reply(ticket, reply);
        if let Some(next) = self.node_mut(key).and_then(|n| n.queue.finish()) {
            self.run_jobs(now, key, next, host);
        }
    }

    fn emit(&mut self, e: Event) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    // ---- server --------------------------------------------------------------

    fn check_version(&self, version: &str) -> Reply {
        if version != crate::lab::command::API_VERSION {
            return Err(ApiError::conflict(format!(
                "Client version {version} differs with server version {}",
                crate::lab::command::API_VERSION
            )));
        }
        Ok(Answer::Ok(Body::Version {
            local: self.settings.local,
        }))
    }

    fn require_local(&self, what: &str) -> Result<(), ApiError> {
        if self.settings.local {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "{what} is only allowed on a server started with --local"
            )))
        }
    }

    /// Begin restoring a projects archive; the answer goes out once it is
    /// restored whole, a slice per loop turn (so that others are served
    /// meanwhile).
    fn restore_begin(
        &mut self,
        ticket: Ticket,
        archive: Vec<u8>,
        host: &mut dyn Host,
    ) -> Result<(), ApiError> {
        if self.restoring.is_some() {
            return Err(ApiError::conflict(
                "Another archive is being restored: send this one when it is done",
            ));
        }
        host.files()
            .restore_begin(&self.settings.projects_dir, archive)?;
        self.restoring = Some(ticket);
        Ok(())
    }

    /// One slice of the restore in progress; answer it once done.
    fn restore_step(&mut self, host: &mut dyn Host) {
        if self.restoring.is_none() {
            return;
        }
        if let Some(done) = host.files().restore_step(RESTORE_SLICE)
            && let Some(ticket) = self.restoring.take()
        {
            host.reply(ticket, done.map(|n| Answer::Created(Body::Restored(n))));
        }
    }

    /// Room for one more node in `project` ([`MAX_NODES_PER_PROJECT`]).
    pub(crate) fn room_for_node(&self, project: Uuid) -> Result<(), ApiError> {
        if self.project(project)?.nodes.len() >= MAX_NODES_PER_PROJECT {
            return Err(ApiError::bad(format!(
                "Project {project} holds {MAX_NODES_PER_PROJECT} nodes, the most one project may"
            )));
        }
        Ok(())
    }

    /// A project path a `--local` client chose: absolute, and neither `/`
    /// nor the projects directory or one of its ancestors (deleting the
    /// project would take them with it).
    fn local_path(&self, what: &str, path: &Path) -> Result<(), ApiError> {
        self.require_local(what)?;
        let projects = &self.settings.projects_dir;
        let normal = path.components().all(|c| {
            matches!(
                c,
                std::path::Component::RootDir | std::path::Component::Normal(_)
            )
        });
        if !path.is_absolute() || !normal {
            return Err(ApiError::bad(format!(
                "Project path '{}' must be absolute, without '.' or '..'",
                path.display()
            )));
        }
        if path.parent().is_none() || projects.starts_with(path) {
            return Err(ApiError::bad(format!(
                "Project path '{}' would hold the projects directory {}: choose a directory of its own",
                path.display(),
                projects.display()
            )));
        }
        Ok(())
    }

    fn reload(&mut self, host: &mut dyn Host) -> Reply {
        self.require_local("Reloading the configuration")?;
        let fresh = host.reload_settings()?;
        self.udp_ports.set_range(fresh.udp_ports);
        self.console_ports.set_range(fresh.console_ports);
        self.settings.vpcs = fresh.vpcs;
        self.settings.console_sandbox = fresh.console_sandbox;
        Ok(Answer::Created(Body::Empty))
    }

    fn request_shutdown(&mut self) -> Reply {
        self.require_local("Shutting the server down")?;
        self.shutdown = true;
        self.emit(Event::ShutdownAsked);
        Ok(Answer::Created(Body::Empty))
    }

    // ---- projects ------------------------------------------------------------

    fn project(&self, id: Uuid) -> Result<&Project, ApiError> {
        self.projects.get(&id).ok_or_else(|| no_project(id))
    }

    fn project_view(&self, id: Uuid) -> Result<Body, ApiError> {
        let p = self.project(id)?;
        Ok(Body::Project(ProjectView {
            id: p.id,
            name: p.name.clone(),
            path: p.path.clone(),
            location: self.settings.projects_dir.clone(),
            temporary: p.temporary,
            variables: p.variables.clone(),
        }))
    }

    fn create_project(&mut self, b: crate::lab::spec::ProjectCreate, host: &mut dyn Host) -> Reply {
        if let Some(id) = b.project_id.filter(|id| self.projects.contains_key(id)) {
            if let (Some(p), Some(v)) = (self.projects.get_mut(&id), b.variables) {
                p.variables = Some(v);
            }
            return self.project_view(id).map(Answer::Created);
        }
        check_name(b.name.as_deref())?;
        if self.projects.len() >= MAX_PROJECTS {
            return Err(ApiError::bad(format!(
                "{MAX_PROJECTS} projects are open, the most this server holds: close one first"
            )));
        }
        let id = b.project_id.unwrap_or_else(Uuid::new_v4);
        let default = self.settings.projects_dir.join(id.to_string());
        let (path, chosen) = match b.path.map(PathBuf::from) {
            Some(p) if p != default => {
                self.local_path("Choosing a project path", &p)?;
                (p, true)
            }
            _ => (default, false),
        };
        // A directory that was there before is not nanolab's to delete.
        host.files().add_root(&path);
        let owns_dir = !chosen || !host.files().exists(&path);
        host.files().create_dir(&path)?;
        let mut project = Project::new(id, b.name, path, b.temporary.unwrap_or(false));
        project.owns_dir = owns_dir;
        project.variables = b.variables;
        set_marker(&project, host)?;
        self.emit(Event::ProjectOpened {
            project: id,
            path: project.path.clone(),
        });
        self.projects.insert(id, project);
        self.project_view(id).map(Answer::Created)
    }

    fn update_project(
        &mut self,
        id: Uuid,
        b: crate::lab::spec::ProjectUpdate,
        host: &mut dyn Host,
    ) -> Reply {
        check_name(b.name.as_deref())?;
        if let (Some(p), Some(v)) = (self.projects.get_mut(&id), b.variables.clone()) {
            p.variables = Some(v);
        }
        let p = self.project(id)?;
        let new_path = b.path.map(PathBuf::from).filter(|to| *to != p.path);
        if let Some(to) = &new_path {
            self.local_path("Changing a project path", to)?;
            let running = p.nodes.iter().any(|n| {
                self.registry
                    .key_of(*n)
                    .and_then(|k| self.node(k))
                    .is_some_and(|n| n.running())
            });
            if running {
                return Err(ApiError::conflict(
                    "Stop the project's VMs before changing its path",
                ));
            }
        }
        // Re-point, as 1.3.13 does: the GUI's "Save as" has already copied
        // (or moved) the files there. The old directory goes only when the
        // project was temporary.
        if let Some(to) = new_path {
            let from = p.path.clone();
            let was_temporary = p.temporary;
            let owned_before = p.owns_dir;
            host.files().add_root(&to);
            let owns_dir = !host.files().exists(&to);
            host.files().create_dir(&to)?;
            let p = self.projects.get_mut(&id).ok_or_else(|| no_project(id))?;
            p.path = to.clone();
            p.owns_dir = owns_dir;
            for d in &mut p.deleted_node_dirs {
                if let Ok(rest) = d.strip_prefix(&from) {
                    *d = to.join(rest);
                }
            }
            for node_id in p.nodes.clone() {
                let dir = nodes::vpcs::node_dir(&to, node_id);
                let key = self.registry.key_of(node_id);
                if let Some(v) = key
                    .and_then(|k| self.node_mut(k))
                    .and_then(|n| n.vpcs_mut())
                {
                    v.dir = dir;
                }
            }
            if was_temporary
                && owned_before
                && let Err(e) = host.files().remove_dir(&from)
            {
                self.emit(Event::Warning {
                    node: None,
                    text: format!("project {id}: old temporary directory left: {e}"),
                });
            }
            host.files().drop_root(&from);
            self.emit(Event::ProjectMoved {
                project: id,
                from,
                to,
            });
        }
        let p = self.projects.get_mut(&id).ok_or_else(|| no_project(id))?;
        if let Some(name) = b.name {
            p.name = Some(name);
        }
        if let Some(t) = b.temporary {
            p.temporary = t;
            set_marker(p, host)?;
        }
        self.project_view(id).map(Answer::Ok)
    }

    fn commit_project(&mut self, id: Uuid, host: &mut dyn Host) -> Reply {
        let p = self.projects.get_mut(&id).ok_or_else(|| no_project(id))?;
        while let Some(dir) = p.deleted_node_dirs.pop() {
            if let Err(e) = host.files().remove_dir(&dir) {
                p.deleted_node_dirs.push(dir);
                return Err(e);
            }
        }
        Ok(Answer::NoContent)
    }

    /// Stop and forget every node of the project, free its ports, and
    /// remove its directory when asked or when it is temporary.
    fn forget_project(&mut self, id: Uuid, delete_dir: bool, host: &mut dyn Host) -> Reply {
        let p = self.project(id)?;
        let node_dirs: Vec<PathBuf> = p.nodes.iter().map(|&n| p.node_dir(n)).collect();
        let keys: Vec<NodeKey> = p
            .nodes
            .iter()
            .filter_map(|&n| self.registry.key_of(n))
            .collect();
        // Kill them all first so that they die in parallel; each reap below
        // then finds its process (nearly) gone instead of waiting in turn.
        for &key in &keys {
            if self.node(key).is_some_and(|n| n.running()) {
                host.signal(key, Signal::Kill);
            }
        }
        for key in keys {
            self.remove_node(key, host);
        }
        self.udp_ports.release_owner(id);
        let p = self.projects.remove(&id).ok_or_else(|| no_project(id))?;
        self.emit(Event::ProjectClosed { project: id });
        if delete_dir || p.temporary {
            self.remove_project_dir(&p, &node_dirs, host)?;
        }
        host.files().drop_root(&p.path);
        Ok(Answer::NoContent)
    }

    /// Remove a project's directory, or, when nanolab did not create it
    /// (a `--local` path that was already there), only what nanolab wrote
    /// in it: its nodes' directories and the temporary marker.
    fn remove_project_dir(
        &mut self,
        p: &Project,
        node_dirs: &[PathBuf],
        host: &mut dyn Host,
    ) -> Result<(), ApiError> {
        if p.owns_dir {
            return host.files().remove_dir(&p.path);
        }
        for dir in node_dirs.iter().chain(&p.deleted_node_dirs) {
            host.files().remove_dir(dir)?;
        }
        host.files().remove_file(&p.path.join(TEMPORARY_MARKER));
        self.emit(Event::Warning {
            node: None,
            text: format!(
                "project {}: {} was there before nanolab used it; only its nodes' directories were removed",
                p.id,
                p.path.display()
            ),
        });
        Ok(())
    }

    fn allocate_udp(&mut self, id: Uuid, host: &mut dyn Host) -> Reply {
        self.project(id)?;
        let (port, ()) = self
            .udp_ports
            .reserve_lowest(id, |p| host.udp_free(p).then_some(()))?;
        Ok(Answer::Created(Body::UdpPort(port)))
    }

    /// The whole lab, projects by name, nodes by name.
    fn status(&self, now: Instant) -> crate::lab::answer::StatusView {
        let mut projects: Vec<_> = self
            .projects
            .values()
            .filter_map(|p| {
                let Ok(Body::Project(view)) = self.project_view(p.id) else {
                    return None;
                };
                let mut nodes: Vec<_> = p
                    .nodes
                    .iter()
                    .filter_map(|id| self.key_of(*id).and_then(|k| self.node(k)))
                    .map(|n| node_status(n, now))
                    .collect();
                nodes.sort_by(|a, b| a.name.cmp(&b.name));
                Some((view, nodes))
            })
            .collect();
        projects.sort_by(|a, b| (&a.0.name, a.0.id).cmp(&(&b.0.name, b.0.id)));
        crate::lab::answer::StatusView {
            local: self.settings.local,
            projects,
        }
    }

    // ---- invariants ----------------------------------------------------------

    /// Check that every structure agrees with every other: each node is
    /// indexed and in its project, holds its console port, MAC and tunnel
    /// ports; no port is reserved by nobody; each node is in one coherent
    /// state. Used by the tests and the fuzz target after every step.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.registry.check()?;
        let mut udp_expected: HashMap<u16, Uuid> = HashMap::new();
        let mut macs: HashMap<Uuid, Vec<u8>> = HashMap::new();
        for node in self.nodes() {
            let p = self
                .projects
                .get(&node.project)
                .ok_or(format!("node {} without project", node.id))?;
            if !p.nodes.contains(&node.id) {
                return Err(format!("project does not list node {}", node.id));
            }
            if let Some(console) = node.console_port {
                let owner = self
                    .console_ports
                    .reservations()
                    .find(|(port, _)| *port == console);
                if owner.map(|(_, o)| o) != Some(node.id) {
                    return Err(format!(
                        "console port {console} of {} not reserved by it",
                        node.id
                    ));
                }
            }
            if let Some(v) = node.vpcs() {
                // A built-in PC's MAC is host-wide, not the project's.
                if v.builtin.is_none() {
                    macs.entry(node.project).or_default().push(v.mac);
                }
            }
            for port in &node.ports {
                if let Some(lport) = port.nio.as_ref().and_then(Nio::udp_port) {
                    udp_expected.insert(lport, node.project);
                }
            }
            if let Some(p) = node.proc() {
                udp_expected.insert(p.vpcs_port, node.id);
                if let Some(r) = nodes::vpcs::relay_port(p.vpcs_port) {
                    udp_expected.insert(r, node.id);
                }
            }
            match (node.pending, node.proc()) {
                (Some(Pending::Stop(..)), None) => {
                    return Err(format!("{} stopping without a process", node.id));
                }
                (Some(Pending::Start(_)), Some(p)) if p.ready => {
                    return Err(format!("{} ready but its start is still pending", node.id));
                }
                _ => {}
            }
            if node.pending.is_some() && !node.queue.is_busy() {
                return Err(format!(
                    "{} has a parked operation but an idle queue",
                    node.id
                ));
            }
        }
        for (port, owner) in self.console_ports.reservations() {
            if !self.registry.contains(&owner) {
                return Err(format!("console port {port} reserved by nobody ({owner})"));
            }
        }
        for (port, owner) in self.udp_ports.reservations() {
            let running = self
                .key_of(owner)
                .and_then(|k| self.node(k))
                .is_some_and(|n| n.running());
            if !self.projects.contains_key(&owner) && !running {
                return Err(format!("UDP port {port} reserved by nobody ({owner})"));
            }
        }
        for (port, owner) in udp_expected {
            if !self
                .udp_ports
                .reservations()
                .any(|(p, o)| p == port && o == owner)
            {
                return Err(format!(
                    "UDP port {port} in use but not reserved by its user"
                ));
            }
        }
        for (id, p) in &self.projects {
            let mut used = macs.remove(id).unwrap_or_default();
            used.sort_unstable();
            if used.windows(2).any(|w| w[0] == w[1]) {
                return Err(format!("project {id} gave a MAC twice"));
            }
            if p.macs_taken() != used.len() {
                return Err(format!(
                    "project {id}: {} MACs taken, {} used",
                    p.macs_taken(),
                    used.len()
                ));
            }
            if p.nodes.iter().any(|n| !self.registry.contains(n)) {
                return Err(format!("project {id} lists a node that is gone"));
            }
        }
        Ok(())
    }
}

/// A frame with nowhere to go (no NIO, or the PC is stopped): an incoming
/// one is still captured, as on a wire; counted as dropped.
fn unlinked(
    dirty: &mut capture::Sink,
    (key, index): (NodeKey, usize),
    port: &mut node::Port,
    now: Instant,
    outbound: bool,
    frame: &[u8],
) {
    if !outbound {
        capture::record(dirty, key, index, &mut port.capture, now, frame);
    }
    port.stats.drop_unlinked();
}

/// A frame through a VPCS port without filters: capture, send, count.
#[inline]
fn plain_frame(
    dirty: &mut capture::Sink,
    (key, index): (NodeKey, usize),
    port: &mut node::Port,
    now: Instant,
    (outbound, to): (bool, Option<Endpoint>),
    frame: &[u8],
    send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
) {
    let Some(to) = to else {
        return unlinked(dirty, (key, index), port, now, outbound, frame);
    };
    if !outbound {
        capture::record(dirty, key, index, &mut port.capture, now, frame);
    }
    let sent = send(to, frame);
    count(&mut port.stats, sent, outbound, frame.len());
    if sent && outbound {
        capture::record(dirty, key, index, &mut port.capture, now, frame);
    }
}

/// A frame through a VPCS port that has filters: filter, capture, then
/// send now or hold until due. Apart from the plain path so that a port
/// without filters pays one branch.
#[cold]
#[allow(clippy::too_many_arguments)]
fn filtered_frame(
    wire: &mut Wire,
    dirty: &mut capture::Sink,
    (key, index): (NodeKey, usize),
    port: &mut node::Port,
    now: Instant,
    (outbound, to): (bool, Option<Endpoint>),
    frame: &[u8],
    send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
) {
    let Some((frame, due)) = filter(wire, port, now, outbound, frame) else {
        return;
    };
    let frame = &frame[..];
    let Some(to) = to else {
        return unlinked(dirty, (key, index), port, now, outbound, frame);
    };
    if let Some(due) = due {
        let at = (key, index);
        return hold(wire, dirty, at, port, (now, due), to, outbound, frame);
    }
    capture::record(dirty, key, index, &mut port.capture, now, frame);
    let sent = send(to, frame);
    count(&mut port.stats, sent, outbound, frame.len());
}

/// Run a port's filters on a frame: `None` when dropped (and counted),
/// otherwise the frame (a copy when corrupted) and when it may go, if it
/// is held back.
#[inline]
pub(crate) fn filter<'f>(
    wire: &mut Wire,
    port: &mut node::Port,
    now: Instant,
    outbound: bool,
    frame: &'f [u8],
) -> Option<(std::borrow::Cow<'f, [u8]>, Option<Instant>)> {
    use filters::Verdict;
    use std::borrow::Cow;
    let Some(f) = port.filters.as_deref_mut() else {
        return Some((Cow::Borrowed(frame), None));
    };
    match f.apply(now, outbound, frame, &mut wire.rng) {
        Verdict::Pass => Some((Cow::Borrowed(frame), None)),
        Verdict::Corrupted(c) => Some((Cow::Owned(c), None)),
        Verdict::Delay(due, c) => Some((c.map_or(Cow::Borrowed(frame), Cow::Owned), Some(due))),
        Verdict::Drop => {
            port.stats.drop_filtered();
            None
        }
    }
}

/// Capture a frame a delay filter holds back, then queue it until `due`
/// (as uBridge: filters, then capture, then the delay).
#[allow(clippy::too_many_arguments)]
pub(crate) fn hold(
    wire: &mut Wire,
    dirty: &mut capture::Sink,
    (key, index): (NodeKey, usize),
    port: &mut node::Port,
    (now, due): (Instant, Instant),
    to: Endpoint,
    outbound: bool,
    frame: &[u8],
) {
    capture::record(dirty, key, index, &mut port.capture, now, frame);
    let held = Held {
        to,
        port: (key, index),
        outbound,
    };
    if !wire.delayed.push(due, held, frame.to_vec()) {
        port.stats.drop_filtered();
    }
}

/// Count a frame that crossed a port (or could not).
#[inline]
pub(crate) fn count(s: &mut PortStats, sent: bool, outbound: bool, len: usize) {
    let n = len as u64;
    match (sent, outbound) {
        (false, _) => s.drop_send(),
        (true, true) => {
            s.out_frames += 1;
            s.out_bytes += n;
        }
        (true, false) => {
            s.in_frames += 1;
            s.in_bytes += n;
        }
    }
}

fn node_status(n: &Node, now: Instant) -> crate::lab::answer::NodeStatus {
    crate::lab::answer::NodeStatus {
        id: n.id,
        name: n.name.clone(),
        kind: n.kind_name(),
        macs: match &n.kind {
            node::Kind::Switch(sw) => sw
                .table
                .entries(now)
                .into_iter()
                .map(|(vlan, mac, i)| (vlan, mac, n.ports.get(i).map_or(0, |p| p.number)))
                .collect(),
            _ => Vec::new(),
        },
        state: match n.state() {
            State::Stopped => "stopped",
            State::Starting => "starting",
            State::Started => "started",
            State::Stopping => "stopping",
        },
        console: n.console_port,
        clients: n.console.clients.len(),
        ports: n
            .ports
            .iter()
            .map(|p| (p.adapter, p.number, p.nio.clone(), p.stats))
            .collect(),
    }
}

/// A name a client gave a project or a node: at most [`MAX_NAME_BYTES`].
pub(crate) fn check_name(name: Option<&str>) -> Result<(), ApiError> {
    match name {
        Some(n) if n.len() > MAX_NAME_BYTES => Err(ApiError::bad(format!(
            "A name of {} bytes is longer than the limit of {MAX_NAME_BYTES}",
            n.len()
        ))),
        _ => Ok(()),
    }
}

fn set_marker(p: &Project, host: &mut dyn Host) -> Result<(), ApiError> {
    let marker = p.path.join(TEMPORARY_MARKER);
    if p.temporary {
        host.files().write_file(&marker, b"")
    } else {
        host.files().remove_file(&marker);
        Ok(())
    }
}
