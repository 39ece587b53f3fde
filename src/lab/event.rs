//! What happened in the lab (plain data, no I/O): events for the log and
//! for the notification streams, and how a log line names a node and a
//! port.

use super::answer::PortStats;
use super::answer::{Body, LogLevel, Notice};
use super::types::Nio;
use crate::limits::MAX_EVENTS;
use std::collections::VecDeque;
use std::path::PathBuf;
use uuid::Uuid;

/// Something that happened, for the log now and for notification streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A projects archive was restored.
    Restored(super::answer::Restored),
    /// An image was uploaded whole.
    Uploaded {
        /// Where it was written.
        path: PathBuf,
        /// Its size.
        bytes: u64,
    },
    /// A project was created or reopened.
    ProjectOpened {
        /// The project.
        project: Uuid,
        /// Its directory.
        path: PathBuf,
    },
    /// A project's directory moved.
    ProjectMoved {
        /// The project.
        project: Uuid,
        /// Old directory.
        from: PathBuf,
        /// New directory.
        to: PathBuf,
    },
    /// A project was closed (or deleted).
    ProjectClosed {
        /// The project.
        project: Uuid,
    },
    /// A node was created.
    NodeCreated {
        /// The node.
        node: Uuid,
        /// What the node is ("vpcs", "switch", "hub").
        what: &'static str,
        /// Its name.
        name: String,
        /// Its project.
        project: Uuid,
        /// Its console port, if it has one.
        console: Option<u16>,
    },
    /// A node's console moved.
    ConsoleMoved {
        /// The node.
        node: Uuid,
        /// Old port.
        from: u16,
        /// New port.
        to: u16,
    },
    /// A node's process was started.
    ProcessStarted {
        /// The node.
        node: Uuid,
        /// The process.
        pid: u32,
        /// The UDP port it binds.
        vpcs_port: u16,
    },
    /// A node's process was asked to stop.
    Stopping {
        /// The node.
        node: Uuid,
        /// The process.
        pid: u32,
    },
    /// A node's console answered: it is started.
    ConsoleReady {
        /// The node.
        node: Uuid,
    },
    /// A node's process is gone.
    ProcessGone {
        /// The node.
        node: Uuid,
        /// The process.
        pid: u32,
        /// How it ended.
        how: String,
    },
    /// A node was deleted.
    NodeDeleted {
        /// The node.
        node: Uuid,
        /// What the node was.
        what: &'static str,
    },
    /// A NIO was attached to a port.
    NioAdded {
        /// The node.
        node: Uuid,
        /// What the node is ("vpcs", "switch", "hub").
        what: &'static str,
        /// The port, as the API numbers it.
        port: String,
        /// The NIO.
        nio: Nio,
    },
    /// A NIO was removed from a port.
    NioRemoved {
        /// The node.
        node: Uuid,
        /// What the node is.
        what: &'static str,
        /// The port, as the API numbers it.
        port: String,
        /// The NIO.
        nio: Nio,
        /// What crossed it.
        stats: PortStats,
    },
    /// A port's capture began.
    CaptureStarted {
        /// The node.
        node: Uuid,
        /// What the node is.
        what: &'static str,
        /// The port, as the API numbers it.
        port: String,
        /// The pcap file.
        path: PathBuf,
    },
    /// A node's status, name or console changed: its whole description
    /// (GNS3 2.2's `node.updated`).
    NodeUpdated {
        /// Its project.
        project: Uuid,
        /// The node as clients see it.
        node: Body,
    },
    /// Something a project's users should read (GNS3 2.2's `log.*`).
    ProjectLog {
        /// The project.
        project: Uuid,
        /// How serious.
        level: LogLevel,
        /// What.
        text: String,
    },
    /// A client asked the server to shut down (`/v1/server/shutdown`).
    ShutdownAsked,
    /// The host's load, every second while someone listens (2.2's `ping`).
    Load(crate::lab::answer::Load),
    /// Something went wrong that no client is waiting to hear about.
    Warning {
        /// The node concerned, if any.
        node: Option<Uuid>,
        /// What.
        text: String,
    },
}

