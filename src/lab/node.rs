//! Nodes: what every node has (identity, console, ports, request queue,
//! the operation parked on it) around its kind (plain data, no I/O).

use super::console::Console;
use super::kinds::kind::Kind;
use super::kinds::{Behaviour, Face, State};
use super::port::Port;
use super::queue::Queue;
use super::types::PortMapping;
use crate::lab::command::{NodeCommand, Ticket};
use uuid::Uuid;

pub use super::id::{Endpoint, NodeKey};
pub use crate::lab::answer::PortStats;
pub use crate::lab::command::{Nio, NioTap, NioUdp};

/// A node an operation under way needed is gone: a bug, answered as one.
pub fn went_away() -> crate::error::ApiError {
    crate::error::ApiError::Internal("the node went away during its own operation".into())
}

/// A request waiting in a node's queue.
#[derive(Debug)]
pub struct Job {
    /// Where the answer goes.
    pub ticket: Ticket,
    /// What to do.
    pub command: NodeCommand,
}

/// An operation parked on a node until a later event finishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    /// Waiting for the spawn queue, then for the console's prompt.
    Start(Ticket),
    /// Waiting for the process to be gone, then doing `AfterStop`.
    Stop(Ticket, AfterStop),
    /// Waiting for what the node needs outside the lab (a container) to
    /// be made, then answering its create.
    Create(Ticket),
}

/// What a stop leads to once the process is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterStop {
    /// Answer the stop.
    Reply,
    /// Start again (reload).
    Start,
    /// Forget the node (delete).
    Delete,
}

/// A node: identity, console, ports, queue, and its kind.
#[derive(Debug)]
pub struct Node {
    /// Its key in the lab.
    pub key: NodeKey,
    /// Its id.
    pub id: Uuid,
    /// Owning project.
    pub project: Uuid,
    /// Display name.
    pub name: String,
    /// Public console TCP port (switches and hubs have none).
    pub console_port: Option<u16>,
    /// Numbered ports.
    pub ports: Vec<Port>,
    /// Requests served one at a time.
    pub queue: Queue<Job>,
    /// The operation in progress that waits for an event.
    pub pending: Option<Pending>,
    /// Console clients and recent output.
    pub console: Console,
    /// What it is.
    pub kind: Kind,
    /// A switch's or hub's declared ports (2.2's `ports_mapping`); empty
    /// for a PC and for a 1.3 device, whose ports appear with their NIO.
    pub mapping: Vec<PortMapping>,
}

impl Node {
    /// A new node of `kind`, idle, without console clients.
    pub fn new(key: NodeKey, id: Uuid, project: Uuid, name: String, kind: Kind) -> Self {
        Node {
            key,
            id,
            project,
            name,
            console_port: None,
            ports: Vec::new(),
            queue: Queue::default(),
            pending: None,
            console: Console::default(),
            kind,
            mapping: Vec::new(),
        }
    }

    /// Its kind's face.
    #[inline]
    pub fn face(&self) -> &dyn Behaviour {
        self.kind.face()
    }

    /// Whether the node handles frames.
    pub fn running(&self) -> bool {
        self.face().running()
    }

    /// What it is, as a person reads it.
    pub fn kind_name(&self) -> &'static str {
        self.face().name()
    }

    /// What it is, in a log line.
    pub fn word(&self) -> &'static str {
        self.face().word()
    }

    /// A port as the API numbers it, in a log line.
    pub fn port_label(&self, index: usize) -> String {
        match self.ports.get(index) {
            None => format!("#{index}"),
            Some(p) => self.face().port_label(p),
        }
    }

    /// The lifecycle state, derived from the pending operation and the kind.
    pub fn state(&self) -> State {
        match (self.pending, self.running()) {
            (Some(Pending::Start(_)), _) => State::Starting,
            (Some(Pending::Stop(..)), _) => State::Stopping,
            (Some(Pending::Create(_)), _) => State::Stopped,
            (None, true) => State::Started,
            (None, false) => State::Stopped,
        }
    }

    /// The node as the API shows it.
    pub fn view(&self) -> crate::lab::answer::Body {
        self.face().view(&Face {
            id: self.id,
            project: self.project,
            name: &self.name,
            console: self.console_port,
            state: self.state(),
            ports: &self.ports,
            mapping: &self.mapping,
        })
    }

    /// The console websocket: only for a started node with a console.
    pub fn console_socket(&self) -> crate::lab::answer::Reply {
        use crate::error::ApiError;
        use crate::lab::answer::{Answer, Upgrade};
        if self.state() != State::Started {
            return Err(ApiError::conflict(format!(
                "Node {} is not started",
                self.name
            )));
        }
        if self.console_port.is_none() {
            return Err(ApiError::conflict(format!(
                "Node {} console type is not telnet",
                self.name
            )));
        }
        Ok(Answer::Ok(crate::lab::answer::Body::Upgrade(
            Upgrade::Console(self.key),
        )))
    }

    /// The node as the status page shows it.
    pub fn status(
        &self,
        now: std::time::Instant,
        traffic: &crate::lab::traffic::Traffic,
    ) -> crate::lab::answer::NodeStatus {
        crate::lab::answer::NodeStatus {
            id: self.id,
            name: self.name.clone(),
            kind: self.kind_name(),
            macs: self
                .face()
                .mac_table(now)
                .into_iter()
                .map(|(vlan, mac, i)| (vlan, mac, self.ports.get(i).map_or(0, |p| p.number)))
                .collect(),
            state: match self.state() {
                State::Stopped => "stopped",
                State::Starting => "starting",
                State::Started => "started",
                State::Stopping => "stopping",
            },
            console: self.console_port,
            clients: self.console.clients.len(),
            ports: self
                .ports
                .iter()
                .enumerate()
                .map(|(i, p)| crate::lab::answer::PortStatus {
                    adapter: p.adapter,
                    port: p.number,
                    nio: p.nio.as_deref().cloned(),
                    stats: p.stats,
                    mode: p.mode,
                    capturing: p.capture.is_some(),
                    filtered: p.filters.is_some(),
                    rate: traffic.rate(self.id, i),
                    history: traffic.history(self.id, i),
                })
                .collect(),
        }
    }
}
