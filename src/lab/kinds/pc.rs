//! Virtual PCs: one kind, two engines (sans-IO: the lab decides, the host
//! spawns, signals and reads).
//!
//! On the process engine, Debian's `vpcs` runs as a child. A start waits
//! on the lab's spawn queue (one spawn per loop turn), then for the
//! console's prompt; the process dying first is a 409 with what it
//! printed, and a console silent for [`START_TIMEOUT`] gets the process
//! killed. A stop sends SIGTERM, SIGKILL after [`STOP_GRACE`], and finishes
//! when the process is gone. On the built-in engine the PC lives in the
//! lab ([`BuiltinPc`]) and starts and stops at once.

use super::builtin::BuiltinPc;
use super::vpcs::{
    LOG_FILE, PROMPT, Proc, RELAY_OFFSET, STARTUP_SCRIPT, expand_script, last_run, relay_port,
    renamed_script,
};
use super::{Behaviour, Ctx, Echo, Face, FrameCx, Gone, Started, State, Stopping, Was};
use crate::error::ApiError;
use crate::lab::answer::{Body, VpcsView};
use crate::lab::command::{NodeClass, NodeCommand, PortAddr};
use crate::lab::event::Event;
use crate::lab::host::{Host, Signal, Spawn};
use crate::lab::id::Endpoint;
use crate::lab::port::{Pass, Port, Tap};
use crate::lab::project::Project;
use crate::lab::spec::{VmCreate, VmUpdate};
use crate::lab::timers::Alarm;
use crate::limits::{START_ERROR_BYTES, START_TIMEOUT, STOP_GRACE};
use std::path::Path;
use std::time::Instant;
use uuid::Uuid;

/// Where a project keeps its PCs' directories (`project-files/vpcs`).
pub const DIR: &str = "vpcs";

/// A virtual PC: what both engines share, and the engine.
#[derive(Debug)]
pub struct Pc {
    /// Working directory.
    pub dir: Box<Path>,
    /// Startup script text, if any.
    pub startup_script: Option<String>,
    /// The command line of the last run (2.2's `command_line`).
    pub command_line: Box<str>,
    /// What runs it.
    pub engine: Engine,
}

/// What runs a PC.
#[derive(Debug)]
pub enum Engine {
    /// Debian's `vpcs` program, one process per PC.
    Process(Process),
    /// The built-in engine: no process, the PC lives in the lab.
    Builtin(Box<BuiltinPc>),
}

/// The process engine's state.
#[derive(Debug)]
pub struct Process {
    /// MAC offset passed as `-m`, taken from the project.
    pub mac: u8,
    /// The running process, if any.
    pub proc: Option<Box<Proc>>,
}

impl Pc {
    /// A new PC of `project`: its directory and script (the one given, `%h`
    /// expanded; else the `startup.vpc` already there), then its engine (a
    /// MAC from the project for `vpcs`, from the host-wide space for the
    /// built-in one). Nothing is left taken on failure.
    pub fn create(
        project: &mut Project,
        id: Uuid,
        b: &VmCreate,
        builtin: Option<[u8; 6]>,
        host: &mut dyn Host,
    ) -> Result<Pc, ApiError> {
        let dir = project.node_dir(DIR, id);
        let mac = match builtin {
            Some(_) => 0,
            None => project.take_mac()?,
        };
        let script = host.files().create_dir(&dir).and_then(|()| {
            super::vpcs::startup_script(host, &dir, b.startup_script.as_deref(), &b.name)
        });
        let script = match script {
            Ok(s) => s,
            Err(e) => {
                if builtin.is_none() {
                    project.release_mac(mac);
                }
                return Err(e);
            }
        };
        Ok(Pc {
            dir: dir.into_boxed_path(),
            startup_script: script,
            command_line: Box::default(),
            engine: match builtin {
                Some(mac) => Engine::Builtin(Box::new(BuiltinPc::new(mac))),
                None => Engine::Process(Process { mac, proc: None }),
            },
        })
    }

    fn proc(&self) -> Option<&Proc> {
        match &self.engine {
            Engine::Process(p) => p.proc.as_deref(),
            Engine::Builtin(_) => None,
        }
    }

