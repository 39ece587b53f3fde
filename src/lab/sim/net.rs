//! The built-in PC's frames: Ethernet, ARP, IPv4 and ICMP echo, parsed and
//! built with smoltcp's `wire` module (its formats and checksums; the PC's
//! behaviour is ours). Nothing here keeps state.

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress,
    EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4DstUnreachable, Icmpv4Packet, Icmpv4Repr,
    IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr,
};
use std::net::Ipv4Addr;

/// Ethernet header length.
const ETH: usize = 14;
/// IPv4 header length (no options).
const IP: usize = 20;

/// What a frame means to a PC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rx {
    /// An ARP request for `target`, from `sender` at `mac`.
    ArpRequest {
        /// Asker's address.
        sender: Ipv4Addr,
        /// Asker's MAC.
        mac: [u8; 6],
        /// Address asked about.
        target: Ipv4Addr,
    },
    /// An ARP reply (or a gratuitous announcement): `sender` is at `mac`.
    ArpReply {
        /// Its address.
        sender: Ipv4Addr,
        /// Its MAC.
        mac: [u8; 6],
    },
    /// An ICMP echo request to us.
    EchoRequest {
        /// From.
        src: Ipv4Addr,
        /// Its MAC.
        mac: [u8; 6],
        /// To (one of ours).
        dst: Ipv4Addr,
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq: u16,
        /// Payload, echoed back.
        data: Vec<u8>,
    },
    /// An ICMP echo reply.
    EchoReply {
        /// From.
        src: Ipv4Addr,
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq: u16,
        /// The reply's TTL as it arrived.
        ttl: u8,
    },
    /// An ICMP time exceeded (for `trace`), from a router.
    TimeExceeded {
        /// The router.
        src: Ipv4Addr,
        /// The probe's sequence number, from the quoted echo.
        seq: u16,
    },
    /// An ICMP destination unreachable, from `src`, with its code.
    Unreachable {
        /// Who says so.
        src: Ipv4Addr,
        /// The ICMP code (3: port unreachable).
        code: u8,
    },
    /// A UDP datagram to us on a port nobody listens to (a `trace` probe):
    /// the IP packet, to quote in a port unreachable.
    Udp {
        /// From.
        src: Ipv4Addr,
        /// Its MAC.
        mac: [u8; 6],
        /// To.
        dst: Ipv4Addr,
        /// The IP packet (an answer quotes its header and 8 bytes).
        quote: Vec<u8>,
    },
    /// A DHCP offer or acknowledgement for us.
    Dhcp {
        /// Offer (`false`) or ack (`true`).
        ack: bool,
        /// Transaction id.
        xid: u32,
        /// The address offered.
        ip: Ipv4Addr,
        /// Its prefix length.
        cidr: u8,
        /// The router, if any.
        gw: Option<Ipv4Addr>,
        /// The server.
        server: Ipv4Addr,
    },
    /// Anything else (dropped).
    Other,
}

/// The destination MAC of a frame, and whether it is for `mac` (or broadcast).
pub fn for_us(frame: &[u8], mac: [u8; 6]) -> bool {
    frame.len() >= ETH && (frame[..6] == mac || frame[..6] == [0xff; 6])
}

