//! nanolab beside the reference: gns3-server 2.2.61 and 3.0.6 from PyPI,
//! installed into venvs under `target/`, on the same workloads: start, idle
//! RSS, a cheap GET at 1 and 64 connections with the server's CPU per
//! request, and 1,000 VPCS creates over 64 connections. One table, with
//! ratios. Run only when named (`cargo bench --bench system -- peers`): it
//! installs Python packages.
//!
//! The bench installs first (that needs the network), then runs itself again
//! inside a network namespace with loopback only (`unshare -n`, as root), so
//! the servers, their error reporters and the load generator cannot reach
//! anything else. One server runs at a time, pinned to CPU 0; the load
//! generator is pinned to CPU 1. The one-connection GET runs once more with
//! the load generator on CPU 0 too: across CPUs, every request wakes the
//! server's CPU from idle, which on a VM costs more than nanolab's request.

use super::*;
use load::{drive_seen, response_len};
use serde_json::json;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Set in the bench run again inside the namespace.
pub(crate) const INSIDE_ENV: &str = "NANOLAB_BENCH_PEERS";

const VERSIONS: [&str; 2] = ["2.2.61", "3.0.6"];

/// Every server listens here, alone in the namespace.
const PORT: u16 = 3080;

/// gns3-server 3.0's compute credentials (`[Server] compute_username` and
/// `compute_password`), as the integration tests configure them.
const USER: &str = "gns3";
const PASSWORD: &str = "local";
const CONF_3: &str = "compute_username = gns3\ncompute_password = local\n\
                      [Controller]\njwt_secret_key = 0123456789abcdef0123456789abcdef\n";

const CREATES: usize = 1000;
/// gns3-server gives VPCS 255 MAC ids per project (and nanolab as many).
const PER_PROJECT: usize = 250;

const LOAD_TIME: Duration = Duration::from_secs(3);
const START_BOUND: Duration = Duration::from_secs(120);

/// Install what is missing, then measure in a loopback-only namespace.
pub(crate) fn peers() {
    for v in VERSIONS {
        if let Err(e) = install(v) {
            println!("peers: gns3-server {v} is not installed: {e}");
        }
    }
    let exe = std::env::current_exe().unwrap();
    let run = Command::new("unshare")
        .args(["-n", "sh", "-c", r#"ip link set lo up && exec "$0" "$@""#])
        .arg(exe)
        .arg("peers")
        .env(INSIDE_ENV, "1")
        .status();
    match run {
        Ok(s) if s.success() => {}
        Ok(s) => println!(
            "peers: the run in a loopback-only namespace failed ({s}; unshare -n needs root)"
        ),
        Err(e) => println!("peers: unshare: {e}"),
    }
}

/// The venv of gns3-server `version`, as the integration tests make it.
fn venv(version: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("gns3-server-{version}"))
}

fn install(version: &str) -> Result<PathBuf, String> {
    let dir = venv(version);
    if dir.join(".installed").exists() {
        return Ok(dir);
    }
    println!(
        "peers: installing gns3-server {version} into {}",
        dir.display()
    );
    let _ = std::fs::remove_dir_all(&dir);
    let run = |c: &mut Command| {
        let out = c.output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(tail(&String::from_utf8_lossy(&out.stderr), 2000).to_string())
        }
    };
    run(Command::new("python3").args(["-m", "venv"]).arg(&dir))
        .map_err(|e| format!("python3 -m venv: {e}"))?;
    run(Command::new("timeout")
        .arg("900")
        .arg(dir.join("bin/pip"))
        .args(["install", "-q", &format!("gns3-server=={version}")]))
    .map_err(|e| format!("pip install gns3-server=={version}: {e}"))?;
    std::fs::write(dir.join(".installed"), version).map_err(|e| e.to_string())?;
    Ok(dir)
}

/// One implementation under test.
struct Flavour {
    name: &'static str,
    /// The gns3-server venv; `None` for nanolab.
    venv: Option<PathBuf>,
    /// Where its compute API is.
    prefix: &'static str,
    /// Header lines every request carries.
    auth: String,
    /// gns3-server's configuration after `[Server]`'s paths.
    ini: &'static str,
}