    /// Rename (and the name inside the script), move the console, replace
    /// the script. The script file is written only when it changes, and
    /// never deleted: `""` leaves an empty file, as GNS3 1.3.13 does.
    fn update(&mut self, cx: &mut Ctx, b: VmUpdate) -> Result<(), ApiError> {
        match (b.console_telnet, *cx.console_port) {
            (Some(false), Some(old)) => {
                cx.host.close_console(cx.key);
                cx.console_ports.release(old);
                cx.console.reset(&mut *cx.host);
                *cx.console_port = None;
            }
            (Some(true), None) => {
                let port = cx.console_choice().take(b.console, true)?;
                *cx.console_port = Some(port);
            }
            _ => {}
        }
        if let Some(port) = b.console.filter(|p| Some(*p) != *cx.console_port)
            && cx.console_port.is_some()
        {
            let mut current = *cx.console_port;
            let moved = cx.console_choice().move_to(&mut current, port);
            *cx.console_port = current;
            match moved {
                Err(e) if b.console_pick => cx.warn(format!(
                    "console port {port} not available ({e}); keeping the current one"
                )),
                r => r?,
            }
        }
        let path = self.dir.join(STARTUP_SCRIPT);
        if let Some(new) = &b.name
            && let Some(script) = &self.startup_script
        {
            let renamed = renamed_script(script, cx.name, new);
            cx.host.files().write_file(&path, renamed.as_bytes())?;
            self.startup_script = Some(renamed);
        }
        if let Some(new) = b.name {
            *cx.name = new;
        }
        if let Some(script) = b.startup_script {
            let script = expand_script(&script, cx.name);
            cx.host.files().write_file(&path, script.as_bytes())?;
            self.startup_script = Some(script);
        }
        // 2.2 tells listeners after every update.
        cx.updated = true;
        Ok(())
    }

    /// Spawn `vpcs` for this node, with its ports reserved in the node's
    /// name (a tunnel of the project must not be given the port it binds).
    fn spawn_process(&mut self, cx: &mut Ctx) -> Result<(), ApiError> {
        let Engine::Process(p) = &mut self.engine else {
            return Ok(());
        };
        let mut spawn = Spawn {
            program: cx.settings.vpcs.clone(),
            sandbox: cx.settings.console_sandbox,
            dir: self.dir.to_path_buf(),
            mac: p.mac,
            vpcs_port: 0,
            startup_script: self.startup_script.is_some(),
        };
        // The project may have been re-pointed to a copy without this
        // node's directory: VPCS needs it to run in.
        cx.host.files().create_dir(&spawn.dir)?;
        let host = &mut *cx.host;
        let (vpcs_port, ()) = cx.udp_ports.reserve_pair(cx.id, RELAY_OFFSET, |p| {
            (host.udp_free(p) && relay_port(p).is_some_and(|r| host.udp_free(r))).then_some(())
        })?;
        spawn.vpcs_port = vpcs_port;
        let spawned = match cx.host.spawn(cx.key, &spawn) {
            Ok(s) => s,
            Err(e) => {
                release_ports(cx, vpcs_port);
                return Err(e);
            }
        };
        let serial = cx.next_serial();
        cx.console.history.clear();
        self.command_line = spawned.command_line.into();
        p.proc = Some(Box::new(Proc {
            serial,
            pid: spawned.pid,
            vpcs_port,
            ready: false,
            boot_output: Vec::new(),
            filter_shell: spawned.filter_shell,
        }));
        cx.schedule(cx.now + START_TIMEOUT, Alarm::StartTimeout(serial));
        cx.events.emit(Event::ProcessStarted {
            node: cx.id,
            pid: spawned.pid,
            vpcs_port,
        });
        Ok(())
    }

    /// Forget the process: what the host held, its ports. Returns what it
    /// printed before its prompt, `None` when there was no process.
    fn process_gone(&mut self, cx: &mut Ctx, how: &str) -> Option<Vec<u8>> {
        let Engine::Process(p) = &mut self.engine else {
            return None;
        };
        let p = p.proc.take()?;
        cx.host.release_process(cx.key);
        release_ports(cx, p.vpcs_port);
        cx.events.emit(Event::ProcessGone {
            node: cx.id,
            pid: p.pid,
            how: how.to_string(),
        });
        Some(p.boot_output)
    }

