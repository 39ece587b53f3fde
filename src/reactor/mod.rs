//! The reactor: one thread, one `mio::Poll`, one token space. I/O only.
//!
//! Every descriptor the server owns is registered under a token that is its
//! key in `Io::entries` (a `Slab<Entry>`); the entry says what the token is
//! and which node or connection it belongs to. An event is dispatched by one
//! match arm to one method, which moves bytes and hands what it read to the
//! lab (or to the connection's sans-IO state). The lab answers through the
//! [`Host`](crate::lab::Host) methods `Io` implements in `os_host`.
//!
//! Readiness is edge-triggered, so each handler drains its source until
//! `WouldBlock`, except that work per wakeup is capped (bytes per read,
//! datagrams per relay): a source that hit its cap goes on `again` and is
//! served on the next turn with a zero poll timeout, so one busy link cannot
//! starve the API.
//!
//! The clock is read once per loop turn, here, and passed down. The poll
//! sleeps until the lab's next deadline or the reactor's own (connection
//! deadlines decided by `Conn`, accept retries); an idle server sleeps in
//! `epoll_wait` with no timeout at all.

mod child_io;
mod console_io;
mod engine_io;
mod http_io;
mod nio_io;
mod os_host;
mod ws_io;

use crate::config::{Config, Flags};
use crate::lab::timers::Timers;
use crate::lab::{ClientId, Lab, NodeKey};
use crate::limits::ACCEPT_RETRY;
use crate::os::nb::would_block;
use crate::sys::SignalFd;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token};
use slab::Slab;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

/// What a token stands for.
enum Entry {
    /// The API listener.
    HttpListener,
    /// SIGTERM / SIGINT.
    Signals,
    /// An API connection.
    Http(Box<http_io::HttpConn>),
    /// The public console listener of a node.
    ConsoleListener(NodeKey),
    /// A telnet client of a node's console.
    ConsoleClient(Box<console_io::Client>),
    /// The pty master of a running VPCS.
    Pty(NodeKey),
    /// The pidfd of a running VPCS.
    ChildExit(NodeKey),
    /// The internal UDP socket between the server and a VPCS.
    NodeSocket(NodeKey),
    /// A NIO's descriptor, UDP socket or TAP device (node, port index).
    NioSocket(NodeKey, usize),
    /// The monitor (QMP) of a running QEMU.
    Monitor(NodeKey),
    /// A websocket (GNS3 2.2's notification channel or a console).
    Ws(Box<ws_io::WsConn>),
    /// A call to the container engine under way.
    Engine(Box<engine_io::EngineConn>),
    /// A container's attached terminal (a docker node's console).
    Attach(NodeKey),
    /// The listener of a node's auxiliary console.
    AuxListener(NodeKey),
    /// A container's second shell (a docker node's auxiliary console).
    AuxAttach(NodeKey),
}

/// What a reactor timer is for (the lab keeps its own deadlines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum IoTimer {
    /// Look at an HTTP connection's deadline (token, serial).
    Conn(usize, u64),
    /// Accept again after the listener failed (out of descriptors).
    Accept,
    /// The same for a node's console listener.
    ConsoleAccept(NodeKey),
    /// A call to the container engine must have been answered (token, serial).
    Engine(usize, u64),
    /// Accept again on a node's auxiliary console listener.
    AuxAccept(NodeKey),
}

/// Every node's descriptors, in a list by the node key's index (dense:
/// the lab reuses indexes), each with the key's generation: a frame finds
/// its node's socket in an index and a compare, no hashing.
#[derive(Default)]
struct NodeIos(Vec<(u64, NodeIo)>);

impl NodeIos {
    fn get(&self, key: &NodeKey) -> Option<&NodeIo> {
        let (generation, io) = self.0.get(key.index())?;
        (*generation == key.generation()).then_some(io)
    }

    fn get_mut(&mut self, key: &NodeKey) -> Option<&mut NodeIo> {
        let (generation, io) = self.0.get_mut(key.index())?;
        (*generation == key.generation()).then_some(io)
    }

