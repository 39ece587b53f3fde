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
    /// An Ethernet switch or hub.
    Device(DeviceView),
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
    /// The projects directory, to be streamed as a tar archive.
    Backup(PathBuf),
    /// A projects archive was restored: how many entries it had.
    Restored(usize),
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
}

/// The lab at a glance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusView {
    /// Started with `--local`.
    pub local: bool,
    /// Every open project, with its nodes.
    pub projects: Vec<(ProjectView, Vec<NodeStatus>)>,
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
    /// Its ports: (adapter, port, link, counters).
    pub ports: Vec<(u32, u32, Option<Nio>, PortStats)>,
    /// A switch's learnt addresses: (VLAN, MAC, port number).
    pub macs: Vec<(u16, [u8; 6], u32)>,
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
    /// Frames dropped, all causes: the sum of the two below.
    pub dropped: u64,
    /// Dropped because there was nowhere to go (no link, node stopped).
    pub dropped_unlinked: u64,
    /// Dropped because sending failed (the peer's socket or device refused).
    pub dropped_send: u64,
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
}
