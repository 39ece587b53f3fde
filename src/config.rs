//! Command line and GNS3-style INI config file → [`Config`] (no I/O except
//! reading the config file named on the command line).
//!
//! Precedence: built-in defaults, then the config file, then flags.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Verbosity of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Warnings and errors only.
    Quiet,
    /// Lifecycle events.
    Normal,
    /// Every request.
    Debug,
}

/// Everything the server needs to know to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// What the configuration file says that nanolab ignores (a section it
    /// does not know, a section name in the wrong case); logged at start.
    pub warnings: Vec<String>,
    /// Address the API (and by default the consoles) bind.
    pub host: IpAddr,
    /// API port; 0 picks a free one.
    pub port: u16,
    /// Allow operations reserved to a local server (paths, shutdown, reload).
    pub local: bool,
    /// Bind consoles on every address instead of `host`.
    pub allow_remote_console: bool,
    /// Directory holding one directory per project.
    pub projects_dir: PathBuf,
    /// The VPCS program; `None` means `vpcs` from `PATH`.
    pub vpcs: Option<PathBuf>,
    /// What runs a virtual PC: the `vpcs` program or the built-in engine.
    pub pc_engine: crate::lab::PcEngine,
    /// Console TCP port range, inclusive.
    pub console_ports: (u16, u16),
    /// UDP tunnel port range, inclusive.
    pub udp_ports: (u16, u16),
    /// Config file read at start and on reload.
    pub config_file: Option<PathBuf>,
    /// Log verbosity.
    pub verbosity: Verbosity,
    /// Log file instead of standard error.
    pub log_file: Option<PathBuf>,
    /// Append one curl command per API request to this file.
    pub record: Option<PathBuf>,
    /// Confine VPCS children so that the console shell escape cannot run programs.
    pub console_sandbox: bool,
    /// HTTP Basic credentials every API request must carry, when set.
    pub auth: Option<crate::proto::http::auth::Credentials>,
    /// The GNS3 controller version `/v2/compute` claims (the controller
    /// requires its own), reported as `<it>-nanolab.<our version>`.
    pub gns3_version: String,
    /// The GNS3 3.0 controller version `/v3/compute` claims, reported as
    /// `<it>+nanolab.<our version>` (3.0 compares what is before the `+`).
    pub gns3_3_version: String,
    /// Open API connections at most (a further one gets a 503).
    pub max_connections: usize,
    /// Bytes every client buffer together may hold (outboxes of
    /// connections, websockets, consoles, live captures).
    pub memory_budget: usize,
    /// Where images are (QEMU's in `QEMU/`).
    pub images_dir: PathBuf,
    /// How QEMU VMs are accelerated.
    pub qemu_accel: crate::lab::QemuAccel,
    /// The container engine's socket (the Docker Engine API).
    pub docker_socket: PathBuf,
    /// Serve the API over TLS (https) with this certificate chain and
    /// private key (PEM files), read at start.
    pub tls: Option<TlsFiles>,
}

/// Where the API's TLS certificate chain and key are (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, the server's own first.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// Refuse plain HTTP on the port (by default it is served too).
    pub only: bool,
}

impl TlsFiles {
    /// Read and check both files: the error names the file and what is
    /// wrong with it.
    pub fn load(&self) -> Result<crate::proto::tls::Identity, String> {
        let read = |p: &PathBuf, what: &str| {
            std::fs::read(p).map_err(|e| format!("cannot read the TLS {what} {}: {e}", p.display()))
        };
        let (cert, key) = (read(&self.cert, "certificate")?, read(&self.key, "key")?);
        crate::proto::tls::Identity::from_pem(&cert, &key).map_err(|e| {
            format!(
                "TLS ({} and {}): {e}",
                self.cert.display(),
                self.key.display()
            )
        })
    }
}

pub use crate::api::v2::{GNS3_3_VERSION, GNS3_VERSION};

