//! The GNS3 2.2 compute front-end (`/v2/compute`): request → [`Command`],
//! lab answer → JSON in 2.2.61's shapes (no I/O).
//!
//! The GNS3 2.2 controller drives computes with these routes (see
//! `docs/API.md`). Node routes name the node type in the path (`vpcs`,
//! `ethernet_switch`, `ethernet_hub`). The console websocket and the pcap
//! stream need no credentials, as in 2.2 (the controller sends none
//! there). Only the statuses the controller maps are used: 405, 413 and
//! 431 become 404 and 400, since anything else turns into a 500 for the GUI.

use super::body::CaptureStart;
use super::command::{Command, DeviceType, NodeClass, NodeCommand, NodeCreate, NodeRef, PortAddr};
use super::routes::{Matched, Table, route_in};
use super::v1::Decoded;
use crate::error::ApiError;
use crate::proto::http::auth::Credentials;
use crate::proto::http::parse::{Method, Request};

/// Every `/v2/compute` route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/capabilities`
    Capabilities,
    /// `/version`
    Version,
    /// `/notifications/ws`
    Notifications,
    /// `/statistics`
    Statistics,
    /// `/network/interfaces`
    Interfaces,
    /// `/network/ports`
    Ports,
    /// `/projects`
    Projects,
    /// `/projects/{project_id}`
    Project,
    /// `/projects/{project_id}/close`
    ProjectClose,
    /// `/projects/{project_id}/ports/udp`
    UdpPort,
    /// `/projects/{project_id}/files`
    Files,
    /// `/projects/{project_id}/files/{path}`
    File,
    /// `/projects/{project_id}/{node_type}/nodes`
    Nodes,
    /// `.../nodes/{node_id}`
    Node,
    /// `.../start`
    Start,
    /// `.../stop`
    Stop,
    /// `.../reload`
    Reload,
    /// `.../suspend`
    Suspend,
    /// `.../console/reset`
    ConsoleReset,
    /// `.../console/ws`
    ConsoleWs,
    /// `.../duplicate`
    Duplicate,
    /// `.../adapters/{a}/ports/{p}/nio`
    Nio,
    /// `.../start_capture`
    StartCapture,
    /// `.../stop_capture`
    StopCapture,
    /// `.../pcap`
    Pcap,
}

use Method::{Delete, Get, Post, Put};

