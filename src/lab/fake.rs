//! A [`Host`] made of plain data, for the lab's unit tests and the fuzz
//! target: it records every effect and lets a test decide what fails.
//! Processes do not run; a test says when one prints or exits.

use super::answer::{ImageFile, Reply};
use super::host::{ClientId, Files, Host, Signal, Spawn, Spawned};
use super::id::NodeKey;
use super::settings::Settings;
use super::types::Nio;
use crate::error::ApiError;
use crate::lab::command::Ticket;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Settings for tests: a local server, small pools, projects under `/projects`.
pub fn settings() -> Settings {
    Settings {
        stamp: super::settings::Stamp(fake_stamp),
        local: true,
        projects_dir: "/projects".into(),
        vpcs: None,
        console_sandbox: true,
        udp_ports: (10000, 10100),
        console_ports: (2000, 2100),
        gns3_version: "2.2.61-nanolab.test".into(),
        gns3_3_version: "3.0.6+nanolab.test".into(),
        pc_engine: super::PcEngine::Vpcs,
        images_dir: "/images".into(),
        qemu_accel: super::QemuAccel::Auto,
        kvm_runs: Default::default(),
    }
}

/// A made-up fresh clock: 37 µs later at every reading (tests see a ping
/// take a few tens of microseconds, whatever the test's `now`).
pub fn fake_stamp() -> std::time::Instant {
    use std::sync::atomic::{AtomicU64, Ordering};
    static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    static READS: AtomicU64 = AtomicU64::new(0);
    let n = READS.fetch_add(1, Ordering::Relaxed);
    *BASE.get_or_init(std::time::Instant::now) + std::time::Duration::from_micros(37 * n)
}

/// A pretend process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeProc {
    /// Its pid.
    pub pid: u32,
    /// Signals it received, in order.
    pub signals: Vec<Signal>,
    /// The UDP port it binds (and its relay port).
    pub udp_port: u16,
}

/// The fake host's state; every field is for tests to read or set.
#[derive(Debug, Default)]
pub struct FakeHost {
    /// Every answer, in the order given.
    pub replies: Vec<(Ticket, Reply)>,
    /// Console listeners: node → port.
    pub consoles: HashMap<NodeKey, u16>,
    /// Console ports "another program" holds: binding them fails.
    pub foreign_consoles: HashSet<u16>,
    /// No descriptor is left: every console bind fails with the limit.
    pub out_of_descriptors: bool,
    /// Console binds tried.
    pub console_binds: usize,
    /// Clients told to write.
    pub ready_clients: Vec<ClientId>,
    /// Clients disconnected by the lab.
    pub dropped_clients: Vec<ClientId>,
    /// UDP ports "another program" holds.
    pub foreign_udp: HashSet<u16>,
    /// Open NIOs: (node, port index) → NIO.
    pub nios: HashMap<(NodeKey, usize), Nio>,
    /// TAP devices that cannot be opened.
    pub unopenable_taps: HashSet<String>,
    /// Opening a tunnel to this peer port fails.
    pub unreachable_rports: HashSet<u16>,
    /// Live processes.
    pub procs: HashMap<NodeKey, FakeProc>,
    /// Processes the lab released (node, pid).
    pub released: Vec<(NodeKey, u32)>,
    /// Spawning fails with this error.
    pub spawn_error: Option<ApiError>,
    /// The last spawn asked for.
    pub last_spawn: Option<Spawn>,
    /// Console output written but not yet handed to the lab.
    pub unread: HashMap<NodeKey, Vec<u8>>,
    /// What clients typed into each node's console.
    pub typed: HashMap<NodeKey, Vec<u8>>,
    /// The QEMU programs and KVM probe it reports.
    pub qemu_host: crate::lab::answer::QemuHost,
    /// Files outside the projects that can be read (images, programs).
    pub readable: HashSet<PathBuf>,
    /// What the lab wrote to VMs' monitors.
    pub monitor: HashMap<NodeKey, Vec<u8>>,
    /// The last VM spawned.
    pub last_vm: Option<super::host::VmSpawn>,
    /// Uploads whose body the lab asked to receive: (ticket, file).
    pub receiving: Vec<(Ticket, PathBuf)>,
    /// Frames the lab sent by itself (built-in PCs): (to, frame).
    pub sent_frames: Vec<(super::node::Endpoint, Vec<u8>)>,
    /// Boot output logged per node.
    pub logged: HashMap<NodeKey, Vec<u8>>,
    /// Directories and files.
    pub disk: FakeFiles,
    /// Settings returned by a reload.
    pub settings: Option<Settings>,
    /// Auxiliary console listeners by node.
    pub aux_consoles: HashMap<NodeKey, u16>,
    /// What was typed into auxiliary consoles.
    pub aux_typed: HashMap<NodeKey, Vec<u8>>,
    /// Calls to the container engine, in order.
    pub engine_calls: Vec<super::host::EngineCall>,
    /// The engine is not running: calls are refused.
    pub engine_down: bool,
    /// Veths made: (process, links).
    pub plugged: Vec<(u32, Vec<super::host::Veth>)>,
    /// Host ends of veths removed.
    pub unplugged: Vec<String>,
    next_pid: u32,
}

