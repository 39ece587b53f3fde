//! VPCS processes on the loop: spawning one on a pty (sandboxed), reading
//! its console, noticing its exit. When to start, stop or kill is the lab's
//! decision; this file does what it asks and reports what happened.

use super::{Entry, Io, Server, guarded};
use crate::error::ApiError;
use crate::lab::host::VmSpawn;
use crate::lab::{NodeKey, Spawn, Spawned};
use crate::os::nb::{Moved, read_some};
use crate::os::spawn::Started;
use crate::sys;
use mio::Interest;
use mio::unix::SourceFd;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

/// A running VPCS process, its descriptors, and the tokens of those that
/// are registered (pidfd, pty, internal socket; the pty leaves at EOF).
pub(super) struct ProcIo {
    pub(super) p: Started,
    tokens: Vec<(RawFd, usize)>,
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
        let reaped = sys::try_reap(p.p.pid);
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
            let Some(p) = self.proc(node).filter(|p| p.pty_open()) else {
                break;
            };
            match read_some(&p.p.pty, &mut buf) {
                Moved::Bytes(n) => out.extend_from_slice(&buf[..n]),
                Moved::Later => break,
                // EIO: the child side is closed (the process is exiting).
                Moved::Closed => self.unwatch(node, |p| p.pty.as_raw_fd()),
            }
        }
        out
    }

    pub(super) fn proc(&mut self, node: NodeKey) -> Option<&mut ProcIo> {
        self.nodes
            .get_mut(&node)
            .and_then(|n| n.proc.as_deref_mut())
    }

    /// Deregister one of the process's descriptors.
    fn unwatch(&mut self, node: NodeKey, which: fn(&Started) -> RawFd) {
        let Some(p) = self.proc(node) else { return };
        let fd = which(&p.p);
        let Some(at) = p.tokens.iter().position(|(f, _)| *f == fd) else {
            return;
        };
        let (fd, token) = p.tokens.swap_remove(at);
        self.unregister(&mut SourceFd(&fd), token);
    }

    /// Drop the process's descriptors (it has been reaped).
    pub(super) fn forget_process(&mut self, node: NodeKey) {
        let Some(p) = self.nodes.get_mut(&node).and_then(|n| n.proc.take()) else {
            return;
        };
        for (fd, token) in p.tokens {
            self.unregister(&mut SourceFd(&fd), token);
        }
    }

    /// Start VPCS for `node` (see [`crate::os::spawn`]) and watch its exit,
    /// its console and its frames.
    pub(super) fn spawn_vpcs(&mut self, node: NodeKey, s: &Spawn) -> Result<Spawned, ApiError> {
        let p = crate::os::spawn::start_vpcs(s, self.landlock)?;
        let spawned = Spawned {
            pid: p.pid,
            filter_shell: p.filter_shell,
            command_line: p.command_line.clone(),
        };
        let mut watch = vec![
            (p.pidfd.as_raw_fd(), Entry::ChildExit(node)),
            (p.pty.as_raw_fd(), Entry::Pty(node)),
        ];
        if let Some(internal) = &p.internal {
            watch.push((internal.as_raw_fd(), Entry::NodeSocket(node)));
        }
        self.watch_process(node, p, spawned, watch)
    }

    /// Start QEMU for `node` (see [`crate::os::vm`]) and watch its exit,
    /// console and monitor; its adapters' channels become the node's NIOs
    /// `channel_base + i`.
    pub(super) fn spawn_qemu(&mut self, node: NodeKey, s: &VmSpawn) -> Result<Spawned, ApiError> {
        let (p, nics) = crate::os::vm::start_qemu(s)?;
        let spawned = Spawned {
            pid: p.pid,
            filter_shell: false,
            command_line: p.command_line.clone(),
        };
        let mut watch = vec![
            (p.pidfd.as_raw_fd(), Entry::ChildExit(node)),
            (p.pty.as_raw_fd(), Entry::Pty(node)),
        ];
        if let Some(monitor) = &p.monitor {
            watch.push((monitor.as_raw_fd(), Entry::Monitor(node)));
        }
        let spawned = self.watch_process(node, p, spawned, watch)?;
        for (i, nic) in nics.into_iter().enumerate() {
            let io = crate::os::nio::NioIo::Udp(nic);
            let fd = io.fd();
            let port = s.channel_base + i;
            let registered = self.register(
                &mut SourceFd(&fd),
                Interest::READABLE,
                Entry::NioSocket(node, port),
            );
            match registered {
                Ok(token) => {
                    self.nodes.slot(node).nios.insert(port, (token, io));
                }
                Err(e) => log::warn!("cannot watch adapter {i}'s channel: {e}"),
            }
        }
        Ok(spawned)
    }

    /// Keep a process just started and register its descriptors; killed
    /// and forgotten when one cannot be.
    fn watch_process(
        &mut self,
        node: NodeKey,
        p: Started,
        spawned: Spawned,
        watch: Vec<(RawFd, Entry)>,
    ) -> Result<Spawned, ApiError> {
        self.nodes.slot(node).proc = Some(Box::new(ProcIo {
            p,
            tokens: Vec::new(),
        }));
        for (fd, entry) in watch {
            match self.register(&mut SourceFd(&fd), Interest::READABLE, entry) {
                Ok(token) => self
                    .proc(node)
                    .into_iter()
                    .for_each(|p| p.tokens.push((fd, token))),
                Err(e) => {
                    sys::kill_group(spawned.pid);
                    sys::reap_blocking(spawned.pid);
                    self.forget_process(node);
                    return Err(ApiError::io("watching the process", &e));
                }
            }
        }
        Ok(spawned)
    }
}

impl Server {
    /// The monitor is readable: hand what QMP said to the lab.
    pub(super) fn on_monitor(&mut self, now: Instant, node: NodeKey) {
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        while let Some(m) = self.io.proc(node).and_then(|p| p.p.monitor.as_ref()) {
            match read_some(m, &mut buf) {
                Moved::Bytes(n) => data.extend_from_slice(&buf[..n]),
                Moved::Later => break,
                // QEMU is going: its exit tells the rest.
                Moved::Closed => {
                    self.io
                        .unwatch(node, |p| p.monitor.as_ref().map_or(-1, |m| m.as_raw_fd()));
                    break;
                }
            }
            if data.len() >= crate::limits::READ_BUDGET {
                break;
            }
        }
        if !data.is_empty() {
            let (lab, io) = (&mut self.lab, &mut self.io);
            let _ = guarded("monitor output", || lab.on_monitor(now, node, &data, io));
        }
    }
}

impl ProcIo {
    fn pty_open(&self) -> bool {
        let fd = self.p.pty.as_raw_fd();
        self.tokens.iter().any(|(f, _)| *f == fd)
    }
}
