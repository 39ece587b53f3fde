//! The real GNS3 2.2.61 controller (PyPI `gns3-server`, installed into a
//! private venv under `target/`) drives nanolab as its remote compute, the
//! way the GNS3 GUI makes it. Everything runs inside network namespaces the
//! tests make: one with loopback only, and for the two-compute lab two
//! namespaces joined by a veth pair. Nothing can leave the machine (the
//! controller bundles an error reporter).

use crate::tap::Netns;
use crate::util::{Console, Resp, Server, TempDir, request, temp_dir, wait_for};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The controller version nanolab claims by default, and the one installed.
const GNS3: &str = "2.2.61";

/// The venv with gns3-server 2.2, installed once per target directory.
fn venv() -> PathBuf {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| install(GNS3)).clone()
}

/// A venv with gns3-server `version` from PyPI, installed once per target
/// directory.
pub fn install(version: &str) -> PathBuf {
    // Tests run in parallel threads: one installs while the others wait,
    // rather than each removing the venv another is installing.
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("gns3-server-{version}"));
        let done = dir.join(".installed");
        if done.exists() {
            return dir;
        }
        let _ = std::fs::remove_dir_all(&dir);
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&dir)
            .status()
            .expect("python3 is installed")
            .success();
        assert!(
            ok,
            "python3 -m venv failed (Debian: apt-get install python3-venv)"
        );
        let out = Command::new(dir.join("bin/pip"))
            .args(["install", "-q", &format!("gns3-server=={version}")])
            .output()
            .expect("pip");
        assert!(
            out.status.success(),
            "pip install gns3-server=={version}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&done, version).unwrap();
        dir
    }
}

