//! The lab's one door to the outside world (the trait only; no I/O here).
//!
//! The reactor implements [`Host`] over real sockets, processes and files;
//! the tests and the fuzz target implement it with `lab::fake::FakeHost`.
//! Every method is an effect the lab decided on. Calls never re-enter the
//! lab: what the world says back comes later, as a lab call of its own
//! (`on_output`, `on_exit`, `on_frame`).

use super::answer::Reply;
pub use super::id::ClientId;
use super::id::NodeKey;
use super::settings::Settings;
use super::types::Nio;
use crate::error::ApiError;
use crate::lab::command::Ticket;
use std::path::{Path, PathBuf};

/// A signal the lab may send to a node's process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Ask politely (stop).
    Term,
    /// No appeal (grace period over, start timed out, project closed).
    Kill,
}

/// What the host needs to start a VPCS process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spawn {
    /// The program configured, or `None` for `vpcs` on `PATH`.
    pub program: Option<PathBuf>,
    /// Confine the process so that it cannot run host commands.
    pub sandbox: bool,
    /// The node's working directory.
    pub dir: PathBuf,
    /// MAC offset (`-m`).
    pub mac: u8,
    /// UDP port VPCS binds (`-s`); it binds its relay port too.
    pub vpcs_port: u16,
    /// Pass `startup.vpc`.
    pub startup_script: bool,
}

/// What the host needs to start a QEMU VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpawn {
    /// The command line, program first, with `@console@`, `@monitor@` and
    /// `@nicN@` where the descriptors the host makes go.
    pub args: Vec<String>,
    /// The VM's directory (its working directory).
    pub dir: PathBuf,
    /// Where its output goes (the command line first).
    pub log: PathBuf,
    /// Its adapters: adapter `i`'s channel is the node's NIO
    /// `channel_base + i`, relayed like any NIO.
    pub adapters: usize,
    /// See `adapters`.
    pub channel_base: usize,
    /// Linked clones to make when missing: (base image, qcow2 overlay).
    pub overlays: Vec<(PathBuf, PathBuf)>,
    /// Its nice value (a priority above normal may be refused: it then
    /// runs at normal).
    pub nice: i32,
    /// What it may read besides the system (images), when confined; it
    /// writes only beneath `dir`.
    pub reads: Vec<PathBuf>,
}

/// A request to the container engine (the Docker Engine API over its
/// unix socket). Its answer comes back through `Lab::on_engine` with its
/// `node` and `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineCall {
    /// The node it is for (`None`: the lab's own, an image list).
    pub node: Option<NodeKey>,
    /// Tells its answer from others.
    pub id: u64,
    /// `GET`, `POST`, `DELETE`.
    pub method: &'static str,
    /// The path and query, from `/`.
    pub path: String,
    /// A JSON body.
    pub body: Option<Vec<u8>>,
    /// An attach: once the engine switches protocols, the connection is
    /// the container's terminal, kept as the node's console (what it
    /// prints comes as `Lab::on_output`, its end as `Lab::on_exit`, and
    /// `console_input` types into it).
    pub attach: bool,
    /// A pull: it may take minutes, and its answer is a progress stream
    /// of which only the end matters.
    pub long: bool,
    /// An attach for the node's auxiliary console instead (a second
    /// shell): what it prints comes as `Lab::on_aux_output`, and
    /// `aux_input` types into it.
    pub aux: bool,
}

impl EngineCall {
    /// `method path` for `node` (or the lab), numbered `id`: no body, a
    /// plain request.
    pub fn new(node: Option<NodeKey>, id: u64, (method, path): (&'static str, String)) -> Self {
        EngineCall {
            node,
            id,
            method,
            path,
            body: None,
            attach: false,
            long: false,
            aux: false,
        }
    }
}

/// The engine's answer to an [`EngineCall`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineReply {
    /// Its HTTP status (101 for an attach).
    pub status: u16,
    /// Its body.
    pub body: Vec<u8>,
}

/// A link into a container: a veth pair, one end on the host, the other
/// in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Veth {
    /// The host end's name (the node's side channel is a packet socket on it).
    pub host: String,
    /// The container end's name (`eth0`...).
    pub inside: String,
    /// The container end's MAC.
    pub mac: String,
}

/// A process the host started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spawned {
    /// Its process id (also its process group).
    pub pid: u32,
    /// No kernel sandbox could be applied: the console proxy must refuse
    /// host commands (`!` lines) itself.
    pub filter_shell: bool,
    /// Its command line, as a person reads it (2.2's `command_line`).
    pub command_line: String,
}

