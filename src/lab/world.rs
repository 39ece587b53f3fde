//! What node operations share besides the nodes (sans-IO): the
//! configuration, the UDP and console port pools, the deadlines, the
//! spawn queue and process serials, the events; and how a kind is lent
//! its context ([`Ctx`]) from them and its own node.

use super::answer::{Answer, Body, PortUse, Reply, Upgrade};
use super::console::PortChoice;
use super::event::{Event, Events};
use super::host::Host;
use super::id::NodeKey;
use super::kinds::pc::Pc;
use super::kinds::{Behaviour, Ctx};
use super::node::Node;
use super::ports::PortPool;
use super::project::Project;
use super::settings::PcEngine;
use super::settings::Settings;
use super::spec::VmCreate;
use super::timers::{Deadline, Timers};
use crate::error::ApiError;
use crate::limits::NOTIFICATION_PING;
use std::collections::VecDeque;
use std::time::Instant;
use uuid::Uuid;

/// The lab's shared parts.
#[derive(Debug)]
pub struct World {
    /// The configuration.
    pub settings: Settings,
    /// UDP ports for tunnels and VPCS's own.
    pub udp_ports: PortPool,
    /// TCP ports for consoles.
    pub console_ports: PortPool,
    /// Deadlines.
    pub timers: Timers<Deadline>,
    /// Nodes waiting to be spawned, one per loop turn.
    pub spawns: VecDeque<NodeKey>,
    /// The last process serial given out.
    pub serials: u64,
    /// The calls to the container engine: those under way, the lab's own.
    pub engine: super::engine::Engine,
    /// What happened, for the log and the notification channels.
    pub events: Events,
    /// Built-in PC MACs handed out.
    pub builtin_macs: u32,
    /// Notification channel subscribers (GNS3 2.2's compute websocket).
    pub subscribers: usize,
}

impl World {
    /// The shared parts of an empty lab.
    pub fn new(settings: Settings) -> Self {
        World {
            udp_ports: PortPool::new("UDP", settings.udp_ports),
            console_ports: PortPool::new("console", settings.console_ports),
            settings,
            timers: Timers::new(),
            spawns: VecDeque::new(),
            serials: 0,
            engine: Default::default(),
            events: Events::default(),
            builtin_macs: 0,
            subscribers: 0,
        }
    }

    /// Node `node`'s kind and the context it is lent for one operation:
    /// the node's own parts and these, as disjoint borrows.
    pub fn lend<'a>(
        &'a mut self,
        node: &'a mut Node,
        now: Instant,
        host: &'a mut dyn Host,
    ) -> (&'a mut dyn Behaviour, Ctx<'a>) {
        let Node {
            key,
            id,
            project,
            name,
            console_port,
            ports,
            mapping,
            console,
            kind,
            ..
        } = node;
        let cx = Ctx {
            now,
            key: *key,
            id: *id,
            project: *project,
            name,
            console_port,
            ports,
            mapping,
            console,
            settings: &self.settings,
            udp_ports: &mut self.udp_ports,
            console_ports: &mut self.console_ports,
            timers: &mut self.timers,
            events: &mut self.events,
            serials: &mut self.serials,
            engine: &mut self.engine,
            spawns: &mut self.spawns,
            host,
            frames: Vec::new(),
            updated: false,
        };
        (kind.face_mut(), cx)
    }

    /// The next built-in PC MAC.
    pub fn builtin_mac(&mut self) -> [u8; 6] {
        self.builtin_macs = self.builtin_macs.wrapping_add(1);
        super::kinds::builtin::mac(self.builtin_macs - 1)
    }

    /// A new PC of `project`, named `(key, id)`: its console port (when
    /// it has a console), its engine's MAC, its directory and script; all
    /// or nothing.
    pub fn new_pc(
        &mut self,
        project: &mut Project,
        (key, id): (NodeKey, Uuid),
        b: &VmCreate,
        host: &mut dyn Host,
    ) -> Result<(Pc, Option<u16>), ApiError> {
        let mut choice = PortChoice {
            pool: &mut self.console_ports,
            host: &mut *host,
            events: &mut self.events,
            key,
            id,
            aux: false,
        };
        let console = match b.console_telnet {
            true => Some(choice.take(b.console, b.console_pick)?),
            false => None,
        };
        let builtin = (self.settings.pc_engine == PcEngine::Builtin).then(|| self.builtin_mac());
        match Pc::create(project, id, b, builtin, host) {
            Ok(pc) => Ok((pc, console)),
            Err(e) => {
                if let Some(console) = console {
                    host.close_console(key);
                    self.console_ports.release(console);
                }
                Err(e)
            }
        }
    }

    /// A client opens the notification channel: it gets the load at once,
    /// then every [`NOTIFICATION_PING`] while anyone listens.
    pub fn subscribe(&mut self, now: Instant, host: &mut dyn Host) -> Answer {
        self.subscribers += 1;
        if self.subscribers == 1 {
            self.timers
                .schedule(now + NOTIFICATION_PING, Deadline::Heartbeat);
        }
        self.events.emit(Event::Load(host.load()));
        Answer::Ok(Body::Upgrade(Upgrade::Notifications))
    }

    /// A notification channel closed.
    pub fn unsubscribe(&mut self) {
        self.subscribers = self.subscribers.saturating_sub(1);
    }

    /// The heartbeat: the load for the listeners, and the next beat. With
    /// nobody listening, the beat stops (an idle server sleeps).
    pub fn heartbeat(&mut self, now: Instant, host: &mut dyn Host) {
        if self.subscribers == 0 {
            return;
        }
        self.events.emit(Event::Load(host.load()));
        self.timers
            .schedule(now + NOTIFICATION_PING, Deadline::Heartbeat);
    }

    /// GNS3 2.2's `/network/ports`.
    pub fn port_use(&self) -> Answer {
        let taken = |p: &PortPool| p.reservations().map(|(p, _)| p).collect();
        Answer::Ok(Body::PortUse(PortUse {
            console_range: self.settings.console_ports,
            console_ports: taken(&self.console_ports),
            udp_range: self.settings.udp_ports,
            udp_ports: taken(&self.udp_ports),
        }))
    }

    /// Read the configuration again (`--local` only): port ranges, the
    /// VPCS program, the console sandbox.
    pub fn reload(&mut self, host: &mut dyn Host) -> Reply {
        super::projects::require_local(&self.settings, "Reloading the configuration")?;
        let fresh = host.reload_settings()?;
        self.udp_ports.set_range(fresh.udp_ports);
        self.console_ports.set_range(fresh.console_ports);
        self.settings.vpcs = fresh.vpcs;
        self.settings.console_sandbox = fresh.console_sandbox;
        Ok(Answer::Created(Body::Empty))
    }
}
