//! The only unsafe code of the crate: pseudo-terminals, pidfds, process
//! groups, signals, resource limits and Landlock, as thin safe wrappers.
//!
//! Each `unsafe` block has a `// SAFETY:` line. Code that runs in a forked
//! child before `exec` (`pre_exec`) only makes async-signal-safe system calls
//! and allocates nothing.
//!
//! This is the one module allowed `unsafe` (the crate denies it), and the
//! only user of `libc`.

#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Datagrams one [`recv_batch`] call takes at most.
pub const BATCH: usize = 16;

/// Empty buffer descriptors and message headers for a batch call.
fn batch_headers() -> ([libc::iovec; BATCH], [libc::mmsghdr; BATCH]) {
    // SAFETY: all-zero iovec and mmsghdr are valid values (null pointers,
    // zero lengths); the caller fills them before use.
    unsafe { (std::mem::zeroed(), std::mem::zeroed()) }
}

/// Point each of the first `n` message headers at its own buffer
/// descriptor (only once both arrays stay where they are for the call).
fn link_headers(iov: &mut [libc::iovec; BATCH], msgs: &mut [libc::mmsghdr; BATCH], n: usize) {
    for (m, v) in msgs.iter_mut().zip(iov.iter_mut()).take(n) {
        m.msg_hdr.msg_iov = v;
        m.msg_hdr.msg_iovlen = 1;
    }
}

/// Read up to `lens.len()` (at most [`BATCH`]) datagrams from the socket
/// `fd` in one call, without blocking: datagram `i` lands in
/// `buf[i * slot..][..slot]` and its length in `lens[i]`. Returns how many
/// came; `WouldBlock` when none was waiting. A datagram longer than `slot`
/// is cut (`slot` is the largest frame, so none is).
pub fn recv_batch(fd: RawFd, buf: &mut [u8], slot: usize, lens: &mut [usize]) -> io::Result<usize> {
    let n = lens.len().min(BATCH).min(buf.len() / slot.max(1));
    if n == 0 {
        return Ok(0);
    }
    let (mut iov, mut msgs) = batch_headers();
    for i in 0..n {
        iov[i] = libc::iovec {
            iov_base: buf[i * slot..].as_mut_ptr().cast(),
            iov_len: slot,
        };
    }
    link_headers(&mut iov, &mut msgs, n);
    // SAFETY: `msgs[..n]` each point at one iovec of `slot` bytes inside
    // `buf` (n * slot <= buf.len()), all alive for the call; the kernel
    // writes at most `slot` bytes into each and the lengths into `msgs`.
    let got = unsafe {
        libc::recvmmsg(
            fd,
            msgs.as_mut_ptr(),
            n as _,
            libc::MSG_DONTWAIT as _,
            std::ptr::null_mut(),
        )
    };
    let got = usize::try_from(check(got)?).unwrap_or(0);
    for i in 0..got {
        lens[i] = msgs[i].msg_len as usize;
    }
    Ok(got)
}

/// Send `frames` (at most [`BATCH`]) on the connected socket `fd` in one
/// call, without blocking, in order. Returns how many went before the
/// first that could not (the kernel does not say why when some went); an
/// error when the first could not.
pub fn send_batch(fd: RawFd, frames: &[&[u8]]) -> io::Result<usize> {
    let n = frames.len().min(BATCH);
    if n == 0 {
        return Ok(0);
    }
    let (mut iov, mut msgs) = batch_headers();
    for i in 0..n {
        iov[i] = libc::iovec {
            iov_base: frames[i].as_ptr().cast_mut().cast(),
            iov_len: frames[i].len(),
        };
    }
    link_headers(&mut iov, &mut msgs, n);
    // SAFETY: `msgs[..n]` each point at one iovec over one of `frames`,
    // all alive for the call; the kernel only reads them (and writes the
    // lengths sent into `msgs`).
    let sent = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), n as _, libc::MSG_DONTWAIT as _) };
    Ok(usize::try_from(check(sent)?).unwrap_or(0))
}

