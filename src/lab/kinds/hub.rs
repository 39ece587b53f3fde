//! The Ethernet hub (sans-IO): every frame to every other port that has a
//! NIO; no table, no VLANs.

use super::{Behaviour, Ctx, Echo, Face, FrameCx, device};
use crate::error::ApiError;
use crate::lab::answer::Body;
use crate::lab::command::{DeviceType, NodeClass, NodeCommand, PortAddr, PortSettings};
use crate::lab::id::Endpoint;
use crate::lab::port::Port;

/// An Ethernet hub: nothing besides its ports.
#[derive(Debug, Default)]
pub struct Hub;

/// The hub: every frame to every other port that has a NIO.
pub fn flood(ports: &[bool], from: usize) -> impl Iterator<Item = usize> + '_ {
    (0..ports.len()).filter(move |&p| p != from && ports[p])
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
        device::switch_frame(fx, index, frame, send, |ports, frame| {
            let live: Vec<bool> = ports.iter().map(|p| p.nio.is_some()).collect();
            flood(&live, index).map(|p| (p, frame.to_vec())).collect()
        });
        Echo::default()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_hub_floods_to_every_other_linked_port() {
        assert_eq!(
            super::flood(&[true, false, true, true], 0).collect::<Vec<_>>(),
            [2, 3]
        );
        assert_eq!(super::flood(&[true], 0).count(), 0);
    }
}
