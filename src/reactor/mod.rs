//! The reactor: one thread, one `mio::Poll`, one token space.
//!
//! Every descriptor the server owns is registered under a token that is its
//! key in `entries` (a `Slab<Entry>`); the entry says what the token is and
//! which VM or connection it belongs to. An event is dispatched by one match
//! arm to one method. Readiness is edge-triggered, so each handler drains its
//! source until `WouldBlock`, except that work per wakeup is capped (bytes per
//! read, datagrams per relay): a source that hit its cap is put on
//! `again` and served on the next turn with a zero poll timeout, so one
//! busy link cannot starve the API.
//!
//! Deadlines (idle connections, slow requests, "kill after 3 s", start
//! timeouts) live in one [`Timers`] heap that sets the poll timeout; an idle
//! server sleeps in `epoll_wait` with no timeout at all.
//!
//! `Instant::now()` is read here and nowhere below: the sans-IO layers take
//! `now` as an argument.

mod console_io;
pub mod handlers;
mod http_io;
mod vm_handlers;
mod vm_io;

use crate::config::{Config, Flags};
use crate::http::conn::{Conn, SlotId};
use crate::http::parse::Request;
use crate::model::{PortPool, Project, TunnelStats, Vm};
use crate::sys::SignalFd;
use crate::timers::Timers;
use crate::vmq::VmQueue;
use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// What a token stands for.
enum Entry {
    /// The API listener.
    HttpListener,
    /// SIGTERM / SIGINT.
    Signals,
    /// An API connection.
    Http(Box<HttpConn>),
    /// The public console listener of a VM (value: VM key).
    ConsoleListener(usize),
    /// A telnet client of a VM console.
    ConsoleClient(Box<console_io::Client>),
    /// The pty master of a running VPCS (value: VM key).
    Pty(usize),
    /// The pidfd of a running VPCS (value: VM key).
    ChildExit(usize),
    /// The internal UDP socket between the server and a VPCS (value: VM key).
    VmSocket(usize),
    /// A NIO's UDP socket bound to `lport` (value: VM key).
    NioSocket(usize),
}

/// One API connection: socket, protocol state and timeout bookkeeping.
struct HttpConn {
    stream: TcpStream,
    conn: Conn,
    /// Distinguishes this connection from a later one that reuses the token.
    serial: u64,
    /// When the request now arriving started (for the slow-request timeout).
    request_started: Option<Instant>,
    last_activity: Instant,
    /// Deadline of the timer currently in the heap for this connection.
    timer_at: Option<Instant>,
    /// Already on `again` (answers completed outside a pump of this connection).
    queued: bool,
}

/// Where an answer must go: a connection (token and serial) and its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyTo {
    token: usize,
    serial: u64,
    slot: SlotId,
}

/// A request waiting in a VM's queue.
pub struct Queued {
    to: ReplyTo,
    req: Request,
}

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKey {
    /// Check an HTTP connection's deadlines.
    Conn(usize, u64),
    /// SIGKILL the VM's process if still there (VM key, process generation).
    Kill(usize, u64),
    /// The VM's start did not finish in time.
    StartTimeout(usize, u64),
    /// Accept again after the listener failed (out of descriptors).
    Accept,
    /// The same for a VM's console listener (VM key).
    ConsoleAccept(usize),
}

/// An operation parked on a VM until a later event finishes it.
enum Pending {
    /// Waiting for the spawn queue, then for the console; with the route
    /// template the answer carries (start or reload).
    Start(ReplyTo, &'static str),
    Stop(ReplyTo, AfterStop),
}

/// What to do once a stop has completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterStop {
    Reply,
    Start,
    Delete,
}

/// A running VPCS process and the descriptors that go with it.
struct Proc {
    pid: u32,
    /// Bumped for every start, so timers for an earlier process are ignored.
    generation: u64,
    _child: std::process::Child,
    pidfd: OwnedFd,
    exit_token: usize,
    pty: File,
    pty_token: Option<usize>,
    internal: UdpSocket,
    internal_token: usize,
    /// The UDP port VPCS binds (and `+ 9`), reserved in the UDP pool.
    vpcs_port: u16,
    /// The console has shown its prompt.
    ready: bool,
    /// What VPCS printed before its prompt (for a failed start's error).
    boot_output: Vec<u8>,
    log: Option<File>,
    /// Host shell commands are filtered by the proxy (no kernel sandbox).
    shell_filtered: bool,
}

/// A VM: its model data and everything the reactor holds for it.
struct VmSlot {
    vm: Vm,
    queue: VmQueue<Queued>,
    pending: Option<Pending>,
    console_listener: Option<(usize, TcpListener)>,
    clients: Vec<usize>,
    history: crate::console::History,
    proc: Option<Proc>,
    nio: Option<(usize, UdpSocket)>,
    stats: TunnelStats,
}

/// The whole server state, owned by the loop.
pub struct Server {
    poll: Poll,
    entries: Slab<Entry>,
    listener: TcpListener,
    signals: SignalFd,
    timers: Timers<TimerKey>,
    /// Sources that hit their per-wakeup budget and must be served again.
    again: Vec<usize>,
    /// The connection whose requests are being served right now.
    pumping: Option<usize>,
    /// VMs waiting to be spawned, one per loop turn (VM key and id).
    spawns: std::collections::VecDeque<(usize, Uuid)>,
    config: Config,
    flags: Flags,
    projects: HashMap<Uuid, Project>,
    vms: Slab<VmSlot>,
    vm_index: HashMap<Uuid, usize>,
    udp_ports: PortPool,
    console_ports: PortPool,
    next_serial: u64,
    next_generation: u64,
    http_conns: usize,
    record: Option<File>,
    shutdown: bool,
    scratch: Vec<u8>,
    /// The kernel can confine VPCS with Landlock.
    landlock: bool,
}

