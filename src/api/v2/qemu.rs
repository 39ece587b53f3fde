//! QEMU nodes on `/v2/compute` and `/v3/compute`: GNS3 2.2's body (strict
//! on `/v2`, lenient on `/v3`) and object.

use super::Dialect;
use crate::api::decode::{self, Int, NodeId, OneOf, Port, Word, name, port};
use crate::error::ApiError;
use crate::lab::answer::QemuView;
use crate::lab::spec::{MorePatch, QemuConfig, QemuCreate, QemuPatch};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

type Unused = Option<IgnoredAny>;

/// A console type: `telnet` and `none` are served; the graphical ones are
/// named so that the refusal can say so.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ConsoleType(String);

impl Word for ConsoleType {
    const ALLOWED: &'static str = "telnet, vnc, spice, spice+agent or none";
    fn parse(s: &str) -> Option<Self> {
        ["telnet", "vnc", "spice", "spice+agent", "none"]
            .contains(&s)
            .then(|| ConsoleType(s.to_string()))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
#[allow(dead_code)]
struct QemuBody {
    name: Option<String>,
    node_id: Option<NodeId>,
    usage: Option<String>,
    qemu_path: Option<String>,
    platform: Option<String>,
    console: Option<Port>,
    console_type: Option<OneOf<ConsoleType>>,
    hda_disk_image: Option<String>,
    hdb_disk_image: Option<String>,
    hdc_disk_image: Option<String>,
    hdd_disk_image: Option<String>,
    hda_disk_interface: Option<String>,
    hdb_disk_interface: Option<String>,
    hdc_disk_interface: Option<String>,
    hdd_disk_interface: Option<String>,
    hda_disk_image_md5sum: Unused,
    hdb_disk_image_md5sum: Unused,
    hdc_disk_image_md5sum: Unused,
    hdd_disk_image_md5sum: Unused,
    cdrom_image: Option<String>,
    cdrom_image_md5sum: Unused,
    bios_image: Option<String>,
    bios_image_md5sum: Unused,
    initrd: Option<String>,
    initrd_md5sum: Unused,
    kernel_image: Option<String>,
    kernel_image_md5sum: Unused,
    kernel_command_line: Option<String>,
    boot_priority: Option<String>,
    ram: Option<Int<1, 1_048_576>>,
    cpus: Option<Int<1, 255>>,
    adapters: Option<Int<0, 275>>,
    adapter_type: Option<String>,
    mac_address: Option<String>,
    custom_adapters: Unused,
    legacy_networking: Option<bool>,
    replicate_network_connection_state: Option<bool>,
    linked_clone: Option<bool>,
    on_close: Option<String>,
    cpu_throttling: Option<Int<0, 800>>,
    process_priority: Option<String>,
    options: Option<String>,
    tpm: Unused,
    uefi: Unused,
    create_config_disk: Unused,
    // Read-only keys a controller echoes back on update.
    node_directory: Unused,
    command_line: Unused,
    status: Unused,
    project_id: Unused,
    save_vm_state: Unused,
}

fn decode_body(raw: &[u8], d: Dialect) -> Result<QemuBody, ApiError> {
    match d {
        Dialect::V2 => decode::decode(raw),
        Dialect::V3 => decode::decode_lenient(raw),
    }
}

fn patch(b: QemuBody) -> Result<QemuPatch, ApiError> {
    if let Some(OneOf(ConsoleType(t))) = &b.console_type
        && t != "telnet"
        && t != "none"
    {
        return Err(ApiError::conflict(format!(
            "Console type {t} is not supported yet by nanolab (telnet and none are)"
        )));
    }
    if b.linked_clone == Some(false) {
        return Err(ApiError::conflict(
            "linked_clone false is not supported yet by nanolab: its disks are linked clones",
        ));
    }
    if let Some(Int(n)) = b.adapters
        && n > 32
    {
        return Err(ApiError::conflict(format!(
            "{n} adapters need PCI bridges, which nanolab does not add yet (32 at most)"
        )));
    }
    super::bodies::check_mac(b.mac_address.as_deref(), "0c:12:34:56:00:00")?;
    let int = |v: Option<i64>| v.and_then(|n| u32::try_from(n).ok());
    let words = |v: Option<String>, what: &str| -> Result<Option<String>, ApiError> {
        match v {
            Some(w)
                if w.bytes()
                    .any(|b| !(b.is_ascii_alphanumeric() || b"-_.+".contains(&b))) =>
            {
                Err(ApiError::bad(format!(
                    "Field '{what}' is not a word QEMU takes: '{w}'"
                )))
            }
            v => Ok(v),
        }
    };
    let priority = match b.process_priority.as_deref() {
        Some("null") => None,
        _ => b.process_priority.clone(),
    };
    Ok(QemuPatch {
        check_images: false,
        name: name(b.name)?,
        console: port(b.console),
        qemu_path: b.qemu_path,
        disks: [
            b.hda_disk_image,
            b.hdb_disk_image,
            b.hdc_disk_image,
            b.hdd_disk_image,
        ],
        ram: int(b.ram.map(|Int(n)| n)),
        adapters: int(b.adapters.map(|Int(n)| n)),
        adapter_type: words(b.adapter_type, "adapter_type")?,
        initrd: b.initrd,
        kernel_image: b.kernel_image,
        kernel_command_line: b.kernel_command_line,
        legacy_networking: b.legacy_networking,
        cpu_throttling: int(b.cpu_throttling.map(|Int(n)| n)),
        process_priority: priority,
        options: b.options,
        more: MorePatch {
            platform: words(b.platform, "platform")?,
            cpus: int(b.cpus.map(|Int(n)| n)),
            boot_priority: words(b.boot_priority, "boot_priority")?,
            mac_address: b.mac_address,
            console_type: b.console_type.map(|OneOf(ConsoleType(t))| t),
            cdrom_image: b.cdrom_image,
            bios_image: b.bios_image,
            disk_interfaces: [
                b.hda_disk_interface,
                b.hdb_disk_interface,
                b.hdc_disk_interface,
                b.hdd_disk_interface,
            ],
            on_close: b.on_close,
            usage: b.usage,
            replicate_network_connection_state: b.replicate_network_connection_state,
        },
    })
}

/// A QEMU node to create: 2.2's defaults, `qemu-system-<platform>` when
/// no `qemu_path` is given, the MAC made from the node id when none is.
pub(super) fn create(raw: &[u8], d: Dialect) -> Result<QemuCreate, ApiError> {
    let mut b = decode_body(raw, d)?;
    let name = decode::required_text("name", b.name.take())?;
    let vm_id = NodeId::uuid(b.node_id.take());
    let p = patch(b)?;
    let console = p.console;
    let mut config = QemuConfig::default();
    p.apply(&mut config);
    if config.qemu_path.is_empty() {
        config.qemu_path = format!("qemu-system-{}", config.more.platform);
    }
    Ok(QemuCreate {
        name,
        vm_id,
        console,
        config,
        mac_from_id: true,
        check_images: true,
    })
}

/// A QEMU node's update.
pub(super) fn update(raw: &[u8], d: Dialect) -> Result<QemuPatch, ApiError> {
    let mut b = decode_body(raw, d)?;
    b.node_id = None;
    Ok(QemuPatch {
        check_images: true,
        ..patch(b)?
    })
}

/// A QEMU node in 2.2's shape (3.0's is the same for these keys).
pub(super) fn json(v: &QemuView) -> Value {
    let (c, m) = (&v.config, &v.config.more);
    let disk = |i: usize| [&c.hda, &c.hdb, &c.hdc, &c.hdd][i].clone();
    let mut o = json!({
        "node_id": v.id.to_string(), "project_id": v.project.to_string(),
        "name": v.name, "usage": m.usage, "status": v.status,
        "qemu_path": c.qemu_path, "platform": m.platform,
        "console": if m.console_type == "none" { Value::Null } else { json!(v.console) },
        "console_type": m.console_type,
        "hda_disk_image": disk(0), "hdb_disk_image": disk(1),
        "hdc_disk_image": disk(2), "hdd_disk_image": disk(3),
        "hda_disk_interface": m.disk_interfaces[0], "hdb_disk_interface": m.disk_interfaces[1],
        "hdc_disk_interface": m.disk_interfaces[2], "hdd_disk_interface": m.disk_interfaces[3],
        "cdrom_image": m.cdrom_image, "bios_image": m.bios_image,
        "boot_priority": m.boot_priority, "ram": c.ram, "cpus": m.cpus,
    });
    let more = json!({
        "adapters": c.adapters, "adapter_type": c.adapter_type,
        "mac_address": m.mac_address,
        "initrd": c.initrd, "kernel_image": c.kernel_image,
        "kernel_command_line": c.kernel_command_line,
        "legacy_networking": c.legacy_networking,
        "replicate_network_connection_state": m.replicate_network_connection_state,
        "tpm": false, "uefi": false, "create_config_disk": false,
        "on_close": m.on_close, "cpu_throttling": c.cpu_throttling,
        "process_priority": c.process_priority, "options": c.options,
        "node_directory": v.directory.to_string_lossy(),
        "command_line": v.command_line,
        "linked_clone": true,
    });
    if let (Some(o), Value::Object(more)) = (o.as_object_mut(), more) {
        o.extend(more);
        // Checksums are not computed: null, as 2.2 has before it knows.
        for k in ["hda", "hdb", "hdc", "hdd"] {
            o.insert(format!("{k}_disk_image_md5sum"), Value::Null);
        }
        for k in ["cdrom_image", "bios_image", "initrd", "kernel_image"] {
            o.insert(format!("{k}_md5sum"), Value::Null);
        }
    }
    o
}
