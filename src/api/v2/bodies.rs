//! `/v2/compute` request bodies: JSON → the lab's validated inputs
//! (2.2's keys; what 2.2 ignores is ignored here too).

use crate::api::answer::Nio;
use crate::api::body::{self, Object, object, only, opt_port, opt_str, req_str};
use crate::api::body::{DeviceCreate, ProjectCreate, ProjectUpdate, VmCreate, VmUpdate};
use crate::api::command::{DeviceType, LinkFilters, PortMapping};
use crate::error::ApiError;
use serde_json::Value;

/// Keys a 2.2 controller may send when creating a project; only `name`,
/// `project_id` and `variables` matter to a compute.
pub(super) const PROJECT_KEYS: &[&str] = &[
    "name",
    "project_id",
    "path",
    "variables",
    "auto_close",
    "auto_open",
    "auto_start",
    "scene_width",
    "scene_height",
    "zoom",
    "show_layers",
    "snap_to_grid",
    "show_grid",
    "grid_size",
    "drawing_grid_size",
    "show_interface_labels",
    "supplier",
    "filename",
    "status",
];

pub(super) fn project_create(raw: &[u8]) -> Result<ProjectCreate, ApiError> {
    let o = object(raw)?;
    only(&o, PROJECT_KEYS)?;
    Ok(ProjectCreate {
        name: opt_str(&o, "name")?,
        project_id: body::opt_uuid(&o, "project_id")?,
        // The controller sends `path` to its own local compute only.
        path: None,
        temporary: None,
        variables: body::variables(&o)?,
    })
}

pub(super) fn project_update(raw: &[u8]) -> Result<ProjectUpdate, ApiError> {
    let o = object(raw)?;
    only(&o, PROJECT_KEYS)?;
    Ok(ProjectUpdate {
        variables: body::variables(&o)?,
        ..Default::default()
    })
}

/// `console_type`: `telnet` or `none`.
pub(super) fn console_type(o: &Object) -> Result<Option<bool>, ApiError> {
    match opt_str(o, "console_type")?.as_deref() {
        None => Ok(None),
        Some("telnet") => Ok(Some(true)),
        Some("none") => Ok(Some(false)),
        Some(other) => Err(ApiError::bad(format!(
            "Field 'console_type' must be telnet or none, not '{other}'"
        ))),
    }
}

pub(super) fn name_field(o: &Object) -> Result<Option<String>, ApiError> {
    let name = opt_str(o, "name")?;
    if name.as_deref() == Some("") {
        return Err(ApiError::bad("Field 'name' must not be empty"));
    }
    Ok(name)
}

pub(super) fn vpcs_create(raw: &[u8]) -> Result<VmCreate, ApiError> {
    let o = object(raw)?;
    only(
        &o,
        &[
            "name",
            "node_id",
            "console",
            "console_type",
            "startup_script",
        ],
    )?;
    let mut renamed = o.clone();
    renamed.remove("console_type");
    if let Some(id) = renamed.remove("node_id") {
        renamed.insert("vm_id".into(), id);
    }
    let v1 = VmCreate::parse(Value::Object(renamed).to_string().as_bytes())?;
    Ok(VmCreate {
        console_pick: true,
        console_telnet: console_type(&o)?.unwrap_or(true),
        ..v1
    })
}

pub(super) fn vpcs_update(raw: &[u8]) -> Result<VmUpdate, ApiError> {
    let o = object(raw)?;
    only(&o, &["name", "console", "console_type"])?;
    Ok(VmUpdate {
        name: name_field(&o)?,
        console: opt_port(&o, "console")?,
        startup_script: None,
        console_pick: true,
        console_telnet: console_type(&o)?,
    })
}

pub(super) fn device_create(raw: &[u8], kind: DeviceType) -> Result<DeviceCreate, ApiError> {
    let o = object(raw)?;
    match kind {
        DeviceType::Switch => only(
            &o,
            &[
                "name",
                "node_id",
                "console",
                "console_type",
                "ports_mapping",
            ],
        )?,
        DeviceType::Hub => only(&o, &["name", "node_id", "ports_mapping"])?,
    }
    let mapping = match ports_mapping(&o, kind)? {
        Some(m) => m,
        None => PortMapping::defaults(kind),
    };
    Ok(DeviceCreate {
        name: req_str(&o, "name")?,
        device_type: kind,
        device_id: body::opt_uuid(&o, "node_id")?,
        mapping: Some(mapping),
    })
}

pub(super) fn device_update(
    raw: &[u8],
    kind: DeviceType,
) -> Result<(Option<String>, Option<Vec<PortMapping>>), ApiError> {
    let o = object(raw)?;
    // 2.2's update schema is the object's: its read-only keys are accepted.
    only(
        &o,
        &[
            "name",
            "node_id",
            "project_id",
            "console",
            "console_type",
            "ports_mapping",
            "status",
        ],
    )?;
    Ok((name_field(&o)?, ports_mapping(&o, kind)?))
}