/// Effects the lab asks for.
pub trait Host {
    /// Deliver the answer to a request.
    fn reply(&mut self, ticket: Ticket, reply: Reply);

    /// Listen for console clients of `node` on `port`, replacing the node's
    /// listener if it has one (its clients stay attached).
    fn bind_console(&mut self, node: NodeKey, port: u16) -> Result<(), ApiError>;
    /// Stop listening for console clients of `node`.
    fn close_console(&mut self, node: NodeKey);
    /// Listen for clients of `node`'s auxiliary console on `port`.
    fn bind_aux(&mut self, node: NodeKey, port: u16) -> Result<(), ApiError>;
    /// Stop listening for clients of `node`'s auxiliary console.
    fn close_aux(&mut self, node: NodeKey);
    /// Type `data` into the node's auxiliary console.
    fn aux_input(&mut self, node: NodeKey, data: &[u8]);
    /// A console client has output waiting (see `Lab::console_pending`).
    fn console_ready(&mut self, client: ClientId);
    /// Disconnect a console client; the lab has already forgotten it.
    fn console_drop(&mut self, client: ClientId);

    /// Whether nobody holds UDP `port` on any address.
    fn udp_free(&mut self, port: u16) -> bool;
    /// Open `nio` (bind and connect a UDP tunnel, attach to a TAP device)
    /// and relay it for port `port` of `node`, replacing what that port
    /// had, if anything. On failure the previous one is kept.
    fn open_nio(&mut self, node: NodeKey, port: usize, nio: &Nio) -> Result<(), ApiError>;
    /// Close the NIO of port `port` of `node`.
    fn close_nio(&mut self, node: NodeKey, port: usize);
    /// Send a frame the lab made (a built-in PC's) to `to`; whether it went.
    fn send_frame(&mut self, to: super::id::Endpoint, frame: &[u8]) -> bool;

    /// Start the node's program on a console the host reads from.
    fn spawn(&mut self, node: NodeKey, spawn: &Spawn) -> Result<Spawned, ApiError>;
    /// Start a QEMU VM: its linked clones, its console, monitor and
    /// adapter channels, the process.
    fn spawn_vm(&mut self, node: NodeKey, spawn: &VmSpawn) -> Result<Spawned, ApiError>;
    /// Whether a file outside the projects (an image, a program) is there
    /// to be read.
    fn readable(&mut self, path: &Path) -> bool;
    /// The body of the request `ticket` follows it (an upload): write it
    /// to `rel` beneath `dir`, replacing what is there only once it came
    /// whole. The lab hears how it ended through `Lab::body_received`.
    fn receive_body(&mut self, ticket: Ticket, dir: &Path, rel: &Path) -> Result<(), ApiError>;
    /// Send a request to the container engine; `Err` when it cannot be
    /// reached (a 409 that says how to start it).
    fn engine(&mut self, call: EngineCall) -> Result<(), ApiError>;
    /// Make the veth pairs `links` into the network namespace of process
    /// `pid` (a container's), each end up; all or none.
    fn plug(&mut self, pid: u32, links: &[Veth]) -> Result<(), ApiError>;
    /// Remove the host ends `names` of veth pairs (gone already is fine).
    fn unplug(&mut self, names: &[String]);
    /// Write to the node's machine monitor (QMP).
    fn monitor_send(&mut self, node: NodeKey, data: &[u8]);
    /// Signal the node's process group.
    fn signal(&mut self, node: NodeKey, signal: Signal);
    /// Wait for the node's process, just killed, to be gone; returns how it ended.
    fn reap(&mut self, node: NodeKey) -> String;
    /// Close what the host held for the node's process (console, sockets).
    fn release_process(&mut self, node: NodeKey);
    /// Console output the process wrote that has not been handed over yet.
    fn pending_output(&mut self, node: NodeKey) -> Vec<u8>;
    /// Type `data` into the node's console.
    fn console_input(&mut self, node: NodeKey, data: &[u8]);
    /// Keep what a starting process prints in its log.
    fn log_output(&mut self, node: NodeKey, data: &[u8]);

    /// The project files.
    fn files(&mut self) -> &mut dyn Files;

