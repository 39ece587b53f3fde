//! What the lab needs to know of the configuration (plain data).

use std::path::PathBuf;

/// What the lab needs to know of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// A fresh monotonic time (`Instant::now` on the real server), for what
    /// the lab reports as measured (a built-in PC's ping times); every
    /// decision stays on the `now` it is given.
    pub stamp: Stamp,
    /// The server runs beside its only user (GNS3's `local`).
    pub local: bool,
    /// Where projects live by default.
    pub projects_dir: PathBuf,
    /// The VPCS program, or `None` for `vpcs` on `PATH`.
    pub vpcs: Option<PathBuf>,
    /// Confine VPCS so that `!` cannot run host commands.
    pub console_sandbox: bool,
    /// UDP ports for tunnels (and VPCS's own).
    pub udp_ports: (u16, u16),
    /// TCP ports for consoles.
    pub console_ports: (u16, u16),
    /// The version string `/v2/compute` reports: the GNS3 controller's
    /// version, which it must equal, then `-nanolab.<ours>`.
    pub gns3_version: String,
    /// The version string `/v3/compute` reports: the GNS3 3.0 controller's
    /// version, which it must equal, then `+nanolab.<ours>`.
    pub gns3_3_version: String,
    /// What runs new virtual PCs.
    pub pc_engine: PcEngine,
    /// Where images are (QEMU's in `QEMU/`), GNS3's layout.
    pub images_dir: PathBuf,
    /// How QEMU VMs are accelerated.
    pub qemu_accel: QemuAccel,
    /// Whether KVM was seen to run a guest here (`None`: not tried yet).
    /// Learnt by the first VM that tries it, kept for the others.
    pub kvm_runs: std::cell::Cell<Option<bool>>,
}

/// How QEMU VMs are accelerated (a VM's own `-accel` options win).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QemuAccel {
    /// KVM where it runs guests (tried once), TCG otherwise.
    #[default]
    Auto,
    /// KVM, always.
    Kvm,
    /// TCG, always.
    Tcg,
}

/// What runs a virtual PC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PcEngine {
    /// Debian's `vpcs` program, one process per PC.
    #[default]
    Vpcs,
    /// The built-in engine: no process, the PC lives in the lab.
    Builtin,
}

impl Settings {
    /// Where QEMU images are (GNS3's layout: `QEMU/` in the images
    /// directory).
    pub fn qemu_images(&self) -> PathBuf {
        self.images_dir.join("QEMU")
    }
}

/// A fresh monotonic time, handed to the lab (which never reads a clock
/// itself): `Instant::now` on the real server, a made-up clock in tests.
#[derive(Clone, Copy)]
pub struct Stamp(pub fn() -> std::time::Instant);

impl Stamp {
    /// Read it.
    pub fn read(self) -> std::time::Instant {
        (self.0)()
    }
}

/// Settings compare by what they set; the clock is not one of them.
impl PartialEq for Stamp {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Stamp {}

impl std::fmt::Debug for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stamp")
    }
}
