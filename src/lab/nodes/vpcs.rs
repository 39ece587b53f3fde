//! VPCS nodes: Debian's `vpcs` 0.5b2 run as a child process (sans-IO: the
//! lab decides, the host spawns, signals and reads).
//!
//! Lifecycle: a start waits on the lab's spawn queue (one spawn per loop
//! turn), then for the console's prompt; the process dying first is a 409
//! with what it printed, and a console silent for [`START_TIMEOUT`] gets the
//! process killed. A stop sends SIGTERM, SIGKILL after [`STOP_GRACE`], and
//! finishes when the process is gone; reload and delete are a stop followed
//! by a start or by forgetting the node.

use crate::error::ApiError;
use crate::lab::command::{Nio, PortAddr, Ticket};
use crate::lab::host::{Host, Signal, Spawn};
use crate::lab::node::{AfterStop, Endpoint, Kind, Node, NodeKey, Pending, Port, State};
use crate::lab::spec::{VmCreate, VmUpdate};
use crate::lab::{Answer, Body, Deadline, Event, Lab, Reply, Step, VpcsView};
use crate::limits::{MAX_SCRIPT_BYTES, START_ERROR_BYTES, START_TIMEOUT, STOP_GRACE};
use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Instant;
use uuid::Uuid;

/// File name of a node's startup script inside its directory.
pub const STARTUP_SCRIPT: &str = "startup.vpc";
/// The log of a node's VPCS runs, in its directory.
pub const LOG_FILE: &str = "vpcs.log";
/// The prompt VPCS prints when its console is ready for commands.
pub const PROMPT: &[u8] = b"> ";
/// VPCS binds its `-s` port and this many above it (its relay).
pub const RELAY_OFFSET: u16 = 9;
/// The line nanolab writes to `vpcs.log` before each start.
pub const LOG_HEADER: &str = "--- nanolab starting: ";

/// What a VPCS node holds besides what every node has.
#[derive(Debug)]
pub struct Vpcs {
    /// Working directory.
    pub dir: PathBuf,
    /// MAC offset passed as `-m`.
    pub mac: u8,
    /// Startup script text, if any.
    pub startup_script: Option<String>,
    /// The running process, if any.
    pub proc: Option<Proc>,
    /// The command line of the last process (2.2's `command_line`).
    pub command_line: String,
    /// Set when the PC runs on the built-in engine instead of `vpcs`.
    pub builtin: Option<super::builtin::Builtin>,
}

/// A running VPCS process, as the lab knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    /// Unique per process the lab ever started: deadlines set for one
    /// process never act on a later one.
    pub serial: u64,
    /// Process id (and process group).
    pub pid: u32,
    /// The UDP port VPCS binds (and its relay port), reserved in the UDP pool.
    pub vpcs_port: u16,
    /// The console has shown its prompt.
    pub ready: bool,
    /// The last console output before the prompt (for a failed start).
    pub boot_output: Vec<u8>,
    /// Host commands (`!` lines) are filtered by the console proxy.
    pub filter_shell: bool,
}

/// Everything the VPCS command line depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The program.
    pub program: PathBuf,
    /// MAC offset (`-m`).
    pub mac: u8,
    /// UDP port VPCS binds for its one instance (`-s`); it also binds its relay port.
    pub vpcs_port: u16,
    /// The server's internal socket for this node (`-c`).
    pub server_port: u16,
    /// Whether to pass the startup script.
    pub startup_script: bool,
}

/// The argv of a VPCS process, program first. One instance, frames to the
/// server's internal socket on loopback, console on the pty (no `-p`).
pub fn command_line(l: &Launch) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec![l.program.clone().into()];
    for (flag, value) in [
        ("-i", "1".to_string()),
        ("-m", l.mac.to_string()),
        ("-s", l.vpcs_port.to_string()),
        ("-c", l.server_port.to_string()),
        ("-t", Ipv4Addr::LOCALHOST.to_string()),
    ] {
        argv.push(flag.into());
        argv.push(value.into());
    }
    if l.startup_script {
        argv.push(STARTUP_SCRIPT.into());
    }
    argv
}

/// What the last run wrote to `vpcs.log`: everything after the last header
/// line, or `None` when the header is not in `log` (a tail of the file).
pub fn last_run(log: &[u8]) -> Option<&[u8]> {
    let header = LOG_HEADER.as_bytes();
    let at = log.windows(header.len()).rposition(|w| w == header)?;
    let nl = log[at..].iter().position(|&b| b == b'\n')?;
    Some(&log[at + nl + 1..])
}

/// The VPCS relay port: vpcs binds its `-s` port and this one too.
pub fn relay_port(vpcs_port: u16) -> Option<u16> {
    vpcs_port.checked_add(RELAY_OFFSET)
}

/// `%h` in a startup script stands for the node name.
pub fn expand_script(script: &str, name: &str) -> String {
    script.replace("%h", name)
}

