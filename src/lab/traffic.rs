//! Rates and their recent history, from the ports' counters (no I/O, no
//! clock: the lab passes `now`).
//!
//! While a project is open, the lab samples the counters of every linked
//! port each [`SAMPLE_EVERY`] and keeps the last [`HISTORY`] samples of at
//! most [`MAX_WATCHED_PORTS`] ports (a few MiB at most). A rate is the
//! difference between the last two samples over the time between them, so
//! the browser never computes one, and a port's graph is the rates between
//! successive samples. Ports past the cap show their totals only.

use super::answer::{PortStats, Rate};
use crate::limits::{HISTORY, MAX_WATCHED_PORTS, SAMPLE_EVERY};
use std::collections::{HashMap, VecDeque};
use std::time::Instant;
use uuid::Uuid;

/// One sample of a port: when, and its counters then.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    /// Frames out, bytes out, frames in, bytes in, dropped.
    counts: [u64; 5],
}

impl Sample {
    fn of(at: Instant, s: &PortStats) -> Sample {
        Sample {
            at,
            counts: [
                s.out_frames,
                s.out_bytes,
                s.in_frames,
                s.in_bytes,
                s.dropped,
            ],
        }
    }

    /// The rates from `earlier` to this one.
    fn since(&self, earlier: &Sample) -> Rate {
        let dt = self.at.saturating_duration_since(earlier.at).as_secs_f64();
        let per_s = |i: usize| {
            let d = self.counts[i].saturating_sub(earlier.counts[i]);
            if dt > 0.0 { d as f64 / dt } else { 0.0 }
        };
        Rate {
            out_frames: per_s(0),
            out_bytes: per_s(1),
            in_frames: per_s(2),
            in_bytes: per_s(3),
            dropped: per_s(4),
        }
    }
}

/// The samples of the watched ports, and when to take the next.
#[derive(Debug, Default)]
pub struct Traffic {
    ports: HashMap<(Uuid, usize), VecDeque<Sample>>,
    next: Option<Instant>,
}

impl Traffic {
    /// When the next sample is due, if sampling runs.
    pub fn deadline(&self) -> Option<Instant> {
        self.next
    }

    /// Sample if due (`linked`: every linked port now, as node id, port
    /// index and counters); sampling stops while nothing is open (`open`
    /// false) and starts again when something is.
    pub fn poll<'a>(
        &mut self,
        now: Instant,
        open: bool,
        linked: impl Iterator<Item = (Uuid, usize, &'a PortStats)>,
    ) {
        if !open {
            self.ports.clear();
            self.next = None;
            return;
        }
        match self.next {
            Some(t) if t > now => return,
            _ => {}
        }
        self.next = Some(now + SAMPLE_EVERY);
        let mut seen = std::collections::HashSet::new();
        for (node, port, stats) in linked {
            let key = (node, port);
            seen.insert(key);
            if !self.ports.contains_key(&key) && self.ports.len() >= MAX_WATCHED_PORTS {
                continue;
            }
            let samples = self.ports.entry(key).or_default();
            // A counter that went back (a new NIO, counted from zero)
            // starts the history again.
            let restarted = samples.back().is_some_and(|last| {
                Sample::of(now, stats)
                    .counts
                    .iter()
                    .zip(last.counts)
                    .any(|(n, o)| *n < o)
            });
            if restarted {
                samples.clear();
            }
            if samples.len() > HISTORY {
                samples.pop_front();
            }
            samples.push_back(Sample::of(now, stats));
        }
        // Ports unlinked or gone are forgotten.
        self.ports.retain(|k, _| seen.contains(k));
    }

    /// A port's rate over the last sampling interval.
    pub fn rate(&self, node: Uuid, port: usize) -> Option<Rate> {
        let s = self.ports.get(&(node, port))?;
        let n = s.len();
        (n >= 2).then(|| s[n - 1].since(&s[n - 2]))
    }

    /// A port's rates between successive samples, oldest first.
    pub fn history(&self, node: Uuid, port: usize) -> Vec<Rate> {
        self.ports.get(&(node, port)).map_or_else(Vec::new, |s| {
            s.iter()
                .zip(s.iter().skip(1))
                .map(|(a, b)| b.since(a))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn stats(out_frames: u64, dropped: u64) -> PortStats {
        PortStats {
            out_frames,
            out_bytes: out_frames * 100,
            dropped,
            ..Default::default()
        }
    }

    #[test]
    fn rates_come_from_counters_over_time_and_history_is_bounded() {
        let (t0, id) = (Instant::now(), Uuid::new_v4());
        let mut t = Traffic::default();
        t.poll(t0, true, [(id, 0, &stats(0, 0))].into_iter());
        assert_eq!(t.rate(id, 0), None, "one sample is no rate");
        assert_eq!(t.deadline(), Some(t0 + SAMPLE_EVERY));
        t.poll(
            t0 + Duration::from_secs(1),
            true,
            [(id, 0, &stats(99, 0))].into_iter(),
        );
        assert_eq!(t.rate(id, 0), None, "not due yet: no sample taken");
        let t1 = t0 + SAMPLE_EVERY;
        t.poll(t1, true, [(id, 0, &stats(50, 5))].into_iter());
        let r = t.rate(id, 0).unwrap();
        let secs = SAMPLE_EVERY.as_secs_f64();
        assert_eq!(
            (r.out_frames, r.out_bytes, r.dropped),
            (50.0 / secs, 5000.0 / secs, 5.0 / secs)
        );
        for i in 2..(HISTORY as u64 + 20) {
            let at = t0 + SAMPLE_EVERY * i as u32;
            t.poll(at, true, [(id, 0, &stats(50 * i, 5))].into_iter());
        }
        assert_eq!(t.history(id, 0).len(), HISTORY, "the last few minutes only");
        // Unlinked: forgotten; nothing open: sampling stops.
        let later = t0 + SAMPLE_EVERY * 1000;
        t.poll(later, true, std::iter::empty());
        assert!(t.history(id, 0).is_empty());
        t.poll(later, false, std::iter::empty());
        assert_eq!(t.deadline(), None);
    }

    #[test]
    fn a_counter_that_went_back_restarts_the_history() {
        let (t0, id) = (Instant::now(), Uuid::new_v4());
        let mut t = Traffic::default();
        t.poll(t0, true, [(id, 1, &stats(500, 0))].into_iter());
        t.poll(t0 + SAMPLE_EVERY, true, [(id, 1, &stats(3, 0))].into_iter());
        assert_eq!(t.rate(id, 1), None, "no negative rate from a new link");
    }
}
