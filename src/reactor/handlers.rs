//! API handlers: the entry point for every request (authentication,
//! routing, panics caught), then version, server and project handlers.
//!
//! Requests that name a VM go through that VM's queue ([`crate::vmq`]) and
//! are handled in `vm_handlers`; an operation that has to wait (start, stop)
//! parks on the VM and is finished by a later event in `vm_io`. Everything
//! else answers at once.

use super::{Queued, ReplyTo, Server};
use crate::api::API_VERSION;
use crate::api::body::{self, ProjectCreate, ProjectUpdate, VersionCheck};
use crate::api::routes::{self, Matched, Route};
use crate::error::ApiError;
use crate::http::parse::Request;
use crate::http::response::Response;
use crate::model::Project;
use crate::model::fs;
use crate::model::project::TEMPORARY_MARKER;
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// The result of a handler: an answer now, or later (parked on a VM).
pub(super) enum Outcome {
    Done(Result<Response, ApiError>),
    Parked,
}

pub(super) fn ok(status: u16, v: Value) -> Result<Response, ApiError> {
    Ok(Response::json(status, &v))
}

pub(super) fn no_content() -> Result<Response, ApiError> {
    Ok(Response::no_content())
}

/// Turn a handler result into the answer, with the route's `X-Route`.
pub(super) fn answer(
    result: Result<Response, ApiError>,
    template: Option<&'static str>,
) -> Response {
    match result {
        Ok(r) => r,
        Err(e) => {
            if e.status() >= 500 {
                log::error!("{e}");
            }
            Response::error(&e)
        }
    }
    .with_route(template)
}

/// Run a handler; a panic becomes a 500 answer instead of taking the loop down.
fn guarded(f: impl FnOnce() -> Result<Response, ApiError>) -> Result<Response, ApiError> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| Err(panic_error(panic)))
}

/// Like [`guarded`], for a VM operation that may park.
pub(super) fn guarded_outcome(f: impl FnOnce() -> Outcome) -> Outcome {
    std::panic::catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|panic| Outcome::Done(Err(panic_error(panic))))
}

fn panic_error(panic: Box<dyn std::any::Any + Send>) -> ApiError {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".into());
    ApiError::Internal(format!(
        "Internal error while handling the request (a bug: {what}); the server carries on"
    ))
}

/// Fault injection for the tests, in debug builds only: a request for the
/// path in `NANOLAB_TEST_PANIC_PATH` panics inside its handler.
fn inject_panic(path: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os("NANOLAB_TEST_PANIC_PATH").is_some_and(|p| p == path) {
        panic!("injected panic for {path}");
    }
    let _ = path;
}

/// Remove project directories marked temporary (left by an earlier run).
pub fn remove_stale_temporary_projects(location: &Path) {
    let Ok(dir) = std::fs::read_dir(location) else {
        return;
    };
    for entry in dir.flatten() {
        let path = entry.path();
        if path.join(TEMPORARY_MARKER).exists() {
            log::info!(
                "removing temporary project left by an earlier run: {}",
                path.display()
            );
            let _ = fs::remove_dir(&path);
        }
    }
}

impl Server {
    /// Entry point for every parsed request.
    pub(super) fn handle_request(&mut self, to: ReplyTo, req: Request) {
        log::debug!("{} {}", req.method.as_str(), req.path);
        if let Some(creds) = &self.config.auth
            && !creds.accepts(req.authorization.as_deref())
        {
            log::debug!("{} {}: no valid credentials", req.method.as_str(), req.path);
            return self.reply(to, answer(Err(ApiError::Unauthorized), None));
        }
        self.record(&req);
        let Some(m) = routes::route(&req.method, &req.path) else {
            let e = ApiError::NotFound(format!("Route {} doesn't exist", req.path));
            return self.reply(to, answer(Err(e), None));
        };
        if !m.method_allowed {
            let e = ApiError::MethodNotAllowed {
                method: req.method.as_str().to_string(),
                route: m.template,
            };
            return self.reply(to, answer(Err(e), Some(m.template)));
        }
        if matches!(
            m.route,
            Route::Vm | Route::VmStart | Route::VmStop | Route::VmReload | Route::VmNio
        ) {
            let (template, found) = (m.template, self.find_vm(m.project(), m.vm()));
            return match found {
                Ok(key) => self.enqueue_vm(key, Queued { to, req }),
                Err(e) => self.reply(to, answer(Err(e), Some(template))),
            };
        }
        let result = guarded(|| self.handle_plain(&m, &req));
        self.reply(to, answer(result, Some(m.template)));
    }