/// The script of a node being created: the one given (`%h` expanded,
/// written, even when empty), else the `startup.vpc` already in its
/// directory (a project reopened, restored or saved elsewhere), else none.
fn startup_script(
    host: &mut dyn Host,
    dir: &Path,
    given: Option<&str>,
    name: &str,
) -> Result<Option<String>, ApiError> {
    let path = dir.join(STARTUP_SCRIPT);
    match given {
        Some(s) => {
            let script = expand_script(s, name);
            host.files().write_file(&path, script.as_bytes())?;
            Ok(Some(script))
        }
        None => Ok(host
            .files()
            .read_file(&path, MAX_SCRIPT_BYTES)
            .map(|b| String::from_utf8_lossy(&b).into_owned())),
    }
}

/// Rename inside a startup script, as GNS3 did.
pub(crate) fn renamed_script(script: &str, old: &str, new: &str) -> String {
    if old.is_empty() {
        script.to_string()
    } else {
        script.replace(old, new)
    }
}

fn gone(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("VPCS VM ID {id} was deleted"))
}

impl Lab {
    /// Create a VPCS node: console, directory, script, MAC, then the node
    /// itself, all or nothing.
    pub(crate) fn create_vpcs(&mut self, project: Uuid, b: VmCreate, host: &mut dyn Host) -> Reply {
        self.project(project)?;
        if let Some(key) = b.vm_id.and_then(|id| self.registry.key_of(id)) {
            let node = self
                .node(key)
                .ok_or_else(|| ApiError::Internal("stale index".into()))?;
            if node.project != project {
                return Err(ApiError::conflict(format!(
                    "VM {} belongs to another project",
                    node.id
                )));
            }
            return Ok(Answer::Created(Body::Vpcs(view(node))));
        }
        super::super::check_name(Some(&b.name))?;
        self.room_for_node(project)?;
        let id = b.vm_id.unwrap_or_else(Uuid::new_v4);
        if let Some(legacy) = b.legacy_id {
            self.convert_legacy(project, legacy, id, host)?;
        }
        let key = self.vacant_key();
        let console = if b.console_telnet {
            Some(self.take_console(key, id, b.console, b.console_pick, host)?)
        } else {
            None
        };
        match self.insert_vpcs(key, project, id, b, console, host) {
            Ok(v) => Ok(Answer::Created(Body::Vpcs(v))),
            Err(e) => {
                if let Some(console) = console {
                    host.close_console(key);
                    self.console_ports.release(console);
                }
                Err(e)
            }
        }
    }

    /// Reserve and listen on a console port for node `id`: the one asked
    /// for, or the lowest free one. With `pick` (GNS3 2.2), a port asked
    /// for that is out of range or taken is replaced by a free one, as the
    /// 2.2 compute does, instead of refused.
    fn take_console(
        &mut self,
        key: NodeKey,
        id: Uuid,
        asked: Option<u16>,
        pick: bool,
        host: &mut dyn Host,
    ) -> Result<u16, ApiError> {
        if let Some(port) = asked {
            let taken = self
                .console_ports
                .check_in_range(port)
                .and_then(|()| self.console_ports.reserve(port, id))
                .and_then(|()| {
                    host.bind_console(key, port).inspect_err(|_| {
                        self.console_ports.release(port);
                    })
                });
            match taken {
                Ok(()) => return Ok(port),
                Err(e) if !pick => return Err(e),
                Err(e) => self.emit(Event::Warning {
                    node: Some(id),
                    text: format!("console port {port} not available ({e}); picking another"),
                }),
            }
        }
        Ok(self
            .console_ports
            .reserve_lowest(id, |p| host.bind_console(key, p).ok())?
            .0)
    }

