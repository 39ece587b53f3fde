//! The QEMU images directory as the GNS3 controllers use it (no I/O): the
//! image list with digests, uploads and downloads, and the names a client
//! may use.
//!
//! A 2.2 or 3.0 controller lists a compute's images for its GUI, and
//! uploads an image when creating a node answers `ImageMissingError`.
//! Images may be gigabytes: an upload's body goes to the file as it
//! arrives (the host streams it), a download is streamed back, and the
//! digests the list needs are computed a slice per loop turn, once, then
//! cached beside each image as GNS3 caches them.

use super::answer::{Answer, Body, ImageFile, Reply};
use super::command::Ticket;
use super::host::Host;
use crate::error::ApiError;
use crate::limits::DIGEST_SLICE;
use std::path::{Component, Path, PathBuf};

/// Image lists being made.
#[derive(Debug, Default)]
pub struct Images {
    listing: Option<Listing>,
    /// Uploads whose body is arriving, and the image each writes.
    uploading: Vec<(Ticket, PathBuf)>,
}

/// A list waiting for digests.
#[derive(Debug)]
struct Listing {
    /// Who asked (a list asked for meanwhile joins this one).
    waiting: Vec<Ticket>,
    /// The images, some without a digest yet.
    files: Vec<ImageFile>,
    /// Which of them are being hashed, in the order asked.
    hashing: Vec<usize>,
}

impl Images {
    /// The images in `dir`: the answer now when every digest is cached;
    /// otherwise `None`, and the answer goes out once they are computed.
    pub fn list(&mut self, ticket: Ticket, dir: &Path, host: &mut dyn Host) -> Option<Reply> {
        if let Some(l) = &mut self.listing {
            l.waiting.push(ticket);
            return None;
        }
        let files: Vec<ImageFile> = match host.files().image_files(dir) {
            Ok(f) => f.into_iter().filter(shown).collect(),
            Err(e) => return Some(Err(e)),
        };
        let hashing: Vec<usize> = (0..files.len())
            .filter(|&i| files[i].md5.is_none())
            .collect();
        if hashing.is_empty() {
            return Some(Ok(Answer::Ok(Body::Images(files))));
        }
        let names = hashing.iter().map(|&i| files[i].name.clone()).collect();
        host.files().digest_begin(dir, names);
        self.listing = Some(Listing {
            waiting: vec![ticket],
            files,
            hashing,
        });
        None
    }

    /// One slice of the digests in progress; answer the list once done.
    pub fn step(&mut self, host: &mut dyn Host) {
        if self.listing.is_none() {
            return;
        }
        let Some(digests) = host.files().digest_step(DIGEST_SLICE) else {
            return;
        };
        let Some(mut l) = self.listing.take() else {
            return;
        };
        for (&i, d) in l.hashing.iter().zip(digests) {
            l.files[i].md5 = d;
        }
        // A file that could not be read is no image to offer.
        l.files.retain(|f| f.md5.is_some());
        for t in l.waiting {
            host.reply(t, Ok(Answer::Ok(Body::Images(l.files.clone()))));
        }
    }

    /// Whether digests are being computed (the loop must not sleep).
    pub fn busy(&self) -> bool {
        self.listing.is_some()
    }
}

/// What GNS3 lists: not hidden, not a digest cache, at least 7 bytes, and
/// not a program (an ELF file is no QEMU image).
fn shown(f: &ImageFile) -> bool {
    !f.name.starts_with('.') && !f.name.ends_with(".md5sum") && f.size >= 7 && !f.elf
}

impl Images {
    /// Begin receiving an upload of `name` into `dir`; the answer goes
    /// out once the body has come ([`Images::received`]).
    pub fn upload(
        &mut self,
        ticket: Ticket,
        name: &str,
        dir: &Path,
        host: &mut dyn Host,
    ) -> Result<(), ApiError> {
        let rel = upload_name(name)?;
        host.receive_body(ticket, dir, &rel)?;
        self.uploading.push((ticket, dir.join(rel)));
        Ok(())
    }

    /// The upload `ticket` ended: the image it wrote, if it was one.
    pub fn received(&mut self, ticket: Ticket) -> Option<PathBuf> {
        let i = self.uploading.iter().position(|(t, _)| *t == ticket)?;
        Some(self.uploading.swap_remove(i).1)
    }
}

/// The path an upload may write, relative to the images directory:
/// plain names, subdirectories allowed (as GNS3's `filename:path`); no
/// hidden component (temporary files are hidden), no digest cache, no
/// way out.
pub fn upload_name(name: &str) -> Result<PathBuf, ApiError> {
    let forbidden = || {
        ApiError::Forbidden(format!(
            "Could not write image: {name}: the name is not allowed (a relative path, no '..' and no part starting with '.')"
        ))
    };
    let p = Path::new(name);
    let plain = p.components().all(|c| match c {
        Component::Normal(n) => !n.to_string_lossy().starts_with('.'),
        _ => false,
    });
    if name.is_empty() || !plain || name.ends_with(".md5sum") {
        return Err(forbidden());
    }
    Ok(p.to_path_buf())
}

/// The image `name` in `dir`, streamed. As GNS3: a name starting with `.`
/// or holding `/` is refused (403), a missing one is a 404.
pub fn download(name: &str, dir: &Path, host: &mut dyn Host) -> Reply {
    if name.is_empty() || name.starts_with('.') || name.contains('/') {
        return Err(ApiError::Forbidden(format!(
            "Image '{name}' cannot be read: the name may not start with '.' or hold '/'"
        )));
    }
    let path = dir.join(name);
    if !host.readable(&path) {
        return Err(ApiError::NotFound(format!(
            "Image '{name}' not found on compute"
        )));
    }
    Ok(Answer::Ok(Body::FileStream(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_names_stay_beneath_the_directory() {
        assert_eq!(upload_name("disk.qcow2").unwrap(), Path::new("disk.qcow2"));
        assert_eq!(
            upload_name("vyos/disk.qcow2").unwrap(),
            Path::new("vyos/disk.qcow2")
        );
        for bad in [
            "",
            "../x",
            "/etc/passwd",
            "a/../../x",
            ".hidden",
            "a/.x",
            "x.md5sum",
            "./x",
        ] {
            let e = upload_name(bad).unwrap_err();
            assert_eq!(e.status(), 403, "{bad:?}");
        }
    }

    #[test]
    fn the_list_shows_images_only() {
        let f = |name: &str, size, elf| ImageFile {
            name: name.into(),
            size,
            elf,
            md5: None,
        };
        assert!(shown(&f("disk.qcow2", 1 << 20, false)));
        assert!(!shown(&f(".disk.qcow2.nanolab-tmp", 1 << 20, false)));
        assert!(!shown(&f("disk.qcow2.md5sum", 32, false)));
        assert!(!shown(&f("tiny", 6, false)));
        assert!(!shown(&f("vpcs", 1 << 20, true)));
    }
}
