//! Ethernet switches and hubs inside the lab (GNS3 1.3's "Dynamips
//! devices", served with no external program): creation, port settings,
//! NIOs on numbered ports, and what happens to their frames.

use super::switch::{self, PortMode};
use crate::error::ApiError;
use crate::lab::answer::DeviceView;
use crate::lab::command::{
    DeviceType, Nio, NodeCommand, PortAddr, PortMapping, PortSettings, Ticket, VlanMode,
};
use crate::lab::host::Host;
use crate::lab::node::{Endpoint, Kind, Node, NodeKey, Port, Switch};
use crate::lab::spec::{DeviceCreate, DeviceUpdate};
use crate::lab::{Answer, Body, Event, Lab, Reply, Step};
pub use crate::limits::MAX_DEVICE_PORTS;
use std::time::Instant;
use uuid::Uuid;

fn conflict(msg: String) -> ApiError {
    ApiError::Conflict(msg)
}

fn mode(s: &PortSettings) -> PortMode {
    match s.mode {
        VlanMode::Access => PortMode::Access(s.vlan),
        VlanMode::Dot1q => PortMode::Dot1q { native: s.vlan },
        VlanMode::Qinq => PortMode::Qinq(s.vlan),
    }
}

fn settings(port: u32, m: PortMode) -> PortSettings {
    let (mode, vlan) = match m {
        PortMode::Access(v) => (VlanMode::Access, v),
        PortMode::Dot1q { native } => (VlanMode::Dot1q, native),
        PortMode::Qinq(v) => (VlanMode::Qinq, v),
    };
    PortSettings { port, mode, vlan }
}

/// The device as the API shows it: a switch lists its linked ports' settings.
pub fn view(node: &Node) -> DeviceView {
    let mut ports: Vec<PortSettings> = node
        .ports
        .iter()
        .filter(|p| p.nio.is_some())
        .filter_map(|p| p.mode.map(|m| settings(p.number, m)))
        .collect();
    ports.sort_by_key(|p| p.port);
    DeviceView {
        id: node.id,
        project: node.project,
        name: node.name.clone(),
        kind: match node.kind {
            Kind::Hub => DeviceType::Hub,
            _ => DeviceType::Switch,
        },
        ports,
        mapping: node.mapping.clone(),
    }
}

/// A declared port's settings.
fn mapped(m: &PortMapping) -> Option<PortSettings> {
    m.vlan.map(|(mode, vlan)| PortSettings {
        port: m.port_number,
        mode,
        vlan,
    })
}

/// The index of a device's port `port` that has a NIO, or 1.3.13's 409.
pub fn port_index(node: &Node, port: u32) -> Result<usize, ApiError> {
    node.ports
        .iter()
        .position(|p| p.number == port && p.nio.is_some())
        .ok_or_else(|| conflict(format!("Port {port} is not allocated")))
}

impl Lab {
    /// Create a switch or hub (a known `device_id` returns it).
    pub(crate) fn create_device(&mut self, project: Uuid, b: DeviceCreate) -> Reply {
        self.project(project)?;
        if let Some(key) = b.device_id.and_then(|id| self.registry.key_of(id)) {
            let node = self.live(key)?;
            if node.project != project || node.vpcs().is_some() {
                return Err(conflict(format!(
                    "Node {} exists in another project or is not a device",
                    node.id
                )));
            }
            return Ok(Answer::Created(Body::Device(view(node))));
        }
        super::super::check_name(Some(&b.name))?;
        self.room_for_node(project)?;
        let id = b.device_id.unwrap_or_else(Uuid::new_v4);
        let node = Node {
            key: self.vacant_key(),
            id,
            project,
            name: b.name,
            console_port: None,
            ports: Vec::new(),
            queue: Default::default(),
            pending: None,
            console: Default::default(),
            kind: match b.device_type {
                DeviceType::Switch => Kind::Switch(Switch::default()),
                DeviceType::Hub => Kind::Hub,
            },
            mapping: b.mapping.unwrap_or_default(),
        };
        let v = view(&node);
        let (what, name) = (super::super::what(&node), node.name.clone());
        self.insert_node(node);
        if let Some(p) = self.projects.get_mut(&project) {
            p.nodes.insert(id);
        }
        self.emit(Event::NodeCreated {
            node: id,
            what,
            name,
            project,
            console: None,
        });
        Ok(Answer::Created(Body::Device(v)))
    }