/// Whether `e` says the process or the system has no descriptor left
/// (`EMFILE`, `ENFILE`): no socket can be opened, whatever its port.
pub fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Raise the soft open-file limit to the hard limit; returns the new limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: `lim` is a valid rlimit.
    check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) })?;
    // `rlim_t` is `u32` on 32-bit targets, `u64` on 64-bit ones.
    #[allow(clippy::useless_conversion)]
    Ok(u64::from(lim.rlim_cur))
}

/// A pseudo-terminal pair: the master stays with the server (non-blocking,
/// close-on-exec), the slave becomes the child's terminal.
pub fn open_pty() -> io::Result<(OwnedFd, OwnedFd)> {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: both out-pointers are valid; name, termios and winsize may be null.
    check(unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    })?;
    // SAFETY: openpty returned two fresh descriptors that nothing else owns.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    set_nonblocking_cloexec(master.as_raw_fd())?;
    // SAFETY: plain fcntl on a descriptor we own.
    check(unsafe { libc::fcntl(slave.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) })?;
    // No echo by the terminal itself: VPCS's line editor echoes what it
    // reads, and keys typed while a command runs (which VPCS discards)
    // would otherwise show twice once VPCS reads its line again.
    // SAFETY: a zeroed termios is filled by tcgetattr before it is used.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: the descriptor is the open pty slave; `t` is ours to fill.
    check(unsafe { libc::tcgetattr(slave.as_raw_fd(), &mut t) })?;
    t.c_lflag &= !(libc::ECHO | libc::ECHONL);
    // SAFETY: `t` is a valid termios for this terminal.
    check(unsafe { libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &t) })?;
    Ok((master, slave))
}

fn set_nonblocking_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a valid descriptor with integer arguments.
    unsafe {
        let flags = check(libc::fcntl(fd, libc::F_GETFL))?;
        check(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK))?;
        check(libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC))?;
    }
    Ok(())
}

/// How a child is confined before it runs.
pub struct ChildSetup {
    /// The slave side of the pty, made the controlling terminal.
    pub tty: RawFd,
    /// A Landlock ruleset to enforce, if any.
    pub landlock: Option<RawFd>,
}

