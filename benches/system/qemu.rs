//! QEMU VMs: time from `start` to the guest's prompt on nanolab's console
//! (TCG, and KVM when asked through the options), the server's memory per
//! QEMU node, and echo requests answered per second through a QEMU
//! adapter against a VPCS adapter (the same relay, different guests). The
//! guest is the test suite's (`tests/it/testvm`).

use super::*;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr,
};

const ME: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 1]);
const MY_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const GUEST_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 3);

/// An ARP frame from us: a request for `GUEST_IP`, or a reply to `to`.
fn arp(op: ArpOperation, to: EthernetAddress) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: op,
        source_hardware_addr: ME,
        source_protocol_addr: MY_IP,
        target_hardware_addr: to,
        target_protocol_addr: GUEST_IP,
    };
    let eth = EthernetRepr {
        src_addr: ME,
        dst_addr: if op == ArpOperation::Request {
            EthernetAddress::BROADCAST
        } else {
            to
        },
        ethertype: EthernetProtocol::Arp,
    };
    let mut buf = vec![0u8; eth.buffer_len() + repr.buffer_len()];
    let mut frame = EthernetFrame::new_unchecked(&mut buf);
    eth.emit(&mut frame);
    repr.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
    buf
}

/// An ICMP echo request to the guest at `mac`.
fn echo_request(mac: EthernetAddress, seq: u16) -> Vec<u8> {
    let data = [0x5au8; 56];
    let icmp = Icmpv4Repr::EchoRequest {
        ident: 0x4e4c,
        seq_no: seq,
        data: &data,
    };
    let ip = Ipv4Repr {
        src_addr: MY_IP,
        dst_addr: GUEST_IP,
        next_header: IpProtocol::Icmp,
        payload_len: icmp.buffer_len(),
        hop_limit: 64,
    };
    let eth = EthernetRepr {
        src_addr: ME,
        dst_addr: mac,
        ethertype: EthernetProtocol::Ipv4,
    };
    let mut buf = vec![0u8; eth.buffer_len() + ip.buffer_len() + icmp.buffer_len()];
    let mut frame = EthernetFrame::new_unchecked(&mut buf);
    eth.emit(&mut frame);
    let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
    ip.emit(&mut packet, &Default::default());
    icmp.emit(
        &mut Icmpv4Packet::new_unchecked(packet.payload_mut()),
        &Default::default(),
    );
    buf
}

/// What a frame from the guest is: an echo reply, an ARP request for us
/// (answered), the guest's MAC from an ARP reply.
fn look(sock: &UdpSocket, to: SocketAddr, frame: &[u8]) -> (bool, Option<EthernetAddress>) {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return (false, None);
    };
    match eth.ethertype() {
        EthernetProtocol::Arp => {
            let Ok(a) = ArpPacket::new_checked(eth.payload()) else {
                return (false, None);
            };
            let Ok(ArpRepr::EthernetIpv4 {
                operation,
                source_hardware_addr,
                ..
            }) = ArpRepr::parse(&a)
            else {
                return (false, None);
            };
            if operation == ArpOperation::Request {
                let _ = sock.send_to(&arp(ArpOperation::Reply, source_hardware_addr), to);
            }
            (false, Some(source_hardware_addr))
        }
        EthernetProtocol::Ipv4 => {
            let reply = Ipv4Packet::new_checked(eth.payload())
                .ok()
                .filter(|p| p.next_header() == IpProtocol::Icmp)
                .and_then(|p| {
                    Icmpv4Packet::new_checked(p.payload())
                        .ok()
                        .map(|i| i.msg_type())
                })
                == Some(smoltcp::wire::Icmpv4Message::EchoReply);
            (reply, None)
        }
        _ => (false, None),
    }
}

