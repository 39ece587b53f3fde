//! Debian's `vpcs` 0.5b2, the program behind a PC's process engine: its
//! command line, ports, log and script files, and the ELF reader that
//! finds its loader (pure functions, no I/O).

use crate::error::ApiError;
use crate::lab::host::Host;
use crate::limits::MAX_SCRIPT_BYTES;
use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// File name of a node's startup script inside its directory.
pub const STARTUP_SCRIPT: &str = "startup.vpc";
/// The log of a node's VPCS runs, in its directory.
pub const LOG_FILE: &str = "vpcs.log";
/// The prompt VPCS prints when its console is ready for commands.
pub const PROMPT: &[u8] = b"> ";
/// VPCS binds its `-s` port and this many above it (its relay).
pub const RELAY_OFFSET: u16 = 9;
/// The line nanolab writes to `vpcs.log` before each start.
pub const LOG_HEADER: &str = "--- nanolab starting: ";

/// A running VPCS process, as the lab knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    /// Unique per process the lab ever started: deadlines set for one
    /// process never act on a later one.
    pub serial: u64,
    /// Process id (and process group).
    pub pid: u32,
    /// The UDP port VPCS binds (and its relay port), reserved in the UDP pool.
    pub vpcs_port: u16,
    /// The console has shown its prompt.
    pub ready: bool,
    /// The last console output before the prompt (for a failed start).
    pub boot_output: Vec<u8>,
    /// Host commands (`!` lines) are filtered by the console proxy.
    pub filter_shell: bool,
}

/// Everything the VPCS command line depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The program.
    pub program: PathBuf,
    /// MAC offset (`-m`).
    pub mac: u8,
    /// UDP port VPCS binds for its one instance (`-s`); it also binds its relay port.
    pub vpcs_port: u16,
    /// The server's internal socket for this node (`-c`).
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
        argv.push(STARTUP_SCRIPT.into());
    }
    argv
}

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
    vpcs_port.checked_add(RELAY_OFFSET)
}

/// `%h` in a startup script stands for the node name.
pub fn expand_script(script: &str, name: &str) -> String {
    script.replace("%h", name)
}

/// The script of a node being created: the one given (`%h` expanded,
/// written, even when empty), else the `startup.vpc` already in its
/// directory (a project reopened, restored or saved elsewhere), else none.
pub(crate) fn startup_script(
    host: &mut dyn Host,
    dir: &Path,
    given: Option<&str>,
    name: &str,
) -> Result<Option<String>, ApiError> {
    let path = dir.join(STARTUP_SCRIPT);
    match given {
        Some(s) => {
            let script = expand_script(s, name);
            host.files().write_file(&path, script.as_bytes())?;
            Ok(Some(script))
        }
        None => Ok(host
            .files()
            .read_file(&path, MAX_SCRIPT_BYTES)
            .map(|b| String::from_utf8_lossy(&b).into_owned())),
    }
}

/// Rename inside a startup script, as GNS3 did.
pub(crate) fn renamed_script(script: &str, old: &str, new: &str) -> String {
    if old.is_empty() {
        script.to_string()
    } else {
        script.replace(old, new)
    }
}

