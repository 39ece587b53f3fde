//! A PC's built-in engine (`--pc-engine builtin`): the lab runs the PC
//! ([`crate::lab::sim::Pc`]) itself, with no process. Same routes, same
//! console (clients, history, `disconnect`), same startup script file,
//! same NIO and capture path as a `vpcs` process; frames from the PC go
//! out through the port's filters and capture like any other.

use super::{Ctx, Echo};
use crate::lab::sim::{Out, Pc};
use crate::lab::timers::Alarm;
use crate::lab::types::Nio;
use std::path::Path;
use std::time::Instant;

/// The first MAC of the built-in space: `00:50:79:67:00:00` and up, beside
/// real VPCS's `00:50:79:66:68:xx`, so the two never collide.
const FIRST_MAC: u32 = 0x67_0000;

/// The `n`th built-in MAC (16.6 million of them; then they wrap).
pub fn mac(n: u32) -> [u8; 6] {
    let b = (FIRST_MAC.wrapping_add(n) & 0x00ff_ffff).to_be_bytes();
    [0x00, 0x50, 0x79, b[1], b[2], b[3]]
}

/// The built-in engine of a PC.
#[derive(Debug)]
pub struct BuiltinPc {
    /// Its MAC, unique on this host.
    pub mac: [u8; 6],
    /// The PC while it runs.
    pub pc: Option<Box<Pc>>,
    /// The wake-up already in the lab's timer heap, if any.
    scheduled: Option<Instant>,
    /// What frames made it do that needs a host (console output, a quit),
    /// done at the next poll.
    later: Out,
}

impl BuiltinPc {
    /// A stopped built-in PC with `mac`.
    pub fn new(mac: [u8; 6]) -> Self {
        BuiltinPc {
            mac,
            pc: None,
            scheduled: None,
            later: Out::default(),
        }
    }

    /// Boot: banner, startup script, prompt. `ident` numbers its packets.
    pub fn boot(&mut self, cx: &mut Ctx, ident: u16, script: &mut Option<String>, dir: &Path) {
        if self.pc.is_some() {
            return;
        }
        let mut pc = Box::new(Pc::new(self.mac, ident, cx.settings.stamp));
        if let Some(Nio::Udp(u)) = cx.ports.first().and_then(|p| p.nio.as_deref()) {
            let rhost = match u.raddr {
                std::net::IpAddr::V4(a) => a,
                std::net::IpAddr::V6(_) => std::net::Ipv4Addr::UNSPECIFIED,
            };
            pc.set_link((u.lport, rhost, u.rport));
        }
        let out = pc.boot(cx.now, script.as_deref());
        self.pc = Some(pc);
        self.scheduled = None;
        self.later = Out::default();
        cx.console.history.clear();
        self.apply(cx, out, script, dir);
        cx.updated = true;
    }

    /// Stop (nothing to wait for).
    pub fn stop(&mut self, cx: &mut Ctx) {
        if self.pc.take().is_some() {
            self.scheduled = None;
            self.later = Out::default();
            cx.updated = true;
        }
    }

    /// Console input.
    pub fn input(&mut self, cx: &mut Ctx, data: &[u8], script: &mut Option<String>, dir: &Path) {
        let Some(pc) = self.pc.as_mut() else { return };
        let out = pc.input(cx.now, data);
        self.apply(cx, out, script, dir);
    }

    /// Its wake-up came.
    pub fn timer(&mut self, cx: &mut Ctx, script: &mut Option<String>, dir: &Path) {
        self.scheduled = None;
        let Some(pc) = self.pc.as_mut() else { return };
        let out = pc.timer(cx.now);
        self.apply(cx, out, script, dir);
    }

    /// What frames left for a poll.
    pub fn flush(&mut self, cx: &mut Ctx, script: &mut Option<String>, dir: &Path) {
        let out = std::mem::take(&mut self.later);
        self.apply(cx, out, script, dir);
    }

    /// A frame for the PC: its answers go back at once; what needs a
    /// host waits for [`BuiltinPc::flush`]. `None` when it is stopped.
    pub fn frame(&mut self, now: Instant, frame: &[u8]) -> Option<Echo> {
        let pc = self.pc.as_mut()?;
        let mut out = pc.frame(now, frame);
        let frames = std::mem::take(&mut out.frames);
        let flush = out != Out::default();
        if flush {
            self.later.console.extend_from_slice(&out.console);
            self.later.quit |= out.quit;
        }
        Some(Echo { frames, flush })
    }

    /// Act on what the PC asked: show its output, send its frames, keep
    /// its files, stop it if it quit, and wake it when it wants.
    fn apply(&mut self, cx: &mut Ctx, out: Out, script: &mut Option<String>, dir: &Path) {
        if !out.console.is_empty() {
            cx.console.history.push(&out.console);
            cx.broadcast(&out.console);
        }
        cx.frames.extend(out.frames);
        self.save_files(cx, script, dir);
        if out.quit {
            self.stop(cx);
            return;
        }
        let wake = self.pc.as_ref().and_then(|pc| pc.wake());
        if let Some(t) = wake
            && self.scheduled.is_none_or(|s| t < s)
        {
            self.scheduled = Some(t);
            cx.schedule(t, Alarm::Wake);
        }
    }

    /// Files the PC saved (`save`) go to the node's directory; a saved
    /// `startup.vpc` is the node's startup script from now on.
    fn save_files(&mut self, cx: &mut Ctx, script: &mut Option<String>, dir: &Path) {
        let Some(pc) = self.pc.as_mut() else { return };
        let files = pc.files_mut();
        let dirty = std::mem::take(&mut files.dirty);
        for name in dirty {
            let Some((_, text)) = files.entries.iter().find(|(n, _)| *n == name) else {
                continue;
            };
            if let Err(e) = cx
                .host
                .files()
                .write_file(&dir.join(&name), text.as_bytes())
            {
                cx.warn(format!("built-in PC: cannot save {name}: {e}"));
                continue;
            }
            if name == crate::lab::sim::cli::STARTUP {
                *script = Some(text.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn macs_are_in_their_own_space_and_wrap() {
        assert_eq!(super::mac(0), [0x00, 0x50, 0x79, 0x67, 0x00, 0x00]);
        assert_eq!(super::mac(0x98_ffff), [0x00, 0x50, 0x79, 0xff, 0xff, 0xff]);
        assert_eq!(super::mac(0x99_0000), [0x00, 0x50, 0x79, 0x00, 0x00, 0x00]);
    }
}