/// Echo requests answered per second by the guest behind `to` (a NIO's
/// port on nanolab, relaying to `sock`), with up to 64 in flight, for
/// `dur`; and the median round trip of one at a time.
fn ping_rate(sock: &UdpSocket, to: SocketAddr, dur: Duration) -> Option<(f64, Duration)> {
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let mut mac = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while mac.is_none() && Instant::now() < deadline {
        sock.send_to(&arp(ArpOperation::Request, EthernetAddress([0; 6])), to)
            .unwrap();
        while let Ok(n) = sock.recv(&mut buf) {
            mac = mac.or(look(sock, to, &buf[..n]).1);
        }
    }
    let mac = mac?;
    let mut rtts = Vec::new();
    for seq in 0..200u16 {
        let t = Instant::now();
        sock.send_to(&echo_request(mac, seq), to).unwrap();
        while let Ok(n) = sock.recv(&mut buf) {
            if look(sock, to, &buf[..n]).0 {
                rtts.push(t.elapsed());
                break;
            }
        }
    }
    rtts.sort_unstable();
    let rtt = rtts.get(rtts.len() / 2).copied()?;
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let (mut sent, mut got, mut in_flight) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < dur {
        while in_flight < 64 {
            sock.send_to(&echo_request(mac, sent as u16), to).unwrap();
            sent += 1;
            in_flight += 1;
        }
        match sock.recv(&mut buf) {
            Ok(n) if look(sock, to, &buf[..n]).0 => {
                got += 1;
                in_flight -= 1;
            }
            Ok(_) => {}
            // Nothing for 20 ms: count what is out as lost.
            Err(_) => in_flight = 0,
        }
    }
    Some((got as f64 / start.elapsed().as_secs_f64(), rtt))
}

/// Link `srv`'s node at `node` (its NIO route's base) to a fresh socket:
/// the socket and the address to send to.
fn tunnel(srv: &Server, p: &str, node: &str) -> (UdpSocket, SocketAddr) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let lport = srv
        .call("POST", &format!("/v1/projects/{p}/ports/udp"), "")
        .1["udp_port"]
        .as_u64()
        .unwrap();
    let nio = format!(
        r#"{{"type": "nio_udp", "lport": {lport}, "rhost": "127.0.0.1", "rport": {}}}"#,
        sock.local_addr().unwrap().port()
    );
    let (code, body) = srv.call("POST", &format!("{node}/adapters/0/ports/0/nio"), &nio);
    assert_eq!(code, 201, "{body}");
    (sock, format!("127.0.0.1:{lport}").parse().unwrap())
}

/// Echo requests through a QEMU adapter (the test guest, TCG) and a VPCS
/// adapter (real vpcs), the same relay in front of both.
fn ping_rates(srv: &Server, p: &str) {
    let body = r#"{"name": "E", "qemu_path": "qemu-system-x86_64", "ram": 128, "hda_disk_image": "disk.qcow2",
        "kernel_image": "vmlinuz", "initrd": "initrd.img",
        "kernel_command_line": "console=ttyS0 quiet ip=10.0.0.3/24 vmname=echo"}"#;
    let (_, v) = srv.call("POST", &format!("/v1/projects/{p}/qemu/vms"), body);
    let node = format!("/v1/projects/{p}/qemu/vms/{}", v["vm_id"].as_str().unwrap());
    let (sock, to) = tunnel(srv, p, &node);
    srv.call("POST", &format!("{node}/start"), "");
    let port = v["console"].as_u64().unwrap() as u16;
    if until(port, "echo# ", Duration::from_secs(120)).is_none() {
        println!("qemu: relay: the guest did not come up");
    } else {
        report_rate(
            "QEMU adapter (e1000, TCG guest)",
            ping_rate(&sock, to, Duration::from_secs(5)),
        );
    }
    srv.call("POST", &format!("{node}/stop"), "");
    if !which("vpcs") {
        println!("qemu: relay: vpcs is not installed, no VPCS comparison");
        return;
    }
    let (_, v) = srv.call(
        "POST",
        &format!("/v1/projects/{p}/vpcs/vms"),
        r#"{"name": "V", "startup_script": "ip 10.0.0.3/24\n"}"#,
    );
    let node = format!("/v1/projects/{p}/vpcs/vms/{}", v["vm_id"].as_str().unwrap());
    let (sock, to) = tunnel(srv, p, &node);
    srv.call("POST", &format!("{node}/start"), "");
    report_rate(
        "VPCS adapter (vpcs 0.5b2)",
        ping_rate(&sock, to, Duration::from_secs(5)),
    );
    srv.call("POST", &format!("{node}/stop"), "");
}

fn report_rate(what: &str, r: Option<(f64, Duration)>) {
    match r {
        Some((rate, rtt)) => println!(
            "qemu: relay: {what}: {rate:.0} echo replies/s (64 in flight), median round trip {rtt:.2?} one at a time"
        ),
        None => println!("qemu: relay: {what}: no answer"),
    }
}

