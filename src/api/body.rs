//! Request bodies: JSON → typed structs, validated once (no I/O).
//!
//! Every body is parsed as JSON whatever its Content-Type says; an empty body
//! is `{}`. Unknown properties are refused, and every message names the field
//! and the rule it broke.

use super::types::{DeviceType, Nio, NioEthernet, NioTap, NioUdp, PortSettings, VlanMode};
use crate::error::ApiError;
pub use crate::lab::spec::{
    CaptureStart, DeviceCreate, DeviceUpdate, ProjectCreate, ProjectUpdate, VmCreate, VmUpdate,
};
use serde_json::{Map, Value};
use uuid::Uuid;

/// A JSON object body.
pub type Object = Map<String, Value>;

/// Parse a body into a JSON object.
pub fn object(body: &[u8]) -> Result<Object, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Object::new());
    }
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::bad("Request body is not valid UTF-8"))?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(other) => Err(ApiError::bad(format!(
            "Request body must be a JSON object, not {}",
            kind(&other)
        ))),
        Err(_) if looks_like_form(text) => Err(ApiError::bad(format!(
            "Request body is form data ('{}'), not JSON: send a JSON object, e.g. curl -d '{{\"name\": \"PC1\"}}'",
            text.chars().take(40).collect::<String>()
        ))),
        Err(e) => Err(ApiError::bad(format!(
            "Request body is not valid JSON ({e}): send a JSON object, e.g. {{\"name\": \"PC1\"}}"
        ))),
    }
}

/// `a=b&c=d`, as `curl -d name=x` or an HTML form sends.
fn looks_like_form(text: &str) -> bool {
    let t = text.trim();
    !t.starts_with(['{', '[', '"']) && t.split('&').all(|kv| kv.contains('='))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Refuse properties not in `allowed`.
pub fn only(o: &Object, allowed: &[&str]) -> Result<(), ApiError> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) if allowed.is_empty() => Err(ApiError::bad(format!(
            "Unknown property '{k}' (this request takes no properties: send {{}} or nothing)"
        ))),
        Some(k) => Err(ApiError::bad(format!(
            "Unknown property '{k}' (additional properties are not allowed; expected {})",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

/// Optional string; null counts as absent.
pub fn opt_str(o: &Object, field: &str) -> Result<Option<String>, ApiError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(ApiError::bad(format!(
            "Field '{field}' must be a string, not {}",
            kind(v)
        ))),
    }
}

/// Required non-empty string.
pub fn req_str(o: &Object, field: &str) -> Result<String, ApiError> {
    match opt_str(o, field)? {
        Some(s) if !s.is_empty() => Ok(s),
        Some(_) => Err(ApiError::bad(format!("Field '{field}' must not be empty"))),
        None => Err(ApiError::bad(format!("Field '{field}' is required"))),
    }
}

/// Optional boolean.
pub fn opt_bool(o: &Object, field: &str) -> Result<Option<bool>, ApiError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(ApiError::bad(format!(
            "Field '{field}' must be a boolean, not {}",
            kind(v)
        ))),
    }
}

/// Optional integer in `min..=max`.
pub fn opt_int(o: &Object, field: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) if (min..=max).contains(&i) => Ok(Some(i)),
            _ => Err(ApiError::bad(format!(
                "Field '{field}' must be an integer between {min} and {max}, not {n}"
            ))),
        },
        Some(v) => Err(ApiError::bad(format!(
            "Field '{field}' must be an integer, not {}",
            kind(v)
        ))),
    }
}

/// Required port number 1..=65535.
pub fn req_port(o: &Object, field: &str) -> Result<u16, ApiError> {
    opt_port(o, field)?.ok_or_else(|| ApiError::bad(format!("Field '{field}' is required")))
}

/// Optional port number 1..=65535.
pub fn opt_port(o: &Object, field: &str) -> Result<Option<u16>, ApiError> {
    Ok(opt_int(o, field, 1, 65535)?.map(|p| p as u16))
}

