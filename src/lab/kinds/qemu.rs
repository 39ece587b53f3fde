//! QEMU virtual machines (sans-IO: the lab decides the command line and
//! the lifecycle, the host spawns, relays and reads).
//!
//! nanolab owns a VM's plumbing: its serial console is one end of a socket
//! pair the host reads like a VPCS pty (so the console is nanolab's, many
//! clients, history), its monitor is QMP on another pair, and each adapter
//! is a datagram channel whose other end nanolab relays to the adapter's
//! NIO: filters, captures and counters work on QEMU ports as on any other.
//! A start spawns QEMU and is answered once QMP has greeted and taken
//! `qmp_capabilities`; suspend, resume and reload are QMP's `stop`, `cont`
//! and `system_reset`; a stop asks QMP to `quit` and kills after
//! [`STOP_GRACE`].

use super::{Behaviour, Ctx, Echo, Face, FrameCx, Gone, Started, Stopping, Was, status_word};
use crate::error::ApiError;
use crate::lab::answer::{Body, QemuView};
use crate::lab::command::{NodeClass, NodeCommand, PortAddr};
use crate::lab::event::Event;
use crate::lab::host::{Signal, VmSpawn};
use crate::lab::id::Endpoint;
use crate::lab::port::Port;
use crate::lab::settings::QemuAccel;
use crate::lab::spec::{QemuConfig, QemuPatch};
use crate::lab::timers::Alarm;
use crate::limits::{START_ERROR_BYTES, START_TIMEOUT, STOP_GRACE};
use crate::proto::qmp;
use serde_json::Value;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// Where a project keeps its VMs' directories (`project-files/qemu`).
pub const DIR: &str = "qemu";
/// QEMU's output (the command line first), in the VM's directory.
pub const LOG_FILE: &str = "qemu.log";
/// Where adapter `i`'s channel to QEMU is among the node's NIO indices:
/// `CHANNEL + i` (its NIO to the world is `i`).
const CHANNEL: usize = 1 << 20;
/// How long a VM tried under KVM has to show its firmware running
/// (SeaBIOS and OVMF write to the debug port at once) before nanolab calls
/// KVM broken here and starts it again under TCG.
const KVM_TRIAL: std::time::Duration = std::time::Duration::from_secs(3);
/// How often the trial looks.
const KVM_LOOK: std::time::Duration = std::time::Duration::from_millis(250);
/// Where a VM tried under KVM writes its firmware's debug port.
const DEBUGCON: &str = "debugcon.log";
/// The disks, by the key that names each.
const DISKS: [&str; 4] = ["hda", "hdb", "hdc", "hdd"];
/// Options that would fight nanolab for the machine's disks, network or
/// life (GNS3 2.2's list, and `-daemonize`).
const FORBIDDEN: [&str; 12] = [
    "-blockdev",
    "-drive",
    "-hda",
    "-hdb",
    "-hdc",
    "-hdd",
    "-fsdev",
    "-virtfs",
    "-nic",
    "-netdev",
    "-daemonize",
    "-serial",
];

/// A command line, the linked clones to make first (base, overlay), and
/// whether it tries KVM (to be watched).
type Plan = (Vec<String>, Vec<(PathBuf, PathBuf)>, bool);

/// A QEMU VM: its settings, directory and process.
#[derive(Debug)]
pub struct Qemu {
    /// Its directory (linked clones, `qemu.log`).
    pub dir: PathBuf,
    /// What the API set.
    pub config: Box<QemuConfig>,
    /// Where relative image names are found.
    pub images: PathBuf,
    /// The command line of the last start.
    pub command_line: String,
    /// The running QEMU, if any.
    pub proc: Option<Box<VmProc>>,
}

/// A running QEMU.
#[derive(Debug)]
pub struct VmProc {
    /// Tells this process's alarms from a later one's.
    pub serial: u64,
    /// Its pid.
    pub pid: u32,
    /// Its QMP reader.
    pub qmp: qmp::Reader,
    /// QMP took `qmp_capabilities`: the VM is up.
    pub ready: bool,
    /// The guest's CPUs are paused.
    pub paused: bool,
    /// The id of the last `stop` or `cont` sent, until its reply: run-state
    /// events meanwhile are the echo of an earlier command, not news (a
    /// suspend's STOP arriving after the resume that followed it must not
    /// show the VM suspended).
    pub run_state_sent: Option<u64>,
    /// The last QMP command id given.
    pub last_id: u64,
    /// It tries KVM: ready once its firmware is seen running.
    pub kvm_trial: Option<std::time::Instant>,
}

