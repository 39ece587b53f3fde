//! What nanolab asks the container engine for, as pure functions: the
//! container's name, the body it is made from (image, terminal, no
//! network, capabilities, command, environment, hosts, volumes, limits,
//! labels), and how the engine's answers read (its errors, a pull's end).
//! No engine, no clock: the kind (`super`) sends and waits.

use crate::error::ApiError;
use crate::lab::host::EngineReply;
use crate::lab::spec::DockerConfig;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// The label every container of nanolab carries, with its projects
/// directory: a server finds what an earlier run left by it.
pub const LABEL: &str = "org.nanolab.projects-dir";

/// Capabilities a container is not given, though GNS3 gives every one:
/// `SYS_RESOURCE`, which root lacks on some hosts (the engine then fails
/// the start, as GNS3's `Privileged` does), and those that act on the
/// whole host rather than on the container's own namespaces: kernel
/// modules, raw I/O, reboot, the clock, the kernel log, the security
/// modules and the audit rules. A lab's routers and hosts (FRR, network
/// tools) use none of them; with them, a node could take the host.
pub const HOST_WIDE: [&str; 11] = [
    "SYS_RESOURCE",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_BOOT",
    "SYS_TIME",
    "SYSLOG",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "AUDIT_CONTROL",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
];

/// Who a container is made for.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    /// The node's name.
    pub name: &'a str,
    /// The node's id.
    pub id: Uuid,
    /// Its project.
    pub project: Uuid,
    /// The projects directory (the label).
    pub projects_dir: &'a str,
    /// The node's directory (its volumes).
    pub dir: &'a Path,
}

/// The container's name in the engine: nanolab's, the node's name (what
/// the engine allows of it), the node's id.
pub fn engine_name(name: &str, id: Uuid) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("nanolab.{clean}.{id}")
}

/// What the engine makes the container from: the image (whose settings
/// `image` are the engine's answer for it), nanolab's terminal, no
/// network, the capabilities, the command, environment, hosts, volumes and
/// limits asked for, and nanolab's labels; with the environment lines that
/// were left out, for a warning.
pub fn create_body(
    c: &DockerConfig,
    owner: Owner,
    image: &Value,
) -> Result<(Value, Vec<String>), ApiError> {
    let (env, refused) = environment(c, owner);
    let mut body = json!({
        "Image": c.image,
        "Tty": true, "OpenStdin": true, "StdinOnce": false,
        "AttachStdin": true, "AttachStdout": true, "AttachStderr": true,
        "Env": env,
        "Labels": {
            LABEL: owner.projects_dir,
            "org.nanolab.node": owner.id.to_string(),
            "org.nanolab.project": owner.project.to_string(),
        },
        "HostConfig": {
            "NetworkMode": "none",
            // What a lab's programs need of the kernel (GNS3 gives every
            // capability), less what acts on the whole host.
            "CapAdd": ["ALL"], "CapDrop": HOST_WIDE,
            "Binds": binds(c, owner.dir),
            "ExtraHosts": extra_hosts(&c.extra_hosts)?,
            "Memory": c.memory * 1024 * 1024,
            "NanoCpus": c.millicpus * 1_000_000,
        },
    });
    if is_hostname(owner.name) {
        body["Hostname"] = json!(owner.name);
    }
    let command = split_command(&c.start_command)?;
    let config = &image["Config"];
    let empty = |v: &Value| v.as_array().is_none_or(|a| a.is_empty());
    if !command.is_empty() {
        body["Cmd"] = json!(command);
    } else if empty(&config["Cmd"]) && empty(&config["Entrypoint"]) {
        body["Cmd"] = json!(["/bin/sh"]);
    }
    Ok((body, refused))
}

/// Each volume kept in the node's directory `dir`, bound at its path.
fn binds(c: &DockerConfig, dir: &Path) -> Vec<String> {
    c.extra_volumes
        .iter()
        .map(|v| format!("{}:{v}", volume_dir(dir, v).display()))
        .collect()
}