/// Read a frame.
pub fn parse(frame: &[u8]) -> Rx {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return Rx::Other;
    };
    let src_mac = eth.src_addr().0;
    match eth.ethertype() {
        EthernetProtocol::Arp => {
            let Ok(Ok(ArpRepr::EthernetIpv4 {
                operation,
                source_hardware_addr,
                source_protocol_addr,
                target_protocol_addr,
                ..
            })) = ArpPacket::new_checked(eth.payload()).map(|p| ArpRepr::parse(&p))
            else {
                return Rx::Other;
            };
            match operation {
                ArpOperation::Request => Rx::ArpRequest {
                    sender: source_protocol_addr,
                    mac: source_hardware_addr.0,
                    target: target_protocol_addr,
                },
                ArpOperation::Reply => Rx::ArpReply {
                    sender: source_protocol_addr,
                    mac: source_hardware_addr.0,
                },
                _ => Rx::Other,
            }
        }
        EthernetProtocol::Ipv4 => {
            let caps = ChecksumCapabilities::default();
            let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
                return Rx::Other;
            };
            let Ok(repr) = Ipv4Repr::parse(&ip, &caps) else {
                return Rx::Other;
            };
            if repr.next_header == IpProtocol::Udp {
                let udp = ip.payload();
                if udp.get(2..4) == Some(&[0, 68]) {
                    return dhcp_reply(udp, repr.src_addr, repr.dst_addr);
                }
                return Rx::Udp {
                    src: repr.src_addr,
                    mac: src_mac,
                    dst: repr.dst_addr,
                    quote: eth.payload().to_vec(),
                };
            }
            if repr.next_header != IpProtocol::Icmp {
                return Rx::Other;
            }
            let Ok(icmp) = Icmpv4Packet::new_checked(ip.payload()) else {
                return Rx::Other;
            };
            // Errors quote a truncated datagram, which smoltcp's parser
            // refuses: read their type and code directly.
            match u8::from(icmp.msg_type()) {
                3 => {
                    return Rx::Unreachable {
                        src: repr.src_addr,
                        code: icmp.msg_code(),
                    };
                }
                11 => {
                    return Rx::TimeExceeded {
                        src: repr.src_addr,
                        seq: 0,
                    };
                }
                _ => {}
            }
            match Icmpv4Repr::parse(&icmp, &caps) {
                Ok(Icmpv4Repr::EchoRequest {
                    ident,
                    seq_no,
                    data,
                }) => Rx::EchoRequest {
                    src: repr.src_addr,
                    mac: src_mac,
                    dst: repr.dst_addr,
                    ident,
                    seq: seq_no,
                    data: data.to_vec(),
                },
                Ok(Icmpv4Repr::EchoReply { ident, seq_no, .. }) => Rx::EchoReply {
                    src: repr.src_addr,
                    ident,
                    seq: seq_no,
                    ttl: repr.hop_limit,
                },
                Ok(Icmpv4Repr::DstUnreachable { reason, .. }) => Rx::Unreachable {
                    src: repr.src_addr,
                    code: u8::from(reason),
                },
                Ok(Icmpv4Repr::TimeExceeded { data, .. }) => {
                    // The quoted datagram's ICMP header: type, code, sum, id, seq.
                    let seq = data
                        .get(6..8)
                        .map_or(0, |s| u16::from_be_bytes([s[0], s[1]]));
                    Rx::TimeExceeded {
                        src: repr.src_addr,
                        seq,
                    }
                }
                _ => Rx::Other,
            }
        }
        _ => Rx::Other,
    }
}

fn ethernet(src: [u8; 6], dst: [u8; 6], ethertype: EthernetProtocol, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; ETH + len];
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    EthernetRepr {
        src_addr: EthernetAddress(src),
        dst_addr: EthernetAddress(dst),
        ethertype,
    }
    .emit(&mut frame);
    buf
}

/// An ARP request (`op` request) or reply.
pub fn arp(
    request: bool,
    mac: [u8; 6],
    ip: Ipv4Addr,
    (target_mac, target_ip): ([u8; 6], Ipv4Addr),
) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: if request {
            ArpOperation::Request
        } else {
            ArpOperation::Reply
        },
        source_hardware_addr: EthernetAddress(mac),
        source_protocol_addr: ip,
        target_hardware_addr: EthernetAddress(if request { [0; 6] } else { target_mac }),
        target_protocol_addr: target_ip,
    };
    let dst = if request { [0xff; 6] } else { target_mac };
    let mut buf = ethernet(mac, dst, EthernetProtocol::Arp, repr.buffer_len());
    repr.emit(&mut ArpPacket::new_unchecked(&mut buf[ETH..]));
    buf
}

