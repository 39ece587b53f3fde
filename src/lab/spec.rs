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
