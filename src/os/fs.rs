//! Project and VM directories on disk (small, synchronous file operations:
//! the one kind of blocking work the reactor tolerates).
//!
//! Every path the lab hands over is absolute and lies beneath a *root*: the
//! projects directory, or (with `--local`) a project directory the client
//! chose elsewhere. The root is opened as it is (the operator chose it);
//! everything below it is resolved by the kernel beneath that handle
//! ([`super::confined`]), so a link planted in a project, or a chain of
//! them, cannot carry a write outside.

use super::confined;
use crate::error::ApiError;
use crate::lab::Files;
use crate::lab::answer::ImageFile;
use cap_std::fs::Dir;
use std::io;
use std::path::{Path, PathBuf};

/// The real file system, as the lab's [`Files`], confined beneath its roots.
#[derive(Debug)]
pub struct Disk {
    projects: PathBuf,
    /// Project directories outside `projects` (chosen with `--local`).
    roots: Vec<PathBuf>,
    /// A restore in progress, beneath its directory.
    restore: Option<(Dir, super::backup::Restore)>,
    /// Image digests being computed.
    digests: Option<super::images::Digests>,
}

impl std::fmt::Debug for super::backup::Restore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Restore")
    }
}

impl Disk {
    /// Files beneath `projects` (the projects directory).
    pub fn new(projects: &Path) -> Self {
        Disk {
            projects: projects.to_path_buf(),
            roots: Vec::new(),
            restore: None,
            digests: None,
        }
    }

    /// The root `path` lies beneath (the deepest one), and the rest of it.
    fn locate(&self, path: &Path) -> Result<(&Path, PathBuf), ApiError> {
        std::iter::once(&self.projects)
            .chain(&self.roots)
            .filter(|r| path.starts_with(r))
            .max_by_key(|r| r.components().count())
            .map(|r| {
                (
                    r.as_path(),
                    path.strip_prefix(r).unwrap_or(path).to_path_buf(),
                )
            })
            .ok_or_else(|| {
                ApiError::Forbidden(format!(
                    "{} is outside the projects directory",
                    path.display()
                ))
            })
    }

    /// The root's handle and the path beneath it.
    ///
    /// The root is opened afresh each time (one `open`): the directory at
    /// the configured path is the one that counts, even if it was moved
    /// or replaced while the server ran.
    fn beneath(&self, path: &Path) -> Result<(Dir, PathBuf), ApiError> {
        let (root, rest) = self.locate(path)?;
        let dir = confined::open_root(root).map_err(|e| denied(root, &e))?;
        let rel = confined::relative(&rest).map_err(|e| denied(path, &e))?;
        Ok((dir, rel))
    }

    /// A handle on the directory `path` itself.
    fn dir(&self, path: &Path) -> Result<Dir, ApiError> {
        let (root, rel) = self.beneath(path)?;
        confined::open_dir(&root, &rel).map_err(|e| denied(path, &e))
    }
}

/// An error from the confined file system: a refusal when the kernel said
/// the path leaves its root, a conflict otherwise.
fn denied(path: &Path, e: &io::Error) -> ApiError {
    if e.kind() == io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(libc_exdev()) {
        ApiError::Forbidden(format!(
            "{} is outside the project directory ({e})",
            path.display()
        ))
    } else {
        ApiError::conflict(format!("Cannot use {}: {e}", path.display()))
    }
}

/// EXDEV: what `openat2(RESOLVE_BENEATH)` answers for an escape.
const fn libc_exdev() -> i32 {
    18
}

/// `path` relative to `dir`, when lexically beneath it.
fn under(dir: &Path, path: &Path) -> Result<PathBuf, ApiError> {
    path.strip_prefix(dir)
        .map_err(|_| {
            ApiError::Forbidden(format!(
                "{} is outside the project directory",
                path.display()
            ))
        })
        .and_then(|r| confined::relative(r).map_err(|e| denied(path, &e)))
}

impl Files for Disk {
    fn add_root(&mut self, dir: &Path) {
        if !dir.starts_with(&self.projects) && !self.roots.iter().any(|r| r == dir) {
            self.roots.push(dir.to_path_buf());
        }
    }

    fn drop_root(&mut self, dir: &Path) {
        self.roots.retain(|r| r != dir);
    }

