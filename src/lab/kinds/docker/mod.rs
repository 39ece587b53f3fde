//! Containers (sans-IO: the lab decides what to ask the container engine
//! and when; the host sends the requests, makes the veths and relays).
//!
//! nanolab owns a container's plumbing, as it owns a VM's: the engine
//! makes the container with no network (`NetworkMode: none`), and each
//! start nanolab makes one veth pair per adapter, moves one end into the
//! container as `ethN` with its MAC, and opens a packet socket on the
//! other as the adapter's side channel, relayed to the adapter's NIO like
//! a VM's: filters, captures and counters work on container ports as on
//! any other. The console is the container's terminal, attached through
//! the engine before the start and kept by nanolab (many clients,
//! history). A start is a chain of engine calls, one answer at a time:
//! attach, start, inspect (for the process whose namespace the veths go
//! into), then the plumbing; a stop asks the engine to stop the container
//! (SIGTERM, SIGKILL after [`CONTAINER_STOP_WAIT`] s); suspend and resume are the
//! engine's pause and unpause. The container is made when the node is
//! (its create is answered once the engine made it), made again at the
//! next start when an update changed what the engine fixed, and removed
//! when the node is deleted or its project closed.

use super::{
    Behaviour, Ctx, Echo, Face, FrameCx, Gone, Heard, Started, Stopping, Was, status_word,
};
use crate::error::ApiError;
use crate::lab::answer::{Body, DockerView, LogLevel};
use crate::lab::command::{NodeClass, NodeCommand, PortAddr};
use crate::lab::event::Event;
use crate::lab::host::{EngineCall, EngineReply, Veth};
use crate::lab::id::Endpoint;
use crate::lab::port::Port;
use crate::lab::spec::{DockerConfig, DockerPatch};
use crate::lab::types::{Nio, NioEthernet};
use crate::limits::CONTAINER_STOP_WAIT;
pub use container::{LABEL, engine_error};
use container::{Owner, pull_error, split_command, split_image};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use uuid::Uuid;

pub mod container;

/// Where a project keeps its containers' directories (`project-files/docker`).
pub const DIR: &str = "docker";
/// Where adapter `i`'s side channel (the packet socket on the host end of
/// its veth) is among the node's NIO indices: `CHANNEL + i`.
const CHANNEL: usize = 1 << 20;
/// Bytes of the console shown when a container ends at start.
const EXIT_TAIL: usize = 600;
/// What an engine call awaited is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// The image's settings, before making the container.
    Image,
    /// Pulling the image, missing here, from its registry.
    Pull,
    /// Making the container.
    Create,
    /// Removing a container an update made stale, before making it again.
    Remove,
    /// Attaching its terminal.
    Attach,
    /// Starting it.
    Start,
    /// Its process, for the veths.
    Inspect,
    /// Stopping it.
    Stop,
    /// Resuming it (a start of a suspended container).
    Unpause,
    /// Making the auxiliary console's shell (an exec).
    Exec,
    /// Attaching to that shell.
    AuxAttach,
}

/// A container node: its settings, its container, what runs.
#[derive(Debug)]
pub struct Docker {
    /// Its directory (volumes).
    pub dir: PathBuf,
    /// What the API set.
    pub config: Box<DockerConfig>,
    /// Its container and where its making or start stands (boxed: every
    /// node of every kind is as large as the largest kind).
    st: Box<Progress>,
    /// The container runs: its plumbing.
    run: Option<Box<Run>>,
    /// Its auxiliary console: a second shell in the container.
    aux: Option<Box<Aux>>,
}

/// A container node's container, and the engine answer it waits for.
#[derive(Debug, Default)]
struct Progress {
    /// The engine's id of its container (empty until made).
    container: String,
    /// The engine call whose answer the node waits for.
    call: Option<(u64, Op)>,
    /// An update changed what the engine fixed: made again at the next start.
    stale: bool,
    /// The node's create waits for the container.
    creating: bool,
    /// The image was pulled for this making already.
    pulled: bool,
    /// The container is paused.
    paused: bool,
    /// The auxiliary console port its create asked for.
    asked_aux: Option<u16>,
}

/// An auxiliary console: its port and its clients.
#[derive(Debug)]
struct Aux {
    port: u16,
    console: crate::lab::console::Console,
}

