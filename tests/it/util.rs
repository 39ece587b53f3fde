//! Shared helpers: start the real `nanolab` binary on a free loopback port
//! with its own projects directory and port ranges, talk HTTP to it over real
//! sockets, and kill it on drop.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

static NEXT_SLICE: AtomicU16 = AtomicU16::new(0);

/// A running server.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub console: (u16, u16),
    pub udp: (u16, u16),
    /// Holds the port ranges while the server lives.
    _ports: PortSlice,
    /// The server's directory, removed last, when it owns one.
    _dir: Option<TempDir>,
}

/// A fresh, empty temporary directory, removed (with everything in it) when
/// dropped, also when the test fails.
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh, empty temporary directory named after `tag`.
pub fn temp_dir(tag: &str) -> TempDir {
    let d = std::env::temp_dir().join(format!(
        "nanolab-it-{}-{tag}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

/// Console and UDP port ranges for one server, and the lock that keeps
/// them its own while it lives: another test binary running at the same
/// time (a second `cargo test`) takes other slices.
pub struct PortSlice {
    pub console: (u16, u16),
    pub udp: (u16, u16),
    _lock: std::fs::File,
}

/// Slices: consoles 20000-23399, UDP 24000-32499 (below the ephemeral range).
const SLICES: u16 = 85;

pub fn port_slice() -> PortSlice {
    let dir = std::env::temp_dir().join("nanolab-it-ports");
    std::fs::create_dir_all(&dir).unwrap();
    let first = NEXT_SLICE.fetch_add(1, Ordering::SeqCst);
    for i in 0..SLICES {
        let n = (first + i) % SLICES;
        let lock = std::fs::File::create(dir.join(format!("{n}.lock"))).unwrap();
        if lock.try_lock().is_ok() {
            let console = 20000 + n * 40;
            let udp = 24000 + n * 100;
            return PortSlice {
                console: (console, console + 39),
                udp: (udp, udp + 99),
                _lock: lock,
            };
        }
    }
    panic!("all {SLICES} port slices are held by running servers");
}

impl Server {
    /// Start with default test settings plus `extra` flags.
    pub fn start(extra: &[&str]) -> Server {
        let dir = temp_dir("srv");
        Self::start_full(&dir.join("projects"), extra, &[], Some(dir))
    }

    /// Start with extra environment variables.
    pub fn start_env(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = temp_dir("srv");
        Self::start_full(&dir.join("projects"), extra, env, Some(dir))
    }

    /// Start with a given projects directory (the log goes to a directory
    /// of the server's own).
    pub fn start_in(projects: &Path, extra: &[&str]) -> Server {
        Self::start_cmd(&[], projects, extra, &[], None)
    }

    /// Start with a hard limit of `nofile` open files (through `prlimit`).
    pub fn start_limited(nofile: u32) -> Server {
        let dir = temp_dir("srv");
        let limit = format!("--nofile={nofile}:{nofile}");
        Self::start_cmd(
            &["prlimit", &limit, "--"],
            &dir.join("projects"),
            &[],
            &[],
            Some(dir),
        )
    }

    fn start_full(
        projects: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
        dir: Option<TempDir>,
    ) -> Server {
        Self::start_cmd(&[], projects, extra, env, dir)
    }

    fn start_cmd(
        prefix: &[&str],
        projects: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
        owned: Option<TempDir>,
    ) -> Server {
        let owned = owned.unwrap_or_else(|| temp_dir("log"));
        let dir = owned.to_path_buf();
        let ports = port_slice();
        let (console, udp) = (ports.console, ports.udp);
        let mut args: Vec<String> = vec![
            "--port".into(),
            "0".into(),
            "--projects-dir".into(),
            projects.display().to_string(),
            "--console-ports".into(),
            format!("{}-{}", console.0, console.1),
            "--udp-ports".into(),
            format!("{}-{}", udp.0, udp.1),
            "--log".into(),
            dir.join("server.log").display().to_string(),
            "--debug".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        // CI's ARM job runs a cross-built server under qemu-user:
        // NANOLAB_TEST_SERVER is its command line (emulator and binary),
        // NANOLAB_TEST_ARGS flags added to every server.
        let server = std::env::var("NANOLAB_TEST_SERVER").ok();
        if let Ok(more) = std::env::var("NANOLAB_TEST_ARGS") {
            args.extend(more.split_whitespace().map(str::to_string));
        }
        let bin = match &server {
            Some(cmd) => cmd.split_whitespace().collect::<Vec<_>>(),
            None => vec![env!("CARGO_BIN_EXE_nanolab")],
        };
        let (program, before) = match prefix.split_first() {
            Some((p, rest)) => (*p, [rest, &bin].concat()),
            None => (bin[0], bin[1..].to_vec()),
        };
        let mut child = Command::new(program)
            .args(&before)
            .args(&args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nanolab");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let line = line.trim().replace("https://", "http://");
        let url = line
            .strip_prefix("nanolab listening on http://")
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first line {line:?}; log: {}",
                    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
                )
            });
        let addr = url.parse().unwrap();
        Server {
            child,
            addr,
            dir,
            console,
            udp,
            _ports: ports,
            _dir: Some(owned),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// One request on a fresh connection.
    pub fn req(&self, method: &str, path: &str, body: &str) -> Resp {
        request(self.addr, method, path, body)
    }

    pub fn get(&self, path: &str) -> Resp {
        self.req("GET", path, "")
    }

    pub fn post(&self, path: &str, body: &str) -> Resp {
        self.req("POST", path, body)
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s
    }

    /// Create a project and return its id.
    pub fn project(&self) -> String {
        let r = self.post("/v1/projects", r#"{"name": "test"}"#);
        assert_eq!(r.status, 201, "{}", r.text);
        r.json["project_id"].as_str().unwrap().to_string()
    }

    /// Create a VM and return (id, console port).
    pub fn vm(&self, project: &str, name: &str) -> (String, u16) {
        let r = self.post(
            &format!("/v1/projects/{project}/vpcs/vms"),
            &format!(r#"{{"name": "{name}"}}"#),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        (
            r.json["vm_id"].as_str().unwrap().to_string(),
            r.json["console"].as_u64().unwrap() as u16,
        )
    }

    /// Send SIGTERM and wait for the exit (SIGKILL after 10 s).
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        unsafe_kill(self.child.id(), "TERM");
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    /// Resident memory of the server, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Open file descriptors of the server.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .count()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

/// One request to `addr` on a fresh connection.
pub fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> Resp {
    request_with(addr, method, path, body, "")
}

/// [`request`] with more header lines (each ending in CRLF).
pub fn request_with(addr: SocketAddr, method: &str, path: &str, body: &str, headers: &str) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(raw.as_bytes()).unwrap();
    read_response(&mut BufReader::new(s)).expect("a response")
}

/// An executable script (a wrapper around vpcs, or a program that fails).
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The API path of a VM, with `tail` ("", "/start", ...) appended.
pub fn vm_url(p: &str, v: &str, tail: &str) -> String {
    format!("/v1/projects/{p}/vpcs/vms/{v}{tail}")
}

/// Send a signal with the `kill` program (keeps tests free of unsafe code).
pub fn unsafe_kill(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// A parsed response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
    pub json: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every 4xx/5xx must carry {"status", "message"}.
    pub fn assert_error(&self, status: u16, needle: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(
            self.json["status"].as_u64(),
            Some(status as u64),
            "{}",
            self.text
        );
        let msg = self.json["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message in {}", self.text));
        assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}");
        assert_eq!(self.header("Content-Type"), Some("application/json"));
    }
}

/// Read one response (Content-Length framed, or no body for 1xx/204).
pub fn read_response<R: BufRead>(r: &mut R) -> Option<Resp> {
    let mut status_line = String::new();
    if r.read_line(&mut status_line).ok()? == 0 {
        return None;
    }
    let status: u16 = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (n, v) = line.split_once(':')?;
        headers.push((n.trim().to_string(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    let text = String::from_utf8_lossy(&body).into_owned();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Some(Resp {
        status,
        headers,
        text,
        json,
    })
}

/// Wait until `cond` holds or `secs` pass; returns whether it held.
pub fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    cond()
}

/// Process ids whose parent is `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.get(1).and_then(|f| f.parse::<u32>().ok()) == Some(pid) && fields[0] != "Z" {
            out.push(p);
        }
    }
    out
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
        .unwrap_or(false)
}

/// The vpcs child of `server` working in the directory of `vm`.
pub fn vpcs_pid(server: &Server, vm: &str) -> Option<u32> {
    children(server.pid()).into_iter().find(|p| {
        std::fs::read_link(format!("/proc/{p}/cwd"))
            .map(|c| c.to_string_lossy().contains(vm))
            .unwrap_or(false)
    })
}

/// A telnet-ish console client over a raw socket.
pub struct Console {
    pub s: TcpStream,
    pub seen: Vec<u8>,
}

impl Console {
    pub fn open(port: u16) -> Console {
        Self::open_at("127.0.0.1", port)
    }

    pub fn open_at(host: &str, port: u16) -> Console {
        let s = TcpStream::connect((host, port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        Console {
            s,
            seen: Vec::new(),
        }
    }

    pub fn send(&mut self, line: &str) {
        self.s.write_all(line.as_bytes()).unwrap();
    }

    /// Read until `needle` appears in what arrived after `from`, or `secs` pass.
    pub fn expect_after(&mut self, from: usize, needle: &str, secs: u64) -> bool {
        let end = Instant::now() + Duration::from_secs(secs);
        let mut buf = [0u8; 4096];
        loop {
            if String::from_utf8_lossy(&self.seen[from.min(self.seen.len())..]).contains(needle) {
                return true;
            }
            if Instant::now() > end {
                return false;
            }
            match self.s.read(&mut buf) {
                Ok(0) => return String::from_utf8_lossy(&self.seen[from..]).contains(needle),
                Ok(n) => self.seen.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
    }

    pub fn expect(&mut self, needle: &str, secs: u64) -> bool {
        self.expect_after(0, needle, secs)
    }

    /// Whether the server closed this session within `secs`.
    pub fn closed_within(&mut self, secs: u64) -> bool {
        let end = Instant::now() + Duration::from_secs(secs);
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            match self.s.read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => self.seen.extend_from_slice(&buf[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return true,
            }
        }
        false
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }
}

/// A websocket client over a raw socket (RFC 6455: masked frames out,
/// plain frames in), enough to test the server's side.
pub struct Ws {
    pub s: TcpStream,
    buf: Vec<u8>,
}

impl Ws {
    /// Open `path` with the handshake; returns the status and, on 101,
    /// the socket.
    pub fn open(addr: SocketAddr, path: &str, auth: Option<&str>) -> (u16, Option<Ws>) {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{auth}\r\n"
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let resp = read_response(&mut r).expect("a handshake answer");
        if resp.status != 101 {
            return (resp.status, None);
        }
        assert_eq!(
            resp.header("Sec-WebSocket-Accept"),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "RFC 6455's example key"
        );
        let buf = r.buffer().to_vec();
        (101, Some(Ws { s, buf }))
    }

    /// Send one masked frame.
    pub fn send(&mut self, op: u8, payload: &[u8]) {
        let mask = [0x11, 0x22, 0x33, 0x44];
        let mut f = vec![0x80 | op];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.s.write_all(&f).unwrap();
    }

    /// The next frame (opcode, payload) within `secs`, or `None`.
    pub fn recv(&mut self, secs: u64) -> Option<(u8, Vec<u8>)> {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some((used, op, payload)) = Self::parse(&self.buf) {
                self.buf.drain(..used);
                return Some((op, payload));
            }
            if Instant::now() > end {
                return None;
            }
            let mut chunk = [0u8; 8192];
            self.s
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            match self.s.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => {}
            }
        }
    }

    fn parse(b: &[u8]) -> Option<(usize, u8, Vec<u8>)> {
        if b.len() < 2 {
            return None;
        }
        let op = b[0] & 0x0f;
        let (len, at) = match b[1] & 0x7f {
            126 => (u16::from_be_bytes([*b.get(2)?, *b.get(3)?]) as usize, 4),
            127 => (
                u64::from_be_bytes(b.get(2..10)?.try_into().ok()?) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        let payload = b.get(at..at + len)?.to_vec();
        Some((at + len, op, payload))
    }

    /// The next text frame that is JSON with `action` equal to `action`.
    pub fn event(&mut self, action: &str, secs: u64) -> Option<Value> {
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            let Some((op, payload)) = self.recv(1) else {
                continue;
            };
            if op != 1 {
                continue;
            }
            let v: Value = serde_json::from_slice(&payload).ok()?;
            if v["action"] == action {
                return Some(v);
            }
        }
        None
    }
}
