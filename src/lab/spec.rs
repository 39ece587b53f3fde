//! The lab's validated inputs (plain data, no I/O): what a new project, a
//! new node, an update or a capture asks for, once a front-end has decoded
//! and checked its request body. The front-ends fill these (`api::body`);
//! the lab only reads them.

use super::types::{DeviceType, PortSettings};
use uuid::Uuid;

/// `POST /v1/projects`
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectCreate {
    /// Name.
    pub name: Option<String>,
    /// Id asked for.
    pub project_id: Option<Uuid>,
    /// Directory asked for (needs `--local`).
    pub path: Option<String>,
    /// Temporary flag.
    pub temporary: Option<bool>,
    /// GNS3 2.2's project variables, as JSON text (`[{"name", "value"}]`).
    pub variables: Option<String>,
}

/// `PUT /v1/projects/{id}`
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectUpdate {
    /// New name.
    pub name: Option<String>,
    /// New directory (needs `--local`).
    pub path: Option<String>,
    /// New temporary flag.
    pub temporary: Option<bool>,
    /// New GNS3 2.2 project variables (JSON text).
    pub variables: Option<String>,
}

/// `POST .../vpcs/vms`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmCreate {
    /// Name.
    pub name: String,
    /// Id asked for.
    pub vm_id: Option<Uuid>,
    /// An integer id from a GNS3 1.2 topology, converted as 1.3.13 does.
    pub legacy_id: Option<i64>,
    /// Console port asked for.
    pub console: Option<u16>,
    /// Startup script.
    pub startup_script: Option<String>,
    /// A requested console port that is taken or out of range is replaced
    /// by a free one rather than refused (GNS3 2.2).
    pub console_pick: bool,
    /// Give it a telnet console (2.2's `console_type` "telnet", not "none").
    pub console_telnet: bool,
}

/// `PUT .../vpcs/vms/{vm_id}`
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmUpdate {
    /// New name.
    pub name: Option<String>,
    /// New console port.
    pub console: Option<u16>,
    /// New startup script (an empty string keeps an empty `startup.vpc`).
    pub startup_script: Option<String>,
    /// A console port that is taken or out of range is replaced (GNS3 2.2).
    pub console_pick: bool,
    /// Turn the telnet console on or off (2.2's `console_type`).
    pub console_telnet: Option<bool>,
}

/// `POST .../dynamips/devices`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCreate {
    /// Name.
    pub name: String,
    /// `ethernet_switch` or `ethernet_hub`.
    pub device_type: DeviceType,
    /// Id asked for.
    pub device_id: Option<Uuid>,
    /// Declared ports (2.2's `ports_mapping`); `None` for 1.3, whose
    /// ports appear with their NIO.
    pub mapping: Option<Vec<super::types::PortMapping>>,
}

/// `PUT .../dynamips/devices/{device_id}`
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceUpdate {
    /// New name.
    pub name: Option<String>,
    /// New port settings (switch).
    pub ports: Option<Vec<PortSettings>>,
    /// New declared ports (2.2's `ports_mapping`).
    pub mapping: Option<Vec<super::types::PortMapping>>,
}

/// `POST .../start_capture`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureStart {
    /// File name, inside the project's `project-files/captures`.
    pub capture_file_name: String,
}

/// `POST .../cloud/nodes` (GNS3 2.2 and 3.0)
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CloudCreate {
    /// Name.
    pub name: String,
    /// Id asked for.
    pub node_id: Option<Uuid>,
    /// Its ports, numbered 0, 1, 2... in the given order.
    pub ports: Vec<super::types::HostPort>,
}

/// A QEMU VM's settings, as `/v1` names them (the node's name, id and
/// console aside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuConfig {
    /// The emulator, resolved to an absolute path at create.
    pub qemu_path: String,
    /// Disk images (`hda_disk_image`...), as given: a relative name is
    /// found in the images directory.
    pub hda: String,
    /// Second disk.
    pub hdb: String,
    /// Third disk.
    pub hdc: String,
    /// Fourth disk.
    pub hdd: String,
    /// RAM in MB.
    pub ram: u32,
    /// Network adapters.
    pub adapters: u32,
    /// Their QEMU device model (`e1000`, `virtio-net-pci`...).
    pub adapter_type: String,
    /// Initial ramdisk.
    pub initrd: String,
    /// Kernel to boot directly.
    pub kernel_image: String,
    /// Its command line.
    pub kernel_command_line: String,
    /// `-net nic,vlan=` (QEMU 2.9 dropped it: refused at start).
    pub legacy_networking: bool,
    /// CPU limit in percent (0: none).
    pub cpu_throttling: u32,
    /// `realtime` ... `very low`.
    pub process_priority: String,
    /// Extra QEMU arguments.
    pub options: String,
    /// GNS3 2.2's settings (defaults on `/v1`).
    pub more: QemuMore,
}

