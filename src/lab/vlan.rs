//! A switch port's VLAN mode and what it does to frames (pure): access,
//! 802.1Q trunk, QinQ tunnel.

use crate::proto::ethernet;

/// What a switch port does with VLANs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortMode {
    /// Untagged frames, in one VLAN.
    Access(u16),
    /// A trunk: tagged frames for every VLAN, untagged ones in `native`.
    Dot1q {
        /// The VLAN of untagged frames.
        native: u16,
    },
    /// A tunnel: every frame, tagged or not, goes into this VLAN (an outer
    /// tag on trunks), and leaves with that outer tag removed.
    Qinq(u16),
}

impl PortMode {
    /// Whether frames of `vlan` may leave by this port.
    pub fn carries(self, vlan: u16) -> bool {
        match self {
            PortMode::Access(v) | PortMode::Qinq(v) => v == vlan,
            PortMode::Dot1q { .. } => true,
        }
    }

    /// A frame arriving here: its VLAN, and the frame as the switch
    /// carries it inside when that differs from the frame itself (a tag
    /// that named the VLAN, removed). `None`: dropped.
    pub fn ingress(self, frame: &[u8]) -> Option<(u16, Option<Vec<u8>>)> {
        match self {
            PortMode::Access(v) => ethernet::vlan(frame).is_none().then_some((v, None)),
            PortMode::Dot1q { native } => match ethernet::vlan(frame) {
                Some(v) => Some((v, Some(ethernet::pop_tag(frame)))),
                None => Some((native, None)),
            },
            PortMode::Qinq(v) => Some((v, None)),
        }
    }

    /// The frame as it leaves by this port: copied only to be tagged.
    pub fn egress(self, vlan: u16, inner: &[u8]) -> std::borrow::Cow<'_, [u8]> {
        match self {
            PortMode::Dot1q { native } if native != vlan => ethernet::push_tag(inner, vlan).into(),
            _ => inner.into(),
        }
    }
}