/// Make `cmd` start in a new session (so a new process group) with `tty` as
/// its controlling terminal, with no blocked signals, killed if the server
/// dies, and confined by the Landlock ruleset when one is given.
pub fn prepare_child(cmd: &mut Command, setup: ChildSetup) {
    let ChildSetup { tty, landlock } = setup;
    // SAFETY: the closure only makes async-signal-safe system calls on values
    // copied in (integers), and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::ioctl(tty, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            if let Some(ruleset) = landlock {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Make `cmd` (a VM) start in a new session with no terminal, with no
/// blocked signals, killed if the server dies, and the descriptors in
/// `keep` (its console, monitor and channels) left open across exec, at
/// the `nice` value asked.
pub fn prepare_vm_child(cmd: &mut Command, keep: Vec<RawFd>, nice: i32, landlock: Option<RawFd>) {
    // SAFETY: the closure only makes async-signal-safe system calls on the
    // integers moved in, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            // Failing to raise the priority leaves it as it was.
            libc::setpriority(libc::PRIO_PROCESS, 0, nice);
            if let Some(ruleset) = landlock {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            for &fd in &keep {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Open a pidfd for `pid`: readable once the process has exited.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us alone.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    set_nonblocking_cloexec(fd.as_raw_fd())?;
    Ok(fd)
}

/// Send SIGTERM to every process of group `pgid`. A group that is gone is fine.
pub fn terminate_group(pgid: u32) {
    signal_group(pgid, libc::SIGTERM);
}

/// Send SIGKILL to every process of group `pgid`. A group that is gone is fine.
pub fn kill_group(pgid: u32) {
    signal_group(pgid, libc::SIGKILL);
}

fn signal_group(pgid: u32, sig: libc::c_int) {
    // SAFETY: kill with a negative pid signals a process group; no memory involved.
    unsafe { libc::kill(-(pgid as libc::pid_t), sig) };
}

/// What `waitpid` said about a child.
#[derive(Debug)]
pub enum Reaped {
    /// Still running.
    Running,
    /// Gone, with this wait status (`describe_status` reads it).
    Ended(libc::c_int),
    /// `waitpid` failed (the child was reaped elsewhere, say): gone, but how
    /// is unknown.
    Lost(io::Error),
}

impl Reaped {
    /// Describe how the child ended, for logs and errors.
    pub fn describe(&self) -> String {
        match self {
            Reaped::Running => "still running".into(),
            Reaped::Ended(status) => describe_status(*status),
            Reaped::Lost(e) => format!("exit status unknown: {e}"),
        }
    }
}

fn waitpid(pid: u32, flags: libc::c_int) -> Reaped {
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer.
    let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, flags) };
    match r {
        0 => Reaped::Running,
        r if r == pid as libc::pid_t => Reaped::Ended(status),
        _ => Reaped::Lost(io::Error::last_os_error()),
    }
}

/// Reap `pid` if it has exited.
pub fn try_reap(pid: u32) -> Reaped {
    waitpid(pid, libc::WNOHANG)
}

/// Reap `pid`, waiting for it. Only used right after SIGKILL.
pub fn reap_blocking(pid: u32) -> Reaped {
    waitpid(pid, 0)
}

/// Describe a wait status for logs and errors.
fn describe_status(status: libc::c_int) -> String {
    if libc::WIFEXITED(status) {
        format!("exit code {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("signal {}", libc::WTERMSIG(status))
    } else {
        format!("status {status}")
    }
}

/// SIGTERM and SIGINT delivered as readable events on a descriptor.
pub struct SignalFd {
    fd: OwnedFd,
}

impl SignalFd {
    /// Block SIGTERM and SIGINT for this (only) thread and read them from a signalfd.
    /// Children get an empty signal mask back in [`prepare_child`].
    pub fn new() -> io::Result<Self> {
        // SAFETY: sigset operations on a local, zero-initialised set.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigaddset(&mut set, libc::SIGINT);
            check(libc::sigprocmask(
                libc::SIG_BLOCK,
                &set,
                std::ptr::null_mut(),
            ))?;
            let fd = check(libc::signalfd(
                -1,
                &set,
                libc::SFD_NONBLOCK | libc::SFD_CLOEXEC,
            ))?;
            Ok(SignalFd {
                fd: OwnedFd::from_raw_fd(fd),
            })
        }
    }

    /// The next pending signal number, if any.
    pub fn read(&self) -> Option<u32> {
        // SAFETY: signalfd_siginfo is plain data; we read at most its size into it.
        unsafe {
            let mut info: libc::signalfd_siginfo = std::mem::zeroed();
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            let n = libc::read(
                self.fd.as_raw_fd(),
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                size,
            );
            (n as usize == size).then_some(info.ssi_signo)
        }
    }
}

impl AsRawFd for SignalFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

const LANDLOCK_ACCESS_FS_EXECUTE: u64 = 1;
const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
const LANDLOCK_RULE_PATH_BENEATH: libc::c_int = 1;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// The Landlock ABI version of the running kernel, or `None` when it has none.
pub fn landlock_abi() -> Option<i64> {
    // SAFETY: with the VERSION flag the attribute pointer must be null and size 0.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    // `syscall` returns a C `long`: 32 bits on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    (v > 0).then_some(i64::from(v))
}

/// What a path may be used for under [`fs_ruleset`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read files and list directories beneath it, and execute.
    Read,
    /// Read and write files beneath it (not create or remove any).
    ReadWrite,
    /// Everything beneath it: create, write, remove.
    Full,
}

