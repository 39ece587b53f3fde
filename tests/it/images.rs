//! QEMU images on the real server, over `/v2/compute` and `/v3/compute`:
//! uploads streamed to the images directory (by Content-Length and
//! chunked, larger than any buffered body), the list with its digests,
//! downloads, refusals, an upload cut short that leaves nothing, and a
//! node that names a missing image until it is uploaded.

use crate::util::{Server, read_response, temp_dir};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::time::Duration;

/// 24 MiB of bytes that do not repeat (more than the 16 MiB any buffered
/// body may be).
fn image(seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..24 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn md5_hex(data: &[u8]) -> String {
    format!("{:x}", md5::compute(data))
}

/// POST `data` to `path`, by Content-Length or in 1 MiB chunks.
fn upload(s: &Server, path: &str, data: &[u8], chunked: bool) -> crate::util::Resp {
    let mut c = s.connect();
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_string()
    } else {
        format!("Content-Length: {}", data.len())
    };
    let head = format!("POST {path} HTTP/1.1\r\nHost: x\r\n{framing}\r\nConnection: close\r\n\r\n");
    c.write_all(head.as_bytes()).unwrap();
    if chunked {
        for piece in data.chunks(1 << 20) {
            c.write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                .unwrap();
            c.write_all(piece).unwrap();
            c.write_all(b"\r\n").unwrap();
        }
        c.write_all(b"0\r\n\r\n").unwrap();
    } else {
        c.write_all(data).unwrap();
    }
    read_response(&mut BufReader::new(c)).expect("an answer")
}

/// GET a streamed (chunked) answer whole: (status, body).
fn download(s: &Server, path: &str) -> (u16, Vec<u8>) {
    let mut c = s.connect();
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(c);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut chunked = false;
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        chunked |= line
            .to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked");
    }
    let mut body = Vec::new();
    if !chunked {
        r.read_to_end(&mut body).unwrap();
        return (status, body);
    }
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let n = usize::from_str_radix(line.trim(), 16).unwrap();
        if n == 0 {
            return (status, body);
        }
        let at = body.len();
        body.resize(at + n, 0);
        r.read_exact(&mut body[at..]).unwrap();
        line.clear();
        r.read_line(&mut line).unwrap();
    }
}

/// Every file beneath `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_dir() {
            out.extend(files(&e.path()).into_iter().map(|f| format!("{name}/{f}")));
        } else {
            out.push(name);
        }
    }
    out.sort();
    out
}

