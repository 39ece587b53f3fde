//! Container nodes on `/v2/compute` and `/v3/compute`: GNS3 2.2's body
//! (strict on `/v2`, lenient on `/v3`) and the node in 3.0's shape, which
//! is 2.2's with `aux_type`, `memory`, `cpus` and `custom_adapters` added.

use super::Dialect;
use crate::api::decode::{self, Int, NodeId, OneOf, Port, Word, name, port};
use crate::error::ApiError;
use crate::lab::answer::DockerView;
use crate::lab::spec::{DockerConfig, DockerCreate, DockerPatch};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

type Unused = Option<IgnoredAny>;

/// A console type: `telnet` and `none` are served; the graphical ones are
/// named so that the refusal can say so.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ConsoleType(String);

impl Word for ConsoleType {
    const ALLOWED: &'static str = "telnet, vnc, http, https or none";
    fn parse(s: &str) -> Option<Self> {
        ["telnet", "vnc", "http", "https", "none"]
            .contains(&s)
            .then(|| ConsoleType(s.to_string()))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
#[allow(dead_code)]
struct DockerBody {
    name: Option<String>,
    node_id: Option<NodeId>,
    image: Option<String>,
    usage: Option<String>,
    console: Option<Port>,
    console_type: Option<OneOf<ConsoleType>>,
    console_resolution: Option<String>,
    console_http_port: Option<Port>,
    console_http_path: Option<String>,
    aux: Option<Port>,
    aux_type: Option<String>,
    start_command: Option<String>,
    adapters: Option<Int<0, 99>>,
    mac_address: Option<String>,
    environment: Option<String>,
    extra_hosts: Option<String>,
    extra_volumes: Option<Vec<String>>,
    memory: Option<Int<0, 1_048_576>>,
    cpus: Option<f64>,
    custom_adapters: Unused,
    // Read-only keys a controller echoes back on update.
    container_id: Unused,
    node_directory: Unused,
    status: Unused,
    project_id: Unused,
}

fn decode_body(raw: &[u8], d: Dialect) -> Result<DockerBody, ApiError> {
    match d {
        Dialect::V2 => decode::decode(raw),
        Dialect::V3 => decode::decode_lenient(raw),
    }
}

/// Text that may be null (the controllers send `null` for "none").
fn text(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string())
}

fn patch(b: DockerBody) -> Result<DockerPatch, ApiError> {
    if let Some(OneOf(ConsoleType(t))) = &b.console_type
        && t != "telnet"
        && t != "none"
    {
        return Err(ApiError::conflict(format!(
            "Console type {t} is not supported yet by nanolab for containers (telnet and none are)"
        )));
    }
    if let Some(t) = b
        .aux_type
        .as_deref()
        .filter(|t| !["none", "telnet"].contains(t))
    {
        return Err(ApiError::bad(format!(
            "Field 'aux_type' must be telnet or none, not '{t}'"
        )));
    }
    super::bodies::check_mac(b.mac_address.as_deref(), "02:42:12:34:56:00")?;
    for v in b.extra_volumes.iter().flatten() {
        let ok =
            v.starts_with('/') && !v.split('/').any(|p| p == "..") && !v.contains([':', ',', '\0']);
        if !ok {
            return Err(ApiError::bad(format!(
                "Field 'extra_volumes': '{v}' is not an absolute path in the container"
            )));
        }
    }
    // A volume inside another would be a path the container can change
    // (plant a link) under a bind the engine makes at the next start.
    let volumes = b.extra_volumes.iter().flatten();
    for (i, v) in volumes.clone().enumerate() {
        let inside = |w: &String| {
            let (v, w) = (v.trim_end_matches('/'), w.trim_end_matches('/'));
            v == w || v.starts_with(&format!("{w}/")) || w.starts_with(&format!("{v}/"))
        };
        if volumes.clone().skip(i + 1).any(inside) {
            return Err(ApiError::bad(format!(
                "Field 'extra_volumes': '{v}' overlaps another volume"
            )));
        }
    }
    let millicpus = match b.cpus {
        Some(c) if !(0.0..=1024.0).contains(&c) => {
            return Err(ApiError::bad(format!(
                "Field 'cpus' must be between 0 and 1024, not {c}"
            )));
        }
        Some(c) => Some((c * 1000.0).round() as u64),
        None => None,
    };
    Ok(DockerPatch {
        name: name(b.name)?,
        console: port(b.console),
        adapters: b.adapters.and_then(|Int(n)| u32::try_from(n).ok()),
        mac_address: b.mac_address,
        console_type: b.console_type.map(|OneOf(ConsoleType(t))| t),
        aux_type: b.aux_type,
        start_command: text(b.start_command),
        environment: b.environment,
        extra_hosts: b.extra_hosts,
        extra_volumes: b.extra_volumes,
        usage: b.usage,
        console_resolution: b.console_resolution,
        console_http_port: port(b.console_http_port),
        console_http_path: b.console_http_path,
        memory: b.memory.and_then(|Int(n)| u64::try_from(n).ok()),
        millicpus,
    })
}

/// An image name the engine takes: `[host[:port]/]path[:tag][@digest]`,
/// each path component starting with a letter or digit (so no `.`, `..`
/// or empty one reaches the engine's URL), `:latest` added when untagged
/// (as GNS3 does).
fn image(raw: String) -> Result<String, ApiError> {
    let bad = || {
        ApiError::bad(format!(
            "Field 'image' must name an image like alpine:3.20 or registry:5000/frr:8.4, not '{raw}'"
        ))
    };
    let (named, digest) = match raw.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (raw.as_str(), None),
    };
    if let Some(d) = digest {
        let ok = d.split_once(':').is_some_and(|(algo, hex)| {
            !algo.is_empty()
                && algo.bytes().all(|b| b.is_ascii_alphanumeric())
                && !hex.is_empty()
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
        });
        if !ok {
            return Err(bad());
        }
    }
    let last_slash = named.rfind('/').map_or(0, |i| i + 1);
    let (path, tag) = match named[last_slash..].rfind(':') {
        Some(i) => (&named[..last_slash + i], Some(&named[last_slash + i + 1..])),
        None => (named, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            && !t.starts_with(['.', '-']);
        if !ok {
            return Err(bad());
        }
    }
    let parts: Vec<&str> = path.split('/').collect();
    let ok = parts.iter().enumerate().all(|(i, c)| {
        let host = i == 0 && parts.len() > 1;
        c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && c.bytes().all(|b| {
                b.is_ascii_digit()
                    || b.is_ascii_lowercase()
                    || b"_.-".contains(&b)
                    || (host && (b == b':' || b.is_ascii_uppercase()))
            })
    });
    if !ok || raw.len() > 512 {
        return Err(bad());
    }
    Ok(if tag.is_some() || digest.is_some() {
        raw
    } else {
        format!("{raw}:latest")
    })
}

/// A container node to create: GNS3's defaults, the image tagged.
pub(super) fn create(raw: &[u8], d: Dialect) -> Result<DockerCreate, ApiError> {
    let mut b = decode_body(raw, d)?;
    let name = decode::required_text("name", b.name.take())?;
    let image = image(decode::required_text("image", b.image.take())?)?;
    let node_id = NodeId::uuid(b.node_id.take());
    let aux = port(b.aux);
    let p = patch(b)?;
    let console = p.console;
    // 2.2 gives every container an auxiliary console; 3.0 when asked.
    let aux_type = match d {
        Dialect::V2 => "telnet",
        Dialect::V3 => "none",
    };
    let mut config = DockerConfig {
        image,
        aux_type: aux_type.into(),
        ..DockerConfig::default()
    };
    p.apply(&mut config);
    Ok(DockerCreate {
        name,
        node_id,
        console,
        aux,
        config,
    })
}

/// A container node's update (`image` stays what it was, as in GNS3).
pub(super) fn update(raw: &[u8], d: Dialect) -> Result<DockerPatch, ApiError> {
    let mut b = decode_body(raw, d)?;
    b.node_id = None;
    b.image = None;
    patch(b)
}

/// A container node in 3.0's shape (2.2's keys, and 3.0's four more).
pub(super) fn json(v: &DockerView) -> Value {
    let c = &v.config;
    let or_null = |s: &str| if s.is_empty() { Value::Null } else { json!(s) };
    json!({
        "node_id": v.id.to_string(), "project_id": v.project.to_string(),
        "name": v.name, "usage": c.usage, "status": v.status,
        "container_id": v.container_id, "image": c.image,
        "adapters": c.adapters, "mac_address": c.mac_address,
        "console": v.console, "console_type": c.console_type,
        "console_resolution": c.console_resolution,
        "console_http_port": c.console_http_port,
        "console_http_path": c.console_http_path,
        "aux": v.aux, "aux_type": c.aux_type,
        "start_command": or_null(&c.start_command),
        "environment": or_null(&c.environment),
        "extra_hosts": or_null(&c.extra_hosts),
        "extra_volumes": c.extra_volumes,
        "memory": c.memory, "cpus": c.millicpus as f64 / 1000.0,
        "custom_adapters": Value::Null,
        "node_directory": v.directory.to_string_lossy(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_untagged_image_gets_latest_and_odd_ones_are_refused() {
        assert_eq!(image("alpine".into()).unwrap(), "alpine:latest");
        assert_eq!(image("gns3/ipterm".into()).unwrap(), "gns3/ipterm:latest");
        assert_eq!(
            image("localhost:5000/frr".into()).unwrap(),
            "localhost:5000/frr:latest"
        );
        assert_eq!(image("frr:8.4".into()).unwrap(), "frr:8.4");
        assert_eq!(
            image("frr@sha256:0123abcd".into()).unwrap(),
            "frr@sha256:0123abcd"
        );
        for bad in [
            "", "a b", "../x", "a/../b", "a/./b", "a//b", "x?y", "-x", "Alpine", "a:", "a/b:c/d",
            "a@x", "a:.tag",
        ] {
            assert!(image(bad.into()).is_err(), "{bad}");
        }
    }

    #[test]
    fn v2_refuses_unknown_keys_and_v3_ignores_them() {
        let body = br#"{"name":"c1","image":"alpine","compute_id":"local"}"#;
        assert!(create(body, Dialect::V2).is_err());
        let c = create(body, Dialect::V3).unwrap();
        assert_eq!(
            (c.name.as_str(), c.config.image.as_str()),
            ("c1", "alpine:latest")
        );
        assert_eq!(c.config.adapters, 1);
    }

    #[test]
    fn what_the_controller_echoes_back_on_update_is_taken() {
        let echo = br#"{"name":"c1","usage":"","node_id":"7d9a3b1e-6d7d-4b1c-9e63-6f6c2f8f6a11",
            "container_id":"abcdef0123456789","project_id":"7d9a3b1e-6d7d-4b1c-9e63-6f6c2f8f6a12",
            "image":"alpine:latest","adapters":2,"mac_address":"02:42:11:22:33:00","console":5000,
            "console_type":"telnet","console_resolution":"1024x768","console_http_port":80,
            "console_http_path":"/","aux":null,"aux_type":"none","start_command":null,"status":"stopped",
            "environment":null,"node_directory":"/x","extra_hosts":null,"extra_volumes":[],
            "memory":0,"cpus":0.5,"custom_adapters":null}"#;
        let p = update(echo, Dialect::V2).unwrap();
        assert_eq!(p.adapters, Some(2));
        assert_eq!(p.millicpus, Some(500));
        assert_eq!(p.start_command, None);
    }

    #[test]
    fn volumes_must_be_absolute_paths_inside() {
        for bad in [
            "etc",
            "/a/../b",
            "/a:b",
            r#"/data", "/data/sub"#,
            r#"/x/", "/x"#,
        ] {
            let body = format!(r#"{{"name":"c","image":"a","extra_volumes":["{bad}"]}}"#);
            assert!(create(body.as_bytes(), Dialect::V2).is_err(), "{bad}");
        }
        let ok = br#"{"name":"c","image":"a","extra_volumes":["/data"]}"#;
        assert_eq!(
            create(ok, Dialect::V2).unwrap().config.extra_volumes,
            ["/data"]
        );
    }
}