/// Where volume `volume` (an absolute path in the container) is kept.
pub fn volume_dir(dir: &Path, volume: &str) -> PathBuf {
    dir.join("volumes").join(volume.trim_start_matches('/'))
}

/// The engine's refusal as the API's error (GNS3's words).
pub fn engine_error(reply: &EngineReply) -> ApiError {
    let said: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    let message = match said["message"].as_str() {
        Some(m) => m.to_string(),
        None => String::from_utf8_lossy(&reply.body).trim().to_string(),
    };
    ApiError::conflict(format!(
        "Docker has returned an error: {} {message}",
        reply.status
    ))
}

/// An image's repository and its tag (`None` for a digest or no tag).
pub fn split_image(image: &str) -> (&str, Option<&str>) {
    if image.contains('@') {
        return (image, None);
    }
    let after = image.rfind('/').map_or(0, |i| i + 1);
    match image[after..].rfind(':') {
        Some(i) => (&image[..after + i], Some(&image[after + i + 1..])),
        None => (image, None),
    }
}

/// The error a pull's progress ends with, if it failed (the engine
/// answers 200 and says so in the stream).
pub fn pull_error(progress: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(progress);
    text.lines().rev().find_map(|line| {
        let v: Value = serde_json::from_str(line.trim()).ok()?;
        v["error"].as_str().map(str::to_string)
    })
}

/// The container's environment: GNS3's own variables, then each
/// `NAME=value` line asked for, with `%vm-name%`, `%vm-id%` and
/// `%project-id%` replaced; and the lines left out (no name).
fn environment(c: &DockerConfig, owner: Owner) -> (Vec<String>, Vec<String>) {
    let mut env = vec![
        "container=docker".to_string(),
        format!("GNS3_MAX_ETHERNET=eth{}", c.adapters.saturating_sub(1)),
    ];
    let mut refused = Vec::new();
    for line in c.environment.lines().map(str::trim) {
        if line.is_empty() || line.starts_with("GNS3_") {
            continue;
        }
        match line.split_once('=') {
            Some((name, _)) if !name.trim().is_empty() => env.push(
                line.replace("%vm-name%", owner.name)
                    .replace("%vm-id%", &owner.id.to_string())
                    .replace("%project-id%", &owner.project.to_string()),
            ),
            _ => refused.push(line.to_string()),
        }
    }
    (env, refused)
}

/// `host:address` lines as the engine takes them.
pub fn extra_hosts(text: &str) -> Result<Vec<String>, ApiError> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(':') {
            Some((host, addr)) if !host.trim().is_empty() && !addr.trim().is_empty() => {
                Ok(format!("{}:{}", host.trim(), addr.trim()))
            }
            _ => Err(ApiError::conflict(format!(
                "Can't apply `ExtraHosts`, wrong format: {l}"
            ))),
        })
        .collect()
}

/// A start command split as a shell would.
pub fn split_command(command: &str) -> Result<Vec<String>, ApiError> {
    shlex::split(command.trim())
        .ok_or_else(|| ApiError::conflict(format!("Invalid start command '{command}'")))
}

