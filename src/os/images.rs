//! The images directory on disk: an upload written as it arrives, the
//! files with their cached MD5 digests, and digests computed a slice at a
//! time (an image may be gigabytes: hashing one whole would hold the loop).
//!
//! GNS3's layout: an image's digest is cached beside it in `NAME.md5sum`
//! (32 hex digits), dropped when the image is replaced. Everything a
//! client names is resolved beneath the directory's handle
//! ([`super::confined`]); the policy (which names, which directory) is the
//! lab's.

use super::confined;
use crate::lab::answer::ImageFile;
use cap_std::fs::{Dir, File, OpenOptions};
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Suffix of the file caching an image's digest.
pub const DIGEST_SUFFIX: &str = ".md5sum";

/// `name` with [`DIGEST_SUFFIX`].
fn digest_name(name: &std::ffi::OsStr) -> OsString {
    let mut n = name.to_os_string();
    n.push(DIGEST_SUFFIX);
    n
}

/// Open the images directory `root`, creating it when missing.
fn open(root: &Path) -> io::Result<Dir> {
    std::fs::create_dir_all(root)?;
    confined::open_root(root)
}

/// An image being uploaded: written beside its target under a hidden
/// temporary name, hashed as it goes, renamed over the target once whole.
/// Dropped before [`Upload::finish`], it leaves nothing behind.
pub struct Upload {
    dir: Dir,
    name: OsString,
    tmp: OsString,
    file: Option<File>,
    md5: md5::Context,
    bytes: u64,
    error: Option<io::Error>,
}

impl Upload {
    /// Begin writing `rel` beneath `root` (its directories are made).
    pub fn create(root: &Path, rel: &Path) -> io::Result<Upload> {
        let root = open(root)?;
        let rel = confined::relative(rel)?;
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no file name"));
        };
        confined::create_dir_all(&root, parent)?;
        let dir = confined::open_dir(&root, parent)?;
        let tmp = confined::tmp_name(name);
        let _ = dir.remove_file(&tmp);
        let file = dir.open_with(&tmp, OpenOptions::new().write(true).create_new(true))?;
        Ok(Upload {
            dir,
            name: name.to_os_string(),
            tmp,
            file: Some(file),
            md5: md5::Context::new(),
            bytes: 0,
            error: None,
        })
    }

    /// The next piece. A write error is kept for [`Upload::finish`], and
    /// the rest of the body is then dropped.
    pub fn write(&mut self, piece: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let Some(f) = self.file.as_mut() else { return };
        match f.write_all(piece) {
            Ok(()) => {
                self.md5.consume(piece);
                self.bytes += piece.len() as u64;
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// The whole body came: replace the image with it and cache its
    /// digest. Returns its size.
    pub fn finish(mut self) -> io::Result<u64> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        drop(self.file.take());
        let digest = format!("{:x}", self.md5.clone().finalize());
        let cache = digest_name(&self.name);
        let result = (|| {
            let _ = self.dir.remove_file(&cache);
            self.dir.rename(&self.tmp, &self.dir, &self.name)?;
            confined::write_atomic(&self.dir, Path::new(&cache), digest.as_bytes(), false)
        })();
        if result.is_err() {
            let _ = self.dir.remove_file(&self.tmp);
        }
        result.map(|()| self.bytes)
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = self.dir.remove_file(&self.tmp);
        }
    }
}