    /// A VM of a GNS3 1.2 topology, numbered `legacy`, becomes VM `id`, as
    /// 1.3.13 converts it: `<name>-files` becomes `project-files`, and the
    /// VM's `vpcs/pc-<legacy>` directory becomes `vpcs/<id>`, each only when
    /// the old one is there and the new one is not.
    fn convert_legacy(
        &mut self,
        project: Uuid,
        legacy: i64,
        id: Uuid,
        host: &mut dyn Host,
    ) -> Result<(), ApiError> {
        let p = self.project(project)?;
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

    fn insert_vpcs(
        &mut self,
        key: NodeKey,
        project: Uuid,
        id: Uuid,
        b: VmCreate,
        console_port: Option<u16>,
        host: &mut dyn Host,
    ) -> Result<VpcsView, ApiError> {
        let p = self
            .projects
            .get_mut(&project)
            .ok_or_else(|| no_project(project))?;
        let dir = p.node_dir(id);
        let builtin = self.settings.pc_engine == crate::lab::PcEngine::Builtin;
        // A built-in PC's MAC comes from a host-wide space: no project limit.
        let mac = if builtin { 0 } else { p.take_mac()? };
        let files = host
            .files()
            .create_dir(&dir)
            .and_then(|()| startup_script(host, &dir, b.startup_script.as_deref(), &b.name));
        let script = match files {
            Ok(s) => s,
            Err(e) => {
                if !builtin {
                    p.release_mac(mac);
                }
                return Err(e);
            }
        };
        p.nodes.insert(id);
        p.deleted_node_dirs.retain(|d| *d != dir);
        let node = Node {
            key,
            id,
            project,
            name: b.name,
            console_port,
            ports: vec![Port::new(0, 0)],
            queue: Default::default(),
            pending: None,
            console: Default::default(),
            kind: Kind::Vpcs(Vpcs {
                dir,
                mac,
                startup_script: script,
                proc: None,
                command_line: String::new(),
                builtin: None,
            }),
            mapping: Vec::new(),
        };
        let mut node = node;
        if builtin {
            let mac = self.next_builtin_mac();
            if let Some(v) = node.vpcs_mut() {
                v.builtin = Some(super::builtin::Builtin::new(mac));
            }
        }
        let v = view(&node);
        let name = node.name.clone();
        self.insert_node(node);
        self.emit(Event::NodeCreated {
            node: id,
            what: "vpcs",
            name,
            project,
            console: console_port,
        });
        Ok(v)
    }

    /// Run one command on a node whose turn it is.
    pub(crate) fn exec_node(
        &mut self,
        now: Instant,
        key: NodeKey,
        ticket: Ticket,
        cmd: crate::lab::command::NodeCommand,
        host: &mut dyn Host,
    ) -> Step {
        use crate::lab::command::NodeCommand as C;
        let node = match self.live(key) {
            Ok(n) => n,
            Err(e) => return Step::Done(Err(e)),
        };
        if node.vpcs().is_none() {
            return self.exec_device(now, key, ticket, cmd, host);
        }
        match cmd {
            C::Get => Step::Done(Ok(Answer::Ok(Body::Vpcs(view(node))))),
            C::Update(b) => Step::Done(self.update_vpcs(key, b, host)),
            C::Delete => self.stop_vpcs(now, key, ticket, AfterStop::Delete, host),
            C::Start if node.vpcs().is_some_and(|v| v.builtin.is_some()) => {
                Step::Done(self.start_builtin(now, key, host))
            }
            C::Start => self.start_vpcs(key, ticket),
            C::Stop => self.stop_vpcs(now, key, ticket, AfterStop::Reply, host),
            C::Reload if node.running() => self.stop_vpcs(now, key, ticket, AfterStop::Start, host),
            C::Reload if node.vpcs().is_some_and(|v| v.builtin.is_some()) => {
                Step::Done(self.start_builtin(now, key, host))
            }
            C::Reload => self.start_vpcs(key, ticket),
            C::AddNio(at, b) => Step::Done(self.add_nio(key, at, b, host)),
            C::RemoveNio(at) => Step::Done(self.remove_nio(key, at, host)),
            C::StartCapture(at, b) => Step::Done(
                self.port_of(key, at)
                    .and_then(|i| self.start_capture(now, key, i, at, b, host)),
            ),
            C::StopCapture(at) => Step::Done(
                self.port_of(key, at)
                    .and_then(|i| self.stop_capture(key, i, at, host)),
            ),
            C::WatchCapture(at) => {
                Step::Done(self.port_of(key, at).and_then(|i| {
                    self.watch_capture(key, i, at, crate::lab::capture::viewer(ticket))
                }))
            }
            C::AttachNio(at, nio, filters) => Step::Done(
                self.add_nio(key, at, nio, host)
                    .and_then(|r| self.port_of(key, at).map(|i| (r, i)))
                    .and_then(|(r, i)| self.set_filters(key, i, at, filters).map(|()| r)),
            ),
            C::SetFilters(at, filters) => Step::Done(
                self.port_of(key, at)
                    .and_then(|i| self.set_filters(key, i, at, filters))
                    .map(|()| Answer::Created(Body::Empty)),
            ),
            C::Suspend => Step::Done(Ok(Answer::NoContent)),
            C::ConsoleReset => Step::Done(self.console_reset(key, host)),
            C::Duplicate(dest) => Step::Done(self.duplicate(key, dest, host)),
            C::ConsoleSocket => Step::Done(self.console_socket(key)),
            C::UpdateDevice(_) | C::AddDeviceNio(..) | C::UpdateMapping(..) => Step::Done(Err(
                ApiError::Internal("a device operation on a VPCS".into()),
            )),
        }
    }

    /// Rename (and the name inside the script), move the console, replace
    /// the script. The script file is written only when it changes, and
    /// never deleted: `""` leaves an empty file, as GNS3 1.3.13 does.
    fn update_vpcs(&mut self, key: NodeKey, b: VmUpdate, host: &mut dyn Host) -> Reply {
        super::super::check_name(b.name.as_deref())?;
        let node = self.live(key)?;
        let id = node.id;
        match (b.console_telnet, node.console_port) {
            (Some(false), Some(old)) => {
                host.close_console(key);
                self.console_ports.release(old);
                self.console_reset(key, host)?;
                self.live_mut(key)?.console_port = None;
            }
            (Some(true), None) => {
                let port = self.take_console(key, id, b.console, true, host)?;
                self.live_mut(key)?.console_port = Some(port);
            }
            _ => {}
        }
        let node = self.live(key)?;
        if let Some(port) = b.console.filter(|p| Some(*p) != node.console_port)
            && node.console_port.is_some()
        {
            match self.move_console(key, port, host) {
                Err(e) if b.console_pick => self.emit(Event::Warning {
                    node: Some(id),
                    text: format!(
                        "console port {port} not available ({e}); keeping the current one"
                    ),
                }),
                r => r?,
            }
        }
        let node = self.live_mut(key)?;
        let old_name = node.name.clone();
        let v = node.vpcs_mut().ok_or_else(not_vpcs)?;
        let path = v.dir.join(STARTUP_SCRIPT);
        if let Some(new) = &b.name
            && let Some(script) = &v.startup_script
        {
            let renamed = renamed_script(script, &old_name, new);
            host.files().write_file(&path, renamed.as_bytes())?;
            v.startup_script = Some(renamed);
        }
        if let Some(new) = b.name {
            node.name = new;
        }
        if let Some(script) = b.startup_script {
            let script = expand_script(&script, &node.name);
            host.files().write_file(&path, script.as_bytes())?;
            node.vpcs_mut().ok_or_else(not_vpcs)?.startup_script = Some(script);
        }
        let v = view(node);
        // 2.2 tells listeners after every update.
        self.node_updated(key);
        Ok(Answer::Ok(Body::Vpcs(v)))
    }

    /// Listen on `port` instead; attached clients keep their sessions.
    fn move_console(
        &mut self,
        key: NodeKey,
        port: u16,
        host: &mut dyn Host,
    ) -> Result<(), ApiError> {
        let Some(node) = self.node(key) else {
            return Ok(());
        };
        let id = node.id;
        self.console_ports.check_in_range(port)?;
        self.console_ports.reserve(port, id)?;
        if let Err(e) = host.bind_console(key, port) {
            self.console_ports.release(port);
            return Err(e);
        }
        let Some(node) = self.node_mut(key) else {
            return Ok(());
        };
        let old = node.console_port.replace(port).unwrap_or(port);
        self.console_ports.release(old);
        self.emit(Event::ConsoleMoved {
            node: id,
            from: old,
            to: port,
        });
        Ok(())
    }

    /// The index of the port at `at`. As in GNS3 1.3.13, a VPCS has one
    /// adapter and the adapter number is not checked; another port number
    /// is a 409 in 1.3.13's words.
    fn port_of(&self, key: NodeKey, at: PortAddr) -> Result<usize, ApiError> {
        let node = self.live(key)?;
        if node.vpcs().is_none() {
            return node
                .port_index(0, at.port)
                .ok_or_else(|| ApiError::conflict(format!("Port {} is not allocated", at.port)));
        }
        node.port_index(0, at.port).ok_or_else(|| {
            ApiError::conflict(format!(
                "Port {} doesn't exist in adapter Ethernet adapter (a VPCS has port 0 only)",
                at.port
            ))
        })
    }

    /// Attach a NIO to a port, replacing any. Replacing a tunnel with one
    /// on the same `lport` closes the old socket first; if the new one then
    /// fails, the old one is opened again, so a failed replacement leaves
    /// the port as it was. Otherwise the new NIO is opened before the old
    /// one is closed, and a failure leaves the old one in place.
    pub(crate) fn add_nio(
        &mut self,
        key: NodeKey,
        at: PortAddr,
        nio: Nio,
        host: &mut dyn Host,
    ) -> Reply {
        let index = self.port_of(key, at)?;
        let node = self.live(key)?;
        let (id, project) = (node.id, node.project);
        let old = node.ports[index].nio.clone();
        let (old_lport, new_lport) = (old.as_ref().and_then(Nio::udp_port), nio.udp_port());
        if let (Some(old), Some(_)) = (&old, new_lport.filter(|l| Some(*l) == old_lport)) {
            host.close_nio(key, index);
            if let Err(e) = host.open_nio(key, index, &nio) {
                if let Err(lost) = host.open_nio(key, index, old) {
                    self.drop_nio(key, index, host);
                    self.emit(Event::Warning {
                        node: Some(id),
                        text: format!("NIO {old} lost: it could not be reopened: {lost}"),
                    });
                }
                return Err(e);
            }
        } else {
            let newly_reserved = new_lport.filter(|l| !self.udp_ports.is_reserved(*l));
            if let Some(lport) = new_lport {
                self.udp_ports.reserve(lport, project)?;
            }
            if let Err(e) = host.open_nio(key, index, &nio) {
                if let Some(lport) = newly_reserved {
                    self.udp_ports.release(lport);
                }
                return Err(e);
            }
            if let Some(lport) = old_lport {
                self.udp_ports.release(lport);
            }
        }
        let node = self.live_mut(key)?;
        let port = &mut node.ports[index];
        port.nio = Some(nio.clone());
        port.stats = Default::default();
        let nodes = &self.registry;
        self.links.added((key, index), &nio, |k, i| {
            nodes.get(k)?.ports.get(i)?.nio.clone()
        });
        let (what, port) = self.node(key).map_or(("node", String::new()), |n| {
            (super::super::what(n), super::super::port_label(n, index))
        });
        self.emit(Event::NioAdded {
            node: id,
            what,
            port,
            nio: nio.clone(),
        });
        Ok(Answer::Created(Body::Nio(nio)))
    }

    /// Remove a port's NIO; as in 1.3.13, a port without one is fine.
    fn remove_nio(&mut self, key: NodeKey, at: PortAddr, host: &mut dyn Host) -> Reply {
        let index = self.port_of(key, at)?;
        self.drop_nio(key, index, host);
        Ok(Answer::NoContent)
    }

    /// Close a port's NIO and free its UDP port.
    pub(crate) fn drop_nio(&mut self, key: NodeKey, index: usize, host: &mut dyn Host) {
        let Some(node) = self.node_mut(key) else {
            return;
        };
        let id = node.id;
        if node.ports.get(index).is_none_or(|p| p.nio.is_none()) {
            return;
        }
        // A capture stops with its port's NIO.
        self.end_capture(key, index, host);
        let Some(port) = self.node_mut(key).and_then(|n| n.ports.get_mut(index)) else {
            return;
        };
        let Some(nio) = port.nio.take() else {
            return;
        };
        let stats = port.stats;
        let (what, label) = self.node(key).map_or(("node", String::new()), |n| {
            (super::super::what(n), super::super::port_label(n, index))
        });
        self.links.removed((key, index));
        // Frames a delay filter held for or from this NIO go with it.
        let gone = Endpoint::Nio(key, index);
        self.wire
            .delayed
            .retain(|h| h.port != (key, index) && h.to != gone);
        host.close_nio(key, index);
        if let Some(lport) = nio.udp_port() {
            self.udp_ports.release(lport);
        }
        self.emit(Event::NioRemoved {
            node: id,
            what,
            port: label,
            nio,
            stats,
        });
    }

    /// Park a start on the spawn queue (or answer at once when running).
    pub(crate) fn start_vpcs(&mut self, key: NodeKey, ticket: Ticket) -> Step {
        let node = match self.live_mut(key) {
            Ok(n) => n,
            Err(e) => return Step::Done(Err(e)),
        };
        if node.running() {
            return Step::Done(Ok(Answer::NoContent));
        }
        node.pending = Some(Pending::Start(ticket));
        self.spawns.push_back(key);
        Step::Parked
    }

    /// Spawn the next node waiting on the spawn queue; stale entries (node
    /// gone, start no longer pending) are skipped.
    pub(crate) fn spawn_next(&mut self, now: Instant, host: &mut dyn Host) {
        while let Some(key) = self.spawns.pop_front() {
            let Some(node) = self.node(key) else { continue };
            let Some(Pending::Start(ticket)) = node.pending else {
                continue;
            };
            if node.running() {
                continue;
            }
            if let Err(e) = self.spawn_vpcs(now, key, host) {
                let id = self.node_mut(key).map(|node| {
                    node.pending = None;
                    node.id
                });
                self.emit(Event::Warning {
                    node: id,
                    text: format!("start failed: {e}"),
                });
                self.finish_parked(now, key, ticket, Err(e), host);
            }
            return;
        }
    }

    fn spawn_vpcs(
        &mut self,
        now: Instant,
        key: NodeKey,
        host: &mut dyn Host,
    ) -> Result<(), ApiError> {
        let node = self.live(key)?;
        let id = node.id;
        let v = node.vpcs().ok_or_else(not_vpcs)?;
        let mut spawn = Spawn {
            program: self.settings.vpcs.clone(),
            sandbox: self.settings.console_sandbox,
            dir: v.dir.clone(),
            mac: v.mac,
            vpcs_port: 0,
            startup_script: v.startup_script.is_some(),
        };
        // The project may have been re-pointed to a copy without this
        // node's directory: VPCS needs it to run in.
        host.files().create_dir(&spawn.dir)?;
        // Reserved in the node's name, not the project's: a tunnel of the
        // project must not be given the port its VPCS binds.
        let (vpcs_port, ()) = self.udp_ports.reserve_pair(id, RELAY_OFFSET, |p| {
            (host.udp_free(p) && relay_port(p).is_some_and(|r| host.udp_free(r))).then_some(())
        })?;
        spawn.vpcs_port = vpcs_port;
        let spawned = match host.spawn(key, &spawn) {
            Ok(s) => s,
            Err(e) => {
                self.release_vpcs_ports(vpcs_port);
                return Err(e);
            }
        };
        self.next_proc_serial += 1;
        let serial = self.next_proc_serial;
        let node = self.live_mut(key)?;
        node.console.history.clear();
        let v = node.vpcs_mut().ok_or_else(not_vpcs)?;
        v.command_line = spawned.command_line;
        v.proc = Some(Proc {
            serial,
            pid: spawned.pid,
            vpcs_port,
            ready: false,
            boot_output: Vec::new(),
            filter_shell: spawned.filter_shell,
        });
        self.timers
            .schedule(now + START_TIMEOUT, Deadline::StartTimeout(key, serial));
        self.emit(Event::ProcessStarted {
            node: id,
            pid: spawned.pid,
            vpcs_port,
        });
        Ok(())
    }

    fn release_vpcs_ports(&mut self, vpcs_port: u16) {
        self.udp_ports.release(vpcs_port);
        if let Some(relay) = relay_port(vpcs_port) {
            self.udp_ports.release(relay);
        }
    }

    /// Park a stop (or go on at once when nothing runs).
    pub(crate) fn stop_vpcs(
        &mut self,
        now: Instant,
        key: NodeKey,
        ticket: Ticket,
        then: AfterStop,
        host: &mut dyn Host,
    ) -> Step {
        let builtin = match self.live(key) {
            Ok(n) => n.vpcs().is_some_and(|v| v.builtin.is_some()),
            Err(e) => return Step::Done(Err(e)),
        };
        if builtin {
            self.stop_builtin(key);
        }
        let node = match self.live_mut(key) {
            Ok(n) => n,
            Err(e) => return Step::Done(Err(e)),
        };
        let Some((serial, pid)) = node.proc().map(|p| (p.serial, p.pid)) else {
            return match then {
                AfterStop::Reply => Step::Done(Ok(Answer::NoContent)),
                AfterStop::Start if builtin => Step::Done(self.start_builtin(now, key, host)),
                AfterStop::Start => self.start_vpcs(key, ticket),
                AfterStop::Delete => {
                    // Answer first, so that the requests drained with the
                    // node (404) are answered after this one, in order.
                    host.reply(ticket, Ok(Answer::NoContent));
                    self.remove_node(key, host);
                    Step::Parked
                }
            };
        };
        node.pending = Some(Pending::Stop(ticket, then));
        let id = node.id;
        self.emit(Event::Stopping { node: id, pid });
        host.signal(key, Signal::Term);
        self.timers
            .schedule(now + STOP_GRACE, Deadline::Kill(key, serial));
        Step::Parked
    }

    /// The process of `key`, if it is still the one numbered `serial`: the
    /// one check every deadline goes through.
    pub(crate) fn proc_of(&self, key: NodeKey, serial: u64) -> Option<&Proc> {
        self.node(key)?.proc().filter(|p| p.serial == serial)
    }

    /// A deadline set for a process came due.
    pub(crate) fn on_deadline(&mut self, now: Instant, d: Deadline, host: &mut dyn Host) {
        match d {
            Deadline::Kill(key, serial) => {
                let Some(p) = self.proc_of(key, serial) else {
                    return;
                };
                let (pid, id) = (p.pid, self.node(key).map(|n| n.id));
                self.emit(Event::Warning {
                    node: id,
                    text: format!("pid {pid} ignored SIGTERM for {STOP_GRACE:?}: killing it"),
                });
                host.signal(key, Signal::Kill);
            }
            Deadline::StartTimeout(key, serial) => {
                if self.proc_of(key, serial).is_none() {
                    return;
                }
                // The prompt may be waiting unread while the loop was busy:
                // take it before judging.
                self.take_pending_output(now, key, host);
                if self.proc_of(key, serial).is_some_and(|p| !p.ready) {
                    let id = self.node(key).map(|n| n.id);
                    self.emit(Event::Warning {
                        node: id,
                        text: format!("console did not answer within {START_TIMEOUT:?}"),
                    });
                    host.signal(key, Signal::Kill);
                }
            }
            Deadline::Heartbeat => self.heartbeat(now, host),
            Deadline::Pc(key) => self.builtin_timer(now, key, host),
        }
    }

    fn take_pending_output(&mut self, now: Instant, key: NodeKey, host: &mut dyn Host) {
        let rest = host.pending_output(key);
        if !rest.is_empty() {
            self.on_output(now, key, &rest, host);
        }
    }

    /// The node's process printed `data` on its console: keep it, show it
    /// to every client, and finish a pending start once the prompt appears.
    pub fn on_output(&mut self, now: Instant, key: NodeKey, data: &[u8], host: &mut dyn Host) {
        let Some(node) = self.node_mut(key) else {
            return;
        };
        node.console.history.push(data);
        let mut became_ready = false;
        if let Some(p) = node
            .vpcs_mut()
            .and_then(|v| v.proc.as_mut())
            .filter(|p| !p.ready)
        {
            host.log_output(key, data);
            // Search only what is new (and the bytes a prompt could
            // straddle); keep the last START_ERROR_BYTES for an error.
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
                became_ready = true;
            }
        }
        let (id, pending) = (node.id, node.pending);
        self.broadcast(key, data, host);
        if became_ready {
            self.emit(Event::ConsoleReady { node: id });
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
    }

    /// The node's process exited (the host has reaped it).
    pub fn on_exit(&mut self, now: Instant, key: NodeKey, how: &str, host: &mut dyn Host) {
        if self.node(key).is_none_or(|n| !n.running()) {
            return;
        }
        self.take_pending_output(now, key, host);
        let Some(boot_output) = self.process_gone(key, how, host) else {
            return;
        };
        let Some(node) = self.node_mut(key) else {
            return;
        };
        let Some(dir) = node.vpcs().map(|v| v.dir.clone()) else {
            return;
        };
        let (id, project, name) = (node.id, node.project, node.name.clone());
        let pending = node.pending.take();
        self.node_updated(key);
        match pending {
            Some(Pending::Start(ticket)) => {
                // vpcs.log has stderr as well as the console's boot output.
                let log = host
                    .files()
                    .read_tail(&dir.join(LOG_FILE), 4 * START_ERROR_BYTES);
                let output = last_run(&log)
                    .filter(|o| !o.is_empty())
                    .unwrap_or(&boot_output);
                let output = &output[output.len().saturating_sub(START_ERROR_BYTES)..];
                let text = String::from_utf8_lossy(output);
                let e =
                    ApiError::conflict(format!("VPCS exited at start ({how}): {}", text.trim()));
                self.emit(Event::Warning {
                    node: Some(id),
                    text: format!("start failed: {e}"),
                });
                self.finish_parked(now, key, ticket, Err(e), host);
            }
            Some(Pending::Stop(ticket, then)) => self.after_stop(now, key, ticket, then, host),
            None => {
                self.emit(Event::Warning {
                    node: Some(id),
                    text: format!("vpcs exited on its own ({how})"),
                });
                let log = host
                    .files()
                    .read_tail(&dir.join(LOG_FILE), START_ERROR_BYTES);
                let log = last_run(&log).unwrap_or(&log);
                let text = format!(
                    "VPCS {name} process has stopped ({how})\n{}",
                    String::from_utf8_lossy(log).trim()
                );
                self.project_log(project, crate::lab::LogLevel::Error, text);
                let note = format!("\r\n*** VPCS stopped ({how}) ***\r\n");
                self.broadcast(key, note.as_bytes(), host);
            }
        }
    }

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
                self.remove_node(key, host);
            }
            AfterStop::Start => match self.start_vpcs(key, ticket) {
                Step::Parked => {}
                Step::Done(r) => self.finish_parked(now, key, ticket, r, host),
            },
        }
    }

    /// Forget the process: what the host held, its ports. Returns what it
    /// printed before its prompt, `None` when there was no process.
    fn process_gone(&mut self, key: NodeKey, how: &str, host: &mut dyn Host) -> Option<Vec<u8>> {
        let node = self.node_mut(key)?;
        let id = node.id;
        let p = node.vpcs_mut()?.proc.take()?;
        host.release_process(key);
        self.release_vpcs_ports(p.vpcs_port);
        self.emit(Event::ProcessGone {
            node: id,
            pid: p.pid,
            how: how.to_string(),
        });
        Some(p.boot_output)
    }

    /// Kill the process at once and wait for it (project close, shutdown),
    /// and answer a parked operation: nothing is left running or waiting.
    pub(crate) fn kill_now(&mut self, key: NodeKey, host: &mut dyn Host) {
        let Some(node) = self.node_mut(key) else {
            return;
        };
        let was_running = node.state() != State::Stopped;
        if node.vpcs().is_some_and(|v| v.builtin.is_some()) {
            self.stop_builtin(key);
        } else if node.running() {
            host.signal(key, Signal::Kill);
            let how = host.reap(key);
            self.process_gone(key, &how, host);
        }
        let Some(node) = self.node_mut(key) else {
            return;
        };
        if let Some(Pending::Start(ticket) | Pending::Stop(ticket, _)) = node.pending.take() {
            let e = ApiError::conflict("The VM was stopped because its project closed");
            host.reply(ticket, Err(e));
        }
        if was_running {
            self.node_updated(key);
        }
    }

    /// Forget a node, in one step that leaves nothing behind: its process,
    /// its waiting requests (answered 404), console clients and listener,
    /// tunnels, ports and MAC. Its directory goes at the next commit.
    pub(crate) fn remove_node(&mut self, key: NodeKey, host: &mut dyn Host) {
        self.kill_now(key, host);
        let Some(node) = self.node_mut(key) else {
            return;
        };
        let id = node.id;
        for job in node.queue.drain() {
            host.reply(job.ticket, Err(gone(id)));
        }
        for client in node.console.clients.drain(..) {
            host.console_drop(client.id);
        }
        host.close_console(key);
        for index in 0..node.ports.len() {
            self.drop_nio(key, index, host);
        }
        let Some(node) = self.take_node(key) else {
            return;
        };
        let what = super::super::what(&node);
        if let Some(console) = node.console_port {
            self.console_ports.release(console);
        }
        if let Some(p) = self.projects.get_mut(&node.project) {
            p.nodes.remove(&id);
            if let Kind::Vpcs(v) = node.kind {
                if v.builtin.is_none() {
                    p.release_mac(v.mac);
                }
                p.deleted_node_dirs.push(v.dir);
            }
        }
        self.emit(Event::NodeDeleted { node: id, what });
    }

    /// Whether the console proxy must refuse host commands for this node.
    pub(crate) fn filters_shell(&self, key: NodeKey) -> bool {
        self.node(key)
            .and_then(|n| n.proc())
            .is_some_and(|p| p.filter_shell)
    }
}