/// Start gns3server from `venv` on 127.0.0.1:3080 of the calling thread's
/// namespace, with every path private, no error reporting, `ini` added to
/// its `[Server]` section (then any further sections), and `env` set.
pub fn launch(
    venv: &Path,
    tag: &str,
    ini: &str,
    env: &[(&str, &Path)],
) -> (Child, SocketAddr, TempDir) {
    let dir = temp_dir(tag);
    let port = 3080;
    let conf = dir.join("gns3_server.conf");
    let mut text = format!("[Server]\nhost = 127.0.0.1\nport = {port}\nreport_errors = False\n");
    for key in ["projects", "images", "configs", "appliances", "symbols"] {
        let d = dir.join(key);
        std::fs::create_dir_all(&d).unwrap();
        text.push_str(&format!("{key}_path = {}\n", d.display()));
    }
    text.push_str(ini);
    std::fs::write(&conf, text).unwrap();
    let log = std::fs::File::create(dir.join("controller.log")).unwrap();
    let child = Command::new(venv.join("bin/gns3server"))
        .arg("--config")
        .arg(&conf)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .env("HOME", &*dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_DATA_HOME", dir.join("data"))
        .envs(env.iter().copied())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start gns3server");
    (child, SocketAddr::from(([127, 0, 0, 1], port)), dir)
}

/// A running controller, killed on drop.
struct Controller {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

impl Controller {
    /// Start on 127.0.0.1:3080 of the calling thread's namespace, with
    /// every path private and no error reporting.
    fn start(venv: &Path) -> Controller {
        let (child, addr, dir) = launch(venv, "gns3", "auth = False\n", &[]);
        let c = Controller { child, addr, dir };
        let up = wait_for(60, || {
            TcpStream::connect(c.addr).is_ok() && c.get("/v2/version").status == 200
        });
        assert!(up, "the controller did not start: {}", c.log());
        c
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("controller.log")).unwrap_or_default()
    }

    fn req(&self, method: &str, path: &str, body: &Value) -> Resp {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        request(self.addr, method, path, &body)
    }

    fn get(&self, path: &str) -> Resp {
        self.req("GET", path, &Value::Null)
    }

    /// A call that must succeed; returns its JSON.
    fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let r = self.req(method, path, &body);
        assert!(
            r.status < 300,
            "{method} {path}: {} {}\ncontroller log:\n{}",
            r.status,
            r.text,
            tail(&self.log())
        );
        r.json
    }

    /// Register a nanolab as compute `id`, as the GUI's "remote server".
    fn register(&self, id: &str, host: &str, port: u16) {
        let c = self.ok(
            "POST",
            "/v2/computes",
            json!({"compute_id": id, "name": id, "protocol": "http", "host": host, "port": port}),
        );
        assert_eq!(c["compute_id"], id, "{c}");
        let connected = wait_for(20, || {
            self.get(&format!("/v2/computes/{id}")).json["connected"] == true
        });
        assert!(
            connected,
            "compute {id} never connected: {}",
            tail(&self.log())
        );
    }

    fn node(&self, p: &str, name: &str, kind: &str, compute: &str, props: Value) -> String {
        let n = self.ok(
            "POST",
            &format!("/v2/projects/{p}/nodes"),
            json!({"name": name, "node_type": kind, "compute_id": compute, "properties": props}),
        );
        n["node_id"].as_str().unwrap().to_string()
    }

    fn project(&self, name: &str) -> String {
        let p = self.ok("POST", "/v2/projects", json!({"name": name}));
        p["project_id"].as_str().unwrap().to_string()
    }

    /// A VPCS on `compute` whose startup script sets `ip`.
    fn pc(&self, p: &str, name: &str, compute: &str, ip: &str) -> String {
        let script = format!("set pcname {name}\nip {ip}/24\n");
        self.node(
            p,
            name,
            "vpcs",
            compute,
            json!({ "startup_script": script }),
        )
    }

    fn link(&self, p: &str, a: (&str, u32), b: (&str, u32)) -> String {
        let l = self.ok(
            "POST",
            &format!("/v2/projects/{p}/links"),
            json!({"nodes": [
                {"node_id": a.0, "adapter_number": 0, "port_number": a.1},
                {"node_id": b.0, "adapter_number": 0, "port_number": b.1},
            ]}),
        );
        l["link_id"].as_str().unwrap().to_string()
    }

    /// Wait until the controller reports `status` for the node (it learns
    /// it only from the compute's `node.updated`).
    fn wait_status(&self, p: &str, n: &str, status: &str) -> Value {
        let mut last = Value::Null;
        let ok = wait_for(20, || {
            last = self.get(&format!("/v2/projects/{p}/nodes/{n}")).json;
            last["status"] == status
        });
        assert!(ok, "node {n} never {status}: {last}");
        last
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn tail(s: &str) -> &str {
    &s[s.len().saturating_sub(4000)..]
}

/// Open the console the controller names for a node.
pub fn console(node: &Value) -> Console {
    let host = node["console_host"].as_str().unwrap();
    let host = if host == "0.0.0.0" { "127.0.0.1" } else { host };
    let c = Console::open_at(host, node["console"].as_u64().unwrap() as u16);
    c.s.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    c
}

/// Ping from a console; returns the mean round trip in ms, `None` when no
/// reply came.
pub fn ping(c: &mut Console, to: &str, count: u32) -> Option<f64> {
    let from = c.seen.len();
    c.send(&format!("ping {to} -c {count}\n"));
    let last = format!("icmp_seq={count}");
    c.expect_after(from, &last, 10 + 3 * u64::from(count));
    // Let the last line arrive whole.
    c.expect_after(from, "VPCS>", 3);
    let text = String::from_utf8_lossy(&c.seen[from..]).into_owned();
    let times: Vec<f64> = text
        .lines()
        .filter(|l| l.contains("icmp_seq=") && l.contains("time="))
        .filter_map(|l| {
            l.split("time=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    (!times.is_empty()).then(|| times.iter().sum::<f64>() / times.len() as f64)
}

/// Read a streamed HTTP answer until it ends or `secs` pass; the body,
/// de-chunked.
fn stream(addr: SocketAddr, path: &str, secs: u64) -> std::thread::JoinHandle<Vec<u8>> {
    let path = path.to_string();
    let ns_thread_addr = addr;
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(ns_thread_addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let end = Instant::now() + Duration::from_secs(secs);
        let mut raw = Vec::new();
        let mut buf = [0u8; 65536];
        while Instant::now() < end {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        let head_end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(raw.len(), |i| i + 4);
        let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
        let body = &raw[head_end..];
        if head.contains("transfer-encoding: chunked") {
            dechunk(body)
        } else {
            body.to_vec()
        }
    })
}

pub fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).unwrap_or(0);
        if size == 0 || b.len() < i + 2 + size {
            out.extend_from_slice(
                b.get(i + 2..)
                    .unwrap_or_default()
                    .get(..size)
                    .unwrap_or_default(),
            );
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + size]);
        b = &b[(i + 4 + size).min(b.len())..];
    }
    out
}

/// Decode a pcap with the real tcpdump.
pub fn tcpdump(pcap: &[u8]) -> String {
    let mut child = Command::new("tcpdump")
        .args(["-n", "-r", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump is installed");
    child.stdin.take().unwrap().write_all(pcap).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn the_gns3_2_2_controller_runs_a_lab_on_nanolab() {
    let venv = venv();
    let ns = Netns::new("g3");
    ns.within(move || {
        let nl = Server::start(&[]);
        let ctl = Controller::start(&venv);
        ctl.register("nanolab1", "127.0.0.1", nl.addr.port());

        let p = ctl.project("lab");
        let pc1 = ctl.pc(&p, "PC1", "nanolab1", "10.0.0.1");
        let pc2 = ctl.pc(&p, "PC2", "nanolab1", "10.0.0.2");
        let sw = ctl.node(&p, "SW1", "ethernet_switch", "nanolab1", json!({}));
        let l1 = ctl.link(&p, (&pc1, 0), (&sw, 0));
        ctl.link(&p, (&pc2, 0), (&sw, 1));

        ctl.ok(
            "POST",
            &format!("/v2/projects/{p}/nodes/start"),
            Value::Null,
        );
        let n1 = ctl.wait_status(&p, &pc1, "started");
        ctl.wait_status(&p, &pc2, "started");

        // The console the controller names, as the GUI opens it.
        let mut c = console(&n1);
        let base = ping(&mut c, "10.0.0.2", 3).unwrap_or_else(|| {
            panic!(
                "PC1 does not ping PC2 across the switch: {}\nnanolab log:\n{}",
                c.text(),
                tail(&nl.log())
            )
        });

        // Capture through the controller, read by tcpdump.
        ctl.ok(
            "POST",
            &format!("/v2/projects/{p}/links/{l1}/start_capture"),
            json!({"data_link_type": "DLT_EN10MB"}),
        );
        let pcap = stream(ctl.addr, &format!("/v2/projects/{p}/links/{l1}/pcap"), 30);
        std::thread::sleep(Duration::from_millis(500));
        ping(&mut c, "10.0.0.2", 2).expect("ping while capturing");
        ctl.ok(
            "POST",
            &format!("/v2/projects/{p}/links/{l1}/stop_capture"),
            Value::Null,
        );
        let pcap = pcap.join().unwrap();
        let dump = tcpdump(&pcap);
        assert!(dump.contains("ICMP echo request"), "{dump}");
        assert!(dump.contains("ICMP echo reply"), "{dump}");

        // A delay filter on the link raises the round trip.
        ctl.ok(
            "PUT",
            &format!("/v2/projects/{p}/links/{l1}"),
            json!({"filters": {"delay": [200, 0]}}),
        );
        let slow = ping(&mut c, "10.0.0.2", 3).expect("ping with a delay");
        assert!(slow - base >= 180.0, "base {base} ms, with delay {slow} ms");
        // Suspending the link stops the replies; resuming brings them back.
        ctl.ok(
            "PUT",
            &format!("/v2/projects/{p}/links/{l1}"),
            json!({"suspend": true}),
        );
        assert_eq!(ping(&mut c, "10.0.0.2", 2), None, "{}", c.text());
        ctl.ok(
            "PUT",
            &format!("/v2/projects/{p}/links/{l1}"),
            json!({"suspend": false, "filters": {}}),
        );
        assert!(ping(&mut c, "10.0.0.2", 2).is_some(), "{}", c.text());

        // Statistics for all computes works with nanolab among them.
        ctl.ok("GET", "/v2/statistics", Value::Null);

        ctl.ok("POST", &format!("/v2/projects/{p}/nodes/stop"), Value::Null);
        ctl.wait_status(&p, &pc1, "stopped");
        ctl.wait_status(&p, &pc2, "stopped");

        // Close, then reopen: the controller replays nodes and links, and
        // the scripts are still there.
        ctl.ok("POST", &format!("/v2/projects/{p}/close"), Value::Null);
        assert_eq!(nl.get(&format!("/v2/compute/projects/{p}")).status, 404);
        ctl.ok("POST", &format!("/v2/projects/{p}/open"), Value::Null);
        let script = nl.get(&format!(
            "/v2/compute/projects/{p}/files/project-files/vpcs/{pc1}/startup.vpc"
        ));
        assert!(script.text.contains("ip 10.0.0.1/24"), "{}", script.text);
        ctl.ok(
            "POST",
            &format!("/v2/projects/{p}/nodes/start"),
            Value::Null,
        );
        let n1 = ctl.wait_status(&p, &pc1, "started");
        ctl.wait_status(&p, &pc2, "started");
        let mut c = console(&n1);
        assert!(
            ping(&mut c, "10.0.0.2", 2).is_some(),
            "after reopening: {}",
            c.text()
        );

        // Delete: nothing is left on the compute.
        let r = ctl.req("DELETE", &format!("/v2/projects/{p}"), &Value::Null);
        assert!(r.status < 300, "{}", r.text);
        assert!(wait_for(10, || nl
            .get(&format!("/v2/compute/projects/{p}"))
            .status
            == 404));
        assert!(
            wait_for(10, || crate::util::children(nl.pid()).is_empty()),
            "vpcs processes left behind"
        );
    });
}

#[test]
fn two_computes_in_two_namespaces_make_one_lab() {
    let venv = venv();
    let a = Netns::new("g3a");
    let b = Netns::new("g3b");
    // A veth pair between the two namespaces, and nothing else.
    let (va, vb) = (
        format!("nlva{}", std::process::id() % 10000),
        format!("nlvb{}", std::process::id() % 10000),
    );
    a.ip(&[
        "link",
        "add",
        &va,
        "type",
        "veth",
        "peer",
        "name",
        &vb,
        "netns",
        &b.name(),
    ]);
    a.ip(&["addr", "add", "10.99.0.1/24", "dev", &va]);
    a.ip(&["link", "set", &va, "up"]);
    b.ip(&["addr", "add", "10.99.0.2/24", "dev", &vb]);
    b.ip(&["link", "set", &vb, "up"]);
    // nanolab B lives in B; the test talks to it from A, across the veth.
    let nl_b = b.within(|| Server::start(&["--host", "10.99.0.2"]));
    let port_b = nl_b.addr.port();
    a.within(move || {
        let nl_a = Server::start(&["--host", "10.99.0.1"]);
        let ctl = Controller::start(&venv);
        ctl.register("hostA", "10.99.0.1", nl_a.addr.port());
        ctl.register("hostB", "10.99.0.2", port_b);
        let p = ctl.project("two");
        let pc1 = ctl.pc(&p, "PC1", "hostA", "10.0.0.1");
        let pc2 = ctl.pc(&p, "PC2", "hostB", "10.0.0.2");
        ctl.link(&p, (&pc1, 0), (&pc2, 0));
        ctl.ok(
            "POST",
            &format!("/v2/projects/{p}/nodes/start"),
            Value::Null,
        );
        let n1 = ctl.wait_status(&p, &pc1, "started");
        let n2 = ctl.wait_status(&p, &pc2, "started");
        assert_eq!(n2["console_host"], "10.99.0.2");
        let mut c1 = console(&n1);
        assert!(
            ping(&mut c1, "10.0.0.2", 3).is_some(),
            "A to B: {}",
            c1.text()
        );
        let mut c2 = console(&n2);
        assert!(
            ping(&mut c2, "10.0.0.1", 3).is_some(),
            "B to A: {}",
            c2.text()
        );
        let r = ctl.req("DELETE", &format!("/v2/projects/{p}"), &Value::Null);
        assert!(r.status < 300, "{}", r.text);
    });
    drop(nl_b);
}

#[test]
fn the_gns3_2_2_controller_runs_a_qemu_vm_on_nanolab() {
    let venv = venv();
    // The images are the controller's: nanolab has none, answers the
    // node's creation with ImageMissingError, and the controller uploads
    // each image it names (three uploads) before the node is created.
    let images = crate::qemu::images();
    let empty = crate::util::temp_dir("no-images");
    let ns = Netns::new("g2q");
    ns.within(move || {
        let nl = Server::start(&["--images-dir", &empty.display().to_string()]);
        let ctl = Controller::start(&venv);
        let theirs = ctl.dir.join("images/QEMU");
        std::fs::create_dir_all(&theirs).unwrap();
        for f in ["vmlinuz", "initrd.img", "disk.qcow2"] {
            std::fs::copy(images.join("QEMU").join(f), theirs.join(f)).unwrap();
        }
        ctl.register("nanolab1", "127.0.0.1", nl.addr.port());
        let p = ctl.project("routers");
        // What a 2.2 QEMU template sends (platform, no path: the compute
        // picks qemu-system-x86_64).
        let r1 = ctl.node(
            &p,
            "R1",
            "qemu",
            "nanolab1",
            json!({"platform": "x86_64", "qemu_path": "", "ram": 128, "adapters": 1,
                   "adapter_type": "e1000", "hda_disk_image": "disk.qcow2",
                   "kernel_image": "vmlinuz", "initrd": "initrd.img",
                   "kernel_command_line": "console=ttyS0 quiet ip=10.0.0.3/24 vmname=r1",
                   "console_type": "telnet", "linked_clone": true, "boot_priority": "c",
                   "mac_address": "", "options": "", "on_close": "power_off"}),
        );
        for f in ["vmlinuz", "initrd.img", "disk.qcow2"] {
            let ours = std::fs::read(empty.join("QEMU").join(f)).unwrap_or_default();
            assert!(
                ours == std::fs::read(theirs.join(f)).unwrap(),
                "{f} was not uploaded whole"
            );
        }
        let listed = ctl.get("/v2/computes/nanolab1/qemu/images");
        assert_eq!(listed.status, 200, "{}", listed.text);
        assert_eq!(
            listed.json.as_array().map(Vec::len),
            Some(3),
            "{}",
            listed.text
        );
        let pc = ctl.pc(&p, "PC1", "nanolab1", "10.0.0.1");
        ctl.link(&p, (&pc, 0), (&r1, 0));
        ctl.ok(
            "POST",
            &format!("/v2/projects/{p}/nodes/start"),
            Value::Null,
        );
        let n = ctl.wait_status(&p, &r1, "started");
        assert!(
            n["properties"]["mac_address"]
                .as_str()
                .is_some_and(|m| m.starts_with("0c:")),
            "2.2's MAC: {n}"
        );
        let n_pc = ctl.wait_status(&p, &pc, "started");
        let mut c = console(&n);
        assert!(
            c.expect("r1# ", 90),
            "no prompt on the console the controller names: {}",
            c.text()
        );
        let mut cp = console(&n_pc);
        assert!(
            ping(&mut cp, "10.0.0.3", 3).is_some(),
            "PC1 does not ping R1: {}\n{}",
            cp.text(),
            tail(&nl.log())
        );
        ctl.ok(
            "POST",
            &format!("/v2/projects/{p}/nodes/{r1}/suspend"),
            Value::Null,
        );
        ctl.wait_status(&p, &r1, "suspended");
        ctl.ok("POST", &format!("/v2/projects/{p}/nodes/stop"), Value::Null);
        ctl.wait_status(&p, &r1, "stopped");
        let r = ctl.req("DELETE", &format!("/v2/projects/{p}"), &Value::Null);
        assert!(r.status < 300, "{}", r.text);
        assert!(
            wait_for(10, || crate::qemu::qemu_children(nl.pid()) == 0),
            "a QEMU is left"
        );
    });
}

#[test]
fn the_gns3_2_2_controller_runs_a_docker_node_on_nanolab() {
    let venv = venv();
    let engine = crate::docker::engine();
    let ns = Netns::new("g2d");
    ns.within(move || {
        let socket = engine.socket.display().to_string();
        let nl = Server::start(&["--docker-socket", &socket]);
        let ctl = Controller::start(&venv);
        ctl.register("nanolab1", "127.0.0.1", nl.addr.port());
        let images = ctl.get("/v2/computes/nanolab1/docker/images");
        assert_eq!(images.status, 200, "{}", images.text);
        assert!(
            images.text.contains(crate::docker::IMAGE),
            "{}",
            images.text
        );
        let p = ctl.project("containers");
        // What a 2.2 docker template sends.
        let dk = ctl.node(
            &p,
            "box",
            "docker",
            "nanolab1",
            json!({"image": crate::docker::IMAGE, "adapters": 1, "console_type": "telnet",
                   "console_http_port": 80, "console_http_path": "/",
                   "console_resolution": "1024x768", "extra_volumes": [],
                   "environment": "ROLE=box"}),
        );
        let pc = ctl.pc(&p, "PC1", "nanolab1", "10.0.0.1");
        ctl.link(&p, (&pc, 0), (&dk, 0));
        ctl.ok(
            "POST",
            &format!("/v2/projects/{p}/nodes/start"),
            Value::Null,
        );
        let n = ctl.wait_status(&p, &dk, "started");
        ctl.wait_status(&p, &pc, "started");
        let mut c = console(&n);
        c.send("\r\n");
        assert!(
            c.expect("/ # ", 10),
            "no shell on the console: {}",
            c.text()
        );
        c.send("ip addr add 10.0.0.7/24 dev eth0; echo role=$ROLE\r\n");
        assert!(c.expect("role=box", 10), "{}", c.text());
        let from = c.seen.len();
        c.send("ping -c 2 -W 2 10.0.0.1\r\n");
        assert!(
            c.expect_after(from, "2 packets received", 20),
            "the container does not ping PC1: {}\n{}",
            c.text(),
            tail(&nl.log())
        );
        ctl.ok(
            "POST",
            &format!("/v2/projects/{p}/nodes/{dk}/suspend"),
            Value::Null,
        );
        ctl.wait_status(&p, &dk, "suspended");
        ctl.ok(
            "POST",
            &format!("/v2/projects/{p}/nodes/{dk}/start"),
            Value::Null,
        );
        ctl.wait_status(&p, &dk, "started");
        let r = ctl.req("DELETE", &format!("/v2/projects/{p}"), &Value::Null);
        assert!(r.status < 300, "{}", r.text);
        let projects = nl.dir.join("projects");
        assert!(
            wait_for(15, || engine.containers_of(&projects).is_empty()),
            "a container is left: {:?}",
            engine.containers_of(&projects)
        );
    });
}