/// The compute routes under prefix `$p`, with the capture routes' last
/// segments (2.2: `start_capture`, `stop_capture`, `pcap`; 3.0:
/// `capture/start`, `capture/stop`, `capture/stream`).
macro_rules! compute_routes {
    ($p:literal, $start:literal, $stop:literal, $pcap:literal) => {
        &[
    (Route::Capabilities, concat!($p, "/capabilities"), &[Get]),
    (Route::Version, concat!($p, "/version"), &[Get]),
    (Route::Notifications, concat!($p, "/notifications/ws"), &[Get]),
    (Route::Statistics, concat!($p, "/statistics"), &[Get]),
    (Route::Interfaces, concat!($p, "/network/interfaces"), &[Get]),
    (Route::Ports, concat!($p, "/network/ports"), &[Get]),
    (Route::Projects, concat!($p, "/projects"), &[Post]),
    (
        Route::Project,
        concat!($p, "/projects/{project_id}"),
        &[Get, Put, Delete],
    ),
    (
        Route::ProjectClose,
        concat!($p, "/projects/{project_id}/close"),
        &[Post],
    ),
    (
        Route::UdpPort,
        concat!($p, "/projects/{project_id}/ports/udp"),
        &[Post],
    ),
    (
        Route::Files,
        concat!($p, "/projects/{project_id}/files"),
        &[Get],
    ),
    (
        Route::File,
        concat!($p, "/projects/{project_id}/files/{path:.+}"),
        &[Get, Post],
    ),
    (
        Route::Nodes,
        concat!($p, "/projects/{project_id}/{node_type}/nodes"),
        &[Post],
    ),
    (Route::Node, N, &[Get, Put, Delete]),
    (
        Route::Start,
        concat!($p, "/projects/{project_id}/{node_type}/nodes/{node_id}/start"),
        &[Post],
    ),
    (
        Route::Stop,
        concat!($p, "/projects/{project_id}/{node_type}/nodes/{node_id}/stop"),
        &[Post],
    ),
    (
        Route::Reload,
        concat!($p, "/projects/{project_id}/{node_type}/nodes/{node_id}/reload"),
        &[Post],
    ),
    (
        Route::Suspend,
        concat!($p, "/projects/{project_id}/{node_type}/nodes/{node_id}/suspend"),
        &[Post],
    ),
    (
        Route::ConsoleReset,
        concat!($p, "/projects/{project_id}/{node_type}/nodes/{node_id}/console/reset"),
        &[Post],
    ),
    (
        Route::ConsoleWs,
        concat!($p, "/projects/{project_id}/{node_type}/nodes/{node_id}/console/ws"),
        &[Get],
    ),
    (
        Route::Duplicate,
        concat!($p, "/projects/{project_id}/{node_type}/nodes/{node_id}/duplicate"),
        &[Post],
    ),
    (
        Route::Nio,
        concat!($p, r"/projects/{project_id}/{node_type}/nodes/{node_id}/adapters/{adapter_number:\d+}/ports/{port_number:\d+}/nio"),
        &[Post, Put, Delete],
    ),
    (
        Route::StartCapture,
        concat!($p, r"/projects/{project_id}/{node_type}/nodes/{node_id}/adapters/{adapter_number:\d+}/ports/{port_number:\d+}/", $start),
        &[Post],
    ),
    (
        Route::StopCapture,
        concat!($p, r"/projects/{project_id}/{node_type}/nodes/{node_id}/adapters/{adapter_number:\d+}/ports/{port_number:\d+}/", $stop),
        &[Post],
    ),
    (
        Route::Pcap,
        concat!($p, r"/projects/{project_id}/{node_type}/nodes/{node_id}/adapters/{adapter_number:\d+}/ports/{port_number:\d+}/", $pcap),
        &[Get],
    ),
]
    };
}

const N: &str = "/v2/compute/projects/{project_id}/{node_type}/nodes/{node_id}";
const PORT: &str = r"/v2/compute/projects/{project_id}/{node_type}/nodes/{node_id}/adapters/{adapter_number:\d+}/ports/{port_number:\d+}";

const TABLE: &Table<Route> =
    compute_routes!("/v2/compute", "start_capture", "stop_capture", "pcap");

const TABLE_V3: &Table<Route> = compute_routes!(
    "/v3/compute",
    "capture/start",
    "capture/stop",
    "capture/stream"
);

// The templates above spell out the node and port prefixes; these keep
// them honest.
const _: () = assert!(N.len() < PORT.len());

/// The newest GNS3 2.2 release nanolab is tested against: the default
/// `--gns3-version`, and what `GET /v2/compute/version` reports.
pub const GNS3_VERSION: &str = "2.2.61";

/// The newest GNS3 3.0 release nanolab is tested against: the default
/// `--gns3-3-version`, and what `GET /v3/compute/version` reports.
pub const GNS3_3_VERSION: &str = "3.0.6";

/// Which controller a compute request comes from: the routes, the keys it
/// sends, what it needs back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// GNS3 2.2 (`/v2/compute`).
    V2,
    /// GNS3 3.0 (`/v3/compute`): capture routes under `capture/`, node
    /// bodies with keys a compute does not use (`compute_id`, `builtin`,
    /// `usage`, ...), ignored; richer capabilities; `disk_usage_percent`
    /// in every ping.
    V3,
}

/// The node types this compute serves, as 2.2 names them.
pub const NODE_TYPES: [&str; 3] = ["vpcs", "ethernet_switch", "ethernet_hub"];

/// Decode a request: credentials (except where 2.2 needs none), route,
/// method, ids, body.
pub fn decode(req: &Request, auth: Option<&Credentials>) -> Decoded {
    decode_in(Dialect::V2, req, auth)
}

/// [`decode`] for a GNS3 3.0 controller (`/v3/compute`).
pub fn decode_v3(req: &Request, auth: Option<&Credentials>) -> Decoded {
    decode_in(Dialect::V3, req, auth)
}

