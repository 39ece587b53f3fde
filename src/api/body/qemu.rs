//! `/v1` QEMU VM bodies: GNS3 1.3.13's 19 keys, unknown keys refused.

use super::super::decode::{self, Int, NodeId, Port, name, port, required_text};
use crate::error::ApiError;
use crate::lab::spec::{QemuConfig, QemuCreate, QemuPatch};
use serde::Deserialize;

/// 1.3.13's process priorities (`"null"` is accepted and means the default).
const PRIORITIES: [&str; 7] = [
    "realtime",
    "very high",
    "high",
    "normal",
    "low",
    "very low",
    "null",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct QemuBody {
    name: Option<String>,
    vm_id: Option<NodeId>,
    console: Option<Port>,
    qemu_path: Option<String>,
    hda_disk_image: Option<String>,
    hdb_disk_image: Option<String>,
    hdc_disk_image: Option<String>,
    hdd_disk_image: Option<String>,
    ram: Option<Int<1, 1_048_576>>,
    adapters: Option<Int<0, 32>>,
    adapter_type: Option<String>,
    initrd: Option<String>,
    kernel_image: Option<String>,
    kernel_command_line: Option<String>,
    legacy_networking: Option<bool>,
    cpu_throttling: Option<Int<0, 800>>,
    process_priority: Option<String>,
    options: Option<String>,
}

/// The adapter model must be a word QEMU's `-device` takes.
fn adapter_type(v: Option<String>) -> Result<Option<String>, ApiError> {
    match v {
        Some(t)
            if t.is_empty()
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Err(ApiError::bad(format!(
                "Field 'adapter_type' must be a QEMU network device model (e1000, virtio-net-pci...), not '{t}'"
            )))
        }
        v => Ok(v),
    }
}

fn priority(v: Option<String>) -> Result<Option<String>, ApiError> {
    match v {
        Some(p) if !PRIORITIES.contains(&p.as_str()) => Err(ApiError::bad(format!(
            "Field 'process_priority' must be one of realtime, very high, high, normal, low, very low, not '{p}'"
        ))),
        Some(p) if p == "null" => Ok(None),
        v => Ok(v),
    }
}

fn patch(b: QemuBody) -> Result<QemuPatch, ApiError> {
    let int = |v: Option<i64>| v.and_then(|n| u32::try_from(n).ok());
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
        adapter_type: adapter_type(b.adapter_type)?,
        initrd: b.initrd,
        kernel_image: b.kernel_image,
        kernel_command_line: b.kernel_command_line,
        legacy_networking: b.legacy_networking,
        cpu_throttling: int(b.cpu_throttling.map(|Int(n)| n)),
        process_priority: priority(b.process_priority)?,
        options: b.options,
        more: Default::default(),
    })
}

/// `POST .../qemu/vms`: `name` and `qemu_path` required, 1.3.13's
/// defaults for the rest.
pub fn create(raw: &[u8]) -> Result<QemuCreate, ApiError> {
    let mut b: QemuBody = decode::decode(raw)?;
    let name = required_text("name", b.name.take())?;
    let qemu_path = required_text("qemu_path", b.qemu_path.take())?;
    let vm_id = NodeId::uuid(b.vm_id.take());
    let mut config = QemuConfig {
        qemu_path,
        ..QemuConfig::default()
    };
    let p = patch(b)?;
    let console = p.console;
    p.apply(&mut config);
    Ok(QemuCreate {
        name,
        vm_id,
        console,
        config,
        mac_from_id: false,
        check_images: false,
    })
}

/// `PUT .../qemu/vms/{vm_id}`: what is given changes.
pub fn update(raw: &[u8]) -> Result<QemuPatch, ApiError> {
    let mut b: QemuBody = decode::decode(raw)?;
    if b.vm_id.take().is_some() {
        return Err(ApiError::bad("Field 'vm_id' cannot be changed"));
    }
    patch(b)
}