/// The test guest, built once under the target directory.
fn test_vm() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("testvm");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/testvm/build.sh");
    let ok = Command::new("bash")
        .arg(script)
        .arg(&dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "building the test VM");
    dir
}

/// Read the console on `port` until `needle` shows or `limit` passes.
fn until(port: u16, needle: &str, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        if let Ok(n) = s.read(&mut buf) {
            seen.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&seen).contains(needle) {
                return Some(start.elapsed());
            }
        }
    }
    None
}

pub(crate) fn qemu() {
    if !which("qemu-system-x86_64") {
        println!("qemu: qemu-system-x86_64 is not installed, skipped");
        return;
    }
    let vm = test_vm();
    let images = std::env::temp_dir().join(format!("nanolab-bench-images-{}", std::process::id()));
    std::fs::create_dir_all(images.join("QEMU")).unwrap();
    for f in ["vmlinuz", "initrd.img", "disk.qcow2"] {
        std::fs::copy(vm.join(f), images.join("QEMU").join(f)).unwrap();
    }
    let images_arg = images.display().to_string();
    let srv = Server::start_tmpfs(&["--images-dir", &images_arg]);
    let (_, p) = srv.call("POST", "/v1/projects", r#"{"name": "qemu"}"#);
    let p = p["project_id"].as_str().unwrap().to_string();
    for (accel, options, limit) in [
        ("TCG", "", 120),
        ("TCG", "", 120),
        ("TCG", "", 120),
        ("KVM", "-accel kvm", 30),
    ] {
        let body = format!(
            r#"{{"name": "B", "qemu_path": "qemu-system-x86_64", "ram": 128, "hda_disk_image": "disk.qcow2",
                "kernel_image": "vmlinuz", "initrd": "initrd.img", "options": "{options}",
                "kernel_command_line": "console=ttyS0 quiet ip=10.0.0.3/24 vmname=bench"}}"#
        );
        let (_, v) = srv.call("POST", &format!("/v1/projects/{p}/qemu/vms"), &body);
        let id = v["vm_id"].as_str().unwrap().to_string();
        let port = v["console"].as_u64().unwrap() as u16;
        let t = Instant::now();
        let (code, _) = srv.call("POST", &format!("/v1/projects/{p}/qemu/vms/{id}/start"), "");
        let started = t.elapsed();
        let prompt = until(port, "bench# ", Duration::from_secs(limit)).map(|d| d + started);
        match (code, prompt) {
            (204, Some(d)) => println!(
                "qemu: {accel}: start answered in {started:.2?}, guest prompt {d:.2?} after start"
            ),
            (204, None) => println!(
                "qemu: {accel}: start answered in {started:.2?}, no prompt within {limit} s (KVM hangs on nested hosts)"
            ),
            (c, _) => println!("qemu: {accel}: start answered {c}"),
        }
        srv.call("POST", &format!("/v1/projects/{p}/qemu/vms/{id}/stop"), "");
        srv.call("DELETE", &format!("/v1/projects/{p}/qemu/vms/{id}"), "");
    }
    ping_rates(&srv, &p);
    // Memory per node (created, not started): 1,000 in ten projects.
    let before = srv.rss_kib();
    let mut projects = Vec::new();
    for _ in 0..10 {
        let (_, p) = srv.call("POST", "/v1/projects", "{}");
        let p = p["project_id"].as_str().unwrap().to_string();
        for i in 0..100 {
            let body = format!(
                r#"{{"name": "R{i}", "qemu_path": "qemu-system-x86_64", "hda_disk_image": "disk.qcow2", "adapters": 4}}"#
            );
            let (code, _) = srv.call("POST", &format!("/v1/projects/{p}/qemu/vms"), &body);
            assert_eq!(code, 201);
        }
        projects.push(p);
    }
    let after = srv.rss_kib();
    println!(
        "qemu: server memory per QEMU node (4 adapters, not started): {} bytes",
        (after.saturating_sub(before)) * 1024 / 1000
    );
    for p in projects {
        srv.call("DELETE", &format!("/v1/projects/{p}"), "");
    }
    let _ = std::fs::remove_dir_all(&images);
}
