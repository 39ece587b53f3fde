//! The typed command every front-end produces and the lab consumes (no I/O).
//!
//! A request is parsed once, by the front-end of its API version, into a
//! [`Command`]: ids are UUIDs, adapter and port numbers are integers, bodies
//! are decoded and validated. The lab never sees a path, a method or a JSON
//! body, and does not know which API version asked.

use super::spec::{
    CaptureStart, DeviceCreate, DeviceUpdate, ProjectCreate, ProjectUpdate, VmCreate, VmUpdate,
};
pub use super::types::{
    DeviceType, LinkFilters, Nio, NioEthernet, NioTap, NioUdp, PortMapping, PortSettings, VlanMode,
};
use crate::proto::http::conn::SlotId;
use uuid::Uuid;

/// The GNS3 compute API version nanolab speaks (the last 1.3 release), so that
/// GNS3 1.3 clients accept it.
pub const API_VERSION: &str = "1.3.13";

/// Everything a client can ask of the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The server's version.
    Version,
    /// Check that the client speaks our version.
    CheckVersion(String),
    /// The host's network interfaces.
    Interfaces,
    /// Re-read the configuration file (`--local` only).
    ReloadConfig,
    /// Stop the server (`--local` only).
    Shutdown,
    /// Create (or reopen) a project.
    CreateProject(ProjectCreate),
    /// A project's description.
    GetProject(Uuid),
    /// Every open project (`GET /v2/compute/projects`).
    ListProjects,
    /// Rename, move or (un)mark a project temporary.
    UpdateProject(Uuid, ProjectUpdate),
    /// Remove the directories of nodes deleted since the last commit.
    CommitProject(Uuid),
    /// Forget a project, keeping its files (unless temporary).
    CloseProject(Uuid),
    /// Forget a project and delete its files.
    DeleteProject(Uuid),
    /// Reserve a free UDP port for a tunnel.
    AllocateUdp(Uuid),
    /// Create a node in a project.
    CreateNode(Uuid, NodeCreate),
    /// An operation on one node: it goes through that node's queue.
    Node(NodeRef, NodeCommand),
    /// The whole lab, or one project of it, for a person (`GET /`,
    /// `GET /projects/{id}`) or a script (`GET /status.json`).
    Status(Option<Uuid>),
    /// The upload form (`GET /upload`).
    UploadForm,
    /// Restore a tar archive of projects into the projects directory.
    RestoreProjects(Vec<u8>),
    /// Stream the projects directory as a tar archive.
    BackupProjects,
    /// Stream the images directory as a tar archive (1.3.13's
    /// `/backup/images.tar`).
    BackupImages,
    /// What this compute can do (GNS3 2.2's `/capabilities`).
    Capabilities,
    /// What the compute can do, as GNS3 3.0 asks (`/v3/compute/capabilities`).
    Capabilities3,
    /// The host's QEMU programs: `qemu-img` ones when `img`, else the
    /// emulators, those of `archs` only when given (2.2's filter).
    QemuBinaries {
        /// `qemu-img` programs instead of emulators.
        img: bool,
        /// Keep only `qemu-system-<arch>` of these.
        archs: Option<Vec<String>>,
    },
    /// The QEMU images, with their digests.
    Images,
    /// Write the image at this path (relative to the QEMU images
    /// directory) from the request's streamed body.
    UploadImage(String),
    /// Stream this QEMU image back.
    DownloadImage(String),
    /// What QEMU can do here: the architectures KVM accelerates.
    QemuCapabilities,
    /// The container engine's images (`/docker/images`).
    DockerImages,
    /// The host's load (`/statistics`).
    Statistics,
    /// Port ranges and ports in use (`/network/ports`).
    PortUse,
    /// Interfaces with their addresses (`/network/interfaces`).
    InterfaceDetails,
    /// Subscribe the request's connection to notifications (a websocket).
    Notifications,
    /// List a project's files with their MD5 digests.
    ListFiles(Uuid),
    /// Read a file of a project (path relative to it, confined to it).
    ReadFile(Uuid, String),
    /// Write a file of a project (path relative to it, confined to it).
    WriteFile(Uuid, String, Vec<u8>),
}

/// How to create a node, per kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeCreate {
    /// A VPCS virtual PC (the external `vpcs` program).
    Vpcs(VmCreate),
    /// An Ethernet switch or hub inside the lab (1.3's "Dynamips devices").
    Device(DeviceCreate),
    /// A cloud: ports that reach host interfaces and TAP devices.
    Cloud(crate::lab::spec::CloudCreate),
    /// A QEMU virtual machine.
    Qemu(Box<crate::lab::spec::QemuCreate>),
    /// A container, made by the container engine.
    Docker(Box<crate::lab::spec::DockerCreate>),
}

