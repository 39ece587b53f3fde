//! Frames through ports: switches, captures, delay filters, local tunnels.

use super::*;

#[test]
fn a_switch_forwards_within_a_vlan_and_follows_setting_changes() {
    use crate::lab::command::{NodeClass, PortSettings, VlanMode};
    use crate::lab::spec::DeviceUpdate;
    let mut r = Rig::new();
    let p = r.project();
    let d = switch(&mut r, p);
    let k = r.lab.key_of(d.id).unwrap();
    let dev = |c| {
        Command::Node(
            NodeRef {
                project: p,
                node: d.id,
                class: NodeClass::Device,
            },
            c,
        )
    };
    let access = |vlan| {
        Some(PortSettings {
            port: 0,
            mode: VlanMode::Access,
            vlan,
        })
    };
    for (port, vlan) in [(1, 10), (2, 10), (3, 20)] {
        let t = r.send(dev(NodeCommand::AddDeviceNio(
            port,
            nio(10000 + port as u16, 20000),
            access(vlan),
        )));
        assert_eq!(r.status(t), Some(201));
    }
    let t = r.send(dev(NodeCommand::AddDeviceNio(1, nio(10009, 20000), None)));
    assert!(r.error(t).contains("Port 1 isn't free"));
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&[0, 0x50, 0x79, 0x66, 0x68, 1, 0x08, 0x00]);
    frame.extend_from_slice(&[0; 46]);
    let mut sent = Vec::new();
    r.lab
        .on_frame(r.now, Endpoint::Nio(k, 0), &frame, &mut |to, _| {
            sent.push(to);
            true
        });
    assert_eq!(sent, [Endpoint::Nio(k, 1)], "VLAN 10 only");
    // Port 3 joins VLAN 10: it now gets the broadcast.
    let change = DeviceUpdate {
        mapping: None,
        name: None,
        ports: Some(vec![PortSettings {
            port: 3,
            mode: VlanMode::Access,
            vlan: 10,
        }]),
    };
    let t = r.send(dev(NodeCommand::UpdateDevice(change)));
    let Ok(Answer::Ok(Body::Device(d2))) = r.reply(t).clone() else {
        panic!()
    };
    assert_eq!(
        d2.ports.iter().map(|s| s.vlan).collect::<Vec<_>>(),
        [10, 10, 10]
    );
    let mut sent = Vec::new();
    r.lab
        .on_frame(r.now, Endpoint::Nio(k, 0), &frame, &mut |to, _| {
            sent.push(to);
            true
        });
    assert_eq!(sent, [Endpoint::Nio(k, 1), Endpoint::Nio(k, 2)]);
    assert_eq!(r.lab.node(k).unwrap().ports[0].stats.in_frames, 2);
    // Not reachable by a VPCS route; deleted with its ports.
    let t = r.node(p, d.id, NodeCommand::Get);
    assert_eq!(r.status(t), Some(404));
    let t = r.send(dev(NodeCommand::Delete));
    assert_eq!(r.status(t), Some(204));
    assert!(r.host.nios.is_empty() && r.lab.nodes.world.udp_ports.reservations().count() == 0);
}

#[test]
fn a_capture_records_both_directions_in_batches_and_stops_with_its_nio() {
    use crate::lab::spec::CaptureStart;
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.vpcs(p);
    let start = |name: &str| {
        NodeCommand::StartCapture(
            PORT0,
            CaptureStart {
                capture_file_name: name.into(),
            },
        )
    };
    let t = r.node(p, n, start("a.pcap"));
    assert!(r.error(t).contains("not connected"));
    let t = r.node(p, n, NodeCommand::AddNio(PORT0, nio(10050, 20000)));
    assert_eq!(r.status(t), Some(201));
    r.started(p, n, k);
    let t = r.node(p, n, start("a.pcap"));
    let Ok(Answer::Ok(Body::Capture(path))) = r.reply(t).clone() else {
        panic!("{:?}", r.reply(t))
    };
    assert!(path.ends_with("project-files/captures/a.pcap"));
    assert_eq!(r.host.disk.files[&path].len(), 24, "the header, at once");
    let mut send = |_: Endpoint, _: &[u8]| true;
    r.lab
        .on_frame(r.now, Endpoint::Node(k), &[1; 60], &mut send);
    r.lab
        .on_frame(r.now, Endpoint::Nio(k, 0), &[2; 70], &mut send);
    assert_eq!(
        r.host.disk.files[&path].len(),
        24,
        "written by the loop, not per frame"
    );
    r.turn();
    assert_eq!(r.host.disk.files[&path].len(), 24 + 16 + 60 + 16 + 70);
    let t = r.node(p, n, start("b.pcap"));
    assert!(r.error(t).contains("already has a capture"));
    // The NIO goes: the capture ends, what was buffered is written.
    r.lab
        .on_frame(r.now, Endpoint::Node(k), &[3; 60], &mut send);
    let t = r.node(p, n, NodeCommand::RemoveNio(PORT0));
    assert_eq!(r.status(t), Some(204));
    assert_eq!(
        r.host.disk.files[&path].len(),
        24 + 16 + 60 + 16 + 70 + 16 + 60
    );
    let t = r.node(p, n, NodeCommand::StopCapture(PORT0));
    assert!(r.error(t).contains("No capture"));
}

