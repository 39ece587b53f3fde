//! Packet capture on any port (sans-IO): frames crossing a port, both
//! directions, become classic pcap records buffered in memory and written
//! by the host in batches, once per loop turn. A capture that cannot be
//! written stops with a warning; the relay never waits for it.

use super::host::Host;
use super::node::{NodeKey, Port};
use super::{Answer, Body, Event, Lab, Reply};
use crate::api::PortAddr;
use crate::api::body::CaptureStart;
use crate::error::ApiError;
use crate::proto::pcap;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

/// Records waiting to be written, per capture; past it, records are lost
/// (and counted) rather than memory grown.
pub const MAX_CAPTURE_BUFFER: usize = 1024 * 1024;

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
}

impl Capture {
    /// Record a frame crossing the port at `now`. Returns whether the
    /// buffer went from empty to not (the port needs a flush).
    pub fn record(&mut self, now: Instant, frame: &[u8]) -> bool {
        if self.pending.len() + frame.len() + 16 > MAX_CAPTURE_BUFFER {
            self.lost += 1;
            return false;
        }
        let was_empty = self.pending.is_empty();
        let at = self.epoch.1 + now.saturating_duration_since(self.epoch.0);
        pcap::push_record(&mut self.pending, at, frame);
        self.frames += 1;
        was_empty
    }
}

/// Record `frame` on `port` if it is captured; note the port for the next
/// flush.
pub(crate) fn record(
    dirty: &mut Vec<(NodeKey, usize)>,
    key: NodeKey,
    index: usize,
    port: &mut Port,
    now: Instant,
    frame: &[u8],
) {
    if let Some(c) = &mut port.capture
        && c.record(now, frame)
    {
        dirty.push((key, index));
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
        });
        self.emit(Event::Warning {
            node: Some(id),
            text: format!("port {}: capture started into {}", at.port, path.display()),
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

    /// Write what a port's capture holds, then forget the capture.
    pub(crate) fn end_capture(&mut self, key: NodeKey, index: usize, host: &mut dyn Host) {
        self.flush_capture(key, index, host);
        if let Some(port) = self.node_mut(key).and_then(|n| n.ports.get_mut(index)) {
            port.capture = None;
        }
    }

    /// Write the records of every capture that has some (once per turn).
    pub(crate) fn flush_captures(&mut self, host: &mut dyn Host) {
        for (key, index) in std::mem::take(&mut self.dirty_captures) {
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
