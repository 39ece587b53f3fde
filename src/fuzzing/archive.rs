//! The archive fuzz target: restores and later writes beneath a
//! temporary root, and nothing lands outside it.

use uuid::Uuid;

/// Restore an archive made of entries the data chooses (files,
/// directories, links of both kinds; names with `..`, absolute names,
/// links climbing out) into a fresh temporary root, after planting, when
/// the data says so, links on disk that point outside; then write files
/// beneath it as the lab would. Nothing may land beside the root. (This
/// target touches the disk: a temporary directory, removed at the end.)
pub fn archive(data: &[u8]) {
    use crate::lab::Files;
    use tar::{EntryType, Header};
    const NAMES: [&str; 10] = [
        "p",
        "a/b",
        "..",
        "/tmp",
        ".",
        "r",
        "notes.tmp",
        "x/../..",
        "startup.vpc",
        "c",
    ];
    let t = std::env::temp_dir().join(format!("nanolab-fuzz-{}", Uuid::new_v4().simple()));
    let (root, outside) = (t.join("root"), t.join("outside"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let name = |b: &[u8]| -> String {
        b.iter()
            .map(|&i| NAMES[i as usize % NAMES.len()])
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut builder = tar::Builder::new(Vec::new());
    let mut written = Vec::new();
    for chunk in data.chunks(4) {
        let (kind, path, target) = (
            chunk[0],
            name(chunk.get(1..3).unwrap_or_default()),
            name(chunk.get(3..).unwrap_or_default()),
        );
        written.push(path.clone());
        let mut h = Header::new_gnu();
        h.set_size(0);
        h.set_entry_type(match kind % 5 {
            0 => EntryType::Regular,
            1 => EntryType::Directory,
            2 => EntryType::Symlink,
            3 => EntryType::Link,
            _ => EntryType::Fifo,
        });
        if kind % 7 == 6 {
            // A link already on disk, as an older restore could leave
            // (planted inside the root: the harness must not escape itself).
            if path.split('/').any(|c| c == "..") {
                continue;
            }
            let at = root.join(path.trim_start_matches('/'));
            // Nor through a link it planted before (std follows links).
            let through_link =
                at.ancestors().take_while(|a| *a != root).skip(1).any(|a| {
                    std::fs::symlink_metadata(a).is_ok_and(|m| m.file_type().is_symlink())
                });
            if through_link {
                continue;
            }
            let _ = std::fs::create_dir_all(at.parent().unwrap_or(&root));
            let _ = std::os::unix::fs::symlink(&outside, at);
            continue;
        }
        let gnu = h.as_gnu_mut().unwrap();
        let n = path.len().min(99);
        gnu.name[..n].copy_from_slice(&path.as_bytes()[..n]);
        let n = target.len().min(99);
        gnu.linkname[..n].copy_from_slice(&target.as_bytes()[..n]);
        h.set_cksum();
        let _ = builder.append(&h, std::io::empty());
    }
    let tar = builder.into_inner().unwrap_or_default();
    let mut disk = crate::os::fs::Disk::new(&root);
    if disk.restore_begin(&root, tar).is_ok() {
        // Slices of 3 entries: a restore resumed between turns.
        while disk.restore_step(3).is_none() {}
    }
    // Later writes, as the files API, a startup script and a capture make.
    for path in written {
        let at = root.join(path.trim_start_matches('/'));
        let _ = disk.write_confined(&root, &at, b"x");
        let _ = disk.create_dir(&at);
        let _ = disk.write_file(&at.join("startup.vpc"), b"x");
        let _ = disk.append_file(&at, b"x");
    }
    let beside: Vec<_> = std::fs::read_dir(&t).unwrap().flatten().collect();
    let landed = std::fs::read_dir(&outside).unwrap().count();
    let _ = std::fs::remove_dir_all(&t);
    assert_eq!(beside.len(), 2, "something landed beside the root");
    assert_eq!(landed, 0, "something landed outside through a link");
}
