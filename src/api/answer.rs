//! What the lab answers, before a front-end renders it in its version's
//! shapes (plain data, no I/O). The lab fills these; `v1` (and later `v2`)
//! turn them into JSON and status codes.

use crate::error::ApiError;
use std::path::PathBuf;
use uuid::Uuid;

pub use super::command::{Nio, NioTap, NioUdp};

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
    /// A UDP tunnel.
    Nio(Nio),
    /// A reserved UDP port.
    UdpPort(u16),
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
