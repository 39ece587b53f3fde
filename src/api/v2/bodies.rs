//! `/v2/compute` request bodies: 2.2's shapes, decoded through serde
//! ([`crate::api::decode`]) into the lab's validated inputs. The keys a
//! 2.2 controller sends that a compute does not use are taken and
//! ignored; others are refused, with the list of what is taken.

use super::Dialect;
use crate::api::answer::Nio;
use crate::api::body::{self, DeviceCreate, ProjectCreate, ProjectUpdate, VmCreate, VmUpdate};
use crate::api::command::{DeviceType, LinkFilters, PortMapping, VlanMode};
use crate::api::decode::{
    self, Id, Int, NodeId, Object, OneOf, Port, Word, from_object, from_object_at, name, port,
    required, required_text,
};
use crate::error::ApiError;
use crate::lab::spec::CloudCreate;
use crate::lab::types::{HostLink, HostPort};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

/// A key a 2.2 controller sends that a compute does not use.
type Unused = Option<IgnoredAny>;

/// What a 2.2 controller may send when creating or updating a project;
/// only `name`, `project_id` and `variables` matter to a compute.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
#[allow(dead_code)]
struct ProjectBody {
    name: Option<String>,
    project_id: Option<Id>,
    // The controller sends `path` to its own local compute only.
    path: Unused,
    variables: Option<Value>,
    auto_close: Unused,
    auto_open: Unused,
    auto_start: Unused,
    scene_width: Unused,
    scene_height: Unused,
    zoom: Unused,
    show_layers: Unused,
    snap_to_grid: Unused,
    show_grid: Unused,
    grid_size: Unused,
    drawing_grid_size: Unused,
    show_interface_labels: Unused,
    supplier: Unused,
    filename: Unused,
    status: Unused,
}

pub(super) fn project_create(raw: &[u8]) -> Result<ProjectCreate, ApiError> {
    let b: ProjectBody = decode::decode(raw)?;
    Ok(ProjectCreate {
        name: b.name,
        project_id: b.project_id.map(|Id(id)| id),
        path: None,
        temporary: None,
        variables: body::variables(b.variables)?,
    })
}

pub(super) fn project_update(raw: &[u8]) -> Result<ProjectUpdate, ApiError> {
    let b: ProjectBody = decode::decode(raw)?;
    Ok(ProjectUpdate {
        variables: body::variables(b.variables)?,
        ..Default::default()
    })
}

/// A node's body: 2.2's keys only; 3.0's controller also sends keys a
/// compute does not use (`compute_id`, `builtin`, `usage`, ...), which are
/// ignored, as the 3.0 compute ignores them, and never echoed.
fn node_body<T: serde::de::DeserializeOwned>(raw: &[u8], d: Dialect) -> Result<T, ApiError> {
    match d {
        Dialect::V2 => decode::decode(raw),
        Dialect::V3 => decode::decode_lenient(raw),
    }
}

/// `console_type`: `telnet` (true) or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Telnet(bool);

impl Word for Telnet {
    const ALLOWED: &'static str = "telnet or none";
    fn parse(s: &str) -> Option<Self> {
        match s {
            "telnet" => Some(Telnet(true)),
            "none" => Some(Telnet(false)),
            _ => None,
        }
    }
}

