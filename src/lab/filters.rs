//! Link filters (GNS3 2.2's `filters` and `suspend` on a NIO), applied to
//! each frame that crosses the port in either direction, before capture:
//! frequency drop, packet loss, corruption, BPF drop rules and delay with
//! jitter. Sans-IO: randomness comes from the lab's seeded [`Rng`], time
//! from the caller, and delayed frames wait in the lab's [`DelayQueue`]
//! (the timer heap), never in a sleep.
//!
//! BPF expressions are compiled and matched by libpcap (loaded on first use, see `sys::bpf_compile`),
//! which is pure computation: no capture device is opened.

use crate::lab::types::LinkFilters;
use crate::limits::{MAX_DELAYED_BYTES, MAX_DELAYED_FRAMES};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// xorshift64*: a small, fast, seedable generator. Link impairments need
/// cheap uniform draws, not cryptographic ones, and tests need to replay
/// them.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; zero is remapped).
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        // The top bits are the best ones of xorshift64*.
        ((u128::from(self.next_u64() >> 11) * u128::from(n)) >> 53) as u64
    }
}

/// A compiled BPF drop rule.
pub struct Bpf {
    expr: String,
    program: Vec<crate::sys::BpfInsn>,
}

impl std::fmt::Debug for Bpf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bpf({:?})", self.expr)
    }
}

/// Compile one expression for Ethernet frames with libpcap.
pub fn compile_bpf(expr: &str) -> Result<Bpf, String> {
    let program = crate::sys::bpf_compile(expr)?;
    Ok(Bpf {
        expr: expr.to_string(),
        program,
    })
}

/// What the filters decided for one frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Goes on, now, unchanged.
    Pass,
    /// Goes on, now, with one byte changed (the frame was copied).
    Corrupted(Vec<u8>),
    /// Dropped by a filter.
    Drop,
    /// Goes on at `due` (with one byte changed when corrupted).
    Delay(Instant, Option<Vec<u8>>),
}

/// The filters of one port, compiled, with their state.
#[derive(Debug, Default)]
pub struct Filters {
    spec: LinkFilters,
    bpf: Vec<Bpf>,
    /// Frames seen, for `frequency_drop`.
    seen: u64,
    /// The last release time per direction (to the node / from it), so that
    /// delayed frames keep their order.
    last_due: [Option<Instant>; 2],
    /// Where `corrupt` is in its XOR pattern (it carries on across frames).
    pattern: usize,
}

/// uBridge's corruption: XOR the middle quarter of the frame (`len / 4`
/// bytes from `len / 2 - len / 8 + 1`) with a repeating 8-byte pattern
/// whose position carries on from frame to frame. Checksums are not fixed,
/// so the receiver sees a damaged frame, as on a GNS3 2.2 link.
pub fn corrupt(frame: &mut [u8], pattern: &mut usize) {
    const PATTERN: [u8; 8] = [0x64, 0x13, 0x88, 0x40, 0x1F, 0xA0, 0xAA, 0x55];
    let n = frame.len() / 4;
    let start = (frame.len() / 2 - n / 2 + 1).min(frame.len() - n);
    for b in &mut frame[start..start + n] {
        *b ^= PATTERN[*pattern & 7];
        *pattern = pattern.wrapping_add(1);
    }
}

impl Filters {
    /// Compile `spec`. Returns the filters and a warning per BPF line that
    /// does not compile (that line is skipped, as 2.2 does).
    pub fn new(spec: LinkFilters) -> (Self, Vec<String>) {
        let mut warnings = Vec::new();
        let mut bpf = Vec::new();
        for line in spec.bpf.iter().flat_map(|b| b.lines()) {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            match compile_bpf(line) {
                Ok(p) => bpf.push(p),
                Err(e) => warnings.push(format!("BPF filter '{line}' ignored: {e}")),
            }
        }
        let f = Filters {
            spec,
            bpf,
            ..Default::default()
        };
        (f, warnings)
    }

    /// Whether frames cross untouched (the fast path).
    pub fn is_empty(&self) -> bool {
        self.spec.is_empty()
    }

    /// Decide for one frame going `outbound` (from the node) or in.
    pub fn apply(&mut self, now: Instant, outbound: bool, frame: &[u8], rng: &mut Rng) -> Verdict {
        let s = &self.spec;
        if s.suspend || s.frequency_drop == Some(-1) {
            return Verdict::Drop;
        }
        self.seen += 1;
        if let Some(n) = s.frequency_drop.filter(|n| *n > 0)
            && self.seen.is_multiple_of(n as u64)
        {
            return Verdict::Drop;
        }
        if let Some(p) = s.packet_loss
            && rng.below(100) < u64::from(p)
        {
            return Verdict::Drop;
        }
        if self
            .bpf
            .iter()
            .any(|b| crate::sys::bpf_matches(&b.program, frame))
        {
            return Verdict::Drop;
        }
        let corrupted = match s.corrupt {
            Some(p) if rng.below(100) < u64::from(p) => {
                let mut copy = frame.to_vec();
                corrupt(&mut copy, &mut self.pattern);
                Some(copy)
            }
            _ => None,
        };
        let Some((latency, jitter)) = s.delay.filter(|(l, j)| *l > 0 || *j > 0) else {
            return corrupted.map_or(Verdict::Pass, Verdict::Corrupted);
        };
        let jitter = i64::from(jitter);
        let offset = rng.below(2 * jitter as u64 + 1) as i64 - jitter;
        let ms = (i64::from(latency) + offset).max(0) as u64;
        let last = &mut self.last_due[usize::from(outbound)];
        // Never ahead of the frame before it: order is kept.
        let due = (now + Duration::from_millis(ms)).max(last.unwrap_or(now));
        *last = Some(due);
        Verdict::Delay(due, corrupted)
    }
}

