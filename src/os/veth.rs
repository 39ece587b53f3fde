//! Veth pairs into containers, made with iproute2's `ip` in one batch
//! (what the lab asked for; the names and MACs are its).
//!
//! For each link: a pair whose host end keeps its name and whose other end
//! moves into the network namespace of the container's process, renamed
//! (`eth0`...) and given its MAC, both ends up. `ip` speaks netlink for
//! nanolab here rather than hand-written netlink messages in `sys.rs`: one
//! short process per start, off the data plane.

use crate::error::ApiError;
use crate::lab::host::Veth;
use std::io::Write;
use std::process::{Command, Stdio};

/// The `ip -batch` lines that make `links` into process `pid`'s namespace.
pub fn batch(pid: u32, links: &[Veth]) -> String {
    let mut lines = String::new();
    for (i, l) in links.iter().enumerate() {
        let peer = format!("nlp{pid}x{i}");
        lines.push_str(&format!(
            "link add {} type veth peer name {peer}\n\
             link set dev {peer} address {} name {} netns {pid} up\n\
             link set dev {} up\n",
            l.host, l.mac, l.inside, l.host
        ));
    }
    lines
}

/// Make `links` into process `pid`'s namespace; on failure the pairs made
/// are removed and the error says what `ip` said.
pub fn plug(pid: u32, links: &[Veth]) -> Result<(), ApiError> {
    if links.is_empty() {
        return Ok(());
    }
    let done = run_batch(&batch(pid, links));
    if let Err(e) = done {
        unplug(&links.iter().map(|l| l.host.clone()).collect::<Vec<_>>());
        return Err(ApiError::conflict(format!(
            "Cannot link the container's interfaces: {e}"
        )));
    }
    Ok(())
}

/// Remove the pairs whose host ends are `names` (one gone already is fine).
pub fn unplug(names: &[String]) {
    if names.is_empty() {
        return;
    }
    let lines: String = names.iter().map(|n| format!("link del {n}\n")).collect();
    // Each line is tried (`-force`): a pair gone with its container is fine.
    let _ = run_batch_with(&lines, &["-force"]);
}

fn run_batch(lines: &str) -> Result<(), String> {
    run_batch_with(lines, &[])
}

fn run_batch_with(lines: &str, flags: &[&str]) -> Result<(), String> {
    let mut child = Command::new("ip")
        .args(flags)
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ip (iproute2): {e}"))?;
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(lines.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("ip failed: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_link_is_made_moved_named_and_brought_up() {
        let links = [Veth {
            host: "nlabcdef012e0".into(),
            inside: "eth0".into(),
            mac: "02:42:00:00:00:01".into(),
        }];
        assert_eq!(
            batch(4242, &links),
            "link add nlabcdef012e0 type veth peer name nlp4242x0\n\
             link set dev nlp4242x0 address 02:42:00:00:00:01 name eth0 netns 4242 up\n\
             link set dev nlabcdef012e0 up\n"
        );
    }
}
