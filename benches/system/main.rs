//! System benchmarks against the real server: API load, VM scale, tunnel
//! relay, idle cost. Run with `cargo bench --bench system` (all sections) or
//! `cargo bench --bench system -- load|scale|relay|switch|idle|pcs|pcs100k|tls|qemu|docker`.
//! `-- peers` (only when named: it installs gns3-server from PyPI) sets
//! nanolab beside gns3-server 2.2 and 3.0.
//!
//! Figures are printed; nothing is asserted. Every loop is bounded in time and
//! count, and all traffic stays on loopback.

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod docker;
mod load;
mod pcs;
mod peers;
mod qemu;
mod relay;
mod tls;

use load::{drive, idle, load, load_on, report, scale};
use pcs::{pcs, pcs100k};
use relay::{echo_vpcs, relay, switch};

/// When the bench binary is started as a stand-in for VPCS (relay section),
/// it answers the console with a prompt and echoes every frame it gets.
const ECHO_ENV: &str = "NANOLAB_BENCH_ECHO";

fn main() {
    if std::env::var_os(ECHO_ENV).is_some() {
        return echo_vpcs();
    }
    if std::env::var_os(peers::INSIDE_ENV).is_some() {
        return peers::inside();
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |s: &str| args.is_empty() || args.iter().any(|a| a == s);
    let _ = nanolab::sys::raise_nofile_limit();
    println!("machine: {} cores, {}", cores(), cpu_model());
    if want("idle") {
        idle();
    }
    if want("load") {
        load();
    }
    if args.iter().any(|a| a == "create") {
        let srv = Server::start_tmpfs(&["--console-ports", "40000-60000"]);
        println!("create: server pid {}", srv.child.id());
        std::thread::sleep(Duration::from_secs(2));
        load_on(&srv, false);
    }
    if want("scale") {
        scale();
    }
    if want("relay") {
        relay();
    }
    if want("switch") {
        switch();
    }
    if want("pcs") {
        pcs();
    }
    if want("pcs100k") {
        pcs100k();
    }
    if want("tls") {
        tls::tls();
    }
    if want("qemu") {
        qemu::qemu();
    }
    if want("docker") {
        docker::docker_nodes();
    }
    if args.iter().any(|a| a == "peers") {
        peers::peers();
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

// ---- the server under test ---------------------------------------------------

struct Server {
    child: Child,
    addr: SocketAddr,
    dir: std::path::PathBuf,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        Self::start_at(&std::env::temp_dir(), extra)
    }

    /// Projects on tmpfs: separates nanolab's own cost from the file
    /// system's (mkdir on a busy ext4 costs hundreds of microseconds).
    fn start_tmpfs(extra: &[&str]) -> Server {
        let shm = std::path::Path::new("/dev/shm");
        Self::start_at(
            if shm.is_dir() {
                shm
            } else {
                std::path::Path::new("/tmp")
            },
            extra,
        )
    }

    fn start_at(base: &std::path::Path, extra: &[&str]) -> Server {
        let dir = base.join(format!(
            "nanolab-bench-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_nanolab"))
            .args(["--port", "0", "--quiet", "--projects-dir"])
            .arg(dir.join("projects"))
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start nanolab");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line.trim().rsplit("://").next().unwrap().parse().unwrap();
        Server { child, addr, dir }
    }

    fn rss_kib(&self) -> u64 {
        status_field(self.child.id(), "VmRSS:")
    }

    fn cpu_ticks(&self) -> u64 {
        cpu_ticks(self.child.id())
    }

    /// One request on a fresh connection; returns (status, body).
    fn call(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let mut s = std::net::TcpStream::connect(self.addr).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let status = text[9..12].parse().unwrap();
        let json = text
            .split("\r\n\r\n")
            .nth(1)
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or_default();
        (status, json)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// CPU time of process `pid`, all its threads, user and system, in clock
/// ticks (10 ms).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn status_field(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with(field))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

fn which(prog: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {prog}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A blocking keep-alive client for sequential calls.
struct Keepalive {
    s: std::net::TcpStream,
    r: BufReader<std::net::TcpStream>,
}

impl Keepalive {
    fn new(addr: SocketAddr) -> Self {
        let s = std::net::TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        let r = BufReader::new(s.try_clone().unwrap());
        Keepalive { s, r }
    }

    fn call(&mut self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        write!(
            self.s,
            "{method} {path} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        self.read()
    }

    fn read(&mut self) -> (u16, serde_json::Value) {
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        let status = line[9..12].parse().unwrap();
        let mut len = 0;
        loop {
            let mut h = String::new();
            self.r.read_line(&mut h).unwrap();
            if h == "\r\n" {
                break;
            }
            if let Some(v) = h.strip_prefix("Content-Length: ") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        self.r.read_exact(&mut body).unwrap();
        (status, serde_json::from_slice(&body).unwrap_or_default())
    }
}

// ---- relay -----------------------------------------------------------------------