#[test]
fn images_upload_list_and_download_over_v2_and_v3() {
    let images = temp_dir("images");
    let qemu = images.join("QEMU");
    let arg = images.display().to_string();
    let s = Server::start(&["--images-dir", &arg]);
    let (a, b) = (image(1), image(2));
    let r = upload(&s, "/v2/compute/qemu/images/disk.qcow2", &a, false);
    assert_eq!(r.status, 204, "{}", r.text);
    let r = upload(&s, "/v3/compute/qemu/images/vyos%2Fdisk.qcow2", &b, true);
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(std::fs::read(qemu.join("vyos/disk.qcow2")).unwrap(), b);
    assert_eq!(
        files(&qemu),
        [
            "disk.qcow2",
            "disk.qcow2.md5sum",
            "vyos/disk.qcow2",
            "vyos/disk.qcow2.md5sum"
        ]
    );
    // A hand-copied image has no digest yet: the list computes it.
    std::fs::write(qemu.join("hand.img"), &b[..1 << 20]).unwrap();
    std::fs::write(qemu.join("tiny"), b"abc").unwrap();
    for api in ["/v2/compute", "/v3/compute"] {
        let list = s.get(&format!("{api}/qemu/images"));
        assert_eq!(list.status, 200, "{}", list.text);
        assert_eq!(
            list.json,
            serde_json::json!([
                {"filename": "disk.qcow2", "path": "disk.qcow2", "md5sum": md5_hex(&a), "filesize": a.len()},
                {"filename": "hand.img", "path": "hand.img", "md5sum": md5_hex(&b[..1 << 20]), "filesize": 1 << 20},
            ]),
            "{api}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(qemu.join("hand.img.md5sum")).unwrap(),
        md5_hex(&b[..1 << 20]),
        "the digest is cached as GNS3 caches it"
    );
    // A new upload replaces the image and its digest.
    assert_eq!(
        upload(&s, "/v2/compute/qemu/images/disk.qcow2", &b, false).status,
        204
    );
    let list = s.get("/v2/compute/qemu/images");
    assert_eq!(list.json[0]["md5sum"], md5_hex(&b));
    let (status, got) = download(&s, "/v2/compute/qemu/images/disk.qcow2");
    assert_eq!((status, got.len()), (200, b.len()));
    assert!(got == b, "the download is the image");
    assert_eq!(download(&s, "/v3/compute/qemu/images/gone.qcow2").0, 404);
    assert_eq!(download(&s, "/v3/compute/qemu/images/.hidden").0, 403);
    // 1.3.13's fifth page: the images directory as a tar.
    let (status, tar) = download(&s, "/backup/images.tar");
    assert_eq!(status, 200);
    let at = images.join("images.tar");
    std::fs::write(&at, &tar).unwrap();
    let list = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&at)
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        names.contains("QEMU/vyos/disk.qcow2") && names.contains("QEMU/hand.img"),
        "{names}"
    );
    std::fs::remove_file(&at).unwrap();
    // Nothing is written outside the images directory.
    upload(
        &s,
        "/v2/compute/qemu/images/..%2F..%2Fescaped",
        b"0123456789",
        false,
    )
    .assert_error(403, "not allowed");
    upload(
        &s,
        "/v2/compute/qemu/images/disk.qcow2.md5sum",
        b"0123456789",
        false,
    )
    .assert_error(403, "not allowed");
    assert!(!images.join("escaped").exists() && !images.parent().unwrap().join("escaped").exists());
    // The connection stays usable after a refused upload's body.
    let mut c = s.connect();
    let refused = "POST /v2/compute/qemu/images/.x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    write!(
        c,
        "{refused}GET /v2/compute/version HTTP/1.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(c);
    assert_eq!(read_response(&mut r).unwrap().status, 403);
    assert_eq!(read_response(&mut r).unwrap().status, 200);
}

#[test]
fn an_upload_cut_short_leaves_nothing_and_the_server_carries_on() {
    let images = temp_dir("images");
    let arg = images.display().to_string();
    let s = Server::start(&["--images-dir", &arg]);
    let mut c = s.connect();
    write!(
        c,
        "POST /v2/compute/qemu/images/cut.qcow2 HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n"
    )
    .unwrap();
    c.write_all(&image(3)[..3_000_000]).unwrap();
    drop(c);
    let qemu = images.join("QEMU");
    let clean = crate::util::wait_for(10, || qemu.exists() && files(&qemu).is_empty());
    assert!(clean, "left behind: {:?}", files(&qemu));
    assert_eq!(s.get("/v2/compute/version").status, 200);
    assert_eq!(s.get("/v2/compute/qemu/images").json, serde_json::json!([]));
}

#[test]
fn a_node_naming_a_missing_image_is_image_missing_until_it_is_uploaded() {
    let images = temp_dir("images");
    let arg = images.display().to_string();
    let s = Server::start(&["--images-dir", &arg]);
    let p = uuid::Uuid::new_v4();
    let r = s.post(
        "/v2/compute/projects",
        &format!(r#"{{"name": "i", "project_id": "{p}"}}"#),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let nodes = format!("/v2/compute/projects/{p}/qemu/nodes");
    let body = r#"{"name": "R1", "hda_disk_image": "router.qcow2", "ram": 64}"#;
    let r = s.post(&nodes, body);
    r.assert_error(409, "The image router.qcow2 is missing");
    assert_eq!(r.json["exception"], "ImageMissingError");
    assert_eq!(r.json["image"], "router.qcow2");
    assert_eq!(
        upload(
            &s,
            "/v2/compute/qemu/images/router.qcow2",
            b"QFI\xfb not really",
            false
        )
        .status,
        204
    );
    let r = s.post(&nodes, body);
    assert_eq!(r.status, 201, "{}", r.text);
    s.post(&nodes, r#"{"name": "R2", "hda_disk_image": "/etc/shadow"}"#)
        .assert_error(409, "not allowed on this remote server");
}
