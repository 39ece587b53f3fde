//! The Ethernet switch (sans-IO). Its forwarding decision: MAC learning per
//! VLAN with ageing, access, 802.1Q trunk and QinQ ports, flooding within
//! a VLAN, never back out of the port a frame came in on. A pure function
//! over (table, ports, ingress port, frame, now).

use super::{Behaviour, Ctx, Echo, Face, FrameCx, device};
use crate::error::ApiError;
use crate::lab::answer::Body;
use crate::lab::command::{DeviceType, NodeClass, NodeCommand, PortAddr, PortSettings};
use crate::lab::id::Endpoint;
use crate::lab::port::Port;
pub use crate::lab::vlan::PortMode;
pub use crate::limits::{MAC_AGEING, MAX_MACS};
use crate::proto::ethernet::{self, Mac};
use std::collections::HashMap;
use std::time::Instant;

/// Learnt addresses: (VLAN, MAC) → (port, last seen).
#[derive(Debug, Default)]
pub struct MacTable {
    entries: HashMap<(u16, Mac), (usize, Instant)>,
}

impl MacTable {
    /// The port `mac` was last seen on in `vlan`, if not aged out.
    pub fn lookup(&self, vlan: u16, mac: &Mac, now: Instant) -> Option<usize> {
        let &(port, seen) = self.entries.get(&(vlan, *mac))?;
        (now.saturating_duration_since(seen) < MAC_AGEING).then_some(port)
    }

    fn learn(&mut self, vlan: u16, mac: Mac, port: usize, now: Instant) {
        if self.entries.len() >= MAX_MACS && !self.entries.contains_key(&(vlan, mac)) {
            self.entries
                .retain(|_, (_, seen)| now.saturating_duration_since(*seen) < MAC_AGEING);
            if self.entries.len() >= MAX_MACS {
                return;
            }
        }
        self.entries.insert((vlan, mac), (port, now));
    }

    /// Forget what was learnt on `port` (its NIO or settings changed).
    pub fn forget_port(&mut self, port: usize) {
        self.entries.retain(|_, (p, _)| *p != port);
    }

    /// Every live entry: (VLAN, MAC, port), for the status page and logs.
    pub fn entries(&self, now: Instant) -> Vec<(u16, Mac, usize)> {
        let mut v: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, (_, seen))| now.saturating_duration_since(*seen) < MAC_AGEING)
            .map(|(&(vlan, mac), &(port, _))| (vlan, mac, port))
            .collect();
        v.sort_unstable();
        v
    }
}

/// Where a frame arriving on port `from` goes: its VLAN, the frame as the
/// switch carries it when that is not the frame itself (a tag removed),
/// and in `dests` (cleared first) each port it leaves by, with that port's
/// mode. `mode_of(i)` is port `i`'s mode, `None` when it has no NIO. No
/// frame is copied here, and `dests` is the caller's, kept between frames.
pub fn route(
    table: &mut MacTable,
    mode_of: &dyn Fn(usize) -> Option<PortMode>,
    nports: usize,
    from: usize,
    frame: &[u8],
    now: Instant,
    dests: &mut Vec<(usize, PortMode)>,
) -> Option<(u16, Option<Vec<u8>>)> {
    dests.clear();
    let mode = mode_of(from)?;
    let (dst, src) = (ethernet::dst(frame)?, ethernet::src(frame)?);
    let (vlan, inner) = mode.ingress(frame)?;
    if !ethernet::is_group(&src) {
        table.learn(vlan, src, from, now);
    }
    let known = (!ethernet::is_group(&dst))
        .then(|| table.lookup(vlan, &dst, now))
        .flatten();
    let out = |p: usize| mode_of(p).filter(|m| m.carries(vlan)).map(|m| (p, m));
    match known {
        Some(p) if p == from => {}
        Some(p) => dests.extend(out(p)),
        None => dests.extend((0..nports).filter(|&p| p != from).filter_map(out)),
    }
    Some((vlan, inner))
}

