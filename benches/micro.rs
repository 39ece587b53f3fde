//! Micro benchmarks of the sans-IO hot paths: request parsing, routing plus
//! body validation, JSON response building, and a request through the v1
//! front-end and the lab (on the fake host) and back.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nanolab::api::routes;
use nanolab::proto::http::parse::{Method, RequestParser};
use nanolab::proto::http::response::Response;
use std::hint::black_box;

const GET: &[u8] = b"GET /v1/version HTTP/1.1\r\nHost: localhost:8000\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n";

fn post_1k() -> Vec<u8> {
    let script = "x".repeat(1000);
    let body = format!(r#"{{"name": "VPCS 1", "startup_script": "{script}"}}"#);
    let mut req = format!(
        "POST /v1/projects/42f9feee-3217-4104-981e-85d5f0a806ec/vpcs/vms HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body.as_bytes());
    req
}

fn parse_every(input: &[u8]) -> usize {
    let mut parser = RequestParser::new();
    let mut at = 0;
    let mut n = 0;
    while at < input.len() {
        let p = parser.feed(&input[at..]).unwrap();
        at += p.consumed;
        match p.request {
            Some(r) => n += r.body.len() + 1,
            None => break,
        }
    }
    n
}

fn parsing(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Bytes(GET.len() as u64));
    g.bench_function("small_get", |b| b.iter(|| parse_every(black_box(GET))));
    let post = post_1k();
    g.throughput(Throughput::Bytes(post.len() as u64));
    g.bench_function("post_1k_body", |b| b.iter(|| parse_every(black_box(&post))));
    let batch: Vec<u8> = GET.repeat(32);
    g.throughput(Throughput::Elements(32));
    g.bench_function("pipelined_32", |b| {
        b.iter(|| parse_every(black_box(&batch)))
    });
    g.finish();
}

fn routing(c: &mut Criterion) {
    let mut g = c.benchmark_group("route");
    g.throughput(Throughput::Elements(1));
    let path = "/v1/projects/42f9feee-3217-4104-981e-85d5f0a806ec/vpcs/vms/24d2e16b-fbef-4259-ae34-7bc21a41ee28/adapters/0/ports/0/nio";
    let nio = br#"{"lport": 10000, "rhost": "127.0.0.1", "rport": 10001, "type": "nio_udp"}"#;
    g.bench_function("nio_route_and_body", |b| {
        b.iter(|| {
            let m = routes::route(&Method::Post, black_box(path)).unwrap();
            let n = nanolab::api::Nio::parse(black_box(nio)).unwrap();
            (m.route, n.udp_port())
        })
    });
    // The deepest /v2 route the table ends with, and the cheapest GET.
    for (name, target) in [
        (
            "v2_link_filters",
            "/v2/compute/projects/42f9feee-3217-4104-981e-85d5f0a806ec/vpcs/nodes/24d2e16b-fbef-4259-ae34-7bc21a41ee28/adapters/0/ports/0/nio/stop_capture",
        ),
        ("v1_version", "/v1/version"),
    ] {
        let raw = format!("POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{{}}");
        let req = nanolab::proto::http::parse::RequestParser::new()
            .feed(raw.as_bytes())
            .unwrap()
            .request
            .unwrap();
        g.bench_function(name, |b| {
            b.iter(|| nanolab::api::decode(black_box(&req), None).1.route)
        });
    }
    g.finish();
}

fn responses(c: &mut Criterion) {
    let mut g = c.benchmark_group("respond");
    g.throughput(Throughput::Elements(1));
    let vm = serde_json::json!({
        "vm_id": "24d2e16b-fbef-4259-ae34-7bc21a41ee28",
        "project_id": "42f9feee-3217-4104-981e-85d5f0a806ec",
        "name": "VPCS 1", "console": 2000, "startup_script": null, "startup_script_path": null,
    });
    let mut out = Vec::with_capacity(1024);
    g.bench_function("vm_json", |b| {
        b.iter(|| {
            out.clear();
            Response::json(200, black_box(&vm))
                .with_route(Some("/v1/projects/{project_id}/vpcs/vms/{vm_id}"))
                .write_to(&mut out, false);
            out.len()
        })
    });
    g.finish();
}

/// A lab on the fake host with one project open, and the ticket its
/// requests go under: where the lab benches start.
fn lab_with_project(
    now: std::time::Instant,
) -> (
    nanolab::lab::Lab,
    nanolab::lab::fake::FakeHost,
    nanolab::api::Ticket,
    nanolab::lab::answer::ProjectView,
) {
    use nanolab::api::{Command, Ticket, body::ProjectCreate};
    use nanolab::lab::{Answer, Body};
    let mut lab = nanolab::lab::Lab::new(nanolab::lab::fake::settings());
    let mut host = nanolab::lab::fake::FakeHost::new();
    let t = Ticket {
        conn: 0,
        serial: 0,
        slot: 0,
    };
    lab.handle(
        now,
        t,
        Command::CreateProject(ProjectCreate::default()),
        &mut host,
    );
    let Some((_, Ok(Answer::Created(Body::Project(p))))) = host.replies.pop() else {
        panic!("the project was not created")
    };
    (lab, host, t, p)
}

/// `GET` of a node: decode, queue, answer, render; and a frame through the
/// lab's relay decision.
fn lab(c: &mut Criterion) {
    use nanolab::api::body::VmCreate;
    use nanolab::api::{
        Command, Nio, NioUdp, NodeCommand, NodeCreate, NodeRef, PortAddr, Ticket, v1,
    };
    use nanolab::lab::{Answer, Body, Endpoint};
    use std::time::Instant;
    let now = Instant::now();
    let (mut lab, mut host, t, p) = lab_with_project(now);
    let vm = VmCreate {
        name: "PC".into(),
        vm_id: None,
        legacy_id: None,
        console: None,
        startup_script: None,
        console_pick: false,
        console_telnet: true,
    };
    lab.handle(
        now,
        t,
        Command::CreateNode(p.id, NodeCreate::Vpcs(vm)),
        &mut host,
    );
    let Some((_, Ok(Answer::Created(Body::Vpcs(v))))) = host.replies.pop() else {
        panic!()
    };
    let node = NodeRef {
        project: p.id,
        node: v.id,
        class: nanolab::api::NodeClass::Vpcs,
    };
    let nio = Nio::Udp(NioUdp {
        lport: 10000,
        rhost: "127.0.0.1".into(),
        raddr: [127, 0, 0, 1].into(),
        rport: 10001,
    });
    let at = PortAddr {
        adapter: 0,
        port: 0,
    };
    lab.handle(
        now,
        t,
        Command::Node(node, NodeCommand::AddNio(at, nio)),
        &mut host,
    );
    let key = lab.key_of(v.id).unwrap();
    let raw = format!(
        "GET /v1/projects/{}/vpcs/vms/{} HTTP/1.1\r\nHost: x\r\n\r\n",
        p.id, v.id
    );
    let req = RequestParser::new()
        .feed(raw.as_bytes())
        .unwrap()
        .request
        .unwrap();
    let mut g = c.benchmark_group("lab");
    g.throughput(Throughput::Elements(1));
    g.bench_function("get_node_decode_handle_render", |b| {
        b.iter(|| {
            host.replies.clear();
            let d = v1::decode(black_box(&req), None);
            let t = Ticket {
                conn: 0,
                serial: 0,
                slot: 0,
            };
            lab.handle(now, t, d.command.unwrap(), &mut host);
            let (_, reply) = host.replies.pop().unwrap();
            v1::render(d.route, reply).body.len()
        })
    });
    let frame = [0u8; 64];
    g.bench_function("frame_decision", |b| {
        b.iter(|| {
            let mut sent = 0;
            lab.on_frame(now, Endpoint::Node(key), black_box(&frame), &mut |_, f| {
                sent += f.len();
                true
            });
            sent
        })
    });
    g.finish();
}

/// A frame through a built-in switch of 8 access ports: learnt unicast
/// (one egress) and a broadcast (seven), the lab's whole frame path with
/// the sends counted, not made.
fn switching(c: &mut Criterion) {
    use nanolab::api::{Command, Nio, NioUdp, NodeCommand, NodeCreate, NodeRef};
    use nanolab::lab::{Answer, Body, Endpoint};
    use std::time::Instant;
    let now = Instant::now();
    let (mut lab, mut host, t, p) = lab_with_project(now);
    let sw = nanolab::lab::spec::DeviceCreate {
        mapping: None,
        name: "SW1".into(),
        device_type: nanolab::lab::types::DeviceType::Switch,
        device_id: None,
    };
    lab.handle(
        now,
        t,
        Command::CreateNode(p.id, NodeCreate::Device(sw)),
        &mut host,
    );
    let Some((_, Ok(Answer::Created(Body::Device(d))))) = host.replies.pop() else {
        panic!()
    };
    let node = NodeRef {
        project: p.id,
        node: d.id,
        class: nanolab::api::NodeClass::Device,
    };
    for port in 0..8u32 {
        let nio = Nio::Udp(NioUdp {
            lport: 10000 + port as u16,
            rhost: "127.0.0.1".into(),
            raddr: [127, 0, 0, 1].into(),
            rport: 20000 + port as u16,
        });
        lab.handle(
            now,
            t,
            Command::Node(node, NodeCommand::AddDeviceNio(port, nio, None)),
            &mut host,
        );
    }
    let key = lab.key_of(d.id).unwrap();
    let frame = |dst: u8, src: u8| {
        let mut f = vec![0x02, 0, 0, 0, 0, dst, 0x02, 0, 0, 0, 0, src, 0x08, 0x00];
        f.resize(64, 0x45);
        f
    };
    // Teach the switch where host 2 is (port 1).
    lab.on_frame(now, Endpoint::Nio(key, 1), &frame(1, 2), &mut |_, _| true);
    let (unicast, mut broadcast) = (frame(2, 1), frame(0xff, 1));
    broadcast[..6].copy_from_slice(&[0xff; 6]);
    let mut g = c.benchmark_group("switch");
    g.throughput(Throughput::Elements(1));
    for (name, f) in [("unicast_64", unicast), ("broadcast_64", broadcast)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut sent = 0;
                lab.on_frame(now, Endpoint::Nio(key, 0), black_box(&f), &mut |_, f| {
                    sent += f.len();
                    true
                });
                sent
            })
        });
    }
    g.finish();
}