/// Whether `name` is a host name (RFC 1123 labels).
pub fn is_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(dir: &Path) -> Owner<'_> {
        Owner {
            name: "r1",
            id: Uuid::from_u128(7),
            project: Uuid::from_u128(9),
            projects_dir: "/srv/projects",
            dir,
        }
    }

    #[test]
    fn the_body_asks_for_a_terminal_no_network_and_what_the_node_set() {
        let c = DockerConfig {
            image: "frr:8.4".into(),
            adapters: 3,
            start_command: "/usr/lib/frr/docker-start 'a b'".into(),
            environment: "ROLE=%vm-name%\n=bad\nGNS3_X=1\n".into(),
            extra_hosts: "r2:10.0.0.2".into(),
            extra_volumes: vec!["/etc/frr".into()],
            memory: 64,
            millicpus: 500,
            ..DockerConfig::default()
        };
        let dir = Path::new("/srv/projects/p/project-files/docker/n");
        let (b, refused) = create_body(&c, owner(dir), &Value::Null).unwrap();
        assert_eq!(refused, ["=bad"]);
        assert_eq!(b["Image"], "frr:8.4");
        assert_eq!(b["Hostname"], "r1");
        assert_eq!(b["Cmd"], json!(["/usr/lib/frr/docker-start", "a b"]));
        assert_eq!(
            b["Env"],
            json!(["container=docker", "GNS3_MAX_ETHERNET=eth2", "ROLE=r1"])
        );
        let h = &b["HostConfig"];
        assert_eq!(h["NetworkMode"], "none");
        assert_eq!(h["ExtraHosts"], json!(["r2:10.0.0.2"]));
        assert_eq!(
            h["Binds"],
            json!([format!("{}/volumes/etc/frr:/etc/frr", dir.display())])
        );
        assert_eq!(
            (h["Memory"].as_u64(), h["NanoCpus"].as_u64()),
            (Some(64 << 20), Some(500_000_000))
        );
        assert!(h.get("Privileged").is_none());
        assert_eq!(b["Labels"][LABEL], "/srv/projects");
        // No command asked for: the image's, else a shell.
        let plain = DockerConfig::default();
        let with_cmd = json!({"Config": {"Cmd": ["/bin/bash"]}});
        let (b, _) = create_body(&plain, owner(dir), &with_cmd).unwrap();
        assert!(b.get("Cmd").is_none(), "{b}");
        let (b, _) = create_body(&plain, owner(dir), &Value::Null).unwrap();
        assert_eq!(b["Cmd"], json!(["/bin/sh"]));
    }

    #[test]
    fn host_names_follow_rfc_1123() {
        for ok in ["alpine-1", "a", "r1.lab", "X9"] {
            assert!(is_hostname(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a b", "a_b", "a..b", &"x".repeat(64)] {
            assert!(!is_hostname(bad), "{bad}");
        }
    }

    #[test]
    fn extra_hosts_are_host_colon_address_lines() {
        assert_eq!(
            extra_hosts("a:10.0.0.1\n\n b : 10.0.0.2 \n").unwrap(),
            vec!["a:10.0.0.1", "b:10.0.0.2"]
        );
        assert!(extra_hosts("nocolon").is_err());
        assert!(extra_hosts(":1.2.3.4").is_err());
    }

    #[test]
    fn engine_names_keep_what_the_engine_allows() {
        let id = Uuid::nil();
        assert_eq!(engine_name("PC 1/é", id), format!("nanolab.PC_1__.{id}"));
    }

    #[test]
    fn images_split_into_repository_and_tag() {
        assert_eq!(split_image("alpine:3.20"), ("alpine", Some("3.20")));
        assert_eq!(
            split_image("127.0.0.1:5000/lab/busybox:1"),
            ("127.0.0.1:5000/lab/busybox", Some("1"))
        );
        assert_eq!(
            split_image("127.0.0.1:5000/lab/busybox"),
            ("127.0.0.1:5000/lab/busybox", None)
        );
        assert_eq!(split_image("frr@sha256:00"), ("frr@sha256:00", None));
    }

    #[test]
    fn a_pull_s_progress_says_whether_it_failed() {
        let ok = b"{\"status\":\"Pulling fs layer\"}\r\n{\"status\":\"Status: Downloaded newer image\"}\r\n";
        assert_eq!(pull_error(ok), None);
        let bad = b"{\"status\":\"Pulling\"}\r\n{\"errorDetail\":{\"message\":\"x\"},\"error\":\"manifest unknown\"}\r\n";
        assert_eq!(pull_error(bad).as_deref(), Some("manifest unknown"));
        assert_eq!(
            pull_error(b"{\"error\":\"cut\"}\r\n{\"stat"),
            Some("cut".into())
        );
    }

    #[test]
    fn engine_errors_say_the_status_and_the_engine_s_message() {
        let e = engine_error(&EngineReply {
            status: 404,
            body: br#"{"message":"No such image: x:latest"}"#.to_vec(),
        });
        assert_eq!(
            e.to_string(),
            "Docker has returned an error: 404 No such image: x:latest"
        );
    }
}