    /// Run one command on a switch or hub.
    pub(crate) fn exec_device(
        &mut self,
        now: Instant,
        key: NodeKey,
        ticket: Ticket,
        cmd: NodeCommand,
        host: &mut dyn Host,
    ) -> Step {
        use NodeCommand as C;
        Step::Done(match cmd {
            C::Get => self.live(key).map(|n| Answer::Ok(Body::Device(view(n)))),
            C::UpdateDevice(b) => self.update_device(key, b),
            C::Delete => {
                // Answer first, so that what waited behind is answered after.
                host.reply(ticket, Ok(Answer::NoContent));
                self.remove_node(key, host);
                return Step::Parked;
            }
            C::AddDeviceNio(port, nio, s) => self.add_device_nio(key, port, nio, s, host),
            C::RemoveNio(at) => self.remove_device_nio(key, at.port, host),
            C::StartCapture(at, b) => self
                .live(key)
                .and_then(|n| port_index(n, at.port))
                .and_then(|i| self.start_capture(now, key, i, at, b, host)),
            C::StopCapture(at) => self
                .live(key)
                .and_then(|n| port_index(n, at.port))
                .and_then(|i| self.stop_capture(key, i, at, host)),
            C::WatchCapture(at) => self
                .live(key)
                .and_then(|n| port_index(n, at.port))
                .and_then(|i| self.watch_capture(key, i, at, crate::lab::capture::viewer(ticket))),
            C::AttachNio(at, nio, filters) => self
                .add_device_nio(key, at.port, nio, None, host)
                .and_then(|r| {
                    let i = port_index(self.live(key)?, at.port)?;
                    self.set_filters(key, i, at, filters).map(|()| r)
                }),
            C::SetFilters(at, filters) => self
                .live(key)
                .and_then(|n| port_index(n, at.port))
                .and_then(|i| self.set_filters(key, i, at, filters))
                .map(|()| Answer::Created(Body::Empty)),
            C::UpdateMapping(name, mapping) => self.update_mapping(key, name, mapping),
            // A switch or hub always runs: nothing to start, stop or suspend (2.2).
            C::Suspend => self.live(key).map(|_| Answer::NoContent),
            C::Start
            | C::Stop
            | C::Reload
            | C::Update(_)
            | C::AddNio(..)
            | C::ConsoleReset
            | C::Duplicate(_)
            | C::ConsoleSocket => Err(ApiError::Internal(
                "a VPCS operation on a switch or hub".into(),
            )),
        })
    }

    /// GNS3 2.2's update: rename, and replace the declared ports. Linked
    /// ports take their new settings; a linked port cannot be removed.
    fn update_mapping(
        &mut self,
        key: NodeKey,
        name: Option<String>,
        mapping: Option<Vec<PortMapping>>,
    ) -> Reply {
        super::super::check_name(name.as_deref())?;
        let node = self.live_mut(key)?;
        if let Some(mapping) = mapping {
            let dropped = node
                .ports
                .iter()
                .find(|p| p.nio.is_some() && !mapping.iter().any(|m| m.port_number == p.number));
            if let Some(p) = dropped {
                return Err(conflict(format!(
                    "Port {} is linked: it cannot be removed from {}",
                    p.number, node.name
                )));
            }
            for i in 0..node.ports.len() {
                let number = node.ports[i].number;
                if node.ports[i].nio.is_some()
                    && let Some(s) = mapping
                        .iter()
                        .find(|m| m.port_number == number)
                        .and_then(mapped)
                {
                    node.ports[i].mode = Some(mode(&s));
                    if let Kind::Switch(sw) = &mut node.kind {
                        sw.table.forget_port(i);
                    }
                }
            }
            node.mapping = mapping;
        }
        if let Some(name) = name {
            node.name = name;
        }
        let v = view(node);
        self.node_updated(key);
        Ok(Answer::Ok(Body::Device(v)))
    }

    /// Rename, and change the settings of linked switch ports (all or none).
    fn update_device(&mut self, key: NodeKey, b: DeviceUpdate) -> Reply {
        super::super::check_name(b.name.as_deref())?;
        let node = self.live_mut(key)?;
        if let Some(ports) = &b.ports {
            if !matches!(node.kind, Kind::Switch(_)) {
                return Err(conflict("An Ethernet hub has no port settings".into()));
            }
            let indices = ports
                .iter()
                .map(|s| port_index(node, s.port))
                .collect::<Result<Vec<_>, _>>()?;
            for (s, i) in ports.iter().zip(indices) {
                node.ports[i].mode = Some(mode(s));
                if let Kind::Switch(sw) = &mut node.kind {
                    sw.table.forget_port(i);
                }
            }
        }
        if let Some(name) = b.name {
            node.name = name;
        }
        Ok(Answer::Ok(Body::Device(view(node))))
    }

