//! A project's links as a person sees them (pure): a tunnel whose two
//! ends are both ports of the project is one link, drawn once; any other
//! linked port leads outside (a tunnel's far address, a TAP device, a host
//! interface).

use super::answer::{Far, LinkStatus, NodeStatus};
use super::types::Nio;
use std::collections::HashMap;

/// The links between `nodes`' ports, and from them to the outside.
pub fn links(nodes: &[NodeStatus]) -> Vec<LinkStatus> {
    let mut by_lport = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for (j, p) in n.ports.iter().enumerate() {
            if let Some(Nio::Udp(u)) = &p.nio {
                by_lport.insert(u.lport, (i, j));
            }
        }
    }
    let udp = |i: usize, j: usize| match &nodes[i].ports[j].nio {
        Some(Nio::Udp(u)) if u.raddr.is_loopback() => Some((u.lport, u.rport)),
        _ => None,
    };
    let mut out = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        for (j, p) in n.ports.iter().enumerate() {
            let b = match &p.nio {
                None => continue,
                Some(Nio::Udp(u)) => {
                    let peer = udp(i, j)
                        .and_then(|(l, r)| by_lport.get(&r).map(|&at| (at, l, r)))
                        .filter(|&((pi, pj), l, r)| {
                            (pi, pj) != (i, j) && udp(pi, pj) == Some((r, l))
                        });
                    match peer {
                        // Each local link once, from its first end.
                        Some(((pi, pj), ..)) if (pi, pj) < (i, j) => continue,
                        Some(((pi, pj), ..)) => Far::Port(pi, pj),
                        None => Far::Outside(format!("UDP {}:{}", u.rhost, u.rport)),
                    }
                }
                Some(Nio::Tap(t)) => Far::Outside(format!("TAP {}", t.device)),
                Some(Nio::Ethernet(e)) => Far::Outside(format!("interface {}", e.device)),
            };
            out.push(LinkStatus { a: (i, j), b });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::answer::PortStatus;
    use crate::lab::types::{NioTap, NioUdp};

    fn node(name: &str, nios: Vec<Option<Nio>>) -> NodeStatus {
        NodeStatus {
            id: uuid::Uuid::new_v4(),
            name: name.into(),
            kind: "VPCS",
            state: "started",
            console: None,
            clients: 0,
            macs: Vec::new(),
            ports: nios
                .into_iter()
                .enumerate()
                .map(|(i, nio)| PortStatus {
                    adapter: i as u32,
                    port: 0,
                    nio,
                    stats: Default::default(),
                    mode: None,
                    capturing: false,
                    filtered: false,
                    rate: None,
                    history: Vec::new(),
                })
                .collect(),
        }
    }

    fn udp(lport: u16, rhost: &str, rport: u16) -> Option<Nio> {
        Some(Nio::Udp(NioUdp {
            lport,
            rhost: rhost.into(),
            raddr: rhost.parse().unwrap(),
            rport,
        }))
    }

    #[test]
    fn a_tunnel_with_both_ends_here_is_one_link_and_the_rest_lead_outside() {
        let nodes = vec![
            node("PC1", vec![udp(10000, "127.0.0.1", 10001)]),
            node(
                "SW1",
                vec![
                    udp(10001, "127.0.0.1", 10000),
                    udp(10002, "192.0.2.7", 20000),
                    Some(Nio::Tap(NioTap {
                        device: "tap0".into(),
                    })),
                    None,
                    // Points at PC1's port, which points elsewhere: not a pair.
                    udp(10003, "127.0.0.1", 10000),
                ],
            ),
        ];
        let got = links(&nodes);
        assert_eq!(
            got,
            vec![
                LinkStatus {
                    a: (0, 0),
                    b: Far::Port(1, 0)
                },
                LinkStatus {
                    a: (1, 1),
                    b: Far::Outside("UDP 192.0.2.7:20000".into())
                },
                LinkStatus {
                    a: (1, 2),
                    b: Far::Outside("TAP tap0".into())
                },
                LinkStatus {
                    a: (1, 4),
                    b: Far::Outside("UDP 127.0.0.1:10000".into())
                },
            ]
        );
    }
}