impl FakeHost {
    /// A host where everything succeeds.
    pub fn new() -> Self {
        Self::default()
    }

    /// The reply for `ticket`, if any (the last one given).
    pub fn reply_for(&self, ticket: Ticket) -> Option<&Reply> {
        self.replies
            .iter()
            .rev()
            .find(|(t, _)| *t == ticket)
            .map(|(_, r)| r)
    }

    /// How many times `ticket` was answered.
    pub fn answers_for(&self, ticket: Ticket) -> usize {
        self.replies.iter().filter(|(t, _)| *t == ticket).count()
    }

    /// Whether a live VPCS binds `port` (its `-s` port or its relay).
    fn vpcs_bound(&self, port: u16) -> bool {
        self.procs
            .values()
            .any(|p| port == p.udp_port || Some(port) == super::kinds::vpcs::relay_port(p.udp_port))
    }

    /// The process of `node` ends (the test then calls `Lab::on_exit`).
    pub fn exit(&mut self, node: NodeKey) -> Option<FakeProc> {
        self.procs.remove(&node)
    }
}

impl Host for FakeHost {
    fn reply(&mut self, ticket: Ticket, reply: Reply) {
        self.replies.push((ticket, reply));
    }

    fn bind_console(&mut self, node: NodeKey, port: u16) -> Result<(), ApiError> {
        self.console_binds += 1;
        if self.out_of_descriptors {
            return Err(ApiError::Unavailable(format!(
                "Console port {port} cannot be bound: the open-file limit is reached"
            )));
        }
        let taken = self.consoles.iter().any(|(n, p)| *p == port && *n != node);
        if taken || self.foreign_consoles.contains(&port) {
            return Err(ApiError::conflict(format!(
                "Console port {port} is already in use"
            )));
        }
        self.consoles.insert(node, port);
        Ok(())
    }

    fn close_console(&mut self, node: NodeKey) {
        self.consoles.remove(&node);
    }

    fn console_ready(&mut self, client: ClientId) {
        self.ready_clients.push(client);
    }

    fn console_drop(&mut self, client: ClientId) {
        self.dropped_clients.push(client);
    }

    fn udp_free(&mut self, port: u16) -> bool {
        !self.foreign_udp.contains(&port)
            && !self.nios.values().any(|n| n.udp_port() == Some(port))
            && !self.vpcs_bound(port)
    }

    fn open_nio(&mut self, node: NodeKey, port: usize, nio: &Nio) -> Result<(), ApiError> {
        // The same local port, or the same TAP device, used by another port.
        let same = |n: &Nio| match (n, nio) {
            (Nio::Udp(a), Nio::Udp(b)) => a.lport == b.lport,
            (Nio::Tap(a), Nio::Tap(b)) => a.device == b.device,
            (Nio::Ethernet(a), Nio::Ethernet(b)) => a.device == b.device,
            _ => false,
        };
        let clash = self.nios.iter().any(|(k, n)| same(n) && *k != (node, port));
        match nio {
            Nio::Udp(u) => {
                if clash || self.foreign_udp.contains(&u.lport) || self.vpcs_bound(u.lport) {
                    return Err(ApiError::conflict(format!(
                        "UDP port {} is already in use",
                        u.lport
                    )));
                }
                if self.unreachable_rports.contains(&u.rport) {
                    return Err(ApiError::conflict(format!(
                        "Cannot reach {}:{}",
                        u.rhost, u.rport
                    )));
                }
            }
            Nio::Tap(t) if clash || self.unopenable_taps.contains(&t.device) => {
                return Err(ApiError::conflict(format!(
                    "TAP device {} cannot be opened",
                    t.device
                )));
            }
            Nio::Tap(_) | Nio::Ethernet(_) => {}
        }
        self.nios.insert((node, port), nio.clone());
        Ok(())
    }

