//! The wiring of ports (sans-IO): NIOs attached and removed (their UDP
//! ports, local links and held frames), link filters, and captures with
//! their live viewers. Lent the lab's parts for one call; knows nodes by
//! key and ports by index.

use super::answer::{Answer, Body, LogLevel, Reply};
use super::capture::{self, Sink, Viewers};
use super::command::{LinkFilters, PortAddr};
use super::event::{Event, Events};
use super::host::Host;
use super::id::{ClientId, Endpoint, NodeKey};
use super::links::Links;
use super::node::went_away;
use super::port::Wire;
use super::ports::PortPool;
use super::registry::Registry;
use super::spec::CaptureStart;
use super::types::Nio;
use crate::error::ApiError;
use std::path::Path;
use std::time::Instant;

/// What wiring a port may touch.
pub struct Wiring<'a> {
    /// The nodes.
    pub registry: &'a mut Registry,
    /// The UDP port pool.
    pub udp_ports: &'a mut PortPool,
    /// Tunnels whose both ends are ours.
    pub links: &'a mut Links,
    /// Delayed frames.
    pub wire: &'a mut Wire,
    /// Captures with records to write, viewers to wake.
    pub sink: &'a mut Sink,
    /// Live capture viewers.
    pub viewers: &'a mut Viewers,
    /// The lab's events.
    pub events: &'a mut Events,
}