/// A running container's plumbing.
#[derive(Debug, Default)]
struct Run {
    /// Its process (0 until inspected).
    pid: u32,
    /// The host ends of its veths.
    links: Vec<String>,
}

impl Docker {
    /// A container node in `dir`.
    pub fn new(dir: PathBuf, config: DockerConfig, asked_aux: Option<u16>) -> Docker {
        Docker {
            dir,
            config: Box::new(config),
            st: Box::new(Progress {
                asked_aux,
                ..Progress::default()
            }),
            run: None,
            aux: None,
        }
    }

    /// Listen for the auxiliary console's clients, when it has one.
    fn open_aux(&mut self, cx: &mut Ctx, asked: Option<u16>) -> Result<(), ApiError> {
        if self.config.aux_type != "telnet" || self.aux.is_some() {
            return Ok(());
        }
        let port = cx.aux_choice().take(asked, true)?;
        self.aux = Some(Box::new(Aux {
            port,
            console: Default::default(),
        }));
        Ok(())
    }

    /// Stop listening for the auxiliary console's clients, and let its
    /// port go.
    fn close_aux(&mut self, cx: &mut Ctx) {
        if let Some(mut aux) = self.aux.take() {
            aux.console.reset(&mut *cx.host);
            cx.host.close_aux(cx.key);
            cx.console_ports.release(aux.port);
        }
    }

    /// The auxiliary console's shell: an exec of a shell that starts again
    /// when it ends (GNS3's), attached once made.
    fn exec_aux(&mut self, cx: &mut Ctx) -> Result<(), ApiError> {
        let body = json!({
            "AttachStdin": true, "AttachStdout": true, "AttachStderr": true, "Tty": true,
            "Cmd": ["/bin/sh", "-c", "while true; do TERM=vt100 /bin/sh; done"],
        });
        let path = format!("/containers/{}/exec", self.st.container);
        self.ask(cx, Op::Exec, ("POST", path), Some(body)).map(drop)
    }

    /// GNS3's base MAC for node `id`: `02:42:` and the id's hex digits 2
    /// to 7, then `:00`.
    pub fn gns3_mac(id: Uuid) -> String {
        let hex = id.simple().to_string();
        format!("02:42:{}:{}:{}:00", &hex[2..4], &hex[4..6], &hex[6..8])
    }

    /// Interface `i`'s MAC: the base plus `i`.
    fn mac(&self, id: Uuid, i: usize) -> String {
        super::mac_plus(&self.config.mac_address, i)
            .or_else(|| super::mac_plus(&Self::gns3_mac(id), i))
            .unwrap_or_default()
    }

