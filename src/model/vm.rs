//! VPCS VMs and their NIO (plain data, no I/O).

use serde_json::{Value, json};
use std::net::IpAddr;
use std::path::PathBuf;
use uuid::Uuid;

/// File name of a VM's startup script inside its directory.
pub const STARTUP_SCRIPT: &str = "startup.vpc";

/// A UDP tunnel endpoint: frames from the VM leave from `lport` to `rhost:rport`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nio {
    /// Local UDP port owned by the server.
    pub lport: u16,
    /// Peer address, as the client gave it.
    pub rhost: String,
    /// Peer address, resolved.
    pub raddr: IpAddr,
    /// Peer port.
    pub rport: u16,
}

impl Nio {
    /// The API object.
    pub fn to_json(&self) -> Value {
        json!({"type": "nio_udp", "lport": self.lport, "rhost": self.rhost, "rport": self.rport})
    }
}

/// Frame and byte counters of a tunnel, per direction, plus drops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TunnelStats {
    /// Frames from the VM sent to the peer.
    pub out_frames: u64,
    /// Bytes from the VM sent to the peer.
    pub out_bytes: u64,
    /// Frames from the peer sent to the VM.
    pub in_frames: u64,
    /// Bytes from the peer sent to the VM.
    pub in_bytes: u64,
    /// Frames that could not be sent (or arrived with nowhere to go).
    pub dropped: u64,
}

/// A VPCS VM as the API sees it.
#[derive(Debug, Clone)]
pub struct Vm {
    /// VM id.
    pub id: Uuid,
    /// Owning project.
    pub project_id: Uuid,
    /// Display name (also the VPCS host name through the startup script).
    pub name: String,
    /// Public console TCP port.
    pub console: u16,
    /// Startup script text, if any.
    pub startup_script: Option<String>,
    /// MAC offset passed as `-m`.
    pub mac: u8,
    /// Working directory.
    pub dir: PathBuf,
    /// The tunnel on adapter 0 port 0.
    pub nio: Option<Nio>,
}

impl Vm {
    /// The API object.
    pub fn to_json(&self) -> Value {
        json!({
            "vm_id": self.id.to_string(),
            "project_id": self.project_id.to_string(),
            "name": self.name,
            "console": self.console,
            "startup_script": self.startup_script,
            "startup_script_path": self.startup_script.as_ref().map(|_| STARTUP_SCRIPT),
        })
    }

    /// Rename, rewriting the old name inside the startup script as GNS3 did.
    pub fn rename(&mut self, new_name: &str) {
        if let Some(script) = &mut self.startup_script
            && !self.name.is_empty()
        {
            *script = script.replace(&self.name, new_name);
        }
        self.name = new_name.to_string();
    }
}

/// `%h` in a startup script stands for the VM name.
pub fn expand_script(script: &str, name: &str) -> String {
    script.replace("%h", name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm() -> Vm {
        Vm {
            id: Uuid::nil(),
            project_id: Uuid::nil(),
            name: "PC1".into(),
            console: 2000,
            startup_script: Some(expand_script("set pcname %h\nip 10.0.0.1\n", "PC1")),
            mac: 0,
            dir: "/x".into(),
            nio: None,
        }
    }

    #[test]
    fn rename_rewrites_the_script() {
        let mut v = vm();
        assert_eq!(
            v.startup_script.as_deref(),
            Some("set pcname PC1\nip 10.0.0.1\n")
        );
        v.rename("Web");
        assert_eq!(
            v.startup_script.as_deref(),
            Some("set pcname Web\nip 10.0.0.1\n")
        );
        assert_eq!(v.to_json()["startup_script_path"], "startup.vpc");
    }

    #[test]
    fn no_script_means_null_path() {
        let mut v = vm();
        v.startup_script = None;
        assert!(v.to_json()["startup_script_path"].is_null());
    }
}
