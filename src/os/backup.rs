//! Projects archives: a tar stream of the projects directory made a piece
//! at a time (never the whole archive in memory), and a restore that
//! refuses, as a whole and before writing anything, an archive with an
//! entry that would land outside the directory or with a link (GNS3's
//! projects hold none, and a link is how one entry carries a later write
//! elsewhere). Both walk beneath a directory handle ([`super::confined`]):
//! the kernel, not a string check, keeps them inside. A restore is done a
//! slice of entries at a time so that the loop serves others in between.
//! The tar format itself is the `tar` crate's.

use super::confined;
use crate::error::ApiError;
use crate::lab::answer::Restored;
use cap_std::fs::{Dir, ReadDir};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use tar::{Builder, EntryType, Header};

/// A tar archive of a directory, produced on demand.
pub struct TarStream {
    /// Directories being walked, with their path inside the archive.
    walk: Vec<(ReadDir, PathBuf)>,
    /// The file whose content is being sent, and the bytes still owed.
    file: Option<(cap_std::fs::File, u64)>,
    /// Headers (and padding) are written here by the `tar` crate.
    builder: Builder<Vec<u8>>,
    done: bool,
}

impl TarStream {
    /// Start archiving `root` (its entries, named relative to it).
    pub fn new(root: &Path) -> io::Result<Self> {
        let walk = vec![(confined::open_root(root)?.entries()?, PathBuf::new())];
        let mut builder = Builder::new(Vec::new());
        builder.mode(tar::HeaderMode::Deterministic);
        Ok(TarStream {
            walk,
            file: None,
            builder,
            done: false,
        })
    }

    /// Append about `want` more bytes of the archive to `out`. Returns
    /// false once the archive is complete.
    pub fn fill(&mut self, out: &mut Vec<u8>, want: usize) -> bool {
        let goal = out.len() + want;
        while out.len() < goal && !self.done {
            if let Some((file, owed)) = &mut self.file {
                let n = (*owed).min((goal - out.len()) as u64).min(64 * 1024) as usize;
                let at = out.len();
                out.resize(at + n, 0);
                // A file that shrank, or cannot be read, is padded with zeros:
                // the header already promised its size.
                let mut got = 0;
                while got < n {
                    match file.read(&mut out[at + got..at + n]) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => got += k,
                    }
                }
                *owed -= n as u64;
                if *owed == 0 {
                    self.file = None;
                    let pad = (512 - (out.len() % 512)) % 512;
                    out.resize(out.len() + pad, 0);
                }
                continue;
            }
            self.next_entry();
            out.append(self.builder.get_mut());
        }
        !self.done
    }

    /// Write the next entry's header; open its content, if a file. Links
    /// are left out: a restore refuses them.
    fn next_entry(&mut self) {
        let Some((dir, rel)) = self.walk.last_mut() else {
            let _ = self.builder.finish();
            self.done = true;
            return;
        };
        let Some(entry) = dir.next() else {
            self.walk.pop();
            return;
        };
        let Ok(entry) = entry else { return };
        let name = rel.join(entry.file_name());
        if name == Path::new(confined::LOCK_FILE) {
            return;
        }
        // The entry's own metadata: a link is not followed.
        let Ok(meta) = entry.metadata() else { return };
        let mut header = Header::new_gnu();
        // The file's own time (a restore gives it back).
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.into_std().duration_since(std::time::UNIX_EPOCH).ok());
        header.set_mtime(mtime.map_or(0, |d| d.as_secs()));
        if meta.is_dir() {
            if let Ok(d) = entry.open_dir().and_then(|d| d.entries()) {
                header.set_entry_type(EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                let _ = self.builder.append_data(&mut header, &name, io::empty());
                self.walk.push((d, name));
            }
        } else if meta.is_file()
            && let Ok(file) = entry.open()
        {
            header.set_entry_type(EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(meta.len());
            let _ = self.builder.append_data(&mut header, &name, io::empty());
            if meta.len() > 0 {
                self.file = Some((file, meta.len()));
            }
        }
    }
}

