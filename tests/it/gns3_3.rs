//! The real GNS3 3.0.6 controller (PyPI `gns3-server`, installed into a
//! private venv under `target/`) drives nanolab as its remote compute over
//! `/v3/compute`, as its web UI makes it: log in, register the compute, a
//! lab of two PCs on a switch, start, ping, capture, a delay filter, stop,
//! close and reopen, delete. Everything runs in a network namespace with
//! loopback only.

use crate::gns3::{console, install, launch, ping, tail, tcpdump};
use crate::tap::Netns;
use crate::tls::Cert;
use crate::util::{Resp, Server, TempDir, request, request_with, wait_for};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// The controller version nanolab claims on `/v3` by default, and the one
/// installed.
pub(crate) const GNS3: &str = "3.0.6";

/// A running 3.0 controller, logged in as its admin, killed on drop.
pub(crate) struct Controller {
    child: Child,
    pub(crate) addr: SocketAddr,
    dir: TempDir,
    token: String,
}

impl Controller {
    fn start(venv: &Path) -> Controller {
        Self::start_env(venv, &[])
    }

    /// With `env` set (`SSL_CERT_FILE`: the certificate it trusts).
    pub(crate) fn start_env(venv: &Path, env: &[(&str, &Path)]) -> Controller {
        let ini = "compute_username = gns3\ncompute_password = local\n\
                   [Controller]\njwt_secret_key = 0123456789abcdef0123456789abcdef\n";
        let (child, addr, dir) = launch(venv, "gns3-3", ini, env);
        let mut c = Controller {
            child,
            addr,
            dir,
            token: String::new(),
        };
        let up = wait_for(90, || {
            TcpStream::connect(c.addr).is_ok()
                && request(c.addr, "GET", "/v3/version", "").status == 200
        });
        assert!(up, "the controller did not start: {}", tail(&c.log()));
        let login = c.ok(
            "POST",
            "/v3/access/users/authenticate",
            json!({"username": "admin", "password": "admin"}),
        );
        c.token = login["access_token"].as_str().unwrap().to_string();
        c
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("controller.log")).unwrap_or_default()
    }

    fn headers(&self) -> String {
        format!(
            "Authorization: Bearer {}\r\nContent-Type: application/json\r\n",
            self.token
        )
    }

    pub(crate) fn req(&self, method: &str, path: &str, body: &Value) -> Resp {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        request_with(self.addr, method, path, &body, &self.headers())
    }

    fn get(&self, path: &str) -> Resp {
        self.req("GET", path, &Value::Null)
    }

    pub(crate) fn ok(&self, method: &str, path: &str, body: Value) -> Value {
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

    /// Register a nanolab as the web UI does; its compute id.
    fn register(&self, name: &str, host: &str, port: u16) -> String {
        self.register_as(name, "http", host, port)
    }

    pub(crate) fn register_as(&self, name: &str, protocol: &str, host: &str, port: u16) -> String {
        let c = self.ok(
            "POST",
            "/v3/computes?connect=true",
            json!({"name": name, "protocol": protocol, "host": host, "port": port,
                   "user": "gns3", "password": "any"}),
        );
        c["compute_id"].as_str().unwrap().to_string()
    }

    pub(crate) fn node(
        &self,
        p: &str,
        name: &str,
        kind: &str,
        compute: &str,
        props: Value,
    ) -> String {
        let n = self.ok(
            "POST",
            &format!("/v3/projects/{p}/nodes"),
            json!({"name": name, "node_type": kind, "compute_id": compute, "properties": props}),
        );
        n["node_id"].as_str().unwrap().to_string()
    }

    pub(crate) fn pc(&self, p: &str, name: &str, compute: &str, ip: &str) -> String {
        let script = format!("set pcname {name}\nip {ip}/24\n");
        self.node(p, name, "vpcs", compute, json!({"startup_script": script}))
    }

    pub(crate) fn link(&self, p: &str, a: (&str, u32), b: (&str, u32)) -> String {
        let l = self.ok(
            "POST",
            &format!("/v3/projects/{p}/links"),
            json!({"nodes": [
                {"node_id": a.0, "adapter_number": 0, "port_number": a.1},
                {"node_id": b.0, "adapter_number": 0, "port_number": b.1},
            ]}),
        );
        l["link_id"].as_str().unwrap().to_string()
    }

    /// Wait until the controller reports `status` (it learns it only from
    /// the compute's `node.updated`).
    pub(crate) fn wait_status(&self, p: &str, n: &str, status: &str) -> Value {
        let mut last = Value::Null;
        let ok = wait_for(20, || {
            last = self.get(&format!("/v3/projects/{p}/nodes/{n}")).json;
            last["status"] == status
        });
        assert!(ok, "node {n} never {status}: {last}\n{}", tail(&self.log()));
        last
    }

    /// Follow the controller's capture stream of a link for `secs`.
    fn stream(&self, path: &str, secs: u64) -> std::thread::JoinHandle<Vec<u8>> {
        let (addr, path, headers) = (self.addr, path.to_string(), self.headers());
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let req =
                format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n");
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
            let at = raw
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map_or(raw.len(), |i| i + 4);
            let head = String::from_utf8_lossy(&raw[..at]).to_ascii_lowercase();
            if head.contains("transfer-encoding: chunked") {
                crate::gns3::dechunk(&raw[at..])
            } else {
                raw[at..].to_vec()
            }
        })
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_gns3_3_0_controller_runs_a_lab_on_nanolab() {
    lab_under_3_0("g30", false);
}

