//! Projects (plain data, no I/O).

use crate::error::ApiError;
use crate::limits::MAC_OFFSETS;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// Name of the marker file that makes a project directory temporary.
pub const TEMPORARY_MARKER: &str = ".gns3_temporary";

/// One project: a name, a directory and the VMs in it.
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
    /// VMs of this project.
    pub vms: BTreeSet<Uuid>,
    /// Directories of VMs deleted since the last commit.
    pub deleted_vm_dirs: Vec<PathBuf>,
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
            vms: BTreeSet::new(),
            deleted_vm_dirs: Vec::new(),
            macs: [0; 4],
        }
    }

    /// The API object; `location` is the directory holding the projects.
    pub fn to_json(&self, location: &Path) -> Value {
        json!({
            "project_id": self.id.to_string(),
            "name": self.name,
            "location": location.to_string_lossy(),
            "path": self.path.to_string_lossy(),
            "temporary": self.temporary,
        })
    }

    /// Working directory of a VPCS VM of this project.
    pub fn vm_dir(&self, vm: Uuid) -> PathBuf {
        self.path
            .join("project-files")
            .join("vpcs")
            .join(vm.to_string())
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

    /// Give a MAC offset back.
    pub fn release_mac(&mut self, mac: u8) {
        let i = mac as usize;
        self.macs[i / 64] &= !(1u64 << (i % 64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_unique_until_exhausted() {
        let mut p = Project::new(Uuid::new_v4(), None, "/x".into(), false);
        let taken: BTreeSet<u8> = (0..MAC_OFFSETS).map(|_| p.take_mac().unwrap()).collect();
        assert_eq!(taken.len(), MAC_OFFSETS);
        assert_eq!(p.take_mac().unwrap_err().status(), 409);
        p.release_mac(17);
        assert_eq!(p.take_mac().unwrap(), 17);
    }

    #[test]
    fn json_has_every_field() {
        let p = Project::new(Uuid::nil(), Some("t".into()), "/base/p".into(), true);
        let v = p.to_json(Path::new("/base"));
        for k in ["project_id", "name", "location", "path", "temporary"] {
            assert!(v.get(k).is_some(), "{k}");
        }
    }
}