/// Every file-system right of Landlock ABI 1.
const LANDLOCK_ACCESS_FS_ABI1: u64 = (1 << 13) - 1;
/// Reading files, listing directories, executing.
const LANDLOCK_READ: u64 = 1 | (1 << 2) | (1 << 3);
/// Writing files.
const LANDLOCK_WRITE_FILE: u64 = 1 << 1;
/// Truncating files (ABI 3).
const LANDLOCK_TRUNCATE: u64 = 1 << 14;

/// A Landlock ruleset that handles every file-system right and allows
/// only `rules` (paths that do not exist are skipped).
pub fn fs_ruleset(rules: &[(&Path, Access)]) -> io::Result<OwnedFd> {
    let truncate = if landlock_abi().is_some_and(|v| v >= 3) {
        LANDLOCK_TRUNCATE
    } else {
        0
    };
    let handled = LANDLOCK_ACCESS_FS_ABI1 | truncate;
    let ruleset = create_ruleset(handled)?;
    for (path, access) in rules {
        let Ok(file) = std::fs::File::open(path) else {
            continue;
        };
        let is_dir = file.metadata().is_ok_and(|m| m.is_dir());
        let mut allowed = match access {
            Access::Read => LANDLOCK_READ,
            Access::ReadWrite => LANDLOCK_READ | LANDLOCK_WRITE_FILE | truncate,
            Access::Full => handled,
        };
        // A file takes only the rights that apply to files.
        if !is_dir {
            allowed &= 1 | LANDLOCK_WRITE_FILE | (1 << 2) | truncate;
        }
        add_rule(&ruleset, &file, allowed)?;
    }
    Ok(ruleset)
}

/// A Landlock ruleset handling the `handled` file-system rights.
fn create_ruleset(handled: u64) -> io::Result<OwnedFd> {
    let attr = RulesetAttr {
        handled_access_fs: handled,
    };
    // SAFETY: `attr` is valid for its size; the kernel copies it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr,
            std::mem::size_of::<RulesetAttr>(),
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor from the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Allow `allowed` beneath `file` (a directory, or the file itself).
fn add_rule(ruleset: &OwnedFd, file: &std::fs::File, allowed: u64) -> io::Result<()> {
    let rule = PathBeneathAttr {
        allowed_access: allowed,
        parent_fd: file.as_raw_fd(),
    };
    // SAFETY: `rule` is valid and packed as the kernel expects; both fds are open.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            LANDLOCK_RULE_PATH_BENEATH,
            &rule,
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A Landlock ruleset that forbids executing any file except `allowed`.
/// Only execution is handled: reading and writing files stay allowed.
pub fn exec_only_ruleset(allowed: &[&Path]) -> io::Result<OwnedFd> {
    let ruleset = create_ruleset(LANDLOCK_ACCESS_FS_EXECUTE)?;
    for path in allowed {
        add_rule(
            &ruleset,
            &std::fs::File::open(path)?,
            LANDLOCK_ACCESS_FS_EXECUTE,
        )?;
    }
    Ok(ruleset)
}

/// Names of the host's network interfaces.
pub fn interface_names() -> io::Result<Vec<String>> {
    // /proc/net/dev is this process's network namespace; /sys/class/net
    // is the namespace sysfs was mounted in, the host's inside a test's.
    Ok(parse_net_dev(&std::fs::read_to_string("/proc/net/dev")?))
}

/// The interface names of a `/proc/net/dev` text (two header lines, then
/// `name: counters` per interface), sorted.
pub fn parse_net_dev(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .lines()
        .skip(2)
        .filter_map(|l| l.split_once(':'))
        .map(|(name, _)| name.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    names.sort();
    names
}

use crate::limits::MAX_IFNAME;
const _: () = assert!(
    MAX_IFNAME == libc::IFNAMSIZ - 1,
    "limits::MAX_IFNAME is the kernel's"
);

/// Refuse what the kernel would not take as an interface name.
fn check_ifname(name: &str) -> io::Result<()> {
    if name.is_empty() || name.len() > MAX_IFNAME || name.contains(['/', '\0']) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("'{name}' is not an interface name (1 to {MAX_IFNAME} bytes, no '/')"),
        ));
    }
    Ok(())
}

