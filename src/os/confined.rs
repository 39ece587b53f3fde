//! Files beneath a directory the kernel confines: every path a client can
//! influence is resolved relative to an open directory handle, and a
//! symbolic link or `..` that would leave it fails in the kernel, not in a
//! string check that a second link can fool.
//!
//! The resolution is `cap-std`'s: `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_MAGICLINKS)` on Linux 5.6 and later, and its own checked walk,
//! one component at a time, on older kernels. Temporary files are created
//! with `O_EXCL` (never through a link that is already there) and renamed
//! in place; directories are created one component at a time beneath the
//! handle. No policy here beyond "stay beneath".

use cap_std::fs::{Dir, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

/// Suffix of the temporary file an atomic write makes beside its target
/// (`.startup.vpc.nanolab-tmp`); one left by a crash is removed at start.
pub const TMP_SUFFIX: &str = ".nanolab-tmp";

/// Name of the lock file in the projects directory (one server owns it;
/// backups leave it out and restores never replace it).
pub const LOCK_FILE: &str = ".nanolab.lock";

/// Open `root` itself (the operator's directory: it may be reached
/// through links), as the handle everything else is resolved beneath.
pub fn open_root(root: &Path) -> io::Result<Dir> {
    Dir::open_ambient_dir(root, cap_std::ambient_authority())
}

/// `rel` as a path the handle accepts: no root, no prefix; empty for the
/// directory itself.
pub fn relative(rel: &Path) -> io::Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            // `..` is left to the kernel: it may not climb above the handle.
            Component::ParentDir => out.push(".."),
            Component::RootDir | Component::Prefix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "an absolute path leaves the directory",
                ));
            }
        }
    }
    Ok(out)
}

/// Open the directory `rel` beneath `root` (the root itself when empty).
pub fn open_dir(root: &Dir, rel: &Path) -> io::Result<Dir> {
    if rel.as_os_str().is_empty() {
        root.try_clone()
    } else {
        root.open_dir(rel)
    }
}

/// Create `rel` and its missing parents beneath `root`, one component at
/// a time.
pub fn create_dir_all(root: &Dir, rel: &Path) -> io::Result<()> {
    if rel.as_os_str().is_empty() {
        return Ok(());
    }
    root.create_dir_all(rel)
}

/// Split `rel` into its parent directory (opened) and its file name.
fn parent_of(root: &Dir, rel: &Path) -> io::Result<(Dir, std::ffi::OsString)> {
    let name = match rel.components().next_back() {
        Some(Component::Normal(n)) => n.to_os_string(),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a file name",
            ));
        }
    };
    let parent = rel.parent().unwrap_or(Path::new(""));
    Ok((open_dir(root, parent)?, name))
}

/// The temporary name an atomic write of `name` uses.
pub fn tmp_name(name: &std::ffi::OsStr) -> std::ffi::OsString {
    let mut t = std::ffi::OsString::from(".");
    t.push(name);
    t.push(TMP_SUFFIX);
    t
}

/// Write `data` to `rel` beneath `root` atomically: a temporary file made
/// with `O_EXCL` beside it (a link already there is removed, never
/// followed), synced, then renamed over the target (which replaces a link
/// at the target instead of following it). Parents must exist.
pub fn write_atomic(root: &Dir, rel: &Path, data: &[u8], sync: bool) -> io::Result<()> {
    let (dir, name) = parent_of(root, rel)?;
    let tmp = tmp_name(&name);
    let made = || -> io::Result<()> {
        let _ = dir.remove_file(&tmp);
        let mut f = dir.open_with(&tmp, OpenOptions::new().write(true).create_new(true))?;
        f.write_all(data)?;
        if sync {
            f.sync_all()?;
        }
        dir.rename(&tmp, &dir, &name)
    };
    let result = made();
    if result.is_err() {
        let _ = dir.remove_file(&tmp);
    }
    result
}

/// Append `data` to the existing file `rel` beneath `root`.
pub fn append(root: &Dir, rel: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = root.open_with(rel, OpenOptions::new().append(true))?;
    f.write_all(data)
}

/// Read at most `limit` bytes of the regular file `rel` beneath `root`;
/// `Ok(None)` when it is missing or not a regular file.
pub fn read(root: &Dir, rel: &Path, limit: usize) -> io::Result<Option<Vec<u8>>> {
    let f = match root.open(rel) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !f.metadata()?.is_file() {
        return Ok(None);
    }
    let mut out = Vec::new();
    f.take(limit as u64).read_to_end(&mut out)?;
    Ok(Some(out))
}

/// The last `n` bytes of the file `rel` beneath `root`.
pub fn read_tail(root: &Dir, rel: &Path, n: usize) -> io::Result<Vec<u8>> {
    use std::io::{Seek, SeekFrom};
    let mut f = root.open(rel)?.into_std();
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(n as u64)))?;
    let mut out = Vec::new();
    f.take(n as u64).read_to_end(&mut out)?;
    Ok(out)
}