impl Config {
    /// What the lab needs to know of the configuration.
    pub fn lab_settings(&self) -> crate::lab::Settings {
        crate::lab::Settings {
            stamp: crate::lab::settings::Stamp(std::time::Instant::now),
            local: self.local,
            projects_dir: self.projects_dir.clone(),
            vpcs: self.vpcs.clone(),
            console_sandbox: self.console_sandbox,
            udp_ports: self.udp_ports,
            console_ports: self.console_ports,
            pc_engine: self.pc_engine,
            images_dir: self.images_dir.clone(),
            qemu_accel: self.qemu_accel,
            kvm_runs: Default::default(),
            gns3_version: format!(
                "{}-nanolab.{}",
                self.gns3_version,
                env!("CARGO_PKG_VERSION")
            ),
            gns3_3_version: format!(
                "{}+nanolab.{}",
                self.gns3_3_version,
                env!("CARGO_PKG_VERSION")
            ),
        }
    }

    /// Where consoles listen: `host`, or every address when allowed.
    pub fn console_host(&self) -> IpAddr {
        if self.allow_remote_console {
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
        } else {
            self.host
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Run the server.
    Run(Box<Config>),
    /// Print the version and exit.
    Version,
    /// Print usage and exit.
    Help,
}

/// Usage text for `--help` and bad flags.
pub const USAGE: &str = "\
usage: nanolab [--host ADDR] [--port N] [--local] [--allow-remote-console]
               [--projects-dir DIR] [--vpcs PATH] [--console-ports A-B] [--udp-ports A-B]
               [--config FILE] [--debug | --quiet] [--log FILE] [--record FILE]
               [--no-console-sandbox] [--auth-user USER [--auth-password-file FILE]]
               [--gns3-version X.Y.Z] [--gns3-3-version X.Y.Z] [--pc-engine vpcs|builtin]
               [--max-connections N] [--memory-budget MIB]
               [--tls-cert FILE --tls-key FILE [--tls-only]] [--images-dir DIR]
               [--qemu-accel auto|kvm|tcg] [--docker-socket PATH]
               [--version] [--help]

  --host ADDR             address to listen on (default 127.0.0.1)
  --port N                API port, 0 picks a free one (default 8000)
  --local                 allow local-only operations (project paths, reload, shutdown)
  --allow-remote-console  bind consoles on every address, not only --host
  --projects-dir DIR      where projects live (default $XDG_DATA_HOME/nanolab/projects
                          or ~/nanolab/projects)
  --vpcs PATH             the VPCS program (default: vpcs from PATH)
  --console-ports A-B     console TCP port range (default 2000-5000)
  --udp-ports A-B         UDP tunnel port range (default 10000-20000)
  --config FILE           GNS3-style INI file ([Server], [VPCS]); flags override it
  --debug | --quiet       log every request | only warnings and errors
  --log FILE              log to FILE instead of standard error
  --record FILE           append each API request to FILE as a shell line that
                          replays on a fresh server (NANOLAB=URL sh FILE)
  --no-console-sandbox    let VPCS run host commands typed after '!' (needed when
                          --vpcs is a script); logged as a warning
  --auth-user USER        require HTTP Basic authentication as USER; the password
                          comes from --auth-password-file or NANOLAB_AUTH_PASSWORD
  --auth-password-file FILE
                          the password for --auth-user: the first line of FILE
  --gns3-version X.Y.Z    the GNS3 controller version to claim on /v2/compute
                          (default 2.2.61); the controller refuses any other
  --gns3-3-version X.Y.Z  the GNS3 3.0 controller version to claim on /v3/compute
                          (default 3.0.6)
  --pc-engine vpcs|builtin
                          run virtual PCs with the vpcs program (default) or
                          the built-in engine (no process, no vpcs needed)
  --max-connections N     open API connections at most (default 10000); one
                          address may hold three quarters of them
  --memory-budget MIB     what all clients' unsent output may hold together
                          (default 64); past it, the most lagging is dropped
  --images-dir DIR        where images are, QEMU's in DIR/QEMU (default ~/GNS3/images)
  --qemu-accel auto|kvm|tcg
                          QEMU acceleration: KVM where it runs guests (tried once),
                          else TCG (default auto)
  --docker-socket PATH    the Docker engine's socket, for docker nodes (default
                          DOCKER_HOST's unix:// path, else /var/run/docker.sock)
  --tls-cert FILE         serve the API and its websockets over TLS (https) with
                          this PEM certificate chain; consoles stay telnet
  --tls-key FILE          the PEM private key of --tls-cert
  --tls-only              refuse plain HTTP on the port (by default it is served
                          too: GNS3 3.0 opens web consoles with its browser's scheme)
  --version               print the version and exit
  --help                  print this help and exit
";

/// Flags given on the command line, kept apart so that a reload can re-apply them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    host: Option<IpAddr>,
    port: Option<u16>,
    local: bool,
    allow_remote_console: bool,
    projects_dir: Option<PathBuf>,
    vpcs: Option<PathBuf>,
    console_ports: Option<(u16, u16)>,
    udp_ports: Option<(u16, u16)>,
    gns3_version: Option<String>,
    gns3_3_version: Option<String>,
    pc_engine: Option<crate::lab::PcEngine>,
    max_connections: Option<usize>,
    memory_budget: Option<usize>,
    /// Config file to read.
    pub config_file: Option<PathBuf>,
    verbosity: Option<Verbosity>,
    log_file: Option<PathBuf>,
    record: Option<PathBuf>,
    no_sandbox: bool,
    auth_user: Option<String>,
    auth_password_file: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_only: bool,
    images_dir: Option<PathBuf>,
    qemu_accel: Option<crate::lab::QemuAccel>,
    docker_socket: Option<PathBuf>,
}

/// Why the command line could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgError {
    /// A flag is unknown or malformed: the usage helps.
    Usage(String),
    /// The flags are fine but the configuration they name is not (file,
    /// line, password): the usage would only hide the message.
    Config(String),
}

impl std::fmt::Display for ArgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArgError::Usage(m) | ArgError::Config(m) => f.write_str(m),
        }
    }
}