/// Attach to the TAP device `name` (the kernel creates it, for as long as
/// the descriptor lives, when it does not exist and we may create it),
/// frames without packet information, non-blocking.
pub fn open_tap(name: &str) -> io::Result<OwnedFd> {
    check_ifname(name)?;
    let path = c"/dev/net/tun";
    // SAFETY: a NUL-terminated path and integer flags.
    let fd = check(unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: the kernel just returned this descriptor to us alone.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes the ifreq we own, on our descriptor.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) })?;
    Ok(fd)
}

/// Cap the kernel's send buffer of the socket `fd` at about `bytes` (the
/// kernel doubles the figure for its bookkeeping) and stop it growing the
/// buffer by itself. A stream to a client that never reads otherwise grows
/// to `tcp_wmem`'s maximum (4 MiB by default): a thousand of them put the
/// whole host's TCP into memory pressure, where every connection stalls.
pub fn cap_send_buffer(fd: RawFd, bytes: usize) -> io::Result<()> {
    let size = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: an int option, by pointer and size, on a descriptor we hold.
    check(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// A packet socket on the existing interface `name`: every frame it
/// receives (not the ones the host sends out of it), and frames written
/// to it leave by it. Non-blocking.
pub fn open_packet(name: &str) -> io::Result<OwnedFd> {
    check_ifname(name)?;
    let cname = std::ffi::CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: a NUL-terminated name.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        return Err(io::Error::last_os_error());
    }
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain integer arguments.
    let fd = check(unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            proto as libc::c_int,
        )
    })?;
    // SAFETY: the kernel just returned this descriptor to us alone.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SAFETY: an int option, by pointer and size. Frames the host sends out
    // of the interface are not ours to relay (Linux 4.20+; older kernels
    // refuse the option, which only costs echoes).
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = proto;
    addr.sll_ifindex = index as libc::c_int;
    // SAFETY: bind with a sockaddr_ll we own and its exact size.
    check(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })?;
    Ok(fd)
}

/// Move the calling thread into the network namespace at `path` (as made
/// by `ip netns add`); processes it starts afterwards live there too. For
/// tests that build a network of their own.
pub fn enter_netns(path: &Path) -> io::Result<()> {
    let ns = std::fs::File::open(path)?;
    // SAFETY: setns on a descriptor we own, for the calling thread only.
    check(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) })?;
    Ok(())
}

/// The IPv4 address and netmask of each interface that has one (the first
/// address of each), from `getifaddrs`.
pub fn ipv4_addresses() -> io::Result<Vec<(String, std::net::Ipv4Addr, std::net::Ipv4Addr)>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    check(unsafe { libc::getifaddrs(&mut head) })?;
    let mut out: Vec<(String, std::net::Ipv4Addr, std::net::Ipv4Addr)> = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points to a sockaddr.
        if i32::from(unsafe { (*ifa.ifa_addr).sa_family }) != libc::AF_INET {
            continue;
        }
        let v4 = |sa: *const libc::sockaddr| -> std::net::Ipv4Addr {
            if sa.is_null() {
                return std::net::Ipv4Addr::UNSPECIFIED;
            }
            // SAFETY: an AF_INET address is a sockaddr_in.
            let sin = unsafe { &*(sa as *const libc::sockaddr_in) };
            std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))
        };
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        if out.iter().any(|(n, ..)| *n == name) {
            continue;
        }
        out.push((name, v4(ifa.ifa_addr), v4(ifa.ifa_netmask)));
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// (total, free for unprivileged users) bytes of the filesystem holding `path`.
pub fn disk_space(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statvfs fills a zeroed struct for a NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and outlives the call; `st` is ours.
    check(unsafe { libc::statvfs(c.as_ptr(), &mut st) })?;
    let frsize = st.f_frsize as u64;
    Ok((st.f_blocks as u64 * frsize, st.f_bavail as u64 * frsize))
}