/// Optional UUID.
pub fn opt_uuid(o: &Object, field: &str) -> Result<Option<Uuid>, ApiError> {
    opt_str(o, field)?
        .map(|s| parse_uuid(field, &s))
        .transpose()
}

/// Parse an id from a path or body.
pub fn parse_uuid(field: &str, s: &str) -> Result<Uuid, ApiError> {
    // Only the hyphenated 36-character form, as GNS3's schema required.
    match Uuid::try_parse(s) {
        Ok(id) if s.len() == 36 => Ok(id),
        _ => Err(ApiError::bad(format!(
            "'{s}' is not a valid UUID for {field}"
        ))),
    }
}

/// `POST /v1/version`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionCheck {
    /// The client's version.
    pub version: String,
}

impl VersionCheck {
    /// Decode.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let o = object(body)?;
        // 1.3.13's schema also takes an optional `local` flag, and ignores it.
        only(&o, &["version", "local"])?;
        opt_bool(&o, "local")?;
        Ok(VersionCheck {
            version: req_str(&o, "version")?,
        })
    }
}

impl ProjectCreate {
    /// Decode.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let o = object(body)?;
        only(&o, &["name", "project_id", "path", "temporary"])?;
        Ok(ProjectCreate {
            name: opt_str(&o, "name")?,
            project_id: opt_uuid(&o, "project_id")?,
            path: opt_str(&o, "path")?,
            temporary: opt_bool(&o, "temporary")?,
            variables: None,
        })
    }
}

/// GNS3 2.2's `variables`: `null` or an array of `{"name", "value"?}`,
/// kept as JSON text.
pub fn variables(o: &Object) -> Result<Option<String>, ApiError> {
    match o.get("variables") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => {
            for i in items {
                let ok = i.as_object().is_some_and(|v| {
                    v.get("name").is_some_and(Value::is_string)
                        && v.keys().all(|k| k == "name" || k == "value")
                });
                if !ok {
                    return Err(ApiError::bad(
                        "Each entry of 'variables' must be an object {name, value}",
                    ));
                }
            }
            Ok(Some(Value::Array(items.clone()).to_string()))
        }
        Some(_) => Err(ApiError::bad("Field 'variables' must be an array or null")),
    }
}

impl ProjectUpdate {
    /// Decode.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let o = object(body)?;
        only(&o, &["name", "path", "temporary"])?;
        Ok(ProjectUpdate {
            name: opt_str(&o, "name")?,
            path: opt_str(&o, "path")?,
            temporary: opt_bool(&o, "temporary")?,
            variables: None,
        })
    }
}

/// A body that must be empty or `{}`.
pub fn empty(body: &[u8]) -> Result<(), ApiError> {
    only(&object(body)?, &[])
}

impl VmCreate {
    /// Decode.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let o = object(body)?;
        only(
            &o,
            &[
                "name",
                "vm_id",
                "console",
                "startup_script",
                "startup_script_path",
            ],
        )?;
        // GNS3 1.2 topologies numbered their VMs; 1.3.13 accepts an integer
        // and gives the VM a new UUID (0 means none, as in 1.3.13).
        let legacy_id = match o.get("vm_id") {
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Some(i).filter(|i| *i != 0),
                None => {
                    return Err(ApiError::bad(format!(
                        "Field 'vm_id' must be a UUID or an integer, not {n}"
                    )));
                }
            },
            _ => None,
        };
        Ok(VmCreate {
            name: req_str(&o, "name")?,
            vm_id: if legacy_id.is_some() || matches!(o.get("vm_id"), Some(Value::Number(_))) {
                None
            } else {
                opt_uuid(&o, "vm_id")?
            },
            legacy_id,
            console: opt_port(&o, "console")?,
            startup_script: opt_str(&o, "startup_script")?,
            console_pick: false,
            console_telnet: true,
        })
    }
}

impl VmUpdate {
    /// Decode.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let o = object(body)?;
        only(
            &o,
            &["name", "console", "startup_script", "startup_script_path"],
        )?;
        let name = opt_str(&o, "name")?;
        if name.as_deref() == Some("") {
            return Err(ApiError::bad("Field 'name' must not be empty"));
        }
        Ok(VmUpdate {
            name,
            console: opt_port(&o, "console")?,
            startup_script: opt_str(&o, "startup_script")?,
            console_pick: false,
            console_telnet: None,
        })
    }
}

