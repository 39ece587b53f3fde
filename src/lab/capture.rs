//! Packet capture on any port (sans-IO): frames crossing a port, both
//! directions, become classic pcap records buffered in memory and written
//! by the host in batches, once per loop turn. A capture that cannot be
//! written stops with a warning; the relay never waits for it.

use super::host::Host;
use super::id::ClientId;
use super::id::NodeKey;
use crate::error::ApiError;
use crate::lab::command::{PortAddr, Ticket};
pub use crate::limits::{MAX_CAPTURE_BUFFER, MAX_LIVE_OUTPUT};
use crate::proto::pcap;
use std::collections::HashMap;
use std::path::Path;
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
    capture: &mut Option<Box<Capture>>,
    now: Instant,
    frame: &[u8],
) {
    if let Some(c) = capture
        && c.record(now, frame, &mut sink.ready)
    {
        sink.dirty.push((key, index));
    }
}

/// Live viewers: where the capture each follows is.
#[derive(Debug, Default)]
pub struct Viewers {
    at: HashMap<ClientId, (NodeKey, usize)>,
}

impl Viewers {
    /// Where `viewer`'s capture is.
    pub fn get(&self, viewer: ClientId) -> Option<(NodeKey, usize)> {
        self.at.get(&viewer).copied()
    }

    /// `viewer` follows the capture of port `index` of `key`.
    pub fn insert(&mut self, viewer: ClientId, at: (NodeKey, usize)) {
        self.at.insert(viewer, at);
    }

    /// `viewer` follows nothing any more.
    pub fn remove(&mut self, viewer: ClientId) -> Option<(NodeKey, usize)> {
        self.at.remove(&viewer)
    }
}

/// Start capturing into `dir/name`: the port must be linked and not
/// captured already. Returns the file.
pub fn start(
    slot: &mut Option<Box<Capture>>,
    linked: bool,
    (dir, name): (&Path, &str),
    at: PortAddr,
    now: Instant,
    host: &mut dyn Host,
) -> Result<PathBuf, ApiError> {
    if slot.is_some() {
        return Err(ApiError::conflict(format!(
            "Port {} already has a capture running",
            at.port
        )));
    }
    if !linked {
        return Err(ApiError::conflict(format!(
            "Port {} is not connected: link it before capturing",
            at.port
        )));
    }
    let path = dir.join(name);
    host.files().create_dir(dir)?;
    host.files().write_file(&path, &pcap::file_header())?;
    *slot = Some(Box::new(Capture {
        path: path.clone(),
        pending: Vec::new(),
        epoch: (now, host.wall_clock()),
        frames: 0,
        lost: 0,
        viewers: Vec::new(),
    }));
    Ok(path)
}

/// Write what a capture holds; a capture that cannot be written stops,
/// and the error says why.
pub fn flush(slot: &mut Option<Box<Capture>>, host: &mut dyn Host) -> Result<(), String> {
    let Some(c) = slot.as_mut().filter(|c| !c.pending.is_empty()) else {
        return Ok(());
    };
    let data = std::mem::take(&mut c.pending);
    if let Err(e) = host.files().append_file(&c.path, &data) {
        let path = c.path.clone();
        *slot = None;
        return Err(format!("capture into {} stopped: {e}", path.display()));
    }
    Ok(())
}

/// Write what a capture holds, then forget it; its live viewers see
/// their stream end.
pub fn end(
    slot: &mut Option<Box<Capture>>,
    sink: &mut Sink,
    viewers: &mut Viewers,
    host: &mut dyn Host,
) -> Result<(), String> {
    let flushed = flush(slot, host);
    if let Some(c) = slot.take() {
        for (id, _) in c.viewers {
            viewers.remove(id);
            sink.ready.push(id);
        }
    }
    flushed
}

/// Follow a running capture live: the stream starts with the pcap header,
/// then every record as it is made.
pub fn watch(
    slot: &mut Option<Box<Capture>>,
    at: PortAddr,
    viewer: ClientId,
) -> Result<(), ApiError> {
    let Some(c) = slot.as_mut() else {
        return Err(ApiError::conflict(format!(
            "No capture is running on port {}: start one first",
            at.port
        )));
    };
    c.viewers.push((viewer, pcap::file_header().to_vec()));
    Ok(())
}

/// What waits for `viewer` in a capture (taken).
pub fn output(slot: &mut Option<Box<Capture>>, viewer: ClientId) -> Option<Vec<u8>> {
    slot.as_mut()?
        .viewers
        .iter_mut()
        .find(|(id, _)| *id == viewer)
        .map(|(_, out)| std::mem::take(out))
}

/// Bytes waiting for `viewer` in a capture.
pub fn waiting(slot: &Option<Box<Capture>>, viewer: ClientId) -> usize {
    slot.as_ref()
        .and_then(|c| c.viewers.iter().find(|(id, _)| *id == viewer))
        .map_or(0, |(_, out)| out.len())
}

/// `viewer` stops following a capture.
pub fn unwatch(slot: &mut Option<Box<Capture>>, viewer: ClientId) {
    if let Some(c) = slot.as_mut() {
        c.viewers.retain(|(id, _)| *id != viewer);
    }
}
