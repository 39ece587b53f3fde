//! Every bound the server enforces, in one place (no I/O, and no logic but
//! the choice of the body limit by path).
//!
//! Each limit is a named constant so that the error that enforces it can name
//! it, and so that the "Security and limits" section of the README has one
//! place to be checked against.

use std::time::Duration;

/// Largest request head (request line plus headers) accepted; past it: 431.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most headers in one request; past it: 431.
pub const MAX_HEADERS: usize = 64;
/// Largest request body accepted; a bigger `Content-Length` is a 413 at once.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest upload (`POST /upload`, a projects archive to restore).
pub const MAX_UPLOAD_BYTES: usize = 16 * 1024 * 1024;

/// Largest image a client may upload (`POST .../qemu/images/{name}`).
/// Its body is never held whole: it goes to a file piece by piece as it
/// arrives, so this bounds the disk, not memory.
pub const MAX_IMAGE_BYTES: u64 = 1 << 40;

/// Bytes of image files hashed per loop turn while an image list computes
/// the MD5 digests it has no cache for (a few milliseconds of work; other
/// clients and links are served in between).
pub const DIGEST_SLICE: usize = 4 * 1024 * 1024;

/// Whether the body of `method path` is streamed to a file as it arrives
/// rather than held whole: image uploads, which may be gigabytes.
pub fn streams_body(method: &str, path: &str) -> bool {
    method == "POST"
        && (path.starts_with("/v2/compute/qemu/images/")
            || path.starts_with("/v3/compute/qemu/images/"))
}

/// The body limit for a request to `path`: uploads, and project files
/// written through `/v2/compute/projects/{P}/files/...`, may be larger.
pub fn body_limit(path: &str) -> usize {
    if path == "/upload" {
        MAX_UPLOAD_BYTES
    } else if path.starts_with("/v2/compute/projects/") && path.contains("/files/") {
        MAX_PROJECT_FILE
    } else {
        MAX_BODY_BYTES
    }
}

/// Archive entries checked or written per loop turn while a restore runs
/// (a few milliseconds of work; other clients are served in between).
pub const RESTORE_SLICE: usize = 32;

/// Size of each piece of a streamed answer (a backup), and the unsent
/// output under which the next piece is made.
pub const STREAM_PIECE: usize = 64 * 1024;

/// Longest chunk-size line (hex digits and extensions) in a chunked body.
pub const MAX_CHUNK_LINE: usize = 1024;
/// Open HTTP connections by default (`--max-connections`); a further one
/// is answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 10_000;
/// The share of the connections one client address may hold (numerator,
/// denominator): three quarters, so one address cannot take every slot.
pub const ADDRESS_SHARE: (usize, usize) = (3, 4);
/// What every client's unsent output together may hold by default
/// (`--memory-budget`): connection outboxes, websocket outboxes, console
/// clients, live capture viewers, backup streams. Past it, the client
/// with the most unsent bytes is dropped.
pub const MEMORY_BUDGET: usize = 64 * 1024 * 1024;
/// The kernel send buffer of a websocket or console client (a stream
/// that may never be read): the memory budget bounds what we hold, this
/// bounds what the host's TCP holds for us.
pub const STREAM_SEND_BUFFER: usize = 64 * 1024;
/// Unsent response bytes on one connection past which we stop reading from it.
pub const MAX_CONN_OUTPUT: usize = 1024 * 1024;
/// Requests parsed but not yet answered on one connection (pipelining depth).
pub const MAX_PIPELINED: usize = 256;
/// Bytes read from one socket per readiness event before yielding to others.
pub const READ_BUDGET: usize = 256 * 1024;
/// A request whose head or body is still incomplete after this is a 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// After `accept` fails (out of descriptors), try again after this.
pub const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// A connection that has not sent its first byte after this is closed.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);
/// A keep-alive connection with nothing to do is closed after this.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Grace given to a VPCS process between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(3);
/// How long a starting VPCS may take before its console must answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Console output kept per VM and replayed to a newly attached client.
pub const CONSOLE_HISTORY: usize = 4 * 1024;
/// Unsent console bytes per client; a client past this is dropped.
pub const MAX_CONSOLE_CLIENT_OUTPUT: usize = 256 * 1024;
/// Console clients attached to one VM at once.
pub const MAX_CONSOLE_CLIENTS: usize = 64;
/// Longest input line tracked per console client (longer lines are not inspected further).
pub const MAX_CONSOLE_LINE: usize = 1024;

/// Longest project or node name, in bytes (GNS3's own names are a few
/// dozen characters; a name is repeated on every status page).
pub const MAX_NAME_BYTES: usize = 1024;
/// Projects open at once.
pub const MAX_PROJECTS: usize = 10_000;
/// Nodes in one project (a lab of built-in PCs may hold a hundred thousand).
pub const MAX_NODES_PER_PROJECT: usize = 100_000;

/// Longest network interface name (the kernel's IFNAMSIZ less its NUL).
pub const MAX_IFNAME: usize = 15;