/// Parse the arguments (without the program name).
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<(Command, Flags), ArgError> {
    let f = parse_flags(args).map_err(ArgError::Usage)?;
    let command = match f.1 {
        Some(c) => c,
        None => Command::Run(Box::new(build(&f.0).map_err(ArgError::Config)?)),
    };
    Ok((command, f.0))
}

fn parse_flags<I: IntoIterator<Item = String>>(
    args: I,
) -> Result<(Flags, Option<Command>), String> {
    let mut f = Flags::default();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs {what}"))
        };
        match name.as_str() {
            "--host" => f.host = Some(parse_host(&value("an address")?)?),
            "--port" => f.port = Some(parse_port(&value("a port")?)?),
            "--local" => f.local = true,
            "--allow-remote-console" => f.allow_remote_console = true,
            "--projects-dir" => f.projects_dir = Some(value("a directory")?.into()),
            "--vpcs" => f.vpcs = Some(value("a path")?.into()),
            "--console-ports" => f.console_ports = Some(parse_range(&value("a range A-B")?)?),
            "--udp-ports" => f.udp_ports = Some(parse_range(&value("a range A-B")?)?),
            "--config" => f.config_file = Some(value("a file")?.into()),
            "--pc-engine" => f.pc_engine = Some(parse_engine(&value("vpcs or builtin")?)?),
            "--gns3-version" => f.gns3_version = Some(parse_gns3_version(&value("a version")?)?),
            "--gns3-3-version" => {
                f.gns3_3_version = Some(parse_gns3_version(&value("a version")?)?)
            }
            "--max-connections" => {
                f.max_connections = Some(parse_count(&value("a number")?, "--max-connections")?)
            }
            "--memory-budget" => {
                f.memory_budget = Some(parse_mib(&value("a size in MiB")?, "--memory-budget")?)
            }
            "--debug" => f.verbosity = Some(Verbosity::Debug),
            "--quiet" => f.verbosity = Some(Verbosity::Quiet),
            "--log" => f.log_file = Some(value("a file")?.into()),
            "--record" => f.record = Some(value("a file")?.into()),
            "--no-console-sandbox" => f.no_sandbox = true,
            "--auth-user" => f.auth_user = Some(value("a user name")?),
            "--auth-password-file" => f.auth_password_file = Some(value("a file")?.into()),
            "--tls-cert" => f.tls_cert = Some(value("a PEM file")?.into()),
            "--tls-key" => f.tls_key = Some(value("a PEM file")?.into()),
            "--tls-only" => f.tls_only = true,
            "--images-dir" => f.images_dir = Some(value("a directory")?.into()),
            "--qemu-accel" => f.qemu_accel = Some(parse_accel(&value("auto, kvm or tcg")?)?),
            "--docker-socket" => f.docker_socket = Some(value("a socket path")?.into()),
            "--version" | "-v" => return Ok((f, Some(Command::Version))),
            "--help" | "-h" => return Ok((f, Some(Command::Help))),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    Ok((f, None))
}