#[test]
fn a_frame_the_host_could_not_send_after_all_is_a_send_drop_on_the_port_that_counted_it() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.linked_vpcs(p);
    r.started(p, n, k);
    let mut send = |_: Endpoint, _: &[u8]| true;
    for _ in 0..3 {
        r.lab
            .on_frame(r.now, Endpoint::Node(k), &[1; 60], &mut send);
        r.lab
            .on_frame(r.now, Endpoint::Nio(k, 0), &[2; 70], &mut send);
    }
    // One frame out of the NIO and one into the process did not go.
    r.lab.unsent(Endpoint::Nio(k, 0), 60);
    r.lab.unsent(Endpoint::Node(k), 70);
    let s = &r.lab.node(k).unwrap().ports[0].stats;
    assert_eq!((s.out_frames, s.out_bytes), (2, 120));
    assert_eq!((s.in_frames, s.in_bytes), (2, 140));
    assert_eq!((s.dropped, s.dropped_send), (2, 2));
}

#[test]
fn a_bridge_charges_its_side_channel_to_the_port_behind_it() {
    use crate::lab::kinds::bridge_charged;
    let k = crate::lab::NodeKey::for_tests(0);
    assert_eq!(bridge_charged(Endpoint::Nio(k, 3), 1 << 20), (3, true));
    assert_eq!(
        bridge_charged(Endpoint::Nio(k, (1 << 20) + 3), 1 << 20),
        (3, false)
    );
}

#[test]
fn a_live_capture_viewer_gets_the_header_then_records_and_is_let_go_when_slow() {
    use crate::lab::spec::CaptureStart;
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.linked_vpcs(p);
    let t = r.node(p, n, NodeCommand::WatchCapture(PORT0));
    assert!(r.error(t).contains("No capture"));
    let start = CaptureStart {
        capture_file_name: "live.pcap".into(),
    };
    r.node(p, n, NodeCommand::StartCapture(PORT0, start));
    let t = r.node(p, n, NodeCommand::WatchCapture(PORT0));
    assert_eq!(r.reply(t), &Ok(Answer::Ok(Body::LiveCapture)));
    let viewer = ClientId {
        handle: t.conn,
        serial: t.serial,
    };
    assert_eq!(
        r.lab.capture_output(viewer).unwrap().len(),
        24,
        "the pcap header first"
    );
    let mut send = |_: Endpoint, _: &[u8]| true;
    r.lab
        .on_frame(r.now, Endpoint::Nio(k, 0), &[7; 100], &mut send);
    assert_eq!(r.lab.take_ready_viewers(), [viewer]);
    assert_eq!(r.lab.capture_output(viewer).unwrap().len(), 116);
    // A viewer that never reads is let go; the file capture goes on.
    for _ in 0..20_000 {
        r.lab
            .on_frame(r.now, Endpoint::Nio(k, 0), &[7; 100], &mut send);
    }
    assert_eq!(r.lab.capture_output(viewer), None);
    r.turn();
    assert!(r.lab.node(k).unwrap().ports[0].capture.is_some());
}