/// Lab events kept for the log and notification streams before the oldest
/// is forgotten (the loop drains them every turn).
pub const MAX_EVENTS: usize = 4096;

/// Datagrams relayed per readiness event before yielding to other sources.
pub const DATAGRAMS_PER_WAKEUP: usize = 64;
/// Largest frame relayed through a tunnel.
pub const MAX_FRAME: usize = 65_535;
/// MAC offsets per project (vpcs sets the last MAC byte from `-m`).
pub const MAC_OFFSETS: usize = 255;
/// Largest `startup.vpc` read back from a node's directory.
pub const MAX_SCRIPT_BYTES: usize = 1024 * 1024;
/// Lines of `vpcs.log` and console output quoted in a failed-start error.
pub const START_ERROR_BYTES: usize = 2048;

/// Records waiting to be written, per capture; past it, records are lost
/// (and counted) rather than memory grown.
pub const MAX_CAPTURE_BUFFER: usize = 1024 * 1024;
/// Records waiting for one live viewer; past it, that viewer is dropped.
pub const MAX_LIVE_OUTPUT: usize = 1024 * 1024;
/// How long a learnt address is trusted without being seen again.
pub const MAC_AGEING: Duration = Duration::from_secs(300);
/// Addresses learnt per switch; past it, new ones are flooded to.
pub const MAX_MACS: usize = 8192;
/// Ports a switch or hub may have (dynamips allowed 64 on a switch; a lab
/// of built-in PCs puts a thousand on one).
pub const MAX_DEVICE_PORTS: usize = 4096;
/// Largest message (all its fragments) accepted from a client.
pub const MAX_WS_MESSAGE: usize = 1024 * 1024;
/// Frames the data plane handles per loop turn, in-memory hand-offs
/// included: past it, sockets wait for the next turn, and frames for a
/// local peer wait in memory for it (up to [`MAX_CARRIED_FRAMES`]; then
/// they take the socket, where a full buffer drops them, as a saturated
/// wire would). So HTTP, consoles, timers and signals are served every
/// turn, whatever a broadcast storm does.
pub const FRAMES_PER_TURN: usize = 2048;
/// Frames handed in memory between local tunnel ends per frame received
/// (a flood through a switch counts one per port); past it, frames take
/// the sockets and wait for the next loop turn.
pub const LOCAL_HOPS: usize = 16_384;
/// Frames waiting in memory for the next loop turn (hand-offs past a
/// turn's budget, frames nodes sent once it was spent), and their bytes;
/// past either, frames take the socket.
pub const MAX_CARRIED_FRAMES: usize = 65_536;
/// See [`MAX_CARRIED_FRAMES`].
pub const MAX_CARRIED_BYTES: usize = 16 * 1024 * 1024;
/// How long the container engine has to answer a call (a stop waits for
/// the container's process, [`CONTAINER_STOP_WAIT`], first).
pub const ENGINE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an image pull may take (a large image on a slow link).
pub const PULL_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Bytes an answer of the engine may have (the image list of a busy one).
pub const ENGINE_BODY_LIMIT: usize = 8 << 20;
/// What is kept of a pull's progress: its last messages, which say how it
/// ended.
pub const PULL_TAIL: usize = 64 * 1024;
/// Seconds the engine gives a container's process to stop before killing it.
pub const CONTAINER_STOP_WAIT: u32 = 5;
/// How long a server told to stop waits for the engine to answer the
/// removals of its containers.
pub const SHUTDOWN_ENGINE_WAIT: Duration = Duration::from_secs(10);
/// Requests to the container engine under way at once; past it, a
/// request that needs one more is refused (503) until answers come.
pub const MAX_ENGINE_CALLS: usize = 256;
/// Frames held back by delay filters, server-wide; past it, frames drop.
pub const MAX_DELAYED_FRAMES: usize = 65_536;
/// Bytes held back by delay filters, server-wide.
pub const MAX_DELAYED_BYTES: usize = 64 * 1024 * 1024;
/// Bytes waiting to go to one websocket client; past it, it is dropped
/// (a notification reader that does not read reconnects and resyncs).
pub const MAX_WS_OUTBOX: usize = 4 * 1024 * 1024;
/// How often the notification channel sends its `ping` (load) event.
pub const NOTIFICATION_PING: Duration = Duration::from_secs(1);
/// Files listed by `GET /v2/compute/projects/{P}/files`.
pub const MAX_PROJECT_FILES: usize = 10_000;
/// Largest project file read or written through `/files`.
pub const MAX_PROJECT_FILE: usize = 16 * 1024 * 1024;

/// How often the lab samples the linked ports' counters for the status
/// page's rates and graphs (only while a project is open).
pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);
/// Rates kept per port for its graph: five minutes at [`SAMPLE_EVERY`].
pub const HISTORY: usize = 150;
/// Ports whose rates are kept (about 8 KiB each); further ports show
/// their totals only.
pub const MAX_WATCHED_PORTS: usize = 512;
