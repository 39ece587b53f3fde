//! The lab's invariants: every structure agrees with every other. Used
//! by the tests and the fuzz target after every step.

use super::node::{Nio, Pending};
use super::ports::PortPool;
use super::projects::Projects;
use super::registry::Registry;
use std::collections::HashMap;
use uuid::Uuid;

/// Check that each node is indexed and in its project, holds its console
/// port, MAC and tunnel ports; that no port is reserved by nobody; that
/// each node is in one coherent state.
pub fn check(
    registry: &Registry,
    projects: &Projects,
    console_ports: &PortPool,
    udp_ports: &PortPool,
) -> Result<(), String> {
    registry.check()?;
    let mut udp_expected: HashMap<u16, Uuid> = HashMap::new();
    let mut macs: HashMap<Uuid, Vec<u8>> = HashMap::new();
    for node in registry.iter() {
        let p = projects
            .get(node.project)
            .map_err(|_| format!("node {} without project", node.id))?;
        if !p.nodes.contains(&node.id) {
            return Err(format!("project does not list node {}", node.id));
        }
        if let Some(console) = node.console_port {
            let owner = console_ports
                .reservations()
                .find(|(port, _)| *port == console);
            if owner.map(|(_, o)| o) != Some(node.id) {
                return Err(format!(
                    "console port {console} of {} not reserved by it",
                    node.id
                ));
            }
        }
        let face = node.face();
        if let Some(mac) = face.project_mac() {
            macs.entry(node.project).or_default().push(mac);
        }
        for port in &node.ports {
            if let Some(lport) = port.nio.as_deref().and_then(Nio::udp_port) {
                udp_expected.insert(lport, node.project);
            }
        }
        for port in face.udp_ports() {
            udp_expected.insert(port, node.id);
        }
        let starting = matches!(node.pending, Some(Pending::Start(_)));
        face.check(starting)
            .map_err(|e| format!("{}: {e}", node.id))?;
        if matches!(node.pending, Some(Pending::Stop(..))) && !node.running() {
            return Err(format!("{} stopping but not running", node.id));
        }
        if node.pending.is_some() && !node.queue.is_busy() {
            return Err(format!(
                "{} has a parked operation but an idle queue",
                node.id
            ));
        }
    }
    for (port, owner) in console_ports.reservations() {
        if !registry.contains(&owner) {
            return Err(format!("console port {port} reserved by nobody ({owner})"));
        }
    }
    for (port, owner) in udp_ports.reservations() {
        let running = registry
            .key_of(owner)
            .and_then(|k| registry.get(k))
            .is_some_and(|n| n.running());
        if !projects.contains(owner) && !running {
            return Err(format!("UDP port {port} reserved by nobody ({owner})"));
        }
    }
    for (port, owner) in udp_expected {
        if !udp_ports
            .reservations()
            .any(|(p, o)| p == port && o == owner)
        {
            return Err(format!(
                "UDP port {port} in use but not reserved by its user"
            ));
        }
    }
    for p in projects.iter() {
        let id = &p.id;
        let mut used = macs.remove(id).unwrap_or_default();
        used.sort_unstable();
        if used.windows(2).any(|w| w[0] == w[1]) {
            return Err(format!("project {id} gave a MAC twice"));
        }
        if p.macs_taken() != used.len() {
            return Err(format!(
                "project {id}: {} MACs taken, {} used",
                p.macs_taken(),
                used.len()
            ));
        }
        if p.nodes.iter().any(|n| !registry.contains(n)) {
            return Err(format!("project {id} lists a node that is gone"));
        }
    }
    Ok(())
}
