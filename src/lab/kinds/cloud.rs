//! The cloud (sans-IO): GNS3's way to link a lab to the host. Each port
//! joins the link a controller attaches (a UDP NIO, like any port's) to
//! something on the host: an interface through a packet socket, or a TAP
//! device. Frames cross nanolab's own relay both ways, so filters, capture
//! and counters work on a cloud port as on any other. It runs from its
//! creation to its deletion.

use super::{Behaviour, Ctx, Echo, Face, FrameCx};
use crate::error::ApiError;
use crate::lab::answer::{Body, CloudView};
use crate::lab::command::{NodeClass, NodeCommand, PortAddr};
use crate::lab::host::Host;
use crate::lab::id::{Endpoint, NodeKey};
use crate::lab::port::Port;
use crate::lab::types::{HostLink, HostPort, Nio, NioEthernet, NioTap};

/// Where a port's host side is, among the node's NIO indices: port `i`'s
/// host side is `HOST_SIDE + i`, its link side `i`.
const HOST_SIDE: usize = 1 << 20;

/// A cloud: its ports' host sides.
#[derive(Debug, Default)]
pub struct Cloud {
    /// Its ports, in order (port `i` is the node's port `i`).
    pub ports: Vec<HostPort>,
    /// The host's interfaces when it was made: (name, `ethernet` or `tap`,
    /// special).
    pub interfaces: Vec<(String, &'static str, bool)>,
}

/// Interfaces GNS3 calls special (not offered for a cloud's ports by
/// default): loopback, bridges and the like.
const SPECIAL: [&str; 14] = [
    "lo",
    "vmnet",
    "vboxnet",
    "docker",
    "lxcbr",
    "virbr",
    "ovs-system",
    "veth",
    "fw",
    "p2p",
    "bridge",
    "vmware",
    "virtualbox",
    "gns3",
];

/// The host's interfaces as a cloud lists them.
fn interfaces(found: &[crate::lab::answer::Interface]) -> Vec<(String, &'static str, bool)> {
    found
        .iter()
        .map(|i| {
            let kind = if i.kind == "tap" { "tap" } else { "ethernet" };
            let special = SPECIAL.iter().any(|s| i.name.starts_with(s));
            (i.name.clone(), kind, special)
        })
        .collect()
}

impl Cloud {
    /// A cloud for node `key`: every port's host side opened (a TAP device
    /// made when missing), all or nothing; the host's interfaces listed.
    pub fn open(
        key: NodeKey,
        ports: Vec<HostPort>,
        host: &mut dyn Host,
    ) -> Result<Cloud, ApiError> {
        Self::open_sides(key, &ports, host)?;
        let found = host.interface_details().unwrap_or_default();
        Ok(Cloud {
            ports,
            interfaces: interfaces(&found),
        })
    }

    /// Open the host side of every port in `ports`, all or nothing.
    fn open_sides(key: NodeKey, ports: &[HostPort], host: &mut dyn Host) -> Result<(), ApiError> {
        for (i, p) in ports.iter().enumerate() {
            if let Err(e) = host.open_nio(key, HOST_SIDE + i, &Self::host_nio(p)) {
                Self::close_sides(key, i, host);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Close the host sides of the first `n` ports.
    fn close_sides(key: NodeKey, n: usize, host: &mut dyn Host) {
        for i in 0..n {
            host.close_nio(key, HOST_SIDE + i);
        }
    }

    /// New ports, as GNS3 allows while no port is linked: the old host
    /// sides closed, the new ones opened; the old ones back if that fails.
    fn replace_ports(&mut self, cx: &mut Ctx, ports: Vec<HostPort>) -> Result<(), ApiError> {
        if ports == self.ports {
            return Ok(());
        }
        if cx.ports.iter().any(|p| p.nio.is_some()) {
            return Err(ApiError::conflict(format!(
                "Cannot modify cloud {} while a port is linked: delete its links first",
                cx.name
            )));
        }
        Self::close_sides(cx.key, self.ports.len(), cx.host);
        if let Err(e) = Self::open_sides(cx.key, &ports, cx.host) {
            if Self::open_sides(cx.key, &self.ports, cx.host).is_err() {
                log::warn!("cloud {}: its former host sides did not reopen", cx.name);
            }
            return Err(e);
        }
        self.ports = ports;
        *cx.ports = self.node_ports();
        Ok(())
    }

    /// The node's ports: one per cloud port, link side.
    pub fn node_ports(&self) -> Vec<Port> {
        self.ports
            .iter()
            .map(|p| Port::new(0, p.port_number))
            .collect()
    }

    /// The NIO that opens port `i`'s host side.
    fn host_nio(p: &HostPort) -> Nio {
        match &p.link {
            HostLink::Ethernet(device) => Nio::Ethernet(NioEthernet {
                kind: "nio_generic_ethernet",
                device: device.clone(),
            }),
            HostLink::Tap(device) => Nio::Tap(NioTap {
                device: device.clone(),
            }),
        }
    }
}

impl Behaviour for Cloud {
    fn name(&self) -> &'static str {
        "Cloud"
    }

    fn word(&self) -> &'static str {
        "cloud"
    }

    fn class(&self) -> NodeClass {
        NodeClass::Cloud
    }

    fn accepts(&self, cmd: &NodeCommand) -> bool {
        use NodeCommand as C;
        matches!(
            cmd,
            C::Get
                | C::Delete
                | C::UpdateCloud(..)
                | C::AttachNio(..)
                | C::RemoveNio(_)
                | C::SetFilters(..)
                | C::StartCapture(..)
                | C::StopCapture(_)
                | C::WatchCapture(_)
                | C::Suspend
        )
    }

    fn view(&self, n: &Face) -> Body {
        Body::Cloud(CloudView {
            id: n.id,
            project: n.project,
            name: n.name.to_string(),
            ports: self.ports.clone(),
            interfaces: self.interfaces.clone(),
        })
    }

    fn port_index(&self, ports: &[Port], at: PortAddr) -> Result<usize, ApiError> {
        ports
            .iter()
            .position(|p| p.number == at.port)
            .ok_or_else(|| {
                ApiError::conflict(format!("Port {} doesn't exist on this cloud", at.port))
            })
    }

    fn port_label(&self, port: &Port) -> String {
        port.number.to_string()
    }

    /// A rename, new ports, or both.
    fn command(&mut self, cx: &mut Ctx, cmd: NodeCommand) -> Result<(), ApiError> {
        match cmd {
            NodeCommand::UpdateCloud(name, ports) => {
                if let Some(ports) = ports {
                    self.replace_ports(cx, ports)?;
                }
                if let Some(name) = name {
                    *cx.name = name;
                }
                cx.updated = true;
                Ok(())
            }
            _ => Err(ApiError::conflict(format!(
                "Cloud {} does not take this request",
                cx.name
            ))),
        }
    }

    /// Close every host side (the node goes away).
    fn kill(&mut self, cx: &mut Ctx) {
        Self::close_sides(cx.key, self.ports.len(), cx.host);
    }

    fn charged(&self, to: Endpoint) -> (usize, bool) {
        super::bridge_charged(to, HOST_SIDE)
    }

    /// From the link (port `i`) to the host side, or from the host side
    /// (`HOST_SIDE + i`) out of the link, through port `i` either way.
    fn on_frame(
        &mut self,
        fx: &mut FrameCx,
        index: usize,
        _outbound: bool,
        frame: &[u8],
        send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
    ) -> Echo {
        super::bridge(fx, index, HOST_SIDE, true, frame, send)
    }
}