/// Where `path` lands inside the directory, or `None` when it leaves it
/// (absolute, or more `..` than depth).
fn inside(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn refuse(path: &Path, why: &str) -> ApiError {
    ApiError::bad(format!(
        "The archive is refused, nothing was written: entry '{}' {why}",
        path.display()
    ))
}

fn unreadable(e: io::Error) -> ApiError {
    ApiError::bad(format!("The upload is not a readable tar archive: {e}"))
}

/// Check one entry: where it lands and what it is (files and
/// directories only).
fn check(entry: &tar::Entry<'_, &[u8]>) -> Result<(), ApiError> {
    let path = entry.path().map_err(unreadable)?.into_owned();
    inside(&path).ok_or_else(|| refuse(&path, "lands outside the projects directory"))?;
    match entry.header().entry_type() {
        EntryType::Regular | EntryType::Continuous | EntryType::Directory => Ok(()),
        EntryType::Symlink | EntryType::Link => {
            let target = entry.link_name().map_err(unreadable)?.unwrap_or_default();
            Err(refuse(
                &path,
                &format!(
                    "is a link (to {}): projects archives hold files and directories only",
                    target.display()
                ),
            ))
        }
        other => Err(refuse(
            &path,
            &format!("is of a kind not restored ({other:?})"),
        )),
    }
}

/// Write one checked entry beneath `root`.
/// Write one entry; a file's modification time is the archive's. Counts
/// what was written into `tally` (a project per top-level directory).
fn write(root: &Dir, entry: &mut tar::Entry<'_, &[u8]>, tally: &mut Tally) -> Result<(), ApiError> {
    let path = entry.path().map_err(unreadable)?.into_owned();
    let failed =
        |e: io::Error| ApiError::conflict(format!("Restoring {} failed: {e}", path.display()));
    let rel = inside(&path).unwrap_or_default();
    // The lock of the server restoring stays its own.
    if rel.as_os_str().is_empty() || rel == Path::new(confined::LOCK_FILE) {
        return Ok(());
    }
    if let Some(Component::Normal(top)) = rel.components().next()
        && (rel.components().count() > 1 || entry.header().entry_type() == EntryType::Directory)
    {
        tally.projects.insert(top.to_os_string());
    }
    if entry.header().entry_type() == EntryType::Directory {
        return confined::create_dir_all(root, &rel).map_err(failed);
    }
    let mut data = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
    entry.read_to_end(&mut data).map_err(unreadable)?;
    confined::create_dir_all(root, rel.parent().unwrap_or(Path::new("")))
        .and_then(|()| confined::write_atomic(root, &rel, &data, false))
        .map_err(failed)?;
    tally.files += 1;
    tally.bytes += data.len() as u64;
    if let Ok(secs) = entry.header().mtime()
        && secs > 0
        && let Ok(f) = root.open_with(&rel, cap_std::fs::OpenOptions::new().write(true))
    {
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        let _ = f.into_std().set_modified(when);
    }
    Ok(())
}

/// What a restore wrote so far.
#[derive(Default)]
struct Tally {
    projects: std::collections::BTreeSet<std::ffi::OsString>,
    files: usize,
    bytes: u64,
}

/// A restore in progress, a slice of entries at a time: every entry is
/// checked first (the archive is refused whole, nothing written, at the
/// first bad one), then written.
pub struct Restore {
    archive: Vec<u8>,
    /// Where the next entry (its extension headers included) begins.
    at: usize,
    /// Entries checked (all of them once writing began).
    entries: usize,
    writing: bool,
    tally: Tally,
}

impl Restore {
    /// A restore of `archive`; nothing is read yet.
    pub fn new(archive: Vec<u8>) -> Self {
        Restore {
            archive,
            at: 0,
            entries: 0,
            writing: false,
            tally: Tally::default(),
        }
    }

    /// Check, then write, up to `budget` more entries beneath `root`.
    /// Returns what was written once the archive is restored whole.
    pub fn step(&mut self, root: &Dir, budget: usize) -> Result<Option<Restored>, ApiError> {
        let rest = self.archive.get(self.at..).unwrap_or_default();
        let mut ar = tar::Archive::new(rest);
        let mut end = 0;
        for (done, entry) in ar.entries().map_err(unreadable)?.enumerate() {
            if done == budget {
                self.at += end;
                return Ok(None);
            }
            let mut entry = entry.map_err(unreadable)?;
            let size = usize::try_from(entry.size())
                .map_err(|_| unreadable(io::ErrorKind::InvalidData.into()))?;
            end = usize::try_from(entry.raw_file_position())
                .unwrap_or(usize::MAX)
                .saturating_add(size.div_ceil(512) * 512);
            if self.writing {
                write(root, &mut entry, &mut self.tally)?;
            } else {
                check(&entry)?;
                self.entries += 1;
            }
        }
        if self.writing {
            let t = &self.tally;
            return Ok(Some(Restored {
                projects: t.projects.len(),
                files: t.files,
                bytes: t.bytes,
            }));
        }
        // Every entry checked: write them, from the start.
        self.writing = true;
        self.at = 0;
        Ok(None)
    }
}

/// Restore `archive` beneath `root` whole (in one go).
pub fn restore(root: &Dir, archive: &[u8]) -> Result<Restored, ApiError> {
    let mut r = Restore::new(archive.to_vec());
    loop {
        if let Some(n) = r.step(root, usize::MAX)? {
            return Ok(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "nanolab-backup-{tag}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn archive(build: impl FnOnce(&mut Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn file(b: &mut Builder<Vec<u8>>, name: &str, data: &[u8]) {
        let mut h = Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(EntryType::Regular);
        // Raw name: Builder::append_data would refuse '..' itself.
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    fn link(b: &mut Builder<Vec<u8>>, kind: EntryType, name: &str, target: &str) {
        let mut h = Header::new_gnu();
        h.set_size(0);
        h.set_entry_type(kind);
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_gnu_mut().unwrap().linkname[..target.len()].copy_from_slice(target.as_bytes());
        h.set_cksum();
        b.append(&h, io::empty()).unwrap();
    }

    #[test]
    fn the_stream_is_a_tar_of_the_directory_read_back_whole() {
        let src = temp("src");
        std::fs::create_dir_all(src.join("p/project-files/vpcs/v")).unwrap();
        std::fs::write(
            src.join("p/project-files/vpcs/v/startup.vpc"),
            "ip 10.0.0.1\n",
        )
        .unwrap();
        std::fs::write(src.join("p/big"), vec![7u8; 200_000]).unwrap();
        let then = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let f = std::fs::File::options()
            .write(true)
            .open(src.join("p/big"))
            .unwrap();
        f.set_modified(then).unwrap();
        let mut s = TarStream::new(&src).unwrap();
        let mut tar = Vec::new();
        let mut pieces = 0;
        while s.fill(&mut tar, 10_000) {
            pieces += 1;
        }
        assert!(pieces > 10, "produced a piece at a time");
        let dst = temp("dst");
        let r = restore(&confined::open_root(&dst).unwrap(), &tar).unwrap();
        assert_eq!((r.projects, r.files, r.bytes), (1, 2, 200_012));
        let restored = std::fs::metadata(dst.join("p/big")).unwrap();
        assert_eq!(
            restored.modified().unwrap(),
            then,
            "the file's time came back"
        );
        assert_eq!(
            std::fs::read_to_string(dst.join("p/project-files/vpcs/v/startup.vpc")).unwrap(),
            "ip 10.0.0.1\n"
        );
        assert_eq!(
            std::fs::read(dst.join("p/big")).unwrap(),
            vec![7u8; 200_000]
        );
        let _ = std::fs::remove_dir_all(src);
        let _ = std::fs::remove_dir_all(dst);
    }

    #[test]
    fn escapes_refuse_the_whole_archive_and_write_nothing() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "dotdot",
                archive(|b| {
                    file(b, "ok", b"x");
                    file(b, "a/../../evil", b"x")
                }),
            ),
            (
                "absolute",
                archive(|b| {
                    file(b, "ok", b"x");
                    file(b, "/tmp/evil", b"x")
                }),
            ),
            (
                "symlink",
                archive(|b| {
                    file(b, "ok", b"x");
                    link(b, EntryType::Symlink, "l", "../../etc")
                }),
            ),
            (
                "symlink-abs",
                archive(|b| {
                    file(b, "ok", b"x");
                    link(b, EntryType::Symlink, "l", "/etc")
                }),
            ),
            (
                "hardlink",
                archive(|b| {
                    file(b, "ok", b"x");
                    link(b, EntryType::Link, "h", "../outside")
                }),
            ),
        ];
        for (what, tar) in cases {
            let root = temp(what);
            let dst = root.join("projects");
            std::fs::create_dir_all(&dst).unwrap();
            let e = restore(&confined::open_root(&dst).unwrap(), &tar).unwrap_err();
            assert_eq!(e.status(), 400, "{what}");
            assert!(e.to_string().contains("nothing was written"), "{what}: {e}");
            assert_eq!(
                std::fs::read_dir(&dst).unwrap().count(),
                0,
                "{what}: something was written"
            );
            assert_eq!(
                std::fs::read_dir(&root).unwrap().count(),
                1,
                "{what}: written outside"
            );
            let _ = std::fs::remove_dir_all(root);
        }
        // Even a link that stays inside is refused: GNS3's projects hold
        // none, and two links that each look inside can climb out through
        // each other (issue 16).
        let dst = temp("inside");
        let tar = archive(|b| {
            file(b, "a/f", b"x");
            link(b, EntryType::Symlink, "a/l", "f")
        });
        assert_eq!(
            restore(&confined::open_root(&dst).unwrap(), &tar)
                .unwrap_err()
                .status(),
            400
        );
        let _ = std::fs::remove_dir_all(dst);
    }

    #[test]
    fn the_chain_of_links_from_issue_16_is_refused_whole() {
        let root = temp("chain");
        let dst = root.join("projects");
        std::fs::create_dir_all(&dst).unwrap();
        let climb = format!("a/b/c/d/e/f/g/h/r/{}tmp/evil", "../".repeat(10));
        let tar = archive(|b| {
            file(b, "P/ok", b"x");
            link(
                b,
                EntryType::Symlink,
                "P/a/b/c/d/e/f/g/h/r",
                "../../../../../../../../../.",
            );
            link(b, EntryType::Symlink, "P/notes.tmp", &climb);
        });
        let e = restore(&confined::open_root(&dst).unwrap(), &tar).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains("is a link"), "{e}");
        assert_eq!(std::fs::read_dir(&dst).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn a_restore_in_slices_writes_the_same_tree() {
        let dst = temp("slices");
        let tar = archive(|b| {
            for i in 0..50 {
                file(b, &format!("p/n{}/f{i}", i % 7), format!("{i}").as_bytes());
            }
            // A long name takes an extension header of its own.
            let mut h = Header::new_gnu();
            h.set_size(4);
            h.set_entry_type(EntryType::Regular);
            b.append_data(&mut h, format!("p/{}", "l".repeat(150)), &b"long"[..])
                .unwrap();
        });
        let mut r = Restore::new(tar);
        let root = confined::open_root(&dst).unwrap();
        let mut steps = 1;
        let entries = loop {
            if let Some(n) = r.step(&root, 4).unwrap() {
                break n;
            }
            steps += 1;
            // Nothing is written until every entry was checked.
            if steps <= 13 {
                assert!(!dst.join("p").exists(), "step {steps}");
            }
        };
        assert_eq!(
            (entries.projects, entries.files, entries.bytes, steps),
            (1, 51, 94, 26),
            "13 slices checked, 13 written"
        );
        assert_eq!(std::fs::read(dst.join("p/n3/f10")).unwrap(), b"10");
        assert_eq!(
            std::fs::read(dst.join(format!("p/{}", "l".repeat(150)))).unwrap(),
            b"long"
        );
        let _ = std::fs::remove_dir_all(dst);
    }

    #[test]
    fn a_symlink_already_on_disk_is_not_followed() {
        let root = temp("ondisk");
        let dst = root.join("projects");
        std::fs::create_dir_all(&dst).unwrap();
        std::os::unix::fs::symlink(&root, dst.join("out")).unwrap();
        let tar = archive(|b| file(b, "out/evil", b"x"));
        assert!(restore(&confined::open_root(&dst).unwrap(), &tar).is_err());
        assert!(!root.join("evil").exists());
        let _ = std::fs::remove_dir_all(root);
    }
}