impl Qemu {
    /// A VM in `dir`, its images found in `images`.
    pub fn new(dir: PathBuf, images: PathBuf, config: QemuConfig) -> Qemu {
        Qemu {
            dir,
            config: Box::new(config),
            images,
            command_line: String::new(),
            proc: None,
        }
    }

    /// An image's path: an absolute one as given, a relative one in the
    /// images directory's `QEMU/`, else in the images directory (1.3's
    /// topologies).
    pub fn image_path(&self, name: &str, exists: &mut dyn FnMut(&Path) -> bool) -> PathBuf {
        image_path(&self.images, name, exists)
    }

    /// Adapter `i`'s MAC: the base MAC plus `i` (GNS3 2.2), or without
    /// one 1.3.13's: `00:00:ab:`, the node id's last four hex digits, the
    /// adapter number.
    pub fn mac(&self, id: Uuid, adapter: usize) -> String {
        if let Some(mac) = super::mac_plus(&self.config.more.mac_address, adapter) {
            return mac;
        }
        let hex = id.simple().to_string();
        format!(
            "00:00:ab:{}:{}:{:02x}",
            &hex[28..30],
            &hex[30..32],
            adapter & 0xff
        )
    }

    /// GNS3 2.2's base MAC for node `id`: `0c:` and the id's hex digits
    /// 2 to 7, then `:00:00`.
    pub fn gns3_mac(id: Uuid) -> String {
        let hex = id.simple().to_string();
        format!("0c:{}:{}:{}:00:00", &hex[2..4], &hex[4..6], &hex[6..8])
    }