fn decode_in(d: Dialect, req: &Request, auth: Option<&Credentials>) -> Decoded {
    let table = match d {
        Dialect::V2 => TABLE,
        Dialect::V3 => TABLE_V3,
    };
    let m = route_in(table, &req.method, &req.path);
    // Both exempt the console websocket (3.0 opens it with the
    // controller's own credentials, not the compute's); 2.2's pcap proxy
    // forwards the GUI's headers, while 3.0 sends the compute's.
    let exempt = match m.map(|m| m.route) {
        Some(Route::ConsoleWs) => true,
        Some(Route::Pcap) => d == Dialect::V2,
        _ => false,
    };
    if !exempt && auth.is_some_and(|c| !c.accepts(req.authorization.as_deref())) {
        return Decoded {
            route: None,
            command: Err(ApiError::Unauthorized),
        };
    }
    let Some(m) = m else {
        let e = ApiError::NotFound(format!(
            "Route {} doesn't exist on this compute: see docs/API.md for {}",
            req.path,
            match d {
                Dialect::V2 => "/v2/compute",
                Dialect::V3 => "/v3/compute",
            }
        ));
        return Decoded {
            route: None,
            command: Err(e),
        };
    };
    let command = if m.method_allowed {
        command(&m, req, d)
    } else {
        Err(ApiError::NotFound(format!(
            "{} {} not found: the route accepts {}",
            req.method.as_str(),
            req.path,
            m.methods
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    };
    Decoded {
        route: Some(m.template),
        command,
    }
}

fn command(m: &Matched<'_, Route>, req: &Request, d: Dialect) -> Result<Command, ApiError> {
    let raw = &req.body[..];
    let project = || project_id(m.params[0]);
    Ok(match (m.route, &req.method) {
        (Route::Capabilities, _) if d == Dialect::V3 => Command::Capabilities3,
        (Route::Capabilities, _) => Command::Capabilities,
        (Route::Version, _) => Command::Version,
        (Route::Notifications, _) => upgrade(req, Command::Notifications)?,
        (Route::Statistics, _) => Command::Statistics,
        (Route::Interfaces, _) => Command::InterfaceDetails,
        (Route::Ports, _) => Command::PortUse,
        (Route::Projects, _) => Command::CreateProject(project_create(raw)?),
        (Route::Project, Get) => Command::GetProject(project()?),
        (Route::Project, Put) => Command::UpdateProject(project()?, project_update(raw)?),
        (Route::Project, _) => Command::DeleteProject(project()?),
        (Route::ProjectClose, _) => Command::CloseProject(project()?),
        (Route::UdpPort, _) => Command::AllocateUdp(project()?),
        (Route::Files, _) => Command::ListFiles(project()?),
        (Route::File, Get) => Command::ReadFile(project()?, m.params[1].to_string()),
        (Route::File, _) => Command::WriteFile(project()?, m.params[1].to_string(), raw.to_vec()),
        (Route::Nodes, _) => {
            let p = project()?;
            let create = match node_class(m.params[1])? {
                (NodeClass::Vpcs, _) => NodeCreate::Vpcs(vpcs_create(raw, d)?),
                (_, kind) => NodeCreate::Device(device_create(raw, kind, d)?),
            };
            Command::CreateNode(p, create)
        }
        (Route::Node, Get) => node(m, NodeCommand::Get)?,
        (Route::Node, Put) => match node_class(m.params[1])? {
            (NodeClass::Vpcs, _) => node(m, NodeCommand::Update(vpcs_update(raw, d)?))?,
            (_, kind) => {
                let (name, mapping) = device_update(raw, kind, d)?;
                node(m, NodeCommand::UpdateMapping(name, mapping))?
            }
        },
        (Route::Node, _) => node(m, NodeCommand::Delete)?,
        (Route::Start, _) => node(m, vpcs_only(m, NodeCommand::Start)?)?,
        (Route::Stop, _) => node(m, vpcs_only(m, NodeCommand::Stop)?)?,
        (Route::Reload, _) => node(m, vpcs_only(m, NodeCommand::Reload)?)?,
        (Route::Suspend, _) => node(m, NodeCommand::Suspend)?,
        (Route::ConsoleReset, _) => node(m, vpcs_route(m, NodeCommand::ConsoleReset)?)?,
        (Route::ConsoleWs, _) => {
            upgrade(req, node(m, vpcs_route(m, NodeCommand::ConsoleSocket)?)?)?
        }
        (Route::Duplicate, _) => {
            let dest = duplicate(raw)?;
            node(m, vpcs_route(m, NodeCommand::Duplicate(dest))?)?
        }
        (Route::Nio, Post) => {
            let (nio, filters) = nio_with_filters(raw)?;
            node(m, NodeCommand::AttachNio(port_addr(m), nio, filters))?
        }
        (Route::Nio, Put) => {
            let (_, filters) = nio_with_filters(raw)?;
            node(m, NodeCommand::SetFilters(port_addr(m), filters))?
        }
        (Route::Nio, _) => node(m, NodeCommand::RemoveNio(port_addr(m)))?,
        (Route::StartCapture, _) => node(
            m,
            NodeCommand::StartCapture(port_addr(m), CaptureStart::parse(raw)?),
        )?,
        (Route::StopCapture, _) => node(m, NodeCommand::StopCapture(port_addr(m)))?,
        (Route::Pcap, _) => node(m, NodeCommand::WatchCapture(port_addr(m)))?,
    })
}

/// A websocket route needs a websocket handshake.
fn upgrade(req: &Request, cmd: Command) -> Result<Command, ApiError> {
    let Some(key) = &req.websocket_key else {
        return Err(ApiError::bad(format!(
            "{} is a websocket: send a GET with 'Upgrade: websocket' and 'Sec-WebSocket-Key'",
            req.path
        )));
    };
    crate::proto::websocket::check_handshake(key, req.websocket_version.as_deref())?;
    Ok(cmd)
}

fn project_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(raw)
        .map_err(|_| ApiError::bad(format!("Project ID {raw} is not a valid UUID")))
}

/// The class and device type of a `{node_type}`.
fn node_class(raw: &str) -> Result<(NodeClass, DeviceType), ApiError> {
    match raw {
        "vpcs" => Ok((NodeClass::Vpcs, DeviceType::Switch)),
        "ethernet_switch" => Ok((NodeClass::Device, DeviceType::Switch)),
        "ethernet_hub" => Ok((NodeClass::Device, DeviceType::Hub)),
        other => Err(ApiError::NotFound(format!(
            "Node type {other} is not served by nanolab (it serves {})",
            NODE_TYPES.join(", ")
        ))),
    }
}

fn node(m: &Matched<'_, Route>, cmd: NodeCommand) -> Result<Command, ApiError> {
    let (class, _) = node_class(m.params[1])?;
    let raw = m.params[2];
    let node = uuid::Uuid::parse_str(raw)
        .map_err(|_| ApiError::bad(format!("Node ID {raw} is not a valid UUID")))?;
    Ok(Command::Node(
        NodeRef {
            project: project_id(m.params[0])?,
            node,
            class,
        },
        cmd,
    ))
}

/// Start, stop and reload run a VPCS; a switch or hub always runs, and
/// 2.2 answers them with a 204 that does nothing.
fn vpcs_only(m: &Matched<'_, Route>, cmd: NodeCommand) -> Result<NodeCommand, ApiError> {
    Ok(match node_class(m.params[1])? {
        (NodeClass::Vpcs, _) => cmd,
        _ if m.route == Route::Reload => return Err(not_here(m)),
        _ => NodeCommand::Suspend,
    })
}

/// A route 2.2 serves for VPCS only.
fn vpcs_route(m: &Matched<'_, Route>, cmd: NodeCommand) -> Result<NodeCommand, ApiError> {
    match node_class(m.params[1])? {
        (NodeClass::Vpcs, _) => Ok(cmd),
        _ => Err(not_here(m)),
    }
}

fn not_here(m: &Matched<'_, Route>) -> ApiError {
    ApiError::NotFound(format!(
        "{} has no such route ({})",
        m.params[1], m.template
    ))
}

fn port_addr(m: &Matched<'_, Route>) -> PortAddr {
    // Digits only (the template says so); too large is a port that does not exist.
    let n = |raw: &str| raw.parse::<u32>().unwrap_or(u32::MAX);
    PortAddr {
        adapter: n(m.params[3]),
        port: n(m.params[4]),
    }
}

mod bodies;
mod render;

use bodies::*;
pub use render::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::answer::{Body, VpcsView};
    use crate::api::command::VlanMode;
    use crate::proto::http::parse::test_request;
    use serde_json::Value;

    fn req(method: &str, path: &str, body: &str, extra: &str) -> Request {
        test_request(method, path, extra, body)
    }

    const P: &str = "42f9feee-3217-4104-981e-85d5f0a806ec";
    const V: &str = "1b29e1b6-8d3a-4a4b-9d2c-5a6f7e8d9c0b";

    fn cmd(method: &str, path: &str, body: &str) -> Result<Command, ApiError> {
        decode(&req(method, path, body, ""), None).command
    }

    #[test]
    fn node_routes_name_their_type() {
        let base = format!("/v2/compute/projects/{P}");
        let Ok(Command::Node(r, NodeCommand::Start)) =
            cmd("POST", &format!("{base}/vpcs/nodes/{V}/start"), "")
        else {
            panic!()
        };
        assert_eq!((r.class, r.node.to_string()), (NodeClass::Vpcs, V.into()));
        // Starting a switch does nothing, as in 2.2.
        let c = cmd(
            "POST",
            &format!("{base}/ethernet_switch/nodes/{V}/start"),
            "",
        );
        assert!(
            matches!(c, Ok(Command::Node(_, NodeCommand::Suspend))),
            "{c:?}"
        );
        let e = cmd("POST", &format!("{base}/qemu/nodes/{V}/start"), "").unwrap_err();
        assert_eq!(e.status(), 404);
        let c = cmd(
            "POST",
            &format!("{base}/vpcs/nodes/{V}/adapters/0/ports/0/nio"),
            r#"{"type":"nio_udp","lport":20000,"rhost":"127.0.0.1","rport":20001,
               "filters":{"delay":[100,10],"bpf":["icmp\nudp port 53"]},"suspend":false}"#,
        );
        let Ok(Command::Node(_, NodeCommand::AttachNio(at, _, f))) = c else {
            panic!("{c:?}")
        };
        assert_eq!((at.adapter, at.port), (0, 0));
        assert_eq!(f.delay, Some((100, 10)));
        assert_eq!(f.bpf, ["icmp\nudp port 53"]);
        let c = cmd(
            "PUT",
            &format!("{base}/vpcs/nodes/{V}/adapters/0/ports/0/nio"),
            r#"{"type":"nio_udp","lport":20000,"rhost":"127.0.0.1","rport":20001,
               "filters":{"frequency_drop":[-1]},"suspend":true}"#,
        );
        let Ok(Command::Node(_, NodeCommand::SetFilters(_, f))) = c else {
            panic!("{c:?}")
        };
        assert!(f.suspend && f.frequency_drop == Some(-1));
    }

    #[test]
    fn bodies_follow_2_2_schemas() {
        let base = format!("/v2/compute/projects/{P}");
        let c = cmd(
            "POST",
            &format!("{base}/vpcs/nodes"),
            &format!(r#"{{"name":"PC1","node_id":"{V}","console":5000,"console_type":"telnet"}}"#),
        );
        let Ok(Command::CreateNode(_, NodeCreate::Vpcs(b))) = c else {
            panic!("{c:?}")
        };
        assert!(b.console_pick && b.console_telnet);
        assert_eq!(
            (b.vm_id.unwrap().to_string(), b.console),
            (V.into(), Some(5000))
        );
        let e = cmd(
            "POST",
            &format!("{base}/vpcs/nodes"),
            r#"{"name":"x","vm_id":1}"#,
        );
        assert_eq!(e.unwrap_err().status(), 400);
        let c = cmd(
            "POST",
            &format!("{base}/ethernet_switch/nodes"),
            r#"{"name":"SW1"}"#,
        );
        let Ok(Command::CreateNode(_, NodeCreate::Device(d))) = c else {
            panic!("{c:?}")
        };
        let m = d.mapping.unwrap();
        assert_eq!(m.len(), 8);
        assert_eq!(
            (m[7].name.as_str(), m[7].vlan),
            ("Ethernet7", Some((VlanMode::Access, 1)))
        );
        let e = cmd(
            "POST",
            &format!("{base}/vpcs/nodes/{V}/adapters/0/ports/0/nio"),
            r#"{"type":"nio_udp","lport":1,"rhost":"127.0.0.1","rport":2,"filters":{"x":[1]}}"#,
        );
        assert!(e.unwrap_err().to_string().contains("Unknown filter 'x'"));
        let c = cmd(
            "POST",
            "/v2/compute/projects",
            &format!(
                r#"{{"name":"lab","project_id":"{P}","variables":[{{"name":"a","value":"1"}}]}}"#
            ),
        );
        let Ok(Command::CreateProject(p)) = c else {
            panic!("{c:?}")
        };
        assert_eq!(
            p.variables.as_deref(),
            Some(r#"[{"name":"a","value":"1"}]"#)
        );
    }

    #[test]
    fn auth_spares_the_console_websocket_and_the_pcap_stream() {
        let creds = Credentials::new("u", "p");
        let d = decode(
            &req("GET", "/v2/compute/capabilities", "", ""),
            Some(&creds),
        );
        assert_eq!(d.command.unwrap_err(), ApiError::Unauthorized);
        let pcap = format!("/v2/compute/projects/{P}/vpcs/nodes/{V}/adapters/0/ports/0/pcap");
        assert!(
            decode(&req("GET", &pcap, "", ""), Some(&creds))
                .command
                .is_ok()
        );
        let ws = format!("/v2/compute/projects/{P}/vpcs/nodes/{V}/console/ws");
        let hs = "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
        assert!(
            decode(&req("GET", &ws, "", hs), Some(&creds))
                .command
                .is_ok()
        );
        // A websocket route without the handshake is a 400.
        assert_eq!(
            decode(&req("GET", &ws, "", ""), None)
                .command
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn only_statuses_the_controller_maps() {
        let d = decode(&req("DELETE", "/v2/compute/capabilities", "", ""), None);
        assert_eq!(d.command.unwrap_err().status(), 404);
        let r = render(None, Err(ApiError::PayloadTooLarge { limit: 1, size: 2 }));
        assert_eq!(r.status, 400);
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert!(v["message"].is_string());
    }

    #[test]
    fn node_objects_have_exactly_2_2_keys() {
        let v = VpcsView {
            id: uuid::Uuid::nil(),
            project: uuid::Uuid::nil(),
            name: "PC1".into(),
            console: 5000,
            startup_script: None,
            startup_script_path: None,
            status: "started",
            console_telnet: true,
            directory: "/p/project-files/vpcs/x".into(),
            command_line: String::new(),
        };
        let j = vpcs_json(&v);
        let mut keys: Vec<&str> = j.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "command_line",
                "console",
                "console_type",
                "name",
                "node_directory",
                "node_id",
                "project_id",
                "status"
            ]
        );
        let caps = body_json(Body::Capabilities("2.2.61-nanolab.0.1.0".into()));
        let mut keys: Vec<&str> = caps
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        keys.sort();
        assert_eq!(keys, ["node_types", "platform", "version"]);
    }

    fn cmd3(method: &str, path: &str, body: &str) -> Result<Command, ApiError> {
        decode_v3(&req(method, path, body, ""), None).command
    }

    #[test]
    fn v3_capture_routes_live_under_capture() {
        let port = format!("/v3/compute/projects/{P}/vpcs/nodes/{V}/adapters/0/ports/0");
        let body = r#"{"capture_file_name": "a.pcap", "data_link_type": "DLT_EN10MB"}"#;
        assert!(matches!(
            cmd3("POST", &format!("{port}/capture/start"), body),
            Ok(Command::Node(_, NodeCommand::StartCapture(..)))
        ));
        assert!(matches!(
            cmd3("POST", &format!("{port}/capture/stop"), ""),
            Ok(Command::Node(_, NodeCommand::StopCapture(_)))
        ));
        assert!(matches!(
            cmd3("GET", &format!("{port}/capture/stream"), ""),
            Ok(Command::Node(_, NodeCommand::WatchCapture(_)))
        ));
        // 2.2's names are gone in 3.0, and 3.0's are not 2.2's.
        let e = cmd3("POST", &format!("{port}/start_capture"), body).unwrap_err();
        assert!(e.to_string().contains("/v3/compute"), "{e}");
        let v2port = port.replace("/v3/", "/v2/");
        assert!(cmd("POST", &format!("{v2port}/capture/start"), body).is_err());
        assert!(matches!(
            cmd3("GET", "/v3/compute/capabilities", ""),
            Ok(Command::Capabilities3)
        ));
    }

    #[test]
    fn v3_node_bodies_drop_the_keys_a_compute_does_not_use() {
        let body = format!(
            r#"{{"name": "PC1", "node_id": "{V}", "compute_id": "{P}", "builtin": true, "usage": "", "startup_script": "ip 10.0.0.1"}}"#
        );
        let Ok(Command::CreateNode(_, NodeCreate::Vpcs(b))) = cmd3(
            "POST",
            &format!("/v3/compute/projects/{P}/vpcs/nodes"),
            &body,
        ) else {
            panic!("refused");
        };
        assert_eq!(b.name, "PC1");
        assert_eq!(b.startup_script.as_deref(), Some("ip 10.0.0.1"));
        // 2.2 refuses what it does not know; 3.0 still checks what it knows.
        let e = cmd(
            "POST",
            &format!("/v2/compute/projects/{P}/vpcs/nodes"),
            &body,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("Unknown property"), "{e}");
        let bad = format!(r#"{{"name": 5, "node_id": "{V}", "compute_id": "{P}"}}"#);
        let e = cmd3(
            "POST",
            &format!("/v3/compute/projects/{P}/vpcs/nodes"),
            &bad,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "Field 'name' must be a string, not a number");
        let sw = r#"{"name": "SW1", "compute_id": "x", "builtin": true, "console_type": "none"}"#;
        assert!(matches!(
            cmd3(
                "POST",
                &format!("/v3/compute/projects/{P}/ethernet_switch/nodes"),
                sw
            ),
            Ok(Command::CreateNode(_, NodeCreate::Device(_)))
        ));
    }

    #[test]
    fn v3_asks_credentials_for_the_capture_stream_not_the_console() {
        let creds = Credentials::new("u", "p");
        let n = format!("/v3/compute/projects/{P}/vpcs/nodes/{V}");
        let stream = format!("{n}/adapters/0/ports/0/capture/stream");
        let d = decode_v3(&req("GET", &stream, "", ""), Some(&creds));
        assert_eq!(d.command.unwrap_err(), ApiError::Unauthorized);
        let ws = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
        let d = decode_v3(
            &req("GET", &format!("{n}/console/ws"), "", ws),
            Some(&creds),
        );
        assert!(
            !matches!(d.command, Err(ApiError::Unauthorized)),
            "{:?}",
            d.command
        );
    }

    #[test]
    fn v3_capabilities_and_pings_say_what_3_0_reads() {
        use crate::api::answer::{Load, Machine, Notice};
        let m = Machine {
            cpus: 2,
            memory: 1 << 30,
            disk_size: 1 << 34,
        };
        let caps = body_json(Body::Capabilities3("3.0.6+nanolab.0.1.0".into(), m));
        assert_eq!(caps["version"], "3.0.6+nanolab.0.1.0");
        assert_eq!(
            (caps["cpus"].as_u64(), caps["disk_size"].as_u64()),
            (Some(2), Some(1 << 34))
        );
        let load = Load {
            cpu_usage_percent: 1.0,
            memory_usage_percent: 2.0,
            disk_usage_percent: 3.0,
        };
        let v3: Value =
            serde_json::from_str(&notification_v3(&Notice::Load(&load)).unwrap()).unwrap();
        assert_eq!(v3["event"]["disk_usage_percent"], 3.0);
        let v2: Value = serde_json::from_str(&notification(&Notice::Load(&load)).unwrap()).unwrap();
        assert!(v2["event"].get("disk_usage_percent").is_none());
    }
}