    /// The node's descriptors, made empty when it had none.
    fn slot(&mut self, key: NodeKey) -> &mut NodeIo {
        let i = key.index();
        if self.0.len() <= i {
            self.0.resize_with(i + 1, Default::default);
        }
        let (generation, io) = &mut self.0[i];
        if *generation != key.generation() {
            *generation = key.generation();
            *io = NodeIo::default();
        }
        io
    }

    /// Forget the node's descriptors (dropping any left).
    fn remove(&mut self, key: &NodeKey) {
        if let Some(slot) = self.0.get_mut(key.index())
            && slot.0 == key.generation()
        {
            *slot = Default::default();
        }
    }
}

/// The descriptors the host holds for one node.
#[derive(Default)]
struct NodeIo {
    console: Option<(usize, TcpListener)>,
    proc: Option<Box<child_io::ProcIo>>,
    nios: Nios,
    /// A container's streams (boxed: a slot per node of every kind).
    container: Option<Box<ContainerIo>>,
}

/// A container node's streams on the host side.
#[derive(Default)]
struct ContainerIo {
    /// Its attached terminal.
    attach: Option<(usize, mio::net::UnixStream)>,
    /// Its auxiliary console's listener.
    aux_listener: Option<(usize, TcpListener)>,
    /// Its second shell.
    aux_stream: Option<(usize, mio::net::UnixStream)>,
}

impl ContainerIo {
    fn is_empty(&self) -> bool {
        self.attach.is_none() && self.aux_listener.is_none() && self.aux_stream.is_none()
    }
}

impl NodeIo {
    /// The container's streams, made empty when it had none.
    fn container(&mut self) -> &mut ContainerIo {
        self.container.get_or_insert_with(Default::default)
    }

    /// Forget the container's streams once none is left.
    fn shrink(&mut self) {
        if self.container.as_ref().is_some_and(|c| c.is_empty()) {
            self.container = None;
        }
    }
}

/// A node's open NIOs by port index, with their poll tokens: a node has a
/// few, so a list (searched in a few compares, no hashing per frame, and
/// half a map's size for the nodes that have none).
#[derive(Default)]
struct Nios(Vec<(usize, (usize, crate::os::nio::NioIo))>);

impl Nios {
    fn get(&self, port: &usize) -> Option<&(usize, crate::os::nio::NioIo)> {
        self.0.iter().find(|(p, _)| p == port).map(|(_, v)| v)
    }

    /// Put `v` at `port`; the one it replaces, if any.
    fn insert(
        &mut self,
        port: usize,
        v: (usize, crate::os::nio::NioIo),
    ) -> Option<(usize, crate::os::nio::NioIo)> {
        match self.0.iter_mut().find(|(p, _)| *p == port) {
            Some((_, old)) => Some(std::mem::replace(old, v)),
            None => {
                self.0.push((port, v));
                None
            }
        }
    }

