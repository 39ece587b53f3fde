//! The lab's [`Host`], over the real operating system: each method performs
//! one effect the lab decided on, with sockets from the loop's registry,
//! processes through `sys`, files through `os::fs`.

use super::{Entry, Io};
use crate::api::Ticket;
use crate::error::ApiError;
use crate::lab::{ClientId, Files, Host, Nio, NodeKey, Reply, Settings, Signal, Spawn, Spawned};
use crate::os::nio::NioIo;
use crate::sys;
use mio::Interest;
use mio::net::TcpListener;
use mio::unix::SourceFd;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

impl Io {
    /// Forget the node's descriptors once it has none left.
    fn tidy(&mut self, node: NodeKey) {
        if self.nodes.get(&node).is_some_and(|n| {
            n.console.is_none() && n.proc.is_none() && n.nios.is_empty() && n.container.is_none()
        }) {
            self.nodes.remove(&node);
        }
    }
}

impl Host for Io {
    fn reply(&mut self, ticket: Ticket, reply: Reply) {
        self.answer(ticket, reply);
    }

    fn bind_console(&mut self, node: NodeKey, port: u16) -> Result<(), ApiError> {
        let mut listener = TcpListener::bind(SocketAddr::new(self.config.console_host(), port))
            .map_err(|e| {
                if crate::sys::out_of_descriptors(&e) {
                    ApiError::Unavailable(format!(
                        "Console port {port} cannot be bound: the open-file limit is reached ({e}); \
                         raise it (ulimit -Hn, LimitNOFILE=) or create nodes without a console"
                    ))
                } else {
                    ApiError::conflict(format!("Console port {port} is already in use"))
                }
            })?;
        let token = self
            .register(
                &mut listener,
                Interest::READABLE,
                Entry::ConsoleListener(node),
            )
            .map_err(|e| ApiError::io("registering the console listener", &e))?;
        let old = self.nodes.slot(node).console.replace((token, listener));
        if let Some((t, mut l)) = old {
            self.unregister(&mut l, t);
        }
        Ok(())
    }

    fn close_console(&mut self, node: NodeKey) {
        if let Some((t, mut l)) = self.nodes.get_mut(&node).and_then(|n| n.console.take()) {
            self.unregister(&mut l, t);
        }
        self.tidy(node);
    }

    fn bind_aux(&mut self, node: NodeKey, port: u16) -> Result<(), ApiError> {
        let mut listener = TcpListener::bind(SocketAddr::new(self.config.console_host(), port))
            .map_err(|_| ApiError::conflict(format!("Console port {port} is already in use")))?;
        let token = self
            .register(&mut listener, Interest::READABLE, Entry::AuxListener(node))
            .map_err(|e| ApiError::io("registering the console listener", &e))?;
        let c = self.nodes.slot(node).container();
        if let Some((t, mut l)) = c.aux_listener.replace((token, listener)) {
            self.unregister(&mut l, t);
        }
        Ok(())
    }

    fn close_aux(&mut self, node: NodeKey) {
        let container = self.nodes.get_mut(&node).and_then(|n| n.container.as_mut());
        if let Some((t, mut l)) = container.and_then(|c| c.aux_listener.take()) {
            self.unregister(&mut l, t);
        }
        self.drop_aux_stream(node);
        self.tidy(node);
    }

    fn aux_input(&mut self, node: NodeKey, data: &[u8]) {
        let container = self.nodes.get_mut(&node).and_then(|n| n.container.as_mut());
        if let Some((_, stream)) = container.and_then(|c| c.aux_stream.as_mut())
            && let Err(e) = stream.write_all(data)
        {
            log::debug!("auxiliary console input dropped: {e}");
        }
    }

    fn console_ready(&mut self, client: ClientId) {
        self.ready_clients.push(client);
    }

    fn console_drop(&mut self, client: ClientId) {
        if let Some(token) = self.client_token(client) {
            self.drop_client(token);
        } else {
            self.drop_ws_client(client);
        }
    }

    fn udp_free(&mut self, port: u16) -> bool {
        std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
    }

    /// Open the NIO (see [`NioIo::open`]) and put it in place of the
    /// port's previous one.
    fn open_nio(&mut self, node: NodeKey, port: usize, nio: &Nio) -> Result<(), ApiError> {
        let io = NioIo::open(nio)?;
        let fd = io.fd();
        let token = self
            .register(
                &mut SourceFd(&fd),
                Interest::READABLE,
                Entry::NioSocket(node, port),
            )
            .map_err(|e| ApiError::io("registering the NIO", &e))?;
        let old = self.nodes.slot(node).nios.insert(port, (token, io));
        if let Some((t, old)) = old {
            self.unregister(&mut SourceFd(&old.fd()), t);
        }
        Ok(())
    }

    fn close_nio(&mut self, node: NodeKey, port: usize) {
        if let Some((t, old)) = self.nodes.get_mut(&node).and_then(|n| n.nios.remove(&port)) {
            self.unregister(&mut SourceFd(&old.fd()), t);
        }
        self.tidy(node);
    }

    fn send_frame(&mut self, to: crate::lab::Endpoint, frame: &[u8]) -> bool {
        super::nio_io::send_to(&self.nodes, to, frame)
    }