#[test]
fn the_gns3_3_0_controller_runs_a_lab_on_an_https_nanolab() {
    lab_under_3_0("g3s", true);
}

/// The whole lab through the controller: two PCs on a switch, a hub, a
/// cloud on a TAP of the namespace (its host side at 10.0.0.254). Over
/// `https`, nanolab serves TLS only, with a self-signed certificate the
/// controller trusts through `SSL_CERT_FILE`.
fn lab_under_3_0(tag: &str, https: bool) {
    let venv = install(GNS3);
    let ns = Netns::new(tag);
    ns.ip(&["tuntap", "add", "dev", "nl3tap", "mode", "tap"]);
    ns.ip(&["addr", "add", "10.0.0.254/24", "dev", "nl3tap"]);
    ns.ip(&["link", "set", "nl3tap", "up"]);
    ns.within(move || {
        let cert = https.then(Cert::new);
        let (nl, ctl) = match &cert {
            Some(cert) => {
                let mut flags = cert.flags();
                flags.push("--tls-only".into());
                let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
                let nl = Server::start(&flags);
                let ctl = Controller::start_env(&venv, &[("SSL_CERT_FILE", &cert.cert)]);
                (nl, ctl)
            }
            None => (Server::start(&[]), Controller::start(&venv)),
        };
        let scheme = if https { "https" } else { "http" };
        let compute = ctl.register_as("nanolab1", scheme, "127.0.0.1", nl.addr.port());
        // What nanolab answers itself, in the scheme it speaks.
        let status = |path: &str| match &cert {
            Some(cert) => cert.curl(&nl, &[], path).0,
            None => nl.get(path).status,
        };
        let p = ctl.ok("POST", "/v3/projects", json!({"name": "lab"}))["project_id"]
            .as_str()
            .unwrap()
            .to_string();
        let pc1 = ctl.pc(&p, "PC1", &compute, "10.0.0.1");
        let pc2 = ctl.pc(&p, "PC2", &compute, "10.0.0.2");
        let sw = ctl.node(&p, "SW1", "ethernet_switch", &compute, json!({}));
        let hub = ctl.node(&p, "HUB1", "ethernet_hub", &compute, json!({}));
        let l1 = ctl.link(&p, (&pc1, 0), (&sw, 0));
        ctl.link(&p, (&pc2, 0), (&sw, 1));
        ctl.link(&p, (&sw, 2), (&hub, 0));
        let tap =
            json!([{"name": "nl3tap", "port_number": 0, "type": "tap", "interface": "nl3tap"}]);
        let cloud = ctl.node(
            &p,
            "Cloud1",
            "cloud",
            &compute,
            json!({"ports_mapping": tap}),
        );
        ctl.link(&p, (&hub, 1), (&cloud, 0));

        ctl.ok(
            "POST",
            &format!("/v3/projects/{p}/nodes/start"),
            Value::Null,
        );
        let n1 = ctl.wait_status(&p, &pc1, "started");
        ctl.wait_status(&p, &pc2, "started");
        ctl.wait_status(&p, &sw, "started");

        // The console the controller names.
        let mut c = console(&n1);
        let base = ping(&mut c, "10.0.0.2", 3).unwrap_or_else(|| {
            panic!(
                "PC1 does not ping PC2 across the switch: {}\nnanolab log:\n{}",
                c.text(),
                tail(&nl.log())
            )
        });

        // Through the switch, the hub and the cloud to the namespace.
        assert!(
            ping(&mut c, "10.0.0.254", 2).is_some(),
            "PC1 does not reach the far side of the cloud's TAP: {}",
            c.text()
        );

        // A suspended link carries nothing; resumed, it carries again.
        let link = format!("/v3/projects/{p}/links/{l1}");
        ctl.ok("PUT", &link, json!({"suspend": true}));
        assert!(ping(&mut c, "10.0.0.2", 1).is_none(), "{}", c.text());
        ctl.ok("PUT", &link, json!({"suspend": false}));
        assert!(ping(&mut c, "10.0.0.2", 2).is_some(), "{}", c.text());

        // Capture through the controller (it picks the switch's side and
        // streams with the compute's credentials), read by tcpdump.
        ctl.ok(
            "POST",
            &format!("/v3/projects/{p}/links/{l1}/capture/start"),
            json!({"data_link_type": "DLT_EN10MB"}),
        );
        let pcap = ctl.stream(&format!("/v3/projects/{p}/links/{l1}/capture/stream"), 30);
        std::thread::sleep(Duration::from_millis(500));
        ping(&mut c, "10.0.0.2", 2).expect("ping while capturing");
        ctl.ok(
            "POST",
            &format!("/v3/projects/{p}/links/{l1}/capture/stop"),
            Value::Null,
        );
        let dump = tcpdump(&pcap.join().unwrap());
        assert!(dump.contains("ICMP echo request"), "{dump}");
        assert!(dump.contains("ICMP echo reply"), "{dump}");

        // A delay filter on the link raises the round trip.
        ctl.ok(
            "PUT",
            &format!("/v3/projects/{p}/links/{l1}"),
            json!({"filters": {"delay": [200, 0]}}),
        );
        let slow = ping(&mut c, "10.0.0.2", 3).expect("ping with a delay");
        assert!(slow - base >= 180.0, "base {base} ms, with delay {slow} ms");

        ctl.ok("POST", &format!("/v3/projects/{p}/nodes/stop"), Value::Null);
        ctl.wait_status(&p, &pc1, "stopped");

        // Close and reopen: nodes and links replayed, PCs ping again.
        ctl.ok("POST", &format!("/v3/projects/{p}/close"), Value::Null);
        assert_eq!(status(&format!("/v3/compute/projects/{p}")), 404);
        ctl.ok("POST", &format!("/v3/projects/{p}/open"), Value::Null);
        ctl.ok(
            "POST",
            &format!("/v3/projects/{p}/nodes/start"),
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
        let r = ctl.req("DELETE", &format!("/v3/projects/{p}"), &Value::Null);
        assert!(r.status < 300, "{}", r.text);
        assert!(wait_for(10, || status(&format!(
            "/v3/compute/projects/{p}"
        )) == 404));
        assert!(
            wait_for(10, || crate::util::children(nl.pid()).is_empty()),
            "vpcs processes left behind"
        );
    });
}

#[test]
fn two_computes_in_two_namespaces_under_one_3_0_controller() {
    let venv = install(GNS3);
    let a = Netns::new("g3c");
    let b = Netns::new("g3d");
    // A veth pair between the two namespaces, and nothing else.
    let (va, vb) = (
        format!("nl3a{}", std::process::id() % 10000),
        format!("nl3b{}", std::process::id() % 10000),
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
    a.ip(&["addr", "add", "10.98.0.1/24", "dev", &va]);
    a.ip(&["link", "set", &va, "up"]);
    b.ip(&["addr", "add", "10.98.0.2/24", "dev", &vb]);
    b.ip(&["link", "set", &vb, "up"]);
    let nl_b = b.within(|| Server::start(&["--host", "10.98.0.2"]));
    let port_b = nl_b.addr.port();
    a.within(move || {
        let nl_a = Server::start(&["--host", "10.98.0.1"]);
        let ctl = Controller::start(&venv);
        let host_a = ctl.register("hostA", "10.98.0.1", nl_a.addr.port());
        let host_b = ctl.register("hostB", "10.98.0.2", port_b);
        let p = ctl.ok("POST", "/v3/projects", json!({"name": "two"}))["project_id"]
            .as_str()
            .unwrap()
            .to_string();
        let pc1 = ctl.pc(&p, "PC1", &host_a, "10.0.0.1");
        let pc2 = ctl.pc(&p, "PC2", &host_b, "10.0.0.2");
        ctl.link(&p, (&pc1, 0), (&pc2, 0));
        ctl.ok(
            "POST",
            &format!("/v3/projects/{p}/nodes/start"),
            Value::Null,
        );
        let n1 = ctl.wait_status(&p, &pc1, "started");
        let n2 = ctl.wait_status(&p, &pc2, "started");
        assert_eq!(n2["console_host"], "10.98.0.2");
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
        let r = ctl.req("DELETE", &format!("/v3/projects/{p}"), &Value::Null);
        assert!(r.status < 300, "{}", r.text);
    });
    drop(nl_b);
}

#[test]
fn the_gns3_3_0_controller_runs_a_docker_node_on_nanolab() {
    let venv = install(GNS3);
    let engine = crate::docker::engine();
    let ns = Netns::new("g3d");
    ns.within(move || {
        let socket = engine.socket.display().to_string();
        let nl = Server::start(&["--docker-socket", &socket]);
        let ctl = Controller::start(&venv);
        let compute = ctl.register("nanolab1", "127.0.0.1", nl.addr.port());
        let images = ctl.get(&format!("/v3/computes/{compute}/docker/images"));
        assert_eq!(images.status, 200, "{}", images.text);
        assert!(
            images.text.contains(crate::docker::IMAGE),
            "{}",
            images.text
        );
        let p = ctl.ok("POST", "/v3/projects", json!({"name": "containers"}))["project_id"]
            .as_str()
            .unwrap()
            .to_string();
        // What a 3.0 docker template sends.
        let dk = ctl.node(
            &p,
            "box",
            "docker",
            &compute,
            json!({"image": crate::docker::IMAGE, "adapters": 1, "console_type": "telnet",
                   "aux_type": "none", "memory": 0, "cpus": 0,
                   "console_http_port": 80, "console_http_path": "/",
                   "console_resolution": "1024x768", "extra_volumes": []}),
        );
        let pc = ctl.pc(&p, "PC1", &compute, "10.0.0.1");
        ctl.link(&p, (&pc, 0), (&dk, 0));
        ctl.ok(
            "POST",
            &format!("/v3/projects/{p}/nodes/start"),
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
        c.send("ip addr add 10.0.0.7/24 dev eth0\r\n");
        let from = c.seen.len();
        c.send("ping -c 2 -W 2 10.0.0.1\r\n");
        assert!(
            c.expect_after(from, "2 packets received", 20),
            "the container does not ping PC1: {}\n{}",
            c.text(),
            tail(&nl.log())
        );
        ctl.ok("POST", &format!("/v3/projects/{p}/nodes/stop"), Value::Null);
        ctl.wait_status(&p, &dk, "stopped");
        let r = ctl.req("DELETE", &format!("/v3/projects/{p}"), &Value::Null);
        assert!(r.status < 300, "{}", r.text);
        let projects = nl.dir.join("projects");
        assert!(
            wait_for(15, || engine.containers_of(&projects).is_empty()),
            "a container is left: {:?}",
            engine.containers_of(&projects)
        );
    });
}
