//! Starting QEMU: the VM's linked clones (qemu-img), its console and
//! monitor on socket pairs, one datagram channel per adapter, its output
//! in `qemu.log`, in its own session, killed if nanolab dies. What to run
//! and when is the lab's decision; watching it is the reactor's.

use crate::error::ApiError;
use crate::lab::host::VmSpawn;
use crate::os::spawn::Started;
use crate::sys;
use mio::net::UdpSocket;
use std::fs::File;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};

/// Start QEMU as `s` says: the process, and the server's ends of its
/// adapters' channels, in adapter order.
pub fn start_qemu(s: &VmSpawn) -> Result<(Started, Vec<UdpSocket>), ApiError> {
    let program = s
        .args
        .first()
        .ok_or_else(|| ApiError::conflict("QEMU binary path is not set"))?;
    for (base, overlay) in &s.overlays {
        if !overlay.exists() {
            linked_clone(Path::new(program), base, overlay)?;
        }
    }
    let io = |what: &'static str| move |e: std::io::Error| ApiError::io(what, &e);
    let (console, console_child) = UnixStream::pair().map_err(io("a console socket pair"))?;
    let (monitor, monitor_child) = UnixStream::pair().map_err(io("a monitor socket pair"))?;
    let mut nics = Vec::new();
    let mut nic_children = Vec::new();
    for _ in 0..s.adapters {
        let (ours, theirs) = channel().map_err(io("an adapter channel"))?;
        nics.push(ours);
        nic_children.push(theirs);
    }
    let mut keep: Vec<RawFd> = vec![console_child.as_raw_fd(), monitor_child.as_raw_fd()];
    keep.extend(nic_children.iter().map(|n| n.as_raw_fd()));
    let argv: Vec<String> = s
        .args
        .iter()
        .map(|a| {
            let mut a = a
                .replace("@console@", &console_child.as_raw_fd().to_string())
                .replace("@monitor@", &monitor_child.as_raw_fd().to_string());
            for (i, n) in nic_children.iter().enumerate() {
                a = a.replace(&format!("@nic{i}@"), &n.as_raw_fd().to_string());
            }
            a
        })
        .collect();
    let command_line =
        shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| argv.join(" "));
    let mut log = File::create(&s.log)
        .map_err(|e| ApiError::conflict(format!("Cannot write {}: {e}", s.log.display())))?;
    let _ = writeln!(log, "{command_line}");
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .current_dir(&s.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().map_err(io("qemu.log"))?))
        .stderr(Stdio::from(log.try_clone().map_err(io("qemu.log"))?));
    let ruleset = confinement(s);
    sys::prepare_vm_child(
        &mut cmd,
        keep,
        s.nice,
        ruleset.as_ref().map(|r| r.as_raw_fd()),
    );
    let child = cmd.spawn().map_err(|e| {
        ApiError::conflict(format!(
            "QEMU binary '{}' could not be started: {e}",
            argv[0]
        ))
    })?;
    drop((console_child, monitor_child, nic_children));
    let pid = child.id();
    let pidfd = sys::pidfd_open(pid).map_err(|e| {
        sys::kill_group(pid);
        sys::reap_blocking(pid);
        ApiError::io("watching the QEMU process", &e)
    })?;
    console
        .set_nonblocking(true)
        .map_err(io("the console socket"))?;
    monitor
        .set_nonblocking(true)
        .map_err(io("the monitor socket"))?;
    let started = Started {
        pid,
        child,
        pidfd,
        pty: File::from(OwnedFd::from(console)),
        internal: None,
        monitor: Some(File::from(OwnedFd::from(monitor))),
        log,
        filter_shell: false,
        command_line,
    };
    Ok((started, nics))
}

/// What QEMU may touch, as a Landlock ruleset: read the system (its
/// program, libraries, firmware, `/proc`, `/sys`, devices), the images it
/// was given, read and write `/dev/kvm` and the like, and do anything only
/// beneath its own directory. `None` where the kernel has no Landlock:
/// logged once, and QEMU runs unconfined (its forbidden options still hold).
fn confinement(s: &VmSpawn) -> Option<OwnedFd> {
    use sys::Access::{Full, Read, ReadWrite};
    static WARNED: std::sync::Once = std::sync::Once::new();
    if sys::landlock_abi().is_none() {
        WARNED.call_once(|| log::warn!("kernel without Landlock: QEMU runs unconfined"));
        return None;
    }
    let mut rules: Vec<(&Path, sys::Access)> = [
        "/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev",
    ]
    .iter()
    .map(|p| (Path::new(*p), Read))
    .collect();
    for dev in [
        "/dev/null",
        "/dev/zero",
        "/dev/kvm",
        "/dev/urandom",
        "/dev/random",
        "/dev/shm",
    ] {
        rules.push((Path::new(dev), ReadWrite));
    }
    rules.extend(s.reads.iter().map(|p| (p.as_path(), Read)));
    rules.push((s.dir.as_path(), Full));
    match sys::fs_ruleset(&rules) {
        Ok(r) => Some(r),
        Err(e) => {
            log::warn!("cannot confine QEMU with Landlock ({e}): it runs unconfined");
            None
        }
    }
}

/// Two UDP sockets on loopback connected to each other: the server's end
/// (non-blocking, for the loop) and QEMU's.
fn channel() -> std::io::Result<(UdpSocket, std::net::UdpSocket)> {
    let lo = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let ours = std::net::UdpSocket::bind(lo)?;
    let theirs = std::net::UdpSocket::bind(lo)?;
    ours.connect(theirs.local_addr()?)?;
    theirs.connect(ours.local_addr()?)?;
    ours.set_nonblocking(true)?;
    Ok((UdpSocket::from_std(ours), theirs))
}

/// A qcow2 overlay of `base` at `overlay`, with the backing format named
/// (qemu-img 6.1 and later refuse an overlay without it), made with the
/// qemu-img beside the emulator, else the one on `PATH`.
fn linked_clone(qemu: &Path, base: &Path, overlay: &Path) -> Result<(), ApiError> {
    let beside = qemu.with_file_name("qemu-img");
    let img = if beside.is_file() {
        beside
    } else {
        "qemu-img".into()
    };
    let info = Command::new(&img)
        .args(["info", "--output=json", "-U"])
        .arg(base)
        .output()
        .map_err(|e| ApiError::conflict(format!("qemu-img could not be run: {e}")))?;
    let format = serde_json::from_slice::<serde_json::Value>(&info.stdout)
        .ok()
        .and_then(|v| v["format"].as_str().map(String::from))
        .ok_or_else(|| {
            ApiError::conflict(format!(
                "Disk image '{}' cannot be read by qemu-img: {}",
                base.display(),
                String::from_utf8_lossy(&info.stderr).trim()
            ))
        })?;
    let out = Command::new(&img)
        .args(["create", "-q", "-f", "qcow2", "-F", &format, "-b"])
        .arg(base)
        .arg(overlay)
        .output()
        .map_err(|e| ApiError::conflict(format!("qemu-img could not be run: {e}")))?;
    if !out.status.success() {
        return Err(ApiError::conflict(format!(
            "The linked clone of '{}' could not be made: {}",
            base.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}