impl Event {
    /// What a notification channel tells of this event, if anything.
    pub fn notice(&self) -> Option<Notice<'_>> {
        match self {
            Event::Load(l) => Some(Notice::Load(l)),
            Event::NodeUpdated { project, node } => Some(Notice::NodeUpdated {
                project: *project,
                node,
            }),
            Event::ProjectLog {
                project,
                level,
                text,
            } => Some(Notice::Log {
                project: *project,
                level: *level,
                text,
            }),
            _ => None,
        }
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::ProjectOpened { project, path } => {
                write!(f, "project {project} opened in {}", path.display())
            }
            Event::ProjectMoved { project, from, to } => write!(
                f,
                "project {project} now lives in {} (was {})",
                to.display(),
                from.display()
            ),
            Event::ProjectClosed { project } => write!(f, "project {project} closed"),
            Event::NodeCreated {
                node,
                what,
                name,
                project,
                console,
            } => {
                write!(f, "{what} {node}: {name} created in project {project}")?;
                match console {
                    Some(c) => write!(f, ", console {c}"),
                    None => Ok(()),
                }
            }
            Event::ConsoleMoved { node, from, to } => {
                write!(f, "vpcs {node}: console moved from {from} to {to}")
            }
            Event::ProcessStarted {
                node,
                pid,
                vpcs_port,
            } => {
                write!(f, "vpcs {node}: started, pid {pid}, udp {vpcs_port}")
            }
            Event::Stopping { node, pid } => write!(f, "vpcs {node}: stopping pid {pid}"),
            Event::ConsoleReady { node } => write!(f, "vpcs {node}: console ready"),
            Event::ProcessGone { node, pid, how } => {
                write!(f, "vpcs {node}: pid {pid} gone ({how})")
            }
            Event::NodeDeleted { node, what } => write!(f, "{what} {node}: deleted"),
            Event::NioAdded {
                node,
                what,
                port,
                nio,
            } => write!(f, "{what} {node}: port {port}: NIO {nio}"),
            Event::NioRemoved {
                node,
                what,
                port,
                nio,
                stats: s,
            } => write!(
                f,
                "{what} {node}: port {port}: NIO {nio} removed after {} frames ({} bytes) out, {} frames ({} bytes) in, {} dropped",
                s.out_frames, s.out_bytes, s.in_frames, s.in_bytes, s.dropped
            ),
            Event::CaptureStarted {
                node,
                what,
                port,
                path,
            } => write!(
                f,
                "{what} {node}: port {port}: capture started into {}",
                path.display()
            ),
            Event::Warning {
                node: Some(n),
                text,
            } => write!(f, "node {n}: {text}"),
            Event::Warning { node: None, text } => f.write_str(text),
            Event::NodeUpdated { project, node } => match node {
                Body::Vpcs(v) => write!(
                    f,
                    "vpcs {}: {} ({}), told to listeners",
                    v.id, v.status, v.name
                ),
                Body::Device(d) => write!(
                    f,
                    "{} {}: updated ({}), told to listeners",
                    match d.kind {
                        crate::lab::command::DeviceType::Switch => "switch",
                        crate::lab::command::DeviceType::Hub => "hub",
                    },
                    d.id,
                    d.name
                ),
                _ => write!(f, "project {project}: a node was updated"),
            },
            Event::ProjectLog {
                project,
                level,
                text,
            } => write!(f, "project {project}: {level:?}: {text}"),
            Event::ShutdownAsked => f.write_str("shutting down: asked through the API"),
            Event::Restored(r) => write!(
                f,
                "restored {} project(s): {} file(s), {} bytes",
                r.projects, r.files, r.bytes
            ),
            Event::Uploaded { path, bytes } => {
                write!(f, "image {} uploaded: {bytes} bytes", path.display())
            }
            Event::Load(l) => write!(
                f,
                "load: cpu {}%, memory {}%",
                l.cpu_usage_percent, l.memory_usage_percent
            ),
        }
    }
}

/// Events not yet taken by the reactor, oldest first; past
/// [`MAX_EVENTS`] the oldest are dropped.
#[derive(Debug, Default)]
pub struct Events {
    queue: VecDeque<Event>,
}

impl Events {
    /// Something happened.
    pub fn emit(&mut self, e: Event) {
        if self.queue.len() >= MAX_EVENTS {
            self.queue.pop_front();
        }
        self.queue.push_back(e);
    }

    /// A warning about a node (or about none).
    pub fn warn(&mut self, node: Option<Uuid>, text: String) {
        self.emit(Event::Warning { node, text });
    }

    /// Something for a project's users to read.
    pub fn project_log(&mut self, project: Uuid, level: LogLevel, text: String) {
        self.emit(Event::ProjectLog {
            project,
            level,
            text,
        });
    }

    /// The oldest event.
    pub fn pop(&mut self) -> Option<Event> {
        self.queue.pop_front()
    }
}
