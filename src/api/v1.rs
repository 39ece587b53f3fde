//! The GNS3 1.3 front-end (`/v1`): request → [`Command`], lab answer → JSON
//! in 1.3's shapes (no I/O).
//!
//! Everything version-specific lives here: route templates (`X-Route`),
//! `vm_id` for a node's id, status codes per answer. A later `/v2/compute`
//! front-end produces the same commands from its own shapes.

use super::answer::{Answer, Body, DeviceView, Nio, ProjectView, Reply, VpcsView};
use super::body::{
    self, CaptureStart, DeviceCreate, DeviceNio, DeviceUpdate, ProjectCreate, ProjectUpdate,
    VersionCheck, VmCreate, VmUpdate,
};
use super::command::{
    Command, DeviceType, NodeClass, NodeCommand, NodeCreate, NodeRef, PortAddr, VlanMode,
};
use super::routes::{self, Matched, Route};
use crate::error::ApiError;
use crate::proto::http::auth::Credentials;
use crate::proto::http::parse::{Method, Request};
use crate::proto::http::response::Response;
use serde_json::{Value, json};

/// A request decoded: the route template it matched (for `X-Route`) and the
/// command, or the error to answer with.
#[derive(Debug)]
pub struct Decoded {
    /// The matched route template, if any route matched.
    pub route: Option<&'static str>,
    /// The command to run, or why there is none.
    pub command: Result<Command, ApiError>,
}

