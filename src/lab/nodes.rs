//! The node world (sans-IO): every node, what node operations share,
//! the data plane's and the wiring's parts; and the orchestration of one
//! node's life: its request queue, the start or stop parked on it and what
//! a finished one leads to, its kind lent its context for each step. The
//! lab above it holds the projects and the server; a node removed here is
//! told to it through [`Nodes::removed`].

use super::answer::{Answer, Body, LogLevel, Reply};
use super::capture;
use super::command::{NodeCommand, PortAddr, PortSettings, Ticket};
use super::event::Event;
use super::host::Host;
use super::id::{Endpoint, NodeKey};
use super::kinds::{Behaviour, Ctx, Gone, Heard, Started, State, Stopping, Was};
use super::links::Links;
use super::node::{AfterStop, Job, Node, Pending, went_away};
use super::plane::Plane;
use super::port::Wire;
use super::projects;
use super::registry::Registry;
use super::timers::Alarm;
use super::types::Nio;
use super::wiring::Wiring;
use super::world::World;
use crate::error::ApiError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use uuid::Uuid;

/// The outcome of running a command: an answer now, or later.
#[derive(Debug)]
pub enum Step {
    /// Answered.
    Done(Reply),
    /// Parked on the node; a later event answers it (or it was answered
    /// already and the node is gone).
    Parked,
}

fn gone(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("VPCS VM ID {id} was deleted"))
}

/// A node that went away, for its project to forget.
#[derive(Debug)]
pub struct Removed {
    /// Its project.
    pub project: Uuid,
    /// Its id.
    pub id: Uuid,
    /// The MAC offset it took from the project.
    pub mac: Option<u8>,
    /// Its directory, to delete at the project's next commit.
    pub dir: Option<PathBuf>,
}

/// Every node and what node operations share.
#[derive(Debug)]
pub struct Nodes {
    /// What node operations share: configuration, pools, deadlines, events.
    pub world: World,
    /// The nodes, by key and by id.
    pub registry: Registry,
    /// Captures with records to write, live viewers to wake.
    pub sink: capture::Sink,
    /// Live capture viewers: where their capture is.
    pub viewers: capture::Viewers,
    /// Randomness for link filters and the frames they hold back.
    pub wire: Wire,
    /// Nodes a frame left work for, done at the next poll (no host then).
    pub later: Vec<NodeKey>,
    /// Tunnels whose both ends are ours.
    pub links: Links,
    /// Frames the data plane may still handle this loop turn.
    pub frames_left: usize,
    /// Frames for the next turn, once this one's budget is spent.
    pub carry: super::plane::Carry,
    /// Nodes removed since the lab last looked.
    pub removed: Vec<Removed>,
    /// Where each project lives (its captures go under it).
    pub project_dirs: HashMap<Uuid, PathBuf>,
}

impl Nodes {
    /// No node yet.
    pub fn new(world: World) -> Self {
        Nodes {
            world,
            registry: Registry::default(),
            sink: capture::Sink::default(),
            viewers: capture::Viewers::default(),
            wire: Wire::default(),
            later: Vec::new(),
            links: Links::default(),
            frames_left: crate::limits::FRAMES_PER_TURN,
            carry: Default::default(),
            removed: Vec::new(),
            project_dirs: HashMap::new(),
        }
    }

    /// What frames and deadlines left for this turn: work a frame left
    /// for a host, the deadlines due, one queued spawn, capture writes.
    pub fn poll(&mut self, now: Instant, host: &mut dyn Host) {
        for key in std::mem::take(&mut self.later) {
            self.lend(now, key, host, |k, cx| k.flush(cx));
        }
        while let Some(d) = self.world.timers.pop_expired(now) {
            match d {
                super::timers::Deadline::Heartbeat => self.world.heartbeat(now, host),
                super::timers::Deadline::Node(key, alarm) => self.on_alarm(now, key, alarm, host),
            }
        }
        self.spawn_next(now, host);
        for (key, index) in std::mem::take(&mut self.sink.dirty) {
            self.wiring().flush_capture(key, index, host);
        }
    }

    /// Whether a poll has work now.
    pub fn busy(&self) -> bool {
        !self.world.spawns.is_empty() || !self.later.is_empty() || !self.carry.is_empty()
    }