    fn create_dir(&mut self, dir: &Path) -> Result<(), ApiError> {
        let (root, _) = self.locate(dir)?;
        let cannot = |e: &io::Error| match denied(dir, e) {
            ApiError::Conflict(_) => {
                ApiError::conflict(format!("Cannot create directory {}: {e}", dir.display()))
            }
            refused => refused,
        };
        // The root itself is the operator's (or a --local client's) choice:
        // made, with its parents, when it is missing.
        let opened = match confined::open_root(root) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir_all(root).and_then(|()| confined::open_root(root))
            }
            opened => opened,
        };
        let root = opened.map_err(|e| cannot(&e))?;
        let (_, rest) = self.locate(dir)?;
        let rel = confined::relative(&rest).map_err(|e| denied(dir, &e))?;
        confined::create_dir_all(&root, &rel).map_err(|e| cannot(&e))
    }

    fn remove_dir(&mut self, dir: &Path) -> Result<(), ApiError> {
        let (root, rel) = self.beneath(dir)?;
        if rel.as_os_str().is_empty() {
            // A --local project's own directory.
            return remove_dir(dir);
        }
        confined::remove_dir_all(&root, &rel).map_err(|e| denied(dir, &e))
    }

    fn restore_begin(&mut self, dir: &Path, archive: Vec<u8>) -> Result<(), ApiError> {
        let root = self.dir(dir)?;
        self.restore = Some((root, super::backup::Restore::new(archive)));
        Ok(())
    }

    fn restore_step(
        &mut self,
        entries: usize,
    ) -> Option<Result<crate::lab::answer::Restored, ApiError>> {
        let (root, r) = self.restore.as_mut()?;
        let step = r.step(root, entries);
        if matches!(step, Ok(None)) {
            return None;
        }
        self.restore = None;
        step.transpose()
    }

    fn subdirs(&mut self, dir: &Path, limit: usize) -> Vec<String> {
        let Ok(d) = self.dir(dir) else {
            return Vec::new();
        };
        let Ok(entries) = d.entries() else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .take(limit)
            .collect()
    }

    fn exists(&mut self, path: &Path) -> bool {
        self.beneath(path)
            .is_ok_and(|(root, rel)| rel.as_os_str().is_empty() || root.exists(&rel))
    }

    fn rename(&mut self, from: &Path, to: &Path) -> Result<(), ApiError> {
        let (root, a) = self.beneath(from)?;
        let (_, b) = self.beneath(to)?;
        root.rename(&a, &root, &b).map_err(|e| {
            ApiError::conflict(format!(
                "Cannot move {} to {}: {e}",
                from.display(),
                to.display()
            ))
        })
    }

    fn append_file(&mut self, path: &Path, data: &[u8]) -> Result<(), ApiError> {
        let (root, rel) = self.beneath(path)?;
        confined::append(&root, &rel, data)
            .map_err(|e| ApiError::conflict(format!("Cannot write {}: {e}", path.display())))
    }

    fn write_file(&mut self, path: &Path, data: &[u8]) -> Result<(), ApiError> {
        let (root, rel) = self.beneath(path)?;
        confined::write_atomic(&root, &rel, data, true)
            .map_err(|e| ApiError::conflict(format!("Cannot write {}: {e}", path.display())))
    }

    fn remove_file(&mut self, path: &Path) {
        if let Ok((root, rel)) = self.beneath(path) {
            let _ = confined::remove_file(&root, &rel);
        }
    }

    fn read_file(&mut self, path: &Path, limit: usize) -> Option<Vec<u8>> {
        let (root, rel) = self.beneath(path).ok()?;
        confined::read(&root, &rel, limit).ok().flatten()
    }

    fn read_tail(&mut self, path: &Path, n: usize) -> Vec<u8> {
        self.beneath(path)
            .ok()
            .and_then(|(root, rel)| confined::read_tail(&root, &rel, n).ok())
            .unwrap_or_default()
    }

    fn list_files(&mut self, dir: &Path, limit: usize) -> Result<Vec<(String, String)>, ApiError> {
        let Ok(d) = self.dir(dir) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let _ = confined::walk_files(&d, limit, |rel, mut f| {
            // Unreadable files are skipped, as 2.2 does.
            let mut data = Vec::new();
            if io::Read::read_to_end(&mut f, &mut data).is_ok() {
                out.push((
                    rel.to_string_lossy().into_owned(),
                    format!("{:x}", md5::compute(&data)),
                ));
            }
        });
        out.sort();
        Ok(out)
    }

    fn read_confined(
        &mut self,
        dir: &Path,
        path: &Path,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        let rel = under(dir, path)?;
        let d = match self.dir(dir) {
            Ok(d) => d,
            Err(ApiError::Conflict(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        // One byte past the limit tells a file that is too large.
        match confined::read(&d, &rel, limit.saturating_add(1)) {
            Ok(Some(data)) if data.len() > limit => Err(ApiError::conflict(format!(
                "File {} is larger than {limit} bytes",
                path.display()
            ))),
            Ok(data) => Ok(data),
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => Ok(None),
            Err(e) => Err(denied(path, &e)),
        }
    }

    fn write_confined(&mut self, dir: &Path, path: &Path, data: &[u8]) -> Result<(), ApiError> {
        let rel = under(dir, path)?;
        self.create_dir(dir)?;
        let d = self.dir(dir)?;
        // Directories are made beneath the project's handle, so a refusal
        // leaves nothing behind outside it.
        confined::create_dir_all(&d, rel.parent().unwrap_or(Path::new("")))
            .map_err(|e| denied(path, &e))?;
        confined::write_atomic(&d, &rel, data, true).map_err(|e| denied(path, &e))
    }

    fn image_files(&mut self, dir: &Path) -> Result<Vec<ImageFile>, ApiError> {
        super::images::list(dir)
            .map_err(|e| ApiError::io(&format!("listing {}", dir.display()), &e))
    }

    fn digest_begin(&mut self, dir: &Path, names: Vec<String>) {
        self.digests = Some(super::images::Digests::new(dir, names));
    }

    fn digest_step(&mut self, bytes: usize) -> Option<Vec<Option<String>>> {
        let done = self.digests.as_mut()?.step(bytes)?;
        self.digests = None;
        Some(done)
    }
}

/// Remove `dir` and everything below it; a missing directory is fine.
pub fn remove_dir(dir: &Path) -> Result<(), ApiError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(ApiError::conflict(format!(
            "Cannot remove directory {}: {e}",
            dir.display()
        ))),
        _ => Ok(()),
    }
}