    /// Ask the engine `method path` (with `body`), awaiting its answer as
    /// `op`: nothing is finished until it comes (`Heard::Nothing`).
    fn ask(
        &mut self,
        cx: &mut Ctx,
        op: Op,
        (method, path): (&'static str, String),
        body: Option<Value>,
    ) -> Result<Heard, ApiError> {
        let id = cx.next_serial();
        cx.ask_engine(EngineCall {
            body: body.map(|b| b.to_string().into_bytes()),
            attach: matches!(op, Op::Attach | Op::AuxAttach),
            long: op == Op::Pull,
            aux: op == Op::AuxAttach,
            ..EngineCall::new(Some(cx.key), id, (method, path))
        })?;
        self.st.call = Some((id, op));
        Ok(Heard::Nothing)
    }

    /// Ask the engine without waiting: an error only warns.
    fn tell(&mut self, cx: &mut Ctx, method: &'static str, path: String) {
        let call = EngineCall::new(Some(cx.key), cx.next_serial(), (method, path));
        if let Err(e) = cx.ask_engine(call) {
            cx.warn(e.to_string());
        }
    }

    /// Make the container: the image's settings first.
    fn make(&mut self, cx: &mut Ctx) -> Result<(), ApiError> {
        for v in &self.config.extra_volumes {
            cx.host
                .files()
                .create_dir(&container::volume_dir(&self.dir, v))?;
        }
        self.st.pulled = false;
        let path = format!("/images/{}/json", self.config.image);
        self.ask(cx, Op::Image, ("GET", path), None).map(drop)
    }

    /// Pull the image from its registry, as GNS3 does for one missing.
    fn pull(&mut self, cx: &mut Ctx) -> Result<Heard, ApiError> {
        self.st.pulled = true;
        let image = self.config.image.clone();
        let log = format!("Pulling '{image}' from Docker repository");
        cx.events.project_log(cx.project, LogLevel::Info, log);
        let path = match split_image(&image) {
            (repo, Some(tag)) => format!("/images/create?fromImage={repo}&tag={tag}"),
            (repo, None) => format!("/images/create?fromImage={repo}"),
        };
        self.ask(cx, Op::Pull, ("POST", path), None)
    }

    /// Attach to the container's terminal (the start goes on once attached).
    fn attach(&mut self, cx: &mut Ctx) -> Result<(), ApiError> {
        cx.console.history.clear();
        let path = format!(
            "/containers/{}/attach?stream=1&stdin=1&stdout=1&stderr=1",
            self.st.container
        );
        self.ask(cx, Op::Attach, ("POST", path), None).map(drop)
    }

    /// The container's veths: one per adapter, named after the container
    /// (unique on the host, within the 15 bytes a name may have).
    fn veths(&self, cx: &Ctx) -> Vec<Veth> {
        let short: String = self.st.container.chars().take(9).collect();
        (0..self.config.adapters as usize)
            .map(|i| Veth {
                host: format!("nl{short}e{i}"),
                inside: format!("eth{i}"),
                mac: self.mac(cx.id, i),
            })
            .collect()
    }

    /// The container runs as process `pid`: its veths, and a side channel
    /// on each.
    fn plumb(&mut self, cx: &mut Ctx, pid: u32) -> Result<(), ApiError> {
        let veths = self.veths(cx);
        cx.host.plug(pid, &veths)?;
        let run = self.run.get_or_insert_with(Default::default);
        run.pid = pid;
        run.links = veths.iter().map(|v| v.host.clone()).collect();
        for (i, v) in veths.iter().enumerate() {
            let nio = Nio::Ethernet(NioEthernet {
                kind: "nio_ethernet",
                device: v.host.clone(),
            });
            cx.host.open_nio(cx.key, CHANNEL + i, &nio)?;
        }
        cx.events.emit(Event::ProcessStarted {
            node: cx.id,
            pid,
            vpcs_port: 0,
        });
        Ok(())
    }

    /// Let go of what the container ran with: veths, side channels, the
    /// terminal.
    fn unplumb(&mut self, cx: &mut Ctx) {
        self.st.call = None;
        self.st.paused = false;
        if let Some(run) = self.run.take() {
            cx.host.unplug(&run.links);
        }
        for i in 0..self.config.adapters as usize {
            cx.host.close_nio(cx.key, CHANNEL + i);
        }
        cx.host.release_process(cx.key);
    }

    /// A start that failed after the engine started the container: it is
    /// stopped again, and the start fails with `e`.
    fn start_failed(&mut self, cx: &mut Ctx, e: ApiError) -> Heard {
        let started = self.run.is_some();
        self.unplumb(cx);
        if started {
            let path = format!("/containers/{}/kill", self.st.container);
            self.tell(cx, "POST", path);
        }
        Heard::Gone(Gone::StartFailed(e))
    }

    /// The last lines the container printed.
    fn console_tail(cx: &Ctx) -> String {
        let all = cx.console.history.contents();
        let tail = &all[all.len().saturating_sub(EXIT_TAIL)..];
        String::from_utf8_lossy(tail).trim().to_string()
    }

    /// The next step of a start, making or create once `op` was answered.
    fn step(&mut self, cx: &mut Ctx, op: Op, reply: EngineReply) -> Result<Heard, ApiError> {
        match op {
            Op::Image if reply.status == 404 && !self.st.pulled => self.pull(cx),
            Op::Image => self.on_image(cx, &reply),
            Op::Pull => self.on_pulled(cx, &reply),
            Op::Remove => {
                expect(&reply, &[204, 404])?;
                self.st.container.clear();
                self.make(cx).map(|()| Heard::Nothing)
            }
            Op::Create => self.on_created(cx, &reply),
            Op::Attach => {
                expect(&reply, &[101, 200])?;
                let path = format!("/containers/{}/start", self.st.container);
                self.ask(cx, Op::Start, ("POST", path), None)
            }
            Op::Start => {
                expect(&reply, &[204, 304])?;
                self.run = Some(Box::default());
                let path = format!("/containers/{}/json", self.st.container);
                self.ask(cx, Op::Inspect, ("GET", path), None)
            }
            Op::Inspect => self.on_inspected(cx, &reply),
            Op::Exec => Ok(self.on_exec(cx, &reply)),
            Op::AuxAttach => {
                if let Err(e) = expect(&reply, &[101, 200]) {
                    cx.warn(format!("{}'s auxiliary console: {e}", cx.name));
                }
                Ok(Heard::Ready)
            }
            Op::Unpause => {
                expect(&reply, &[204, 304])?;
                self.st.paused = false;
                Ok(Heard::Ready)
            }
            Op::Stop => {
                if let Err(e) = expect(&reply, &[204, 304, 404]) {
                    cx.warn(format!("stopping container {}: {e}", cx.name));
                }
                self.unplumb(cx);
                Ok(Heard::Gone(Gone::Stopped))
            }
        }
    }

    /// The image's settings came: make the container from them.
    fn on_image(&mut self, cx: &mut Ctx, reply: &EngineReply) -> Result<Heard, ApiError> {
        expect(reply, &[200])?;
        let image: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        let owner = Owner {
            name: cx.name,
            id: cx.id,
            project: cx.project,
            projects_dir: &cx.settings.projects_dir.to_string_lossy(),
            dir: &self.dir,
        };
        let (body, refused) = container::create_body(&self.config, owner, &image)?;
        for line in refused {
            cx.warn(format!(
                "{} has invalid environment variable: {line}",
                cx.name
            ));
        }
        let name = container::engine_name(cx.name, cx.id);
        let path = format!("/containers/create?name={name}");
        self.ask(cx, Op::Create, ("POST", path), Some(body))
    }

    /// A pull ended: look at the image again, or say why it failed.
    fn on_pulled(&mut self, cx: &mut Ctx, reply: &EngineReply) -> Result<Heard, ApiError> {
        let image = self.config.image.clone();
        let failed = |why: String| {
            ApiError::conflict(format!(
                "Could not pull the '{image}' image from Docker repository, please \
                 check your Internet connection (original error: {why})"
            ))
        };
        if reply.status != 200 {
            return Err(failed(engine_error(reply).to_string()));
        }
        if let Some(why) = pull_error(&reply.body) {
            return Err(failed(why));
        }
        let log = format!("Success pulling image {image}");
        cx.events.project_log(cx.project, LogLevel::Info, log);
        let path = format!("/images/{image}/json");
        self.ask(cx, Op::Image, ("GET", path), None)
    }

    /// The engine made the container: the create is done, or the start
    /// that made it again goes on.
    fn on_created(&mut self, cx: &mut Ctx, reply: &EngineReply) -> Result<Heard, ApiError> {
        expect(reply, &[201])?;
        let made: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        let id = made["Id"].as_str().unwrap_or_default();
        if id.len() < 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::conflict(format!(
                "Docker made a container without an id: {}",
                String::from_utf8_lossy(&reply.body)
            )));
        }
        self.st.container = id.to_string();
        self.st.stale = false;
        if std::mem::take(&mut self.st.creating) {
            return Ok(Heard::Created);
        }
        self.attach(cx).map(|()| Heard::Nothing)
    }

    /// The running container's process: its veths, then the auxiliary
    /// shell if it has one.
    fn on_inspected(&mut self, cx: &mut Ctx, reply: &EngineReply) -> Result<Heard, ApiError> {
        expect(reply, &[200])?;
        let state: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        let state = &state["State"];
        let pid = state["Pid"].as_u64().and_then(|p| u32::try_from(p).ok());
        let Some(pid) = pid.filter(|&p| p > 0 && state["Running"] == json!(true)) else {
            return Err(ApiError::conflict(format!(
                "Container {} exited as it started: {}",
                cx.name,
                Self::console_tail(cx)
            )));
        };
        self.plumb(cx, pid)?;
        if self.aux.is_none() {
            return Ok(Heard::Ready);
        }
        // The auxiliary shell is a comfort: without it, the node runs.
        match self.exec_aux(cx) {
            Ok(()) => Ok(Heard::Nothing),
            Err(e) => {
                cx.warn(format!("{}'s auxiliary console: {e}", cx.name));
                Ok(Heard::Ready)
            }
        }
    }

    /// The auxiliary shell was made: attach to it (the start is done
    /// either way once that is answered).
    fn on_exec(&mut self, cx: &mut Ctx, reply: &EngineReply) -> Heard {
        let made: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        let id = made["Id"].as_str().unwrap_or_default().to_string();
        let hex = !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit());
        let asked = match expect(reply, &[201]) {
            Ok(()) if hex => {
                let body = json!({"Detach": false, "Tty": true});
                let path = format!("/exec/{id}/start");
                self.ask(cx, Op::AuxAttach, ("POST", path), Some(body))
            }
            Ok(()) => Err(engine_error(reply)),
            Err(e) => Err(e),
        };
        match asked {
            Ok(Heard::Nothing) => Heard::Nothing,
            Ok(other) => other,
            Err(e) => {
                cx.warn(format!("{}'s auxiliary console: {e}", cx.name));
                Heard::Ready
            }
        }
    }

    /// Apply an update: a rename renames the container; the console moves;
    /// the adapters change only while stopped; what the engine fixed makes
    /// the container again at the next start.
    fn update(&mut self, cx: &mut Ctx, b: DockerPatch) -> Result<(), ApiError> {
        if let Some(adapters) = b.adapters
            && adapters != self.config.adapters
        {
            if self.run.is_some() {
                return Err(ApiError::conflict(format!(
                    "Docker container {} must be stopped to change its adapters",
                    cx.name
                )));
            }
            for i in 0..cx.ports.len() {
                cx.host.close_nio(cx.key, i);
            }
            *cx.ports = (0..adapters).map(|a| Port::new(a, 0)).collect();
        }
        if let Some(t) = b.aux_type.as_deref().filter(|t| *t != self.config.aux_type) {
            return Err(ApiError::conflict(format!(
                "The auxiliary console of {} cannot become '{t}' yet: create the node again",
                cx.name
            )));
        }
        if let Some(command) = &b.start_command {
            split_command(command)?;
        }
        if let Some(hosts) = &b.extra_hosts {
            container::extra_hosts(hosts)?;
        }
        match b.console_type.as_deref() {
            Some("none") if cx.console_port.is_some() => {
                cx.host.close_console(cx.key);
                if let Some(port) = cx.console_port.take() {
                    cx.console_ports.release(port);
                }
            }
            Some("telnet") if cx.console_port.is_none() => {
                let port = cx.console_choice().take(b.console, false)?;
                *cx.console_port = Some(port);
            }
            _ => {
                if let Some(port) = b.console.filter(|p| Some(*p) != *cx.console_port) {
                    let mut current = *cx.console_port;
                    let moved = cx.console_choice().move_to(&mut current, port);
                    *cx.console_port = current;
                    moved?;
                }
            }
        }
        if let Some(name) = b.name.clone().filter(|n| n != cx.name.as_str()) {
            if !self.st.container.is_empty() {
                let path = format!(
                    "/containers/{}/rename?name={}",
                    self.st.container,
                    container::engine_name(&name, cx.id)
                );
                self.tell(cx, "POST", path);
            }
            *cx.name = name;
        }
        if b.apply(&mut self.config) && !self.st.container.is_empty() {
            self.st.stale = true;
            if self.run.is_some() {
                cx.warn(format!(
                    "{}'s new settings apply from its next start (the container is made again then)",
                    cx.name
                ));
            }
        }
        cx.updated = true;
        Ok(())
    }
}

