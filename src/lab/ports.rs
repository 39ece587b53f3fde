//! Port reservations (plain data, no I/O).
//!
//! A pool hands out the lowest port of its range that nobody has reserved and
//! that the caller's probe can really bind (the probe is the only I/O, and it
//! is passed in, so the pool is tested without sockets).

use crate::error::ApiError;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// Reserved ports of one kind (TCP consoles or UDP tunnels), each with its owner.
#[derive(Debug, Clone)]
pub struct PortPool {
    kind: &'static str,
    range: (u16, u16),
    reserved: BTreeMap<u16, Uuid>,
    /// Ports another program held when we last tried them.
    foreign: BTreeSet<u16>,
    /// Every port of the range below this one is reserved or foreign, so the
    /// search for a new port starts here and allocating N ports is not
    /// O(N²). Foreign ports below it are tried again on every allocation:
    /// the one that answers is the lowest free port.
    floor: u16,
}

impl PortPool {
    /// A pool over the inclusive `range`; `kind` names it in messages.
    pub fn new(kind: &'static str, range: (u16, u16)) -> Self {
        PortPool {
            kind,
            range,
            reserved: BTreeMap::new(),
            foreign: BTreeSet::new(),
            floor: range.0,
        }
    }

    /// Change the range (config reload); reservations are kept.
    pub fn set_range(&mut self, range: (u16, u16)) {
        self.range = range;
        self.floor = range.0;
        self.foreign.clear();
    }

    /// Reserve the lowest free port for which `bind` succeeds, returning what
    /// `bind` produced (a socket, or `()` when it only probed).
    pub fn reserve_lowest<T>(
        &mut self,
        owner: Uuid,
        mut bind: impl FnMut(u16) -> Option<T>,
    ) -> Result<(u16, T), ApiError> {
        let (lo, hi) = (self.range.0 as u32, self.range.1 as u32);
        let floor = (self.floor as u32).max(lo);
        let below: Vec<u16> = self
            .foreign
            .range(self.range.0..floor.min(hi + 1) as u16)
            .copied()
            .collect();
        for port in below {
            if let Some(bound) = bind(port) {
                self.foreign.remove(&port);
                self.reserved.insert(port, owner);
                return Ok((port, bound));
            }
        }
        let mut at_floor = true;
        for port in (floor..=hi).map(|p| p as u16) {
            if self.reserved.contains_key(&port) {
            } else if let Some(bound) = bind(port) {
                self.foreign.remove(&port);
                self.reserved.insert(port, owner);
                if at_floor {
                    self.floor = port.saturating_add(1);
                }
                return Ok((port, bound));
            } else {
                self.foreign.insert(port);
            }
            if at_floor {
                self.floor = port.saturating_add(1);
            }
            at_floor &= port < u16::MAX;
        }
        Err(self.exhausted())
    }

    /// Reserve the lowest `port` such that `port` and `port + offset` are both
    /// free, in range, and `bind(port)` succeeds (VPCS binds a port and a relay
    /// 9 above it). Scans the whole range: it runs once per VM start, next to
    /// a process spawn that costs far more.
    pub fn reserve_pair<T>(
        &mut self,
        owner: Uuid,
        offset: u16,
        mut bind: impl FnMut(u16) -> Option<T>,
    ) -> Result<(u16, T), ApiError> {
        let (lo, hi) = self.range;
        for port in lo..=hi.saturating_sub(offset) {
            let other = port + offset;
            if self.reserved.contains_key(&port) || self.reserved.contains_key(&other) {
                continue;
            }
            if let Some(bound) = bind(port) {
                self.reserved.insert(port, owner);
                self.reserved.insert(other, owner);
                return Ok((port, bound));
            }
        }
        Err(self.exhausted())
    }

    fn exhausted(&self) -> ApiError {
        let (lo, hi) = self.range;
        ApiError::conflict(format!(
            "No free {} port left in the range {lo}-{hi}",
            self.kind
        ))
    }

    /// Refuse a port outside the range, as GNS3 1.3.13 does for consoles.
    pub fn check_in_range(&self, port: u16) -> Result<(), ApiError> {
        let (lo, hi) = self.range;
        if (lo..=hi).contains(&port) {
            Ok(())
        } else {
            Err(ApiError::conflict(format!(
                "{} port {port} is outside the range {lo}-{hi}",
                capitalized(self.kind)
            )))
        }
    }

    /// Reserve `port` for `owner`; a port already held by `owner` is fine.
    pub fn reserve(&mut self, port: u16, owner: Uuid) -> Result<(), ApiError> {
        match self.reserved.get(&port) {
            Some(o) if *o != owner => Err(ApiError::conflict(format!(
                "{} port {port} is already in use",
                capitalized(self.kind)
            ))),
            _ => {
                self.reserved.insert(port, owner);
                Ok(())
            }
        }
    }