impl Server {
    /// Bind the API listener and prepare the loop. Temporary projects left
    /// by an earlier run are removed here.
    pub fn new(config: Config, flags: Flags) -> io::Result<Self> {
        let poll = Poll::new()?;
        let mut entries = Slab::new();
        let mut listener = TcpListener::bind(SocketAddr::new(config.host, config.port))?;
        let signals = SignalFd::new()?;
        let lt = entries.insert(Entry::HttpListener);
        poll.registry()
            .register(&mut listener, Token(lt), Interest::READABLE)?;
        let st = entries.insert(Entry::Signals);
        let sfd = std::os::fd::AsRawFd::as_raw_fd(&signals);
        poll.registry().register(
            &mut mio::unix::SourceFd(&sfd),
            Token(st),
            Interest::READABLE,
        )?;
        let record = match &config.record {
            Some(p) => Some(File::options().create(true).append(true).open(p)?),
            None => None,
        };
        std::fs::create_dir_all(&config.projects_dir)?;
        handlers::remove_stale_temporary_projects(&config.projects_dir);
        let landlock = crate::sys::landlock_abi().is_some();
        if !config.console_sandbox {
            log::warn!(
                "console sandbox disabled: '!' in a VPCS console runs host commands as this user"
            );
        } else if !landlock {
            log::warn!("kernel without Landlock: '!' lines are filtered by the console proxy only");
        }
        Ok(Server {
            poll,
            entries,
            listener,
            signals,
            timers: Timers::new(),
            again: Vec::new(),
            pumping: None,
            spawns: Default::default(),
            udp_ports: PortPool::new("UDP", config.udp_ports),
            console_ports: PortPool::new("console", config.console_ports),
            config,
            flags,
            projects: HashMap::new(),
            vms: Slab::new(),
            vm_index: HashMap::new(),
            next_serial: 0,
            next_generation: 0,
            http_conns: 0,
            record,
            shutdown: false,
            scratch: vec![0; crate::limits::MAX_FRAME.max(crate::limits::READ_BUDGET)],
            landlock,
        })
    }

    /// The address the API listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Run until a signal or `/v1/server/shutdown`; then stop every VM.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        while !self.shutdown {
            let timeout = if self.again.is_empty() && self.spawns.is_empty() {
                self.timers.timeout(Instant::now())
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for token in std::mem::take(&mut self.again) {
                self.dispatch(token, true, true);
            }
            for ev in events.iter() {
                let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                let writable = ev.is_writable() || ev.is_write_closed();
                self.dispatch(ev.token().0, readable, writable);
            }
            self.fire_timers(Instant::now());
            self.spawn_next();
        }
        self.stop_everything();
        Ok(())
    }

    /// One line per token kind: each arm hands the event to its owner.
    fn dispatch(&mut self, token: usize, readable: bool, writable: bool) {
        let Some(entry) = self.entries.get(token) else {
            return;
        };
        match entry {
            Entry::HttpListener => self.accept_http(),
            Entry::Signals => self.on_signal(),
            Entry::Http(_) => self.pump_http(token, readable),
            Entry::ConsoleListener(vm) => self.accept_console(*vm),
            Entry::ConsoleClient(_) => self.on_console_client(token, readable, writable),
            Entry::Pty(vm) => self.on_pty(*vm, token),
            Entry::ChildExit(vm) => self.on_child_exit(*vm),
            Entry::VmSocket(vm) => self.relay_from_vm(*vm, token),
            Entry::NioSocket(vm) => self.relay_from_peer(*vm, token),
        }
    }

    fn on_signal(&mut self) {
        while let Some(sig) = self.signals.read() {
            log::info!("signal {sig} received: shutting down");
            self.shutdown = true;
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(key) = self.timers.pop_expired(now) {
            match key {
                TimerKey::Conn(token, serial) => self.on_conn_timer(token, serial, now),
                TimerKey::Kill(vm, generation) => self.on_kill_timer(vm, generation),
                TimerKey::StartTimeout(vm, generation) => self.on_start_timeout(vm, generation),
                TimerKey::Accept => self.accept_http(),
                TimerKey::ConsoleAccept(vm) => self.accept_console(vm),
            }
        }
    }

    /// Register `source` under a new token for `entry`.
    fn register<S: mio::event::Source + ?Sized>(
        &mut self,
        source: &mut S,
        interest: Interest,
        entry: Entry,
    ) -> io::Result<usize> {
        let token = self.entries.insert(entry);
        if let Err(e) = self
            .poll
            .registry()
            .register(source, Token(token), interest)
        {
            self.entries.remove(token);
            return Err(e);
        }
        Ok(token)
    }

    /// Deregister `source` and free its token.
    fn unregister<S: mio::event::Source + ?Sized>(&mut self, source: &mut S, token: usize) {
        let _ = self.poll.registry().deregister(source);
        if self.entries.contains(token) {
            self.entries.remove(token);
        }
    }

    /// Append the request as a replayable curl command to the record file.
    fn record(&mut self, req: &Request) {
        let Some(file) = &mut self.record else { return };
        let Ok(addr) = self.listener.local_addr() else {
            return;
        };
        let body = String::from_utf8_lossy(&req.body).replace('\'', "'\\''");
        let line = format!(
            "curl -X {} \"http://{addr}{}\" -d '{}'\n",
            req.method.as_str(),
            req.path,
            if body.is_empty() { "{}" } else { &body }
        );
        if let Err(e) = file.write_all(line.as_bytes()) {
            log::warn!("cannot write to the record file: {e}");
        }
    }
}

/// Whether an I/O error only means "try again later".
fn would_block(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::WouldBlock
}