    fn close_nio(&mut self, node: NodeKey, port: usize) {
        self.nios.remove(&(node, port));
    }

    fn send_frame(&mut self, to: super::node::Endpoint, frame: &[u8]) -> bool {
        self.sent_frames.push((to, frame.to_vec()));
        true
    }

    fn spawn(&mut self, node: NodeKey, spawn: &Spawn) -> Result<Spawned, ApiError> {
        self.last_spawn = Some(spawn.clone());
        if let Some(e) = &self.spawn_error {
            return Err(e.clone());
        }
        assert!(
            !self.procs.contains_key(&node),
            "two processes for one node"
        );
        self.next_pid += 1;
        let pid = 1000 + self.next_pid;
        let proc = FakeProc {
            pid,
            signals: Vec::new(),
            udp_port: spawn.vpcs_port,
        };
        self.procs.insert(node, proc);
        Ok(Spawned {
            pid,
            filter_shell: !spawn.sandbox,
            command_line: format!("vpcs -m {} -s {}", spawn.mac, spawn.vpcs_port),
        })
    }

    fn spawn_vm(
        &mut self,
        node: NodeKey,
        spawn: &super::host::VmSpawn,
    ) -> Result<Spawned, ApiError> {
        self.last_vm = Some(spawn.clone());
        if let Some(e) = &self.spawn_error {
            return Err(e.clone());
        }
        assert!(
            !self.procs.contains_key(&node),
            "two processes for one node"
        );
        self.next_pid += 1;
        let pid = 1000 + self.next_pid;
        let proc = FakeProc {
            pid,
            signals: Vec::new(),
            udp_port: 0,
        };
        self.procs.insert(node, proc);
        Ok(Spawned {
            pid,
            filter_shell: false,
            command_line: spawn.args.join(" "),
        })
    }

    fn readable(&mut self, path: &Path) -> bool {
        self.readable.contains(path)
    }

    fn receive_body(&mut self, ticket: Ticket, dir: &Path, rel: &Path) -> Result<(), ApiError> {
        self.receiving.push((ticket, dir.join(rel)));
        Ok(())
    }

    fn bind_aux(&mut self, node: NodeKey, port: u16) -> Result<(), ApiError> {
        if self.foreign_consoles.contains(&port) || self.consoles.values().any(|&p| p == port) {
            return Err(ApiError::conflict(format!(
                "Console port {port} is already in use"
            )));
        }
        self.aux_consoles.insert(node, port);
        Ok(())
    }

    fn close_aux(&mut self, node: NodeKey) {
        self.aux_consoles.remove(&node);
    }

    fn aux_input(&mut self, node: NodeKey, data: &[u8]) {
        self.aux_typed
            .entry(node)
            .or_default()
            .extend_from_slice(data);
    }

    fn engine(&mut self, call: super::host::EngineCall) -> Result<(), ApiError> {
        if self.engine_down {
            return Err(ApiError::conflict("Can't connect to Docker daemon"));
        }
        self.engine_calls.push(call);
        Ok(())
    }

    fn plug(&mut self, pid: u32, links: &[super::host::Veth]) -> Result<(), ApiError> {
        self.plugged.push((pid, links.to_vec()));
        Ok(())
    }

    fn unplug(&mut self, names: &[String]) {
        self.unplugged.extend_from_slice(names);
    }

    fn monitor_send(&mut self, node: NodeKey, data: &[u8]) {
        self.monitor
            .entry(node)
            .or_default()
            .extend_from_slice(data);
    }

    fn signal(&mut self, node: NodeKey, signal: Signal) {
        if let Some(p) = self.procs.get_mut(&node) {
            p.signals.push(signal);
        }
    }