    /// Why a start failed: what the last run wrote to `vpcs.log` (stderr
    /// as well as the console), else what the console showed.
    fn start_error(&self, cx: &mut Ctx, how: &str, boot_output: &[u8]) -> ApiError {
        let log = cx
            .host
            .files()
            .read_tail(&self.dir.join(LOG_FILE), 4 * START_ERROR_BYTES);
        let output = last_run(&log)
            .filter(|o| !o.is_empty())
            .unwrap_or(boot_output);
        let output = &output[output.len().saturating_sub(START_ERROR_BYTES)..];
        let text = String::from_utf8_lossy(output);
        ApiError::conflict(format!("VPCS exited at start ({how}): {}", text.trim()))
    }

    /// The process of this node, if it is still the one numbered `serial`.
    fn proc_of(&self, serial: u64) -> Option<&Proc> {
        self.proc().filter(|p| p.serial == serial)
    }
}

fn release_ports(cx: &mut Ctx, vpcs_port: u16) {
    cx.udp_ports.release(vpcs_port);
    if let Some(relay) = relay_port(vpcs_port) {
        cx.udp_ports.release(relay);
    }
}

impl Behaviour for Pc {
    fn name(&self) -> &'static str {
        "VPCS"
    }

    fn word(&self) -> &'static str {
        "vpcs"
    }

    fn running(&self) -> bool {
        match &self.engine {
            Engine::Process(p) => p.proc.is_some(),
            Engine::Builtin(b) => b.pc.is_some(),
        }
    }

    fn class(&self) -> NodeClass {
        NodeClass::Vpcs
    }

    fn accepts(&self, cmd: &NodeCommand) -> bool {
        !matches!(
            cmd,
            NodeCommand::UpdateDevice(_)
                | NodeCommand::AddDeviceNio(..)
                | NodeCommand::UpdateMapping(..)
        )
    }

    fn view(&self, n: &Face) -> Body {
        Body::Vpcs(VpcsView {
            id: n.id,
            project: n.project,
            name: n.name.to_string(),
            console: n.console.unwrap_or(0),
            startup_script: self.startup_script.clone(),
            startup_script_path: self
                .startup_script
                .as_ref()
                .map(|_| STARTUP_SCRIPT.to_string()),
            status: status_word(n.state),
            console_telnet: n.console.is_some(),
            directory: self.dir.to_path_buf(),
            command_line: self.command_line.to_string(),
        })
    }

    /// As in GNS3 1.3.13, a VPCS has one adapter and the adapter number is
    /// not checked; another port number is a 409 in 1.3.13's words.
    fn port_index(&self, ports: &[Port], at: PortAddr) -> Result<usize, ApiError> {
        ports
            .iter()
            .position(|p| p.adapter == 0 && p.number == at.port)
            .ok_or_else(|| {
                ApiError::conflict(format!(
                    "Port {} doesn't exist in adapter Ethernet adapter (a VPCS has port 0 only)",
                    at.port
                ))
            })
    }

    fn command(&mut self, cx: &mut Ctx, cmd: NodeCommand) -> Result<(), ApiError> {
        match cmd {
            NodeCommand::Update(b) => self.update(cx, b),
            _ => Err(ApiError::conflict(format!(
                "VPCS {} does not take this request",
                cx.name
            ))),
        }
    }

    fn start(&mut self, cx: &mut Ctx) -> Result<Started, ApiError> {
        match &mut self.engine {
            Engine::Process(p) if p.proc.is_some() => Ok(Started::Now),
            Engine::Process(_) => {
                cx.spawns.push_back(cx.key);
                Ok(Started::Later)
            }
            Engine::Builtin(b) => {
                let ident = cx.next_serial() as u16;
                b.boot(cx, ident, &mut self.startup_script, &self.dir);
                self.command_line = "built-in PC engine".into();
                Ok(Started::Now)
            }
        }
    }

    fn spawn(&mut self, cx: &mut Ctx) -> Result<(), ApiError> {
        self.spawn_process(cx)
    }

    fn stop(&mut self, cx: &mut Ctx) -> Stopping {
        let p = match &mut self.engine {
            Engine::Builtin(b) => {
                b.stop(cx);
                return Stopping::Gone;
            }
            Engine::Process(p) => p,
        };
        let Some(proc) = &p.proc else {
            return Stopping::Gone;
        };
        let (serial, pid) = (proc.serial, proc.pid);
        cx.events.emit(Event::Stopping { node: cx.id, pid });
        cx.host.signal(cx.key, Signal::Term);
        cx.schedule(cx.now + STOP_GRACE, Alarm::Kill(serial));
        Stopping::Later
    }

    fn kill(&mut self, cx: &mut Ctx) {
        match &mut self.engine {
            Engine::Builtin(b) => b.stop(cx),
            Engine::Process(p) if p.proc.is_some() => {
                cx.host.signal(cx.key, Signal::Kill);
                let how = cx.host.reap(cx.key);
                self.process_gone(cx, &how);
            }
            Engine::Process(_) => {}
        }
    }

    fn on_input(&mut self, cx: &mut Ctx, data: &[u8]) {
        match &mut self.engine {
            Engine::Process(_) => cx.host.console_input(cx.key, data),
            Engine::Builtin(b) => b.input(cx, data, &mut self.startup_script, &self.dir),
        }
    }

    /// Keep the boot output and look for the prompt, searching only what
    /// is new (and the bytes a prompt could straddle); the last
    /// [`START_ERROR_BYTES`] are kept for an error.
    fn on_output(&mut self, cx: &mut Ctx, data: &[u8]) -> bool {
        let Engine::Process(Process { proc: Some(p), .. }) = &mut self.engine else {
            return false;
        };
        if p.ready {
            return false;
        }
        cx.host.log_output(cx.key, data);
        let from = p.boot_output.len().saturating_sub(PROMPT.len() - 1);
        p.boot_output.extend_from_slice(data);
        let found = p.boot_output[from..]
            .windows(PROMPT.len())
            .any(|w| w == PROMPT);
        let excess = p.boot_output.len().saturating_sub(START_ERROR_BYTES);
        p.boot_output.drain(..excess);
        if found {
            p.ready = true;
            p.boot_output = Vec::new();
        }
        found
    }

    fn on_exit(&mut self, cx: &mut Ctx, how: &str, was: Was) -> Option<Gone> {
        let boot_output = self.process_gone(cx, how)?;
        Some(match was {
            Was::Starting => Gone::StartFailed(self.start_error(cx, how, &boot_output)),
            Was::Stopping => Gone::Stopped,
            Was::Running => {
                let log = cx
                    .host
                    .files()
                    .read_tail(&self.dir.join(LOG_FILE), START_ERROR_BYTES);
                let log = last_run(&log).unwrap_or(&log);
                Gone::Died {
                    warning: format!("vpcs exited on its own ({how})"),
                    log: format!(
                        "VPCS {} process has stopped ({how})\n{}",
                        cx.name,
                        String::from_utf8_lossy(log).trim()
                    ),
                    note: format!("\r\n*** VPCS stopped ({how}) ***\r\n"),
                }
            }
        })
    }

    fn on_alarm(&mut self, cx: &mut Ctx, alarm: Alarm) -> bool {
        match alarm {
            Alarm::Kill(serial) => {
                let Some(p) = self.proc_of(serial) else {
                    return false;
                };
                let pid = p.pid;
                cx.warn(format!(
                    "pid {pid} ignored SIGTERM for {STOP_GRACE:?}: killing it"
                ));
                cx.host.signal(cx.key, Signal::Kill);
            }
            Alarm::StartTimeout(serial) => {
                if self.proc_of(serial).is_some_and(|p| !p.ready) {
                    cx.warn(format!("console did not answer within {START_TIMEOUT:?}"));
                    cx.host.signal(cx.key, Signal::Kill);
                }
            }
            Alarm::KvmCheck(_) => {}
            Alarm::Wake => {
                if let Engine::Builtin(b) = &mut self.engine {
                    b.timer(cx, &mut self.startup_script, &self.dir);
                }
            }
        }
        false
    }

    fn flush(&mut self, cx: &mut Ctx) {
        if let Engine::Builtin(b) = &mut self.engine {
            b.flush(cx, &mut self.startup_script, &self.dir);
        }
    }

    /// What comes in from the NIO goes to the PC if it runs; what the PC
    /// sends goes out of the NIO if there is one.
    #[inline]
    fn on_frame(
        &mut self,
        fx: &mut FrameCx,
        index: usize,
        outbound: bool,
        frame: &[u8],
        send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
    ) -> Echo {
        let running = self.running();
        let (key, now) = (fx.key, fx.now);
        let Some(port) = fx.ports.get_mut(index) else {
            return Echo::default();
        };
        let mut t = Tap {
            wire: fx.wire,
            sink: fx.sink,
            at: (key, index),
            now,
        };
        if outbound {
            let to = Endpoint::Nio(key, index);
            match port.egress(&mut t, frame, None) {
                Pass::Now(f) => {
                    let ok = send(to, &f);
                    port.sent(&mut t, ok, &f);
                }
                Pass::Later(due, f) => t.hold(port, to, true, due, &f),
                Pass::Dropped => {}
            }
            return Echo::default();
        }
        let to = Endpoint::Node(key);
        match (port.ingress(&mut t, frame, running), &mut self.engine) {
            (Pass::Now(f), Engine::Process(_)) => {
                let ok = send(to, &f);
                port.delivered(ok, f.len());
            }
            (Pass::Now(f), Engine::Builtin(b)) => {
                port.delivered(true, f.len());
                return b.frame(now, &f).unwrap_or_default();
            }
            (Pass::Later(due, f), _) => t.hold(port, to, false, due, &f),
            (Pass::Dropped, _) => {}
        }
        Echo::default()
    }

    fn take_frame(&mut self, now: Instant, frame: &[u8]) -> Option<Echo> {
        match &mut self.engine {
            Engine::Builtin(b) => Some(b.frame(now, frame).unwrap_or_default()),
            Engine::Process(_) => None,
        }
    }

    fn filters_shell(&self) -> bool {
        self.proc().is_some_and(|p| p.filter_shell)
    }

    fn dir(&self) -> Option<&Path> {
        Some(&self.dir)
    }

    fn moved(&mut self, project_dir: &Path, id: Uuid) {
        self.dir = crate::lab::project::node_dir(project_dir, DIR, id).into_boxed_path();
    }

    fn project_mac(&self) -> Option<u8> {
        match &self.engine {
            Engine::Process(p) => Some(p.mac),
            // A built-in PC's MAC is host-wide, not the project's.
            Engine::Builtin(_) => None,
        }
    }

    fn udp_ports(&self) -> Vec<u16> {
        self.proc()
            .map(|p| [Some(p.vpcs_port), relay_port(p.vpcs_port)])
            .into_iter()
            .flatten()
            .flatten()
            .collect()
    }

    fn check(&self, starting: bool) -> Result<(), String> {
        if starting && self.proc().is_some_and(|p| p.ready) {
            return Err("ready but its start is still pending".into());
        }
        Ok(())
    }

    fn script(&self) -> Option<&str> {
        self.startup_script.as_deref()
    }

    fn copy_from(&mut self, cx: &mut Ctx, origin: &super::Origin) -> Result<(), ApiError> {
        if let Some(script) = origin.script {
            let script = renamed_script(script, origin.name, cx.name);
            cx.host
                .files()
                .write_file(&self.dir.join(STARTUP_SCRIPT), script.as_bytes())?;
            self.startup_script = Some(script);
        }
        Ok(())
    }
}