/// An Ethernet switch: what it holds besides its ports.
#[derive(Debug, Default)]
pub struct Switch {
    /// Learnt addresses.
    pub table: MacTable,
    /// Where the frame being switched goes (kept: no allocation per frame).
    dests: Vec<(usize, PortMode)>,
}

impl Behaviour for Switch {
    fn name(&self) -> &'static str {
        "Ethernet switch"
    }

    fn word(&self) -> &'static str {
        "switch"
    }

    fn class(&self) -> NodeClass {
        NodeClass::Device
    }

    fn accepts(&self, cmd: &NodeCommand) -> bool {
        device::accepts(cmd)
    }

    fn view(&self, n: &Face) -> Body {
        device::view(n, DeviceType::Switch)
    }

    fn port_index(&self, ports: &[Port], at: PortAddr) -> Result<usize, ApiError> {
        device::port_index(ports, at.port)
    }

    fn port_label(&self, port: &Port) -> String {
        port.number.to_string()
    }

    fn nio_port(
        &mut self,
        cx: &mut Ctx,
        at: PortAddr,
        settings: Option<PortSettings>,
    ) -> Result<usize, ApiError> {
        device::nio_port(cx, at.port, settings, true)
    }

    fn nio_changed(&mut self, ports: &mut [Port], index: usize, linked: bool) {
        self.table.forget_port(index);
        if !linked && let Some(p) = ports.get_mut(index) {
            p.mode = None;
        }
    }

    fn command(&mut self, cx: &mut Ctx, cmd: NodeCommand) -> Result<(), ApiError> {
        let table = &mut self.table;
        let mut changed = |i: usize| table.forget_port(i);
        match cmd {
            NodeCommand::UpdateDevice(b) => device::update(cx, b, true, &mut changed),
            NodeCommand::UpdateMapping(name, mapping) => {
                device::update_mapping(cx, name, mapping, &mut changed)
            }
            _ => Err(ApiError::conflict(format!(
                "Ethernet switch {} does not take this request",
                cx.name
            ))),
        }
    }

    #[inline]
    fn on_frame(
        &mut self,
        fx: &mut FrameCx,
        index: usize,
        _outbound: bool,
        frame: &[u8],
        send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
    ) -> Echo {
        let now = fx.now;
        let Switch { table, dests } = self;
        device::switch_frame(fx, index, frame, send, dests, |ports, frame, dests| {
            let mode_of = |i: usize| ports.get(i).and_then(|p| p.nio.as_ref().and(p.mode));
            route(table, &mode_of, ports.len(), index, frame, now, dests)
        });
        Echo::default()
    }

    fn mac_table(&self, now: Instant) -> Vec<(u16, Mac, usize)> {
        self.table.entries(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Mac = [0x00, 0x50, 0x79, 0x66, 0x68, 0x0a];
    const B: Mac = [0x00, 0x50, 0x79, 0x66, 0x68, 0x0b];

    /// An Ethernet II frame from `src` to `dst` with an IPv4 EtherType.
    fn frame(dst: Mac, src: Mac) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&[0x45; 46]);
        f
    }

    /// [`route`], with every frame as it leaves (for the tests).
    fn forward(
        table: &mut MacTable,
        ports: &[Option<PortMode>],
        from: usize,
        frame: &[u8],
        now: Instant,
    ) -> Vec<(usize, Vec<u8>)> {
        let mut dests = Vec::new();
        let mode_of = |i: usize| ports.get(i).copied().flatten();
        let Some((vlan, inner)) = route(table, &mode_of, ports.len(), from, frame, now, &mut dests)
        else {
            return Vec::new();
        };
        let inner = inner.as_deref().unwrap_or(frame);
        dests
            .iter()
            .map(|&(p, m)| (p, m.egress(vlan, inner).into_owned()))
            .collect()
    }

    fn ports_of(out: &[(usize, Vec<u8>)]) -> Vec<usize> {
        out.iter().map(|(p, _)| *p).collect()
    }

    #[test]
    fn unknown_and_broadcast_frames_flood_within_the_vlan_only() {
        use PortMode::Access;
        let ports = [
            Some(Access(10)),
            Some(Access(10)),
            Some(Access(20)),
            None,
            Some(Access(10)),
        ];
        let mut t = MacTable::default();
        let now = Instant::now();
        let out = forward(&mut t, &ports, 0, &frame([0xff; 6], A), now);
        assert_eq!(
            ports_of(&out),
            [1, 4],
            "not VLAN 20, not back, not a port without NIO"
        );
        // B answers from port 4: learnt; A is known on port 0.
        let out = forward(&mut t, &ports, 4, &frame(A, B), now);
        assert_eq!(ports_of(&out), [0]);
        let out = forward(&mut t, &ports, 0, &frame(B, A), now);
        assert_eq!(ports_of(&out), [4], "unicast to the learnt port");
        // Across VLANs: never.
        let out = forward(&mut t, &ports, 2, &frame(A, B), now);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(t.entries(now).len(), 3, "A and B in VLAN 10, B in VLAN 20");
    }

    #[test]
    fn learnt_addresses_age_out() {
        let ports = [
            Some(PortMode::Access(1)),
            Some(PortMode::Access(1)),
            Some(PortMode::Access(1)),
        ];
        let mut t = MacTable::default();
        let now = Instant::now();
        forward(&mut t, &ports, 1, &frame(A, B), now);
        assert_eq!(
            ports_of(&forward(&mut t, &ports, 0, &frame(B, A), now)),
            [1]
        );
        let later = now + MAC_AGEING;
        assert_eq!(
            ports_of(&forward(&mut t, &ports, 0, &frame(B, A), later)),
            [1, 2],
            "flooded again"
        );
    }

    #[test]
    fn a_trunk_tags_all_but_its_native_vlan() {
        use PortMode::{Access, Dot1q};
        let ports = [Some(Access(10)), Some(Dot1q { native: 1 }), Some(Access(1))];
        let mut t = MacTable::default();
        let now = Instant::now();
        let f = frame([0xff; 6], A);
        let out = forward(&mut t, &ports, 0, &f, now);
        assert_eq!(
            out,
            vec![(1, ethernet::push_tag(&f, 10))],
            "VLAN 10 leaves the trunk tagged"
        );
        // Tagged 10 in from the trunk: untagged out of the access port.
        let out = forward(
            &mut t,
            &ports,
            1,
            &ethernet::push_tag(&frame(A, B), 10),
            now,
        );
        assert_eq!(out, vec![(0, frame(A, B))]);
        // Untagged on the trunk: the native VLAN, untagged out.
        let out = forward(&mut t, &ports, 1, &frame([0xff; 6], B), now);
        assert_eq!(out, vec![(2, frame([0xff; 6], B))]);
        // An access port drops tagged frames.
        assert!(forward(&mut t, &ports, 0, &ethernet::push_tag(&f, 10), now).is_empty());
    }

    #[test]
    fn qinq_adds_an_outer_tag_on_the_way_in_and_removes_it_on_the_way_out() {
        use PortMode::{Dot1q, Qinq};
        let ports = [Some(Qinq(300)), Some(Dot1q { native: 1 })];
        let mut t = MacTable::default();
        let now = Instant::now();
        let customer = ethernet::push_tag(&frame([0xff; 6], A), 20);
        let out = forward(&mut t, &ports, 0, &customer, now);
        assert_eq!(out, vec![(1, ethernet::push_tag(&customer, 300))]);
        let back = ethernet::push_tag(&ethernet::push_tag(&frame(A, B), 20), 300);
        let out = forward(&mut t, &ports, 1, &back, now);
        assert_eq!(
            out,
            vec![(0, ethernet::push_tag(&frame(A, B), 20))],
            "outer tag removed"
        );
    }

    #[test]
    fn garbage_and_unknown_ports_are_dropped() {
        let ports = [Some(PortMode::Access(1)), Some(PortMode::Access(1))];
        let mut t = MacTable::default();
        let now = Instant::now();
        assert!(forward(&mut t, &ports, 0, &[1, 2, 3], now).is_empty());
        assert!(forward(&mut t, &ports, 7, &frame(A, B), now).is_empty());
    }
}