/// Whether `/dev/kvm` opens read-write, speaks KVM API 12 and makes a VM.
/// Necessary for QEMU to use KVM, not sufficient: on nested hosts these
/// succeed and QEMU with KVM still hangs or aborts.
pub fn kvm_usable() -> bool {
    const KVM_GET_API_VERSION: libc::c_ulong = 0xAE00;
    const KVM_CREATE_VM: libc::c_ulong = 0xAE01;
    let Ok(dev) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    else {
        return false;
    };
    // SAFETY: both ioctls take no pointer argument; the descriptor is open.
    let version = unsafe { libc::ioctl(dev.as_raw_fd(), KVM_GET_API_VERSION as _, 0) };
    if version != 12 {
        return false;
    }
    // SAFETY: as above; a VM descriptor comes back, owned at once.
    let vm = unsafe { libc::ioctl(dev.as_raw_fd(), KVM_CREATE_VM as _, 0) };
    if vm < 0 {
        return false;
    }
    // SAFETY: `vm` is a fresh descriptor nobody else owns.
    drop(unsafe { OwnedFd::from_raw_fd(vm) });
    true
}

#[cfg(test)]
mod tests {

    #[test]
    fn interface_names_come_from_proc_net_dev() {
        let text =
            "Inter-|   Receive\n face |bytes packets\n    lo: 1 2 3\n  eth0: 4 5 6\nnltap0:7 8\n";
        assert_eq!(parse_net_dev(text), ["eth0", "lo", "nltap0"]);
    }

    use super::*;

    #[test]
    fn bad_tap_names_are_refused_before_the_kernel() {
        for name in ["", "a-name-far-too-long", "a/b"] {
            let e = open_tap(name).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{name}");
        }
    }