/// Defaults, then the config file (if any), then the flags.
pub fn build(f: &Flags) -> Result<Config, String> {
    let mut c = defaults();
    if let Some(path) = &f.config_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        apply_ini(&mut c, &text).map_err(|e| format!("config file {}: {e}", path.display()))?;
        c.config_file = Some(path.clone());
    }
    c.host = f.host.unwrap_or(c.host);
    c.port = f.port.unwrap_or(c.port);
    c.local |= f.local;
    c.allow_remote_console |= f.allow_remote_console;
    c.projects_dir = f.projects_dir.clone().unwrap_or(c.projects_dir);
    c.vpcs = f.vpcs.clone().or(c.vpcs);
    c.console_ports = f.console_ports.unwrap_or(c.console_ports);
    c.udp_ports = f.udp_ports.unwrap_or(c.udp_ports);
    c.gns3_version = f.gns3_version.clone().unwrap_or(c.gns3_version);
    c.gns3_3_version = f.gns3_3_version.clone().unwrap_or(c.gns3_3_version);
    c.pc_engine = f.pc_engine.unwrap_or(c.pc_engine);
    c.images_dir = f.images_dir.clone().unwrap_or(c.images_dir);
    c.qemu_accel = f.qemu_accel.unwrap_or(c.qemu_accel);
    c.docker_socket = f.docker_socket.clone().unwrap_or(c.docker_socket);
    c.max_connections = f.max_connections.unwrap_or(c.max_connections);
    c.memory_budget = f.memory_budget.unwrap_or(c.memory_budget);
    c.verbosity = f.verbosity.unwrap_or(c.verbosity);
    c.log_file = f.log_file.clone();
    c.record = f.record.clone();
    c.console_sandbox = !f.no_sandbox;
    if let Some(user) = &f.auth_user {
        c.auth = Some(crate::proto::http::auth::Credentials::new(
            user,
            &flag_password(f)?,
        ));
    } else if f.auth_password_file.is_some() {
        return Err("--auth-password-file needs --auth-user".into());
    }
    match (&f.tls_cert, &f.tls_key) {
        (Some(cert), Some(key)) => {
            c.tls = Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                only: false,
            })
        }
        (None, None) => {}
        _ => return Err("--tls-cert and --tls-key go together".into()),
    }
    if f.tls_only {
        match &mut c.tls {
            Some(files) => files.only = true,
            None => return Err("--tls-only needs --tls-cert and --tls-key".into()),
        }
    }
    Ok(c)
}

/// The password for `--auth-user`: from a file (first line) or the
/// environment, never from the command line where `ps` would show it.
fn flag_password(f: &Flags) -> Result<String, String> {
    if let Some(path) = &f.auth_password_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read password file {}: {e}", path.display()))?;
        return Ok(text.lines().next().unwrap_or("").to_string());
    }
    std::env::var("NANOLAB_AUTH_PASSWORD").map_err(|_| {
        "--auth-user needs --auth-password-file FILE or NANOLAB_AUTH_PASSWORD".to_string()
    })
}

