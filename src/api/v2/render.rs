//! `/v2/compute` answers and notifications: the lab's answers in
//! 2.2.61's JSON shapes, and only the statuses the controller maps.

use super::*;
use crate::api::answer::{
    Answer, Body, CloudView, DeviceView, LogLevel, Nio, Notice, ProjectView, Reply, VpcsView,
};
use crate::api::command::{DeviceType, VlanMode};
use crate::error::ApiError;
use crate::lab::types::HostLink;
use crate::proto::http::response::Response;
use serde_json::{Value, json};

/// The HTTP answer for a lab reply, in 2.2's shapes, with its `X-Route`.
pub fn render(route: Option<&'static str>, reply: Reply) -> Response {
    match reply {
        Ok(Answer::Ok(Body::LiveCapture)) => Response::chunked("application/vnd.tcpdump.pcap"),
        Ok(Answer::Ok(Body::File(data))) => Response::bytes(200, data, "application/octet-stream"),
        Ok(Answer::Ok(Body::FileStream(_))) => Response::chunked("application/octet-stream"),
        // The reactor answers upgrades itself (it has the handshake key).
        Ok(Answer::Ok(b)) => Response::json(200, &body_json(b)),
        Ok(Answer::Created(Body::Empty)) if route.is_some_and(|r| r.ends_with("{path:.+}")) => {
            Response::bytes(201, Vec::new(), "application/json")
        }
        Ok(Answer::Created(b)) => Response::json(201, &body_json(b)),
        Ok(Answer::NoContent) => Response::no_content(),
        Err(e) => Response::error(&mapped(e)),
    }
    .with_route(route)
}

/// The HTTP answer for a lab reply to a GNS3 3.0 controller: 2.2's shapes
/// but for the version it reports.
pub fn render_v3(route: Option<&'static str>, reply: Reply) -> Response {
    match reply {
        Ok(Answer::Ok(Body::Version { local })) => {
            Response::json(200, &json!({"version": GNS3_3_VERSION, "local": local}))
                .with_route(route)
        }
        reply => render(route, reply),
    }
}

/// Only statuses the 2.2 controller maps: anything else is a 500 there.
pub(super) fn mapped(e: ApiError) -> ApiError {
    match e {
        ApiError::MethodNotAllowed { .. } => ApiError::NotFound(e.to_string()),
        ApiError::PayloadTooLarge { .. } | ApiError::HeadersTooLarge { .. } => {
            ApiError::BadRequest(e.to_string())
        }
        e => e,
    }
}

pub(super) fn body_json(b: Body) -> Value {
    match b {
        Body::Empty | Body::LiveCapture | Body::Upgrade(_) => json!({}),
        Body::Capabilities(version) => json!({
            "version": version,
            "platform": std::env::consts::OS,
            "node_types": NODE_TYPES,
        }),
        Body::Capabilities3(version, m) => json!({
            "version": version,
            "platform": std::env::consts::OS,
            "node_types": NODE_TYPES,
            "cpus": m.cpus,
            "memory": m.memory,
            "disk_size": m.disk_size,
        }),
        Body::Binaries(list) => crate::api::v1::binaries_json(&list),
        Body::QemuCapabilities(archs) => json!({"kvm": archs}),
        Body::Version { local } => json!({"version": GNS3_VERSION, "local": local}),
        Body::VersionChecked => json!({"version": GNS3_VERSION}),
        Body::Interfaces(names) => names
            .into_iter()
            .map(|n| json!({"id": n, "name": n}))
            .collect(),
        Body::InterfaceDetails(list) => list
            .into_iter()
            .map(|i| {
                json!({
                    "id": i.name, "name": i.name, "ip_address": i.ip_address,
                    "netmask": i.netmask, "mac_address": i.mac_address, "type": i.kind,
                    "special": i.name == "lo" || i.name.starts_with("veth"),
                })
            })
            .collect(),
        Body::Statistics(s) => json!({
            "memory_total": s.memory_total,
            "memory_free": s.memory_free,
            "memory_used": s.memory_used,
            "swap_total": s.swap_total,
            "swap_free": s.swap_free,
            "swap_used": s.swap_used,
            "cpu_usage_percent": s.cpu_usage_percent as i64,
            "memory_usage_percent": s.memory_usage_percent as i64,
            "swap_usage_percent": s.swap_usage_percent as i64,
            "disk_usage_percent": s.disk_usage_percent as i64,
            "load_average_percent": s.load_average_percent.map(|l| l as i64),
        }),
        Body::PortUse(p) => json!({
            "console_port_range": [p.console_range.0, p.console_range.1],
            "console_ports": p.console_ports,
            "udp_port_range": [p.udp_range.0, p.udp_range.1],
            "udp_ports": p.udp_ports,
        }),
        Body::FileList(files) => files
            .into_iter()
            .map(|(path, md5sum)| json!({"path": path, "md5sum": md5sum}))
            .collect(),
        Body::File(_) => json!({}),
        Body::Project(p) => project_json(&p),
        Body::Projects(list) => list.iter().map(project_json).collect(),
        Body::Vpcs(v) => vpcs_json(&v),
        Body::Qemu(v) => super::qemu::json(&v),
        Body::Docker(v) => super::docker::json(&v),
        Body::DockerImages(names) => names.iter().map(|n| json!({"image": n})).collect(),
        Body::Device(d) => device_json(&d),
        Body::Cloud(c) => cloud_json(&c),
        Body::Capture(path) => json!({"pcap_file_path": path.to_string_lossy()}),
        Body::Nio(Nio::Udp(n)) => {
            json!({"type": "nio_udp", "lport": n.lport, "rhost": n.rhost, "rport": n.rport})
        }
        Body::Nio(Nio::Tap(t)) => json!({"type": "nio_tap", "tap_device": t.device}),
        Body::Nio(Nio::Ethernet(e)) => json!({"type": e.kind, "ethernet_device": e.device}),
        Body::UdpPort(port) => json!({"udp_port": port}),
        Body::Images(list) => list
            .into_iter()
            .map(|i| {
                json!({"filename": i.name, "path": i.name, "md5sum": i.md5, "filesize": i.size})
            })
            .collect(),
        Body::Status(_) | Body::Backup(_) | Body::Restored(_) | Body::FileStream(_) => json!({}),
    }
}