#[test]
fn a_capture_that_cannot_be_written_stops_but_the_frames_go_on() {
    use crate::lab::spec::CaptureStart;
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.linked_vpcs(p);
    let start = CaptureStart {
        capture_file_name: "full.pcap".into(),
    };
    let t = r.node(p, n, NodeCommand::StartCapture(PORT0, start));
    let Ok(Answer::Ok(Body::Capture(path))) = r.reply(t).clone() else {
        panic!()
    };
    // The disk "fills": the fake refuses to append to a file that is gone.
    r.host.disk.files.remove(&path);
    let mut sent = 0;
    r.lab
        .on_frame(r.now, Endpoint::Nio(k, 0), &[1; 60], &mut |_, _| true);
    r.turn();
    assert!(
        r.lab.node(k).unwrap().ports[0].capture.is_none(),
        "the capture stopped"
    );
    let events: Vec<Event> = std::iter::from_fn(|| r.lab.poll_event()).collect();
    assert!(
        events
            .iter()
            .any(|e| e.to_string().contains("capture into") && e.to_string().contains("stopped"))
    );
    r.started(p, n, k);
    r.lab
        .on_frame(r.now, Endpoint::Nio(k, 0), &[1; 60], &mut |_, _| {
            sent += 1;
            true
        });
    assert_eq!(sent, 1, "the relay carries on");
}

/// Events the lab queued, drained.
#[test]
fn a_delay_filter_holds_frames_on_the_lab_clock_and_keeps_their_order() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.vpcs(p);
    let delay = LinkFilters {
        delay: Some((100, 0)),
        bpf: vec!["udp port 53\nnot ( a valid".into()],
        ..Default::default()
    };
    let t = r.node(
        p,
        n,
        NodeCommand::AttachNio(PORT0, nio(10050, 20000), delay),
    );
    assert_eq!(r.status(t), Some(201));
    let warned = events(&mut r).into_iter().any(|e| {
        matches!(e, Event::ProjectLog { level: LogLevel::Warning, ref text, .. } if text.contains("not ( a valid"))
    });
    assert!(warned, "a BPF line that does not compile is a log.warning");
    r.started(p, n, k);
    let mut sent = Vec::new();
    for i in 0..5u8 {
        r.lab
            .on_frame(r.now, Endpoint::Node(k), &[i; 60], &mut |to, f| {
                sent.push((to, f[0]));
                true
            });
    }
    assert!(sent.is_empty(), "held back");
    assert_eq!(r.lab.timeout(r.now), Some(Duration::from_millis(100)));
    r.now += Duration::from_millis(99);
    r.lab.release_frames(r.now, &mut |to, f| {
        sent.push((to, f[0]));
        true
    });
    assert!(sent.is_empty(), "not yet");
    r.now += Duration::from_millis(1);
    r.lab.release_frames(r.now, &mut |to, f| {
        sent.push((to, f[0]));
        true
    });
    let order: Vec<u8> = sent.iter().map(|(_, b)| *b).collect();
    assert_eq!(order, [0, 1, 2, 3, 4]);
    assert!(sent.iter().all(|(to, _)| *to == Endpoint::Nio(k, 0)));
    assert_eq!(r.lab.node(k).unwrap().ports[0].stats.out_frames, 5);
    // Suspended: dropped and counted as filtered; resumed: straight through.
    let suspend = LinkFilters {
        suspend: true,
        ..Default::default()
    };
    let t = r.node(p, n, NodeCommand::SetFilters(PORT0, suspend));
    assert_eq!(r.status(t), Some(201));
    let mut n_sent = 0;
    r.lab
        .on_frame(r.now, Endpoint::Nio(k, 0), &[9; 60], &mut |_, _| {
            n_sent += 1;
            true
        });
    assert_eq!(n_sent, 0);
    assert_eq!(r.lab.node(k).unwrap().ports[0].stats.dropped_filtered, 1);
    let t = r.node(p, n, NodeCommand::SetFilters(PORT0, LinkFilters::default()));
    assert_eq!(r.status(t), Some(201));
    r.lab
        .on_frame(r.now, Endpoint::Nio(k, 0), &[9; 60], &mut |_, _| {
            n_sent += 1;
            true
        });
    assert_eq!(n_sent, 1);
    // A port without a NIO has no filters to set.
    let t = r.node(p, n, NodeCommand::RemoveNio(PORT0));
    assert_eq!(r.status(t), Some(204));
    let t = r.node(p, n, NodeCommand::SetFilters(PORT0, LinkFilters::default()));
    assert_eq!(r.status(t), Some(409));
}