/// A state in GNS3 2.2's words, which have no "starting" or "stopping":
/// a node reads started once its start is answered and until it is gone.
pub fn status_word(s: State) -> &'static str {
    match s {
        State::Started | State::Stopping => "started",
        State::Stopped | State::Starting => "stopped",
    }
}

/// A VM of a GNS3 1.2 topology, numbered `legacy`, becomes VM `id`, as
/// 1.3.13 converts it: `<name>-files` becomes `project-files`, and the
/// VM's `vpcs/pc-<legacy>` directory becomes `vpcs/<id>`, each only when
/// the old one is there and the new one is not.
pub fn convert_legacy(
    p: &Project,
    legacy: i64,
    id: Uuid,
    host: &mut dyn Host,
) -> Result<(), ApiError> {
    let files = p.path.join("project-files");
    let mut moves = Vec::new();
    if let Some(name) = &p.name {
        moves.push((p.path.join(format!("{name}-files")), files.clone()));
    }
    let vpcs = files.join("vpcs");
    moves.push((vpcs.join(format!("pc-{legacy}")), vpcs.join(id.to_string())));
    for (from, to) in moves {
        let f = host.files();
        if f.exists(&from) && !f.exists(&to) {
            if let Some(parent) = to.parent() {
                f.create_dir(parent)?;
            }
            f.rename(&from, &to)?;
        }
    }
    Ok(())
}