/// A required interface name: at most [`MAX_IFNAME`](crate::limits::MAX_IFNAME)
/// bytes, no `/`.
fn ifname(o: &Object, field: &str) -> Result<String, ApiError> {
    let name = req_str(o, field)?;
    if name.len() > crate::limits::MAX_IFNAME || name.contains(['/', '\0']) {
        return Err(ApiError::bad(format!(
            "Field '{field}' must be an interface name of at most {} bytes without '/', not '{name}'",
            crate::limits::MAX_IFNAME
        )));
    }
    Ok(name)
}

/// `POST .../nio`: the NIO types a VPCS port takes.
impl Nio {
    /// Decode a VPCS NIO; the accepted properties depend on `type`. A VPCS
    /// takes a tunnel or a TAP device, as in 1.3.13.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        match Self::from_object(&object(body)?)? {
            Nio::Ethernet(e) => Err(ApiError::conflict(format!(
                "NIO type '{}' is not supported by VPCS (nio_udp and nio_tap are)",
                e.kind
            ))),
            nio => Ok(nio),
        }
    }

    /// Decode from a JSON object (a device NIO nests it under `nio`).
    pub fn from_object(o: &Object) -> Result<Self, ApiError> {
        let o = o.clone();
        match req_str(&o, "type")?.as_str() {
            "nio_udp" => {
                only(&o, &["type", "lport", "rhost", "rport"])?;
                let rhost = req_str(&o, "rhost")?;
                let raddr = match rhost.as_str() {
                    "localhost" => std::net::IpAddr::from([127, 0, 0, 1]),
                    s => s.parse().map_err(|_| {
                        ApiError::bad(format!("Field 'rhost' must be an IP address, not '{s}'"))
                    })?,
                };
                Ok(Nio::Udp(NioUdp {
                    lport: req_port(&o, "lport")?,
                    rhost,
                    raddr,
                    rport: req_port(&o, "rport")?,
                }))
            }
            "nio_tap" => {
                only(&o, &["type", "tap_device"])?;
                let device = ifname(&o, "tap_device")?;
                Ok(Nio::Tap(NioTap { device }))
            }
            kind @ ("nio_generic_ethernet" | "nio_linux_ethernet") => {
                only(&o, &["type", "ethernet_device"])?;
                let device = ifname(&o, "ethernet_device")?;
                Ok(Nio::Ethernet(NioEthernet {
                    kind: if kind == "nio_linux_ethernet" {
                        "nio_linux_ethernet"
                    } else {
                        "nio_generic_ethernet"
                    },
                    device,
                }))
            }
            ty => Err(ApiError::conflict(format!(
                "NIO type '{ty}' is not supported (nio_udp, nio_tap, and on switch and hub ports nio_generic_ethernet and nio_linux_ethernet are)"
            ))),
        }
    }
}

impl DeviceCreate {
    /// Decode, as GNS3 1.3.13's schema: an integer id (a 1.2 topology)
    /// gets a new UUID.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let o = object(body)?;
        only(&o, &["name", "device_type", "device_id"])?;
        let device_type = match req_str(&o, "device_type")?.as_str() {
            "ethernet_switch" => DeviceType::Switch,
            "ethernet_hub" => DeviceType::Hub,
            other => {
                return Err(ApiError::conflict(format!(
                    "Unknown device type: {other} (nanolab serves ethernet_switch and ethernet_hub)"
                )));
            }
        };
        let device_id = match o.get("device_id") {
            Some(Value::Number(_)) => None,
            _ => opt_uuid(&o, "device_id")?,
        };
        Ok(DeviceCreate {
            name: req_str(&o, "name")?,
            device_type,
            device_id,
            mapping: None,
        })
    }
}