    fn handle_plain(&mut self, m: &Matched<'_>, req: &Request) -> Result<Response, ApiError> {
        use crate::http::parse::Method::*;
        inject_panic(&req.path);
        match (m.route, &req.method) {
            (Route::Version, Get) => ok(200, self.version_json()),
            (Route::Version, _) => self.check_version(&req.body),
            (Route::Interfaces, _) => interfaces(),
            (Route::ConfigReload, _) => self.reload_config(),
            (Route::Shutdown, _) => self.request_shutdown(),
            (Route::Projects, _) => self.create_project(&req.body),
            (Route::Project, Get) => self
                .project_json(m.project())
                .map(|v| Response::json(200, &v)),
            (Route::Project, Put) => self.update_project(m.project(), &req.body),
            (Route::Project, _) => self.delete_project(m.project()),
            (Route::ProjectCommit, _) => self.commit_project(m.project(), &req.body),
            (Route::ProjectClose, _) => self.close_project(m.project(), &req.body),
            (Route::UdpPort, _) => self.allocate_udp(m.project(), &req.body),
            (Route::Vms, _) => self.create_vm(m.project(), &req.body),
            _ => Err(ApiError::Internal(format!("no handler for {}", m.template))),
        }
    }

    // ---- version, interfaces, server -------------------------------------

    fn version_json(&self) -> Value {
        let mut v = json!({"version": API_VERSION});
        if self.config.local {
            v["local"] = json!(true);
        }
        v
    }

    fn check_version(&self, body: &[u8]) -> Result<Response, ApiError> {
        let v = VersionCheck::parse(body)?;
        if v.version != API_VERSION {
            return Err(ApiError::conflict(format!(
                "Client version {} differs with server version {API_VERSION}",
                v.version
            )));
        }
        ok(200, self.version_json())
    }

