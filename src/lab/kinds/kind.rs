//! The kinds, one arm each, and the one place they are told apart.

use super::{Behaviour, Echo, FrameCx};
use super::{cloud, docker, hub, pc, qemu, switch};
use crate::lab::id::Endpoint;

/// What a node is.
#[derive(Debug)]
pub enum Kind {
    /// A virtual PC, on one of its two engines.
    Pc(pc::Pc),
    /// An Ethernet switch inside the lab: port modes and the MAC table.
    Switch(switch::Switch),
    /// An Ethernet hub inside the lab.
    Hub(hub::Hub),
    /// A cloud: ports to host interfaces and TAP devices.
    Cloud(cloud::Cloud),
    /// A QEMU virtual machine.
    Qemu(qemu::Qemu),
    /// A container, run by the container engine.
    Docker(docker::Docker),
}

/// `match` over every kind, binding the kind's data to `$k` in `$body`:
/// the one place kinds are told apart (a new kind is one more arm here).
macro_rules! each_kind {
    ($kind:expr, $k:ident => $body:expr) => {
        match $kind {
            Kind::Pc($k) => $body,
            Kind::Switch($k) => $body,
            Kind::Hub($k) => $body,
            Kind::Cloud($k) => $body,
            Kind::Qemu($k) => $body,
            Kind::Docker($k) => $body,
        }
    };
}

impl Kind {
    /// The kind's face.
    #[inline]
    pub fn face(&self) -> &dyn Behaviour {
        each_kind!(self, k => k)
    }

    /// Mutable [`Kind::face`].
    #[inline]
    pub fn face_mut(&mut self) -> &mut dyn Behaviour {
        each_kind!(self, k => k)
    }

    /// [`Behaviour::on_frame`], dispatched statically: the data plane's
    /// hot path, where a virtual call would keep the kind's frame path
    /// from being inlined.
    #[inline]
    pub fn on_frame(
        &mut self,
        fx: &mut FrameCx,
        index: usize,
        outbound: bool,
        frame: &[u8],
        send: &mut dyn FnMut(Endpoint, &[u8]) -> bool,
    ) -> Echo {
        each_kind!(self, k => k.on_frame(fx, index, outbound, frame, send))
    }
}