    fn remove(&mut self, port: &usize) -> Option<(usize, crate::os::nio::NioIo)> {
        let at = self.0.iter().position(|(p, _)| p == port)?;
        Some(self.0.swap_remove(at).1)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Everything the loop owns besides the lab: the host side.
struct Io {
    registry: Registry,
    entries: Slab<Entry>,
    listener: TcpListener,
    signals: SignalFd,
    timers: Timers<IoTimer>,
    /// Sources that hit their per-wakeup budget and must be served again.
    again: Vec<usize>,
    /// The connection whose requests are being served right now.
    pumping: Option<usize>,
    /// Which API connections are taken (the cap and each address's share).
    admission: crate::lab::admission::Admission,
    next_serial: u64,
    /// `--record`: the file and what is waiting to be written to it.
    record: Option<(File, crate::api::record::Recorder)>,
    scratch: Vec<u8>,
    /// Where a batch of datagrams is read, a largest frame per slot (only
    /// the pages frames touch become resident).
    batch: Vec<u8>,
    /// Frames for UDP tunnels while a batch is routed.
    outbox: nio_io::Outbox,
    config: Config,
    flags: Flags,
    /// The kernel can confine VPCS with Landlock.
    landlock: bool,
    nodes: NodeIos,
    /// Console clients the lab gave output to.
    ready_clients: Vec<ClientId>,
    signalled: bool,
    disk: crate::os::fs::Disk,
    /// Streamed answers by connection token, with its serial.
    streams: HashMap<usize, (u64, Source)>,
    /// Live capture viewers whose connection closed.
    gone_viewers: Vec<ClientId>,
    /// Uploads whose body is arriving, by connection token.
    uploads: HashMap<usize, (crate::lab::command::Ticket, crate::os::images::Upload)>,
    /// Uploads whose connection closed before the body was whole.
    gone_uploads: Vec<crate::lab::command::Ticket>,
    /// Reads the host's load for `/statistics` and notification pings.
    meter: crate::os::stats::Meter,
    /// Notification websockets, by token.
    notifiers: Vec<(usize, crate::api::Front)>,
    /// What every client's unsent bytes together may hold.
    budget: crate::lab::budget::Budget,
    /// How API connections speak: plain HTTP or TLS.
    link: crate::os::link::Policy,
    /// The QEMU programs on `PATH` and KVM, read at start.
    qemu: crate::lab::answer::QemuHost,
}

/// Where a streamed answer's pieces come from.
enum Source {
    /// A backup of the projects directory.
    Tar(crate::os::backup::TarStream),
    /// A capture followed live (the lab holds its records).
    Capture(ClientId),
    /// A file sent as it is (an image download).
    File(File),
}

/// The server: the poll, the lab, and the host side of the lab.
pub struct Server {
    poll: Poll,
    lab: Lab,
    io: Io,
}

impl Server {
    /// Bind the API listener and prepare the loop.
    /// `link`: plain HTTP or TLS.
    pub fn new(config: Config, flags: Flags, link: crate::os::link::Policy) -> io::Result<Self> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let mut entries = Slab::new();
        let mut listener = TcpListener::bind(SocketAddr::new(config.host, config.port))?;
        let signals = SignalFd::new()?;
        let lt = entries.insert(Entry::HttpListener);
        registry.register(&mut listener, Token(lt), Interest::READABLE)?;
        let st = entries.insert(Entry::Signals);
        let sfd = std::os::fd::AsRawFd::as_raw_fd(&signals);
        registry.register(
            &mut mio::unix::SourceFd(&sfd),
            Token(st),
            Interest::READABLE,
        )?;
        let record = match &config.record {
            Some(p) => {
                let file = File::options().create(true).append(true).open(p)?;
                let recorder = crate::api::record::Recorder::new(listener.local_addr()?);
                Some((file, recorder))
            }
            None => None,
        };
        let landlock = crate::sys::landlock_abi().is_some();
        let lab = Lab::new(config.lab_settings());
        let disk = crate::os::fs::Disk::new(&config.projects_dir);
        let memory_budget = config.memory_budget;
        let max_connections = config.max_connections;
        let io = Io {
            registry,
            entries,
            listener,
            signals,
            timers: Timers::new(),
            again: Vec::new(),
            pumping: None,
            admission: crate::lab::admission::Admission::new(max_connections),
            next_serial: 0,
            record,
            scratch: vec![0; crate::limits::MAX_FRAME.max(crate::limits::READ_BUDGET)],
            batch: vec![0; crate::limits::MAX_FRAME * crate::sys::BATCH],
            outbox: Default::default(),
            config,
            flags,
            landlock,
            nodes: NodeIos::default(),
            ready_clients: Vec::new(),
            signalled: false,
            disk,
            streams: HashMap::new(),
            gone_viewers: Vec::new(),
            uploads: HashMap::new(),
            gone_uploads: Vec::new(),
            meter: Default::default(),
            notifiers: Vec::new(),
            budget: crate::lab::budget::Budget::new(memory_budget),
            link,
            qemu: crate::os::qemu::probe(&std::env::var("PATH").unwrap_or_default()),
        };
        Ok(Server { poll, lab, io })
    }

    /// The address the API listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.listener.local_addr()
    }

