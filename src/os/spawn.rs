//! Starting a VPCS process: find the program, confine it (Landlock, when
//! the kernel has it), give it a pty for a console, an internal UDP socket
//! for its frames and `vpcs.log` for its errors, in its own session. What
//! to start and when is the lab's decision; watching it is the reactor's.

use crate::error::ApiError;
use crate::lab::Spawn;
use crate::lab::kinds::vpcs::{self, Launch};
use crate::sys;
use mio::net::UdpSocket;
use std::fs::File;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A VPCS process just started, and its descriptors.
pub struct Started {
    /// Its pid (and process group).
    pub pid: u32,
    /// The handle `std` gives; never waited on through it (see `sys`).
    pub child: std::process::Child,
    /// Readable once the process has exited.
    pub pidfd: OwnedFd,
    /// The console (pty master), non-blocking.
    pub pty: File,
    /// The server's end of the frame tunnel, connected to VPCS (a VM's
    /// adapters have channels of their own, relayed as NIOs).
    pub internal: Option<UdpSocket>,
    /// A VM's monitor (QMP), non-blocking.
    pub monitor: Option<File>,
    /// `vpcs.log`, where boot output is kept.
    pub log: File,
    /// No kernel sandbox applies: the console proxy must refuse `!` lines.
    pub filter_shell: bool,
    /// The command line, as a person reads it.
    pub command_line: String,
}

/// The program and, when the kernel sandbox applies, its Landlock ruleset.
fn program_and_sandbox(s: &Spawn, landlock: bool) -> Result<(PathBuf, Option<OwnedFd>), ApiError> {
    let path_var = std::env::var_os("PATH");
    let program = crate::os::program::resolve(s.program.as_deref(), path_var.as_deref())?;
    if !(s.sandbox && landlock) {
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
pub fn start_vpcs(s: &Spawn, landlock: bool) -> Result<Started, ApiError> {
    let (program, ruleset) = program_and_sandbox(s, landlock)?;
    let internal = UdpSocket::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
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
    let command_line = argv
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
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
    Ok(Started {
        pid,
        child,
        pidfd,
        pty: File::from(master),
        internal: Some(internal),
        monitor: None,
        log,
        filter_shell: ruleset.is_none() && s.sandbox,
        command_line,
    })
}
