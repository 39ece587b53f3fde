//! VM handlers: create, update, delete, NIOs, and the per-VM queue that
//! serves one request at a time per VM (start and stop park on it; see
//! `vm_io` for the events that finish them).

use super::handlers::{Outcome, answer, guarded_outcome, no_content, ok};
use super::{AfterStop, Pending, Queued, ReplyTo, Server, VmSlot};
use crate::api::body::{self, NioCreate, VmCreate, VmUpdate};
use crate::api::routes::{self, Matched, Route};
use crate::error::ApiError;
use crate::http::response::Response;
use crate::model::fs;
use crate::model::vm::{STARTUP_SCRIPT, expand_script};
use crate::model::{Nio, TunnelStats, Vm};
use crate::vmq::VmQueue;
use mio::Interest;
use mio::net::{TcpListener, UdpSocket};
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use uuid::Uuid;

impl Server {
    pub(super) fn console_host(&self) -> IpAddr {
        if self.config.allow_remote_console {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            self.config.host
        }
    }

    pub(super) fn bind_console(&self, port: u16) -> Option<TcpListener> {
        TcpListener::bind(SocketAddr::new(self.console_host(), port)).ok()
    }

    pub(super) fn create_vm(&mut self, raw_pid: &str, raw: &[u8]) -> Result<Response, ApiError> {
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

    pub(super) fn insert_vm(
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
    pub(super) fn find_vm(&self, raw_pid: &str, raw_vid: &str) -> Result<usize, ApiError> {
        let pid = self.project_id(raw_pid)?;
        let vid = body::parse_uuid("vm_id", raw_vid)?;
        match self.vm_index.get(&vid) {
            Some(&k) if self.vms[k].vm.project_id == pid => Ok(k),
            _ => Err(ApiError::NotFound(format!(
                "VPCS VM ID {vid} doesn't exist in project {pid}"
            ))),
        }
    }

    pub(super) fn enqueue_vm(&mut self, key: usize, q: Queued) {
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
            let outcome = guarded_outcome(|| self.exec_vm(key, &m, &q));
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

    pub(super) fn exec_vm(&mut self, key: usize, m: &Matched<'_>, q: &Queued) -> Outcome {
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

    pub(super) fn update_vm(&mut self, key: usize, raw: &[u8]) -> Result<Response, ApiError> {
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
    pub(super) fn move_console(&mut self, key: usize, port: u16) -> Result<(), ApiError> {
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

    pub(super) fn check_adapter(&self, key: usize, m: &Matched<'_>) -> Result<(), ApiError> {
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

    pub(super) fn add_nio(
        &mut self,
        key: usize,
        m: &Matched<'_>,
        raw: &[u8],
    ) -> Result<Response, ApiError> {
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

    pub(super) fn open_nio_socket(&self, b: &NioCreate) -> Result<UdpSocket, ApiError> {
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

    pub(super) fn install_nio(
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

    pub(super) fn remove_nio(&mut self, key: usize, m: &Matched<'_>) -> Result<Response, ApiError> {
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
    pub(super) fn stop_vm(&mut self, key: usize, to: ReplyTo, then: AfterStop) -> Outcome {
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

/// The NIO socket binds every address of the peer's family: a LAN peer can
/// reach it as well as a loopback one, and since the socket is connected to
/// `rhost:rport`, datagrams from anyone else are discarded by the kernel.
fn nio_bind_addr(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::from([0u16; 8]),
    }
}
