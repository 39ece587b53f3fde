//! API handlers: decode, check, act on the model and the loop, answer.
//!
//! Requests that name a VM go through that VM's queue ([`crate::vmq`]); an
//! operation that has to wait (start, stop) parks on the VM and is finished
//! by a later event in `vm_io`. Everything else answers at once.

use super::{AfterStop, Pending, Queued, ReplyTo, Server, VmSlot};
use crate::api::API_VERSION;
use crate::api::body::{
    self, NioCreate, ProjectCreate, ProjectUpdate, VersionCheck, VmCreate, VmUpdate,
};
use crate::api::routes::{self, Matched, Route};
use crate::error::ApiError;
use crate::http::parse::Request;
use crate::http::response::Response;
use crate::model::fs;
use crate::model::project::TEMPORARY_MARKER;
use crate::model::vm::{STARTUP_SCRIPT, expand_script};
use crate::model::{Nio, Project, TunnelStats, Vm};
use crate::vmq::VmQueue;
use mio::Interest;
use mio::net::{TcpListener, UdpSocket};
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// The result of a handler: an answer now, or later (parked on a VM).
pub(super) enum Outcome {
    Done(Result<Response, ApiError>),
    Parked,
}

fn ok(status: u16, v: Value) -> Result<Response, ApiError> {
    Ok(Response::json(status, &v))
}

fn no_content() -> Result<Response, ApiError> {
    Ok(Response::no_content())
}