    /// A new loop turn: the frame budget is whole again, and the frames
    /// carried from the last turn go first, as far as it lasts.
    pub fn begin_turn(&mut self, now: Instant, host: &mut dyn Host) {
        self.frames_left = crate::limits::FRAMES_PER_TURN;
        while self.frames_left > 0
            && let Some((at, frame)) = self.carry.pop()
        {
            self.on_frame(now, at, &frame, &mut |to, data| host.send_frame(to, data));
        }
    }

    /// When a delayed frame is next due.
    pub fn next_held(&self) -> Option<Instant> {
        self.wire.delayed.next_due()
    }

    /// The data plane's parts, lent for one call.
    pub(super) fn plane(&mut self) -> Plane<'_> {
        Plane {
            registry: &mut self.registry,
            sink: &mut self.sink,
            wire: &mut self.wire,
            later: &mut self.later,
            links: &self.links,
            budget: &mut self.frames_left,
            carry: &mut self.carry,
        }
    }

    /// The wiring's parts, lent for one call.
    pub(super) fn wiring(&mut self) -> Wiring<'_> {
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

    /// A frame `send` took for `to` (and said went) that the host could not
    /// send after all, when it sent a batch: the port that counted it
    /// counts a send drop instead. (A capture on that port keeps it.)
    pub fn unsent(&mut self, to: Endpoint, len: usize) {
        let (Endpoint::Node(key) | Endpoint::Nio(key, _)) = to;
        let Some(node) = self.registry.get_mut(key) else {
            return;
        };
        let (i, outbound) = node.kind.face().charged(to);
        if let Some(port) = node.ports.get_mut(i) {
            port.unsent(outbound, len);
        }
    }

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
    pub(super) fn lend<R>(
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
            // Once the turn's budget is spent (or frames wait from an
            // earlier turn, which go first), what a node sends waits for
            // the next turn in memory.
            if (self.frames_left == 0 || !self.carry.is_empty()) && self.carry.has_room(frame.len())
            {
                self.carry.push(Endpoint::Node(key), frame);
                continue;
            }
            self.on_frame(now, Endpoint::Node(key), &frame, &mut |to, data| {
                host.send_frame(to, data)
            });
        }
        Some((r, updated))
    }

    /// [`Lab::lend`], then tell listeners when the node changed.
    pub(super) fn with_kind<R>(
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

    /// Queue a node command; it runs at once if the node is idle.
    pub(super) fn submit(
        &mut self,
        now: Instant,
        ticket: Ticket,
        key: NodeKey,
        command: NodeCommand,
        host: &mut dyn Host,
    ) {
        let Some(node) = self.node_mut(key) else {
            return;
        };
        if let Some(job) = node.queue.submit(Job { ticket, command }) {
            self.run_jobs(now, key, job, host);
        }
    }

    /// Run `job` and whatever waits behind it, until one parks.
    pub(super) fn run_jobs(&mut self, now: Instant, key: NodeKey, job: Job, host: &mut dyn Host) {
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
    pub(super) fn finish_parked(
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
    pub(super) fn exec(
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
        if node.face().in_place(&cmd) {
            return Step::Done(self.update(now, key, cmd, host).map(|_| Answer::NoContent));
        }
        Step::Done(match cmd {
            C::Get => Ok(Answer::Ok(node.view())),
            C::Delete if node.face().removal_stops() => {
                host.reply(ticket, Ok(Answer::NoContent));
                self.remove_node(now, key, host);
                return Step::Parked;
            }
            C::Delete => return self.stop_then(now, key, ticket, AfterStop::Delete, host),
            C::Start => return self.start(now, key, ticket, host),
            C::Stop => return self.stop_then(now, key, ticket, AfterStop::Reply, host),
            C::Reload if running => {
                return self.stop_then(now, key, ticket, AfterStop::Start, host);
            }
            C::Reload => return self.start(now, key, ticket, host),
            C::Update(_)
            | C::UpdateDevice(_)
            | C::UpdateMapping(..)
            | C::UpdateCloud(..)
            | C::UpdateQemu(_)
            | C::UpdateDocker(_) => self.update(now, key, cmd, host),
            C::AddNio(at, nio) => self.add_nio(now, key, (at, None), nio, host),
            C::AddDeviceNio(port, nio, s) => {
                self.add_nio(now, key, (PortAddr { adapter: 0, port }, s), nio, host)
            }
            C::AttachNio(at, nio, filters) => self
                .add_nio(now, key, (at, None), nio, host)
                .and_then(|r| self.wiring().set_filters(key, at, filters).map(|()| r)),
            C::RemoveNio(at) => self.remove_nio(now, key, at, host),
            C::SetFilters(at, filters) => self
                .wiring()
                .set_filters(key, at, filters)
                .map(|()| Answer::Created(Body::Empty)),
            C::StartCapture(at, b) => {
                let dir = self
                    .project_dirs
                    .get(&node.project)
                    .cloned()
                    .unwrap_or_default();
                self.wiring().start_capture(&dir, now, key, at, b, host)
            }
            C::StopCapture(at) => self.wiring().stop_capture(key, at, host),
            C::WatchCapture(at) => self
                .wiring()
                .watch_capture(key, at, capture::viewer(ticket)),
            C::Suspend | C::Resume => Ok(Answer::NoContent),
            C::ConsoleReset => self.node_mut(key).ok_or_else(went_away).map(|n| {
                n.console.reset(host);
                Answer::NoContent
            }),
            C::Duplicate(dest) => self.duplicate(now, key, dest, host),
            C::ConsoleSocket => node.console_socket(),
        })
    }

    /// An update only the node's kind knows; answered with the node.
    pub(super) fn update(
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
    pub(super) fn start(
        &mut self,
        now: Instant,
        key: NodeKey,
        ticket: Ticket,
        host: &mut dyn Host,
    ) -> Step {
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
    pub(super) fn stop_then(
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
    pub(super) fn after_stop(
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
    pub(super) fn spawn_next(&mut self, now: Instant, host: &mut dyn Host) {
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
    pub(super) fn on_alarm(
        &mut self,
        now: Instant,
        key: NodeKey,
        alarm: Alarm,
        host: &mut dyn Host,
    ) {
        if let Alarm::StartTimeout(_) = alarm {
            // The prompt may be waiting unread while the loop was busy:
            // take it before judging.
            self.take_pending_output(now, key, host);
        }
        let ready = self.with_kind(now, key, host, |k, cx| k.on_alarm(cx, alarm));
        if ready == Ok(true) {
            self.became_ready(now, key, host);
        }
    }

    pub(super) fn take_pending_output(&mut self, now: Instant, key: NodeKey, host: &mut dyn Host) {
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
        let id = node.id;
        node.console
            .broadcast(id, data, host, &mut self.world.events);
        if ready {
            self.became_ready(now, key, host);
        }
    }

    /// The node's process is ready: a parked start is answered.
    fn became_ready(&mut self, now: Instant, key: NodeKey, host: &mut dyn Host) {
        let Some(node) = self.registry.get(key) else {
            return;
        };
        let (id, pending) = (node.id, node.pending);
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

    /// The node's machine monitor said `data` (a VM's QMP).
    pub fn on_monitor(&mut self, now: Instant, key: NodeKey, data: &[u8], host: &mut dyn Host) {
        let ready = self
            .with_kind(now, key, host, |k, cx| k.on_monitor(cx, data))
            .unwrap_or(false);
        if ready {
            self.became_ready(now, key, host);
        }
    }

    /// The container engine answered the node's call `id`.
    pub fn on_engine(
        &mut self,
        now: Instant,
        key: NodeKey,
        id: u64,
        answer: Result<super::host::EngineReply, String>,
        host: &mut dyn Host,
    ) {
        let Ok(heard) = self.with_kind(now, key, host, |k, cx| k.on_engine(cx, id, answer)) else {
            return;
        };
        match heard {
            Heard::Nothing => {}
            Heard::Ready => self.became_ready(now, key, host),
            Heard::Gone(gone) => self.gone(now, key, gone, host),
            Heard::Created | Heard::CreateFailed(_) => {
                let Some(node) = self.node_mut(key) else {
                    return;
                };
                let Some(Pending::Create(ticket)) = node.pending else {
                    return;
                };
                node.pending = None;
                if let Heard::CreateFailed(e) = heard {
                    host.reply(ticket, Err(e));
                    self.remove_node(now, key, host);
                } else {
                    let view = node.view();
                    self.finish_parked(now, key, ticket, Ok(Answer::Created(view)), host);
                }
            }
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
            Some(Pending::Create(_)) | None => Was::Running,
        };
        let Ok(Some(gone)) = self.with_kind(now, key, host, |k, cx| k.on_exit(cx, how, was)) else {
            return;
        };
        self.gone(now, key, gone, host);
    }

    /// What the node ran is gone (`gone` says how): finish what was
    /// parked on it, or tell its users it died.
    fn gone(&mut self, now: Instant, key: NodeKey, gone: Gone, host: &mut dyn Host) {
        let Some(node) = self.node_mut(key) else {
            return;
        };
        let (id, project) = (node.id, node.project);
        let pending = node.pending.take();
        self.node_updated(key);
        match (gone, pending) {
            (Gone::StartFailed(e), Some(Pending::Start(ticket))) => {
                self.world
                    .events
                    .warn(Some(id), format!("start failed: {e}"));
                self.finish_parked(now, key, ticket, Err(e), host);
            }
            (Gone::Stopped, Some(Pending::Stop(ticket, then))) => {
                self.after_stop(now, key, ticket, then, host)
            }
            (Gone::Died { warning, log, note }, _) => {
                self.world.events.warn(Some(id), warning);
                self.world.events.project_log(project, LogLevel::Error, log);
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
    pub(super) fn kill_now(&mut self, now: Instant, key: NodeKey, host: &mut dyn Host) {
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
        if let Some(Pending::Start(ticket) | Pending::Stop(ticket, _) | Pending::Create(ticket)) =
            node.pending.take()
        {
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
    pub(super) fn remove_node(&mut self, now: Instant, key: NodeKey, host: &mut dyn Host) {
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
        self.removed.push(Removed {
            project: node.project,
            id,
            mac: node.face().project_mac(),
            dir: node.face().dir().map(Path::to_path_buf),
        });
        let what = node.word();
        self.world
            .events
            .emit(Event::NodeDeleted { node: id, what });
    }

    /// Put a new node in the lab and its project.
    pub(super) fn add_node(&mut self, node: Node) -> Answer {
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
        Answer::Created(view)
    }

    /// Give a port (the kind chooses it) a NIO; the kind hears whether it
    /// took.
    pub(super) fn add_nio(
        &mut self,
        now: Instant,
        key: NodeKey,
        (at, settings): (PortAddr, Option<PortSettings>),
        nio: Nio,
        host: &mut dyn Host,
    ) -> Reply {
        let index = self.with_kind(now, key, host, |k, cx| k.nio_port(cx, at, settings))??;
        let reply = self.wiring().attach_nio(key, index, nio, host);
        let linked = reply.is_ok();
        if let Some(node) = self.node_mut(key) {
            node.kind
                .face_mut()
                .nio_changed(&mut node.ports, index, linked);
        }
        let _ = self.with_kind(now, key, host, |k, cx| k.link_state(cx, index, linked));
        reply
    }

    /// Remove a port's NIO; as in 1.3.13, a PC's port without one is fine.
    pub(super) fn remove_nio(
        &mut self,
        now: Instant,
        key: NodeKey,
        at: PortAddr,
        host: &mut dyn Host,
    ) -> Reply {
        let index = self.wiring().port_of(key, at)?;
        self.wiring().drop_nio(key, index, host);
        if let Some(node) = self.node_mut(key) {
            node.kind
                .face_mut()
                .nio_changed(&mut node.ports, index, false);
        }
        let _ = self.with_kind(now, key, host, |k, cx| k.link_state(cx, index, false));
        Ok(Answer::NoContent)
    }

    /// 2.2's `duplicate`: node `dest` (created beforehand by the
    /// controller) takes what its kind copies from this node (a startup
    /// script, with its own name; a container's volumes).
    pub(super) fn duplicate(
        &mut self,
        now: Instant,
        key: NodeKey,
        dest: Uuid,
        host: &mut dyn Host,
    ) -> Reply {
        let node = self.node(key).ok_or_else(went_away)?;
        let face = node.face();
        let script = face.script().map(str::to_string);
        let dir = face.dir().map(Path::to_path_buf);
        let (project, from, class) = (node.project, node.name.clone(), face.class());
        let dkey = self
            .key_of(dest)
            .filter(|k| self.node(*k).is_some_and(|n| n.project == project))
            .ok_or_else(|| ApiError::NotFound(format!("Node ID {dest} doesn't exist")))?;
        let origin = super::kinds::Origin {
            name: &from,
            class,
            script: script.as_deref(),
            dir: dir.as_deref(),
        };
        self.with_kind(now, dkey, host, |k, cx| k.copy_from(cx, &origin))??;
        let view = self.node(dkey).ok_or_else(went_away)?.view();
        Ok(Answer::Created(view))
    }

    /// Tell listeners a node changed (status, name, console).
    pub(super) fn node_updated(&mut self, key: NodeKey) {
        let Some(n) = self.node(key) else { return };
        let (project, node) = (n.project, n.view());
        self.world.events.emit(Event::NodeUpdated { project, node });
    }
}
