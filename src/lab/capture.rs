//! Packet capture on any port (sans-IO): frames crossing a port, both
//! directions, become classic pcap records buffered in memory and written
//! by the host in batches, once per loop turn. A capture that cannot be
//! written stops with a warning; the relay never waits for it.

use super::host::Host;
use super::id::ClientId;
use super::id::NodeKey;
use super::{Answer, Body, Event, Lab, Reply};
use crate::error::ApiError;
use crate::lab::command::{PortAddr, Ticket};
use crate::lab::spec::CaptureStart;
pub use crate::limits::{MAX_CAPTURE_BUFFER, MAX_LIVE_OUTPUT};
use crate::proto::pcap;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

/// A running capture.
#[derive(Debug)]
pub struct Capture {
    /// The pcap file.
    pub path: PathBuf,
    /// Records not written yet.
    pub pending: Vec<u8>,
    /// The clocks when it started: frames are stamped with the wall clock
    /// of then plus the monotonic time since.
    pub epoch: (Instant, SystemTime),
    /// Frames recorded.
    pub frames: u64,
    /// Frames lost because writing fell behind.
    pub lost: u64,
    /// Clients following it live, with what waits for each.
    pub viewers: Vec<(ClientId, Vec<u8>)>,
}

impl Capture {
    /// Record a frame crossing the port at `now`. Returns whether the
    /// buffer went from empty to not (the port needs a flush).
    pub fn record(&mut self, now: Instant, frame: &[u8], ready: &mut Vec<ClientId>) -> bool {
        let at = self.epoch.1 + now.saturating_duration_since(self.epoch.0);
        // Live viewers first: one that does not keep up is let go.
        self.viewers.retain_mut(|(id, out)| {
            if out.len() + frame.len() + 16 > MAX_LIVE_OUTPUT {
                ready.push(*id);
                return false;
            }
            pcap::push_record(out, at, frame);
            ready.push(*id);
            true
        });
        if self.pending.len() + frame.len() + 16 > MAX_CAPTURE_BUFFER {
            self.lost += 1;
            return false;
        }
        let was_empty = self.pending.is_empty();
        pcap::push_record(&mut self.pending, at, frame);
        self.frames += 1;
        was_empty
    }
}

/// Record `frame` on `port` if it is captured; note the port for the next
/// flush.
/// A live capture viewer is the connection that asked.
pub(crate) fn viewer(t: Ticket) -> ClientId {
    ClientId {
        handle: t.conn,
        serial: t.serial,
    }
}

/// Ports with records to write, and live viewers with output waiting.
#[derive(Debug, Default)]
pub struct Sink {
    /// (node, port index) whose capture buffer went from empty to not.
    pub dirty: Vec<(NodeKey, usize)>,
    /// Live viewers to wake.
    pub ready: Vec<ClientId>,
}

pub(crate) fn record(
    sink: &mut Sink,
    key: NodeKey,
    index: usize,
    capture: &mut Option<Capture>,
    now: Instant,
    frame: &[u8],
) {
    if let Some(c) = capture
        && c.record(now, frame, &mut sink.ready)
    {
        sink.dirty.push((key, index));
    }
}

impl Lab {
    /// Start capturing a port into `project-files/captures/<name>`.
    pub(crate) fn start_capture(
        &mut self,
        now: Instant,
        key: NodeKey,
        index: usize,
        at: PortAddr,
        b: CaptureStart,
        host: &mut dyn Host,
    ) -> Reply {
        let node = self.live(key)?;
        let project = self.project(node.project)?;
        let dir = project.path.join("project-files").join("captures");
        let path = dir.join(&b.capture_file_name);
        let port = &node.ports[index];
        if port.capture.is_some() {
            return Err(ApiError::conflict(format!(
                "Port {} already has a capture running",
                at.port
            )));
        }
        if port.nio.is_none() {
            return Err(ApiError::conflict(format!(
                "Port {} is not connected: link it before capturing",
                at.port
            )));
        }
        host.files().create_dir(&dir)?;
        host.files().write_file(&path, &pcap::file_header())?;
        let epoch = (now, host.wall_clock());
        let id = node.id;
        let node = self.live_mut(key)?;
        node.ports[index].capture = Some(Capture {
            path: path.clone(),
            pending: Vec::new(),
            epoch,
            frames: 0,
            lost: 0,
            viewers: Vec::new(),
        });
        let node = self.live(key)?;
        let (what, port) = (super::what(node), super::port_label(node, index));
        self.emit(Event::CaptureStarted {
            node: id,
            what,
            port,
            path: path.clone(),
        });
        Ok(Answer::Ok(Body::Capture(path)))
    }

