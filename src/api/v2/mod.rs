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
    /// `/qemu/binaries` (2.2 only)
    QemuBinaries,
    /// `/qemu/img-binaries` (2.2 only)
    QemuImgBinaries,
    /// `/qemu/capabilities`
    QemuCapabilities,
    /// `/qemu/images`
    QemuImages,
    /// `/qemu/images/{filename}`
    QemuImage,
    /// `/docker/images`
    DockerImages,
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
    /// `.../resume`
    Resume,
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
    (Route::QemuBinaries, concat!($p, "/qemu/binaries"), &[Get]),
    (Route::QemuImgBinaries, concat!($p, "/qemu/img-binaries"), &[Get]),
    (Route::QemuCapabilities, concat!($p, "/qemu/capabilities"), &[Get]),
    (Route::QemuImages, concat!($p, "/qemu/images"), &[Get]),
    (Route::QemuImage, concat!($p, "/qemu/images/{filename:.+}"), &[Get, Post]),
    (Route::DockerImages, concat!($p, "/docker/images"), &[Get]),
    (Route::Projects, concat!($p, "/projects"), &[Get, Post]),
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
    (
        Route::Node,
        concat!($p, "/projects/{project_id}/{node_type}/nodes/{node_id}"),
        &[Get, Put, Delete],
    ),
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
        Route::Resume,
        concat!($p, "/projects/{project_id}/{node_type}/nodes/{node_id}/resume"),
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

const TABLE: &Table<Route> =
    compute_routes!("/v2/compute", "start_capture", "stop_capture", "pcap");

const TABLE_V3: &Table<Route> = compute_routes!(
    "/v3/compute",
    "capture/start",
    "capture/stop",
    "capture/stream"
);

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

/// A path segment percent-decoded (the controllers quote image names).
fn unquote(s: &str) -> Result<String, ApiError> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::bad(format!("'{s}' is not UTF-8 once decoded")))
}

/// The node types this compute serves, as 2.2 names them.
pub const NODE_TYPES: [&str; 6] = [
    "vpcs",
    "ethernet_switch",
    "ethernet_hub",
    "cloud",
    "qemu",
    "docker",
];

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
        (Route::QemuBinaries | Route::QemuImgBinaries, _) if d == Dialect::V3 => {
            return Err(ApiError::NotFound(format!(
                "Route {} doesn't exist on this compute: GNS3 3.0 lists no QEMU programs",
                req.path
            )));
        }
        (Route::QemuBinaries, _) => Command::QemuBinaries {
            img: false,
            archs: qemu_archs(raw)?,
        },
        (Route::QemuImgBinaries, _) => Command::QemuBinaries {
            img: true,
            archs: None,
        },
        (Route::QemuCapabilities, _) => Command::QemuCapabilities,
        (Route::QemuImages, _) => Command::Images,
        (Route::QemuImage, Get) => Command::DownloadImage(unquote(m.params[0])?),
        (Route::QemuImage, _) => Command::UploadImage(unquote(m.params[0])?),
        (Route::DockerImages, _) => Command::DockerImages,
        (Route::Projects, Get) => Command::ListProjects,
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
                (NodeClass::Cloud, _) => NodeCreate::Cloud(cloud_create(raw, d)?),
                (NodeClass::Qemu, _) => NodeCreate::Qemu(Box::new(qemu::create(raw, d)?)),
                (NodeClass::Docker, _) => NodeCreate::Docker(Box::new(docker::create(raw, d)?)),
                (_, kind) => NodeCreate::Device(device_create(raw, kind, d)?),
            };
            Command::CreateNode(p, create)
        }
        (Route::Node, Get) => node(m, NodeCommand::Get)?,
        (Route::Node, Put) => match node_class(m.params[1])? {
            (NodeClass::Vpcs, _) => node(m, NodeCommand::Update(vpcs_update(raw, d)?))?,
            (NodeClass::Qemu, _) => {
                node(m, NodeCommand::UpdateQemu(Box::new(qemu::update(raw, d)?)))?
            }
            (NodeClass::Docker, _) => node(
                m,
                NodeCommand::UpdateDocker(Box::new(docker::update(raw, d)?)),
            )?,
            (NodeClass::Cloud, _) => {
                let (name, ports) = cloud_update(raw, d)?;
                node(m, NodeCommand::UpdateCloud(name, ports))?
            }
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
        (Route::Resume, _) => node(m, vpcs_only(m, NodeCommand::Resume)?)?,
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
        "cloud" => Ok((NodeClass::Cloud, DeviceType::Hub)),
        "qemu" => Ok((NodeClass::Qemu, DeviceType::Hub)),
        "docker" => Ok((NodeClass::Docker, DeviceType::Hub)),
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
        (NodeClass::Vpcs | NodeClass::Qemu | NodeClass::Docker, _) => cmd,
        _ if m.route == Route::Reload => return Err(not_here(m)),
        _ => NodeCommand::Suspend,
    })
}

/// A route 2.2 serves for VPCS only.
fn vpcs_route(m: &Matched<'_, Route>, cmd: NodeCommand) -> Result<NodeCommand, ApiError> {
    match (node_class(m.params[1])?, &cmd) {
        ((NodeClass::Qemu, _), NodeCommand::Duplicate(_)) => Err(not_here(m)),
        ((NodeClass::Vpcs | NodeClass::Qemu | NodeClass::Docker, _), _) => Ok(cmd),
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
mod docker;
mod qemu;
mod render;

use bodies::*;
pub use render::*;

#[cfg(test)]
mod tests;