/// Remove `rel` and everything below it (links are removed, never
/// followed); a missing one is fine.
pub fn remove_dir_all(root: &Dir, rel: &Path) -> io::Result<()> {
    match root.remove_dir_all(rel) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Remove the file `rel`; a missing one is fine.
pub fn remove_file(root: &Dir, rel: &Path) -> io::Result<()> {
    match root.remove_file(rel) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Visit every regular file beneath `dir` (links are not followed), at
/// most `limit` of them, with its path relative to `dir`.
pub fn walk_files(
    dir: &Dir,
    limit: usize,
    mut visit: impl FnMut(&Path, cap_std::fs::File),
) -> io::Result<()> {
    let mut stack = vec![(dir.try_clone()?, PathBuf::new())];
    let mut seen = 0;
    while let Some((d, prefix)) = stack.pop() {
        let Ok(entries) = d.entries() else { continue };
        for e in entries.flatten() {
            let Ok(t) = e.file_type() else { continue };
            let rel = prefix.join(e.file_name());
            if t.is_dir() {
                if let Ok(sub) = e.open_dir() {
                    stack.push((sub, rel));
                }
            } else if t.is_file()
                && seen < limit
                && let Ok(f) = e.open()
            {
                seen += 1;
                visit(&rel, f);
            }
        }
    }
    Ok(())
}

/// Remove the temporary files a crash left beneath `dir` (names ending in
/// [`TMP_SUFFIX`], and `startup.tmp`, which versions before 0.2 used);
/// returns their paths relative to `dir`.
pub fn sweep_tmp(dir: &Dir) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let _ = walk_files(dir, usize::MAX, |rel, _| {
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        if name.ends_with(TMP_SUFFIX) || name == "startup.tmp" {
            found.push(rel.to_path_buf());
        }
    });
    found.retain(|rel| dir.remove_file(rel).is_ok());
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn temp() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "nanolab-confined-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(d.join("root/p")).unwrap();
        d
    }

    #[test]
    fn a_chain_of_links_cannot_carry_a_write_outside() {
        let t = temp();
        let projects = t.join("root");
        // The issue's chain: a deep link back to the root, and a second
        // link that climbs out through it.
        std::fs::create_dir_all(projects.join("p/a/b/c/d/e/f/g/h")).unwrap();
        symlink(
            "../../../../../../../../../.",
            projects.join("p/a/b/c/d/e/f/g/h/r"),
        )
        .unwrap();
        let climb = format!("a/b/c/d/e/f/g/h/r/{}{}", "../".repeat(10), t.display());
        symlink(&climb, projects.join("p/notes.txt")).unwrap();
        symlink(&climb, projects.join(format!("p/.notes.txt{TMP_SUFFIX}"))).unwrap();
        symlink(t.join("out"), projects.join("p/captures")).unwrap();
        let root = open_root(&projects).unwrap();
        // The atomic write replaces the planted links, never follows them.
        write_atomic(&root, Path::new("p/notes.txt"), b"mine", true).unwrap();
        assert_eq!(
            std::fs::read(projects.join("p/notes.txt")).unwrap(),
            b"mine"
        );
        // Appending or reading through the links is refused by the kernel.
        assert!(append(&root, Path::new("p/a/b/c/d/e/f/g/h/r/../x"), b"x").is_err());
        assert!(create_dir_all(&root, Path::new("p/captures/deeper")).is_err());
        assert!(read(&root, Path::new("../escape"), 10).is_err());
        assert!(relative(Path::new("/etc/passwd")).is_err());
        // Nothing landed beside the root.
        let outside: Vec<_> = std::fs::read_dir(&t).unwrap().flatten().collect();
        assert_eq!(outside.len(), 1, "{outside:?}");
        std::fs::remove_dir_all(t).unwrap();
    }

    #[test]
    fn atomic_writes_leave_no_temporary_and_the_sweep_finds_stale_ones() {
        let t = temp();
        let root = open_root(&t.join("root")).unwrap();
        write_atomic(&root, Path::new("p/startup.vpc"), b"one", false).unwrap();
        write_atomic(&root, Path::new("p/startup.vpc"), b"two", true).unwrap();
        assert_eq!(
            read(&root, Path::new("p/startup.vpc"), 100)
                .unwrap()
                .unwrap(),
            b"two"
        );
        assert_eq!(
            read_tail(&root, Path::new("p/startup.vpc"), 2).unwrap(),
            b"wo"
        );
        assert!(read(&root, Path::new("p/missing"), 1).unwrap().is_none());
        assert!(write_atomic(&root, Path::new("p/no/such/file"), b"x", false).is_err());
        std::fs::write(t.join("root/p/.startup.vpc.nanolab-tmp"), b"half").unwrap();
        std::fs::write(t.join("root/p/startup.tmp"), b"half").unwrap();
        let mut swept = sweep_tmp(&root);
        swept.sort();
        assert_eq!(
            swept,
            vec![
                PathBuf::from("p/.startup.vpc.nanolab-tmp"),
                PathBuf::from("p/startup.tmp")
            ]
        );
        let left: Vec<_> = std::fs::read_dir(t.join("root/p"))
            .unwrap()
            .flatten()
            .collect();
        assert_eq!(left.len(), 1);
        remove_dir_all(&root, Path::new("p")).unwrap();
        remove_dir_all(&root, Path::new("p")).unwrap();
        assert!(!t.join("root/p").exists());
        std::fs::remove_dir_all(t).unwrap();
    }
}