    /// Stop capturing a port (what is buffered is written first).
    pub(crate) fn stop_capture(
        &mut self,
        key: NodeKey,
        index: usize,
        at: PortAddr,
        host: &mut dyn Host,
    ) -> Reply {
        if self.live(key)?.ports[index].capture.is_none() {
            return Err(ApiError::conflict(format!(
                "No capture is running on port {}",
                at.port
            )));
        }
        self.end_capture(key, index, host);
        Ok(Answer::NoContent)
    }

    /// Write what a port's capture holds, then forget the capture; its
    /// live viewers see their stream end.
    pub(crate) fn end_capture(&mut self, key: NodeKey, index: usize, host: &mut dyn Host) {
        self.flush_capture(key, index, host);
        if let Some(port) = self.node_mut(key).and_then(|n| n.ports.get_mut(index))
            && let Some(c) = port.capture.take()
        {
            for (id, _) in c.viewers {
                self.viewers.remove(&id);
                self.sink.ready.push(id);
            }
        }
    }

    /// Follow a running capture live: the stream starts with the pcap
    /// header, then every record as it is made.
    pub(crate) fn watch_capture(
        &mut self,
        key: NodeKey,
        index: usize,
        at: PortAddr,
        viewer: ClientId,
    ) -> Reply {
        let node = self.live_mut(key)?;
        let Some(c) = node.ports.get_mut(index).and_then(|p| p.capture.as_mut()) else {
            return Err(ApiError::conflict(format!(
                "No capture is running on port {}: start one first",
                at.port
            )));
        };
        c.viewers.push((viewer, pcap::file_header().to_vec()));
        self.viewers.insert(viewer, (key, index));
        Ok(Answer::Ok(Body::LiveCapture))
    }

    /// Bytes waiting for a live viewer in the lab (for the memory budget).
    pub fn capture_pending(&self, viewer: ClientId) -> usize {
        let Some(&(key, index)) = self.viewers.get(&viewer) else {
            return 0;
        };
        self.node(key)
            .and_then(|n| n.ports.get(index))
            .and_then(|p| p.capture.as_ref())
            .and_then(|c| c.viewers.iter().find(|(id, _)| *id == viewer))
            .map_or(0, |(_, out)| out.len())
    }

    /// What waits for a live viewer (taken); `None` once its capture has
    /// ended or it was dropped for not keeping up.
    pub fn capture_output(&mut self, viewer: ClientId) -> Option<Vec<u8>> {
        let &(key, index) = self.viewers.get(&viewer)?;
        let found = self
            .node_mut(key)
            .and_then(|n| n.ports.get_mut(index))
            .and_then(|p| p.capture.as_mut())
            .and_then(|c| c.viewers.iter_mut().find(|(id, _)| *id == viewer))
            .map(|(_, out)| std::mem::take(out));
        if found.is_none() {
            self.viewers.remove(&viewer);
        }
        found
    }

    /// Live viewers with output waiting, or whose stream ended.
    pub fn take_ready_viewers(&mut self) -> Vec<ClientId> {
        std::mem::take(&mut self.sink.ready)
    }

    /// A live viewer went away.
    pub fn capture_unwatch(&mut self, viewer: ClientId) {
        if let Some((key, index)) = self.viewers.remove(&viewer)
            && let Some(c) = self
                .node_mut(key)
                .and_then(|n| n.ports.get_mut(index))
                .and_then(|p| p.capture.as_mut())
        {
            c.viewers.retain(|(id, _)| *id != viewer);
        }
    }

    /// Write the records of every capture that has some (once per turn).
    pub(crate) fn flush_captures(&mut self, host: &mut dyn Host) {
        for (key, index) in std::mem::take(&mut self.sink.dirty) {
            self.flush_capture(key, index, host);
        }
    }

    fn flush_capture(&mut self, key: NodeKey, index: usize, host: &mut dyn Host) {
        let Some(node) = self.node_mut(key) else {
            return;
        };
        let id = node.id;
        let Some(c) = node.ports.get_mut(index).and_then(|p| p.capture.as_mut()) else {
            return;
        };
        if c.pending.is_empty() {
            return;
        }
        let data = std::mem::take(&mut c.pending);
        let path = c.path.clone();
        if let Err(e) = host.files().append_file(&path, &data) {
            if let Some(p) = self.node_mut(key).and_then(|n| n.ports.get_mut(index)) {
                p.capture = None;
            }
            self.emit(Event::Warning {
                node: Some(id),
                text: format!("capture into {} stopped: {e}", path.display()),
            });
        }
    }
}
