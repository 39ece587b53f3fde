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
pub mod event;
#[cfg(any(test, fuzzing, feature = "fake"))]
#[doc(hidden)]
pub mod fake;
pub mod filters;
pub mod host;
pub mod id;
mod invariants;
pub mod kinds;
mod links;
pub mod node;
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
pub mod types;
pub mod vlan;
pub mod wiring;
pub mod world;

pub use crate::lab::answer::{Answer, Body, LogLevel, Notice, ProjectView, Reply, VpcsView};
pub use event::Event;
pub use host::{ClientId, Files, Host, Signal, Spawn, Spawned};
pub use kinds::State;
pub use node::{Endpoint, Nio, NioTap, NioUdp, Node, NodeKey, PortStats};
pub use settings::{PcEngine, Settings};
pub use timers::Deadline;

use crate::error::ApiError;
use crate::lab::answer::Upgrade;
use crate::lab::command::{
    Command, NodeClass, NodeCommand, NodeCreate, NodeRef, PortAddr, PortSettings, Ticket,
};
use crate::lab::spec::{DeviceCreate, VmCreate};
use crate::limits::{
    MAX_NODES_PER_PROJECT, MAX_PROJECT_FILE, MAX_PROJECT_FILES,
};
use kinds::kind::Kind;
use kinds::{Behaviour, Ctx, Gone, Started, Stopping, Was};
use node::{AfterStop, Job, Pending, went_away};
use plane::Plane;
use port::{Port, Wire};
use project::Project;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use timers::Alarm;
use uuid::Uuid;
use wiring::Wiring;
use world::World;

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
    /// What node operations share: configuration, pools, deadlines, events.
    world: World,
    projects: projects::Projects,
    registry: registry::Registry,
    shutdown: bool,
    /// Captures with records to write, live viewers to wake.
    sink: capture::Sink,
    /// Live capture viewers: where their capture is.
    viewers: capture::Viewers,
    /// Randomness for link filters and the frames they hold back.
    wire: Wire,
    /// Nodes a frame left work for, done at the next poll (no host then).
    later: Vec<NodeKey>,
    /// Tunnels whose both ends are ours.
    links: links::Links,
    /// Frames the data plane may still handle this loop turn.
    frames_left: usize,
}

fn gone(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("VPCS VM ID {id} was deleted"))
}

