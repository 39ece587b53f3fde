//! What the lab answers, before a front-end renders it in its version's
//! shapes (plain data, no I/O). The lab fills these; `v1` (and later `v2`)
//! turn them into JSON and status codes.

use crate::error::ApiError;
use std::path::PathBuf;
use uuid::Uuid;

pub use super::types::{Nio, NioEthernet, NioTap, NioUdp};

/// The lab's answer to a command.
pub type Reply = Result<Answer, ApiError>;

/// A successful answer; each front-end renders it in its own shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Here it is.
    Ok(Body),
    /// Created (or already there).
    Created(Body),
    /// Done, nothing to say.
    NoContent,
}

/// What an answer carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Nothing (`{}`).
    Empty,
    /// The server's version.
    Version {
        /// Started with `--local`.
        local: bool,
    },
    /// Host interface names.
    Interfaces(Vec<String>),
    /// A project.
    Project(ProjectView),
    /// A VPCS node.
    Vpcs(VpcsView),
    /// A QEMU VM.
    Qemu(Box<QemuView>),
    /// A container node.
    Docker(Box<DockerView>),
    /// The engine's images, `repo:tag`, sorted.
    DockerImages(Vec<String>),
    /// The host's interfaces with their addresses (`/v2/compute/network/interfaces`).
    InterfaceDetails(Vec<Interface>),
    /// The host's load (`/v2/compute/statistics`).
    Statistics(Statistics),
    /// The port ranges and the ports in use (`/v2/compute/network/ports`).
    PortUse(PortUse),
    /// What the compute can do (`/v2/compute/capabilities`), with the
    /// version string it reports.
    Capabilities(String),
    /// What the compute can do, as GNS3 3.0 asks: the version string it
    /// reports and the machine.
    Capabilities3(String, Machine),
    /// QEMU programs (`/v1/qemu/binaries`, `/v2/compute/qemu/binaries`
    /// and `img-binaries`).
    Binaries(Vec<Binary>),
    /// `/v2/compute/qemu/capabilities`: the architectures KVM accelerates.
    QemuCapabilities(Vec<&'static str>),
    /// A project's files: (path relative to it, MD5 digest).
    FileList(Vec<(String, String)>),
    /// A file's bytes.
    File(Vec<u8>),
    /// The request's connection becomes a websocket.
    Upgrade(Upgrade),
    /// An Ethernet switch or hub.
    Device(DeviceView),
    /// A cloud.
    Cloud(CloudView),
    /// A capture was started into this file.
    Capture(PathBuf),
    /// A live view of a capture: the request's own connection follows it.
    LiveCapture,
    /// A UDP tunnel.
    Nio(Nio),
    /// A reserved UDP port.
    UdpPort(u16),
    /// The whole lab, for the status page.
    Status(StatusView),
    /// A directory (the projects', the images'), to be streamed as a
    /// tar archive.
    Backup(PathBuf),
    /// The open projects.
    Projects(Vec<ProjectView>),
    /// The client's version is ours (`POST /v1/version`): only the version
    /// is answered, as 1.3.13 answers.
    VersionChecked,
    /// The images in the images directory, with their digests.
    Images(Vec<ImageFile>),
    /// A file to stream as it is (an image download).
    FileStream(PathBuf),
    /// A projects archive was restored: how many entries it had.
    Restored(Restored),
}

/// What a restore wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restored {
    /// Projects (top-level directories) it held.
    pub projects: usize,
    /// Files written.
    pub files: usize,
    /// Bytes in those files.
    pub bytes: u64,
}

/// A file in the images directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFile {
    /// Its name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// It starts with the ELF magic number (a program, not an image).
    pub elf: bool,
    /// Its MD5 digest in hex, when known.
    pub md5: Option<String>,
}

/// What a websocket upgrade is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upgrade {
    /// The compute's notification channel.
    Notifications,
    /// A node's console (the websocket becomes one of its clients).
    Console(super::id::NodeKey),
}

/// How serious a project log message is (GNS3 2.2's `log.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// `log.info`
    Info,
    /// `log.warning`
    Warning,
    /// `log.error`
    Error,
}

/// What a notification channel tells: the load, a node's new state, a
/// project log message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice<'a> {
    /// The host's load.
    Load(&'a Load),
    /// A node changed: its whole description.
    NodeUpdated {
        /// Its project.
        project: Uuid,
        /// The node.
        node: &'a Body,
    },
    /// A message for a project's users.
    Log {
        /// The project.
        project: Uuid,
        /// How serious.
        level: LogLevel,
        /// What.
        text: &'a str,
    },
}

/// A host interface (`/v2/compute/network/interfaces`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Its name, also its id.
    pub name: String,
    /// Its first IPv4 address, or empty.
    pub ip_address: String,
    /// That address's netmask, or empty.
    pub netmask: String,
    /// Its hardware address, or empty.
    pub mac_address: String,
    /// `loopback` or `ethernet`.
    pub kind: &'static str,
}