impl Wiring<'_> {
    /// The index of the port a request names, by the node's kind.
    pub fn port_of(&self, key: NodeKey, at: PortAddr) -> Result<usize, ApiError> {
        let node = self.registry.get(key).ok_or_else(went_away)?;
        node.face().port_index(&node.ports, at)
    }

    /// Attach a NIO to port `index`, replacing any. Replacing a tunnel with
    /// one on the same `lport` closes the old socket first; if the new one
    /// then fails, the old one is opened again, so a failed replacement
    /// leaves the port as it was. Otherwise the new NIO is opened before
    /// the old one is closed, and a failure leaves the old one in place.
    pub fn attach_nio(
        &mut self,
        key: NodeKey,
        index: usize,
        nio: Nio,
        host: &mut dyn Host,
    ) -> Reply {
        let node = self.registry.get(key).ok_or_else(went_away)?;
        let (id, project) = (node.id, node.project);
        let old = node.ports[index].nio.as_deref().cloned();
        let (old_lport, new_lport) = (old.as_ref().and_then(Nio::udp_port), nio.udp_port());
        if let (Some(old), Some(_)) = (&old, new_lport.filter(|l| Some(*l) == old_lport)) {
            host.close_nio(key, index);
            if let Err(e) = host.open_nio(key, index, &nio) {
                if let Err(lost) = host.open_nio(key, index, old) {
                    self.drop_nio(key, index, host);
                    self.events.warn(
                        Some(id),
                        format!("NIO {old} lost: it could not be reopened: {lost}"),
                    );
                }
                return Err(e);
            }
        } else {
            if let Some(holder) = new_lport.and_then(|l| self.holder(l, (key, index))) {
                let lport = new_lport.unwrap_or_default();
                return Err(ApiError::conflict(format!(
                    "UDP port {lport} is already used by {holder}: each tunnel end needs a local \
                     port of its own; take a free one from POST .../ports/udp"
                )));
            }
            let newly_reserved = new_lport.filter(|l| !self.udp_ports.is_reserved(*l));
            if let Some(lport) = new_lport {
                self.udp_ports.reserve(lport, project)?;
            }
            if let Err(e) = host.open_nio(key, index, &nio) {
                if let Some(lport) = newly_reserved {
                    self.udp_ports.release(lport);
                }
                return Err(e);
            }
            if let Some(lport) = old_lport {
                self.udp_ports.release(lport);
            }
        }
        let node = self.registry.get_mut(key).ok_or_else(went_away)?;
        let port = &mut node.ports[index];
        port.nio = Some(Box::new(nio.clone()));
        port.stats = Default::default();
        let (what, label) = (node.word(), node.port_label(index));
        let nodes = &self.registry;
        self.links.added((key, index), &nio, |k, i| {
            nodes.get(k)?.ports.get(i)?.nio.as_deref().cloned()
        });
        self.events.emit(Event::NioAdded {
            node: id,
            what,
            port: label,
            nio: nio.clone(),
        });
        Ok(Answer::Created(Body::Nio(nio)))
    }

    /// Who in this lab holds UDP port `lport` (other than port `at`):
    /// another port's tunnel, or a node's own link to its process.
    fn holder(&self, lport: u16, at: (NodeKey, usize)) -> Option<String> {
        if let Some((key, i)) = self.links.at_lport(lport).filter(|&p| p != at) {
            let n = self.registry.get(key)?;
            return Some(format!(
                "{} '{}', port {}",
                n.word(),
                n.name,
                n.port_label(i)
            ));
        }
        // Reserved by a node rather than a project: its own relay port.
        let owner = self.udp_ports.owner(lport)?;
        let n = self.registry.iter().find(|n| n.id == owner)?;
        Some(format!(
            "{} '{}' itself (its link to its process)",
            n.word(),
            n.name
        ))
    }

    /// Close a port's NIO and free its UDP port.
    pub fn drop_nio(&mut self, key: NodeKey, index: usize, host: &mut dyn Host) {
        let Some(node) = self.registry.get(key) else {
            return;
        };
        if node.ports.get(index).is_none_or(|p| p.nio.is_none()) {
            return;
        }
        let (id, what, label) = (node.id, node.word(), node.port_label(index));
        // A capture stops with its port's NIO.
        self.end_capture(key, index, host);
        let Some(port) = self
            .registry
            .get_mut(key)
            .and_then(|n| n.ports.get_mut(index))
        else {
            return;
        };
        let Some(nio) = port.nio.take().map(|n| *n) else {
            return;
        };
        let stats = port.stats;
        self.links.removed((key, index));
        // Frames a delay filter held for or from this NIO go with it.
        let gone = Endpoint::Nio(key, index);
        self.wire
            .delayed
            .retain(|h| h.port != (key, index) && h.to != gone);
        host.close_nio(key, index);
        if let Some(lport) = nio.udp_port() {
            self.udp_ports.release(lport);
        }
        self.events.emit(Event::NioRemoved {
            node: id,
            what,
            port: label,
            nio,
            stats,
        });
    }

    /// Replace the filters of a linked port; what does not compile is
    /// skipped with a warning to the project's users.
    pub fn set_filters(
        &mut self,
        key: NodeKey,
        at: PortAddr,
        spec: LinkFilters,
    ) -> Result<(), ApiError> {
        let index = self.port_of(key, at)?;
        let node = self.registry.get_mut(key).ok_or_else(went_away)?;
        let (project, name) = (node.project, node.name.clone());
        let warnings = node.ports[index].set_filters(at, spec)?;
        for w in warnings {
            self.events.emit(Event::ProjectLog {
                project,
                level: LogLevel::Warning,
                text: format!("{name}: {w}"),
            });
        }
        Ok(())
    }

    /// Start capturing a port into `project-files/captures/<name>`.
    pub fn start_capture(
        &mut self,
        project_dir: &Path,
        now: Instant,
        key: NodeKey,
        at: PortAddr,
        b: CaptureStart,
        host: &mut dyn Host,
    ) -> Reply {
        let index = self.port_of(key, at)?;
        let node = self.registry.get_mut(key).ok_or_else(went_away)?;
        let dir = project_dir.join("project-files").join("captures");
        let (what, label) = (node.word(), node.port_label(index));
        let port = &mut node.ports[index];
        let linked = port.nio.is_some();
        let file = (dir.as_path(), b.capture_file_name.as_str());
        let path = capture::start(&mut port.capture, linked, file, at, now, host)?;
        self.events.emit(Event::CaptureStarted {
            node: node.id,
            what,
            port: label,
            path: path.clone(),
        });
        Ok(Answer::Ok(Body::Capture(path)))
    }

    /// Stop capturing a port (what is buffered is written first).
    pub fn stop_capture(&mut self, key: NodeKey, at: PortAddr, host: &mut dyn Host) -> Reply {
        let index = self.port_of(key, at)?;
        if self
            .registry
            .get(key)
            .is_none_or(|n| n.ports[index].capture.is_none())
        {
            return Err(ApiError::conflict(format!(
                "No capture is running on port {}",
                at.port
            )));
        }
        self.end_capture(key, index, host);
        Ok(Answer::NoContent)
    }

    /// Write what a port's capture holds, then forget the capture.
    pub fn end_capture(&mut self, key: NodeKey, index: usize, host: &mut dyn Host) {
        let Some(node) = self.registry.get_mut(key) else {
            return;
        };
        let Some(port) = node.ports.get_mut(index) else {
            return;
        };
        let (sink, viewers) = (&mut self.sink, &mut self.viewers);
        if let Err(e) = capture::end(&mut port.capture, sink, viewers, host) {
            self.events.warn(Some(node.id), e);
        }
    }

    /// Write what a port's capture holds (once per turn).
    pub fn flush_capture(&mut self, key: NodeKey, index: usize, host: &mut dyn Host) {
        let Some(node) = self.registry.get_mut(key) else {
            return;
        };
        let Some(port) = node.ports.get_mut(index) else {
            return;
        };
        if let Err(e) = capture::flush(&mut port.capture, host) {
            self.events.warn(Some(node.id), e);
        }
    }

    /// Follow a running capture live.
    pub fn watch_capture(&mut self, key: NodeKey, at: PortAddr, viewer: ClientId) -> Reply {
        let index = self.port_of(key, at)?;
        let node = self.registry.get_mut(key).ok_or_else(went_away)?;
        capture::watch(&mut node.ports[index].capture, at, viewer)?;
        self.viewers.insert(viewer, (key, index));
        Ok(Answer::Ok(Body::LiveCapture))
    }

    /// The capture `viewer` follows.
    fn capture_of(&mut self, viewer: ClientId) -> Option<&mut Option<Box<capture::Capture>>> {
        let (key, index) = self.viewers.get(viewer)?;
        let port = self.registry.get_mut(key)?.ports.get_mut(index)?;
        Some(&mut port.capture)
    }

    /// What waits for a live viewer (taken); `None` once its capture has
    /// ended or it was dropped for not keeping up.
    pub fn capture_output(&mut self, viewer: ClientId) -> Option<Vec<u8>> {
        let found = self
            .capture_of(viewer)
            .and_then(|c| capture::output(c, viewer));
        if found.is_none() {
            self.viewers.remove(viewer);
        }
        found
    }

    /// A live viewer went away.
    pub fn capture_unwatch(&mut self, viewer: ClientId) {
        if let Some(c) = self.capture_of(viewer) {
            capture::unwatch(c, viewer);
        }
        self.viewers.remove(viewer);
    }
}