/// The status page and `status.json` for a lab of 100 PCs linked in
/// pairs, with five minutes of rates behind every link: the lab's view,
/// then the page (SVG drawing, tables, graphs) or the JSON.
fn status(c: &mut Criterion) {
    use nanolab::api::body::VmCreate;
    use nanolab::api::{Command, Nio, NioUdp, NodeCommand, NodeCreate, NodeRef, PortAddr, pages};
    use nanolab::lab::{Answer, Body};
    use std::time::{Duration, Instant};
    let mut now = Instant::now();
    let (mut lab, mut host, t, p) = lab_with_project(now);
    for i in 0..100u16 {
        let vm = VmCreate {
            name: format!("PC{i}"),
            vm_id: None,
            legacy_id: None,
            console: None,
            startup_script: None,
            console_pick: false,
            console_telnet: true,
        };
        lab.handle(
            now,
            t,
            Command::CreateNode(p.id, NodeCreate::Vpcs(vm)),
            &mut host,
        );
        let Some((_, Ok(Answer::Created(Body::Vpcs(v))))) = host.replies.pop() else {
            panic!()
        };
        let node = NodeRef {
            project: p.id,
            node: v.id,
            class: nanolab::api::NodeClass::Vpcs,
        };
        let (lport, rport) = (10000 + i, if i % 2 == 0 { 10001 + i } else { 9999 + i });
        let nio = Nio::Udp(NioUdp {
            lport,
            rhost: "127.0.0.1".into(),
            raddr: [127, 0, 0, 1].into(),
            rport,
        });
        let at = PortAddr {
            adapter: 0,
            port: 0,
        };
        lab.handle(
            now,
            t,
            Command::Node(node, NodeCommand::AddNio(at, nio)),
            &mut host,
        );
    }
    for _ in 0..=150 {
        now += Duration::from_secs(2);
        lab.poll(now, &mut host);
    }
    let mut g = c.benchmark_group("status_100_nodes");
    g.throughput(Throughput::Elements(1));
    for (name, route) in [("page", "/"), ("json", "/status.json")] {
        g.bench_function(name, |b| {
            b.iter(|| {
                host.replies.clear();
                lab.handle(now, t, Command::Status(None), &mut host);
                let (_, reply) = host.replies.pop().unwrap();
                pages::render(Some(route), reply).body.len()
            })
        });
    }
    g.finish();
}