fn defaults() -> Config {
    Config {
        warnings: Vec::new(),
        host: IpAddr::from([127, 0, 0, 1]),
        port: 8000,
        local: false,
        allow_remote_console: false,
        projects_dir: default_projects_dir(),
        vpcs: None,
        console_ports: (2000, 5000),
        udp_ports: (10000, 20000),
        config_file: None,
        verbosity: Verbosity::Normal,
        log_file: None,
        record: None,
        console_sandbox: true,
        auth: None,
        gns3_version: GNS3_VERSION.into(),
        gns3_3_version: GNS3_3_VERSION.into(),
        pc_engine: crate::lab::PcEngine::Vpcs,
        max_connections: crate::limits::MAX_CONNECTIONS,
        memory_budget: crate::limits::MEMORY_BUDGET,
        tls: None,
        images_dir: default_images_dir(),
        qemu_accel: crate::lab::QemuAccel::Auto,
        docker_socket: default_docker_socket(),
    }
}

/// GNS3's default: `~/GNS3/images`.
/// `DOCKER_HOST` when it names a unix socket, else the engine's own.
fn default_docker_socket() -> PathBuf {
    std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"))
}

fn default_images_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/tmp".into())
        .join("GNS3")
        .join("images")
}

/// A count of at least 1.
fn parse_count(v: &str, what: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "{what} takes a whole number of at least 1, not '{v}'"
        )),
    }
}

/// A size in MiB (at least 1), in bytes.
fn parse_mib(v: &str, what: &str) -> Result<usize, String> {
    parse_count(v, what).and_then(|n| {
        n.checked_mul(1024 * 1024)
            .ok_or_else(|| format!("{what} {v} MiB is more than this machine can address"))
    })
}

fn parse_accel(v: &str) -> Result<crate::lab::QemuAccel, String> {
    match v {
        "auto" => Ok(crate::lab::QemuAccel::Auto),
        "kvm" => Ok(crate::lab::QemuAccel::Kvm),
        "tcg" => Ok(crate::lab::QemuAccel::Tcg),
        other => Err(format!(
            "'{other}' is not a QEMU acceleration: auto, kvm or tcg"
        )),
    }
}

fn parse_engine(v: &str) -> Result<crate::lab::PcEngine, String> {
    match v {
        "vpcs" => Ok(crate::lab::PcEngine::Vpcs),
        "builtin" => Ok(crate::lab::PcEngine::Builtin),
        other => Err(format!("'{other}' is not a PC engine: vpcs or builtin")),
    }
}

/// A GNS3 version: digits and dots (`2.2.61`), as the controller compares
/// the part before the first `-`.
fn parse_gns3_version(v: &str) -> Result<String, String> {
    let ok = !v.is_empty()
        && v.split('.').count() >= 2
        && v.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!("'{v}' is not a GNS3 version such as 2.2.61"))
    }
}

fn default_projects_dir() -> PathBuf {
    let base = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(xdg) => PathBuf::from(xdg),
        None => {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| "/tmp".into());
            return home.join("nanolab").join("projects");
        }
    };
    base.join("nanolab").join("projects")
}

/// The sections nanolab reads, and the other sections of a GNS3 server's
/// file (whose keys are not nanolab's).
const SECTIONS: &[&str] = &["Server", "VPCS", "Qemu", "GNS3"];
const GNS3_SECTIONS: &[&str] = &[
    "Controller",
    "Dynamips",
    "IOU",
    "VirtualBox",
    "VMware",
    "Docker",
    "TraceNG",
    "Hyper-V",
    "Builtin",
    "Ubridge",
];