impl Flavour {
    fn request(&self, method: &str, path: &str, body: &str) -> Vec<u8> {
        let (p, auth) = (self.prefix, &self.auth);
        if body.is_empty() {
            format!("{method} {p}{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n")
        } else {
            format!(
                "{method} {p}{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        }
        .into_bytes()
    }

    /// Start the server in `dir` (its projects, configuration and log),
    /// pinned to CPU 0, at its default log level, logging to a file.
    fn spawn(&self, dir: &Path) -> Result<Peer, String> {
        let log = dir.join("server.log");
        let out = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| e.to_string())?;
        let port = PORT.to_string();
        let mut cmd = match &self.venv {
            None => {
                let mut c = on_cpu(0, env!("CARGO_BIN_EXE_nanolab"));
                c.args(["--host", "127.0.0.1", "--port", &port])
                    .args(["--console-ports", "5000-10000", "--projects-dir"])
                    .arg(dir.join("projects"));
                c
            }
            Some(venv) => {
                let conf = dir.join("gns3_server.conf");
                let mut text =
                    format!("[Server]\nhost = 127.0.0.1\nport = {PORT}\nreport_errors = False\n");
                for key in ["projects", "images", "configs", "appliances", "symbols"] {
                    let d = dir.join(key);
                    std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
                    text.push_str(&format!("{key}_path = {}\n", d.display()));
                }
                text.push_str(self.ini);
                std::fs::write(&conf, text).map_err(|e| e.to_string())?;
                let mut c = on_cpu(0, venv.join("bin/gns3server"));
                c.arg("--config")
                    .arg(&conf)
                    .args(["--host", "127.0.0.1", "--port", &port]);
                c
            }
        };
        cmd.env("HOME", dir)
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_DATA_HOME", dir.join("data"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out);
        let spawned = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("start {}: {e}", self.name))?;
        Ok(Peer {
            child,
            spawned,
            log,
        })
    }
}

/// The CPUs there are, counted before the bench pins itself to one.
fn cpus() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(cores)
}

/// `prog`, pinned to `cpu` when there are two CPUs or more.
fn on_cpu(cpu: usize, prog: impl AsRef<OsStr>) -> Command {
    if cpus() < 2 {
        return Command::new(prog);
    }
    let mut c = Command::new("taskset");
    c.args(["-c", &cpu.to_string()]).arg(prog);
    c
}

/// A running server, killed with its process tree on drop.
struct Peer {
    child: Child,
    spawned: Instant,
    log: PathBuf,
}