    fn add_device_nio(
        &mut self,
        key: NodeKey,
        port: u32,
        nio: Nio,
        s: Option<PortSettings>,
        host: &mut dyn Host,
    ) -> Reply {
        let node = self.live_mut(key)?;
        let hub = matches!(node.kind, Kind::Hub);
        if hub && s.is_some() {
            return Err(conflict("An Ethernet hub has no port settings".into()));
        }
        // A 2.2 device declares its ports: the NIO takes that port's settings.
        let s = match node.mapping.iter().find(|m| m.port_number == port) {
            _ if node.mapping.is_empty() => s,
            Some(m) => s.or_else(|| mapped(m)),
            None => {
                return Err(conflict(format!(
                    "Port {port} doesn't exist on {}",
                    node.name
                )));
            }
        };
        let index = match node.ports.iter().position(|p| p.number == port) {
            Some(i) if node.ports[i].nio.is_some() => {
                return Err(conflict(format!("Port {port} isn't free")));
            }
            Some(i) => i,
            None if node.ports.len() >= MAX_DEVICE_PORTS => {
                return Err(conflict(format!(
                    "A device has at most {MAX_DEVICE_PORTS} ports"
                )));
            }
            None => {
                node.ports.push(Port::new(0, port));
                node.ports.len() - 1
            }
        };
        node.ports[index].mode =
            (!hub).then(|| s.as_ref().map(mode).unwrap_or(PortMode::Access(1)));
        let reply = self.add_nio(key, PortAddr { adapter: 0, port }, nio, host);
        let node = self.live_mut(key)?;
        if let Kind::Switch(sw) = &mut node.kind {
            sw.table.forget_port(index);
        }
        if reply.is_err() {
            node.ports[index].mode = None;
        }
        reply
    }

    fn remove_device_nio(&mut self, key: NodeKey, port: u32, host: &mut dyn Host) -> Reply {
        let index = port_index(self.live(key)?, port)?;
        self.drop_nio(key, index, host);
        let node = self.live_mut(key)?;
        node.ports[index].mode = None;
        if let Kind::Switch(sw) = &mut node.kind {
            sw.table.forget_port(index);
        }
        Ok(Answer::NoContent)
    }
}

/// A frame came in on port `index` of a switch or hub: decide, send,
/// count.
pub(crate) fn switch_frame(
    node: &mut Node,
    dirty: &mut crate::lab::capture::Sink,
    wire: &mut crate::lab::Wire,
    now: Instant,
    index: usize,
    frame: &[u8],
    send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
) {
    let key = node.key;
    let Node { ports, kind, .. } = node;
    let Some(inport) = ports.get_mut(index).filter(|p| p.nio.is_some()) else {
        return;
    };
    // The ingress port's filters, then its capture. A delay there holds
    // back what the switch sends out for this frame.
    let Some((frame, ingress_due)) = crate::lab::filter(wire, inport, now, false, frame) else {
        return;
    };
    let frame = &frame[..];
    inport.stats.in_frames += 1;
    inport.stats.in_bytes += frame.len() as u64;
    crate::lab::capture::record(dirty, key, index, &mut inport.capture, now, frame);
    let outs: Vec<(usize, Vec<u8>)> = match kind {
        Kind::Switch(sw) => {
            let modes: Vec<Option<PortMode>> =
                ports.iter().map(|p| p.nio.as_ref().and(p.mode)).collect();
            switch::forward(&mut sw.table, &modes, index, frame, now)
        }
        Kind::Hub => {
            let live: Vec<bool> = ports.iter().map(|p| p.nio.is_some()).collect();
            switch::flood(&live, index)
                .map(|p| (p, frame.to_vec()))
                .collect()
        }
        Kind::Vpcs(_) => return,
    };
    for (p, f) in outs {
        let port = &mut ports[p];
        let Some((f, due)) = crate::lab::filter(wire, port, now, true, &f) else {
            continue;
        };
        let to = Endpoint::Nio(key, p);
        if let Some(due) = due.max(ingress_due) {
            crate::lab::hold(wire, dirty, (key, p), port, (now, due), to, true, &f);
            continue;
        }
        let sent = send(to, &f);
        crate::lab::count(&mut port.stats, sent, true, f.len());
        if sent {
            crate::lab::capture::record(dirty, key, p, &mut port.capture, now, &f);
        }
    }
}