/// What the owner of the projects directory cleans at start: project
/// directories marked temporary, and temporary files a crash left.
#[derive(Debug, Default)]
pub struct Swept {
    /// Temporary projects removed.
    pub projects: Vec<PathBuf>,
    /// Half-written temporary files removed (relative to the directory).
    pub files: Vec<PathBuf>,
}

/// Clean what an earlier run left in `location` (call it only while
/// holding the directory's lock: another live server's temporaries are
/// not stale).
pub fn sweep_projects_dir(location: &Path, marker: &str) -> Swept {
    let mut swept = Swept::default();
    let Ok(root) = confined::open_root(location) else {
        return swept;
    };
    if let Ok(entries) = root.entries() {
        for e in entries.flatten() {
            let name = PathBuf::from(e.file_name());
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            if is_dir
                && root.exists(name.join(marker))
                && confined::remove_dir_all(&root, &name).is_ok()
            {
                swept.projects.push(location.join(name));
            }
        }
    }
    swept.files = confined::sweep_tmp(&root);
    swept
}

pub use super::confined::LOCK_FILE;

/// The exclusive hold a server has on its projects directory: one server
/// per directory, so that no server takes another's live temporary
/// projects for leftovers. Released when dropped (or when the process
/// dies: the kernel releases an `flock`).
#[derive(Debug)]
pub struct DirLock {
    file: std::fs::File,
}

