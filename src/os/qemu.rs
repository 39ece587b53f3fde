//! What the host offers QEMU nodes: the `qemu-system-*` and `qemu-img`
//! programs on `PATH` with their versions, and whether KVM answers.
//! Read once, at start (each version is one short run of the program,
//! all run at once), so that no request waits on a child.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use crate::lab::answer::{Binary, QemuHost};

/// Look in the directories of `path` (a `PATH` value), in order, the first
/// of a name winning; and ask `/dev/kvm` (see [`crate::sys::kvm_usable`]).
///
/// The programs are asked their versions all at once, and a program that
/// several names lead to (`qemu-system-amd64` is `qemu-system-x86_64` on
/// Debian) once: the server answers nothing until this is done, and one
/// after another they held its start by 100-170 ms.
pub fn probe(path: &str) -> QemuHost {
    let mut seen = std::collections::BTreeSet::new();
    let mut found: Vec<(bool, PathBuf)> = Vec::new();
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        for name in names {
            let system = is_system(&name);
            if !(system || name == "qemu-img") || !seen.insert(name.clone()) {
                continue;
            }
            let p = Path::new(dir).join(&name);
            if executable(&p) {
                found.push((system, p));
            }
        }
    }
    let versions = versions_of(&found);
    let (mut binaries, mut img_binaries) = (Vec::new(), Vec::new());
    for ((system, path), version) in found.into_iter().zip(versions) {
        let list = if system {
            &mut binaries
        } else {
            &mut img_binaries
        };
        list.push(Binary { version, path });
    }
    QemuHost {
        binaries,
        img_binaries,
        kvm: crate::sys::kvm_usable(),
    }
}

/// Each program's version (`-version` for a system emulator, `--version`
/// for `qemu-img`): every distinct program started first, then each read.
fn versions_of(found: &[(bool, PathBuf)]) -> Vec<String> {
    let real: Vec<PathBuf> = found
        .iter()
        .map(|(_, p)| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
        .collect();
    let mut running: Vec<(usize, Option<std::process::Child>)> = Vec::new();
    for (i, (system, _)) in found.iter().enumerate() {
        if real[..i].contains(&real[i]) {
            continue;
        }
        let flag = if *system { "-version" } else { "--version" };
        let child = Command::new(&found[i].1)
            .arg(flag)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        running.push((i, child));
    }
    let mut by_program: Vec<(PathBuf, String)> = Vec::new();
    for (i, child) in running {
        let version = child
            .and_then(|c| c.wait_with_output().ok())
            .and_then(|o| parse_version(&String::from_utf8_lossy(&o.stdout)))
            .unwrap_or_default();
        by_program.push((real[i].clone(), version));
    }
    real.iter()
        .map(|r| {
            by_program
                .iter()
                .find(|(p, _)| p == r)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        })
        .collect()
}

/// GNS3's rule for a QEMU system emulator's name.
fn is_system(name: &str) -> bool {
    name.starts_with("qemu-system") || name.starts_with("qemu-kvm") || name == "qemu"
}

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The number after the word `version` on the first line.
pub fn parse_version(text: &str) -> Option<String> {
    let line = text.lines().next()?;
    let mut words = line.split_whitespace();
    words.find(|w| *w == "version")?;
    let v = words.next()?;
    let v: String = v
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_as_qemu_prints_them() {
        let system = "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\n\
                      Copyright (c) 2003-2025 Fabrice Bellard and the QEMU Project developers\n";
        assert_eq!(parse_version(system).as_deref(), Some("10.0.2"));
        let img = "qemu-img version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)\n";
        assert_eq!(parse_version(img).as_deref(), Some("7.2.19"));
        assert_eq!(parse_version("no number here\n"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn programs_are_found_by_gns3_s_rule() {
        let dir = std::env::temp_dir().join(format!("nanolab-qemu-probe-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let script = |name: &str, text: &str, mode: u32| {
            use std::os::unix::fs::PermissionsExt;
            let p = dir.join(name);
            std::fs::write(&p, format!("#!/bin/sh\necho '{text}'\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        script("qemu-system-x86_64", "QEMU emulator version 9.1.0", 0o755);
        script("qemu-system-arm", "QEMU emulator version 9.1.0", 0o644);
        script("qemu-img", "qemu-img version 9.1.0", 0o755);
        script("qemu-nbd", "qemu-nbd 9.1.0", 0o755);
        std::os::unix::fs::symlink(
            dir.join("qemu-system-x86_64"),
            dir.join("qemu-system-amd64"),
        )
        .unwrap();
        let found = probe(&format!("{}:/nonexistent", dir.display()));
        let names: Vec<_> = found.binaries.iter().map(|b| b.path.clone()).collect();
        assert_eq!(
            names,
            vec![
                dir.join("qemu-system-amd64"),
                dir.join("qemu-system-x86_64")
            ],
            "executables only, each name found"
        );
        assert_eq!(
            found.binaries[0].version, "9.1.0",
            "a link shares its version"
        );
        assert_eq!(found.binaries[1].version, "9.1.0");
        assert_eq!(found.img_binaries.len(), 1);
        assert_eq!(found.img_binaries[0].version, "9.1.0");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