/// An ICMP echo request or reply in IPv4 in Ethernet.
#[allow(clippy::too_many_arguments)]
pub fn echo(
    reply: bool,
    ends: ([u8; 6], [u8; 6]),
    addrs: (Ipv4Addr, Ipv4Addr),
    ttl: u8,
    ident: u16,
    seq: u16,
    data: &[u8],
) -> Vec<u8> {
    let icmp = if reply {
        Icmpv4Repr::EchoReply {
            ident,
            seq_no: seq,
            data,
        }
    } else {
        Icmpv4Repr::EchoRequest {
            ident,
            seq_no: seq,
            data,
        }
    };
    ipv4(ends, addrs, IpProtocol::Icmp, ttl, icmp.buffer_len(), |p| {
        icmp.emit(
            &mut Icmpv4Packet::new_unchecked(p),
            &ChecksumCapabilities::default(),
        )
    })
}

/// An IPv4 packet in an Ethernet frame: `len` bytes of `proto` payload,
/// written by `fill`.
fn ipv4(
    (src_mac, dst_mac): ([u8; 6], [u8; 6]),
    (src, dst): (Ipv4Addr, Ipv4Addr),
    proto: IpProtocol,
    ttl: u8,
    len: usize,
    fill: impl FnOnce(&mut [u8]),
) -> Vec<u8> {
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: proto,
        payload_len: len,
        hop_limit: ttl,
    };
    let mut buf = ethernet(src_mac, dst_mac, EthernetProtocol::Ipv4, IP + len);
    let caps = ChecksumCapabilities::default();
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[ETH..]), &caps);
    fill(&mut buf[ETH + IP..]);
    buf
}

/// A UDP datagram in IPv4 in Ethernet, its payload written by `fill`.
fn udp(
    ends: ([u8; 6], [u8; 6]),
    (src, dst): (Ipv4Addr, Ipv4Addr),
    ttl: u8,
    (sport, dport): (u16, u16),
    len: usize,
    fill: impl FnOnce(&mut [u8]),
) -> Vec<u8> {
    let repr = UdpRepr {
        src_port: sport,
        dst_port: dport,
    };
    ipv4(ends, (src, dst), IpProtocol::Udp, ttl, 8 + len, |p| {
        repr.emit(
            &mut UdpPacket::new_unchecked(p),
            &IpAddress::Ipv4(src),
            &IpAddress::Ipv4(dst),
            len,
            fill,
            &ChecksumCapabilities::default(),
        )
    })
}