/// A switch port's `type`: access, dot1q or qinq.
pub fn vlan_mode(o: &Object) -> Result<VlanMode, ApiError> {
    match req_str(o, "type")?.as_str() {
        "access" => Ok(VlanMode::Access),
        "dot1q" => Ok(VlanMode::Dot1q),
        "qinq" => Ok(VlanMode::Qinq),
        other => Err(ApiError::bad(format!(
            "Field 'type' must be access, dot1q or qinq, not '{other}'"
        ))),
    }
}

fn port_settings(o: &Object, with_port: bool) -> Result<PortSettings, ApiError> {
    let mut keys = vec!["type", "vlan"];
    if with_port {
        keys.push("port");
    }
    only(o, &keys)?;
    let mode = vlan_mode(o)?;
    let vlan =
        opt_int(o, "vlan", 1, 4094)?.ok_or_else(|| ApiError::bad("Field 'vlan' is required"))?;
    let port = if with_port {
        opt_int(o, "port", 0, u32::MAX as i64)?
            .ok_or_else(|| ApiError::bad("Field 'port' is required"))? as u32
    } else {
        0
    };
    Ok(PortSettings {
        port,
        mode,
        vlan: vlan as u16,
    })
}

impl DeviceUpdate {
    /// Decode.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let o = object(body)?;
        only(&o, &["name", "ports"])?;
        let ports = match o.get("ports") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|i| match i {
                        Value::Object(p) => port_settings(p, true),
                        _ => Err(ApiError::bad(
                            "Each entry of 'ports' must be an object {port, type, vlan}",
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(_) => return Err(ApiError::bad("Field 'ports' must be an array")),
        };
        Ok(DeviceUpdate {
            name: opt_str(&o, "name")?,
            ports,
            mapping: None,
        })
    }
}

/// `POST .../dynamips/devices/{device_id}/ports/{port_number}/nio`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNio {
    /// The NIO.
    pub nio: Nio,
    /// A switch port's settings.
    pub settings: Option<PortSettings>,
}

impl DeviceNio {
    /// Decode `{"nio": {...}, "port_settings": {"type", "vlan"}}`.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let o = object(body)?;
        only(&o, &["nio", "port_settings", "mappings"])?;
        let nio = match o.get("nio") {
            Some(Value::Object(n)) => Nio::from_object(n)?,
            _ => {
                return Err(ApiError::bad(
                    "Field 'nio' is required and must be an object",
                ));
            }
        };
        let settings = match o.get("port_settings") {
            None | Some(Value::Null) => None,
            Some(Value::Object(p)) => Some(port_settings(p, false)?),
            Some(_) => return Err(ApiError::bad("Field 'port_settings' must be an object")),
        };
        Ok(DeviceNio { nio, settings })
    }
}