/// Turn a handler result into the answer, with the route's `X-Route`.
fn answer(result: Result<Response, ApiError>, template: Option<&'static str>) -> Response {
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

    fn project_id(&self, raw: &str) -> Result<Uuid, ApiError> {
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

    // ---- VMs -----------------------------------------------------------------

    fn console_host(&self) -> IpAddr {
        if self.config.allow_remote_console {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            self.config.host
        }
    }

    fn bind_console(&self, port: u16) -> Option<TcpListener> {
        TcpListener::bind(SocketAddr::new(self.console_host(), port)).ok()
    }

    fn create_vm(&mut self, raw_pid: &str, raw: &[u8]) -> Result<Response, ApiError> {
        let pid = self.project_id(raw_pid)?;
        let b = VmCreate::parse(raw)?;
        if let Some(&key) = b.vm_id.and_then(|id| self.vm_index.get(&id)) {
            let vm = &self.vms[key].vm;
            if vm.project_id != pid {
                return Err(ApiError::conflict(format!(
                    "VM {} belongs to another project",
                    vm.id
                )));
            }
            return ok(201, vm.to_json());
        }
        let id = b.vm_id.unwrap_or_else(Uuid::new_v4);
        let (console, listener) = match b.console {
            Some(port) => {
                self.console_ports.reserve(port, id)?;
                match self.bind_console(port) {
                    Some(l) => (port, l),
                    None => {
                        self.console_ports.release(port);
                        return Err(ApiError::conflict(format!(
                            "Console port {port} is already in use"
                        )));
                    }
                }
            }
            None => {
                let host = self.console_host();
                self.console_ports
                    .reserve_lowest(id, |p| TcpListener::bind(SocketAddr::new(host, p)).ok())?
            }
        };
        match self.insert_vm(pid, id, b, console, listener) {
            Ok(v) => ok(201, v),
            Err(e) => {
                self.console_ports.release(console);
                Err(e)
            }
        }
    }

    fn insert_vm(
        &mut self,
        pid: Uuid,
        id: Uuid,
        b: VmCreate,
        console: u16,
        mut listener: TcpListener,
    ) -> Result<Value, ApiError> {
        let project = self.projects.get_mut(&pid).expect("checked by the caller");
        let dir = project.vm_dir(id);
        fs::create_dir(&dir)?;
        let script = b.startup_script.map(|s| expand_script(&s, &b.name));
        if let Some(s) = &script {
            fs::write_atomic(&dir.join(STARTUP_SCRIPT), s.as_bytes())?;
        }
        let mac = project.take_mac()?;
        project.vms.insert(id);
        project.deleted_vm_dirs.retain(|d| *d != dir);
        let vm = Vm {
            id,
            project_id: pid,
            name: b.name,
            console,
            startup_script: script,
            mac,
            dir,
            nio: None,
        };
        let json = vm.to_json();
        let key = self.vms.insert(VmSlot {
            vm,
            queue: VmQueue::new(),
            pending: None,
            console_listener: None,
            clients: Vec::new(),
            history: Default::default(),
            proc: None,
            nio: None,
            stats: TunnelStats::default(),
        });
        self.vm_index.insert(id, key);
        let token = self
            .register(
                &mut listener,
                Interest::READABLE,
                super::Entry::ConsoleListener(key),
            )
            .map_err(|e| ApiError::io("registering the console listener", &e))?;
        self.vms[key].console_listener = Some((token, listener));
        log::info!("vm {id}: created in project {pid}, console {console}");
        Ok(json)
    }

    /// Look up a VM from path segments: 400 for a bad id, 404 when unknown or
    /// in another project.
    fn find_vm(&self, raw_pid: &str, raw_vid: &str) -> Result<usize, ApiError> {
        let pid = self.project_id(raw_pid)?;
        let vid = body::parse_uuid("vm_id", raw_vid)?;
        match self.vm_index.get(&vid) {
            Some(&k) if self.vms[k].vm.project_id == pid => Ok(k),
            _ => Err(ApiError::NotFound(format!(
                "VPCS VM ID {vid} doesn't exist in project {pid}"
            ))),
        }
    }

    fn enqueue_vm(&mut self, key: usize, q: Queued) {
        if let Some(q) = self.vms[key].queue.submit(q) {
            self.run_vm_requests(key, q);
        }
    }

    /// Run `q` and then whatever waits behind it, until one parks.
    pub(super) fn run_vm_requests(&mut self, key: usize, q: Queued) {
        let mut next = Some(q);
        while let Some(q) = next.take() {
            let Some(m) = routes::route(&q.req.method, &q.req.path) else {
                return;
            };
            let template = m.template;
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| self.exec_vm(key, &m, &q)))
                .unwrap_or_else(|panic| Outcome::Done(Err(panic_error(panic))));
            match outcome {
                Outcome::Parked => return,
                Outcome::Done(result) => {
                    self.reply(q.to, answer(result, Some(template)));
                    next = self.vms.get_mut(key).and_then(|s| s.queue.finish());
                }
            }
        }
    }

    /// A parked operation finished: answer it and serve the VM's next request.
    pub(super) fn finish_parked(
        &mut self,
        key: usize,
        to: ReplyTo,
        result: Result<Response, ApiError>,
        route: &'static str,
    ) {
        self.reply(to, answer(result, Some(route)));
        if let Some(next) = self.vms.get_mut(key).and_then(|s| s.queue.finish()) {
            self.run_vm_requests(key, next);
        }
    }

    fn exec_vm(&mut self, key: usize, m: &Matched<'_>, q: &Queued) -> Outcome {
        use crate::http::parse::Method::*;
        let body = &q.req.body;
        let done = Outcome::Done;
        match (m.route, &q.req.method) {
            (Route::Vm, Get) => done(ok(200, self.vms[key].vm.to_json())),
            (Route::Vm, Put) => done(self.update_vm(key, body)),
            (Route::Vm, _) => self.stop_vm(key, q.to, AfterStop::Delete),
            (Route::VmStart, _) => match body::empty(body) {
                Ok(()) => self.start_vm(key, q.to, m.template),
                Err(e) => done(Err(e)),
            },
            (Route::VmStop, _) => match body::empty(body) {
                Ok(()) => self.stop_vm(key, q.to, AfterStop::Reply),
                Err(e) => done(Err(e)),
            },
            (Route::VmReload, _) => match body::empty(body) {
                Ok(()) if self.is_running(self.vms[key].vm.id) => {
                    self.stop_vm(key, q.to, AfterStop::Start)
                }
                Ok(()) => self.start_vm(key, q.to, m.template),
                Err(e) => done(Err(e)),
            },
            (Route::VmNio, Post) => done(self.add_nio(key, m, body)),
            (Route::VmNio, _) => done(self.remove_nio(key, m)),
            _ => done(Err(ApiError::Internal(format!(
                "no VM handler for {}",
                m.template
            )))),
        }
    }

    pub(super) fn is_running(&self, vm: Uuid) -> bool {
        self.vm_index
            .get(&vm)
            .is_some_and(|&k| self.vms[k].proc.is_some())
    }

    fn update_vm(&mut self, key: usize, raw: &[u8]) -> Result<Response, ApiError> {
        let b = VmUpdate::parse(raw)?;
        if let Some(port) = b.console.filter(|p| *p != self.vms[key].vm.console) {
            self.move_console(key, port)?;
        }
        let slot = &mut self.vms[key];
        if let Some(script) = b.startup_script {
            slot.vm.startup_script =
                (!script.is_empty()).then(|| expand_script(&script, &slot.vm.name));
        }
        if let Some(name) = b.name {
            slot.vm.rename(&name);
        }
        let path = slot.vm.dir.join(STARTUP_SCRIPT);
        match &slot.vm.startup_script {
            Some(s) => fs::write_atomic(&path, s.as_bytes())?,
            None => fs::remove_file(&path),
        }
        ok(200, slot.vm.to_json())
    }

    /// Bind the console on `port` and drop the old listener; attached
    /// clients keep their sessions.
    fn move_console(&mut self, key: usize, port: u16) -> Result<(), ApiError> {
        let id = self.vms[key].vm.id;
        self.console_ports.reserve(port, id)?;
        let Some(mut listener) = self.bind_console(port) else {
            self.console_ports.release(port);
            return Err(ApiError::conflict(format!(
                "Console port {port} is already in use"
            )));
        };
        let token = match self.register(
            &mut listener,
            Interest::READABLE,
            super::Entry::ConsoleListener(key),
        ) {
            Ok(t) => t,
            Err(e) => {
                self.console_ports.release(port);
                return Err(ApiError::io("registering the console listener", &e));
            }
        };
        if let Some((old_token, mut old)) =
            self.vms[key].console_listener.replace((token, listener))
        {
            self.unregister(&mut old, old_token);
        }
        let old_port = std::mem::replace(&mut self.vms[key].vm.console, port);
        self.console_ports.release(old_port);
        log::info!("vm {id}: console moved from {old_port} to {port}");
        Ok(())
    }

    /// Forget a VM whose process is gone: ports, MAC, listener, clients,
    /// queue. Its directory goes at the next commit.
    pub(super) fn remove_vm(&mut self, key: usize) {
        for waiting in self.vms[key].queue.drain() {
            let id = self.vms[key].vm.id;
            let e = ApiError::NotFound(format!("VPCS VM ID {id} was deleted"));
            self.reply(waiting.to, answer(Err(e), None));
        }
        for client in self.vms[key].clients.clone() {
            self.close_console_client(client);
        }
        if let Some((token, mut l)) = self.vms[key].console_listener.take() {
            self.unregister(&mut l, token);
        }
        self.drop_nio(key);
        let slot = self.vms.remove(key);
        let vm = slot.vm;
        self.vm_index.remove(&vm.id);
        self.console_ports.release(vm.console);
        if let Some(p) = self.projects.get_mut(&vm.project_id) {
            p.release_mac(vm.mac);
            p.vms.remove(&vm.id);
            p.deleted_vm_dirs.push(vm.dir);
        }
        log::info!("vm {}: deleted", vm.id);
    }

    fn check_adapter(&self, key: usize, m: &Matched<'_>) -> Result<(), ApiError> {
        let id = self.vms[key].vm.id;
        let adapter: u32 = m.adapter().parse().map_err(|_| {
            ApiError::bad(format!(
                "Adapter number '{}' is not a non-negative integer",
                m.adapter()
            ))
        })?;
        let port: u32 = m.port().parse().map_err(|_| {
            ApiError::bad(format!(
                "Port number '{}' is not a non-negative integer",
                m.port()
            ))
        })?;
        if adapter != 0 {
            return Err(ApiError::NotFound(format!(
                "Adapter {adapter} doesn't exist on VPCS VM {id} (it has adapter 0 only)"
            )));
        }
        if port != 0 {
            return Err(ApiError::NotFound(format!(
                "Port {port} doesn't exist on adapter 0 of VPCS VM {id} (it has port 0 only)"
            )));
        }
        Ok(())
    }

    fn add_nio(&mut self, key: usize, m: &Matched<'_>, raw: &[u8]) -> Result<Response, ApiError> {
        self.check_adapter(key, m)?;
        let b = NioCreate::parse(raw)?;
        let pid = self.vms[key].vm.project_id;
        let replacing_same_port = self.vms[key]
            .vm
            .nio
            .as_ref()
            .is_some_and(|n| n.lport == b.lport);
        if replacing_same_port {
            self.drop_nio(key);
        }
        let newly_reserved = !self.udp_ports.is_reserved(b.lport);
        self.udp_ports.reserve(b.lport, pid)?;
        let socket = self.open_nio_socket(&b).inspect_err(|_| {
            if newly_reserved {
                self.udp_ports.release(b.lport);
            }
        })?;
        self.drop_nio(key);
        self.install_nio(key, b, socket)
    }

    fn open_nio_socket(&self, b: &NioCreate) -> Result<UdpSocket, ApiError> {
        let local = SocketAddr::new(nio_bind_addr(b.raddr), b.lport);
        let socket = UdpSocket::bind(local).map_err(|e| {
            ApiError::conflict(format!("UDP port {} is already in use: {e}", b.lport))
        })?;
        socket
            .connect(SocketAddr::new(b.raddr, b.rport))
            .map_err(|e| {
                ApiError::conflict(format!("Cannot reach {}:{}: {e}", b.rhost, b.rport))
            })?;
        Ok(socket)
    }

    fn install_nio(
        &mut self,
        key: usize,
        b: NioCreate,
        mut socket: UdpSocket,
    ) -> Result<Response, ApiError> {
        let token = self
            .register(
                &mut socket,
                Interest::READABLE,
                super::Entry::NioSocket(key),
            )
            .map_err(|e| ApiError::io("registering the NIO socket", &e))?;
        let nio = Nio {
            lport: b.lport,
            rhost: b.rhost,
            raddr: b.raddr,
            rport: b.rport,
        };
        let v = nio.to_json();
        let slot = &mut self.vms[key];
        log::info!(
            "vm {}: NIO udp {} -> {}:{}",
            slot.vm.id,
            nio.lport,
            nio.rhost,
            nio.rport
        );
        slot.vm.nio = Some(nio);
        slot.nio = Some((token, socket));
        slot.stats = TunnelStats::default();
        ok(201, v)
    }

    fn remove_nio(&mut self, key: usize, m: &Matched<'_>) -> Result<Response, ApiError> {
        self.check_adapter(key, m)?;
        if self.vms[key].vm.nio.is_none() {
            let id = self.vms[key].vm.id;
            return Err(ApiError::NotFound(format!(
                "VPCS VM {id} has no NIO on adapter 0 port 0"
            )));
        }
        self.drop_nio(key);
        no_content()
    }

    /// Close the NIO socket and free its port.
    pub(super) fn drop_nio(&mut self, key: usize) {
        if let Some((token, mut s)) = self.vms[key].nio.take() {
            self.unregister(&mut s, token);
        }
        if let Some(nio) = self.vms[key].vm.nio.take() {
            let stats = self.vms[key].stats;
            log::info!(
                "vm {}: NIO {} removed ({stats:?})",
                self.vms[key].vm.id,
                nio.lport
            );
            self.udp_ports.release(nio.lport);
        }
    }

    /// Park a stop (or answer at once when the VM is not running).
    fn stop_vm(&mut self, key: usize, to: ReplyTo, then: AfterStop) -> Outcome {
        if self.vms[key].proc.is_none() {
            return match then {
                AfterStop::Reply => Outcome::Done(no_content()),
                AfterStop::Start => self.start_vm(key, to, super::vm_io::RELOAD_ROUTE),
                AfterStop::Delete => {
                    self.remove_vm(key);
                    Outcome::Done(no_content())
                }
            };
        }
        self.vms[key].pending = Some(Pending::Stop(to, then));
        self.terminate(key);
        Outcome::Parked
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

/// The NIO socket binds every address of the peer's family: a LAN peer can
/// reach it as well as a loopback one, and since the socket is connected to
/// `rhost:rport`, datagrams from anyone else are discarded by the kernel.
fn nio_bind_addr(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::from([0u16; 8]),
    }
}