/// The settings GNS3 2.2 added to a QEMU VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuMore {
    /// `x86_64`, `i386`, `arm`...
    pub platform: String,
    /// Virtual CPUs.
    pub cpus: u32,
    /// `-boot order=`: `c`, `d`, `n`, `cd`...
    pub boot_priority: String,
    /// The first adapter's MAC (`""`: 1.3.13's, from the node id).
    pub mac_address: String,
    /// `telnet` or `none`.
    pub console_type: String,
    /// A CD-ROM image.
    pub cdrom_image: String,
    /// A BIOS image.
    pub bios_image: String,
    /// Each disk's interface (`none` attaches it as IDE).
    pub disk_interfaces: [String; 4],
    /// What closing does (`power_off`...).
    pub on_close: String,
    /// 2.2's usage notes.
    pub usage: String,
    /// Tell the guest when a link is down.
    pub replicate_network_connection_state: bool,
}

impl Default for QemuMore {
    /// GNS3 2.2's defaults.
    fn default() -> Self {
        let none = || "none".to_string();
        QemuMore {
            platform: "x86_64".into(),
            cpus: 1,
            boot_priority: "c".into(),
            mac_address: String::new(),
            console_type: "telnet".into(),
            cdrom_image: String::new(),
            bios_image: String::new(),
            disk_interfaces: [none(), none(), none(), none()],
            on_close: "power_off".into(),
            usage: String::new(),
            replicate_network_connection_state: true,
        }
    }
}

impl Default for QemuConfig {
    /// GNS3 1.3.13's defaults.
    fn default() -> Self {
        QemuConfig {
            qemu_path: String::new(),
            hda: String::new(),
            hdb: String::new(),
            hdc: String::new(),
            hdd: String::new(),
            ram: 256,
            adapters: 1,
            adapter_type: "e1000".into(),
            initrd: String::new(),
            kernel_image: String::new(),
            kernel_command_line: String::new(),
            legacy_networking: false,
            cpu_throttling: 0,
            process_priority: "low".into(),
            options: String::new(),
            more: QemuMore::default(),
        }
    }
}

/// A QEMU VM to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuCreate {
    /// Name.
    pub name: String,
    /// Id asked for.
    pub vm_id: Option<Uuid>,
    /// Console port asked for.
    pub console: Option<u16>,
    /// Its settings.
    pub config: QemuConfig,
    /// An empty `mac_address` becomes GNS3 2.2's, made from the node id
    /// (else 1.3.13's per-adapter scheme applies).
    pub mac_from_id: bool,
    /// The images must be there now (2.2, 3.0: a missing one is
    /// `ImageMissing`, which the controller answers with an upload),
    /// rather than at start (1.3.13).
    pub check_images: bool,
}

/// A QEMU VM's update: what is given changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QemuPatch {
    /// New name.
    pub name: Option<String>,
    /// New console port.
    pub console: Option<u16>,
    /// New emulator.
    pub qemu_path: Option<String>,
    /// New disks.
    pub disks: [Option<String>; 4],
    /// New RAM.
    pub ram: Option<u32>,
    /// New adapter count.
    pub adapters: Option<u32>,
    /// New adapter model.
    pub adapter_type: Option<String>,
    /// New initrd.
    pub initrd: Option<String>,
    /// New kernel.
    pub kernel_image: Option<String>,
    /// New kernel command line.
    pub kernel_command_line: Option<String>,
    /// New legacy networking.
    pub legacy_networking: Option<bool>,
    /// New CPU limit.
    pub cpu_throttling: Option<u32>,
    /// New priority.
    pub process_priority: Option<String>,
    /// New options.
    pub options: Option<String>,
    /// New 2.2 settings, each when given.
    pub more: MorePatch,
    /// The images given must be there now (see [`QemuCreate`]).
    pub check_images: bool,
}