/// A frame held back by a `delay` filter.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Delayed<T: Ord> {
    /// When it goes.
    pub due: Instant,
    /// Arrival order, to break ties.
    seq: u64,
    /// Where it goes.
    pub to: T,
    /// The frame.
    pub frame: Vec<u8>,
}

/// Frames held back by delay filters, earliest first; bounded in frames
/// and bytes (past the bounds a frame is dropped, as a full queue does).
#[derive(Debug)]
pub struct DelayQueue<T: Ord> {
    heap: BinaryHeap<Reverse<Delayed<T>>>,
    bytes: usize,
    seq: u64,
}

impl<T: Ord> Default for DelayQueue<T> {
    fn default() -> Self {
        DelayQueue {
            heap: BinaryHeap::new(),
            bytes: 0,
            seq: 0,
        }
    }
}

impl<T: Ord> DelayQueue<T> {
    /// Hold `frame` for `to` until `due`; false (dropped) when full.
    pub fn push(&mut self, due: Instant, to: T, frame: Vec<u8>) -> bool {
        if self.heap.len() >= MAX_DELAYED_FRAMES || self.bytes + frame.len() > MAX_DELAYED_BYTES {
            return false;
        }
        self.bytes += frame.len();
        self.seq += 1;
        self.heap.push(Reverse(Delayed {
            due,
            seq: self.seq,
            to,
            frame,
        }));
        true
    }

