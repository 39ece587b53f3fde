//! The VPCS program: where it is, how it is called (pure), and what it may
//! execute. Spawning happens in the reactor through [`crate::sys`].

use crate::error::ApiError;
use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Everything the command line depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The program.
    pub program: PathBuf,
    /// MAC offset (`-m`).
    pub mac: u8,
    /// UDP port VPCS binds for its one instance (`-s`); it also binds this + 9.
    pub vpcs_port: u16,
    /// The server's internal socket for this VM (`-c`).
    pub server_port: u16,
    /// Whether to pass the startup script.
    pub startup_script: bool,
}

/// The argv of a VPCS process, program first. One instance, frames to the
/// server's internal socket on loopback, console on the pty (no `-p`).
pub fn command_line(l: &Launch) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec![l.program.clone().into()];
    for (flag, value) in [
        ("-i", "1".to_string()),
        ("-m", l.mac.to_string()),
        ("-s", l.vpcs_port.to_string()),
        ("-c", l.server_port.to_string()),
        ("-t", Ipv4Addr::LOCALHOST.to_string()),
    ] {
        argv.push(flag.into());
        argv.push(value.into());
    }
    if l.startup_script {
        argv.push(crate::model::vm::STARTUP_SCRIPT.into());
    }
    argv
}

/// The line nanolab writes to `vpcs.log` before each start.
pub const LOG_HEADER: &str = "--- nanolab starting: ";

/// What the last run wrote to `vpcs.log`: everything after the last header
/// line, or `None` when the header is not in `log` (a tail of the file).
pub fn last_run(log: &[u8]) -> Option<&[u8]> {
    let header = LOG_HEADER.as_bytes();
    let at = log.windows(header.len()).rposition(|w| w == header)?;
    let nl = log[at..].iter().position(|&b| b == b'\n')?;
    Some(&log[at + nl + 1..])
}

/// The VPCS relay port: vpcs binds its `-s` port and this one too.
pub fn relay_port(vpcs_port: u16) -> Option<u16> {
    vpcs_port.checked_add(9)
}

/// Find the program: the configured path, else `vpcs` on `PATH`. Missing or
/// not executable is a 409 naming the path and the fix.
pub fn resolve(
    configured: Option<&Path>,
    path_var: Option<&std::ffi::OsStr>,
) -> Result<PathBuf, ApiError> {
    let candidate = match configured {
        Some(p) => Some(p.to_path_buf()),
        None => path_var
            .map(std::env::split_paths)
            .and_then(|mut dirs| dirs.find_map(|d| Some(d.join("vpcs")).filter(|p| p.is_file()))),
    };
    let shown = candidate
        .as_ref()
        .map_or("vpcs (on PATH)".into(), |p| p.display().to_string());
    let executable = candidate
        .as_ref()
        .and_then(|p| std::fs::metadata(p).ok())
        .is_some_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    match candidate {
        Some(p) if executable => Ok(p),
        _ => Err(ApiError::conflict(format!(
            "VPCS program {shown} is missing or not executable: install it with 'apt-get install vpcs' \
             or set --vpcs / [VPCS] vpcs_path"
        ))),
    }
}

/// The ELF interpreter (dynamic loader) a program needs, `None` for a static
/// binary. Errors when the file is not an ELF program (a script, say).
pub fn elf_interpreter(program: &Path) -> Result<Option<PathBuf>, String> {
    let bytes =
        std::fs::read(program).map_err(|e| format!("cannot read {}: {e}", program.display()))?;
    parse_interp(&bytes).map(|o| o.map(PathBuf::from))
}

/// Pure part of [`elf_interpreter`]: find PT_INTERP in an ELF image.
pub fn parse_interp(b: &[u8]) -> Result<Option<String>, String> {
    if b.get(..4) != Some(b"\x7fELF") {
        return Err("not an ELF program (a script?)".into());
    }
    let wide = b.get(4) == Some(&2);
    let le = b.get(5) == Some(&1);
    let num = |off: usize, len: usize| -> Option<u64> {
        let s = b.get(off..off + len)?;
        let mut v = 0u64;
        for i in 0..len {
            let byte = if le { s[len - 1 - i] } else { s[i] };
            v = (v << 8) | byte as u64;
        }
        Some(v)
    };
    let bad = || "truncated ELF header".to_string();
    let (phoff, phentsize, phnum) = if wide {
        (
            num(0x20, 8).ok_or_else(bad)?,
            num(0x36, 2).ok_or_else(bad)?,
            num(0x38, 2).ok_or_else(bad)?,
        )
    } else {
        (
            num(0x1c, 4).ok_or_else(bad)?,
            num(0x2a, 2).ok_or_else(bad)?,
            num(0x2c, 2).ok_or_else(bad)?,
        )
    };
    for i in 0..phnum {
        let ph = (phoff + i * phentsize) as usize;
        if num(ph, 4).ok_or_else(bad)? != 3 {
            continue;
        }
        let (off, size) = if wide {
            (
                num(ph + 8, 8).ok_or_else(bad)?,
                num(ph + 32, 8).ok_or_else(bad)?,
            )
        } else {
            (
                num(ph + 4, 4).ok_or_else(bad)?,
                num(ph + 16, 4).ok_or_else(bad)?,
            )
        };
        let raw = b.get(off as usize..(off + size) as usize).ok_or_else(bad)?;
        let text = raw.split(|&c| c == 0).next().unwrap_or_default();
        return Ok(Some(String::from_utf8_lossy(text).into_owned()));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_is_exact() {
        let l = Launch {
            program: "/usr/bin/vpcs".into(),
            mac: 3,
            vpcs_port: 20000,
            server_port: 41000,
            startup_script: true,
        };
        let argv: Vec<String> = command_line(&l)
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        assert_eq!(
            argv,
            [
                "/usr/bin/vpcs",
                "-i",
                "1",
                "-m",
                "3",
                "-s",
                "20000",
                "-c",
                "41000",
                "-t",
                "127.0.0.1",
                "startup.vpc"
            ]
        );
        let l = Launch {
            startup_script: false,
            ..l
        };
        assert_eq!(command_line(&l).len(), 11);
    }

    #[test]
    fn last_run_is_what_follows_the_last_header() {
        let log = b"--- nanolab starting: [\"a\"]\nold\n--- nanolab starting: [\"b\"]\nboom\n";
        assert_eq!(last_run(log), Some(&b"boom\n"[..]));
        assert_eq!(last_run(b"no header here"), None);
        assert_eq!(last_run(b"--- nanolab starting: cut"), None);
    }

    #[test]
    fn missing_program_is_a_409_with_the_fix() {
        let e = resolve(Some(Path::new("/nonexistent/vpcs")), None).unwrap_err();
        assert_eq!(e.status(), 409);
        assert!(
            e.to_string().contains("/nonexistent/vpcs")
                && e.to_string().contains("apt-get install vpcs")
        );
        assert!(resolve(None, Some(std::ffi::OsStr::new("/nonexistent"))).is_err());
        let plain = std::env::temp_dir().join(format!("nanolab-noexec-{}", std::process::id()));
        std::fs::write(&plain, b"").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(resolve(Some(&plain), None).is_err(), "not executable");
        let _ = std::fs::remove_file(plain);
    }

    #[test]
    fn interpreter_of_a_real_program() {
        let interp = elf_interpreter(Path::new("/bin/true")).unwrap();
        assert!(interp.unwrap().to_string_lossy().contains("ld-"));
        assert!(parse_interp(b"#!/bin/sh\n").is_err());
        assert!(parse_interp(b"\x7fELF\x02\x01").is_err());
    }
}
