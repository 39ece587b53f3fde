//! A node's port and the one path every frame takes through it
//! (sans-IO), in uBridge's order: link filters, capture, delay, count.
//! [`Port::ingress`] takes a frame from the port's NIO toward the node,
//! [`Port::egress`] one from the node toward the NIO; each answers with a
//! [`Pass`]. Every kind uses them, and so do frames handed to a local
//! peer and frames a delay held back.

use super::answer::PortStats;
use super::capture::{self, Capture, Sink};
use super::command::{LinkFilters, PortAddr};
use super::filters::{self, Filters};
use super::id::{Endpoint, NodeKey};
use super::types::Nio;
use super::vlan::PortMode;
use crate::error::ApiError;
use std::borrow::Cow;
use std::time::Instant;

/// One numbered port of a node.
#[derive(Debug)]
pub struct Port {
    /// Adapter number.
    pub adapter: u32,
    /// Port number on its adapter.
    pub number: u32,
    /// Its link to the world.
    pub nio: Option<Box<Nio>>,
    /// What crossed it since its NIO was attached.
    pub stats: PortStats,
    /// A switch port's VLAN mode.
    pub mode: Option<PortMode>,
    /// A running capture of what crosses it.
    pub capture: Option<Box<Capture>>,
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

/// What the port lets through.
#[derive(Debug, PartialEq, Eq)]
pub enum Pass<'f> {
    /// Deliver this (the frame, or a corrupted copy) now; then count it
    /// ([`Port::delivered`], [`Port::sent`]).
    Now(Cow<'f, [u8]>),
    /// A delay filter holds it until then; the caller holds it
    /// ([`Tap::hold`]) or, for a frame that fans out, what it becomes.
    Later(Instant, Cow<'f, [u8]>),
    /// Dropped here, and counted.
    Dropped,
}

/// What a frame's passage may touch besides its port: the wire's
/// randomness and delay queue, the capture sink, where and when.
pub struct Tap<'a> {
    /// Filter randomness and delayed frames.
    pub wire: &'a mut Wire,
    /// Captures with records to write.
    pub sink: &'a mut Sink,
    /// The port: its node's key and its index.
    pub at: (NodeKey, usize),
    /// Now.
    pub now: Instant,
}

impl Tap<'_> {
    /// Hold a frame a delay filter delayed until `due`, then send it to
    /// `to` and count it on this port (see [`Plane::release`]).
    ///
    /// [`Plane::release`]: super::plane::Plane::release
    pub fn hold(
        &mut self,
        port: &mut Port,
        to: Endpoint,
        outbound: bool,
        due: Instant,
        frame: &[u8],
    ) {
        if outbound {
            self.record(port, frame);
        }
        let held = Held {
            to,
            port: self.at,
            outbound,
        };
        if !self.wire.delayed.push(due, held, frame.to_vec()) {
            port.stats.drop_filtered();
        }
    }

    fn record(&mut self, port: &mut Port, frame: &[u8]) {
        let (key, index) = self.at;
        capture::record(self.sink, key, index, &mut port.capture, self.now, frame);
    }
}

impl Port {
    /// A frame from the NIO toward the node: filters, then capture, then
    /// delay. `open`: the node takes frames (else it is dropped, counted
    /// as unlinked, as on a wire).
    #[inline]
    pub fn ingress<'f>(&mut self, t: &mut Tap, frame: &'f [u8], open: bool) -> Pass<'f> {
        let (frame, due) = match self.filter(t, false, frame) {
            Some(f) => f,
            None => return Pass::Dropped,
        };
        t.record(self, &frame);
        if !open {
            self.stats.drop_unlinked();
            return Pass::Dropped;
        }
        match due {
            Some(due) => Pass::Later(due, frame),
            None => Pass::Now(frame),
        }
    }

    /// A frame from the node toward the NIO: filters, then delay (at
    /// least until `held`, when what it answers was held); captured once
    /// sent ([`Port::sent`]) or held.
    #[inline]
    pub fn egress<'f>(&mut self, t: &mut Tap, frame: &'f [u8], held: Option<Instant>) -> Pass<'f> {
        if self.nio.is_none() {
            self.stats.drop_unlinked();
            return Pass::Dropped;
        }
        match self.filter(t, true, frame) {
            None => Pass::Dropped,
            Some((frame, due)) => match due.max(held) {
                Some(due) => Pass::Later(due, frame),
                None => Pass::Now(frame),
            },
        }
    }

    /// A frame that passed [`Port::ingress`] was handed to the node (or
    /// could not be).
    #[inline]
    pub fn delivered(&mut self, ok: bool, len: usize) {
        count(&mut self.stats, ok, false, len);
    }

    /// A frame that passed [`Port::egress`] was sent (or could not be):
    /// counted, and captured when it left.
    #[inline]
    pub fn sent(&mut self, t: &mut Tap, ok: bool, frame: &[u8]) {
        count(&mut self.stats, ok, true, frame.len());
        if ok {
            t.record(self, frame);
        }
    }

    /// A frame counted sent by [`Port::sent`] or [`Port::delivered`] that
    /// the host could not send after all: a send drop instead.
    pub fn unsent(&mut self, outbound: bool, len: usize) {
        let s = &mut self.stats;
        let (frames, bytes) = if outbound {
            (&mut s.out_frames, &mut s.out_bytes)
        } else {
            (&mut s.in_frames, &mut s.in_bytes)
        };
        *frames = frames.saturating_sub(1);
        *bytes = bytes.saturating_sub(len as u64);
        s.drop_send();
    }

    /// The port's filters on a frame: `None` when dropped (and counted),
    /// else the frame (a copy when corrupted) and when it may go, if it is
    /// held back.
    #[inline]
    fn filter<'f>(
        &mut self,
        t: &mut Tap,
        outbound: bool,
        frame: &'f [u8],
    ) -> Option<(Cow<'f, [u8]>, Option<Instant>)> {
        let Some(f) = self.filters.as_deref_mut() else {
            return Some((Cow::Borrowed(frame), None));
        };
        filtered(f, &mut self.stats, t, outbound, frame)
    }
}

/// [`Port::filter`] for a port that has filters, apart so that a port
/// without pays one branch.
#[cold]
fn filtered<'f>(
    f: &mut Filters,
    stats: &mut PortStats,
    t: &mut Tap,
    outbound: bool,
    frame: &'f [u8],
) -> Option<(Cow<'f, [u8]>, Option<Instant>)> {
    use filters::Verdict;
    match f.apply(t.now, outbound, frame, &mut t.wire.rng) {
        Verdict::Pass => Some((Cow::Borrowed(frame), None)),
        Verdict::Corrupted(c) => Some((Cow::Owned(c), None)),
        Verdict::Delay(due, c) => Some((c.map_or(Cow::Borrowed(frame), Cow::Owned), Some(due))),
        Verdict::Drop => {
            stats.drop_filtered();
            None
        }
    }
}

/// Count a frame that crossed a port (or could not).
#[inline]
pub fn count(s: &mut PortStats, sent: bool, outbound: bool, len: usize) {
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
