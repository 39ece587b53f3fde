//! VPCS nodes on the built-in engine (`--pc-engine builtin`): the lab runs
//! the PC ([`super::pc::Pc`]) itself, with no process. Same routes, same
//! console (clients, history, `disconnect`), same startup script file,
//! same NIO and capture path as a `vpcs` process; frames from the PC go
//! out through the port's filters and capture like any other.

use super::pc::{Out, Pc};
use crate::error::ApiError;
use crate::lab::host::Host;
use crate::lab::id::{Endpoint, NodeKey};
use crate::lab::{Answer, Deadline, Lab, Reply};
use std::time::Instant;

/// The built-in part of a VPCS node.
#[derive(Debug)]
pub struct Builtin {
    /// Its MAC, unique on this host.
    pub mac: [u8; 6],
    /// The PC while it runs.
    pub pc: Option<Box<Pc>>,
    /// The wake-up already in the lab's timer heap, if any.
    scheduled: Option<Instant>,
}

impl Builtin {
    /// A stopped built-in PC with `mac`.
    pub fn new(mac: [u8; 6]) -> Self {
        Builtin {
            mac,
            pc: None,
            scheduled: None,
        }
    }
}

/// The first MAC of the built-in space: `00:50:79:67:00:00` and up, beside
/// real VPCS's `00:50:79:66:68:xx`, so the two never collide.
const FIRST_MAC: u32 = 0x67_0000;

impl Lab {
    /// The next built-in MAC (16.6 million of them; then they wrap).
    pub(crate) fn next_builtin_mac(&mut self) -> [u8; 6] {
        let n = FIRST_MAC.wrapping_add(self.builtin_macs) & 0x00ff_ffff;
        self.builtin_macs = self.builtin_macs.wrapping_add(1);
        let b = n.to_be_bytes();
        [0x00, 0x50, 0x79, b[1], b[2], b[3]]
    }

    fn builtin_mut(&mut self, key: NodeKey) -> Option<&mut Builtin> {
        self.node_mut(key)?.vpcs_mut()?.builtin.as_mut()
    }

    /// Start a built-in PC: banner, startup script, prompt; answered at once.
    pub(crate) fn start_builtin(
        &mut self,
        now: Instant,
        key: NodeKey,
        host: &mut dyn Host,
    ) -> Reply {
        self.next_proc_serial += 1;
        let ident = self.next_proc_serial as u16;
        let node = self.live_mut(key)?;
        let link = node.ports.first().and_then(|p| p.nio.clone());
        let v = node
            .vpcs_mut()
            .ok_or_else(|| ApiError::Internal("not a PC".into()))?;
        let script = v.startup_script.clone();
        let b = v
            .builtin
            .as_mut()
            .ok_or_else(|| ApiError::Internal("not a built-in PC".into()))?;
        if b.pc.is_some() {
            return Ok(Answer::NoContent);
        }
        let mut pc = Box::new(Pc::new(b.mac, ident));
        if let Some(crate::lab::command::Nio::Udp(u)) = link {
            let rhost = match u.raddr {
                std::net::IpAddr::V4(a) => a,
                std::net::IpAddr::V6(_) => std::net::Ipv4Addr::UNSPECIFIED,
            };
            pc.set_link((u.lport, rhost, u.rport));
        }
        let out = pc.boot(now, script.as_deref());
        b.pc = Some(pc);
        b.scheduled = None;
        let node = self.live_mut(key)?;
        node.console.history.clear();
        if let Some(v) = node.vpcs_mut() {
            v.command_line = "built-in PC engine".into();
        }
        self.pc_out(now, key, out, host);
        self.node_updated(key);
        Ok(Answer::NoContent)
    }

    /// Stop a built-in PC (nothing to wait for).
    pub(crate) fn stop_builtin(&mut self, key: NodeKey) {
        if let Some(b) = self.builtin_mut(key)
            && b.pc.take().is_some()
        {
            b.scheduled = None;
            self.node_updated(key);
        }
    }