/// `ports_mapping`: a switch's `{name, port_number, type, vlan, ethertype}`,
/// a hub's `{name, port_number}`.
pub(super) fn ports_mapping(
    o: &Object,
    kind: DeviceType,
) -> Result<Option<Vec<PortMapping>>, ApiError> {
    let items = match o.get("ports_mapping") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(ApiError::bad("Field 'ports_mapping' must be an array")),
    };
    if items.len() > crate::limits::MAX_DEVICE_PORTS {
        return Err(ApiError::bad(format!(
            "Field 'ports_mapping' has {} ports; the most is {}",
            items.len(),
            crate::limits::MAX_DEVICE_PORTS
        )));
    }
    let mut out: Vec<PortMapping> = Vec::new();
    for item in items {
        let Some(p) = item.as_object() else {
            return Err(ApiError::bad(
                "Each entry of 'ports_mapping' must be an object",
            ));
        };
        let number = body::opt_int(p, "port_number", 0, i64::from(u32::MAX))?
            .ok_or_else(|| ApiError::bad("Field 'port_number' is required in 'ports_mapping'"))?
            as u32;
        if out.iter().any(|m| m.port_number == number) {
            return Err(ApiError::bad(format!(
                "Port {number} appears twice in 'ports_mapping'"
            )));
        }
        let vlan = match kind {
            DeviceType::Hub => {
                only(p, &["name", "port_number"])?;
                None
            }
            DeviceType::Switch => {
                only(p, &["name", "port_number", "type", "vlan", "ethertype"])?;
                let mode = body::vlan_mode(p)?;
                Some((mode, body::opt_int(p, "vlan", 1, 4094)?.unwrap_or(1) as u16))
            }
        };
        let ethertype = opt_str(p, "ethertype")?.unwrap_or_default();
        if !["", "0x8100", "0x88A8", "0x9100", "0x9200"].contains(&ethertype.as_str()) {
            return Err(ApiError::bad(format!(
                "Field 'ethertype' must be one of \"\", 0x8100, 0x88A8, 0x9100, 0x9200, not '{ethertype}'"
            )));
        }
        out.push(PortMapping {
            name: req_str(p, "name")?,
            port_number: number,
            vlan,
            ethertype,
        });
    }
    Ok(Some(out))
}

/// A 2.2 NIO: 1.3's keys plus `filters` and `suspend`.
pub(super) fn nio_with_filters(raw: &[u8]) -> Result<(Nio, LinkFilters), ApiError> {
    let mut o = object(raw)?;
    let filters = o.remove("filters");
    let suspend = o.remove("suspend");
    let nio = Nio::from_object(&o)?;
    if let Nio::Ethernet(e) = &nio {
        return Err(ApiError::conflict(format!(
            "NIO of type {} is not supported",
            e.kind
        )));
    }
    let mut f = match filters {
        None | Some(Value::Null) => LinkFilters::default(),
        Some(Value::Object(f)) => link_filters(&f)?,
        Some(_) => return Err(ApiError::bad("Field 'filters' must be an object")),
    };
    f.suspend = match suspend {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(ApiError::bad("Field 'suspend' must be a boolean")),
    };
    Ok((nio, f))
}

/// 2.2's filters: `{"<type>": [values]}`, with the controller's ranges.
pub fn link_filters(o: &Object) -> Result<LinkFilters, ApiError> {
    let mut f = LinkFilters::default();
    for (name, values) in o {
        let Value::Array(values) = values else {
            return Err(ApiError::bad(format!(
                "Filter '{name}' must be a list of values"
            )));
        };
        let int = |i: usize, min: i64, max: i64| -> Result<i64, ApiError> {
            let v = values.get(i).unwrap_or(&Value::Null);
            // The controller casts to int; strings of digits come from its GUI.
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
        match name.as_str() {
            "frequency_drop" => f.frequency_drop = Some(int(0, -1, 32767)? as i32),
            "packet_loss" => f.packet_loss = Some(int(0, 0, 100)? as u8),
            "corrupt" => f.corrupt = Some(int(0, 0, 100)? as u8),
            "delay" => {
                let jitter = if values.len() > 1 {
                    int(1, 0, 32767)?
                } else {
                    0
                };
                f.delay = Some((int(0, 0, 32767)? as u32, jitter as u32));
            }
            "bpf" => {
                for v in values {
                    let s = v
                        .as_str()
                        .ok_or_else(|| ApiError::bad("Filter 'bpf' must be a list of strings"))?;
                    f.bpf.push(s.to_string());
                }
            }
            other => {
                return Err(ApiError::bad(format!(
                    "Unknown filter '{other}' (frequency_drop, packet_loss, delay, corrupt and bpf are)"
                )));
            }
        }
    }
    Ok(f)
}
