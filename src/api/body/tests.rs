//! The `/v1` bodies: what they take, what they refuse and in what words.

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
    let e = CaptureStart::parse(br#"{"capture_file_name": "a", "data_link_type": "DLT_FRELAY"}"#)
        .unwrap_err();
    assert_eq!(e.status(), 409);
}

#[test]
fn device_bodies_as_the_1_3_gui_sends_them() {
    let c = DeviceCreate::parse(br#"{"name": "SW1", "device_type": "ethernet_switch"}"#).unwrap();
    assert_eq!(c.device_type, DeviceType::Switch);
    let e = DeviceCreate::parse(br#"{"name": "FR1", "device_type": "frame_relay_switch"}"#)
        .unwrap_err();
    assert_eq!(e.status(), 409);
    let n = DeviceNio::parse(
        br#"{"nio": {"type": "nio_udp", "lport": 10000, "rhost": "127.0.0.1", "rport": 10001}, "port_settings": {"type": "dot1q", "vlan": 1}}"#,
    )
    .unwrap();
    assert_eq!(n.settings.unwrap().mode, VlanMode::Dot1q);
    let u =
        DeviceUpdate::parse(br#"{"ports": [{"port": 1, "type": "access", "vlan": 20}]}"#).unwrap();
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
        msg(VmCreate::parse(br#"{"name": "a", "console": 70000}"#)).contains("between 1 and 65535")
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
    let n =
        Nio::parse(br#"{"type": "nio_udp", "lport": 10000, "rhost": "127.0.0.1", "rport": 10001}"#)
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

/// The messages for bad bodies, one decoder and one fault each: pinned
/// before the decoders moved to serde (issue 17), which made none of
/// them worse. Two changed, both for the better: a nested field is
/// named by its whole path (`ports[0].type`, was `type`), and a field
/// of the wrong type says what it got (`nio`).
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
            r#"{"type": "nio_udp", "lport": 1, "rhost": "h", "rport": 2}"#,
        ),
        (
            "nio",
            |b| Nio::parse(b).map(drop),
            r#"{"type": "nio_udp", "lport": 1, "rhost": "::1", "rport": 99999}"#,
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
    let differ: Vec<String> = got
        .iter()
        .zip(&want)
        .filter(|(g, w)| g != *w)
        .map(|(g, w)| format!("got:  {g}\nwant: {w}"))
        .collect();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
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
nio {"type": "nio_udp", "lport": 1, "rhost": "h", "rport": 2} => 400 Field 'rhost' must be an IP address, not 'h'
nio {"type": "nio_udp", "lport": 1, "rhost": "::1", "rport": 99999} => 400 Field 'rport' must be an integer between 1 and 65535, not 99999
nio {"type": "nio_tap", "tap_device": "a-very-long-tap-name"} => 400 Field 'tap_device' must be an interface name of at most 15 bytes without '/', not 'a-very-long-tap-name'
device {"name": "s"} => 400 Field 'device_type' is required
device {"name": "s", "device_type": "router"} => 409 Unknown device type: router (nanolab serves ethernet_switch and ethernet_hub)
device update {"ports": [{"port": 1, "type": "x", "vlan": 1}]} => 400 Field 'ports[0].type' must be access, dot1q or qinq, not 'x'
device nio {"nio": 1} => 400 Field 'nio' must be an object, not a number
capture {"capture_file_name": "../x"} => 400 Field 'capture_file_name' must be a file name inside the project's captures directory, not '../x'
capture {"capture_file_name": "x", "data_link_type": "DLT_RAW"} => 409 Data link type 'DLT_RAW' is not supported: nanolab captures Ethernet (DLT_EN10MB)
empty {"a": 1} => 400 Unknown property 'a' (this request takes no properties: send {} or nothing)"#;
