//! The QEMU images directory as the controllers use it, on the fake host:
//! an image list waits for the digests it lacks (computed over several
//! turns), an upload is answered once its body came, a node naming a
//! missing image is `ImageMissing` on 2.2/3.0.

use super::*;
use crate::lab::spec::{QemuConfig, QemuCreate, QemuPatch};
use std::path::Path;

const QEMU: &str = "/usr/bin/qemu-system-x86_64";

fn images(r: &Rig, t: Ticket) -> Vec<(String, Option<String>)> {
    match r.reply(t) {
        Ok(Answer::Ok(Body::Images(list))) => list
            .iter()
            .map(|i| (i.name.clone(), i.md5.clone()))
            .collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_list_waits_for_the_digests_it_lacks_and_shows_images_only() {
    let mut r = Rig::new();
    let dir = Path::new("/images/QEMU");
    let files = &mut r.host.disk.files;
    files.insert(dir.join("a.qcow2"), b"QFI\xfb-a-disk".to_vec());
    files.insert(
        dir.join("a.qcow2.md5sum"),
        b"0123456789abcdef0123456789abcdef".to_vec(),
    );
    files.insert(dir.join("b.img"), b"a raw disk".to_vec());
    files.insert(dir.join("tiny"), b"abc".to_vec());
    files.insert(dir.join("vpcs"), b"\x7fELF\x02\x01\x01 a program".to_vec());
    files.insert(dir.join(".hidden.img"), b"half an upload".to_vec());
    let first = r.send(Command::Images);
    assert_eq!(r.status(first), None, "b.img has no digest yet");
    assert!(
        r.lab.timeout(r.now) == Some(Duration::ZERO),
        "the loop must turn"
    );
    let second = r.send(Command::Images);
    r.turn();
    assert_eq!(r.status(first), None, "one slice done, one to go");
    r.turn();
    let b = format!("{:x}", md5::compute(b"a raw disk"));
    let want = vec![
        (
            "a.qcow2".to_string(),
            Some("0123456789abcdef0123456789abcdef".to_string()),
        ),
        ("b.img".to_string(), Some(b)),
    ];
    assert_eq!(images(&r, first), want);
    assert_eq!(images(&r, second), want, "a list asked meanwhile joins");
    r.host.disk.files.insert(
        dir.join("b.img.md5sum"),
        b"ffffffffffffffffffffffffffffffff".to_vec(),
    );
    let cached = r.send(Command::Images);
    assert_eq!(
        images(&r, cached)[1].1.as_deref(),
        Some("ffffffffffffffffffffffffffffffff")
    );
}

#[test]
fn an_upload_is_answered_once_its_body_came_and_bad_names_are_refused() {
    let mut r = Rig::new();
    let t = r.send(Command::UploadImage("vyos/disk.qcow2".into()));
    assert_eq!(
        r.host.receiving,
        vec![(t, PathBuf::from("/images/QEMU/vyos/disk.qcow2"))]
    );
    assert_eq!(r.status(t), None, "not before the body is whole");
    r.lab.body_received(t, Ok(1234), &mut r.host);
    assert_eq!(r.status(t), Some(204));
    let logged = std::iter::from_fn(|| r.lab.poll_event()).any(|e| {
        matches!(e, Event::Uploaded { bytes: 1234, ref path } if path.ends_with("vyos/disk.qcow2"))
    });
    assert!(logged, "the upload is logged");
    let cut = r.send(Command::UploadImage("b.qcow2".into()));
    r.lab
        .body_received(cut, Err(ApiError::bad("cut")), &mut r.host);
    assert_eq!(r.status(cut), Some(400));
    for bad in ["../etc/passwd", "/etc/passwd", ".x", "a.md5sum"] {
        let t = r.send(Command::UploadImage(bad.into()));
        assert_eq!(r.status(t), Some(403), "{bad}");
    }
    assert_eq!(
        r.host.receiving.len(),
        2,
        "nothing received for a refused name"
    );
}

#[test]
fn a_download_streams_an_image_that_is_there() {
    let mut r = Rig::new();
    r.host.readable.insert("/images/QEMU/disk.qcow2".into());
    let t = r.send(Command::DownloadImage("disk.qcow2".into()));
    assert!(matches!(r.reply(t), Ok(Answer::Ok(Body::FileStream(p))) if p.ends_with("disk.qcow2")));
    let t = r.send(Command::DownloadImage("gone.qcow2".into()));
    assert_eq!(r.status(t), Some(404));
    let t = r.send(Command::DownloadImage("sub/disk.qcow2".into()));
    assert_eq!(r.status(t), Some(403));
}

fn create(r: &mut Rig, p: Uuid, config: QemuConfig) -> Ticket {
    r.host.readable.insert(QEMU.into());
    let b = QemuCreate {
        name: "R1".into(),
        vm_id: None,
        console: None,
        config: QemuConfig {
            qemu_path: QEMU.into(),
            ..config
        },
        mac_from_id: true,
        check_images: true,
    };
    r.send(Command::CreateNode(p, NodeCreate::Qemu(Box::new(b))))
}

#[test]
fn a_2_2_node_naming_a_missing_image_is_image_missing_until_it_is_uploaded() {
    let mut r = Rig::new();
    r.lab = Lab::new(Settings {
        local: false,
        ..super::super::fake::settings()
    });
    let p = r.project();
    let config = QemuConfig {
        hda: "disk.qcow2".into(),
        kernel_image: "vmlinuz".into(),
        ..QemuConfig::default()
    };
    let t = create(&mut r, p, config.clone());
    let Err(e) = r.reply(t) else {
        panic!("created without its disk")
    };
    assert_eq!(e.status(), 409);
    assert_eq!(e.body()["exception"], "ImageMissingError");
    assert_eq!(e.body()["image"], "disk.qcow2");
    assert!(
        r.lab.nodes.registry.iter().next().is_none(),
        "no node, no console port kept"
    );
    r.host.readable.insert("/images/QEMU/disk.qcow2".into());
    let t = create(&mut r, p, config.clone());
    assert_eq!(r.reply(t).as_ref().unwrap_err().body()["image"], "vmlinuz");
    r.host.readable.insert("/images/QEMU/vmlinuz".into());
    let t = create(&mut r, p, config);
    let Ok(Answer::Created(Body::Qemu(v))) = r.reply(t) else {
        panic!("not created")
    };
    let id = v.id;
    // An update naming a missing image is refused the same way.
    let patch = QemuPatch {
        initrd: Some("initrd.img".into()),
        check_images: true,
        ..QemuPatch::default()
    };
    let node = NodeRef {
        project: p,
        node: id,
        class: command::NodeClass::Qemu,
    };
    let t = r.send(Command::Node(
        node,
        NodeCommand::UpdateQemu(Box::new(patch)),
    ));
    assert_eq!(
        r.reply(t).as_ref().unwrap_err().body()["image"],
        "initrd.img"
    );
    // A file outside the images directory is not for a remote client.
    let outside = QemuConfig {
        hda: "/etc/shadow".into(),
        ..QemuConfig::default()
    };
    r.host.readable.insert("/etc/shadow".into());
    let t = create(&mut r, p, outside);
    let e = r.error(t);
    assert!(e.contains("not allowed on this remote server"), "{e}");
}
