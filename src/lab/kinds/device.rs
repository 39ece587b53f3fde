//! What Ethernet switches and hubs share (GNS3 1.3's "Dynamips devices",
//! served with no external program): numbered ports that appear with
//! their NIO (or are declared up front, 2.2's `ports_mapping`), the
//! updates, the view, and the path of a frame through the device.

use super::{Ctx, FrameCx};
use crate::error::ApiError;
use crate::lab::answer::{Body, DeviceView};
use crate::lab::command::{DeviceType, PortMapping, PortSettings, VlanMode};
use crate::lab::id::Endpoint;
use crate::lab::port::{Pass, Port, Tap};
use crate::lab::spec::DeviceUpdate;
use crate::lab::vlan::PortMode;
pub use crate::limits::MAX_DEVICE_PORTS;

fn conflict(msg: String) -> ApiError {
    ApiError::Conflict(msg)
}

/// A port mode from the API's settings.
pub fn mode(s: &PortSettings) -> PortMode {
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
pub fn view(n: &super::Face, kind: DeviceType) -> Body {
    let mut ports: Vec<PortSettings> = n
        .ports
        .iter()
        .filter(|p| p.nio.is_some())
        .filter_map(|p| p.mode.map(|m| settings(p.number, m)))
        .collect();
    ports.sort_by_key(|p| p.port);
    Body::Device(DeviceView {
        id: n.id,
        project: n.project,
        name: n.name.to_string(),
        kind,
        ports,
        mapping: n.mapping.to_vec(),
    })
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
pub fn port_index(ports: &[Port], port: u32) -> Result<usize, ApiError> {
    ports
        .iter()
        .position(|p| p.number == port && p.nio.is_some())
        .ok_or_else(|| conflict(format!("Port {port} is not allocated")))
}

/// Whether a request is one a switch or hub takes.
pub fn accepts(cmd: &crate::lab::command::NodeCommand) -> bool {
    use crate::lab::command::NodeCommand as C;
    !matches!(
        cmd,
        C::Start
            | C::Stop
            | C::Reload
            | C::Update(_)
            | C::AddNio(..)
            | C::ConsoleReset
            | C::Duplicate(_)
            | C::ConsoleSocket
    )
}

/// The port a new NIO goes on: port `port`, made when it is not there
/// yet, with the settings given or declared (a switch's; a hub has none).
pub fn nio_port(
    cx: &mut Ctx,
    port: u32,
    s: Option<PortSettings>,
    switch: bool,
) -> Result<usize, ApiError> {
    if !switch && s.is_some() {
        return Err(conflict("An Ethernet hub has no port settings".into()));
    }
    // A 2.2 device declares its ports: the NIO takes that port's settings.
    let s = match cx.mapping.iter().find(|m| m.port_number == port) {
        _ if cx.mapping.is_empty() => s,
        Some(m) => s.or_else(|| mapped(m)),
        None => {
            return Err(conflict(format!(
                "Port {port} doesn't exist on {}",
                cx.name
            )));
        }
    };
    let ports = &mut *cx.ports;
    let index = match ports.iter().position(|p| p.number == port) {
        Some(i) if ports[i].nio.is_some() => {
            return Err(conflict(format!("Port {port} isn't free")));
        }
        Some(i) => i,
        None if ports.len() >= MAX_DEVICE_PORTS => {
            return Err(conflict(format!(
                "A device has at most {MAX_DEVICE_PORTS} ports"
            )));
        }
        None => {
            ports.push(Port::new(0, port));
            ports.len() - 1
        }
    };
    ports[index].mode = switch.then(|| s.as_ref().map(mode).unwrap_or(PortMode::Access(1)));
    Ok(index)
}

/// Rename, and change the settings of linked switch ports (all or none);
/// `changed` is told each port whose settings changed.
pub fn update(
    cx: &mut Ctx,
    b: DeviceUpdate,
    switch: bool,
    changed: &mut dyn FnMut(usize),
) -> Result<(), ApiError> {
    if let Some(ports) = &b.ports {
        if !switch {
            return Err(conflict("An Ethernet hub has no port settings".into()));
        }
        let indices = ports
            .iter()
            .map(|s| port_index(cx.ports, s.port))
            .collect::<Result<Vec<_>, _>>()?;
        for (s, i) in ports.iter().zip(indices) {
            cx.ports[i].mode = Some(mode(s));
            changed(i);
        }
    }
    if let Some(name) = b.name {
        *cx.name = name;
    }
    Ok(())
}

/// GNS3 2.2's update: rename, and replace the declared ports. Linked
/// ports take their new settings; a linked port cannot be removed.
pub fn update_mapping(
    cx: &mut Ctx,
    name: Option<String>,
    mapping: Option<Vec<PortMapping>>,
    changed: &mut dyn FnMut(usize),
) -> Result<(), ApiError> {
    if let Some(mapping) = mapping {
        let dropped = cx
            .ports
            .iter()
            .find(|p| p.nio.is_some() && !mapping.iter().any(|m| m.port_number == p.number));
        if let Some(p) = dropped {
            return Err(conflict(format!(
                "Port {} is linked: it cannot be removed from {}",
                p.number, cx.name
            )));
        }
        for (i, port) in cx.ports.iter_mut().enumerate() {
            if port.nio.is_some()
                && let Some(s) = mapping
                    .iter()
                    .find(|m| m.port_number == port.number)
                    .and_then(mapped)
            {
                port.mode = Some(mode(&s));
                changed(i);
            }
        }
        *cx.mapping = mapping;
    }
    if let Some(name) = name {
        *cx.name = name;
    }
    cx.updated = true;
    Ok(())
}

/// A frame came in on port `index` of a switch or hub: through the
/// ingress port, then `decide` says where it goes (port, frame), and each
/// goes out through its port. A delay on the way in holds back what goes
/// out for it.
#[inline]
pub fn switch_frame(
    fx: &mut FrameCx,
    index: usize,
    frame: &[u8],
    send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
    dests: &mut Vec<(usize, crate::lab::vlan::PortMode)>,
    decide: impl FnOnce(
        &[Port],
        &[u8],
        &mut Vec<(usize, crate::lab::vlan::PortMode)>,
    ) -> Option<(u16, Option<Vec<u8>>)>,
) {
    let key = fx.key;
    let ports = &mut *fx.ports;
    let Some(inport) = ports.get_mut(index).filter(|p| p.nio.is_some()) else {
        return;
    };
    let mut t = Tap {
        wire: fx.wire,
        sink: fx.sink,
        at: (key, index),
        now: fx.now,
    };
    let (frame, held) = match inport.ingress(&mut t, frame, true) {
        Pass::Now(f) => (f, None),
        Pass::Later(due, f) => (f, Some(due)),
        Pass::Dropped => return,
    };
    inport.delivered(true, frame.len());
    let Some((vlan, popped)) = decide(ports, &frame, dests) else {
        return;
    };
    let inner = popped.as_deref().unwrap_or(&frame);
    for &(p, mode) in dests.iter() {
        let f = mode.egress(vlan, inner);
        let port = &mut ports[p];
        let to = Endpoint::Nio(key, p);
        t.at = (key, p);
        match port.egress(&mut t, &f, held) {
            Pass::Now(f) => {
                let ok = send(to, &f);
                port.sent(&mut t, ok, &f);
            }
            Pass::Later(due, f) => t.hold(port, to, true, due, &f),
            Pass::Dropped => {}
        }
    }
}
