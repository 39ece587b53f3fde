//! A container node on the fake clock, with the engine's answers made up:
//! the create waits for the container, a start is attach, start, inspect
//! and the veths, a stop waits for the engine, a delete removes by force,
//! a container that ends by itself is stopped and said so.

use super::*;
use crate::lab::command::NodeClass;
use crate::lab::host::{EngineCall, EngineReply};
use crate::lab::spec::{DockerConfig, DockerCreate, DockerPatch};

const IMAGE: &str = "busybox:test";
const CID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const SIDE: usize = 1 << 20;

/// The engine's next call, answered with `status` and `body`.
fn answer(r: &mut Rig, status: u16, body: &str) -> EngineCall {
    assert!(!r.host.engine_calls.is_empty(), "no call awaits an answer");
    let call = r.host.engine_calls.remove(0);
    let reply = EngineReply {
        status,
        body: body.as_bytes().to_vec(),
    };
    r.lab.on_engine(r.now, &call, Ok(reply), &mut r.host);
    r.check();
    call
}

fn create(r: &mut Rig, p: Uuid, name: &str, config: DockerConfig) -> Ticket {
    let b = DockerCreate {
        name: name.into(),
        node_id: None,
        console: None,
        aux: None,
        config: DockerConfig {
            image: IMAGE.into(),
            ..config
        },
    };
    r.send(Command::CreateNode(p, NodeCreate::Docker(Box::new(b))))
}

