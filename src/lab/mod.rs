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
//!
//! This file is the orchestration: which part does what, in what order.
//! The parts know ids, not the lab: each node's kind behind its face
//! ([`kinds`], lent a [`kinds::Ctx`]), ports and their frame path
//! ([`port`]), the data plane ([`plane`]), consoles, captures, projects,
//! the registry and the pools.

pub mod admission;
pub mod answer;
pub mod budget;
pub mod capture;
pub mod command;
pub mod console;
pub mod engine;
pub mod event;
#[cfg(any(test, fuzzing, feature = "fake"))]
#[doc(hidden)]
pub mod fake;
pub mod filters;
pub mod host;
pub mod id;
pub mod images;
mod invariants;
pub mod kinds;
pub mod links;
pub mod node;
pub mod nodes;
pub mod plane;
pub mod port;
pub mod ports;
pub mod project;
pub mod projects;
pub mod queue;
pub mod registry;
pub mod settings;
pub mod sim;
pub mod spec;
#[cfg(test)]
mod tests;
pub mod timers;
pub mod topology;
pub mod traffic;
pub mod types;
pub mod vlan;
pub mod wiring;
pub mod world;

pub use crate::lab::answer::{Answer, Body, LogLevel, Notice, ProjectView, Reply, VpcsView};
pub use event::Event;
pub use host::{ClientId, Files, Host, Signal, Spawn, Spawned};
pub use kinds::State;
pub use node::{Endpoint, Nio, NioTap, NioUdp, Node, NodeKey, PortStats};
pub use settings::{PcEngine, QemuAccel, Settings};
pub use timers::Deadline;

use crate::error::ApiError;
use crate::lab::command::{Command, NodeClass, NodeCreate, NodeRef, Ticket};
use crate::lab::spec::{DeviceCreate, VmCreate};
use crate::limits::{MAX_NODES_PER_PROJECT, MAX_PROJECT_FILE, MAX_PROJECT_FILES, MAX_PROJECTS};
use kinds::kind::Kind;
use nodes::Nodes;
use port::Port;
use project::Project;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use uuid::Uuid;
use world::World;

/// The whole application state.
#[derive(Debug)]
pub struct Lab {
    /// Every node and what node operations share.
    nodes: Nodes,
    /// The open projects.
    projects: projects::Projects,
    /// Image lists being made.
    images: images::Images,
    /// Rates of the linked ports, and their recent history.
    traffic: traffic::Traffic,
    shutdown: bool,
}

impl Lab {
    /// An empty lab.
    pub fn new(settings: Settings) -> Self {
        Lab {
            nodes: Nodes::new(World::new(settings)),
            projects: projects::Projects::default(),
            images: images::Images::default(),
            traffic: traffic::Traffic::default(),
            shutdown: false,
        }
    }

    // ---- entry points ------------------------------------------------------