    /// Console input for a running built-in PC.
    pub(crate) fn builtin_input(
        &mut self,
        now: Instant,
        key: NodeKey,
        data: &[u8],
        host: &mut dyn Host,
    ) {
        let Some(pc) = self.builtin_mut(key).and_then(|b| b.pc.as_mut()) else {
            return;
        };
        let out = pc.input(now, data);
        self.pc_out(now, key, out, host);
    }

    /// A frame for a running built-in PC; its answers go out through
    /// `send` (the port's filters and capture included), its console output
    /// waits for the next [`Lab::poll`].
    pub(crate) fn builtin_frame(
        &mut self,
        now: Instant,
        key: NodeKey,
        frame: &[u8],
        send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
    ) -> bool {
        let Some(pc) = self.builtin_mut(key).and_then(|b| b.pc.as_mut()) else {
            return false;
        };
        let mut out = pc.frame(now, frame);
        for f in std::mem::take(&mut out.frames) {
            self.on_frame(now, Endpoint::Node(key), &f, send);
        }
        if out != Out::default() {
            self.pc_later.push((key, out));
        }
        true
    }

    /// A built-in PC's wake-up came.
    pub(crate) fn builtin_timer(&mut self, now: Instant, key: NodeKey, host: &mut dyn Host) {
        let Some(b) = self.builtin_mut(key) else {
            return;
        };
        b.scheduled = None;
        let Some(pc) = b.pc.as_mut() else { return };
        let out = pc.timer(now);
        self.pc_out(now, key, out, host);
    }

    /// Console output and wake-ups held back by `on_frame`, which has no host.
    pub(crate) fn flush_builtin(&mut self, now: Instant, host: &mut dyn Host) {
        for (key, out) in std::mem::take(&mut self.pc_later) {
            self.pc_out(now, key, out, host);
        }
    }

    /// Act on what a PC asked: show its output, send its frames, keep its
    /// files, stop it if it quit, and wake it when it wants.
    fn pc_out(&mut self, now: Instant, key: NodeKey, out: Out, host: &mut dyn Host) {
        if !out.console.is_empty() {
            if let Some(node) = self.node_mut(key) {
                node.console.history.push(&out.console);
            }
            self.broadcast(key, &out.console, host);
        }
        for f in &out.frames {
            self.on_frame(now, Endpoint::Node(key), f, &mut |to, data| {
                host.send_frame(to, data)
            });
        }
        self.save_pc_files(key, host);
        if out.quit {
            self.stop_builtin(key);
            return;
        }
        let Some(b) = self.builtin_mut(key) else {
            return;
        };
        let wake = b.pc.as_ref().and_then(|pc| pc.wake());
        if let Some(t) = wake
            && b.scheduled.is_none_or(|s| t < s)
        {
            b.scheduled = Some(t);
            self.timers.schedule(t, Deadline::Pc(key));
        }
    }

    /// Files the PC saved (`save`) go to the node's directory; a saved
    /// `startup.vpc` is the node's startup script from now on.
    fn save_pc_files(&mut self, key: NodeKey, host: &mut dyn Host) {
        let Some(v) = self.node_mut(key).and_then(|n| n.vpcs_mut()) else {
            return;
        };
        let dir = v.dir.clone();
        let Some(pc) = v.builtin.as_mut().and_then(|b| b.pc.as_mut()) else {
            return;
        };
        let files = pc.files_mut();
        let dirty = std::mem::take(&mut files.dirty);
        let mut startup = None;
        for name in dirty {
            let Some((_, text)) = files.entries.iter().find(|(n, _)| *n == name) else {
                continue;
            };
            if let Err(e) = host.files().write_file(&dir.join(&name), text.as_bytes()) {
                log::warn!("built-in PC: cannot save {name}: {e}");
                continue;
            }
            if name == super::pc::cli::STARTUP {
                startup = Some(text.clone());
            }
        }
        if let Some(text) = startup {
            v.startup_script = Some(text);
        }
    }
}