impl Lab {
    /// An empty lab.
    pub fn new(settings: Settings) -> Self {
        Lab {
            world: World::new(settings),
            projects: projects::Projects::default(),
            registry: registry::Registry::default(),
            shutdown: false,
            sink: capture::Sink::default(),
            viewers: capture::Viewers::default(),
            wire: Wire::default(),
            later: Vec::new(),
            links: links::Links::default(),
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
                local: self.world.settings.local,
            })),
            Command::CheckVersion(v) => self.check_version(&v),
            Command::Interfaces => host.interfaces().map(|n| Answer::Ok(Body::Interfaces(n))),
            Command::ReloadConfig => self.world.reload(host),
            Command::Shutdown => self.request_shutdown(),
            Command::CreateProject(b) => {
                self.projects
                    .create(b, &self.world.settings, host, &mut self.world.events)
            }
            Command::GetProject(id) => self.project_view(id).map(Answer::Ok),
            Command::UpdateProject(id, b) => self.update_project(id, b, host),
            Command::CommitProject(id) => self.projects.commit(id, host),
            Command::CloseProject(id) => self.forget_project(now, id, false, host),
            Command::DeleteProject(id) => self.forget_project(now, id, true, host),
            Command::AllocateUdp(id) => self.allocate_udp(id, host),
            Command::CreateNode(p, NodeCreate::Vpcs(b)) => self.create_pc(p, b, host),
            Command::CreateNode(p, NodeCreate::Device(b)) => self.create_device(p, b),
            Command::Status => Ok(Answer::Ok(Body::Status(self.status(now)))),
            Command::UploadForm => Ok(Answer::Ok(Body::Empty)),
            Command::RestoreProjects(archive) => match self.projects.restore_begin(
                ticket,
                archive,
                &self.world.settings,
                host,
            ) {
                Ok(()) => return,
                Err(e) => Err(e),
            },
            Command::BackupProjects => {
                Ok(Answer::Ok(Body::Backup(self.world.settings.projects_dir.clone())))
            }
            Command::Capabilities => Ok(Answer::Ok(Body::Capabilities(
                self.world.settings.gns3_version.clone(),
            ))),
            Command::Statistics => Ok(Answer::Ok(Body::Statistics(
                host.statistics(&self.world.settings.projects_dir),
            ))),
            Command::PortUse => Ok(self.world.port_use()),
            Command::InterfaceDetails => host
                .interface_details()
                .map(|i| Answer::Ok(Body::InterfaceDetails(i))),
            Command::Notifications => Ok(self.world.subscribe(now, host)),
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
        self.projects.restore_step(host);
        for key in std::mem::take(&mut self.later) {
            self.lend(now, key, host, |k, cx| k.flush(cx));
        }
        while let Some(d) = self.world.timers.pop_expired(now) {
            match d {
                Deadline::Heartbeat => self.world.heartbeat(now, host),
                Deadline::Node(key, alarm) => self.on_alarm(now, key, alarm, host),
            }
        }
        self.spawn_next(now, host);
        for (key, index) in std::mem::take(&mut self.sink.dirty) {
            self.wiring().flush_capture(key, index, host);
        }
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
        let restoring = self.projects.restoring();
        if !self.world.spawns.is_empty() || restoring || !self.later.is_empty() {
            return Some(Duration::ZERO);
        }
        let held = self
            .wire
            .delayed
            .next_due()
            .map(|t| t.saturating_duration_since(now));
        match (self.world.timers.timeout(now), held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The data plane's parts, lent for one call.
    fn plane(&mut self) -> Plane<'_> {
        Plane {
            registry: &mut self.registry,
            sink: &mut self.sink,
            wire: &mut self.wire,
            later: &mut self.later,
            links: &self.links,
            budget: &mut self.frames_left,
        }
    }

    /// The wiring's parts, lent for one call.
    fn wiring(&mut self) -> Wiring<'_> {
        Wiring {
            registry: &mut self.registry,
            udp_ports: &mut self.world.udp_ports,
            links: &mut self.links,
            wire: &mut self.wire,
            sink: &mut self.sink,
            viewers: &mut self.viewers,
            events: &mut self.world.events,
        }
    }

    /// Send the frames delay filters held back that are due by `now`.
    pub fn release_frames(&mut self, now: Instant, send: &mut dyn FnMut(Endpoint, &[u8]) -> bool) {
        self.plane().release(now, send);
    }

    /// A frame arrived from `from`; `send` delivers it and says whether it
    /// could. A PC relays between its engine and its NIO; a switch decides
    /// by its MAC table and port modes; a hub repeats. Counted per port; a
    /// frame with nowhere to go is dropped, as on a wire.
    #[inline]
    pub fn on_frame(
        &mut self,
        now: Instant,
        from: Endpoint,
        frame: &[u8],
        send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
    ) {
        self.frames_left = self.frames_left.saturating_sub(1);
        self.plane().route(now, from, frame, send);
    }

    /// Stop everything: kill every process, close every project (temporary
    /// ones are deleted). Nothing is left running.
    pub fn shutdown(&mut self, now: Instant, host: &mut dyn Host) {
        let keys: Vec<NodeKey> = self.registry.iter().map(|n| n.key).collect();
        self.kill_all(&keys, host);
        let ids = self.projects.ids();
        for id in ids {
            if let Err(e) = self.forget_project(now, id, false, host) {
                self.world.events.warn(None, format!("closing project {id}: {e}"));
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
        self.world.events.pop()
    }

    // ---- nodes -------------------------------------------------------------

    /// The node under `key`, if it is still the node the key was made for.
    /// Every lookup by key goes through the registry's one check.
    pub fn node(&self, key: NodeKey) -> Option<&Node> {
        self.registry.get(key)
    }

    /// Mutable [`Lab::node`].
    pub fn node_mut(&mut self, key: NodeKey) -> Option<&mut Node> {
        self.registry.get_mut(key)
    }

    /// The key of node `id`.
    pub fn key_of(&self, id: Uuid) -> Option<NodeKey> {
        self.registry.key_of(id)
    }

    /// Every node, in no particular order.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.registry.iter()
    }

    /// Lend node `key`'s kind its context for `f`; then route the frames
    /// it sent. Returns what `f` did and whether listeners must be told.
    fn lend<R>(
        &mut self,
        now: Instant,
        key: NodeKey,
        host: &mut dyn Host,
        f: impl FnOnce(&mut dyn Behaviour, &mut Ctx) -> R,
    ) -> Option<(R, bool)> {
        let node = self.registry.get_mut(key)?;
        let (kind, mut cx) = self.world.lend(node, now, &mut *host);
        let r = f(kind, &mut cx);
        let Ctx {
            frames, updated, ..
        } = cx;
        for frame in frames {
            self.on_frame(now, Endpoint::Node(key), &frame, &mut |to, data| {
                host.send_frame(to, data)
            });
        }
        Some((r, updated))
    }

    /// [`Lab::lend`], then tell listeners when the node changed.
    fn with_kind<R>(
        &mut self,
        now: Instant,
        key: NodeKey,
        host: &mut dyn Host,
        f: impl FnOnce(&mut dyn Behaviour, &mut Ctx) -> R,
    ) -> Result<R, ApiError> {
        let (r, updated) = self.lend(now, key, host, f).ok_or_else(went_away)?;
        if updated {
            self.node_updated(key);
        }
        Ok(r)
    }

    fn find_node(&self, r: &NodeRef) -> Result<NodeKey, ApiError> {
        self.project(r.project)?;
        let key = self.registry.key_of(r.node).filter(|&key| {
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
            })
        })
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
            match self.exec(now, key, job.ticket, job.command, host) {
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

    /// Run one command on a node whose turn it is: what every node does
    /// here, what only its kind does through its face.
    fn exec(
        &mut self,
        now: Instant,
        key: NodeKey,
        ticket: Ticket,
        cmd: NodeCommand,
        host: &mut dyn Host,
    ) -> Step {
        use NodeCommand as C;
        let Some(node) = self.node(key) else {
            return Step::Done(Err(went_away()));
        };
        if !node.face().accepts(&cmd) {
            return Step::Done(Err(ApiError::conflict(format!(
                "{} {} does not take this request",
                node.kind_name(),
                node.name
            ))));
        }
        let running = node.running();
        Step::Done(match cmd {
            C::Get => Ok(Answer::Ok(node.view())),
            C::Delete => return self.stop_then(now, key, ticket, AfterStop::Delete, host),
            C::Start => return self.start(now, key, ticket, host),
            C::Stop => return self.stop_then(now, key, ticket, AfterStop::Reply, host),
            C::Reload if running => {
                return self.stop_then(now, key, ticket, AfterStop::Start, host);
            }
            C::Reload => return self.start(now, key, ticket, host),
            C::Update(_) | C::UpdateDevice(_) | C::UpdateMapping(..) => {
                self.update(now, key, cmd, host)
            }
            C::AddNio(at, nio) => self.add_nio(now, key, (at, None), nio, host),
            C::AddDeviceNio(port, nio, s) => {
                self.add_nio(now, key, (PortAddr { adapter: 0, port }, s), nio, host)
            }
            C::AttachNio(at, nio, filters) => self
                .add_nio(now, key, (at, None), nio, host)
                .and_then(|r| self.wiring().set_filters(key, at, filters).map(|()| r)),
            C::RemoveNio(at) => self.remove_nio(key, at, host),
            C::SetFilters(at, filters) => self
                .wiring()
                .set_filters(key, at, filters)
                .map(|()| Answer::Created(Body::Empty)),
            C::StartCapture(at, b) => {
                let dir = self.project(node.project).map(|p| p.path.clone());
                dir.and_then(|d| self.wiring().start_capture(&d, now, key, at, b, host))
            }
            C::StopCapture(at) => self.wiring().stop_capture(key, at, host),
            C::WatchCapture(at) => self
                .wiring()
                .watch_capture(key, at, capture::viewer(ticket)),
            C::Suspend => Ok(Answer::NoContent),
            C::ConsoleReset => self.node_mut(key).ok_or_else(went_away).map(|n| {
                n.console.reset(host);
                Answer::NoContent
            }),
            C::Duplicate(dest) => self.duplicate(now, key, dest, host),
            C::ConsoleSocket => self.console_socket(key),
        })
    }

    /// An update only the node's kind knows; answered with the node.
    fn update(
        &mut self,
        now: Instant,
        key: NodeKey,
        cmd: NodeCommand,
        host: &mut dyn Host,
    ) -> Reply {
        projects::check_name(cmd.new_name())?;
        self.with_kind(now, key, host, |k, cx| k.command(cx, cmd))??;
        let node = self.node(key).ok_or_else(went_away)?;
        Ok(Answer::Ok(node.view()))
    }

    /// Start the node, or park the start when its kind says it takes time.
    fn start(&mut self, now: Instant, key: NodeKey, ticket: Ticket, host: &mut dyn Host) -> Step {
        match self.with_kind(now, key, host, |k, cx| k.start(cx)) {
            Ok(Ok(Started::Now)) => Step::Done(Ok(Answer::NoContent)),
            Ok(Ok(Started::Later)) => {
                if let Some(node) = self.node_mut(key) {
                    node.pending = Some(Pending::Start(ticket));
                }
                Step::Parked
            }
            Ok(Err(e)) | Err(e) => Step::Done(Err(e)),
        }
    }

    /// Stop the node, then do `then` (now, or once its process is gone).
    fn stop_then(
        &mut self,
        now: Instant,
        key: NodeKey,
        ticket: Ticket,
        then: AfterStop,
        host: &mut dyn Host,
    ) -> Step {
        match self.with_kind(now, key, host, |k, cx| k.stop(cx)) {
            Err(e) => Step::Done(Err(e)),
            Ok(Stopping::Later) => {
                if let Some(node) = self.node_mut(key) {
                    node.pending = Some(Pending::Stop(ticket, then));
                }
                Step::Parked
            }
            Ok(Stopping::Gone) => match then {
                AfterStop::Reply => Step::Done(Ok(Answer::NoContent)),
                AfterStop::Start => self.start(now, key, ticket, host),
                AfterStop::Delete => {
                    // Answer first, so that the requests drained with the
                    // node (404) are answered after this one, in order.
                    host.reply(ticket, Ok(Answer::NoContent));
                    self.remove_node(now, key, host);
                    Step::Parked
                }
            },
        }
    }

    /// A stop finished (the process is gone): do what it leads to.
    fn after_stop(
        &mut self,
        now: Instant,
        key: NodeKey,
        ticket: Ticket,
        then: AfterStop,
        host: &mut dyn Host,
    ) {
        match then {
            AfterStop::Reply => self.finish_parked(now, key, ticket, Ok(Answer::NoContent), host),
            AfterStop::Delete => {
                host.reply(ticket, Ok(Answer::NoContent));
                self.remove_node(now, key, host);
            }
            AfterStop::Start => match self.start(now, key, ticket, host) {
                Step::Parked => {}
                Step::Done(r) => self.finish_parked(now, key, ticket, r, host),
            },
        }
    }

    /// Spawn the next node waiting on the spawn queue; stale entries (node
    /// gone, start no longer pending) are skipped.
    fn spawn_next(&mut self, now: Instant, host: &mut dyn Host) {
        while let Some(key) = self.world.spawns.pop_front() {
            let Some(node) = self.node(key) else { continue };
            let Some(Pending::Start(ticket)) = node.pending else {
                continue;
            };
            if node.running() {
                continue;
            }
            let spawned = self.with_kind(now, key, host, |k, cx| k.spawn(cx));
            if let Ok(Err(e)) | Err(e) = spawned {
                let id = self.node_mut(key).map(|node| {
                    node.pending = None;
                    node.id
                });
                self.world.events.warn(id, format!("start failed: {e}"));
                self.finish_parked(now, key, ticket, Err(e), host);
            }
            return;
        }
    }

    /// A deadline a node set came due.
    fn on_alarm(&mut self, now: Instant, key: NodeKey, alarm: Alarm, host: &mut dyn Host) {
        if let Alarm::StartTimeout(_) = alarm {
            // The prompt may be waiting unread while the loop was busy:
            // take it before judging.
            self.take_pending_output(now, key, host);
        }
        let _ = self.with_kind(now, key, host, |k, cx| k.on_alarm(cx, alarm));
    }

    fn take_pending_output(&mut self, now: Instant, key: NodeKey, host: &mut dyn Host) {
        let rest = host.pending_output(key);
        if !rest.is_empty() {
            self.on_output(now, key, &rest, host);
        }
    }

    /// The node's process printed `data` on its console: keep it, show it
    /// to every client, and finish a pending start once it is ready.
    pub fn on_output(&mut self, now: Instant, key: NodeKey, data: &[u8], host: &mut dyn Host) {
        let Some(node) = self.node_mut(key) else {
            return;
        };
        node.console.history.push(data);
        let ready = self
            .with_kind(now, key, host, |k, cx| k.on_output(cx, data))
            .unwrap_or(false);
        let Some(node) = self.registry.get_mut(key) else {
            return;
        };
        let (id, pending) = (node.id, node.pending);
        node.console.broadcast(id, data, host, &mut self.world.events);
        if !ready {
            return;
        }
        self.world.events.emit(Event::ConsoleReady { node: id });
        if let Some(Pending::Start(ticket)) = pending {
            if let Some(node) = self.node_mut(key) {
                node.pending = None;
            }
            // Before the answer: the controller then already reads "started".
            self.node_updated(key);
            self.finish_parked(now, key, ticket, Ok(Answer::NoContent), host);
        } else {
            self.node_updated(key);
        }
    }

    /// The node's process exited (the host has reaped it).
    pub fn on_exit(&mut self, now: Instant, key: NodeKey, how: &str, host: &mut dyn Host) {
        if self.node(key).is_none_or(|n| !n.running()) {
            return;
        }
        self.take_pending_output(now, key, host);
        let was = match self.node(key).and_then(|n| n.pending) {
            Some(Pending::Start(_)) => Was::Starting,
            Some(Pending::Stop(..)) => Was::Stopping,
            None => Was::Running,
        };
        let Ok(Some(gone)) = self.with_kind(now, key, host, |k, cx| k.on_exit(cx, how, was)) else {
            return;
        };
        let Some(node) = self.node_mut(key) else {
            return;
        };
        let (id, project) = (node.id, node.project);
        let pending = node.pending.take();
        self.node_updated(key);
        match (gone, pending) {
            (Gone::StartFailed(e), Some(Pending::Start(ticket))) => {
                self.world.events.warn(Some(id), format!("start failed: {e}"));
                self.finish_parked(now, key, ticket, Err(e), host);
            }
            (Gone::Stopped, Some(Pending::Stop(ticket, then))) => {
                self.after_stop(now, key, ticket, then, host)
            }
            (Gone::Died { warning, log, note }, _) => {
                self.world.events.warn(Some(id), warning);
                self.project_log(project, LogLevel::Error, log);
                if let Some(node) = self.registry.get_mut(key) {
                    node.console
                        .broadcast(id, note.as_bytes(), host, &mut self.world.events);
                }
            }
            (_, pending) => {
                if let Some(node) = self.node_mut(key) {
                    node.pending = pending;
                }
            }
        }
    }

    /// Stop the node at once and wait for it (project close, shutdown),
    /// and answer a parked operation: nothing is left running or waiting.
    fn kill_now(&mut self, now: Instant, key: NodeKey, host: &mut dyn Host) {
        let Some(node) = self.node(key) else {
            return;
        };
        let was_running = node.state() != State::Stopped;
        let updated = self
            .lend(now, key, host, |k, cx| k.kill(cx))
            .is_some_and(|(_, u)| u);
        let Some(node) = self.node_mut(key) else {
            return;
        };
        if let Some(Pending::Start(ticket) | Pending::Stop(ticket, _)) = node.pending.take() {
            let e = ApiError::conflict("The VM was stopped because its project closed");
            host.reply(ticket, Err(e));
        }
        if was_running || updated {
            self.node_updated(key);
        }
    }

    /// Forget a node, in one step that leaves nothing behind: its process,
    /// its waiting requests (answered 404), console clients and listener,
    /// tunnels, ports and MAC. Its directory goes at the next commit.
    fn remove_node(&mut self, now: Instant, key: NodeKey, host: &mut dyn Host) {
        self.kill_now(now, key, host);
        let Some(node) = self.node_mut(key) else {
            return;
        };
        let id = node.id;
        for job in node.queue.drain() {
            host.reply(job.ticket, Err(gone(id)));
        }
        node.console.reset(host);
        host.close_console(key);
        for index in 0..node.ports.len() {
            self.wiring().drop_nio(key, index, host);
        }
        let Some(node) = self.registry.take(key) else {
            return;
        };
        if let Some(console) = node.console_port {
            self.world.console_ports.release(console);
        }
        if let Ok(p) = self.projects.get_mut(node.project) {
            p.nodes.remove(&id);
            if let Some(mac) = node.face().project_mac() {
                p.release_mac(mac);
            }
            if let Some(dir) = node.face().dir() {
                p.deleted_node_dirs.push(dir.to_path_buf());
            }
        }
        let what = node.word();
        self.world.events.emit(Event::NodeDeleted { node: id, what });
    }

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
        let key = self.registry.vacant_key();
        let p = self.projects.get_mut(project)?;
        let (pc, console) = self.world.new_pc(p, (key, id), &b, host)?;
        p.deleted_node_dirs.retain(|d| *d != pc.dir);
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
        let mut node = Node::new(self.registry.vacant_key(), id, project, b.name, kind);
        node.mapping = b.mapping.unwrap_or_default();
        Ok(self.add_node(node))
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

    /// Put a new node in the lab and its project.
    fn add_node(&mut self, node: Node) -> Answer {
        let view = node.view();
        let (id, project) = (node.id, node.project);
        self.world.events.emit(Event::NodeCreated {
            node: id,
            what: node.word(),
            name: node.name.clone(),
            project,
            console: node.console_port,
        });
        self.registry.insert(node);
        if let Ok(p) = self.projects.get_mut(project) {
            p.nodes.insert(id);
        }
        Answer::Created(view)
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

    /// Give a port (the kind chooses it) a NIO; the kind hears whether it
    /// took.
    fn add_nio(
        &mut self,
        now: Instant,
        key: NodeKey,
        (at, settings): (PortAddr, Option<PortSettings>),
        nio: Nio,
        host: &mut dyn Host,
    ) -> Reply {
        let index = self.with_kind(now, key, host, |k, cx| k.nio_port(cx, at, settings))??;
        let reply = self.wiring().attach_nio(key, index, nio, host);
        if let Some(node) = self.node_mut(key) {
            let linked = reply.is_ok();
            node.kind
                .face_mut()
                .nio_changed(&mut node.ports, index, linked);
        }
        reply
    }

    /// Remove a port's NIO; as in 1.3.13, a PC's port without one is fine.
    fn remove_nio(&mut self, key: NodeKey, at: PortAddr, host: &mut dyn Host) -> Reply {
        let index = self.wiring().port_of(key, at)?;
        self.wiring().drop_nio(key, index, host);
        if let Some(node) = self.node_mut(key) {
            node.kind
                .face_mut()
                .nio_changed(&mut node.ports, index, false);
        }
        Ok(Answer::NoContent)
    }

    /// 2.2's `duplicate`: node `dest` (created beforehand by the
    /// controller) gets this node's startup script, with its own name.
    fn duplicate(&mut self, now: Instant, key: NodeKey, dest: Uuid, host: &mut dyn Host) -> Reply {
        let node = self.node(key).ok_or_else(went_away)?;
        let script = node.face().script().map(str::to_string);
        let (project, from) = (node.project, node.name.clone());
        let dkey = self
            .key_of(dest)
            .filter(|k| self.node(*k).is_some_and(|n| n.project == project))
            .ok_or_else(|| ApiError::NotFound(format!("Node ID {dest} doesn't exist")))?;
        self.with_kind(now, dkey, host, |k, cx| {
            k.copy_script(cx, script.as_deref(), &from)
        })??;
        let view = self.node(dkey).ok_or_else(went_away)?.view();
        Ok(Answer::Created(view))
    }

    /// The console websocket: only for a started node with a console.
    fn console_socket(&self, key: NodeKey) -> Reply {
        let node = self.node(key).ok_or_else(went_away)?;
        if node.state() != State::Started {
            return Err(ApiError::conflict(format!(
                "Node {} is not started",
                node.name
            )));
        }
        if node.console_port.is_none() {
            return Err(ApiError::conflict(format!(
                "Node {} console type is not telnet",
                node.name
            )));
        }
        Ok(Answer::Ok(Body::Upgrade(Upgrade::Console(key))))
    }

    // ---- consoles ------------------------------------------------------------

    /// A client connected to `node`'s console: greet it with the recent
    /// output. `false` when refused (node gone, too many clients).
    pub fn console_attach(&mut self, key: NodeKey, id: ClientId) -> bool {
        let Some(node) = self.registry.get_mut(key) else {
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
            self.world.events.warn(Some(node.id), text);
        }
        attached
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
        let Some(node) = self.registry.get_mut(key) else {
            return;
        };
        let filter = node.face().filters_shell();
        let to_node = node.console.input(id, data, filter, host);
        if !to_node.is_empty() && node.running() {
            let _ = self.with_kind(now, key, host, |k, cx| k.on_input(cx, &to_node));
        }
    }

    /// What to write to a client, and whether to close it once written.
    /// `None`: the client is unknown (close it).
    pub fn console_pending(&self, key: NodeKey, id: ClientId) -> Option<(&[u8], bool)> {
        self.node(key)?.console.pending(id)
    }

    /// `n` bytes of a client's output were written.
    pub fn console_written(&mut self, key: NodeKey, id: ClientId, n: usize) {
        if let Some(node) = self.node_mut(key) {
            node.console.written(id, n);
        }
    }

    /// A client went away.
    pub fn console_detach(&mut self, key: NodeKey, id: ClientId) {
        if let Some(node) = self.node_mut(key) {
            node.console.detach(id);
        }
    }

    // ---- captures --------------------------------------------------------------

    /// Bytes waiting for a live viewer in the lab (for the memory budget).
    pub fn capture_pending(&self, viewer: ClientId) -> usize {
        let Some((key, index)) = self.viewers.get(viewer) else {
            return 0;
        };
        self.node(key)
            .and_then(|n| n.ports.get(index))
            .map_or(0, |p| capture::waiting(&p.capture, viewer))
    }

    /// What waits for a live viewer (taken); `None` once its capture has
    /// ended or it was dropped for not keeping up.
    pub fn capture_output(&mut self, viewer: ClientId) -> Option<Vec<u8>> {
        self.wiring().capture_output(viewer)
    }

    /// A live viewer went away.
    pub fn capture_unwatch(&mut self, viewer: ClientId) {
        self.wiring().capture_unwatch(viewer);
    }

    /// A notification channel closed.
    pub fn unsubscribe(&mut self) {
        self.world.unsubscribe();
    }

    /// Live viewers with output waiting, or whose stream ended.
    pub fn take_ready_viewers(&mut self) -> Vec<ClientId> {
        std::mem::take(&mut self.sink.ready)
    }

    // ---- notifications -----------------------------------------------------------




    /// Tell listeners a node changed (status, name, console).
    fn node_updated(&mut self, key: NodeKey) {
        let Some(n) = self.node(key) else { return };
        let (project, node) = (n.project, n.view());
        self.world.events.emit(Event::NodeUpdated { project, node });
    }

    /// Something for a project's users to read.
    fn project_log(&mut self, project: Uuid, level: LogLevel, text: String) {
        self.world.events.emit(Event::ProjectLog {
            project,
            level,
            text,
        });
    }


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
        Ok(Answer::Ok(Body::Version {
            local: self.world.settings.local,
        }))
    }

    fn request_shutdown(&mut self) -> Reply {
        projects::require_local(&self.world.settings, "Shutting the server down")?;
        self.shutdown = true;
        self.world.events.emit(Event::ShutdownAsked);
        Ok(Answer::Created(Body::Empty))
    }

    fn project(&self, id: Uuid) -> Result<&Project, ApiError> {
        self.projects.get(id)
    }

    fn project_view(&self, id: Uuid) -> Result<Body, ApiError> {
        self.projects.view(id, &self.world.settings).map(Body::Project)
    }

    /// Update a project; it moves only while none of its nodes runs.
    fn update_project(&mut self, id: Uuid, b: spec::ProjectUpdate, host: &mut dyn Host) -> Reply {
        if let Some(to) = self.projects.new_path(id, &b, &self.world.settings)? {
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
            self.projects.repoint(id, &to, host, &mut self.world.events)?;
            for key in keys {
                if let Some(n) = self.registry.get_mut(key) {
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
            self.remove_node(now, key, host);
        }
        self.world.udp_ports.release_owner(id);
        let how = (delete_dir, node_dirs.as_slice());
        self.projects.close(id, how, host, &mut self.world.events)
    }

    fn allocate_udp(&mut self, id: Uuid, host: &mut dyn Host) -> Reply {
        self.project(id)?;
        let (port, ()) = self
            .world
            .udp_ports
            .reserve_lowest(id, |p| host.udp_free(p).then_some(()))?;
        Ok(Answer::Created(Body::UdpPort(port)))
    }

    /// The whole lab, projects by name, nodes by name.
    fn status(&self, now: Instant) -> answer::StatusView {
        let mut projects: Vec<_> = self
            .projects
            .iter()
            .filter_map(|p| {
                let view = self.projects.view(p.id, &self.world.settings).ok()?;
                let mut nodes: Vec<_> = p
                    .nodes
                    .iter()
                    .filter_map(|id| self.key_of(*id).and_then(|k| self.node(k)))
                    .map(|n| n.status(now))
                    .collect();
                nodes.sort_by(|a, b| a.name.cmp(&b.name));
                Some((view, nodes))
            })
            .collect();
        projects.sort_by(|a, b| (&a.0.name, a.0.id).cmp(&(&b.0.name, b.0.id)));
        answer::StatusView {
            local: self.world.settings.local,
            projects,
        }
    }

    /// Check that every structure agrees with every other (see
    /// `invariants::check`).
    pub fn check_invariants(&self) -> Result<(), String> {
        let (pools, projects) = ((&self.world.console_ports, &self.world.udp_ports), &self.projects);
        invariants::check(&self.registry, projects, pools.0, pools.1)
    }
}