/// What kind of node a route names, for lookups and their messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeClass {
    /// `/vpcs/vms/{vm_id}`
    Vpcs,
    /// `/dynamips/devices/{device_id}`
    Device,
    /// `/{v2,v3}/compute/.../cloud/nodes/{node_id}`
    Cloud,
    /// `/v1/projects/{project_id}/qemu/vms/{vm_id}`
    Qemu,
    /// `/{v2,v3}/compute/.../docker/nodes/{node_id}`
    Docker,
}

/// Names a node: its project and its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeRef {
    /// Owning project.
    pub project: Uuid,
    /// The node.
    pub node: Uuid,
    /// The kind the route names.
    pub class: NodeClass,
}

/// A port of a node, as GNS3 numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortAddr {
    /// Adapter number.
    pub adapter: u32,
    /// Port number on the adapter.
    pub port: u32,
}

/// What to do to a node; served one at a time, in arrival order, per node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeCommand {
    /// Its description.
    Get,
    /// Rename it, move its console, change its startup script.
    Update(VmUpdate),
    /// Stop it if running, then forget it.
    Delete,
    /// Start it; answered once its console is ready.
    Start,
    /// Stop it; answered once its process is gone.
    Stop,
    /// Stop it if running, then start it.
    Reload,
    /// Attach a NIO to a port (replacing any).
    AddNio(PortAddr, Nio),
    /// Detach the NIO of a port.
    RemoveNio(PortAddr),
    /// Rename a device, change its ports' settings.
    UpdateDevice(DeviceUpdate),
    /// Attach a NIO to a device's port, with the switch port's settings.
    AddDeviceNio(u32, Nio, Option<PortSettings>),
    /// Record what crosses a port to a pcap file.
    StartCapture(PortAddr, CaptureStart),
    /// Stop recording a port.
    StopCapture(PortAddr),
    /// Follow a port's running capture live (a streamed pcap).
    WatchCapture(PortAddr),
    /// Attach a NIO with link filters (GNS3 2.2): to a VPCS port, or to a
    /// switch or hub port with the settings of its `ports_mapping`.
    AttachNio(PortAddr, Nio, LinkFilters),
    /// Replace the link filters of a port's NIO (GNS3 2.2's `PUT .../nio`).
    SetFilters(PortAddr, LinkFilters),
    /// Rename a switch or hub, change its declared ports (GNS3 2.2).
    UpdateMapping(Option<String>, Option<Vec<PortMapping>>),
    /// Change a QEMU VM's settings.
    UpdateQemu(Box<crate::lab::spec::QemuPatch>),
    /// Change a container node's settings.
    UpdateDocker(Box<crate::lab::spec::DockerPatch>),
    /// Resume a suspended VM.
    Resume,
    /// Rename a cloud, replace its ports (only while none is linked).
    UpdateCloud(Option<String>, Option<Vec<crate::lab::types::HostPort>>),
    /// Suspend: a VPCS has nothing to suspend (a no-op, as in 2.2).
    Suspend,
    /// Drop the console's clients (2.2's `console/reset`).
    ConsoleReset,
    /// Copy this node's files to node `dest` (2.2's `duplicate`).
    Duplicate(Uuid),
    /// Bridge the request's connection (a websocket) to the console.
    ConsoleSocket,
}

impl NodeCommand {
    /// The new name an update gives the node, if any.
    pub fn new_name(&self) -> Option<&str> {
        match self {
            NodeCommand::Update(b) => b.name.as_deref(),
            NodeCommand::UpdateDevice(b) => b.name.as_deref(),
            NodeCommand::UpdateMapping(name, _) => name.as_deref(),
            NodeCommand::UpdateCloud(name, _) => name.as_deref(),
            NodeCommand::UpdateQemu(b) => b.name.as_deref(),
            NodeCommand::UpdateDocker(b) => b.name.as_deref(),
            _ => None,
        }
    }
}

/// Where an answer must go: opaque to the lab, which hands it back with the
/// answer. The connection is named by its token and a serial (a later
/// connection may reuse the token), the request by its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// The connection's token in the reactor.
    pub conn: usize,
    /// The connection's serial number.
    pub serial: u64,
    /// The request's place in the connection's answer order.
    pub slot: SlotId,
}