/// The node as the API shows it.
pub fn view(node: &Node) -> VpcsView {
    let v = node.vpcs();
    let script = v.and_then(|v| v.startup_script.clone());
    VpcsView {
        id: node.id,
        project: node.project,
        name: node.name.clone(),
        console: node.console_port.unwrap_or(0),
        startup_script: script.clone(),
        startup_script_path: script.map(|_| STARTUP_SCRIPT.to_string()),
        status: status_word(node.state()),
        console_telnet: node.console_port.is_some(),
        directory: v.map(|v| v.dir.clone()).unwrap_or_default(),
        command_line: v.map(|v| v.command_line.clone()).unwrap_or_default(),
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

/// A VPCS operation reached a node of another kind: a bug.
fn not_vpcs() -> ApiError {
    ApiError::Internal("a VPCS operation on a node that is not a VPCS".into())
}

fn no_project(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("Project ID {id} doesn't exist"))
}

/// Where a node of `project_dir` keeps its files.
pub fn node_dir(project_dir: &Path, id: Uuid) -> PathBuf {
    project_dir
        .join("project-files")
        .join("vpcs")
        .join(id.to_string())
}

/// Pure part of finding a program's dynamic loader: PT_INTERP in an ELF
/// image. `Ok(None)` for a static program; an error when it is not ELF.
pub fn parse_interp(b: &[u8]) -> Result<Option<String>, String> {
    if b.get(..4) != Some(b"\x7fELF") {
        return Err("not an ELF program (a script?)".into());
    }
    let wide = b.get(4) == Some(&2);
    let le = b.get(5) == Some(&1);
    let num = |off: usize, len: usize| -> Option<u64> {
        let s = b.get(off..off.checked_add(len)?)?;
        let mut v = 0u64;
        for i in 0..len {
            let byte = if le { s[len - 1 - i] } else { s[i] };
            v = (v << 8) | byte as u64;
        }
        Some(v)
    };
    let bad = || "truncated ELF header".to_string();
    let (phoff, phentsize, phnum) = if wide {
        (
            num(0x20, 8).ok_or_else(bad)?,
            num(0x36, 2).ok_or_else(bad)?,
            num(0x38, 2).ok_or_else(bad)?,
        )
    } else {
        (
            num(0x1c, 4).ok_or_else(bad)?,
            num(0x2a, 2).ok_or_else(bad)?,
            num(0x2c, 2).ok_or_else(bad)?,
        )
    };
    for i in 0..phnum {
        let ph = phoff
            .checked_add(i.checked_mul(phentsize).ok_or_else(bad)?)
            .ok_or_else(bad)? as usize;
        if num(ph, 4).ok_or_else(bad)? != 3 {
            continue;
        }
        let (off, size) = if wide {
            (
                num(ph + 8, 8).ok_or_else(bad)?,
                num(ph + 32, 8).ok_or_else(bad)?,
            )
        } else {
            (
                num(ph + 4, 4).ok_or_else(bad)?,
                num(ph + 16, 4).ok_or_else(bad)?,
            )
        };
        let end = off.checked_add(size).ok_or_else(bad)?;
        let raw = b.get(off as usize..end as usize).ok_or_else(bad)?;
        let text = raw.split(|&c| c == 0).next().unwrap_or_default();
        return Ok(Some(String::from_utf8_lossy(text).into_owned()));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_is_exact() {
        let l = Launch {
            program: "/usr/bin/vpcs".into(),
            mac: 3,
            vpcs_port: 20000,
            server_port: 41000,
            startup_script: true,
        };
        let argv: Vec<String> = command_line(&l)
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        assert_eq!(
            argv,
            [
                "/usr/bin/vpcs",
                "-i",
                "1",
                "-m",
                "3",
                "-s",
                "20000",
                "-c",
                "41000",
                "-t",
                "127.0.0.1",
                "startup.vpc"
            ]
        );
        let l = Launch {
            startup_script: false,
            ..l
        };
        assert_eq!(command_line(&l).len(), 11);
    }

    #[test]
    fn last_run_is_what_follows_the_last_header() {
        let log = b"--- nanolab starting: [\"a\"]\nold\n--- nanolab starting: [\"b\"]\nboom\n";
        assert_eq!(last_run(log), Some(&b"boom\n"[..]));
        assert_eq!(last_run(b"no header here"), None);
        assert_eq!(last_run(b"--- nanolab starting: cut"), None);
    }

    #[test]
    fn relay_port_is_nine_above_and_never_wraps() {
        assert_eq!(relay_port(20000), Some(20009));
        assert_eq!(relay_port(65530), None);
    }

    #[test]
    fn rename_rewrites_the_script() {
        let s = expand_script("set pcname %h\nip 10.0.0.1\n", "PC1");
        assert_eq!(s, "set pcname PC1\nip 10.0.0.1\n");
        assert_eq!(
            renamed_script(&s, "PC1", "Web"),
            "set pcname Web\nip 10.0.0.1\n"
        );
        assert_eq!(renamed_script(&s, "", "Web"), s);
    }

    #[test]
    fn interpreter_parsing_refuses_what_is_not_elf() {
        assert!(parse_interp(b"#!/bin/sh\n").is_err());
        assert!(parse_interp(b"\x7fELF\x02\x01").is_err());
        let real = std::fs::read("/bin/true").unwrap();
        assert!(parse_interp(&real).unwrap().unwrap().contains("ld-"));
    }
}