    /// A client's command. The answer goes to `host.reply(ticket, ..)`, now
    /// or, for an operation that waits, later.
    pub fn handle(&mut self, now: Instant, ticket: Ticket, cmd: Command, host: &mut dyn Host) {
        let reply = match cmd {
            Command::Node(r, c) => match self.find_node(&r) {
                Ok(key) => return self.settle(|n| n.submit(now, ticket, key, c, host)),
                Err(e) => Err(e),
            },
            Command::Version => Ok(Answer::Ok(Body::Version {
                local: self.nodes.world.settings.local,
            })),
            Command::CheckVersion(v) => self.check_version(&v),
            Command::Interfaces => host.interfaces().map(|n| Answer::Ok(Body::Interfaces(n))),
            Command::ReloadConfig => self.nodes.world.reload(host),
            Command::Shutdown => self.request_shutdown(),
            Command::CreateProject(b) => self.create_project(b, host),
            Command::GetProject(id) => self.project_view(id).map(Answer::Ok),
            Command::ListProjects => {
                let settings = &self.nodes.world.settings;
                let mut list: Vec<ProjectView> = self
                    .projects
                    .iter()
                    .filter_map(|p| self.projects.view(p.id, settings).ok())
                    .collect();
                list.sort_by_key(|p| p.id);
                Ok(Answer::Ok(Body::Projects(list)))
            }
            Command::UpdateProject(id, b) => self.update_project(id, b, host),
            Command::CommitProject(id) => self.projects.commit(id, host),
            Command::CloseProject(id) => self.forget_project(now, id, false, host),
            Command::DeleteProject(id) => self.forget_project(now, id, true, host),
            Command::AllocateUdp(id) => self.allocate_udp(id, host),
            Command::CreateNode(p, NodeCreate::Vpcs(b)) => self.create_pc(p, b, host),
            Command::CreateNode(p, NodeCreate::Device(b)) => self.create_device(p, b),
            Command::CreateNode(p, NodeCreate::Cloud(b)) => self.create_cloud(p, b, host),
            Command::CreateNode(p, NodeCreate::Qemu(b)) => self.create_qemu(p, b, host),
            Command::CreateNode(p, NodeCreate::Docker(b)) => {
                match self.create_docker(now, ticket, p, *b, host) {
                    Ok(None) => return,
                    Ok(Some(answer)) => Ok(answer),
                    Err(e) => Err(e),
                }
            }
            Command::DockerImages => match self.nodes.world.engine.images(ticket, host) {
                Ok(()) => return,
                Err(e) => Err(e),
            },
            Command::Status(only) => self
                .status(now, only, host)
                .map(|s| Answer::Ok(Body::Status(s))),
            Command::UploadForm => Ok(Answer::Ok(Body::Empty)),
            Command::RestoreProjects(archive) => {
                match self
                    .projects
                    .restore_begin(ticket, archive, &self.nodes.world.settings, host)
                {
                    Ok(()) => return,
                    Err(e) => Err(e),
                }
            }
            Command::BackupProjects => Ok(Answer::Ok(Body::Backup(
                self.nodes.world.settings.projects_dir.clone(),
            ))),
            Command::BackupImages => Ok(Answer::Ok(Body::Backup(
                self.nodes.world.settings.images_dir.clone(),
            ))),
            Command::Capabilities3 => {
                let settings = &self.nodes.world.settings;
                let machine = host.machine(&settings.projects_dir);
                let version = settings.gns3_3_version.clone();
                Ok(Answer::Ok(Body::Capabilities3(version, machine)))
            }
            Command::QemuBinaries { img, archs } => {
                let q = host.qemu();
                let list = if img { q.img_binaries } else { q.binaries };
                let wanted = |b: &crate::lab::answer::Binary| match &archs {
                    None => true,
                    Some(archs) => b.path.file_name().is_some_and(|n| {
                        let n = n.to_string_lossy();
                        archs.iter().any(|a| n == format!("qemu-system-{a}"))
                    }),
                };
                Ok(Answer::Ok(Body::Binaries(
                    list.into_iter().filter(wanted).collect(),
                )))
            }
            Command::QemuCapabilities => {
                let kvm = host.qemu().kvm && cfg!(target_arch = "x86_64");
                let archs = if kvm { vec!["x86_64", "i386"] } else { vec![] };
                Ok(Answer::Ok(Body::QemuCapabilities(archs)))
            }
            Command::Images => {
                let dir = self.nodes.world.settings.qemu_images();
                match self.images.list(ticket, &dir, host) {
                    Some(reply) => reply,
                    None => return,
                }
            }
            Command::UploadImage(name) => {
                let dir = self.nodes.world.settings.qemu_images();
                match self.images.upload(ticket, &name, &dir, host) {
                    Ok(()) => return,
                    Err(e) => Err(e),
                }
            }
            Command::DownloadImage(name) => {
                images::download(&name, &self.nodes.world.settings.qemu_images(), host)
            }
            Command::Capabilities => Ok(Answer::Ok(Body::Capabilities(
                self.nodes.world.settings.gns3_version.clone(),
            ))),
            Command::Statistics => Ok(Answer::Ok(Body::Statistics(
                host.statistics(&self.nodes.world.settings.projects_dir),
            ))),
            Command::PortUse => Ok(self.nodes.world.port_use()),
            Command::InterfaceDetails => host
                .interface_details()
                .map(|i| Answer::Ok(Body::InterfaceDetails(i))),
            Command::Notifications => Ok(self.nodes.world.subscribe(now, host)),
            Command::ListFiles(id) => self.project(id).and_then(|p| {
                let files = host.files().list_files(&p.path, MAX_PROJECT_FILES)?;
                Ok(Answer::Ok(Body::FileList(files)))
            }),
            Command::ReadFile(id, rel) => self.read_project_file(id, &rel, host),
            Command::WriteFile(id, rel, data) => self.project(id).and_then(|p| {
                host.files()
                    .write_confined(&p.path, &p.file(&rel)?, &data)?;
                Ok(Answer::Created(Body::Empty))
            }),
        };
        host.reply(ticket, reply);
    }

    /// The loop turned: do what frames left for a host, fire the deadlines
    /// that are due, then start one queued spawn (spawning blocks for a
    /// moment, so one per turn).
    pub fn poll(&mut self, now: Instant, host: &mut dyn Host) {
        self.projects
            .restore_step(host, &mut self.nodes.world.events);
        self.images.step(host);
        self.sample_traffic(now);
        self.settle(|n| n.poll(now, host));
    }

    /// The body of an upload (`ticket`'s, see [`Host::receive_body`]) has
    /// come whole, with its size, or failed.
    pub fn body_received(
        &mut self,
        ticket: Ticket,
        outcome: Result<u64, ApiError>,
        host: &mut dyn Host,
    ) {
        let path = self.images.received(ticket);
        if let (Ok(bytes), Some(path)) = (&outcome, path) {
            let bytes = *bytes;
            self.nodes
                .world
                .events
                .emit(Event::Uploaded { path, bytes });
        }
        host.reply(ticket, outcome.map(|_| Answer::NoContent));
    }