    fn reap(&mut self, node: NodeKey) -> String {
        match self.procs.remove(&node) {
            Some(p) if p.signals.contains(&Signal::Kill) => "signal 9".into(),
            Some(_) => panic!("reaped a process that was not killed"),
            None => "already gone".into(),
        }
    }

    fn release_process(&mut self, node: NodeKey) {
        assert!(!self.procs.contains_key(&node), "released a live process");
        self.released.push((node, 0));
        self.unread.remove(&node);
    }

    fn pending_output(&mut self, node: NodeKey) -> Vec<u8> {
        self.unread.remove(&node).unwrap_or_default()
    }

    fn console_input(&mut self, node: NodeKey, data: &[u8]) {
        self.typed.entry(node).or_default().extend_from_slice(data);
    }

    fn log_output(&mut self, node: NodeKey, data: &[u8]) {
        self.logged.entry(node).or_default().extend_from_slice(data);
    }

    fn files(&mut self) -> &mut dyn Files {
        &mut self.disk
    }

    fn wall_clock(&mut self) -> std::time::SystemTime {
        std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000)
    }

    fn interfaces(&mut self) -> Result<Vec<String>, ApiError> {
        Ok(vec!["lo".into()])
    }

    fn interface_details(&mut self) -> Result<Vec<crate::lab::answer::Interface>, ApiError> {
        Ok(vec![crate::lab::answer::Interface {
            name: "lo".into(),
            ip_address: "127.0.0.1".into(),
            netmask: "255.0.0.0".into(),
            mac_address: String::new(),
            kind: "loopback",
        }])
    }

    fn load(&mut self) -> crate::lab::answer::Load {
        crate::lab::answer::Load {
            cpu_usage_percent: 1.5,
            memory_usage_percent: 42.0,
            disk_usage_percent: 17.0,
        }
    }

    fn statistics(&mut self, _dir: &Path) -> crate::lab::answer::Statistics {
        crate::lab::answer::Statistics {
            memory_total: 1 << 30,
            ..Default::default()
        }
    }

    fn qemu(&mut self) -> crate::lab::answer::QemuHost {
        self.qemu_host.clone()
    }

    fn machine(&mut self, _dir: &Path) -> crate::lab::answer::Machine {
        crate::lab::answer::Machine {
            cpus: 2,
            memory: 1 << 30,
            disk_size: 1 << 34,
        }
    }

    fn reload_settings(&mut self) -> Result<Settings, ApiError> {
        self.settings
            .clone()
            .ok_or_else(|| ApiError::conflict("no configuration to reload"))
    }
}

/// Directories and files as plain data.
#[derive(Debug, Default)]
pub struct FakeFiles {
    /// Directories.
    pub dirs: BTreeSet<PathBuf>,
    /// Files and their contents.
    pub files: BTreeMap<PathBuf, Vec<u8>>,
    /// Digests being computed: the files, and whether a slice was done.
    pub digesting: Option<(Vec<PathBuf>, bool)>,
}

impl Files for FakeFiles {
    fn image_files(&mut self, dir: &Path) -> Result<Vec<ImageFile>, ApiError> {
        let cached = |p: &Path| {
            let mut c = p.as_os_str().to_os_string();
            c.push(".md5sum");
            Some(String::from_utf8_lossy(self.files.get(Path::new(&c))?).into_owned())
        };
        Ok(self
            .files
            .iter()
            .filter(|(p, _)| p.parent() == Some(dir))
            .map(|(p, data)| ImageFile {
                name: p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                size: data.len() as u64,
                elf: data.starts_with(b"\x7fELF"),
                md5: cached(p),
            })
            .collect())
    }

    fn digest_begin(&mut self, dir: &Path, names: Vec<String>) {
        self.digesting = Some((names.iter().map(|n| dir.join(n)).collect(), false));
    }

    /// Two slices: none done after the first.
    fn digest_step(&mut self, _bytes: usize) -> Option<Vec<Option<String>>> {
        let (paths, sliced) = self.digesting.as_mut()?;
        if !std::mem::replace(sliced, true) {
            return None;
        }
        let paths = std::mem::take(paths);
        self.digesting = None;
        Some(
            paths
                .iter()
                .map(|p| Some(format!("{:x}", md5::compute(self.files.get(p)?))))
                .collect(),
        )
    }