    /// Run until a signal or `/v1/server/shutdown`; then stop every node.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut now = Instant::now();
        self.lab.start_up(&mut self.io);
        self.settle();
        while !self.io.signalled && !self.lab.shutdown_requested() {
            let timeout = if self.io.again.is_empty() {
                earliest(self.lab.timeout(now), self.io.timers.timeout(now))
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            now = Instant::now();
            let (lab, io) = (&mut self.lab, &mut self.io);
            let _ = guarded("frames carried over", || lab.begin_turn(now, io));
            for token in std::mem::take(&mut self.io.again) {
                self.dispatch(now, token, true, true);
            }
            for ev in events.iter() {
                let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                let writable = ev.is_writable() || ev.is_write_closed();
                self.dispatch(now, ev.token().0, readable, writable);
            }
            self.fire_timers(now);
            let (lab, io) = (&mut self.lab, &mut self.io);
            let _ = guarded("a deadline", || lab.poll(now, io));
            self.release_frames(now);
            self.settle();
        }
        let (lab, io) = (&mut self.lab, &mut self.io);
        let now = Instant::now();
        let _ = guarded("shutdown", || lab.shutdown(now, io));
        self.settle();
        self.drain_engine();
        self.settle();
        log::info!("shut down cleanly");
        Ok(())
    }

    /// One line per token kind: each arm hands the event to its owner.
    fn dispatch(&mut self, now: Instant, token: usize, readable: bool, writable: bool) {
        let Some(entry) = self.io.entries.get(token) else {
            return;
        };
        match *entry {
            Entry::HttpListener => self.accept_http(now),
            Entry::Signals => self.io.on_signal(),
            Entry::Http(_) => self.pump_http(now, token, readable),
            Entry::ConsoleListener(node) => self.accept_console(now, node),
            Entry::ConsoleClient(_) => self.on_console_client(now, token, readable, writable),
            Entry::Pty(node) => self.on_pty(now, node),
            Entry::ChildExit(node) => self.on_child_exit(now, node),
            Entry::NodeSocket(node) => self.relay(now, token, crate::lab::Endpoint::Node(node)),
            Entry::Monitor(node) => self.on_monitor(now, node),
            Entry::NioSocket(node, port) => {
                self.relay(now, token, crate::lab::Endpoint::Nio(node, port))
            }
            Entry::Ws(_) => self.on_ws(now, token, readable),
            Entry::Engine(_) => self.on_engine(now, token),
            Entry::Attach(node) => self.on_attach(now, node),
            Entry::AuxListener(node) => self.accept_aux(now, node),
            Entry::AuxAttach(node) => self.on_aux_attach(node),
        }
        self.settle();
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(t) = self.io.timers.pop_expired(now) {
            match t {
                IoTimer::Conn(token, serial) => self.on_conn_timer(now, token, serial),
                IoTimer::Accept => self.accept_http(now),
                IoTimer::ConsoleAccept(node) => self.accept_console(now, node),
                IoTimer::Engine(token, serial) => self.on_engine_timer(now, token, serial),
                IoTimer::AuxAccept(node) => self.accept_aux(now, node),
            }
        }
    }

    /// After the lab ran: write to the console clients it gave output to,
    /// and log what it reports.
    fn settle(&mut self) {
        for client in std::mem::take(&mut self.io.ready_clients) {
            if let Some(token) = self.io.client_token(client) {
                self.flush_console_client(token);
            } else if let Some(token) = self.io.ws_client_token(client) {
                self.flush_ws(token);
            }
        }
        for viewer in std::mem::take(&mut self.io.gone_viewers) {
            self.lab.capture_unwatch(viewer);
        }
        for ticket in std::mem::take(&mut self.io.gone_uploads) {
            let cut = crate::error::ApiError::bad(
                "The connection closed before the whole upload was sent",
            );
            self.lab.body_received(ticket, Err(cut), &mut self.io);
        }
        for viewer in self.lab.take_ready_viewers() {
            self.io.wake_stream(viewer);
        }
        while let Some(e) = self.lab.poll_event() {
            if !self.io.notifiers.is_empty()
                && let Some(n) = e.notice()
            {
                self.notify(&n);
            }
            match e {
                crate::lab::Event::Warning { .. } => log::warn!("{e}"),
                crate::lab::Event::Load(_) => log::trace!("{e}"),
                _ => log::info!("{e}"),
            }
        }
        self.enforce_budget();
    }