/// The engine answered with one of `codes`, or its refusal.
fn expect(reply: &EngineReply, codes: &[u16]) -> Result<(), ApiError> {
    if codes.contains(&reply.status) {
        Ok(())
    } else {
        Err(engine_error(reply))
    }
}

impl Behaviour for Docker {
    fn name(&self) -> &'static str {
        "Docker container"
    }

    fn word(&self) -> &'static str {
        "docker"
    }

    fn running(&self) -> bool {
        self.run.is_some()
    }

    fn class(&self) -> NodeClass {
        NodeClass::Docker
    }

    fn accepts(&self, cmd: &NodeCommand) -> bool {
        use NodeCommand as C;
        !matches!(
            cmd,
            C::Update(_)
                | C::UpdateDevice(_)
                | C::UpdateMapping(..)
                | C::UpdateCloud(..)
                | C::UpdateQemu(_)
                | C::AddDeviceNio(..)
        )
    }

    fn view(&self, n: &Face) -> Body {
        Body::Docker(Box::new(DockerView {
            id: n.id,
            project: n.project,
            name: n.name.to_string(),
            console: n.console,
            config: (*self.config).clone(),
            container_id: self.st.container.clone(),
            aux: self.aux.as_ref().map(|a| a.port),
            status: status_word(n.state, self.st.paused),
            directory: self.dir.clone(),
        }))
    }

    /// An adapter number names the port (an adapter has port 0).
    fn port_index(&self, ports: &[Port], at: PortAddr) -> Result<usize, ApiError> {
        super::adapter_port(ports, at, "Docker container")
    }

    fn command(&mut self, cx: &mut Ctx, cmd: NodeCommand) -> Result<(), ApiError> {
        match cmd {
            NodeCommand::UpdateDocker(b) => self.update(cx, *b),
            // Suspend and resume: the engine's pause and unpause of a
            // running container, nothing on a stopped one (as GNS3).
            NodeCommand::Suspend | NodeCommand::Resume => {
                let pause = matches!(cmd, NodeCommand::Suspend);
                if self.run.is_some() && self.st.paused != pause {
                    let verb = if pause { "pause" } else { "unpause" };
                    let path = format!("/containers/{}/{verb}", self.st.container);
                    self.tell(cx, "POST", path);
                    self.st.paused = pause;
                    cx.updated = true;
                }
                Ok(())
            }
            _ => Err(ApiError::conflict(format!(
                "Docker container {} does not take this request",
                cx.name
            ))),
        }
    }

    fn in_place(&self, cmd: &NodeCommand) -> bool {
        matches!(cmd, NodeCommand::Suspend | NodeCommand::Resume) && self.run.is_some()
    }

    fn provision(&mut self, cx: &mut Ctx) -> Result<bool, ApiError> {
        self.open_aux(cx, self.st.asked_aux)?;
        self.st.creating = true;
        self.make(cx)?;
        Ok(true)
    }

    /// A suspended container resumes (GNS3's resume is a start); a stopped
    /// one is attached, started and plumbed, made again first when stale.
    fn start(&mut self, cx: &mut Ctx) -> Result<Started, ApiError> {
        if self.run.is_some() {
            if !self.st.paused {
                return Ok(Started::Now);
            }
            let path = format!("/containers/{}/unpause", self.st.container);
            self.ask(cx, Op::Unpause, ("POST", path), None)?;
            return Ok(Started::Later);
        }
        if self.st.stale {
            let path = format!("/containers/{}?force=1&v=1", self.st.container);
            self.ask(cx, Op::Remove, ("DELETE", path), None)?;
        } else {
            self.attach(cx)?;
        }
        Ok(Started::Later)
    }

    fn stop(&mut self, cx: &mut Ctx) -> Stopping {
        let Some(pid) = self.run.as_ref().map(|r| r.pid) else {
            return Stopping::Gone;
        };
        cx.events.emit(Event::Stopping { node: cx.id, pid });
        let path = format!(
            "/containers/{}/stop?t={CONTAINER_STOP_WAIT}",
            self.st.container
        );
        match self.ask(cx, Op::Stop, ("POST", path), None) {
            Ok(_) => Stopping::Later,
            Err(e) => {
                cx.warn(format!("stopping container {}: {e}", cx.name));
                self.unplumb(cx);
                Stopping::Gone
            }
        }
    }

    /// A delete removes the container by force: no stop first, which would
    /// wait [`CONTAINER_STOP_WAIT`] s for a shell that ignores SIGTERM.
    fn removal_stops(&self) -> bool {
        true
    }

    /// The container goes (project close, delete, shutdown).
    fn kill(&mut self, cx: &mut Ctx) {
        self.unplumb(cx);
        self.close_aux(cx);
        self.st.creating = false;
        if !self.st.container.is_empty() {
            let path = format!("/containers/{}?force=1&v=1", self.st.container);
            self.tell(cx, "DELETE", path);
            self.st.container.clear();
        }
    }

    fn on_input(&mut self, cx: &mut Ctx, data: &[u8]) {
        cx.host.console_input(cx.key, data);
    }

    fn aux(&self) -> Option<&crate::lab::console::Console> {
        self.aux.as_ref().map(|a| &a.console)
    }

    fn aux_mut(&mut self) -> Option<&mut crate::lab::console::Console> {
        self.aux.as_mut().map(|a| &mut a.console)
    }

    fn on_aux_input(&mut self, cx: &mut Ctx, data: &[u8]) {
        cx.host.aux_input(cx.key, data);
    }

    fn on_engine(&mut self, cx: &mut Ctx, id: u64, answer: Result<EngineReply, String>) -> Heard {
        let Some((_, op)) = self.st.call.filter(|(awaited, _)| *awaited == id) else {
            // An answer nothing waits for (a pause, a rename, a removal).
            match answer {
                Err(e) => cx.warn(e),
                Ok(r) if r.status >= 400 && r.status != 404 => {
                    cx.warn(engine_error(&r).to_string())
                }
                Ok(_) => {}
            }
            return Heard::Nothing;
        };
        self.st.call = None;
        if let (Op::Exec | Op::AuxAttach, Err(e)) = (op, &answer) {
            cx.warn(format!("{}'s auxiliary console: {e}", cx.name));
            return Heard::Ready;
        }
        let outcome = answer
            .map_err(ApiError::conflict)
            .and_then(|reply| self.step(cx, op, reply));
        match outcome {
            Ok(heard) => heard,
            Err(e) if std::mem::take(&mut self.st.creating) => Heard::CreateFailed(e),
            Err(e) if op == Op::Stop => {
                cx.warn(e.to_string());
                self.unplumb(cx);
                Heard::Gone(Gone::Stopped)
            }
            Err(e) => self.start_failed(cx, e),
        }
    }

    /// The container's terminal ended: its process is gone.
    fn on_exit(&mut self, cx: &mut Ctx, how: &str, was: Was) -> Option<Gone> {
        if was == Was::Stopping {
            return None;
        }
        let tail = Self::console_tail(cx);
        self.unplumb(cx);
        Some(match was {
            Was::Starting => Gone::StartFailed(ApiError::conflict(format!(
                "Container {} exited as it started: {tail}",
                cx.name
            ))),
            _ => Gone::Died {
                warning: format!("container exited on its own ({how})"),
                log: format!("Docker container {} has stopped ({how})\n{tail}", cx.name),
                note: format!("\r\n*** container stopped ({how}) ***\r\n"),
            },
        })
    }

    /// A duplicate copies the volumes of a container node (what GNS3
    /// copies: the node's directory), files up to the project files' limits.
    fn copy_from(&mut self, cx: &mut Ctx, origin: &super::Origin) -> Result<(), ApiError> {
        let Some(from) = origin.dir.filter(|_| origin.class == NodeClass::Docker) else {
            return Err(ApiError::conflict(format!(
                "{} is not a Docker container: {} cannot be its duplicate",
                origin.name, cx.name
            )));
        };
        let (from, to) = (from.join("volumes"), self.dir.join("volumes"));
        let files = cx.host.files();
        if !files.exists(&from) {
            return Ok(());
        }
        files.create_dir(&to)?;
        for (rel, _) in files.list_files(&from, crate::limits::MAX_PROJECT_FILES)? {
            let limit = crate::limits::MAX_PROJECT_FILE;
            let Some(data) = files.read_confined(&from, &from.join(&rel), limit)? else {
                continue;
            };
            files.write_confined(&to, &to.join(&rel), &data)?;
        }
        Ok(())
    }

    fn charged(&self, to: Endpoint) -> (usize, bool) {
        super::bridge_charged(to, CHANNEL)
    }

    /// From an adapter's NIO (index `i`) into its veth, or from the veth
    /// (`CHANNEL + i`) out of the NIO.
    fn on_frame(
        &mut self,
        fx: &mut FrameCx,
        index: usize,
        _outbound: bool,
        frame: &[u8],
        send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
    ) -> Echo {
        let open = self.run.as_ref().is_some_and(|r| r.pid > 0);
        super::bridge(fx, index, CHANNEL, open, frame, send)
    }

    fn dir(&self) -> Option<&Path> {
        Some(&self.dir)
    }

    fn moved(&mut self, project_dir: &Path, id: Uuid) {
        self.dir = crate::lab::project::node_dir(project_dir, DIR, id);
    }

    fn check(&self, starting: bool) -> Result<(), String> {
        let step = matches!(
            self.st.call,
            Some((
                _,
                Op::Attach | Op::Start | Op::Inspect | Op::Exec | Op::AuxAttach
            ))
        );
        if !starting && step {
            return Err("a start step awaits the engine, yet no start is parked".into());
        }
        Ok(())
    }
}