impl DirLock {
    /// Take the lock on `dir`, or say who holds it.
    pub fn take(dir: &Path) -> Result<DirLock, String> {
        let path = dir.join(LOCK_FILE);
        // Beneath the directory's handle, like every file in it: a link
        // planted under the lock's name cannot take the write elsewhere.
        let file = confined::open_root(dir)
            .and_then(|root| {
                root.open_with(
                    LOCK_FILE,
                    cap_std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create(true)
                        .truncate(false),
                )
            })
            .map(cap_std::fs::File::into_std)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = std::io::Read::read_to_string(&mut &file, &mut holder);
                let holder = holder.trim();
                Err(format!(
                    "the projects directory {} is in use by another nanolab ({}); stop it, or give \
                     this one a directory of its own: --projects-dir DIR",
                    dir.display(),
                    if holder.is_empty() {
                        "starting"
                    } else {
                        holder
                    }
                ))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                Err(format!("cannot lock {}: {e}", path.display()))
            }
        }
    }

    /// Say in the lock file who holds it, for the next one who asks.
    pub fn record(&mut self, holder: &str) {
        use std::io::{Seek, Write};
        let _ = self.file.set_len(0);
        let _ = self.file.seek(std::io::SeekFrom::Start(0));
        let _ = self.file.write_all(holder.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_disk_writes_only_beneath_its_roots() {
        let t = std::env::temp_dir().join(format!("nanolab-fs-{}", uuid::Uuid::new_v4().simple()));
        let projects = t.join("projects");
        let mut disk = Disk::new(&projects);
        let p = projects.join("p1");
        disk.create_dir(&p.join("project-files/vpcs/n")).unwrap();
        let f = p.join("project-files/vpcs/n/startup.vpc");
        disk.write_file(&f, b"one").unwrap();
        disk.write_file(&f, b"two").unwrap();
        assert_eq!(disk.read_file(&f, 10).unwrap(), b"two");
        assert_eq!(disk.read_tail(&f, 2), b"wo");
        assert!(disk.exists(&f));
        // A path outside every root is refused before anything is touched.
        let e = disk.write_file(&t.join("evil"), b"x").unwrap_err();
        assert_eq!(e.status(), 403, "{e}");
        assert_eq!(
            disk.create_dir(&t.join("elsewhere")).unwrap_err().status(),
            403
        );
        // A link planted in the project: writing through it is refused,
        // and the refused write leaves no directory outside.
        std::os::unix::fs::symlink(&t, p.join("out")).unwrap();
        let e = disk
            .write_confined(&p, &p.join("out/made/file"), b"x")
            .unwrap_err();
        assert_eq!(e.status(), 403, "{e}");
        assert!(!t.join("made").exists());
        assert!(
            disk.read_confined(
                &p,
                &p.join("out/projects/p1/project-files/vpcs/n/startup.vpc"),
                10
            )
            .is_err()
        );
        disk.write_confined(&p, &p.join("a/b.txt"), b"ok").unwrap();
        assert_eq!(
            disk.read_confined(&p, &p.join("a/b.txt"), 10)
                .unwrap()
                .unwrap(),
            b"ok"
        );
        assert_eq!(
            disk.read_confined(&p, &p.join("a/b.txt"), 1)
                .unwrap_err()
                .status(),
            409
        );
        let listed = disk.list_files(&p, 10).unwrap();
        assert_eq!(listed.len(), 2, "{listed:?}");
        // A --local root outside the projects directory, once added.
        let local = t.join("local");
        assert_eq!(disk.create_dir(&local).unwrap_err().status(), 403);
        disk.add_root(&local);
        disk.create_dir(&local).unwrap();
        disk.write_file(&local.join("x"), b"x").unwrap();
        disk.remove_dir(&local).unwrap();
        disk.drop_root(&local);
        assert!(!local.exists());
        disk.remove_dir(&p).unwrap();
        assert!(!p.exists() && t.exists());
        std::fs::remove_dir_all(t).unwrap();
    }

    #[test]
    fn the_sweep_removes_temporary_projects_and_stale_temporary_files() {
        let t = std::env::temp_dir().join(format!("nanolab-sw-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(t.join("tmp-project")).unwrap();
        std::fs::create_dir_all(t.join("kept/n")).unwrap();
        std::fs::write(t.join("tmp-project/.mark"), b"").unwrap();
        std::fs::write(t.join("kept/n/startup.tmp"), b"half").unwrap();
        std::fs::write(t.join("kept/n/startup.vpc"), b"whole").unwrap();
        let s = sweep_projects_dir(&t, ".mark");
        assert_eq!(s.projects, vec![t.join("tmp-project")]);
        assert_eq!(s.files, vec![PathBuf::from("kept/n/startup.tmp")]);
        assert!(t.join("kept/n/startup.vpc").exists());
        std::fs::remove_dir_all(t).unwrap();
    }

    #[test]
    fn one_lock_per_directory_and_the_refusal_names_the_holder() {
        let t = std::env::temp_dir().join(format!("nanolab-lk-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&t).unwrap();
        let mut first = DirLock::take(&t).unwrap();
        first.record("pid 42, http://127.0.0.1:8000");
        let e = DirLock::take(&t).unwrap_err();
        assert!(
            e.contains("pid 42, http://127.0.0.1:8000") && e.contains(&t.display().to_string()),
            "{e}"
        );
        drop(first);
        DirLock::take(&t).unwrap();
        std::fs::remove_dir_all(t).unwrap();
    }
}
