//! The values commands and answers share (no I/O): a port's NIO, a
//! device's type, a switch port's settings. Decoded by `body`, carried by
//! `command`, shown by `answer`.

use std::net::IpAddr;

/// Which kind of Dynamips device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceType {
    /// `ethernet_switch`
    Switch,
    /// `ethernet_hub`
    Hub,
}

/// How a switch port treats VLANs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VlanMode {
    /// Untagged, one VLAN.
    Access,
    /// A trunk; `vlan` is the native VLAN.
    Dot1q,
    /// A tunnel into `vlan`.
    Qinq,
}

/// A switch port's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSettings {
    /// The port number (in `PUT ... ports`).
    pub port: u32,
    /// Its mode.
    pub mode: VlanMode,
    /// Its VLAN (access, native or outer).
    pub vlan: u16,
}

/// A UDP tunnel, as a port holds it: frames leave from `lport` to `rhost:rport`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NioUdp {
    /// Local UDP port owned by the server.
    pub lport: u16,
    /// Peer address, as the client gave it.
    pub rhost: String,
    /// Peer address, resolved.
    pub raddr: IpAddr,
    /// Peer port.
    pub rport: u16,
}

/// A host TAP device, as a port holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NioTap {
    /// The device's name.
    pub device: String,
}

/// An existing host interface, reached through a packet socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NioEthernet {
    /// `nio_generic_ethernet` or `nio_linux_ethernet`, as the client said.
    pub kind: &'static str,
    /// The interface's name.
    pub device: String,
}

/// A port's link to the world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nio {
    /// A UDP tunnel.
    Udp(NioUdp),
    /// A host TAP device.
    Tap(NioTap),
    /// A host interface (switch and hub ports).
    Ethernet(NioEthernet),
}

impl Nio {
    /// The local UDP port it holds, if it is a tunnel.
    pub fn udp_port(&self) -> Option<u16> {
        match self {
            Nio::Udp(u) => Some(u.lport),
            Nio::Tap(_) | Nio::Ethernet(_) => None,
        }
    }
}

impl std::fmt::Display for Nio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Nio::Udp(u) => write!(f, "udp {} -> {}:{}", u.lport, u.rhost, u.rport),
            Nio::Tap(t) => write!(f, "tap {}", t.device),
            Nio::Ethernet(e) => write!(f, "ethernet {}", e.device),
        }
    }
}

/// A switch or hub port as 2.2 declares it (`ports_mapping`): it exists
/// whether or not a link is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    /// Its name ("Ethernet0").
    pub name: String,
    /// Its number.
    pub port_number: u32,
    /// A switch port's mode and VLAN (`None` on a hub).
    pub vlan: Option<(VlanMode, u16)>,
    /// A switch port's outer EtherType (`""`, or "0x8100" and the like, for qinq).
    pub ethertype: String,
}

impl PortMapping {
    /// GNS3 2.2's ports for a switch or hub created without
    /// `ports_mapping`: eight, `Ethernet0` to `Ethernet7`, a switch's in
    /// access VLAN 1.
    pub fn defaults(kind: DeviceType) -> Vec<PortMapping> {
        (0..8)
            .map(|n| PortMapping {
                name: format!("Ethernet{n}"),
                port_number: n,
                vlan: (kind == DeviceType::Switch).then_some((VlanMode::Access, 1)),
                ethertype: String::new(),
            })
            .collect()
    }
}

/// A link's filters as GNS3 2.2 sets them on a NIO (`filters`, `suspend`),
/// validated. The default filters nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkFilters {
    /// `frequency_drop [N]`: `-1` drops every frame, `N > 0` every Nth.
    pub frequency_drop: Option<i32>,
    /// `packet_loss [percent]`.
    pub packet_loss: Option<u8>,
    /// `delay [latency_ms, jitter_ms]`.
    pub delay: Option<(u32, u32)>,
    /// `corrupt [percent]`.
    pub corrupt: Option<u8>,
    /// `bpf ["expr\nexpr"]`: one libpcap expression per line; a matching
    /// frame is dropped.
    pub bpf: Vec<String>,
    /// The link is suspended: nothing crosses.
    pub suspend: bool,
}

impl LinkFilters {
    /// Whether every frame crosses untouched.
    pub fn is_empty(&self) -> bool {
        *self == LinkFilters::default()
    }
}

/// A cloud's port as GNS3 declares it: a link of the lab to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Its name.
    pub name: String,
    /// Its number.
    pub port_number: u32,
    /// What on the host it reaches.
    pub link: HostLink,
}

/// What a cloud port reaches on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostLink {
    /// A host interface, through a packet socket (`type: ethernet`).
    Ethernet(String),
    /// A TAP device, created when missing (`type: tap`).
    Tap(String),
}