    fn require_local(&self, what: &str) -> Result<(), ApiError> {
        if self.config.local {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "{what} is only allowed on a server started with --local"
            )))
        }
    }

    fn reload_config(&mut self) -> Result<Response, ApiError> {
        self.require_local("Reloading the configuration")?;
        let fresh = crate::config::build(&self.flags).map_err(ApiError::conflict)?;
        self.udp_ports.set_range(fresh.udp_ports);
        self.console_ports.set_range(fresh.console_ports);
        self.config.vpcs = fresh.vpcs;
        self.config.console_sandbox = fresh.console_sandbox;
        self.config.allow_remote_console = fresh.allow_remote_console;
        self.config.auth = fresh.auth;
        log::info!("configuration reloaded");
        ok(201, json!({}))
    }

    fn request_shutdown(&mut self) -> Result<Response, ApiError> {
        self.require_local("Shutting the server down")?;
        log::info!("shutdown requested through the API");
        self.shutdown = true;
        ok(201, json!({}))
    }

    // ---- projects ----------------------------------------------------------

    pub(super) fn project_id(&self, raw: &str) -> Result<Uuid, ApiError> {
        let id = body::parse_uuid("project_id", raw)?;
        if self.projects.contains_key(&id) {
            Ok(id)
        } else {
            Err(ApiError::NotFound(format!("Project ID {id} doesn't exist")))
        }
    }

    fn project_json(&self, raw: &str) -> Result<Value, ApiError> {
        let id = self.project_id(raw)?;
        Ok(self.projects[&id].to_json(&self.config.projects_dir))
    }

    fn create_project(&mut self, raw: &[u8]) -> Result<Response, ApiError> {
        let b = ProjectCreate::parse(raw)?;
        if let Some(p) = b.project_id.and_then(|id| self.projects.get(&id)) {
            return ok(201, p.to_json(&self.config.projects_dir));
        }
        let id = b.project_id.unwrap_or_else(Uuid::new_v4);
        let default = self.config.projects_dir.join(id.to_string());
        let path = match b.path.map(PathBuf::from) {
            Some(p) if p != default => {
                self.require_local("Choosing a project path")?;
                p
            }
            _ => default,
        };
        fs::create_dir(&path)?;
        let temporary = b.temporary.unwrap_or(false);
        let project = Project::new(id, b.name, path, temporary);
        set_marker(&project)?;
        log::info!("project {id} created in {}", project.path.display());
        let v = project.to_json(&self.config.projects_dir);
        self.projects.insert(id, project);
        ok(201, v)
    }

    fn update_project(&mut self, raw_id: &str, raw: &[u8]) -> Result<Response, ApiError> {
        let id = self.project_id(raw_id)?;
        let b = ProjectUpdate::parse(raw)?;
        let new_path = b
            .path
            .map(PathBuf::from)
            .filter(|p| *p != self.projects[&id].path);
        if new_path.is_some() {
            self.require_local("Changing a project path")?;
        }
        if new_path.is_some() && self.projects[&id].vms.iter().any(|vm| self.is_running(*vm)) {
            return Err(ApiError::conflict(
                "Stop the project's VMs before moving it",
            ));
        }
        let location = self.config.projects_dir.clone();
        let p = self.projects.get_mut(&id).expect("checked above");
        if let Some(to) = new_path {
            fs::move_dir(&p.path, &to)?;
            let old = std::mem::replace(&mut p.path, to);
            for vm in p.vms.clone() {
                if let Some(&k) = self.vm_index.get(&vm) {
                    let dir = p.vm_dir(vm);
                    self.vms[k].vm.dir = dir;
                }
            }
            log::info!(
                "project {id} moved from {} to {}",
                old.display(),
                p.path.display()
            );
        }
        if let Some(name) = b.name {
            p.name = Some(name);
        }
        if let Some(t) = b.temporary {
            p.temporary = t;
            set_marker(p)?;
        }
        ok(200, p.to_json(&location))
    }

    fn commit_project(&mut self, raw_id: &str, raw: &[u8]) -> Result<Response, ApiError> {
        let id = self.project_id(raw_id)?;
        body::empty(raw)?;
        let p = self.projects.get_mut(&id).expect("checked above");
        for dir in std::mem::take(&mut p.deleted_vm_dirs) {
            fs::remove_dir(&dir)?;
        }
        no_content()
    }

    fn close_project(&mut self, raw_id: &str, raw: &[u8]) -> Result<Response, ApiError> {
        let id = self.project_id(raw_id)?;
        body::empty(raw)?;
        self.forget_project(id, false)?;
        no_content()
    }

    fn delete_project(&mut self, raw_id: &str) -> Result<Response, ApiError> {
        let id = self.project_id(raw_id)?;
        self.forget_project(id, true)?;
        no_content()
    }

    /// Stop and forget every VM of the project, free its ports, and remove
    /// its directory when asked or when it is temporary.
    pub(super) fn forget_project(&mut self, id: Uuid, delete_dir: bool) -> Result<(), ApiError> {
        let Some(p) = self.projects.get(&id) else {
            return Ok(());
        };
        let keys: Vec<usize> = p
            .vms
            .iter()
            .filter_map(|vm| self.vm_index.get(vm).copied())
            .collect();
        // Kill them all first so that they die in parallel; each reap below
        // then finds its process (nearly) gone instead of waiting in turn.
        self.kill_all(&keys);
        for key in keys {
            self.kill_now(key);
            self.remove_vm(key);
        }
        self.udp_ports.release_owner(id);
        let p = self.projects.remove(&id).expect("checked above");
        log::info!("project {id} closed");
        if delete_dir || p.temporary {
            fs::remove_dir(&p.path)?;
        }
        Ok(())
    }

    fn allocate_udp(&mut self, raw_id: &str, raw: &[u8]) -> Result<Response, ApiError> {
        let id = self.project_id(raw_id)?;
        body::empty(raw)?;
        let (port, ()) = self
            .udp_ports
            .reserve_lowest(id, |p| udp_bindable(p).then_some(()))?;
        log::debug!("project {id}: UDP port {port} reserved");
        ok(201, json!({"udp_port": port}))
    }
}

fn interfaces() -> Result<Response, ApiError> {
    let names =
        crate::sys::interface_names().map_err(|e| ApiError::io("listing interfaces", &e))?;
    let list: Vec<Value> = names
        .into_iter()
        .map(|n| json!({"id": n, "name": n}))
        .collect();
    ok(200, Value::Array(list))
}

fn set_marker(p: &Project) -> Result<(), ApiError> {
    let marker = p.path.join(TEMPORARY_MARKER);
    if p.temporary {
        fs::write_atomic(&marker, b"")
    } else {
        fs::remove_file(&marker);
        Ok(())
    }
}

/// Whether nobody (on any address) holds UDP `port`.
pub(super) fn udp_bindable(port: u16) -> bool {
    std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
}
