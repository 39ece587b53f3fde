//! `/v1` request bodies: 1.3.13's shapes, decoded through serde
//! ([`super::decode`]) into the lab's validated inputs. As 1.3.13's
//! schemas do, unknown properties are refused; every message names the
//! field and the rule it broke.

use super::decode::{
    self, Id, Int, NodeId, OneOf, Port, Word, from_object, name, port, required, required_text,
};
pub use super::decode::{Object, object, parse_uuid};
use super::types::{DeviceType, Nio, NioEthernet, NioTap, NioUdp, PortSettings, VlanMode};
use crate::error::ApiError;
pub use crate::lab::spec::{
    CaptureStart, DeviceCreate, DeviceUpdate, ProjectCreate, ProjectUpdate, VmCreate, VmUpdate,
};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

/// `POST /v1/version`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionCheck {
    /// The client's version.
    pub version: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct VersionBody {
    version: Option<String>,
    // 1.3.13's schema also takes an optional `local` flag, and ignores it.
    #[allow(dead_code)]
    local: Option<bool>,
}

impl VersionCheck {
    /// Decode.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let b: VersionBody = decode::decode(body)?;
        Ok(VersionCheck {
            version: required_text("version", b.version)?,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct ProjectBody {
    name: Option<String>,
    project_id: Option<Id>,
    path: Option<String>,
    temporary: Option<bool>,
}

impl ProjectCreate {
    /// Decode.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let b: ProjectBody = decode::decode(body)?;
        Ok(ProjectCreate {
            name: b.name,
            project_id: b.project_id.map(|Id(id)| id),
            path: b.path,
            temporary: b.temporary,
            variables: None,
        })
    }
}

/// GNS3 2.2's `variables`: `null` or an array of `{"name", "value"?}`,
/// kept as JSON text.
pub fn variables(v: Option<Value>) -> Result<Option<String>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => {
            for i in &items {
                let ok = i.as_object().is_some_and(|v| {
                    v.get("name").is_some_and(Value::is_string)
                        && v.keys().all(|k| k == "name" || k == "value")
                });
                if !ok {
                    return Err(ApiError::bad(
                        "Each entry of 'variables' must be an object {name, value}",
                    ));
                }
            }
            Ok(Some(Value::Array(items).to_string()))
        }
        Some(_) => Err(ApiError::bad("Field 'variables' must be an array or null")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct ProjectUpdateBody {
    name: Option<String>,
    path: Option<String>,
    temporary: Option<bool>,
}

impl ProjectUpdate {
    /// Decode.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let b: ProjectUpdateBody = decode::decode(body)?;
        Ok(ProjectUpdate {
            name: b.name,
            path: b.path,
            temporary: b.temporary,
            variables: None,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct Empty {}

/// A body that must be empty or `{}`.
pub fn empty(body: &[u8]) -> Result<(), ApiError> {
    decode::decode::<Empty>(body).map(drop)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct VmBody {
    name: Option<String>,
    vm_id: Option<NodeId>,
    console: Option<Port>,
    startup_script: Option<String>,
    #[allow(dead_code)]
    startup_script_path: Option<IgnoredAny>,
}

impl VmCreate {
    /// Decode. GNS3 1.2 topologies numbered their VMs; 1.3.13 accepts an
    /// integer and gives the VM a new UUID (0 means none, as in 1.3.13).
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let b: VmBody = decode::decode(body)?;
        Ok(VmCreate {
            name: required_text("name", b.name)?,
            vm_id: NodeId::uuid(b.vm_id),
            legacy_id: NodeId::legacy(b.vm_id),
            console: port(b.console),
            startup_script: b.startup_script,
            console_pick: false,
            console_telnet: true,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct VmUpdateBody {
    name: Option<String>,
    console: Option<Port>,
    startup_script: Option<String>,
    #[allow(dead_code)]
    startup_script_path: Option<IgnoredAny>,
}

impl VmUpdate {
    /// Decode.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let b: VmUpdateBody = decode::decode(body)?;
        Ok(VmUpdate {
            name: name(b.name)?,
            console: port(b.console),
            startup_script: b.startup_script,
            console_pick: false,
            console_telnet: None,
        })
    }
}

/// A required interface name: at most [`MAX_IFNAME`](crate::limits::MAX_IFNAME)
/// bytes, no `/`.
fn ifname(field: &str, v: Option<String>) -> Result<String, ApiError> {
    let name = required_text(field, v)?;
    if name.len() > crate::limits::MAX_IFNAME || name.contains(['/', '\0']) {
        return Err(ApiError::bad(format!(
            "Field '{field}' must be an interface name of at most {} bytes without '/', not '{name}'",
            crate::limits::MAX_IFNAME
        )));
    }
    Ok(name)
}

/// What says a NIO's type, whatever else the object holds.
#[derive(Deserialize)]
struct Typed {
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct UdpBody {
    #[serde(rename = "type")]
    #[allow(dead_code)]
    kind: IgnoredAny,
    lport: Option<Port>,
    rhost: Option<String>,
    rport: Option<Port>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct TapBody {
    #[serde(rename = "type")]
    #[allow(dead_code)]
    kind: IgnoredAny,
    tap_device: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct EthernetBody {
    #[serde(rename = "type")]
    #[allow(dead_code)]
    kind: IgnoredAny,
    ethernet_device: Option<String>,
}

/// `POST .../nio`: the NIO types a VPCS port takes.
impl Nio {
    /// Decode a VPCS NIO; the accepted properties depend on `type`. A VPCS
    /// takes a tunnel or a TAP device, as in 1.3.13.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        Self::parse_for(body, "VPCS")
    }

    /// The same for a node of kind `what` (`VPCS`, `QEMU`): as in 1.3.13,
    /// neither takes a host interface.
    pub fn parse_for(body: &[u8], what: &str) -> Result<Self, ApiError> {
        match Self::from_object(object(body)?)? {
            Nio::Ethernet(e) => Err(ApiError::conflict(format!(
                "NIO type '{}' is not supported by {what} (nio_udp and nio_tap are)",
                e.kind
            ))),
            nio => Ok(nio),
        }
    }

    /// Decode from a JSON object (a device NIO nests it under `nio`).
    pub fn from_object(o: Object) -> Result<Self, ApiError> {
        let Typed { kind } = from_object(o.clone())?;
        match required_text("type", kind)?.as_str() {
            "nio_udp" => {
                let b: UdpBody = from_object(o)?;
                let rhost = required_text("rhost", b.rhost)?;
                let raddr = match rhost.as_str() {
                    "localhost" => std::net::IpAddr::from([127, 0, 0, 1]),
                    s => s.parse().map_err(|_| {
                        ApiError::bad(format!("Field 'rhost' must be an IP address, not '{s}'"))
                    })?,
                };
                Ok(Nio::Udp(NioUdp {
                    lport: required("lport", port(b.lport))?,
                    rhost,
                    raddr,
                    rport: required("rport", port(b.rport))?,
                }))
            }
            "nio_tap" => {
                let b: TapBody = from_object(o)?;
                let device = ifname("tap_device", b.tap_device)?;
                Ok(Nio::Tap(NioTap { device }))
            }
            kind @ ("nio_generic_ethernet" | "nio_linux_ethernet") => {
                let b: EthernetBody = from_object(o)?;
                let device = ifname("ethernet_device", b.ethernet_device)?;
                Ok(Nio::Ethernet(NioEthernet {
                    kind: if kind == "nio_linux_ethernet" {
                        "nio_linux_ethernet"
                    } else {
                        "nio_generic_ethernet"
                    },
                    device,
                }))
            }
            ty => Err(ApiError::conflict(format!(
                "NIO type '{ty}' is not supported (nio_udp, nio_tap, and on switch and hub ports nio_generic_ethernet and nio_linux_ethernet are)"
            ))),
        }
    }
}

/// A 1.3 device's id: a UUID, or a 1.2 number that gets a new UUID.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct DeviceBody {
    name: Option<String>,
    device_type: Option<String>,
    device_id: Option<NodeId>,
}

impl DeviceCreate {
    /// Decode, as GNS3 1.3.13's schema: an integer id (a 1.2 topology)
    /// gets a new UUID.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let b: DeviceBody = decode::decode(body)?;
        let device_type = match required_text("device_type", b.device_type)?.as_str() {
            "ethernet_switch" => DeviceType::Switch,
            "ethernet_hub" => DeviceType::Hub,
            other => {
                return Err(ApiError::conflict(format!(
                    "Unknown device type: {other} (nanolab serves ethernet_switch and ethernet_hub)"
                )));
            }
        };
        Ok(DeviceCreate {
            name: required_text("name", b.name)?,
            device_type,
            device_id: NodeId::uuid(b.device_id),
            mapping: None,
        })
    }
}

impl Word for VlanMode {
    const ALLOWED: &'static str = "access, dot1q or qinq";
    fn parse(s: &str) -> Option<Self> {
        match s {
            "access" => Some(VlanMode::Access),
            "dot1q" => Some(VlanMode::Dot1q),
            "qinq" => Some(VlanMode::Qinq),
            _ => None,
        }
    }
}

/// A switch port's settings with its number (`ports` of an update).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object {port, type, vlan}")]
struct PortBody {
    #[serde(rename = "type")]
    mode: Option<OneOf<VlanMode>>,
    vlan: Option<Int<1, 4094>>,
    port: Option<Int<0, { u32::MAX as i64 }>>,
}

/// A switch port's settings for its new NIO (`port_settings`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object {type, vlan}")]
struct SettingsBody {
    #[serde(rename = "type")]
    mode: Option<OneOf<VlanMode>>,
    vlan: Option<Int<1, 4094>>,
}

fn settings(
    mode: Option<OneOf<VlanMode>>,
    vlan: Option<Int<1, 4094>>,
    port: u32,
) -> Result<PortSettings, ApiError> {
    let OneOf(mode) = required("type", mode)?;
    let Int(vlan) = required("vlan", vlan)?;
    Ok(PortSettings {
        port,
        mode,
        vlan: u16::try_from(vlan).unwrap_or(1),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct DeviceUpdateBody {
    name: Option<String>,
    ports: Option<Vec<PortBody>>,
}

impl DeviceUpdate {
    /// Decode.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let b: DeviceUpdateBody = decode::decode(body)?;
        let ports = b.ports.map(|ports| {
            ports
                .into_iter()
                .map(|p| {
                    let s = settings(p.mode, p.vlan, 0)?;
                    let Int(port) = required("port", p.port)?;
                    let port = u32::try_from(port).unwrap_or(u32::MAX);
                    Ok(PortSettings { port, ..s })
                })
                .collect::<Result<Vec<_>, ApiError>>()
        });
        Ok(DeviceUpdate {
            name: b.name,
            ports: ports.transpose()?,
            mapping: None,
        })
    }
}

/// `POST .../dynamips/devices/{device_id}/ports/{port_number}/nio`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNio {
    /// The NIO.
    pub nio: Nio,
    /// A switch port's settings.
    pub settings: Option<PortSettings>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct DeviceNioBody {
    nio: Option<Object>,
    port_settings: Option<SettingsBody>,
    #[allow(dead_code)]
    mappings: Option<IgnoredAny>,
}

impl DeviceNio {
    /// Decode `{"nio": {...}, "port_settings": {"type", "vlan"}}`.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let b: DeviceNioBody = decode::decode(body)?;
        let nio = Nio::from_object(required("nio", b.nio)?)?;
        let settings = b
            .port_settings
            .map(|s| settings(s.mode, s.vlan, 0))
            .transpose()?;
        Ok(DeviceNio { nio, settings })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct CaptureBody {
    capture_file_name: Option<String>,
    data_link_type: Option<String>,
}

impl CaptureStart {
    /// Decode; the name must stay inside the captures directory, and the
    /// link type, when given, must be Ethernet.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let b: CaptureBody = decode::decode(body)?;
        let name = required_text("capture_file_name", b.capture_file_name)?;
        if name.contains('/')
            || name.contains('\\')
            || name == "."
            || name == ".."
            || name.contains('\0')
        {
            return Err(ApiError::bad(format!(
                "Field 'capture_file_name' must be a file name inside the project's captures directory, not '{name}'"
            )));
        }
        if let Some(dlt) = b.data_link_type
            && !matches!(
                dlt.to_ascii_uppercase().as_str(),
                "DLT_EN10MB" | "EN10MB" | "ETHERNET"
            )
        {
            return Err(ApiError::conflict(format!(
                "Data link type '{dlt}' is not supported: nanolab captures Ethernet (DLT_EN10MB)"
            )));
        }
        Ok(CaptureStart {
            capture_file_name: name,
        })
    }
}

pub mod qemu;

#[cfg(test)]
mod tests;