fn telnet(v: Option<OneOf<Telnet>>) -> Option<bool> {
    v.map(|OneOf(Telnet(t))| t)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct VpcsBody {
    name: Option<String>,
    node_id: Option<NodeId>,
    console: Option<Port>,
    console_type: Option<OneOf<Telnet>>,
    startup_script: Option<String>,
}

pub(super) fn vpcs_create(raw: &[u8], d: Dialect) -> Result<VmCreate, ApiError> {
    let b: VpcsBody = node_body(raw, d)?;
    Ok(VmCreate {
        name: required_text("name", b.name)?,
        vm_id: NodeId::uuid(b.node_id),
        legacy_id: NodeId::legacy(b.node_id),
        console: port(b.console),
        startup_script: b.startup_script,
        console_pick: true,
        console_telnet: telnet(b.console_type).unwrap_or(true),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct VpcsUpdateBody {
    name: Option<String>,
    console: Option<Port>,
    console_type: Option<OneOf<Telnet>>,
}

pub(super) fn vpcs_update(raw: &[u8], d: Dialect) -> Result<VmUpdate, ApiError> {
    let b: VpcsUpdateBody = node_body(raw, d)?;
    Ok(VmUpdate {
        name: name(b.name)?,
        console: port(b.console),
        startup_script: None,
        console_pick: true,
        console_telnet: telnet(b.console_type),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
#[allow(dead_code)]
struct SwitchBody {
    name: Option<String>,
    node_id: Option<Id>,
    console: Unused,
    console_type: Unused,
    ports_mapping: Option<Vec<Object>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct HubBody {
    name: Option<String>,
    node_id: Option<Id>,
    ports_mapping: Option<Vec<Object>>,
}

pub(super) fn device_create(
    raw: &[u8],
    kind: DeviceType,
    d: Dialect,
) -> Result<DeviceCreate, ApiError> {
    let (name, id, mapping) = match kind {
        DeviceType::Switch => {
            let b: SwitchBody = node_body(raw, d)?;
            (b.name, b.node_id, b.ports_mapping)
        }
        DeviceType::Hub => {
            let b: HubBody = node_body(raw, d)?;
            (b.name, b.node_id, b.ports_mapping)
        }
    };
    let mapping = match ports_mapping(mapping, kind)? {
        Some(m) => m,
        None => PortMapping::defaults(kind),
    };
    Ok(DeviceCreate {
        name: required_text("name", name)?,
        device_type: kind,
        device_id: id.map(|Id(id)| id),
        mapping: Some(mapping),
    })
}

/// 2.2's update schema is the object's: its read-only keys are accepted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
#[allow(dead_code)]
struct DeviceUpdateBody {
    name: Option<String>,
    node_id: Unused,
    project_id: Unused,
    console: Unused,
    console_type: Unused,
    ports_mapping: Option<Vec<Object>>,
    status: Unused,
}

pub(super) fn device_update(
    raw: &[u8],
    kind: DeviceType,
    d: Dialect,
) -> Result<(Option<String>, Option<Vec<PortMapping>>), ApiError> {
    let b: DeviceUpdateBody = node_body(raw, d)?;
    Ok((name(b.name)?, ports_mapping(b.ports_mapping, kind)?))
}

/// A switch's declared port.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object")]
struct SwitchPort {
    name: Option<String>,
    port_number: Option<Int<0, { u32::MAX as i64 }>>,
    #[serde(rename = "type")]
    mode: Option<OneOf<VlanMode>>,
    vlan: Option<Int<1, 4094>>,
    ethertype: Option<String>,
}

/// A hub's declared port.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object")]
struct HubPort {
    name: Option<String>,
    port_number: Option<Int<0, { u32::MAX as i64 }>>,
}

/// `ports_mapping`: a switch's `{name, port_number, type, vlan, ethertype}`,
/// a hub's `{name, port_number}`.
fn ports_mapping(
    items: Option<Vec<Object>>,
    kind: DeviceType,
) -> Result<Option<Vec<PortMapping>>, ApiError> {
    let Some(items) = items else {
        return Ok(None);
    };
    if items.len() > crate::limits::MAX_DEVICE_PORTS {
        return Err(ApiError::bad(format!(
            "Field 'ports_mapping' has {} ports; the most is {}",
            items.len(),
            crate::limits::MAX_DEVICE_PORTS
        )));
    }
    let mut out: Vec<PortMapping> = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let at = format!("ports_mapping[{i}]");
        let field = |name: &str| format!("{at}.{name}");
        let (name, number, vlan, ethertype) = match kind {
            DeviceType::Hub => {
                let p: HubPort = from_object_at(&at, item)?;
                (p.name, p.port_number, None, None)
            }
            DeviceType::Switch => {
                let p: SwitchPort = from_object_at(&at, item)?;
                let OneOf(mode) = required(&field("type"), p.mode)?;
                let vlan = p.vlan.map_or(1, |Int(v)| u16::try_from(v).unwrap_or(1));
                (p.name, p.port_number, Some((mode, vlan)), p.ethertype)
            }
        };
        let Int(number) = required(&field("port_number"), number)?;
        let number = u32::try_from(number).unwrap_or(u32::MAX);
        if out.iter().any(|m| m.port_number == number) {
            return Err(ApiError::bad(format!(
                "Port {number} appears twice in 'ports_mapping'"
            )));
        }
        let ethertype = ethertype.unwrap_or_default();
        if !["", "0x8100", "0x88A8", "0x9100", "0x9200"].contains(&ethertype.as_str()) {
            return Err(ApiError::bad(format!(
                "Field 'ports_mapping[{i}].ethertype' must be one of \"\", 0x8100, 0x88A8, 0x9100, 0x9200, not '{ethertype}'"
            )));
        }
        out.push(PortMapping {
            name: required_text(&format!("ports_mapping[{i}].name"), name)?,
            port_number: number,
            vlan,
            ethertype,
        });
    }
    Ok(Some(out))
}

/// A 2.2 NIO: 1.3's keys plus `filters` and `suspend`.
pub(super) fn nio_with_filters(raw: &[u8]) -> Result<(Nio, LinkFilters), ApiError> {
    let mut o = decode::object(raw)?;
    let filters = o.remove("filters");
    let suspend = o.remove("suspend");
    let nio = Nio::from_object(o)?;
    if let Nio::Ethernet(e) = &nio {
        return Err(ApiError::conflict(format!(
            "NIO of type {} is not supported",
            e.kind
        )));
    }
    let mut f = match filters {
        None | Some(Value::Null) => LinkFilters::default(),
        Some(Value::Object(f)) => link_filters(f)?,
        Some(_) => return Err(ApiError::bad("Field 'filters' must be an object")),
    };
    f.suspend = match suspend {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(ApiError::bad("Field 'suspend' must be a boolean")),
    };
    Ok((nio, f))
}

/// 2.2's filters: `{"<type>": [values]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object")]
struct FiltersBody {
    frequency_drop: Option<Vec<Value>>,
    packet_loss: Option<Vec<Value>>,
    delay: Option<Vec<Value>>,
    corrupt: Option<Vec<Value>>,
    bpf: Option<Vec<String>>,
}

/// 2.2's filters, with the controller's ranges; the controller casts to
/// int, and strings of digits come from its GUI.
pub fn link_filters(o: Object) -> Result<LinkFilters, ApiError> {
    const KNOWN: [&str; 5] = ["frequency_drop", "packet_loss", "delay", "corrupt", "bpf"];
    if let Some(other) = o.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(ApiError::bad(format!(
            "Unknown filter '{other}' (frequency_drop, packet_loss, delay, corrupt and bpf are)"
        )));
    }
    let b: FiltersBody = from_object(o)?;
    let int = |name: &str, values: &[Value], i: usize, min: i64, max: i64| {
        let v = values.get(i).unwrap_or(&Value::Null);
        let n = v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .ok_or_else(|| {
                ApiError::bad(format!("Filter '{name}' value {i} must be an integer"))
            })?;
        if !(min..=max).contains(&n) {
            return Err(ApiError::bad(format!(
                "Filter '{name}' value {i} must be between {min} and {max}, not {n}"
            )));
        }
        Ok(n)
    };
    let mut f = LinkFilters::default();
    if let Some(v) = &b.frequency_drop {
        f.frequency_drop = Some(int("frequency_drop", v, 0, -1, 32767)? as i32);
    }
    if let Some(v) = &b.packet_loss {
        f.packet_loss = Some(int("packet_loss", v, 0, 0, 100)? as u8);
    }
    if let Some(v) = &b.corrupt {
        f.corrupt = Some(int("corrupt", v, 0, 0, 100)? as u8);
    }
    if let Some(v) = &b.delay {
        let jitter = if v.len() > 1 {
            int("delay", v, 1, 0, 32767)?
        } else {
            0
        };
        f.delay = Some((int("delay", v, 0, 0, 32767)? as u32, jitter as u32));
    }
    f.bpf = b.bpf.unwrap_or_default();
    Ok(f)
}

#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct DuplicateBody {
    destination_node_id: Option<Id>,
}

/// `duplicate`: the node (created beforehand) that gets a copy.
pub(super) fn duplicate(raw: &[u8]) -> Result<uuid::Uuid, ApiError> {
    let b: DuplicateBody = decode::decode(raw)?;
    required("destination_node_id", b.destination_node_id).map(|Id(id)| id)
}

/// A cloud's port as the controller declares it. `udp` ports (a tunnel
/// the cloud itself would open) are not served.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object")]
struct CloudPort {
    name: Option<String>,
    #[allow(dead_code)]
    port_number: Option<IgnoredAny>,
    #[serde(rename = "type")]
    kind: Option<String>,
    interface: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
#[allow(dead_code)]
struct CloudBody {
    name: Option<String>,
    node_id: Option<Id>,
    ports_mapping: Option<Vec<Object>>,
    remote_console_host: Unused,
    remote_console_port: Unused,
    remote_console_type: Unused,
    remote_console_http_path: Unused,
    interfaces: Unused,
    usage: Unused,
    node_directory: Unused,
    status: Unused,
    project_id: Unused,
}

/// A cloud to create: its ports are renumbered 0, 1, 2... in the given
/// order, as the reference compute does; each reaches a host interface
/// (`ethernet`) or a TAP device (`tap`).
pub(super) fn cloud_create(raw: &[u8], d: Dialect) -> Result<CloudCreate, ApiError> {
    let b: CloudBody = node_body(raw, d)?;
    Ok(CloudCreate {
        ports: host_ports(b.ports_mapping.unwrap_or_default())?,
        name: required_text("name", b.name)?,
        node_id: b.node_id.map(|Id(id)| id),
    })
}

/// A cloud's update: its name and its ports, each when given.
pub(super) fn cloud_update(
    raw: &[u8],
    d: Dialect,
) -> Result<(Option<String>, Option<Vec<HostPort>>), ApiError> {
    let b: CloudBody = node_body(raw, d)?;
    let ports = b.ports_mapping.map(host_ports).transpose()?;
    Ok((name(b.name)?, ports))
}

/// A cloud's `ports_mapping`, renumbered 0, 1, 2... in order.
fn host_ports(mapping: Vec<Object>) -> Result<Vec<HostPort>, ApiError> {
    let mut ports = Vec::new();
    for (i, item) in mapping.into_iter().enumerate() {
        let at = format!("ports_mapping[{i}]");
        if i >= crate::limits::MAX_DEVICE_PORTS {
            return Err(ApiError::bad(format!(
                "Field 'ports_mapping' has more than {} ports",
                crate::limits::MAX_DEVICE_PORTS
            )));
        }
        let p: CloudPort = decode::from_object_at(&at, item)?;
        let interface = required_text(&format!("{at}.interface"), p.interface)?;
        let bad = interface.len() > crate::limits::MAX_IFNAME || interface.contains(['/', '\0']);
        if bad {
            return Err(ApiError::bad(format!(
                "Field '{at}.interface' must be an interface name of at most {} bytes without '/', not '{interface}'",
                crate::limits::MAX_IFNAME
            )));
        }
        let link = match required_text(&format!("{at}.type"), p.kind)?.as_str() {
            "ethernet" => HostLink::Ethernet(interface),
            "tap" => HostLink::Tap(interface),
            other => {
                return Err(ApiError::conflict(format!(
                    "Cloud port type '{other}' is not served (ethernet and tap are)"
                )));
            }
        };
        ports.push(HostPort {
            name: p.name.unwrap_or_else(|| format!("port{i}")),
            port_number: u32::try_from(i).unwrap_or(u32::MAX),
            link,
        });
    }
    Ok(ports)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct ArchsBody {
    archs: Option<Vec<String>>,
}

/// `qemu/binaries`' optional body: `{"archs": ["x86_64", ...]}`.
pub(super) fn qemu_archs(raw: &[u8]) -> Result<Option<Vec<String>>, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let b: ArchsBody = decode::decode(raw)?;
    Ok(b.archs)
}

/// A `mac_address` given, when not empty, must be a MAC address.
pub(super) fn check_mac(mac: Option<&str>, example: &str) -> Result<(), ApiError> {
    let Some(mac) = mac.filter(|m| !m.is_empty()) else {
        return Ok(());
    };
    let ok = mac.split(':').count() == 6
        && mac
            .split(':')
            .all(|p| p.len() == 2 && u8::from_str_radix(p, 16).is_ok());
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad(format!(
            "Field 'mac_address' must be a MAC address like {example}, not '{mac}'"
        )))
    }
}
