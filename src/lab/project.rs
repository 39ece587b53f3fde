//! Projects (plain data, no I/O).

use crate::error::ApiError;
use crate::limits::MAC_OFFSETS;
use std::collections::BTreeSet;
use std::path::PathBuf;
use uuid::Uuid;

/// Name of the marker file that makes a project directory temporary.
pub const TEMPORARY_MARKER: &str = ".gns3_temporary";

/// One project: a name, a directory and the nodes in it.
#[derive(Debug, Clone)]
pub struct Project {
    /// Project id.
    pub id: Uuid,
    /// Display name.
    pub name: Option<String>,
    /// The project's directory.
    pub path: PathBuf,
    /// Whether the directory goes away when the project closes.
    pub temporary: bool,
    /// Nodes of this project.
    pub nodes: BTreeSet<Uuid>,
    /// Directories of nodes deleted since the last commit.
    pub deleted_node_dirs: Vec<PathBuf>,
    /// GNS3 2.2's project variables (JSON text), if set.
    pub variables: Option<String>,
    /// nanolab created the directory (so deleting the project may remove
    /// it whole); false for a `--local` path that was already there.
    pub owns_dir: bool,
    macs: [u64; 4],
}

impl Project {
    /// A project living in `path`.
    pub fn new(id: Uuid, name: Option<String>, path: PathBuf, temporary: bool) -> Self {
        Project {
            id,
            name,
            path,
            temporary,
            nodes: BTreeSet::new(),
            deleted_node_dirs: Vec::new(),
            variables: None,
            owns_dir: true,
            macs: [0; 4],
        }
    }

    /// Working directory of node `node` of a kind whose nodes live under
    /// `project-files/<kind>` (GNS3's layout: `vpcs`, `qemu`, `docker`).
    pub fn node_dir(&self, kind: &str, node: Uuid) -> PathBuf {
        node_dir(&self.path, kind, node)
    }

    /// A file of the project: `rel` must stay inside its directory.
    pub fn file(&self, rel: &str) -> Result<PathBuf, ApiError> {
        let rel = std::path::Path::new(rel);
        let inside = rel.components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        });
        if !inside || rel.as_os_str().is_empty() {
            return Err(ApiError::Forbidden(format!(
                "File '{}' is outside project {}",
                rel.display(),
                self.id
            )));
        }
        Ok(self.path.join(rel))
    }

    /// Take the lowest free MAC offset (vpcs `-m`), 0..255.
    pub fn take_mac(&mut self) -> Result<u8, ApiError> {
        for i in 0..MAC_OFFSETS {
            let (word, bit) = (i / 64, 1u64 << (i % 64));
            if self.macs[word] & bit == 0 {
                self.macs[word] |= bit;
                return Ok(i as u8);
            }
        }
        Err(ApiError::conflict(format!(
            "Project {} has used all {MAC_OFFSETS} VPCS MAC addresses; create the VM in another project",
            self.id
        )))
    }

    /// How many MAC offsets are taken.
    pub fn macs_taken(&self) -> usize {
        self.macs.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Give a MAC offset back.
    pub fn release_mac(&mut self, mac: u8) {
        let i = mac as usize;
        self.macs[i / 64] &= !(1u64 << (i % 64));
    }
}

/// Working directory of node `node` of kind `kind` in the project that
/// lives in `project_dir`.
pub fn node_dir(project_dir: &std::path::Path, kind: &str, node: Uuid) -> PathBuf {
    project_dir
        .join("project-files")
        .join(kind)
        .join(node.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_unique_until_exhausted() {
        let mut p = Project::new(Uuid::new_v4(), None, "/x".into(), false);
        let taken: BTreeSet<u8> = (0..MAC_OFFSETS).map(|_| p.take_mac().unwrap()).collect();
        assert_eq!(taken.len(), MAC_OFFSETS);
        assert_eq!(p.macs_taken(), MAC_OFFSETS);
        assert_eq!(p.take_mac().unwrap_err().status(), 409);
        p.release_mac(17);
        assert_eq!(p.take_mac().unwrap(), 17);
    }
}
