//! https computes: nanolab with `--tls-cert`/`--tls-key`, reached by curl
//! with the certificate as its only trust anchor (the 3.0 controller over
//! https is in `gns3_3.rs`).

use crate::util::{Server, TempDir, request, temp_dir};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;

/// A self-signed certificate for 127.0.0.1 and localhost, made the way
/// the README tells a user to: `openssl req -x509`.
pub struct Cert {
    pub cert: PathBuf,
    pub key: PathBuf,
    _dir: TempDir,
}

impl Cert {
    pub fn new() -> Cert {
        let dir = temp_dir("cert");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=nanolab"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl is installed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Cert {
            cert,
            key,
            _dir: dir,
        }
    }

    /// The flags that serve the API with it.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert.display().to_string(),
            "--tls-key".into(),
            self.key.display().to_string(),
        ]
    }

    /// curl over https trusting only this certificate: status and body.
    pub fn curl(&self, s: &Server, args: &[&str], path: &str) -> (u16, Vec<u8>) {
        let out = Command::new("curl")
            .args(["-s", "--cacert"])
            .arg(&self.cert)
            .args(["-w", "\n%{http_code}"])
            .args(args)
            .arg(format!("https://127.0.0.1:{}{path}", s.addr.port()))
            .output()
            .unwrap();
        let mut body = out.stdout;
        let at = body.iter().rposition(|b| *b == b'\n').unwrap_or(0);
        let code = String::from_utf8_lossy(&body[at..])
            .trim()
            .parse()
            .unwrap_or(0);
        body.truncate(at);
        (code, body)
    }
}

fn start(cert: &Cert, more: &[&str]) -> Server {
    let mut flags = cert.flags();
    flags.extend(more.iter().map(|s| s.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::start(&flags)
}

#[test]
fn an_https_compute_serves_the_api_and_big_files_both_ways() {
    let cert = Cert::new();
    let s = start(&cert, &[]);
    let (code, body) = cert.curl(&s, &[], "/v3/compute/capabilities");
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let caps: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        caps["version"]
            .as_str()
            .unwrap()
            .starts_with("3.0.6+nanolab.")
    );

    let (code, body) = cert.curl(
        &s,
        &["-X", "POST", "-d", r#"{"name": "tls"}"#],
        "/v3/compute/projects",
    );
    assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
    let p: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let p = p["project_id"].as_str().unwrap().to_string();

    // Near a MiB up and back down: many records each way, and a socket the
    // server cannot write all at once.
    let dir = temp_dir("tls-file");
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 253) as u8).collect();
    std::fs::write(dir.join("big.bin"), &data).unwrap();
    let file = format!("/v3/compute/projects/{p}/files/big.bin");
    let up = format!("@{}", dir.join("big.bin").display());
    let (code, body) = cert.curl(&s, &["-X", "POST", "--data-binary", &up], &file);
    assert!(code < 300, "{code} {}", String::from_utf8_lossy(&body));
    let (code, body) = cert.curl(&s, &[], &file);
    assert_eq!(code, 200);
    assert!(
        body == data,
        "{} bytes came back, not the {} sent",
        body.len(),
        data.len()
    );

    // Plain HTTP on the same port is served too (GNS3 3.0 opens web
    // consoles with its browser's scheme).
    let r = request(s.addr, "GET", "/v3/compute/version", "");
    assert_eq!(r.status, 200, "{}", r.text);
}

#[test]
fn tls_only_refuses_plain_http_with_a_json_error_and_survives_garbage() {
    let cert = Cert::new();
    let s = start(&cert, &["--tls-only"]);
    let r = request(s.addr, "GET", "/v3/compute/version", "");
    r.assert_error(400, "https");

    // A record header that promises a hello and then nonsense; a client
    // that closes mid-handshake; one that stays silent.
    let mut bad = TcpStream::connect(s.addr).unwrap();
    bad.write_all(&[0x16, 3, 1, 0, 40]).unwrap();
    bad.write_all(&[0xee; 40]).unwrap();
    let mut rest = Vec::new();
    bad.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let _ = bad.read_to_end(&mut rest);
    let mut half = TcpStream::connect(s.addr).unwrap();
    half.write_all(&[0x16, 3, 1]).unwrap();
    drop(half);
    let _silent = TcpStream::connect(s.addr).unwrap();

    let (code, body) = cert.curl(&s, &[], "/v3/compute/version");
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    assert!(s.log().contains("TLS"), "the failed handshake is logged");
}

#[test]
fn a_bad_certificate_or_key_stops_the_start_with_a_message() {
    let cert = Cert::new();
    let bin = env!("CARGO_BIN_EXE_nanolab");
    let run = |args: &[&std::ffi::OsStr]| {
        let out = Command::new(bin)
            .args(["--port", "0"])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let (c, k) = (cert.cert.as_os_str(), cert.key.as_os_str());
    let e = run(&["--tls-cert".as_ref(), k, "--tls-key".as_ref(), k]);
    assert!(e.contains("no CERTIFICATE"), "{e}");
    let e = run(&["--tls-cert".as_ref(), c, "--tls-key".as_ref(), c]);
    assert!(e.contains("no private key"), "{e}");
    let e = run(&[
        "--tls-cert".as_ref(),
        c,
        "--tls-key".as_ref(),
        "/nonexistent".as_ref(),
    ]);
    assert!(e.contains("cannot read the TLS key /nonexistent"), "{e}");
    let e = run(&["--tls-cert".as_ref(), c]);
    assert!(e.contains("go together"), "{e}");
}