/// The host's load as the notification channel's `ping` carries it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Load {
    /// CPU busy since the last reading, 0–100.
    pub cpu_usage_percent: f64,
    /// Memory in use, 0–100.
    pub memory_usage_percent: f64,
    /// The projects' disk in use, 0–100.
    pub disk_usage_percent: f64,
}

/// The machine, as GNS3 3.0's capabilities describe it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Machine {
    /// Logical CPUs.
    pub cpus: usize,
    /// Physical memory, in bytes.
    pub memory: u64,
    /// Size of the disk holding the projects, in bytes.
    pub disk_size: u64,
}

/// A QEMU program and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binary {
    /// Its absolute path.
    pub path: std::path::PathBuf,
    /// What it says its version is (`10.0.2`), empty when it would not say.
    pub version: String,
}

/// The host's QEMU programs and acceleration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QemuHost {
    /// `qemu-system-*`, `qemu-kvm` and `qemu` programs (GNS3's rule).
    pub binaries: Vec<Binary>,
    /// `qemu-img` programs.
    pub img_binaries: Vec<Binary>,
    /// `/dev/kvm` answers: KVM can be tried.
    pub kvm: bool,
}

/// `/v2/compute/statistics`: memory and swap in bytes, the rest in percent.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Statistics {
    /// Physical memory.
    pub memory_total: u64,
    /// Memory available.
    pub memory_free: u64,
    /// Memory in use.
    pub memory_used: u64,
    /// Swap.
    pub swap_total: u64,
    /// Swap free.
    pub swap_free: u64,
    /// Swap in use.
    pub swap_used: u64,
    /// CPU busy since the last reading.
    pub cpu_usage_percent: f64,
    /// Memory in use.
    pub memory_usage_percent: f64,
    /// Swap in use.
    pub swap_usage_percent: f64,
    /// The projects directory's filesystem in use.
    pub disk_usage_percent: f64,
    /// Load averages (1, 5, 15 minutes) per CPU, in percent.
    pub load_average_percent: [f64; 3],
}

impl Eq for Statistics {}
impl Eq for Load {}

/// The port ranges and what is taken in them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortUse {
    /// Console ports (first, last).
    pub console_range: (u16, u16),
    /// Console ports taken.
    pub console_ports: Vec<u16>,
    /// UDP ports (first, last).
    pub udp_range: (u16, u16),
    /// UDP ports taken.
    pub udp_ports: Vec<u16>,
}

/// A cloud as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudView {
    /// Its id.
    pub id: Uuid,
    /// Its project.
    pub project: Uuid,
    /// Its name.
    pub name: String,
    /// Its ports.
    pub ports: Vec<super::types::HostPort>,
    /// The host's interfaces a port may reach: (name, `ethernet` or
    /// `tap`, special), for the web UI's port editor.
    pub interfaces: Vec<(String, &'static str, bool)>,
}

/// A switch or hub as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceView {
    /// Its id.
    pub id: Uuid,
    /// Its project.
    pub project: Uuid,
    /// Its name.
    pub name: String,
    /// Switch or hub.
    pub kind: super::types::DeviceType,
    /// A switch's ports with a NIO, and their settings.
    pub ports: Vec<super::types::PortSettings>,
    /// The ports it has (2.2's `ports_mapping`), linked or not.
    pub mapping: Vec<super::types::PortMapping>,
}

/// The lab at a glance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusView {
    /// Started with `--local`.
    pub local: bool,
    /// Every open project, with its nodes and links.
    pub projects: Vec<ProjectStatus>,
    /// Which engine runs the PCs (`vpcs` or `builtin`).
    pub pc_engine: &'static str,
    /// Projects in the projects directory that are not open.
    pub closed: Vec<Uuid>,
}

/// A project on the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectStatus {
    /// The project.
    pub project: ProjectView,
    /// Its nodes, by name.
    pub nodes: Vec<NodeStatus>,
    /// Its links, each once.
    pub links: Vec<LinkStatus>,
}

/// One node on the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// What it is ("VPCS").
    pub kind: &'static str,
    /// "stopped", "starting", "started" or "stopping".
    pub state: &'static str,
    /// Its console port, if it has a console.
    pub console: Option<u16>,
    /// Console clients attached.
    pub clients: usize,
    /// Its ports.
    pub ports: Vec<PortStatus>,
    /// A switch's learnt addresses: (VLAN, MAC, port number).
    pub macs: Vec<(u16, [u8; 6], u32)>,
}