    /// The next frame due by `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Delayed<T>> {
        if self.heap.peek()?.0.due > now {
            return None;
        }
        let d = self.heap.pop()?.0;
        self.bytes -= d.frame.len();
        Some(d)
    }

    /// When the next frame is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|d| d.0.due)
    }

    /// Keep only the frames `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let heap = std::mem::take(&mut self.heap);
        self.heap = heap.into_iter().filter(|d| keep(&d.0.to)).collect();
        self.bytes = self.heap.iter().map(|d| d.0.frame.len()).sum();
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(f: LinkFilters) -> Filters {
        let (f, warnings) = Filters::new(f);
        assert!(warnings.is_empty(), "{warnings:?}");
        f
    }

    /// An Ethernet frame carrying IPv4 with protocol `proto`.
    fn ipv4(proto: u8) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&28u16.to_be_bytes());
        f[22] = 64;
        f[23] = proto;
        f
    }

    #[test]
    fn no_filter_passes_everything() {
        let mut f = filters(LinkFilters::default());
        let mut rng = Rng::new(1);
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(f.apply(now, true, &ipv4(1), &mut rng), Verdict::Pass);
        }
    }

    #[test]
    fn frequency_drop_drops_every_nth_and_minus_one_drops_all() {
        let mut rng = Rng::new(1);
        let now = Instant::now();
        let mut f = filters(LinkFilters {
            frequency_drop: Some(3),
            ..Default::default()
        });
        let dropped: Vec<usize> = (1..=12)
            .filter(|_| f.apply(now, false, &ipv4(1), &mut rng) == Verdict::Drop)
            .collect();
        assert_eq!(dropped.len(), 4);
        let mut f = filters(LinkFilters {
            frequency_drop: Some(3),
            ..Default::default()
        });
        let pattern: Vec<bool> = (0..6)
            .map(|_| f.apply(now, false, &ipv4(1), &mut rng) == Verdict::Drop)
            .collect();
        assert_eq!(pattern, [false, false, true, false, false, true]);
        for spec in [
            LinkFilters {
                frequency_drop: Some(-1),
                ..Default::default()
            },
            LinkFilters {
                suspend: true,
                ..Default::default()
            },
        ] {
            let mut f = filters(spec);
            assert!((0..100).all(|_| f.apply(now, true, &ipv4(1), &mut rng) == Verdict::Drop));
        }
    }

    #[test]
    fn packet_loss_rate_is_within_tolerance_over_10000_frames() {
        let now = Instant::now();
        for (percent, seed) in [(5u8, 7u64), (30, 8), (50, 9)] {
            let mut rng = Rng::new(seed);
            let mut f = filters(LinkFilters {
                packet_loss: Some(percent),
                ..Default::default()
            });
            let lost = (0..10_000)
                .filter(|_| f.apply(now, true, &ipv4(1), &mut rng) == Verdict::Drop)
                .count();
            let expected = f64::from(percent) * 100.0;
            // Binomial standard deviation is at most 50 here; allow 4 of them.
            assert!(
                (lost as f64 - expected).abs() < 200.0,
                "{percent}%: {lost} lost of 10000"
            );
        }
    }

    #[test]
    fn corruption_xors_the_middle_quarter_as_ubridge_does() {
        let now = Instant::now();
        let mut rng = Rng::new(3);
        let mut f = filters(LinkFilters {
            corrupt: Some(100),
            ..Default::default()
        });
        let frame = vec![0u8; 64];
        // 64 bytes: 16 bytes from offset 32 - 8 + 1 = 25, pattern from 0.
        let Verdict::Corrupted(c) = f.apply(now, true, &frame, &mut rng) else {
            panic!("not corrupted")
        };
        let changed: Vec<usize> = (0..64).filter(|&i| c[i] != 0).collect();
        assert_eq!(changed, (25..41).collect::<Vec<_>>());
        assert_eq!(
            &c[25..33],
            &[0x64, 0x13, 0x88, 0x40, 0x1F, 0xA0, 0xAA, 0x55]
        );
        // The pattern carries on: a 12-byte frame gets 3 bytes from 6,
        // with the pattern where the last frame left it (16 % 8 = 0).
        let Verdict::Corrupted(c) = f.apply(now, true, &[0u8; 12], &mut rng) else {
            panic!()
        };
        assert_eq!(c, [0, 0, 0, 0, 0, 0, 0x64, 0x13, 0x88, 0, 0, 0]);
        // Frames shorter than 4 bytes have no quarter to change.
        assert_eq!(
            f.apply(now, true, &[7, 7, 7], &mut rng),
            Verdict::Corrupted(vec![7, 7, 7])
        );
        let frame = ipv4(1);
        let mut f = filters(LinkFilters {
            corrupt: Some(20),
            ..Default::default()
        });
        let n = (0..10_000)
            .filter(|_| matches!(f.apply(now, true, &frame, &mut rng), Verdict::Corrupted(_)))
            .count();
        assert!((1800..2200).contains(&n), "{n}");
    }

    #[test]
    fn delay_and_jitter_are_distributed_around_the_latency_and_keep_order() {
        let start = Instant::now();
        let mut rng = Rng::new(11);
        let mut f = filters(LinkFilters {
            delay: Some((100, 10)),
            ..Default::default()
        });
        let mut last = start;
        let mut sum = 0.0;
        let mut min = u128::MAX;
        let mut max = 0;
        // Frames 50 ms apart: jitter never reorders them, so each delay is
        // latency + jitter exactly.
        for i in 0..10_000u64 {
            let now = start + Duration::from_millis(50 * i);
            let Verdict::Delay(due, None) = f.apply(now, false, &ipv4(1), &mut rng) else {
                panic!()
            };
            assert!(due >= last, "order kept");
            last = due;
            let d = (due - now).as_millis();
            (min, max) = (min.min(d), max.max(d));
            sum += d as f64;
        }
        assert_eq!((min, max), (90, 110));
        let mean = sum / 10_000.0;
        assert!((mean - 100.0).abs() < 0.5, "mean {mean}");
        // Back-to-back frames: a later frame never overtakes an earlier one.
        let mut last = start;
        for _ in 0..1000 {
            let Verdict::Delay(due, _) = f.apply(start, true, &ipv4(1), &mut rng) else {
                panic!()
            };
            assert!(due >= last);
            last = due;
        }
    }

    #[test]
    fn bpf_lines_drop_matching_frames_and_bad_lines_warn() {
        let now = Instant::now();
        let mut rng = Rng::new(1);
        let (mut f, warnings) = Filters::new(LinkFilters {
            bpf: vec!["icmp\nnot a valid ((expression\n\nudp port 53".into()],
            ..Default::default()
        });
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("not a valid"), "{warnings:?}");
        assert_eq!(f.apply(now, true, &ipv4(1), &mut rng), Verdict::Drop);
        assert_eq!(f.apply(now, true, &ipv4(6), &mut rng), Verdict::Pass);
    }

    #[test]
    fn the_delay_queue_releases_in_time_order_and_is_bounded() {
        let t = Instant::now();
        let mut q = DelayQueue::default();
        assert!(q.push(t + Duration::from_millis(20), 2u8, vec![2]));
        assert!(q.push(t + Duration::from_millis(10), 1u8, vec![1]));
        assert!(q.push(t + Duration::from_millis(10), 3u8, vec![3]));
        assert_eq!(q.next_due(), Some(t + Duration::from_millis(10)));
        assert!(q.pop_due(t).is_none());
        let order: Vec<u8> = std::iter::from_fn(|| q.pop_due(t + Duration::from_secs(1)))
            .map(|d| d.to)
            .collect();
        assert_eq!(order, [1, 3, 2]);
        for _ in 0..MAX_DELAYED_FRAMES {
            assert!(q.push(t, 0u8, vec![0]));
        }
        assert!(!q.push(t, 0u8, vec![0]));
        q.retain(|_| false);
        assert!(q.is_empty());
    }
}