/// A container node the engine made.
fn made(r: &mut Rig, p: Uuid, config: DockerConfig) -> (Uuid, NodeKey) {
    let t = create(r, p, "c1", config);
    answer(r, 200, r#"{"Config": {"Cmd": null, "Entrypoint": null}}"#);
    answer(r, 201, &format!(r#"{{"Id": "{CID}"}}"#));
    match r.reply(t) {
        Ok(Answer::Created(Body::Docker(v))) => (v.id, r.lab.key_of(v.id).unwrap()),
        other => panic!("{other:?}"),
    }
}

fn op(r: &mut Rig, p: Uuid, n: Uuid, c: NodeCommand) -> Ticket {
    r.send(Command::Node(
        NodeRef {
            project: p,
            node: n,
            class: NodeClass::Docker,
        },
        c,
    ))
}

fn view(r: &mut Rig, p: Uuid, n: Uuid) -> crate::lab::answer::DockerView {
    let t = op(r, p, n, NodeCommand::Get);
    match r.reply(t) {
        Ok(Answer::Ok(Body::Docker(v))) => (**v).clone(),
        other => panic!("{other:?}"),
    }
}

/// Start it: the attach, the start and the inspect answered.
fn started(r: &mut Rig, p: Uuid, n: Uuid) {
    let t = op(r, p, n, NodeCommand::Start);
    let attach = answer(r, 101, "");
    assert!(attach.attach, "{attach:?}");
    answer(r, 204, "");
    answer(r, 200, r#"{"State": {"Pid": 4242, "Running": true}}"#);
    assert_eq!(r.status(t), Some(204), "{:?}", r.host.reply_for(t));
}

#[test]
fn a_create_waits_for_the_engine_to_make_the_container() {
    let mut r = Rig::new();
    let p = r.project();
    let t = create(&mut r, p, "c1", DockerConfig::default());
    assert_eq!(r.status(t), None, "parked until the engine made it");
    let image = answer(
        &mut r,
        200,
        r#"{"Config": {"Cmd": null, "Entrypoint": null}}"#,
    );
    assert_eq!(
        (image.method, image.path.as_str()),
        ("GET", "/images/busybox:test/json")
    );
    let call = r.host.engine_calls[0].clone();
    assert!(
        call.path.starts_with("/containers/create?name=nanolab.c1."),
        "{call:?}"
    );
    let body: serde_json::Value = serde_json::from_slice(call.body.as_deref().unwrap()).unwrap();
    assert_eq!(body["HostConfig"]["NetworkMode"], "none");
    let dropped = body["HostConfig"]["CapDrop"].as_array().unwrap();
    for cap in ["SYS_RESOURCE", "SYS_MODULE", "SYS_TIME", "SYS_RAWIO"] {
        assert!(dropped.contains(&cap.into()), "{cap} is dropped: {body}");
    }
    assert_eq!(body["HostConfig"]["CapAdd"], serde_json::json!(["ALL"]));
    assert!(body["HostConfig"].get("Privileged").is_none());
    assert_eq!(
        body["Cmd"],
        serde_json::json!(["/bin/sh"]),
        "no command: a shell"
    );
    assert_eq!(body["Tty"], true);
    assert!(body["Labels"][kinds::docker::LABEL].is_string(), "{body}");
    answer(&mut r, 201, &format!(r#"{{"Id": "{CID}"}}"#));
    match r.reply(t) {
        Ok(Answer::Created(Body::Docker(v))) => {
            assert_eq!(v.container_id, CID);
            assert_eq!(v.status, "stopped");
            assert!(v.config.mac_address.starts_with("02:42:"), "{v:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_create_the_engine_refuses_leaves_no_node() {
    let mut r = Rig::new();
    let p = r.project();
    let t = create(&mut r, p, "c1", DockerConfig::default());
    answer(&mut r, 404, r#"{"message": "No such image: busybox:test"}"#);
    // Missing here: pulled from its registry, once.
    let pull = r.host.engine_calls[0].clone();
    assert_eq!(
        (pull.method, pull.path.as_str(), pull.long),
        ("POST", "/images/create?fromImage=busybox&tag=test", true)
    );
    let progress = r#"{"status": "Pulling"}
{"error": "manifest for busybox:test not found"}"#;
    answer(&mut r, 200, progress);
    assert_eq!(r.status(t), Some(409));
    let e = r.error(t);
    assert!(e.contains("Could not pull the 'busybox:test' image"), "{e}");
    assert!(e.contains("manifest for busybox:test not found"), "{e}");
    assert_eq!(r.lab.nodes().count(), 0);
    assert!(r.host.engine_calls.is_empty(), "nothing to remove");

    // Pulled, yet still missing: the engine's word, no second pull.
    let t = create(&mut r, p, "c1", DockerConfig::default());
    answer(&mut r, 404, r#"{"message": "No such image: busybox:test"}"#);
    answer(&mut r, 200, r#"{"status": "Downloaded newer image"}"#);
    let again = answer(&mut r, 404, r#"{"message": "No such image: busybox:test"}"#);
    assert_eq!(again.path, "/images/busybox:test/json");
    assert!(r.error(t).contains("404 No such image"), "{}", r.error(t));
    assert!(r.host.engine_calls.is_empty());

    r.host.engine_down = true;
    let t = create(&mut r, p, "c2", DockerConfig::default());
    assert!(r.error(t).contains("Can't connect"), "{}", r.error(t));
    assert_eq!(r.lab.nodes().count(), 0);
    assert!(r.host.consoles.is_empty(), "its console port was let go");
}

#[test]
fn a_start_plugs_a_veth_per_adapter_and_a_stop_unplugs_them() {
    let mut r = Rig::new();
    let p = r.project();
    let config = DockerConfig {
        adapters: 2,
        mac_address: "02:42:00:00:10:00".into(),
        ..DockerConfig::default()
    };
    let (n, k) = made(&mut r, p, config);
    let t = op(&mut r, p, n, NodeCommand::Start);
    let attach = answer(&mut r, 101, "");
    assert_eq!(
        attach.path,
        format!("/containers/{CID}/attach?stream=1&stdin=1&stdout=1&stderr=1")
    );
    assert_eq!(
        r.lab.node(k).unwrap().state(),
        State::Starting,
        "until plugged"
    );
    let start = answer(&mut r, 204, "");
    assert_eq!(start.path, format!("/containers/{CID}/start"));
    answer(&mut r, 200, r#"{"State": {"Pid": 4242, "Running": true}}"#);
    assert_eq!(r.status(t), Some(204));
    let (pid, links) = r.host.plugged[0].clone();
    assert_eq!(pid, 4242);
    let macs: Vec<_> = links
        .iter()
        .map(|l| (l.inside.as_str(), l.mac.as_str()))
        .collect();
    assert_eq!(
        macs,
        [("eth0", "02:42:00:00:10:00"), ("eth1", "02:42:00:00:10:01")]
    );
    for (i, l) in links.iter().enumerate() {
        assert!(matches!(&r.host.nios[&(k, SIDE + i)], Nio::Ethernet(e) if e.device == l.host));
    }
    assert_eq!(view(&mut r, p, n).status, "started");

    // Suspend is the engine's pause; GNS3's resume is a start.
    let t = op(&mut r, p, n, NodeCommand::Suspend);
    assert_eq!(r.status(t), Some(204));
    assert!(r.host.engine_calls[0].path.ends_with("/pause"));
    answer(&mut r, 204, "");
    assert_eq!(view(&mut r, p, n).status, "suspended");
    let t = op(&mut r, p, n, NodeCommand::Start);
    assert_eq!(
        answer(&mut r, 204, "").path,
        format!("/containers/{CID}/unpause")
    );
    assert_eq!(r.status(t), Some(204));
    assert_eq!(view(&mut r, p, n).status, "started");

    let t = op(&mut r, p, n, NodeCommand::Stop);
    assert_eq!(r.status(t), None, "waits for the engine");
    let stop = answer(&mut r, 204, "");
    assert_eq!(stop.path, format!("/containers/{CID}/stop?t=5"));
    assert_eq!(r.status(t), Some(204));
    let hosts: Vec<String> = links.iter().map(|l| l.host.clone()).collect();
    assert_eq!(r.host.unplugged, hosts);
    assert!(!r.host.nios.contains_key(&(k, SIDE)));
    assert_eq!(view(&mut r, p, n).status, "stopped");

    // Delete: removed by force, at once.
    let t = op(&mut r, p, n, NodeCommand::Delete);
    assert_eq!(r.status(t), Some(204));
    let rm = &r.host.engine_calls[0];
    assert_eq!(
        (rm.method, rm.path.clone()),
        ("DELETE", format!("/containers/{CID}?force=1&v=1"))
    );
    assert!(r.lab.key_of(n).is_none());
}

#[test]
fn a_container_that_ends_by_itself_is_stopped_and_said_so() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = made(&mut r, p, DockerConfig::default());
    started(&mut r, p, n);
    events(&mut r);
    r.lab.on_exit(r.now, k, "its terminal closed", &mut r.host);
    r.check();
    assert_eq!(view(&mut r, p, n).status, "stopped");
    assert_eq!(r.host.unplugged.len(), 1);
    let warned = events(&mut r)
        .iter()
        .any(|e| e.to_string().contains("container exited on its own"));
    assert!(warned);
}

#[test]
fn a_container_that_exits_as_it_starts_fails_the_start_with_what_it_printed() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, k) = made(&mut r, p, DockerConfig::default());
    let t = op(&mut r, p, n, NodeCommand::Start);
    answer(&mut r, 101, "");
    r.lab
        .on_output(r.now, k, b"exec: nosuch: not found\r\n", &mut r.host);
    answer(&mut r, 204, "");
    answer(&mut r, 200, r#"{"State": {"Pid": 0, "Running": false}}"#);
    assert_eq!(r.status(t), Some(409));
    assert!(r.error(t).contains("nosuch: not found"), "{}", r.error(t));
    assert!(r.host.plugged.is_empty());
    assert_eq!(view(&mut r, p, n).status, "stopped");
}

#[test]
fn an_update_renames_and_a_new_environment_makes_the_container_again_at_start() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, _) = made(&mut r, p, DockerConfig::default());
    let patch = DockerPatch {
        name: Some("c2".into()),
        environment: Some("A=1".into()),
        ..DockerPatch::default()
    };
    let t = op(&mut r, p, n, NodeCommand::UpdateDocker(Box::new(patch)));
    assert_eq!(r.status(t), Some(200));
    let rename = answer(&mut r, 204, "");
    assert!(
        rename.path.contains("/rename?name=nanolab.c2."),
        "{rename:?}"
    );
    let t = op(&mut r, p, n, NodeCommand::Start);
    let rm = answer(&mut r, 204, "");
    assert_eq!(rm.method, "DELETE");
    answer(&mut r, 200, r#"{"Config": {"Cmd": ["/bin/sh"]}}"#);
    let create = r.host.engine_calls[0].clone();
    let body: serde_json::Value = serde_json::from_slice(create.body.as_deref().unwrap()).unwrap();
    assert!(
        body["Env"].as_array().unwrap().contains(&"A=1".into()),
        "{body}"
    );
    assert!(body.get("Cmd").is_none(), "the image's own command: {body}");
    let other = CID.replace('0', "f");
    answer(&mut r, 201, &format!(r#"{{"Id": "{other}"}}"#));
    answer(&mut r, 101, "");
    answer(&mut r, 204, "");
    answer(&mut r, 200, r#"{"State": {"Pid": 7, "Running": true}}"#);
    assert_eq!(r.status(t), Some(204));
    assert_eq!(view(&mut r, p, n).container_id, other);
}

#[test]
fn a_closed_project_removes_its_containers_and_answers_what_waited() {
    let mut r = Rig::new();
    let p = r.project();
    let (n, _) = made(&mut r, p, DockerConfig::default());
    let creating = create(&mut r, p, "c2", DockerConfig::default());
    let start = op(&mut r, p, n, NodeCommand::Start);
    r.host.engine_calls.clear();
    let t = r.send(Command::CloseProject(p));
    assert_eq!(r.status(t), Some(204));
    assert_eq!(r.status(creating), Some(409), "the create is answered");
    assert_eq!(r.status(start), Some(409), "the start is answered");
    let removed: Vec<_> = r.host.engine_calls.iter().map(|c| c.path.clone()).collect();
    assert_eq!(removed, [format!("/containers/{CID}?force=1&v=1")]);
}

#[test]
fn the_auxiliary_console_is_a_second_shell_on_a_port_of_its_own() {
    let mut r = Rig::new();
    let p = r.project();
    let config = DockerConfig {
        aux_type: "telnet".into(),
        ..DockerConfig::default()
    };
    let (n, k) = made(&mut r, p, config);
    let v = view(&mut r, p, n);
    let aux = v.aux.expect("an aux port");
    assert_eq!(r.host.aux_consoles.get(&k), Some(&aux));
    assert_ne!(Some(aux), v.console);
    let t = op(&mut r, p, n, NodeCommand::Start);
    answer(&mut r, 101, "");
    answer(&mut r, 204, "");
    answer(&mut r, 200, r#"{"State": {"Pid": 4242, "Running": true}}"#);
    assert_eq!(r.status(t), None, "the start waits for the second shell");
    let exec = r.host.engine_calls[0].clone();
    assert_eq!(exec.path, format!("/containers/{CID}/exec"));
    answer(&mut r, 201, r#"{"Id": "feedface"}"#);
    let attach = r.host.engine_calls[0].clone();
    assert_eq!(attach.path, "/exec/feedface/start");
    assert!(attach.attach && attach.aux, "{attach:?}");
    answer(&mut r, 101, "");
    assert_eq!(r.status(t), Some(204));

    // A client of the auxiliary console: greeted, its typing goes to the
    // second shell, the shell's output comes back to it alone.
    let c = ClientId {
        handle: 77,
        serial: 1,
    };
    assert!(r.lab.console_attach_aux(k, c));
    r.lab.console_input(r.now, k, c, b"ls\r", &mut r.host);
    assert_eq!(
        r.host.aux_typed.get(&k).map(Vec::as_slice),
        Some(&b"ls\r"[..])
    );
    assert!(!r.host.typed.contains_key(&k), "not the console's");
    r.lab.on_aux_output(k, b"bin  tmp\r\n", &mut r.host);
    let (out, _) = r.lab.console_pending(k, c).unwrap();
    assert!(out.windows(8).any(|w| w == b"bin  tmp"), "{out:?}");

    // A shell the engine cannot give leaves the node running.
    let t = op(&mut r, p, n, NodeCommand::Stop);
    answer(&mut r, 204, "");
    assert_eq!(r.status(t), Some(204));
    let t = op(&mut r, p, n, NodeCommand::Start);
    answer(&mut r, 101, "");
    answer(&mut r, 204, "");
    answer(&mut r, 200, r#"{"State": {"Pid": 4243, "Running": true}}"#);
    answer(&mut r, 409, r#"{"message": "container is paused"}"#);
    assert_eq!(r.status(t), Some(204));

    // Deleted: the port goes back to the pool, its listener closes.
    let t = op(&mut r, p, n, NodeCommand::Delete);
    assert_eq!(r.status(t), Some(204));
    assert!(r.host.aux_consoles.is_empty());
}

#[test]
fn a_container_made_for_a_node_that_went_meanwhile_is_removed() {
    let mut r = Rig::new();
    let p = r.project();
    let t = create(&mut r, p, "c1", DockerConfig::default());
    answer(&mut r, 200, r#"{"Config": {}}"#);
    // The project closes while the engine makes the container.
    let making = r.host.engine_calls.remove(0);
    let close = r.send(Command::CloseProject(p));
    assert_eq!(r.status(close), Some(204));
    assert_eq!(r.status(t), Some(409), "the create is answered");
    let reply = EngineReply {
        status: 201,
        body: format!(r#"{{"Id": "{CID}", "Warnings": []}}"#).into_bytes(),
    };
    r.lab.on_engine(r.now, &making, Ok(reply), &mut r.host);
    r.check();
    let rm = &r.host.engine_calls[0];
    assert_eq!(
        (rm.method, rm.path.clone(), rm.node),
        ("DELETE", format!("/containers/{CID}?force=1&v=1"), None)
    );
}

#[test]
fn an_auxiliary_console_asked_on_the_console_s_port_takes_another() {
    let mut r = Rig::new();
    let p = r.project();
    let b = DockerCreate {
        name: "c1".into(),
        node_id: None,
        console: Some(2000),
        aux: Some(2000),
        config: DockerConfig {
            image: IMAGE.into(),
            aux_type: "telnet".into(),
            ..DockerConfig::default()
        },
    };
    let t = r.send(Command::CreateNode(p, NodeCreate::Docker(Box::new(b))));
    answer(&mut r, 200, r#"{"Config": {}}"#);
    answer(&mut r, 201, &format!(r#"{{"Id": "{CID}"}}"#));
    let v = match r.reply(t) {
        Ok(Answer::Created(Body::Docker(v))) => (**v).clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(v.console, Some(2000));
    let aux = v.aux.expect("an aux port");
    assert_ne!(aux, 2000, "not the console's");
    // And a console moved onto the aux port is refused, keeping both.
    let k = r.lab.key_of(v.id).unwrap();
    let patch = DockerPatch {
        console: Some(aux),
        ..DockerPatch::default()
    };
    let t = op(&mut r, p, v.id, NodeCommand::UpdateDocker(Box::new(patch)));
    assert_eq!(r.status(t), Some(409));
    assert_eq!(r.host.aux_consoles.get(&k), Some(&aux));
    assert_eq!(r.host.consoles.get(&k), Some(&2000));
}

#[test]
fn a_duplicate_takes_the_container_s_volumes_and_nothing_else_s() {
    let mut r = Rig::new();
    let p = r.project();
    let volumes = DockerConfig {
        extra_volumes: vec!["/data".into()],
        ..DockerConfig::default()
    };
    let (a, _) = made(&mut r, p, volumes.clone());
    let (b, _) = made(&mut r, p, volumes);
    let dir = |r: &mut Rig, n| view(r, p, n).directory;
    let (from, to) = (dir(&mut r, a), dir(&mut r, b));
    let file = from.join("volumes/data/frr.conf");
    r.host.disk.files.insert(file, b"hostname r1\n".to_vec());
    let t = op(&mut r, p, a, NodeCommand::Duplicate(b));
    match r.reply(t) {
        Ok(Answer::Created(Body::Docker(v))) => assert_eq!(v.id, b),
        other => panic!("{other:?}"),
    }
    let copied = r.host.disk.files.get(&to.join("volumes/data/frr.conf"));
    assert_eq!(copied.map(Vec::as_slice), Some(&b"hostname r1\n"[..]));
    // A PC is no container's origin.
    let (pc, _) = r.vpcs(p);
    let t = r.send(Command::Node(
        NodeRef {
            project: p,
            node: pc,
            class: NodeClass::Vpcs,
        },
        NodeCommand::Duplicate(b),
    ));
    assert!(
        r.error(t).contains("is not a Docker container"),
        "{}",
        r.error(t)
    );
}

#[test]
fn a_container_node_makes_no_node_larger() {
    use crate::lab::kinds::{cloud, docker, hub, pc, qemu, switch};
    use std::mem::size_of;
    // Every node is as large as the largest kind: a container's state is
    // boxed so that labs of PCs and switches do not pay for it (on every
    // target: the largest kind differs between 32 and 64 bits).
    let others = [
        size_of::<pc::Pc>(),
        size_of::<qemu::Qemu>(),
        size_of::<switch::Switch>(),
        size_of::<hub::Hub>(),
        size_of::<cloud::Cloud>(),
    ];
    let largest = others.into_iter().max().unwrap();
    assert!(
        size_of::<docker::Docker>() <= largest,
        "{} > {largest}",
        size_of::<docker::Docker>()
    );
}

#[test]
fn calls_to_the_engine_under_way_are_bounded_and_freed_by_their_answers() {
    let mut r = Rig::new();
    let p = r.project();
    let none = DockerConfig {
        console_type: "none".into(),
        ..DockerConfig::default()
    };
    let max = crate::limits::MAX_ENGINE_CALLS;
    let waiting: Vec<Ticket> = (0..max)
        .map(|i| create(&mut r, p, &format!("c{i}"), none.clone()))
        .collect();
    assert_eq!(r.host.engine_calls.len(), max);
    let refused = create(&mut r, p, "one-more", none.clone());
    assert_eq!(r.status(refused), Some(503), "{}", r.error(refused));
    assert!(r.error(refused).contains("under way"));
    assert_eq!(
        r.lab.nodes().count(),
        max,
        "the refused create left no node"
    );
    // One answer (a refusal here) frees one place.
    answer(&mut r, 404, r#"{"message": "no"}"#);
    let pull = r.host.engine_calls.pop().unwrap();
    r.lab
        .on_engine(r.now, &pull, Err("Docker timeout".into()), &mut r.host);
    assert_eq!(r.status(waiting[0]), Some(409));
    let again = create(&mut r, p, "again", none);
    assert_eq!(r.status(again), None, "waits for the engine");
}
