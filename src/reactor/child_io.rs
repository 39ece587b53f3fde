//! VPCS processes on the loop: spawning one on a pty (sandboxed), reading
//! its console, noticing its exit. When to start, stop or kill is the lab's
//! decision; this file does what it asks and reports what happened.

use super::{Entry, Io, Server, guarded, would_block};
use crate::error::ApiError;
use crate::lab::nodes::vpcs::{self, Launch};
use crate::lab::{NodeKey, Spawn, Spawned};
use crate::sys;
use mio::Interest;
use mio::net::UdpSocket;
use mio::unix::SourceFd;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

/// A running VPCS process and the descriptors that go with it.
pub(super) struct ProcIo {
    pub(super) pid: u32,
    _child: std::process::Child,
    pidfd: OwnedFd,
    exit_token: usize,
    pty: File,
    pty_token: Option<usize>,
    pub(super) internal: UdpSocket,
    internal_token: usize,
    log: File,
}

impl Server {
    /// The pty is readable: hand what VPCS printed to the lab.
    pub(super) fn on_pty(&mut self, now: Instant, node: NodeKey) {
        let data = self.io.read_pty(node);
        if !data.is_empty() {
            let (lab, io) = (&mut self.lab, &mut self.io);
            let _ = guarded("console output", || lab.on_output(now, node, &data, io));
        }
    }

    /// The pidfd is readable: the process has exited.
    pub(super) fn on_child_exit(&mut self, now: Instant, node: NodeKey) {
        let Some(p) = self.io.nodes.get(&node).and_then(|n| n.proc.as_ref()) else {
            return;
        };
        let reaped = sys::try_reap(p.pid);
        if matches!(reaped, sys::Reaped::Running) {
            return;
        }
        let how = reaped.describe();
        let (lab, io) = (&mut self.lab, &mut self.io);
        let _ = guarded("a process exit", || lab.on_exit(now, node, &how, io));
    }
}