    /// Every reservation, lowest port first.
    pub fn reservations(&self) -> impl Iterator<Item = (u16, Uuid)> + '_ {
        self.reserved.iter().map(|(p, o)| (*p, *o))
    }

    /// Who reserved `port`.
    pub fn owner(&self, port: u16) -> Option<Uuid> {
        self.reserved.get(&port).copied()
    }

    /// Whether `port` is reserved by anyone.
    pub fn is_reserved(&self, port: u16) -> bool {
        self.reserved.contains_key(&port)
    }

    /// Give `port` back.
    pub fn release(&mut self, port: u16) {
        if self.reserved.remove(&port).is_some() {
            self.floor = self.floor.min(port);
        }
    }

    /// Give back every port held by `owner`.
    pub fn release_owner(&mut self, owner: Uuid) {
        let floor = &mut self.floor;
        self.reserved.retain(|port, o| {
            let keep = *o != owner;
            if !keep {
                *floor = (*floor).min(*port);
            }
            keep
        });
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_and_bindable_port_wins() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut p = PortPool::new("UDP", (10000, 10003));
        assert_eq!(p.reserve_lowest(a, |_| Some(())).unwrap().0, 10000);
        // 10001 is bound by someone outside the server.
        assert_eq!(
            p.reserve_lowest(a, |port| (port != 10001).then_some(()))
                .unwrap()
                .0,
            10002
        );
        p.release(10000);
        assert_eq!(p.reserve_lowest(b, |_| Some(())).unwrap().0, 10000);
        assert_eq!(p.reserve_lowest(b, |_| Some(())).unwrap().0, 10001);
        assert_eq!(p.reserve_lowest(b, |_| Some(())).unwrap().0, 10003);
        let err = p.reserve_lowest(b, |_| Some(())).unwrap_err();
        assert_eq!(err.status(), 409);
        assert!(err.to_string().contains("10000-10003"), "{err}");
        p.release_owner(a);
        assert!(!p.is_reserved(10002));
    }

    #[test]
    fn the_floor_never_hides_a_free_port() {
        let a = Uuid::new_v4();
        let mut p = PortPool::new("console", (1, 1000));
        for want in 1..=500 {
            assert_eq!(p.reserve_lowest(a, |_| Some(())).unwrap().0, want);
        }
        p.release(7);
        p.release(300);
        assert_eq!(p.reserve_lowest(a, |_| Some(())).unwrap().0, 7);
        assert_eq!(p.reserve_lowest(a, |_| Some(())).unwrap().0, 300);
        // A port someone else holds is skipped but not forgotten.
        assert_eq!(
            p.reserve_lowest(a, |port| (port != 501).then_some(()))
                .unwrap()
                .0,
            502
        );
        assert_eq!(p.reserve_lowest(a, |_| Some(())).unwrap().0, 501);
        p.release_owner(a);
        assert_eq!(p.reserve_lowest(a, |_| Some(())).unwrap().0, 1);
        let mut top = PortPool::new("UDP", (65534, 65535));
        top.reserve_lowest(a, |_| Some(())).unwrap();
        top.reserve_lowest(a, |_| Some(())).unwrap();
        assert!(
            top.reserve_lowest(a, |_| Some(())).is_err(),
            "no overflow at the top of the port space"
        );
    }

    #[test]
    fn pairs_need_both_ports_free() {
        let a = Uuid::new_v4();
        let mut p = PortPool::new("UDP", (100, 120));
        p.reserve(109, a).unwrap();
        // 100 is free but 109 is not; 101 and 110 are both free.
        assert_eq!(p.reserve_pair(a, 9, |_| Some(())).unwrap().0, 101);
        assert!(p.is_reserved(110));
        let mut small = PortPool::new("UDP", (100, 105));
        assert!(small.reserve_pair(a, 9, |_| Some(())).is_err());
    }

    #[test]
    fn explicit_reservation_conflicts_with_other_owner_only() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut p = PortPool::new("console", (2000, 2010));
        p.reserve(2005, a).unwrap();
        p.reserve(2005, a).unwrap();
        assert!(p.check_in_range(2010).is_ok());
        let out = p.check_in_range(22).unwrap_err();
        assert_eq!(
            out.to_string(),
            "Console port 22 is outside the range 2000-2010"
        );
        let err = p.reserve(2005, b).unwrap_err();
        assert!(err.to_string().contains("2005") && err.to_string().starts_with("Console"));
    }
}