/// A DHCP server's answer in a UDP datagram to port 68.
fn dhcp_reply(udp: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Rx {
    let caps = ChecksumCapabilities::default();
    let Ok(packet) = UdpPacket::new_checked(udp) else {
        return Rx::Other;
    };
    let (s, d) = (IpAddress::Ipv4(src), IpAddress::Ipv4(dst));
    let Ok(u) = UdpRepr::parse(&packet, &s, &d, &caps) else {
        return Rx::Other;
    };
    if u.dst_port != 68 {
        return Rx::Other;
    }
    let Ok(dp) = DhcpPacket::new_checked(packet.payload()) else {
        return Rx::Other;
    };
    let Ok(r) = DhcpRepr::parse(&dp) else {
        return Rx::Other;
    };
    let ack = match r.message_type {
        DhcpMessageType::Offer => false,
        DhcpMessageType::Ack => true,
        _ => return Rx::Other,
    };
    let cidr = r
        .subnet_mask
        .map_or(24, |m| u32::from(m).count_ones() as u8);
    Rx::Dhcp {
        ack,
        xid: r.transaction_id,
        ip: r.your_ip,
        cidr,
        gw: r.router,
        server: r.server_identifier.unwrap_or(src),
    }
}

/// A DHCP discover (`request` false) or request, broadcast from 0.0.0.0.
pub fn dhcp(mac: [u8; 6], xid: u32, request: Option<(Ipv4Addr, Ipv4Addr)>) -> Vec<u8> {
    const PARAMS: &[u8] = &[1, 3, 6, 15];
    let repr = DhcpRepr {
        message_type: if request.is_some() {
            DhcpMessageType::Request
        } else {
            DhcpMessageType::Discover
        },
        transaction_id: xid,
        secs: 0,
        client_hardware_address: EthernetAddress(mac),
        client_ip: Ipv4Addr::UNSPECIFIED,
        your_ip: Ipv4Addr::UNSPECIFIED,
        server_ip: Ipv4Addr::UNSPECIFIED,
        router: None,
        subnet_mask: None,
        relay_agent_ip: Ipv4Addr::UNSPECIFIED,
        broadcast: false,
        requested_ip: request.map(|(ip, _)| ip),
        client_identifier: Some(EthernetAddress(mac)),
        server_identifier: request.map(|(_, server)| server),
        parameter_request_list: Some(PARAMS),
        dns_servers: None,
        max_size: None,
        lease_duration: None,
        renew_duration: None,
        rebind_duration: None,
        additional_options: &[],
    };
    let ends = (mac, [0xff; 6]);
    let addrs = (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST);
    udp(ends, addrs, 64, (68, 67), repr.buffer_len(), |payload| {
        let _ = repr.emit(&mut DhcpPacket::new_unchecked(payload));
    })
}

/// ICMP port unreachable for an IP packet (`quote`), quoting its header
/// and first 8 bytes, as VPCS answers a `trace` probe.
pub fn port_unreachable(
    ends: ([u8; 6], [u8; 6]),
    addrs: (Ipv4Addr, Ipv4Addr),
    quote: &[u8],
) -> Vec<u8> {
    let caps = ChecksumCapabilities::ignored();
    let Ok(quoted) = Ipv4Packet::new_checked(quote)
        .map_err(|_| ())
        .and_then(|p| Ipv4Repr::parse(&p, &caps).map_err(|_| ()))
    else {
        return Vec::new();
    };
    let header = usize::from(Ipv4Packet::new_unchecked(quote).header_len());
    let data = &quote[header..(header + 8).min(quote.len())];
    let icmp = Icmpv4Repr::DstUnreachable {
        reason: Icmpv4DstUnreachable::PortUnreachable,
        header: quoted,
        data,
    };
    ipv4(ends, addrs, IpProtocol::Icmp, 64, icmp.buffer_len(), |p| {
        icmp.emit(
            &mut Icmpv4Packet::new_unchecked(p),
            &ChecksumCapabilities::default(),
        )
    })
}

/// A `trace` probe: UDP from `sport` to `sport + 1` with `ttl`.
pub fn udp_probe(
    ends: ([u8; 6], [u8; 6]),
    addrs: (Ipv4Addr, Ipv4Addr),
    ttl: u8,
    sport: u16,
) -> Vec<u8> {
    let data = payload(64);
    let ports = (sport, sport.wrapping_add(1));
    udp(ends, addrs, ttl, ports, data.len(), |p| {
        p.copy_from_slice(&data)
    })
}

/// The payload of a ping of `size` bytes (VPCS fills it with a counter).
pub fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| i as u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 6] = [0x00, 0x50, 0x79, 0x66, 0x68, 0x00];
    const B: [u8; 6] = [0x00, 0x50, 0x79, 0x66, 0x68, 0x01];

    #[test]
    fn arp_and_echo_round_trip() {
        let (ia, ib) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let req = arp(true, A, ia, ([0; 6], ib));
        assert_eq!(
            parse(&req),
            Rx::ArpRequest {
                sender: ia,
                mac: A,
                target: ib
            }
        );
        assert!(for_us(&req, B), "broadcast");
        let rep = arp(false, B, ib, (A, ia));
        assert_eq!(parse(&rep), Rx::ArpReply { sender: ib, mac: B });
        assert!(for_us(&rep, A) && !for_us(&rep, B));
        let e = echo(false, (A, B), (ia, ib), 64, 7, 3, &payload(56));
        assert_eq!(e.len(), 14 + 20 + 8 + 56);
        let Rx::EchoRequest {
            seq, ident, data, ..
        } = parse(&e)
        else {
            panic!()
        };
        assert_eq!((seq, ident, data.len()), (3, 7, 56));
        let r = echo(true, (B, A), (ib, ia), 63, 7, 3, &data);
        assert_eq!(
            parse(&r),
            Rx::EchoReply {
                src: ib,
                ident: 7,
                seq: 3,
                ttl: 63
            }
        );
        assert_eq!(parse(&[1, 2, 3]), Rx::Other);
    }
}