/// Pure part of finding a program's dynamic loader: PT_INTERP in an ELF
/// image. `Ok(None)` for a static program; an error when it is not ELF.
pub fn parse_interp(b: &[u8]) -> Result<Option<String>, String> {
    if b.get(..4) != Some(b"\x7fELF") {
        return Err("not an ELF program (a script?)".into());
    }
    let wide = b.get(4) == Some(&2);
    let le = b.get(5) == Some(&1);
    let num = |off: usize, len: usize| -> Option<u64> {
        let s = b.get(off..off.checked_add(len)?)?;
        let mut v = 0u64;
        for i in 0..len {
            let byte = if le { s[len - 1 - i] } else { s[i] };
            v = (v << 8) | u64::from(byte);
        }
        Some(v)
    };
    let bad = || "truncated ELF header".to_string();
    // Offsets are the file's (64-bit); one that does not fit this host's
    // `usize` (above 4 GiB on a 32-bit board) is past the end of any
    // image read into memory here.
    let at = |v: u64, plus: u64| -> Result<usize, String> {
        v.checked_add(plus)
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(bad)
    };
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
        let ph = phoff
            .checked_add(i.checked_mul(phentsize).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        if num(at(ph, 0)?, 4).ok_or_else(bad)? != 3 {
            continue;
        }
        let (off, size) = if wide {
            (
                num(at(ph, 8)?, 8).ok_or_else(bad)?,
                num(at(ph, 32)?, 8).ok_or_else(bad)?,
            )
        } else {
            (
                num(at(ph, 4)?, 4).ok_or_else(bad)?,
                num(at(ph, 16)?, 4).ok_or_else(bad)?,
            )
        };
        let raw = b.get(at(off, 0)?..at(off, size)?).ok_or_else(bad)?;
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
    fn relay_port_is_nine_above_and_never_wraps() {
        assert_eq!(relay_port(20000), Some(20009));
        assert_eq!(relay_port(65530), None);
    }

    #[test]
    fn rename_rewrites_the_script() {
        let s = expand_script("set pcname %h\nip 10.0.0.1\n", "PC1");
        assert_eq!(s, "set pcname PC1\nip 10.0.0.1\n");
        assert_eq!(
            renamed_script(&s, "PC1", "Web"),
            "set pcname Web\nip 10.0.0.1\n"
        );
        assert_eq!(renamed_script(&s, "", "Web"), s);
    }

    #[test]
    fn interpreter_parsing_refuses_what_is_not_elf() {
        assert!(parse_interp(b"#!/bin/sh\n").is_err());
        assert!(parse_interp(b"\x7fELF\x02\x01").is_err());
        let real = std::fs::read("/bin/true").unwrap();
        assert!(parse_interp(&real).unwrap().unwrap().contains("ld-"));
    }

    /// A 32-bit little-endian ELF image with one PT_INTERP header at
    /// `phoff` (written there when it fits) naming `/lib/ld.so`.
    fn elf32(phoff: u32) -> Vec<u8> {
        let mut b = vec![0u8; 96];
        b[..6].copy_from_slice(b"\x7fELF\x01\x01");
        b[0x1c..0x20].copy_from_slice(&phoff.to_le_bytes());
        b[0x2a..0x2c].copy_from_slice(&32u16.to_le_bytes());
        b[0x2c..0x2e].copy_from_slice(&1u16.to_le_bytes());
        let start = usize::try_from(phoff).unwrap();
        if let Some(ph) = start.checked_add(32).and_then(|end| b.get_mut(start..end)) {
            ph[..4].copy_from_slice(&3u32.to_le_bytes());
            ph[4..8].copy_from_slice(&84u32.to_le_bytes());
            ph[16..20].copy_from_slice(&11u32.to_le_bytes());
        }
        b[84..95].copy_from_slice(b"/lib/ld.so\0");
        b
    }

    #[test]
    fn interpreter_offsets_at_the_edges_are_errors_not_wraps() {
        // A 32-bit program (an armhf vpcs) parses.
        assert_eq!(
            parse_interp(&elf32(52)).unwrap().as_deref(),
            Some("/lib/ld.so")
        );
        // Headers past the end, or at offsets near the top of 32 bits,
        // where `ph + 16` would wrap a 32-bit `usize`.
        for phoff in [200, u32::MAX - 8, u32::MAX] {
            assert!(parse_interp(&elf32(phoff)).is_err(), "{phoff}");
        }
        // A 64-bit image whose header offset is above 4 GiB, or at the very
        // top, where adding to it overflows.
        let mut b = vec![0u8; 64];
        b[..6].copy_from_slice(b"\x7fELF\x02\x01");
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&2u16.to_le_bytes());
        for phoff in [1u64 << 32, u64::MAX - 40, u64::MAX] {
            b[0x20..0x28].copy_from_slice(&phoff.to_le_bytes());
            assert!(parse_interp(&b).is_err(), "{phoff}");
        }
    }
}