    /// The wall clock, for capture timestamps.
    fn wall_clock(&mut self) -> std::time::SystemTime;
    /// The host's network interfaces.
    fn interfaces(&mut self) -> Result<Vec<String>, ApiError>;
    /// The host's network interfaces with their addresses.
    fn interface_details(&mut self) -> Result<Vec<crate::lab::answer::Interface>, ApiError>;
    /// CPU (since the last reading) and memory in use.
    fn load(&mut self) -> crate::lab::answer::Load;
    /// Memory, swap, CPU, load, and the disk holding `dir`.
    fn statistics(&mut self, dir: &Path) -> crate::lab::answer::Statistics;
    /// The machine: CPUs, memory, and the size of the disk holding `dir`.
    fn machine(&mut self, dir: &Path) -> crate::lab::answer::Machine;
    /// The QEMU programs and acceleration found at start.
    fn qemu(&mut self) -> crate::lab::answer::QemuHost;
    /// Read the configuration again.
    fn reload_settings(&mut self) -> Result<Settings, ApiError>;
}

/// Project directories and files: nodes' directories, startup scripts,
/// logs, the temporary marker.
pub trait Files {
    /// Confine files beneath `dir` too (a `--local` project's directory
    /// outside the projects directory).
    fn add_root(&mut self, _dir: &Path) {}
    /// Forget a root added by [`Files::add_root`].
    fn drop_root(&mut self, _dir: &Path) {}
    /// Create `dir` and its parents.
    fn create_dir(&mut self, dir: &Path) -> Result<(), ApiError>;
    /// Remove `dir` and everything in it (a missing one is fine).
    fn remove_dir(&mut self, dir: &Path) -> Result<(), ApiError>;
    /// Begin unpacking a tar archive into `dir`, a slice at a time (see
    /// [`Files::restore_step`]): it is refused whole, with nothing written,
    /// when any entry would land outside `dir` or is not a file or a
    /// directory.
    fn restore_begin(&mut self, dir: &Path, archive: Vec<u8>) -> Result<(), ApiError>;
    /// Go on with the restore begun: up to `entries` more entries. `None`
    /// while there is more to do; then how many entries the archive held,
    /// or why it was refused (nothing written) or failed.
    fn restore_step(&mut self, entries: usize)
    -> Option<Result<super::answer::Restored, ApiError>>;
    /// Whether something is at `path`.
    fn exists(&mut self, path: &Path) -> bool;
    /// The names of the directories directly in `dir` (none when it is
    /// unreadable), at most `limit`.
    fn subdirs(&mut self, dir: &Path, limit: usize) -> Vec<String>;
    /// Rename a file or directory.
    fn rename(&mut self, from: &Path, to: &Path) -> Result<(), ApiError>;
    /// Append `data` to the file at `path`.
    fn append_file(&mut self, path: &Path, data: &[u8]) -> Result<(), ApiError>;
    /// Replace `path` with `data`, atomically.
    fn write_file(&mut self, path: &Path, data: &[u8]) -> Result<(), ApiError>;
    /// Remove a file (a missing one is fine).
    fn remove_file(&mut self, path: &Path);
    /// A whole file, at most `limit` bytes of it; `None` when it is missing
    /// or unreadable.
    fn read_file(&mut self, path: &Path, limit: usize) -> Option<Vec<u8>>;
    /// The last `n` bytes of a file (empty when unreadable).
    fn read_tail(&mut self, path: &Path, n: usize) -> Vec<u8>;
    /// Every regular file under `dir` (at most `limit`), as (path relative
    /// to `dir`, MD5 digest in hex), sorted; symbolic links are not followed.
    fn list_files(&mut self, dir: &Path, limit: usize) -> Result<Vec<(String, String)>, ApiError>;
    /// The file at `path`, which must resolve inside `dir` (403 otherwise);
    /// `None` when missing; at most `limit` bytes (too large is refused).
    fn read_confined(
        &mut self,
        dir: &Path,
        path: &Path,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, ApiError>;
    /// Write `data` at `path`, which must resolve inside `dir` (403
    /// otherwise), creating its directories.
    fn write_confined(&mut self, dir: &Path, path: &Path, data: &[u8]) -> Result<(), ApiError>;
    /// The regular files directly in the images directory `dir`, sorted,
    /// with the digests cached beside them.
    fn image_files(&mut self, dir: &Path) -> Result<Vec<super::answer::ImageFile>, ApiError>;
    /// Begin computing the MD5 digests of `names` in `dir`, a slice at a
    /// time (see [`Files::digest_step`]), caching each beside its file.
    fn digest_begin(&mut self, dir: &Path, names: Vec<String>);
    /// Go on hashing, about `bytes` more. `None` while there is more to
    /// do; then each file's digest, in order (`None`: unreadable).
    fn digest_step(&mut self, bytes: usize) -> Option<Vec<Option<String>>>;
}