impl QemuConfig {
    /// Every image it names (disks, kernel, initrd, CD-ROM, BIOS).
    pub fn images(&self) -> Vec<&str> {
        let c = self;
        [&c.hda, &c.hdb, &c.hdc, &c.hdd, &c.kernel_image, &c.initrd]
            .into_iter()
            .chain([&c.more.cdrom_image, &c.more.bios_image])
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect()
    }
}

impl QemuPatch {
    /// Every image it sets.
    pub fn images(&self) -> Vec<&str> {
        self.disks
            .iter()
            .chain([&self.kernel_image, &self.initrd])
            .chain([&self.more.cdrom_image, &self.more.bios_image])
            .filter_map(|s| s.as_deref())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// GNS3 2.2's settings to change, each when given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MorePatch {
    /// See [`QemuMore`].
    pub platform: Option<String>,
    /// See [`QemuMore`].
    pub cpus: Option<u32>,
    /// See [`QemuMore`].
    pub boot_priority: Option<String>,
    /// See [`QemuMore`].
    pub mac_address: Option<String>,
    /// See [`QemuMore`].
    pub console_type: Option<String>,
    /// See [`QemuMore`].
    pub cdrom_image: Option<String>,
    /// See [`QemuMore`].
    pub bios_image: Option<String>,
    /// See [`QemuMore`].
    pub disk_interfaces: [Option<String>; 4],
    /// See [`QemuMore`].
    pub on_close: Option<String>,
    /// See [`QemuMore`].
    pub usage: Option<String>,
    /// See [`QemuMore`].
    pub replicate_network_connection_state: Option<bool>,
}

impl QemuPatch {
    /// Apply to `c` what is given.
    pub fn apply(self, c: &mut QemuConfig) {
        let [a, b, cc, d] = self.disks;
        for (to, from) in [
            (&mut c.hda, a),
            (&mut c.hdb, b),
            (&mut c.hdc, cc),
            (&mut c.hdd, d),
            (&mut c.qemu_path, self.qemu_path),
            (&mut c.adapter_type, self.adapter_type),
            (&mut c.initrd, self.initrd),
            (&mut c.kernel_image, self.kernel_image),
            (&mut c.kernel_command_line, self.kernel_command_line),
            (&mut c.process_priority, self.process_priority),
            (&mut c.options, self.options),
        ] {
            if let Some(v) = from {
                *to = v;
            }
        }
        c.ram = self.ram.unwrap_or(c.ram);
        c.adapters = self.adapters.unwrap_or(c.adapters);
        c.legacy_networking = self.legacy_networking.unwrap_or(c.legacy_networking);
        c.cpu_throttling = self.cpu_throttling.unwrap_or(c.cpu_throttling);
        let (m, p) = (&mut c.more, self.more);
        let [a, b, cc, d] = p.disk_interfaces;
        let [ia, ib, ic, id] = &mut m.disk_interfaces;
        for (to, from) in [
            (&mut m.platform, p.platform),
            (&mut m.boot_priority, p.boot_priority),
            (&mut m.mac_address, p.mac_address),
            (&mut m.console_type, p.console_type),
            (&mut m.cdrom_image, p.cdrom_image),
            (&mut m.bios_image, p.bios_image),
            (ia, a),
            (ib, b),
            (ic, cc),
            (id, d),
            (&mut m.on_close, p.on_close),
            (&mut m.usage, p.usage),
        ] {
            if let Some(v) = from {
                *to = v;
            }
        }
        m.cpus = p.cpus.unwrap_or(m.cpus);
        m.replicate_network_connection_state = p
            .replicate_network_connection_state
            .unwrap_or(m.replicate_network_connection_state);
    }
}

/// A container node's settings (GNS3 2.2's and 3.0's docker node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfig {
    /// The image, `repo:tag` (`:latest` added when untagged).
    pub image: String,
    /// Its Ethernet interfaces (`eth0`..).
    pub adapters: u32,
    /// The base MAC: interface `i` gets it plus `i`.
    pub mac_address: String,
    /// `telnet` or `none`.
    pub console_type: String,
    /// The auxiliary console (a second shell): `telnet` or `none`.
    pub aux_type: String,
    /// What to run instead of the image's command (split as a shell would).
    pub start_command: String,
    /// `NAME=value` lines added to the container's environment.
    pub environment: String,
    /// `host:address` lines added to its `/etc/hosts`.
    pub extra_hosts: String,
    /// Directories kept in the node's directory across re-creations.
    pub extra_volumes: Vec<String>,
    /// Free text.
    pub usage: String,
    /// Kept and echoed (VNC geometry, HTTP console port and path).
    pub console_resolution: String,
    /// See `console_resolution`.
    pub console_http_port: u16,
    /// See `console_resolution`.
    pub console_http_path: String,
    /// Memory limit in MiB (0: none), 3.0.
    pub memory: u64,
    /// CPU limit (0: none), 3.0, in thousandths of a CPU.
    pub millicpus: u64,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            image: String::new(),
            adapters: 1,
            mac_address: String::new(),
            console_type: "telnet".into(),
            aux_type: "none".into(),
            start_command: String::new(),
            environment: String::new(),
            extra_hosts: String::new(),
            extra_volumes: Vec::new(),
            usage: String::new(),
            console_resolution: "1024x768".into(),
            console_http_port: 80,
            console_http_path: "/".into(),
            memory: 0,
            millicpus: 0,
        }
    }
}

