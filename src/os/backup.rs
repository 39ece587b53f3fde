//! Projects archives: a tar stream of the projects directory made a piece
//! at a time (never the whole archive in memory), and a restore that
//! refuses, as a whole and before writing anything, an archive with an
//! entry that would land outside the directory. The tar format itself is
//! the `tar` crate's.

use crate::error::ApiError;
use std::fs::{File, ReadDir};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use tar::{Builder, EntryType, Header};

/// A tar archive of a directory, produced on demand.
pub struct TarStream {
    root: PathBuf,
    /// Directories being walked, with their path inside the archive.
    walk: Vec<(ReadDir, PathBuf)>,
    /// The file whose content is being sent, and the bytes still owed.
    file: Option<(File, u64)>,
    /// Headers (and padding) are written here by the `tar` crate.
    builder: Builder<Vec<u8>>,
    done: bool,
}

impl TarStream {
    /// Start archiving `root` (its entries, named relative to it).
    pub fn new(root: &Path) -> io::Result<Self> {
        let walk = vec![(std::fs::read_dir(root)?, PathBuf::new())];
        let mut builder = Builder::new(Vec::new());
        builder.mode(tar::HeaderMode::Deterministic);
        Ok(TarStream {
            root: root.to_path_buf(),
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

    /// Write the next entry's header; open its content, if a file.
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
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            return;
        };
        let mut header = Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Deterministic);
        if meta.is_dir() {
            header.set_size(0);
            if let Ok(d) = std::fs::read_dir(entry.path()) {
                let _ = self.builder.append_data(&mut header, &name, io::empty());
                self.walk.push((d, name));
            }
        } else if meta.file_type().is_symlink() {
            if let Ok(target) = std::fs::read_link(entry.path()) {
                header.set_size(0);
                let _ = self.builder.append_link(&mut header, &name, &target);
            }
        } else if meta.is_file()
            && let Ok(file) = File::open(entry.path())
        {
            let _ = self.builder.append_data(&mut header, &name, io::empty());
            if meta.len() > 0 {
                self.file = Some((file, meta.len()));
            }
        }
        let _ = &self.root;
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

/// Check every entry of `archive`: where it lands, where a link points,
/// and that nothing on disk on its way is a symbolic link. Returns how
/// many entries there are.
fn check(dir: &Path, archive: &[u8]) -> Result<usize, ApiError> {
    let mut count = 0;
    for entry in tar::Archive::new(archive).entries().map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let path = entry.path().map_err(unreadable)?.into_owned();
        let at =
            inside(&path).ok_or_else(|| refuse(&path, "lands outside the projects directory"))?;
        match entry.header().entry_type() {
            EntryType::Regular | EntryType::Continuous | EntryType::Directory => {}
            EntryType::Symlink => {
                let target = entry.link_name().map_err(unreadable)?.unwrap_or_default();
                let from = at.parent().unwrap_or(Path::new(""));
                if target.is_absolute() || inside(&from.join(&target)).is_none() {
                    return Err(refuse(
                        &path,
                        &format!("is a symbolic link out to {}", target.display()),
                    ));
                }
            }
            EntryType::Link => {
                let target = entry.link_name().map_err(unreadable)?.unwrap_or_default();
                if inside(&target).is_none() {
                    return Err(refuse(
                        &path,
                        &format!("is a hard link out to {}", target.display()),
                    ));
                }
            }
            other => {
                return Err(refuse(
                    &path,
                    &format!("is of a kind not restored ({other:?})"),
                ));
            }
        }
        // A symbolic link already on disk would carry the entry elsewhere.
        let mut on_disk = dir.to_path_buf();
        for c in at.parent().unwrap_or(Path::new("")).components() {
            on_disk.push(c);
            if std::fs::symlink_metadata(&on_disk).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(refuse(
                    &path,
                    "goes through a symbolic link already on disk",
                ));
            }
        }
        count += 1;
    }
    Ok(count)
}

/// Restore `archive` into `dir` once every entry has been checked.
pub fn restore(dir: &Path, archive: &[u8]) -> Result<usize, ApiError> {
    let count = check(dir, archive)?;
    let mut ar = tar::Archive::new(archive);
    ar.set_overwrite(true);
    for entry in ar.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        entry.unpack_in(dir).map_err(|e| {
            ApiError::conflict(format!("Restoring into {} failed: {e}", dir.display()))
        })?;
    }
    Ok(count)
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
        let mut s = TarStream::new(&src).unwrap();
        let mut tar = Vec::new();
        let mut pieces = 0;
        while s.fill(&mut tar, 10_000) {
            pieces += 1;
        }
        assert!(pieces > 10, "produced a piece at a time");
        let dst = temp("dst");
        assert!(restore(&dst, &tar).unwrap() >= 5);
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
            let e = restore(&dst, &tar).unwrap_err();
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
        // A link that stays inside is fine.
        let dst = temp("inside");
        let tar = archive(|b| {
            file(b, "a/f", b"x");
            link(b, EntryType::Symlink, "a/l", "f")
        });
        assert_eq!(restore(&dst, &tar).unwrap(), 2);
        let _ = std::fs::remove_dir_all(dst);
    }

    #[test]
    fn a_symlink_already_on_disk_is_not_followed() {
        let root = temp("ondisk");
        let dst = root.join("projects");
        std::fs::create_dir_all(&dst).unwrap();
        std::os::unix::fs::symlink(&root, dst.join("out")).unwrap();
        let tar = archive(|b| file(b, "out/evil", b"x"));
        assert_eq!(restore(&dst, &tar).unwrap_err().status(), 400);
        assert!(!root.join("evil").exists());
        let _ = std::fs::remove_dir_all(root);
    }
}