/// Decode a request: credentials, route, method, ids, body.
pub fn decode(req: &Request, auth: Option<&Credentials>) -> Decoded {
    if auth.is_some_and(|c| !c.accepts(req.authorization.as_deref())) {
        return Decoded {
            route: None,
            command: Err(ApiError::Unauthorized),
        };
    }
    let Some(m) = routes::route(&req.method, &req.path) else {
        let hint = if req.path.starts_with("/v1/") {
            "see docs/API.md for the routes"
        } else {
            "API routes start with /v1/, for example GET /v1/version"
        };
        let e = ApiError::NotFound(format!("Route {} doesn't exist: {hint}", req.path));
        return Decoded {
            route: None,
            command: Err(e),
        };
    };
    let command = if m.method_allowed {
        inject_panic(&req.path);
        command(&m, &req.method, &req.body)
    } else {
        Err(ApiError::MethodNotAllowed {
            method: req.method.as_str().to_string(),
            route: m.template,
            allowed: m
                .methods
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
    };
    Decoded {
        route: Some(m.template),
        command,
    }
}

/// Fault injection for the tests, in debug builds only: a request for the
/// path in `NANOLAB_TEST_PANIC_PATH` panics while it is handled.
fn inject_panic(path: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os("NANOLAB_TEST_PANIC_PATH").is_some_and(|p| p == path) {
        panic!("injected panic for {path}");
    }
    let _ = path;
}

fn command(m: &Matched<'_>, method: &Method, raw: &[u8]) -> Result<Command, ApiError> {
    use Method::{Get, Put};
    let project = || body::parse_uuid("project_id", m.project());
    Ok(match (m.route, method) {
        (Route::Version, Get) => Command::Version,
        (Route::Version, _) => Command::CheckVersion(VersionCheck::parse(raw)?.version),
        (Route::Interfaces, _) => Command::Interfaces,
        (Route::QemuBinaries, _) => Command::QemuBinaries {
            img: false,
            archs: None,
        },
        (Route::ConfigReload, _) => Command::ReloadConfig,
        (Route::Shutdown, _) => Command::Shutdown,
        (Route::Projects, _) => Command::CreateProject(ProjectCreate::parse(raw)?),
        (Route::Project, Get) => Command::GetProject(project()?),
        (Route::Project, Put) => Command::UpdateProject(project()?, ProjectUpdate::parse(raw)?),
        (Route::Project, _) => Command::DeleteProject(project()?),
        (Route::ProjectCommit, _) => empty_then(raw, Command::CommitProject(project()?))?,
        (Route::ProjectClose, _) => empty_then(raw, Command::CloseProject(project()?))?,
        (Route::UdpPort, _) => empty_then(raw, Command::AllocateUdp(project()?))?,
        (Route::Vms, _) => Command::CreateNode(project()?, NodeCreate::Vpcs(VmCreate::parse(raw)?)),
        (Route::Devices, _) => {
            Command::CreateNode(project()?, NodeCreate::Device(DeviceCreate::parse(raw)?))
        }
        (Route::Device, Get) => device(m, NodeCommand::Get)?,
        (Route::Device, Put) => device(m, NodeCommand::UpdateDevice(DeviceUpdate::parse(raw)?))?,
        (Route::Device, _) => device(m, NodeCommand::Delete)?,
        (Route::DeviceNio, Method::Post) => {
            let b = DeviceNio::parse(raw)?;
            device(
                m,
                NodeCommand::AddDeviceNio(port_number(m.adapter()), b.nio, b.settings),
            )?
        }
        (Route::VmStartCapture, _) => node(
            m,
            NodeCommand::StartCapture(port_addr(m)?, CaptureStart::parse(raw)?),
        )?,
        (Route::VmStopCapture, _) => {
            node(m, empty_then(raw, NodeCommand::StopCapture(port_addr(m)?))?)?
        }
        (Route::VmPcap, _) => node(m, NodeCommand::WatchCapture(port_addr(m)?))?,
        (Route::DevicePcap, _) => device(m, NodeCommand::WatchCapture(device_port(m)))?,
        (Route::DeviceStartCapture, _) => device(
            m,
            NodeCommand::StartCapture(device_port(m), CaptureStart::parse(raw)?),
        )?,
        (Route::DeviceStopCapture, _) => device(
            m,
            empty_then(raw, NodeCommand::StopCapture(device_port(m)))?,
        )?,
        (Route::DeviceNio, _) => device(
            m,
            NodeCommand::RemoveNio(PortAddr {
                adapter: 0,
                port: port_number(m.adapter()),
            }),
        )?,
        (Route::Vm, Get) => node(m, NodeCommand::Get)?,
        (Route::Vm, Put) => node(m, NodeCommand::Update(VmUpdate::parse(raw)?))?,
        (Route::Vm, _) => node(m, NodeCommand::Delete)?,
        (Route::VmStart, _) => node(m, empty_then(raw, NodeCommand::Start)?)?,
        (Route::VmStop, _) => node(m, empty_then(raw, NodeCommand::Stop)?)?,
        (Route::VmReload, _) => node(m, empty_then(raw, NodeCommand::Reload)?)?,
        (Route::VmNio, Method::Post) => {
            let at = port_addr(m)?;
            node(m, NodeCommand::AddNio(at, Nio::parse(raw)?))?
        }
        (Route::VmNio, _) => node(m, NodeCommand::RemoveNio(port_addr(m)?))?,
        (Route::QemuVms, _) => Command::CreateNode(
            project()?,
            NodeCreate::Qemu(Box::new(body::qemu::create(raw)?)),
        ),
        (Route::QemuVm, Get) => qemu(m, NodeCommand::Get)?,
        (Route::QemuVm, Put) => qemu(
            m,
            NodeCommand::UpdateQemu(Box::new(body::qemu::update(raw)?)),
        )?,
        (Route::QemuVm, _) => qemu(m, NodeCommand::Delete)?,
        (Route::QemuStart, _) => qemu(m, empty_then(raw, NodeCommand::Start)?)?,
        (Route::QemuStop, _) => qemu(m, empty_then(raw, NodeCommand::Stop)?)?,
        (Route::QemuSuspend, _) => qemu(m, empty_then(raw, NodeCommand::Suspend)?)?,
        (Route::QemuResume, _) => qemu(m, empty_then(raw, NodeCommand::Resume)?)?,
        (Route::QemuReload, _) => qemu(m, empty_then(raw, NodeCommand::Reload)?)?,
        (Route::QemuNio, Method::Post) => {
            let at = port_addr(m)?;
            qemu(m, NodeCommand::AddNio(at, Nio::parse_for(raw, "QEMU")?))?
        }
        (Route::QemuNio, _) => qemu(m, NodeCommand::RemoveNio(port_addr(m)?))?,
        (Route::QemuStartCapture, _) => qemu(
            m,
            NodeCommand::StartCapture(port_addr(m)?, CaptureStart::parse(raw)?),
        )?,
        (Route::QemuStopCapture, _) => {
            qemu(m, empty_then(raw, NodeCommand::StopCapture(port_addr(m)?))?)?
        }
    })
}

/// A command whose body must be empty or `{}`.
fn empty_then<T>(raw: &[u8], then: T) -> Result<T, ApiError> {
    body::empty(raw)?;
    Ok(then)
}

fn node(m: &Matched<'_>, cmd: NodeCommand) -> Result<Command, ApiError> {
    let r = NodeRef {
        project: body::parse_uuid("project_id", m.project())?,
        node: body::parse_uuid("vm_id", m.vm())?,
        class: NodeClass::Vpcs,
    };
    Ok(Command::Node(r, cmd))
}

fn qemu(m: &Matched<'_>, cmd: NodeCommand) -> Result<Command, ApiError> {
    let r = NodeRef {
        project: body::parse_uuid("project_id", m.project())?,
        node: body::parse_uuid("vm_id", m.vm())?,
        class: NodeClass::Qemu,
    };
    Ok(Command::Node(r, cmd))
}

fn device(m: &Matched<'_>, cmd: NodeCommand) -> Result<Command, ApiError> {
    let r = NodeRef {
        project: body::parse_uuid("project_id", m.project())?,
        node: body::parse_uuid("device_id", m.vm())?,
        class: NodeClass::Device,
    };
    Ok(Command::Node(r, cmd))
}

/// A device's `{port_number}` (the third capture of its routes).
fn device_port(m: &Matched<'_>) -> PortAddr {
    PortAddr {
        adapter: 0,
        port: port_number(m.adapter()),
    }
}

/// Digits only (the route says so); too large for a port is a port that
/// does not exist.
fn port_number(raw: &str) -> u32 {
    raw.parse::<u32>().unwrap_or(u32::MAX)
}

fn port_addr(m: &Matched<'_>) -> Result<PortAddr, ApiError> {
    let number = |what: &str, raw: &str| {
        raw.parse::<u32>().map_err(|_| {
            ApiError::bad(format!(
                "{what} number '{raw}' is not a non-negative integer"
            ))
        })
    };
    Ok(PortAddr {
        adapter: number("Adapter", m.adapter())?,
        port: number("Port", m.port())?,
    })
}

/// The HTTP answer for a lab reply, in 1.3's shapes, with its `X-Route`.
pub fn render(route: Option<&'static str>, reply: Reply) -> Response {
    match reply {
        Ok(Answer::Ok(Body::LiveCapture)) => Response::chunked("application/vnd.tcpdump.pcap"),
        Ok(Answer::Ok(b)) => Response::json(200, &body_json(b)),
        Ok(Answer::Created(b)) => Response::json(201, &body_json(b)),
        Ok(Answer::NoContent) => Response::no_content(),
        Err(e) => Response::error(&e),
    }
    .with_route(route)
}

fn body_json(b: Body) -> Value {
    match b {
        Body::Empty => json!({}),
        Body::Version { local } => version_json(local),
        Body::VersionChecked => json!({"version": super::API_VERSION}),
        Body::Interfaces(names) => names
            .into_iter()
            .map(|n| json!({"id": n, "name": n}))
            .collect(),
        Body::Project(p) => project_json(&p),
        Body::Vpcs(v) => vpcs_json(&v),
        Body::Qemu(v) => qemu_json(&v),
        Body::Device(d) => device_json(&d),
        Body::Capture(path) => json!({"pcap_file_path": path.to_string_lossy()}),
        Body::Binaries(list) => binaries_json(&list),
        Body::LiveCapture => json!({}),
        Body::Nio(Nio::Udp(n)) => {
            json!({"type": "nio_udp", "lport": n.lport, "rhost": n.rhost, "rport": n.rport})
        }
        Body::Nio(Nio::Tap(t)) => json!({"type": "nio_tap", "tap_device": t.device}),
        Body::Nio(Nio::Ethernet(e)) => json!({"type": e.kind, "ethernet_device": e.device}),
        Body::UdpPort(port) => json!({"udp_port": port}),
        // Answers to other front-ends' commands, which `/v1` never asks.
        Body::Status(_)
        | Body::Backup(_)
        | Body::Images(_)
        | Body::Projects(_)
        | Body::FileStream(_)
        | Body::Restored(_)
        | Body::InterfaceDetails(_)
        | Body::Statistics(_)
        | Body::PortUse(_)
        | Body::Capabilities(_)
        | Body::Capabilities3(..)
        | Body::QemuCapabilities(_)
        | Body::Cloud(_)
        | Body::Docker(_)
        | Body::DockerImages(_)
        | Body::FileList(_)
        | Body::File(_)
        | Body::Upgrade(_) => json!({}),
    }
}

/// A QEMU VM in 1.3.13's shape: its 19 keys, always all of them.
pub(crate) fn qemu_json(v: &crate::lab::answer::QemuView) -> Value {
    let c = &v.config;
    json!({
        "vm_id": v.id.to_string(), "project_id": v.project.to_string(), "name": v.name,
        "qemu_path": c.qemu_path,
        "hda_disk_image": c.hda, "hdb_disk_image": c.hdb,
        "hdc_disk_image": c.hdc, "hdd_disk_image": c.hdd,
        "ram": c.ram, "adapters": c.adapters, "adapter_type": c.adapter_type,
        "console": v.console,
        "initrd": c.initrd, "kernel_image": c.kernel_image,
        "kernel_command_line": c.kernel_command_line,
        "legacy_networking": c.legacy_networking,
        "cpu_throttling": c.cpu_throttling,
        "process_priority": c.process_priority,
        "options": c.options,
    })
}

/// QEMU programs, as GNS3 lists them: `[{"path", "version"}]`.
pub(crate) fn binaries_json(list: &[crate::lab::answer::Binary]) -> Value {
    list.iter()
        .map(|b| json!({"path": b.path.to_string_lossy(), "version": b.version}))
        .collect()
}

/// `local` is always there: the GNS3 1.3 GUI refuses a server whose
/// version answer lacks it.
fn version_json(local: bool) -> Value {
    json!({"local": local, "version": super::API_VERSION})
}

fn project_json(p: &ProjectView) -> Value {
    json!({
        "project_id": p.id.to_string(),
        "name": p.name,
        "location": p.location.to_string_lossy(),
        "path": p.path.to_string_lossy(),
        "temporary": p.temporary,
    })
}

/// 1.3.13's device object: a switch lists its ports' settings, a hub
/// has none.
fn device_json(d: &DeviceView) -> Value {
    let mut v = json!({
        "device_id": d.id.to_string(),
        "project_id": d.project.to_string(),
        "name": d.name,
    });
    if d.kind == DeviceType::Switch {
        let ports: Vec<Value> = d
            .ports
            .iter()
            .map(|p| {
                let kind = match p.mode {
                    VlanMode::Access => "access",
                    VlanMode::Dot1q => "dot1q",
                    VlanMode::Qinq => "qinq",
                };
                json!({"port": p.port, "type": kind, "vlan": p.vlan})
            })
            .collect();
        v["ports"] = Value::Array(ports);
    }
    v
}

fn vpcs_json(v: &VpcsView) -> Value {
    json!({
        "vm_id": v.id.to_string(),
        "project_id": v.project.to_string(),
        "name": v.name,
        "console": v.console,
        "startup_script": v.startup_script,
        "startup_script_path": v.startup_script_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::http::parse::test_request;

    fn req(method: &str, path: &str, body: &str) -> Request {
        test_request(method, path, "", body)
    }

    const P: &str = "42f9feee-3217-4104-981e-85d5f0a806ec";
    const V: &str = "1b29e1b6-8d3a-4a4b-9d2c-5a6f7e8d9c0b";

    #[test]
    fn node_routes_become_node_commands() {
        let d = decode(
            &req("POST", &format!("/v1/projects/{P}/vpcs/vms/{V}/start"), ""),
            None,
        );
        let Ok(Command::Node(r, NodeCommand::Start)) = d.command else {
            panic!("{:?}", d.command)
        };
        assert_eq!(
            (r.project.to_string(), r.node.to_string()),
            (P.into(), V.into())
        );
        assert_eq!(
            d.route,
            Some("/v1/projects/{project_id}/vpcs/vms/{vm_id}/start")
        );
        let path = format!("/v1/projects/{P}/vpcs/vms/{V}/adapters/0/ports/1/nio");
        let d = decode(&req("DELETE", &path, ""), None);
        assert!(matches!(
            d.command,
            Ok(Command::Node(
                _,
                NodeCommand::RemoveNio(PortAddr {
                    adapter: 0,
                    port: 1
                })
            ))
        ));
    }

    #[test]
    fn bad_ids_numbers_and_bodies_are_400_before_any_lookup() {
        let cases = [
            ("GET", "/v1/projects/nope".to_string(), "", "project_id"),
            ("GET", format!("/v1/projects/{P}/vpcs/vms/x"), "", "vm_id"),
            (
                "POST",
                format!("/v1/projects/{P}/vpcs/vms/{V}/start"),
                r#"{"a":1}"#,
                "'a'",
            ),
        ];
        for (method, path, body, needle) in cases {
            let e = decode(&req(method, &path, body), None).command.unwrap_err();
            assert_eq!(e.status(), 400, "{path}");
            assert!(e.to_string().contains(needle), "{path}: {e}");
        }
    }

    #[test]
    fn unknown_route_wrong_method_and_credentials() {
        let d = decode(&req("GET", "/v1/nothing", ""), None);
        assert_eq!((d.route, d.command.unwrap_err().status()), (None, 404));
        let d = decode(&req("DELETE", "/v1/version", ""), None);
        assert_eq!(d.route, Some("/v1/version"));
        let e = d.command.unwrap_err();
        assert_eq!(e.status(), 405);
        let r = render(d.route, Err(e));
        assert!(
            r.extra.contains(&"Allow: GET, POST".to_string()),
            "{:?}",
            r.extra
        );
        let e = decode(&req("GET", "/version", ""), None)
            .command
            .unwrap_err();
        assert!(e.to_string().contains("start with /v1/"), "{e}");
        let creds = Credentials::new("u", "p");
        let d = decode(&req("GET", "/v1/version", ""), Some(&creds));
        assert_eq!(d.command.unwrap_err(), ApiError::Unauthorized);
    }

    #[test]
    fn answers_render_in_1_3_shapes() {
        let r = render(Some("/x"), Ok(Answer::Created(Body::UdpPort(10000))));
        assert_eq!((r.status, r.route), (201, Some("/x")));
        let mut want = serde_json::to_vec_pretty(&json!({"udp_port": 10000})).unwrap();
        want.push(b'\n');
        assert_eq!(r.body, want, "pretty, and a newline at the end");
        let r = render(None, Ok(Answer::Ok(Body::Version { local: false })));
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v, json!({"local": false, "version": "1.3.13"}));
        assert_eq!(render(None, Ok(Answer::NoContent)).status, 204);
        assert_eq!(render(None, Err(ApiError::Timeout)).status, 408);
    }
}