/// The regular files directly in `root` (links followed, as GNS3 does),
/// sorted by name; a missing directory has none. Names that are not
/// UTF-8 are left out.
pub fn list(root: &Path) -> io::Result<Vec<ImageFile>> {
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let path = entry.path();
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let mut magic = [0u8; 4];
        let elf = std::fs::File::open(&path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .is_ok_and(|()| &magic == b"\x7fELF");
        out.push(ImageFile {
            md5: cached_digest(&path),
            name,
            size: meta.len(),
            elf,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The digest cached beside `path`, if it is 32 hex digits.
fn cached_digest(path: &Path) -> Option<String> {
    let mut p = path.as_os_str().to_os_string();
    p.push(DIGEST_SUFFIX);
    let text = std::fs::read_to_string(PathBuf::from(p)).ok()?;
    let d = text.trim();
    (d.len() == 32 && d.bytes().all(|b| b.is_ascii_hexdigit())).then(|| d.to_ascii_lowercase())
}

/// MD5 digests of files in a directory, computed a slice at a time and
/// cached beside each file as it completes.
pub struct Digests {
    root: PathBuf,
    names: Vec<String>,
    current: Option<(std::fs::File, md5::Context)>,
    done: Vec<Option<String>>,
}

impl std::fmt::Debug for Digests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Digests({} of {})", self.done.len(), self.names.len())
    }
}

impl Digests {
    /// Digests of `names` in `root`, none computed yet.
    pub fn new(root: &Path, names: Vec<String>) -> Digests {
        Digests {
            root: root.to_path_buf(),
            names,
            current: None,
            done: Vec::new(),
        }
    }

    /// Hash up to about `budget` bytes. Once every file is done: their
    /// digests, in order (`None` for a file that could not be read).
    pub fn step(&mut self, budget: usize) -> Option<Vec<Option<String>>> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut left = budget;
        while self.done.len() < self.names.len() {
            let path = self.root.join(&self.names[self.done.len()]);
            let (file, ctx) = match &mut self.current {
                Some(c) => c,
                None => match std::fs::File::open(&path) {
                    Ok(f) => self.current.insert((f, md5::Context::new())),
                    Err(_) => {
                        self.done.push(None);
                        continue;
                    }
                },
            };
            if left == 0 {
                return None;
            }
            let want = buf.len().min(left);
            match file.read(&mut buf[..want]) {
                Ok(0) => {
                    let (_, ctx) = self.current.take().expect("a file being hashed");
                    let digest = format!("{:x}", ctx.finalize());
                    let mut cache = path.into_os_string();
                    cache.push(DIGEST_SUFFIX);
                    let _ = std::fs::write(cache, &digest);
                    self.done.push(Some(digest));
                }
                Ok(n) => {
                    ctx.consume(&buf[..n]);
                    left -= n;
                }
                Err(_) => {
                    self.current = None;
                    self.done.push(None);
                }
            }
        }
        Some(std::mem::take(&mut self.done))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nanolab-images-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn an_upload_lands_whole_with_its_digest_or_not_at_all() {
        let root = scratch("upload");
        let mut up = Upload::create(&root, Path::new("sub/disk.qcow2")).unwrap();
        up.write(b"QFI\xfb");
        up.write(b" and more");
        assert!(
            !root.join("sub/disk.qcow2").exists(),
            "not before it is whole"
        );
        assert_eq!(up.finish().unwrap(), 13);
        assert_eq!(
            std::fs::read(root.join("sub/disk.qcow2")).unwrap(),
            b"QFI\xfb and more"
        );
        let digest = format!("{:x}", md5::compute(b"QFI\xfb and more"));
        assert_eq!(cached_digest(&root.join("sub/disk.qcow2")), Some(digest));
        // An upload given up leaves the old image and no temporary file.
        let mut up = Upload::create(&root, Path::new("sub/disk.qcow2")).unwrap();
        up.write(b"half");
        drop(up);
        assert_eq!(
            std::fs::read(root.join("sub/disk.qcow2")).unwrap(),
            b"QFI\xfb and more"
        );
        assert_eq!(std::fs::read_dir(root.join("sub")).unwrap().count(), 2);
        // Nothing climbs out.
        assert!(Upload::create(&root, Path::new("../evil")).is_err());
        assert!(Upload::create(&root, Path::new("/etc/evil")).is_err());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn digests_come_a_slice_at_a_time_and_are_cached() {
        let root = scratch("digests");
        std::fs::create_dir_all(&root).unwrap();
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        std::fs::write(root.join("big.img"), &big).unwrap();
        std::fs::write(root.join("small.img"), b"0123456789").unwrap();
        std::fs::write(root.join("prog"), b"\x7fELF\x02\x01\x01").unwrap();
        let mut job = Digests::new(
            &root,
            vec!["big.img".into(), "gone".into(), "small.img".into()],
        );
        let mut turns = 0;
        let got = loop {
            turns += 1;
            if let Some(d) = job.step(50_000) {
                break d;
            }
        };
        assert!(turns >= 4, "200 kB in 50 kB slices: {turns} turns");
        assert_eq!(got[0], Some(format!("{:x}", md5::compute(&big))));
        assert_eq!(got[1], None, "a missing file has no digest");
        assert_eq!(got[2], Some(format!("{:x}", md5::compute(b"0123456789"))));
        let found = list(&root).unwrap();
        let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "big.img",
                "big.img.md5sum",
                "prog",
                "small.img",
                "small.img.md5sum"
            ]
        );
        assert_eq!(found[0].md5, got[0], "cached");
        assert!(found[2].elf && !found[0].elf);
        assert_eq!(found[3].size, 10);
        let _ = std::fs::remove_dir_all(&root);
    }
}