/// One port on the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortStatus {
    /// Adapter number.
    pub adapter: u32,
    /// Port number on it.
    pub port: u32,
    /// Its link to the world.
    pub nio: Option<Nio>,
    /// Its counters since the link came.
    pub stats: PortStats,
    /// A switch port's VLAN mode.
    pub mode: Option<crate::lab::vlan::PortMode>,
    /// A capture is running on it.
    pub capturing: bool,
    /// Link filters act on it.
    pub filtered: bool,
    /// Its rates over the last sampling interval, once two samples are in.
    pub rate: Option<Rate>,
    /// Its rates between successive samples, oldest first (the last few
    /// minutes).
    pub history: Vec<Rate>,
}

/// What crosses a port per second (never NaN: an interval of no time is
/// no rate).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rate {
    /// Frames sent out of the link per second.
    pub out_frames: f64,
    /// Bytes sent out of the link per second.
    pub out_bytes: f64,
    /// Frames delivered from the link per second.
    pub in_frames: f64,
    /// Bytes delivered from the link per second.
    pub in_bytes: f64,
    /// Frames dropped per second.
    pub dropped: f64,
}

impl Eq for Rate {}

/// Two ports of a project joined by a tunnel whose both ends are this
/// server's, or a port linked to something outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStatus {
    /// One end: (node index, port index) in the project's node list.
    pub a: (usize, usize),
    /// The other end.
    pub b: Far,
}

/// Where a link's other end is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Far {
    /// A port of the same project: (node index, port index).
    Port(usize, usize),
    /// Outside: a tunnel's far address, a TAP device, a host interface.
    Outside(String),
}

/// Frame and byte counters of a port, per direction, plus drops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames from the node sent out of the NIO.
    pub out_frames: u64,
    /// Bytes from the node sent out of the NIO.
    pub out_bytes: u64,
    /// Frames from the NIO delivered to the node.
    pub in_frames: u64,
    /// Bytes from the NIO delivered to the node.
    pub in_bytes: u64,
    /// Frames dropped, all causes: the sum of the three below.
    pub dropped: u64,
    /// Dropped because there was nowhere to go (no link, node stopped).
    pub dropped_unlinked: u64,
    /// Dropped because sending failed (the peer's socket or device refused).
    pub dropped_send: u64,
    /// Dropped by the link's filters (GNS3 2.2's frequency drop, packet
    /// loss, BPF, suspend) or by a full delay queue.
    pub dropped_filtered: u64,
}

impl PortStats {
    /// Count a frame with nowhere to go.
    pub fn drop_unlinked(&mut self) {
        self.dropped += 1;
        self.dropped_unlinked += 1;
    }

    /// Count a frame that could not be sent.
    pub fn drop_send(&mut self) {
        self.dropped += 1;
        self.dropped_send += 1;
    }

    /// Count a frame a filter dropped.
    pub fn drop_filtered(&mut self) {
        self.dropped += 1;
        self.dropped_filtered += 1;
    }
}

/// A project as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectView {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: Option<String>,
    /// Its directory.
    pub path: PathBuf,
    /// The directory holding projects.
    pub location: PathBuf,
    /// Deleted when closed.
    pub temporary: bool,
    /// GNS3 2.2's project variables (JSON text).
    pub variables: Option<String>,
}

/// A QEMU VM as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuView {
    /// Its id.
    pub id: Uuid,
    /// Its project.
    pub project: Uuid,
    /// Its name.
    pub name: String,
    /// Its console port.
    pub console: u16,
    /// Its settings.
    pub config: crate::lab::spec::QemuConfig,
    /// `started`, `stopped` or `suspended`.
    pub status: &'static str,
    /// Its directory.
    pub directory: std::path::PathBuf,
    /// The command line of its last start, or empty.
    pub command_line: String,
}

/// A container node as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerView {
    /// Its id.
    pub id: Uuid,
    /// Its project.
    pub project: Uuid,
    /// Its name.
    pub name: String,
    /// Its console port.
    pub console: Option<u16>,
    /// Its settings.
    pub config: crate::lab::spec::DockerConfig,
    /// The engine's id of its container.
    pub container_id: String,
    /// Its auxiliary console's port.
    pub aux: Option<u16>,
    /// `started`, `stopped` or `suspended`.
    pub status: &'static str,
    /// Its directory.
    pub directory: std::path::PathBuf,
}

/// A VPCS node as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcsView {
    /// Its id.
    pub id: Uuid,
    /// Its project.
    pub project: Uuid,
    /// Its name.
    pub name: String,
    /// Its console port.
    pub console: u16,
    /// Its startup script.
    pub startup_script: Option<String>,
    /// The script's file name in the node's directory, when there is a script.
    pub startup_script_path: Option<String>,
    /// "started" or "stopped" (2.2's status: starting reads stopped,
    /// stopping reads started).
    pub status: &'static str,
    /// Whether it has a telnet console (2.2's `console_type`).
    pub console_telnet: bool,
    /// Its working directory.
    pub directory: std::path::PathBuf,
    /// The command line of its process, or empty when it never ran.
    pub command_line: String,
}