    fn spawn(&mut self, node: NodeKey, spawn: &Spawn) -> Result<Spawned, ApiError> {
        self.spawn_vpcs(node, spawn)
    }

    fn spawn_vm(
        &mut self,
        node: NodeKey,
        spawn: &crate::lab::host::VmSpawn,
    ) -> Result<Spawned, ApiError> {
        self.spawn_qemu(node, spawn)
    }

    fn readable(&mut self, path: &std::path::Path) -> bool {
        std::fs::File::open(path).is_ok_and(|f| f.metadata().is_ok_and(|m| m.is_file()))
    }

    fn receive_body(&mut self, ticket: Ticket, dir: &Path, rel: &Path) -> Result<(), ApiError> {
        let up = crate::os::images::Upload::create(dir, rel).map_err(|e| {
            let what = format!("Could not write image {}", rel.display());
            match e.kind() {
                std::io::ErrorKind::PermissionDenied => ApiError::Forbidden(format!("{what}: {e}")),
                _ => ApiError::conflict(format!("{what}: {e}")),
            }
        })?;
        log::info!("receiving {} into {}", rel.display(), dir.display());
        self.uploads.insert(ticket.conn, (ticket, up));
        Ok(())
    }

    fn engine(&mut self, call: crate::lab::host::EngineCall) -> Result<(), ApiError> {
        self.engine_call(std::time::Instant::now(), call)
    }

    fn plug(&mut self, pid: u32, links: &[crate::lab::host::Veth]) -> Result<(), ApiError> {
        crate::os::veth::plug(pid, links)
    }

    fn unplug(&mut self, names: &[String]) {
        crate::os::veth::unplug(names);
    }

    fn monitor_send(&mut self, node: NodeKey, data: &[u8]) {
        if let Some(m) = self.proc(node).and_then(|p| p.p.monitor.as_ref())
            && let Err(e) = (&*m).write_all(data)
        {
            log::warn!("QMP command not sent: {e}");
        }
    }

    fn signal(&mut self, node: NodeKey, signal: Signal) {
        let Some(p) = self.nodes.get(&node).and_then(|n| n.proc.as_ref()) else {
            return;
        };
        match signal {
            Signal::Term => sys::terminate_group(p.p.pid),
            Signal::Kill => sys::kill_group(p.p.pid),
        }
    }

    fn reap(&mut self, node: NodeKey) -> String {
        match self.nodes.get(&node).and_then(|n| n.proc.as_ref()) {
            // SIGKILL cannot be ignored, so this wait is short.
            Some(p) => sys::reap_blocking(p.p.pid).describe(),
            None => "already gone".into(),
        }
    }

    fn release_process(&mut self, node: NodeKey) {
        self.forget_process(node);
        self.drop_attach(node);
        self.drop_aux_stream(node);
        self.tidy(node);
    }

    fn pending_output(&mut self, node: NodeKey) -> Vec<u8> {
        self.read_pty(node)
    }

    fn console_input(&mut self, node: NodeKey, data: &[u8]) {
        if self.attach_input(node, data) {
            return;
        }
        if let Some(p) = self.proc(node)
            && let Err(e) = (&p.p.pty).write_all(data)
        {
            // A full pty drops the input, like a UART.
            log::debug!("console input dropped: {e}");
        }
    }

    fn log_output(&mut self, node: NodeKey, data: &[u8]) {
        if let Some(p) = self.proc(node) {
            let _ = p.p.log.write_all(data);
        }
    }

    fn files(&mut self) -> &mut dyn Files {
        &mut self.disk
    }

    fn wall_clock(&mut self) -> std::time::SystemTime {
        std::time::SystemTime::now()
    }

    fn interfaces(&mut self) -> Result<Vec<String>, ApiError> {
        sys::interface_names().map_err(|e| ApiError::io("listing interfaces", &e))
    }

    fn interface_details(&mut self) -> Result<Vec<crate::api::answer::Interface>, ApiError> {
        crate::os::stats::interfaces().map_err(|e| ApiError::io("listing interfaces", &e))
    }

    fn load(&mut self) -> crate::api::answer::Load {
        let mut load = self.meter.load();
        load.disk_usage_percent = crate::os::stats::disk_percent(&self.config.projects_dir);
        load
    }

    fn qemu(&mut self) -> crate::lab::answer::QemuHost {
        self.qemu.clone()
    }

    fn machine(&mut self, dir: &std::path::Path) -> crate::api::answer::Machine {
        self.meter.machine(dir)
    }

    fn statistics(&mut self, dir: &std::path::Path) -> crate::api::answer::Statistics {
        self.meter.statistics(dir)
    }

    fn reload_settings(&mut self) -> Result<Settings, ApiError> {
        let fresh = crate::config::build(&self.flags).map_err(ApiError::conflict)?;
        self.config.vpcs = fresh.vpcs.clone();
        self.config.console_sandbox = fresh.console_sandbox;
        self.config.allow_remote_console = fresh.allow_remote_console;
        self.config.auth = fresh.auth.clone();
        self.config.udp_ports = fresh.udp_ports;
        self.config.console_ports = fresh.console_ports;
        Ok(fresh.lab_settings())
    }
}