    /// Past the memory budget, drop the clients holding the most unsent
    /// bytes until the total is under it again.
    fn enforce_budget(&mut self) {
        while let Some(who) = self.io.budget.victim() {
            let (total, limit) = (self.io.budget.total(), self.io.budget.limit());
            log::warn!(
                "client {} dropped: the clients' unsent output passed the memory budget of {limit} bytes ({total} bytes left held)",
                who.handle
            );
            match self.io.entries.get(who.handle) {
                Some(Entry::Http(_)) => self.io.close_http_now(who.handle),
                Some(Entry::Ws(_)) => self.drop_ws_for_budget(who.handle),
                Some(Entry::ConsoleClient(_)) => self.close_console_client(who.handle),
                _ => {}
            }
        }
    }

    /// What a client holds now, for the budget.
    fn account(&mut self, token: usize) {
        let held = match self.io.entries.get(token) {
            Some(Entry::Http(c)) => {
                let viewer = match self.io.streams.get(&token) {
                    Some((_, Source::Capture(v))) => self.lab.capture_pending(*v),
                    _ => 0,
                };
                Some((c.serial(), c.buffered() + viewer))
            }
            Some(Entry::Ws(ws)) => Some(ws.held()),
            Some(Entry::ConsoleClient(c)) => {
                let (node, id) = (c.node, c.id);
                let n = self
                    .lab
                    .console_pending(node, id)
                    .map_or(0, |(p, _)| p.len());
                Some((id.serial, n))
            }
            _ => None,
        };
        if let Some((serial, bytes)) = held {
            let who = ClientId {
                handle: token,
                serial,
            };
            self.io.budget.set(who, bytes);
        }
    }
}

fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Accept one connection; `None` when none is waiting. When accept fails
/// (out of descriptors, say), try again at `retry` + [`ACCEPT_RETRY`]:
/// readiness is edge-triggered, so the connections still queued would
/// otherwise wait for a new one to arrive.
fn accept_one(
    listener: &TcpListener,
    timers: &mut Timers<IoTimer>,
    (now, retry): (Instant, IoTimer),
) -> Option<(TcpStream, SocketAddr)> {
    match listener.accept() {
        Ok(s) => Some(s),
        Err(e) if would_block(&e) => None,
        Err(e) => {
            log::warn!("accept failed: {e}; retrying in {ACCEPT_RETRY:?}");
            timers.schedule(now + ACCEPT_RETRY, retry);
            None
        }
    }
}

/// Run `f`; a panic (a bug) is logged and the loop carries on. Returns
/// the panic's message when there was one.
fn guarded(what: &str, f: impl FnOnce()) -> Result<(), String> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
        let cause = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".into());
        log::error!("bug while handling {what} ({cause}); the server carries on");
        cause
    })
}

impl Io {
    /// A live stream has something to send: serve its connection next turn.
    fn wake_stream(&mut self, viewer: ClientId) {
        if let Some(Entry::Http(c)) = self.entries.get_mut(viewer.handle)
            && c.serial() == viewer.serial
            && c.mark_queued()
        {
            self.again.push(viewer.handle);
        }
    }

    fn on_signal(&mut self) {
        while let Some(sig) = self.signals.read() {
            log::info!("signal {sig} received: shutting down");
            self.signalled = true;
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
        if let Err(e) = self.registry.register(source, Token(token), interest) {
            self.entries.remove(token);
            return Err(e);
        }
        Ok(token)
    }

    /// Deregister `source` and free its token.
    fn unregister<S: mio::event::Source + ?Sized>(&mut self, source: &mut S, token: usize) {
        let _ = self.registry.deregister(source);
        if self.entries.contains(token) {
            self.entries.remove(token);
        }
    }
}
