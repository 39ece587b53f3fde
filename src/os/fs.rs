//! Project and VM directories on disk (small, synchronous file operations:
//! the one kind of blocking work the reactor tolerates).

use crate::error::ApiError;
use crate::lab::Files;
use std::io::Write;
use std::path::Path;

/// The real file system, as the lab's [`Files`].
#[derive(Debug, Default)]
pub struct Disk;

impl Files for Disk {
    fn create_dir(&mut self, dir: &Path) -> Result<(), ApiError> {
        create_dir(dir)
    }

    fn remove_dir(&mut self, dir: &Path) -> Result<(), ApiError> {
        remove_dir(dir)
    }

    fn restore_tar(&mut self, dir: &Path, archive: &[u8]) -> Result<usize, ApiError> {
        super::backup::restore(dir, archive)
    }

    fn exists(&mut self, path: &Path) -> bool {
        path.exists()
    }

    fn rename(&mut self, from: &Path, to: &Path) -> Result<(), ApiError> {
        std::fs::rename(from, to).map_err(|e| {
            ApiError::conflict(format!(
                "Cannot move {} to {}: {e}",
                from.display(),
                to.display()
            ))
        })
    }

    fn append_file(&mut self, path: &Path, data: &[u8]) -> Result<(), ApiError> {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(data))
            .map_err(|e| ApiError::conflict(format!("Cannot write {}: {e}", path.display())))
    }

    fn write_file(&mut self, path: &Path, data: &[u8]) -> Result<(), ApiError> {
        write_atomic(path, data)
    }

    fn remove_file(&mut self, path: &Path) {
        remove_file(path);
    }

    fn read_file(&mut self, path: &Path, limit: usize) -> Option<Vec<u8>> {
        use std::io::Read;
        let mut out = Vec::new();
        let f = std::fs::File::open(path).ok()?;
        f.take(limit as u64).read_to_end(&mut out).ok()?;
        Some(out)
    }

    fn read_tail(&mut self, path: &Path, n: usize) -> Vec<u8> {
        read_tail(path, n)
    }

    fn list_files(&mut self, dir: &Path, limit: usize) -> Result<Vec<(String, String)>, ApiError> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let Ok(t) = e.file_type() else { continue };
                let path = e.path();
                if t.is_dir() {
                    stack.push(path);
                } else if t.is_file() && out.len() < limit {
                    // Unreadable files are skipped, as 2.2 does.
                    let Ok(data) = std::fs::read(&path) else {
                        continue;
                    };
                    let rel = path.strip_prefix(dir).unwrap_or(&path);
                    out.push((
                        rel.to_string_lossy().into_owned(),
                        format!("{:x}", md5::compute(&data)),
                    ));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn read_confined(
        &mut self,
        dir: &Path,
        path: &Path,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        let real = match path.canonicalize() {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ApiError::Forbidden(format!("{}: {e}", path.display()))),
        };
        confined(dir, &real)?;
        if !real.is_file() {
            return Ok(None);
        }
        let data = std::fs::read(&real).map_err(|e| ApiError::io("reading a project file", &e))?;
        if data.len() > limit {
            return Err(ApiError::conflict(format!(
                "File {} is larger than {limit} bytes",
                path.display()
            )));
        }
        Ok(Some(data))
    }

    fn write_confined(&mut self, dir: &Path, path: &Path, data: &[u8]) -> Result<(), ApiError> {
        let parent = path.parent().unwrap_or(dir);
        create_dir(parent)?;
        let real_parent = parent
            .canonicalize()
            .map_err(|e| ApiError::io("resolving a project file", &e))?;
        confined(dir, &real_parent.join("x"))?;
        if path.is_symlink() {
            return Err(ApiError::Forbidden(format!(
                "{} is a symbolic link",
                path.display()
            )));
        }
        self.write_file(path, data)
    }
}

/// Refuse a resolved path outside `dir` (symbolic links included).
fn confined(dir: &Path, real: &Path) -> Result<(), ApiError> {
    let base = dir
        .canonicalize()
        .map_err(|e| ApiError::io("resolving the project directory", &e))?;
    if real.starts_with(&base) && real != base {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "{} is outside the project directory",
            real.display()
        )))
    }
}

/// Create `dir` and its parents.
pub fn create_dir(dir: &Path) -> Result<(), ApiError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| ApiError::conflict(format!("Cannot create directory {}: {e}", dir.display())))
}

/// Remove `dir` and everything below it; a missing directory is fine.
pub fn remove_dir(dir: &Path) -> Result<(), ApiError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ApiError::conflict(format!(
            "Cannot remove directory {}: {e}",
            dir.display()
        ))),
        _ => Ok(()),
    }
}

/// Write `contents` to `path` atomically: a temporary file beside it, synced,
/// then renamed over, so a failure never leaves half a file.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), ApiError> {
    let tmp = path.with_extension("tmp");
    let fail =
        |e: std::io::Error| ApiError::conflict(format!("Cannot write {}: {e}", path.display()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(fail)
}

/// The last `n` bytes of a file (empty when it cannot be read).
pub fn read_tail(path: &Path, n: usize) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut out = Vec::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(n as u64)));
        let _ = f.take(n as u64).read_to_end(&mut out);
    }
    out
}

/// Remove project directories marked temporary (left by an earlier run).
pub fn remove_stale_temporary_projects(location: &Path, marker: &str) -> Vec<std::path::PathBuf> {
    let Ok(dir) = std::fs::read_dir(location) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in dir.flatten() {
        let path = entry.path();
        if path.join(marker).exists() && remove_dir(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// Remove a file; a missing one is fine.
pub fn remove_file(path: &Path) {
    let _ = std::fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_file_and_leaves_no_temp() {
        let dir = std::env::temp_dir().join(format!("nanolab-fs-{}", std::process::id()));
        create_dir(&dir).unwrap();
        let f = dir.join("startup.vpc");
        write_atomic(&f, b"one").unwrap();
        write_atomic(&f, b"two").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        assert_eq!(read_tail(&f, 2), b"wo");
        assert_eq!(read_tail(&f, 10), b"two");
        assert!(read_tail(&dir.join("missing"), 10).is_empty());
        assert!(!f.with_extension("tmp").exists());
        let missing = dir.join("nope").join("startup.vpc");
        assert_eq!(write_atomic(&missing, b"x").unwrap_err().status(), 409);
        remove_dir(&dir).unwrap();
        assert!(!dir.exists());
    }
}