#[test]
fn tunnels_between_two_of_our_ports_carry_frames_in_memory() {
    let mut r = Rig::new();
    let p = r.project();
    let [(_, ka), (b, kb)] = r.tunnelled_pair(p);
    let mut sent = Vec::new();
    r.lab
        .on_frame(r.now, Endpoint::Node(ka), &[1; 60], &mut |to, _| {
            sent.push(to);
            true
        });
    // Out of A's NIO, into B's, and to B itself: no socket in between.
    assert_eq!(sent, [Endpoint::Node(kb)]);
    let sa = r.lab.node(ka).unwrap().ports[0].stats;
    let sb = r.lab.node(kb).unwrap().ports[0].stats;
    assert_eq!((sa.out_frames, sb.in_frames), (1, 1));
    // Removing one end makes the other use its socket again.
    let t = r.node(p, b, NodeCommand::RemoveNio(PORT0));
    assert_eq!(r.status(t), Some(204));
    let mut sent = Vec::new();
    r.lab
        .on_frame(r.now, Endpoint::Node(ka), &[1; 60], &mut |to, _| {
            sent.push(to);
            true
        });
    assert_eq!(sent, [Endpoint::Nio(ka, 0)]);
}

#[test]
fn hand_offs_past_the_turn_budget_wait_in_memory_for_the_next_turn_in_order() {
    use crate::limits::FRAMES_PER_TURN;
    let mut r = Rig::new();
    let p = r.project();
    let [(_, ka), (_, kb)] = r.tunnelled_pair(p);
    r.lab.begin_turn(r.now, &mut r.host);
    r.host.sent_frames.clear();
    // A's frames to B cost two each (A's send, the hand-off to B): past
    // the budget, they wait instead of taking A's socket.
    let total = FRAMES_PER_TURN;
    let mut now = Vec::new();
    for i in 0..total {
        let frame = (i as u32).to_be_bytes().repeat(15);
        r.lab
            .on_frame(r.now, Endpoint::Node(ka), &frame, &mut |to, f| {
                now.push((to, f[..4].to_vec()));
                true
            });
    }
    assert!(!r.lab.frames_left());
    assert!(
        now.iter().all(|(to, _)| *to == Endpoint::Node(kb)),
        "none took A's socket"
    );
    let first = now.len();
    assert!(first < total, "{first} went this turn");
    assert_eq!(r.lab.timeout(r.now), Some(std::time::Duration::ZERO));
    // The next turns deliver the rest, in order, and nothing is lost.
    for _ in 0..4 {
        r.turn();
    }
    let later: Vec<_> = r
        .host
        .sent_frames
        .iter()
        .map(|(to, f)| (*to, f[..4].to_vec()))
        .collect();
    assert!(later.iter().all(|(to, _)| *to == Endpoint::Node(kb)));
    let order: Vec<u32> = now
        .iter()
        .chain(&later)
        .map(|(_, f)| u32::from_be_bytes([f[0], f[1], f[2], f[3]]))
        .collect();
    assert_eq!(order, (0..total as u32).collect::<Vec<_>>());
    let sa = r.lab.node(ka).unwrap().ports[0].stats;
    let sb = r.lab.node(kb).unwrap().ports[0].stats;
    assert_eq!((sa.out_frames, sb.in_frames), (total as u64, total as u64));
    assert_ne!(r.lab.timeout(r.now), Some(std::time::Duration::ZERO));
}

#[test]
fn frames_a_delay_holds_go_with_their_nio() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = r.vpcs(p);
    let delay = LinkFilters {
        delay: Some((100, 0)),
        ..Default::default()
    };
    let t = r.node(
        p,
        n,
        NodeCommand::AttachNio(PORT0, nio(10050, 20000), delay),
    );
    assert_eq!(r.status(t), Some(201));
    r.started(p, n, k);
    r.lab
        .on_frame(r.now, Endpoint::Node(k), &[1; 60], &mut |_, _| true);
    assert!(r.lab.timeout(r.now).is_some(), "one frame held");
    let t = r.node(p, n, NodeCommand::RemoveNio(PORT0));
    assert_eq!(r.status(t), Some(204));
    r.now += Duration::from_secs(1);
    let mut sent = 0;
    r.lab.release_frames(r.now, &mut |_, _| {
        sent += 1;
        true
    });
    assert_eq!(sent, 0, "nothing left behind for a NIO that is gone");
}
