//! VPCS processes and tunnels on the loop: spawn, console readiness, exit,
//! stop with a grace period, and the UDP relay between NIO and VPCS.

use super::handlers::Outcome;
use super::{AfterStop, Entry, Pending, Proc, ReplyTo, Server, TimerKey, would_block};
use crate::error::ApiError;
use crate::http::response::Response;
use crate::limits::{DATAGRAMS_PER_WAKEUP, START_ERROR_BYTES, START_TIMEOUT, STOP_GRACE};
use crate::model::fs;
use crate::sys;
use crate::vpcs::{self, Launch};
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

const STOP_ROUTE: &str = "/v1/projects/{project_id}/vpcs/vms/{vm_id}/stop";
const VM_ROUTE: &str = "/v1/projects/{project_id}/vpcs/vms/{vm_id}";
pub(super) const RELOAD_ROUTE: &str = "/v1/projects/{project_id}/vpcs/vms/{vm_id}/reload";

/// The prompt VPCS prints when its console is ready for commands.
const PROMPT: &[u8] = b"> ";

impl Server {
    /// Spawn VPCS and park until its console shows a prompt (or it dies).
    ///
    /// The spawn itself waits on the loop's spawn queue: forking and waiting
    /// for `exec` blocks, and takes tens of milliseconds when the CPU is busy
    /// (VPCS polls with short sleeps, about 4% of a core each), so a burst of
    /// starts is spread over loop turns and never holds up other requests.
    pub(super) fn start_vm(&mut self, key: usize, to: ReplyTo, route: &'static str) -> Outcome {
        if self.vms[key].proc.is_some() {
            return Outcome::Done(Ok(Response::no_content()));
        }
        self.vms[key].pending = Some(Pending::Start(to, route));
        self.spawns.push_back((key, self.vms[key].vm.id));
        Outcome::Parked
    }

    /// Spawn the next VM waiting on the spawn queue (one per loop turn).
    pub(super) fn spawn_next(&mut self) {
        let Some((key, id)) = self.spawns.pop_front() else {
            return;
        };
        let Some(slot) = self
            .vms
            .get(key)
            .filter(|s| s.vm.id == id && s.proc.is_none())
        else {
            return;
        };
        let Some(Pending::Start(to, route)) = slot.pending else {
            return;
        };
        match self.spawn(key) {
            Ok(()) => {
                let generation = self.vms[key].proc.as_ref().map_or(0, |p| p.generation);
                let at = Instant::now() + START_TIMEOUT;
                self.timers
                    .schedule(at, TimerKey::StartTimeout(key, generation));
            }
            Err(e) => {
                self.vms[key].pending = None;
                self.finish_parked(key, to, Err(e), route);
            }
        }
    }

