//! The lab's [`Host`], over the real operating system: each method performs
//! one effect the lab decided on, with sockets from the loop's registry,
//! processes through `sys`, files through `os::fs`.

use super::{Entry, Io};
use crate::api::Ticket;
use crate::error::ApiError;
use crate::lab::{ClientId, Files, Host, NioUdp, NodeKey, Reply, Settings, Signal, Spawn, Spawned};
use crate::sys;
use mio::Interest;
use mio::net::{TcpListener, UdpSocket};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};

impl Io {
    /// Forget the node's descriptors once it has none left.
    fn tidy(&mut self, node: NodeKey) {
        if self
            .nodes
            .get(&node)
            .is_some_and(|n| n.console.is_none() && n.proc.is_none() && n.nios.is_empty())
        {
            self.nodes.remove(&node);
        }
    }
}

impl Host for Io {
    fn reply(&mut self, ticket: Ticket, reply: Reply) {
        self.answer(ticket, reply);
    }

    fn bind_console(&mut self, node: NodeKey, port: u16) -> Result<(), ApiError> {
        let busy = || ApiError::conflict(format!("Console port {port} is already in use"));
        let mut listener = TcpListener::bind(SocketAddr::new(self.config.console_host(), port))
            .map_err(|_| busy())?;
        let token = self
            .register(
                &mut listener,
                Interest::READABLE,
                Entry::ConsoleListener(node),
            )
            .map_err(|e| ApiError::io("registering the console listener", &e))?;
        let old = self
            .nodes
            .entry(node)
            .or_default()
            .console
            .replace((token, listener));
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

    fn console_ready(&mut self, client: ClientId) {
        self.ready_clients.push(client);
    }

    fn console_drop(&mut self, client: ClientId) {
        if let Some(token) = self.client_token(client) {
            self.drop_client(token);
        }
    }

    fn udp_free(&mut self, port: u16) -> bool {
        std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
    }

    /// Bind `lport` on every address of the peer's family, connect it to the
    /// peer, and put it in place of the port's previous socket.
    fn open_nio(&mut self, node: NodeKey, port: usize, nio: &NioUdp) -> Result<(), ApiError> {
        let local = SocketAddr::new(super::udp_io::bind_addr(nio.raddr), nio.lport);
        let mut socket = UdpSocket::bind(local).map_err(|e| {
            ApiError::conflict(format!("UDP port {} is already in use: {e}", nio.lport))
        })?;
        socket
            .connect(SocketAddr::new(nio.raddr, nio.rport))
            .map_err(|e| {
                ApiError::conflict(format!("Cannot reach {}:{}: {e}", nio.rhost, nio.rport))
            })?;
        let token = self
            .register(
                &mut socket,
                Interest::READABLE,
                Entry::NioSocket(node, port),
            )
            .map_err(|e| ApiError::io("registering the NIO socket", &e))?;
        let old = self
            .nodes
            .entry(node)
            .or_default()
            .nios
            .insert(port, (token, socket));
        if let Some((t, mut s)) = old {
            self.unregister(&mut s, t);
        }
        Ok(())
    }

    fn close_nio(&mut self, node: NodeKey, port: usize) {
        if let Some((t, mut s)) = self.nodes.get_mut(&node).and_then(|n| n.nios.remove(&port)) {
            self.unregister(&mut s, t);
        }
        self.tidy(node);
    }

    fn spawn(&mut self, node: NodeKey, spawn: &Spawn) -> Result<Spawned, ApiError> {
        self.spawn_vpcs(node, spawn)
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
        self.tidy(node);
    }

    fn pending_output(&mut self, node: NodeKey) -> Vec<u8> {
        self.read_pty(node)
    }

    fn console_input(&mut self, node: NodeKey, data: &[u8]) {
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

    fn interfaces(&mut self) -> Result<Vec<String>, ApiError> {
        sys::interface_names().map_err(|e| ApiError::io("listing interfaces", &e))
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