pub(super) fn project_json(p: &ProjectView) -> Value {
    let variables = p
        .variables
        .as_deref()
        .and_then(|v| serde_json::from_str::<Value>(v).ok())
        .unwrap_or(Value::Null);
    json!({
        "project_id": p.id.to_string(),
        "name": p.name,
        "variables": variables,
    })
}

/// 2.2.61's VPCS object: exactly these eight keys (the controller keeps
/// any other key and sends it back in every update).
pub fn vpcs_json(v: &VpcsView) -> Value {
    json!({
        "name": v.name,
        "node_id": v.id.to_string(),
        "node_directory": v.directory.to_string_lossy(),
        "status": v.status,
        "console": if v.console_telnet { json!(v.console) } else { Value::Null },
        "console_type": if v.console_telnet { "telnet" } else { "none" },
        "project_id": v.project.to_string(),
        "command_line": v.command_line,
    })
}

/// A cloud as 2.2 and 3.0 show it: always started; its ports as given
/// (renumbered in order); no remote console.
pub fn cloud_json(c: &CloudView) -> Value {
    let ports: Vec<Value> = c
        .ports
        .iter()
        .map(|p| {
            let (kind, interface) = match &p.link {
                HostLink::Ethernet(i) => ("ethernet", i),
                HostLink::Tap(i) => ("tap", i),
            };
            json!({"name": p.name, "port_number": p.port_number, "type": kind, "interface": interface})
        })
        .collect();
    json!({
        "name": c.name,
        "node_id": c.id.to_string(),
        "project_id": c.project.to_string(),
        "ports_mapping": ports,
        "interfaces": c
            .interfaces
            .iter()
            .map(|(name, kind, special)| json!({"name": name, "type": kind, "special": special}))
            .collect::<Vec<_>>(),
        "remote_console_host": "",
        "remote_console_port": 0,
        "remote_console_type": "none",
        "remote_console_http_path": "/",
        "status": "started",
        "node_directory": "",
    })
}

/// 2.2.61's switch and hub objects: always started; a switch has no
/// console here (`console_type` none), a hub has no console keys.
pub fn device_json(d: &DeviceView) -> Value {
    let ports: Vec<Value> = d
        .mapping
        .iter()
        .map(|m| {
            let mut p = json!({"name": m.name, "port_number": m.port_number});
            if let Some((mode, vlan)) = m.vlan {
                p["type"] = json!(match mode {
                    VlanMode::Access => "access",
                    VlanMode::Dot1q => "dot1q",
                    VlanMode::Qinq => "qinq",
                });
                p["vlan"] = json!(vlan);
                if !m.ethertype.is_empty() {
                    p["ethertype"] = json!(m.ethertype);
                }
            }
            p
        })
        .collect();
    let mut v = json!({
        "name": d.name,
        "node_id": d.id.to_string(),
        "project_id": d.project.to_string(),
        "ports_mapping": ports,
        "status": "started",
    });
    if d.kind == DeviceType::Switch {
        v["console"] = Value::Null;
        v["console_type"] = json!("none");
    }
    v
}

/// A notification for the compute's websocket, as 2.2 words it: one JSON
/// text.
pub fn notification(n: &Notice<'_>) -> Option<String> {
    notification_in(Dialect::V2, n)
}

/// A notification as a GNS3 3.0 controller reads it: 2.2's, with
/// `disk_usage_percent` in every ping (its reader fails without it).
pub fn notification_v3(n: &Notice<'_>) -> Option<String> {
    notification_in(Dialect::V3, n)
}

fn notification_in(d: Dialect, n: &Notice<'_>) -> Option<String> {
    let v = match *n {
        Notice::Load(l) => {
            let mut event = json!({
                "cpu_usage_percent": l.cpu_usage_percent,
                "memory_usage_percent": l.memory_usage_percent,
            });
            if d == Dialect::V3 {
                event["disk_usage_percent"] = json!(l.disk_usage_percent);
            }
            json!({"action": "ping", "event": event})
        }
        Notice::NodeUpdated { project, node } => {
            let event = match node {
                Body::Vpcs(v) => vpcs_json(v),
                Body::Device(d) => device_json(d),
                Body::Cloud(c) => cloud_json(c),
                Body::Qemu(v) => super::qemu::json(v),
                Body::Docker(v) => super::docker::json(v),
                _ => return None,
            };
            json!({"action": "node.updated", "event": event, "project_id": project.to_string()})
        }
        Notice::Log {
            project,
            level,
            text,
        } => {
            let action = match level {
                LogLevel::Info => "log.info",
                LogLevel::Warning => "log.warning",
                LogLevel::Error => "log.error",
            };
            json!({"action": action, "event": {"message": text}, "project_id": project.to_string()})
        }
    };
    Some(v.to_string())
}