/// What a link's filters cost per frame: loss, corruption, a BPF rule
/// compiled by libpcap, and a delay (which only queues).
fn filters(c: &mut Criterion) {
    use nanolab::api::LinkFilters;
    use nanolab::lab::filters::{Filters, Rng};
    let mut g = c.benchmark_group("filters");
    g.throughput(Throughput::Elements(1));
    let mut frame = vec![0u8; 64];
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    frame[14] = 0x45;
    frame[23] = 6;
    let now = std::time::Instant::now();
    let cases = [
        (
            "loss_5_percent",
            LinkFilters {
                packet_loss: Some(5),
                ..Default::default()
            },
        ),
        (
            "bpf_icmp",
            LinkFilters {
                bpf: vec!["icmp".into()],
                ..Default::default()
            },
        ),
        (
            "corrupt_50_percent",
            LinkFilters {
                corrupt: Some(50),
                ..Default::default()
            },
        ),
        (
            "delay_100ms_jitter_10",
            LinkFilters {
                delay: Some((100, 10)),
                ..Default::default()
            },
        ),
    ];
    for (name, spec) in cases {
        let (mut f, _) = Filters::new(spec);
        let mut rng = Rng::new(1);
        g.bench_function(name, |b| {
            b.iter(|| f.apply(now, true, black_box(&frame), &mut rng))
        });
    }
    g.finish();
}

criterion_group!(
    benches, parsing, routing, responses, lab, switching, status, filters
);
criterion_main!(benches);