/// A section nanolab will not read: its name in another case (GNS3's
/// configparser matches names exactly, so `[server]` is ignored there
/// too), or a name nobody knows.
fn section_warning(name: &str, line: usize) -> Option<String> {
    if SECTIONS.contains(&name) || GNS3_SECTIONS.contains(&name) {
        return None;
    }
    let same = SECTIONS
        .iter()
        .chain(GNS3_SECTIONS)
        .find(|s| s.eq_ignore_ascii_case(name));
    Some(match same {
        Some(right) => format!(
            "line {line}: section [{name}] is ignored: section names are matched exactly, as GNS3 \
             matches them; write [{right}]"
        ),
        None => format!(
            "line {line}: unknown section [{name}] is ignored (nanolab reads [Server], [VPCS], \
             [Qemu] and [GNS3])"
        ),
    })
}

/// Apply the `[Server]` and `[VPCS]` sections of a GNS3 server INI file.
pub fn apply_ini(c: &mut Config, text: &str) -> Result<(), String> {
    let mut section = String::new();
    let (mut cs, mut ce, mut us, mut ue) = (None, None, None, None);
    // The line that last set each range, to name it in an error.
    let (mut console_line, mut udp_line) = (None, None);
    let (mut auth, mut user, mut password) = (false, None, None);
    // GNS3's keys: `ssl = True` with `certfile` and `certkey`.
    let (mut ssl, mut certfile, mut certkey) = (None, None, None);
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
            if let Some(w) = section_warning(&section, n + 1) {
                c.warnings.push(w);
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=').or_else(|| line.split_once(':')) else {
            return Err(format!(
                "line {}: expected 'key = value', found '{line}'",
                n + 1
            ));
        };
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
        let at = |e: String| format!("line {}: {key}: {e}", n + 1);
        match (section.as_str(), key.as_str()) {
            ("Server", "host") => c.host = parse_host(value).map_err(at)?,
            ("Server", "port") => c.port = parse_port(value).map_err(at)?,
            ("Server", "local") => c.local = parse_bool(value).map_err(at)?,
            ("Server", "max_connections") => {
                c.max_connections = parse_count(value, "max_connections").map_err(at)?
            }
            ("Server", "memory_budget") => {
                c.memory_budget = parse_mib(value, "memory_budget").map_err(at)?
            }
            ("Server", "allow_remote_console") => {
                c.allow_remote_console = parse_bool(value).map_err(at)?
            }
            ("Server", "projects_path") => c.projects_dir = expand_home(value),
            ("Server", "images_path") => c.images_dir = expand_home(value),
            ("GNS3", "controller_version") => {
                c.gns3_version = parse_gns3_version(value).map_err(at)?
            }
            ("GNS3", "controller_3_version") => {
                c.gns3_3_version = parse_gns3_version(value).map_err(at)?
            }
            ("Server", "console_start_port_range") => {
                cs = Some(parse_port(value).map_err(at)?);
                console_line = Some(n + 1);
            }
            ("Server", "console_end_port_range") => {
                ce = Some(parse_port(value).map_err(at)?);
                console_line = Some(n + 1);
            }
            ("Server", "udp_start_port_range") => {
                us = Some(parse_port(value).map_err(at)?);
                udp_line = Some(n + 1);
            }
            ("Server", "udp_end_port_range") => {
                ue = Some(parse_port(value).map_err(at)?);
                udp_line = Some(n + 1);
            }
            ("Server", "auth") => auth = parse_bool(value).map_err(at)?,
            ("Server", "user") => user = Some(value.to_string()),
            ("Server", "password") => password = Some(value.to_string()),
            ("Server", "ssl") => ssl = Some((parse_bool(value).map_err(at)?, n + 1)),
            ("Server", "certfile") => certfile = Some(expand_home(value)),
            ("Server", "certkey") => certkey = Some(expand_home(value)),
            ("VPCS", "engine") => c.pc_engine = parse_engine(value).map_err(at)?,
            ("Qemu", "enable_kvm") => {
                c.qemu_accel = match parse_bool(value).map_err(at)? {
                    false => crate::lab::QemuAccel::Tcg,
                    true => c.qemu_accel,
                }
            }
            ("VPCS", "vpcs_path") => c.vpcs = (!value.is_empty()).then(|| expand_home(value)),
            // Other GNS3 keys (images_path, auth, report_errors...) are not ours to refuse.
            _ => {}
        }
    }
    let at_line = |line: Option<usize>, what: &str, e: String| match line {
        Some(l) => format!("line {l}: {what} port range: {e}"),
        None => format!("{what} port range: {e}"),
    };
    c.console_ports = check_range(
        cs.unwrap_or(c.console_ports.0),
        ce.unwrap_or(c.console_ports.1),
    )
    .map_err(|e| at_line(console_line, "console", e))?;
    c.udp_ports = check_range(us.unwrap_or(c.udp_ports.0), ue.unwrap_or(c.udp_ports.1))
        .map_err(|e| at_line(udp_line, "UDP", e))?;
    if auth {
        let user = user
            .filter(|u| !u.is_empty())
            .ok_or("auth = True needs a non-empty 'user' in [Server]")?;
        c.auth = Some(crate::proto::http::auth::Credentials::new(
            &user,
            password.as_deref().unwrap_or(""),
        ));
    }
    match (ssl, certfile, certkey) {
        (Some((true, _)), Some(cert), Some(key)) => {
            c.tls = Some(TlsFiles {
                cert,
                key,
                only: false,
            })
        }
        (Some((true, line)), _, _) => {
            return Err(format!(
                "line {line}: ssl = True needs 'certfile' and 'certkey' in [Server]"
            ));
        }
        (Some((false, _)), _, _) => c.tls = None,
        _ => {}
    }
    Ok(())
}