    /// The command line, every image found, its linked clones to make
    /// (base, overlay); fd placeholders (`@console@`, `@monitor@`,
    /// `@nicN@`) for the host to fill. A missing image is a 409 naming it.
    fn plan(&self, cx: &mut Ctx) -> Result<Plan, ApiError> {
        let c = &self.config;
        let host_kvm = cx.host.qemu().kvm;
        let (accel_policy, kvm_runs) = (cx.settings.qemu_accel, cx.settings.kvm_runs.get());
        let host = &mut *cx.host;
        let mut exists = |p: &Path| host.readable(p);
        let mut args = vec![
            c.qemu_path.clone(),
            "-name".into(),
            cx.name.clone(),
            "-m".into(),
            format!("{}M", c.ram),
        ];
        let options = split_options(&c.options)?;
        let mut overlays = Vec::new();
        for (i, image) in [&c.hda, &c.hdb, &c.hdc, &c.hdd].into_iter().enumerate() {
            if image.is_empty() {
                continue;
            }
            let base = self.image_path(image, &mut exists);
            if !exists(&base) {
                return Err(ApiError::conflict(format!(
                    "{} disk image '{}' is not accessible",
                    DISKS[i],
                    base.display()
                )));
            }
            let overlay = self.dir.join(format!("{}_disk.qcow2", DISKS[i]));
            args.push(format!("-{}", DISKS[i]));
            args.push(overlay.to_string_lossy().into_owned());
            overlays.push((base, overlay));
        }
        for (key, what, value) in [
            ("-kernel", "kernel image", &c.kernel_image),
            ("-initrd", "initrd file", &c.initrd),
            ("-cdrom", "cdrom image", &c.more.cdrom_image),
            ("-bios", "bios image", &c.more.bios_image),
        ] {
            if value.is_empty() {
                continue;
            }
            let p = self.image_path(value, &mut exists);
            if !exists(&p) {
                return Err(ApiError::conflict(format!(
                    "{what} '{}' is not accessible",
                    p.display()
                )));
            }
            args.push(key.into());
            args.push(p.to_string_lossy().into_owned());
        }
        if c.more.cpus > 1 {
            args.push("-smp".into());
            args.push(format!("cpus={},sockets=1", c.more.cpus));
        }
        if c.more.boot_priority != "c" {
            args.push("-boot".into());
            args.push(format!("order={}", c.more.boot_priority));
        }
        if !c.kernel_command_line.is_empty() {
            args.push("-append".into());
            args.push(c.kernel_command_line.clone());
        }
        // No acceleration in the options: KVM where it runs guests, which
        // the first VM to try finds out (the /dev/kvm probe passes on
        // nested hosts whose KVM then hangs); TCG otherwise.
        let asked = options.iter().any(|o| {
            o.starts_with("-accel")
                || o == "-enable-kvm"
                || o.starts_with("--accel")
                || o.contains("accel=")
        });
        let program = Path::new(&c.qemu_path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let x86 = ["x86_64", "i386", "amd64"]
            .iter()
            .any(|a| program.ends_with(a))
            || program.starts_with("qemu-kvm");
        let (kvm, trial) = match (asked, accel_policy) {
            (true, _) | (false, QemuAccel::Tcg) => (false, false),
            (false, QemuAccel::Kvm) => (true, false),
            (false, QemuAccel::Auto) => match (x86 && host_kvm, kvm_runs) {
                (true, Some(true)) => (true, false),
                (true, None) => (true, true),
                _ => (false, false),
            },
        };
        if !asked {
            args.push("-accel".into());
            args.push(if kvm { "kvm" } else { "tcg" }.into());
        }
        if trial {
            let log = self.dir.join(DEBUGCON);
            args.extend([
                "-debugcon".into(),
                format!("file:{}", log.display()),
                "-global".into(),
                "isa-debugcon.iobase=0x402".into(),
            ]);
        }
        args.extend(
            [
                "-display",
                "none",
                "-chardev",
                "socket,id=con0,fd=@console@",
                "-serial",
                "chardev:con0",
                "-chardev",
                "socket,id=qmp0,fd=@monitor@",
                "-mon",
                "chardev=qmp0,mode=control",
            ]
            .map(String::from),
        );
        for i in 0..c.adapters as usize {
            args.push("-device".into());
            args.push(format!(
                "{},mac={},netdev=gns3-{i}",
                c.adapter_type,
                self.mac(cx.id, i)
            ));
            args.push("-netdev".into());
            args.push(format!(
                "dgram,id=gns3-{i},local.type=fd,local.str=@nic{i}@"
            ));
        }
        args.extend(options);
        Ok((args, overlays, trial))
    }

    /// Spawn QEMU: its directory, linked clones and channels (the host's
    /// part), then wait for QMP.
    fn spawn_vm(&mut self, cx: &mut Ctx) -> Result<(), ApiError> {
        cx.host.files().create_dir(&self.dir)?;
        let (args, overlays, trial) = self.plan(cx)?;
        if trial {
            cx.host.files().remove_file(&self.dir.join(DEBUGCON));
        }
        // The images directory, and every image named by its path.
        let mut reads = vec![self.images.clone()];
        reads.extend(overlays.iter().map(|(base, _)| base.clone()));
        reads.extend(
            args.iter()
                .filter(|a| a.starts_with('/') && !a.starts_with(&*self.dir.to_string_lossy()))
                .map(PathBuf::from),
        );
        let spawn = VmSpawn {
            args,
            dir: self.dir.clone(),
            log: self.dir.join(LOG_FILE),
            adapters: self.config.adapters as usize,
            channel_base: CHANNEL,
            overlays,
            nice: nice(&self.config.process_priority),
            reads,
        };
        let spawned = cx.host.spawn_vm(cx.key, &spawn)?;
        let serial = cx.next_serial();
        cx.console.history.clear();
        self.command_line = spawned.command_line;
        self.proc = Some(Box::new(VmProc {
            serial,
            pid: spawned.pid,
            qmp: qmp::Reader::default(),
            ready: false,
            paused: false,
            run_state_sent: None,
            last_id: 0,
            kvm_trial: trial.then_some(cx.now),
        }));
        cx.schedule(cx.now + START_TIMEOUT, Alarm::StartTimeout(serial));
        cx.events.emit(Event::ProcessStarted {
            node: cx.id,
            pid: spawned.pid,
            vpcs_port: 0,
        });
        Ok(())
    }

    /// Tell the guest which adapters have no link (2.2's
    /// `replicate_network_connection_state`): at start, for each adapter
    /// without a NIO.
    fn links_at_start(&mut self, cx: &mut Ctx) {
        let down: Vec<usize> = (0..cx.ports.len())
            .filter(|&i| cx.ports[i].nio.is_none())
            .collect();
        for i in down {
            self.link_state(cx, i, false);
        }
    }

    /// Send a QMP command; `false` when QMP is not up.
    fn qmp(&mut self, cx: &mut Ctx, execute: &str, arguments: Value) -> bool {
        let Some(p) = self.proc.as_mut().filter(|p| p.ready) else {
            return false;
        };
        p.last_id += 1;
        cx.host
            .monitor_send(cx.key, &qmp::command(p.last_id, execute, arguments));
        true
    }

    /// Forget the process: what the host held, its channels.
    fn process_gone(&mut self, cx: &mut Ctx, how: &str) -> bool {
        let Some(p) = self.proc.take() else {
            return false;
        };
        for i in 0..self.config.adapters as usize {
            cx.host.close_nio(cx.key, CHANNEL + i);
        }
        cx.host.release_process(cx.key);
        cx.events.emit(Event::ProcessGone {
            node: cx.id,
            pid: p.pid,
            how: how.to_string(),
        });
        true
    }

    /// The end of `qemu.log`, for an error.
    fn log_tail(&self, cx: &mut Ctx) -> String {
        let log = cx
            .host
            .files()
            .read_tail(&self.dir.join(LOG_FILE), START_ERROR_BYTES);
        String::from_utf8_lossy(&log).trim().to_string()
    }

    /// A VM tried under KVM: its firmware wrote to the debug port (KVM
    /// runs guests: ready, and later VMs use it straight away), or not yet
    /// (look again), or not within [`KVM_TRIAL`] (KVM hangs here: this QEMU
    /// goes, and the VM starts again under TCG, as every later one will).
    fn kvm_check(&mut self, cx: &mut Ctx, serial: u64) -> bool {
        let Some(since) = self.proc_of(serial).and_then(|p| p.kvm_trial) else {
            return false;
        };
        // KVM that cannot give the guest the CPU QEMU models (a nested
        // host's) says so at once, and such guests hang past their firmware.
        let qemu_log = cx.host.files().read_tail(&self.dir.join(LOG_FILE), 4096);
        let unfit = String::from_utf8_lossy(&qemu_log)
            .lines()
            .find(|l| l.contains("host doesn't support requested feature"))
            .map(|l| l.trim().to_string());
        let log = self.dir.join(DEBUGCON);
        if let Some(why) = unfit {
            return self.kvm_fails(cx, &why);
        }
        if !cx.host.files().read_tail(&log, 1).is_empty() {
            cx.settings.kvm_runs.set(Some(true));
            if let Some(p) = &mut self.proc {
                p.kvm_trial = None;
            }
            self.links_at_start(cx);
            return true;
        }
        if cx.now < since + KVM_TRIAL {
            cx.schedule(cx.now + KVM_LOOK, Alarm::KvmCheck(serial));
            return false;
        }
        let why = format!("its firmware did not run within {KVM_TRIAL:?}");
        self.kvm_fails(cx, &why)
    }

    /// KVM does not run guests here: never again, and this VM starts over
    /// under TCG once its QEMU is gone (see `on_exit`).
    fn kvm_fails(&mut self, cx: &mut Ctx, why: &str) -> bool {
        cx.settings.kvm_runs.set(Some(false));
        cx.warn(format!(
            "KVM does not run {}'s guest here ({why}): QEMU VMs run under TCG from now on",
            cx.name
        ));
        cx.host.signal(cx.key, Signal::Kill);
        false
    }

    fn proc_of(&self, serial: u64) -> Option<&VmProc> {
        self.proc.as_deref().filter(|p| p.serial == serial)
    }

    /// Apply an update. The adapters change only while QEMU is stopped
    /// (their channels are QEMU's), and drop their NIOs, as GNS3 does.
    fn update(&mut self, cx: &mut Ctx, b: QemuPatch) -> Result<(), ApiError> {
        if let Some(adapters) = b.adapters
            && adapters != self.config.adapters
        {
            if self.proc.is_some() {
                return Err(ApiError::conflict(format!(
                    "QEMU VM {} must be stopped to change its adapters",
                    cx.name
                )));
            }
            for i in 0..cx.ports.len() {
                cx.host.close_nio(cx.key, i);
            }
            *cx.ports = (0..adapters).map(|a| Port::new(a, 0)).collect();
        }
        if let Some(port) = b.console.filter(|p| Some(*p) != *cx.console_port) {
            let mut current = *cx.console_port;
            let moved = cx.console_choice().move_to(&mut current, port);
            *cx.console_port = current;
            moved?;
        }
        if let Some(options) = &b.options {
            split_options(options)?;
        }
        if b.check_images {
            let host = &mut *cx.host;
            let local = cx.settings.local;
            check_images(&self.images, &b.images(), local, &mut |p| host.readable(p))?;
        }
        if let Some(name) = b.name.clone() {
            *cx.name = name;
        }
        b.apply(&mut self.config);
        cx.updated = true;
        Ok(())
    }
}

/// Image `name`'s path: an absolute one as given, a relative one in
/// `images`' `QEMU/`, else in `images` (1.3's topologies).
fn image_path(images: &Path, name: &str, exists: &mut dyn FnMut(&Path) -> bool) -> PathBuf {
    let p = Path::new(name);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    let in_qemu = images.join("QEMU").join(p);
    if exists(&in_qemu) {
        return in_qemu;
    }
    let direct = images.join(p);
    if exists(&direct) { direct } else { in_qemu }
}

/// GNS3 2.2's check when a node is created or updated: each image named
/// is there, and an absolute path lies in the images directory unless the
/// server is `--local` (a remote client may not make the compute read any
/// file it likes). A missing one is `ImageMissing`, which a controller
/// answers by uploading the image and asking again.
pub fn check_images(
    images: &Path,
    names: &[&str],
    local: bool,
    exists: &mut dyn FnMut(&Path) -> bool,
) -> Result<(), ApiError> {
    for name in names {
        let p = image_path(images, name, exists);
        if Path::new(name).is_absolute() && !local && !p.starts_with(images) {
            return Err(ApiError::conflict(format!(
                "{name} is not allowed on this remote server. Please only use a file from '{}'",
                images.join("QEMU").display()
            )));
        }
        if !exists(&p) {
            return Err(ApiError::ImageMissing((*name).to_string()));
        }
    }
    Ok(())
}

/// `options` split as a shell would (quotes, backslashes), refused when it
/// names what nanolab owns.
pub fn split_options(options: &str) -> Result<Vec<String>, ApiError> {
    let words = shlex::split(options).ok_or_else(|| {
        ApiError::conflict(format!("QEMU options are not well quoted: {options}"))
    })?;
    for w in &words {
        let flag = w
            .strip_prefix('-')
            .filter(|r| r.starts_with('-'))
            .unwrap_or(w);
        if FORBIDDEN.contains(&flag) {
            return Err(ApiError::conflict(format!(
                "Forbidden additional option: {w}"
            )));
        }
    }
    Ok(words)
}

/// GNS3's nice value for a process priority (`renice`).
fn nice(priority: &str) -> i32 {
    match priority {
        "realtime" => -20,
        "very high" => -15,
        "high" => -5,
        "normal" => 0,
        "very low" => 19,
        _ => 5,
    }
}

impl Behaviour for Qemu {
    fn name(&self) -> &'static str {
        "QEMU VM"
    }