impl CaptureStart {
    /// Decode; the name must stay inside the captures directory, and the
    /// link type, when given, must be Ethernet.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let o = object(body)?;
        only(&o, &["capture_file_name", "data_link_type"])?;
        let name = req_str(&o, "capture_file_name")?;
        if name.contains('/')
            || name.contains('\\')
            || name == "."
            || name == ".."
            || name.contains('\0')
        {
            return Err(ApiError::bad(format!(
                "Field 'capture_file_name' must be a file name inside the project's captures directory, not '{name}'"
            )));
        }
        if let Some(dlt) = opt_str(&o, "data_link_type")?
            && !matches!(
                dlt.to_ascii_uppercase().as_str(),
                "DLT_EN10MB" | "EN10MB" | "ETHERNET"
            )
        {
            return Err(ApiError::conflict(format!(
                "Data link type '{dlt}' is not supported: nanolab captures Ethernet (DLT_EN10MB)"
            )));
        }
        Ok(CaptureStart {
            capture_file_name: name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_names_stay_in_the_captures_directory() {
        let ok = CaptureStart::parse(
            br#"{"capture_file_name": "PC1_0.pcap", "data_link_type": "DLT_EN10MB"}"#,
        )
        .unwrap();
        assert_eq!(ok.capture_file_name, "PC1_0.pcap");
        for bad in [
            r#"{"capture_file_name": "../x.pcap"}"#,
            r#"{"capture_file_name": ".."}"#,
            r#"{"capture_file_name": "/etc/passwd"}"#,
        ] {
            assert!(
                msg(CaptureStart::parse(bad.as_bytes())).contains("captures directory"),
                "{bad}"
            );
        }
        let e =
            CaptureStart::parse(br#"{"capture_file_name": "a", "data_link_type": "DLT_FRELAY"}"#)
                .unwrap_err();
        assert_eq!(e.status(), 409);
    }

    #[test]
    fn device_bodies_as_the_1_3_gui_sends_them() {
        let c =
            DeviceCreate::parse(br#"{"name": "SW1", "device_type": "ethernet_switch"}"#).unwrap();
        assert_eq!(c.device_type, DeviceType::Switch);
        let e = DeviceCreate::parse(br#"{"name": "FR1", "device_type": "frame_relay_switch"}"#)
            .unwrap_err();
        assert_eq!(e.status(), 409);
        let n = DeviceNio::parse(
            br#"{"nio": {"type": "nio_udp", "lport": 10000, "rhost": "127.0.0.1", "rport": 10001}, "port_settings": {"type": "dot1q", "vlan": 1}}"#,
        )
        .unwrap();
        assert_eq!(n.settings.unwrap().mode, VlanMode::Dot1q);
        let u = DeviceUpdate::parse(br#"{"ports": [{"port": 1, "type": "access", "vlan": 20}]}"#)
            .unwrap();
        assert_eq!(
            u.ports.unwrap()[0],
            PortSettings {
                port: 1,
                mode: VlanMode::Access,
                vlan: 20
            }
        );
        assert!(
            msg(DeviceUpdate::parse(
                br#"{"ports": [{"port": 1, "type": "trunk", "vlan": 2}]}"#
            ))
            .contains("access, dot1q or qinq")
        );
        assert!(
            msg(DeviceNio::parse(
                br#"{"port_settings": {"type": "access", "vlan": 1}}"#
            ))
            .contains("'nio'")
        );
    }

    fn msg<T: std::fmt::Debug>(r: Result<T, ApiError>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.status(), 400, "{e}");
        e.to_string()
    }

    #[test]
    fn empty_body_is_an_empty_object() {
        assert_eq!(ProjectCreate::parse(b"").unwrap(), ProjectCreate::default());
        assert!(empty(b" {} ").is_ok());
    }

    #[test]
    fn bad_bodies_name_what_is_wrong() {
        assert!(msg(ProjectCreate::parse(b"{")).contains("not valid JSON"));
        let form = msg(ProjectCreate::parse(b"name=test&temporary=true"));
        assert!(
            form.contains("form data") && form.contains("curl -d '{"),
            "{form}"
        );
        assert!(msg(ProjectCreate::parse(b"[1]")).contains("JSON object"));
        assert!(msg(ProjectCreate::parse(b"\xff")).contains("UTF-8"));
        assert!(msg(ProjectCreate::parse(br#"{"nope": 1}"#)).contains("'nope'"));
        assert!(msg(ProjectCreate::parse(br#"{"name": 1}"#)).contains("'name' must be a string"));
        assert!(msg(ProjectCreate::parse(br#"{"project_id": "x"}"#)).contains("not a valid UUID"));
        assert!(msg(ProjectCreate::parse(br#"{"temporary": "yes"}"#)).contains("boolean"));
        assert!(msg(VmCreate::parse(b"{}")).contains("'name' is required"));
        assert!(
            msg(VmCreate::parse(br#"{"name": "a", "console": 70000}"#))
                .contains("between 1 and 65535")
        );
        assert!(msg(VmCreate::parse(br#"{"name": "a", "console": "x"}"#)).contains("integer"));
        assert!(msg(empty(br#"{"a": 1}"#)).contains("'a'"));
    }

    #[test]
    fn deep_nesting_is_a_clean_error() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(msg(ProjectCreate::parse(deep.as_bytes())).contains("not valid JSON"));
    }

    #[test]
    fn nio_is_validated_per_type() {
        let n = Nio::parse(
            br#"{"type": "nio_udp", "lport": 10000, "rhost": "127.0.0.1", "rport": 10001}"#,
        )
        .unwrap();
        let Nio::Udp(u) = n else { panic!() };
        assert_eq!((u.lport, u.rport), (10000, 10001));
        let t = Nio::parse(br#"{"type": "nio_tap", "tap_device": "tap0"}"#).unwrap();
        assert_eq!(
            t,
            Nio::Tap(NioTap {
                device: "tap0".into()
            })
        );
        assert!(
            msg(Nio::parse(
                br#"{"type": "nio_tap", "tap_device": "x/../y"}"#
            ))
            .contains("tap_device")
        );
        assert!(msg(Nio::parse(br#"{"type": "nio_tap"}"#)).contains("tap_device"));
        let e = Nio::parse(br#"{"type": "nio_vde", "control_file": "/x"}"#).unwrap_err();
        assert_eq!(e.status(), 409);
        assert!(
            msg(Nio::parse(
                br#"{"type": "nio_udp", "lport": 1, "rhost": "h", "rport": 2}"#
            ))
            .contains("rhost")
        );
        assert!(
            msg(Nio::parse(
                br#"{"type": "nio_udp", "lport": 1, "rhost": "::1"}"#
            ))
            .contains("rport")
        );
    }

    #[test]
    fn uuid_must_be_hyphenated() {
        assert!(parse_uuid("x", "42f9feee-3217-4104-981e-85d5f0a806ec").is_ok());
        assert!(parse_uuid("x", "42f9feee32174104981e85d5f0a806ec").is_err());
    }

    /// Today's messages for bad bodies, one decoder and one fault each:
    /// pinned before the decoders move to serde (issue 17), which may not
    /// make any of them worse.
    #[test]
    fn pinned_error_messages() {
        type Parse = fn(&[u8]) -> Result<(), ApiError>;
        let cases: &[(&str, Parse, &str)] = &[
            ("version", |b| VersionCheck::parse(b).map(drop), "{}"),
            (
                "version",
                |b| VersionCheck::parse(b).map(drop),
                r#"{"version": 1}"#,
            ),
            ("project", |b| ProjectCreate::parse(b).map(drop), "not json"),
            ("project", |b| ProjectCreate::parse(b).map(drop), "[1]"),
            (
                "project",
                |b| ProjectCreate::parse(b).map(drop),
                r#"{"name": 5}"#,
            ),
            (
                "project",
                |b| ProjectCreate::parse(b).map(drop),
                r#"{"project_id": "x"}"#,
            ),
            (
                "project",
                |b| ProjectCreate::parse(b).map(drop),
                r#"{"bogus": 1}"#,
            ),
            (
                "project",
                |b| ProjectCreate::parse(b).map(drop),
                r#"{"temporary": "yes"}"#,
            ),
            (
                "project update",
                |b| ProjectUpdate::parse(b).map(drop),
                r#"{"path": 1}"#,
            ),
            ("vm", |b| VmCreate::parse(b).map(drop), "{}"),
            (
                "vm",
                |b| VmCreate::parse(b).map(drop),
                r#"{"name": "a", "console": 70000}"#,
            ),
            (
                "vm",
                |b| VmCreate::parse(b).map(drop),
                r#"{"name": "a", "vm_id": 3}"#,
            ),
            (
                "vm update",
                |b| VmUpdate::parse(b).map(drop),
                r#"{"startup_script": 1}"#,
            ),
            ("nio", |b| Nio::parse(b).map(drop), r#"{"type": "nio_udp"}"#),
            ("nio", |b| Nio::parse(b).map(drop), r#"{"type": "nio_x"}"#),
            (
                "nio",
                |b| Nio::parse(b).map(drop),
                r#"{"type": "nio_udp", "lport": 1, "rhost": "h", "rport": 99999}"#,
            ),
            (
                "nio",
                |b| Nio::parse(b).map(drop),
                r#"{"type": "nio_tap", "tap_device": "a-very-long-tap-name"}"#,
            ),
            (
                "device",
                |b| DeviceCreate::parse(b).map(drop),
                r#"{"name": "s"}"#,
            ),
            (
                "device",
                |b| DeviceCreate::parse(b).map(drop),
                r#"{"name": "s", "device_type": "router"}"#,
            ),
            (
                "device update",
                |b| DeviceUpdate::parse(b).map(drop),
                r#"{"ports": [{"port": 1, "type": "x", "vlan": 1}]}"#,
            ),
            (
                "device nio",
                |b| DeviceNio::parse(b).map(drop),
                r#"{"nio": 1}"#,
            ),
            (
                "capture",
                |b| CaptureStart::parse(b).map(drop),
                r#"{"capture_file_name": "../x"}"#,
            ),
            (
                "capture",
                |b| CaptureStart::parse(b).map(drop),
                r#"{"capture_file_name": "x", "data_link_type": "DLT_RAW"}"#,
            ),
            ("empty", |b| empty(b), r#"{"a": 1}"#),
        ];
        let got: Vec<String> = cases
            .iter()
            .map(|(what, parse, body)| match parse(body.as_bytes()) {
                Ok(()) => format!("{what} {body} => accepted"),
                Err(e) => format!("{what} {body} => {} {e}", e.status()),
            })
            .collect();
        let want = PINNED.lines().collect::<Vec<_>>();
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w);
        }
        assert_eq!(got.len(), want.len(), "{}", got.join("\n"));
    }

    const PINNED: &str = r#"version {} => 400 Field 'version' is required
version {"version": 1} => 400 Field 'version' must be a string, not a number
project not json => 400 Request body is not valid JSON (expected ident at line 1 column 2): send a JSON object, e.g. {"name": "PC1"}
project [1] => 400 Request body must be a JSON object, not an array
project {"name": 5} => 400 Field 'name' must be a string, not a number
project {"project_id": "x"} => 400 'x' is not a valid UUID for project_id
project {"bogus": 1} => 400 Unknown property 'bogus' (additional properties are not allowed; expected name, project_id, path, temporary)
project {"temporary": "yes"} => 400 Field 'temporary' must be a boolean, not a string
project update {"path": 1} => 400 Field 'path' must be a string, not a number
vm {} => 400 Field 'name' is required
vm {"name": "a", "console": 70000} => 400 Field 'console' must be an integer between 1 and 65535, not 70000
vm {"name": "a", "vm_id": 3} => accepted
vm update {"startup_script": 1} => 400 Field 'startup_script' must be a string, not a number
nio {"type": "nio_udp"} => 400 Field 'rhost' is required
nio {"type": "nio_x"} => 409 NIO type 'nio_x' is not supported (nio_udp, nio_tap, and on switch and hub ports nio_generic_ethernet and nio_linux_ethernet are)
nio {"type": "nio_udp", "lport": 1, "rhost": "h", "rport": 99999} => 400 Field 'rhost' must be an IP address, not 'h'
nio {"type": "nio_tap", "tap_device": "a-very-long-tap-name"} => 400 Field 'tap_device' must be an interface name of at most 15 bytes without '/', not 'a-very-long-tap-name'
device {"name": "s"} => 400 Field 'device_type' is required
device {"name": "s", "device_type": "router"} => 409 Unknown device type: router (nanolab serves ethernet_switch and ethernet_hub)
device update {"ports": [{"port": 1, "type": "x", "vlan": 1}]} => 400 Field 'type' must be access, dot1q or qinq, not 'x'
device nio {"nio": 1} => 400 Field 'nio' is required and must be an object
capture {"capture_file_name": "../x"} => 400 Field 'capture_file_name' must be a file name inside the project's captures directory, not '../x'
capture {"capture_file_name": "x", "data_link_type": "DLT_RAW"} => 409 Data link type 'DLT_RAW' is not supported: nanolab captures Ethernet (DLT_EN10MB)
empty {"a": 1} => 400 Unknown property 'a' (this request takes no properties: send {} or nothing)"#;
}
