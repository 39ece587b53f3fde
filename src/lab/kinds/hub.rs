//! The Ethernet hub (sans-IO): every frame to every other port that has a
//! NIO; no table, no VLANs.

use super::{Behaviour, Ctx, Echo, Face, FrameCx, device};
use crate::error::ApiError;
use crate::lab::answer::Body;
use crate::lab::command::{DeviceType, NodeClass, NodeCommand, PortAddr, PortSettings};
use crate::lab::id::Endpoint;
use crate::lab::port::Port;
use crate::lab::vlan::PortMode;

/// An Ethernet hub: nothing besides its ports (and where the frame being
/// repeated goes, kept between frames).
#[derive(Debug, Default)]
pub struct Hub {
    dests: Vec<(usize, PortMode)>,
}

impl Behaviour for Hub {
    fn name(&self) -> &'static str {
        "Ethernet hub"
    }

    fn word(&self) -> &'static str {
        "hub"
    }

    fn class(&self) -> NodeClass {
        NodeClass::Device
    }

    fn accepts(&self, cmd: &NodeCommand) -> bool {
        device::accepts(cmd)
    }

    fn view(&self, n: &Face) -> Body {
        device::view(n, DeviceType::Hub)
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
        device::nio_port(cx, at.port, settings, false)
    }

    fn command(&mut self, cx: &mut Ctx, cmd: NodeCommand) -> Result<(), ApiError> {
        match cmd {
            NodeCommand::UpdateDevice(b) => device::update(cx, b, false, &mut |_| {}),
            NodeCommand::UpdateMapping(name, mapping) => {
                device::update_mapping(cx, name, mapping, &mut |_| {})
            }
            _ => Err(ApiError::conflict(format!(
                "Ethernet hub {} does not take this request",
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
        // Every frame leaves as it came: an untagged port in one VLAN.
        const AS_IS: (u16, PortMode) = (1, PortMode::Access(1));
        device::switch_frame(
            fx,
            index,
            frame,
            send,
            &mut self.dests,
            |ports, _, dests| {
                dests.clear();
                let others = (0..ports.len()).filter(|&p| p != index && ports[p].nio.is_some());
                dests.extend(others.map(|p| (p, AS_IS.1)));
                Some((AS_IS.0, None))
            },
        );
        Echo::default()
    }
}