    fn word(&self) -> &'static str {
        "qemu"
    }

    fn running(&self) -> bool {
        self.proc.is_some()
    }

    fn class(&self) -> NodeClass {
        NodeClass::Qemu
    }

    fn accepts(&self, cmd: &NodeCommand) -> bool {
        use NodeCommand as C;
        !matches!(
            cmd,
            C::Update(_)
                | C::UpdateDevice(_)
                | C::UpdateMapping(..)
                | C::UpdateCloud(..)
                | C::AddDeviceNio(..)
                | C::Duplicate(_)
        )
    }

    fn view(&self, n: &Face) -> Body {
        let paused = self.proc.as_ref().is_some_and(|p| p.paused);
        Body::Qemu(Box::new(QemuView {
            id: n.id,
            project: n.project,
            name: n.name.to_string(),
            console: n.console.unwrap_or(0),
            config: (*self.config).clone(),
            status: status_word(n.state, paused),
            directory: self.dir.clone(),
            command_line: self.command_line.clone(),
        }))
    }

    /// An adapter number names the port (a QEMU adapter has port 0).
    fn port_index(&self, ports: &[Port], at: PortAddr) -> Result<usize, ApiError> {
        super::adapter_port(ports, at, "QEMU VM")
    }

    fn command(&mut self, cx: &mut Ctx, cmd: NodeCommand) -> Result<(), ApiError> {
        match cmd {
            NodeCommand::UpdateQemu(b) => self.update(cx, *b),
            // Suspend, resume, reload: QMP on a running VM, nothing on a
            // stopped one (as 1.3.13).
            NodeCommand::Suspend | NodeCommand::Resume => {
                let pause = matches!(cmd, NodeCommand::Suspend);
                let execute = if pause { "stop" } else { "cont" };
                if self.qmp(cx, execute, Value::Null)
                    && let Some(p) = &mut self.proc
                {
                    p.paused = pause;
                    p.run_state_sent = Some(p.last_id);
                    cx.updated = true;
                }
                Ok(())
            }
            NodeCommand::Reload => {
                self.qmp(cx, "system_reset", Value::Null);
                Ok(())
            }
            _ => Err(ApiError::conflict(format!(
                "QEMU VM {} does not take this request",
                cx.name
            ))),
        }
    }

    fn in_place(&self, cmd: &NodeCommand) -> bool {
        matches!(
            cmd,
            NodeCommand::Suspend | NodeCommand::Resume | NodeCommand::Reload
        ) && self.proc.is_some()
    }

    /// A running VM resumes (1.3.13's start of a started VM).
    fn start(&mut self, cx: &mut Ctx) -> Result<Started, ApiError> {
        if self.proc.is_some() {
            self.command(cx, NodeCommand::Resume)?;
            return Ok(Started::Now);
        }
        if self.config.legacy_networking {
            return Err(ApiError::conflict(
                "Qemu version 2.9.0 and later doesn't support legacy networking mode",
            ));
        }
        if self.config.cpu_throttling > 0 {
            return Err(ApiError::conflict(format!(
                "CPU throttling is not served yet: set cpu_throttling of {} to 0",
                cx.name
            )));
        }
        // Check the images now: a missing one is the start's answer.
        self.plan(cx)?;
        cx.spawns.push_back(cx.key);
        Ok(Started::Later)
    }

    fn spawn(&mut self, cx: &mut Ctx) -> Result<(), ApiError> {
        self.spawn_vm(cx)
    }

    fn stop(&mut self, cx: &mut Ctx) -> Stopping {
        let Some(p) = &self.proc else {
            return Stopping::Gone;
        };
        let (serial, pid) = (p.serial, p.pid);
        cx.events.emit(Event::Stopping { node: cx.id, pid });
        if !self.qmp(cx, "quit", Value::Null) {
            cx.host.signal(cx.key, Signal::Term);
        }
        cx.schedule(cx.now + STOP_GRACE, Alarm::Kill(serial));
        Stopping::Later
    }

    fn kill(&mut self, cx: &mut Ctx) {
        if self.proc.is_some() {
            cx.host.signal(cx.key, Signal::Kill);
            let how = cx.host.reap(cx.key);
            self.process_gone(cx, &how);
        }
    }

    fn on_input(&mut self, cx: &mut Ctx, data: &[u8]) {
        cx.host.console_input(cx.key, data);
    }

    fn link_state(&mut self, cx: &mut Ctx, index: usize, up: bool) {
        if self.config.more.replicate_network_connection_state {
            let args = serde_json::json!({"name": format!("gns3-{index}"), "up": up});
            self.qmp(cx, "set_link", args);
        }
    }

    /// QMP: answer the greeting, and the VM is up once QMP took it.
    fn on_monitor(&mut self, cx: &mut Ctx, data: &[u8]) -> bool {
        let Some(p) = self.proc.as_mut() else {
            return false;
        };
        let mut ready = false;
        for m in p.qmp.receive(data) {
            match m {
                qmp::Message::Greeting => {
                    p.last_id += 1;
                    let c = qmp::command(p.last_id, "qmp_capabilities", Value::Null);
                    cx.host.monitor_send(cx.key, &c);
                }
                qmp::Message::Reply { id: 1, result } if !p.ready => match result {
                    // Under a KVM trial, ready once the firmware runs.
                    Ok(_) if p.kvm_trial.is_some() => {
                        p.ready = true;
                        cx.schedule(cx.now + KVM_LOOK, Alarm::KvmCheck(p.serial));
                    }
                    Ok(_) => {
                        p.ready = true;
                        ready = true;
                    }
                    Err(e) => cx.warn(format!("QMP refused its capabilities: {e}")),
                },
                qmp::Message::Reply { id, result } => {
                    if p.run_state_sent == Some(id) {
                        p.run_state_sent = None;
                    }
                    if let Err(e) = result {
                        cx.warn(format!("QMP: {e}"));
                    }
                }
                // The guest (or another monitor) paused or resumed it.
                qmp::Message::Event { name, .. }
                    if (name == "STOP" || name == "RESUME") && p.run_state_sent.is_none() =>
                {
                    p.paused = name == "STOP";
                    cx.updated = true;
                }
                _ => {}
            }
        }
        if ready {
            self.links_at_start(cx);
        }
        ready
    }

    fn on_exit(&mut self, cx: &mut Ctx, how: &str, was: Was) -> Option<Gone> {
        let retried = self.proc.as_ref().is_some_and(|p| p.kvm_trial.is_some())
            && cx.settings.kvm_runs.get() == Some(false);
        if !self.process_gone(cx, how) {
            return None;
        }
        // A KVM trial that failed: again, under TCG.
        if retried && was == Was::Starting {
            return Some(match self.spawn_vm(cx) {
                Ok(()) => Gone::Restarted,
                Err(e) => Gone::StartFailed(e),
            });
        }
        let tail = self.log_tail(cx);
        Some(match was {
            Was::Starting => Gone::StartFailed(ApiError::conflict(format!(
                "QEMU exited at start ({how}): {tail}"
            ))),
            Was::Stopping => Gone::Stopped,
            Was::Running => Gone::Died {
                warning: format!("qemu exited on its own ({how})"),
                log: format!("QEMU process has stopped ({how})\n{tail}"),
                note: format!("\r\n*** QEMU stopped ({how}) ***\r\n"),
            },
        })
    }

    fn on_alarm(&mut self, cx: &mut Ctx, alarm: Alarm) -> bool {
        match alarm {
            Alarm::KvmCheck(serial) => return self.kvm_check(cx, serial),
            Alarm::Kill(serial) if self.proc_of(serial).is_some() => {
                cx.warn(format!(
                    "QEMU did not quit within {STOP_GRACE:?}: killing it"
                ));
                cx.host.signal(cx.key, Signal::Kill);
            }
            Alarm::StartTimeout(serial) if self.proc_of(serial).is_some_and(|p| !p.ready) => {
                cx.warn(format!("QMP did not answer within {START_TIMEOUT:?}"));
                cx.host.signal(cx.key, Signal::Kill);
            }
            _ => {}
        }
        false
    }

    fn charged(&self, to: Endpoint) -> (usize, bool) {
        super::bridge_charged(to, CHANNEL)
    }

    /// From an adapter's NIO (index `i`) into QEMU's channel, or from the
    /// channel (`CHANNEL + i`) out of the NIO.
    fn on_frame(
        &mut self,
        fx: &mut FrameCx,
        index: usize,
        _outbound: bool,
        frame: &[u8],
        send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
    ) -> Echo {
        super::bridge(fx, index, CHANNEL, self.proc.is_some(), frame, send)
    }

    fn dir(&self) -> Option<&Path> {
        Some(&self.dir)
    }

    fn moved(&mut self, project_dir: &Path, id: Uuid) {
        self.dir = crate::lab::project::node_dir(project_dir, DIR, id);
    }

    fn check(&self, starting: bool) -> Result<(), String> {
        if starting
            && self
                .proc
                .as_ref()
                .is_some_and(|p| p.ready && p.kvm_trial.is_none())
        {
            return Err("a start is parked, yet QMP is up and no KVM trial runs".into());
        }
        Ok(())
    }
}