impl Io {
    /// Everything the node's pty holds now (bounded); closes the pty once
    /// the child side is gone.
    pub(super) fn read_pty(&mut self, node: NodeKey) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while out.len() < crate::limits::READ_BUDGET {
            let Some(p) = self.nodes.get_mut(&node).and_then(|n| n.proc.as_mut()) else {
                break;
            };
            if p.pty_token.is_none() {
                break;
            }
            match (&p.pty).read(&mut buf) {
                Ok(0) => self.close_pty(node),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if would_block(&e) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // EIO: the child side is closed (the process is exiting).
                Err(_) => self.close_pty(node),
            }
        }
        out
    }

    fn close_pty(&mut self, node: NodeKey) {
        let Some(p) = self.nodes.get_mut(&node).and_then(|n| n.proc.as_mut()) else {
            return;
        };
        if let Some(token) = p.pty_token.take() {
            let raw = p.pty.as_raw_fd();
            self.unregister(&mut SourceFd(&raw), token);
        }
    }

    /// Drop the process's descriptors (it has been reaped).
    pub(super) fn forget_process(&mut self, node: NodeKey) {
        let Some(mut p) = self.nodes.get_mut(&node).and_then(|n| n.proc.take()) else {
            return;
        };
        let raw = p.pidfd.as_raw_fd();
        self.unregister(&mut SourceFd(&raw), p.exit_token);
        if let Some(t) = p.pty_token.take() {
            let raw = p.pty.as_raw_fd();
            self.unregister(&mut SourceFd(&raw), t);
        }
        self.unregister(&mut p.internal, p.internal_token);
    }

    pub(super) fn write_pty(&mut self, node: NodeKey, data: &[u8]) {
        if let Some(p) = self.nodes.get(&node).and_then(|n| n.proc.as_ref())
            && let Err(e) = (&p.pty).write_all(data)
        {
            // A full pty drops the input, like a UART.
            log::debug!("console input dropped: {e}");
        }
    }

    pub(super) fn log_boot(&mut self, node: NodeKey, data: &[u8]) {
        if let Some(p) = self.nodes.get_mut(&node).and_then(|n| n.proc.as_mut()) {
            let _ = p.log.write_all(data);
        }
    }

    /// The program and, when the kernel sandbox applies, its Landlock ruleset.
    fn program_and_sandbox(&self, s: &Spawn) -> Result<(PathBuf, Option<OwnedFd>), ApiError> {
        let path_var = std::env::var_os("PATH");
        let program = crate::os::program::resolve(s.program.as_deref(), path_var.as_deref())?;
        if !(s.sandbox && self.landlock) {
            return Ok((program, None));
        }
        let real = std::fs::canonicalize(&program)
            .map_err(|e| ApiError::io("resolving the VPCS program", &e))?;
        let interp = crate::os::program::elf_interpreter(&real).map_err(|why| {
            ApiError::conflict(format!(
                "VPCS program {} cannot be sandboxed ({why}); point --vpcs at the vpcs binary, or run \
                 nanolab with --no-console-sandbox",
                program.display()
            ))
        })?;
        let mut allowed = vec![real];
        if let Some(i) = interp {
            allowed.push(std::fs::canonicalize(&i).unwrap_or(i));
        }
        let refs: Vec<&std::path::Path> = allowed.iter().map(|p| p.as_path()).collect();
        let ruleset = sys::exec_only_ruleset(&refs)
            .map_err(|e| ApiError::io("building the Landlock ruleset", &e))?;
        Ok((program, Some(ruleset)))
    }

    /// Start VPCS for `node` on a fresh pty, its frames to a new internal
    /// socket, in its own session, confined when the kernel allows.
    pub(super) fn spawn_vpcs(&mut self, node: NodeKey, s: &Spawn) -> Result<Spawned, ApiError> {
        let (program, ruleset) = self.program_and_sandbox(s)?;
        let mut internal = UdpSocket::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .map_err(|e| ApiError::io("binding the node's internal socket", &e))?;
        let server_port = internal
            .local_addr()
            .map_err(|e| ApiError::io("internal socket", &e))?
            .port();
        internal
            .connect(SocketAddr::from((Ipv4Addr::LOCALHOST, s.vpcs_port)))
            .map_err(|e| ApiError::io("connecting the internal socket", &e))?;
        let launch = Launch {
            program,
            mac: s.mac,
            vpcs_port: s.vpcs_port,
            server_port,
            startup_script: s.startup_script,
        };
        let argv = vpcs::command_line(&launch);
        let dir = &s.dir;
        let mut log = File::options()
            .create(true)
            .append(true)
            .open(dir.join(vpcs::LOG_FILE))
            .map_err(|e| {
                ApiError::conflict(format!("Cannot write vpcs.log in {}: {e}", dir.display()))
            })?;
        let _ = writeln!(log, "{}{argv:?}", vpcs::LOG_HEADER);
        let (master, slave) =
            sys::open_pty().map_err(|e| ApiError::io("opening a pseudo-terminal", &e))?;
        let io_err = |e: std::io::Error| ApiError::io("preparing the VPCS process", &e);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .current_dir(dir)
            .stdin(Stdio::from(slave.try_clone().map_err(io_err)?))
            .stdout(Stdio::from(slave.try_clone().map_err(io_err)?))
            .stderr(Stdio::from(log.try_clone().map_err(io_err)?));
        sys::prepare_child(
            &mut cmd,
            sys::ChildSetup {
                tty: slave.as_raw_fd(),
                landlock: ruleset.as_ref().map(|r| r.as_raw_fd()),
            },
        );
        let child = cmd.spawn().map_err(|e| {
            ApiError::conflict(format!(
                "VPCS program {} could not be started: {e}",
                argv[0].to_string_lossy()
            ))
        })?;
        drop(slave);
        let pid = child.id();
        let pidfd = sys::pidfd_open(pid).map_err(|e| {
            sys::kill_group(pid);
            sys::reap_blocking(pid);
            ApiError::io("watching the VPCS process", &e)
        })?;
        let pty = File::from(master);
        let (raw_pid, raw_pty) = (pidfd.as_raw_fd(), pty.as_raw_fd());
        let registered = self.register_process(node, raw_pid, raw_pty, &mut internal);
        let Ok((exit_token, pty_token, internal_token)) = registered else {
            sys::kill_group(pid);
            sys::reap_blocking(pid);
            return Err(ApiError::Internal("cannot watch the VPCS process".into()));
        };
        self.nodes.entry(node).or_default().proc = Some(ProcIo {
            pid,
            _child: child,
            pidfd,
            exit_token,
            pty,
            pty_token: Some(pty_token),
            internal,
            internal_token,
            log,
        });
        Ok(Spawned {
            pid,
            filter_shell: ruleset.is_none() && s.sandbox,
        })
    }

    fn register_process(
        &mut self,
        node: NodeKey,
        raw_pid: i32,
        raw_pty: i32,
        internal: &mut UdpSocket,
    ) -> std::io::Result<(usize, usize, usize)> {
        let exit = self.register(
            &mut SourceFd(&raw_pid),
            Interest::READABLE,
            Entry::ChildExit(node),
        )?;
        let pty = match self.register(
            &mut SourceFd(&raw_pty),
            Interest::READABLE,
            Entry::Pty(node),
        ) {
            Ok(t) => t,
            Err(e) => {
                self.unregister(&mut SourceFd(&raw_pid), exit);
                return Err(e);
            }
        };
        match self.register(internal, Interest::READABLE, Entry::NodeSocket(node)) {
            Ok(t) => Ok((exit, pty, t)),
            Err(e) => {
                self.unregister(&mut SourceFd(&raw_pid), exit);
                self.unregister(&mut SourceFd(&raw_pty), pty);
                Err(e)
            }
        }
    }
}