/// A container node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerCreate {
    /// Name.
    pub name: String,
    /// Id asked for.
    pub node_id: Option<Uuid>,
    /// Console port asked for.
    pub console: Option<u16>,
    /// Auxiliary console port asked for.
    pub aux: Option<u16>,
    /// Its settings.
    pub config: DockerConfig,
}

/// A container node's update: what is given changes. What the engine
/// fixed when it made the container (command, environment, hosts,
/// volumes, adapters, limits) makes it again, as GNS3 does; a new name
/// renames it; MACs apply at the next start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerPatch {
    /// New name.
    pub name: Option<String>,
    /// New console port.
    pub console: Option<u16>,
    /// New adapter count.
    pub adapters: Option<u32>,
    /// New base MAC.
    pub mac_address: Option<String>,
    /// New console type.
    pub console_type: Option<String>,
    /// The auxiliary console's type: kept from the create (a change is
    /// refused by the kind).
    pub aux_type: Option<String>,
    /// New start command.
    pub start_command: Option<String>,
    /// New environment.
    pub environment: Option<String>,
    /// New extra hosts.
    pub extra_hosts: Option<String>,
    /// New volumes.
    pub extra_volumes: Option<Vec<String>>,
    /// New usage.
    pub usage: Option<String>,
    /// New VNC geometry (kept).
    pub console_resolution: Option<String>,
    /// New HTTP console port (kept).
    pub console_http_port: Option<u16>,
    /// New HTTP console path (kept).
    pub console_http_path: Option<String>,
    /// New memory limit.
    pub memory: Option<u64>,
    /// New CPU limit.
    pub millicpus: Option<u64>,
}

impl DockerPatch {
    /// Apply to `c` what is given; whether the container must be made
    /// again for it (what the engine fixed at creation changed).
    pub fn apply(self, c: &mut DockerConfig) -> bool {
        let mut remake = false;
        let mut set = |to: &mut String, from: Option<String>, fixed: bool| {
            if let Some(v) = from
                && *to != v
            {
                *to = v;
                remake |= fixed;
            }
        };
        set(&mut c.mac_address, self.mac_address, false);
        set(&mut c.console_type, self.console_type, false);
        set(&mut c.start_command, self.start_command, true);
        set(&mut c.environment, self.environment, true);
        set(&mut c.extra_hosts, self.extra_hosts, true);
        set(&mut c.usage, self.usage, false);
        set(&mut c.console_resolution, self.console_resolution, false);
        set(&mut c.console_http_path, self.console_http_path, false);
        if let Some(v) = self.console_http_port {
            c.console_http_port = v;
        }
        for (to, from) in [
            (&mut c.memory, self.memory),
            (&mut c.millicpus, self.millicpus),
        ] {
            if let Some(v) = from
                && *to != v
            {
                *to = v;
                remake = true;
            }
        }
        if let Some(v) = self.adapters
            && v != c.adapters
        {
            c.adapters = v;
            remake = true;
        }
        if let Some(v) = self.extra_volumes
            && v != c.extra_volumes
        {
            c.extra_volumes = v;
            remake = true;
        }
        remake
    }
}