    #[test]
    fn a_batch_goes_in_one_call_and_a_refused_peer_fails_its_first_frame() {
        use std::net::UdpSocket;
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        let frames: Vec<Vec<u8>> = (1..=BATCH as u8).map(|i| vec![i; usize::from(i)]).collect();
        let slices: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        assert_eq!(send_batch(tx.as_raw_fd(), &slices).unwrap(), BATCH);
        let mut buf = [0u8; 64];
        for f in &frames {
            let n = rx.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], f.as_slice());
        }
        // The peer goes: its ICMP error fails the next call's first frame,
        // and the call after that goes again.
        drop(rx);
        assert_eq!(send_batch(tx.as_raw_fd(), &slices[..1]).unwrap(), 1);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let e = send_batch(tx.as_raw_fd(), &slices[..3]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(send_batch(tx.as_raw_fd(), &[]).unwrap(), 0);
    }

    #[test]
    fn pty_pair_opens() {
        let (m, s) = open_pty().unwrap();
        assert!(m.as_raw_fd() >= 0 && s.as_raw_fd() >= 0);
    }

    #[test]
    fn reaping_a_child_that_is_not_ours_is_lost_not_exit_code_0() {
        let r = try_reap(u32::MAX >> 2);
        assert!(matches!(r, Reaped::Lost(_)), "{r:?}");
        assert!(r.describe().contains("unknown"), "{}", r.describe());
        // Reaped below, by pid, which is what is tested.
        #[allow(clippy::zombie_processes)]
        let child = std::process::Command::new("/bin/sh")
            .args(["-c", "exit 3"])
            .spawn()
            .unwrap();
        let r = reap_blocking(child.id());
        assert_eq!(r.describe(), "exit code 3");
    }

    #[test]
    fn landlock_blocks_exec_outside_allowed() {
        if landlock_abi().is_none() {
            eprintln!("kernel without Landlock: nothing to check");
            return;
        }
        let dir = std::env::temp_dir().join(format!("nanolab-ll-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("touched");
        // Allow only `true`: `sh` itself must then fail to start.
        let truth = std::fs::canonicalize("/bin/true").unwrap();
        let interp = std::fs::canonicalize(
            crate::os::program::elf_interpreter(&truth)
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        let ruleset = exec_only_ruleset(&[&truth, &interp]).unwrap();
        let (_m, slave) = open_pty().unwrap();
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(format!("touch {}", marker.display()));
        prepare_child(
            &mut cmd,
            ChildSetup {
                tty: slave.as_raw_fd(),
                landlock: Some(ruleset.as_raw_fd()),
            },
        );
        let res = cmd.status();
        assert!(res.is_err() || !res.unwrap().success());
        assert!(!marker.exists(), "the shell ran despite the ruleset");
        let mut ok = Command::new(&truth);
        prepare_child(
            &mut ok,
            ChildSetup {
                tty: slave.as_raw_fd(),
                landlock: Some(ruleset.as_raw_fd()),
            },
        );
        assert!(
            ok.status().unwrap().success(),
            "the allowed program must run"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    fn send_buffer(fd: RawFd) -> libc::c_int {
        let mut size: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: an int option read into a local of its size.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&mut size as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(r, 0);
        size
    }

    #[test]
    fn out_of_descriptors_is_emfile_or_enfile_only() {
        for (errno, out) in [
            (libc::EMFILE, true),
            (libc::ENFILE, true),
            (libc::EADDRINUSE, false),
        ] {
            assert_eq!(
                out_of_descriptors(&io::Error::from_raw_os_error(errno)),
                out
            );
        }
        assert!(!out_of_descriptors(&io::Error::other("not an OS error")));
    }

    #[test]
    fn a_capped_send_buffer_stays_small_while_the_peer_never_reads() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut ours, _) = listener.accept().unwrap();
        cap_send_buffer(ours.as_raw_fd(), 64 * 1024).unwrap();
        ours.set_nonblocking(true).unwrap();
        let chunk = [0u8; 16 * 1024];
        let mut sent = 0;
        while sent < 64 * 1024 * 1024 {
            match ours.write(&chunk) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        // The kernel doubles the figure and never grows it by itself; the
        // peer's receive window adds its part, still far under 4 MiB.
        assert_eq!(send_buffer(ours.as_raw_fd()), 128 * 1024);
        assert!(sent < 2 * 1024 * 1024, "{sent} bytes went into the kernel");
    }
}

/// One instruction of a compiled BPF program (libpcap's `struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct BpfInsn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

/// libpcap's `struct bpf_program`.
#[repr(C)]
struct BpfProgram {
    bf_len: libc::c_uint,
    bf_insns: *mut BpfInsn,
}

type OpenDead = unsafe extern "C" fn(libc::c_int, libc::c_int) -> *mut libc::c_void;
type Compile = unsafe extern "C" fn(
    *mut libc::c_void,
    *mut BpfProgram,
    *const libc::c_char,
    libc::c_int,
    libc::c_uint,
) -> libc::c_int;
type GetErr = unsafe extern "C" fn(*mut libc::c_void) -> *mut libc::c_char;
type FreeCode = unsafe extern "C" fn(*mut BpfProgram);
type Close = unsafe extern "C" fn(*mut libc::c_void);
type Filter =
    unsafe extern "C" fn(*const BpfInsn, *const u8, libc::c_uint, libc::c_uint) -> libc::c_uint;

/// libpcap's compiler and matcher, loaded the first time a BPF filter is
/// compiled (with `dlopen`, through `libloading`): a server that never
/// filters does not map libpcap and the libraries it pulls in (about
/// 1 MiB resident).
struct Libpcap {
    _lib: libloading::Library,
    open_dead: OpenDead,
    compile: Compile,
    geterr: GetErr,
    freecode: FreeCode,
    close: Close,
    filter: Filter,
}

fn libpcap() -> Result<&'static Libpcap, String> {
    static LIB: std::sync::OnceLock<Result<Libpcap, String>> = std::sync::OnceLock::new();
    LIB.get_or_init(|| {
        let names = ["libpcap.so.0.8", "libpcap.so.1", "libpcap.so"];
        // SAFETY: loading libpcap runs its initialisers, which do nothing
        // beyond libpcap's own state.
        let lib = names
            .iter()
            .find_map(|n| unsafe { libloading::Library::new(n) }.ok())
            .ok_or("libpcap is not installed (BPF filters need it: apt-get install libpcap0.8)")?;
        // SAFETY: each symbol is libpcap's function of that name, with the
        // C signature declared by its type above (pcap/pcap.h, pcap/bpf.h).
        unsafe {
            let get = |name: &[u8]| -> Result<*const (), String> {
                lib.get::<*const ()>(name)
                    .map(|s| *s)
                    .map_err(|e| format!("libpcap lacks {}: {e}", String::from_utf8_lossy(name)))
            };
            Ok(Libpcap {
                open_dead: std::mem::transmute::<*const (), OpenDead>(get(b"pcap_open_dead")?),
                compile: std::mem::transmute::<*const (), Compile>(get(b"pcap_compile")?),
                geterr: std::mem::transmute::<*const (), GetErr>(get(b"pcap_geterr")?),
                freecode: std::mem::transmute::<*const (), FreeCode>(get(b"pcap_freecode")?),
                close: std::mem::transmute::<*const (), Close>(get(b"pcap_close")?),
                filter: std::mem::transmute::<*const (), Filter>(get(b"bpf_filter")?),
                _lib: lib,
            })
        }
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Compile a BPF expression for Ethernet frames with libpcap; the
/// program's instructions, copied out.
pub fn bpf_compile(expr: &str) -> Result<Vec<BpfInsn>, String> {
    // libpcap's compiler keeps global state in older versions: one at a time.
    static COMPILING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let pcap = libpcap()?;
    let text =
        std::ffi::CString::new(expr).map_err(|_| "the expression holds a NUL byte".to_string())?;
    let _one = COMPILING.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: DLT_EN10MB (1) and a snap length: a dead handle, closed below.
    let handle = unsafe { (pcap.open_dead)(1, 65_535) };
    if handle.is_null() {
        return Err("libpcap could not make a handle".into());
    }
    let mut program = BpfProgram {
        bf_len: 0,
        bf_insns: std::ptr::null_mut(),
    };
    // SAFETY: `handle` is live, `program` is ours to fill, `text` is a C
    // string; optimise, no netmask (PCAP_NETMASK_UNKNOWN).
    let failed =
        unsafe { (pcap.compile)(handle, &mut program, text.as_ptr(), 1, 0xffff_ffff) } != 0;
    let result = if failed {
        // SAFETY: `handle` is live; the message is a C string it owns.
        let msg = unsafe { std::ffi::CStr::from_ptr((pcap.geterr)(handle)) };
        Err(msg.to_string_lossy().into_owned())
    } else {
        // SAFETY: on success `bf_insns` holds `bf_len` instructions, freed
        // just below, after the copy.
        let insns =
            unsafe { std::slice::from_raw_parts(program.bf_insns, program.bf_len as usize) }
                .to_vec();
        // SAFETY: the program libpcap made, freed once.
        unsafe { (pcap.freecode)(&mut program) };
        Ok(insns)
    };
    // SAFETY: the handle made above, closed once.
    unsafe { (pcap.close)(handle) };
    result
}

/// Whether the program (from [`bpf_compile`]) accepts `frame`.
pub fn bpf_matches(program: &[BpfInsn], frame: &[u8]) -> bool {
    let Ok(pcap) = libpcap() else { return false };
    let len = libc::c_uint::try_from(frame.len()).unwrap_or(libc::c_uint::MAX);
    // SAFETY: `program` is a whole program libpcap compiled (it checks
    // every jump and load against `len`), `frame` holds `len` bytes.
    unsafe { (pcap.filter)(program.as_ptr(), frame.as_ptr(), len, len) != 0 }
}