    fn create_dir(&mut self, dir: &Path) -> Result<(), ApiError> {
        self.dirs.insert(dir.to_path_buf());
        Ok(())
    }

    fn remove_dir(&mut self, dir: &Path) -> Result<(), ApiError> {
        self.dirs.retain(|d| !d.starts_with(dir));
        self.files.retain(|f, _| !f.starts_with(dir));
        Ok(())
    }

    fn restore_begin(&mut self, dir: &Path, archive: Vec<u8>) -> Result<(), ApiError> {
        self.files.insert(dir.join("restored.tar"), archive);
        Ok(())
    }

    fn restore_step(
        &mut self,
        _entries: usize,
    ) -> Option<Result<super::answer::Restored, ApiError>> {
        let (_, archive) = self
            .files
            .iter()
            .find(|(f, _)| f.ends_with("restored.tar"))?;
        Some(Ok(super::answer::Restored {
            projects: 1,
            files: 1,
            bytes: archive.len() as u64,
        }))
    }

    fn subdirs(&mut self, dir: &Path, limit: usize) -> Vec<String> {
        let mut names: Vec<String> = self
            .dirs
            .iter()
            .filter(|d| d.parent() == Some(dir))
            .filter_map(|d| Some(d.file_name()?.to_string_lossy().into_owned()))
            .collect();
        names.truncate(limit);
        names
    }

    fn exists(&mut self, path: &Path) -> bool {
        self.dirs
            .iter()
            .chain(self.files.keys())
            .any(|p| p.starts_with(path))
    }

    fn rename(&mut self, from: &Path, to: &Path) -> Result<(), ApiError> {
        let moved = |p: &Path| to.join(p.strip_prefix(from).unwrap_or(p));
        self.dirs = self
            .dirs
            .iter()
            .map(|d| {
                if d.starts_with(from) {
                    moved(d)
                } else {
                    d.clone()
                }
            })
            .collect();
        self.files = std::mem::take(&mut self.files)
            .into_iter()
            .map(|(f, c)| {
                if f.starts_with(from) {
                    (moved(&f), c)
                } else {
                    (f, c)
                }
            })
            .collect();
        Ok(())
    }

    fn append_file(&mut self, path: &Path, data: &[u8]) -> Result<(), ApiError> {
        match self.files.get_mut(path) {
            Some(f) => {
                f.extend_from_slice(data);
                Ok(())
            }
            None => Err(ApiError::conflict(format!(
                "Cannot write {}",
                path.display()
            ))),
        }
    }

    fn write_file(&mut self, path: &Path, data: &[u8]) -> Result<(), ApiError> {
        self.files.insert(path.to_path_buf(), data.to_vec());
        Ok(())
    }

    fn remove_file(&mut self, path: &Path) {
        self.files.remove(path);
    }

    fn read_file(&mut self, path: &Path, limit: usize) -> Option<Vec<u8>> {
        let f = self.files.get(path)?;
        Some(f[..f.len().min(limit)].to_vec())
    }

    fn read_tail(&mut self, path: &Path, n: usize) -> Vec<u8> {
        let f = self.files.get(path).cloned().unwrap_or_default();
        f[f.len().saturating_sub(n)..].to_vec()
    }

    fn list_files(&mut self, dir: &Path, limit: usize) -> Result<Vec<(String, String)>, ApiError> {
        Ok(self
            .files
            .iter()
            .filter_map(|(p, data)| {
                let rel = p.strip_prefix(dir).ok()?;
                Some((
                    rel.to_string_lossy().into_owned(),
                    format!("{:x}", md5::compute(data)),
                ))
            })
            .take(limit)
            .collect())
    }

    fn read_confined(
        &mut self,
        dir: &Path,
        path: &Path,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        if !path.starts_with(dir) {
            return Err(ApiError::Forbidden("outside".into()));
        }
        Ok(self.read_file(path, limit))
    }

    fn write_confined(&mut self, dir: &Path, path: &Path, data: &[u8]) -> Result<(), ApiError> {
        if !path.starts_with(dir) {
            return Err(ApiError::Forbidden("outside".into()));
        }
        self.write_file(path, data)
    }
}
