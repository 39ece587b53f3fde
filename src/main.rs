//! The `nanolab` binary: flags and config, logger, bind, print the address,
//! run the reactor.

use nanolab::config::{self, Command, Verbosity};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Mutex;

/// Writes log lines with a UTC timestamp to standard error or a file.
struct Logger {
    out: Mutex<Box<dyn Write + Send>>,
    level: log::LevelFilter,
}

impl log::Log for Logger {
    fn enabled(&self, meta: &log::Metadata<'_>) -> bool {
        meta.level() <= self.level && meta.target().starts_with("nanolab")
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let (secs, ms) = (now.as_secs(), now.subsec_millis());
        let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(
                out,
                "{h:02}:{m:02}:{s:02}.{ms:03} {:5} {}",
                record.level(),
                record.args()
            );
        }
    }

    fn flush(&self) {
        if let Ok(mut out) = self.out.lock() {
            let _ = out.flush();
        }
    }
}

fn init_logger(cfg: &config::Config) -> std::io::Result<()> {
    let out: Box<dyn Write + Send> = match &cfg.log_file {
        Some(p) => Box::new(std::fs::File::options().create(true).append(true).open(p)?),
        None => Box::new(std::io::stderr()),
    };
    let level = match cfg.verbosity {
        Verbosity::Quiet => log::LevelFilter::Warn,
        Verbosity::Normal => log::LevelFilter::Info,
        Verbosity::Debug => log::LevelFilter::Debug,
    };
    let logger = Box::leak(Box::new(Logger {
        out: Mutex::new(out),
        level,
    }));
    let _ = log::set_logger(logger);
    log::set_max_level(level);
    Ok(())
}

/// Say which engine runs the PCs, and warn at once when the VPCS program
/// it needs is not there (every PC start would fail).
fn pc_engine_said(cfg: &config::Config) {
    match cfg.pc_engine {
        nanolab::lab::PcEngine::Builtin => {
            log::info!("PCs run on the built-in engine (no process per PC)")
        }
        nanolab::lab::PcEngine::Vpcs => {
            let path = std::env::var_os("PATH");
            match nanolab::os::program::resolve(cfg.vpcs.as_deref(), path.as_deref()) {
                Ok(p) => log::info!("PCs run on the vpcs engine: {}", p.display()),
                Err(e) => log::warn!(
                    "{e}; PCs will not start until it is there, or run them on the built-in \
                     engine: --pc-engine builtin"
                ),
            }
        }
    }
}

fn main() -> ExitCode {
    let (command, flags) = match config::parse_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(config::ArgError::Usage(e)) => {
            eprintln!("nanolab: {e} (see nanolab --help)");
            return ExitCode::from(2);
        }
        Err(config::ArgError::Config(e)) => {
            eprintln!("nanolab: {e}");
            return ExitCode::from(2);
        }
    };
    let cfg = match command {
        Command::Version => {
            println!(
                "nanolab {} (GNS3 compute API {})",
                env!("CARGO_PKG_VERSION"),
                nanolab::api::API_VERSION
            );
            return ExitCode::SUCCESS;
        }
        Command::Help => {
            print!("{}", config::USAGE);
            return ExitCode::SUCCESS;
        }
        Command::Run(cfg) => *cfg,
    };
    if let Err(e) = init_logger(&cfg) {
        eprintln!("nanolab: cannot open log file: {e}");
        return ExitCode::FAILURE;
    }
    // A panic in a handler is caught and answered with a 500; say so in the log.
    std::panic::set_hook(Box::new(|info| log::error!("bug: {info}")));
    match nanolab::sys::raise_nofile_limit() {
        Ok(n) => log::debug!("open-file limit raised to {n}"),
        Err(e) => log::warn!("cannot raise the open-file limit: {e}"),
    }
    if !cfg.host.is_loopback() && cfg.auth.is_none() {
        log::warn!(
            "API listening on {} without authentication: anyone who can reach it can start programs \
             here; set [Server] auth or --auth-user",
            cfg.host
        );
    }
    if let Err(e) = std::fs::create_dir_all(&cfg.projects_dir) {
        eprintln!(
            "nanolab: cannot create the projects directory {}: {e}",
            cfg.projects_dir.display()
        );
        return ExitCode::FAILURE;
    }
    // One server per projects directory: only the lock holder may take
    // what it finds there for leftovers of an earlier run.
    let mut lock = match nanolab::os::fs::DirLock::take(&cfg.projects_dir) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("nanolab: {e}");
            return ExitCode::FAILURE;
        }
    };
    let marker = nanolab::lab::project::TEMPORARY_MARKER;
    let swept = nanolab::os::fs::sweep_projects_dir(&cfg.projects_dir, marker);
    for gone in swept.projects {
        log::info!(
            "removed temporary project left by an earlier run: {}",
            gone.display()
        );
    }
    for gone in swept.files {
        log::info!(
            "removed a half-written file left by an earlier run: {}",
            cfg.projects_dir.join(gone).display()
        );
    }
    if !cfg.console_sandbox {
        log::warn!(
            "console sandbox disabled: '!' in a VPCS console runs host commands as this user"
        );
    } else if nanolab::sys::landlock_abi().is_none() {
        log::warn!("kernel without Landlock: '!' lines are filtered by the console proxy only");
    }
    for w in &cfg.warnings {
        log::warn!("config file: {w}");
    }
    pc_engine_said(&cfg);
    let api = std::net::SocketAddr::new(cfg.host, cfg.port);
    let link = match &cfg.tls {
        None => nanolab::os::link::Policy::Plain,
        Some(files) => match files.load() {
            Ok(identity) => nanolab::os::link::Policy::Tls {
                identity,
                plain_too: !files.only,
            },
            Err(e) => {
                eprintln!("nanolab: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let scheme = match link {
        nanolab::os::link::Policy::Plain => "http",
        _ => "https",
    };
    let mut server = match nanolab::reactor::Server::new(cfg, flags, link) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            eprintln!(
                "nanolab: cannot listen on {api}: the address is already in use (another nanolab \
                 or GNS3 server?). Stop it, or pick another port: nanolab --port {}",
                api.port().wrapping_add(1).max(1)
            );
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("nanolab: cannot start on {api}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match server.local_addr() {
        Ok(addr) => {
            lock.record(&format!("pid {}, {scheme}://{addr}", std::process::id()));
            println!("nanolab listening on {scheme}://{addr}")
        }
        Err(e) => {
            eprintln!("nanolab: {e}");
            return ExitCode::FAILURE;
        }
    }
    let _ = std::io::stdout().flush();
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("poll loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}