    /// Let the nodes do `f`, then have the projects forget the nodes that
    /// went away meanwhile.
    fn settle<R>(&mut self, f: impl FnOnce(&mut Nodes) -> R) -> R {
        let r = f(&mut self.nodes);
        for gone in self.nodes.removed.drain(..) {
            if let Ok(p) = self.projects.get_mut(gone.project) {
                p.nodes.remove(&gone.id);
                if let Some(mac) = gone.mac {
                    p.release_mac(mac);
                }
                p.deleted_node_dirs.extend(gone.dir);
            }
        }
        r
    }

    /// How long the loop may sleep before [`Lab::poll`] has work.
    pub fn timeout(&self, now: Instant) -> Option<Duration> {
        if self.nodes.busy() || self.projects.restoring() || self.images.busy() {
            return Some(Duration::ZERO);
        }
        let held = self
            .nodes
            .next_held()
            .into_iter()
            .chain(self.traffic.deadline())
            .min()
            .map(|t| t.saturating_duration_since(now));
        match (self.nodes.world.timers.timeout(now), held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Stop everything: kill every process, close every project (temporary
    /// ones are deleted). Nothing is left running.
    pub fn shutdown(&mut self, now: Instant, host: &mut dyn Host) {
        let keys: Vec<NodeKey> = self.nodes.registry.iter().map(|n| n.key).collect();
        self.kill_all(&keys, host);
        let ids = self.projects.ids();
        for id in ids {
            if let Err(e) = self.forget_project(now, id, false, host) {
                self.nodes
                    .world
                    .events
                    .warn(None, format!("closing project {id}: {e}"));
            }
        }
        self.shutdown = true;
    }

    /// Kill the processes of `keys` first, so that they die in parallel;
    /// each reap then finds its process (nearly) gone.
    fn kill_all(&mut self, keys: &[NodeKey], host: &mut dyn Host) {
        for &key in keys {
            if self.node(key).is_some_and(|n| n.running()) {
                host.signal(key, Signal::Kill);
            }
        }
    }

    /// Whether a client asked the server to stop.
    pub fn shutdown_requested(&self) -> bool {
        self.shutdown
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.nodes.world.events.pop()
    }

    // ---- nodes, as the reactor and the tests see them -------------------------

    /// The node under `key`, if it is still the node the key was made for.
    pub fn node(&self, key: NodeKey) -> Option<&Node> {
        self.nodes.node(key)
    }

    /// Mutable [`Lab::node`].
    pub fn node_mut(&mut self, key: NodeKey) -> Option<&mut Node> {
        self.nodes.node_mut(key)
    }

    /// The key of node `id`.
    pub fn key_of(&self, id: Uuid) -> Option<NodeKey> {
        self.nodes.key_of(id)
    }

    /// Every node, in no particular order.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.nodes()
    }

    /// The node a request names: in its project, of its route's class.
    fn find_node(&self, r: &NodeRef) -> Result<NodeKey, ApiError> {
        self.project(r.project)?;
        let key = self.nodes.registry.key_of(r.node).filter(|&key| {
            self.node(key)
                .is_some_and(|n| n.project == r.project && n.face().class() == r.class)
        });
        key.ok_or_else(|| {
            ApiError::NotFound(match r.class {
                NodeClass::Vpcs => format!(
                    "VPCS VM ID {} doesn't exist in project {}",
                    r.node, r.project
                ),
                NodeClass::Device => format!(
                    "Device ID {} doesn't exist in project {}",
                    r.node, r.project
                ),
                NodeClass::Cloud => {
                    format!("Cloud ID {} doesn't exist in project {}", r.node, r.project)
                }
                NodeClass::Qemu => format!(
                    "QEMU VM ID {} doesn't exist in project {}",
                    r.node, r.project
                ),
                NodeClass::Docker => format!(
                    "Docker container ID {} doesn't exist in project {}",
                    r.node, r.project
                ),
            })
        })
    }

    /// Put a new node in the lab and its project.
    fn add_node(&mut self, node: Node) -> Answer {
        if let Ok(p) = self.projects.get_mut(node.project) {
            p.nodes.insert(node.id);
        }
        self.nodes.add_node(node)
    }

    /// Open a project; the nodes learn where it lives (for captures).
    fn create_project(&mut self, b: spec::ProjectCreate, host: &mut dyn Host) -> Reply {
        let (settings, events) = (&self.nodes.world.settings, &mut self.nodes.world.events);
        let reply = self.projects.create(b, settings, host, events)?;
        if let Answer::Created(Body::Project(p)) = &reply {
            self.nodes.project_dirs.insert(p.id, p.path.clone());
        }
        Ok(reply)
    }

    /// A new loop turn: the data plane's frame budget is whole again, and
    /// frames carried from the last turn go first.
    pub fn begin_turn(&mut self, now: Instant, host: &mut dyn Host) {
        self.nodes.begin_turn(now, host);
    }

    /// Whether the data plane may handle more frames this turn.
    pub fn frames_left(&self) -> bool {
        self.nodes.frames_left > 0
    }

    /// A frame arrived from `from`; `send` delivers it and says whether it
    /// could (see [`Nodes::on_frame`]).
    #[inline]
    pub fn on_frame(
        &mut self,
        now: Instant,
        from: Endpoint,
        frame: &[u8],
        send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
    ) {
        self.nodes.on_frame(now, from, frame, send);
    }

    /// A frame `send` said went did not (see [`Nodes::unsent`]).
    pub fn unsent(&mut self, to: Endpoint, len: usize) {
        self.nodes.unsent(to, len);
    }

    /// Send the frames delay filters held back that are due by `now`.
    pub fn release_frames(&mut self, now: Instant, send: &mut dyn FnMut(Endpoint, &[u8]) -> bool) {
        self.nodes.release_frames(now, send);
    }

    /// The node's machine monitor (a VM's QMP) said `data`.
    pub fn on_monitor(&mut self, now: Instant, key: NodeKey, data: &[u8], host: &mut dyn Host) {
        self.settle(|n| n.on_monitor(now, key, data, host));
    }

    /// The server starts: ask the container engine for containers an
    /// earlier run left (the caller holds the projects directory's lock).
    pub fn start_up(&mut self, host: &mut dyn Host) {
        let dir = self.nodes.world.settings.projects_dir.clone();
        self.nodes.world.engine.sweep(&dir, host);
    }

    /// The container engine answered `call` (a node's, or the lab's own).
    pub fn on_engine(
        &mut self,
        now: Instant,
        call: &host::EngineCall,
        answer: Result<host::EngineReply, String>,
        host: &mut dyn Host,
    ) {
        self.nodes.world.engine.heard();
        match call.node {
            Some(key) if self.nodes.node(key).is_some() => {
                self.settle(|n| n.on_engine(now, key, call.id, answer, host))
            }
            // Its node went meanwhile: what the call made goes too.
            Some(_) => {
                let world = &mut self.nodes.world;
                world.engine.orphan(call, answer, host, &mut world.events);
            }
            None => {
                let world = &mut self.nodes.world;
                world
                    .engine
                    .answered(call.id, answer, host, &mut world.events);
            }
        }
    }

    /// The node's process printed `data` on its console.
    pub fn on_output(&mut self, now: Instant, key: NodeKey, data: &[u8], host: &mut dyn Host) {
        self.settle(|n| n.on_output(now, key, data, host));
    }

    /// The node's process exited (the host has reaped it).
    pub fn on_exit(&mut self, now: Instant, key: NodeKey, how: &str, host: &mut dyn Host) {
        self.settle(|n| n.on_exit(now, key, how, host));
    }

    // ---- consoles and capture viewers -------------------------------------------

    /// A client connected to `node`'s console: greet it with the recent
    /// output. `false` when refused (node gone, too many clients).
    pub fn console_attach(&mut self, key: NodeKey, id: ClientId) -> bool {
        let Some(node) = self.nodes.registry.get_mut(key) else {
            return false;
        };
        let note = (!node.running()).then(|| {
            format!(
                "{} {} is not running; the console will show it once it starts.\r\n",
                node.kind_name(),
                node.name
            )
        });
        let attached = node.console.attach(id, note.as_deref());
        if !attached {
            let text = format!(
                "console client refused: {} attached",
                crate::limits::MAX_CONSOLE_CLIENTS
            );
            self.nodes.world.events.warn(Some(node.id), text);
        }
        attached
    }

    /// A client of `node`'s auxiliary console connected (a container's
    /// second shell): greeted as a console client. `false` when refused
    /// (no such console, too many clients).
    pub fn console_attach_aux(&mut self, key: NodeKey, id: ClientId) -> bool {
        let Some(node) = self.nodes.registry.get_mut(key) else {
            return false;
        };
        let running = node.running();
        let note = format!(
            "{} {} is not running; its auxiliary console will show it once it starts.\r\n",
            node.kind_name(),
            node.name
        );
        let Some(aux) = node.kind.face_mut().aux_mut() else {
            return false;
        };
        aux.attach(id, (!running).then_some(note.as_str()))
    }

    /// A client typed `data`: telnet negotiation is answered, the rest goes
    /// to the node if it runs (host commands refused when no sandbox holds
    /// them).
    pub fn console_input(
        &mut self,
        now: Instant,
        key: NodeKey,
        id: ClientId,
        data: &[u8],
        host: &mut dyn Host,
    ) {
        let Some(node) = self.nodes.registry.get_mut(key) else {
            return;
        };
        let filter = node.face().filters_shell();
        if node.console.pending(id).is_none() {
            // A client of its auxiliary console.
            let running = node.running();
            let Some(aux) = node.kind.face_mut().aux_mut() else {
                return;
            };
            let to_node = aux.input(id, data, false, host);
            if !to_node.is_empty() && running {
                let _ = self
                    .nodes
                    .with_kind(now, key, host, |k, cx| k.on_aux_input(cx, &to_node));
            }
            return;
        }
        let to_node = node.console.input(id, data, filter, host);
        if !to_node.is_empty() && node.running() {
            let _ = self
                .nodes
                .with_kind(now, key, host, |k, cx| k.on_input(cx, &to_node));
        }
    }

    /// What to write to a client, and whether to close it once written.
    /// `None`: the client is unknown (close it).
    pub fn console_pending(&self, key: NodeKey, id: ClientId) -> Option<(&[u8], bool)> {
        let node = self.node(key)?;
        node.console
            .pending(id)
            .or_else(|| node.face().aux()?.pending(id))
    }

    /// `n` bytes of a client's output were written.
    pub fn console_written(&mut self, key: NodeKey, id: ClientId, n: usize) {
        if let Some(node) = self.nodes.node_mut(key) {
            if node.console.pending(id).is_some() {
                node.console.written(id, n);
            } else if let Some(aux) = node.kind.face_mut().aux_mut() {
                aux.written(id, n);
            }
        }
    }

    /// A client went away.
    pub fn console_detach(&mut self, key: NodeKey, id: ClientId) {
        if let Some(node) = self.nodes.node_mut(key) {
            node.console.detach(id);
            if let Some(aux) = node.kind.face_mut().aux_mut() {
                aux.detach(id);
            }
        }
    }

    /// The node's auxiliary console printed `data`: kept and shown to its
    /// clients.
    pub fn on_aux_output(&mut self, key: NodeKey, data: &[u8], host: &mut dyn Host) {
        let Some(node) = self.nodes.registry.get_mut(key) else {
            return;
        };
        let id = node.id;
        if let Some(aux) = node.kind.face_mut().aux_mut() {
            aux.history.push(data);
            aux.broadcast(id, data, host, &mut self.nodes.world.events);
        }
    }

    /// Bytes waiting for a live viewer in the lab (for the memory budget).
    pub fn capture_pending(&self, viewer: ClientId) -> usize {
        let Some((key, index)) = self.nodes.viewers.get(viewer) else {
            return 0;
        };
        self.node(key)
            .and_then(|n| n.ports.get(index))
            .map_or(0, |p| capture::waiting(&p.capture, viewer))
    }

    /// What waits for a live viewer (taken); `None` once its capture has
    /// ended or it was dropped for not keeping up.
    pub fn capture_output(&mut self, viewer: ClientId) -> Option<Vec<u8>> {
        self.nodes.wiring().capture_output(viewer)
    }

    /// A live viewer went away.
    pub fn capture_unwatch(&mut self, viewer: ClientId) {
        self.nodes.wiring().capture_unwatch(viewer);
    }

    /// A notification channel closed.
    pub fn unsubscribe(&mut self) {
        self.nodes.world.unsubscribe();
    }

    /// Live viewers with output waiting, or whose stream ended.
    pub fn take_ready_viewers(&mut self) -> Vec<ClientId> {
        std::mem::take(&mut self.nodes.sink.ready)
    }

    // ---- nodes -------------------------------------------------------------

    /// Create a PC: console, directory, script, MAC, then the node itself,
    /// all or nothing.
    fn create_pc(&mut self, project: Uuid, b: VmCreate, host: &mut dyn Host) -> Reply {
        if let Some(r) = self.existing(project, b.vm_id, NodeClass::Vpcs)? {
            return Ok(r);
        }
        projects::check_name(Some(&b.name))?;
        self.room_for_node(project)?;
        let id = b.vm_id.unwrap_or_else(Uuid::new_v4);
        if let Some(legacy) = b.legacy_id {
            kinds::pc::convert_legacy(self.project(project)?, legacy, id, host)?;
        }
        let key = self.nodes.registry.vacant_key();
        let p = self.projects.get_mut(project)?;
        let (pc, console) = self.nodes.world.new_pc(p, (key, id), &b, host)?;
        p.deleted_node_dirs.retain(|d| d.as_path() != &*pc.dir);
        let mut node = Node::new(key, id, project, b.name, Kind::Pc(pc));
        node.console_port = console;
        node.ports = vec![Port::new(0, 0)];
        Ok(self.add_node(node))
    }

    /// Create a switch or hub.
    fn create_device(&mut self, project: Uuid, b: DeviceCreate) -> Reply {
        if let Some(r) = self.existing(project, b.device_id, NodeClass::Device)? {
            return Ok(r);
        }
        projects::check_name(Some(&b.name))?;
        self.room_for_node(project)?;
        let id = b.device_id.unwrap_or_else(Uuid::new_v4);
        let kind = match b.device_type {
            command::DeviceType::Switch => Kind::Switch(Default::default()),
            command::DeviceType::Hub => Kind::Hub(Default::default()),
        };
        let mut node = Node::new(self.nodes.registry.vacant_key(), id, project, b.name, kind);
        node.mapping = b.mapping.unwrap_or_default();
        Ok(self.add_node(node))
    }

    /// Create a cloud: each port's host side is opened (a TAP device made
    /// when missing), all or nothing.
    fn create_cloud(&mut self, project: Uuid, b: spec::CloudCreate, host: &mut dyn Host) -> Reply {
        if let Some(r) = self.existing(project, b.node_id, NodeClass::Cloud)? {
            return Ok(r);
        }
        projects::check_name(Some(&b.name))?;
        self.room_for_node(project)?;
        let id = b.node_id.unwrap_or_else(Uuid::new_v4);
        let key = self.nodes.registry.vacant_key();
        let cloud = kinds::cloud::Cloud::open(key, b.ports, host)?;
        let ports = cloud.node_ports();
        let mut node = Node::new(key, id, project, b.name, Kind::Cloud(cloud));
        node.ports = ports;
        Ok(self.add_node(node))
    }

    /// Create a QEMU VM: its console port, its directory, one port per
    /// adapter. A bare `qemu_path` is found among the emulators on `PATH`.
    fn create_qemu(
        &mut self,
        project: Uuid,
        mut b: Box<spec::QemuCreate>,
        host: &mut dyn Host,
    ) -> Reply {
        if let Some(r) = self.existing(project, b.vm_id, NodeClass::Qemu)? {
            return Ok(r);
        }
        projects::check_name(Some(&b.name))?;
        self.room_for_node(project)?;
        kinds::qemu::split_options(&b.config.options)?;
        b.config.qemu_path = qemu_program(&b.config.qemu_path, host)?;
        if b.check_images {
            let settings = &self.nodes.world.settings;
            let names = b.config.images();
            let mut exists = |p: &std::path::Path| host.readable(p);
            kinds::qemu::check_images(&settings.images_dir, &names, settings.local, &mut exists)?;
        }
        let id = b.vm_id.unwrap_or_else(Uuid::new_v4);
        if b.mac_from_id && b.config.more.mac_address.is_empty() {
            b.config.more.mac_address = kinds::qemu::Qemu::gns3_mac(id);
        }
        let key = self.nodes.registry.vacant_key();
        let dir = self.project(project)?.node_dir(kinds::qemu::DIR, id);
        let telnet = b.config.more.console_type != "none";
        let console = self.take_console(telnet, (key, id), b.console, b.mac_from_id, host)?;
        let world = &mut self.nodes.world;
        if let Err(e) = host.files().create_dir(&dir) {
            if let Some(console) = console {
                host.close_console(key);
                world.console_ports.release(console);
            }
            return Err(e);
        }
        let adapters = b.config.adapters;
        let vm = kinds::qemu::Qemu::new(dir, world.settings.images_dir.clone(), b.config);
        let mut node = Node::new(key, id, project, b.name, Kind::Qemu(vm));
        node.console_port = console;
        node.ports = (0..adapters).map(|a| Port::new(a, 0)).collect();
        Ok(self.add_node(node))
    }

    /// Create a container node: its console port, its directory, one port
    /// per adapter, then its container, made by the engine; answered once
    /// made (`None`), or refused.
    fn create_docker(
        &mut self,
        now: Instant,
        ticket: Ticket,
        project: Uuid,
        mut b: spec::DockerCreate,
        host: &mut dyn Host,
    ) -> Result<Option<Answer>, ApiError> {
        if let Some(r) = self.existing(project, b.node_id, NodeClass::Docker)? {
            return Ok(Some(r));
        }
        projects::check_name(Some(&b.name))?;
        self.room_for_node(project)?;
        let id = b.node_id.unwrap_or_else(Uuid::new_v4);
        if b.config.mac_address.is_empty() {
            b.config.mac_address = kinds::docker::Docker::gns3_mac(id);
        }
        let key = self.nodes.registry.vacant_key();
        let dir = self.project(project)?.node_dir(kinds::docker::DIR, id);
        let telnet = b.config.console_type != "none";
        let console = self.take_console(telnet, (key, id), b.console, true, host)?;
        let adapters = b.config.adapters;
        let docker = kinds::docker::Docker::new(dir, b.config, b.aux);
        let mut node = Node::new(key, id, project, b.name, Kind::Docker(docker));
        node.console_port = console;
        node.ports = (0..adapters).map(|a| Port::new(a, 0)).collect();
        self.add_node(node);
        let made = self
            .nodes
            .with_kind(now, key, host, |k, cx| k.provision(cx))
            .and_then(|r| r);
        match made {
            Ok(true) => {
                if let Some(node) = self.nodes.node_mut(key) {
                    node.pending = Some(node::Pending::Create(ticket));
                    let _ = node.queue.submit(node::Job {
                        ticket,
                        command: command::NodeCommand::Get,
                    });
                }
                Ok(None)
            }
            Ok(false) => Ok(self.node(key).map(|n| Answer::Created(n.view()))),
            Err(e) => {
                self.settle(|n| n.remove_node(now, key, host));
                Err(e)
            }
        }
    }

    /// A new node's console port (`asked`, or one picked when `pick`),
    /// listened on; `None` when it has no telnet console.
    fn take_console(
        &mut self,
        telnet: bool,
        (key, id): (NodeKey, Uuid),
        asked: Option<u16>,
        pick: bool,
        host: &mut dyn Host,
    ) -> Result<Option<u16>, ApiError> {
        if !telnet {
            return Ok(None);
        }
        let world = &mut self.nodes.world;
        let mut choice = console::PortChoice {
            pool: &mut world.console_ports,
            host,
            events: &mut world.events,
            key,
            id,
            aux: false,
        };
        choice.take(asked, pick).map(Some)
    }

    /// A create naming a node that exists: that node, if it is of the
    /// project and of the class asked for.
    fn existing(
        &self,
        project: Uuid,
        id: Option<Uuid>,
        class: NodeClass,
    ) -> Result<Option<Answer>, ApiError> {
        self.project(project)?;
        let Some(node) = id.and_then(|id| self.key_of(id)).and_then(|k| self.node(k)) else {
            return Ok(None);
        };
        if node.project != project || node.face().class() != class {
            return Err(ApiError::conflict(format!(
                "Node {} exists in another project or is of another type",
                node.id
            )));
        }
        Ok(Some(Answer::Created(node.view())))
    }

    /// Room for one more node in `project` ([`MAX_NODES_PER_PROJECT`]).
    fn room_for_node(&self, project: Uuid) -> Result<(), ApiError> {
        if self.project(project)?.nodes.len() >= MAX_NODES_PER_PROJECT {
            return Err(ApiError::bad(format!(
                "Project {project} holds {MAX_NODES_PER_PROJECT} nodes, the most one project may"
            )));
        }
        Ok(())
    }

    // ---- consoles ------------------------------------------------------------

    // ---- captures --------------------------------------------------------------

    // ---- notifications -----------------------------------------------------------

    /// One file of a project.
    fn read_project_file(&self, id: Uuid, rel: &str, host: &mut dyn Host) -> Reply {
        let p = self.project(id)?;
        match host
            .files()
            .read_confined(&p.path, &p.file(rel)?, MAX_PROJECT_FILE)?
        {
            Some(data) => Ok(Answer::Ok(Body::File(data))),
            None => Err(ApiError::NotFound(format!("File '{rel}' doesn't exist"))),
        }
    }

    // ---- server and projects ------------------------------------------------

    fn check_version(&self, version: &str) -> Reply {
        if version != command::API_VERSION {
            return Err(ApiError::conflict(format!(
                "Client version {version} differs with server version {}",
                command::API_VERSION
            )));
        }
        Ok(Answer::Ok(Body::VersionChecked))
    }

    fn request_shutdown(&mut self) -> Reply {
        projects::require_local(&self.nodes.world.settings, "Shutting the server down")?;
        self.shutdown = true;
        self.nodes.world.events.emit(Event::ShutdownAsked);
        Ok(Answer::Created(Body::Empty))
    }

    fn project(&self, id: Uuid) -> Result<&Project, ApiError> {
        self.projects.get(id)
    }

    fn project_view(&self, id: Uuid) -> Result<Body, ApiError> {
        self.projects
            .view(id, &self.nodes.world.settings)
            .map(Body::Project)
    }

    /// Update a project; it moves only while none of its nodes runs.
    fn update_project(&mut self, id: Uuid, b: spec::ProjectUpdate, host: &mut dyn Host) -> Reply {
        if let Some(to) = self.projects.new_path(id, &b, &self.nodes.world.settings)? {
            let nodes = self.project(id)?.nodes.clone();
            let keys: Vec<NodeKey> = nodes.iter().filter_map(|n| self.key_of(*n)).collect();
            if keys
                .iter()
                .any(|k| self.node(*k).is_some_and(|n| n.running()))
            {
                return Err(ApiError::conflict(
                    "Stop the project's VMs before changing its path",
                ));
            }
            self.projects
                .repoint(id, &to, host, &mut self.nodes.world.events)?;
            self.nodes.project_dirs.insert(id, to.clone());
            for key in keys {
                if let Some(n) = self.nodes.registry.get_mut(key) {
                    n.kind.face_mut().moved(&to, n.id);
                }
            }
        }
        self.projects.update(id, b, host)?;
        self.project_view(id).map(Answer::Ok)
    }

    /// Stop and forget every node of the project, free its ports, and
    /// remove its directory when asked or when it is temporary.
    fn forget_project(
        &mut self,
        now: Instant,
        id: Uuid,
        delete_dir: bool,
        host: &mut dyn Host,
    ) -> Reply {
        let p = self.project(id)?;
        let keys: Vec<NodeKey> = p.nodes.iter().filter_map(|&n| self.key_of(n)).collect();
        let node_dirs: Vec<PathBuf> = keys
            .iter()
            .filter_map(|&k| Some(self.node(k)?.face().dir()?.to_path_buf()))
            .collect();
        self.kill_all(&keys, host);
        for key in keys {
            self.settle(|n| n.remove_node(now, key, host));
        }
        self.nodes.project_dirs.remove(&id);
        self.nodes.world.udp_ports.release_owner(id);
        let how = (delete_dir, node_dirs.as_slice());
        self.projects
            .close(id, how, host, &mut self.nodes.world.events)
    }

    fn allocate_udp(&mut self, id: Uuid, host: &mut dyn Host) -> Reply {
        self.project(id)?;
        let (port, ()) = self
            .nodes
            .world
            .udp_ports
            .reserve_lowest(id, |p| host.udp_free(p).then_some(()))?;
        Ok(Answer::Created(Body::UdpPort(port)))
    }

    /// The whole lab, projects by name, nodes by name.
    fn status(
        &self,
        now: Instant,
        only: Option<Uuid>,
        host: &mut dyn Host,
    ) -> Result<answer::StatusView, ApiError> {
        if let Some(id) = only {
            self.project(id)?;
        }
        let mut projects: Vec<_> = self
            .projects
            .iter()
            .filter(|p| only.is_none_or(|id| id == p.id))
            .filter_map(|p| {
                let view = self.projects.view(p.id, &self.nodes.world.settings).ok()?;
                let mut nodes: Vec<_> = p
                    .nodes
                    .iter()
                    .filter_map(|id| self.key_of(*id).and_then(|k| self.node(k)))
                    .map(|n| n.status(now, &self.traffic))
                    .collect();
                nodes.sort_by(|a, b| a.name.cmp(&b.name));
                let links = topology::links(&nodes);
                Some(answer::ProjectStatus {
                    project: view,
                    nodes,
                    links,
                })
            })
            .collect();
        projects
            .sort_by(|a, b| (&a.project.name, a.project.id).cmp(&(&b.project.name, b.project.id)));
        // Projects on disk that are not open (the page offers to open them).
        let mut closed: Vec<Uuid> = host
            .files()
            .subdirs(&self.nodes.world.settings.projects_dir, MAX_PROJECTS)
            .iter()
            .filter_map(|n| n.parse().ok())
            .filter(|id| self.projects.get(*id).is_err())
            .collect();
        closed.sort();
        Ok(answer::StatusView {
            local: self.nodes.world.settings.local,
            projects,
            closed,
            pc_engine: match self.nodes.world.settings.pc_engine {
                PcEngine::Vpcs => "vpcs",
                PcEngine::Builtin => "builtin",
            },
        })
    }

    /// Sample the linked ports' counters when due (see [`traffic`]).
    fn sample_traffic(&mut self, now: Instant) {
        let open = !self.projects.is_empty();
        let linked = self.nodes.registry.iter().flat_map(|n| {
            n.ports
                .iter()
                .enumerate()
                .filter(|(_, p)| p.nio.is_some())
                .map(move |(i, p)| (n.id, i, &p.stats))
        });
        self.traffic.poll(now, open, linked);
    }

    /// Check that every structure agrees with every other (see
    /// `invariants::check`).
    pub fn check_invariants(&self) -> Result<(), String> {
        let (pools, projects) = (
            (&self.nodes.world.console_ports, &self.nodes.world.udp_ports),
            &self.projects,
        );
        invariants::check(&self.nodes.registry, projects, pools.0, pools.1)
    }
}

/// The emulator a create names: a path as given (it must be there), a bare
/// name among the emulators found on `PATH` at start.
fn qemu_program(name: &str, host: &mut dyn Host) -> Result<String, ApiError> {
    let missing = || ApiError::conflict("QEMU binary path is not set or not found in the path");
    if name.is_empty() {
        return Err(missing());
    }
    if name.contains('/') {
        return match host.readable(std::path::Path::new(name)) {
            true => Ok(name.to_string()),
            false => Err(ApiError::conflict(format!(
                "QEMU binary '{name}' is not accessible"
            ))),
        };
    }
    host.qemu()
        .binaries
        .into_iter()
        .find(|b| b.path.file_name().is_some_and(|n| n == name))
        .map(|b| b.path.to_string_lossy().into_owned())
        .ok_or_else(missing)
}