impl Peer {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Time from spawn to the first 200 on the version route.
    fn wait_up(&mut self, f: &Flavour) -> Result<Duration, String> {
        let req = f.request("GET", "/version", "");
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Err(format!(
                    "exited ({st}) before answering: {}",
                    self.log_tail()
                ));
            }
            if let Ok((200, _)) = exchange(&req) {
                return Ok(self.spawned.elapsed());
            }
            let waited = self.spawned.elapsed();
            if waited > START_BOUND {
                return Err(format!(
                    "no 200 on {}/version in {START_BOUND:?}: {}",
                    f.prefix,
                    self.log_tail()
                ));
            }
            // Fine steps while a fast server may be coming up.
            std::thread::sleep(Duration::from_millis(if waited.as_millis() < 100 {
                1
            } else {
                5
            }));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        tail(&text, 600).replace('\n', " | ")
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        for pid in tree(self.pid()).into_iter().skip(1).rev() {
            // It may have ended meanwhile (nanolab's start-up probes).
            let _ = Command::new("kill")
                .args(["-9", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(s: &str, n: usize) -> &str {
    let mut at = s.len().saturating_sub(n);
    while !s.is_char_boundary(at) {
        at += 1;
    }
    &s[at..]
}

/// A private directory on tmpfs (the file system's cost is not the
/// server's), removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!(
            "nanolab-peers-{tag}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], PORT))
}

/// One request on a fresh connection; (status, body).
fn exchange(req: &[u8]) -> Result<(u16, String), String> {
    let mut s = std::net::TcpStream::connect_timeout(&addr(), Duration::from_secs(1))
        .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    s.write_all(req).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(len) = response_len(&buf) {
            return Ok((status(&buf[..len]), body(&buf[..len])));
        }
        match s.read(&mut chunk) {
            Ok(0) => return Err("closed before a whole answer".into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn status(resp: &[u8]) -> u16 {
    resp.get(9..12)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn body(resp: &[u8]) -> String {
    let text = String::from_utf8_lossy(resp);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    body.chars().take(300).collect()
}

fn describe(resp: &[u8]) -> String {
    format!("{} {}", status(resp), body(resp))
}

/// `root` and its descendants, parents first.
fn tree(root: u32) -> Vec<u32> {
    let links: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
                .filter_map(|p| {
                    let s = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
                    let ppid = s[s.rfind(')')? + 2..].split_whitespace().nth(1)?;
                    Some((p, ppid.parse().ok()?))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(links.iter().filter(|l| l.1 == p).map(|l| l.0));
        i += 1;
    }
    out
}

/// VmRSS summed over the process tree, KiB, and how many processes.
fn tree_rss(root: u32) -> (u64, usize) {
    let pids = tree(root);
    (
        pids.iter().map(|&p| status_field(p, "VmRSS:")).sum(),
        pids.len(),
    )
}

fn tree_ticks(root: u32) -> u64 {
    tree(root).into_iter().map(cpu_ticks).sum()
}

// ---- the workloads ---------------------------------------------------------------

/// A figure, or why there is none.
type Cell = Option<Result<f64, String>>;

const ROWS: [&str; 15] = [
    "start, empty dirs (ms)",
    "restart, median of 3 (ms)",
    "idle RSS, 2 s after start (MiB)",
    "GET version, 1 conn (req/s)",
    "  p50 latency (us)",
    "  server CPU per request (us)",
    "  same, both on CPU 0 (req/s)",
    "  p50 latency (us)",
    "  server CPU per request (us)",
    "GET version, 64 conns (req/s)",
    "  p50 latency (us)",
    "  server CPU per request (us)",
    "1,000 creates, 64 conns (/s)",
    "  server CPU per create (us)",
    "RSS after the creates (MiB)",
];
const START: usize = 0;
const RESTART: usize = 1;
const IDLE: usize = 2;
/// Three rows each: req/s, p50, server CPU per request.
const GET_1: usize = 3;
const GET_1_SHARED: usize = 6;
const GET_64: usize = 9;
/// Two rows: creates/s, server CPU per create.
const CREATE: usize = 12;
const RSS_AFTER: usize = 14;

struct Column {
    cells: Vec<Cell>,
    processes: usize,
}

/// Four servers one after the other in the same directories: the first
/// finds them empty (3.0 makes its database then), the third serves the
/// GETs, the fourth the creates.
fn measure(f: &Flavour) -> Column {
    let mut col = Column {
        cells: vec![None; ROWS.len()],
        processes: 0,
    };
    if let Some(v) = &f.venv
        && !v.join(".installed").exists()
    {
        col.cells[START] = Some(Err(format!("not installed in {}", v.display())));
        return col;
    }
    let dir = Scratch::new(f.name);
    let mut restarts = Vec::new();
    for run in 0..4 {
        let row = if run == 0 { START } else { RESTART };
        let mut peer = match f.spawn(&dir.0) {
            Ok(p) => p,
            Err(e) => {
                col.cells[row] = Some(Err(e));
                return col;
            }
        };
        match peer.wait_up(f) {
            Ok(t) if run == 0 => col.cells[START] = Some(Ok(t.as_secs_f64() * 1e3)),
            Ok(t) => restarts.push(t),
            Err(e) => {
                col.cells[row] = Some(Err(e));
                return col;
            }
        }
        let pid = peer.pid();
        if run == 2 {
            std::thread::sleep(Duration::from_secs(2));
            let (kib, n) = tree_rss(pid);
            col.cells[IDLE] = Some(Ok(kib as f64 / 1024.0));
            col.processes = n;
            // The second one-connection run has the load generator beside
            // the server: no wake-up of another CPU per request.
            let shared = cpus() >= 2;
            for (row, conns) in [(GET_1, 1), (GET_1_SHARED, 1), (GET_64, 64)] {
                if row == GET_1_SHARED && !shared {
                    continue;
                }
                pin_self(if row == GET_1_SHARED { 0 } else { 1 });
                match get_load(f, pid, conns) {
                    Ok((rate, p50, cpu)) => {
                        col.cells[row] = Some(Ok(rate));
                        col.cells[row + 1] = Some(Ok(p50));
                        col.cells[row + 2] = Some(Ok(cpu));
                    }
                    Err(e) => col.cells[row] = Some(Err(e)),
                }
            }
            pin_self(1);
        }
        if run == 3 {
            match creates(f, pid) {
                Ok((rate, cpu)) => {
                    col.cells[CREATE] = Some(Ok(rate));
                    col.cells[CREATE + 1] = Some(Ok(cpu));
                }
                Err(e) => col.cells[CREATE] = Some(Err(e)),
            }
            col.cells[RSS_AFTER] = Some(Ok(tree_rss(pid).0 as f64 / 1024.0));
        }
    }
    restarts.sort_unstable();
    col.cells[RESTART] = Some(Ok(restarts[1].as_secs_f64() * 1e3));
    col
}

/// Pin the bench (the load generator) to `cpu`, when there are two CPUs or
/// more.
fn pin_self(cpu: usize) {
    if cpus() < 2 {
        return;
    }
    let _ = Command::new("taskset")
        .args([
            "-a",
            "-cp",
            &cpu.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .status();
}

/// The version route, closed loop for [`LOAD_TIME`]: (req/s, p50 in µs,
/// server CPU per request in µs).
fn get_load(f: &Flavour, pid: u32, conns: usize) -> Result<(f64, f64, f64), String> {
    let req = f.request("GET", "/version", "");
    let mut bad = None;
    let before = tree_ticks(pid);
    let (n, t, mut lat) = drive_seen(
        addr(),
        conns,
        LOAD_TIME,
        5_000_000,
        |_| req.clone(),
        |r| {
            if status(r) != 200 && bad.is_none() {
                bad = Some(describe(r));
            }
        },
    );
    let used = tree_ticks(pid) - before;
    if let Some(b) = bad {
        return Err(format!("GET {}/version: {b}", f.prefix));
    }
    if n == 0 {
        return Err(format!("no answer in {LOAD_TIME:?}"));
    }
    lat.sort_unstable();
    Ok((
        n as f64 / t.as_secs_f64(),
        lat[lat.len() / 2].as_secs_f64() * 1e6,
        used as f64 * 10_000.0 / n as f64,
    ))
}

/// [`CREATES`] VPCS nodes over 64 connections, in projects of
/// [`PER_PROJECT`]: (creates/s, server CPU per create in µs).
fn creates(f: &Flavour, pid: u32) -> Result<(f64, f64), String> {
    let projects: Vec<String> = (0..CREATES.div_ceil(PER_PROJECT))
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    for p in &projects {
        let body = json!({"name": "peers", "project_id": p}).to_string();
        match exchange(&f.request("POST", "/projects", &body)) {
            Ok((201, _)) => {}
            Ok((s, b)) => return Err(format!("POST {}/projects: {s} {b}", f.prefix)),
            Err(e) => return Err(format!("POST {}/projects: {e}", f.prefix)),
        }
    }
    let (mut k, mut made, mut bad) = (0, 0, None);
    let before = tree_ticks(pid);
    let (n, t, _) = drive_seen(
        addr(),
        64,
        Duration::from_secs(60),
        CREATES as u64,
        |_| {
            if k == CREATES {
                return Vec::new();
            }
            let p = &projects[k / PER_PROJECT];
            k += 1;
            let body =
                json!({"name": format!("PC{k}"), "node_id": uuid::Uuid::new_v4().to_string()});
            f.request(
                "POST",
                &format!("/projects/{p}/vpcs/nodes"),
                &body.to_string(),
            )
        },
        |r| {
            if status(r) == 201 {
                made += 1;
            } else if bad.is_none() {
                bad = Some(describe(r));
            }
        },
    );
    let used = tree_ticks(pid) - before;
    if made < CREATES {
        return Err(format!(
            "{made} of {CREATES} created ({n} answers in {t:.1?}); first failure: {}",
            bad.as_deref().unwrap_or("none (time bound)")
        ));
    }
    Ok((
        made as f64 / t.as_secs_f64(),
        used as f64 * 10_000.0 / made as f64,
    ))
}

// ---- the run in the namespace ------------------------------------------------------

pub(crate) fn inside() {
    // Other work on the machine shows here (the figures assume none).
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let loadavg = loadavg
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    pin_self(1);
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{USER}:{PASSWORD}"),
    );
    let flavours = [
        Flavour {
            name: "nanolab",
            venv: None,
            prefix: "/v2/compute",
            auth: String::new(),
            ini: "",
        },
        Flavour {
            name: VERSIONS[0],
            venv: Some(venv(VERSIONS[0])),
            prefix: "/v2/compute",
            auth: String::new(),
            ini: "auth = False\n",
        },
        Flavour {
            name: VERSIONS[1],
            venv: Some(venv(VERSIONS[1])),
            prefix: "/v3/compute",
            auth: format!("Authorization: Basic {basic}\r\n"),
            ini: CONF_3,
        },
    ];
    let cols: Vec<Column> = flavours
        .iter()
        .map(|f| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| measure(f))).unwrap_or_else(
                |e| {
                    let why = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    let mut cells = vec![None; ROWS.len()];
                    cells[START] = Some(Err(format!("the bench panicked: {why}")));
                    Column {
                        cells,
                        processes: 0,
                    }
                },
            )
        })
        .collect();
    print_table(&flavours, &cols, &loadavg);
}

fn python_version(venv: &Path) -> String {
    Command::new(venv.join("bin/python"))
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Three significant figures or so.
fn num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn print_table(flavours: &[Flavour], cols: &[Column], loadavg: &str) {
    let python = flavours[1]
        .venv
        .as_deref()
        .map(python_version)
        .unwrap_or_default();
    println!(
        "peers: nanolab beside gns3-server from PyPI, one server at a time in a loopback-only \
         network namespace; {}",
        if cpus() >= 2 {
            "server on CPU 0, load generator on CPU 1 (taskset)"
        } else {
            "one CPU: nothing pinned"
        }
    );
    println!(
        "peers: machine: {} cores, {}, load average {loadavg} at the start; {python}; data on \
         tmpfs; each server at its default log level, logging to a file",
        cpus(),
        cpu_model()
    );
    println!(
        "peers: routes: nanolab and 2.2.61 GET /v2/compute/version, POST /v2/compute/projects, \
         POST /v2/compute/projects/{{P}}/vpcs/nodes {{name, node_id}} ({PER_PROJECT} a project); \
         3.0.6 the same under /v3/compute with HTTP Basic (its compute requires it)"
    );
    println!(
        "peers: ratio = gns3-server / nanolab: nanolab is ahead where it is above 1 on times, \
         memory and CPU, below 1 on rates"
    );
    let mut notes = Vec::new();
    let mut cell = |c: &Cell, col: &str, row: &str| match c {
        None => "-".to_string(),
        Some(Ok(v)) => num(*v),
        Some(Err(e)) => {
            notes.push(format!("[{}] {col}, {}: {e}", notes.len() + 1, row.trim()));
            format!("[{}]", notes.len())
        }
    };
    println!(
        "{:<32} {:>10} {:>10} {:>10} {:>12} {:>12}",
        "", flavours[0].name, flavours[1].name, flavours[2].name, "2.2/nanolab", "3.0/nanolab"
    );
    for (r, row) in ROWS.iter().enumerate() {
        let texts: Vec<String> = (0..3)
            .map(|c| cell(&cols[c].cells[r], flavours[c].name, row))
            .collect();
        let ratio = |c: usize| match (&cols[0].cells[r], &cols[c].cells[r]) {
            (Some(Ok(base)), Some(Ok(v))) if *base > 0.0 => format!("{}x", num(v / base)),
            _ => "-".to_string(),
        };
        println!(
            "{row:<32} {:>10} {:>10} {:>10} {:>12} {:>12}",
            texts[0],
            texts[1],
            texts[2],
            ratio(1),
            ratio(2)
        );
    }
    println!(
        "peers: processes per server: {} (RSS and CPU are summed over each server's process tree)",
        flavours
            .iter()
            .zip(cols)
            .map(|(f, c)| format!("{} {}", f.name, c.processes))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for n in notes {
        println!("peers: {n}");
    }
}