    /// The program and, when the kernel sandbox applies, its Landlock ruleset.
    fn program_and_sandbox(&self) -> Result<(PathBuf, Option<OwnedFd>), ApiError> {
        let program = vpcs::resolve(
            self.config.vpcs.as_deref(),
            std::env::var_os("PATH").as_deref(),
        )?;
        if !(self.config.console_sandbox && self.landlock) {
            return Ok((program, None));
        }
        let real = std::fs::canonicalize(&program)
            .map_err(|e| ApiError::io("resolving the VPCS program", &e))?;
        let interp = vpcs::elf_interpreter(&real).map_err(|why| {
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

    fn spawn(&mut self, key: usize) -> Result<(), ApiError> {
        let (program, ruleset) = self.program_and_sandbox()?;
        let vm = self.vms[key].vm.clone();
        let internal = UdpSocket::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .map_err(|e| ApiError::io("binding the VM's internal socket", &e))?;
        let server_port = internal
            .local_addr()
            .map_err(|e| ApiError::io("internal socket", &e))?
            .port();
        let (vpcs_port, ()) = self.udp_ports.reserve_pair(vm.project_id, 9, |p| {
            (super::handlers::udp_bindable(p) && super::handlers::udp_bindable(p + 9)).then_some(())
        })?;
        let release = |s: &mut Self| {
            s.udp_ports.release(vpcs_port);
            s.udp_ports.release(vpcs_port + 9);
        };
        let launch = Launch {
            program,
            mac: vm.mac,
            vpcs_port,
            server_port,
            startup_script: vm.startup_script.is_some(),
        };
        match self.spawn_process(key, &launch, internal, ruleset) {
            Ok(()) => Ok(()),
            Err(e) => {
                release(self);
                Err(e)
            }
        }
    }

    fn spawn_process(
        &mut self,
        key: usize,
        launch: &Launch,
        mut internal: UdpSocket,
        ruleset: Option<OwnedFd>,
    ) -> Result<(), ApiError> {
        let vm = &self.vms[key].vm;
        let (id, dir) = (vm.id, vm.dir.clone());
        internal
            .connect(SocketAddr::from((Ipv4Addr::LOCALHOST, launch.vpcs_port)))
            .map_err(|e| ApiError::io("connecting the internal socket", &e))?;
        let argv = vpcs::command_line(launch);
        let mut log = File::options()
            .create(true)
            .append(true)
            .open(dir.join("vpcs.log"))
            .map_err(|e| {
                ApiError::conflict(format!("Cannot write vpcs.log in {}: {e}", dir.display()))
            })?;
        let _ = writeln!(log, "{}{argv:?}", vpcs::LOG_HEADER);
        let (master, slave) =
            sys::open_pty().map_err(|e| ApiError::io("opening a pseudo-terminal", &e))?;
        let io_err = |e: std::io::Error| ApiError::io("preparing the VPCS process", &e);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .current_dir(&dir)
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
            sys::kill_group(pid, libc::SIGKILL);
            sys::reap_blocking(pid);
            ApiError::io("watching the VPCS process", &e)
        })?;
        let shell_filtered = ruleset.is_none() && self.config.console_sandbox;
        self.next_generation += 1;
        let generation = self.next_generation;
        let pty = File::from(master);
        let raw_pid = pidfd.as_raw_fd();
        let raw_pty = pty.as_raw_fd();
        let exit_token = self
            .register(
                &mut SourceFd(&raw_pid),
                Interest::READABLE,
                Entry::ChildExit(key),
            )
            .map_err(io_err)?;
        let pty_token = self
            .register(&mut SourceFd(&raw_pty), Interest::READABLE, Entry::Pty(key))
            .map_err(io_err)?;
        let internal_token = self
            .register(&mut internal, Interest::READABLE, Entry::VmSocket(key))
            .map_err(io_err)?;
        log::info!(
            "vm {id}: vpcs started, pid {pid}, udp {} <-> {}",
            launch.vpcs_port,
            launch.server_port
        );
        self.vms[key].history.clear();
        self.vms[key].proc = Some(Proc {
            pid,
            generation,
            _child: child,
            pidfd,
            exit_token,
            pty,
            pty_token: Some(pty_token),
            internal,
            internal_token,
            vpcs_port: launch.vpcs_port,
            ready: false,
            boot_output: Vec::new(),
            log: Some(log),
            shell_filtered,
        });
        Ok(())
    }

    /// SIGTERM the VM's process group; SIGKILL follows after the grace period.
    pub(super) fn terminate(&mut self, key: usize) {
        let Some(p) = self.vms[key].proc.as_ref() else {
            return;
        };
        log::info!("vm {}: stopping pid {}", self.vms[key].vm.id, p.pid);
        sys::kill_group(p.pid, libc::SIGTERM);
        let generation = p.generation;
        self.timers
            .schedule(Instant::now() + STOP_GRACE, TimerKey::Kill(key, generation));
    }

    pub(super) fn on_kill_timer(&mut self, key: usize, generation: u64) {
        let Some(p) = self.vms.get(key).and_then(|s| s.proc.as_ref()) else {
            return;
        };
        if p.generation == generation {
            log::warn!(
                "vm {}: pid {} ignored SIGTERM for {STOP_GRACE:?}: killing it",
                self.vms[key].vm.id,
                p.pid
            );
            sys::kill_group(p.pid, libc::SIGKILL);
        }
    }

    pub(super) fn on_start_timeout(&mut self, key: usize, generation: u64) {
        // The prompt may be waiting in the pty while the loop was busy: read
        // it before judging.
        self.drain_pty(key);
        let Some(p) = self.vms.get(key).and_then(|s| s.proc.as_ref()) else {
            return;
        };
        if p.generation == generation && !p.ready {
            log::warn!(
                "vm {}: console did not answer within {START_TIMEOUT:?}",
                self.vms[key].vm.id
            );
            sys::kill_group(p.pid, libc::SIGKILL);
        }
    }

    /// Kill the process at once and reap it (project close, server shutdown).
    /// SIGKILL cannot be ignored, so the blocking wait is short.
    pub(super) fn kill_now(&mut self, key: usize) {
        if let Some(pid) = self.vms[key].proc.as_ref().map(|p| p.pid) {
            sys::kill_group(pid, libc::SIGKILL);
            sys::reap_blocking(pid);
            self.process_gone(key, "killed");
        }
        // A start may still wait on the spawn queue (no process yet).
        if let Some(pending) = self.vms[key].pending.take() {
            let to = match pending {
                Pending::Start(to, _) | Pending::Stop(to, _) => to,
            };
            let e = ApiError::conflict("The VM was stopped because its project closed");
            self.reply(to, Response::error(&e));
        }
    }

    /// SIGKILL the process groups of these VMs without waiting.
    pub(super) fn kill_all(&self, keys: &[usize]) {
        for p in keys
            .iter()
            .filter_map(|&k| self.vms.get(k).and_then(|s| s.proc.as_ref()))
        {
            sys::kill_group(p.pid, libc::SIGKILL);
        }
    }

    /// The pidfd is readable: the process has exited.
    pub(super) fn on_child_exit(&mut self, key: usize) {
        let Some(p) = self.vms.get(key).and_then(|s| s.proc.as_ref()) else {
            return;
        };
        let Some(status) = sys::try_reap(p.pid) else {
            return;
        };
        let how = sys::describe_status(status);
        self.drain_pty(key);
        let console = self.process_gone(key, &how);
        match self.vms[key].pending.take() {
            Some(Pending::Start(to, route)) => {
                // vpcs.log has stderr as well as the console's boot output.
                let log = fs::read_tail(
                    &self.vms[key].vm.dir.join("vpcs.log"),
                    4 * START_ERROR_BYTES,
                );
                let output = vpcs::last_run(&log)
                    .filter(|o| !o.is_empty())
                    .unwrap_or(&console);
                let output = &output[output.len().saturating_sub(START_ERROR_BYTES)..];
                let text = String::from_utf8_lossy(output);
                let e =
                    ApiError::conflict(format!("VPCS exited at start ({how}): {}", text.trim()));
                self.finish_parked(key, to, Err(e), route);
            }
            Some(Pending::Stop(to, then)) => self.after_stop(key, to, then),
            None => {
                log::warn!("vm {}: vpcs exited on its own ({how})", self.vms[key].vm.id);
                let note = format!("\r\n*** VPCS stopped ({how}) ***\r\n");
                self.broadcast(key, note.as_bytes());
            }
        }
    }

    fn after_stop(&mut self, key: usize, to: ReplyTo, then: AfterStop) {
        match then {
            AfterStop::Reply => self.finish_parked(key, to, Ok(Response::no_content()), STOP_ROUTE),
            AfterStop::Delete => {
                self.remove_vm(key);
                self.reply(to, Response::no_content().with_route(Some(VM_ROUTE)));
            }
            AfterStop::Start => match self.start_vm(key, to, RELOAD_ROUTE) {
                Outcome::Parked => {}
                Outcome::Done(r) => self.finish_parked(key, to, r, RELOAD_ROUTE),
            },
        }
    }

    /// Release everything the process held. Returns what it printed on its
    /// console before its prompt.
    fn process_gone(&mut self, key: usize, how: &str) -> Vec<u8> {
        let Some(mut p) = self.vms[key].proc.take() else {
            return Vec::new();
        };
        log::info!("vm {}: pid {} gone ({how})", self.vms[key].vm.id, p.pid);
        let raw = p.pidfd.as_raw_fd();
        self.unregister(&mut SourceFd(&raw), p.exit_token);
        if let Some(t) = p.pty_token.take() {
            let raw = p.pty.as_raw_fd();
            self.unregister(&mut SourceFd(&raw), t);
        }
        self.unregister(&mut p.internal, p.internal_token);
        self.udp_ports.release(p.vpcs_port);
        self.udp_ports.release(p.vpcs_port + 9);
        p.boot_output
    }

    /// Read whatever the pty holds before it is closed.
    fn drain_pty(&mut self, key: usize) {
        if let Some(t) = self.vms[key].proc.as_ref().and_then(|p| p.pty_token) {
            self.on_pty(key, t);
        }
    }

    /// VPCS printed something: keep it, show it to every client, and finish
    /// a pending start once the prompt appears.
    pub(super) fn on_pty(&mut self, key: usize, token: usize) {
        let mut buf = [0u8; 4096];
        loop {
            let Some(p) = self.vms.get_mut(key).and_then(|s| s.proc.as_mut()) else {
                return;
            };
            match (&p.pty).read(&mut buf) {
                Ok(0) => return self.close_pty(key, token),
                Ok(n) => self.console_output(key, &buf[..n]),
                Err(e) if would_block(&e) => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // EIO: the child side is closed (the process is exiting).
                Err(_) => return self.close_pty(key, token),
            }
        }
    }

    fn close_pty(&mut self, key: usize, token: usize) {
        let Some(p) = self.vms[key].proc.as_mut() else {
            return;
        };
        if p.pty_token.take().is_some() {
            let raw = p.pty.as_raw_fd();
            self.unregister(&mut SourceFd(&raw), token);
        }
    }

    fn console_output(&mut self, key: usize, data: &[u8]) {
        let slot = &mut self.vms[key];
        slot.history.push(data);
        let Some(p) = slot.proc.as_mut() else { return };
        if !p.ready {
            if let Some(log) = &mut p.log {
                let _ = log.write_all(data);
            }
            if p.boot_output.len() < START_ERROR_BYTES {
                p.boot_output.extend_from_slice(data);
            }
            if p.boot_output.windows(PROMPT.len()).any(|w| w == PROMPT) {
                p.ready = true;
                p.log = None;
                p.boot_output = Vec::new();
                log::info!("vm {}: console ready", slot.vm.id);
                if let Some(Pending::Start(to, route)) = slot.pending.take() {
                    self.finish_parked(key, to, Ok(Response::no_content()), route);
                }
            }
        }
        self.broadcast(key, data);
    }

    /// Write client input to VPCS. A full pty drops the input, like a UART.
    pub(super) fn console_input(&mut self, key: usize, data: &[u8]) {
        if let Some(p) = self.vms.get(key).and_then(|s| s.proc.as_ref())
            && let Err(e) = (&p.pty).write_all(data)
        {
            log::debug!("vm {}: console input dropped: {e}", self.vms[key].vm.id);
        }
    }

    /// Whether '!' lines must be filtered by the proxy for this VM.
    pub(super) fn shell_filtered(&self, key: usize) -> bool {
        self.vms
            .get(key)
            .and_then(|s| s.proc.as_ref())
            .is_some_and(|p| p.shell_filtered)
    }

    /// Frames from VPCS leave through the NIO socket.
    pub(super) fn relay_from_vm(&mut self, key: usize, token: usize) {
        let Some(slot) = self.vms.get_mut(key) else {
            return;
        };
        let Some(p) = slot.proc.as_ref() else { return };
        for _ in 0..DATAGRAMS_PER_WAKEUP {
            let n = match p.internal.recv(&mut self.scratch) {
                Ok(n) => n,
                Err(e) if would_block(&e) => return,
                // ICMP errors from an earlier send: nothing to read, keep going.
                Err(_) => continue,
            };
            let Some((_, nio)) = &slot.nio else {
                slot.stats.dropped += 1;
                continue;
            };
            match nio.send(&self.scratch[..n]) {
                Ok(_) => {
                    slot.stats.out_frames += 1;
                    slot.stats.out_bytes += n as u64;
                }
                Err(e) => {
                    log::trace!("vm {}: frame to peer dropped: {e}", slot.vm.id);
                    slot.stats.dropped += 1;
                }
            }
        }
        self.again.push(token);
    }

    /// Frames from the peer go to VPCS (or are dropped while it is stopped).
    pub(super) fn relay_from_peer(&mut self, key: usize, token: usize) {
        let Some(slot) = self.vms.get_mut(key) else {
            return;
        };
        let Some((_, nio)) = &slot.nio else { return };
        for _ in 0..DATAGRAMS_PER_WAKEUP {
            let n = match nio.recv(&mut self.scratch) {
                Ok(n) => n,
                Err(e) if would_block(&e) => return,
                // A peer that is not up yet answers with ICMP port unreachable.
                Err(_) => continue,
            };
            let sent = slot
                .proc
                .as_ref()
                .map(|p| p.internal.send(&self.scratch[..n]));
            match sent {
                Some(Ok(_)) => {
                    slot.stats.in_frames += 1;
                    slot.stats.in_bytes += n as u64;
                }
                _ => slot.stats.dropped += 1,
            }
        }
        self.again.push(token);
    }

    /// Shutdown: kill every VPCS and close every project (temporary ones are
    /// deleted). Nothing is left running.
    pub(super) fn stop_everything(&mut self) {
        let keys: Vec<usize> = self.vms.iter().map(|(k, _)| k).collect();
        self.kill_all(&keys);
        let ids: Vec<_> = self.projects.keys().copied().collect();
        for id in ids {
            if let Err(e) = self.forget_project(id, false) {
                log::warn!("closing project {id}: {e}");
            }
        }
        log::info!("shut down cleanly");
    }
}