fn expand_home(value: &str) -> PathBuf {
    match (value.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(value),
    }
}

fn parse_host(s: &str) -> Result<IpAddr, String> {
    if s == "localhost" {
        return Ok(IpAddr::from([127, 0, 0, 1]));
    }
    s.parse().map_err(|_| format!("'{s}' is not an IP address"))
}

fn parse_port(s: &str) -> Result<u16, String> {
    s.parse()
        .map_err(|_| format!("'{s}' is not a port number (0-65535)"))
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!("'{s}' is not a boolean (True or False)")),
    }
}

fn parse_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("'{s}' is not a range A-B"))?;
    check_range(parse_port(a.trim())?, parse_port(b.trim())?)
}

fn check_range(a: u16, b: u16) -> Result<(u16, u16), String> {
    if a == 0 || a > b {
        return Err(format!(
            "{a}-{b} is empty or starts at 0 (the start must be at least 1 and not above the end)"
        ));
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, String> {
        match parse_args(args.iter().map(|s| s.to_string()))
            .map_err(|e| e.to_string())?
            .0
        {
            Command::Run(c) => Ok(*c),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = run(&[]).unwrap();
        assert_eq!(c.host.to_string(), "127.0.0.1");
        assert_eq!(
            (c.port, c.console_ports, c.udp_ports),
            (8000, (2000, 5000), (10000, 20000))
        );
        assert!(!c.local && c.console_sandbox);
    }

    #[test]
    fn flags_are_parsed() {
        let c = run(&[
            "--host",
            "0.0.0.0",
            "--port=0",
            "--local",
            "--udp-ports",
            "20000-20010",
            "--quiet",
        ])
        .unwrap();
        assert_eq!(
            (c.host.to_string().as_str(), c.port, c.local),
            ("0.0.0.0", 0, true)
        );
        assert_eq!(
            (c.udp_ports, c.verbosity),
            ((20000, 20010), Verbosity::Quiet)
        );
    }

    #[test]
    fn bad_flags_are_errors() {
        for bad in [
            &["--bogus"][..],
            &["--port", "x"],
            &["--port"],
            &["--udp-ports", "5-1"],
            &["--host", "nope"],
        ] {
            assert!(run(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ini_sections_in_the_wrong_case_or_unknown_are_warned_about() {
        let mut c = defaults();
        apply_ini(
            &mut c,
            "[server]\nport = 9000\n[Bogus]\nx = 1\n[Dynamips]\nx = 1\n",
        )
        .unwrap();
        assert_eq!(c.port, defaults().port, "[server] is not [Server]");
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("line 1") && c.warnings[0].contains("write [Server]"));
        assert!(c.warnings[1].contains("unknown section [Bogus]"));
    }

    #[test]
    fn ini_sections_apply() {
        let mut c = defaults();
        let ini = "[Server]\nhost = 127.0.0.2\nport = 3080\nlocal = True\nconsole_start_port_range = 5000\n\
                   console_end_port_range = 5010\n; comment\n[VPCS]\nvpcs_path = /opt/vpcs\n[Other]\nx = y\n";
        apply_ini(&mut c, ini).unwrap();
        assert_eq!(
            (c.port, c.local, c.console_ports),
            (3080, true, (5000, 5010))
        );
        assert_eq!(c.vpcs, Some(PathBuf::from("/opt/vpcs")));
    }

    #[test]
    fn each_controllers_version_is_claimed_apart() {
        let c = run(&[]).unwrap();
        let s = c.lab_settings();
        assert!(
            s.gns3_version.starts_with("2.2.61-nanolab."),
            "{}",
            s.gns3_version
        );
        assert!(
            s.gns3_3_version.starts_with("3.0.6+nanolab."),
            "{}",
            s.gns3_3_version
        );
        let c = run(&["--gns3-3-version", "3.0.7"]).unwrap();
        assert_eq!(
            (c.gns3_version.as_str(), c.gns3_3_version.as_str()),
            ("2.2.61", "3.0.7")
        );
        assert!(run(&["--gns3-3-version", "3.0-beta"]).is_err());
        let mut c = defaults();
        apply_ini(
            &mut c,
            "[GNS3]\ncontroller_3_version = 3.0.5\ncontroller_version = 2.2.60\n",
        )
        .unwrap();
        assert_eq!(
            (c.gns3_version.as_str(), c.gns3_3_version.as_str()),
            ("2.2.60", "3.0.5")
        );
    }

    #[test]
    fn auth_comes_from_the_file_or_from_flags_with_a_hidden_password() {
        let mut c = defaults();
        apply_ini(
            &mut c,
            "[Server]\nauth = True\nuser = admin\npassword = s3cret\n",
        )
        .unwrap();
        assert!(c.auth.unwrap().accepts(Some("Basic YWRtaW46czNjcmV0")));
        let mut c = defaults();
        assert!(
            apply_ini(&mut c, "[Server]\nauth = True\n").is_err(),
            "no user"
        );
        let file = std::env::temp_dir().join(format!("nanolab-pw-{}", std::process::id()));
        std::fs::write(&file, "s3cret\n").unwrap();
        let c = run(&[
            "--auth-user",
            "admin",
            "--auth-password-file",
            file.to_str().unwrap(),
        ])
        .unwrap();
        assert!(c.auth.unwrap().accepts(Some("Basic YWRtaW46czNjcmV0")));
        assert!(run(&["--auth-password-file", file.to_str().unwrap()]).is_err());
        let _ = std::fs::remove_file(file);
    }

    #[test]
    fn an_empty_port_range_names_its_line() {
        let mut c = defaults();
        let e = apply_ini(
            &mut c,
            "[Server]\nudp_start_port_range = 20000\n\nudp_end_port_range = 10000\n",
        )
        .unwrap_err();
        assert!(e.starts_with("line 4: UDP port range: 20000-10000"), "{e}");
    }

    #[test]
    fn config_errors_are_not_usage_errors() {
        let args = |a: &[&str]| parse_args(a.iter().map(|s| s.to_string()));
        assert!(matches!(args(&["--nope"]), Err(ArgError::Usage(_))));
        let e = args(&["--config", "/nonexistent/gns3_server.conf"]).unwrap_err();
        assert!(matches!(e, ArgError::Config(_)), "{e:?}");
    }

    #[test]
    fn malformed_ini_names_the_line() {
        let mut c = defaults();
        let err = apply_ini(&mut c, "[Server]\nport = many\n").unwrap_err();
        assert!(err.contains("line 2") && err.contains("port"), "{err}");
        assert!(apply_ini(&mut c, "[Server]\njunk\n").is_err());
    }
}
