//! Nodes, their ports and the keys that name them (plain data, no I/O).

use super::console::Console;
use super::nodes::vpcs::Vpcs;
use super::queue::Queue;
use crate::lab::command::{NodeCommand, Ticket};
use uuid::Uuid;

pub use super::id::{Endpoint, NodeKey};
pub use crate::lab::answer::PortStats;
pub use crate::lab::command::{Nio, NioTap, NioUdp};

/// One numbered port of a node.
#[derive(Debug)]
pub struct Port {
    /// Adapter number.
    pub adapter: u32,
    /// Port number on its adapter.
    pub number: u32,
    /// Its link to the world.
    pub nio: Option<Nio>,
    /// What crossed it since its NIO was attached.
    pub stats: PortStats,
    /// A switch port's VLAN mode.
    pub mode: Option<super::nodes::switch::PortMode>,
    /// A running capture of what crosses it.
    pub capture: Option<super::capture::Capture>,
    /// Link filters (GNS3 2.2), applied to what crosses it either way.
    pub filters: Option<Box<super::filters::Filters>>,
}

impl Port {
    /// A port without NIO.
    pub fn new(adapter: u32, number: u32) -> Self {
        Port {
            adapter,
            number,
            nio: None,
            stats: PortStats::default(),
            mode: None,
            capture: None,
            filters: None,
        }
    }
}

/// A node's lifecycle state, as clients and invariants see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not running.
    Stopped,
    /// Asked to start, not ready yet.
    Starting,
    /// Running and ready.
    Started,
    /// Asked to stop, not gone yet.
    Stopping,
}

/// What a node is.
#[derive(Debug)]
pub enum Kind {
    /// Debian's `vpcs` program, run as a child process.
    Vpcs(Vpcs),
    /// An Ethernet switch inside the lab: port modes and the MAC table.
    Switch(Switch),
    /// An Ethernet hub inside the lab.
    Hub,
}

/// What a switch holds besides its ports.
#[derive(Debug, Default)]
pub struct Switch {
    /// Learnt addresses.
    pub table: super::nodes::switch::MacTable,
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

/// A node: identity, console, ports, queue, and what its kind needs.
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
    /// Kind-specific state.
    pub kind: Kind,
    /// A switch's or hub's declared ports (2.2's `ports_mapping`); empty
    /// for a VPCS and for a 1.3 device, whose ports appear with their NIO.
    pub mapping: Vec<crate::lab::types::PortMapping>,
}

impl Node {
    /// The VPCS part of the node, when it is one.
    pub fn vpcs(&self) -> Option<&Vpcs> {
        match &self.kind {
            Kind::Vpcs(v) => Some(v),
            _ => None,
        }
    }

    /// The VPCS part of the node, mutable.
    pub fn vpcs_mut(&mut self) -> Option<&mut Vpcs> {
        match &mut self.kind {
            Kind::Vpcs(v) => Some(v),
            _ => None,
        }
    }

    /// The VPCS process, if this is a VPCS that runs.
    pub fn proc(&self) -> Option<&super::nodes::vpcs::Proc> {
        self.vpcs()?.proc.as_ref()
    }

    /// Whether the node handles frames: a VPCS whose process runs; a
    /// switch or hub always.
    pub fn running(&self) -> bool {
        match &self.kind {
            Kind::Vpcs(v) => v.proc.is_some() || v.builtin.as_ref().is_some_and(|b| b.pc.is_some()),
            Kind::Switch(_) | Kind::Hub => true,
        }
    }

    /// What it is, as a person reads it.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Vpcs(_) => "VPCS",
            Kind::Switch(_) => "Ethernet switch",
            Kind::Hub => "Ethernet hub",
        }
    }

    /// The lifecycle state, derived from the pending operation and the process.
    pub fn state(&self) -> State {
        match (self.pending, self.running()) {
            (Some(Pending::Start(_)), _) => State::Starting,
            (Some(Pending::Stop(..)), _) => State::Stopping,
            (None, true) => State::Started,
            (None, false) => State::Stopped,
        }
    }

    /// Index of the port at `adapter`/`number`.
    pub fn port_index(&self, adapter: u32, number: u32) -> Option<usize> {
        self.ports
            .iter()
            .position(|p| p.adapter == adapter && p.number == number)
    }
}
