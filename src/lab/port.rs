//! A node's port and the path every frame takes through it (sans-IO):
//! link filters, capture, delay, counting. The lab's data plane calls
//! these for every kind.

use super::answer::PortStats;
use super::capture::{self, Capture, Sink};
use super::command::{LinkFilters, PortAddr};
use super::filters::{self, Filters};
use super::id::{Endpoint, NodeKey};
use super::types::Nio;
use super::vlan::PortMode;
use crate::error::ApiError;
use std::time::Instant;

/// One numbered port of a node.
#[derive(Debug)]
pub struct Port {
    /// Adapter number.
    pub adapter: u32,
    /// Port number on its adapter.
    pub number: u32,
    /// Its link to the world.
    pub nio: Option<Nio>,
    /// What crossed it since its NIO was attached.
    pub stats: PortStats,
    /// A switch port's VLAN mode.
    pub mode: Option<PortMode>,
    /// A running capture of what crosses it.
    pub capture: Option<Capture>,
    /// Link filters (GNS3 2.2), applied to what crosses it either way.
    pub filters: Option<Box<Filters>>,
}

impl Port {
    /// Replace its link filters; it must be linked. A BPF line that does
    /// not compile is skipped with a warning (returned), as 2.2 does.
    pub fn set_filters(
        &mut self,
        at: PortAddr,
        spec: LinkFilters,
    ) -> Result<Vec<String>, ApiError> {
        if self.nio.is_none() {
            return Err(ApiError::conflict(format!(
                "Port {} is not connected",
                at.port
            )));
        }
        let (filters, warnings) = Filters::new(spec);
        self.filters = (!filters.is_empty()).then(|| Box::new(filters));
        Ok(warnings)
    }

    /// A port without NIO.
    pub fn new(adapter: u32, number: u32) -> Self {
        Port {
            adapter,
            number,
            nio: None,
            stats: PortStats::default(),
            mode: None,
            capture: None,
            filters: None,
        }
    }
}

/// What link filters need across ports: a seeded generator (fixed, as
/// uBridge never seeds `random()`: runs repeat) and the delay queue.
#[derive(Debug)]
pub struct Wire {
    pub(crate) rng: filters::Rng,
    pub(crate) delayed: filters::DelayQueue<Held>,
}

impl Default for Wire {
    fn default() -> Self {
        Wire {
            rng: filters::Rng::new(0x9E37_79B9_7F4A_7C15),
            delayed: Default::default(),
        }
    }
}

/// A delayed frame's destination and the port that counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Held {
    pub(crate) to: Endpoint,
    pub(crate) port: (NodeKey, usize),
    pub(crate) outbound: bool,
}

/// A frame with nowhere to go (no NIO, or the PC is stopped): an incoming
/// one is still captured, as on a wire; counted as dropped.
fn unlinked(
    dirty: &mut Sink,
    (key, index): (NodeKey, usize),
    port: &mut Port,
    now: Instant,
    outbound: bool,
    frame: &[u8],
) {
    if !outbound {
        capture::record(dirty, key, index, &mut port.capture, now, frame);
    }
    port.stats.drop_unlinked();
}

/// A frame through a VPCS port without filters: capture, send, count.
#[inline]
pub(crate) fn plain_frame(
    dirty: &mut Sink,
    (key, index): (NodeKey, usize),
    port: &mut Port,
    now: Instant,
    (outbound, to): (bool, Option<Endpoint>),
    frame: &[u8],
    send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
) {
    let Some(to) = to else {
        return unlinked(dirty, (key, index), port, now, outbound, frame);
    };
    if !outbound {
        capture::record(dirty, key, index, &mut port.capture, now, frame);
    }
    let sent = send(to, frame);
    count(&mut port.stats, sent, outbound, frame.len());
    if sent && outbound {
        capture::record(dirty, key, index, &mut port.capture, now, frame);
    }
}

/// A frame through a VPCS port that has filters: filter, capture, then
/// send now or hold until due. Apart from the plain path so that a port
/// without filters pays one branch.
#[cold]
#[allow(clippy::too_many_arguments)]
pub(crate) fn filtered_frame(
    wire: &mut Wire,
    dirty: &mut Sink,
    (key, index): (NodeKey, usize),
    port: &mut Port,
    now: Instant,
    (outbound, to): (bool, Option<Endpoint>),
    frame: &[u8],
    send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
) {
    let Some((frame, due)) = filter(wire, port, now, outbound, frame) else {
        return;
    };
    let frame = &frame[..];
    let Some(to) = to else {
        return unlinked(dirty, (key, index), port, now, outbound, frame);
    };
    if let Some(due) = due {
        let at = (key, index);
        return hold(wire, dirty, at, port, (now, due), to, outbound, frame);
    }
    capture::record(dirty, key, index, &mut port.capture, now, frame);
    let sent = send(to, frame);
    count(&mut port.stats, sent, outbound, frame.len());
}

/// Run a port's filters on a frame: `None` when dropped (and counted),
/// otherwise the frame (a copy when corrupted) and when it may go, if it
/// is held back.
#[inline]
pub(crate) fn filter<'f>(
    wire: &mut Wire,
    port: &mut Port,
    now: Instant,
    outbound: bool,
    frame: &'f [u8],
) -> Option<(std::borrow::Cow<'f, [u8]>, Option<Instant>)> {
    use filters::Verdict;
    use std::borrow::Cow;
    let Some(f) = port.filters.as_deref_mut() else {
        return Some((Cow::Borrowed(frame), None));
    };
    match f.apply(now, outbound, frame, &mut wire.rng) {
        Verdict::Pass => Some((Cow::Borrowed(frame), None)),
        Verdict::Corrupted(c) => Some((Cow::Owned(c), None)),
        Verdict::Delay(due, c) => Some((c.map_or(Cow::Borrowed(frame), Cow::Owned), Some(due))),
        Verdict::Drop => {
            port.stats.drop_filtered();
            None
        }
    }
}

/// Capture a frame a delay filter holds back, then queue it until `due`
/// (as uBridge: filters, then capture, then the delay).
#[allow(clippy::too_many_arguments)]
pub(crate) fn hold(
    wire: &mut Wire,
    dirty: &mut Sink,
    (key, index): (NodeKey, usize),
    port: &mut Port,
    (now, due): (Instant, Instant),
    to: Endpoint,
    outbound: bool,
    frame: &[u8],
) {
    capture::record(dirty, key, index, &mut port.capture, now, frame);
    let held = Held {
        to,
        port: (key, index),
        outbound,
    };
    if !wire.delayed.push(due, held, frame.to_vec()) {
        port.stats.drop_filtered();
    }
}

/// Count a frame that crossed a port (or could not).
#[inline]
pub(crate) fn count(s: &mut PortStats, sent: bool, outbound: bool, len: usize) {
    let n = len as u64;
    match (sent, outbound) {
        (false, _) => s.drop_send(),
        (true, true) => {
            s.out_frames += 1;
            s.out_bytes += n;
        }
        (true, false) => {
            s.in_frames += 1;
            s.in_bytes += n;
        }
    }
}
